"""Cached wrappers around the library for the app.

* ``st.cache_resource`` (shared objects, never mutated): volumes, slices and prepared
  :class:`~explorer.engine.Problem` s (which memoise their ESPIRiT maps, so every method
  on the same slice and mask reuses one set of coil maps).
* ``st.cache_data`` (pickled copies): :class:`~explorer.engine.MethodResult` s keyed by
  ``(source, plane, slice, MaskConfig, method, config)``, shared by all sessions and by every
  instance (label) with that method and config.

Results are computed OUTSIDE the cached function so a live progress bar can be driven by
the method's progress callback (Streamlit replays ``st`` calls made inside cached
functions, which breaks for elements created outside them). :func:`cached_result` looks
up, :func:`run` computes on a miss and stores.

Computations belong to the browser session that started them (:mod:`explorer.ui.jobs`): Stop
stops only that session's job, a result stopped early is never shown to another session, and
:func:`speculate` (the instant methods of the current settings, started in one background worker
before the user presses Run) cancels only its own session's queued work.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from pathlib import Path

import streamlit as st

from explorer.device import describe_device, get_device
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.engine import MethodInstance, MethodResult, Problem, prepare, run_method
from explorer.recon.base import ProgressFn
from explorer.ui.jobs import Jobs
from explorer.ui.state import Source, metric


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
        from explorer.data.sample import sample_path  # noqa: PLC0415
        from explorer.data.sample_sources import parse_source  # noqa: PLC0415

        return FastMRIVolume(sample_path(parse_source(source.spec, size=source.sample_size)), source=source.spec)
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
def _prepare(source: Source, plane: str, index: int, mask: MaskConfig, device: str, crop: float,
             metric: str) -> Problem:
    return prepare(load_slice(source, plane, index), mask, get_device(), crop=crop, metric=metric)


def problem(source: Source, plane: str, index: int, mask: MaskConfig, crop: float = 0.95) -> Problem:
    """The undersampled :class:`Problem` (shared across methods; ESPIRiT maps memoised on it); ``crop``: ESPIRiT's
    crop threshold. Its results are scored with the sidebar's metric definition (:func:`explorer.ui.state.metric`)."""
    return _prepare(source, plane, int(index), mask, _device_key(), float(crop), metric())


@st.cache_data(show_spinner=False, max_entries=256)
def _result_store(key: tuple, _fresh: MethodResult | None) -> MethodResult:
    """Result cache: ``_fresh=None`` looks ``key`` up (raises :class:`_NotCached` on a miss);
    a result stores it. ``_fresh`` is not part of the key (leading underscore)."""
    if _fresh is None:
        raise _NotCached
    return _fresh


def _get(key: tuple) -> MethodResult:
    try:
        return _result_store(key, None)
    except _NotCached:
        raise KeyError(key) from None


JOBS = Jobs(get=_get, put=_result_store, stopped=lambda r: r.stopped)
_OWNER = "explorer.session_owner"


def owner() -> str:
    """This browser session's id (jobs and stopped results belong to it)."""
    if _OWNER not in st.session_state:
        st.session_state[_OWNER] = uuid.uuid4().hex
    return st.session_state[_OWNER]


def _key(source: Source, plane: str, index: int, mask: MaskConfig, instance: MethodInstance) -> tuple:
    """Result-cache key (the instance's method and config, not its label); includes the method's cache
    token (e.g. the identity of a checkpoint file)."""
    try:
        token = instance.spec.cache_token(instance.config)
    except ExplorerError:
        token = None  # e.g. a missing checkpoint: running it reports the error
    return (source, plane, int(index), mask, instance.name, type(instance.config).__qualname__, instance.config, token,
            _device_key(), metric())


def _labelled(result: MethodResult | None, instance: MethodInstance) -> MethodResult | None:
    """The result under the instance's label (results are shared between instances of one config)."""
    if result is None or (result.instance == instance.label and result.label == instance.display):
        return result
    return dataclasses.replace(result, label=instance.display, instance=instance.label)


def cached_result(source: Source, plane: str, index: int, mask: MaskConfig, instance: MethodInstance) -> MethodResult | None:
    """The shared cached result, else this session's finished job, else its result stopped early, else ``None``."""
    return _labelled(JOBS.cached(owner(), _key(source, plane, index, mask, instance)), instance)


def speculate(source: Source, plane: str, index: int, mask: MaskConfig, instances) -> None:
    """Start the instant ones of ``instances`` (``capabilities.cost == "instant"``) in the background worker.

    Only this session's queued work for other settings is cancelled.
    """
    cheap = [i for i in instances if i.capabilities.cost == "instant"]
    if not cheap:
        return
    prob = problem(source, plane, index, mask)  # in the script thread: st.cache_resource
    JOBS.speculate(owner(), {_key(source, plane, index, mask, i): functools.partial(run_method, prob, i) for i in cheap})


def run(source: Source, plane: str, index: int, mask: MaskConfig, instance: MethodInstance,
        progress: ProgressFn | None = None, refit_stopped: bool = False) -> MethodResult:
    """The cached result, or run ``instance`` (reporting to ``progress``) as this session's job and cache it.

    This session's job under way (speculative, or an interrupted script run) is waited for.
    ``refit_stopped``: a result that was stopped early is computed again.
    """
    key = _key(source, plane, index, mask, instance)
    prob = problem(source, plane, index, mask)
    result = JOBS.run(owner(), key, lambda: run_method(prob, instance, progress=progress), refit_stopped)
    return _labelled(result, instance)
