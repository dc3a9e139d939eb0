"""The ``crmlens features`` command: compute, store and summarise customer features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from crmlens.cli import (
    DebugOpt, Format, FormatOpt, LangOpt, WorkspaceOpt, _print_json, _progress, _workspace, app,
    handle_errors, out,
)
from crmlens.i18n import t


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_features(console: Console, data: dict[str, Any]) -> None:
    """The as-of date, the customer count and one summary line per feature."""
    console.print(t("cli.features.done", as_of=data["as_of"], n=f"{data['n_customers']:,}",
                    columns=len(data["columns"]), seconds=f"{data['seconds']:.1f}"))
    table = Table(title=t("cli.features.summary"), title_justify="left")
    table.add_column(t("cli.features.col.feature"))
    table.add_column(t("cli.features.col.unit"))
    for key in ("mean", "median", "min", "max", "missing"):
        table.add_column(t(f"cli.features.col.{key}"), justify="right")
    for row in data["summary"]:
        if row["missing_share"] == 1:
            continue  # e.g. attributes without a customers table: nothing to show
        missing = f"{row['missing_share']:.0%}"
        if row["kind"] == "categorical":
            mode = t("cli.features.mode", value=_num(row.get("mode")))
            table.add_row(row["label"], row["unit"], mode, "", "", "", missing)
        else:
            table.add_row(row["label"], row["unit"], _num(row["mean"]), _num(row["median"]),
                          _num(row["min"]), _num(row["max"]), missing)
    console.print(table)


@app.command(help=t("cli.features.help"))
@handle_errors
def features(
    as_of: Annotated[Optional[str], typer.Option("--as-of", help=t("cli.features.opt.as_of"),
                                                 show_default=False)] = None,
    show_sql: Annotated[bool, typer.Option("--show-sql",
                                           help=t("cli.features.opt.show_sql"))] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    code = lang.value if lang else "en"
    if show_sql:
        from crmlens.features import feature_sql
        from crmlens.features._compute import parse_as_of

        day = parse_as_of(as_of)
        with ws.reader() as con:
            sql = feature_sql(con, as_of=day)
        if fmt == Format.json:
            _print_json({"sql": sql})
        else:
            out.print(sql, markup=False, highlight=False)
        return
    bar = _progress(fmt)
    if bar:
        with bar:
            result = ws.features(as_of=as_of, lang=code, progress=bar)
    else:
        result = ws.features(as_of=as_of, lang=code)
    data = result.to_dict(code)
    data["workspace"] = str(Path(ws.path).resolve())
    if fmt == Format.json:
        _print_json(data)
    else:
        print_features(out, data)
