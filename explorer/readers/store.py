"""A reading session on disk: ONE SQLite file (WAL mode) holding the cases (images as BLOBs), the key, the readers,
their answers and an audit log; the investigator's side of it (readers, status, the unblinded tables, export, copy).

Layout (schema version :data:`VERSION`):

* ``meta``: ``key -> value`` (JSON): format, version, name, task, criteria, seed, order, dtype, source, notes...;
* ``images``: every stored image (``height``, ``width``, ``dtype``, ``pixels``: little-endian float16/float32 bytes,
  normalised so that the reference's maximum is 1);
* ``items``: what a reader is shown: opaque ``item_id``, the ``images`` (JSON ids, display order) and the
  ``reference`` image id when the session shows references;
* the **key** (``key_reconstructions``, ``key_cases``, ``key_items``): method labels and names, conditions,
  metrics, lesion ground truth and which item shows which case. The reading API
  (:mod:`explorer.readers.reading`) never reads these tables;
* ``readers``: ``reader_id``, ``name``, ``kind`` (``"human"`` or ``"simulated"``) and the sha256 of the reader's
  personal code (the code itself is shown once, by :func:`add_reader`, and never stored);
* ``reader_items``: each reader's seeded order of the items;
* ``answers``: the current answer of a reader to an item (primary key ``(reader_id, item_id)``: answering again
  updates it, never duplicates it), its ``revision``, total reading ``seconds``, first and last times;
* ``audit``: every event, append-only: ``shown``, ``answer``, ``change`` (a different answer; the new value),
  ``same`` (the same answer again: nothing changes), ``reader`` (a reader added), with UTC timestamps.

Every call opens its own connection and every write is one ``BEGIN IMMEDIATE`` transaction with ``synchronous=FULL``,
so two readers in two processes can answer at once (SQLite serialises the writers; a busy file is waited on for up to
30 s) and a server restart loses nothing: no state that matters is held in memory. While readers are active the
session also has ``-wal`` and ``-shm`` files beside it; :func:`copy_session` writes a consistent single-file copy at
any time (SQLite's backup API), and the file alone is complete once every connection has closed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import sqlite3
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from explorer.errors import ExplorerError
from explorer.readers.design import Design, Item, Reconstruction, reader_order

FORMAT = "mri-explorer reading session"
VERSION = 1
SUFFIX = ".reading"
DTYPES = {"float16": "<f2", "float32": "<f4"}
KINDS = ("human", "simulated")
BUSY_SECONDS = 30.0
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: a code is read aloud or typed from paper

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (image_id INTEGER PRIMARY KEY, height INTEGER NOT NULL, width INTEGER NOT NULL,
                     dtype TEXT NOT NULL, pixels BLOB NOT NULL);
CREATE TABLE items (item_id TEXT PRIMARY KEY, images TEXT NOT NULL, reference INTEGER REFERENCES images(image_id));
CREATE TABLE key_reconstructions (image_id INTEGER PRIMARY KEY REFERENCES images(image_id),
    reference_id INTEGER REFERENCES images(image_id), subject TEXT NOT NULL, data TEXT, slice INTEGER,
    condition TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL, method TEXT NOT NULL, config TEXT,
    experiment TEXT, eps REAL, metric TEXT, ssim REAL, psnr REAL, nmse REAL, study_ssim REAL, study_psnr REAL,
    study_nmse REAL, scale REAL NOT NULL, lesions TEXT NOT NULL);
CREATE TABLE key_cases (case_id TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE, subject TEXT NOT NULL,
    condition TEXT NOT NULL, lesion INTEGER NOT NULL, images TEXT NOT NULL);
CREATE TABLE key_items (item_id TEXT PRIMARY KEY REFERENCES items(item_id),
    case_id TEXT NOT NULL REFERENCES key_cases(case_id), repeat INTEGER NOT NULL, number INTEGER NOT NULL UNIQUE);
CREATE TABLE readers (reader_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
CREATE TABLE reader_items (reader_id INTEGER NOT NULL REFERENCES readers(reader_id), position INTEGER NOT NULL,
    item_id TEXT NOT NULL REFERENCES items(item_id), PRIMARY KEY (reader_id, position), UNIQUE (reader_id, item_id));
CREATE TABLE answers (reader_id INTEGER NOT NULL REFERENCES readers(reader_id),
    item_id TEXT NOT NULL REFERENCES items(item_id), value TEXT NOT NULL, seconds REAL, revision INTEGER NOT NULL,
    first_answered TEXT NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (reader_id, item_id));
CREATE TABLE audit (event_id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, reader_id INTEGER,
    item_id TEXT, event TEXT NOT NULL, value TEXT, seconds REAL);
CREATE INDEX audit_reader_item ON audit (reader_id, item_id, event_id);
"""


def now() -> str:
    """The current UTC time, ISO 8601 with microseconds (what every table stores)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


def seconds_between(start: str, end: str) -> float:
    """Seconds from ISO time ``start`` to ``end``."""
    return (datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)).total_seconds()


# ----------------------------------------------------------------------------- opening


def _open(path: Path, mode: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=BUSY_SECONDS,
                           isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def connect(path: str | Path) -> sqlite3.Connection:
    """An open connection to an existing session file (its format and version checked).

    Raises:
        ExplorerError: no such file, not a reading session, a newer schema.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ExplorerError(f"no reading session at {path}")
    try:
        conn = _open(path, "rw")
        rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('format', 'version')").fetchall())
    except sqlite3.DatabaseError:
        raise ExplorerError(f"{path} is not a reading session (not an SQLite file of this format)") from None
    if json.loads(rows.get("format", "null")) != FORMAT:
        conn.close()
        raise ExplorerError(f"{path} is not a reading session")
    if json.loads(rows.get("version", "0")) > VERSION:
        conn.close()
        raise ExplorerError(f"{path} was written by a newer explorer (session version {rows['version']})")
    return conn


@contextmanager
def opened(path: str | Path) -> Iterator[sqlite3.Connection]:
    """:func:`connect`, closed afterwards."""
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken first, so two writers never deadlock)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_meta(conn: sqlite3.Connection) -> dict:
    """The session's ``meta`` table as a dict of JSON values."""
    return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def image_array(conn: sqlite3.Connection, image_id: int) -> np.ndarray:
    """A stored image as float32 ``(h, w)`` (normalised: the reference's maximum is 1)."""
    row = conn.execute("SELECT height, width, dtype, pixels FROM images WHERE image_id = ?", (image_id,)).fetchone()
    if row is None:
        raise ExplorerError(f"the session has no image {image_id}")
    h, w, dtype, pixels = row
    return np.frombuffer(pixels, dtype=np.dtype(DTYPES[dtype])).reshape(h, w).astype(np.float32)


# ----------------------------------------------------------------------------- writing a session


def _finite(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _scale(recon: Reconstruction) -> float:
    """The display scale of a reconstruction: its reference's maximum (else a robust maximum of the image); a session
    stores every image of a subject divided by the largest of its reconstructions' scales."""
    for candidate in (recon.reference, recon.image):
        if candidate is not None:
            top = float(np.max(candidate)) if candidate is recon.reference else float(np.percentile(candidate, 99.5))
            if np.isfinite(top) and top > 0:
                return top
    return 1.0


def check_output(path: str | Path, force: bool) -> Path:
    """The session file to write, checked before any work: not a folder, its folder exists and is writable, an
    existing file only with ``force``.

    Raises:
        ExplorerError: one line naming the problem.
    """
    if not str(path).strip():
        raise ExplorerError("the session file name is empty")
    target = Path(path).expanduser()
    if target.is_dir():
        raise ExplorerError(f"{target} is a folder; give a session file name (e.g. session{SUFFIX})")
    if target.exists() and not force:
        raise ExplorerError(f"{target} exists; add --force to replace it, or choose another name")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ExplorerError(f"{target}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ExplorerError(f"{target}: the folder {parent} is not writable")
    return target


def write_session(path: str | Path, recons: list[Reconstruction], design: Design, meta: dict,
                  dtype: str = "float16", force: bool = False) -> Path:
    """Write a new session file: images, items, the key and ``meta`` (written into a temporary file beside it and
    moved into place when complete, so a failed build leaves nothing).

    Args:
        recons: the reconstructions; design: their cases and items (:func:`explorer.readers.design.make_design`).
        meta: the session's settings (JSON values; ``format``, ``version``, ``created`` are added).
        dtype: ``"float16"`` or ``"float32"`` pixels.

    Raises:
        ExplorerError: see :func:`check_output`; an unknown dtype.
    """
    if dtype not in DTYPES:
        raise ExplorerError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    target = check_output(path, force)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
            conn.execute("BEGIN")
            _write_contents(conn, recons, design, meta, dtype)
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):  # a replaced session's leftovers must not meet the new file
            Path(str(target) + suffix).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            leftover.unlink(missing_ok=True)
    return target


def _write_contents(conn: sqlite3.Connection, recons: list[Reconstruction], design: Design, meta: dict,
                    dtype: str) -> None:
    code = DTYPES[dtype]

    def put(array: np.ndarray, scale: float) -> int:
        pixels = np.ascontiguousarray(np.asarray(array, dtype=np.float64) / scale, dtype=np.dtype(code))
        cur = conn.execute("INSERT INTO images (height, width, dtype, pixels) VALUES (?, ?, ?, ?)",
                           (int(pixels.shape[0]), int(pixels.shape[1]), dtype, pixels.tobytes()))
        return int(cur.lastrowid)

    references: dict[tuple[str, str], int] = {}  # (subject, condition) -> image id
    stored: dict[tuple[str, bytes], int] = {}  # (subject, digest) -> image id: an attack's reference is the clean one
    image_ids = []
    scales: dict[str, float] = {}
    for recon in recons:  # one scale per subject: its lesion-present and -absent images look alike but for the lesion
        scales[recon.subject] = max(scales.get(recon.subject, 0.0), _scale(recon))
    for recon in recons:
        scale = scales[recon.subject]
        ref_id = None
        if recon.reference is not None:
            key = (recon.subject, recon.condition)
            if key not in references:  # every method on a subject and condition shares one reference
                digest = (recon.subject, hashlib.sha256(np.ascontiguousarray(recon.reference).tobytes()).digest())
                if digest not in stored:
                    stored[digest] = put(recon.reference, scale)
                references[key] = stored[digest]
            ref_id = references[key]
        image_id = put(recon.image, scale)
        image_ids.append(image_id)
        metrics, study = recon.metrics or {}, recon.study_metrics or {}
        conn.execute(
            "INSERT INTO key_reconstructions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (image_id, ref_id, recon.subject, recon.data, int(recon.slice), recon.condition, recon.kind, recon.label,
             recon.method, recon.config, recon.experiment, recon.eps, recon.metric,
             *(_finite(metrics.get(m)) for m in ("ssim", "psnr", "nmse")),
             *(_finite(study.get(m)) for m in ("ssim", "psnr", "nmse")), scale,
             json.dumps([lesion.as_dict() for lesion in recon.lesions])))
    show_reference = bool(meta.get("show_reference"))
    for number, case in enumerate(design.cases):
        conn.execute("INSERT INTO key_cases VALUES (?, ?, ?, ?, ?, ?)",
                     (case_id(number), number, case.subject, case.condition, int(case.lesion),
                      json.dumps([image_ids[i] for i in case.images])))
    for number, item in enumerate(design.items):
        first = recons[item.images[0]]
        reference = references.get((first.subject, first.condition)) if show_reference else None
        conn.execute("INSERT INTO items VALUES (?, ?, ?)",
                     (item.item_id, json.dumps([image_ids[i] for i in item.images]), reference))
        conn.execute("INSERT INTO key_items VALUES (?, ?, ?, ?)", (item.item_id, case_id(item.case), item.repeat, number))
    full = {**meta, "format": FORMAT, "version": VERSION, "created": now(), "dtype": dtype,
            "counts": {"reconstructions": len(recons), "cases": len(design.cases), "items": len(design.items)}}
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in full.items()])


def case_id(number: int) -> str:
    """The key's id of case ``number`` (never shown to readers)."""
    return f"case-{number + 1:04d}"


# ----------------------------------------------------------------------------- readers


def normalise_code(code: str) -> str:
    """A personal code as typed (any case, spaces and dashes ignored) in its canonical form."""
    return "".join(ch for ch in str(code).lower() if ch.isalnum())


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def new_code() -> str:
    """A fresh personal code: 12 characters from an unambiguous alphabet (about 59 bits), as ``xxxx-xxxx-xxxx``."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


@dataclass(frozen=True)
class NewReader:
    """A reader just added: ``reader_id``, ``name``, ``kind`` and the personal ``code`` (shown once; only its hash is
    stored, so keep it: it is the reader's only way in)."""

    reader_id: int
    name: str
    kind: str
    code: str


def add_reader(path: str | Path, name: str | None = None, kind: str = "human") -> NewReader:
    """Add a reader with a fresh personal code and their seeded order of the items.

    Args:
        name: a display name for the investigator (initials, a pseudonym); default ``"reader N"``.
        kind: ``"human"`` or ``"simulated"`` (a scripted model observer, :mod:`explorer.readers.simulated`).

    Raises:
        ExplorerError: a name already taken or empty, an unknown kind; see :func:`connect`.
    """
    if kind not in KINDS:
        raise ExplorerError(f"reader kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if name is not None and (not str(name).strip() or len(str(name)) > 100):
        raise ExplorerError("a reader name must be 1 to 100 characters")
    code = new_code()
    with opened(path) as conn, transaction(conn):
        meta = read_meta(conn)
        reader_id = int(conn.execute("SELECT COALESCE(MAX(reader_id), 0) + 1 FROM readers").fetchone()[0])
        label = str(name).strip() if name is not None else (
            f"reader {reader_id}" if kind == "human" else f"simulated reader {reader_id} (model observer)")
        if conn.execute("SELECT 1 FROM readers WHERE name = ?", (label,)).fetchone():
            raise ExplorerError(f"the session has a reader named {label!r} already; choose another name")
        created = now()
        conn.execute("INSERT INTO readers VALUES (?, ?, ?, ?, ?)", (reader_id, label, kind, code_hash(code), created))
        items = _items_for_order(conn)
        order = reader_order(items, int(meta.get("seed", 0)), reader_id, meta.get("order") == "shared")
        conn.executemany("INSERT INTO reader_items VALUES (?, ?, ?)",
                         [(reader_id, position, items[i].item_id) for position, i in enumerate(order)])
        conn.execute("INSERT INTO audit (time, reader_id, event, value) VALUES (?, ?, 'reader', ?)",
                     (created, reader_id, json.dumps({"name": label, "kind": kind})))
    return NewReader(reader_id, label, kind, code)


def _items_for_order(conn: sqlite3.Connection) -> list[Item]:
    rows = conn.execute("SELECT k.item_id, c.number, k.repeat FROM key_items k JOIN key_cases c USING (case_id) "
                        "ORDER BY k.number").fetchall()
    return [Item(item_id, case, repeat, ()) for item_id, case, repeat in rows]


def reader_for_code(conn: sqlite3.Connection, code: str) -> tuple[int, str, str]:
    """``(reader_id, name, kind)`` of a personal code.

    Raises:
        ExplorerError: an unknown code (the same message whatever the reason).
    """
    if not isinstance(code, str) or not normalise_code(code):
        raise ExplorerError("this reader code is not valid for this session")
    row = conn.execute("SELECT reader_id, name, kind FROM readers WHERE token_sha256 = ?", (code_hash(code),)).fetchone()
    if row is None:
        raise ExplorerError("this reader code is not valid for this session")
    return int(row[0]), str(row[1]), str(row[2])


# ----------------------------------------------------------------------------- the investigator's view


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


def session_meta(path: str | Path) -> dict:
    """The session's settings (the ``meta`` table)."""
    with opened(path) as conn:
        return read_meta(conn)


def key_frame(path: str | Path):
    """The key, unblinded: one row per item (``item_id``, ``case_id``, ``repeat``, ``design_position``, ``subject``,
    ``condition``, ``lesion``, ``data``, ``slice``, ``kind``, ``eps``, ``metric``, ``reference_image`` (id, for
    :func:`image_array`), ``scale`` (stored pixels x scale = the reconstruction's values)) with its images' labels,
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
        ExplorerError: an unknown table or format; an existing ``out`` without ``force``; see :func:`connect`.
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


def copy_session(path: str | Path, dest: str | Path, force: bool = False) -> Path:
    """A consistent single-file copy of a session (also while readers are answering: SQLite's backup API), to move
    it to another machine.

    Raises:
        ExplorerError: see :func:`check_output` and :func:`connect`.
    """
    target = check_output(dest, force)
    if target.resolve() == Path(path).expanduser().resolve():
        raise ExplorerError("the copy must go to another file")
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with opened(path) as conn:
            copy = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.backup(copy)
                copy.execute("PRAGMA journal_mode = WAL")
                copy.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                copy.close()
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            leftover.unlink(missing_ok=True)
    return target


__all__ = ["BUSY_SECONDS", "DTYPES", "FORMAT", "FORMATS", "KINDS", "NewReader", "SUFFIX", "SessionStatus", "TABLES",
           "VERSION", "add_reader", "answers_frame", "audit_frame", "case_id", "check_output", "code_hash", "connect",
           "copy_session", "export", "image_array", "key_frame", "new_code", "normalise_code", "now", "opened",
           "read_meta", "reader_for_code", "readers_frame", "seconds_between", "session_meta", "status",
           "transaction", "write_session"]
