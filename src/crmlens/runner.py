"""`crmlens run`: every stage that exists, in order, then the report.

Stages register here (like report sections) so later analyses join the one-command pipeline
without editing it: ``register_stage(Stage("segments", 300, run_segments))``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmlens.progress import NO_PROGRESS, Progress
from crmlens.workspace import Workspace


@dataclass(frozen=True)
class Stage:
    """An analysis stage of the pipeline: ``run(ws, progress)`` returns a JSON-able summary,
    or None when it does not apply to the data at hand."""

    id: str
    order: int
    run: Callable[[Workspace, Progress], dict[str, Any] | None]


_STAGES: dict[str, Stage] = {}


def register_stage(stage: Stage) -> None:
    """Add (or replace, by id) a stage of ``crmlens run``."""
    _STAGES[stage.id] = stage


def registered_stages() -> list[Stage]:
    return sorted(_STAGES.values(), key=lambda s: s.order)


@dataclass
class RunSummary:
    workspace: str
    ingested: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[str, Any] = field(default_factory=dict)
    reports: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "ingested": self.ingested, "stages": self.stages,
                "reports": self.reports}


def run_pipeline(
    ws: Workspace,
    transactions: str | Path,
    *,
    customers: str | Path | None = None,
    events: str | Path | None = None,
    langs: Sequence[str] = ("en",),
    ingest_options: dict[str, Any] | None = None,
    progress: Progress = NO_PROGRESS,
) -> RunSummary:
    """Ingest the given files, run every registered stage, and write the report(s)."""
    opts = dict(ingest_options or {})
    summary = RunSummary(workspace=str(ws.path.resolve()))
    summary.ingested.append(ws.ingest("transactions", transactions, progress=progress,
                                      **opts).to_dict())
    for kind, src in (("customers", customers), ("events", events)):
        if src is not None:
            summary.ingested.append(ws.ingest(kind, src, progress=progress).to_dict())
    for stage in registered_stages():
        result = stage.run(ws, progress)
        if result is not None:
            summary.stages[stage.id] = result
    for lang in langs:
        progress.stage("progress.report")
        summary.reports.append(str(ws.report(lang=lang)))
    return summary


def run_demo(path: str | Path, *, langs: Sequence[str] = ("en", "zh"),
             progress: Progress = NO_PROGRESS) -> RunSummary:
    """The pipeline on the bundled Online Retail sample, in a fresh workspace at ``path``.

    An existing workspace there is replaced; a folder holding anything else is refused.
    """
    import shutil

    from crmlens.datasets.sample import sample_path
    from crmlens.errors import InputError
    from crmlens.workspace.workspace import DB_NAME

    ws = Workspace(path)
    if ws.path.exists() and any(ws.path.iterdir()):
        if not (ws.path / DB_NAME).exists():
            raise InputError("error.demo_not_empty", path=str(ws.path))
        shutil.rmtree(ws.path)
    return run_pipeline(ws, sample_path(), langs=langs, progress=progress)


# The built-in stages register themselves (after the definitions above: they import them).
from crmlens import stages as _stages  # noqa: E402,F401
from crmlens import clv_stage as _clv_stage  # noqa: E402,F401
from crmlens import churn_stage as _churn_stage  # noqa: E402,F401
from crmlens import basket_stage as _basket_stage  # noqa: E402,F401
from crmlens import recommend_stage as _recommend_stage  # noqa: E402,F401
