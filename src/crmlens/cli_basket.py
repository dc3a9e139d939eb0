"""``crmlens basket ...``: frequent itemsets, association rules, and stored basket runs."""

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
from crmlens.errors import InputError
from crmlens.i18n import t

basket_app = typer.Typer(help=t("cli.basket.help"), no_args_is_help=True,
                         rich_markup_mode="rich")
app.add_typer(basket_app, name="basket")

MinSupportOpt = Annotated[str, typer.Option("--min-support", help=t("cli.basket.opt.min_support"))]
MaxLenOpt = Annotated[Optional[int], typer.Option("--max-len", help=t("cli.basket.opt.max_len"),
                                                  show_default=False)]
AlgorithmOpt = Annotated[str, typer.Option("--algorithm", help=t("cli.basket.opt.algorithm"))]
BasketOpt = Annotated[str, typer.Option("--basket", help=t("cli.basket.opt.basket"))]
ItemOpt = Annotated[str, typer.Option("--item", help=t("cli.basket.opt.item"))]
SegmentRunOpt = Annotated[Optional[str], typer.Option("--segment-run",
                                                      help=t("cli.basket.opt.segment_run"),
                                                      show_default=False)]
MaxBasketOpt = Annotated[Optional[int], typer.Option("--max-basket-size",
                                                     help=t("cli.basket.opt.max_basket_size"),
                                                     show_default=False)]
TopOpt = Annotated[int, typer.Option("--top", help=t("cli.basket.opt.top"))]


def parse_support(text: str) -> float | int:
    """``0.01`` (a fraction of baskets) or ``25`` (a count of baskets)."""
    value = text.strip()
    try:
        if value.isdigit():
            return int(value)
        return float(value)
    except ValueError:
        raise InputError("error.basket_bad_option", option="--min-support", value=text,
                         expected=t("cli.basket.support_expected")) from None


def _list(items: Any) -> str:
    return ", ".join(str(x) for x in items or [])


def _names(ids: Any, names: Any) -> str:
    """Item names where known, else ids."""
    return ", ".join((n or i) for i, n in zip(ids or [], names or [], strict=False))


def _metric(value: Any, digits: int = 3) -> str:
    return "∞" if value is None else f"{value:.{digits}f}"


def _support(value: float | None) -> str:
    """A stored support: a count (``5``) or a fraction (``0.01``)."""
    if value is None:
        return "–"
    return str(int(value)) if value >= 1 else f"{value:g}"


def print_basket(console: Console, data: dict[str, Any]) -> None:
    """A stored basket run as text: headline, itemsets by length, top itemsets and rules."""
    console.print(t("cli.basket.saved", run=data["run_id"], baskets=f"{data['n_baskets']:,}",
                    basket=data["basket"], items=f"{data['n_items']:,}",
                    itemsets=f"{data['n_itemsets']:,}", rules=f"{data['n_rules']:,}",
                    support=_support(data["min_support"]), count=data["min_count"],
                    algorithm=data["algorithm"]))
    dropped = (data.get("params") or {}).get("n_dropped_large") or 0
    if dropped:
        console.print(t("cli.basket.dropped_large", n=f"{dropped:,}"))
    if data.get("segment"):
        console.print(t("cli.basket.segment_shown", segment=data["segment"]))
    if data["itemsets_by_length"]:
        console.print(t("cli.basket.by_length", lengths=", ".join(
            f"{r['length']}: {r['itemsets']:,}" for r in data["itemsets_by_length"])))
    if data["rules"]:
        table = Table(title=t("cli.basket.rules_title", n=len(data["rules"])),
                      title_justify="left")
        for key in ("antecedent", "consequent", "support", "confidence", "lift", "leverage",
                    "conviction", "zhang", "count"):
            table.add_column(t(f"cli.basket.col.{key}"),
                             justify="left" if key in ("antecedent", "consequent") else "right")
        for r in data["rules"]:
            table.add_row(_names(r["antecedent"], r["antecedent_names"]),
                          _names(r["consequent"], r["consequent_names"]),
                          _metric(r["support"], 4), _metric(r["confidence"]),
                          _metric(r["lift"], 2), _metric(r["leverage"], 4),
                          _metric(r["conviction"], 2),
                          "–" if r["zhang"] is None else _metric(r["zhang"]),
                          f"{r['count']:,}")
        console.print(table)
    elif data["itemsets"]:
        table = Table(title=t("cli.basket.itemsets_title", n=len(data["itemsets"])),
                      title_justify="left")
        for key in ("itemset", "names", "count", "support"):
            table.add_column(t(f"cli.basket.col.{key}"),
                             justify="right" if key in ("count", "support") else "left")
        for r in data["itemsets"]:
            table.add_row(_list(r["itemset"]), _list(r["names"]), f"{r['count']:,}",
                          _metric(r["support"], 4))
        console.print(table)
    else:
        console.print(t("cli.basket.nothing_found"))
    if data["segments"]:
        table = Table(title=t("cli.basket.segments_title"), title_justify="left")
        for key in ("segment", "baskets", "itemsets", "rules"):
            table.add_column(t(f"cli.basket.col.{key}"),
                             justify="left" if key == "segment" else "right")
        for s in data["segments"]:
            skipped = t("cli.basket.segment_skipped") if s.get("skipped") else None
            table.add_row(s["segment"], f"{s['baskets']:,}",
                          skipped or f"{s.get('n_itemsets', 0):,}",
                          "" if skipped else f"{s.get('n_rules', 0):,}")
        console.print(table)


def _run(fmt: Format, call, top: int, **kwargs) -> None:
    bar = _progress(fmt)
    if bar:
        with bar:
            result = call(progress=bar, **kwargs)
    else:
        result = call(**kwargs)
    ws = call.__self__
    data = ws.basket_show(result.run_id, top=top)
    if fmt == Format.json:
        _print_json(data)
    else:
        print_basket(out, data)


@basket_app.command("itemsets", help=t("cli.basket.itemsets.help"))
@handle_errors
def itemsets(
    min_support: MinSupportOpt = "0.01",
    max_len: MaxLenOpt = None,
    algorithm: AlgorithmOpt = "eclat",
    kind: Annotated[str, typer.Option("--kind", help=t("cli.basket.opt.kind"))] = "all",
    basket: BasketOpt = "order",
    item: ItemOpt = "product",
    segment_run: SegmentRunOpt = None,
    max_basket_size: MaxBasketOpt = None,
    top: TopOpt = 20,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    _run(fmt, ws.basket_itemsets, top, min_support=parse_support(min_support),
         max_len=max_len, algorithm=algorithm, kind=kind, basket=basket, item=item,
         segment_run=segment_run, max_basket_size=max_basket_size)


@basket_app.command("rules", help=t("cli.basket.rules.help"))
@handle_errors
def rules(
    min_support: MinSupportOpt = "0.01",
    max_len: MaxLenOpt = None,
    algorithm: AlgorithmOpt = "eclat",
    min_confidence: Annotated[str, typer.Option(
        "--min-confidence", help=t("cli.basket.opt.min_confidence"))] = "0.3",
    min_lift: Annotated[Optional[str], typer.Option(
        "--min-lift", help=t("cli.basket.opt.min_lift"), show_default=False)] = None,
    min_leverage: Annotated[Optional[str], typer.Option(
        "--min-leverage", help=t("cli.basket.opt.min_leverage"), show_default=False)] = None,
    min_conviction: Annotated[Optional[str], typer.Option(
        "--min-conviction", help=t("cli.basket.opt.min_conviction"),
        show_default=False)] = None,
    min_zhang: Annotated[Optional[str], typer.Option(
        "--min-zhang", help=t("cli.basket.opt.min_zhang"), show_default=False)] = None,
    prune: Annotated[bool, typer.Option("--prune-redundant",
                                        help=t("cli.basket.opt.prune"))] = False,
    max_consequent_len: Annotated[Optional[int], typer.Option(
        "--max-consequent-len", help=t("cli.basket.opt.max_consequent_len"),
        show_default=False)] = None,
    basket: BasketOpt = "order",
    item: ItemOpt = "product",
    segment_run: SegmentRunOpt = None,
    max_basket_size: MaxBasketOpt = None,
    top: TopOpt = 20,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    ws = _workspace(workspace)
    # Thresholds stay text: the rules compare them as exact decimals.
    _run(fmt, ws.basket_rules, top, min_support=parse_support(min_support), max_len=max_len,
         algorithm=algorithm, min_confidence=min_confidence, min_lift=min_lift,
         min_leverage=min_leverage, min_conviction=min_conviction, min_zhang=min_zhang,
         prune_redundant=prune, max_consequent_len=max_consequent_len, basket=basket,
         item=item, segment_run=segment_run, max_basket_size=max_basket_size)


@basket_app.command("show", help=t("cli.basket.show.help"))
@handle_errors
def show(
    run: Annotated[Optional[str], typer.Argument(help=t("cli.basket.arg.run"),
                                                 show_default=False)] = None,
    segment: Annotated[Optional[str], typer.Option("--segment",
                                                   help=t("cli.basket.opt.segment"),
                                                   show_default=False)] = None,
    top: TopOpt = 20,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.text,
    lang: LangOpt = None,
    debug: DebugOpt = False,
) -> None:
    data = _workspace(workspace).basket_show(run, segment=segment, top=top)
    if fmt == Format.json:
        _print_json(data)
    else:
        print_basket(out, data)
