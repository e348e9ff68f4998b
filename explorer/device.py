"""Compute device selection: CUDA when present, CPU otherwise.

``EXPLORER_DEVICE=cpu|cuda`` overrides the automatic choice.
"""

from __future__ import annotations

import os

import torch

from explorer.errors import ExplorerError


def get_device() -> torch.device:
    """The torch device the explorer computes on.

    Returns:
        ``cuda`` when available (or requested with ``EXPLORER_DEVICE=cuda``), else ``cpu``.

    Raises:
        ExplorerError: ``EXPLORER_DEVICE`` names an unknown or unavailable device.
    """
    wanted = os.environ.get("EXPLORER_DEVICE", "").strip().lower()
    if wanted in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted not in ("cpu", "cuda"):
        raise ExplorerError(f"EXPLORER_DEVICE must be 'cpu' or 'cuda', got {wanted!r}")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ExplorerError("EXPLORER_DEVICE=cuda but no CUDA device is available")
    return torch.device(wanted)


def describe_device(device: torch.device | None = None) -> str:
    """Human-readable name of ``device`` (e.g. ``cuda (NVIDIA H100)`` or ``cpu``)."""
    device = device or get_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"
