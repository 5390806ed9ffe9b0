"""The report's figures as a reader sees them: every method visible, the legend off the data, one colour
scale for the heatmap panels, a method without heatmaps named."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from sb3_llmae.experiments import plots
from sb3_llmae.experiments.aggregate import CurveEstimate
from sb3_llmae.experiments.plots import HeatmapPair, plot_curves, plot_heatmap_panel


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions close, kept open for the test to look at."""
    figures: list[matplotlib.figure.Figure] = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    return figures


def curve(steps, values) -> CurveEstimate:
    values = np.asarray(values, dtype=float)
    return CurveEstimate(np.asarray(steps), values, values - 0.1, values + 0.1)


def test_a_method_with_one_evaluation_shows_and_the_legend_is_off_the_data(drawn, tmp_path):
    curves = {"success": {"llmae": curve([2048], [0.3]), "scratch": curve([0, 5000, 10000], [0.1, 0.4, 0.9])}}
    path = plot_curves(curves, tmp_path / "curves.png", title="MiniGrid-DoorKey-5x5-v0: 10,000 env steps")
    assert path.read_bytes().startswith(b"\x89PNG")
    (figure,) = drawn
    axis = figure.axes[0]
    one_point = [line for line in axis.get_lines() if list(line.get_xdata()) == [2048]]
    assert any(line.get_marker() == "o" for line in one_point)  # its point, marked
    assert axis.get_legend() is None and len(figure.legends) == 1  # one legend, outside the panels
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["llmae", "scratch"]
    legend_box = figure.legends[0].get_window_extent()
    assert not legend_box.overlaps(axis.get_window_extent())
    assert "DoorKey-5x5" in figure.get_suptitle()


def test_heatmap_panels_share_one_colour_scale_and_name_a_method_without_heatmaps(drawn, tmp_path):
    few = np.full((5, 5), 3.0)
    many = np.full((5, 5), 300.0)
    heatmaps = {
        "llmae": HeatmapPair(first=few, first_step=1000, last=few, last_start=9000, last_step=10000, runs=3),
        "scratch": HeatmapPair(
            first=many, first_step=1000, last=many, last_start=9000, last_step=10000, runs=3
        ),
        "transfer": None,
    }
    plot_heatmap_panel(heatmaps, tmp_path / "heatmaps.png", note="the layout changes every episode")
    (figure,) = drawn
    images = [image for axis in figure.axes for image in axis.get_images()]
    assert len(images) == 4
    assert len({(image.norm.vmin, image.norm.vmax) for image in images}) == 1  # one scale
    assert images[0].norm.vmax == 300
    texts = [text.get_text() for axis in figure.axes for text in axis.texts]
    assert "transfer: no heatmaps saved" in texts
    titles = [axis.get_title() for axis in figure.axes]
    assert any("3 runs summed" in title for title in titles)
    assert "layout changes every episode" in figure.get_suptitle()
