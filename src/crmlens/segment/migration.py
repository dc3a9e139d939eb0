"""Migration between two segmentations: where did last quarter's "At Risk" customers go?

The transition matrix counts customers by (segment in the first run, segment in the second);
customers present in only one run land in a row or column of their own ("not in run"), so
every customer of either run is accounted for. Computed in the engine: one GROUP BY over a
FULL JOIN of the two memberships.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import plotly.graph_objects as go

from crmlens.i18n import t
from crmlens.report import charts
from crmlens.segment.store import SegmentRun, resolve_run

# Stand-in segment for customers missing from one of the two runs.
ABSENT = "\u2205"


@dataclass
class Migration:
    """Transition counts between two segmentation runs.

    Attributes
    ----------
    source, target : SegmentRun
        The two runs (from, to).
    rows, columns : list of str
        Segments of the source (rows) and target (columns), in display order; ``ABSENT``
        last where customers appear in only one run.
    counts : list of list of int
        ``counts[i][j]``: customers in ``rows[i]`` then ``columns[j]``.
    """

    source: SegmentRun
    target: SegmentRun
    rows: list[str]
    columns: list[str]
    counts: list[list[int]] = field(default_factory=list)

    @property
    def shares(self) -> list[list[float]]:
        """Row shares: of the customers in ``rows[i]``, the part that went to each column."""
        out = []
        for row in self.counts:
            total = sum(row)
            out.append([c / total if total else 0.0 for c in row])
        return out

    @property
    def stayed(self) -> int:
        """Customers in a segment of the same name in both runs."""
        return sum(self.counts[i][self.columns.index(r)] for i, r in enumerate(self.rows)
                   if r in self.columns and r != ABSENT)

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source.to_dict(), "to": self.target.to_dict(), "rows": self.rows,
                "columns": self.columns, "counts": self.counts,
                "shares": [[round(s, 6) for s in r] for r in self.shares],
                "stayed": self.stayed, "absent_label": ABSENT}


def _order(run: SegmentRun, present: set[str]) -> list[str]:
    order = [s for s in run.notes.get("order", []) if s in present]
    return order + sorted(present - set(order) - {ABSENT}) + \
        ([ABSENT] if ABSENT in present else [])


def migration(con: duckdb.DuckDBPyConnection, source: str | int, target: str | int
              ) -> Migration:
    """The transition matrix between two saved segmentations.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace.
    source, target : str or int
        Run ids, or names (the latest run of that name).

    Returns
    -------
    Migration
    """
    src, dst = resolve_run(con, source), resolve_run(con, target)
    rows = con.execute(f"""
        SELECT coalesce(a.segment, '{ABSENT}') AS s, coalesce(b.segment, '{ABSENT}') AS d,
               count(*) AS n
        FROM (SELECT customer_id, segment FROM segments WHERE run_id = ?) a
        FULL JOIN (SELECT customer_id, segment FROM segments WHERE run_id = ?) b
             USING (customer_id)
        GROUP BY ALL""", [src.run_id, dst.run_id]).fetchall()
    cells = {(s, d): int(n) for s, d, n in rows}
    row_names = _order(src, {s for s, _ in cells})
    col_names = _order(dst, {d for _, d in cells})
    counts = [[cells.get((r, c), 0) for c in col_names] for r in row_names]
    return Migration(src, dst, row_names, col_names, counts)


def sankey(m: Migration, *, lang: str, labels: dict[str, str] | None = None) -> go.Figure:
    """A Sankey chart of a migration (left: the first run, right: the second)."""
    names = dict(labels or {})
    absent = t("segment.migration.absent", lang=lang)

    def label(s: str) -> str:
        return absent if s == ABSENT else names.get(s, s)

    left = [label(s) for s in m.rows]
    right = [label(s) for s in m.columns]
    src, dst, val = [], [], []
    for i, row in enumerate(m.counts):
        for j, n in enumerate(row):
            if n:
                src.append(i)
                dst.append(len(left) + j)
                val.append(n)
    palette = charts.PALETTE
    colors = [palette[i % len(palette)] for i in range(len(left))] + \
        [palette[j % len(palette)] for j in range(len(right))]
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node={"label": left + right, "pad": 12, "thickness": 14, "color": colors},
        link={"source": src, "target": dst, "value": val},
    ))
    return charts.style(fig, height=max(360, 26 * max(len(left), len(right))), legend=False)
