"""``crmlens clv ...``: fit, re-score, validate and show customer-lifetime-value models."""

from __future__ import annotations

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
    _progress,
    _workspace,
    app,
    handle_errors,
    out,
)
from crmlens.i18n import get_language, t

clv_app = typer.Typer(help=t("cli.clv.help"), no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(clv_app, name="clv")

ModelOpt = Annotated[str, typer.Option("--model", help=t("cli.clv.opt.model"))]
UnitOpt = Annotated[str, typer.Option("--unit", help=t("cli.clv.opt.unit"))]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help=t("cli.clv.opt.as_of"),
                                                show_default=False)]
DiscountOpt = Annotated[Optional[float], typer.Option("--discount-rate",
                                                      help=t("cli.clv.opt.discount_rate"),
                                                      show_default=False)]
MarginOpt = Annotated[Optional[float], typer.Option("--margin", help=t("cli.clv.opt.margin"),
                                                    show_default=False)]
PeriodOpt = Annotated[Optional[float], typer.Option("--period-length",
                                                    help=t("cli.clv.opt.period_length"),
                                                    show_default=False)]
PenalizerOpt = Annotated[float, typer.Option("--penalizer", help=t("cli.clv.opt.penalizer"))]
RunArg = Annotated[Optional[str], typer.Argument(help=t("cli.clv.arg.run"), show_default=False)]


def _num(x: Any, digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _sig(x: Any) -> str:
    return "–" if x is None else f"{x:.4g}"


def print_clv(console: Console, data: dict[str, Any]) -> None:
    """A stored CLV run as text: headline, notes, parameters with SEs, tiers, comparison."""
    console.print(t("cli.clv.saved", run=data["run_id"], model=data["purchase_model"],
                    n=f"{data['n_customers']:,}", end=data["observation_end"],
                    horizon=data["horizon"], unit=data["unit"],
                    total=_num(data["clv_total"], 0)))
    console.print(t("cli.clv.one_time", share=f"{data['one_time_share'] or 0:.1%}"))
    console.print(f"  [dim]{data['one_time_text']}[/dim]")
    for text in data["notes_text"]:
        console.print(f"  • {text}", markup=False)
    params = Table(title=t("cli.clv.params"), title_justify="left")
    for key in ("model", "parameter", "value", "se"):
        params.add_column(t(f"cli.clv.col.{key}"), justify="right" if key in ("value", "se")
                          else "left")
    for label, rows in ((data["purchase_model"], data["parameters"]),
                        (data["spend_model"] or "", data["spend_parameters"])):
        for p in rows:
            params.add_row(label, p["name"], _sig(p["value"]), _sig(p["se"]))
    console.print(params)
    console.print(t("cli.clv.fit_stats", ll=_num(data["log_likelihood"]), aic=_num(data["aic"]),
                    bic=_num(data["bic"])))
    tiers = Table(title=t("cli.clv.tiers"), title_justify="left")
    for key in ("tier", "customers", "share", "clv_total", "clv_share", "clv_mean",
                "p_alive", "expected_purchases", "p_purchase"):
        tiers.add_column(t(f"cli.clv.col.{key}"), justify="left" if key == "tier" else "right")
    for row in data["tiers"]:
        tiers.add_row(t(f"clv.tier.{row['tier']}"), f"{row['customers']:,}",
                      f"{row['share']:.1%}", _num(row["clv_total"], 0),
                      f"{row['clv_share'] or 0:.1%}", _num(row["clv_mean"]),
                      _num(row["p_alive_mean"], 3), _num(row["expected_purchases_mean"]),
                      _num(row["p_purchase_mean"], 3))
    console.print(tiers)
    if data.get("comparison"):
        print_comparison(console, data["comparison"])


def print_comparison(console: Console, rows: list[dict[str, Any]]) -> None:
    """The holdout comparison of purchase models (best marked)."""
    table = Table(title=t("cli.clv.comparison"), title_justify="left")
    for key in ("model", "log_likelihood", "bic", "mae", "rmse", "baseline_mae", "grade"):
        table.add_column(t(f"cli.clv.col.{key}"), justify="left" if key == "model" else "right")
    for r in rows:
        mark = " ◀" if r.get("is_best") else ""
        table.add_row(r["model"] + mark, _num(r.get("log_likelihood")), _num(r.get("bic")),
                      _num(r.get("mae"), 3), _num(r.get("rmse"), 3),
                      _num(r.get("baseline_mae"), 3),
                      r.get("grade") or (r.get("error") or "–")[:60])
    console.print(table)


def _with_progress(fmt: Format, call, **kwargs):
    bar = _progress(fmt)
    if bar:
        with bar:
            return call(progress=bar, **kwargs)
    return call(**kwargs)


def _emit(ws, run_id: Any, fmt: Format) -> None:
    data = ws.clv_show(run_id, lang=get_language())
    if fmt == Format.json:
        _print_json(data)
    else:
        print_clv(out, data)


@clv_app.command("fit", help=t("cli.clv.fit.help"))
@handle_errors
def fit(
    model: ModelOpt = "auto",
    unit: UnitOpt = "weeks",
    as_of: AsOfOpt = None,
    horizon: Annotated[int, typer.Option("--horizon", help=t("cli.clv.opt.horizon"))] = 52,
    period_length: PeriodOpt = None,
    discount_rate: DiscountOpt = None,
    margin: MarginOpt = None,
    penalizer: PenalizerOpt = 0.0,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    result = _with_progress(fmt, ws.clv_fit, model=model, unit=unit, as_of=as_of,
                            horizon=horizon, period_length=period_length,
                            discount_rate=0.0 if discount_rate is None else discount_rate,
                            margin=1.0 if margin is None else margin,
                            penalizer_coef=penalizer)
    _emit(ws, result.run_id, fmt)


@clv_app.command("predict", help=t("cli.clv.predict.help"))
@handle_errors
def predict(
    run: Annotated[Optional[str], typer.Option("--run", help=t("cli.clv.opt.run"),
                                               show_default=False)] = None,
    as_of: AsOfOpt = None,
    horizon: Annotated[Optional[int], typer.Option("--horizon", help=t("cli.clv.opt.horizon"),
                                                   show_default=False)] = None,
    period_length: PeriodOpt = None,
    discount_rate: DiscountOpt = None,
    margin: MarginOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    result = _with_progress(fmt, ws.clv_predict, run=run, as_of=as_of, horizon=horizon,
                            period_length=period_length, discount_rate=discount_rate,
                            margin=margin)
    _emit(ws, result.run_id, fmt)


@clv_app.command("validate", help=t("cli.clv.validate.help"))
@handle_errors
def validate(
    model: Annotated[Optional[list[str]], typer.Option("--model", help=t("cli.clv.opt.models"),
                                                       show_default=False)] = None,
    unit: UnitOpt = "weeks",
    as_of: AsOfOpt = None,
    horizon: Annotated[int, typer.Option("--horizon", help=t("cli.clv.opt.holdout"))] = 52,
    calibration_end: Annotated[Optional[str], typer.Option(
        "--calibration-end", help=t("cli.clv.opt.calibration_end"), show_default=False)] = None,
    penalizer: PenalizerOpt = 0.0,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    data = _with_progress(fmt, ws.clv_validate, unit=unit, as_of=as_of, horizon=horizon,
                          calibration_end=calibration_end, models=model or None,
                          penalizer_coef=penalizer)
    if fmt == Format.json:
        _print_json(data)
        return
    out.print(t("cli.clv.validated", run=data["run_id"], cal=data["calibration_end"],
                end=data["observation_end"], best=data["best"]))
    print_comparison(out, data["models"])


@clv_app.command("show", help=t("cli.clv.show.help"))
@handle_errors
def show(
    run: RunArg = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    _emit(_workspace(workspace), run, fmt)
