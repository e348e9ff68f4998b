"""Unit tests of explorer/figures/images.py and the viewer's comparison grid (numpy -> plotly, no Streamlit)."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.figures import images as figures
from explorer.viewer.layouts import grid_figure


def comparison(target, images, error_max=None, **kwargs) -> go.Figure:
    """The viewer's grid with |error| maps (what the Reconstruct page shows by default)."""
    return grid_figure(target, images, error_mode="abs", error_scale=error_max, **kwargs)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    target = rng.random((24, 20)).astype(np.float32)
    return target, {"A": target + 0.1, "B": target * 0.5, "C": np.zeros_like(target)}


def _axes(fig: go.Figure, letter: str) -> dict:
    return {k: v for k, v in fig.layout.to_plotly_json().items() if k.startswith(f"{letter}axis")}


def test_comparison_trace_count_and_coloraxes(images):
    target, recons = images
    fig = comparison(target, recons, window=(0.0, 1.0))
    assert len(fig.data) == 1 + 2 * len(recons)
    assert all(isinstance(t, go.Heatmap) for t in fig.data)
    image_traces = [t for t in fig.data if t.coloraxis == "coloraxis"]
    error_traces = [t for t in fig.data if t.coloraxis == "coloraxis2"]
    assert len(image_traces) == 1 + len(recons) and len(error_traces) == len(recons)
    assert fig.layout.coloraxis.cmin == 0.0 and fig.layout.coloraxis.cmax == 1.0
    assert fig.layout.coloraxis.colorbar.title.text and fig.layout.coloraxis2.colorbar.title.text


def test_comparison_axes_linked_square_and_reversed(images):
    target, recons = images
    fig = comparison(target, recons)
    xs, ys = _axes(fig, "x"), _axes(fig, "y")
    assert len(xs) == len(ys) == len(fig.data)
    assert "matches" not in xs["xaxis"] and "matches" not in ys["yaxis"]
    assert all(ax["matches"] == "x" for name, ax in xs.items() if name != "xaxis")
    assert all(ax["matches"] == "y" for name, ax in ys.items() if name != "yaxis")
    for name, ax in ys.items():
        assert ax["autorange"] == "reversed"
        assert ax["scaleanchor"] == "x" + name[5:] and ax.get("scaleratio", 1) == 1


def test_comparison_uirevision(images):
    target, recons = images
    assert comparison(target, recons).layout.uirevision == "comparison"
    assert comparison(target, recons, uirevision="knee|320").layout.uirevision == "knee|320"


def test_comparison_common_error_scale(images):
    target, recons = images
    fig = comparison(target, recons)
    expected = max(float(np.abs(im - target).max()) for im in recons.values())
    assert fig.layout.coloraxis2.cmin == 0.0
    assert fig.layout.coloraxis2.cmax == pytest.approx(expected)
    errors = [t for t in fig.data if t.coloraxis == "coloraxis2"]
    np.testing.assert_allclose(np.asarray(errors[1].z), np.abs(recons["B"] - target), rtol=1e-6)
    assert comparison(target, recons, error_max=0.25).layout.coloraxis2.cmax == 0.25


def test_comparison_without_target(images):
    _, recons = images
    fig = comparison(None, recons)
    assert len(fig.data) == len(recons)
    assert all(t.coloraxis == "coloraxis" for t in fig.data)
    assert "coloraxis2" not in fig.layout.to_plotly_json()
    top = max(float(im.max()) for im in recons.values())
    assert fig.layout.coloraxis.cmax == pytest.approx(top)


def test_comparison_subtitles_and_json_is_compact(images):
    target, recons = images
    fig = comparison(target, recons, subtitles={"A": "SSIM 0.9"})
    titles = [a.text for a in fig.layout.annotations]
    assert any("SSIM 0.9" in t for t in titles) and any("Target" in t for t in titles)
    spec = json.loads(fig.to_json())
    # numpy arrays travel once, as base64 typed arrays (no duplicate text/customdata)
    for trace in spec["data"]:
        assert isinstance(trace["z"], dict) and "bdata" in trace["z"]
        assert "customdata" not in trace and "text" not in trace


def test_comparison_rejects_bad_input(images):
    target, recons = images
    with pytest.raises(ValueError):
        comparison(target, {})
    with pytest.raises(ValueError):
        comparison(target, {"A": np.zeros((5, 5))})
    with pytest.raises(ValueError):
        comparison(None, {"A": np.zeros((2, 3, 4))})


def test_mask_and_kspace_figures():
    pattern = np.zeros((16, 12), bool)
    pattern[:, ::3] = True
    fig = figures.mask_figure(pattern)
    assert len(fig.data) == 1 and np.asarray(fig.data[0].z).shape == (16, 12)
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"
    assert np.asarray(figures.mask_figure(pattern[0]).data[0].z).shape == (32, 12)

    rng = np.random.default_rng(1)
    k = (rng.standard_normal((3, 16, 12)) + 1j * rng.standard_normal((3, 16, 12))).astype(np.complex64)
    k[:, :, 1::2] = 0
    logmag = figures.kspace_log_magnitude(k)
    assert logmag.shape == (16, 12) and logmag.max() == pytest.approx(0.0) and logmag.min() == pytest.approx(-6.0)
    fig = figures.kspace_figure(k)
    assert fig.data[0].showscale and fig.data[0].zmax == 0.0
    assert figures.kspace_figure(k[0]).data[0].z.shape == (16, 12)


def test_image_figure_window():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    fig = figures.image_figure(image, "img", (1.0, 5.0))
    assert (fig.data[0].zmin, fig.data[0].zmax) == (1.0, 5.0)
    assert fig.data[0].colorscale[0][1].startswith("rgb")  # gray scale resolved by plotly
    assert figures.image_figure(image + 1j * image).data[0].z.dtype == np.float32


def test_no_streamlit_placeholder_colours(images):
    """Streamlit's front end rewrites #000001..#000010 (its theme placeholders) in any figure."""
    import re  # noqa: PLC0415

    target, recons = images
    k = np.ones((2, 8, 8), np.complex64)
    for fig in (comparison(target, recons), figures.kspace_figure(k), figures.mask_figure(target > 0.5),
                figures.image_figure(target, colorscale="inferno")):
        assert not re.search(r"#0000(0[1-9]|10)\b", fig.to_json(), flags=re.IGNORECASE)


def test_window_and_error_sliders(images):
    target, recons = images
    unit = float(target.max())
    fig = comparison(target, recons, window=(0.0, unit), error_max=0.3 * unit)
    low, high, err = fig.layout.sliders
    for slider, prop, value in ((low, "coloraxis.cmin", 0.0), (high, "coloraxis.cmax", unit),
                                (err, "coloraxis2.cmax", 0.3 * unit)):
        assert all(step.method == "relayout" and list(step.args[0]) == [prop] for step in slider.steps)
        assert slider.steps[slider.active].args[0][prop] == pytest.approx(value)
    values = [s.args[0]["coloraxis.cmax"] / unit for s in high.steps]
    assert values == sorted(values) and values[0] > 0 and values[-1] == pytest.approx(1.5)
    # an initial value off the grid is added as a step and made active
    fig = comparison(target, recons, error_max=0.123 * unit)
    err = fig.layout.sliders[2]
    assert err.steps[err.active].args[0]["coloraxis2.cmax"] == pytest.approx(0.123 * unit)
    assert len(comparison(None, recons).layout.sliders) == 2
    assert not comparison(target, recons, controls=False).layout.sliders


def test_static_previews():
    pattern = np.zeros(12, dtype=bool)
    pattern[[0, 5, 6]] = True
    img = figures.mask_preview(pattern, rows=20)
    assert img.shape == (20, 12) and img.dtype == np.uint8
    assert set(np.unique(img)) == {0, 255} and (img[:, 5] == 255).all() and (img[:, 1] == 0).all()
    k = np.zeros((2, 16, 12), np.complex64)
    k[:, 8, 6] = 1.0
    rgb = figures.kspace_preview(k)
    assert rgb.shape == (16, 12, 3) and rgb.dtype == np.uint8
    # the peak takes viridis' top colour (yellow), zero entries its bottom one (dark purple)
    assert tuple(rgb[8, 6]) == (253, 231, 37) and tuple(rgb[0, 0]) == (68, 1, 84)
    mid = figures.colorize(np.array([[0.0, 0.5, 1.0]]), 0.0, 1.0, "gray")
    assert tuple(mid[0, 0]) == (0, 0, 0) and min(mid[0, 2]) >= 250 and 100 < mid[0, 1, 0] < 150
