"""The volume around the Reconstruct page's shown slice, for scrolling in the viewer (:class:`viewer.Slices`)."""

from __future__ import annotations

import dataclasses

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
