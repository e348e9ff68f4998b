"""Figures of the teaching mode (numpy in, ``go.Figure`` out; no Streamlit), built on :mod:`explorer.figures.images`.

Sampling masks are drawn so that no sampled line is lost at any panel size: a column mask is not a heatmap (the
browser shrinks a 320-column heatmap into a 240-pixel panel by dropping whole columns, every fourth one, which for
an equispaced mask can be every sampled one) but vector shapes: each run of sampled columns a filled rectangle, and
each sampled column also a line :data:`MASK_LINE_PX` screen pixels wide, whatever the zoom.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.figures import images as figures
from explorer.figures import style

KSPACE_FLOOR = -6.0  # log10 |k| / max of what lies outside a region (the floor of figures.kspace_log_magnitude)
MASK_LINE_PX = 1.5  # screen width (pixels, at any zoom) of the line drawn for every sampled column
_BLACK = [(0.0, "rgb(0,0,0)"), (1.0, "rgb(0,0,0)")]
_WHITE = "rgb(255,255,255)"


def is_column_pattern(pattern: np.ndarray) -> bool:
    """Whether the bool pattern ``(H, W)`` samples whole columns only (a 1D mask broadcast over the rows)."""
    p = np.asarray(pattern, dtype=bool)
    return p.ndim == 2 and bool(np.all(p.all(0) | ~p.any(0)))


def column_runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """The runs of consecutive True entries of a bool ``(W,)``, as inclusive ``(first, last)`` column pairs."""
    edges = np.flatnonzero(np.diff(np.r_[0, np.asarray(columns, dtype=np.int8), 0]))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def mask_traces(pattern: np.ndarray) -> list:
    """Plotly traces drawing a sampling pattern ``(H, W)`` (or a column mask ``(W,)`` / ``(1, W)``, drawn over
    ``W`` rows) in data coordinates: column ``j`` spans ``[j - 0.5, j + 0.5]``, row 0 at the top once the y axis
    is reversed (:func:`mask_axes`).

    A column pattern becomes a black background (one heatmap brick), one filled white rectangle per run of sampled
    columns (true width when a column is wider than a pixel) and one white line per sampled column,
    :data:`MASK_LINE_PX` screen pixels wide at any zoom (visible when a column is narrower than a pixel). A 2D
    pattern (Poisson disc) stays a heatmap of its points.
    """
    p = np.asarray(pattern, dtype=bool)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2:
        raise ValueError(f"pattern must be (H, W) or (W,), got shape {p.shape}")
    if p.shape[0] == 1:
        p = np.broadcast_to(p, (p.shape[1], p.shape[1]))
    h, w = p.shape
    if not is_column_pattern(p):
        trace = figures.image_figure(p.astype(np.uint8), "", (0, 1)).data[0]
        trace.update(hovertemplate="kx %{y}, ky %{x}: %{z}<extra>1 = sampled</extra>")
        return [trace]
    columns = np.flatnonzero(p.any(0))
    top, bottom = -0.5, h - 0.5
    background = go.Heatmap(z=[[0.0]], x0=(w - 1) / 2, dx=w, y0=(h - 1) / 2, dy=h, colorscale=_BLACK, zmin=0, zmax=1,
                            showscale=False, hoverinfo="skip", name="not sampled")
    rx: list = []
    ry: list = []
    for a, b in column_runs(p.any(0)):
        rx += [a - 0.5, b + 0.5, b + 0.5, a - 0.5, a - 0.5, None]
        ry += [top, top, bottom, bottom, top, None]
    runs = go.Scatter(x=rx, y=ry, mode="lines", fill="toself", fillcolor=_WHITE, line=dict(width=0, color=_WHITE),
                      hoverinfo="skip", showlegend=False, name="sampled runs")
    lx = np.repeat(columns.astype(float), 4).astype(object)
    lx[3::4] = None
    ly = np.tile(np.array([top, (h - 1) / 2, bottom, None], dtype=object), columns.size)
    lines = go.Scatter(x=lx.tolist(), y=ly.tolist(), mode="lines", line=dict(width=MASK_LINE_PX, color=_WHITE),
                       showlegend=False, name="sampled", hovertemplate="ky %{x}: sampled<extra></extra>")
    return [background, runs, lines]


def mask_axes(shape: tuple[int, int], xref: str = "x", yref: str = "y") -> dict:
    """Layout entries for one mask subplot of ``shape = (H, W)``: ticks hidden, the full pattern in view, row 0 at the
    top, square pixels."""
    h, w = shape
    common = dict(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", ticks="", showline=False)
    return {"xaxis" + xref[1:]: dict(common, range=[-0.5, w - 0.5], autorange=False),
            "yaxis" + yref[1:]: dict(common, range=[h - 0.5, -0.5], autorange=False, scaleanchor=xref, scaleratio=1)}


def _mask_shape(pattern: np.ndarray) -> tuple[int, int]:
    p = np.asarray(pattern)
    if p.ndim == 1 or p.shape[0] == 1:
        return (p.shape[-1], p.shape[-1])
    return (int(p.shape[0]), int(p.shape[1]))


def mask_figure(pattern: np.ndarray, title: str = "Sampling mask", *, height: int = style.PANEL_PX) -> go.Figure:
    """A sampling pattern ``(H, W)`` (True = sampled, white on black) drawn by :func:`mask_traces`: every sampled
    column stays visible at any panel size."""
    fig = go.Figure(mask_traces(pattern))
    fig.update_layout(mask_axes(_mask_shape(pattern)))
    fig.update_layout(title=dict(text=f"<b>{title}</b>" if title else "", x=0.5, xanchor="center", font=dict(size=13)),
                      height=height, margin=dict(l=4, r=4, t=36 if title else 4, b=4), font=style.FONT,
                      template=style.TEMPLATE, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
                      showlegend=False, hovermode="closest")
    return fig


def mask_tiles_figure(patterns: Sequence[np.ndarray], titles: Sequence[str], *, cols: int = 4,
                      panel_px: int = 220) -> go.Figure:
    """Several sampling patterns of one shape in a grid of ``cols`` columns (linked zoom), each drawn by
    :func:`mask_traces`."""
    if not patterns or len(patterns) != len(titles):
        raise ValueError("mask_tiles_figure needs one title per pattern and at least one pattern")
    shape = _mask_shape(patterns[0])
    cols = max(1, min(cols, len(patterns)))
    rows = -(-len(patterns) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"<b>{t}</b>" for t in titles],
                        horizontal_spacing=0.02, vertical_spacing=0.06 if rows > 1 else 0.0)
    for i, pattern in enumerate(patterns):
        if _mask_shape(pattern) != shape:
            raise ValueError("mask_tiles_figure needs patterns of one shape")
        for trace in mask_traces(pattern):
            fig.add_trace(trace, row=i // cols + 1, col=i % cols + 1)
        suffix = "" if i == 0 else str(i + 1)
        axes = mask_axes(shape, f"x{suffix}", f"y{suffix}")
        axes[f"xaxis{suffix}"]["matches"] = None if i == 0 else "x"
        axes[f"yaxis{suffix}"]["matches"] = None if i == 0 else "y"
        fig.update_layout(axes)
    fig.update_annotations(font=dict(size=12))
    fig.update_layout(height=panel_px * rows + 30, margin=dict(l=4, r=4, t=30, b=4), template=style.TEMPLATE,
                      plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", showlegend=False,
                      uirevision="teaching-masks")
    return fig


def region_kspace_figure(kspace: np.ndarray, pattern: np.ndarray, title: str, *, height: int = 300) -> go.Figure:
    """Log-magnitude (coil RSS) k-space ``(C, H, W)`` relative to the FULL k-space maximum, with everything
    outside the bool ``pattern`` ``(H, W)`` at the floor (dark): the region as it sits in k-space."""
    logmag = figures.kspace_log_magnitude(kspace)
    shown = np.where(np.asarray(pattern, dtype=bool), logmag, KSPACE_FLOOR).astype(np.float32)
    fig = figures.image_figure(shown, title, (-5.0, 0.0), colorscale=style.KSPACE_COLORSCALE,
                               colorbar_title="log₁₀ |k| / max", height=height)
    fig.data[0].hovertemplate = "kx %{y}, ky %{x}<br>log₁₀|k|/max %{z:.2f}<extra></extra>"
    return fig


def tiles_figure(images: Sequence[np.ndarray], titles: Sequence[str], *, cols: int = 4,
                 window: tuple[float, float] | None = None, colorscale: str = style.IMAGE_COLORSCALE,
                 colorbar_title: str | None = None, panel_px: int = 220, hover: str = "",
                 coords: tuple[np.ndarray, np.ndarray] | None = None, coord_names: tuple[str, str] = ("x", "y")
                 ) -> go.Figure:
    """Several real ``(h, w)`` images (complex ones: their magnitude; signed values stay signed) in a grid of ``cols`` columns sharing one window,
    one colour scale and a linked zoom (every axis ``matches`` the first).

    Args:
        images: arrays of one shape.
        titles: one per image.
        window: ``(lo, hi)``; default ``(min, max)`` over all images.
        colorbar_title: show one colour bar with this title (``None``: none).
        panel_px: height of one row in pixels.
        hover: the value's name in the hover text.
        coords: ``(x, y)``: the pixel centres' coordinates along the columns ``(w,)`` and rows ``(h,)`` of every
            image (default: their indices), e.g. offsets from a PSF's centre.
        coord_names: the names of ``x`` and ``y`` in the hover text.
    """
    if not images or len(images) != len(titles):
        raise ValueError("tiles_figure needs one title per image and at least one image")
    arrays = [(np.abs(a) if np.iscomplexobj(a) else np.asarray(a)).astype(np.float32) for a in images]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise ValueError("tiles_figure needs 2D images of one shape")
    lo, hi = window if window is not None else (float(min(a.min() for a in arrays)), float(max(a.max() for a in arrays)))
    cols = max(1, min(cols, len(arrays)))
    rows = -(-len(arrays) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"<b>{t}</b>" for t in titles],
                        horizontal_spacing=0.01, vertical_spacing=0.06 if rows > 1 else 0.0)
    for i, (array, title) in enumerate(zip(arrays, titles)):
        trace = figures.image_figure(array, title, (lo, hi), colorscale=colorscale,
                                     colorbar_title=colorbar_title if i == 0 else None).data[0]
        xname, yname = coord_names
        trace.update(hovertemplate=f"<b>{title}</b><br>{xname} %{{x}}, {yname} %{{y}}<br>{hover} %{{z:.4g}}<extra></extra>")
        if coords is not None:
            trace.update(x=np.asarray(coords[0]).tolist(), y=np.asarray(coords[1]).tolist())
        fig.add_trace(trace, row=i // cols + 1, col=i % cols + 1)
    for i in range(len(arrays)):
        suffix = "" if i == 0 else str(i + 1)
        common = dict(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", ticks="")
        fig.layout[f"xaxis{suffix}"].update(common, matches=None if i == 0 else "x")
        fig.layout[f"yaxis{suffix}"].update(common, autorange="reversed", scaleanchor=f"x{suffix}", scaleratio=1,
                                            matches=None if i == 0 else "y")
    fig.update_annotations(font=dict(size=12))
    fig.update_layout(height=panel_px * rows + 30, margin=dict(l=4, r=4, t=30, b=4), template=style.TEMPLATE,
                      plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", uirevision="teaching-tiles")
    return fig


def profile_figure(profiles: Mapping[str, np.ndarray], *, x_title: str = "offset from the centre (pixels)",
                   y_title: str = "|PSF| (dB)", height: int = 260) -> go.Figure:
    """Lines ``{label: values (n,)}`` against their offset from the centre index ``n // 2``."""
    fig = go.Figure()
    for label, values in profiles.items():
        values = np.asarray(values, dtype=np.float64)
        offsets = np.arange(values.size) - values.size // 2
        fig.add_trace(go.Scatter(x=offsets, y=values, mode="lines", name=label,
                                 hovertemplate=f"<b>{label}</b><br>offset %{{x}}<br>%{{y:.1f}}<extra></extra>"))
    fig.update_layout(height=height, template=style.TEMPLATE, margin=dict(l=60, r=20, t=30, b=40),
                      xaxis_title=x_title, yaxis_title=y_title,
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return fig


def curve_figure(x: Sequence[float], curves: Mapping[str, Sequence[float]], *, current: float | None = None,
                 x_title: str = "iteration", y_title: str = "SSIM", log_x: bool = True,
                 height: int = 260, y_range: tuple[float, float] | None = None,
                 x_ticks: Sequence[float] | None = None, references: Mapping[str, float] | None = None) -> go.Figure:
    """Lines ``{label: values}`` over ``x`` (markers at the points), with a vertical line at ``current``;
    ``y_range`` fixes the value axis (e.g. ``(0, 1)`` for SSIM).

    The x axis is labelled at ``x_ticks`` (default: the ``x`` values and ``current``) and nowhere else: a log axis
    left to plotly labels its minor ticks with bare digits ("8 9 1 2 ... 5"); with ``x_ticks`` the axis spans them
    all, so it stays put as points are added. ``references`` draws a dashed horizontal line per ``{label: value}``
    (e.g. the zero-filled SSIM), labelled at its right end.
    """
    fig = go.Figure()
    for label, values in curves.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(values), mode="lines+markers", name=label,
                                 hovertemplate=f"<b>{label}</b><br>{x_title} %{{x}}<br>{y_title} %{{y:.4g}}<extra></extra>"))
    if current is not None:
        fig.add_vline(x=current, line=dict(color="#1f6feb", dash="dot"))
    for label, value in (references or {}).items():
        fig.add_hline(y=float(value), line=dict(color="#6e7781", dash="dash", width=1),
                      annotation=dict(text=f"{label} {value:.3f}", font=dict(size=11, color="#57606a")),
                      annotation_position="top left")
    ticks = sorted({float(v) for v in (x_ticks if x_ticks is not None else [*x, *([current] if current is not None else [])])})
    xaxis: dict = dict(type="log" if log_x else "linear")
    if ticks:
        xaxis.update(tickmode="array", tickvals=ticks, ticktext=[f"{v:g}" for v in ticks], minor=dict(showgrid=False))
        lo, hi = ticks[0], ticks[-1]
        if log_x and lo > 0:
            pad = 0.08 * max(np.log10(hi / lo), 1.0)
            xaxis["range"] = [np.log10(lo) - pad, np.log10(hi) + pad]
        elif not log_x:
            pad = 0.05 * max(hi - lo, 1.0)
            xaxis["range"] = [lo - pad, hi + pad]
    fig.update_layout(height=height, template=style.TEMPLATE, margin=dict(l=60, r=20, t=30, b=40),
                      xaxis_title=x_title, yaxis_title=y_title, xaxis=xaxis,
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig
