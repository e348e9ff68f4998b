"""Adding to a shipped checkpoint's model card after training: where its data came from (repositories, commits,
split, terms, the commands that built the data and trained it) and its test results.

The card lives twice, inside the ``.pt`` (``payload["card"]``) and beside it as ``CKPT.json``; :func:`annotate`
merges one JSON object into both, writing the checkpoint atomically (temp file, then rename). The weights are not
touched: the ``state_dict`` tensors are written back exactly as read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from explorer.errors import ExplorerError
from explorer.recon.checkpoints import FORMAT, _atomic_torch_save

#: Card fields written by training that an annotation may not replace.
PROTECTED = ("architecture", "weights_dtype", "torch", "date", "steps", "val_ssim", "val_history", "seconds", "mask",
             "data", "seed")


def merged(card: dict[str, Any], note: dict[str, Any]) -> dict[str, Any]:
    """``card`` with ``note``'s keys added (a nested dict merged key by key).

    Raises:
        ExplorerError: ``note`` is not an object, or names a field training wrote (:data:`PROTECTED`).
    """
    if not isinstance(note, dict) or not note:
        raise ExplorerError("the card note must be a non-empty JSON object")
    clash = sorted(k for k in note if k in PROTECTED)
    if clash:
        raise ExplorerError(f"the card note may not replace what training recorded: {', '.join(clash)}")
    out = dict(card)
    for key, value in note.items():
        out[key] = {**out[key], **value} if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return json.loads(json.dumps(out))  # plain JSON types only (weights_only-loadable)


def annotate(path: str | Path, note: dict[str, Any]) -> dict[str, Any]:
    """Merge ``note`` into the card of the explorer checkpoint ``path`` and its ``.json``; returns the new card.

    Raises:
        ExplorerError: missing or unreadable file, not an explorer checkpoint, a bad note, an unwritable folder.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ExplorerError(f"no such checkpoint file: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or refused file is one line
        raise ExplorerError(f"{path.name}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("card"), dict):
        raise ExplorerError(f"{path.name}: not an explorer checkpoint with a model card (written by `train`)")
    payload["card"] = merged(payload["card"], note)
    try:
        _atomic_torch_save(payload, path)
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps(payload["card"], indent=2) + "\n")
        tmp.replace(path.with_suffix(".json"))
    except OSError as exc:
        raise ExplorerError(f"cannot write {path} ({exc.strerror or exc})") from None
    return payload["card"]


def read_note(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``.

    Raises:
        ExplorerError: missing, unreadable or not JSON.
    """
    path = Path(path).expanduser()
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExplorerError(f"no such card note file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExplorerError(f"{path.name}: not a readable JSON file ({type(exc).__name__})") from None


__all__ = ["PROTECTED", "annotate", "merged", "read_note"]
