"""Session state of the app: the selected data source and the last reconstruction request.

The sidebar (:mod:`explorer.ui.sidebar`, rendered by ``app.py`` on every page) turns the user's choice (embedded
sample / file from a data directory / upload) into a hashable :class:`Source`, stored under :data:`SOURCE`; pages
read it with :func:`current_source`. Widget keys are
namespaced ``"<page>.<name>"`` so pages never collide.

Environment:
    EXPLORER_DATA_DIR: default data directory (``--data-dir`` after ``--`` wins); the app's outputs (study folders)
        go there too. Without one, outputs go to a per-user folder (:func:`output_root`), never into the folder the
        app was started in (usually the source checkout).
    XDG_DATA_HOME: the per-user folder's parent (default ``~/.local/share``).
    EXPLORER_SAMPLE_SIZE: image size of the embedded sample (default 320; tests use 64).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from streamlit.runtime.scriptrunner import get_script_run_ctx

from explorer.errors import ExplorerError
from explorer.ui import uploads

SOURCE = "explorer.source"  # the current Source (or None when the choice is invalid)
METRIC = "explorer.metric"  # the metric definition every page scores with (the sidebar's choice)
REQUEST = "reconstruct.request"  # the last Request the user ran on the Reconstruct page

DEFAULT_SAMPLE_SIZE = 320


@dataclass(frozen=True)
class Source:
    """A data source, hashable so it can key caches.

    Attributes:
        kind: ``"sample"``, ``"dir"`` or ``"upload"``.
        spec: ``sample:<family>`` or an absolute ``.h5`` path.
        label: short display name.
        fingerprint: changes whenever the data do (sample size; file size and mtime).
    """

    kind: str
    spec: str
    label: str
    fingerprint: str

    @property
    def is_sample(self) -> bool:
        return self.kind == "sample"

    @property
    def family(self) -> str:
        """Sample family (``knee``/``brain``); empty for files."""
        return self.spec.split(":", 1)[1].split(",")[0] if self.is_sample else ""

    @property
    def sample_size(self) -> int | None:
        """Image size of an embedded sample (``None`` for files)."""
        return int(self.fingerprint.removeprefix("size=")) if self.is_sample else None


@dataclass(frozen=True)
class Request:
    """Everything a reconstruction run depends on (hashable; compared to detect stale results)."""

    source: Source
    plane: str
    index: int
    mask: object  # explorer.masks.MaskConfig
    methods: tuple  # (explorer.recon.base.MethodInstance, ...): label, method, frozen config


def sample_size() -> int:
    """Embedded sample size from ``EXPLORER_SAMPLE_SIZE`` (default 320)."""
    raw = os.environ.get("EXPLORER_SAMPLE_SIZE", "").strip()
    if not raw:
        return DEFAULT_SAMPLE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise ExplorerError(f"EXPLORER_SAMPLE_SIZE must be an integer, got {raw!r}") from None
    if not 16 <= size <= 1024:
        raise ExplorerError(f"EXPLORER_SAMPLE_SIZE must be in [16, 1024], got {size}")
    return size


def default_data_dir(argv: list[str] | None = None) -> str:
    """``--data-dir DIR`` from the script arguments (``streamlit run app.py -- --data-dir DIR``),
    else ``$EXPLORER_DATA_DIR``, else empty."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--data-dir", default=None)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return args.data_dir or os.environ.get("EXPLORER_DATA_DIR", "")


def file_source(path: str | Path, kind: str = "dir", label: str | None = None) -> Source:
    """A :class:`Source` for an existing file (fingerprinted by size and mtime)."""
    path = Path(path).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError:
        raise ExplorerError(f"no such file: {path}") from None
    return Source(kind, str(path), label or path.name, f"{stat.st_size}-{stat.st_mtime_ns}")


def sample_source(family: str, variant: str = "") -> Source:
    """A :class:`Source` for the embedded sample ``family`` at :func:`sample_size`, optionally a variant (source
    fields such as ``"coils=1"`` or ``"fov=0.6"``, see :data:`explorer.data.sample.SAMPLE_OPTIONS`)."""
    size = sample_size()
    spec = f"sample:{family}" + (f",{variant}" if variant else "")
    return Source("sample", spec, f"{spec} ({size}×{size})", f"size={size}")


def save_upload(name: str, data: bytes | memoryview) -> Path:
    """Write uploaded bytes into this session's private upload folder (:mod:`explorer.ui.uploads`).

    Raises:
        ExplorerError: empty upload, a name that is not ``.h5``, or larger than the upload store.
    """
    if not name.lower().endswith(".h5"):
        raise ExplorerError(f"{name}: only .h5 files (fastMRI or raw ISMRMRD) can be uploaded")
    return store_bytes(name, data)


def store_bytes(name: str, data: bytes | memoryview) -> Path:
    """Save ``data`` in this session's private upload folder (expired uploads are swept first)."""
    uploads.sweep(active=session_alive)
    return uploads.save(upload_token(), name, data)


_TOKEN = "explorer.upload_token"
_TOKENS: dict[str, str] = {}  # upload token -> Streamlit session id (this server process)


def upload_token() -> str:
    """This session's private upload token (random; registered with its Streamlit session id)."""
    if _TOKEN not in st.session_state:
        st.session_state[_TOKEN] = uploads.new_token()
    token = st.session_state[_TOKEN]
    ctx = get_script_run_ctx()
    if ctx is not None:
        _TOKENS[token] = ctx.session_id
    return token


def session_alive(token: str) -> bool:
    """Whether the session that owns upload ``token`` is still connected to this server.

    Without a running Streamlit server (AppTest, scripts) every token counts as alive (only the
    time-to-live applies); a token this process never registered belongs to a session of an
    earlier server: ended.
    """
    from streamlit.runtime import Runtime  # noqa: PLC0415

    if not Runtime.exists():
        return True
    session = _TOKENS.get(token)
    return session is not None and Runtime.instance().is_active_session(session)


def metric() -> str:
    """The metric definition chosen in the sidebar (:data:`explorer.metrics.METRIC_DEFINITIONS`; default fastmri)."""
    return st.session_state.get(METRIC) or "fastmri"


def current_source() -> Source | None:
    """The source chosen in the sidebar (``None`` if the choice is invalid or pending)."""
    return st.session_state.get(SOURCE)


def source_or_stop() -> Source:
    """The sidebar's source; without a valid one, say so and stop the page."""
    source = current_source()
    if source is None:
        st.info("Choose a valid data source in the sidebar.", icon=":material/arrow_back:")
        st.stop()
    return source


USER_FOLDER = "mri-explorer"


def user_output_dir() -> Path:
    """The per-user output folder: ``$XDG_DATA_HOME/mri-explorer``, else ``~/.local/share/mri-explorer`` (resolved;
    created when something is written into it)."""
    base = os.environ.get("XDG_DATA_HOME", "").strip()
    parent = Path(base).expanduser() if base and Path(base).expanduser().is_absolute() else Path.home() / ".local" / "share"
    return (parent / USER_FOLDER).resolve()


def output_root() -> Path:
    """Where the app writes (study folders; relative output paths start here): the configured data directory, else
    :func:`user_output_dir`, so a run from the guided path never writes into the source checkout."""
    configured = default_data_dir()
    return Path(configured).expanduser().resolve() if configured else user_output_dir()


def outputs_configured() -> bool:
    """Whether outputs go to a data directory the user configured (rather than the per-user folder)."""
    return bool(default_data_dir())


def data_roots() -> list[Path]:
    """The folders the app may read (and, for outputs, write under): the configured data directory (``--data-dir``
    / ``EXPLORER_DATA_DIR``); else the directory the app was started in and the per-user output folder (symlinks
    resolved)."""
    configured = default_data_dir()
    if configured:
        return [Path(configured).expanduser().resolve()]
    return [Path.cwd().resolve(), user_output_dir()]
