"""The viewer's figures (numpy in, ``go.Figure`` out; no Streamlit), in the conventions of :mod:`explorer.figures.images`.

* :func:`grid_figure`: the reference and every reconstruction in a grid of a chosen number of columns, each
  error map under its image; every panel shares one zoom (``matches``);
(The app's viewer itself runs in the browser, :mod:`explorer.viewer.payload`; these figures draw the ROI's
magnified tiles and serve notebooks and exports.)

Images share the gray colour axis ``coloraxis`` (one window for all), error maps ``coloraxis2`` whose colours
depend on the error mode (:data:`explorer.viewer.measure.ERROR_MODES`). Sliders under the panels set the window
and the error scale in the browser (no rerun). ``uirevision`` keeps the zoom when the same figure is drawn again;
Streamlit remounts a chart whose figure changed, so what must survive a change (the ROI zoom) goes into the figure.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.figures.style import (ERROR_COLORSCALE, FONT, IMAGE_COLORSCALE, TEMPLATE, as_image, colorbar, hover_text,
                                    image_axes, panel_title, rgb_scale, xy_refs)
from explorer.viewer.measure import error_map

TARGET_LABEL = "Target (reference)"
SIGNED_COLORSCALE = "RdBu_r"  # blue: too dark, red: too bright
TITLE_PX = 44  # vertical room for a panel's two-line title
SLIDER_PX = 64

_ERROR_STYLE = {  # mode: (colour scale, reversed?, colour bar title, hover name)
    "abs": (ERROR_COLORSCALE, False, "|error| (a.u.)", "|{} − target|"),
    "signed": (SIGNED_COLORSCALE, False, "error (a.u.)", "{} − target"),
    "ssim": (ERROR_COLORSCALE, True, "local SSIM", "local SSIM of {}"),
    "pair": (ERROR_COLORSCALE, False, "|difference| (a.u.)", "|{} − its pair|"),
}


def error_axis(mode: str, scale: float) -> dict:
    """``coloraxis2`` of error maps in ``mode``: ``abs`` ``[0, scale]``, ``signed`` ``[-scale, scale]``,
    ``ssim`` ``[scale, 1]`` (1 = black, like no error), ``pair`` ``[0, scale]``."""
    name, reverse, title, _ = _ERROR_STYLE[mode]
    stops = rgb_scale(name)
    if reverse:
        stops = [(round(1.0 - p, 6), c) for p, c in reversed(stops)]
    lo, hi = {"abs": (0.0, scale), "pair": (0.0, scale), "signed": (-scale, scale), "ssim": (scale, 1.0)}[mode]
    return dict(colorscale=stops, cmin=float(lo), cmax=float(hi) if hi > lo else float(lo) + 1e-6)


def default_error_scale(mode: str, errors: Mapping[str, np.ndarray], unit: float) -> float:
    """A readable default: the 99.5th percentile of ``|errors|`` (a few outliers would darken every map) on a
    grid of ``0.02 x unit`` for ``abs``/``signed``/``pair``; for ``ssim`` the lowest value, floored to 0.05."""
    if not errors:
        return 1.0
    if mode == "ssim":
        low = min(float(np.percentile(e, 0.5)) for e in errors.values())
        return float(min(0.9, max(0.0, math.floor(low / 0.05) * 0.05)))
    top = max(float(np.percentile(np.abs(e), 99.5)) for e in errors.values()) / unit
    return float(min(1.0, max(0.02, math.ceil(top / 0.02) * 0.02))) * unit


def compute_errors(target: np.ndarray | None, images: Mapping[str, np.ndarray], mode: str,
                   pairs: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
    """``{label: error map (h, w)}`` of each image in ``mode``; ``pair``: ``|image - its partner|`` for the
    labels in ``pairs`` (``{label: partner label}``); nothing without a reference (or ``off``)."""
    if mode == "off":
        return {}
    if mode == "pair":
        return {label: np.abs(images[label] - images[partner]) for label, partner in (pairs or {}).items()}
    if target is None:
        return {}
    return {label: error_map(target, image, mode) for label, image in images.items()}


def grid_figure(
    target: np.ndarray | None,
    images: Mapping[str, np.ndarray],
    *,
    columns: int | None = None,
    window: tuple[float, float] | None = None,
    error_mode: str = "abs",
    errors: Mapping[str, np.ndarray] | None = None,
    error_scale: float | None = None,
    subtitles: Mapping[str, str] | None = None,
    uirevision: str = "comparison",
    panel_px: int = 300,
    controls: bool = True,
    target_label: str = TARGET_LABEL,
    unit: float | None = None,
    beside: bool = False,
) -> go.Figure:
    """The reference and the reconstructions in a grid of ``columns``, each error map under its image.

    Args:
        target: reference ``(h, w)`` or ``None`` (no error maps unless given in ``errors``).
        images: ``{label: (h, w)}``.
        columns: panels per row (default: all in one row).
        window: ``(lo, hi)`` of every image panel (default ``(0, max of the reference or of the images)``).
        error_mode: a key of :data:`~explorer.viewer.measure.ERROR_MODES` or ``"pair"``; ``off``: no error rows.
        errors: precomputed ``{label: map (h, w)}`` (default: :func:`compute_errors`).
        error_scale: ``abs``/``signed``/``pair``: top of the error scale; ``ssim``: its bottom (default: the
            largest error, or the lowest SSIM; :func:`default_error_scale` gives a more readable one).
        subtitles: ``{label: text}`` under the panel titles.
        uirevision: keep the zoom across redraws while this string stays the same.
        panel_px: height of one row of panels (the width follows the page; pixels stay square).
        controls: window / error sliders under the panels (``layout.sliders``).
        target_label: the reference panel's title.
        unit: the sliders' unit (default: the reference's maximum, else the images').
        beside: with ONE image and its error map, put the map beside the image instead of under it.

    Returns:
        heatmaps in reading order (per row of images: the images, then their error maps); image traces on
        ``coloraxis``, error traces on ``coloraxis2``; the first trace's axes are ``x``/``y`` and every other
        panel ``matches`` them.

    Raises:
        ValueError: no images, images of different shapes, or an unknown error mode.
    """
    if not images:
        raise ValueError("the viewer needs at least one image")
    if error_mode not in _ERROR_STYLE and error_mode != "off":
        raise ValueError(f"unknown error mode {error_mode!r}")
    recons = {label: as_image(im, label) for label, im in images.items()}
    tgt = None if target is None else as_image(target, "target")
    shapes = {im.shape for im in recons.values()} | ({tgt.shape} if tgt is not None else set())
    if len(shapes) != 1:
        raise ValueError(f"all images must have the same shape, got {sorted(shapes)}")
    errs = dict(errors) if errors is not None else compute_errors(tgt, recons, error_mode)
    errs = {k: as_image(v, f"error of {k}") for k, v in errs.items() if k in recons} if error_mode != "off" else {}
    subtitles = dict(subtitles or {})
    panels = ([(target_label, tgt)] if tgt is not None else []) + list(recons.items())
    if tgt is not None and subtitles and target_label not in subtitles:
        subtitles[target_label] = "fully sampled"  # keeps the row's titles aligned
    with_errors = bool(errs)
    name, _, bar_title, hover = _ERROR_STYLE.get(error_mode, _ERROR_STYLE["abs"])
    beside = beside and len(panels) == 1 and with_errors
    cols = 2 if beside else max(1, min(int(columns or len(panels)), len(panels)))
    blocks = [panels[i:i + cols] for i in range(0, len(panels), cols)]
    specs, titles, cells = [], [], []  # cells: (row, col, label, array, is_error)
    for block in blocks:
        row = len(specs) + 1
        specs.append([{} if i < len(block) or beside else None for i in range(cols)])
        for i, (label, image) in enumerate(block):
            titles.append(panel_title(label, subtitles.get(label)))
            cells.append((row, i + 1, label, image, False))
            if beside:
                titles.append(panel_title(hover.format(label), None))
                cells.append((row, 2, label, errs[label], True))
        if with_errors and not beside:
            specs.append([{} if i < len(block) and block[i][0] in errs else None for i in range(cols)])
            for i, (label, _) in enumerate(block):
                if label in errs:
                    titles.append(panel_title(hover.format(label), None))
                    cells.append((row + 1, i + 1, label, errs[label], True))
    rows = len(specs)
    gap = TITLE_PX if any(subtitles.values()) else TITLE_PX - 14
    body = rows * panel_px + (rows - 1) * gap
    fig = make_subplots(rows=rows, cols=cols, specs=specs, subplot_titles=titles,
                        horizontal_spacing=0.1 if beside else 0.012,  # beside: the image's colour bar between them
                        vertical_spacing=gap / body if rows > 1 else 0.0)
    for row, col, label, array, is_error in cells:
        if is_error:
            trace = go.Heatmap(z=array, coloraxis="coloraxis2", hovertemplate=hover_text(hover.format(label)),
                               name=f"error {label}")
        else:
            trace = go.Heatmap(z=array, coloraxis="coloraxis", hovertemplate=hover_text(label), name=label)
        fig.add_trace(trace, row=row, col=col)

    if unit is None:
        unit = float(tgt.max()) if tgt is not None else max(float(im.max()) for im in recons.values())
    unit = float(unit) if unit > 0 else 1.0
    lo, hi = (0.0, unit) if window is None else (float(window[0]), float(window[1]))
    hi = hi if hi > lo else lo + max(abs(lo), 1.0) * 1e-6
    layout = link_panels(fig)
    image_domain, error_domain = _bar_domains(fig, cells, with_errors, len(blocks))
    image_bar = colorbar("intensity (a.u.)", image_domain, 1)
    if beside:
        image_bar.update(x=fig.layout.xaxis.domain[1] + 0.005, xanchor="left")
    layout.update(
        coloraxis=dict(colorscale=rgb_scale(IMAGE_COLORSCALE), cmin=lo, cmax=hi, colorbar=image_bar),
        uirevision=uirevision, height=body + 48 + (SLIDER_PX + 8 if controls else 8),
        margin=dict(l=8, r=8, t=48, b=(SLIDER_PX + 8) if controls else 8), font=FONT, template=TEMPLATE,
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode="zoom",
        annotations=[dict(a.to_plotly_json(), font=dict(size=13)) for a in fig.layout.annotations],
    )
    mode = error_mode if error_mode in _ERROR_STYLE else "abs"
    if with_errors:
        if error_scale is None:  # the classic comparison figure: the largest error
            error_scale = (min(float(e.min()) for e in errs.values()) if mode == "ssim"
                           else max(float(np.abs(e).max()) for e in errs.values()))
        error_scale = float(error_scale) if mode == "ssim" or (error_scale and error_scale > 0) else 1e-6
        layout["coloraxis2"] = dict(error_axis(mode, error_scale), colorbar=colorbar(bar_title, error_domain, 1))
    if controls:
        layout["sliders"] = window_sliders(lo, hi, unit, mode if with_errors else None, error_scale)
    fig.update_layout(layout)
    return fig


def link_panels(fig: go.Figure, first: int = 0) -> dict:
    """Layout styling every image subplot and linking it to trace ``first``'s axes (one zoom for all)."""
    layout: dict = {}
    refs = xy_refs(fig)
    x0, y0 = refs[first]
    for i, (xref, yref) in enumerate(refs):
        axes = image_axes(xref, yref)
        if i > first:
            axes["xaxis" + xref[1:]] = dict(axes["xaxis" + xref[1:]], matches=x0)
            axes["yaxis" + yref[1:]] = dict(axes["yaxis" + yref[1:]], matches=y0)
        layout.update(axes)
    return layout


def _bar_domains(fig: go.Figure, cells: list, with_errors: bool, blocks: int) -> tuple[tuple, tuple]:
    """Vertical extents of the image and error colour bars: their rows with one row of blocks, else halves."""
    if not with_errors:
        return (0.0, 1.0), (0.0, 1.0)
    if blocks == 1:
        first_error = next(i for i, c in enumerate(cells) if c[4])
        return tuple(fig.layout.yaxis.domain), tuple(fig.layout[f"yaxis{first_error + 1}"].domain)
    return (0.52, 1.0), (0.0, 0.48)


def window_sliders(lo: float, hi: float, unit: float, error_mode: str | None, error_scale: float | None) -> list[dict]:
    """Plotly sliders: window low / high (× ``unit``) and, with an error mode, the error scale."""
    sliders = [_slider("Window low (× reference max)", {"coloraxis.cmin": 1}, np.arange(0.0, 0.5001, 0.025), lo, unit, 0.0),
               _slider("Window high (× reference max)", {"coloraxis.cmax": 1}, np.arange(0.1, 1.5001, 0.05), hi, unit, 0.35)]
    if error_mode in ("abs", "pair"):
        sliders.append(_slider("Error max (× reference max)", {"coloraxis2.cmax": 1}, np.arange(0.02, 1.0001, 0.02),
                               error_scale, unit, 0.70))
    elif error_mode == "signed":
        sliders.append(_slider("Error ± (× reference max)", {"coloraxis2.cmin": -1, "coloraxis2.cmax": 1},
                               np.arange(0.02, 1.0001, 0.02), error_scale, unit, 0.70))
    elif error_mode == "ssim":
        sliders.append(_slider("Local SSIM low", {"coloraxis2.cmin": 1}, np.arange(-0.2, 0.9501, 0.05), error_scale, 1.0, 0.70))
    return sliders


def _slider(name: str, props: Mapping[str, int], grid: np.ndarray, value: float, unit: float, x: float) -> dict:
    """A plotly slider setting each layout property in ``props`` to ``sign * v * unit`` for ``v`` in ``grid``
    (``value`` itself is one of the steps, and the active one)."""
    rel = value / unit
    steps = sorted({round(float(g), 4) for g in grid} | {round(rel, 4)})
    active = min(range(len(steps)), key=lambda i: abs(steps[i] - rel))
    return dict(
        active=active, x=x, len=0.28, y=0, yanchor="top", xanchor="left", pad=dict(t=36, b=0),
        currentvalue=dict(prefix=f"{name}: ", font=dict(size=12, color=FONT["color"]), xanchor="left"),
        steps=[dict(method="relayout", label=f"{v:.3g}",
                    args=[{p: sign * (value if i == active else v * unit) for p, sign in props.items()}])
               for i, v in enumerate(steps)],
        font=dict(size=1, color="rgba(0,0,0,0)"), tickcolor="rgba(0,0,0,0)", ticklen=0, minorticklen=0,
        bgcolor="#e6e9ef", activebgcolor="#1f6feb", bordercolor="#c9ced8", borderwidth=1,
    )


__all__ = ["TARGET_LABEL", "compute_errors", "default_error_scale", "error_axis",
           "grid_figure", "link_panels", "window_sliders"]
