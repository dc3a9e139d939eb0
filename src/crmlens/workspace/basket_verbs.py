"""Market-basket verbs of :class:`~crmlens.Workspace` (kept apart, like the CLV verbs). Each
writing verb runs in one transaction and records a ``runs`` row: a failure leaves the
workspace as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmlens.errors import WorkspaceError
from crmlens.progress import NO_PROGRESS, Progress
from crmlens.workspace import store
from crmlens.workspace.runs import RunRecord

if TYPE_CHECKING:
    from crmlens.basket.run import BasketResult

# How many itemsets and rules `basket_show` lists by default.
TOP = 20


class BasketVerbs:
    """Mine frequent itemsets and association rules; show stored basket runs."""

    def _basket_step(self, step: str, options: dict[str, Any], rules: dict[str, Any] | None,
                     progress: Progress) -> BasketResult:
        from crmlens.basket import store as basket_store
        from crmlens.basket.run import check_options, mine

        check_options(**{k: options[k] for k in ("basket", "item", "min_support", "max_len",
                                                  "algorithm", "kind")})
        if not self.exists():  # type: ignore[attr-defined]
            raise WorkspaceError("error.workspace_missing", path=str(self.path))  # type: ignore[attr-defined]
        with self.writer() as con, store.transaction(con):  # type: ignore[attr-defined]
            run = RunRecord(step, params={**options, **(rules or {})})
            result = mine(con, rules=rules, progress=progress, **options)
            run.reserve_id(con)
            params = {**run.params, "n_dropped_large": result.n_dropped_large,
                      "segments": result.segments}
            basket_store.save_run(
                con, run.run_id, basket=result.basket, item=result.item,
                min_support=result.min_support, min_count=result.min_count,
                max_len=result.max_len, algorithm=result.algorithm, kind=result.kind,
                n_baskets=result.n_baskets, n_items=result.n_items,
                itemsets=result.itemsets, rules=result.rules,
                segment_run=result.segment_run, params=params)
            run.row_counts = {"baskets": result.n_baskets, "itemsets": result.n_itemsets,
                              "rules": result.n_rules}
            result.run_id = run.write(con)
        return result

    def basket_itemsets(self, *, basket: str = "order", item: str = "product",
                        min_support: float | int = 0.01, max_len: int | None = None,
                        algorithm: str = "eclat", kind: str = "all",
                        segment_run: int | str | None = None,
                        max_basket_size: int | None = None,
                        progress: Progress = NO_PROGRESS) -> BasketResult:
        """Mine frequent itemsets and store them (a new current basket run).

        Parameters
        ----------
        basket : {"order", "customer"}, default "order"
            What a basket is.
        item : {"product", "category"}, default "product"
            What an item is.
        min_support : float or int, default 0.01
            Fraction of baskets in (0, 1], or a count of baskets.
        max_len : int, optional
            Longest itemset.
        algorithm : {"eclat", "fpgrowth", "apriori"}, default "eclat"
            All three give the same itemsets.
        kind : {"all", "closed", "maximal"}, default "all"
        segment_run : int or str, optional
            A saved segmentation (run id or name): itemsets per segment as well.
        max_basket_size : int, optional
            Drop larger baskets (counted in the result).
        progress : Progress, optional

        Returns
        -------
        crmlens.basket.run.BasketResult
            With ``run_id`` set.
        """
        options = dict(basket=basket, item=item, min_support=min_support, max_len=max_len,
                       algorithm=algorithm, kind=kind, segment_run=segment_run,
                       max_basket_size=max_basket_size)
        return self._basket_step("basket.itemsets", options, None, progress)

    def basket_rules(self, *, basket: str = "order", item: str = "product",
                     min_support: float | int = 0.01, max_len: int | None = None,
                     algorithm: str = "eclat", min_confidence: float | str = 0.3,
                     min_lift: float | str | None = None,
                     min_leverage: float | str | None = None,
                     min_conviction: float | str | None = None,
                     min_zhang: float | str | None = None, prune_redundant: bool = False,
                     max_consequent_len: int | None = None,
                     segment_run: int | str | None = None,
                     max_basket_size: int | None = None,
                     progress: Progress = NO_PROGRESS) -> BasketResult:
        """Mine frequent itemsets and association rules and store both.

        Parameters
        ----------
        basket, item, min_support, max_len, algorithm, segment_run, max_basket_size
            As in :meth:`basket_itemsets` (itemsets of kind ``all``).
        min_confidence : float or str, default 0.3
            Keep rules with confidence >= this (compared exactly: a tie is kept).
        min_lift, min_leverage, min_conviction, min_zhang : float or str, optional
            Further filters (``metric >= value``).
        prune_redundant : bool, default False
            Drop a rule when a rule with a smaller antecedent and the same consequent is at
            least as confident.
        max_consequent_len : int, optional
        progress : Progress, optional

        Returns
        -------
        crmlens.basket.run.BasketResult
            With ``run_id`` set and ``rules`` filled.
        """
        options = dict(basket=basket, item=item, min_support=min_support, max_len=max_len,
                       algorithm=algorithm, kind="all", segment_run=segment_run,
                       max_basket_size=max_basket_size)
        rules = dict(min_confidence=min_confidence, min_lift=min_lift,
                     min_leverage=min_leverage, min_conviction=min_conviction,
                     min_zhang=min_zhang, prune_redundant=prune_redundant,
                     max_consequent_len=max_consequent_len)
        return self._basket_step("basket.rules", options, rules, progress)

    def basket_runs(self) -> list[dict[str, Any]]:
        """Stored basket runs, newest first (``basket_runs`` rows, params decoded)."""
        from crmlens.basket import store as basket_store

        with self.reader() as con:  # type: ignore[attr-defined]
            return [r.to_dict() for r in basket_store.list_runs(con)]

    def basket_show(self, run: int | str | None = None, *, segment: str | None = None,
                    top: int = TOP) -> dict[str, Any]:
        """A stored basket run: settings, counts, top itemsets and rules, per-segment counts.

        Parameters
        ----------
        run : int or str, optional
            Run id (default: the current run).
        segment : str, optional
            Show this segment's itemsets and rules instead of those over all baskets.
        top : int, default 20
            How many itemsets and rules to list.

        Returns
        -------
        dict
            The ``basket_runs`` row plus ``itemsets``, ``rules`` (lists of dicts; infinite
            conviction as None), ``itemsets_by_length`` and ``segments``.
        """
        from crmlens.basket import store as basket_store
        from crmlens.errors import InputError

        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise InputError("error.basket_bad_option", option="top", value=str(top),
                             expected=">= 1")
        with self.reader() as con:  # type: ignore[attr-defined]
            found = basket_store.get_run(con, run)
            rid = found.run_id
            data = found.to_dict()
            segments = data["params"].get("segments") or []
            if segment is not None and segment not in {s["segment"] for s in segments}:
                raise InputError("error.basket_segment_missing", segment=segment, run=rid)
            itemsets = basket_store.read_itemsets(con, rid, segment=segment, limit=top)
            rules = basket_store.read_rules(con, rid, segment=segment, limit=top)
            by_length = con.execute(
                "SELECT length, count(*) FROM basket_itemsets WHERE run_id = ? AND "
                + ("segment IS NULL" if segment is None else "segment = ?")
                + " GROUP BY length ORDER BY length",
                [rid] + ([] if segment is None else [segment])).fetchall()
        data["segment"] = segment
        data["itemsets"] = basket_store.records(itemsets)
        data["rules"] = basket_store.records(rules)
        data["itemsets_by_length"] = [{"length": int(n), "itemsets": int(c)}
                                      for n, c in by_length]
        data["segments"] = segments
        return data
