"""Plotly figures of test-time training (rows / histories in, ``go.Figure`` out; no Streamlit)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.figures.style import FONT, PALETTE, TEMPLATE


def _mean(values) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def curves_figure(history, *, height: int = 300) -> go.Figure:
    """Training loss and held-out error (log scale, left) and SSIM (right) against the step."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("self-supervised loss", "SSIM (against the reference)"),
                        horizontal_spacing=0.1)
    steps = [h[0] for h in history]
    fig.add_trace(go.Scatter(x=steps, y=[h[1] for h in history], mode="lines", name="training loss"), row=1, col=1)
    held = [(h[0], h[2]) for h in history if h[2] is not None]
    if held:
        fig.add_trace(go.Scatter(x=[s for s, _ in held], y=[v for _, v in held], mode="lines", name="held-out error"),
                      row=1, col=1)
    ssim = [(h[0], h[3]) for h in history if h[3] is not None]
    if ssim:
        fig.add_trace(go.Scatter(x=[s for s, _ in ssim], y=[v for _, v in ssim], mode="lines+markers", name="SSIM"),
                      row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, margin=dict(l=60, r=20, t=40, b=40),
                      legend=dict(orientation="h", y=-0.3, yanchor="top", x=0))
    return fig


def ssim_bars(rows: Sequence[dict], *, height: int = 340) -> go.Figure:
    """Mean SSIM per network: before test-time training, after it, and the reference network's."""
    fig = go.Figure()
    labels = list(dict.fromkeys(r["label"] for r in rows))
    for i, (key, name) in enumerate((("ssim_before", "before TTT"), ("ssim_after", "after TTT"),
                                     ("ssim_reference", "trained on the target"))):
        means = [_mean([r[key] for r in rows if r["label"] == label]) for label in labels]
        fig.add_trace(go.Bar(x=labels, y=means, name=name, marker_color=PALETTE[i]))
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, barmode="group", yaxis_title="mean SSIM",
                      margin=dict(l=60, r=20, t=30, b=40), legend=dict(orientation="h", y=-0.2, yanchor="top", x=0))
    return fig


__all__ = ["curves_figure", "ssim_bars"]
