"""The base of the progress callbacks that draw into a page while long work runs in the script thread.

Any click while the work runs makes Streamlit interrupt this script run at its next ``st`` call, i.e. inside a
draw. :meth:`Feedback.draw` turns that interruption into a stop request (the work then returns its best result so
far) and keeps it in ``interrupt``, for the caller to re-raise once that result is stored.
"""

from __future__ import annotations

import time
from typing import Callable

from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException


class Feedback:
    """At most one draw per ``INTERVAL`` seconds (always the last step); a click becomes a stop request."""

    INTERVAL = 0.1

    def __init__(self):
        self.last = 0.0
        self.interrupt: BaseException | None = None

    def draw(self, step: int, total: int, render: Callable[[float], None]) -> bool | None:
        """Call ``render(now)`` if due; True (stop) once the user has clicked, else ``None``."""
        if self.interrupt is not None:
            return True
        now = time.perf_counter()
        if step < total and now - self.last < self.INTERVAL:
            return None
        self.last = now
        try:
            render(now)
        except ScriptControlException as exc:  # the user clicked something: stop, keep the best so far
            self.interrupt = exc
            return True
        return None


__all__ = ["Feedback"]
