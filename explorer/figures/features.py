"""Plotly figures of the small-features experiment (numpy / rows in, ``go.Figure`` out; no Streamlit), in the
conventions of :mod:`explorer.figures.images`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.figures.style import (FONT, IMAGE_COLORSCALE, PALETTE, TEMPLATE, as_image, hover_text, image_axes,
                                    rgb_scale, xy_refs)

BOX_COLOR = "#1f6feb"


def add_boxes(fig: go.Figure, boxes: Sequence[tuple[int, int, int, int]], labels: Sequence[str] | None = None) -> None:
    """Draw half-open ``(row0, col0, row1, col1)`` boxes on every image subplot of ``fig`` (numbered)."""
    shapes, notes = list(fig.layout.shapes or ()), list(fig.layout.annotations or ())
    for xref, yref in xy_refs(fig):
        for i, (r0, c0, r1, c1) in enumerate(boxes):
            shapes.append(dict(type="rect", xref=xref, yref=yref, x0=c0 - 0.5, x1=c1 - 0.5, y0=r0 - 0.5, y1=r1 - 0.5,
                               line=dict(color=BOX_COLOR, width=1.2), fillcolor="rgba(0,0,0,0)"))
            text = labels[i] if labels else str(i + 1)
            notes.append(dict(x=c1 - 0.5, y=r0 - 0.5, xref=xref, yref=yref, text=text, showarrow=False,
                              xanchor="left", yanchor="bottom", font=dict(size=10, color=BOX_COLOR)))
    fig.update_layout(shapes=shapes, annotations=notes)


def tiles_figure(tiles: Sequence[Mapping[str, np.ndarray]], window: tuple[float, float], *,
                 row_titles: Sequence[str] | None = None, tile_px: int = 150) -> go.Figure:
    """Zoomed tiles, one row per feature: the reference without and with it, then each method, one window.

    Args:
        tiles: per feature ``{column title: tile (t, t)}``, the same columns in the same order for every row.
        window: ``(lo, hi)`` of every tile (the same window/level for all).
        row_titles: per feature a short description (shown on the first tile's title).

    Returns:
        one heatmap per tile on one colour axis; tiles of a row share their zoom.
    """
    if not tiles:
        raise ValueError("tiles_figure needs at least one row of tiles")
    columns = list(tiles[0])
    titles = []
    for i, row in enumerate(tiles):
        for j, name in enumerate(columns):
            prefix = f"{row_titles[i]}<br>" if row_titles and j == 0 else ("<br>" if row_titles else "")
            titles.append(f"<span style='font-size:11px'>{prefix}<b>{name}</b></span>")
    fig = make_subplots(rows=len(tiles), cols=len(columns), subplot_titles=titles, horizontal_spacing=0.01,
                        vertical_spacing=min(0.3 / len(tiles), 0.08))
    for i, row in enumerate(tiles, start=1):
        for j, name in enumerate(columns, start=1):
            fig.add_trace(go.Heatmap(z=as_image(row[name], name), coloraxis="coloraxis", hovertemplate=hover_text(name),
                                     name=f"{i}:{name}"), row=i, col=j)
    layout: dict = {}
    refs = xy_refs(fig)
    for k, (xref, yref) in enumerate(refs):
        axes = image_axes(xref, yref)
        first = refs[(k // len(columns)) * len(columns)]  # the row's first tile: one zoom per feature
        if (xref, yref) != first:
            axes["xaxis" + xref[1:]] = dict(axes["xaxis" + xref[1:]], matches=first[0])
            axes["yaxis" + yref[1:]] = dict(axes["yaxis" + yref[1:]], matches=first[1])
        layout.update(axes)
    lo, hi = float(window[0]), float(window[1])
    layout.update(coloraxis=dict(colorscale=rgb_scale(IMAGE_COLORSCALE), cmin=lo, cmax=hi if hi > lo else lo + 1e-6,
                                 colorbar=dict(title=dict(text="intensity (a.u.)", side="right"), thickness=10)),
                  height=(tile_px + 40) * len(tiles) + 30, margin=dict(l=8, r=8, t=40, b=8), font=FONT,
                  template=TEMPLATE, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)")
    fig.update_layout(layout)
    return fig


def profile_figure(profiles: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str, *, height: int = 300) -> go.Figure:
    """Line profiles through a feature: ``{name: (positions, values)}`` (references dashed, methods solid)."""
    fig = go.Figure()
    for i, (name, (x, y)) in enumerate(profiles.items()):
        reference = name.lower().startswith("reference")
        fig.add_trace(go.Scatter(x=np.asarray(x), y=np.asarray(y, dtype=np.float64), mode="lines", name=name,
                                 line=dict(color="#31333F" if reference else PALETTE[i % len(PALETTE)],
                                           dash="dash" if "without" in name else "solid", width=2.4 if reference else 1.6),
                                 hovertemplate=f"<b>{name}</b><br>%{{x}}: %{{y:.4g}}<extra></extra>"))
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, title=dict(text=title, font=dict(size=13)),
                      margin=dict(l=60, r=20, t=40, b=40), xaxis_title="pixel along the profile",
                      yaxis_title="intensity (a.u.)", legend=dict(orientation="h", y=-0.25, yanchor="top", x=0))
    return fig


def scatter_figure(rows: Sequence[Mapping], correlations: Mapping[str, Mapping], x: str = "ssim",
                   y: str = "window_mse", *, height: int = 420) -> go.Figure:
    """Feature recovery (``y``) against whole-image quality (``x``), one colour per method, with its correlation.

    Args:
        rows: feature rows (``label``, ``x``, ``y``, and position/size/contrast for the hover).
        correlations: :func:`~explorer.robustness.features.correlation` output.
    """
    fig = go.Figure()
    labels = list(dict.fromkeys(r["label"] for r in rows))
    for i, label in enumerate(labels):
        mine = [r for r in rows if r["label"] == label and r.get(x) is not None and r.get(y) is not None]
        stats = correlations.get(label, {})
        r_text = "" if stats.get("pearson") is None else f" (r = {stats['pearson']:+.2f})"
        fig.add_trace(go.Scatter(
            x=[r[x] for r in mine], y=[r[y] for r in mine], mode="markers", name=f"{label}{r_text}",
            marker=dict(color=PALETTE[i % len(PALETTE)], size=7, opacity=0.8),
            customdata=[[r.get("slice", ""), r.get("size"), r.get("contrast"), r.get("row"), r.get("col")] for r in mine],
            hovertemplate=(f"<b>{label}</b><br>{x} %{{x:.4f}}<br>{y} %{{y:.4g}}<br>slice %{{customdata[0]}} · size "
                           "%{customdata[1]} · contrast %{customdata[2]:.3g}<br>at (%{customdata[3]}, %{customdata[4]})"
                           "<extra></extra>")))
    pooled = correlations.get("all", {})
    title = f"{y} vs whole-image {x}"
    if pooled.get("pearson") is not None:
        title += f" · all methods: Pearson r = {pooled['pearson']:+.2f}, Spearman ρ = {pooled['spearman']:+.2f} (n = {pooled['n']})"
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, title=dict(text=title, font=dict(size=13)),
                      margin=dict(l=60, r=20, t=50, b=40), xaxis_title=f"whole-image {x.upper()}",
                      yaxis_title={"window_mse": "window MSE (normalised images)"}.get(y, y),
                      legend=dict(orientation="h", y=-0.2, yanchor="top", x=0))
    return fig


def tile(image: np.ndarray, box: tuple[int, int, int, int], side: int) -> np.ndarray:
    """A ``side x side`` crop of ``image`` centred on ``box`` (shifted to stay inside; zero-padded if larger)."""
    h, w = image.shape
    cr, cc = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    r0 = min(max(cr - side // 2, 0), max(h - side, 0))
    c0 = min(max(cc - side // 2, 0), max(w - side, 0))
    out = np.zeros((side, side), dtype=np.float32)
    crop = image[r0:r0 + side, c0:c0 + side]
    out[:crop.shape[0], :crop.shape[1]] = crop
    return out


__all__ = ["add_boxes", "profile_figure", "scatter_figure", "tile", "tiles_figure"]
