"""Where the trained networks' checkpoints live and the models loaded from them.

* Shipped demo checkpoints: ``assets/checkpoints/<kind>_{knee,brain}.pt`` (override the
  directory with ``EXPLORER_CHECKPOINT_DIR``); :func:`train_command` gives the command that
  trains each.
* :func:`resolve` turns a method's ``checkpoint`` parameter (``auto`` / ``knee`` / ``brain`` / a
  path) into a file; :func:`load_model` returns a cached, shared model for it.
* Labels and catalogue rows for the app and the CLI (:func:`describe_checkpoint`, :func:`summary`,
  :func:`shipped_catalog`).

File formats and safe loading are in :mod:`explorer.recon.checkpoints`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer import resources
from explorer.errors import ExplorerError
from explorer.recon.checkpoints import ANATOMIES, _arch_text, load_checkpoint, model_from_checkpoint
from explorer.recon.networks import get_network, network_kinds


def train_command(kind: str, anatomy: str) -> str:
    """The command that trains the shipped checkpoint of ``kind`` on ``anatomy`` (its :class:`~explorer.recon.networks.
    Shipped` flags; README "Trained networks" lists the same commands)."""
    shipped = get_network(kind).shipped
    return (f"python -m explorer train --model {kind} --data data/train/{anatomy} --val data/val/{anatomy} "
            f"--challenge multicoil --mask random --acceleration 4 --center-fraction 0.08 {shipped.arch} "
            f"{shipped.schedule} --val-slices 5 --save-every 50 --seed 0 --half {shipped.extra.get(anatomy, '')}"
            f"--state runs/{kind}_{anatomy}.state.pt --out assets/checkpoints/{kind}_{anatomy}.pt")



# ----------------------------------------------------------------------------- resolution and cache


def checkpoint_dir() -> Path:
    """Directory of the shipped checkpoints: ``$EXPLORER_CHECKPOINT_DIR`` or ``assets/checkpoints``
    (:func:`explorer.resources.checkpoint_dir`)."""
    return resources.checkpoint_dir()


def shipped_path(kind: str, anatomy: str) -> Path:
    """``<checkpoint_dir>/<kind>_<anatomy>.pt``."""
    return checkpoint_dir() / f"{kind}_{anatomy}.pt"


def resolve(spec: str | Path, kind: str) -> Path:
    """The file a ``checkpoint`` parameter names.

    Args:
        spec: ``"auto"`` (the knee checkpoint; the registry replaces it with the data's anatomy),
            ``"knee"`` / ``"brain"`` (the shipped checkpoint), or a file path.
        kind: a network kind (:func:`explorer.recon.networks.kind_names`).

    Raises:
        ExplorerError: a shipped checkpoint is missing (the message gives the command that trains
            it); a named file is missing.
    """
    network = get_network(kind)
    text = str(spec).strip()
    name = "knee" if text in ("", "auto") else text
    if name in ANATOMIES:
        path = shipped_path(kind, name)
        if not path.is_file():
            raise ExplorerError(f"the shipped {network.label} {name} checkpoint {path} is missing; "
                                f"train it with: {train_command(kind, name)}")
        return path
    path = Path(text).expanduser()
    if not path.is_file():
        raise ExplorerError(f"no such {kind} checkpoint file: {path}")
    return path


def load_model(path_or_name: str | Path, kind: str, device: torch.device | str | None = None) -> nn.Module:
    """The model of a checkpoint, cached: eval mode, parameters with ``requires_grad=False``.

    The cache key is (resolved path, mtime, size, kind, device), so a rewritten file is reloaded.
    The returned module is SHARED: never modify it (train, ``.to()``, ``requires_grad_``); deep-copy
    it first (``copy.deepcopy``) to adapt it (test-time training). Gradients w.r.t. the input still flow.

    Args:
        path_or_name: a file, or ``"auto"`` / ``"knee"`` / ``"brain"`` (see :func:`resolve`).
        kind: a network kind (:func:`explorer.recon.networks.kind_names`).
        device: where to put it (default CPU).
    """
    path = resolve(path_or_name, kind).resolve()
    stat = path.stat()
    return _cached_model(str(path), stat.st_mtime_ns, stat.st_size, kind, str(device_key(device)))


def device_key(device: torch.device | str | None) -> torch.device:
    """``device`` with an explicit index for CUDA (``cuda`` -> ``cuda:0``), CPU by default: one cache entry per GPU."""
    device = torch.device(device or "cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


DEFAULT_MODEL_CACHE_MB = 4096


def model_cache_limit() -> int:
    """Bytes the shared model cache may hold: ``$EXPLORER_MODEL_CACHE_MB`` (default 4096 MB).

    Bounded by bytes, not by count: one published fastMRI U-net alone is about 2 GB.

    Raises:
        ExplorerError: the variable is not a non-negative number.
    """
    text = os.environ.get("EXPLORER_MODEL_CACHE_MB", "").strip() or str(DEFAULT_MODEL_CACHE_MB)
    try:
        mb = float(text)
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        raise ExplorerError(f"EXPLORER_MODEL_CACHE_MB={text!r}: give a number of megabytes >= 0")
    return int(mb * 2**20)


def module_bytes(model: nn.Module) -> int:
    """Bytes held by ``model``'s parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


class ModelCache:
    """Least-recently-used models, evicted when their total bytes pass :func:`model_cache_limit`.

    A model larger than the whole limit is returned without being kept. Thread-safe; a model being
    loaded by one thread is loaded once (others wait for it).
    """

    def __init__(self):
        self._models: OrderedDict[tuple, tuple[nn.Module, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    @property
    def bytes(self) -> int:
        """Bytes held now."""
        with self._lock:
            return sum(size for _, size in self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def get(self, key: tuple, load) -> nn.Module:
        """The model under ``key``, calling ``load()`` on a miss."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key][0]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key][0]
            try:
                model = load()
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            size, limit = module_bytes(model), model_cache_limit()
            with self._lock:
                if size <= limit:
                    self._models[key] = (model, size)
                    total = sum(s for _, s in self._models.values())
                    while total > limit:
                        _, (_, dropped) = self._models.popitem(last=False)
                        total -= dropped
            return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


MODELS = ModelCache()


def _cached_model(path: str, mtime_ns: int, size: int, kind: str, device: str) -> nn.Module:
    def build() -> nn.Module:
        model = model_from_checkpoint(load_checkpoint(path, kind))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model.to(device)

    return MODELS.get((path, mtime_ns, size, kind, device), build)


def clear_cache() -> None:
    """Forget the cached models and cards."""
    MODELS.clear()
    _cached_info.cache_clear()


def checkpoint_info(path_or_name: str | Path, kind: str) -> dict[str, Any]:
    """``{"path", "kind", "arch", "card"}`` of a checkpoint (cached; reads the ``.json`` sidecar when present)."""
    path = resolve(path_or_name, kind).resolve()
    stat = path.stat()
    return _cached_info(str(path), stat.st_mtime_ns, kind)


@functools.lru_cache(maxsize=32)
def _cached_info(path: str, mtime_ns: int, kind: str) -> dict[str, Any]:
    ckpt = load_checkpoint(path, kind)
    return {"path": path, "kind": ckpt.kind, "arch": ckpt.arch, "card": ckpt.card}


def checkpoint_anatomy(kind: str, path_or_name: str | Path) -> str | None:
    """Anatomy a checkpoint was trained on: ``"knee"`` / ``"brain"`` / ``None`` (unknown).

    Shipped names answer directly; files answer from their model card (``data.anatomy``).
    """
    text = str(path_or_name).strip()
    if text in ("", "auto"):
        return "knee"
    if text in ANATOMIES:
        return text
    card = checkpoint_info(text, kind)["card"]
    anatomy = (card.get("data") or {}).get("anatomy") if isinstance(card.get("data"), dict) else None
    return anatomy if anatomy in ANATOMIES else None


def describe_checkpoint(kind: str, path_or_name: str | Path, data_anatomy: str | None) -> str:
    """One line for the UI, e.g. ``"knee checkpoint · on brain data: anatomy shift"``.

    Args:
        kind: model kind; path_or_name: the ``checkpoint`` parameter; data_anatomy: the slice's anatomy.
    """
    trained_on = checkpoint_anatomy(kind, path_or_name)
    text = str(path_or_name).strip()
    if text in ("", "auto", *ANATOMIES):
        what = f"{trained_on} checkpoint"
    else:
        card = checkpoint_info(text, kind)["card"]
        words = ["random-weights"] if card.get("random_init") else ([] if card else ["external"])
        words += [trained_on] if trained_on else []
        what = " ".join([*words, f"checkpoint {Path(text).name}"]) + ("" if trained_on else " (anatomy unknown)")
    if data_anatomy is None or trained_on is None:
        return what
    if trained_on == data_anatomy:
        return f"{what} · on {data_anatomy} data"
    return f"{what} · on {data_anatomy} data: anatomy shift"


# ----------------------------------------------------------------------------- catalogue (Models page, CLI)


def summary(path_or_name: str | Path, kind: str | None = None) -> dict[str, Any]:
    """One catalogue row for a checkpoint file (its card, or what its weights reveal).

    Args:
        path_or_name: a file, or ``"knee"`` / ``"brain"`` with ``kind`` (a shipped checkpoint).
        kind: expected model kind (``None``: recognised from the file).

    Returns:
        ``{"model", "kind", "trained on", "architecture", "weights (M)", "size (MB)", "steps",
        "val SSIM", "file"}`` (``None`` where unknown).

    Raises:
        ExplorerError: missing, unreadable, refused (pickled objects) or mismatched file.
    """
    path = resolve(path_or_name, kind) if kind is not None else Path(str(path_or_name)).expanduser()
    ckpt = load_checkpoint(path, kind)
    card = ckpt.card or {}
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    anatomy = data.get("anatomy")
    mask = card.get("mask") if isinstance(card.get("mask"), dict) else {}
    masks = f", {mask['type']} {float(mask['acceleration']):g}x" if mask.get("type") and mask.get("acceleration") else ""
    source = f", {data['source']}" if data.get("source") else ""
    origin = ("random weights" if card.get("random_init") else
              f"{anatomy or 'unknown anatomy'} ({data.get('challenge', '?')}, {data.get('slices', '?')} slices{source}"
              f"{masks})" if card else "external state dict (no model card)")
    return {
        "model": get_network(ckpt.kind).label,
        "kind": ckpt.kind,
        "trained on": origin,
        "architecture": _arch_text(ckpt.kind, ckpt.arch),
        "weights (M)": round(sum(v.numel() for v in ckpt.state_dict.values()) / 1e6, 2),
        "size (MB)": round(path.stat().st_size / 2**20, 1),
        "steps": card.get("steps"),
        "val SSIM": round(float(card["val_ssim"]), 4) if isinstance(card.get("val_ssim"), (int, float)) else None,
        "file": str(path),
    }


def shipped_catalog() -> list[dict[str, Any]]:
    """Rows for every shipped checkpoint slot (``kind`` x ``anatomy``); a missing one carries its train command.

    Each row is :func:`summary` (plus ``"name"``) or ``{"name", "model", "kind", "missing": command}``.
    """
    rows = []
    for network in network_kinds():
        kind = network.name
        for anatomy in ANATOMIES:
            name = f"{kind}_{anatomy}"
            if not shipped_path(kind, anatomy).is_file():
                rows.append({"name": name, "model": network.label, "kind": kind, "missing": train_command(kind, anatomy)})
                continue
            rows.append({"name": name, **summary(anatomy, kind)})
    return rows


# ----------------------------------------------------------------------------- distribution-shift notes


def _variant_text(variant: dict) -> str:
    fov = "" if variant.get("fov", 1.0) >= 1 else f", {variant['fov']:g}x field of view"
    return f"{variant.get('family')} {variant.get('contrast')} ({variant.get('dataset')}{fov})"


def shift_notes(kind: str, path_or_name: str | Path, problem) -> list[str]:
    """What differs between a checkpoint's training data (its model card) and a problem: anatomy, synthetic
    embedded sample vs a real scan, sample variant (contrast, dataset, field of view), mask type, acceleration.

    Args:
        kind: model kind; path_or_name: the ``checkpoint`` parameter; problem: the
            :class:`~explorer.engine.problem.Problem` reconstructed.

    Returns:
        ``[]`` when nothing is known to differ, else one note naming each difference and pointing to
        test-time training.
    """
    from explorer.data.sample_sources import SYNTHETIC, sample_variant  # noqa: PLC0415

    text = str(path_or_name).strip()
    try:
        card = checkpoint_info(text, kind)["card"]
    except ExplorerError:
        return []
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    shipped = text in ("", "auto", *ANATOMIES)
    meta = problem.slice.meta
    differences = []
    trained_anatomy = checkpoint_anatomy(kind, text)
    if trained_anatomy and meta.anatomy and trained_anatomy != meta.anatomy:
        differences.append(f"trained on {trained_anatomy}, this is {meta.anatomy}")
    source = data.get("source") or (SYNTHETIC if shipped else None)
    here = sample_variant(meta.attrs)
    if source == SYNTHETIC and here is None:
        differences.append("trained on the synthetic embedded sample, this is a real scan")
    elif source == SYNTHETIC and data.get("samples") and here not in data["samples"] and (
            trained_anatomy is None or here["family"] == trained_anatomy):
        seen = ", ".join(_variant_text(v) for v in data["samples"])
        differences.append(f"trained on {seen}, this is {_variant_text(here)}")
    mask = card.get("mask") if isinstance(card.get("mask"), dict) else {}
    config = problem.sampled.config
    if mask.get("type") and config is not None and config.type != mask["type"]:
        differences.append(f"trained with {mask['type']} masks, this is {config.type}")
    if mask.get("acceleration"):
        here_r = float(config.acceleration) if config is not None else float(problem.sampled.acceleration)
        if abs(here_r - float(mask["acceleration"])) > 0.25 * float(mask["acceleration"]):
            differences.append(f"trained at {float(mask['acceleration']):g}x, this is {here_r:g}x")
    if not differences:
        return []
    return [f"distribution shift ({'; '.join(differences)}): expect less than on its training data; test-time "
            "training adapts it to this slice (Test-time training page, python -m explorer ttt)"]
