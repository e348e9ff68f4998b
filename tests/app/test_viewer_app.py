"""AppTests of the viewer on the Reconstruct page (64x64 sample): what Python sends the browser viewer (each image
once, 16-bit, with the window presets), the ROI and line inputs and their detail views, what a drawn box or line
sets, and the slices around the shown one. What the browser does with the data (window/level, layouts, keys,
drawing) is the browser test's job (tests/browser/test_viewer_browser.py)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from explorer.ui import state
from explorer.viewer.measure import Box, roi_stats, window_preset
from explorer.viewer.payload import LEVELS
from tests.app.conftest import figure, open_page, viewer, viewer_images

pytestmark = pytest.mark.usefixtures("small_sample_app")
KEY = "reconstruct"


@pytest.fixture(scope="module")
def at(small_sample_app):
    at = open_page("reconstruct")
    at.number_input(key="reconstruct.mask.acceleration").set_value(3.0).run()
    at.button(key="reconstruct.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def _results(at):
    """The target and the reconstructions the page shows."""
    from explorer.ui import cache  # noqa: PLC0415

    request = at.session_state[state.REQUEST]
    problem = cache.problem(request.source, request.plane, request.index, request.mask)
    images = {}
    for inst in request.methods:
        r = cache.run(request.source, request.plane, request.index, request.mask, inst)
        images[r.label] = r.image
    return problem.target, images


def _array(value) -> np.ndarray:
    """A plotly JSON array: a list, or a base64 typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


def test_each_image_is_sent_once_as_16_bit_planes(at):
    target, images = _results(at)
    shown = viewer_images(at, KEY)
    assert list(shown) == ["Target (reference)", *images]
    for label, want in {"Target (reference)": target, **images}.items():
        # 16 bits over [0, max]: every pixel within half a step of its value
        np.testing.assert_allclose(shown[label], want, rtol=0, atol=float(want.max()) / LEVELS)
    header, frames = viewer(at, KEY)
    assert frames[header["current"]]  # sent in full just now...
    at.run()
    header, frames = viewer(at, KEY)
    assert frames == {} and header["frames"][0]["planes"] is None  # ...and not again: the browser holds it
    windows = header["frames"][0]["windows"]
    for preset in ("full", "tissue", "auto"):
        assert windows[preset] == pytest.approx(window_preset(target, preset), rel=1e-6)
    settings = header["settings"]
    assert settings["error"] == "abs" and settings["layout"] == "row" and settings["show_target"]
    assert len(settings["luts"]["error"]) == 3 * 256 and settings["luts"]["error"][:3] == [0, 0, 4]  # inferno


def test_roi_by_numbers(at):
    target, images = _results(at)
    at.toggle(key=f"{KEY}.roi.on").set_value(True).run()
    for name, value in (("top", 20), ("left", 10), ("bottom", 39), ("right", 29)):
        at.number_input(key=f"{KEY}.roi.{name}").set_value(value).run()
    assert not at.exception and not at.error
    assert viewer(at, KEY)[0]["settings"]["roi"] == [20, 10, 40, 30]  # drawn on every panel in the browser
    table = at.dataframe[0].value
    expected = roi_stats(target, images, Box(20, 10, 40, 30))
    assert list(table["Image"]) == [r["label"] for r in expected]
    for (_, row), want in zip(table.iterrows(), expected):
        assert row["Mean"] == pytest.approx(want["mean"]) and row["Std"] == pytest.approx(want["std"])
        if want["ssim"] is not None:
            assert row["SSIM"] == pytest.approx(want["ssim"]) and row["PSNR (dB)"] == pytest.approx(want["psnr"])
    tiles = figure(at, f"{KEY}.roi_tiles")
    assert len(tiles["data"]) == 1 + 2 * len(images) and all(_array(t["z"]).shape == (20, 20) for t in tiles["data"])
    at.number_input(key=f"{KEY}.roi.bottom").set_value(5).run()  # bottom above top: one clear error
    assert [e.value for e in at.error] == ["The ROI needs top <= bottom and left <= right."]
    at.number_input(key=f"{KEY}.roi.bottom").set_value(39).run()
    at.toggle(key=f"{KEY}.roi.zoom").set_value(True).run()
    assert viewer(at, KEY)[0]["settings"]["zoom_roi"] is True  # the browser zooms every panel to it
    at.toggle(key=f"{KEY}.roi.zoom").set_value(False).run()
    at.toggle(key=f"{KEY}.roi.on").set_value(False).run()
    settings = viewer(at, KEY)[0]["settings"]
    assert not at.error and settings["roi"] is None and settings["zoom_roi"] is False


def test_line_by_numbers(at):
    at.toggle(key=f"{KEY}.line.on").set_value(True).run()
    for name, value in (("r0", 30), ("c0", 5), ("r1", 30), ("c1", 55)):
        at.number_input(key=f"{KEY}.line.{name}").set_value(value).run()
    profile = figure(at, f"{KEY}.profile")
    target, images = _results(at)
    assert [t["name"] for t in profile["data"]] == ["reference", *images]
    np.testing.assert_allclose(_array(profile["data"][0]["y"]), target[30, 5:56], rtol=1e-5)
    assert viewer(at, KEY)[0]["settings"]["line"] == [30, 5, 30, 55]
    at.number_input(key=f"{KEY}.line.c1").set_value(5).run()  # both ends on one pixel
    assert [e.value for e in at.error] == ["The line's two ends are the same pixel: move one of them."]
    at.toggle(key=f"{KEY}.line.on").set_value(False).run()
    assert not at.error


def test_a_drawn_box_and_line_fill_the_inputs(at):
    """What a box and a line drawn in the browser set (the browser test draws them for real)."""
    from explorer.ui.viewer import drawn_state  # noqa: PLC0415

    updates = drawn_state(KEY, {"box": [4, 10, 13, 21], "window": [0, 1]}, {"line": [40, 2, 44, 50]}, (64, 64))
    assert {k[len(KEY) + 1:]: v for k, v in updates.items()} == {
        "roi.on": True, "roi.top": 4, "roi.left": 10, "roi.bottom": 12, "roi.right": 20,
        "line.on": True, "line.r0": 40, "line.c0": 2, "line.r1": 44, "line.c1": 50}
    for name, value in updates.items():
        at.session_state[name] = value
    at.run()
    assert not at.exception and not at.error
    assert at.toggle(key=f"{KEY}.roi.on").value and at.toggle(key=f"{KEY}.line.on").value
    assert _array(figure(at, f"{KEY}.roi_tiles")["data"][0]["z"]).shape == (9, 11)
    assert figure(at, f"{KEY}.profile")["data"]
    with pytest.raises(ValueError, match="same pixel"):
        drawn_state(KEY, None, {"line": [3, 4, 3, 4]}, (64, 64))
    with pytest.raises(ValueError, match="leaves"):
        drawn_state(KEY, {"box": [60, 60, 70, 70]}, None, (64, 64))
    assert drawn_state(KEY, None, None, (64, 64)) == {}
    at.toggle(key=f"{KEY}.roi.on").set_value(False)
    at.toggle(key=f"{KEY}.line.on").set_value(False).run()


def test_scrolling_to_a_slice_makes_it_the_shown_one_and_sends_its_neighbours(at):
    import dataclasses  # noqa: PLC0415

    header, _ = viewer(at, KEY)
    request = at.session_state[state.REQUEST]
    slices = header["settings"]["slices"]
    assert slices == {"index": request.index, "count": slices["count"]} and slices["count"] > 1
    # what the viewer's slice callback does (volume.viewer_slices): the slider and the shown request move there
    new = request.index + 1 if request.index + 1 < slices["count"] else request.index - 1
    at.session_state["reconstruct.slice"] = new
    at.session_state[state.REQUEST] = dataclasses.replace(request, index=new)
    at.run()
    assert not at.exception and not at.error
    header, frames = viewer(at, KEY)
    assert [f["slice"] for f in header["frames"]] == [new, request.index]  # the slice left is a cached neighbour
    assert header["frames"][0]["id"] in frames and header["frames"][1]["planes"] is None  # held by the browser
    assert at.session_state[state.REQUEST].index == new
    at.session_state["reconstruct.slice"] = request.index
    at.session_state[state.REQUEST] = request
    at.run()
