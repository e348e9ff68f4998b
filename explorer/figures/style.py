"""The figures' one style: fonts, template, palette, colour scales and the helpers every image figure shares.

Render figures with ``st.plotly_chart(..., theme=None)`` to keep these colours. Image conventions: every image panel is
a ``go.Heatmap`` of an ``(h, w)`` array with row 0 at the top (y axis reversed) and square pixels (``scaleanchor``).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

#: Line and marker colours of series (methods, models, families), in order.
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
IMAGE_COLORSCALE = "gray"
ERROR_COLORSCALE = "inferno"
KSPACE_COLORSCALE = "viridis"
PANEL_PX = 300  # default panel height in pixels
FONT = dict(family='"Source Sans Pro", "Source Sans 3", Helvetica, Arial, sans-serif', size=12, color="#31333F")
TEMPLATE = "plotly_white"  # render with st.plotly_chart(..., theme=None) to keep these colours


def rgb_scale(name: str) -> list[tuple[float, str]]:
    """Named plotly colour scale as explicit ``rgb()`` stops.

    Streamlit's front end rewrites the placeholder colours ``#000001``..``#000010`` of its
    own theme in every figure, and Inferno starts at ``#000004``; ``rgb()`` strings are
    left alone.
    """
    import plotly.colors as pc  # noqa: PLC0415

    stops = pc.get_colorscale(name)
    return [(float(pos), rgb(color)) for pos, color in stops]


def rgb(color: str) -> str:
    if color.startswith("#"):
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgb({r},{g},{b})"
    return color


def as_image(array: np.ndarray, name: str = "image") -> np.ndarray:
    """A finite float32 ``(h, w)`` copy-free view of ``array`` (raises ValueError otherwise)."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2D (h, w), got shape {array.shape}")
    if np.iscomplexobj(array):
        array = np.abs(array)
    return np.ascontiguousarray(array, dtype=np.float32)


def hover_text(label: str, unit: str = "") -> str:
    return f"<b>{label}</b><br>x %{{x}}, y %{{y}}<br>%{{z:.4g}}{unit}<extra></extra>"


def image_axes(xref: str = "x", yref: str = "y") -> dict:
    """Layout update hiding ticks, reversing y and making pixels square for one subplot."""
    common = dict(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", ticks="")
    return {"xaxis" + xref[1:]: common,
            "yaxis" + yref[1:]: dict(common, autorange="reversed", scaleanchor=xref, scaleratio=1)}


def style_image_axes(fig: go.Figure, xref: str = "x", yref: str = "y") -> None:
    """Apply :func:`image_axes` to ``fig``."""
    fig.update_layout(image_axes(xref, yref))


def panel_title(label: str, subtitle: str | None) -> str:
    return f"<b>{label}</b>" + (f"<br><span style='font-size:11px'>{subtitle}</span>" if subtitle else "")


def colorbar(title: str, domain, rows: int) -> dict:
    lo, hi = domain
    return dict(title=dict(text=title, side="right"), len=(hi - lo) * 0.95, y=(lo + hi) / 2, yanchor="middle",
                thickness=12, x=1.0, xpad=6, tickformat=".3~g", outlinewidth=0)


def xy_refs(fig: go.Figure) -> list[tuple[str, str]]:
    """``(xref, yref)`` of every subplot that holds a trace, in trace order."""
    return [(t.xaxis or "x", t.yaxis or "y") for t in fig.data]
