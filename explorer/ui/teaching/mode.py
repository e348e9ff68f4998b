"""The Home page's teaching mode: a section picker and the chosen section (the primer's k-space, masks and SENSE
sections, :mod:`~explorer.ui.teaching.artifacts`' corruptions, :mod:`~explorer.ui.teaching.recon`'s families, :mod:`~explorer.ui.teaching.path`'s guided path).

One section renders per script run (a horizontal radio picks it), so the Home page stays fast.
"""

from __future__ import annotations

import streamlit as st

from explorer.errors import ExplorerError
from explorer.ui import cache, widgets
from explorer.ui.state import Source
from explorer.ui.teaching import artifacts as teaching_artifacts
from explorer.ui.teaching import path as teaching_path
from explorer.ui.teaching import primer
from explorer.ui.teaching import recon as teaching_recon
from explorer.ui.teaching.slice import PLANE, SECTIONS, TeachingSlice


def render(source: Source | None) -> None:
    """The teaching mode under a subheader: a section picker and the chosen section."""
    st.subheader("Teaching mode", divider="gray")
    st.caption("For explaining accelerated MRI: every image below is computed from the middle slice of the data "
               "chosen in the sidebar.")
    section = st.radio("Section", list(SECTIONS), format_func=SECTIONS.get, horizontal=True, key="home.teach.section",
                       label_visibility="collapsed")
    if section == "path":
        teaching_path.render()
        return
    if source is None:
        st.info("Choose a valid data source in the sidebar.", icon=":material/arrow_back:")
        return
    try:
        volume = cache.open_volume(source)
        index = volume.num_slices // 2
        data = TeachingSlice(source, index, cache.load_slice(source, PLANE, index))
    except ExplorerError as exc:
        widgets.show_error(exc)
        return
    if not data.full:
        st.info("This file is already undersampled (fastMRI test data): the teaching mode needs fully sampled "
                "k-space. Choose the embedded sample or a training/validation file.", icon=":material/info:")
        return
    body = {"kspace": primer.kspace_section, "masks": primer.masks_section, "sense": primer.sense_section,
            "artifacts": teaching_artifacts.render, "families": teaching_recon.render}[section]
    try:
        body(data)
    except ExplorerError as exc:
        widgets.show_error(exc)
    except MemoryError:
        widgets.show_error(ExplorerError("out of memory: use a smaller slice"))


# ----------------------------------------------------------------------------- k-space explorer


__all__ = ["render"]
