"""SQL macros that parse messy values inside DuckDB.

Cleaning runs as SQL over the raw tables so that ten million rows never pass through Python.
These macros are registered on every workspace connection; the clean queries call them by
name, which keeps the queries readable (``crm_money("UnitPrice")``).

Each macro tries the cheap, common case first (a plain number, an ISO date) and only then the
slower regular-expression paths, because DuckDB evaluates ``CASE``/``COALESCE`` branches only
for the rows that reach them.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

NULL_TOKENS = ("nan", "null", "none", "n/a", "#n/a", "na", "nil", "-", "--", "无", "空", "(null)")

# Date formats tried after separators are unified to '-' (年/月///. -> '-', 日/号 dropped).
# Two-digit-year forms come first: they cannot swallow a four-digit year, while %Y would read
# "11" as the year 11.
_TIME_SUFFIXES = (" %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p", "")
_YEAR_FIRST = ["%Y-%m-%d" + s for s in _TIME_SUFFIXES] + ["%Y%m%d"]
_DAY_FIRST = [f"%d-%m-{y}{s}" for y in ("%y", "%Y") for s in _TIME_SUFFIXES]
_MONTH_FIRST = [f"%m-%d-{y}{s}" for y in ("%y", "%Y") for s in _TIME_SUFFIXES]
_TEXT_MONTH = [
    f"{d}{s}"
    for d in ("%d-%b-%Y", "%d %b %Y", "%b %d %Y", "%d %B %Y", "%B %d %Y", "%d-%b-%y")
    for s in (" %H:%M:%S", " %H:%M", "")
]


def _sql_list(items: list[str]) -> str:
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"


def date_formats(dayfirst: bool) -> list[str]:
    """strptime formats tried for values that do not start with a four-digit year."""
    return (_DAY_FIRST if dayfirst else _MONTH_FIRST) + _TEXT_MONTH


def _format_lists(dayfirst: bool) -> str:
    # [formats for d-m-YYYY, formats for everything else]: routing by shape saves most of the
    # failed attempts of a single long list.
    formats = date_formats(dayfirst)
    four = [f for f in formats if f.startswith(("%d-%m-%Y", "%m-%d-%Y"))]
    other = [f for f in formats if f not in four]
    return f"[{_sql_list(four)}, {_sql_list(other)}]"


@lru_cache(maxsize=1)
def nfkc_class() -> str:
    """An RE2 character class of every character that NFKC changes (or may compose).

    Text without any of them is already NFKC-normal, so only the rare rest pays for the trip
    through Python's ``unicodedata`` (Chinese text, for one, is untouched by NFKC except for
    full-width forms and the ideographic space).
    """
    cps = sorted({
        cp for cp in range(0x80, 0x30000)
        if not 0xD800 <= cp <= 0xDFFF
        and (unicodedata.normalize("NFKC", chr(cp)) != chr(cp) or unicodedata.combining(chr(cp)))
    })
    ranges: list[list[int]] = []
    for cp in cps:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


def _nfkc(values: pa.Array) -> pa.Array:
    # NFKC folds full-width digits/letters (１２３ -> 123), compatibility forms and the
    # ideographic space. Arrow's vectorised utf8proc does it without a Python call per value
    # (measured 10x faster than unicodedata on the cells that need it); only cells with a
    # character NFKC changes reach this function at all (see crm_text).
    if len(values) == 0:
        return values
    return pc.utf8_normalize(values, form="NFKC")


MACROS = r"""
CREATE OR REPLACE TEMP MACRO crm_squash(x) AS nullif(trim(regexp_replace(x, '\s+', ' ', 'g')), '');
CREATE OR REPLACE TEMP MACRO crm_text(s) AS CASE
    WHEN s IS NULL THEN NULL
    WHEN NOT regexp_matches(s, '^\s|\s$|\s\s|[^ -~]') THEN nullif(s, '')
    WHEN NOT regexp_matches(s, '{nfkc_class}') THEN crm_squash(s)
    ELSE crm_squash(crm_nfkc(s)) END;
CREATE OR REPLACE TEMP MACRO crm_nullish(s) AS
    CASE WHEN regexp_full_match(s, '{null_regex}') THEN NULL ELSE s END;
CREATE OR REPLACE TEMP MACRO crm_value(s) AS crm_nullish(crm_text(s));
CREATE OR REPLACE TEMP MACRO crm_present(s) AS (s IS NOT NULL AND crm_value(s) IS NOT NULL);
CREATE OR REPLACE TEMP MACRO crm_id(s) AS CASE
    WHEN s IS NULL THEN NULL
    WHEN NOT regexp_matches(s, '^\s|\s$|\s\s|[^ -~]|^-?\d+\.0+$')
         AND NOT regexp_full_match(s, '{null_regex}')
        THEN nullif(s, '')
    ELSE regexp_replace(crm_value(s), '^(-?\d+)\.0+$', '\1') END;
CREATE OR REPLACE TEMP MACRO crm_finite(x) AS CASE WHEN isfinite(x) THEN x END;
CREATE OR REPLACE TEMP MACRO crm_num_plain(x) AS CASE
    WHEN regexp_matches(x, '^[+-]?\d{{1,3}}(\.\d{{3}}){{2,}}(,\d*)?$')
      OR regexp_matches(x, '^[+-]?\d{{1,3}}(\.\d{{3}})+,\d*$')
        THEN try_cast(replace(replace(x, '.', ''), ',', '.') AS DOUBLE)
    WHEN regexp_matches(x, '^[+-]?\d+,\d{{1,2}}$') THEN try_cast(replace(x, ',', '.') AS DOUBLE)
    WHEN regexp_matches(x, '^[+-]?(\d{{1,3}}(,\d{{3}})+|\d+)(\.\d*)?$')
        THEN try_cast(replace(x, ',', '') AS DOUBLE)
    ELSE try_cast(x AS DOUBLE) END;
CREATE OR REPLACE TEMP MACRO crm_num_stripped(x) AS CASE
    WHEN regexp_matches(x, '^\(.*\)$') THEN -crm_num_plain(trim(x, '()'))
    WHEN regexp_matches(x, '^[\d.,]+-$') THEN -crm_num_plain(rtrim(x, '-'))
    ELSE crm_num_plain(x) END;
CREATE OR REPLACE TEMP MACRO crm_num_slow(v) AS crm_finite(crm_num_stripped(regexp_replace(v,
    '(?i)(rmb|cny|usd|eur|gbp|hkd|jpy|twd|元|円|圆|块|件|个|pcs|[¥$€£₩₹]|\s)', '', 'g')));
CREATE OR REPLACE TEMP MACRO crm_number(s) AS CASE
    WHEN s IS NULL THEN NULL
    ELSE coalesce(crm_finite(try_cast(s AS DOUBLE)), crm_num_slow(crm_value(s))) END;
CREATE OR REPLACE TEMP MACRO crm_bool(s) AS CASE
    WHEN list_contains(['1', 'y', 'yes', 'true', 't', 'x', '是', '对', '有', '退货', '退款',
                        'returned', 'return', 'refund', 'refunded', 'cancelled', 'canceled'],
                       lower(crm_text(s))) THEN true
    WHEN list_contains(['0', 'n', 'no', 'false', 'f', '否', '无', '没有', '正常', 'none'],
                       lower(crm_text(s))) THEN false
    ELSE NULL END;
-- ISO-style text with a four-digit year first (a plain cast would read 9-12-11 as year 9).
CREATE OR REPLACE TEMP MACRO crm_ts_iso(v) AS
    CASE WHEN regexp_matches(v, '^\d{{4}}-') THEN try_cast(v AS TIMESTAMP) END;
CREATE OR REPLACE TEMP MACRO crm_ts_dots(x) AS
    CASE WHEN regexp_matches(x, '^\d{{1,4}}\.\d{{1,2}}\.\d{{1,4}}') THEN replace(x, '.', '-') ELSE x END;
CREATE OR REPLACE TEMP MACRO crm_ts_norm(x) AS
    replace(replace(trim(replace(replace(replace(replace(
        translate(crm_ts_dots(replace(x, ',', '')), '年月/时点', '---::'),
        '日', ''), '号', ''), '分', ''), '秒', '')), ' -', '-'), '- ', '-');
CREATE OR REPLACE TEMP MACRO crm_ts_parse(y, fmts4, fmts2) AS CASE
    WHEN regexp_matches(y, '^\d{{4}}') THEN try_strptime(y, {yearfirst})
    WHEN regexp_matches(y, '^\d{{1,2}}-\d{{1,2}}-\d{{4}}') THEN try_strptime(y, fmts4)
    ELSE try_strptime(y, fmts2) END;
CREATE OR REPLACE TEMP MACRO crm_ts_slow(x, fmts) AS COALESCE(
    try_cast(x AS TIMESTAMP),
    CASE WHEN regexp_matches(x, '^\d{{9,10}}(\.\d+)?$')
             THEN make_timestamp(CAST(CAST(x AS DOUBLE) * 1e6 AS BIGINT))
         WHEN regexp_matches(x, '^\d{{12,13}}$')
             THEN make_timestamp(CAST(x AS BIGINT) * 1000)
         WHEN regexp_matches(x, '^\d{{5}}(\.\d+)?$') AND CAST(x AS DOUBLE) BETWEEN 20000 AND 80000
             THEN TIMESTAMP '1899-12-30' + to_microseconds(CAST(CAST(x AS DOUBLE) * 86400e6 AS BIGINT))
    END,
    crm_ts_iso(crm_ts_norm(x)),
    crm_ts_parse(crm_ts_norm(x), fmts[1], fmts[2]));
CREATE OR REPLACE TEMP MACRO crm_ts_checked(t) AS
    CASE WHEN t BETWEEN TIMESTAMP '1900-01-01' AND TIMESTAMP '2200-01-01' THEN t END;
CREATE OR REPLACE TEMP MACRO crm_money_strip(v) AS CASE WHEN try_cast(v AS DOUBLE) IS NULL THEN
    regexp_replace(v, '(?i)(rmb|cny|usd|eur|gbp|hkd|jpy|twd|元|円|圆|块|件|个|pcs|[¥$€£₩₹]|\s)', '', 'g')
    END;
CREATE OR REPLACE TEMP MACRO crm_iso_like(v) AS
    regexp_matches(v, '^(19|2[01])\d\d-\d\d?-\d\d?([ T]\d\d?:\d\d(:\d\d(\.\d+)?)?)?$');
CREATE OR REPLACE TEMP MACRO crm_ts_fast(v) AS CASE WHEN crm_iso_like(v) THEN try_cast(v AS TIMESTAMP) END;
CREATE OR REPLACE TEMP MACRO crm_ts_normed(v) AS CASE WHEN NOT crm_iso_like(v) THEN crm_ts_norm(v) END;
CREATE OR REPLACE TEMP MACRO crm_ts_epoch(x) AS
    CASE WHEN regexp_matches(x, '^\d{{9,10}}(\.\d+)?$')
             THEN make_timestamp(CAST(CAST(x AS DOUBLE) * 1e6 AS BIGINT))
         WHEN regexp_matches(x, '^\d{{12,13}}$')
             THEN make_timestamp(CAST(x AS BIGINT) * 1000)
         WHEN regexp_matches(x, '^\d{{5}}(\.\d+)?$') AND CAST(x AS DOUBLE) BETWEEN 20000 AND 80000
             THEN TIMESTAMP '1899-12-30' + to_microseconds(CAST(CAST(x AS DOUBLE) * 86400e6 AS BIGINT))
    END;
CREATE OR REPLACE TEMP MACRO crm_ts_dayfirst_n(v, y) AS
    coalesce(crm_ts_iso(v), crm_ts_epoch(v), crm_ts_iso(y),
             crm_ts_parse(y, {dayfirst}[1], {dayfirst}[2]));
CREATE OR REPLACE TEMP MACRO crm_ts_monthfirst_n(v, y) AS
    coalesce(crm_ts_iso(v), crm_ts_epoch(v), crm_ts_iso(y),
             crm_ts_parse(y, {monthfirst}[1], {monthfirst}[2]));
CREATE OR REPLACE TEMP MACRO crm_ts_dayfirst(s) AS CASE WHEN s IS NULL THEN NULL ELSE
    crm_ts_checked(coalesce(try_cast(s AS TIMESTAMP), crm_ts_slow(crm_value(s), {dayfirst}))) END;
CREATE OR REPLACE TEMP MACRO crm_ts_monthfirst(s) AS CASE WHEN s IS NULL THEN NULL ELSE
    crm_ts_checked(coalesce(try_cast(s AS TIMESTAMP), crm_ts_slow(crm_value(s), {monthfirst}))) END;
"""


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register the cleaning UDF and macros on ``con`` (idempotent)."""
    try:
        con.remove_function("crm_nfkc")
    except duckdb.Error:
        pass
    con.create_function(
        "crm_nfkc", _nfkc, ["VARCHAR"], "VARCHAR", type="arrow", side_effects=False
    )
    sql = MACROS.format(
        # A regular expression, not IN (...): DuckDB plans IN lists as joins, which would
        # evaluate the whole text expression once more per join.
        null_regex="(?i)" + "|".join(re.escape(t) for t in NULL_TOKENS),
        dayfirst=_format_lists(True),
        monthfirst=_format_lists(False),
        yearfirst=_sql_list(_YEAR_FIRST),
        nfkc_class=nfkc_class(),
    )
    con.execute(sql)


def unregister(con: duckdb.DuckDBPyConnection) -> None:
    """Remove the Python UDF before the connection closes (DuckDB keeps a reference to it)."""
    try:
        con.remove_function("crm_nfkc")
    except duckdb.Error:
        pass
