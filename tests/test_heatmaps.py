"""Clickable descriptor maps: the picture puts each cell where the click mapping finds it again, checked on the
payload a real Chromium sent (tests/browser_payloads.json) and on every cell of a grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from webui import heatmaps, selections

PAYLOADS = json.loads((Path(__file__).parent / "browser_payloads.json").read_text())


def test_the_recorded_chromium_click_lands_on_its_cell():
    cell = PAYLOADS["image_coordinates_click_cell"]
    assert heatmaps.cell_from_click(PAYLOADS["image_coordinates_click"], cell["n"]) == (cell["i"], cell["j"])


@pytest.mark.parametrize("n, scale, drawn", [(6, 37, 223), (128, 2, 256), (16, 16, 300), (5, 3, 15)])
def test_every_cell_centre_maps_back_to_its_cell(n, scale, drawn):
    """Cell (i, j) of the map is drawn at image row n−1−i, column j; a click at its centre (in the image as drawn,
    possibly resized to ``drawn`` pixels) finds (i, j)."""
    values = np.arange(n * n, dtype=float).reshape(n, n)
    img = heatmaps.heatmap_image(values, scale)
    assert img.shape == (n * scale, n * scale, 3) and img.dtype == np.uint8
    lut = heatmaps.colour_lut()
    for i in range(n):
        for j in range(n):
            r, c = (n - 1 - i) * scale + scale // 2, j * scale + scale // 2  # the cell's centre pixel
            expected = lut[round(values[i, j] / (n * n - 1) * 255)]
            np.testing.assert_array_equal(img[r, c], expected)
            k = drawn / (n * scale)
            click = {"x": c * k, "y": r * k, "width": drawn, "height": drawn, "unix_time": 1}
            assert heatmaps.cell_from_click(click, n) == (i, j)


def test_bad_clicks_and_marks():
    assert heatmaps.cell_from_click(None, 4) is None
    assert heatmaps.cell_from_click({"x": 5}, 4) is None
    assert heatmaps.cell_from_click({"x": -1, "y": 1, "width": 10, "height": 10}, 4) is None
    assert heatmaps.cell_from_click({"x": 10, "y": 1, "width": 10, "height": 10}, 4) is None
    img = heatmaps.heatmap_image(np.zeros((4, 4)), 6, marks=[{"i": 0, "j": 3, "colour": (255, 0, 0)}])
    assert (img[-1, -6:] == [255, 0, 0]).all(), "a ring frames cell (0, 3), bottom right"
    nan = heatmaps.colorize(np.array([[np.nan, 1.0], [2.0, np.inf]]))
    assert tuple(nan[0, 0]) == heatmaps.MISSING and tuple(nan[1, 1]) == heatmaps.MISSING
    u = v = np.linspace(-1, 1, 5)
    assert heatmaps.nearest_cell(u, v, np.array([[0.49, -1.0], [5.0, 0.0]])) == [(0, 3)]


def test_plotly_selections_parse_what_chromium_sends():
    cd = PAYLOADS["plotly_heatmap_customdata"]  # a two-element customdata arrives as a dict
    event = {"selection": {"points": [{"customdata": cd, "point_index": 3}]}}
    assert selections.cell_from_selection(event, 100) == (77, 78)
    assert selections.indices_from_selection({"selection": {"points": [{"customdata": {"0": 5}}]}}, 10) == [5]
