"""Short names of sets of slices (a shift's shifted set, an experiment's own data), as roles and report headings
show them."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def set_name(sources: Sequence[str]) -> str:
    """The sources joined by `` + ``; three or more files of one folder as ``FOLDER (N volumes)``.

    Args:
        sources: data sources (paths or ``sample:<family>[,options]``), in spec order.
    """
    sources = [str(s) for s in sources]
    parents = {str(Path(s).parent) for s in sources}
    if len(sources) > 2 and len(parents) == 1 and not any(s.startswith("sample:") for s in sources):
        return f"{parents.pop()} ({len(sources)} volumes)"
    return " + ".join(sources)


__all__ = ["set_name"]
