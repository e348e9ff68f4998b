"""Cached wrappers around the library for the app.

* ``st.cache_resource`` (shared objects, never mutated): volumes, slices and prepared
  :class:`~explorer.pipeline.Problem` s (which memoise their ESPIRiT maps, so every method
  on the same slice and mask reuses one set of coil maps).
* ``st.cache_data`` (pickled copies): :class:`~explorer.pipeline.MethodResult` s keyed by
  ``(source, plane, slice, MaskConfig, method, config)``.

Results are computed OUTSIDE the cached function so a live progress bar can be driven by
the method's progress callback (Streamlit replays ``st`` calls made inside cached
functions, which breaks for elements created outside them). :func:`cached_result` looks
up, :func:`run` computes on a miss and stores.

:func:`speculate` starts the cheap (baseline-family) methods of the current settings in
one background worker thread before the user presses Run; a finished speculative result
counts as cached, a running one is waited for instead of being computed twice.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import streamlit as st

from explorer.device import describe_device, get_device
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.pipeline import MethodResult, Problem, prepare, run_method
from explorer.recon.base import ProgressFn, get_method
from explorer.ui.state import Source


class _NotCached(Exception):
    """Raised inside the result store on a lookup miss (exceptions are never cached)."""


@st.cache_resource(show_spinner=False)
def device_name() -> str:
    """``describe_device()`` (cached: CUDA queries are slow)."""
    return describe_device(get_device())


def _device_key() -> str:
    return str(get_device())


@st.cache_resource(show_spinner="Opening the volume…", max_entries=16)
def open_volume(source: Source, plane: str = "kxky"):
    """The :class:`~explorer.data.sources.Volume` of ``source`` (sample generated on first use)."""
    if source.is_sample:
        # open_volume("sample:<family>") always uses the default size; honour EXPLORER_SAMPLE_SIZE.
        from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415
        from explorer.data.sample import SampleSpec, sample_path  # noqa: PLC0415

        return FastMRIVolume(sample_path(SampleSpec(family=source.family, size=source.sample_size)), source=source.spec)
    from explorer.data.sources import open_volume as _open  # noqa: PLC0415

    return _open(source.spec, plane=plane)


@st.cache_data(show_spinner=False, max_entries=64)
def is_raw_ismrmrd(source: Source) -> bool:
    """Whether ``source`` is a raw ISMRMRD file (then a k-space plane can be chosen)."""
    if source.is_sample:
        return False
    from explorer.data.ismrmrd import is_ismrmrd_file  # noqa: PLC0415

    return is_ismrmrd_file(Path(source.spec))


def ensure_plane_cache(source: Source, plane: str) -> None:
    """Build a raw volume's ky-kz cache with a progress bar (no-op for other sources/planes)."""
    volume = open_volume(source, plane)
    ensure = getattr(volume, "ensure_cache", None)
    if ensure is None or getattr(volume, "cache_path", None) is None:
        return
    bar = None

    def report(fraction: float) -> None:
        nonlocal bar
        if bar is None:
            bar = st.progress(0.0, text="Converting the volume to ky-kz planes (once per file)…")
        bar.progress(min(max(fraction, 0.0), 1.0))

    ensure(report)
    if bar is not None:
        bar.empty()


@st.cache_resource(show_spinner="Reading the slice…", max_entries=8)
def load_slice(source: Source, plane: str, index: int):
    """Slice ``index`` of ``source`` (shared: never mutate)."""
    return open_volume(source, plane).read_slice(int(index))


@st.cache_resource(show_spinner="Undersampling…", max_entries=8)
def _prepare(source: Source, plane: str, index: int, mask: MaskConfig, device: str) -> Problem:
    return prepare(load_slice(source, plane, index), mask, get_device())


def problem(source: Source, plane: str, index: int, mask: MaskConfig) -> Problem:
    """The undersampled :class:`Problem` (shared across methods; ESPIRiT maps memoised on it)."""
    return _prepare(source, plane, int(index), mask, _device_key())


@st.cache_data(show_spinner=False, max_entries=256)
def _result_store(key: tuple, _fresh: MethodResult | None) -> MethodResult:
    """Result cache: ``_fresh=None`` looks ``key`` up (raises :class:`_NotCached` on a miss);
    a result stores it. ``_fresh`` is not part of the key (leading underscore)."""
    if _fresh is None:
        raise _NotCached
    return _fresh


def _key(source: Source, plane: str, index: int, mask: MaskConfig, method: str, config) -> tuple:
    """Result-cache key; includes the method's cache token (e.g. the identity of a checkpoint file)."""
    try:
        token = get_method(method).cache_token(config)
    except ExplorerError:
        token = None  # e.g. a missing checkpoint: running it reports the error
    return (source, plane, int(index), mask, method, type(config).__qualname__, config, token, _device_key())


def cached_result(source: Source, plane: str, index: int, mask: MaskConfig, method: str, config) -> MethodResult | None:
    """The cached (or finished in-flight) result, else a result stopped early, else ``None``.

    While the experiment is being computed elsewhere, ``None``: :func:`run` then waits for it
    (showing an older stopped result instead would hide the new one).
    """
    key = _key(source, plane, index, mask, method, config)
    try:
        return _result_store(key, None)
    except _NotCached:
        pass
    with _inflight_lock:
        future = _inflight.get(key)
    if future is not None:
        return _adopt_done(key, future) if future.done() else None
    return _stopped.get(key)


SPECULATE_FAMILIES = ("baseline",)  # methods cheap enough (well under a second) to run before asked
_MAX_SPECULATIVE = 8
# Computations under way, by result key: speculative ones (in _worker) and foreground ones (in
# a script thread). A script run that needs a result being computed waits for it instead of
# computing it twice: e.g. the run Streamlit starts when the user stops a long fit, while the
# interrupted run is still finishing that fit with its best image.
_inflight: dict[tuple, Future] = {}
_inflight_lock = threading.Lock()
_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explorer-speculate")


# Results of fits stopped early (by the user): shown like cached ones, but kept out of the
# result cache so that pressing Run again fits anew (st.cache_data cannot drop one entry).
_MAX_STOPPED = 32
_stopped: dict[tuple, MethodResult] = {}


def _store(key: tuple, result: MethodResult) -> MethodResult:
    with _inflight_lock:
        if result.stopped:
            _stopped[key] = result
            while len(_stopped) > _MAX_STOPPED:
                del _stopped[next(iter(_stopped))]
            return result
        _stopped.pop(key, None)
    return _result_store(key, result)


def _adopt_done(key: tuple, future: Future) -> MethodResult | None:
    """Store a finished future's result, then drop the future (``None`` if it failed: a fresh run reports it).

    Stored before the future leaves ``_inflight``: no moment when neither holds the result.
    """
    try:
        result = _store(key, future.result())
    except Exception:  # noqa: BLE001 - the same failure is raised again, with its message, by run()
        result = None
    _forget(key, future)
    return result


def speculate(source: Source, plane: str, index: int, mask: MaskConfig, methods) -> None:
    """Start the cheap ones of ``methods`` (``[(name, config)]``) in the background worker.

    Only methods of :data:`SPECULATE_FAMILIES` run, and only if not cached yet. Queued work
    for other settings is cancelled, so dragging a slider does not pile up jobs.
    """
    keys = {_key(source, plane, index, mask, name, config): (name, config) for name, config in methods
            if get_method(name).family in SPECULATE_FAMILIES}
    keys = {key: nc for key, nc in keys.items() if cached_result(source, plane, index, mask, *nc) is None}
    if not keys:
        return
    prob = problem(source, plane, index, mask)  # in the script thread: st.cache_resource
    with _inflight_lock:
        for key, future in list(_inflight.items()):
            if key not in keys and (future.cancel() or (future.done() and len(_inflight) >= _MAX_SPECULATIVE)):
                del _inflight[key]
        for key, (name, config) in keys.items():
            if key not in _inflight:
                _inflight[key] = _worker.submit(run_method, prob, name, config)


def run(source: Source, plane: str, index: int, mask: MaskConfig, method: str, config,
        progress: ProgressFn | None = None, refit_stopped: bool = False) -> MethodResult:
    """The cached result, or run ``method`` (reporting to ``progress``) and cache it.

    A result being computed elsewhere (speculatively, or by an interrupted script run) is
    waited for. ``refit_stopped``: a cached result that was stopped early is computed again.
    """
    key = _key(source, plane, index, mask, method, config)
    while True:
        hit = cached_result(source, plane, index, mask, method, config)  # None while computed elsewhere
        if hit is not None and not (refit_stopped and hit.stopped):
            return hit
        with _inflight_lock:
            future = _inflight.get(key)
            if future is not None and future.cancel():  # queued speculation: run it here, with progress
                del _inflight[key]
                future = None
            if future is None:
                mine: Future = Future()
                mine.set_running_or_notify_cancel()
                _inflight[key] = mine
                break
        future.exception()  # computed elsewhere: wait, then adopt it (next loop) instead of computing twice
    try:
        result = run_method(problem(source, plane, index, mask), method, config, progress=progress)
    except BaseException as exc:  # waiters then compute it themselves (and report any error)
        _forget(key, mine)
        mine.set_exception(exc if isinstance(exc, Exception) else RuntimeError("interrupted"))
        raise
    stored = _store(key, result)  # stored before it leaves _inflight: no window for a second computation
    mine.set_result(result)
    _forget(key, mine)
    return stored


def _forget(key: tuple, future: Future) -> None:
    with _inflight_lock:
        if _inflight.get(key) is future:
            del _inflight[key]
