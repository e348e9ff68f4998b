"""Plotly figures of magnitude images, masks and k-space (numpy in, ``go.Figure`` out).

No Streamlit here: the app, notebooks and tests all use the same figures.

Conventions: every image panel is a ``go.Heatmap`` of an ``(h, w)`` array with row 0 at
the top (y axis reversed) and square pixels (``scaleanchor``); arrays are sent once
(plotly serialises numpy arrays as compact base64 typed arrays); panels that must be
compared share a ``coloraxis`` so one colour bar and one window apply to all of them.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

IMAGE_COLORSCALE = "gray"
ERROR_COLORSCALE = "inferno"
KSPACE_COLORSCALE = "viridis"
PANEL_PX = 300  # default panel height in pixels
_FONT = dict(family='"Source Sans Pro", "Source Sans 3", Helvetica, Arial, sans-serif', size=12, color="#31333F")
TEMPLATE = "plotly_white"  # render with st.plotly_chart(..., theme=None) to keep these colours


def _scale(name: str) -> list[tuple[float, str]]:
    """Named plotly colour scale as explicit ``rgb()`` stops.

    Streamlit's front end rewrites the placeholder colours ``#000001``..``#000010`` of its
    own theme in every figure, and Inferno starts at ``#000004``; ``rgb()`` strings are
    left alone.
    """
    import plotly.colors as pc  # noqa: PLC0415

    stops = pc.get_colorscale(name)
    return [(float(pos), _rgb(color)) for pos, color in stops]


def _rgb(color: str) -> str:
    if color.startswith("#"):
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgb({r},{g},{b})"
    return color


def _as_image(array: np.ndarray, name: str = "image") -> np.ndarray:
    """A finite float32 ``(h, w)`` copy-free view of ``array`` (raises ValueError otherwise)."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2D (h, w), got shape {array.shape}")
    if np.iscomplexobj(array):
        array = np.abs(array)
    return np.ascontiguousarray(array, dtype=np.float32)


def _hover(label: str, unit: str = "") -> str:
    return f"<b>{label}</b><br>x %{{x}}, y %{{y}}<br>%{{z:.4g}}{unit}<extra></extra>"


def _image_axes(xref: str = "x", yref: str = "y") -> dict:
    """Layout update hiding ticks, reversing y and making pixels square for one subplot."""
    common = dict(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", ticks="")
    return {"xaxis" + xref[1:]: common,
            "yaxis" + yref[1:]: dict(common, autorange="reversed", scaleanchor=xref, scaleratio=1)}


def _style_image_axes(fig: go.Figure, xref: str = "x", yref: str = "y") -> None:
    """Apply :func:`_image_axes` to ``fig``."""
    fig.update_layout(_image_axes(xref, yref))


def comparison_figure(
    target: np.ndarray | None,
    images: Mapping[str, np.ndarray],
    window: tuple[float, float] | None = None,
    error_max: float | None = None,
    *,
    subtitles: Mapping[str, str] | None = None,
    uirevision: str = "comparison",
    panel_px: int = PANEL_PX,
    controls: bool = True,
) -> go.Figure:
    """Target, reconstructions and error maps in ONE figure with linked zoom and pan.

    Layout: row 1 = target (if any) then each reconstruction; row 2 = the error map
    ``|recon - target|`` under each reconstruction. All x axes ``matches`` the first x
    axis and all y axes the first y axis, so zooming or panning any panel moves all of
    them; ``uirevision`` keeps the zoom when the figure is redrawn with the same revision.

    With ``controls``, plotly sliders under the panels set the window (low, high) of all
    image panels and the top of the error scale, in units of the reference maximum
    (the target's, else the images'). They act in the browser: no rerun, the zoom stays.

    Args:
        target: reference magnitude ``(h, w)``, or ``None`` (no reference: no error maps).
        images: ``{label: magnitude (h, w)}``, same shape as ``target``.
        window: ``(lo, hi)`` display window of every image panel (same units as the
            images); default ``(0, max of target or of all images)``.
        error_max: top of the common error colour scale; default the largest error.
        subtitles: optional ``{label: text}`` shown under each panel title (e.g. metrics).
        uirevision: constant string; change it to reset the zoom (e.g. on a new data shape).
        panel_px: height of one row of panels in pixels.
        controls: add the window / error-scale sliders (``layout.sliders``).

    Returns:
        The figure: ``1 + 2 n`` heatmap traces with a target (``n`` without), image
        traces on ``coloraxis`` (gray, window) and error traces on ``coloraxis2``.

    Raises:
        ValueError: no images, or arrays of different shapes.
    """
    from explorer.viewer.layouts import grid_figure  # noqa: PLC0415 (the viewer builds on this module)

    if not images:
        raise ValueError("comparison_figure needs at least one image")
    return grid_figure(target, images, window=window, error_mode="abs", error_scale=error_max, subtitles=subtitles,
                       uirevision=uirevision, panel_px=panel_px, controls=controls)


def _title(label: str, subtitle: str | None) -> str:
    return f"<b>{label}</b>" + (f"<br><span style='font-size:11px'>{subtitle}</span>" if subtitle else "")


def _colorbar(title: str, domain, rows: int) -> dict:
    lo, hi = domain
    return dict(title=dict(text=title, side="right"), len=(hi - lo) * 0.95, y=(lo + hi) / 2, yanchor="middle",
                thickness=12, x=1.0, xpad=6, tickformat=".3~g", outlinewidth=0)


def _xy_refs(fig: go.Figure) -> list[tuple[str, str]]:
    """``(xref, yref)`` of every subplot that holds a trace, in trace order."""
    return [(t.xaxis or "x", t.yaxis or "y") for t in fig.data]


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
    image = _as_image(image)
    lo, hi = window if window is not None else (float(image.min()), float(image.max()))
    fig = go.Figure(go.Heatmap(z=image, colorscale=_scale(colorscale), zmin=lo, zmax=hi, hovertemplate=_hover(title or "image"),
                               showscale=colorbar_title is not None,
                               colorbar=dict(title=dict(text=colorbar_title or "", side="right"), thickness=10,
                                             outlinewidth=0, tickformat=".3~g")))
    _style_image_axes(fig)
    fig.update_layout(title=dict(text=f"<b>{title}</b>" if title else "", x=0.5, xanchor="center", font=dict(size=13)),
                      height=height, margin=dict(l=4, r=4, t=36 if title else 4, b=4), font=_FONT,
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

    stops = _scale(colorscale)
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
    fig.update_layout(height=height, template=TEMPLATE, font=_FONT, margin=dict(l=60, r=20, t=30, b=40),
                      xaxis_title=x_title, yaxis_title=y_title, yaxis_type="log",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0), showlegend=True)
    return fig
