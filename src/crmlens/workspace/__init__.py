"""The workspace: a folder holding ``crmlens.duckdb``, ``crmlens.toml`` and ``reports/``."""

from crmlens.workspace.workspace import Workspace

__all__ = ["Workspace"]
