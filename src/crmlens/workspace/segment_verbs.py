"""Segmentation verbs of :class:`~crmlens.Workspace` (kept apart: the class stays readable).

Each writing verb runs in one transaction: a failure leaves the workspace as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from crmlens.errors import WorkspaceError
from crmlens.workspace import store

if TYPE_CHECKING:
    from crmlens.segment.migration import Migration
    from crmlens.segment.pipeline import SegmentationResult

T = TypeVar("T")


class SegmentVerbs:
    """Segment customers: RFM, clustering, rules, waterfalls; list, show and compare runs."""

    def _write_step(self, step: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self.exists():  # type: ignore[attr-defined]
            raise WorkspaceError("error.workspace_missing", path=str(self.path))  # type: ignore[attr-defined]
        with self.writer() as con, store.transaction(con):  # type: ignore[attr-defined]
            return step(con, *args, **kwargs)

    def segment_rfm(self, *, as_of: str | date | None = None, name: str = "rfm",
                    method: str = "quantile", n_bins: int = 5,
                    segment_map: str | Path | None = None,
                    cut_points: Mapping[str, Sequence[float]] | None = None
                    ) -> SegmentationResult:
        """RFM scores and named segments (the 11-segment map by default), saved as ``name``.

        Parameters
        ----------
        as_of : str or date, optional
            As-of date of the stored features (default: the latest; run :meth:`features`
            first).
        name : str, default "rfm"
            Name of the saved segmentation.
        method : {"quantile", "fixed", "jenks"}, default "quantile"
            How scores are cut (see ``docs/rfm.md``).
        n_bins : int, default 5
            Score levels.
        segment_map : path, optional
            Your own segment map (TOML); validated when loaded.
        cut_points : mapping, optional
            Fixed cut points per dimension (``recency``, ``frequency``, ``monetary``).

        Returns
        -------
        crmlens.segment.pipeline.SegmentationResult
        """
        from crmlens.segment.pipeline import segment_rfm

        return self._write_step(segment_rfm, as_of=as_of, name=name, method=method,
                                n_bins=n_bins, segment_map=segment_map, cut_points=cut_points)

    def segment_cluster(self, *, as_of: str | date | None = None, name: str = "clusters",
                        method: str = "kmeans", n_clusters: int | str = "auto",
                        k_range: tuple[int, int] = (3, 8),
                        features: Sequence[str] | None = None, random_state: int = 0,
                        **options: Any) -> SegmentationResult:
        """Cluster customers (k chosen automatically by default) and save the segmentation.

        Parameters
        ----------
        as_of : str or date, optional
            As-of date of the stored features (default: the latest).
        name : str, default "clusters"
            Name of the saved segmentation.
        method : str, default "kmeans"
            kmeans, minibatch_kmeans, gmm, dbscan, hdbscan, agglomerative, spectral, birch or
            kprototypes.
        n_clusters : int or "auto", default "auto"
            Number of clusters; "auto" evaluates ``k_range`` and picks k by a stated rule.
        k_range : (int, int), default (3, 8)
            Range of k for "auto" (from 3: a high/low split is what RFM already gives).
        features : sequence of str, optional
            Feature columns to cluster on (default: the behavioural core set).
        random_state : int, default 0
            Seed (results are reproducible).
        **options
            Further :class:`crmlens.segment.clustering.Segmenter` parameters.

        Returns
        -------
        crmlens.segment.pipeline.SegmentationResult
        """
        from crmlens.segment.pipeline import segment_cluster

        return self._write_step(segment_cluster, as_of=as_of, name=name, method=method,
                                n_clusters=n_clusters, k_range=k_range, features=features,
                                random_state=random_state, **options)

    def segment_rule(self, name: str, expression: str, *, as_of: str | date | None = None
                     ) -> SegmentationResult:
        """Save the customers matching ``expression`` as the segment ``name``.

        Parameters
        ----------
        name : str
            Name of the segment (refer to it in later rules as ``segment('name')``).
        expression : str
            A condition, e.g. ``recency_days <= 30 AND frequency >= 3`` (see
            ``docs/segment-builder.md``).
        as_of : str or date, optional
            As-of date of the stored features (default: the latest).

        Returns
        -------
        crmlens.segment.pipeline.SegmentationResult
        """
        from crmlens.segment.pipeline import segment_rule

        return self._write_step(segment_rule, name, expression, as_of=as_of)

    def segment_waterfall(self, name: str, rules: Sequence[tuple[str, str]], *,
                          as_of: str | date | None = None,
                          default_label: str | None = None) -> SegmentationResult:
        """Mutually exclusive audiences: each customer goes to the first rule it matches.

        Parameters
        ----------
        name : str
            Name of the saved segmentation.
        rules : sequence of (label, expression)
            In priority order.
        as_of : str or date, optional
            As-of date of the stored features (default: the latest).
        default_label : str, optional
            Segment of the customers no rule matches (default: left out).

        Returns
        -------
        crmlens.segment.pipeline.SegmentationResult
        """
        from crmlens.segment.pipeline import segment_waterfall

        return self._write_step(segment_waterfall, name, rules, as_of=as_of,
                                default_label=default_label)

    def segment_estimate(self, expression: str, *, as_of: str | date | None = None
                         ) -> dict[str, Any]:
        """How many customers a rule selects, without saving anything.

        Parameters
        ----------
        expression : str
            A condition in the segment builder's language.
        as_of : str or date, optional
            As-of date of the stored features (default: the latest).

        Returns
        -------
        dict
            ``n``, ``total``, ``share``, ``as_of``.
        """
        from crmlens.segment.builder import estimate_size

        with self.reader() as con:  # type: ignore[attr-defined]
            return estimate_size(con, expression, as_of=as_of)

    def segment_runs(self, *, name: str | None = None) -> list[dict[str, Any]]:
        """Saved segmentations, newest first (optionally only those called ``name``).

        Parameters
        ----------
        name : str, optional

        Returns
        -------
        list of dict
        """
        from crmlens.segment.store import list_runs

        with self.reader() as con:  # type: ignore[attr-defined]
            if not store.table_exists(con, "segment_runs"):
                return []
            return [r.to_dict() for r in list_runs(con, name=name)]

    def segment_show(self, run: str | int, *, lang: str = "en") -> dict[str, Any]:
        """One saved segmentation with its profiles and rules.

        Parameters
        ----------
        run : str or int
            Run id, or a name (its latest run).
        lang : {"en", "zh"}, default "en"
            Language of names, actions and rules.

        Returns
        -------
        dict
        """
        from crmlens.segment.pipeline import SegmentationResult
        from crmlens.segment.store import read_profiles, resolve_run

        with self.reader() as con:  # type: ignore[attr-defined]
            found = resolve_run(con, run)
            result = SegmentationResult(found, read_profiles(con, found.run_id),
                                        found.notes.get("explanation"))
        return result.to_dict(lang)

    def segment_members(self, run: str | int):
        """Membership of a saved segmentation: ``customer_id``, ``segment``.

        Parameters
        ----------
        run : str or int
            Run id, or a name (its latest run).

        Returns
        -------
        pandas.DataFrame
        """
        from crmlens.segment.store import read_labels, resolve_run

        with self.reader() as con:  # type: ignore[attr-defined]
            return read_labels(con, resolve_run(con, run).run_id)

    def segment_migrate(self, source: str | int, target: str | int) -> Migration:
        """Transition matrix between two saved segmentations (counts and row shares).

        Parameters
        ----------
        source, target : str or int
            Run ids, or names (their latest run).

        Returns
        -------
        crmlens.segment.migration.Migration
        """
        from crmlens.segment.migration import migration

        with self.reader() as con:  # type: ignore[attr-defined]
            return migration(con, source, target)
