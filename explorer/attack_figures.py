"""Plotly figures of attacks (numpy / records in, ``go.Figure`` out; no Streamlit), in the conventions of
:mod:`explorer.figures`: image panels are heatmaps with row 0 at the top and square pixels, compared panels
share a colour axis, and every image panel of a figure shares one zoom.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.figures import (_FONT, ERROR_COLORSCALE, IMAGE_COLORSCALE, KSPACE_COLORSCALE, PANEL_PX, TEMPLATE,
                              _as_image, _colorbar, _hover, _image_axes, _scale, _slider, _title, _xy_refs,
                              kspace_log_magnitude)


def _link(fig: go.Figure, first: int = 0) -> dict:
    """Layout linking every image subplot from trace ``first`` on to that trace's axes (one zoom for all)."""
    layout: dict = {}
    refs = _xy_refs(fig)
    x0, y0 = refs[first]
    for i, (xref, yref) in enumerate(refs):
        axes = _image_axes(xref, yref)
        if i > first:
            axes["xaxis" + xref[1:]] = dict(axes["xaxis" + xref[1:]], matches=x0)
            axes["yaxis" + yref[1:]] = dict(axes["yaxis" + yref[1:]], matches=y0)
        layout.update(axes)
    return layout


def attack_figure(
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    window: tuple[float, float],
    diff_max: float | None = None,
    *,
    subtitles: Mapping[str, str] | None = None,
    region: tuple[int, int, int, int] | None = None,
    uirevision: str = "attack",
    panel_px: int = PANEL_PX,
) -> go.Figure:
    """Per method one row: clean reconstruction, perturbed reconstruction, ``|perturbed - clean|``.

    All panels share one zoom; the images share one window (colour axis 1, gray) and the differences one
    scale (colour axis 2); sliders under the panels set both in the browser, in units of ``window[1]``.

    Args:
        pairs: ``{label: (clean (h, w), perturbed (h, w))}`` magnitudes of one size.
        window: ``(lo, hi)`` of the image panels (e.g. ``(0, reference max)``).
        diff_max: top of the difference scale (default: the largest difference).
        subtitles: ``{label: text}`` under each perturbed panel (e.g. the metrics).
        region: ``(row0, col0, row1, col1)`` half-open box drawn on every panel (the attack's region).

    Returns:
        ``3 n`` heatmap traces, row by row.

    Raises:
        ValueError: no pairs, or images of different shapes.
    """
    if not pairs:
        raise ValueError("attack_figure needs at least one (clean, perturbed) pair")
    images = {label: (_as_image(c, f"{label} clean"), _as_image(p, f"{label} perturbed")) for label, (c, p) in pairs.items()}
    shapes = {a.shape for pair in images.values() for a in pair}
    if len(shapes) != 1:
        raise ValueError(f"all images must have the same shape, got {sorted(shapes)}")
    subtitles = dict(subtitles or {})
    rows = len(images)
    titles = []
    for label in images:
        titles += [_title(f"{label}: clean", None), _title(f"{label}: perturbed", subtitles.get(label)),
                   _title(f"|perturbed − clean| ({label})", None)]
    fig = make_subplots(rows=rows, cols=3, subplot_titles=titles, horizontal_spacing=0.012,
                        vertical_spacing=min(0.25 / rows, 0.08))
    diffs = {label: np.abs(p - c) for label, (c, p) in images.items()}
    for row, (label, (clean, perturbed)) in enumerate(images.items(), start=1):
        fig.add_trace(go.Heatmap(z=clean, coloraxis="coloraxis", hovertemplate=_hover(f"{label} clean"),
                                 name=f"{label} clean"), row=row, col=1)
        fig.add_trace(go.Heatmap(z=perturbed, coloraxis="coloraxis", hovertemplate=_hover(f"{label} perturbed"),
                                 name=f"{label} perturbed"), row=row, col=2)
        fig.add_trace(go.Heatmap(z=diffs[label], coloraxis="coloraxis2", hovertemplate=_hover(f"{label} |difference|"),
                                 name=f"{label} difference"), row=row, col=3)
    lo, hi = float(window[0]), float(window[1])
    hi = hi if hi > lo else lo + max(abs(lo), 1.0) * 1e-6
    diff_max = diff_max if diff_max and diff_max > 0 else max(float(d.max()) for d in diffs.values()) or 1e-6
    whole = (0.0, 1.0)
    layout = _link(fig)
    layout.update(
        coloraxis=dict(colorscale=_scale(IMAGE_COLORSCALE), cmin=lo, cmax=hi,
                       colorbar=dict(_colorbar("intensity (a.u.)", whole, 1), x=1.0, len=0.45, y=0.75)),
        coloraxis2=dict(colorscale=_scale(ERROR_COLORSCALE), cmin=0.0, cmax=float(diff_max),
                        colorbar=dict(_colorbar("|difference| (a.u.)", whole, 1), x=1.0, len=0.45, y=0.25)),
        uirevision=uirevision, height=panel_px * rows + 70 + 64, margin=dict(l=8, r=8, t=48, b=72), font=_FONT,
        template=TEMPLATE, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode="zoom",
        annotations=[dict(a.to_plotly_json(), font=dict(size=13)) for a in fig.layout.annotations],
        sliders=[_slider("Window low", "coloraxis.cmin", np.arange(0.0, 0.5001, 0.025), lo, hi, 0.0),
                 _slider("Window high", "coloraxis.cmax", np.arange(0.1, 1.5001, 0.05), hi, hi, 0.35),
                 _slider("Difference max", "coloraxis2.cmax", np.arange(0.02, 1.0001, 0.02), float(diff_max), hi, 0.70)],
    )
    if region is not None:
        r0, c0, r1, c1 = region
        layout["shapes"] = [dict(type="rect", xref=x, yref=y, x0=c0 - 0.5, x1=c1 - 0.5, y0=r0 - 0.5, y1=r1 - 0.5,
                                 line=dict(color="#1f6feb", width=1.5), fillcolor="rgba(0,0,0,0)")
                            for x, y in _xy_refs(fig)]
    fig.update_layout(layout)
    return fig


def perturbation_figure(views: Mapping[str, tuple[np.ndarray, np.ndarray]], *, panel_px: int = PANEL_PX,
                        uirevision: str = "perturbation") -> go.Figure:
    """Per method one row: the perturbation's k-space (log magnitude, coil RSS) and ``|A^H e|``.

    Args:
        views: ``{label: (e (C, H, W) complex, adjoint image (h, w) magnitude)}``.

    Returns:
        ``2 n`` heatmap traces; the k-space panels share one zoom, the image panels another, and the image
        panels one colour scale (the perturbations' energies compare across methods).
    """
    if not views:
        raise ValueError("perturbation_figure needs at least one perturbation")
    titles = []
    for label in views:
        titles += [_title(f"{label}: e in k-space", "log₁₀ |e| / max (coil RSS)"), _title(f"{label}: |Aᴴe|", None)]
    rows = len(views)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=min(0.25 / rows, 0.08))
    top = 0.0
    for row, (label, (e, image)) in enumerate(views.items(), start=1):
        fig.add_trace(go.Heatmap(z=kspace_log_magnitude(e), coloraxis="coloraxis", name=f"{label} e",
                                 hovertemplate="kx %{y}, ky %{x}<br>log₁₀|e|/max %{z:.2f}<extra></extra>"), row=row, col=1)
        image = _as_image(image, f"{label} adjoint")
        top = max(top, float(image.max()))
        fig.add_trace(go.Heatmap(z=image, coloraxis="coloraxis2", hovertemplate=_hover(f"{label} |Aᴴe|"),
                                 name=f"{label} adjoint"), row=row, col=2)
    layout: dict = {}
    kspace = [i for i in range(0, 2 * rows, 2)]
    refs = _xy_refs(fig)
    for i, (xref, yref) in enumerate(refs):
        axes = _image_axes(xref, yref)
        first = refs[0] if i in kspace else refs[1]
        if i > 1:
            axes["xaxis" + xref[1:]] = dict(axes["xaxis" + xref[1:]], matches=first[0])
            axes["yaxis" + yref[1:]] = dict(axes["yaxis" + yref[1:]], matches=first[1])
        layout.update(axes)
    layout.update(
        coloraxis=dict(colorscale=_scale(KSPACE_COLORSCALE), cmin=-5.0, cmax=0.0,
                       colorbar=dict(_colorbar("log₁₀ |e| / max", (0.0, 1.0), 1), x=0.47, len=0.45, y=0.75)),
        coloraxis2=dict(colorscale=_scale(ERROR_COLORSCALE), cmin=0.0, cmax=top or 1e-6,
                        colorbar=dict(_colorbar("|Aᴴe| (a.u.)", (0.0, 1.0), 1), x=1.0, len=0.45, y=0.75)),
        uirevision=uirevision, height=panel_px * rows + 70, margin=dict(l=8, r=8, t=48, b=8), font=_FONT,
        template=TEMPLATE, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode="zoom",
        annotations=[dict(a.to_plotly_json(), font=dict(size=13)) for a in fig.layout.annotations],
    )
    fig.update_layout(layout)
    return fig


def sweep_figure(rows: Sequence[Mapping], *, height: int = 320) -> go.Figure:
    """SSIM and PSNR against the budget, one line per method (the clean value at eps = 0).

    Args:
        rows: attack records (:meth:`~explorer.robustness.AttackResult.row`): ``label``, ``eps``,
            ``ssim_clean``, ``ssim_perturbed``, ``psnr_clean``, ``psnr_perturbed``.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("SSIM vs budget", "PSNR vs budget"), horizontal_spacing=0.1)
    labels = list(dict.fromkeys(r["label"] for r in rows))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
    for i, label in enumerate(labels):
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["eps"])
        color = palette[i % len(palette)]
        for col, metric in ((1, "ssim"), (2, "psnr")):
            if mine[0].get(f"{metric}_clean") is None:
                continue
            x = [0.0] + [r["eps"] for r in mine]
            y = [mine[0][f"{metric}_clean"]] + [r[f"{metric}_perturbed"] for r in mine]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, legendgroup=label,
                                     showlegend=col == 1, line=dict(color=color),
                                     hovertemplate=f"<b>{label}</b><br>eps %{{x:g}}<br>{metric.upper()} %{{y:.4g}}<extra></extra>"),
                          row=1, col=col)
    fig.update_xaxes(title_text="eps = ||e|| / ||k||")
    fig.update_yaxes(title_text="SSIM", row=1, col=1)
    fig.update_yaxes(title_text="PSNR (dB)", row=1, col=2)
    fig.update_layout(height=height, template=TEMPLATE, font=_FONT, margin=dict(l=60, r=20, t=40, b=40),
                      legend=dict(orientation="h", y=-0.25, yanchor="top", x=0))
    return fig


def transfer_figure(rows: Sequence[Mapping], metric: str = "ssim", *, height: int = 360) -> go.Figure:
    """The transfer matrix: the ``metric`` drop of each target (column) under each source's perturbation (row).

    Args:
        rows: :func:`~explorer.robustness.transfer` records of one budget: ``source``, ``target``,
            ``{metric}_drop``; the diagonal is each source's own attack.
    """
    sources = list(dict.fromkeys(r["source"] for r in rows))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    z = np.full((len(sources), len(targets)), np.nan)
    for r in rows:
        value = r.get(f"{metric}_drop")
        if value is not None:
            z[sources.index(r["source"]), targets.index(r["target"])] = value
    unit = " dB" if metric == "psnr" else ""
    text = [[("" if np.isnan(v) else f"{v:.3g}{unit}") for v in line] for line in z]
    fig = go.Figure(go.Heatmap(z=z, x=targets, y=sources, text=text, texttemplate="%{text}",
                               colorscale=_scale("Reds"), colorbar=dict(title=dict(text=f"{metric.upper()} drop", side="right")),
                               hovertemplate="perturbation of <b>%{y}</b><br>applied to <b>%{x}</b><br>drop %{z:.4g}<extra></extra>"))
    fig.update_layout(height=height, template=TEMPLATE, font=_FONT, margin=dict(l=120, r=20, t=30, b=60),
                      xaxis_title="reconstructed by (target)", yaxis_title="perturbation found for (source)",
                      yaxis=dict(autorange="reversed"))
    return fig


__all__ = ["attack_figure", "perturbation_figure", "sweep_figure", "transfer_figure"]
