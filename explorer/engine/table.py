"""Results tables: :class:`~explorer.engine.tasks.Record` rows in Parquet (pyarrow), with CSV export.

A table file is rewritten atomically (a temporary file, then a rename) each time rows are added, so
an interrupted run leaves the previous complete table, never a partial row.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from explorer.engine.tasks import Record
from explorer.errors import ExplorerError

_TYPES = {"str": pa.string(), "str | None": pa.string(), "int": pa.int64(), "float": pa.float64(),
          "float | None": pa.float64(), "bool": pa.bool_()}
SCHEMA = pa.schema([(f.name, _TYPES[str(f.type)]) for f in dataclasses.fields(Record)])


def to_table(records: Iterable[Record]) -> pa.Table:
    """A pyarrow table with one row per record (columns: :class:`Record`'s fields)."""
    rows = [r.row() for r in records]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def read_table(path: str | Path) -> pa.Table:
    """Read a results table (an empty table if the file does not exist).

    Raises:
        ExplorerError: the file is not a results table of this layout.
    """
    path = Path(path)
    if not path.exists():
        return SCHEMA.empty_table()
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ExplorerError(f"{path} is not a readable Parquet results table ({str(exc).splitlines()[0]})") from None
    for f in dataclasses.fields(Record):  # columns added since (with defaults): filled in
        if f.name not in table.column_names and f.default is not dataclasses.MISSING:
            table = table.append_column(f.name, pa.array([f.default] * table.num_rows, type=SCHEMA.field(f.name).type))
    missing = set(SCHEMA.names) - set(table.column_names)
    if missing:
        raise ExplorerError(f"{path} is not a results table of this explorer (missing columns: {', '.join(sorted(missing))})")
    return table.select(SCHEMA.names).cast(SCHEMA)


def read_records(path: str | Path) -> list[Record]:
    """The records of a table file."""
    return [Record(**row) for row in read_table(path).to_pylist()]


def write_records(path: str | Path, records: Iterable[Record]) -> None:
    """Write ``records`` as the table at ``path`` (atomically: temporary file + rename)."""
    path = Path(path)
    table = to_table(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_csv(path: str | Path, records: Iterable[Record]) -> None:
    """Export records as CSV (one header line, one line per record)."""
    pa_csv.write_csv(to_table(records), str(path))


def done_keys(records: Iterable[Record]) -> set[str]:
    """Task keys of the records that finished without error (a resumed run skips them)."""
    return {r.task_key for r in records if r.error is None}


def output_table(out: str | None, resume: bool) -> Path | None:
    """The results table of ``--out`` (checked before any work): an existing one only with ``--resume``."""
    if out is None:
        if resume:
            raise ExplorerError("--resume continues an --out table: give --out")
        return None
    if not out.strip():
        raise ExplorerError("--out is empty")
    path = Path(out).expanduser()
    if path.suffix.lower() != ".parquet":
        raise ExplorerError(f"--out must name a .parquet table, got {path.name}")
    if path.is_dir():
        raise ExplorerError(f"--out {path} is a directory")
    if path.exists() and not resume:
        raise ExplorerError(f"{path} exists: add --resume to continue it, or choose another --out")
    if not path.parent.exists():
        raise ExplorerError(f"the folder of --out does not exist: {path.parent}")
    if resume and path.exists():
        read_table(path)  # a clear error now if it is not a results table
    return path
