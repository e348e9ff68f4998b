"""Plotly figures of magnitude images, masks, k-space and loss curves (numpy in, ``go.Figure`` out).

No Streamlit here: the app, notebooks and tests all use the same figures. Style and image conventions:
:mod:`explorer.figures.style`; arrays are sent once (plotly serialises numpy arrays as compact base64 typed arrays).
Comparisons of several images (linked zoom, shared window, error maps) are the viewer's
(:func:`explorer.viewer.layouts.grid_figure`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from explorer.figures.style import (FONT, IMAGE_COLORSCALE, KSPACE_COLORSCALE, PANEL_PX, TEMPLATE, as_image, hover_text,
                                    rgb_scale, style_image_axes)

def image_figure(
    image: np.ndarray,
    title: str = "",
    window: tuple[float, float] | None = None,
    *,
    colorscale: str = IMAGE_COLORSCALE,
    colorbar_title: str | None = None,
    height: int = PANEL_PX,
    uirevision: str | None = None,
) -> go.Figure:
    """One ``(h, w)`` image as a heatmap with square pixels, row 0 at the top.

    Args:
        image: real (or complex: magnitude shown) ``(h, w)``.
        title: panel title.
        window: ``(lo, hi)`` colour range; default min..max.
        colorscale: plotly colour scale name.
        colorbar_title: show a colour bar with this title (``None``: no colour bar).
        height: figure height in pixels.
        uirevision: keep zoom across reruns when set.
    """
    image = as_image(image)
    lo, hi = window if window is not None else (float(image.min()), float(image.max()))
    fig = go.Figure(go.Heatmap(z=image, colorscale=rgb_scale(colorscale), zmin=lo, zmax=hi, hovertemplate=hover_text(title or "image"),
                               showscale=colorbar_title is not None,
                               colorbar=dict(title=dict(text=colorbar_title or "", side="right"), thickness=10,
                                             outlinewidth=0, tickformat=".3~g")))
    style_image_axes(fig)
    fig.update_layout(title=dict(text=f"<b>{title}</b>" if title else "", x=0.5, xanchor="center", font=dict(size=13)),
                      height=height, margin=dict(l=4, r=4, t=36 if title else 4, b=4), font=FONT,
                      template=TEMPLATE, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
                      uirevision=uirevision)
    return fig


def mask_figure(pattern: np.ndarray, title: str = "Sampling mask", *, height: int = PANEL_PX) -> go.Figure:
    """A sampling pattern ``(H, W)`` (True = sampled, white) as a heatmap.

    A 1D column mask ``(W,)`` or ``(1, W)`` is shown broadcast over 32 rows.
    """
    pattern = np.asarray(pattern, dtype=bool)
    if pattern.ndim == 1:
        pattern = pattern[None]
    if pattern.shape[0] == 1:
        pattern = np.broadcast_to(pattern, (32, pattern.shape[1]))
    fig = image_figure(pattern.astype(np.uint8), title, (0, 1), height=height)
    fig.data[0].hovertemplate = "kx %{y}, ky %{x}: %{z}<extra>1 = sampled</extra>"
    return fig


def kspace_log_magnitude(kspace: np.ndarray) -> np.ndarray:
    """``log10`` of the coil-RSS k-space magnitude relative to its maximum, floored at -6.

    Args:
        kspace: complex ``(C, H, W)`` or ``(H, W)`` (numpy or anything ``np.asarray`` takes).

    Returns:
        float32 ``(H, W)`` in ``[-6, 0]``; unsampled (zero) entries are -6.
    """
    k = np.asarray(kspace)
    mag = np.sqrt((np.abs(k) ** 2).sum(0)) if k.ndim == 3 else np.abs(k)
    if mag.ndim != 2:
        raise ValueError(f"kspace must be (C, H, W) or (H, W), got shape {k.shape}")
    top = float(mag.max()) or 1.0
    return np.log10(np.maximum(mag / top, 1e-6)).astype(np.float32)


def kspace_figure(kspace: np.ndarray, title: str = "k-space (log magnitude)", *, height: int = PANEL_PX,
                  colorbar: bool = True) -> go.Figure:
    """Log-magnitude (coil RSS) k-space ``(C, H, W)`` or ``(H, W)`` with a colour bar in decades."""
    logmag = kspace_log_magnitude(kspace)
    fig = image_figure(logmag, title, (-5.0, 0.0), colorscale=KSPACE_COLORSCALE,
                       colorbar_title="log₁₀ |k| / max" if colorbar else None, height=height)
    fig.data[0].hovertemplate = "kx %{y}, ky %{x}<br>log₁₀|k|/max %{z:.2f}<extra></extra>"
    return fig


def colorize(array: np.ndarray, vmin: float, vmax: float, colorscale: str = IMAGE_COLORSCALE) -> np.ndarray:
    """Map a 2D array through a plotly colour scale to an RGB image (for static previews).

    Args:
        array: real ``(H, W)``; values are clipped to ``[vmin, vmax]``.
        vmin, vmax: the window.
        colorscale: a named plotly colour scale.

    Returns:
        uint8 ``(H, W, 3)``.
    """
    import plotly.colors as pc  # noqa: PLC0415

    stops = rgb_scale(colorscale)
    pos = np.array([p for p, _ in stops])
    rgb = np.array([pc.unlabel_rgb(c) for _, c in stops], dtype=np.float64)  # (S, 3)
    t = np.clip((np.asarray(array, dtype=np.float64) - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    out = np.stack([np.interp(t, pos, rgb[:, i]) for i in range(3)], axis=-1)
    return np.round(out).astype(np.uint8)


def mask_preview(pattern: np.ndarray, rows: int) -> np.ndarray:
    """A sampling pattern as a uint8 image ``(H, W)`` (255 = sampled); a column mask ``(W,)``/``(1, W)`` is repeated over ``rows``."""
    pattern = np.asarray(pattern, dtype=bool)
    pattern = pattern[None] if pattern.ndim == 1 else pattern
    if pattern.shape[0] == 1:
        pattern = np.broadcast_to(pattern, (rows, pattern.shape[1]))
    return pattern.astype(np.uint8) * 255


def kspace_preview(kspace: np.ndarray) -> np.ndarray:
    """Log-magnitude k-space ``(C, H, W)`` or ``(H, W)`` as an RGB image ``(H, W, 3)`` (viridis, 5 decades)."""
    return colorize(kspace_log_magnitude(kspace), -5.0, 0.0, KSPACE_COLORSCALE)


def loss_figure(curves: Mapping[str, "list[tuple[int, float]] | tuple"], *, height: int = 260,
                max_points: int = 600, y_title: str = "data-consistency loss", x_title: str = "iteration",
                name: str = "loss") -> go.Figure:
    """Fit loss (or any positive quantity) against iteration, one line per method, log-scaled value axis.

    Args:
        curves: ``{label: [(step, loss), ...]}``; empty curves are skipped.
        height: figure height in pixels.
        max_points: longer curves are thinned (evenly, keeping the last point) to this many.
        y_title, x_title, name: axis titles and the value's name in the hover text.

    Returns:
        a plotly figure.
    """
    fig = go.Figure()
    for label, points in curves.items():
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        pts = pts[np.isfinite(pts[:, 1]) & (pts[:, 1] > 0)]
        if not len(pts):
            continue
        if len(pts) > max_points:
            keep = np.unique(np.r_[np.linspace(0, len(pts) - 1, max_points).round().astype(int), len(pts) - 1])
            pts = pts[keep]
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="lines", name=label,
                                 hovertemplate=f"<b>{label}</b><br>step %{{x}}<br>{name} %{{y:.4g}}<extra></extra>"))
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, margin=dict(l=60, r=20, t=30, b=40),
                      xaxis_title=x_title, yaxis_title=y_title, yaxis_type="log",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0), showlegend=True)
    return fig
