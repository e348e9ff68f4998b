"""Plotly figures of attacks (numpy / records in, ``go.Figure`` out; no Streamlit), in the conventions of
:mod:`explorer.figures.images`: image panels are heatmaps with row 0 at the top and square pixels, compared panels
share a colour axis, and every image panel of a figure shares one zoom.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.figures.images import kspace_log_magnitude
from explorer.figures.style import (ERROR_COLORSCALE, FONT, KSPACE_COLORSCALE, PALETTE, PANEL_PX, TEMPLATE, as_image,
                                    colorbar, hover_text, image_axes, panel_title, rgb_scale, xy_refs)


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
        titles += [panel_title(f"{label}: e in k-space", "log₁₀ |e| / max (coil RSS)"), panel_title(f"{label}: |Aᴴe|", None)]
    rows = len(views)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=min(0.25 / rows, 0.08))
    top = 0.0
    for row, (label, (e, image)) in enumerate(views.items(), start=1):
        fig.add_trace(go.Heatmap(z=kspace_log_magnitude(e), coloraxis="coloraxis", name=f"{label} e",
                                 hovertemplate="kx %{y}, ky %{x}<br>log₁₀|e|/max %{z:.2f}<extra></extra>"), row=row, col=1)
        image = as_image(image, f"{label} adjoint")
        top = max(top, float(image.max()))
        fig.add_trace(go.Heatmap(z=image, coloraxis="coloraxis2", hovertemplate=hover_text(f"{label} |Aᴴe|"),
                                 name=f"{label} adjoint"), row=row, col=2)
    layout: dict = {}
    kspace = [i for i in range(0, 2 * rows, 2)]
    refs = xy_refs(fig)
    for i, (xref, yref) in enumerate(refs):
        axes = image_axes(xref, yref)
        first = refs[0] if i in kspace else refs[1]
        if i > 1:
            axes["xaxis" + xref[1:]] = dict(axes["xaxis" + xref[1:]], matches=first[0])
            axes["yaxis" + yref[1:]] = dict(axes["yaxis" + yref[1:]], matches=first[1])
        layout.update(axes)
    layout.update(
        coloraxis=dict(colorscale=rgb_scale(KSPACE_COLORSCALE), cmin=-5.0, cmax=0.0,
                       colorbar=dict(colorbar("log₁₀ |e| / max", (0.0, 1.0), 1), x=0.47, len=0.45, y=0.75)),
        coloraxis2=dict(colorscale=rgb_scale(ERROR_COLORSCALE), cmin=0.0, cmax=top or 1e-6,
                        colorbar=dict(colorbar("|Aᴴe| (a.u.)", (0.0, 1.0), 1), x=1.0, len=0.45, y=0.75)),
        uirevision=uirevision, height=panel_px * rows + 70, margin=dict(l=8, r=8, t=48, b=8), font=FONT,
        template=TEMPLATE, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode="zoom",
        annotations=[dict(a.to_plotly_json(), font=dict(size=13)) for a in fig.layout.annotations],
    )
    fig.update_layout(layout)
    return fig


NOISE_CURVE = "Gaussian noise, same norm"  # the random baseline's curves (robustness.noise)


def _sd(value) -> float:
    return 0.0 if value is None or value != value else float(value)


def sweep_figure(rows: Sequence[Mapping], *, height: int = 320) -> go.Figure:
    """SSIM and PSNR against the budget, one line per method (the clean value at eps = 0); where ``rows`` hold a
    method's noise baseline (``kind == "noise"``), its curve beside it: dashed, the same colour, the mean over the
    draws with error bars of their sample sd, named :data:`NOISE_CURVE`.

    Args:
        rows: attack records (:meth:`~explorer.robustness.AttackResult.row`, and the noise baseline's
            :meth:`~explorer.robustness.noise.NoiseBaseline.row`): ``label``, ``eps``, ``kind``, ``ssim_clean``,
            ``ssim_perturbed``, ``psnr_clean``, ``psnr_perturbed`` (noise: ``*_perturbed_sd``).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("SSIM vs budget", "PSNR vs budget"), horizontal_spacing=0.1)
    labels = list(dict.fromkeys(r["label"] for r in rows))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
    for i, label in enumerate(labels):
        mine = sorted((r for r in rows if r["label"] == label and r.get("kind") != "noise"), key=lambda r: r["eps"])
        noise = sorted((r for r in rows if r["label"] == label and r.get("kind") == "noise"), key=lambda r: r["eps"])
        color = palette[i % len(palette)]
        for col, metric in ((1, "ssim"), (2, "psnr")):
            first = (mine or noise)[0]
            if first.get(f"{metric}_clean") is None:
                continue
            if mine:
                x = [0.0] + [r["eps"] for r in mine]
                y = [first[f"{metric}_clean"]] + [r[f"{metric}_perturbed"] for r in mine]
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, legendgroup=label,
                                         showlegend=col == 1, line=dict(color=color),
                                         hovertemplate=f"<b>{label}</b> (worst case)<br>eps %{{x:g}}<br>{metric.upper()} "
                                                       "%{y:.4g}<extra></extra>"),
                              row=1, col=col)
            if noise:
                x = [0.0] + [r["eps"] for r in noise]
                y = [first[f"{metric}_clean"]] + [r[f"{metric}_perturbed"] for r in noise]
                sd = [0.0] + [_sd(r.get(f"{metric}_perturbed_sd")) for r in noise]
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{label}: {NOISE_CURVE}",
                                         legendgroup=label, showlegend=col == 1,
                                         line=dict(color=color, dash="dash"), marker=dict(symbol="circle-open"),
                                         error_y=dict(type="data", array=sd, visible=True, color=color, thickness=1),
                                         customdata=sd,
                                         hovertemplate=f"<b>{label}</b>: {NOISE_CURVE}<br>eps %{{x:g}}<br>"
                                                       f"{metric.upper()} %{{y:.4g}} ± %{{customdata:.2g}} (sd over "
                                                       "draws)<extra></extra>"),
                              row=1, col=col)
    fig.update_xaxes(title_text="eps = ||e|| / ||k||")
    fig.update_yaxes(title_text="SSIM", row=1, col=1)
    fig.update_yaxes(title_text="PSNR (dB)", row=1, col=2)
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, margin=dict(l=60, r=20, t=40, b=40),
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
                               colorscale=rgb_scale("Reds"), colorbar=dict(title=dict(text=f"{metric.upper()} drop", side="right")),
                               hovertemplate="perturbation of <b>%{y}</b><br>applied to <b>%{x}</b><br>drop %{z:.4g}<extra></extra>"))
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, margin=dict(l=120, r=20, t=30, b=60),
                      xaxis_title="reconstructed by (target)", yaxis_title="perturbation found for (source)",
                      yaxis=dict(autorange="reversed"))
    return fig


def drop_figure(rows: Sequence[dict], *, height: int = 340) -> go.Figure:
    """SSIM drop against the budget per method: the mean over slices with a band of one standard deviation; where
    ``rows`` hold noise rows (``kind == "noise"``, :func:`~explorer.robustness.attack.summary`), the method's
    :data:`NOISE_CURVE` beside it, dashed, with the band of the sd over the slices' draws."""
    fig = go.Figure()
    for i, label in enumerate(dict.fromkeys(r["label"] for r in rows)):
        color = PALETTE[i % len(PALETTE)]
        for kind in ("worst case", "noise"):
            mine = sorted((r for r in rows if r["label"] == label and r.get("kind", "worst case") == kind),
                          key=lambda r: r["eps"])
            if not mine:
                continue
            noise = kind == "noise"
            x = [0.0] + [r["eps"] for r in mine]
            y = [0.0] + [r["ssim_drop"] for r in mine]
            sd = [0.0] + [_sd(r["ssim_drop_sd"]) for r in mine]
            fig.add_trace(go.Scatter(x=x + x[::-1], y=[a + b for a, b in zip(y, sd)] + [a - b for a, b in zip(y, sd)][::-1],
                                     fill="toself", fillcolor=color, opacity=0.08 if noise else 0.15, line=dict(width=0),
                                     hoverinfo="skip", showlegend=False, legendgroup=label))
            counts = [0] + [r["draws"] if noise else r["n"] for r in mine]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{label}: {NOISE_CURVE}" if noise else label,
                                     legendgroup=label, line=dict(color=color, dash="dash" if noise else "solid"),
                                     marker=dict(symbol="circle-open" if noise else "circle"), customdata=counts,
                                     hovertemplate=f"<b>{label}</b>{': ' + NOISE_CURVE if noise else ''}<br>eps %{{x:g}}"
                                                   "<br>SSIM drop %{y:.4f}<br>"
                                                   f"{'draws' if noise else 'slices'} %{{customdata}}<extra></extra>"))
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, margin=dict(l=60, r=20, t=30, b=40),
                      xaxis_title="eps = ||e|| / ||k||", yaxis_title="SSIM drop (mean ± sd)",
                      legend=dict(orientation="h", y=-0.22, yanchor="top", x=0))
    return fig

__all__ = ["NOISE_CURVE", "drop_figure", "perturbation_figure", "sweep_figure", "transfer_figure"]
