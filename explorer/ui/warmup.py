"""Latency hiding for the app's first run: work started early so the user does not wait for it.

* :func:`preload_charts`: on a session's first script run, an invisible 10-pixel static plotly chart in the
  sidebar makes the browser fetch and compile plotly.js (about a second of its main thread on
  a small machine) while the server is still importing torch, instead of after the user
  presses Run. It disappears on the next run.
* :func:`prefetch`: once a page has shown its controls, a background thread imports what the
  first reconstruction needs (``fastmri.evaluate``, the method modules) and estimates the slice's
  ESPIRiT coil maps, while the browser renders the page and the user chooses settings.
  :class:`~explorer.engine.Problem` estimates its maps under a lock, so a method that asks
  for them meanwhile waits for the same estimate instead of computing it twice.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:  # not at run time: preload_charts() runs before torch is imported
    from explorer.engine import Problem

_PRELOADED = "explorer.warmup.preloaded"
_started: weakref.WeakSet = weakref.WeakSet()
_started_lock = threading.Lock()
_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explorer-prefetch")
_queued: list[Future] = []  # at most one job waits: a newer problem replaces it


def preload_charts() -> None:
    """Emit an invisible 10-pixel plotly chart on the first run of a session (see module docstring)."""
    if st.session_state.get(_PRELOADED):
        return
    st.session_state[_PRELOADED] = True
    import plotly.graph_objects as go  # noqa: PLC0415

    fig = go.Figure(layout={"height": 10, "width": 10, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
                            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
                            "xaxis": {"visible": False}, "yaxis": {"visible": False}})
    st.sidebar.plotly_chart(fig, key="warmup.plotly", config={"staticPlot": True, "displayModeBar": False},
                            theme=None, width="content")


def _warm(problem: Problem) -> None:
    from explorer.metrics import warm_up as warm_metrics  # noqa: PLC0415
    from explorer.recon.base import available_methods  # noqa: PLC0415

    try:
        available_methods()
        warm_metrics()
        if problem.y.shape[1] > 1:
            problem.coil_maps("auto")  # estimates and memoises the maps (every map-set choice)
    except Exception:  # noqa: BLE001 - a failure here resurfaces, with its message, when a method runs
        pass


def prefetch(problem: Problem) -> None:
    """Warm up for ``problem`` in the background worker (once per problem; no-op when done).

    One worker thread: a job still queued for an older problem (the user moved on) is cancelled.
    """
    if problem.has_maps("auto"):
        return
    with _started_lock:
        if problem in _started:
            return
        _started.add(problem)
        for future in _queued:
            future.cancel()
        _queued[:] = [_worker.submit(_warm, problem)]
