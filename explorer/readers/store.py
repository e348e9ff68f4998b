"""A reading session on disk: ONE SQLite file (WAL mode) holding the cases (images as BLOBs), the key, the readers,
their answers and an audit log. This module holds the file itself (its layout, opening it, writing a new one, a
consistent copy); :mod:`explorer.readers.codes` adds readers and finds them by their personal codes, and
:mod:`explorer.readers.tables` reads the investigator's side out of it (status, the unblinded tables, export).
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
  personal code (the code itself is shown once, by :func:`~explorer.readers.codes.add_reader`, and never stored);
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
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from explorer.errors import ExplorerError
from explorer.readers.design import Design, Reconstruction

FORMAT = "mri-explorer reading session"
VERSION = 1
SUFFIX = ".reading"
DTYPES = {"float16": "<f2", "float32": "<f4"}
KINDS = ("human", "simulated")
BUSY_SECONDS = 30.0

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
    with _into_place(target) as tmp:
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
    return target


@contextmanager
def _into_place(target: Path) -> Iterator[Path]:
    """A temporary file beside ``target`` for the block to write; moved onto ``target`` when the block ends without an
    error (a replaced session's ``-wal``/``-shm`` leftovers removed first: they must not meet the new file), removed
    with its own leftovers in every case."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            leftover.unlink(missing_ok=True)


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


def session_meta(path: str | Path) -> dict:
    """The session's settings (the ``meta`` table)."""
    with opened(path) as conn:
        return read_meta(conn)


def copy_session(path: str | Path, dest: str | Path, force: bool = False) -> Path:
    """A consistent single-file copy of a session (also while readers are answering: SQLite's backup API), to move
    it to another machine.

    Raises:
        ExplorerError: see :func:`check_output` and :func:`connect`.
    """
    target = check_output(dest, force)
    if target.resolve() == Path(path).expanduser().resolve():
        raise ExplorerError("the copy must go to another file")
    with _into_place(target) as tmp, opened(path) as conn:
        copy = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.backup(copy)
            copy.execute("PRAGMA journal_mode = WAL")
            copy.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            copy.close()
    return target


__all__ = ["BUSY_SECONDS", "DTYPES", "FORMAT", "KINDS", "SUFFIX", "VERSION", "case_id", "check_output", "connect",
           "copy_session", "image_array", "now", "opened", "read_meta", "seconds_between", "session_meta",
           "transaction", "write_session"]
