"""Server start-up: preload what every first page run needs, before any browser connects.

``streamlit run app.py`` finds the ``st.App`` in ``app.py`` and serves it with uvicorn; its
:func:`lifespan` hook runs once when the server starts. It starts one daemon thread,
:func:`preload`, which imports torch, fastMRI, plotly and the method modules and
materialises the default embedded sample, while the browser is still downloading and
starting Streamlit's front end (about a second on a small machine). The router waits for
it (:func:`wait`) before its own heavy imports, then finds the modules in ``sys.modules`` and
the sample file on disk.

Nothing here changes results: it only moves work earlier. ``EXPLORER_PRELOAD=0`` turns it off.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from streamlit.logger import get_logger

_LOG = get_logger(__name__)  # Streamlit's handler and level: lines appear in the server log
_started = threading.Event()  # set by lifespan() when it starts preload()
_charts_ready = threading.Event()  # set once preload() has imported pandas
_done = threading.Event()  # set when preload() has finished


def preload() -> None:
    """Import the modules a first page run needs and write the default sample; log failures.

    Never raises: a failure here (say an unwritable cache directory) is reported again, with
    its message, by the page that needs the same thing. ``fastmri.evaluate`` (scipy) is left
    to :func:`explorer.ui.warmup.prefetch`, which runs once the page is on screen.
    """
    t0 = time.perf_counter()
    try:
        try:
            import pandas  # noqa: F401, PLC0415 (plotly peeks at it: see wait())
        finally:
            _charts_ready.set()
        from explorer.data.sample import SampleSpec, sample_path  # noqa: PLC0415 (torch, h5py)
        from explorer.ui import state  # noqa: PLC0415

        what = "torch, fastMRI, plotly"
        if not state.default_data_dir():  # the app opens on the embedded sample
            sample_path(SampleSpec(family="knee", size=state.sample_size()))
            what += " and the knee sample"
        from explorer import engine  # noqa: F401, PLC0415 (plotly, fastmri.data)
        from explorer.figures import images as figures  # noqa: F401, PLC0415 (plotly, fastmri.data)
        from explorer.recon.base import available_methods  # noqa: PLC0415
        from explorer.ui import cache, widgets  # noqa: F401, PLC0415 (pandas, streamlit elements)

        available_methods()
        _LOG.info("explorer: preloaded %s in %.2f s", what, time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - see docstring
        _LOG.warning("explorer: preload failed after %.2f s: %s", time.perf_counter() - t0, exc)
    finally:
        _done.set()


def wait(charts_only: bool = False, timeout: float = 120.0) -> None:
    """Block until :func:`preload` has finished, if it was started (else return at once).

    The router calls this before its first import of torch & co.: importing the same modules
    from two threads at once is not safe for every library (plotly, for one, reads a
    half-imported pandas from ``sys.modules``), and the GIL would serialise the work anyway.
    ``charts_only``: wait only until plotly figures can be built safely (pandas imported),
    which is what :func:`explorer.ui.warmup.preload_charts` needs.
    """
    if _started.is_set():
        (_charts_ready if charts_only else _done).wait(timeout)


def enabled() -> bool:
    """Whether to preload (``EXPLORER_PRELOAD`` unset or not ``0``)."""
    return os.environ.get("EXPLORER_PRELOAD", "1").strip() != "0"


SWEEP_INTERVAL_S = 60.0


def sweep_uploads(stop: threading.Event) -> None:
    """Every :data:`SWEEP_INTERVAL_S`: delete expired uploads and those of ended sessions (logs failures)."""
    from explorer.ui import state, uploads  # noqa: PLC0415

    while not stop.wait(SWEEP_INTERVAL_S):
        try:
            removed = uploads.sweep(active=state.session_alive)
            if removed:
                _LOG.info("explorer: removed %d expired upload(s) or ended session folder(s)", len(removed))
        except Exception as exc:  # noqa: BLE001 - the sweeper must outlive a bad setting; pages report it
            _LOG.warning("explorer: upload sweep failed: %s", exc)


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    """``st.App`` lifespan: start :func:`preload` and the upload sweeper in daemon threads, then serve."""
    if enabled():
        _started.set()
        threading.Thread(target=preload, name="explorer-preload", daemon=True).start()
    stop = threading.Event()
    threading.Thread(target=sweep_uploads, args=(stop,), name="explorer-upload-sweeper", daemon=True).start()
    try:
        yield None
    finally:
        stop.set()
