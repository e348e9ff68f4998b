"""The volume around the Reconstruct page's shown slice, for scrolling in the viewer (:class:`viewer.Slices`)."""

from __future__ import annotations

import dataclasses
import re

import streamlit as st

from explorer.ui import cache, state, viewer


def viewer_slices(shown: state.Request, count: int, slider_key: str) -> viewer.Slices:
    """The volume around the shown slice for the viewer: neighbours already reconstructed go with it, and
    scrolling to another slice makes it the shown request (its reconstructions run, with progress, if not cached)
    and moves the page's slice slider ``slider_key`` there."""

    def to_slice(index: int) -> None:
        if slider_key in st.session_state:
            st.session_state[slider_key] = index
        st.session_state[state.REQUEST] = dataclasses.replace(shown, index=index)

    neighbours = {}
    for index in (shown.index - 1, shown.index + 1):
        found = [cache.cached_result(shown.source, shown.plane, index, shown.mask, inst) for inst in shown.methods]
        if 0 <= index < count and all(r is not None and r.image is not None for r in found):
            near = cache.problem(shown.source, shown.plane, index, shown.mask)
            neighbours[index] = (near.target, {r.label: r.image for r in found},
                                 {r.label: f"SSIM {r.metrics['ssim']:.3f} · PSNR {r.metrics['psnr']:.2f} dB"
                                  for r in found if r.metrics} if near.target is not None else {})
    return viewer.Slices(shown.index, count, to_slice, f"{shown.source.spec}|{shown.plane}|{shown.mask}|{shown.methods}",
                         neighbours)


def pixel_mm(source: state.Source, shape: tuple[int, int]) -> tuple[float, float] | None:
    """Pixel size ``(row, column)`` in mm of an image of ``shape`` from ``source``: the fastMRI file's ISMRMRD header
    (``reconSpace``: field of view over matrix size, when the matrix is the shape shown), else ``None``; ``None``
    for the embedded sample too (a phantom has no physical size; its header's field of view is a placeholder)."""
    if source.is_sample or not source.spec.endswith(".h5"):
        return None
    try:
        import h5py  # noqa: PLC0415

        with h5py.File(source.spec, "r") as f:
            raw = f["ismrmrd_header"][()] if "ismrmrd_header" in f else None
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        space = re.search(r"<reconSpace>(.*?)</reconSpace>", text, re.S)
        if not space:
            return None
        value = lambda tag, axis: float(re.search(rf"<{tag}>.*?<{axis}>\s*([0-9.eE+-]+)\s*</{axis}>", space.group(1),  # noqa: E731
                                                  re.S).group(1))
        matrix = (value("matrixSize", "y"), value("matrixSize", "x"))
        fov = (value("fieldOfView_mm", "y"), value("fieldOfView_mm", "x"))
    except (OSError, KeyError, AttributeError, ValueError):
        return None
    if (int(matrix[0]), int(matrix[1])) != tuple(shape) or min(fov) <= 0:
        return None
    return fov[0] / matrix[0], fov[1] / matrix[1]
