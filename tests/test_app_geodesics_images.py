"""The Geodesics page on an image model under AppTest (test profile), and its Streamlit-free glue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.views import image_geodesics as igv

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("app_test_profile")  # test sizes, a private cache


def open_geodesics(model: str = "digits/full"):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["model"] = model
    at.run()
    at.switch_page("app_pages/geodesics.py")
    at.run()
    return at


def test_default_endpoints_are_two_different_digits():
    labels = np.array([3, 6, 0, 6, 0])
    assert igv.default_endpoints(labels) == [2, 1]
    assert igv.default_endpoints(np.array([1, 1, 1])) == [0, 1]
    assert igv.default_endpoints(None) == [0, 1]


def test_geodesics_page_on_digits_shows_image_strips_and_compares_three_paths():
    at = open_geodesics()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Generative geodesics between images"
    n_images = len(at.get("image"))
    assert n_images == 2  # the endpoints and the graph geodesic
    a, b = at.session_state["geo_ends"]
    at.button(key="geo_img_compare").click().run()
    assert not at.exception, [e.value for e in at.exception]
    images = at.get("image")
    assert len(images) == n_images + 3  # + refined geodesic, pixel line, latent slerp
    captions = [im.proto.imgs[0].caption for im in images[-3:]]
    assert [c.split(":")[0] for c in captions] == ["refined geodesic", "straight line in pixel space",
                                                   "slerp of the latents"], captions
    assert len(at.get("download_button")) >= 2
    assert a != b
    # a λ move re-weights the cached graph: the metric changes, the endpoints stay
    before = {m.label: m.value for m in at.metric}
    at.select_slider[0].set_value(0.01).run()
    assert not at.exception, [e.value for e in at.exception]
    after = {m.label: m.value for m in at.metric}
    assert at.session_state["geo_ends"] == [a, b] and at.session_state["geo_lam"] == 0.01
    assert after["Straight line (metric)"] != before["Straight line (metric)"], (before, after)
