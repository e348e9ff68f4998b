"""The image viewer of every page that shows reconstructions: one browser component (no rerun while reading).

The images go to the browser once, as 16-bit planes (:mod:`explorer.viewer.payload`); window/level, zoom, pan,
flip, blink, error maps, layouts and the slices it already holds run there (``viewer_assets/viewer.js``; its
toolbar and keys are described in its help). What comes back to Python: an ROI box or a profile line drawn in the
viewer (for the statistics table, the magnified tiles and the profile below it) and a request for another slice.

Why our own canvas viewer and not cornerstone3D (OHIF's engine): cornerstone3D reads DICOM (or a loader we
would write), needs a bundler and web workers and ships megabytes of JavaScript; ours needs none of that, takes
our float images and error maps directly, and is about 700 lines that the tests drive. The radiology habits it
keeps from OHIF: right-drag window/level, middle-drag pan, wheel through slices, presets, invert, reset.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from explorer import resources
from explorer.figures.style import rgb_scale
from explorer.viewer import detail, layouts
from explorer.viewer.measure import WINDOW_PRESETS, Box, roi_stats, window_preset
from explorer.viewer.payload import Frame, Sent, encode

COMPONENT = "mri_explorer.viewer"
ERROR_LUT, SIGNED_LUT = "inferno", layouts.SIGNED_COLORSCALE


@dataclass
class Slices:
    """The volume around the shown slice, for scrolling in the viewer.

    Attributes:
        index: the shown slice; count: slices in the volume.
        neighbours: already computed slices ``{index: (target (h, w) | None, {label: (h, w)}, subtitles)}`` sent
            with this one (the browser keeps every slice it received).
        on_change: called (in a callback, before the rerun) with the slice the reader scrolled to.
        stack: identity of the volume and settings (slices of another stack are never mixed in).
    """

    index: int
    count: int
    on_change: Callable[[int], None]
    stack: str
    neighbours: Mapping[int, tuple] = field(default_factory=dict)


@functools.cache
def _component():
    js = resources.package_file("ui/viewer_assets/viewer.js").read_text(encoding="utf-8")
    css = resources.package_file("ui/viewer_assets/viewer.css").read_text(encoding="utf-8")
    return st.components.v2.component(COMPONENT, js=js, css=css)


@functools.cache
def lut(name: str) -> list[int]:
    """A plotly colour scale as 256 RGB triples, flattened ``[r0, g0, b0, r1, ...]``."""
    from plotly.colors import sample_colorscale, unlabel_rgb  # noqa: PLC0415

    colours = sample_colorscale([c for _, c in rgb_scale(name)], [i / 255 for i in range(256)])
    return [int(round(v)) for c in colours for v in unlabel_rgb(c)]


def windows(reference: np.ndarray) -> dict[str, tuple[float, float]]:
    """Every window preset of :data:`WINDOW_PRESETS` for ``reference`` ``(h, w)``."""
    return {name: window_preset(reference, name) for name in WINDOW_PRESETS}


def frame(index: int, target: np.ndarray | None, images: Mapping[str, np.ndarray],
          subtitles: Mapping[str, str] | None, window: tuple[float, float] | None = None) -> Frame:
    """One slice's :class:`Frame`: the reference (if any) under :data:`layouts.TARGET_LABEL`, then ``images``;
    ``window`` replaces the full-range preset (e.g. ``(0, 1)`` for images normalised alike)."""
    shown = ({layouts.TARGET_LABEL: target} if target is not None else {}) | dict(images)
    reference = target if target is not None else next(iter(images.values()))
    presets = windows(reference) | ({"full": (float(window[0]), float(window[1]))} if window is not None else {})
    return Frame(int(index), shown, layouts.TARGET_LABEL if target is not None else None, dict(subtitles or {}),
                 presets)


def show(key: str, target: np.ndarray | None, images: Mapping[str, np.ndarray], *, uirevision: str,
         subtitles: Mapping[str, str] | None = None, boxes: Sequence[tuple[int, int, int, int]] = (),
         box_labels: Sequence[str] | None = None, pairs: Mapping[str, str] | None = None,
         pair_name: str = "|difference|", filename: str = "reconstructions", show_target: bool = True,
         columns: int = 3, slices: Slices | None = None, pixel_mm: tuple[float, float] | None = None,
         details: bool = True, mark: bool = False, point: tuple[int, int] | None = None, keys: Sequence[str] = (),
         on_point: Callable[[tuple[int, int]], None] | None = None, on_key: Callable[[str], None] | None = None,
         window: tuple[float, float] | None = None) -> None:
    """The viewer of ``target`` and ``images``, then the ROI / line details.

    Args:
        key: widget-key prefix (one viewer per key and page).
        target: reference magnitude ``(h, w)`` or ``None`` (no error maps against it).
        images: ``{label: magnitude (h, w)}``, same shape.
        uirevision: identity of what is shown (data, shape); the view (zoom, window, layout) lasts while it stays.
        subtitles: ``{label: text}`` under the panel titles (e.g. the metrics).
        boxes, box_labels: half-open ``(row0, col0, row1, col1)`` boxes drawn on every panel (e.g. features).
        pairs: ``{label: partner label}``: adds the error map ``|image - partner|`` (e.g. perturbed vs clean),
            named ``pair_name``, and the viewer opens on it.
        filename: stem of the PNG the viewer saves.
        show_target: show the reference as a panel (errors are measured against it either way).
        columns: the Grid layout's number of columns.
        slices: the volume around this slice (wheel / arrow keys scroll through it), or ``None``.
        pixel_mm: pixel size ``(row, column)`` in mm, for a scale bar.
        details: the ROI and line inputs and their table, tiles and profile under the viewer (off for reading).
        mark: a *Mark* tool (the default left-button tool): a click marks a pixel, ``on_point((row, col))`` gets it
            (in a callback, before the rerun); ``point`` is the mark drawn now.
        keys: keys the viewer hands to ``on_key(key)`` instead of using them (e.g. ``"1"``-``"5"`` on a reading page);
            they also work while no widget has the focus.
        window: the window the viewer opens with (its full-range preset), e.g. ``(0, 1)`` for images normalised
            alike; default ``0`` to the reference's maximum.
    """
    if not images:
        return
    shape = tuple(np.shape(next(iter(images.values()))))
    _clamp_state(key, shape)
    box, line = _roi(key), _line(key)
    current = frame(slices.index if slices else 0, target, images, subtitles, window)
    frames = [current]
    if slices is not None:
        frames += [frame(i, *parts, window) for i, parts in sorted(slices.neighbours.items()) if i != slices.index]
    sent_key = f"{key}.sent"
    if not isinstance(st.session_state.get(sent_key), Sent):
        st.session_state[sent_key] = Sent()
    mode = "pair" if pairs else "abs" if target is not None else "off"
    payload = encode(frames, 0, sent=st.session_state[sent_key],
                     stack=f"{uirevision}|{shape}" if slices is None else slices.stack,
                     show_target=bool(show_target and target is not None), pairs=dict(pairs or {}), pair_name=pair_name,
                     boxes=[[int(v) for v in b] for b in boxes], box_labels=list(box_labels or []),
                     pixel_mm=list(pixel_mm) if pixel_mm else None, layout="row", columns=int(columns), error=mode,
                     slices={"index": slices.index, "count": slices.count} if slices else None,
                     roi=[box.r0, box.c0, box.r1, box.c1] if box else None,
                     line=[int(line[0][0]), int(line[0][1]), int(line[1][0]), int(line[1][1])] if line else None,
                     zoom_roi=bool(box is not None and st.session_state.get(f"{key}.roi.zoom")),
                     filename=filename, luts={"error": lut(ERROR_LUT), "signed": lut(SIGNED_LUT)}, mark=bool(mark),
                     point=[int(point[0]), int(point[1])] if point is not None else None, keys=list(keys))
    st.session_state[f"{key}.bytes"] = len(payload)
    _component()(key=f"{key}.view", data=payload, default={"roi": None, "line": None},
                 on_roi_change=functools.partial(_on_drawn, key, shape, "roi"),
                 on_line_change=functools.partial(_on_drawn, key, shape, "line"),
                 on_slice_change=functools.partial(_on_slice, key, slices),
                 on_missing_change=functools.partial(_on_missing, key),
                 on_point_change=functools.partial(_on_event, key, "point", on_point),
                 on_key_change=functools.partial(_on_event, key, "key", on_key))
    if not details:
        return
    st.caption("**Reading:** right-drag = window/level · middle-drag = pan · wheel = "
               + ("slices (Ctrl + wheel = zoom)" if slices and slices.count > 1 else "zoom")
               + " · double-click = fit · ← → = next image · f = 1 + thumbnails · b = blink · e = error map · "
               "**?** in the toolbar lists every key. Draw an **ROI box** or a **Line** (left-drag tool) to measure it "
               "below.")
    view = st.session_state.get(f"{key}.view") or {}
    roi_view = _get(view, "roi") or {}
    reference = target if target is not None else next(iter(images.values()))
    window = tuple(roi_view.get("window") or window_preset(reference, "full"))
    error_mode = roi_view.get("error") or mode
    error_mode = error_mode if error_mode in ("abs", "signed", "ssim", "pair", "off") else "off"
    errors = layouts.compute_errors(target, images, error_mode, pairs) if box is not None else {}
    unit = float(np.max(reference)) or 1.0
    scale = roi_view.get("scale") or (layouts.default_error_scale(error_mode, errors, unit) if errors else None)
    _details(key, target, images, errors, box, line, window=window, error_mode=error_mode, scale=scale, unit=unit,
             shape=shape)


def _get(view, name: str):
    try:
        return view[name] if isinstance(view, Mapping) else getattr(view, name, None)
    except (KeyError, AttributeError):
        return None


def drawn_state(key: str, roi: Mapping | None, line: Mapping | None, shape: tuple[int, int]) -> dict:
    """Session-state updates for what the viewer reports: a box ``{"box": [r0, c0, r1, c1]}`` (half-open) becomes
    the ROI, a line ``{"line": [r0, c0, r1, c1]}`` (pixels) the profile line, both switched on.

    Raises:
        ValueError: a box or line outside an image of ``shape``, or a line whose two ends are one pixel.
    """
    out: dict = {}
    h, w = shape
    if roi and roi.get("box"):
        box = Box(*(int(v) for v in roi["box"]))
        box.check(shape)
        out.update({f"{key}.roi.on": True, f"{key}.roi.top": box.r0, f"{key}.roi.left": box.c0,
                    f"{key}.roi.bottom": box.r1 - 1, f"{key}.roi.right": box.c1 - 1})
    if line and line.get("line"):
        r0, c0, r1, c1 = (int(v) for v in line["line"])
        if not (0 <= r0 < h and 0 <= r1 < h and 0 <= c0 < w and 0 <= c1 < w):
            raise ValueError(f"the line ({r0}, {c0}) - ({r1}, {c1}) leaves the {h}x{w} image")
        if (r0, c0) == (r1, c1):
            raise ValueError("The line's two ends are the same pixel: move one of them.")
        out.update({f"{key}.line.on": True, f"{key}.line.r0": r0, f"{key}.line.c0": c0, f"{key}.line.r1": r1,
                    f"{key}.line.c1": c1})
    return out


def _on_drawn(key: str, shape: tuple[int, int], what: str) -> None:
    """A box or a line drawn in the viewer -> the ROI / line inputs (runs before the widgets of the rerun)."""
    value = _get(st.session_state.get(f"{key}.view") or {}, what)
    try:
        st.session_state.update(drawn_state(key, value if what == "roi" else None, value if what == "line" else None,
                                            shape))
    except (ValueError, TypeError) as exc:
        st.session_state[f"{key}.line.error"] = str(exc)


def _on_slice(key: str, slices: Slices | None) -> None:
    """The reader scrolled to another slice: the page's ``on_change`` makes it the shown one."""
    value = _get(st.session_state.get(f"{key}.view") or {}, "slice")
    if slices is None or value is None:
        return
    index = int(value)
    if 0 <= index < slices.count and index != slices.index:
        slices.on_change(index)


def _on_event(key: str, name: str, handler: Callable | None) -> None:
    """A mark or a key from the viewer -> ``handler`` (a mark as ``(row, col)``)."""
    value = _get(st.session_state.get(f"{key}.view") or {}, name)
    if handler is None or value is None:
        return
    if name == "point":
        try:
            handler((int(value["row"]), int(value["col"])))
        except (KeyError, TypeError, ValueError):
            return
    else:
        handler(str(value))


def _on_missing(key: str) -> None:
    """The browser lacks a frame it was told it holds (a reloaded component): send every frame again."""
    st.session_state[f"{key}.sent"] = Sent()


# --------------------------------------------------------------------------- ROI and line state
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
