"""The long-run protocol of the app, written once: a Run button, a status box with progress and Stop, the hand-over of
a stopped run's result, the results header (stale note, failures, stop note) and a row of downloads.

A page supplies its settings (a hashable request) and draws its results; a :class:`LongRun` does the rest::

    ATTACK = LongRun("attack", button="Run attack", icon=":material/bolt:", work=work, outcome=AttackRun, ...)
    run = ATTACK.section(request, heading="4 · Results")   # None before the first run (the page stops)
    ... the page draws run's results ...

``work(request, live, run)`` fills ``run`` (an :class:`Outcome`) in place as results arrive, drawing progress through
``live`` (a :class:`Live`). Any click while work runs makes Streamlit interrupt this script run at its next ``st``
call, i.e. inside a draw: ``live`` turns that into a stop request (work returns its best result so far, which the
hand-over stores before Streamlit's rerun proceeds), and the protocol re-raises the interruption afterwards.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from explorer.errors import ExplorerError
from explorer.ui import cache
from explorer.ui.feedback import Feedback
from explorer.ui.runs.handoff import Handoff, stale_note
from explorer.ui.widgets import stop_on_error

_DRAWS = itertools.count()


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Outcome:
    """What every long run holds: the request it ran, what failed (``{what: one line}``), whether it was stopped and
    how long it took. Each experiment's run extends it with its results."""

    request: Any
    failures: dict[str, str] = field(default_factory=dict)
    stopped: bool = False
    seconds: float = 0.0

    def status(self) -> str:
        """The status box's label once the run is over."""
        return "stopped: the results so far are shown" if self.stopped else f"done in {self.seconds:.1f} s"

    def stop_note(self) -> str:
        """What the results header says of a stopped run."""
        return "Stopped: the results so far are shown."


class Live(Feedback):
    """What work draws into the status box while it runs; a click becomes a stop request (:attr:`interrupt`)."""

    def bar(self, text: str = "") -> Any:
        """A new progress bar."""
        return st.progress(0.0, text=text)

    def slot(self) -> Any:
        """A placeholder (e.g. for a live chart)."""
        return st.empty()

    @property
    def stopping(self) -> bool:
        """Whether the user has asked to stop."""
        return self.interrupt is not None

    def progress(self, bar, fraction: float, text: str, step: int = 1, total: int = 1) -> bool | None:
        """Move ``bar`` to ``fraction`` with ``text`` (throttled, the last step always drawn); True once stopping."""
        return self.draw(step, total, lambda now: bar.progress(min(max(fraction, 0.0), 1.0), text=text))

    def guard(self, draw: Callable[[], None]) -> bool:
        """Call ``draw()`` now (unthrottled); False (and stopping) if the user clicked meanwhile."""
        if self.interrupt is not None:
            return False
        try:
            draw()
        except ScriptControlException as exc:
            self.interrupt = exc
            return False
        return True

    @staticmethod
    def chart(slot, figure, key: str) -> None:
        """Draw ``figure`` into ``slot`` (a fresh element key per draw: two identical figures would share an ID)."""
        slot.plotly_chart(figure, theme=None, config={"displayModeBar": False}, key=f"{key}.{next(_DRAWS)}")


Work = Callable[[Any, Live, Outcome], None]


@dataclass(frozen=True)
class LongRun:
    """One kind of long run of a page.

    Attributes:
        name: the page's key prefix: the Run button is ``<name>.run`` and Stop ``<name>.stop`` (``<name>.<key>_run``
            and ``<name>.<key>_stop`` for another ``key``); the session keeps the last run under ``<name>.last_<key>``.
        button: the Run button's label; icon: its icon; idle: what the page says before the first run.
        work: ``work(request, live, outcome)`` (see the module docstring); outcome: ``request -> Outcome``.
        working: ``request -> the status box's label while running``.
        stop_help: the Stop button's help; waiting: the spinner's text while a stopped run finishes.
        key: which run of the page this is (a page may have several, e.g. ``"study"``).
    """

    name: str
    button: str
    icon: str
    idle: str
    work: Work
    outcome: Callable[[Any], Outcome] = Outcome
    working: Callable[[Any], str] = lambda request: "Running…"
    stop_help: str = "Stop now and keep the results so far."
    waiting: str = "Finishing the stopped run…"
    key: str = "run"

    @property
    def handoff(self) -> Handoff:
        return _handoff(f"{self.name}.last_{self.key}")

    def _widget(self, what: str) -> str:
        return f"{self.name}.{what}" if self.key == "run" else f"{self.name}.{self.key}_{what}"

    def execute(self, request: Any, container) -> Outcome:
        """Run ``request`` in a status box in ``container``; store (hand over) and return its outcome."""
        run = self.outcome(request)
        began = time.perf_counter()
        with self.handoff.running(cache.owner()) as slot:
            slot.result = run  # filled in place: whatever ends this script run, the run so far is kept
            with container.status(self.working(request), expanded=True) as status:
                st.button("Stop", key=self._widget("stop"), icon=":material/stop_circle:", help=self.stop_help)
                live = Live()
                try:
                    self.work(request, live, run)
                except ScriptControlException:  # a click while the work drew outside ``live``
                    run.stopped = True
                    raise
                except ExplorerError as exc:
                    run.failures[self.name] = one_line(exc)
                finally:
                    run.seconds = time.perf_counter() - began
                if live.interrupt is not None:  # no more st calls before the rerun: the result is stored on exit
                    run.stopped = True
                    raise live.interrupt
                status.update(label="failed" if self.name in run.failures else run.status(),
                              state="error" if run.failures else "complete", expanded=False)
        return run

    def stored(self) -> Outcome | None:
        """This session's last run (one still finishing in a stopped script run is waited for)."""
        return self.handoff.stored(cache.owner(), waiting=self.waiting)

    def section(self, request: Any, *, heading: str | None = "Results", disabled: bool = False,
                stop_if_idle: bool = True) -> Outcome | None:
        """The Run button, the progress of a run, and the results header of the last run; ``None`` before the first
        run (then the page stops, unless ``stop_if_idle`` is False).

        The header: ``heading`` (none if ``None``), a note when the settings changed since that run, each failure,
        and a stop note.
        """
        pressed = st.button(self.button, type="primary", icon=self.icon, disabled=disabled, key=self._widget("run"))
        container = st.container()
        if pressed:
            with stop_on_error():
                run = self.execute(request, container)
        else:
            run = self.stored()
        if run is None:
            st.info(self.idle, icon=self.icon)
            if stop_if_idle:
                st.stop()
            return None
        if heading is not None:
            st.subheader(heading, divider="gray")
        stale_note(run.request != request, self.button)
        for what, message in run.failures.items():
            st.error(f"**{what}** failed: {message}" if what != self.name else message, icon=":material/error:")
        if run.stopped:
            st.warning(run.stop_note(), icon=":material/stop_circle:")
        return run


_HANDOFFS: dict[str, Handoff] = {}


def _handoff(key: str) -> Handoff:
    """One hand-off per session key for the whole process (a long run's result survives its script run)."""
    return _HANDOFFS.setdefault(key, Handoff(key))


@dataclass(frozen=True)
class Download:
    """One download button: its label, the data (bytes or text), the file name, the MIME type and an optional help."""

    label: str
    data: bytes | str
    file_name: str
    mime: str = "application/octet-stream"
    help: str | None = None
    icon: str = ":material/download:"


def downloads(key: str, items: list[Download], columns: int = 3, label: str | None = None) -> None:
    """Rows of download buttons (keys ``<key>.<i>``), ``columns`` per row; with ``label``, one row led by that text
    (e.g. the method the files are of). Nothing is drawn for an empty list."""
    if label is not None:
        first, *cells = st.columns([2] + [1] * len(items), vertical_alignment="center")
        first.write(label)
        rows = [list(zip(cells, enumerate(items)))]
    else:
        rows = [list(zip(st.columns(columns), enumerate(items[s:s + columns], s))) for s in range(0, len(items), columns)]
    for row in rows:
        for column, (i, item) in row:
            column.download_button(item.label, item.data, item.file_name, item.mime, key=f"{key}.{i}",
                                   on_click="ignore", icon=item.icon, help=item.help)


__all__ = ["Download", "Live", "LongRun", "Outcome", "downloads", "one_line"]
