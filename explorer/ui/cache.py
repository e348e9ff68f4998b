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
    return (source, plane, int(index), mask, method, type(config).__qualname__, config, _device_key())


def cached_result(source: Source, plane: str, index: int, mask: MaskConfig, method: str, config) -> MethodResult | None:
    """The cached result (or a finished speculative one), or ``None`` if this experiment has not run yet."""
    key = _key(source, plane, index, mask, method, config)
    try:
        return _result_store(key, None)
    except _NotCached:
        pass
    with _speculative_lock:
        future = _speculative.get(key)
        if future is None or not future.done():
            return None
        del _speculative[key]
    return _adopt(key, future)


SPECULATE_FAMILIES = ("baseline",)  # methods cheap enough (well under a second) to run before asked
_MAX_SPECULATIVE = 8
_speculative: dict[tuple, Future] = {}
_speculative_lock = threading.Lock()
_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explorer-speculate")


def _adopt(key: tuple, future: Future) -> MethodResult | None:
    """Store a speculative future's result in the result cache (``None`` if it failed: the real run reports it)."""
    try:
        result = future.result()
    except Exception:  # noqa: BLE001 - the same failure is raised again, with its message, by run()
        return None
    return _result_store(key, result)


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
    with _speculative_lock:
        for key, future in list(_speculative.items()):
            if key not in keys and (future.cancel() or len(_speculative) >= _MAX_SPECULATIVE):
                del _speculative[key]
        for key, (name, config) in keys.items():
            if key not in _speculative:
                _speculative[key] = _worker.submit(run_method, prob, name, config)


def run(source: Source, plane: str, index: int, mask: MaskConfig, method: str, config,
        progress: ProgressFn | None = None) -> MethodResult:
    """The cached result, or run ``method`` (reporting to ``progress``) and cache it."""
    hit = cached_result(source, plane, index, mask, method, config)
    if hit is not None:
        return hit
    key = _key(source, plane, index, mask, method, config)
    with _speculative_lock:
        future = _speculative.pop(key, None)
    if future is not None and not future.cancel():
        adopted = _adopt(key, future)  # running: wait for it rather than compute it twice
        if adopted is not None:
            return adopted
    result = run_method(problem(source, plane, index, mask), method, config, progress=progress)
    return _result_store(key, result)
