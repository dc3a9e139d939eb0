"""Recommendation verbs of :class:`~crmlens.Workspace` (kept apart, like the CLV verbs). The
writing verb runs in one transaction and records a ``runs`` row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmlens.errors import InputError, WorkspaceError
from crmlens.progress import NO_PROGRESS, Progress
from crmlens.workspace import store
from crmlens.workspace.runs import RunRecord

# Customers whose recommendations `recommend_show` lists as examples.
EXAMPLE_CUSTOMERS = 5


class RecommendVerbs:
    """Recommend products, evaluate the methods, read stored recommendations."""

    def recommend(self, *, method: str = "hybrid", k: int = 10, allow_repeats: bool = False,
                  exclude: Sequence[str] | None = None, include: Sequence[str] | None = None,
                  evaluate: bool = False, params: dict[str, Any] | None = None,
                  progress: Progress = NO_PROGRESS) -> dict[str, Any]:
        """Recommend ``k`` products to every identified customer and store them.

        Parameters
        ----------
        method : {"hybrid", "rules", "item_cf", "popular"}, default "hybrid"
        k : int, default 10
        allow_repeats : bool, default False
            Also recommend products the customer already bought.
        exclude, include : sequence of str, optional
            Product ids left out of / the only ones in the catalogue.
        evaluate : bool, default False
            Also evaluate every method against the popularity baseline on a time split.
        params : dict, optional
            Parameters of the recommender class.
        progress : Progress, optional

        Returns
        -------
        dict
            The stored run as :meth:`recommend_show` gives it.
        """
        from crmlens.recommend import store as rec_store
        from crmlens.recommend.step import run_recommend

        if not self.exists():  # type: ignore[attr-defined]
            raise WorkspaceError("error.workspace_missing", path=str(self.path))  # type: ignore[attr-defined]
        with self.writer() as con, store.transaction(con):  # type: ignore[attr-defined]
            run = RunRecord("recommend", params={
                "method": method, "k": k, "allow_repeats": allow_repeats,
                "exclude": list(exclude or []), "include": list(include) if include else None,
                "evaluate": evaluate})
            progress.stage("progress.recommend")
            result = run_recommend(con, method=method, k=k, allow_repeats=allow_repeats,
                                   exclude=exclude, include=include, evaluate=evaluate,
                                   params=params)
            run.reserve_id(con)
            ev = result.evaluation
            metrics = None
            if ev is not None:
                metrics = {"baseline": ev["baseline"], "tuned": ev["tuned"].get("params"),
                           "validation_start": ev["validation_start"],
                           "test_start": ev["test_start"], "end": ev["end"]}
            rec_store.save_run(con, run.run_id, method=method, as_of=result.as_of, k=k,
                               params=result.params, metrics=metrics,
                               recommendations=result.recommendations,
                               evaluations=ev["methods"] if ev else [])
            run.row_counts = {"customers": result.n_customers,
                              "recommendations": len(result.recommendations)}
            run.write(con)
        return self.recommend_show(str(run.run_id))

    def recommend_evaluate(self, *, k: int = 10, allow_repeats: bool = False,
                           progress: Progress = NO_PROGRESS) -> dict[str, Any]:
        """Evaluate every method and the popularity baseline on a time split (and store it).

        Same as ``recommend(evaluate=True)``; returns its ``evaluation`` part with the run id.
        """
        data = self.recommend(k=k, allow_repeats=allow_repeats, evaluate=True,
                              progress=progress)
        return {"run_id": data["run_id"], "evaluation": data["evaluation"],
                "metrics": data["metrics"]}

    def recommend_for(self, customer_id: str, *, run: int | str | None = None
                      ) -> list[dict[str, Any]]:
        """The stored recommendations of one customer (default: the current run), by rank.

        Raises InputError when the customer has none in that run.
        """
        from crmlens.recommend import store as rec_store

        with self.reader() as con:  # type: ignore[attr-defined]
            found = rec_store.get_run(con, run)
            frame = rec_store.read_recommendations(con, found["run_id"], str(customer_id))
        if frame.empty:
            raise InputError("error.recommend_unknown_customer", customer=str(customer_id))
        return frame.to_dict("records")

    def recommend_show(self, run: int | str | None = None) -> dict[str, Any]:
        """A stored run: settings, evaluation rows and example recommendations."""
        from crmlens.recommend import store as rec_store

        with self.reader() as con:  # type: ignore[attr-defined]
            found = rec_store.get_run(con, run)
            evaluation = rec_store.read_evaluations(con, found["run_id"])
            n = con.execute("SELECT count(DISTINCT customer_id), count(*) FROM recommendations "
                            "WHERE run_id = ?", [found["run_id"]]).fetchone()
            firsts = [r[0] for r in con.execute(
                "SELECT DISTINCT customer_id FROM recommendations WHERE run_id = ? "
                "ORDER BY customer_id LIMIT ?", [found["run_id"], EXAMPLE_CUSTOMERS]).fetchall()]
            examples = rec_store.read_recommendations(con, found["run_id"])
        examples = examples[examples["customer_id"].isin(firsts)]
        return {**found, "n_customers": int(n[0]), "n_recommendations": int(n[1]),
                "evaluation": evaluation, "examples": examples.to_dict("records")}
