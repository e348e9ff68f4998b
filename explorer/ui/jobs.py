"""Computations of the app, owned by the browser session that started them (no Streamlit import here).

A job is one result being computed, keyed by ``(owner, key)``: the owner is a browser session,
the key the result's cache key. Rules:

* a finished result that was not stopped goes to the SHARED store (every session reuses it);
* a result stopped early (the user pressed Stop) stays with its owner: another session never
  receives it, and the owner's next Run computes it anew;
* a session waits for its OWN job under way (e.g. the rerun Streamlit starts when the user stops a
  fit, while the interrupted run still finishes that fit) instead of computing it twice; another
  session computing the same key computes its own;
* speculative work (cheap methods started before Run) is queued per owner: a session's new
  settings cancel only its own queued jobs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Hashable

MAX_STOPPED = 32  # stopped results kept per session
MAX_OWNERS = 64  # sessions whose stopped results are kept
MAX_SPECULATIVE = 8  # finished speculative jobs kept per session before they are dropped


class Jobs:
    """The job registry of one process.

    Args:
        get: ``key -> result`` from the shared store, raising ``KeyError`` on a miss.
        put: ``(key, result) -> stored result`` into the shared store.
        stopped: ``result -> bool``: whether a result was stopped early.
    """

    def __init__(self, get: Callable[[Hashable], Any], put: Callable[[Hashable, Any], Any],
                 stopped: Callable[[Any], bool]):
        self._get, self._put, self._is_stopped = get, put, stopped
        self._inflight: dict[tuple[Hashable, Hashable], Future] = {}
        self._stopped: OrderedDict[Hashable, OrderedDict[Hashable, Any]] = OrderedDict()
        self._lock = threading.RLock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explorer-speculate")

    # ------------------------------------------------------------------ lookups

    def _shared(self, key: Hashable) -> Any | None:
        try:
            return self._get(key)
        except KeyError:
            return None

    def cached(self, owner: Hashable, key: Hashable) -> Any | None:
        """The shared result, else the owner's finished job, else the owner's stopped result, else ``None``.

        While the owner's job for ``key`` is under way: ``None`` (:meth:`run` then waits for it).
        """
        hit = self._shared(key)
        if hit is not None:
            return hit
        with self._lock:
            future = self._inflight.get((owner, key))
        if future is not None:
            return self._adopt(owner, key, future) if future.done() else None
        with self._lock:
            return self._stopped.get(owner, {}).get(key)

    def running(self, owner: Hashable) -> list[Hashable]:
        """Keys of the owner's jobs under way or queued."""
        with self._lock:
            return [k for (o, k), f in self._inflight.items() if o == owner and not f.done()]

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every job under way or queued (tests, shutdown)."""
        with self._lock:
            futures = list(self._inflight.values())
        for future in futures:
            try:
                future.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - a failed job is reported by whoever runs it again
                pass

    # ------------------------------------------------------------------ storing

    def _store(self, owner: Hashable, key: Hashable, result: Any) -> Any:
        with self._lock:
            if self._is_stopped(result):
                mine = self._stopped.setdefault(owner, OrderedDict())
                self._stopped.move_to_end(owner)
                mine[key] = result
                while len(mine) > MAX_STOPPED:
                    mine.popitem(last=False)
                while len(self._stopped) > MAX_OWNERS:
                    self._stopped.popitem(last=False)
                return result
            self._stopped.get(owner, {}).pop(key, None)
        return self._put(key, result)

    def _adopt(self, owner: Hashable, key: Hashable, future: Future) -> Any | None:
        """Store a finished job's result, then drop the job (``None`` if it failed: a fresh run reports it).

        Stored before the job leaves the registry: no moment when neither holds the result.
        """
        try:
            result = self._store(owner, key, future.result())
        except Exception:  # noqa: BLE001 - the same failure is raised again, with its message, by run()
            result = None
        self._forget(owner, key, future)
        return result

    def _forget(self, owner: Hashable, key: Hashable, future: Future) -> None:
        with self._lock:
            if self._inflight.get((owner, key)) is future:
                del self._inflight[(owner, key)]

    # ------------------------------------------------------------------ running

    def run(self, owner: Hashable, key: Hashable, compute: Callable[[], Any], refit_stopped: bool = False) -> Any:
        """The cached result, or ``compute()`` it as the owner's job and store it.

        The owner's own job under way is waited for; ``refit_stopped``: a stopped result is computed again.
        """
        while True:
            hit = self.cached(owner, key)
            if hit is not None and not (refit_stopped and self._is_stopped(hit)):
                return hit
            with self._lock:
                future = self._inflight.get((owner, key))
                if future is not None and future.cancel():  # queued speculation: run it here, with progress
                    del self._inflight[(owner, key)]
                    future = None
                if future is None:
                    mine: Future = Future()
                    mine.set_running_or_notify_cancel()
                    self._inflight[(owner, key)] = mine
                    break
            future.exception()  # our own job elsewhere: wait, then adopt it (next loop) instead of computing twice
        try:
            result = compute()
        except BaseException as exc:  # waiters then compute it themselves (and report any error)
            self._forget(owner, key, mine)
            mine.set_exception(exc if isinstance(exc, Exception) else RuntimeError("interrupted"))
            raise
        stored = self._store(owner, key, result)  # stored before it leaves the registry
        mine.set_result(result)
        self._forget(owner, key, mine)
        return stored

    def speculate(self, owner: Hashable, jobs: dict[Hashable, Callable[[], Any]]) -> None:
        """Queue ``{key: compute}`` for the owner in the background worker (skipping cached keys).

        The owner's queued jobs for other keys are cancelled (dragging a slider does not pile up
        work); other owners' jobs are never touched.
        """
        jobs = {k: c for k, c in jobs.items() if self.cached(owner, k) is None}
        with self._lock:
            mine = [(k, f) for (o, k), f in self._inflight.items() if o == owner]
            finished = sum(f.done() for _, f in mine)
            for k, f in mine:
                if k not in jobs and (f.cancel() or (f.done() and finished >= MAX_SPECULATIVE)):
                    del self._inflight[(owner, k)]
            for k, compute in jobs.items():
                if (owner, k) not in self._inflight:
                    self._inflight[(owner, k)] = self._worker.submit(compute)
