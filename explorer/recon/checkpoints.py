"""Checkpoint files of the trained networks: build, recognise, save, load safely, model cards.

Models are ``fastmri.models.Unet`` and ``fastmri.models.VarNet`` themselves, so official fastMRI
state dicts load unchanged. Accepted files (all read with ``torch.load(weights_only=True)``: a
file holding any pickled object other than tensors and plain containers is refused without
executing anything):

* an explorer checkpoint (written by :func:`save_checkpoint`, e.g. by ``python -m explorer train``)::

      {"format": "mri-explorer/checkpoint", "version": 1, "model": "unet" | "varnet",
       "state_dict": {name: tensor (float32, or float16 when saved with half=True)},
       "card": {"architecture": {"model": ..., "kwargs": {...}}, "data": {...}, "mask": {...},
                "steps": ..., "epochs": ..., "val_ssim": ..., "seconds": ..., "torch": ..., "date": ...}}

  with the card also written next to it as ``CKPT.json`` for humans;
* a plain state dict of ``Unet`` / ``VarNet`` (the published fastMRI files), optionally with a
  ``module.`` prefix;
* a Lightning-style dict ``{"state_dict": {"unet.xxx" | "varnet.xxx": tensor, "loss.w": ...}}``
  (fastMRI's ``UnetModule`` / ``VarNetModule``): the prefix is stripped, other entries dropped.

The architecture comes from the state dict's key set and tensor shapes (:func:`recognise`); a
card that claims another architecture is an error. Weights are always returned as float32.

Where checkpoints live (the shipped ones), resolving a ``checkpoint`` parameter and the cache of
loaded models are in :mod:`explorer.recon.model_store`. Nothing is ever downloaded.
"""

from __future__ import annotations

import datetime
import json
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from explorer.errors import ExplorerError

KINDS: tuple[str, ...] = ("unet", "varnet")
ANATOMIES: tuple[str, ...] = ("knee", "brain")
FORMAT = "mri-explorer/checkpoint"
VERSION = 1
LABELS = {"unet": "U-net", "varnet": "E2E VarNet"}

#: Constructor kwargs of ``fastmri.models.Unet`` (image in, image out) / ``VarNet`` with their defaults here.
DEFAULT_ARCH: dict[str, dict[str, Any]] = {
    "unet": {"in_chans": 1, "out_chans": 1, "chans": 32, "num_pool_layers": 4, "drop_prob": 0.0},
    "varnet": {"num_cascades": 12, "sens_chans": 8, "sens_pools": 4, "chans": 18, "pools": 4, "mask_center": True},
}
#: The published fastMRI architectures (U-net knee_sc / knee_mc / brain; VarNet knee / brain leaderboard).
OFFICIAL_ARCH: dict[str, dict[str, Any]] = {
    "unet": {"in_chans": 1, "out_chans": 1, "chans": 256, "num_pool_layers": 4, "drop_prob": 0.0},
    "varnet": {"num_cascades": 12, "sens_chans": 8, "sens_pools": 4, "chans": 18, "pools": 4, "mask_center": True},
}
#: kwargs that a state dict determines (the others, e.g. dropout, leave no trace in the weights).
RECOGNISED: dict[str, tuple[str, ...]] = {
    "unet": ("in_chans", "out_chans", "chans", "num_pool_layers"),
    "varnet": ("num_cascades", "sens_chans", "sens_pools", "chans", "pools"),
}

#: Bounds on architecture sizes, checked before a model is built (from a file or for training): a
#: 13 KB state dict naming ``cascades.99999`` must not build 100,000 cascades. The published models use
#: 12 cascades, 18/256 channels, 4 pools.
ARCH_LIMITS: dict[str, int] = {"in_chans": 64, "out_chans": 64, "chans": 1024, "num_pool_layers": 8, "num_cascades": 64,
                               "sens_chans": 1024, "sens_pools": 8, "pools": 8}
MAX_BOTTLENECK = 8192  # channels of the deepest U-net layer (published U-net: 256 x 2^4 = 4096)


class Checkpoint(NamedTuple):
    """A loaded checkpoint.

    Attributes:
        kind: ``"unet"`` or ``"varnet"``.
        arch: constructor kwargs of the model (see :data:`DEFAULT_ARCH`).
        state_dict: float32 tensors on the CPU, keys as ``fastmri.models`` names them.
        card: the model card (``{}`` for files without one, e.g. official fastMRI state dicts).
        path: the file.
    """

    kind: str
    arch: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    card: dict[str, Any]
    path: Path


# ----------------------------------------------------------------------------- models


def build_model(kind: str, arch: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised ``fastmri.models.Unet`` / ``VarNet``.

    Args:
        kind: ``"unet"`` or ``"varnet"``.
        arch: constructor kwargs; missing ones take :data:`DEFAULT_ARCH`'s values.

    Raises:
        ExplorerError: unknown kind or kwarg, non-positive sizes.
    """
    from fastmri.models import Unet, VarNet  # noqa: PLC0415

    kwargs = check_arch(kind, arch)
    return Unet(**kwargs) if kind == "unet" else VarNet(**kwargs)


def check_arch(kind: str, arch: dict[str, Any] | None) -> dict[str, Any]:
    """``arch`` over :data:`DEFAULT_ARCH`, validated.

    Raises:
        ExplorerError: unknown kind or kwarg, sizes that are not positive integers.
    """
    _check_kind(kind)
    kwargs = {**DEFAULT_ARCH[kind], **(arch or {})}
    unknown = set(kwargs) - set(DEFAULT_ARCH[kind])
    if unknown:
        raise ExplorerError(f"{kind} has no architecture parameter {', '.join(sorted(unknown))}")
    for key in RECOGNISED[kind]:
        value = kwargs[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ExplorerError(f"{kind} {key} must be a positive integer, got {value!r}")
        if value > ARCH_LIMITS[key]:
            raise ExplorerError(f"{kind} {key} = {value} is past the limit {ARCH_LIMITS[key]} (checked before building "
                                "the model; the published fastMRI models are well inside it)")
    for chans, pools in (("chans", "num_pool_layers"), ("chans", "pools"), ("sens_chans", "sens_pools")):
        if chans in kwargs and pools in kwargs and kwargs[chans] * 2 ** kwargs[pools] > MAX_BOTTLENECK:
            raise ExplorerError(f"{kind} {chans} x 2^{pools} = {kwargs[chans] * 2 ** kwargs[pools]} bottleneck channels "
                                f"is past the limit {MAX_BOTTLENECK}")
    return kwargs


def recognise(state_dict: dict[str, torch.Tensor]) -> tuple[str, dict[str, Any]]:
    """The model kind and architecture of a (prefix-free) state dict, from its keys and shapes.

    U-net: ``down_sample_layers.0.layers.0.weight`` is ``(chans, in_chans, 3, 3)``, the number of
    ``down_sample_layers`` is ``num_pool_layers``, ``up_conv.{pools-1}.1.weight`` is ``(out_chans, ...)``.
    VarNet: ``cascades.{i}`` count, ``cascades.0.model.unet`` chans/pools, ``sens_net.norm_unet.unet``
    chans/pools.

    Returns:
        ``(kind, kwargs)`` with every kwarg of :data:`DEFAULT_ARCH` (unrecognisable ones at their default).

    Raises:
        ExplorerError: neither a U-net nor a VarNet state dict.
    """
    keys = list(state_dict)
    if any(k.startswith(("cascades.", "sens_net.")) for k in keys):
        sens = "sens_net.norm_unet.unet."
        casc = "cascades.0.model.unet."
        cascade_ids = {int(m.group(1)) for k in keys if (m := re.match(r"cascades\.(\d+)\.", k))}
        try:
            arch = {
                "num_cascades": max(cascade_ids) + 1 if cascade_ids else 0,
                "sens_chans": _shape(state_dict, sens + "down_sample_layers.0.layers.0.weight")[0],
                "sens_pools": _count(keys, sens + "down_sample_layers."),
                "chans": _shape(state_dict, casc + "down_sample_layers.0.layers.0.weight")[0],
                "pools": _count(keys, casc + "down_sample_layers."),
            }
        except KeyError as exc:
            raise ExplorerError(f"incomplete VarNet state dict: no {exc.args[0]}") from None
        return "varnet", {**DEFAULT_ARCH["varnet"], **arch}
    if "down_sample_layers.0.layers.0.weight" in state_dict:
        first = _shape(state_dict, "down_sample_layers.0.layers.0.weight")
        pools = _count(keys, "down_sample_layers.")
        try:
            out_chans = _shape(state_dict, f"up_conv.{pools - 1}.1.weight")[0]
        except KeyError as exc:
            raise ExplorerError(f"incomplete U-net state dict: no {exc.args[0]}") from None
        arch = {"in_chans": first[1], "out_chans": out_chans, "chans": first[0], "num_pool_layers": pools}
        return "unet", {**DEFAULT_ARCH["unet"], **arch}
    sample = ", ".join(keys[:3]) or "no keys"
    raise ExplorerError(f"not a U-net or VarNet state dict (keys: {sample}...)")


def _shape(sd: dict, key: str) -> tuple[int, ...]:
    if key not in sd:
        raise KeyError(key)
    return tuple(int(s) for s in sd[key].shape)


def _count(keys: list[str], prefix: str) -> int:
    ids = {int(m.group(1)) for k in keys if k.startswith(prefix) and (m := re.match(r"(\d+)\.", k[len(prefix):]))}
    return max(ids) + 1 if ids else 0


# ----------------------------------------------------------------------------- files


def save_checkpoint(path: str | Path, state_dict: dict[str, torch.Tensor], kind: str, arch: dict[str, Any],
                    card: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Write an explorer checkpoint and its ``.json`` card (atomically: temp file then rename).

    Args:
        path: the ``.pt`` file; the card goes to ``path.with_suffix(".json")``.
        state_dict: the model's weights (any device; stored on the CPU).
        kind, arch: the model (arch as :func:`build_model` takes it).
        card: model-card fields (JSON-serialisable); ``architecture``, ``weights_dtype``, ``torch``
            and ``date`` are filled in.
        half: store floating tensors as float16 (half the size; loaded back as float32).

    Returns:
        the written path.
    """
    _check_kind(kind)
    path = Path(path)
    dtype = torch.float16 if half else torch.float32
    weights = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
               for k, v in state_dict.items()}
    full_card = {
        "architecture": {"model": kind, "kwargs": {**DEFAULT_ARCH[kind], **arch}},
        **(card or {}),
        "weights_dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "date": (card or {}).get("date") or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    full_card = json.loads(json.dumps(full_card))  # plain JSON types only (weights_only-loadable)
    payload = {"format": FORMAT, "version": VERSION, "model": kind, "state_dict": weights, "card": full_card}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save(payload, path)
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps(full_card, indent=2) + "\n")
        tmp.replace(path.with_suffix(".json"))
    except OSError as exc:
        raise ExplorerError(f"cannot write {path} ({exc.strerror or exc})") from None
    return path


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    torch.save(obj, tmp)
    tmp.replace(path)


def safe_torch_load(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with every failure as a one-line ExplorerError.

    A file that holds pickled objects other than tensors and plain containers is refused
    without executing anything (the weights-only unpickler never imports or calls them).

    Raises:
        ExplorerError: missing file; not a PyTorch file; not a plain state dict/checkpoint.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ExplorerError(f"no such {what} file: {path}")
    try:
        is_zip = zipfile.is_zipfile(path)
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError as exc:
        raise ExplorerError(f"cannot read {path} ({exc.strerror or exc})") from None
    refused = f"{path.name} is not a plain state dict/checkpoint; refused (it holds pickled objects other than tensors)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # zip (the torch format) or a bare pickle stream (legacy torch format): the weights-only
        # unpickler met an object it will not build; anything else is not a torch file at all
        if "Unsupported global" in str(exc) or (is_zip or head[:1] == b"\x80"):
            raise ExplorerError(refused) from None
        raise ExplorerError(f"{path.name} is not a PyTorch {what} file") from None
    except Exception as exc:  # noqa: BLE001 - any other failure (struct.error on junk bytes...): not a torch file
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ExplorerError(f"{path.name} is not a readable PyTorch {what} file ({reason})") from None


def load_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Load and recognise a checkpoint file (any accepted layout, see the module docstring).

    Args:
        path: the file.
        kind: the expected model kind; ``None`` accepts either.

    Raises:
        ExplorerError: missing / not torch / refused file, not a U-net or VarNet, wrong kind,
            a card that disagrees with the weights, sizes past :data:`ARCH_LIMITS`, NaN/Inf weights.
    """
    path = Path(path).expanduser()
    obj = safe_torch_load(path)
    card: dict[str, Any] = {}
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        state_dict, card = obj.get("state_dict"), dict(obj.get("card") or {})
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state_dict = obj["state_dict"]
    else:
        state_dict = obj
    if not isinstance(state_dict, dict) or not state_dict or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ExplorerError(f"{path.name} holds no state dict of tensors")
    state_dict = _strip_prefixes(state_dict)
    try:
        found_kind, arch = recognise(state_dict)
    except ExplorerError as exc:
        raise ExplorerError(f"{path.name}: {exc}") from None
    if kind is not None:
        _check_kind(kind)
        if found_kind != kind:
            raise ExplorerError(f"{path.name} holds a {found_kind} checkpoint, not a {kind} one")
    claimed = (card.get("architecture") or {}) if isinstance(card.get("architecture"), dict) else {}
    if claimed:
        if claimed.get("model") not in (None, found_kind):
            raise ExplorerError(f"{path.name}: the model card says {claimed.get('model')} but the weights are a {found_kind}")
        kwargs = claimed.get("kwargs") or {}
        for key in RECOGNISED[found_kind]:
            if key in kwargs and kwargs[key] != arch[key]:
                raise ExplorerError(f"{path.name}: the model card says {key}={kwargs[key]} but the weights have {key}={arch[key]}")
        arch = {**arch, **{k: v for k, v in kwargs.items() if k in DEFAULT_ARCH[found_kind] and k not in RECOGNISED[found_kind]}}
    try:
        check_arch(found_kind, arch)  # sizes bounded before anything is built
    except ExplorerError as exc:
        raise ExplorerError(f"{path.name}: {exc}") from None
    bad = next((k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise ExplorerError(f"{path.name}: weight {bad} holds NaN or Inf")
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    return Checkpoint(found_kind, arch, weights, card, path)


def _strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop Lightning / DataParallel wrappers: ``varnet.`` / ``unet.`` (other entries such as the
    SSIM loss buffer ``loss.w`` are dropped with them), ``module.``, ``model.``."""
    for prefix in ("varnet.", "unet."):
        if any(k.startswith(prefix) for k in sd) and not any(k.startswith(("cascades.", "down_sample_layers.")) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            break
    for prefix in ("module.", "model."):
        while sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def model_from_checkpoint(ckpt: Checkpoint) -> nn.Module:
    """A model (CPU, float32, train mode) with the checkpoint's weights loaded strictly.

    Raises:
        ExplorerError: the weights do not fit the recognised architecture (one line).
    """
    model = build_model(ckpt.kind, ckpt.arch)
    result = _load_strict(model, ckpt.state_dict)
    if result:
        raise ExplorerError(f"{ckpt.path.name}: weights do not fit {ckpt.kind}({_arch_text(ckpt.kind, ckpt.arch)}): {result}")
    return model


def _load_strict(model: nn.Module, sd: dict[str, torch.Tensor]) -> str:
    """Load ``sd`` into ``model``; returns ``""`` or a one-line reason."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [k for k in own if k in sd and tuple(own[k].shape) != tuple(sd[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                parts.append(f"{len(items)} {label} (e.g. {items[0]})")
        return "; ".join(parts)
    model.load_state_dict(sd, strict=True)
    return ""


def _arch_text(kind: str, arch: dict[str, Any]) -> str:
    return ", ".join(f"{k}={arch[k]}" for k in RECOGNISED[kind])


def random_checkpoint(kind: str, arch: dict[str, Any] | None, path: str | Path, seed: int = 0,
                      card: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Write a randomly initialised checkpoint (tests, benchmarks, an untrained baseline).

    Args:
        kind: ``"unet"`` or ``"varnet"``.
        arch: constructor kwargs (defaults from :data:`DEFAULT_ARCH`).
        path: output ``.pt`` (plus its ``.json`` card).
        seed: weight initialisation seed (the global RNG is saved and restored).
        card: extra card fields (e.g. ``{"data": {"anatomy": "knee"}}``).

    Returns:
        the written path.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(kind, arch)
    return save_checkpoint(path, model.state_dict(), kind, {**DEFAULT_ARCH[kind], **(arch or {})},
                           {"random_init": {"seed": seed}, **(card or {})}, half=half)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ExplorerError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
