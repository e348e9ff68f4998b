"""One writer per study folder: a lock file ``.study.lock`` holding the writer's pid, host and start time.

The lock is created atomically (written to a temporary file, then hard-linked to its name, which fails when it
exists), so a second study on the same folder gets a one-line error naming the holder. A lock left by a process
that died on this host is taken over; a lock from another host is never taken over (its process cannot be
checked from here): the error says to remove the file once that study is known to have ended.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path

from explorer.errors import ExplorerError

LOCK = ".study.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True


def _holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


class StudyLock:
    """Context manager: hold ``directory/.study.lock`` while a study writes ``directory``.

    Raises (on entry):
        ExplorerError: another live study holds the folder (its pid, host and start), or the lock cannot be made.
    """

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / LOCK
        self.mine = {"pid": os.getpid(), "host": socket.gethostname(),
                     "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        self.held = False

    def __enter__(self) -> "StudyLock":
        for _ in range(2):
            if self._create():
                self.held = True
                return self
            holder = _holder(self.path)
            if holder is None:
                raise ExplorerError(f"{self.path.parent} has an unreadable study lock {LOCK}; remove it if no study "
                                    "is writing this folder")
            same_host = holder.get("host") == self.mine["host"]
            pid = holder.get("pid")
            if same_host and isinstance(pid, int) and not _alive(pid):
                self.path.unlink(missing_ok=True)  # its writer died: take it over
                continue
            raise ExplorerError(f"{self.path.parent} is being written by another study (pid {pid} on "
                                f"{holder.get('host')} since {holder.get('since')}); wait for it to end or choose "
                                f"another --out{'' if same_host else f' (remove {LOCK} once that study has ended)'}")
        raise ExplorerError(f"cannot lock {self.path.parent} for this study")

    def _create(self) -> bool:
        tmp = self.path.with_name(f"{LOCK}.{self.mine['pid']}.tmp")
        try:
            tmp.write_text(json.dumps(self.mine), encoding="utf-8")
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                return False
            return True
        except OSError as exc:
            raise ExplorerError(f"cannot lock {self.path.parent} ({exc.strerror or exc})") from None
        finally:
            tmp.unlink(missing_ok=True)

    def __exit__(self, *exc) -> None:
        if self.held and _holder(self.path) == self.mine:
            self.path.unlink(missing_ok=True)
        self.held = False


__all__ = ["LOCK", "StudyLock"]
