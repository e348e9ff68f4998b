"""AppTests of the viewer's controls on the Reconstruct page (64x64 sample): every control changes the figure
or the detail views as it says. Drawing on the figure is the browser test's job (AppTest cannot drive plotly)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from explorer.ui import state
from explorer.viewer.measure import Box, roi_stats, window_preset
from tests.app.conftest import figure, open_page

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


def _fig(at):
    return figure(at, f"{KEY}.figure")


def _rows(fig) -> int:
    return len({tuple(fig["layout"]["yaxis" + (t.get("yaxis", "y")[1:])]["domain"]) for t in fig["data"]})


def test_grid_columns(at):
    assert at.button_group(key=f"{KEY}.layout").value == "Grid"
    assert len(_fig(at)["data"]) == 5 and _rows(_fig(at)) == 2  # 3 columns: one row of images, one of errors
    at.number_input(key=f"{KEY}.columns").set_value(1).run()
    assert _rows(_fig(at)) == 5  # reference / image / error / image / error
    at.number_input(key=f"{KEY}.columns").set_value(3).run()
    assert _rows(_fig(at)) == 2


def test_error_modes(at):
    titles = {}
    for mode in ("abs", "signed", "ssim", "off"):
        at.selectbox(key=f"{KEY}.error").set_value(mode).run()
        assert not at.exception
        fig = _fig(at)
        titles[mode] = fig["layout"].get("coloraxis2", {}).get("colorbar", {}).get("title", {}).get("text")
        assert len(fig["data"]) == (3 if mode == "off" else 5)
    assert titles == {"abs": "|error| (a.u.)", "signed": "error (a.u.)", "ssim": "local SSIM", "off": None}
    at.selectbox(key=f"{KEY}.error").set_value("signed").run()
    axis = _fig(at)["layout"]["coloraxis2"]
    assert axis["cmin"] == pytest.approx(-axis["cmax"])
    at.selectbox(key=f"{KEY}.error").set_value("abs").run()


def test_window_presets(at):
    target, _ = _results(at)
    for preset in ("tissue", "full"):
        at.selectbox(key=f"{KEY}.preset").set_value(preset).run()
        axis = _fig(at)["layout"]["coloraxis"]
        assert (axis["cmin"], axis["cmax"]) == pytest.approx(window_preset(target, preset), rel=1e-5)
    at.selectbox(key=f"{KEY}.preset").set_value("auto").run()
    at.slider(key=f"{KEY}.percentile").set_value(95.0).run()
    assert _fig(at)["layout"]["coloraxis"]["cmax"] == pytest.approx(np.percentile(target, 95.0), rel=1e-5)
    at.selectbox(key=f"{KEY}.preset").set_value("full").run()


def test_drag_tool(at):
    for tool, mode in (("ROI box", "select"), ("Line", "lasso"), ("Zoom", "zoom")):
        at.button_group(key=f"{KEY}.tool").set_value(tool).run()
        assert _fig(at)["layout"]["dragmode"] == mode


def test_flip_and_blink(at):
    uirevision = _fig(at)["layout"]["uirevision"]
    at.button_group(key=f"{KEY}.layout").set_value("Flip").run()
    fig = _fig(at)  # every image in one panel, flipped by the figure's own buttons (the browser test clicks them)
    assert [t["name"] for t in fig["data"] if t.get("visible", True)] == ["Zero-filled", "error Zero-filled"]
    assert [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]] == ["Target (reference)", "Zero-filled",
                                                                                "SENSE (CG)"]
    assert fig["layout"]["uirevision"] == uirevision

    at.button_group(key=f"{KEY}.layout").set_value("Blink").run()
    fig = _fig(at)
    assert [f["name"] for f in fig["frames"]] == ["Target (reference)", "Zero-filled"]
    at.selectbox(key=f"{KEY}.blink").set_value("SENSE (CG)").run()
    at.select_slider(key=f"{KEY}.blink_ms").set_value(250).run()
    fig = _fig(at)
    assert [f["name"] for f in fig["frames"]] == ["Target (reference)", "SENSE (CG)"]
    play = fig["layout"]["updatemenus"][0]["buttons"][0]["args"]
    assert play[1]["frame"]["duration"] == 250 and play[0][:2] == ["Target (reference)", "SENSE (CG)"]
    at.button_group(key=f"{KEY}.layout").set_value("Grid").run()
    assert len(_fig(at)["data"]) == 5


def test_roi_by_numbers(at):
    target, images = _results(at)
    at.toggle(key=f"{KEY}.roi.on").set_value(True).run()
    for name, value in (("top", 20), ("left", 10), ("bottom", 39), ("right", 29)):
        at.number_input(key=f"{KEY}.roi.{name}").set_value(value).run()
    assert not at.exception and not at.error
    shapes = [s for s in _fig(at)["layout"]["shapes"] if s["type"] == "rect"]
    assert len(shapes) == 5 and (shapes[0]["x0"], shapes[0]["y0"], shapes[0]["x1"], shapes[0]["y1"]) == (9.5, 19.5, 29.5, 39.5)
    table = at.dataframe[0].value
    expected = roi_stats(target, images, Box(20, 10, 40, 30))
    assert list(table["Image"]) == [r["label"] for r in expected]
    for (_, row), want in zip(table.iterrows(), expected):
        assert row["Mean"] == pytest.approx(want["mean"]) and row["Std"] == pytest.approx(want["std"])
        if want["ssim"] is not None:
            assert row["SSIM"] == pytest.approx(want["ssim"]) and row["PSNR (dB)"] == pytest.approx(want["psnr"])
    tiles = figure(at, f"{KEY}.roi_tiles")
    assert len(tiles["data"]) == 5 and all(_array(t["z"]).shape == (20, 20) for t in tiles["data"])
    at.number_input(key=f"{KEY}.roi.bottom").set_value(5).run()  # bottom above top: one clear error
    assert [e.value for e in at.error] == ["The ROI needs top <= bottom and left <= right."]
    at.number_input(key=f"{KEY}.roi.bottom").set_value(39).run()
    at.toggle(key=f"{KEY}.roi.zoom").set_value(True).run()
    layout = _fig(at)["layout"]
    assert layout["xaxis"]["range"] == [4.5, 34.5] and layout["yaxis"]["range"] == [44.5, 14.5]  # the ROI and a margin
    at.button_group(key=f"{KEY}.layout").set_value("Flip").run()
    assert _fig(at)["layout"]["xaxis"]["range"] == [4.5, 34.5]  # the ROI zoom holds in every layout
    at.button_group(key=f"{KEY}.layout").set_value("Grid").run()
    at.toggle(key=f"{KEY}.roi.zoom").set_value(False).run()
    at.toggle(key=f"{KEY}.roi.on").set_value(False).run()
    assert "range" not in _fig(at)["layout"]["xaxis"]
    assert not at.error and not [s for s in _fig(at)["layout"].get("shapes", []) if s["type"] == "rect"]


def test_line_by_numbers(at):
    at.toggle(key=f"{KEY}.line.on").set_value(True).run()
    for name, value in (("r0", 30), ("c0", 5), ("r1", 30), ("c1", 55)):
        at.number_input(key=f"{KEY}.line.{name}").set_value(value).run()
    profile = figure(at, f"{KEY}.profile")
    assert [t["name"] for t in profile["data"]] == ["reference", "Zero-filled", "SENSE (CG)"]
    target, _ = _results(at)
    np.testing.assert_allclose(_array(profile["data"][0]["y"]), target[30, 5:56], rtol=1e-5)
    lines = [s for s in _fig(at)["layout"]["shapes"] if s["type"] == "line"]
    assert len(lines) == 5 and (lines[0]["x0"], lines[0]["x1"]) == (5, 55)
    at.number_input(key=f"{KEY}.line.c1").set_value(5).run()  # both ends on one pixel
    assert [e.value for e in at.error] == ["The line's two ends are the same pixel: move one of them."]
    at.toggle(key=f"{KEY}.line.on").set_value(False).run()
    assert not at.error


def test_a_drawn_box_and_line_fill_the_inputs(at):
    """What a box and a lasso stroke drawn in the browser set (the browser test draws them for real)."""
    from explorer.ui.viewer import selection_state  # noqa: PLC0415

    selection = {"box": [{"x": [9.6, 20.4], "y": [3.2, 12.9]}], "lasso": [{"x": [2.0, 30.0, 50.2], "y": [40.0, 41.0, 44.4]}]}
    updates = selection_state(KEY, selection, (64, 64))
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
    with pytest.raises(ValueError, match="shorter than one pixel"):
        selection_state(KEY, {"lasso": [{"x": [3.0, 3.2], "y": [4.0, 4.1]}]}, (64, 64))
    assert selection_state(KEY, {}, (64, 64)) == {}
