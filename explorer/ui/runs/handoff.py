"""A long run of one browser session whose result survives a click on Stop.

Streamlit starts the next script run of a session (after a click on Stop, or on any widget) while the stopped
one is still finishing (e.g. scoring the worst perturbation found so far), and the stopped run can no longer
write ``st.session_state``: every access is a yield point that raises ``StopException``. A :class:`Handoff`
passes the result over: the stopped run leaves it here, the next run waits for it and stores it in its own
session state.

Usage::

    runs = Handoff("attack.last_run")
    with runs.running(cache.owner()) as slot:   # in the run that computes
        ...; slot.result = partial_result         # keep it current: whatever ends the run, it is handed over
    result = runs.stored(cache.owner())          # in any later run (waits for one still finishing)
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterator

import streamlit as st

MAX_PENDING = 32  # sessions whose finished-but-not-taken results are kept, per hand-off


@dataclass
class Slot:
    """A run under way; ``result`` is what is handed over when it ends."""

    result: Any = None
    done: threading.Event = field(default_factory=threading.Event)


class Handoff:
    """The last result of one kind of run, per session (``key``: its ``st.session_state`` key)."""

    def __init__(self, key: str):
        self.key = key
        self._pending: OrderedDict[str, Slot] = OrderedDict()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def running(self, owner: str) -> Iterator[Slot]:
        """Register a run of ``owner``'s session; on exit its ``slot.result`` is stored or handed over."""
        slot = Slot()
        with self._lock:
            self._pending[owner] = slot
            self._pending.move_to_end(owner)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
        try:
            yield slot
        finally:
            slot.done.set()  # first: the session-state write below raises in a stopped script run
            st.session_state[self.key] = slot.result
            with self._lock:  # stored by this run itself: nothing to hand over
                if self._pending.get(owner) is slot:
                    del self._pending[owner]

    def stored(self, owner: str, timeout: float = 600.0, waiting: str = "Finishing the stopped run…") -> Any:
        """The session's last result; one still finishing in a stopped script run is waited for (spinner)."""
        with self._lock:
            slot = self._pending.get(owner)
        if slot is not None:
            if not slot.done.is_set():
                with st.spinner(waiting):
                    slot.done.wait(timeout)
            if slot.done.is_set():
                st.session_state[self.key] = slot.result
                with self._lock:
                    if self._pending.get(owner) is slot:
                        del self._pending[owner]
        return st.session_state.get(self.key)


def stale_note(changed: bool, button: str, container=st) -> None:
    """Say (in ``container``) that the results shown are for earlier settings (``changed``), naming the page's Run
    ``button``."""
    if changed:
        container.info(f"Settings changed since the last run: the results below are for the previous settings. Press "
                f"**{button}** to update.", icon=":material/history:")


__all__ = ["Handoff", "Slot", "stale_note"]
