"""A selection of slices: one ``data`` entry of a study spec (a source and which of its slices), parsed and expanded.

A source is an embedded sample (``sample:<family>[,options]``), a volume file, or a directory (every ``.h5`` volume
under it). Slices are ``None`` (the middle slice of each volume), ``"all"``, or a tuple of indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.errors import ExplorerError


@dataclass(frozen=True)
class DataItem:
    """One entry of ``data``: a source and which slices (``None``: the middle one; ``"all"``; or indices)."""

    source: str
    slices: tuple[int, ...] | str | None = None

    def resolve(self, base: str | Path = ".") -> str:
        """The source as workers open it: samples as they are, relative paths under ``base``."""
        if self.source.startswith("sample:") or Path(self.source).is_absolute():
            return self.source
        return str((Path(base) / self.source).expanduser())


def parse_item(item: Any, where: str) -> DataItem:
    """A spec's data entry (a source string, or ``{source, slices}``) as a :class:`DataItem`.

    Raises:
        ExplorerError: one line naming ``where`` and what is wrong.
    """
    if isinstance(item, str):
        item = {"source": item}
    if not isinstance(item, dict) or not isinstance(item.get("source"), str) or not item["source"].strip():
        raise ExplorerError(f"{where} must be a source (path or sample:<family>) or a mapping with 'source'")
    extra = set(item) - {"source", "slices"}
    if extra:
        raise ExplorerError(f"{where}: unknown key {sorted(extra)[0]!r}; use source, slices")
    slices = item.get("slices")
    if isinstance(slices, str):
        if slices not in ("all", "middle"):
            raise ExplorerError(f"{where}.slices must be 'all', 'middle' or a list of slice indices, got {slices!r}")
        slices = None if slices == "middle" else "all"
    elif slices is not None:
        if not isinstance(slices, list) or not slices or not all(isinstance(s, int) and not isinstance(s, bool)
                                                                 and s >= 0 for s in slices):
            raise ExplorerError(f"{where}.slices must be 'all', 'middle' or a list of slice indices >= 0")
        slices = tuple(slices)
    return DataItem(item["source"].strip(), slices)


def parse_items(value: Any, where: str) -> tuple[DataItem, ...]:
    """A non-empty list of data entries (see :func:`parse_item`).

    Raises:
        ExplorerError: not a non-empty list, or a bad entry.
    """
    if not isinstance(value, list) or not value:
        raise ExplorerError(f"{where} must be a non-empty list")
    return tuple(parse_item(item, f"{where}[{i}]") for i, item in enumerate(value))


def volumes(item: DataItem, base: str | Path = ".") -> list[tuple[str, list[int], str | None]]:
    """``[(source, slices, defaults key)]`` of a data entry (a directory: every volume under it).

    Raises:
        ExplorerError: a missing path, a directory without volumes, a slice out of range.
    """
    from explorer.data.fastmri import list_volumes  # noqa: PLC0415
    from explorer.data.sources import open_volume  # noqa: PLC0415

    source = item.resolve(base)
    if source.startswith("sample:"):
        sources = [source]
    else:
        path = Path(source)
        if not path.exists():
            raise ExplorerError(f"data {item.source}: no such file or directory ({path})")
        sources = [str(p) for p in list_volumes(path)] if path.is_dir() else [str(path)]
        if not sources:
            raise ExplorerError(f"data {item.source}: no .h5 volumes under {path}")
    out = []
    for src in sources:
        volume = open_volume(src)
        first = volume.read_slice(0).meta
        n = volume.num_slices
        if item.slices is None:
            slices = [n // 2]
        elif item.slices == "all":
            slices = list(range(n))
        else:
            bad = [s for s in item.slices if s >= n]
            if bad:
                raise ExplorerError(f"data {item.source}: slice {bad[0]} out of range (the volume has {n} slices)")
            slices = list(item.slices)
        out.append((src, slices, first.defaults_key))
    return out


__all__ = ["DataItem", "parse_item", "parse_items", "volumes"]
