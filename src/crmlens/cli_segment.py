"""``crmlens segment ...``: RFM, clustering, rule-based segments, history and migration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from crmlens.cli import (
    DebugOpt,
    Format,
    FormatOpt,
    LangOpt,
    WorkspaceOpt,
    _print_json,
    _workspace,
    app,
    handle_errors,
    out,
)
from crmlens.errors import InputError
from crmlens.i18n import get_language, t

segment_app = typer.Typer(help=t("cli.segment.help"), no_args_is_help=True,
                          rich_markup_mode="rich")
app.add_typer(segment_app, name="segment")

AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help=t("cli.segment.opt.as_of"),
                                                show_default=False)]
NameOpt = Annotated[Optional[str], typer.Option("--name", help=t("cli.segment.opt.name"),
                                                show_default=False)]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _num(x: Any, digits: int = 0) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def print_segmentation(console: Console, data: dict[str, Any]) -> None:
    """A saved segmentation as text: the run, one row per segment, rules, the choice of k."""
    run = data["run"]
    console.print(t("cli.segment.saved", name=run["name"], run=run["run_id"],
                    method=run["method"], n=f"{run['n_customers']:,}",
                    k=run["n_segments"], as_of=run["as_of"] or "–"))
    for key in ("k_reason", "sampling"):
        if data.get(key):
            console.print(f"[dim]{data[key]}[/dim]")
    table = Table(title=t("cli.segment.profiles"), title_justify="left")
    for key in ("segment", "customers", "share_customers", "share_revenue", "recency",
                "frequency", "monetary"):
        table.add_column(t(f"cli.segment.col.{key}"), no_wrap=key != "segment",
                         min_width=12 if key == "segment" else None,
                         justify="left" if key == "segment" else "right")
    for s in data["segments"]:
        head = s.get("headline", {})

        def med(f: str, digits: int = 0) -> str:
            return _num((head.get(f) or {}).get("median"), digits)

        table.add_row(s["name"], f"{s['n_customers']:,}", _pct(s["share_customers"]),
                      _pct(s.get("share_revenue")), med("recency_days"), med("frequency", 1),
                      med("monetary", 2))
    console.print(table)
    if any("mean_clv" in s for s in data["segments"]):  # own table: fits an 80-column terminal
        ct = Table(title=t("cli.segment.clv_title"), title_justify="left")
        for key in ("segment", "mean_clv", "mean_p_alive"):
            ct.add_column(t(f"cli.segment.col.{key}"),
                          justify="left" if key == "segment" else "right")
        for s in data["segments"]:
            ct.add_row(s["name"], _num(s.get("mean_clv"), 2), _pct(s.get("mean_p_alive")))
        console.print(ct)
    if any("mean_risk" in s for s in data["segments"]):
        rt = Table(title=t("cli.segment.churn_title"), title_justify="left")
        for key in ("segment", "churn_rate", "mean_risk", "high_risk_share"):
            rt.add_column(t(f"cli.segment.col.{key}"),
                          justify="left" if key == "segment" else "right")
        for s in data["segments"]:
            rt.add_row(s["name"], _pct(s.get("churn_rate")), _pct(s.get("mean_risk")),
                       _pct(s.get("high_risk_share")))
        console.print(rt)
    console.print(t("cli.segment.actions"))
    for s in data["segments"]:
        if s.get("action"):
            console.print(f"  • {s['name']}: {s['action']}", markup=False)
    rules = [(s["name"], r) for s in data["segments"] for r in s.get("rules", [])[:1]]
    if rules:
        console.print(t("cli.segment.rules", fidelity=_pct(data.get("fidelity"))))
        for _, text in rules:
            console.print(f"  • {text}", markup=False)
    if data.get("k_table"):
        kt = Table(title=t("cli.segment.k_table"), title_justify="left")
        cols = [c for c in ("k", "silhouette", "calinski_harabasz", "davies_bouldin", "bic",
                            "stability", "smallest_cluster_share", "gvf") if c in data["k_table"][0]]
        for c in cols:
            kt.add_column(c, justify="right")
        for row in data["k_table"]:
            mark = " ◀" if row["k"] == data.get("chosen_k") else ""
            kt.add_row(*[(str(row[c]) + mark) if c == "k" else
                         ("–" if row.get(c) is None else f"{row[c]:.3f}") for c in cols])
        console.print(kt)
    if data.get("counts"):
        ct = Table(title=t("cli.segment.waterfall_counts"), title_justify="left")
        for key in ("segment", "matched", "assigned", "taken_earlier"):
            ct.add_column(t(f"cli.segment.col.{key}"), justify="left" if key == "segment"
                          else "right")
        for row in data["counts"]:
            ct.add_row(str(row.get("segment") or t("cli.segment.unmatched")),
                       f"{row['matched']:,}", f"{row['assigned']:,}",
                       f"{row['taken_earlier']:,}")
        console.print(ct)


def _show(result, fmt: Format) -> None:
    data = result.to_dict(get_language())
    if fmt == Format.json:
        _print_json(data)
    else:
        print_segmentation(out, data)


def _cut_points(values: list[str] | None) -> dict[str, list[float]] | None:
    if not values:
        return None
    out_: dict[str, list[float]] = {}
    for item in values:
        dim, _, numbers = item.partition("=")
        try:
            out_[dim.strip()] = [float(x) for x in numbers.split(",") if x.strip()]
        except ValueError:
            raise InputError("error.segment_cut_points", value=item) from None
    return out_


@segment_app.command("rfm", help=t("cli.segment.rfm.help"))
@handle_errors
def rfm(
    as_of: AsOfOpt = None,
    method: Annotated[str, typer.Option(help=t("cli.segment.opt.rfm_method"))] = "quantile",
    bins: Annotated[int, typer.Option(help=t("cli.segment.opt.bins"))] = 5,
    segment_map: Annotated[Optional[Path], typer.Option("--map-file",
                                                        help=t("cli.segment.opt.map_file"),
                                                        show_default=False)] = None,
    cut: Annotated[Optional[list[str]], typer.Option("--cut", help=t("cli.segment.opt.cut"),
                                                     show_default=False)] = None,
    name: NameOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    result = _workspace(workspace).segment_rfm(
        as_of=as_of, name=name or "rfm", method=method, n_bins=bins, segment_map=segment_map,
        cut_points=_cut_points(cut))
    _show(result, fmt)


def _k(value: str) -> int | str:
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise InputError("error.segment_bad_k", value=value) from None


def _k_range(value: str) -> tuple[int, int]:
    lo, _, hi = value.partition("..")
    try:
        return int(lo), int(hi)
    except ValueError:
        raise InputError("error.segment_bad_k_range", value=value) from None


@segment_app.command("cluster", help=t("cli.segment.cluster.help"))
@handle_errors
def cluster(
    method: Annotated[str, typer.Option(help=t("cli.segment.opt.cluster_method"))] = "kmeans",
    k: Annotated[str, typer.Option("--k", help=t("cli.segment.opt.k"))] = "auto",
    k_range: Annotated[str, typer.Option("--k-range", help=t("cli.segment.opt.k_range"))
                       ] = "3..8",
    features: Annotated[Optional[str], typer.Option("--features",
                                                    help=t("cli.segment.opt.features"),
                                                    show_default=False)] = None,
    seed: Annotated[int, typer.Option(help=t("cli.segment.opt.seed"))] = 0,
    as_of: AsOfOpt = None,
    name: NameOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    cols = [c.strip() for c in features.split(",") if c.strip()] if features else None
    result = _workspace(workspace).segment_cluster(
        as_of=as_of, name=name or "clusters", method=method, n_clusters=_k(k),
        k_range=_k_range(k_range), features=cols, random_state=seed)
    _show(result, fmt)


@segment_app.command("build", help=t("cli.segment.build.help"))
@handle_errors
def build(
    expression: Annotated[str, typer.Argument(help=t("cli.segment.arg.expression"))],
    name: NameOpt = None,
    estimate: Annotated[bool, typer.Option("--estimate", help=t("cli.segment.opt.estimate"))
                        ] = False,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    if estimate or not name:
        size = ws.segment_estimate(expression, as_of=as_of)
        if fmt == Format.json:
            _print_json(size)
        else:
            out.print(t("cli.segment.estimate", n=f"{size['n']:,}", total=f"{size['total']:,}",
                        share=_pct(size["share"]), as_of=str(size["as_of"])))
            if not name:
                out.print(f"[dim]{t('cli.segment.estimate_hint')}[/dim]")
        return
    _show(ws.segment_rule(name, expression, as_of=as_of), fmt)


@segment_app.command("waterfall", help=t("cli.segment.waterfall.help"))
@handle_errors
def waterfall(
    rules: Annotated[list[str], typer.Argument(help=t("cli.segment.arg.rules"))],
    name: NameOpt = None,
    default: Annotated[Optional[str], typer.Option("--default",
                                                   help=t("cli.segment.opt.default"),
                                                   show_default=False)] = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    pairs = []
    for item in rules:
        label, sep, expr = item.partition(":")
        if not sep or not label.strip() or not expr.strip():
            raise InputError("error.segment_waterfall_rule", value=item)
        pairs.append((label.strip(), expr.strip()))
    _show(_workspace(workspace).segment_waterfall(name or "waterfall", pairs, as_of=as_of,
                                                  default_label=default), fmt)


@segment_app.command("list", help=t("cli.segment.list.help"))
@handle_errors
def list_(
    name: NameOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    runs = _workspace(workspace).segment_runs(name=name)
    if fmt == Format.json:
        _print_json(runs)
        return
    if not runs:
        out.print(t("cli.segment.none"))
        return
    table = Table(title=t("cli.segment.list_title"), title_justify="left")
    for key in ("run", "name", "method", "as_of", "segments", "customers", "created"):
        table.add_column(t(f"cli.segment.col.{key}"))
    for r in runs:
        table.add_row(str(r["run_id"]), r["name"], r["method"], r["as_of"] or "–",
                      str(r["n_segments"]), f"{r['n_customers']:,}", r["created_at"])
    out.print(table)


@segment_app.command("show", help=t("cli.segment.show.help"))
@handle_errors
def show(
    run: Annotated[str, typer.Argument(help=t("cli.segment.arg.run"))],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    from crmlens.segment.churn_join import segment_churn_by_name
    from crmlens.segment.clv_join import segment_clv_by_name

    ws = _workspace(workspace)
    data = ws.segment_show(run, lang=get_language())
    with ws.reader() as con:  # CLV and churn means per segment, when such runs exist
        means = segment_clv_by_name(con, data["run"]["run_id"])
        churn = segment_churn_by_name(con, data["run"]["run_id"])
    for s in data["segments"]:
        s.update(means.get(s["segment"], {}))
        s.update(churn.get(s["segment"], {}))
    if fmt == Format.json:
        _print_json(data)
    else:
        print_segmentation(out, data)


@segment_app.command("export", help=t("cli.segment.export.help"))
@handle_errors
def export(
    run: Annotated[str, typer.Argument(help=t("cli.segment.arg.run"))],
    path: Annotated[Path, typer.Argument(help=t("cli.segment.arg.export_path"))],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    members = _workspace(workspace).segment_members(run)
    if path.suffix.lower() == ".parquet":
        members.to_parquet(path, index=False)
    else:
        members.to_csv(path, index=False, encoding="utf-8-sig")
    if fmt == Format.json:
        _print_json({"path": str(path.resolve()), "rows": len(members)})
    else:
        out.print(t("cli.segment.exported", n=f"{len(members):,}", path=str(path.resolve())))


@segment_app.command("migrate", help=t("cli.segment.migrate.help"))
@handle_errors
def migrate(
    source: Annotated[str, typer.Option("--from", help=t("cli.segment.opt.from"))],
    target: Annotated[str, typer.Option("--to", help=t("cli.segment.opt.to"))],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    from crmlens.segment.migration import ABSENT

    ws = _workspace(workspace)
    m = ws.segment_migrate(source, target)
    if fmt == Format.json:
        _print_json(m.to_dict())
        return
    names = {ABSENT: t("segment.migration.absent")}
    for run in (m.source, m.target):
        for seg in ws.segment_show(run.run_id, lang=get_language())["segments"]:
            names.setdefault(seg["segment"], seg["name"])
    out.print(t("cli.segment.migrate_title", a=f"{m.source.name} #{m.source.run_id}",
                b=f"{m.target.name} #{m.target.run_id}",
                a_date=str(m.source.as_of or "–"), b_date=str(m.target.as_of or "–")))
    # A matrix when it fits a terminal; the largest flows, one per line, otherwise.
    if len(m.columns) <= 5:
        table = Table()
        table.add_column(t("cli.segment.col.from_to"))
        for c in m.columns:
            table.add_column(names.get(c, c), justify="right")
        for r, counts, shares in zip(m.rows, m.counts, m.shares):
            table.add_row(names.get(r, r), *[f"{n:,} ({s:.0%})" if n else "·"
                                             for n, s in zip(counts, shares)])
        out.print(table)
    else:
        table = Table()
        for key in ("from", "to", "customers", "share_of_from"):
            table.add_column(t(f"cli.segment.col.{key}"),
                             justify="right" if key in ("customers", "share_of_from") else "left")
        flows = [(n, share, r, c) for r, counts, shares in zip(m.rows, m.counts, m.shares)
                 for c, n, share in zip(m.columns, counts, shares) if n]
        for n, share, r, c in sorted(flows, key=lambda f: -f[0])[:40]:
            table.add_row(names.get(r, r), names.get(c, c), f"{n:,}", f"{share:.1%}")
        out.print(table)
    total = sum(map(sum, m.counts))
    out.print(t("cli.segment.migrate_stayed", n=f"{m.stayed:,}", total=f"{total:,}"))
