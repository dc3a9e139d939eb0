"""The ``crmlens`` command line: a thin Typer + Rich shell over :class:`crmlens.Workspace`.

Every command works on the workspace in the current folder or ``--workspace DIR``, prints
``--format json`` for machines, and turns any :class:`CrmlensError` into a one-paragraph
message and a non-zero exit code (never a traceback, unless ``--debug``).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress as RichBar, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from crmlens.errors import CrmlensError, InputError
from crmlens.i18n import set_language, t
from crmlens.progress import NO_PROGRESS, Progress

app = typer.Typer(
    name="crmlens",
    help=t("cli.help"),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


class Format(str, Enum):
    text = "text"
    json = "json"


class Lang(str, Enum):
    en = "en"
    zh = "zh"


WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help=t("cli.opt.workspace"),
                                            show_default=False)]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help=t("cli.opt.format"))]
LangOpt = Annotated[Optional[Lang], typer.Option("--lang", help=t("cli.opt.lang"), show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help=t("cli.opt.debug"), hidden=True)]
SheetOpt = Annotated[Optional[str], typer.Option(help=t("cli.opt.sheet"))]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", "-m", help=t("cli.opt.map"))]
DayfirstOpt = Annotated[Optional[bool], typer.Option("--dayfirst/--monthfirst", help=t("cli.opt.dayfirst"),
                                                     show_default=False)]
KeepDupOpt = Annotated[Optional[bool], typer.Option("--keep-duplicates/--reject-duplicates",
                                                    help=t("cli.opt.keep_duplicates"), show_default=False)]
DropFlagOpt = Annotated[Optional[list[str]], typer.Option("--drop-flag", help=t("cli.opt.drop_flag"))]


class RichProgress(Progress):
    """Rich progress bar on stderr: one task per stage, DuckDB's percentage as the bar."""

    def __init__(self) -> None:
        self._bar = RichBar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                            console=err, transient=True)
        self._task = None

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def stage(self, key: str, **params: object) -> None:
        if self._task is not None:
            self._bar.update(self._task, completed=100)
        self._task = self._bar.add_task(t(key, **params), total=100)

    def fraction(self, done: float) -> None:
        if self._task is not None:
            self._bar.update(self._task, completed=round(done * 100, 1))


def _progress(fmt: Format) -> RichProgress | None:
    return RichProgress() if err.is_terminal and fmt == Format.text else None


def _setup(lang: Lang | None) -> None:
    set_language(lang.value if lang else None)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _print_error(message: str) -> None:
    # A framed panel on a terminal; one unwrapped line when piped, so logs and scripts see
    # whole paths.
    if err.is_terminal:
        err.print(Panel(message, title=t("cli.error_title"), border_style="red",
                        title_align="left"))
    else:
        err.print(f"{t('cli.error_title')}: {message}", soft_wrap=True, markup=False)


def handle_errors(func):
    """Turn domain errors into messages and exit codes at the edge of the program."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _setup(kwargs.get("lang"))
        debug = kwargs.get("debug", False)
        try:
            return func(*args, **kwargs)
        except CrmlensError as exc:
            if debug:
                traceback.print_exc()
            _print_error(exc.message())
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print(t("cli.interrupted"))
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback
            if debug:
                traceback.print_exc()
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            _print_error(t("error.internal", detail=detail[:300]))
            raise typer.Exit(70) from None

    return wrapper


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _workspace(path: Path | None):
    from crmlens.workspace import Workspace

    return Workspace(path if path is not None else Path("."))


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _show_ingest(result: dict[str, Any]) -> None:
    out.print(t("cli.ingest.done", name=result["name"], kind=result["kind"],
                source_id=result["source_id"]))
    roles = Table(title=t("cli.ingest.mapping"), title_justify="left")
    roles.add_column(t("cli.col.role"))
    roles.add_column(t("cli.col.column"))
    roles.add_column(t("cli.col.how"))
    for role, column in result["mapping"].items():
        col = ", ".join(column) if isinstance(column, list) else column
        roles.add_row(role, col, t(f"cli.how.{result['how'].get(role, 'header')}"))
    out.print(roles)
    if result["unmapped_columns"]:
        out.print(t("cli.ingest.unmapped", columns=", ".join(result["unmapped_columns"])))
    acc = Table(title=t("cli.ingest.accounting"), title_justify="left")
    acc.add_column(t("cli.col.what"))
    acc.add_column(t("cli.col.rows"), justify="right")
    acc.add_row(t("cli.rows_read"), _n(result["rows_read"]))
    acc.add_row(t("cli.rows_loaded"), _n(result["rows_loaded"]))
    acc.add_row(t("cli.rows_rejected"), _n(result["rows_rejected"]))
    for reason, n in result["rejected_by_reason"].items():
        acc.add_row("  " + t("cli.rejected_because", reason=reason), _n(n))
    for flag, n in result["flags_by_reason"].items():
        acc.add_row("  " + t("cli.flagged", flag=flag), _n(n))
    out.print(acc)
    if result["options"].get("encoding"):
        out.print(t("cli.ingest.read_as", encoding=result["options"]["encoding"],
                    delimiter=repr(result["options"]["delimiter"])))
    for note in result.get("notes", []):
        out.print("• " + note)


def _sheet(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def _parse_delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(value.lower(), value)
    if len(value) != 1:
        raise InputError("error.bad_option", option="--delimiter", detail=t("cli.bad_delimiter"))
    return value


# -- commands ---------------------------------------------------------------------------------

@app.command(help=t("cli.init.help"))
@handle_errors
def init(
    path: Annotated[Path, typer.Argument(help=t("cli.arg.init_path"))] = Path("."),
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(path).init()
    if fmt == Format.json:
        _print_json({"workspace": str(ws.path.resolve())})
    else:
        out.print(t("cli.init.done", path=str(ws.path.resolve())))


class Kind(str, Enum):
    transactions = "transactions"
    customers = "customers"
    events = "events"


@app.command(help=t("cli.ingest.help"))
@handle_errors
def ingest(
    kind: Annotated[Kind, typer.Argument(help=t("cli.arg.kind"))],
    source: Annotated[str, typer.Argument(help=t("cli.arg.source"))],
    sheet: SheetOpt = None,
    table: Annotated[Optional[str], typer.Option(help=t("cli.opt.table"))] = None,
    query: Annotated[Optional[str], typer.Option(help=t("cli.opt.query"))] = None,
    encoding: Annotated[Optional[str], typer.Option(help=t("cli.opt.encoding"))] = None,
    delimiter: Annotated[Optional[str], typer.Option(help=t("cli.opt.delimiter"))] = None,
    map_: MapOpt = None,
    dayfirst: DayfirstOpt = None,
    keep_duplicates: KeepDupOpt = None,
    drop_flag: DropFlagOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help=t("cli.opt.replace"))] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    bar = _progress(fmt)
    kwargs = dict(table=table, query=query, sheet=_sheet(sheet), encoding=encoding,
                  delimiter=_parse_delimiter(delimiter), mapping=map_ or (), dayfirst=dayfirst,
                  keep_duplicates=keep_duplicates, drop_flags=drop_flag or None, replace=replace)
    if bar:
        with bar:
            result = ws.ingest(kind.value, source, progress=bar, **kwargs)
    else:
        result = ws.ingest(kind.value, source, **kwargs)
    data = result.to_dict()
    if fmt == Format.json:
        _print_json(data)
    else:
        _show_ingest(data)


@app.command(help=t("cli.clean.help"))
@handle_errors
def clean(
    source: Annotated[Optional[list[int]], typer.Option("--source", help=t("cli.opt.source_id"))] = None,
    dayfirst: DayfirstOpt = None,
    keep_duplicates: KeepDupOpt = None,
    drop_flag: DropFlagOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    done = ws.clean(source_ids=source, dayfirst=dayfirst, keep_duplicates=keep_duplicates,
                    drop_flags=drop_flag)
    if fmt == Format.json:
        _print_json({"sources": done})
        return
    for item in done:
        out.print(t("cli.clean.done", source_id=item["source_id"], kind=item["kind"],
                    read=_n(item["rows_read"]), loaded=_n(item["rows_loaded"]),
                    rejected=_n(item["rows_rejected"])))


@app.command(help=t("cli.quality.help"))
@handle_errors
def quality(
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    summary = _workspace(workspace).quality()
    if fmt == Format.json:
        _print_json(summary)
        return
    from crmlens.cli_quality import print_quality

    print_quality(out, summary)


@app.command(help=t("cli.report.help"))
@handle_errors
def report(
    lang: LangOpt = None,
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help=t("cli.opt.report_out"))] = None,
    title: Annotated[Optional[str], typer.Option(help=t("cli.opt.title"))] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    debug: DebugOpt = False,
) -> None:
    path = _workspace(workspace).report(lang=(lang.value if lang else "en"), out=output,
                                        title=title)
    if fmt == Format.json:
        _print_json({"report": str(path.resolve())})
    else:
        out.print(t("cli.report.done", path=str(path.resolve())))


def _run_and_show(ws, transactions: str | Path, *, customers, events, langs, fmt: Format,
                  ingest_options: dict[str, Any]) -> dict[str, Any]:
    bar = _progress(fmt)
    if bar:
        with bar:
            summary = ws.run(transactions, customers=customers, events=events, langs=langs,
                             progress=bar, **ingest_options)
    else:
        summary = ws.run(transactions, customers=customers, events=events, langs=langs,
                         **ingest_options)
    data = summary.to_dict()
    if fmt == Format.json:
        _print_json(data)
    else:
        for item in data["ingested"]:
            _show_ingest(item)
        _show_stages(data["stages"])
        for path in data["reports"]:
            out.print(t("cli.report.done", path=path))
    return data


def _show_stages(stages: dict[str, Any]) -> None:
    """One line per analysis stage that ran (what `crmlens run` did after ingest)."""
    feats = stages.get("features")
    if feats:
        out.print(t("cli.run.features", n=_n(feats["customers"]), features=feats["features"],
                    dates=", ".join(feats["as_of"])))
    segs = stages.get("segments") or {}
    if segs.get("rfm"):
        out.print(t("cli.run.rfm", k=segs["rfm"]["segments"], run=segs["rfm"]["run_id"]))
    clusters = segs.get("clusters") or {}
    if clusters.get("skipped"):
        out.print(t("cli.run.clusters_skipped", n=_n(clusters["customers"]),
                    minimum=clusters["minimum"]))
    elif clusters:
        out.print(t("cli.run.clusters", k=clusters["segments"], run=clusters["run_id"]))
    clv = stages.get("clv") or {}
    if clv:
        out.print(t("cli.run.clv_skipped", reason=t(f"cli.run.clv_reason.{clv['skipped']}"))
                  if clv.get("skipped") else t("cli.run.clv", model=clv["model"],
                                               run=clv["run_id"],
                                               customers=f"{clv.get('customers', 0):,}",
                                               total=f"{clv.get('clv_total', 0):,.0f}",
                                               horizon=clv.get("horizon", ""),
                                               unit=t(f"report.clv.unit.{clv.get('unit')}")))
        if "clv.note.no_dropout_detected" in (clv.get("notes") or []):
            out.print(t("cli.run.clv_no_dropout"))
    churn = stages.get("churn") or {}
    if churn:
        out.print(t("cli.run.churn_skipped", reason=churn["skipped"]) if churn.get("skipped")
                  else t("cli.run.churn", run=churn["run_id"],
                         model=t(f"predict.model.{churn['model']}"),
                         auc=f"{churn['roc_auc'] or 0:.3f}",
                         baseline=f"{churn['baseline_roc_auc'] or 0:.3f}",
                         high=_n(churn["high_risk"]), customers=_n(churn["customers"])))
    basket = stages.get("basket") or {}
    if basket:
        out.print(t("cli.run.basket_skipped", n=_n(basket["baskets"]), minimum=basket["minimum"])
                  if basket.get("skipped") == "too_few_baskets" else
                  t("cli.run.basket_failed") if basket.get("skipped") else
                  t("cli.run.basket", rules=_n(basket["rules"]), itemsets=_n(basket["itemsets"]),
                    support=basket["min_support"], run=basket["run_id"]))
    rec = stages.get("recommend") or {}
    if rec:
        if rec.get("skipped"):
            out.print(t("cli.run.recommend_skipped", reason=rec["skipped"]))
        elif rec.get("precision") is not None:
            out.print(t("cli.run.recommend_evaluated", run=rec["run_id"], k=rec["k"],
                        customers=_n(rec["customers"]), precision=f"{rec['precision']:.1%}",
                        baseline=f"{rec['baseline_precision']:.1%}",
                        grade=t(f"recommend.grade.{rec['grade']}")))
        else:
            out.print(t("cli.run.recommend", run=rec["run_id"], grade="–"))


@app.command(help=t("cli.run.help"))
@handle_errors
def run(
    transactions: Annotated[str, typer.Argument(help=t("cli.arg.transactions"))],
    customers: Annotated[Optional[str], typer.Option(help=t("cli.opt.customers"))] = None,
    events: Annotated[Optional[str], typer.Option(help=t("cli.opt.events"))] = None,
    sheet: SheetOpt = None,
    map_: MapOpt = None,
    dayfirst: DayfirstOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    opts = {"mapping": map_ or (), "dayfirst": dayfirst, "sheet": _sheet(sheet)}
    _run_and_show(ws, transactions, customers=customers, events=events,
                  langs=[lang.value if lang else "en"], fmt=fmt, ingest_options=opts)


@app.command(help=t("cli.demo.help"))
@handle_errors
def demo(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help=t("cli.opt.demo_workspace"))] = Path("crmlens-demo"),
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    from crmlens.runner import run_demo

    langs = [lang.value] if lang else ["en", "zh"]
    bar = _progress(fmt)
    if bar:
        with bar:
            data = run_demo(workspace, langs=langs, progress=bar).to_dict()
    else:
        data = run_demo(workspace, langs=langs).to_dict()
    if fmt == Format.json:
        _print_json(data)
        return
    for item in data["ingested"]:
        _show_ingest(item)
    _show_stages(data["stages"])
    out.print(Panel(t("cli.demo.done", path=data["reports"][0], workspace=data["workspace"]),
                    border_style="green"))


@app.command(help=t("cli.generate.help"))
@handle_errors
def generate(
    out_dir: Annotated[Path, typer.Argument(help=t("cli.arg.out_dir"))],
    customers: Annotated[int, typer.Option("--customers", help=t("cli.opt.n_customers"))] = 10_000,
    rows: Annotated[Optional[int], typer.Option("--rows", help=t("cli.opt.n_rows"))] = None,
    products: Annotated[int, typer.Option("--products", help=t("cli.opt.n_products"))] = 2_000,
    seed: Annotated[int, typer.Option(help=t("cli.opt.seed"))] = 0,
    file_format: Annotated[str, typer.Option("--file-format", help=t("cli.opt.file_format"))] = "parquet",
    messy: Annotated[bool, typer.Option("--messy", help=t("cli.opt.messy"))] = False,
    header_lang: Annotated[Lang, typer.Option("--header-lang", help=t("cli.opt.header_lang"))] = Lang.en,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    from dataclasses import asdict

    from crmlens.datasets.generator import generate_dataset

    if file_format not in ("parquet", "csv"):
        raise InputError("error.bad_option", option="--file-format", detail="parquet | csv")
    bar = _progress(fmt)
    kwargs = dict(n_customers=customers, n_transactions=rows, n_products=products, seed=seed,
                  fmt=file_format, messy=messy, header_lang=header_lang.value)
    if bar:
        with bar:
            bar.stage("progress.generating")
            result = generate_dataset(out_dir, progress=lambda d, n: bar.fraction(d / max(n, 1)),
                                      **kwargs)
    else:
        result = generate_dataset(out_dir, **kwargs)
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
    if fmt == Format.json:
        _print_json(data)
    else:
        out.print(t("cli.generate.done", path=str(Path(out_dir).resolve())))
        for key, value in data.items():
            out.print(f"  {key}: {_n(value)}")


@app.command(help=t("cli.runs.help"))
@handle_errors
def runs(
    limit: Annotated[int, typer.Option(help=t("cli.opt.limit"))] = 20,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    items = _workspace(workspace).runs(limit)
    if fmt == Format.json:
        _print_json(items)
        return
    table = Table()
    for key in ("cli.col.run", "cli.col.step", "cli.col.status", "cli.col.started",
                "cli.col.seconds", "cli.col.rows"):
        table.add_column(t(key))
    for r in items:
        counts = r["row_counts"]
        if "read" in counts:
            rows_text = (f"{_n(counts.get('read'))} → {_n(counts.get('loaded'))} + "
                         f"{_n(counts.get('rejected'))}")
        elif "customers" in counts:  # features and segmentations: customers covered
            rows_text = t("cli.runs.customers", n=_n(counts["customers"]))
        else:
            rows_text = ""
        table.add_row(str(r["run_id"]), r["step"], r["status"], r["started_at"][:19],
                      f"{r['seconds']:.2f}", rows_text)
    out.print(table)


@app.command(help=t("cli.status.help"))
@handle_errors
def status(
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    info = _workspace(workspace).status()
    if fmt == Format.json:
        _print_json(info)
        return
    out.print(t("cli.status.workspace", path=info["workspace"]))
    table = Table(title=t("cli.status.tables"), title_justify="left")
    table.add_column(t("cli.col.table"))
    table.add_column(t("cli.col.rows"), justify="right")
    for name, n in info["tables"].items():
        table.add_row(name, _n(n))
    out.print(table)
    src = Table(title=t("cli.status.sources"), title_justify="left")
    for key in ("cli.col.source", "cli.col.kind", "cli.col.name", "cli.rows_read",
                "cli.rows_loaded", "cli.rows_rejected"):
        src.add_column(t(key))
    for s in info["sources"]:
        src.add_row(str(s["source_id"]), s["kind"], s["name"], _n(s["rows_read"]),
                    _n(s["rows_loaded"]), _n(s["rows_rejected"]))
    out.print(src)


# Commands defined in their own modules register themselves on `app` when imported.
from crmlens import cli_basket  # noqa: E402,F401
from crmlens import cli_churn  # noqa: E402,F401
from crmlens import cli_clv  # noqa: E402,F401
from crmlens import cli_features  # noqa: E402,F401
from crmlens import cli_recommend  # noqa: E402,F401
from crmlens import cli_segment  # noqa: E402,F401


def main() -> None:
    """Entry point of the ``crmlens`` script."""
    app()


if __name__ == "__main__":
    main()
