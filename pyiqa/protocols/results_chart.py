"""TABLE.png: our SRCCs as bars, beside the paper's where the paper has a number.

The results table (results_table.chart_points) hands over the bars: the paper cells we have a result for,
then the results that fit no paper cell (the demo's, other datasets), drawn alone after a dashed line.
Results from random weights are not quality, so the figure says it three times: those bars are red and
hatched, their x labels say "RANDOM WEIGHTS" in red, and the title warns. A NaN (undefined) correlation is
written as "undefined" where its bar would be. The figure is built by :func:`build_figure` so a test can
read its texts before it becomes pixels.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

RANDOM_LABEL = "RANDOM WEIGHTS"
RANDOM_TITLE = "WARNING: RANDOM WEIGHTS (red, hatched): not quality, nothing to compare"
UNDEFINED = "undefined"


@dataclass(frozen=True)
class ChartPoint:
    """One bar position: a label, the paper's SRCC (None: the paper has none) and ours (NaN: undefined)."""
    label: str
    paper: Optional[float]
    ours: float
    random_weights: bool


def build_figure(points: Sequence[ChartPoint], not_drawn: int = 0) -> Any:
    """The matplotlib Figure of ``points``, one row each, top to bottom (horizontal bars: the labels stay
    readable however long); ``not_drawn``: how many paper cells have no result of ours (a footnote)."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    fig = Figure(figsize=(9.0, 2.2 + 0.4 * max(len(points), 2)), dpi=100)
    ax = fig.add_subplot()
    ys = range(len(points))
    paired = [y for y, p in zip(ys, points) if p.paper is not None]
    if paired:
        ax.barh([y - 0.2 for y in paired], [points[y].paper for y in paired], height=0.4, color="0.6",
                label="paper")
    for random, color, hatch, label in ((False, "tab:blue", "", "ours"),
                                        (True, "tab:red", "//", f"ours, {RANDOM_LABEL} (not quality)")):
        sub = [y for y, p in zip(ys, points) if p.random_weights == random and not math.isnan(p.ours)]
        if sub:
            ax.barh([_at(y, points[y]) for y in sub], [points[y].ours for y in sub], height=0.4, color=color,
                    hatch=hatch, edgecolor="black" if random else None, label=label)
    for y, p in zip(ys, points):
        if math.isnan(p.ours):
            ax.text(0.01, _at(y, p), UNDEFINED, va="center", fontsize=8)
        elif p.random_weights:
            ax.text(max(p.ours, 0.0) + 0.01, _at(y, p), RANDOM_LABEL, va="center", fontsize=7,
                    color="tab:red", fontweight="bold")
    alone = [y for y, p in zip(ys, points) if p.paper is None]
    if paired and alone:
        ax.axhline(alone[0] - 0.5, color="0.3", linestyle="--", linewidth=1)
        ax.text(1.28, alone[0] - 0.45, "no paper number", fontsize=8, ha="right", va="top", color="0.3")
    if not points:
        ax.text(0.5, 0.5, "no SRCC of ours to draw (see TABLE.md)", ha="center", va="center",
                transform=ax.transAxes)
    values = [v for p in points for v in (p.paper, p.ours) if v is not None and not math.isnan(v)]
    low = min([0.0] + values)
    ax.set_xlim(low - 0.05 if low < 0 else 0.0, 1.3)  # room right of the bars for their labels
    ax.axvline(0.0, color="black", linewidth=0.5)
    ax.set_yticks(list(ys), [p.label for p in points], fontsize=8)
    for tick, p in zip(ax.get_yticklabels(), points):
        if p.random_weights:
            tick.set(color="tab:red", fontweight="bold")
    ax.set_ylim(len(points) - 0.5, -0.5)  # the first point on top
    random = any(p.random_weights for p in points)
    title = "UniQA SRCC, ours against the paper\n(ours: median over splits; release protocol in the paper's cells)"
    ax.set_title(title + ("\n" + RANDOM_TITLE if random else ""), fontsize=9, color="tab:red" if random else "black")
    ax.set_xlabel("SRCC")
    if points:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if not_drawn:
        fig.text(0.01, 0.01, f"{not_drawn} paper cells without a result of ours are not drawn; TABLE.md lists "
                             f"them", fontsize=7, color="0.3")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _at(y: int, p: ChartPoint) -> float:
    """The row position of our bar: beside the paper's, or centred when the paper has none."""
    return y + 0.2 if p.paper is not None else float(y)


def render_png(points: Sequence[ChartPoint], not_drawn: int = 0) -> bytes:
    """:func:`build_figure` as PNG bytes."""
    buf = io.BytesIO()
    build_figure(points, not_drawn).savefig(buf, format="png")
    return buf.getvalue()
