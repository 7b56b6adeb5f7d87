"""The evaluation scatter plot: MOS against prediction with the logistic fit that PLCC uses.

Kept out of ``pyiqa.test`` so the figure (matplotlib, tick formatting) is one small module. Predictions
of a barely trained model can span a range of 1e-3 or less; matplotlib's default ticks then print
long labels that run into each other, so the x ticks here are few, formatted with just enough
decimals to tell them apart, and never shown as an offset.
"""
from __future__ import annotations

import logging
import math
import textwrap
from pathlib import Path
from typing import Any, List, Sequence

import numpy as np

from .correlation import logistic_fit

logger = logging.getLogger(__name__)

MAX_X_TICKS = 5  # at 5 inches wide, labels of up to ~8 characters stay apart


def tick_labels(ticks: Sequence[float]) -> List[str]:
    """Fixed-point labels with the fewest decimals that tell neighbouring ticks apart and read back as
    their tick (0.25, not 0.2)."""
    values = [float(v) for v in ticks]
    if len(values) < 2:
        return [f"{v:g}" for v in values]
    step = min(abs(b - a) for a, b in zip(values, values[1:])) or 1.0
    decimals = min(12, max(0, math.ceil(round(-math.log10(step), 6))))
    labels = [f"{v:.{decimals}f}" for v in values]
    # a step of 0.25 needs 2 decimals: add them until every label reads back as its tick
    while any(abs(float(s) - v) > step * 1e-3 for s, v in zip(labels, values)) and decimals < 12:
        decimals += 1
        labels = [f"{v:.{decimals}f}" for v in values]
    return ["0" if float(s) == 0 else s for s in labels]  # no "-0.000"


def scatter_plot(path: Path, pred: Sequence[float], mos: Sequence[float], title: str,
                 mos_label: str) -> Path:
    """Write MOS against prediction, with the 4-parameter logistic that PLCC's ``fit_logistic`` fits
    (the same fit, here onto the MOS scale shown) drawn through the points in prediction order.

    Logs and returns the PNG's path.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, t = np.asarray(pred, dtype=np.float64), np.asarray(mos, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.scatter(p, t, s=10, alpha=0.7, label=f"{len(p)} images")
    if len(p) > 4:  # the fit has 4 parameters: it needs more points than that
        fitted = logistic_fit(p, t, "scatter plot")
        if fitted is not p:  # the fit returns its input unchanged (and warns) when it fails
            order = np.argsort(p, kind="stable")
            ax.plot(p[order], fitted[order], color="C1", lw=1.5, label="4-parameter logistic fit")
    ax.set_xlabel("prediction")
    ax.set_ylabel(mos_label)
    ax.legend(loc="best", fontsize=8)
    thin_x_ticks(ax)
    # wrapped so a long name is not clipped; a metric's name and value are never split
    lines = [textwrap.fill(line.replace(": ", ":\u00a0"), width=60) for line in title.split("\n")]
    ax.set_title("\n".join(lines), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    logger.info("Scatter plot written to %s", path)
    return path


def thin_x_ticks(ax: Any) -> None:
    """At most MAX_X_TICKS x ticks inside the axis of ``ax`` (a matplotlib Axes), labelled by
    :func:`tick_labels`, slanted; call after plotting (it reads the x limits)."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator

    low, high = ax.get_xlim()
    ticks = [v for v in MaxNLocator(nbins=MAX_X_TICKS - 1, min_n_ticks=2).tick_values(low, high)
             if low <= v <= high][:MAX_X_TICKS]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter(tick_labels(ticks)))
    ax.tick_params(axis="x", labelsize=8, labelrotation=30)
