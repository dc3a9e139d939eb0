"""``crmlens recommend``: recommend products per customer, show one customer's, evaluate."""

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


def _pct(x: Any) -> str:
    return "–" if x is None else f"{x:.1%}"


def _items(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def print_recommendations(console: Console, rows: list[dict[str, Any]], title: str) -> None:
    """Recommendations as a table: customer, rank, product, score, reason."""
    table = Table(title=title, title_justify="left")
    for key in ("customer", "rank", "product", "score", "reason"):
        table.add_column(t(f"cli.recommend.col.{key}"),
                         justify="right" if key in ("rank", "score") else "left")
    for r in rows:
        name = r.get("product_name") or ""
        table.add_row(str(r["customer_id"]), str(r["rank"]),
                      f"{r['product_id']} {name}".strip(), f"{r['score']:.3f}",
                      t(r["reason_key"], item=r.get("reason_item_name") or r.get("reason_item")
                        or ""))
    console.print(table)


def print_evaluation(console: Console, data: dict[str, Any]) -> None:
    """Metrics per method next to the popularity baseline, with the grade."""
    rows = data.get("evaluation") or []
    if not rows:
        return
    metrics = data.get("metrics") or {}
    table = Table(title=t("cli.recommend.eval_title", k=rows[0]["k"],
                          test_start=metrics.get("test_start", "–"),
                          validation_start=metrics.get("validation_start", "–")),
                  title_justify="left")
    for key in ("method", "precision", "recall", "hit_rate", "coverage", "grade"):
        table.add_column(t(f"cli.recommend.col.{key}"),
                         justify="left" if key in ("method", "grade") else "right")
    for r in rows:
        table.add_row(t(f"recommend.method.{r['method']}"), _pct(r["precision"]),
                      _pct(r["recall"]), _pct(r["hit_rate"]), _pct(r["coverage"]),
                      t(f"recommend.grade.{r['grade']}"))
    base = metrics.get("baseline") or {}
    if base:
        table.add_row(t("recommend.method.baseline"), _pct(base.get("precision")),
                      _pct(base.get("recall")), _pct(base.get("hit_rate")),
                      _pct(base.get("coverage")), "")
    console.print(table)


def _stored_run(ws, wanted: dict) -> dict | None:
    """The current run when it was made with these settings (and at least k items), else None."""
    from crmlens.errors import InputError

    try:
        run = ws.recommend_show()
    except InputError:
        return None
    params = run.get("params") or {}
    same = (run.get("method") == wanted["method"] and int(run.get("k") or 0) >= wanted["k"]
            and not wanted["evaluate"] and not wanted["exclude"] and not wanted["include"]
            and not params.get("exclude") and not params.get("include")
            and bool(params.get("allow_repeats", False)) == wanted["allow_repeats"])
    return run if same else None


@app.command("recommend", help=t("cli.recommend.help"))
@handle_errors
def recommend(
    customer: Annotated[Optional[str], typer.Option("--customer",
                                                    help=t("cli.recommend.opt.customer"),
                                                    show_default=False)] = None,
    k: Annotated[int, typer.Option("--k", help=t("cli.recommend.opt.k"))] = 10,
    method: Annotated[str, typer.Option("--method", help=t("cli.recommend.opt.method"))
                      ] = "hybrid",
    allow_repeats: Annotated[bool, typer.Option("--allow-repeats",
                                                help=t("cli.recommend.opt.allow_repeats"))
                             ] = False,
    exclude: Annotated[Optional[str], typer.Option("--exclude",
                                                   help=t("cli.recommend.opt.exclude"),
                                                   show_default=False)] = None,
    only: Annotated[Optional[str], typer.Option("--only", help=t("cli.recommend.opt.only"),
                                                show_default=False)] = None,
    evaluate: Annotated[bool, typer.Option("--evaluate", help=t("cli.recommend.opt.evaluate"))
                        ] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help=t("cli.recommend.opt.refresh"))
                       ] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    kwargs = dict(method=method, k=k, allow_repeats=allow_repeats, exclude=_items(exclude),
                  include=_items(only), evaluate=evaluate)
    if customer is not None and not refresh:
        stored = _stored_run(ws, kwargs)
        if stored is not None:
            # A CRM asking for one customer reads the stored run: no refit, no new run.
            rows = ws.recommend_for(customer, run=stored["run_id"])[:k]
            if fmt == Format.json:
                _print_json({"run_id": stored["run_id"], "customer_id": customer,
                             "recommendations": rows})
                return
            print_recommendations(out, rows, t("cli.recommend.customer_title",
                                               customer=customer))
            return
    bar = _progress(fmt)
    if bar:
        with bar:
            data = ws.recommend(progress=bar, **kwargs)
    else:
        data = ws.recommend(**kwargs)
    if customer is not None:
        rows = ws.recommend_for(customer, run=data["run_id"])
        if fmt == Format.json:
            _print_json({"run_id": data["run_id"], "customer_id": customer,
                         "recommendations": rows, "evaluation": data["evaluation"]})
            return
        print_recommendations(out, rows, t("cli.recommend.customer_title", customer=customer))
        print_evaluation(out, data)
        return
    if fmt == Format.json:
        _print_json(data)
        return
    out.print(t("cli.recommend.saved", run=data["run_id"],
                method=t(f"recommend.method.{data['method']}"), k=data["k"],
                n=f"{data['n_customers']:,}"))
    print_recommendations(out, data["examples"], t("cli.recommend.sample_title"))
    print_evaluation(out, data)
