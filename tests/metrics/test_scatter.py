"""The evaluation scatter plot: readable x ticks however narrow the predictions, and its path logged."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from pyiqa.metrics.scatter import MAX_X_TICKS, scatter_plot, thin_x_ticks, tick_labels


@pytest.mark.parametrize("ticks, expected", [
    ([0.5231, 0.5232, 0.5233], ["0.5231", "0.5232", "0.5233"]),
    ([0.0, 0.25, 0.5, 0.75], ["0", "0.25", "0.50", "0.75"]),
    ([-0.001, 0.0, 0.001], ["-0.001", "0", "0.001"]),
    ([20.0, 40.0, 60.0], ["20", "40", "60"]),
])
def test_tick_labels_use_just_enough_decimals(ticks, expected):
    assert tick_labels(ticks) == expected


@pytest.mark.parametrize("span", [4e-4, 3e-2, 80.0])
def test_x_ticks_are_few_short_distinct_and_inside_the_axis(span):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(0.52 + rng.uniform(0, span, 26), rng.uniform(0, 100, 26))
    thin_x_ticks(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    low, high = ax.get_xlim()
    plt.close(fig)
    assert 2 <= len(labels) <= MAX_X_TICKS and len(set(labels)) == len(labels), labels
    assert all(len(s) <= 8 for s in labels), labels
    assert ax.xaxis.get_offset_text().get_text() == ""  # no "+5.2e-1" offset to add in one's head
    assert all(low - 1e-9 <= float(s) <= high + 1e-9 for s in labels) or span > 1


def test_scatter_plot_writes_the_png_and_logs_its_path(tmp_path, caplog):
    rng = np.random.default_rng(0)
    pred, mos = 0.52 + rng.uniform(0, 4e-4, 26), rng.uniform(0, 100, 26)
    with caplog.at_level(logging.INFO, logger="pyiqa.metrics.scatter"):
        path = scatter_plot(tmp_path / "scatter.png", pred, mos, "demo\nSRCC: 0.1", "MOS (0 to 100)")
    assert path == tmp_path / "scatter.png" and Image.open(path).size == (550, 550)
    assert f"Scatter plot written to {path}" in caplog.text
