"""``crmlens churn ...``: train, score, evaluate and show churn (or response) models."""

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
from crmlens.i18n import t

churn_app = typer.Typer(help=t("cli.churn.help"), no_args_is_help=True,
                        rich_markup_mode="rich")
app.add_typer(churn_app, name="churn")

RunOpt = Annotated[Optional[str], typer.Option("--run", help=t("cli.churn.opt.run"),
                                               show_default=False)]


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pct(x: Any) -> str:
    return "–" if x is None else f"{x:.1%}"


def model_label(name: str) -> str:
    """A family's readable name (the baseline's too)."""
    return t(f"predict.model.{name}")


def print_models(console: Console, data: dict[str, Any]) -> None:
    """The comparison table: best marked, the baseline last, then the grade."""
    table = Table(title=t("cli.churn.models_title", target=data["target"]),
                  title_justify="left")
    # The columns that fit an 80-column terminal without cutting numbers; log loss, capture,
    # precision and recall are in --format json and the report.
    wide = console.width >= 120
    keys = (("model", "roc_auc", "pr_auc", "log_loss", "brier", "lift", "capture", "precision",
             "recall", "f1", "seconds") if wide else
            ("model", "roc_auc", "pr_auc", "brier", "lift", "f1", "seconds"))
    for key in keys:
        if key == "model":
            table.add_column(t("cli.churn.col.model"), overflow="fold", ratio=1)
        else:
            table.add_column(t(f"cli.churn.col.{key}"), justify="right", no_wrap=True)
    for r in data["models"]:
        mark = " ◀" if r.get("is_best") else ""
        if r.get("error"):
            table.add_row(model_label(r["model"]) + mark, *(["–"] * (len(keys) - 2)),
                          str(r["error"])[:40])
            continue
        cells = {"roc_auc": _num(r.get("roc_auc")), "pr_auc": _num(r.get("pr_auc")),
                 "log_loss": _num(r.get("log_loss")), "brier": _num(r.get("brier")),
                 "lift": _num(r.get("lift_top_decile"), 2),
                 "capture": _pct(r.get("capture_top_decile")),
                 "precision": _pct(r.get("precision")), "recall": _pct(r.get("recall")),
                 "f1": _num(r.get("f1")), "seconds": _num(r.get("fit_seconds"), 1)}
        table.add_row(model_label(r["model"]) + mark, *(cells[k] for k in keys[1:]))
    console.print(table)
    if data.get("grade"):
        aucs = {("best" if r.get("is_best") else "baseline"): r.get("roc_auc")
                for r in data["models"] if r.get("is_best") or r.get("is_baseline")}
        console.print(t(f"predict.grade.{data['grade']}", best=_num(aucs.get("best")),
                        baseline=_num(aucs.get("baseline"))))
    for w in data.get("leakage") or []:
        console.print("[yellow]⚠[/yellow] " + t(w.get("message_key", "predict.leakage.warning"),
                                                feature=w["feature"], auc=_num(w.get("auc")),
                                                others_auc=_num(w.get("others_auc"))),
                      markup=True, highlight=False)


def print_importance(console: Console, data: dict[str, Any], top: int = 10) -> None:
    """The most important features (permutation importance on held-out rows)."""
    labels = {f["name"]: f["label"] for f in data.get("features") or []}
    table = Table(title=t("cli.churn.importance_title"), title_justify="left")
    for key in ("feature", "importance"):
        table.add_column(t(f"cli.churn.col.{key}"),
                         justify="left" if key == "feature" else "right")
    for r in data["importance"][:top]:
        table.add_row(labels.get(r["feature"], r["feature"]), _num(r["importance"], 4))
    console.print(table)


def factor_lines(factors: list[dict[str, Any]], labels: dict[str, str]) -> list[str]:
    """Each factor in plain words (the current language)."""
    from crmlens.predict.explain import describe_factor

    return [describe_factor(labels.get(f["feature"], f["feature"]), f["value"],
                            f["reference"], float(f["effect"] or 0.0)) for f in factors]


def print_at_risk(console: Console, data: dict[str, Any]) -> None:
    """Band counts and the riskiest customers with their top factors."""
    bands = data.get("bands") or {}
    console.print(t("cli.churn.bands", high=f"{bands.get('high', 0):,}",
                    medium=f"{bands.get('medium', 0):,}", low=f"{bands.get('low', 0):,}"))
    labels = {f["name"]: f["label"] for f in data.get("features") or []}
    table = Table(title=t("cli.churn.at_risk_title"), title_justify="left")
    for key in ("customer", "probability", "band", "clv", "why"):
        table.add_column(t(f"cli.churn.col.{key}"),
                         justify="right" if key in ("probability", "clv") else "left")
    for r in data.get("at_risk") or []:
        why = "\n".join(factor_lines([f for f in r["factors"] if (f["effect"] or 0) > 0][:2],
                                     labels))
        table.add_row(str(r["customer_id"]), _pct(r["probability"]),
                      t(f"predict.band.{r['risk_band']}"),
                      "–" if r.get("clv") is None else f"{r['clv']:,.0f}", why)
    console.print(table)


def _with_progress(fmt: Format, call, **kwargs):
    bar = _progress(fmt)
    if bar:
        with bar:
            return call(progress=bar, **kwargs)
    return call(**kwargs)


def _emit(ws, run_id: Any, fmt: Format) -> None:
    evaluation = ws.churn_evaluate(run_id)
    shown = ws.churn_show(run_id)
    if fmt == Format.json:
        _print_json({**evaluation, "bands": shown["bands"], "at_risk": shown["at_risk"]})
        return
    out.print(t("cli.churn.saved", run=shown["run_id"], model=model_label(shown["best_model"]),
                n=f"{shown['n_scored']:,}", target=shown["target"],
                as_of=shown.get("as_of") or "–"))
    print_models(out, evaluation)
    print_importance(out, evaluation)
    print_at_risk(out, shown)


def _split(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


@churn_app.command("train", help=t("cli.churn.train.help"))
@handle_errors
def train(
    target: Annotated[str, typer.Option("--target", help=t("cli.churn.opt.target"))] = "churn",
    window: Annotated[int, typer.Option("--window", help=t("cli.churn.opt.window"))] = 90,
    step: Annotated[int, typer.Option("--step", help=t("cli.churn.opt.step"))] = 30,
    cutoffs: Annotated[int, typer.Option("--cutoffs", help=t("cli.churn.opt.cutoffs"))] = 6,
    label: Annotated[Optional[str], typer.Option("--label", help=t("cli.churn.opt.label"),
                                                 show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option("--data", help=t("cli.churn.opt.data"),
                                                show_default=False)] = None,
    positive: Annotated[Optional[str], typer.Option("--positive",
                                                    help=t("cli.churn.opt.positive"),
                                                    show_default=False)] = None,
    id_column: Annotated[Optional[str], typer.Option("--id-column",
                                                     help=t("cli.churn.opt.id_column"),
                                                     show_default=False)] = None,
    exclude: Annotated[Optional[str], typer.Option("--exclude", help=t("cli.churn.opt.exclude"),
                                                   show_default=False)] = None,
    models: Annotated[Optional[str], typer.Option("--models", help=t("cli.churn.opt.models"),
                                                  show_default=False)] = None,
    time_budget: Annotated[float, typer.Option("--time-budget",
                                               help=t("cli.churn.opt.time_budget"))] = 120.0,
    no_search: Annotated[bool, typer.Option("--no-search", help=t("cli.churn.opt.no_search"))
                         ] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    result = _with_progress(fmt, ws.churn_train, target=target, window_days=window,
                            step_days=step, n_cutoffs=cutoffs, label=label, source=data,
                            positive=positive, id_column=id_column,
                            exclude=_split(exclude) or (), models=_split(models),
                            time_budget=time_budget, search=not no_search)
    _emit(ws, result.run_id, fmt)


@churn_app.command("score", help=t("cli.churn.score.help"))
@handle_errors
def score(
    run: RunOpt = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help=t("cli.churn.opt.as_of"),
                                                 show_default=False)] = None,
    customer: Annotated[Optional[str], typer.Option("--customer",
                                                    help=t("cli.churn.opt.customer"),
                                                    show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    if customer is not None:
        # A CRM asking about one customer reads the stored scores: no refit, no new run.
        data = ws.churn_customer(customer, run=run)
        if fmt == Format.json:
            _print_json(data)
            return
        labels = {f["name"]: f["label"] for f in data.get("features") or []}
        out.print(t("cli.churn.customer", customer=customer, p=_pct(data["probability"]),
                    band=t(f"predict.band.{data['risk_band']}"), rank=f"{data['risk_rank']:,}"))
        for line in factor_lines(data["factors"], labels):
            out.print(f"  • {line}", markup=False)
        return
    shown = _with_progress(fmt, ws.churn_score, run=run, as_of=as_of)
    if fmt == Format.json:
        _print_json(shown)
        return
    out.print(t("cli.churn.scored", run=shown["run_id"], n=f"{shown['n_scored']:,}",
                as_of=shown.get("as_of") or "–", fitted=shown.get("fitted_in") or "–"))
    print_at_risk(out, shown)


@churn_app.command("evaluate", help=t("cli.churn.evaluate.help"))
@handle_errors
def evaluate(
    run: RunOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    data = ws.churn_evaluate(run)
    if fmt == Format.json:
        _print_json(data)
        return
    print_models(out, data)
    print_importance(out, data)


@churn_app.command("show", help=t("cli.churn.show.help"))
@handle_errors
def show(
    run: RunOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    _emit(_workspace(workspace), run, fmt)
