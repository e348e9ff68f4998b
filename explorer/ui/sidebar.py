"""The sidebar every page shares: the data source (embedded sample, a file from the data directory, an upload) and the
compute device. The choice becomes a :class:`~explorer.ui.state.Source` in the session state (``None`` while invalid:
pages then ask for another one)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer.errors import ExplorerError
from explorer.metrics import METRIC_DEFINITIONS
from explorer.ui import cache, paths, uploads
from explorer.ui.state import (METRIC, SOURCE, Source, data_roots, default_data_dir, file_source,
                               sample_source, save_upload)

SOURCE_KINDS = {"sample": "Embedded sample", "dir": "File from data directory", "upload": "Upload .h5"}
_UPLOADS = "explorer.uploads"  # {uploader file_id: saved path, or the one-line error it failed with}


def render() -> Source | None:
    """Render the sidebar data-source controls; store and return the chosen :class:`Source`.

    Invalid choices (missing directory, unreadable upload...) show ``st.error`` in the
    sidebar and yield ``None``; pages then ask the user to pick another source.
    """
    sb = st.sidebar
    sb.subheader("Data source")
    if "src.kind" not in st.session_state:  # first run: a configured data directory wins
        st.session_state["src.kind"] = "dir" if default_data_dir() else "sample"
    kind = sb.radio("Source", list(SOURCE_KINDS), format_func=SOURCE_KINDS.get, key="src.kind",
                    label_visibility="collapsed")
    source: Source | None = None
    try:
        if kind == "sample":
            from explorer.data.sample import FAMILIES  # noqa: PLC0415

            from explorer.data.sample_sources import SAMPLE_OPTIONS  # noqa: PLC0415

            family = sb.selectbox("Anatomy", FAMILIES, key="src.family", format_func=str.capitalize,
                                  help="Synthetic multicoil phantom generated on this machine (no download).")
            options = SAMPLE_OPTIONS[family]
            variant = sb.selectbox("Acquisition", list(options), key=f"src.variant.{family}", format_func=options.get,
                                   help="Other contrasts and datasets (distribution shifts), a phase-encode field of "
                                        "view smaller than the anatomy (folding: try SENSE / l1 with maps = 2), or "
                                        "single-coil data.")
            source = sample_source(family, variant)
        elif kind == "dir":
            source = _directory_source(sb)
        else:
            source = _upload_source(sb)
        if source is not None:
            volume = cache.open_volume(source)
            ref = ("undersampled test file: no reference" if getattr(volume, "has_mask", False)
                   else "fully sampled")
            sb.caption(f"**{volume.name}** · {volume.num_slices} slices · {volume.num_coils} coil(s) · "
                       f"{volume.shape[0]}×{volume.shape[1]} k-space · {ref}")
    except ExplorerError as exc:
        sb.error(str(exc), icon=":material/error:")
        source = None
    st.session_state[SOURCE] = source

    sb.selectbox("Metrics", list(METRIC_DEFINITIONS), key=METRIC,
                 format_func={"fastmri": "fastMRI (slice maximum)", "volume": "fastMRI leaderboard (volume maximum)",
                              "paper": "the papers' (rescaled first)"}.get,
                 help=" · ".join(f"{k}: {v}" for k, v in METRIC_DEFINITIONS.items()))
    sb.divider()
    try:
        device = cache.device_name()
        sb.caption(f":material/memory: Compute device: **{device}**")
    except ExplorerError as exc:
        sb.error(str(exc), icon=":material/error:")
    return source


@st.cache_data(show_spinner="Listing the data directory…", max_entries=16, ttl=600)
def _listing(folder: str, mtime_ns: int) -> list[str]:
    """Volumes under ``folder`` (relative names), cached per folder and modification time; never the uploads."""
    from explorer.data.fastmri import list_volumes  # noqa: PLC0415

    root = Path(folder)
    roots, store = data_roots(), uploads.root()
    return [str(p.relative_to(root)) for p in list_volumes(root)
            if any(p.resolve().is_relative_to(r) for r in roots) and not p.resolve().is_relative_to(store)]


def _directory_source(sb) -> Source | None:
    if "src.dir" not in st.session_state:
        st.session_state["src.dir"] = default_data_dir()
    folder = sb.text_input("Data directory", key="src.dir", placeholder="/data/fastmri/knee_multicoil_val",
                           help="A folder with fastMRI .h5 files or raw ISMRMRD (mridata.org) files, inside the data "
                                "directory set with `streamlit run app.py -- --data-dir DIR` or EXPLORER_DATA_DIR "
                                "(else the folder the app was started in). To fetch real data into it: "
                                "`python -m explorer download --mridata all --out DIR` (the 20 Stanford 3D FSE knees) "
                                "or `--url URL` with the signed fastMRI links of your data-sharing agreement; "
                                "`python -m explorer dataset build` turns folders of complex images into volumes.")
    if not folder.strip():
        sb.info("Enter a directory that holds .h5 volumes.", icon=":material/folder_open:")
        return None
    root = paths.confine_path(folder, "the folder")
    if not root.is_dir():
        raise ExplorerError(f"data directory not found: {root}")
    names = _listing(str(root), root.stat().st_mtime_ns)
    if not names:
        raise ExplorerError(f"no .h5 files under {root}")
    name = sb.selectbox(f"Volume ({len(names)} found)", names, key="src.file")
    return file_source(root / name, "dir", name)


def _upload_source(sb) -> Source | None:
    upload = sb.file_uploader("HDF5 volume", type=["h5"], key="src.upload",
                              help="A fastMRI .h5 (train/val/test) or a raw ISMRMRD .h5 from mridata.org.")
    if upload is None:
        sb.info("Upload a fastMRI or raw ISMRMRD .h5 file.", icon=":material/upload_file:")
        return None
    saved = st.session_state.setdefault(_UPLOADS, {})
    entry = saved.get(upload.file_id)
    if isinstance(entry, ExplorerError):
        raise entry  # this file failed before: same message, nothing saved again
    if entry is None or not Path(entry).is_file():
        try:
            entry = save_upload(upload.name, upload.getbuffer())
        except ExplorerError as exc:
            saved[upload.file_id] = exc
            raise
        saved[upload.file_id] = entry
    try:
        return opened(file_source(entry, "upload", upload.name))
    except ExplorerError as exc:
        uploads.discard(entry)  # a failed upload is removed at once
        saved[upload.file_id] = exc
        raise


def opened(source: Source) -> Source:
    """``source`` once its volume opens (raises the volume's one-line error otherwise)."""
    cache.open_volume(source)
    return source


__all__ = ["SOURCE_KINDS", "opened", "render"]
