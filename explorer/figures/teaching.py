"""Figures of the teaching mode (numpy in, ``go.Figure`` out; no Streamlit), built on :mod:`explorer.figures.images`."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.figures import images as figures
from explorer.figures import style

KSPACE_FLOOR = -6.0  # log10 |k| / max of what lies outside a region (the floor of figures.kspace_log_magnitude)


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
                 colorbar_title: str | None = None, panel_px: int = 220, hover: str = "") -> go.Figure:
    """Several real ``(h, w)`` images (complex ones: their magnitude; signed values stay signed) in a grid of ``cols`` columns sharing one window,
    one colour scale and a linked zoom (every axis ``matches`` the first).

    Args:
        images: arrays of one shape.
        titles: one per image.
        window: ``(lo, hi)``; default ``(min, max)`` over all images.
        colorbar_title: show one colour bar with this title (``None``: none).
        panel_px: height of one row in pixels.
        hover: the value's name in the hover text.
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
        trace.update(hovertemplate=f"<b>{title}</b><br>x %{{x}}, y %{{y}}<br>{hover} %{{z:.4g}}<extra></extra>")
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
                 height: int = 260, y_range: tuple[float, float] | None = None) -> go.Figure:
    """Lines ``{label: values}`` over ``x`` (markers at the points), with a vertical line at ``current``;
    ``y_range`` fixes the value axis (e.g. ``(0, 1)`` for SSIM)."""
    fig = go.Figure()
    for label, values in curves.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(values), mode="lines+markers", name=label,
                                 hovertemplate=f"<b>{label}</b><br>{x_title} %{{x}}<br>{y_title} %{{y:.4g}}<extra></extra>"))
    if current is not None:
        fig.add_vline(x=current, line=dict(color="#1f6feb", dash="dot"))
    fig.update_layout(height=height, template=style.TEMPLATE, margin=dict(l=60, r=20, t=30, b=40),
                      xaxis_title=x_title, yaxis_title=y_title, xaxis_type="log" if log_x else "linear",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig
