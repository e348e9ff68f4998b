"""Checkpoint files of the trained networks: build, recognise, save, load safely, model cards.

Models are whatever each registered network kind builds (:mod:`explorer.recon.networks`; the built-in ones are
``fastmri.models.Unet`` and ``fastmri.models.VarNet`` themselves, so official fastMRI state dicts load unchanged). Accepted files (all read with ``torch.load(weights_only=True)``: a
file holding any pickled object other than tensors and plain containers is refused without
executing anything):

* an explorer checkpoint (written by :func:`save_checkpoint`, e.g. by ``python -m explorer train``)::

      {"format": "mri-explorer/checkpoint", "version": 1, "model": <network kind, e.g. "unet" | "varnet">,
       "state_dict": {name: tensor (float32, or float16 when saved with half=True)},
       "card": {"architecture": {"model": ..., "kwargs": {...}}, "data": {...}, "mask": {...},
                "steps": ..., "epochs": ..., "val_ssim": ..., "seconds": ..., "torch": ..., "date": ...}}

  with the card also written next to it as ``CKPT.json`` for humans;
* a plain state dict of a kind's network (e.g. the published fastMRI files), optionally with a
  ``module.`` prefix;
* a Lightning-style dict ``{"state_dict": {"<kind's prefix>xxx": tensor, "loss.w": ...}}`` (fastMRI's
  ``UnetModule`` / ``VarNetModule``: ``unet.`` / ``varnet.``): the prefix is stripped, other entries dropped.

The kind and architecture come from the state dict's key set and tensor shapes (:func:`recognise`); a
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
from explorer.recon.networks import get_network, network_kinds

ANATOMIES: tuple[str, ...] = ("knee", "brain")
FORMAT = "mri-explorer/checkpoint"
VERSION = 1

#: Bounds on architecture sizes, checked before a model is built (from a file or for training): a
#: 13 KB state dict naming ``cascades.99999`` must not build 100,000 cascades. The published models use
#: 12 cascades, 18/256 channels, 4 pools.
ARCH_LIMITS: dict[str, int] = {"in_chans": 64, "out_chans": 64, "chans": 1024, "num_pool_layers": 8, "num_cascades": 64,
                               "sens_chans": 1024, "sens_pools": 8, "pools": 8}
DEFAULT_LIMIT = 1024  # any other size a network kind recognises from its weights
MAX_BOTTLENECK = 8192  # channels of the deepest U-net layer (published U-net: 256 x 2^4 = 4096)


class Checkpoint(NamedTuple):
    """A loaded checkpoint.

    Attributes:
        kind: a network kind (:func:`explorer.recon.networks.kind_names`).
        arch: constructor kwargs of the model (the kind's default architecture with what the weights determine).
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
    """A freshly initialised network of kind ``kind`` (e.g. ``fastmri.models.Unet`` / ``VarNet``).

    Args:
        kind: a registered network kind (:func:`explorer.recon.networks.network_kinds`).
        arch: constructor kwargs; missing ones take the kind's defaults.

    Raises:
        ExplorerError: unknown kind or kwarg, non-positive sizes.
    """
    return get_network(kind).build(**check_arch(kind, arch))


def check_arch(kind: str, arch: dict[str, Any] | None) -> dict[str, Any]:
    """``arch`` over the kind's default architecture, validated.

    Raises:
        ExplorerError: unknown kind or kwarg, sizes that are not positive integers.
    """
    network = get_network(kind)
    kwargs = {**network.default_arch, **(arch or {})}
    unknown = set(kwargs) - set(network.default_arch)
    if unknown:
        raise ExplorerError(f"{kind} has no architecture parameter {', '.join(sorted(unknown))}")
    for key in network.recognised:
        value, limit = kwargs[key], ARCH_LIMITS.get(key, DEFAULT_LIMIT)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ExplorerError(f"{kind} {key} must be a positive integer, got {value!r}")
        if value > limit:
            raise ExplorerError(f"{kind} {key} = {value} is past the limit {limit} (checked before building "
                                "the model; the published fastMRI models are well inside it)")
    for chans, pools in (("chans", "num_pool_layers"), ("chans", "pools"), ("sens_chans", "sens_pools")):
        if chans in kwargs and pools in kwargs and kwargs[chans] * 2 ** kwargs[pools] > MAX_BOTTLENECK:
            raise ExplorerError(f"{kind} {chans} x 2^{pools} = {kwargs[chans] * 2 ** kwargs[pools]} bottleneck channels "
                                f"is past the limit {MAX_BOTTLENECK}")
    return kwargs


def recognise(state_dict: dict[str, torch.Tensor]) -> tuple[str, dict[str, Any]]:
    """The network kind and architecture of a (prefix-free) state dict, from its keys and shapes (each kind's
    :attr:`~explorer.recon.networks.NetworkKind.recognise`).

    Returns:
        ``(kind, kwargs)`` with every kwarg of the kind's default architecture (unrecognisable ones at their default).

    Raises:
        ExplorerError: no registered kind recognises it (or it is an incomplete state dict of one).
    """
    kinds = network_kinds()
    for network in kinds:
        arch = network.recognise(state_dict)
        if arch is not None:
            return network.name, {**network.default_arch, **arch}
    sample = ", ".join(list(state_dict)[:3]) or "no keys"
    raise ExplorerError(f"not a {' or '.join(k.label for k in kinds)} state dict (keys: {sample}...)")


def shape_of(sd: dict, key: str) -> tuple[int, ...]:
    """The shape of ``sd[key]``.

    Raises:
        KeyError: no such key.
    """
    if key not in sd:
        raise KeyError(key)
    return tuple(int(s) for s in sd[key].shape)


def count_prefixed(keys: list[str], prefix: str) -> int:
    """How many numbered children ``prefix<i>.`` the keys name (``max(i) + 1``; 0 if none)."""
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
    default_arch = get_network(kind).default_arch
    path = Path(path)
    dtype = torch.float16 if half else torch.float32
    weights = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
               for k, v in state_dict.items()}
    full_card = {
        "architecture": {"model": kind, "kwargs": {**default_arch, **arch}},
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
        get_network(kind)
        if found_kind != kind:
            raise ExplorerError(f"{path.name} holds a {found_kind} checkpoint, not a {kind} one")
    claimed = (card.get("architecture") or {}) if isinstance(card.get("architecture"), dict) else {}
    if claimed:
        if claimed.get("model") not in (None, found_kind):
            raise ExplorerError(f"{path.name}: the model card says {claimed.get('model')} but the weights are a {found_kind}")
        kwargs = claimed.get("kwargs") or {}
        network = get_network(found_kind)
        for key in network.recognised:
            if key in kwargs and kwargs[key] != arch[key]:
                raise ExplorerError(f"{path.name}: the model card says {key}={kwargs[key]} but the weights have {key}={arch[key]}")
        arch = {**arch, **{k: v for k, v in kwargs.items() if k in network.default_arch and k not in network.recognised}}
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
    """Drop Lightning / DataParallel wrappers: a kind's Lightning attribute (``varnet.`` / ``unet.``; other entries
    such as the SSIM loss buffer ``loss.w`` are dropped with it), ``module.``, ``model.``."""
    kinds = network_kinds()
    own = tuple(p for k in kinds for p in k.key_prefixes)
    for prefix in (k.lightning_prefix for k in kinds):
        if any(k.startswith(prefix) for k in sd) and not any(k.startswith(own) for k in sd):
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
    return ", ".join(f"{k}={arch[k]}" for k in get_network(kind).recognised)


def random_checkpoint(kind: str, arch: dict[str, Any] | None, path: str | Path, seed: int = 0,
                      card: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Write a randomly initialised checkpoint (tests, benchmarks, an untrained baseline).

    Args:
        kind: a registered network kind.
        arch: constructor kwargs (defaults: the kind's).
        path: output ``.pt`` (plus its ``.json`` card).
        seed: weight initialisation seed (the global RNG is saved and restored).
        card: extra card fields (e.g. ``{"data": {"anatomy": "knee"}}``).

    Returns:
        the written path.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(kind, arch)
    return save_checkpoint(path, model.state_dict(), kind, {**get_network(kind).default_arch, **(arch or {})},
                           {"random_init": {"seed": seed}, **(card or {})}, half=half)
