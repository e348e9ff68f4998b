"""The reader's side of a session: the only API a reading page calls.

Every call takes the reader's personal code (from :func:`explorer.readers.codes.add_reader`) and opens the session
file afresh, so a page keeps nothing that matters in memory: a closed tab, a second reader in another process or a
server restart loses nothing. What it returns is blind by construction: it reads the ``items``, ``images``,
``readers``, ``reader_items``, ``answers`` and ``audit`` tables and, of the session's settings, the task, its criteria
and whether references are shown; never the key. No return value holds a method name, a condition, a metric, an
internal case id or another reader's answer (``tests/readers/test_readers_store.py`` checks every return value).

A page's loop::

    reading = Reading("study.reading")
    info = reading.task(code)                  # what to ask: criteria and anchors, instructions
    view = reading.next_item(code)             # None when every item is answered
    ...show view.images (2AFC: left, right), view.position / view.total...
    reading.answer(code, view.item_id, {"ratings": {"overall": 4, ...}})

Reading time: showing an item (:meth:`Reading.item`, :meth:`Reading.next_item`) logs a ``shown`` event; an answer's
time is the time since the item was last shown (unless the page passes its own ``seconds``), so a pause followed by
showing the item again counts from the new showing. A changed answer adds its time to the item's total; the same
answer given again changes nothing (it is logged as ``same``).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.errors import ExplorerError
from explorer.readers.codes import reader_for_code
from explorer.readers.store import image_array, now, opened, read_meta, seconds_between, transaction
from explorer.readers.tasks import AFC, CRITERIA, TaskInfo, check_answer, task_info

MAX_SECONDS = 86_400.0


@dataclass(frozen=True)
class ReaderProgress:
    """A reader's progress: ``name``, ``answered`` of ``total`` items (repeats included), ``next_position`` (1-based
    position of the first unanswered item, ``None`` when done)."""

    name: str
    answered: int
    total: int
    next_position: int | None

    @property
    def done(self) -> bool:
        return self.answered >= self.total


@dataclass(frozen=True)
class ItemStatus:
    """One entry of a reader's list: opaque ``item_id``, 1-based ``position``, whether it is ``answered``."""

    item_id: str
    position: int
    answered: bool


@dataclass(frozen=True, eq=False)
class ItemView:
    """One item as a reader sees it.

    Attributes:
        item_id: opaque id (pass it back to :meth:`Reading.answer`).
        position / total: 1-based position in the reader's order, and the number of items.
        images: float32 ``(h, w)`` magnitudes normalised so the reference's maximum is 1 (a window of 0..1 shows
            every case alike); one image, or ``(left, right)`` for 2AFC.
        names: what each image is called on the page (``("image",)`` or ``("left", "right")``).
        reference: the fully sampled reference ``(h, w)`` when the session shows it, else ``None``.
        answer: the reader's own current answer to it, or ``None``.
    """

    item_id: str
    position: int
    total: int
    images: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    reference: np.ndarray | None = None
    answer: dict | None = None


@dataclass(frozen=True)
class Receipt:
    """What :meth:`Reading.answer` stored: ``event`` (``"answer"`` first time, ``"change"`` a different answer,
    ``"same"`` the same answer again), the answer's ``revision``, its total ``seconds``, and the reader's
    ``answered`` / ``total`` afterwards."""

    item_id: str
    event: str
    revision: int
    seconds: float | None
    answered: int
    total: int


class Reading:
    """The reading API of one session file (see the module docstring). Cheap to create; holds only the path."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        with opened(self.path):  # checked now: a wrong file is a clear error before any reader arrives
            pass

    # ------------------------------------------------------------------ reading

    def task(self, code: str) -> TaskInfo:
        """What the reader is asked (:class:`~explorer.readers.tasks.TaskInfo`)."""
        with opened(self.path) as conn:
            reader_for_code(conn, code)
            return self._task(conn)

    def progress(self, code: str) -> ReaderProgress:
        """The reader's progress."""
        with opened(self.path) as conn:
            reader_id, name, _ = reader_for_code(conn, code)
            return self._progress(conn, reader_id, name)

    def items(self, code: str) -> list[ItemStatus]:
        """The reader's items in their order, each with whether it is answered (for a page's navigation)."""
        with opened(self.path) as conn:
            reader_id, _, _ = reader_for_code(conn, code)
            rows = conn.execute("SELECT o.item_id, o.position, a.item_id IS NOT NULL FROM reader_items o LEFT JOIN "
                                "answers a ON a.reader_id = o.reader_id AND a.item_id = o.item_id "
                                "WHERE o.reader_id = ? ORDER BY o.position", (reader_id,)).fetchall()
        return [ItemStatus(item_id, position + 1, bool(done)) for item_id, position, done in rows]

    def next_item(self, code: str, record_view: bool = True) -> ItemView | None:
        """The first unanswered item in the reader's order (``None`` when all are answered); ``record_view`` logs that
        it was shown (its reading time starts)."""
        with opened(self.path) as conn:
            reader_id, _, _ = reader_for_code(conn, code)
            row = conn.execute("SELECT o.item_id FROM reader_items o WHERE o.reader_id = ? AND NOT EXISTS (SELECT 1 "
                               "FROM answers a WHERE a.reader_id = o.reader_id AND a.item_id = o.item_id) "
                               "ORDER BY o.position LIMIT 1", (reader_id,)).fetchone()
            return None if row is None else self._view(conn, reader_id, row[0], record_view)

    def item(self, code: str, item_id: str, record_view: bool = True) -> ItemView:
        """One of the reader's items (to go back to it), with their current answer.

        Raises:
            ExplorerError: an item that is not in the reader's list.
        """
        with opened(self.path) as conn:
            reader_id, _, _ = reader_for_code(conn, code)
            return self._view(conn, reader_id, item_id, record_view)

    def item_at(self, code: str, position: int, record_view: bool = True) -> ItemView:
        """The reader's item at 1-based ``position``.

        Raises:
            ExplorerError: a position outside 1..total.
        """
        with opened(self.path) as conn:
            reader_id, _, _ = reader_for_code(conn, code)
            row = conn.execute("SELECT item_id FROM reader_items WHERE reader_id = ? AND position = ?",
                               (reader_id, int(position) - 1)).fetchone()
            if row is None:
                total = conn.execute("SELECT COUNT(*) FROM reader_items WHERE reader_id = ?", (reader_id,)).fetchone()[0]
                raise ExplorerError(f"position must be in 1..{total}, got {position}")
            return self._view(conn, reader_id, row[0], record_view)

    def my_answers(self, code: str) -> list[dict]:
        """The reader's own answers in their order: ``item_id``, ``position``, ``answer``, ``seconds``, ``revision``,
        ``updated``."""
        with opened(self.path) as conn:
            reader_id, _, _ = reader_for_code(conn, code)
            rows = conn.execute("SELECT a.item_id, o.position, a.value, a.seconds, a.revision, a.updated FROM answers a "
                                "JOIN reader_items o ON o.reader_id = a.reader_id AND o.item_id = a.item_id "
                                "WHERE a.reader_id = ? ORDER BY o.position", (reader_id,)).fetchall()
        return [{"item_id": i, "position": p + 1, "answer": json.loads(v), "seconds": s, "revision": r, "updated": u}
                for i, p, v, s, r, u in rows]

    # ------------------------------------------------------------------ answering

    def answer(self, code: str, item_id: str, value: dict, seconds: float | None = None) -> Receipt:
        """Store the reader's answer to an item, in one transaction (see the module docstring for the time).

        Answering an item again replaces the answer (``revision`` + 1, the change logged with its value); the same
        answer again is idempotent (nothing changes; logged as ``same``).

        Args:
            value: the task's answer form (:mod:`explorer.readers.tasks`).
            seconds: the reading time the page measured (default: since the item was last shown).

        Raises:
            ExplorerError: an unknown code or item, a malformed answer, a negative or absurd time.
        """
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS):
            raise ExplorerError(f"seconds must be a time in 0..{MAX_SECONDS:g}, got {seconds!r}")
        with opened(self.path) as conn:
            reader_id, name, _ = reader_for_code(conn, code)
            meta = read_meta(conn)
            shape = self._shape(conn, reader_id, item_id)
            clean = check_answer(meta["task"], value, tuple(meta.get("criteria", ())), shape)
            text = json.dumps(clean, sort_keys=True)
            with transaction(conn):
                stamp = now()
                prev = conn.execute("SELECT value, seconds, revision FROM answers WHERE reader_id = ? AND item_id = ?",
                                    (reader_id, item_id)).fetchone()
                took = seconds if seconds is not None else self._since_shown(conn, reader_id, item_id, stamp)
                if prev is None:
                    event, revision, total = "answer", 1, took
                    conn.execute("INSERT INTO answers VALUES (?, ?, ?, ?, 1, ?, ?)",
                                 (reader_id, item_id, text, took, stamp, stamp))
                elif prev[0] == text:
                    event, revision, total = "same", int(prev[2]), prev[1]
                else:
                    event, revision = "change", int(prev[2]) + 1
                    total = None if prev[1] is None and took is None else (prev[1] or 0.0) + (took or 0.0)
                    conn.execute("UPDATE answers SET value = ?, seconds = ?, revision = ?, updated = ? "
                                 "WHERE reader_id = ? AND item_id = ?", (text, total, revision, stamp, reader_id, item_id))
                conn.execute("INSERT INTO audit (time, reader_id, item_id, event, value, seconds) VALUES (?, ?, ?, ?, ?, ?)",
                             (stamp, reader_id, item_id, event, text, took if event != "same" else None))
            progress = self._progress(conn, reader_id, name)
        return Receipt(item_id, event, revision, total, progress.answered, progress.total)

    # ------------------------------------------------------------------ internals (blind tables only)

    def _task(self, conn: sqlite3.Connection) -> TaskInfo:
        meta = read_meta(conn)
        return task_info(meta["task"], tuple(meta.get("criteria") or CRITERIA), bool(meta.get("show_reference")))

    @staticmethod
    def _progress(conn: sqlite3.Connection, reader_id: int, name: str) -> ReaderProgress:
        total = conn.execute("SELECT COUNT(*) FROM reader_items WHERE reader_id = ?", (reader_id,)).fetchone()[0]
        answered = conn.execute("SELECT COUNT(*) FROM answers WHERE reader_id = ?", (reader_id,)).fetchone()[0]
        row = conn.execute("SELECT MIN(o.position) FROM reader_items o WHERE o.reader_id = ? AND NOT EXISTS (SELECT 1 "
                           "FROM answers a WHERE a.reader_id = o.reader_id AND a.item_id = o.item_id)",
                           (reader_id,)).fetchone()
        return ReaderProgress(name, int(answered), int(total), None if row[0] is None else int(row[0]) + 1)

    @staticmethod
    def _position(conn: sqlite3.Connection, reader_id: int, item_id) -> int:
        row = conn.execute("SELECT position FROM reader_items WHERE reader_id = ? AND item_id = ?",
                           (reader_id, str(item_id))).fetchone()
        if row is None:
            raise ExplorerError(f"item {item_id!r} is not one of this reader's items")
        return int(row[0])

    def _shape(self, conn: sqlite3.Connection, reader_id: int, item_id) -> tuple[int, int]:
        self._position(conn, reader_id, item_id)
        first = json.loads(conn.execute("SELECT images FROM items WHERE item_id = ?", (item_id,)).fetchone()[0])[0]
        h, w = conn.execute("SELECT height, width FROM images WHERE image_id = ?", (first,)).fetchone()
        return int(h), int(w)

    def _view(self, conn: sqlite3.Connection, reader_id: int, item_id, record_view: bool) -> ItemView:
        position = self._position(conn, reader_id, item_id)
        images_json, reference = conn.execute("SELECT images, reference FROM items WHERE item_id = ?",
                                              (item_id,)).fetchone()
        meta = read_meta(conn)
        images = tuple(image_array(conn, i) for i in json.loads(images_json))
        ref = image_array(conn, reference) if reference is not None and meta.get("show_reference") else None
        total = conn.execute("SELECT COUNT(*) FROM reader_items WHERE reader_id = ?", (reader_id,)).fetchone()[0]
        row = conn.execute("SELECT value FROM answers WHERE reader_id = ? AND item_id = ?",
                           (reader_id, item_id)).fetchone()
        if record_view:
            with transaction(conn):
                conn.execute("INSERT INTO audit (time, reader_id, item_id, event) VALUES (?, ?, ?, 'shown')",
                             (now(), reader_id, item_id))
        names = ("left", "right") if meta.get("task") == AFC else ("image",)
        return ItemView(item_id, position + 1, int(total), images, names, ref, None if row is None else json.loads(row[0]))

    @staticmethod
    def _since_shown(conn: sqlite3.Connection, reader_id: int, item_id: str, stamp: str) -> float | None:
        """Seconds since the item was last shown to the reader (after their last answer to it), else ``None``."""
        row = conn.execute("SELECT time FROM audit WHERE reader_id = ? AND item_id = ? AND event = 'shown' AND event_id > "
                           "COALESCE((SELECT MAX(event_id) FROM audit WHERE reader_id = ? AND item_id = ? AND event IN "
                           "('answer', 'change', 'same')), 0) ORDER BY event_id DESC LIMIT 1",
                           (reader_id, item_id, reader_id, item_id)).fetchone()
        if row is None:
            return None
        return max(0.0, min(MAX_SECONDS, seconds_between(row[0], stamp)))


__all__ = ["ItemStatus", "ItemView", "Reading", "ReaderProgress", "Receipt"]
