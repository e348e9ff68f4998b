"""The viewer's library (explorer/viewer): measurements and figures, numpy in, no Streamlit."""

from __future__ import annotations

import re

import math

import numpy as np
import pytest

from explorer.metrics import compute_metrics
from explorer.viewer import detail, layouts
from explorer.viewer.measure import (Box, error_map, line_from_stroke, line_profile, parse_line, roi_stats, ssim_map,
                                     window_preset)


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:48, 0:40]
    target = ((np.hypot(yy - 24, xx - 20) < 14) * (0.6 + 0.3 * np.sin(xx / 3.0))).astype(np.float32)
    noisy = (target + 0.05 * rng.standard_normal(target.shape)).astype(np.float32)
    return target, {"noisy": np.abs(noisy), "dim": 0.8 * target, "shifted": np.roll(target, 2, axis=1)}


# ----------------------------------------------------------------------------- measurements
def test_ssim_map_interior_mean_is_the_reported_ssim(data):
    target, images = data
    for image in images.values():
        local = ssim_map(target, image)
        assert local.shape == target.shape and local.max() <= 1.0 + 1e-6
        assert float(local[3:-3, 3:-3].mean()) == pytest.approx(compute_metrics(target, image)["ssim"], abs=1e-5)
    assert np.allclose(ssim_map(target, target), 1.0)


def test_error_maps(data):
    target, images = data
    np.testing.assert_allclose(error_map(target, images["dim"], "abs"), 0.2 * target, atol=1e-6)
    np.testing.assert_allclose(error_map(target, images["dim"], "signed"), -0.2 * target, atol=1e-6)
    with pytest.raises(ValueError, match="unknown error mode"):
        error_map(target, target, "relative")
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim_map(np.ones((5, 5)), np.ones((5, 5)))


def test_window_presets(data):
    target, _ = data
    assert window_preset(target, "full") == (0.0, pytest.approx(float(target.max())))
    lo, hi = window_preset(target, "tissue")
    inside = target[target > 0]
    assert lo >= 0.5 * inside.min() and lo > 0 and hi <= target.max()  # the background is not part of it
    spike = target.copy()
    spike[0, 0] = 100.0  # one outlier pixel
    assert window_preset(spike, "full")[1] == 100.0
    assert window_preset(spike, "auto", 99.0)[1] == pytest.approx(np.percentile(spike, 99.0))
    assert window_preset(np.zeros((8, 8)), "tissue") == (0.0, 1.0)
    with pytest.raises(ValueError, match="percentile"):
        window_preset(target, "auto", 20.0)
    with pytest.raises(ValueError, match="unknown window preset"):
        window_preset(target, "bone")


def test_box_from_a_selection():
    # pixel c covers [c - 0.5, c + 0.5]: a box from x 2.4 to 5.6 holds the centres of columns 3, 4, 5
    assert Box.from_selection([2.4, 5.6], [0.6, 1.2], (10, 10)) == Box(1, 3, 2, 6)
    assert Box.from_selection([5.6, 2.4], [1.2, 0.6], (10, 10)) == Box(1, 3, 2, 6)  # dragged backwards
    assert Box.from_selection([3.1, 3.3], [4.6, 4.8], (10, 10)) == Box(5, 3, 6, 4)  # too small: nearest pixel
    assert Box.from_selection([-5.0, 30.0], [-2.0, 4.0], (10, 12)) == Box(0, 0, 5, 12)  # clipped to the image
    with pytest.raises(ValueError, match="ROI needs"):
        Box(4, 0, 4, 3)
    assert Box.parse(" 2, 3,10,12") == Box(2, 3, 11, 13)  # inclusive, as the app's inputs
    for bad in ("1,2,3", "a,b,c,d", "1,2,-3,4"):
        with pytest.raises(ValueError, match="TOP,LEFT,BOTTOM,RIGHT"):
            Box.parse(bad)
    assert parse_line("1,2,3,4") == ((1.0, 2.0), (3.0, 4.0))
    with pytest.raises(ValueError, match="same pixel"):
        parse_line("1,2,1,2")
    with pytest.raises(ValueError, match="leaves the 10x10 image"):
        Box(0, 0, 11, 3).check((10, 10))


def test_roi_statistics(data):
    target, images = data
    box = Box(10, 8, 30, 28)
    rows = roi_stats(target, images, box)
    assert [r["label"] for r in rows] == ["reference", "noisy", "dim", "shifted"]
    patch = target[10:30, 8:28]
    assert rows[0]["mean"] == pytest.approx(patch.mean()) and rows[0]["std"] == pytest.approx(patch.std())
    assert rows[0]["ssim"] is None and rows[0]["psnr"] is None
    dim = rows[2]
    mse = np.mean((0.8 * patch - patch).astype(np.float64) ** 2)
    assert dim["psnr"] == pytest.approx(10 * math.log10(float(target.max()) ** 2 / mse), rel=1e-5)
    assert dim["ssim"] == pytest.approx(float(ssim_map(target, images["dim"])[10:30, 8:28].mean()), abs=1e-6)
    same = roi_stats(target, {"copy": target.copy()}, box)[1]
    assert same["psnr"] == math.inf and same["ssim"] == pytest.approx(1.0)
    alone = roi_stats(None, images, box)
    assert len(alone) == 3 and all(r["ssim"] is None and r["psnr"] is None for r in alone)
    # the worse reconstruction scores worse inside the box too
    assert rows[1]["ssim"] > rows[3]["ssim"]
    with pytest.raises(ValueError, match="leaves"):
        roi_stats(target, images, Box(0, 0, 60, 5))


def test_line_profiles():
    ramp = np.tile(np.arange(20, dtype=np.float32), (10, 1))  # value = column
    distance, values = line_profile(ramp, (4.0, 2.0), (4.0, 12.0))
    assert len(values) == 11 and distance[0] == 0 and distance[-1] == pytest.approx(10.0)
    np.testing.assert_allclose(values, np.arange(2, 13), atol=1e-6)
    _, diagonal = line_profile(ramp, (0.0, 0.0), (9.0, 9.0))
    np.testing.assert_allclose(diagonal, np.linspace(0, 9, len(diagonal)), atol=1e-6)
    with pytest.raises(ValueError, match="outside"):
        line_profile(ramp, (0.0, 0.0), (10.0, 3.0))
    assert line_from_stroke([1.0, 4.0, 9.0], [2.0, 3.0, 4.0], (10, 10)) == ((2.0, 1.0), (4.0, 9.0))
    assert line_from_stroke([-3.0, 30.0], [2.0, 2.0], (10, 10)) == ((2.0, 0.0), (2.0, 9.0))
    with pytest.raises(ValueError, match="shorter than one pixel"):
        line_from_stroke([1.0, 1.2], [1.0, 1.3], (10, 10))
    with pytest.raises(ValueError, match="draw a line"):
        line_from_stroke([1.0], [1.0], (10, 10))


# ----------------------------------------------------------------------------- figures
def _rows(fig) -> int:
    return len({tuple(fig.layout[f"yaxis{t.yaxis[1:]}"].domain) for t in fig.data})


def test_grid_columns_and_error_rows(data):
    target, images = data
    fig = layouts.grid_figure(target, images, columns=2)
    # 4 panels in 2 columns: 2 rows of images, each followed by a row of error maps (none under the reference)
    assert len(fig.data) == 4 + 3 and _rows(fig) == 4
    assert [t.name for t in fig.data] == ["Target (reference)", "noisy", "error noisy", "dim", "shifted",
                                          "error dim", "error shifted"]
    assert all(fig.layout[f"xaxis{i}"].matches == "x" for i in range(2, 8))
    assert _rows(layouts.grid_figure(target, images, columns=4)) == 2
    assert _rows(layouts.grid_figure(target, images, columns=1, error_mode="off")) == 4
    assert "coloraxis2" not in layouts.grid_figure(target, images, error_mode="off").layout.to_plotly_json()
    with pytest.raises(ValueError, match="unknown error mode"):
        layouts.grid_figure(target, images, error_mode="relative")


def test_error_modes_scales(data):
    target, images = data
    signed = layouts.grid_figure(target, images, error_mode="signed", error_scale=0.3)
    assert (signed.layout.coloraxis2.cmin, signed.layout.coloraxis2.cmax) == (-0.3, 0.3)
    assert signed.layout.sliders[2].steps[0].args[0].keys() == {"coloraxis2.cmin", "coloraxis2.cmax"}
    ssim = layouts.grid_figure(target, images, error_mode="ssim")
    assert ssim.layout.coloraxis2.cmax == 1.0 and ssim.layout.coloraxis2.colorbar.title.text == "local SSIM"
    maps = [np.asarray(t.z) for t in ssim.data if t.coloraxis == "coloraxis2"]
    np.testing.assert_allclose(maps[1], ssim_map(target, images["dim"]), atol=1e-6)
    assert ssim.layout.coloraxis2.colorscale[-1][1] == "rgb(0,0,4)"  # SSIM 1 = black, as no error
    errors = layouts.compute_errors(target, images, "abs")
    scale = layouts.default_error_scale("abs", errors, float(target.max()))
    assert scale <= max(float(e.max()) for e in errors.values()) + 0.02 * float(target.max())
    pair = layouts.compute_errors(None, images, "pair", {"dim": "noisy"})
    assert list(pair) == ["dim"] and np.allclose(pair["dim"], np.abs(images["dim"] - images["noisy"]))
    assert layouts.compute_errors(None, images, "abs") == {}


def test_roi_tiles_overlays_and_profile(data):
    target, images = data
    box = Box(10, 8, 30, 28)
    errors = layouts.compute_errors(target, images, "abs")
    tiles = detail.roi_tiles_figure(target, images, errors, box, window=(0.0, 1.0), error_mode="abs", error_scale=0.2)
    assert len(tiles.data) == 4 + 3 and all(np.asarray(t.z).shape == (20, 20) for t in tiles.data)
    assert all((t.x0, t.y0) == (8, 10) for t in tiles.data)  # hover in image coordinates
    by_name = {t.name: np.asarray(t.z) for t in tiles.data}
    np.testing.assert_allclose(by_name["error noisy"], errors["noisy"][10:30, 8:28])
    fig = layouts.grid_figure(target, images, columns=2)
    detail.add_overlays(fig, box, ((5.0, 5.0), (20.0, 30.0)))
    shapes = fig.layout.shapes
    assert len(shapes) == 2 * 7 and {s.type for s in shapes} == {"rect", "line"}
    assert (shapes[0].x0, shapes[0].y1) == (7.5, 29.5)
    detail.zoom_to(fig, box, margin=0.0)
    assert list(fig.layout.xaxis.range) == [7.5, 27.5] and list(fig.layout.yaxis.range) == [29.5, 9.5]  # row 0 on top
    profile = detail.line_profile_figure(target, images, ((5.0, 5.0), (20.0, 30.0)))
    assert [t.name for t in profile.data] == ["reference", "noisy", "dim", "shifted"]
    np.testing.assert_allclose(profile.data[2].y, 0.8 * np.asarray(profile.data[0].y), atol=1e-6)


def test_payload_round_trip_and_frames_sent_once(data):
    from explorer.viewer.payload import LEVELS, Frame, Sent, decode, encode  # noqa: PLC0415

    target, images = data
    frames = [Frame(3, {"ref": target, **images}, "ref", {"dim": "SSIM 0.9"}, {"full": (0.0, 1.0)}),
              Frame(4, {"ref": target * 0.5, **images}, "ref")]
    sent = Sent()
    payload = encode(frames, 0, sent=sent, layout="row")
    header, decoded = decode(payload)
    assert header["shape"] == list(target.shape) and header["current"] == header["frames"][0]["id"]
    assert [f["slice"] for f in header["frames"]] == [3, 4] and header["settings"] == {"layout": "row"}
    assert header["frames"][0]["subtitles"] == {"dim": "SSIM 0.9"} and header["frames"][0]["windows"]["full"] == [0, 1]
    for frame, fid in zip(frames, (f["id"] for f in header["frames"])):
        for label, image in frame.images.items():
            np.testing.assert_allclose(decoded[fid][label], image, rtol=0, atol=float(np.max(image)) / LEVELS)
    # 2 bytes a pixel, plus a small header
    assert len(payload) - 2 * 2 * 4 * target.size < 2000
    again = encode(frames, 1, sent=sent)  # the browser holds both: headers only
    header2, decoded2 = decode(again)
    assert decoded2 == {} and header2["current"] == header["frames"][1]["id"] and len(again) < 2000
    changed = Frame(3, {"ref": target, **{k: v * 0.9 for k, v in images.items()}}, "ref")
    assert changed.planes()[0] != header["frames"][0]["id"]  # other images, another id
    with pytest.raises(ValueError, match="same shape"):
        encode([Frame(0, {"a": target, "b": target[:-1]})], 0)
    with pytest.raises(ValueError, match="not a viewer payload"):
        decode(b"nope")
    with pytest.raises(ValueError, match="not one of"):
        encode(frames, 2)


def test_roi_tile_titles_fit_their_tiles(data):
    target, _ = data
    images = {f"a rather long method name number {i}": target * (0.9 - 0.05 * i) for i in range(6)}
    errors = layouts.compute_errors(target, images, "abs")
    fig = detail.roi_tiles_figure(target, images, errors, Box(10, 8, 30, 28), window=(0.0, 1.0), error_mode="abs",
                                  error_scale=0.2)
    texts = [re.sub("<[^>]+>", "", a.text) for a in fig.layout.annotations]
    assert len(texts) == 7 + 6 and all(len(t) <= 1050 / 7 / 7.5 + 1 for t in texts)  # 7 tiles in about 1050 px
    assert texts[0] == "reference" and texts[1].endswith("…") and texts[7:] == ["|error|"] * 6
