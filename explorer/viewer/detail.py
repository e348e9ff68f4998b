"""Detail views of the viewer (numpy in, ``go.Figure`` out; no Streamlit): the ROI and the line drawn on every
panel, magnified ROI tiles of every image and error map, and the line profile of every image.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from explorer.errors import ExplorerError
from explorer.figures.features import profile_figure
from explorer.figures.style import xy_refs
from explorer.viewer.layouts import grid_figure
from explorer.viewer.measure import Box, line_profile, roi_stats

ROI_COLOR = "#1f6feb"
ERROR_TITLES = {"abs": "|error|", "signed": "signed error", "ssim": "local SSIM", "pair": "|difference|"}
LINE_COLOR = "#ffb000"


def add_overlays(fig: go.Figure, box: Box | None = None,
                 line: tuple[tuple[float, float], tuple[float, float]] | None = None) -> None:
    """Draw the ROI ``box`` and the profile ``line`` (``((row, col), (row, col))``) on every panel of ``fig``."""
    shapes = list(fig.layout.shapes or ())
    for xref, yref in dict.fromkeys(xy_refs(fig)):
        if box is not None:
            shapes.append(dict(type="rect", xref=xref, yref=yref, x0=box.c0 - 0.5, x1=box.c1 - 0.5, y0=box.r0 - 0.5,
                               y1=box.r1 - 0.5, line=dict(color=ROI_COLOR, width=1.5), fillcolor="rgba(0,0,0,0)"))
        if line is not None:
            (r0, c0), (r1, c1) = line
            shapes.append(dict(type="line", xref=xref, yref=yref, x0=c0, y0=r0, x1=c1, y1=r1,
                               line=dict(color=LINE_COLOR, width=1.5)))
    fig.update_layout(shapes=shapes)


def zoom_to(fig: go.Figure, box: Box, margin: float = 0.25) -> None:
    """Zoom every panel of ``fig`` (they match the first one's axes) to ``box`` plus ``margin`` of its size."""
    dr, dc = margin * (box.r1 - box.r0), margin * (box.c1 - box.c0)
    fig.update_layout(xaxis=dict(range=[box.c0 - 0.5 - dc, box.c1 - 0.5 + dc], autorange=False),
                      yaxis=dict(range=[box.r1 - 0.5 + dr, box.r0 - 0.5 - dr], autorange=False))


def roi_tiles_figure(target: np.ndarray | None, images: Mapping[str, np.ndarray], errors: Mapping[str, np.ndarray],
                     box: Box, *, window: tuple[float, float], error_mode: str, error_scale: float | None,
                     tile_px: int = 220, unit: float | None = None, uirevision: str = "roi") -> go.Figure:
    """The ROI of every image (one row) and of its error map (under it), magnified to ``tile_px``.

    The error maps are cropped from the whole-image maps (a local SSIM map near the ROI's border sees the
    pixels outside it). Same window and error scale as the main figure; the tiles share one zoom.

    Args:
        target: reference ``(h, w)`` or ``None``; images, errors: ``{label: (h, w)}``.
        box: the ROI.
        window, error_mode, error_scale, unit: as :func:`~explorer.viewer.layouts.grid_figure`.
        tile_px: height of a row of tiles.
    """
    shape = np.shape(target) if target is not None else np.shape(next(iter(images.values())))
    box.check(shape)
    rows, cols = box.slices
    crop = {label: np.asarray(im)[rows, cols] for label, im in images.items()}
    crop_errors = {label: np.asarray(e)[rows, cols] for label, e in errors.items()}
    fig = grid_figure(None if target is None else np.asarray(target)[rows, cols], crop, window=window,
                      error_mode=error_mode if crop_errors else "off", errors=crop_errors, error_scale=error_scale,
                      panel_px=tile_px, controls=False, uirevision=uirevision, unit=unit,
                      target_label="reference")
    for trace in fig.data:  # the tiles are crops: place them at the ROI's corner, so hover shows image coordinates
        trace.x0, trace.y0 = box.c0, box.r0
    # Titles that fit their tile (about 1050 px shared by the tiles of a row): the error row under the images
    # needs no method name, and a long name is cut with an ellipsis (the hover keeps the whole name).
    panels = len(images) + (target is not None)
    chars = max(8, int(1050 / max(panels, 1) / 7.5))
    names = set(crop) | {"reference"}
    for annotation in fig.layout.annotations:
        text = annotation.text or ""
        plain = text.replace("<b>", "").replace("</b>", "")
        if plain not in names and plain.split("<br>")[0] not in names:  # an error tile's title
            annotation.text = f"<span style='font-size:11px'>{ERROR_TITLES.get(error_mode, plain)}</span>"
        elif len(plain) > chars:
            annotation.text = f"<b>{_short(plain.split('<br>')[0], chars)}</b>"
        annotation.font = dict(size=12)
    fig.update_layout(title=dict(text=f"ROI: {box.describe()}", font=dict(size=13), x=0.0, xanchor="left"),
                      margin=dict(l=8, r=8, t=70, b=8), height=fig.layout.height + 22)
    return fig


def _short(text: str, chars: int) -> str:
    """``text`` cut to ``chars`` characters with an ellipsis."""
    return text if len(text) <= chars else text[:chars - 1].rstrip() + "…"


def profiles(target: np.ndarray | None, images: Mapping[str, np.ndarray],
             line: tuple[tuple[float, float], tuple[float, float]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (distance (n,), values (n,))}`` along ``line`` for the reference (``"reference"``) and every image."""
    out = {}
    if target is not None:
        out["reference"] = line_profile(target, *line)
    for label, image in images.items():
        out[label] = line_profile(image, *line)
    return out


def line_profile_figure(target: np.ndarray | None, images: Mapping[str, np.ndarray],
                        line: tuple[tuple[float, float], tuple[float, float]], *, height: int = 320) -> go.Figure:
    """Intensity along ``line`` for the reference (dark) and every image, in one plot."""
    (r0, c0), (r1, c1) = line
    fig = profile_figure(profiles(target, images, line),
                         f"Line profile from (row {r0:.0f}, col {c0:.0f}) to (row {r1:.0f}, col {c1:.0f})",
                         height=height)
    fig.update_layout(xaxis_title="distance along the line (pixels)")
    return fig


def check_inside(roi: Box | None, line, shape: tuple[int, int]) -> None:
    """Raise a one-line :class:`ExplorerError` unless the ROI and the line ``((r0, c0), (r1, c1))`` lie inside an
    image of ``shape`` ``(h, w)`` (checked before any reconstruction runs)."""
    h, w = shape
    try:
        if roi is not None:
            roi.check(shape)
        if line is not None and not all(0 <= r <= h - 1 and 0 <= c <= w - 1 for r, c in line):
            raise ValueError(f"the profile line leaves the {h}x{w} image")
    except ValueError as exc:
        raise ExplorerError(str(exc)) from None


def report(target: np.ndarray | None, images: Mapping[str, np.ndarray], roi: Box | None, line) -> dict:
    """The ROI statistics and the line profile as JSON-ready data (only those asked for).

    Returns:
        ``{"roi": {"rows_cols": [top, left, bottom, right] (inclusive), "rows": roi_stats rows (an exact match's
        PSNR is null: JSON has no infinity)}, "profile": {"line", "distance", "values": {name: list}}}``.
    """
    found: dict = {}
    if roi is not None:
        rows = roi_stats(target, images, roi)
        for row in rows:
            row["psnr"] = None if row["psnr"] == float("inf") else row["psnr"]
        found["roi"] = {"rows_cols": [roi.r0, roi.c0, roi.r1 - 1, roi.c1 - 1], "rows": rows}
    if line is not None:
        curves = profiles(target, images, line)
        found["profile"] = {"line": [list(line[0]), list(line[1])],
                            "distance": next(iter(curves.values()))[0].tolist(),
                            "values": {name: v.tolist() for name, (_, v) in curves.items()}}
    return found


def profile_csv(profile: dict) -> str:
    """The ``"profile"`` of :func:`report` as CSV: a ``distance`` column and one column per image."""
    names = list(profile["values"])
    lines = [",".join(["distance", *names])]
    for i, d in enumerate(profile["distance"]):
        lines.append(",".join([f"{d:.6g}", *(f"{profile['values'][n][i]:.6g}" for n in names)]))
    return "\n".join(lines) + "\n"


__all__ = ["add_overlays", "check_inside", "line_profile_figure", "profile_csv", "profiles", "report", "roi_tiles_figure",
           "zoom_to"]
