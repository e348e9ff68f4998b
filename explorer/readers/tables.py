"""The investigator's side of a session file (:mod:`explorer.readers.store`): where the session stands, and the
unblinded tables (the key, every answer, the audit log, the readers) as pandas DataFrames, exported as CSV or
Parquet. The reading API (:mod:`explorer.readers.reading`) never calls these.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.errors import ExplorerError
from explorer.readers.store import check_output, opened, read_meta

@dataclass(frozen=True)
class SessionStatus:
    """Where a session stands.

    Attributes:
        name, task, created, source: from the session's settings; cases / items: counts (items include repeats).
        readers: one dict per reader: ``reader_id``, ``name``, ``kind``, ``answered``, ``total``, ``changes``,
            ``last`` (time of the last answer or ``None``).
        notes: what the build recorded (skipped experiments, differences from the study table).
    """

    name: str
    task: str
    created: str
    source: str
    cases: int
    items: int
    readers: tuple[dict, ...]
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"name": self.name, "task": self.task, "created": self.created, "source": self.source,
                "cases": self.cases, "items": self.items, "readers": list(self.readers), "notes": list(self.notes)}


def status(path: str | Path) -> SessionStatus:
    """The session's settings and each reader's progress (no answers, no key)."""
    with opened(path) as conn:
        meta = read_meta(conn)
        rows = conn.execute(
            "SELECT r.reader_id, r.name, r.kind, "
            "(SELECT COUNT(*) FROM answers a WHERE a.reader_id = r.reader_id), "
            "(SELECT COUNT(*) FROM reader_items i WHERE i.reader_id = r.reader_id), "
            "(SELECT COUNT(*) FROM audit e WHERE e.reader_id = r.reader_id AND e.event = 'change'), "
            "(SELECT MAX(updated) FROM answers a WHERE a.reader_id = r.reader_id) "
            "FROM readers r ORDER BY r.reader_id").fetchall()
    readers = tuple({"reader_id": r[0], "name": r[1], "kind": r[2], "answered": r[3], "total": r[4], "changes": r[5],
                     "last": r[6]} for r in rows)
    counts = meta.get("counts", {})
    return SessionStatus(meta.get("name", ""), meta.get("task", ""), meta.get("created", ""), meta.get("source", ""),
                         int(counts.get("cases", 0)), int(counts.get("items", 0)), readers, tuple(meta.get("notes", ())))


def key_frame(path: str | Path):
    """The key, unblinded: one row per item (``item_id``, ``case_id``, ``repeat``, ``design_position``, ``subject``,
    ``condition``, ``lesion``, ``data``, ``slice``, ``kind``, ``eps``, ``metric``, ``reference_image`` (id, for
    :func:`~explorer.readers.store.image_array`), ``scale`` (stored pixels x scale = the reconstruction's values)) with its images' labels,
    methods, configs and metrics (2AFC: ``_left`` and ``_right`` columns in display order; else also ``lesions``,
    JSON). A pandas DataFrame."""
    import pandas as pd  # noqa: PLC0415

    with opened(path) as conn:
        return pd.DataFrame(_key_rows(conn))


def _recon_rows(conn: sqlite3.Connection) -> dict[int, dict]:
    cols = [d[1] for d in conn.execute("PRAGMA table_info(key_reconstructions)")]
    return {row[0]: dict(zip(cols, row)) for row in conn.execute("SELECT * FROM key_reconstructions")}


def _key_rows(conn: sqlite3.Connection) -> list[dict]:
    meta = read_meta(conn)
    recons = _recon_rows(conn)
    rows = []
    for item_id, case, repeat, number, subject, condition, lesion, shown in conn.execute(
            "SELECT k.item_id, k.case_id, k.repeat, k.number, c.subject, c.condition, c.lesion, i.images "
            "FROM key_items k JOIN key_cases c USING (case_id) JOIN items i USING (item_id) ORDER BY k.number"):
        ids = json.loads(shown)
        row = {"item_id": item_id, "case_id": case, "repeat": repeat, "design_position": number, "subject": subject,
               "condition": condition, "lesion": bool(lesion)}
        first = recons[ids[0]]
        row.update(data=first["data"], slice=first["slice"], kind=first["kind"], eps=first["eps"],
                   metric=first["metric"], reference_image=first["reference_id"], scale=first["scale"])
        fields = ("label", "method", "config", "ssim", "psnr", "nmse", "study_ssim", "study_psnr", "study_nmse")
        if meta.get("task") == "2afc":
            for side, image_id in zip(("left", "right"), ids):
                row.update({f"{f}_{side}": recons[image_id][f] for f in fields})
        else:
            row.update({f: first[f] for f in fields})
            row["lesions"] = first["lesions"]
        rows.append(row)
    return rows


def answers_frame(path: str | Path):
    """Every current answer, unblinded (the investigator's table; the reading API never returns it).

    One row per (reader, item): ``reader_id``, ``reader``, ``reader_kind``, the item's key columns
    (:func:`key_frame`), ``answer`` (JSON), ``seconds``, ``revision``, ``first_answered``, ``updated``, and the task's
    columns: Likert ``rating_<criterion>``; 2AFC ``choice`` (``"left"``/``"right"``), ``chosen`` and ``other``
    (labels), ``pair`` (``"A vs B"`` in the session's label order); detection ``present``, ``confidence``,
    ``click_row``, ``click_col``, ``score`` (1..10, :func:`~explorer.readers.tasks.detection_score`) and
    ``distance`` (pixels from the click to the nearest lesion centre; ``None`` without a click or a lesion).
    """
    import pandas as pd  # noqa: PLC0415

    from explorer.readers.tasks import detection_score  # noqa: PLC0415

    with opened(path) as conn:
        meta = read_meta(conn)
        key = {row["item_id"]: row for row in _key_rows(conn)}
        readers = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT reader_id, name, kind FROM readers")}
        answers = conn.execute("SELECT a.reader_id, a.item_id, a.value, a.seconds, a.revision, a.first_answered, "
                               "a.updated FROM answers a JOIN reader_items o ON o.reader_id = a.reader_id AND "
                               "o.item_id = a.item_id ORDER BY a.reader_id, o.position").fetchall()
    task = meta.get("task")
    labels = meta.get("labels", [])
    rows = []
    for reader_id, item_id, value, seconds, revision, first, updated in answers:
        answer = json.loads(value)
        row = {"reader_id": reader_id, "reader": readers[reader_id][0], "reader_kind": readers[reader_id][1],
               **key[item_id], "answer": value, "seconds": seconds, "revision": revision, "first_answered": first,
               "updated": updated}
        if task == "likert":
            row.update({f"rating_{c}": v for c, v in answer["ratings"].items()})
        elif task == "2afc":
            left, right = row["label_left"], row["label_right"]
            chosen, other = (left, right) if answer["choice"] == "left" else (right, left)
            a, b = sorted((left, right), key=lambda x: labels.index(x) if x in labels else len(labels))
            row.update(choice=answer["choice"], chosen=chosen, other=other, pair=f"{a} vs {b}")
        else:
            loc = answer.get("location")
            lesions = json.loads(row["lesions"])
            distance = None
            if loc is not None and lesions:
                distance = float(min(np.hypot(loc[0] - l_["row"], loc[1] - l_["col"]) for l_ in lesions))
            row.update(present=answer["present"], confidence=answer["confidence"],
                       click_row=None if loc is None else loc[0], click_col=None if loc is None else loc[1],
                       score=detection_score(answer), distance=distance)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["reader_id", "reader", "reader_kind", "item_id", "case_id", "repeat"])
    return frame


def audit_frame(path: str | Path):
    """The audit log: one row per event (``event_id``, ``time``, ``reader_id``, ``reader``, ``item_id``, ``event``,
    ``value``, ``seconds``), oldest first. A pandas DataFrame."""
    import pandas as pd  # noqa: PLC0415

    with opened(path) as conn:
        rows = conn.execute("SELECT e.event_id, e.time, e.reader_id, r.name, e.item_id, e.event, e.value, e.seconds "
                            "FROM audit e LEFT JOIN readers r USING (reader_id) ORDER BY e.event_id").fetchall()
    return pd.DataFrame(rows, columns=["event_id", "time", "reader_id", "reader", "item_id", "event", "value",
                                       "seconds"])


def readers_frame(path: str | Path):
    """The readers (``reader_id``, ``name``, ``kind``, ``created``; never their codes). A pandas DataFrame."""
    import pandas as pd  # noqa: PLC0415

    with opened(path) as conn:
        rows = conn.execute("SELECT reader_id, name, kind, created FROM readers ORDER BY reader_id").fetchall()
    return pd.DataFrame(rows, columns=["reader_id", "name", "kind", "created"])


TABLES = {"answers": answers_frame, "key": key_frame, "audit": audit_frame, "readers": readers_frame}
FORMATS = ("csv", "parquet")


def export(path: str | Path, out: str | Path, fmt: str = "csv", table: str = "answers", force: bool = False) -> Path:
    """Write one of :data:`TABLES` (unblinded) as CSV or Parquet.

    Raises:
        ExplorerError: an unknown table or format; an existing ``out`` without ``force``; see :func:`~explorer.readers.store.connect`.
    """
    if table not in TABLES:
        raise ExplorerError(f"table must be one of {', '.join(TABLES)}, got {table!r}")
    if fmt not in FORMATS:
        raise ExplorerError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    target = check_output(out, force)
    frame = TABLES[table](path)
    if fmt == "csv":
        frame.to_csv(target, index=False)
    else:
        frame.to_parquet(target, index=False)
    return target


__all__ = ["FORMATS", "SessionStatus", "TABLES", "answers_frame", "audit_frame", "export", "key_frame",
           "readers_frame", "status"]
