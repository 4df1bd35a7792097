"""The progress bar (silent off a terminal) and plot_history's picture, checked by pixels."""
from __future__ import annotations

import io

import numpy as np
import pytest

from graphdl import GraphError
from graphdl.training.progress import Progress, history_columns, plot_history


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_silent_when_not_a_terminal():
    f = io.StringIO()
    seen = list(Progress(range(7), desc="epoch 1", file=f))
    assert seen == list(range(7)) and f.getvalue() == ""


def test_bar_redraws_one_line_with_metrics_on_a_terminal():
    f = FakeTTY()
    bar = Progress(range(4), desc="epoch 1", file=f, width=8)
    for i in bar:
        bar.set(loss=1.0 / (i + 1))
    out = f.getvalue()
    assert out.endswith("\n") and out.count("\n") == 1  # one line, redrawn with \r
    last = out.rstrip("\n").split("\r")[-1]
    assert last.startswith("epoch 1 4/4 [########]") and "loss=0.25" in last
    mid = [s for s in out.split("\r") if s.startswith("epoch 1 2/4")]
    assert mid and mid[0].startswith("epoch 1 2/4 [####----]")


def test_history_forms_agree():
    per_epoch = [{"loss": 1.0, "acc": 0.5}, {"loss": 0.5, "acc": 0.75}]
    assert history_columns(per_epoch) == {"loss": [1.0, 0.5], "acc": [0.5, 0.75]}
    with pytest.raises(GraphError, match="empty"):
        history_columns({})


def test_plot_history_draws_two_panels(tmp_path):
    mpl_image = pytest.importorskip("matplotlib.image")
    hist = {"loss": list(np.linspace(2.0, 0.2, 10)), "test_accuracy": list(np.linspace(.3, .9, 10))}
    plot_history(hist, str(tmp_path / "h.png"))
    plot_history({"loss": hist["loss"]}, str(tmp_path / "l.png"))
    both, one = (mpl_image.imread(str(tmp_path / n)) for n in ("h.png", "l.png"))
    assert both.shape[1] > 1.7 * one.shape[1]  # a loss panel and an accuracy panel
    blue = np.all(np.abs(both[..., :3] - np.array([0x1f, 0x77, 0xb4]) / 255) < 0.03, axis=-1)
    cols = np.nonzero(blue.any(0))[0]
    half = both.shape[1] // 2
    assert (cols < half).any() and (cols > half).any()  # a curve in each panel
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.png", "l.png"]
    with pytest.raises(GraphError, match="png or .svg"):
        plot_history(hist, str(tmp_path / "h.jpg"))
