"""Reader-study sessions in the app and their investigator codes: the session files of the app's reading folder
(:func:`explorer.ui.reading.folder`: ``reader-studies/NAME.reading`` under the output root), each opened on the Reader
studies page only with its **investigator code**, and the readers' personal links.

The code is made when a session is built in the app and shown once; only its sha256 is kept, beside the session
(``NAME.reading.investigator``). A session built with the command line and copied into the folder has none until
someone sets one (:func:`set_investigator_code`).
"""

from __future__ import annotations

import hmac
import json
import os
import urllib.parse
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.readers.codes import code_hash, new_code
from explorer.readers.store import SUFFIX, now
from explorer.ui import paths, reading

KEY_SUFFIX = ".investigator"
UNLOCKED = "readers.unlocked"  # {session name} opened with the investigator code in this browser session


def session_names() -> list[str]:
    """The sessions in the app's reading folder (names, sorted)."""
    base = reading.folder()
    if not base.is_dir():
        return []
    names = [p.name[:-len(SUFFIX)] for p in base.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
    return sorted(n for n in names if reading.NAME.fullmatch(n))


def new_session_file(name: str) -> Path:
    """Where a new session called ``name`` is written (its folder created).

    Raises:
        ExplorerError: a name that is not 1-64 letters, digits, ``.``, ``_`` or ``-`` (first a letter or digit);
            outside the output root.
    """
    text = str(name or "").strip()
    if not reading.NAME.fullmatch(text):
        raise ExplorerError("a session name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a "
                            f"digit; got {text!r}")
    path = paths.confine_output(str(reading.folder() / f"{text}{SUFFIX}"), "the session file")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def key_file(path: Path) -> Path:
    """The file beside a session that holds its investigator code's hash."""
    return path.with_name(path.name + KEY_SUFFIX)


def has_investigator_code(path: Path) -> bool:
    return key_file(path).is_file()


def set_investigator_code(path: Path) -> str:
    """Give a session that has none an investigator code; returns it (shown once: only its hash is kept).

    Raises:
        ExplorerError: the session has one already (it is never replaced here).
    """
    code = new_code()
    try:
        fd = os.open(key_file(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ExplorerError("this session has an investigator code already") from None
    with os.fdopen(fd, "w") as f:
        json.dump({"sha256": code_hash(code), "created": now()}, f)
    return code


def check_investigator_code(path: Path, code: str) -> bool:
    """Whether ``code`` is the session's investigator code."""
    try:
        stored = json.loads(key_file(path).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(str(code or "").strip()) and hmac.compare_digest(stored, code_hash(code))


def reading_link(name: str, code: str, url: str | None = None) -> str:
    """A reader's personal link: the Reading page of this server (the address the investigator opened the app
    with) with the session and the code; a path from the server's root when the address is unknown."""
    query = urllib.parse.urlencode({"session": name, "code": code})
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme and parts.netloc:
        base = parts.path.rsplit("/", 1)[0] if parts.path.count("/") else ""
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"{base}/reading", query, ""))
    return f"/reading?{query}"



__all__ = ["KEY_SUFFIX", "UNLOCKED", "check_investigator_code", "has_investigator_code", "key_file",
           "new_session_file", "reading_link", "session_names", "set_investigator_code"]
