"""The distribution-shift scatter (rows in, ``go.Figure`` out; no Streamlit), in the conventions of
:mod:`explorer.figures.images`."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.figures.style import FONT, PALETTE, TEMPLATE


def shift_figure(rows: Sequence[Mapping], fit: Mapping | None, *, height: int = 460,
                 family_fits: Mapping[str, Mapping | None] | None = None, x: str = "ssim_id", y: str = "ssim_ood",
                 x_title: str = "SSIM, in-distribution set", y_title: str = "SSIM, shifted set") -> go.Figure:
    """SSIM on the in-distribution set (x) against SSIM on the shifted set (y), one point per model, one colour
    per family, with ``y = x`` and the least-squares line across models (and, given ``family_fits``, each
    family's own line in its colour, dashed, over its models' range).

    Args:
        rows: :class:`~explorer.robustness.shift.ShiftStudy` rows (``label``, ``family``, ``ssim_id``, ``ssim_ood``).
        fit: ``{"slope", "intercept", "r", "n"}`` or ``None``.
        family_fits: ``{family: fit or None}``.
        x, y: the rows' keys on each axis (e.g. the whole pool and the filtered subset of a filtered shift);
        x_title, y_title: the axis titles.
    """
    fig = go.Figure()
    values = [v for r in rows for v in (r[x], r[y])] or [0.0, 1.0]
    lo, hi = min(values) - 0.02, max(values) + 0.02
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x (no loss)",
                             line=dict(color="#9aa0a6", dash="dot")))
    if fit:
        xs = np.array([lo, hi])
        r_text = "" if fit.get("r") is None else f", r = {fit['r']:+.2f}"
        fig.add_trace(go.Scatter(x=xs, y=fit["slope"] * xs + fit["intercept"], mode="lines", line=dict(color="#31333F"),
                                 name=f"fit: y = {fit['slope']:.2f} x {fit['intercept']:+.2f}{r_text}"))
    families = list(dict.fromkeys(r["family"] for r in rows))
    for i, family in enumerate(families):
        mine = [r for r in rows if r["family"] == family]
        fig.add_trace(go.Scatter(
            x=[r[x] for r in mine], y=[r[y] for r in mine], mode="markers+text", name=family,
            text=[r["label"] for r in mine], textposition="top center", textfont=dict(size=10),
            marker=dict(size=10, color=PALETTE[i % len(PALETTE)]),
            hovertemplate=f"<b>%{{text}}</b><br>{x_title} %{{x:.4f}}<br>{y_title} %{{y:.4f}}<extra></extra>"))
        own = (family_fits or {}).get(family)
        if own:
            xs = np.array([min(r[x] for r in mine), max(r[x] for r in mine)])
            r_text = "" if own.get("r") is None else f", r = {own['r']:+.2f}"
            fig.add_trace(go.Scatter(x=xs, y=own["slope"] * xs + own["intercept"], mode="lines",
                                     line=dict(color=PALETTE[i % len(PALETTE)], dash="dash"),
                                     name=f"{family} fit: slope {own['slope']:.2f}{r_text}"))
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, margin=dict(l=60, r=20, t=30, b=50),
                      xaxis=dict(title=x_title, range=[lo, hi]),
                      yaxis=dict(title=y_title, range=[lo, hi], scaleanchor="x", scaleratio=1),
                      legend=dict(orientation="h", y=-0.18, yanchor="top", x=0))
    return fig


__all__ = ["shift_figure"]
