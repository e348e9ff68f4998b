"""The image viewer of every page that shows reconstructions: one component, one figure.

Controls (all Streamlit widgets, keys ``{key}.*``): layout (grid / flip / blink), columns, the image shown
in flip, the blink partner and speed, the error-map mode, a window preset, the drag tool (zoom / ROI box /
line), and the ROI and line as numbers (a box or a line drawn on the figure fills them in). Below the figure:
magnified ROI tiles and the ROI statistics table, and the line profile.

Library functions only (:mod:`explorer.viewer`); this module holds the widgets and their state.
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from explorer.figures.features import add_boxes
from explorer.viewer import detail, layouts
from explorer.viewer.measure import ERROR_MODES, WINDOW_PRESETS, Box, line_from_stroke, roi_stats, window_preset

LAYOUTS = ("Grid", "Flip", "Blink")
TOOLS = {"Zoom": "zoom", "ROI box": "select", "Line": "lasso"}
BLINK_MS = (250, 400, 600, 800, 1200)


def show(key: str, target: np.ndarray | None, images: Mapping[str, np.ndarray], *, uirevision: str,
         subtitles: Mapping[str, str] | None = None, boxes: Sequence[tuple[int, int, int, int]] = (),
         box_labels: Sequence[str] | None = None, pairs: Mapping[str, str] | None = None,
         pair_name: str = "|difference|", filename: str = "reconstructions", show_target: bool = True,
         columns: int = 3) -> None:
    """Controls, the figure, and the ROI / line details of ``target`` and ``images``.

    Args:
        key: widget-key prefix (one viewer per key and page).
        target: reference magnitude ``(h, w)`` or ``None`` (no error maps against it).
        images: ``{label: magnitude (h, w)}``, same shape.
        uirevision: keeps the zoom while it stays the same (include the data's identity and shape).
        subtitles: ``{label: text}`` under the panel titles (e.g. the metrics).
        boxes, box_labels: half-open ``(row0, col0, row1, col1)`` boxes drawn on every panel (e.g. features).
        pairs: ``{label: partner label}``: adds an error mode showing ``|image - partner|`` (e.g. perturbed vs
            clean), named ``pair_name``.
        filename: stem of the figure's PNG export.
        show_target: show the reference as a panel (errors are measured against it either way).
        columns: the grid's default number of columns.
    """
    if not images:
        return
    shape = np.shape(next(iter(images.values())))
    reference = target if target is not None else next(iter(images.values()))
    unit = float(np.max(reference)) or 1.0
    shown_target = target if show_target else None
    panels = ([layouts.TARGET_LABEL] if shown_target is not None else []) + list(images)

    modes = {m: text for m, text in ERROR_MODES.items() if target is not None or m == "off"}
    if pairs:
        modes = {"pair": pair_name, **modes}
    c_layout, c_more, c_error, c_window, c_tool = st.columns([1.2, 1.5, 1.5, 1.4, 1.3], vertical_alignment="bottom")
    layout = c_layout.segmented_control("Layout", LAYOUTS, default="Grid", key=f"{key}.layout",
                                        help="Grid: every image; Flip: one large image, the zoom stays when you "
                                             "flip; Blink: the reference and one image alternate.") or "Grid"
    error_mode = c_error.selectbox("Error map", list(modes), format_func=modes.get, key=f"{key}.error",
                                   disabled=layout == "Blink",
                                   help="|error|: magnitude of the difference to the reference; signed: too bright "
                                        "(red) or too dark (blue); local SSIM: the 7x7 SSIM map (dark = good)")
    preset = c_window.selectbox("Window", list(WINDOW_PRESETS), format_func=WINDOW_PRESETS.get, key=f"{key}.preset",
                                help="Full range: 0 to the reference max; tissue: the object's intensities (Otsu); "
                                     "auto: 0 to a percentile. The sliders under the figure fine-tune it.")
    tool = c_tool.segmented_control("Drag to", list(TOOLS), default="Zoom", key=f"{key}.tool",
                                    help="Zoom; draw an ROI box; or draw a line (its start and end make the "
                                         "profile line)") or "Zoom"
    percentile = 99.5
    if preset == "auto":
        percentile = st.slider("Auto window: percentile of the reference", 90.0, 100.0, 99.5, 0.1,
                               key=f"{key}.percentile")
    window = window_preset(reference, preset, percentile)

    errors = layouts.compute_errors(target, images, error_mode, pairs)
    scale = layouts.default_error_scale(error_mode, errors, unit) if errors else None
    common = dict(window=window, error_mode=error_mode, errors=errors, error_scale=scale, subtitles=subtitles,
                  uirevision=uirevision, unit=unit)
    h = shape[0]
    if layout == "Flip":
        c_more.caption("Flip with the buttons above the image: no rerun, the zoom stays.")
        first = next((label for label in images if label in errors), next(iter(images)))  # one with its error map
        # two panels side by side on a 1600-pixel window: about 540 px each (a taller row would leave a gap)
        fig = layouts.flip_figure(shown_target, images, first, panel_px=int(min(540 if errors else 720, max(320, 2 * h))),
                                  **common)
    elif layout == "Blink":
        others = list(images)
        c_partner, c_speed = c_more.columns([3, 2])
        partner = c_partner.selectbox("Blink", others, key=f"{key}.blink",
                                      help="Alternates with its pair" if pairs else "Alternates with the reference"
                                      if target is not None else "Alternates with the first image")
        ms = c_speed.select_slider("ms per image", BLINK_MS, value=600, key=f"{key}.blink_ms")
        if pairs and partner in pairs:
            first = (pairs[partner], images[pairs[partner]])
        elif target is not None:
            first = (layouts.TARGET_LABEL, target)
        else:
            first = (others[0], images[others[0]])
        if first[0] == partner:
            partner = next((o for o in others if o != partner), partner)
        if first[0] == partner:
            st.info("Blink needs two images.", icon=":material/info:")
            return
        fig = layouts.blink_figure(first, (partner, images[partner]), window=window, unit=unit, frame_ms=ms,
                                   uirevision=uirevision, panel_px=int(min(720, max(480, 2 * h))))
    else:
        name = f"{key}.columns"  # its state is set before the widget: fewer panels than before clamp it
        st.session_state[name] = int(min(max(st.session_state.get(name, columns), 1), len(panels)))
        columns = c_more.number_input("Columns", 1, len(panels), step=1, key=name,
                                      help="At 3 columns a 320-pixel image gets at least one screen pixel per image "
                                           "pixel on a 1600-pixel-wide window")
        # Rows as tall as the image (>= 1 screen pixel per pixel) but no taller than a column is wide on a
        # 1600-pixel window (about 1100 px for the figure): taller rows would leave gaps around square panels.
        panel_px = int(max(180, min(720, max(256, h + 20), 1100 / int(columns))))
        fig = layouts.grid_figure(shown_target, images, columns=int(columns), panel_px=panel_px, **common)
    if boxes:
        add_boxes(fig, list(boxes), list(box_labels) if box_labels else None)
    _clamp_state(key, shape)
    box, line = _roi(key), _line(key)
    detail.add_overlays(fig, box, line)
    if box is not None and st.session_state.get(f"{key}.roi.zoom"):
        detail.zoom_to(fig, box)
    fig.update_layout(dragmode=TOOLS[tool])
    st.plotly_chart(fig, key=f"{key}.figure", theme=None, on_select=functools.partial(_on_select, key, shape),
                    selection_mode=("box", "lasso"),
                    config={"scrollZoom": True, "displaylogo": False, "modeBarButtonsToRemove": ["autoScale2d"],
                            "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}})
    st.caption("Scroll or drag to zoom (all panels share one zoom), double-click to reset. **Drag to: ROI box** "
               "outlines a region on every panel and measures it below; **Line** draws a profile line (from where "
               "you press to where you release). The sliders under the figure fine-tune the window and the error "
               "scale in the browser.")
    _details(key, target, images, errors, box, line, window=window, error_mode=error_mode, scale=scale, unit=unit,
             shape=shape)


# --------------------------------------------------------------------------- ROI and line state
def _on_select(key: str, shape: tuple[int, int]) -> None:
    """A box or a line drawn on the figure -> the ROI / line inputs (runs before the widgets of the rerun)."""
    selection = (st.session_state.get(f"{key}.figure") or {}).get("selection") or {}
    try:
        st.session_state.update(selection_state(key, selection, shape))
    except ValueError as exc:
        st.session_state[f"{key}.line.error"] = str(exc)


def selection_state(key: str, selection: Mapping, shape: tuple[int, int]) -> dict:
    """Session-state updates for a plotly selection: the last box drawn becomes the ROI, the last lasso stroke
    the profile line (from its first to its last point), both switched on.

    Raises:
        ValueError: a stroke too short to make a line.
    """
    out: dict = {}
    boxes, lassos = selection.get("box") or [], selection.get("lasso") or []
    if boxes:
        roi = Box.from_selection(boxes[-1]["x"], boxes[-1]["y"], shape)
        out.update({f"{key}.roi.on": True, f"{key}.roi.top": roi.r0, f"{key}.roi.left": roi.c0,
                    f"{key}.roi.bottom": roi.r1 - 1, f"{key}.roi.right": roi.c1 - 1})
    if lassos:
        (r0, c0), (r1, c1) = line_from_stroke(lassos[-1]["x"], lassos[-1]["y"], shape)
        out.update({f"{key}.line.on": True, f"{key}.line.r0": round(r0), f"{key}.line.c0": round(c0),
                    f"{key}.line.r1": round(r1), f"{key}.line.c1": round(c1)})
    return out


def _clamp_state(key: str, shape: tuple[int, int]) -> None:
    """Keep stored ROI / line coordinates inside an image of ``shape`` (the data may have changed)."""
    h, w = shape
    for suffix, top in (("roi.top", h), ("roi.bottom", h), ("roi.left", w), ("roi.right", w),
                        ("line.r0", h), ("line.r1", h), ("line.c0", w), ("line.c1", w)):
        name = f"{key}.{suffix}"
        if name in st.session_state:
            st.session_state[name] = int(min(max(int(st.session_state[name]), 0), top - 1))


def _roi(key: str) -> Box | None:
    s = st.session_state
    if not s.get(f"{key}.roi.on"):
        return None
    try:
        return Box(int(s[f"{key}.roi.top"]), int(s[f"{key}.roi.left"]), int(s[f"{key}.roi.bottom"]) + 1,
                   int(s[f"{key}.roi.right"]) + 1)
    except (KeyError, ValueError):
        return None


def _line(key: str) -> tuple[tuple[float, float], tuple[float, float]] | None:
    s = st.session_state
    if not s.get(f"{key}.line.on"):
        return None
    try:
        start, end = (float(s[f"{key}.line.r0"]), float(s[f"{key}.line.c0"])), (float(s[f"{key}.line.r1"]), float(s[f"{key}.line.c1"]))
    except KeyError:
        return None
    return None if start == end else (start, end)


def _numbers(container, key: str, names: Sequence[tuple[str, str]], limits: Sequence[int], defaults: Sequence[int]) -> None:
    """Integer inputs ``0 .. limit - 1`` whose state is set before the widget (a drawn box or line sets it too)."""
    for col, (suffix, label), top, default in zip(container.columns(len(names)), names, limits, defaults):
        name, top = f"{key}.{suffix}", max(top - 1, 0)
        st.session_state.setdefault(name, int(min(max(default, 0), top)))
        col.number_input(label, 0, top, step=1, key=name)


def _details(key, target, images, errors, box, line, *, window, error_mode, scale, unit, shape) -> None:
    """The ROI and line inputs, the ROI tiles and table, and the line profile."""
    h, w = shape
    roi_col, line_col = st.columns(2, gap="large")
    with roi_col:
        on_col, zoom_col = st.columns(2)
        on_col.toggle("ROI", key=f"{key}.roi.on", help="Draw a box with **Drag to: ROI box**, or type it here")
        zoom_col.toggle("Zoom to the ROI", key=f"{key}.roi.zoom", disabled=not st.session_state.get(f"{key}.roi.on"),
                        help="Every panel zooms to the ROI, and stays there through every change of layout, error "
                             "map or window (a zoom by dragging lasts until the figure changes)")
        _numbers(st, f"{key}.roi", [("top", "Top row"), ("left", "Left column"), ("bottom", "Bottom row"),
                                    ("right", "Right column")], [h, w, h, w], [h // 3, w // 3, h // 3 + 31, w // 3 + 31])
    with line_col:
        st.toggle("Line profile", key=f"{key}.line.on", help="Draw a line with **Drag to: Line**, or type its ends here")
        _numbers(st, f"{key}.line", [("r0", "From row"), ("c0", "from column"), ("r1", "To row"), ("c1", "to column")],
                 [h, w, h, w], [h // 2, w // 4, h // 2, 3 * w // 4])
    message = st.session_state.pop(f"{key}.line.error", None)
    if message:
        st.warning(message, icon=":material/info:")
    if st.session_state.get(f"{key}.roi.on"):
        if box is None:
            st.error("The ROI needs top <= bottom and left <= right.", icon=":material/error:")
        else:
            _roi_views(key, target, images, errors, box, window=window, error_mode=error_mode, scale=scale, unit=unit)
    if st.session_state.get(f"{key}.line.on"):
        if line is None:
            st.error("The line's two ends are the same pixel: move one of them.", icon=":material/error:")
        else:
            st.plotly_chart(detail.line_profile_figure(target, images, line), key=f"{key}.profile", theme=None,
                            config={"displaylogo": False})


def _roi_views(key, target, images, errors, box: Box, *, window, error_mode, scale, unit) -> None:
    ssim_maps = errors if error_mode == "ssim" else None
    try:
        rows = roi_stats(target, images, box, ssim_maps)
    except ValueError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    table = pd.DataFrame([{"Image": r["label"], "Mean": r["mean"], "Std": r["std"], "SSIM": r["ssim"],
                           "PSNR (dB)": r["psnr"]} for r in rows])
    views = st.container(key=f"{key}.roi_views")
    table_col, note_col = views.columns([3, 2], gap="large", vertical_alignment="bottom")
    with table_col:
        st.markdown(f"**Inside the ROI** ({box.describe()})")
        st.dataframe(table, hide_index=True, key=f"{key}.roi_table", column_config={
            "Mean": st.column_config.NumberColumn(format="%.4g"), "Std": st.column_config.NumberColumn(format="%.4g"),
            "SSIM": st.column_config.NumberColumn(format="%.4f"), "PSNR (dB)": st.column_config.NumberColumn(format="%.2f")})
    note_col.caption("SSIM: the mean of the local SSIM map (7×7 window, whole-image reference max as the data range) "
                     "over the box; PSNR: 10·log₁₀(max² / MSE in the box) with the whole reference's max, as fastMRI. "
                     "Below: the box magnified, every image and its error map, one window and one error scale.")
    # Tiles across the page's width (about 1050 px on a 1600-pixel window), rows as tall as a tile of the box's shape.
    panels = len(images) + (target is not None)
    rows_, cols_ = box.size
    tile_px = int(min(400, max(120, 1050 / panels * rows_ / cols_)))
    fig = detail.roi_tiles_figure(target, images, errors, box, window=window, error_mode=error_mode, error_scale=scale,
                                  unit=unit, uirevision=f"{key}|roi|{box}", tile_px=tile_px)
    views.plotly_chart(fig, key=f"{key}.roi_tiles", theme=None, config={"displaylogo": False})
