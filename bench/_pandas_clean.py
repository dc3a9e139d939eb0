"""The pandas baseline of bench/ingest.py: crmlens's transaction cleaning written in pandas.

This is what a careful analyst would write to get the same result as
``crmlens.Workspace(path).ingest("transactions", csv)`` on a CSV whose column names are known:
vectorised ``.str`` methods (pandas 3 strings are Arrow-backed), ``pd.to_datetime`` per format
with fallbacks only for the rows still unparsed, ``duplicated()``, a lookup table of line types
per distinct product, and ``merge_asof`` for matching returns to earlier purchases.

It produces a clean frame (one row per kept line, flags as boolean columns) and a rejected frame
(source row, reason, detail and the original values), and checks that every row is in exactly
one of them. Nothing is written to disk (crmlens, by contrast, stores the raw table, the clean
table and the rejected rows in its DuckDB file).

The rules mirror ``src/crmlens/clean/sqlfuncs.py`` (macros ``crm_text``, ``crm_value``,
``crm_id``, ``crm_number*``, ``crm_ts_*``), ``src/crmlens/clean/transactions.py``,
``src/crmlens/clean/accounting.py`` and ``src/crmlens/ingest/dates.py``. The constants below are
copies (this module must not import duckdb, so that the pandas process is measured alone);
``bench/ingest.py`` checks that they still equal crmlens's.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# --- copies of crmlens constants (checked against crmlens by bench/ingest.py) -------------------

NULL_TOKENS = ("nan", "null", "none", "n/a", "#n/a", "na", "nil", "-", "--", "无", "空", "(null)")
_TIME_SUFFIXES = (" %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p", "")
YEAR_FIRST = ["%Y-%m-%d" + s for s in _TIME_SUFFIXES] + ["%Y%m%d"]
_DAY_FIRST = [f"%d-%m-{y}{s}" for y in ("%y", "%Y") for s in _TIME_SUFFIXES]
_MONTH_FIRST = [f"%m-%d-{y}{s}" for y in ("%y", "%Y") for s in _TIME_SUFFIXES]
_TEXT_MONTH = [
    f"{d}{s}"
    for d in ("%d-%b-%Y", "%d %b %Y", "%b %d %Y", "%d %B %Y", "%B %d %Y", "%d-%b-%y")
    for s in (" %H:%M:%S", " %H:%M", "")
]


def date_formats(dayfirst: bool) -> list[str]:
    return (_DAY_FIRST if dayfirst else _MONTH_FIRST) + _TEXT_MONTH


# pandas 3 runs a regex through pyarrow (RE2) only when RE2 and Python's `re` agree on it;
# `\s` (and `\d` on non-ASCII text) send it element by element through Python instead, which
# is 10-30x slower. Like crmlens (RE2), we spell ASCII classes out.
WS = r"[ \t\n\r\f\v]"
NULL_RE = "|".join(re.escape(t) for t in NULL_TOKENS)
CURRENCY_RE = r"(?i)(rmb|cny|usd|eur|gbp|hkd|jpy|twd|元|円|圆|块|件|个|pcs|[¥$€£₩₹ \t\n\r\f\v])"

# The CSV's columns by role (the generator's English headers; crmlens detects these itself).
ROLES = {
    "order_id": "order_id", "customer_id": "customer_id", "timestamp": "order_date",
    "product_id": "product_id", "product_name": "product_name", "category": "category",
    "quantity": "quantity", "unit_price": "unit_price", "channel": "channel", "region": "region",
}


def line_type_rules() -> list[dict[str, Any]]:
    """crmlens's built-in non-product rules (data, read from its TOML file)."""
    from crmlens.clean.line_types import default_rules  # tomllib only, no duckdb

    return list(default_rules())


# --- value cleaning ------------------------------------------------------------------------------


def clean_text(s: pd.Series) -> pd.Series:
    """NFKC, whitespace runs to one space, trimmed; empty -> missing (crm_text)."""
    non_ascii = ~s.str.isascii().fillna(True)
    if non_ascii.any():  # ASCII text is NFKC-normal already
        s = s.copy()
        s[non_ascii] = s[non_ascii].str.normalize("NFKC")
    s = s.str.strip()
    inner = s.str.contains(WS + WS + r"|[\t\n\r\f\v]", regex=True, na=False)
    if inner.any():
        s[inner] = s[inner].str.replace(WS + "+", " ", regex=True)
    return s.mask(s == "")


def clean_value(s: pd.Series) -> pd.Series:
    """clean_text, then null tokens (nan, null, n/a, 无 ...) -> missing (crm_value)."""
    s = clean_text(s)
    return s.mask(s.str.fullmatch(NULL_RE, case=False, na=False))


def clean_id(s: pd.Series) -> pd.Series:
    """An id as text: '17850.0' -> '17850' (crm_id)."""
    return clean_value(s).str.replace(r"^(-?[0-9]+)\.0+$", r"\1", regex=True)


def _to_float(s: pd.Series) -> pd.Series:
    out = pd.to_numeric(s, errors="coerce").astype("float64")
    return out.where(np.isfinite(out))


def _number_plain(x: pd.Series) -> pd.Series:
    out = pd.Series(np.nan, index=x.index)
    todo = x.notna()
    euro = todo & (x.str.fullmatch(r"[+-]?[0-9]{1,3}(\.[0-9]{3}){2,}(,[0-9]*)?", na=False)
                   | x.str.fullmatch(r"[+-]?[0-9]{1,3}(\.[0-9]{3})+,[0-9]*", na=False))
    out[euro] = pd.to_numeric(x[euro].str.replace(".", "", regex=False)
                              .str.replace(",", ".", regex=False), errors="coerce")
    todo &= ~euro
    comma_dec = todo & x.str.fullmatch(r"[+-]?[0-9]+,[0-9]{1,2}", na=False)
    out[comma_dec] = pd.to_numeric(x[comma_dec].str.replace(",", ".", regex=False),
                                   errors="coerce")
    todo &= ~comma_dec
    grouped = todo & x.str.fullmatch(r"[+-]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]*)?", na=False)
    out[grouped] = pd.to_numeric(x[grouped].str.replace(",", "", regex=False), errors="coerce")
    todo &= ~grouped
    out[todo] = pd.to_numeric(x[todo], errors="coerce")
    return out


def clean_number(v: pd.Series) -> pd.Series:
    """A number from a cleaned value: plain first, then currency symbols, 1.234,50, (5), 5- ..."""
    out = _to_float(v)
    slow = out.isna() & v.notna()
    if slow.any():
        x = v[slow].str.replace(CURRENCY_RE, "", regex=True)
        paren = x.str.fullmatch(r"\(.*\)", na=False)
        trailing = ~paren & x.str.fullmatch(r"[0-9.,]+-", na=False)
        plain = x.str.strip("()").where(paren, x)
        plain = plain.str.rstrip("-").where(trailing, plain)
        value = _number_plain(plain)
        value[paren | trailing] *= -1
        out[slow] = value.where(np.isfinite(value))
    return out


def _excel_days(x: pd.Series) -> pd.Series:
    days = x.astype("float64")
    ok = days.between(20000, 80000)
    return (pd.Timestamp("1899-12-30") + pd.to_timedelta(days.where(ok), unit="D"))


def parse_timestamps(v: pd.Series, *, dayfirst: bool) -> pd.Series:
    """Mixed-format dates to datetime64: ISO, epoch s/ms, Excel serials, then strptime formats."""
    ts = pd.to_datetime(v, format="ISO8601", errors="coerce")
    ts = ts.astype("datetime64[us]")
    todo = ts.isna() & v.notna()
    if todo.any():
        x = v[todo]
        got = pd.Series(pd.NaT, index=x.index, dtype="datetime64[us]")
        epoch_s = x.str.fullmatch(r"[0-9]{9,10}(\.[0-9]+)?", na=False)
        micros = (x[epoch_s].astype("float64") * 1e6).round().astype("int64")
        got[epoch_s] = pd.to_datetime(micros, unit="us")
        epoch_ms = x.str.fullmatch(r"[0-9]{12,13}", na=False)
        got[epoch_ms] = pd.to_datetime(x[epoch_ms].astype("int64"), unit="ms")
        serial = x.str.fullmatch(r"[0-9]{5}(\.[0-9]+)?", na=False)
        got[serial] = _excel_days(x[serial])
        rest = got.isna()
        if rest.any():
            y = x[rest].str.replace(",", "", regex=False)
            for _ in range(2):  # 2011.12.09 -> 2011-12-09 (overlapping matches need two passes)
                y = y.str.replace(r"([0-9])\.([0-9])", r"\1-\2", regex=True)
            y = (y.str.replace(WS + "*[年月/]" + WS + "*", "-", regex=True)
                  .str.replace("([0-9])" + WS + "*[日号]", r"\1", regex=True)
                  .str.replace("([0-9])" + WS + "*[时点:]" + WS + "*([0-9])", r"\1:\2",
                               regex=True)
                  .str.strip(" -分秒"))
            year_first = y.str.contains(r"^[0-9]{4}", regex=True, na=False)
            for mask, fmts in ((year_first, YEAR_FIRST), (~year_first, date_formats(dayfirst))):
                left = y[mask]
                for fmt in fmts:
                    if left.empty:
                        break
                    parsed = pd.to_datetime(left, format=fmt, errors="coerce")
                    ok = parsed.notna()
                    ok = ok.to_numpy()
                    got[left.index[ok]] = parsed[ok].astype("datetime64[us]")
                    left = left[~ok]
        ts[todo] = got
    return ts.where(ts.between(pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01")))


def detect_dayfirst(raw: pd.Series) -> bool:
    """25/12/2011 proves day-first, 12/25/2011 month-first; counted over the whole column."""
    pattern = r"^([0-9]{1,2})[-/.]([0-9]{1,2})[-/.][0-9]{2,4}"
    text = raw.str.strip()
    text = text[text.str.contains(pattern, na=False)]  # extract is slow; only where it matches
    parts = text.str.extract(pattern).dropna()
    a, b = parts[0].astype(int), parts[1].astype(int)
    day_first, month_first = int(((a > 12) & (b <= 12)).sum()), int(((b > 12) & (a <= 12)).sum())
    return day_first >= month_first if (day_first or month_first) else False


def classify_lines(pid: pd.Series, name: pd.Series) -> pd.Series:
    """Line type (product, shipping, discount ...) per row, classified once per distinct product."""
    pairs = pd.DataFrame({"pid": pid, "pname": name}).drop_duplicates()
    line_type = pd.Series("product", index=pairs.index, dtype="str")
    done = pd.Series(False, index=pairs.index)
    upper = pairs["pid"].str.upper()
    for rule in line_type_rules():
        hit = pd.Series(False, index=pairs.index)
        if rule.get("codes"):
            hit |= upper.isin([c.upper() for c in rule["codes"]])
        if rule.get("code_pattern"):
            hit |= pairs["pid"].str.contains(rule["code_pattern"], case=False, regex=True, na=False)
        if rule.get("name"):
            hit |= pairs["pname"].str.contains(rule["name"], case=False, regex=True, na=False)
        hit &= ~done
        line_type[hit] = rule["line_type"]
        done |= hit
    pairs["line_type"] = line_type
    merged = pd.DataFrame({"pid": pid, "pname": name}).merge(pairs, on=["pid", "pname"],
                                                             how="left")
    return pd.Series(merged["line_type"].to_numpy(), index=pid.index)


def _isin(values: pd.Series, universe: pd.Series) -> np.ndarray:
    # Series.isin on Arrow strings turns the lookup set into Python objects one by one (1.7 s
    # per million rows and ids); a hash lookup in an Index is 4x faster.
    return pd.Index(universe).get_indexer(values) >= 0


def cancellation_test(order_id: pd.Series) -> pd.Series:
    """Cancellations: 'C' + a numeric id, or 'C' + an order id seen in the same file."""
    ids = pd.Series(order_id.dropna().unique(), dtype="str")
    numeric = ids.str.fullmatch(r"[0-9]+").sum() > 0.5 * len(ids)
    c_ids = ids[ids.str.startswith(("C", "c"))]
    c_known = _isin(c_ids.str.slice(1), ids).sum()
    test = pd.Series(False, index=order_id.index)
    if numeric:
        test |= order_id.str.fullmatch(r"[Cc][0-9]+", na=False)
    if len(c_ids) and c_known >= 0.5 * len(c_ids):
        starts_c = order_id.str.startswith(("C", "c")).fillna(False).astype(bool)
        test[starts_c] |= _isin(order_id[starts_c].str.slice(1), ids)
    return test


def upper_fence(x: pd.Series, k: float) -> float | None:
    """Upper Tukey fence of log(1 + |x|), back on the value scale."""
    logs = np.log1p(x.dropna().abs().to_numpy())
    if logs.size == 0:
        return None
    q1, q3 = np.quantile(logs, [0.25, 0.75])
    return math.expm1(q3 + k * max(q3 - q1, 0.5))


# --- the whole step ---------------------------------------------------------------------------


def clean_transactions(path: str | Path, *, now: datetime | None = None,
                       outlier_fence: float = 3.0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Read and clean a transactions CSV; returns (clean, rejected, summary)."""
    now = now or datetime.now()
    started = time.perf_counter()
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    read_seconds = time.perf_counter() - started
    cols = list(raw.columns)
    r = ROLES
    n = len(raw)
    row = pd.Series(np.arange(1, n + 1), index=raw.index)

    dayfirst = detect_dayfirst(raw[r["timestamp"]])
    customer = clean_id(raw[r["customer_id"]])
    order_in = clean_id(raw[r["order_id"]])
    product = clean_id(raw[r["product_id"]])
    name = clean_text(raw[r["product_name"]])
    ts_value = clean_value(raw[r["timestamp"]])
    ts = parse_timestamps(ts_value, dayfirst=dayfirst)
    qty_value, price_value = clean_value(raw[r["quantity"]]), clean_value(raw[r["unit_price"]])
    qty, price = clean_number(qty_value), clean_number(price_value)

    # Reject reasons, first failing rule wins.
    copies = raw.duplicated(keep=False)  # every row that has an exact copy (one full pass)
    dups = raw[copies]
    dup = pd.Series(False, index=raw.index)
    dup[copies] = dups.duplicated(keep="first")  # all but the first of each set of copies
    blank = pd.Series(False, index=raw.index)
    no_ts = ts.isna()
    if no_ts.any():  # a blank row has no date; test every column only there
        blank[no_ts] = raw[no_ts].apply(lambda c: c.str.strip().fillna("").eq("")).all(axis=1)
    conditions = [
        ("blank_row", blank),
        ("duplicate_row", dup),
        ("missing_timestamp", ts.isna() & ts_value.isna()),
        ("bad_timestamp", ts.isna()),
        ("bad_quantity", qty.isna() & qty_value.notna()),
        ("bad_price", price.isna() & price_value.notna()),
        ("missing_amount", price.isna()),
    ]
    reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    for code, cond in conditions:
        reason = reason.mask(reason.isna() & cond, code)
    rejected_mask = reason.notna()

    # Details of rejected rows only.
    rej = raw[rejected_mask].copy()
    rej.insert(0, "reason", reason[rejected_mask])
    rej.insert(0, "source_row", row[rejected_mask])
    detail = pd.Series(pd.NA, index=rej.index, dtype="str")
    for code, col in (("bad_timestamp", r["timestamp"]), ("bad_quantity", r["quantity"]),
                      ("bad_price", r["unit_price"])):
        m = rej["reason"] == code
        detail[m] = col + "=" + rej.loc[m, col].fillna("")
    detail[rej["reason"] == "missing_timestamp"] = r["timestamp"]
    if len(dups):
        group = dups.groupby(cols, dropna=False, sort=False).ngroup()
        first = row[dups.index].groupby(group).transform("min")
        m = rej["reason"] == "duplicate_row"
        detail[m] = "first copy at row " + first[rej.index[m]].astype(str)
    rej.insert(2, "detail", detail)

    # Kept rows.
    keep = ~rejected_mask
    line_type = classify_lines(product, name)
    cancel = cancellation_test(order_in)
    qty0 = qty.fillna(1.0)
    is_return = cancel | ((qty0 < 0) & (line_type == "product"))
    product_line = keep & (line_type == "product")
    q_fence = upper_fence(qty[product_line], outlier_fence)
    p_fence = upper_fence(price[product_line], outlier_fence)

    raw_amount = qty0 * price
    quantity = np.where(is_return, -qty0.abs(), qty0)
    amount = np.where(is_return, -raw_amount.abs(), raw_amount)
    order_id = order_in
    if order_in.isna().any():  # lines without an order id: one order per customer and time
        gap = order_in.isna()
        order_id = order_in.copy()
        order_id[gap] = ("auto:" + customer[gap].fillna("anonymous") + "@"
                         + ts[gap].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    clean = pd.DataFrame({
        "source_row": row,
        "order_id": order_id,
        "customer_id": customer,
        "ts": ts,
        "product_id": product,
        "product_name": name,
        "category": clean_text(raw[r["category"]]),
        "quantity": quantity,
        "unit_price": price,
        "amount": amount,
        "channel": clean_text(raw[r["channel"]]),
        "region": clean_text(raw[r["region"]]),
        "is_return": is_return,
        "line_type": line_type,
        "flag_anonymous": customer.isna(),
        "flag_cancellation": cancel,
        "flag_return": is_return & ~cancel,
        "flag_non_product": line_type != "product",
        "flag_zero_price": price == 0,
        "flag_negative_price": price < 0,
        "flag_future_date": ts > pd.Timestamp(now),
        "flag_derived_order_id": order_in.isna(),
        "flag_outlier_quantity": (line_type == "product") & (qty.abs() > q_fence)
        if q_fence is not None else False,
        "flag_outlier_price": (line_type == "product") & (price.abs() > p_fence)
        if p_fence is not None else False,
    })[keep]
    clean = match_returns(clean)

    if len(clean) + len(rej) != n:
        raise AssertionError(f"accounting: read {n}, loaded {len(clean)}, rejected {len(rej)}")
    flag_cols = [c for c in clean.columns if c.startswith("flag_")]
    summary = {
        "rows_read": n, "rows_loaded": len(clean), "rows_rejected": len(rej),
        "rejected_by_reason": {k: int(v) for k, v in rej["reason"].value_counts().items()},
        "flags_by_reason": {c.removeprefix("flag_"): int(clean[c].sum()) for c in flag_cols
                            if clean[c].sum()},
        "dayfirst": dayfirst, "read_csv_seconds": read_seconds,
    }
    return clean, rej, summary


def match_returns(clean: pd.DataFrame) -> pd.DataFrame:
    """Match each return of a known customer to their latest earlier purchase of the product."""
    known = clean["customer_id"].notna()
    key = clean["product_id"].fillna("")
    is_r, is_p = clean["is_return"] & known, ~clean["is_return"] & known
    returns = pd.DataFrame({"customer_id": clean["customer_id"][is_r], "pkey": key[is_r],
                            "ts": clean["ts"][is_r], "rid": clean.index[is_r]})
    purchases = pd.DataFrame({"customer_id": clean["customer_id"][is_p], "pkey": key[is_p],
                              "ts": clean["ts"][is_p], "order_id": clean["order_id"][is_p]})
    clean["return_of_order_id"] = pd.Series(pd.NA, index=clean.index, dtype="str")
    clean["flag_unmatched_return"] = False
    if returns.empty:
        return clean
    matched = pd.merge_asof(returns.sort_values("ts"), purchases.sort_values("ts"), on="ts",
                            by=["customer_id", "pkey"], direction="backward")
    clean.loc[matched["rid"].to_numpy(), "return_of_order_id"] = matched["order_id"].to_numpy()
    unmatched = matched.loc[matched["order_id"].isna(), "rid"].to_numpy()
    clean.loc[unmatched, "flag_unmatched_return"] = True
    return clean
