"""A session's readers: adding one (a fresh personal code and their seeded order of the items) and finding a reader
by their code. The code itself is shown once, by :func:`add_reader`, and never stored: the session file
(:mod:`explorer.readers.store`) keeps its sha256 only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.readers.design import Item, reader_order
from explorer.readers.store import KINDS, now, opened, read_meta, transaction

_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: a code is read aloud or typed from paper


def normalise_code(code: str) -> str:
    """A personal code as typed (any case, spaces and dashes ignored) in its canonical form."""
    return "".join(ch for ch in str(code).lower() if ch.isalnum())


def code_hash(code: str) -> str:
    """The sha256 (hex) of a code's canonical form: what the session stores instead of the code."""
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
        ExplorerError: a name already taken or empty, an unknown kind; see :func:`~explorer.readers.store.connect`.
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


__all__ = ["NewReader", "add_reader", "code_hash", "new_code", "normalise_code", "reader_for_code"]
