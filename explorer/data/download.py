"""Fetch the real data sets: the Stanford 3D FSE knees from mridata.org and fastMRI files from signed URLs.

Standard library only (``urllib.request``) plus tqdm for the progress bar. A file is downloaded into
``<name>.part`` (resumed with an HTTP ``Range: bytes=N-`` request when the server answers 206, restarted otherwise)
and renamed to ``<name>`` only after its size (Content-Length / Content-Range) and, when given, its checksum are
verified: a partial or corrupt file never carries the final name. Every failure (network, HTTP status, disk,
size or checksum) raises :class:`~explorer.errors.ExplorerError` with one line naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from explorer.errors import ExplorerError

#: mridata.org serves a data set's ISMRMRD ``.h5`` at ``<base><uuid>``. Pattern taken from
#: github.com/imyizhang/mridataPy, mridatapy/data/mridata.py (commit ddd1e312aaee343c7c19c540586e04de76cc0079):
#: ``urljoin('http://mridata.org/', 'download/%s' % uuid)``.
MRIDATA_BASE = "http://mridata.org/download/"

#: Environment variable overriding :data:`MRIDATA_BASE` (for a mirror, or a local server in tests).
MRIDATA_BASE_ENV = "EXPLORER_MRIDATA_BASE"

#: The 20 volumes of mridata.org's "Stanford Fullysampled 3D FSE Knees" project, copied from
#: github.com/imyizhang/mridataPy, mridatapy/data/mridata.py (commit ddd1e312aaee343c7c19c540586e04de76cc0079),
#: list ``UUIDS`` ("From http://mridata.org/list?project=Stanford%20Fullysampled%203D%20FSE%20Knees").
#: Cross-checked against github.com/ad12/meddlr, datasets/mridata_org_knee_dataset.txt (commit
#: 1d646586ecd95441bb9a84ed65cc8c1c5fcd2dd0), which lists the same UUIDs except 2588bfa8-....
STANFORD_3D_FSE_KNEES = (
    "52c2fd53-d233-4444-8bfd-7c454240d314",
    "b65b9167-a0d0-4295-9dd5-74641b3dd7e6",
    "8ad53ab7-07f9-4864-98d0-dc43145ff588",
    "cc70c22f-1ddc-4a53-9503-e33d613de321",
    "280cf3f9-3b7e-4738-84e0-f72b21aa5266",
    "38b9a8e8-2779-4979-8602-5e8e5f902863",
    "54c077b2-7d68-4e77-b729-16afbccae9ac",
    "ec00945c-ad90-46b7-8c38-a69e9e801074",
    "dd969854-ec56-4ccc-b7ac-ff4cd7735095",
    "efa383b6-9446-438a-9901-1fe951653dbd",
    "8eff1229-8074-41fa-8b5e-441b501f10e3",
    "7a9f028c-8667-48aa-8e08-0acf3320c8d4",
    "ee2efe48-1e9d-480e-9364-e53db01532d4",
    "9a740e7b-8fc3-46f9-9f70-1b7bedec37e4",
    "530a812a-4870-4d01-9db4-772c853d693c",
    "1b197efe-9865-43be-ac24-f237c380513e",
    "226e710b-725b-4bec-840e-bf47be2b8a44",
    "2588bfa8-0c97-478c-aa5a-487cc88a590d",
    "b7d435a1-2421-48d2-946c-d1b3372f7c60",
    "d089cbe0-48b3-4ae2-9475-53ca89ee90fe",
)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CHUNK = 1 << 16
_USER_AGENT = "mri-explorer-download/1"


@dataclass(frozen=True)
class Item:
    """One file to fetch: its URL, the file name it is saved under, and an optional md5/sha256 hex digest."""

    url: str
    name: str
    checksum: str = ""


def mridata_base(base: str = "") -> str:
    """The mridata.org download base: ``base``, else ``$EXPLORER_MRIDATA_BASE``, else :data:`MRIDATA_BASE`."""
    base = base or os.environ.get(MRIDATA_BASE_ENV, "") or MRIDATA_BASE
    return base.rstrip("/") + "/"


def mridata_items(uuids: list[str], base: str = "") -> list[Item]:
    """Items for mridata.org UUIDs (``all`` = the 20 Stanford 3D FSE knees), saved as ``<uuid>.h5``."""
    chosen: list[str] = []
    for uuid in uuids:
        for u in (STANFORD_3D_FSE_KNEES if uuid.strip().lower() == "all" else [uuid.strip().lower()]):
            if not _UUID.match(u):
                raise ExplorerError(f"not a mridata.org UUID: {uuid!r} (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx "
                                    "or 'all')")
            if u not in chosen:
                chosen.append(u)
    root = mridata_base(base)
    return [Item(url=root + u, name=f"{u}.h5") for u in chosen]


def url_items(urls: list[str]) -> list[Item]:
    """Items for pasted (e.g. fastMRI signed) URLs; the name is the URL path's last component without the query."""
    items = []
    for url in urls:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ExplorerError(f"not an http(s) URL: {url.strip()[:80]!r}")
        name = urllib.parse.unquote(PurePosixPath(parts.path).name)
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise ExplorerError(f"cannot take a file name from the URL path {parts.path!r}")
        items.append(Item(url=url.strip(), name=name))
    return items


def read_lines(path: str) -> list[str]:
    """The non-empty, non-comment (``#``) lines of a text file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ExplorerError(f"cannot read {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def read_checksums(path: str) -> dict[str, str]:
    """``<hex>  <name>`` lines (md5sum / sha256sum output) as {name: hex}."""
    sums = {}
    for line in read_lines(path):
        fields = line.split(None, 1)
        if len(fields) != 2 or not re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}", fields[0]):
            raise ExplorerError(f"{path}: expected '<md5 or sha256 hex>  <name>', got {line[:80]!r}")
        sums[fields[1].strip().lstrip("*")] = fields[0].lower()
    return sums


def with_checksums(items: list[Item], sums: dict[str, str]) -> list[Item]:
    """The items with their checksum from ``sums`` (keyed by file name) where one is listed."""
    return [Item(i.url, i.name, sums.get(i.name, i.checksum)) for i in items]


def _write_chunk(fh, data: bytes) -> None:
    """Write one chunk (a seam for tests that simulate a full disk)."""
    fh.write(data)


def _request(item: Item, method: str = "GET", offset: int = 0, timeout: float = 30.0):
    """Open ``item.url``; network and HTTP failures become one-line errors naming the file."""
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(item.url, headers=headers, method=method)
    host = urllib.parse.urlsplit(item.url).netloc
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http(s) only, checked by the callers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            raise
        raise ExplorerError(f"{item.name}: HTTP {exc.code} {exc.reason} from {host}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise ExplorerError(f"{item.name}: no answer from {host} within {timeout:g} s") from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise ExplorerError(f"{item.name}: cannot reach {host}: {text}") from None
    except (socket.timeout, TimeoutError):
        raise ExplorerError(f"{item.name}: no answer from {host} within {timeout:g} s") from None
    except (ConnectionError, OSError) as exc:
        raise ExplorerError(f"{item.name}: connection to {host} failed: {exc.strerror or exc}") from None


def remote_size(item: Item, timeout: float = 30.0) -> int | None:
    """The size a HEAD request reports, or None when the server does not answer one."""
    try:
        with _request(item, "HEAD", timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            return int(length) if length and length.isdigit() else None
    except (ExplorerError, urllib.error.HTTPError):
        return None


def _total(resp, offset: int) -> int | None:
    """The full file size from a 206's Content-Range or a 200's Content-Length."""
    if resp.status == 206:
        m = re.match(r"bytes\s+(\d+)-\d+/(\d+)", resp.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == offset:
            return int(m.group(2))
        return None
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _digest(path: Path, hexdigest: str) -> str:
    """The md5 (32 hex digits) or sha256 (64) of a file."""
    h = hashlib.md5() if len(hexdigest) == 32 else hashlib.sha256()  # noqa: S324 (integrity, not security)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _disk_error(path: Path, exc: OSError) -> ExplorerError:
    """One line naming the path for a failed file operation (ENOSPC, read-only, permission...)."""
    what = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied"}.get(exc.errno, exc.strerror or str(exc))
    return ExplorerError(f"cannot write {path}: {what}")


def out_dir(path: str) -> Path:
    """Create the output folder (and parents); a failure names it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _disk_error(p, exc) from None
    return p


def fetch(item: Item, folder: Path, timeout: float = 30.0, quiet: bool = False) -> str:
    """Download one item into ``folder``; returns ``"skipped"`` (final file present) or ``"downloaded"``.

    Resumes ``<name>.part`` with a Range request; renames it to ``<name>`` only after the size and checksum check.
    A checksum mismatch removes the ``.part``; an interrupted transfer keeps it for a later run.
    """
    from tqdm import tqdm  # noqa: PLC0415

    final = folder / item.name
    part = folder / (item.name + ".part")
    if final.is_file():
        return "skipped"
    offset = part.stat().st_size if part.is_file() else 0
    try:
        resp = _request(item, offset=offset, timeout=timeout)
    except urllib.error.HTTPError:  # 416: the .part is not a prefix the server can continue; start over
        offset = 0
        resp = _request(item, timeout=timeout)
    with resp:
        if offset and resp.status != 206:
            offset = 0  # the server ignored the Range: restart from the first byte
        total = _total(resp, offset)
        host = urllib.parse.urlsplit(item.url).netloc
        try:
            fh = open(part, "ab" if offset else "wb")
        except OSError as exc:
            raise _disk_error(part, exc) from None
        done = offset
        with fh, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=item.name,
                      file=sys.stderr, disable=quiet, leave=False) as bar:
            while True:
                try:
                    data = resp.read1(_CHUNK)  # what has arrived (read() would wait for a whole chunk)
                except (socket.timeout, TimeoutError):
                    raise ExplorerError(f"{item.name}: {host} stopped sending for {timeout:g} s at {done} bytes: "
                                        "run again to resume") from None
                except (ConnectionError, OSError) as exc:
                    raise ExplorerError(f"{item.name}: transfer from {host} broke at {done} bytes "
                                        f"({exc.strerror or type(exc).__name__}): run again to resume") from None
                if not data:
                    break
                try:
                    _write_chunk(fh, data)
                except OSError as exc:
                    raise _disk_error(part, exc) from None
                done += len(data)
                bar.update(len(data))
    if total is not None and done != total:
        raise ExplorerError(f"{item.name}: transfer ended at {done} of {total} bytes: run again to resume")
    if item.checksum:
        actual = _digest(part, item.checksum)
        if actual != item.checksum.lower():
            part.unlink(missing_ok=True)
            raise ExplorerError(f"{item.name}: checksum mismatch (expected {item.checksum.lower()}, got {actual}); "
                                "the partial file was removed")
    try:
        os.replace(part, final)
    except OSError as exc:
        raise _disk_error(final, exc) from None
    return "downloaded"


__all__ = ["Item", "MRIDATA_BASE", "MRIDATA_BASE_ENV", "STANFORD_3D_FSE_KNEES", "fetch", "mridata_base",
           "mridata_items", "out_dir", "read_checksums", "read_lines", "remote_size", "url_items", "with_checksums"]
