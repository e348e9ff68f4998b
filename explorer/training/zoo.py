"""A model zoo for distribution-shift studies: trained networks of several sizes and training lengths.

The shift studies of Darestani et al. (2021) plot one point per *model*: many configurations per family.
For the trained families that means networks of several sizes and training lengths (intermediate checkpoints
of one run count). :func:`build_zoo` trains such a zoo on the embedded sample with one call
(``python -m explorer zoo``): it writes the training and validation volumes (the shipped checkpoints' recipe:
subjects 1..N with 10 slices each, validation subjects 101..103), trains every :class:`ZooMember` with
snapshots, and keeps ``zoo.json``, a manifest of every checkpoint (label, method, path, steps, validation
SSIM). Re-running continues where it stopped: existing volumes and finished members are kept, an interrupted
member resumes from its training state. :func:`read_zoo` lists a zoo's checkpoints for ``shift --zoo``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from explorer.errors import ExplorerError
from explorer.recon.networks import kind_names

MANIFEST = "zoo.json"
FORMAT = "mri-explorer/zoo"


@dataclass(frozen=True)
class ZooMember:
    """One training run of the zoo.

    Attributes:
        name: file stem and label prefix (``unet_c8`` -> ``unet_c8.pt``, snapshots ``unet_c8_step000100.pt``).
        model: a network kind (:func:`explorer.recon.networks.kind_names`; its method name).
        arch: architecture keywords (the kind's ``default_arch`` keys).
        steps: optimiser steps of the run; batch_size: slices per step.
    """

    name: str
    model: str
    arch: dict[str, Any] = field(default_factory=dict)
    steps: int = 300
    batch_size: int = 1


# Small enough for a CPU: about 45 minutes for the four on 2 cores at 320x320 (see the README).
DEFAULT_MEMBERS: tuple[ZooMember, ...] = (
    ZooMember("unet_c8", "unet", {"chans": 8, "num_pool_layers": 3}, 300, 4),
    ZooMember("unet_c16", "unet", {"chans": 16, "num_pool_layers": 4}, 300, 4),
    ZooMember("varnet_k3", "varnet", {"num_cascades": 3, "chans": 6, "pools": 3, "sens_chans": 4, "sens_pools": 3},
              300, 1),
    ZooMember("varnet_k5", "varnet", {"num_cascades": 5, "chans": 10, "pools": 3, "sens_chans": 4, "sens_pools": 3},
              300, 1),
)
TRAIN_SUBJECTS = 24
VAL_SUBJECTS = (101, 102, 103)


@dataclass(frozen=True)
class ZooOptions:
    """What :func:`build_zoo` builds.

    Attributes:
        out: the zoo directory (``data/``, the checkpoints, ``zoo.json``).
        family: sample family (``"knee"`` / ``"brain"``); contrast / dataset: the sample variant trained on.
        size: sample matrix size; subjects: training subjects (10 slices each).
        members: the runs; snapshot_every: keep a checkpoint every N steps (0: only the final ones).
        loss: ``supervised``, ``self`` or ``both`` (:data:`explorer.training.examples.LOSSES`); seed: weights, masks.
        acceleration / mask: the training masks (fastMRI's random, 4x, centre 0.08 by default).
        train_dir / val_dir: existing training / validation volumes to use instead of writing the sample's.
    """

    out: Path
    family: str = "knee"
    contrast: str = ""
    dataset: str = ""
    size: int = 320
    subjects: int = TRAIN_SUBJECTS
    members: tuple[ZooMember, ...] = DEFAULT_MEMBERS
    snapshot_every: int = 100
    loss: str = "supervised"
    seed: int = 0
    mask: str = "random"
    acceleration: float = 4.0
    train_dir: Path | None = None
    val_dir: Path | None = None


def _check(o: ZooOptions) -> None:
    from explorer.data.sample import SampleSpec, validate  # noqa: PLC0415
    from explorer.training.examples import LOSSES  # noqa: PLC0415

    validate(SampleSpec(family=o.family, size=o.size, contrast=o.contrast, dataset=o.dataset))
    if not 1 <= o.subjects <= 200:
        raise ExplorerError(f"zoo subjects must be in 1..200, got {o.subjects}")
    if o.loss not in LOSSES:
        raise ExplorerError(f"unknown loss {o.loss!r}; choose one of {', '.join(LOSSES)}")
    if o.snapshot_every < 0:
        raise ExplorerError(f"--snapshot-every must be >= 0, got {o.snapshot_every}")
    names = [m.name for m in o.members]
    if not names or len(set(names)) != len(names):
        raise ExplorerError("zoo members need distinct names")
    for m in o.members:
        if m.model not in kind_names():
            raise ExplorerError(f"zoo member {m.name}: model must be one of {', '.join(kind_names())}, got {m.model!r}")
        if m.steps < 1 or m.batch_size < 1:
            raise ExplorerError(f"zoo member {m.name}: steps and batch size must be >= 1")


def write_data(o: ZooOptions, log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """The training (subjects ``1..o.subjects``, 10 slices) and validation volumes (subjects 101-103, 5 slices)
    under ``o.out/data``; existing files are kept. Returns ``(train_dir, val_dir)``."""
    from explorer.data.sample import SampleSpec, file_name, write_sample  # noqa: PLC0415

    train_dir, val_dir = o.out / "data" / "train", o.out / "data" / "val"
    wanted = [(train_dir, s, 10) for s in range(1, o.subjects + 1)] + [(val_dir, s, 5) for s in VAL_SUBJECTS]
    for directory, seed, slices in wanted:
        spec = SampleSpec(family=o.family, size=o.size, slices=slices, seed=seed, contrast=o.contrast,
                          dataset=o.dataset)
        if not (directory / file_name(spec)).is_file():
            directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / ".partial"
            tmp.mkdir(exist_ok=True)
            os.replace(write_sample(tmp, spec), directory / file_name(spec))
            tmp.rmdir()
    log(f"data: {o.subjects} training and {len(VAL_SUBJECTS)} validation subjects under {o.out / 'data'}")
    return train_dir, val_dir


def _writable_folder(out: Path) -> Path:
    """``out`` created if needed, checked writable before any training (one line naming it otherwise)."""
    if out.exists() and not out.is_dir():
        raise ExplorerError(f"zoo --out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ExplorerError(f"cannot write the zoo folder {out}: {exc.strerror or exc}") from None
    return out


def _entry(member: ZooMember, path: Path, root: Path) -> dict:
    card = json.loads(path.with_suffix(".json").read_text())
    return {"label": path.stem, "method": member.model, "checkpoint": str(path.relative_to(root)),
            "member": member.name, "steps": card.get("steps"), "val_ssim": card.get("val_ssim"),
            "loss": card.get("loss"), "arch": card.get("architecture", {}).get("kwargs", member.arch)}


def build_zoo(o: ZooOptions, progress: Callable | None = None, log: Callable[[str], None] = print) -> Path:
    """Write the data, train every member (resuming an interrupted one), write and return ``zoo.json``
    (listing the finished members only; a stop leaves the current member resumable).

    Args:
        o: :class:`ZooOptions`.
        progress: passed to :func:`explorer.training.train.train` per member (``progress(step, total, info)``; True stops).
        log: one line per stage.

    Raises:
        ExplorerError: bad options; anything :func:`explorer.training.train.train` raises.
    """
    from explorer.training.train import TrainOptions, snapshot_path, state_path, train  # noqa: PLC0415

    _check(o)
    out = _writable_folder(Path(o.out).expanduser())
    o = ZooOptions(**{**o.__dict__, "out": out})
    if o.train_dir is not None:
        train_dir, val_dir = Path(o.train_dir).expanduser(), o.val_dir and Path(o.val_dir).expanduser()
    else:
        train_dir, val_dir = write_data(o, log)
    entries: list[dict] = []
    for member in o.members:
        ckpt = out / f"{member.name}.pt"
        if ckpt.is_file() and not state_path(ckpt).is_file():
            log(f"{member.name}: done earlier")
        else:
            log(f"{member.name}: training {member.model} {member.arch} for {member.steps} steps")
            options = TrainOptions(model=member.model, data=train_dir, val=val_dir, out=ckpt, mask=o.mask,
                                   acceleration=o.acceleration, steps=member.steps, arch=dict(member.arch),
                                   batch_size=member.batch_size, seed=o.seed, half=True, val_slices=5,
                                   save_every=25, loss=o.loss, snapshot_every=o.snapshot_every,
                                   resume=state_path(ckpt).is_file())
            result = train(options, progress=progress, log=lambda line, n=member.name: log(f"{n}: {line}"))
            if result.stopped:
                log(f"{member.name}: stopped at step {result.steps}; run the same command again to continue")
                break
            state_path(ckpt).unlink()  # finished: the state is no longer needed (and marks the member done)
        snaps = [snapshot_path(ckpt, s) for s in range(o.snapshot_every, member.steps, o.snapshot_every or 1)
                 ] if o.snapshot_every else []
        entries += [_entry(member, p, out) for p in [*snaps, ckpt] if p.is_file()]
        _write_manifest(out, o, entries)
    _write_manifest(out, o, entries)
    return out / MANIFEST


def _write_manifest(out: Path, o: ZooOptions, entries: list[dict]) -> None:
    manifest = {"format": FORMAT, "version": 1, "family": o.family, "contrast": o.contrast, "dataset": o.dataset,
                "size": o.size, "subjects": o.subjects, "loss": o.loss, "mask": o.mask,
                "acceleration": o.acceleration, "models": entries}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST)


def read_zoo(directory: str | Path) -> list[dict]:
    """The checkpoints of a zoo: ``[{label, method, checkpoint (absolute path), steps, val_ssim, ...}]``.

    Every entry is checked before any is used: an object with a ``label`` string, a ``method`` that is a network
    kind and a ``checkpoint`` path relative to the zoo folder that stays inside it once resolved (``..`` and
    symlinks); a path outside is refused without saying whether it exists.

    Raises:
        ExplorerError: no readable ``zoo.json`` in ``directory``, a malformed entry (one line naming it), a
            checkpoint outside the zoo folder, or a listed checkpoint missing.
    """
    root = Path(directory).expanduser()
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExplorerError(f"no readable zoo manifest {path} ({getattr(exc, 'strerror', None) or exc}); "
                            "build one with `python -m explorer zoo`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExplorerError(f"{path} is not a zoo manifest")
    entries = manifest.get("models", [])
    if not isinstance(entries, list):
        raise ExplorerError(f"{path}: 'models' must be a list, got {type(entries).__name__}")
    home = root.resolve()
    models = []
    for number, entry in enumerate(entries, 1):
        where = f"{path} model {number}"
        if not isinstance(entry, dict):
            raise ExplorerError(f"{where}: must be an object with label, method and checkpoint, got "
                                f"{type(entry).__name__}")
        for key in ("label", "method", "checkpoint"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ExplorerError(f"{where}: needs a non-empty string {key!r}")
        if entry["method"] not in kind_names():
            raise ExplorerError(f"{where}: method must be one of {', '.join(kind_names())}, got {entry['method']!r}")
        ckpt = (home / entry["checkpoint"]).resolve()
        if Path(entry["checkpoint"]).is_absolute() or not ckpt.is_relative_to(home):
            raise ExplorerError(f"{where}: the checkpoint must lie inside the zoo folder; "
                                f"{entry['checkpoint']!r} does not")
        if not ckpt.is_file():
            raise ExplorerError(f"zoo checkpoint {ckpt} is missing")
        models.append({**entry, "checkpoint": str(ckpt)})
    return models


__all__ = ["DEFAULT_MEMBERS", "MANIFEST", "ZooMember", "ZooOptions", "build_zoo", "read_zoo", "write_data"]
