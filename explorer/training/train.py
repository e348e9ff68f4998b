"""Training the U-net and the E2E VarNet on fastMRI-layout volumes (``python -m explorer train``).

A plain torch loop (no Lightning) that follows fastMRI's ``UnetModule`` / ``VarNetModule``: Adam at the network
kind's learning rate (:mod:`explorer.recon.networks`; U-net 1e-3, VarNet 3e-4, constant) on the kind's loss (L1 on
the normalised image, ``SSIMLoss``); examples from :mod:`explorer.training.examples`. A fresh mask every step, seeded
from ``(seed, step, item)``; slices shuffled per epoch by a ``torch.Generator`` seeded with
``seed``: a run is deterministic given its options (on the CPU). ``--workers N`` builds the examples in ``N``
DataLoader worker processes (the same examples: :mod:`explorer.training.loader`); ``--amp bf16`` runs the forward
pass and the loss under bfloat16 autocast (weights and checkpoint stay float32; the model card says ``amp``).
Robust training (:mod:`explorer.training.robust`): ``--jitter SIGMA`` adds complex white Gaussian noise to each example's
measured k-space (``E||e||^2 = SIGMA^2 ||k||^2``), ``--adv-train EPS`` trains on PGD perturbations of it
(``||e|| <= EPS ||k||``, ``--adv-steps``); the card's ``robust_training`` says which. Off by default (then nothing changes).

Files:

* ``--out CKPT.pt``: the weights and model card (:func:`explorer.recon.checkpoints.save_checkpoint`),
  plus ``CKPT.json``; written at every epoch end and at the end.
* the training state (default ``CKPT.state.pt`` next to it; ``--state``): model, optimizer, step,
  epoch, the shuffling generator's state, losses, validation history, seconds, the options that
  must not change. Written at every epoch end, every ``save_every`` steps, on interrupt and at the
  end; loadable with ``weights_only=True``. ``resume=True`` continues from it.

Validation (``--val DIR``) after every epoch and at the end: mean SSIM (``explorer.metrics``) over the
reference slices, each with a fixed mask seed, reconstructed exactly as the explorer does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from explorer.device import get_device
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon import checkpoints as ckpts
from explorer.recon.networks import NetworkKind, get_network
from explorer.recon.trained import make_recon
from explorer.training.examples import (LOSSES, SliceSet, criterion, make_example, mask_slice, training_loss,
                                       val_indices)
from explorer.training.loader import autocast, batches, check_amp, example_loader, on_device, step_seed
from explorer.training.robust import RobustTraining

STATE_FORMAT = "mri-explorer/train-state"
VAL_SEED = 10_000  # validation slice i uses mask seed VAL_SEED + i
# options that a resumed run must share with the saved state
_RESUME_KEYS = ("model", "arch", "challenge", "mask", "acceleration", "center_fraction", "batch_size", "lr", "seed", "train_slices")

ProgressFn = Callable[[int, int, dict], "bool | None"]


@dataclass
class TrainOptions:
    """What to train (the CLI's arguments).

    Attributes:
        model: a network kind (:func:`explorer.recon.networks.kind_names`).
        data: directory of fastMRI-layout ``.h5`` training volumes; val: validation directory or ``None``.
        out: checkpoint path; state: training-state path (default ``<out stem>.state<suffix>``).
        challenge: ``"multicoil"`` or ``"singlecoil"`` (VarNet: multicoil only).
        mask, acceleration, center_fraction: the mask family (:class:`explorer.masks.MaskConfig`).
        epochs: passes over the data; steps: optimizer steps, overrides ``epochs`` when set.
        arch: constructor kwargs over the kind's default architecture.
        lr: Adam learning rate (``None``: the kind's default, fastMRI's).
        batch_size: slices per step; seed: weights, shuffling and masks.
        resume: continue from the state file; half: store the checkpoint weights as float16.
        val_slices: validate on this many evenly spaced slices (0 = all).
        save_every: also write the state every this many steps.
        loss: ``"supervised"``, ``"self"`` or ``"both"`` (:data:`explorer.training.examples.LOSSES`).
        snapshot_every: also keep a checkpoint every this many steps (:func:`snapshot_path`; 0 = none): the models
            of several training lengths from one run, e.g. for a distribution-shift scatter.
        workers: DataLoader worker processes building the examples (0 = in the training process, as before).
        amp: ``"off"`` or ``"bf16"`` (bfloat16 autocast of the forward pass and loss on the training device).
        jitter: jittering level SIGMA (0 = off): complex white Gaussian noise on each example's measured k-space with
            ``E||e||^2 = SIGMA^2 ||k||^2`` (:mod:`explorer.training.robust`).
        adv_train: adversarial-training budget EPS (0 = off): PGD on each example's measured k-space under
            ``||e|| <= EPS ||k||``; adv_steps: its PGD steps (``None``: :data:`~explorer.training.robust.ADV_STEPS`).
    """

    model: str
    data: Path
    out: Path
    val: Path | None = None
    challenge: str = "multicoil"
    mask: str = "random"
    acceleration: float = 4.0
    center_fraction: float | None = None
    epochs: int = 10
    steps: int | None = None
    arch: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None
    batch_size: int = 1
    seed: int = 0
    resume: bool = False
    half: bool = False
    force: bool = False
    state: Path | None = None
    val_slices: int = 0
    save_every: int = 200
    loss: str = "supervised"
    snapshot_every: int = 0
    workers: int = 0
    amp: str = "off"
    jitter: float = 0.0
    adv_train: float = 0.0
    adv_steps: int | None = None


class TrainResult(NamedTuple):
    """What a run produced.

    Attributes:
        checkpoint, state: the written files.
        steps: optimizer steps done in total (over all resumed runs); epochs: completed passes (fractional).
        losses: training loss of every step (over all runs).
        val_ssim: last validation SSIM (``None`` without ``--val``); seconds: training time over all runs.
        card: the model card written.
        stopped: True when ``progress`` asked to stop early.
    """

    checkpoint: Path
    state: Path
    steps: int
    epochs: float
    losses: list[float]
    val_ssim: float | None
    seconds: float
    card: dict[str, Any]
    stopped: bool


def snapshot_path(out: str | Path, step: int) -> Path:
    """``<out stem>_step<NNNNNN>.pt`` beside ``out``: the checkpoint kept at ``step`` (``--snapshot-every``)."""
    out = Path(out)
    return out.with_name(f"{out.stem}_step{step:06d}{out.suffix}")


def state_path(out: str | Path) -> Path:
    """Default training-state file next to a checkpoint: ``CKPT.pt`` -> ``CKPT.state.pt``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.state{out.suffix or '.pt'}")


def _validate_options(o: TrainOptions) -> MaskConfig:
    network = get_network(o.model)
    if o.challenge not in ("multicoil", "singlecoil"):
        raise ExplorerError(f"--challenge must be multicoil or singlecoil, got {o.challenge!r}")
    if network.multicoil_only and o.challenge != "multicoil":
        raise ExplorerError(f"the {network.label} needs multicoil data (--challenge multicoil)")
    for name, value, low in (("epochs", o.epochs, 1), ("batch-size", o.batch_size, 1), ("save-every", o.save_every, 1),
                             ("seed", o.seed, 0), ("val-slices", o.val_slices, 0), ("workers", o.workers, 0)):
        if value < low:
            raise ExplorerError(f"--{name} must be >= {low}, got {value}")
    if not 0 <= o.seed < 2**32:
        raise ExplorerError(f"--seed must be in [0, 2**32), got {o.seed}")
    if o.out.suffix.lower() != ".pt":
        raise ExplorerError(f"--out must name a .pt checkpoint (its model card goes beside it as .json), got {o.out.name}")
    if o.snapshot_every < 0:
        raise ExplorerError(f"--snapshot-every must be >= 0, got {o.snapshot_every}")
    if o.loss not in LOSSES:
        raise ExplorerError(f"--loss must be one of {', '.join(LOSSES)}, got {o.loss!r}")
    if o.steps is not None and o.steps < 1:
        raise ExplorerError(f"--steps must be >= 1, got {o.steps}")
    if o.lr is not None and not (math.isfinite(o.lr) and 0 < o.lr < 1):
        raise ExplorerError(f"--lr must be in (0, 1), got {o.lr}")
    mask_cfg = MaskConfig(o.mask, o.acceleration, o.center_fraction)
    if network.column_masks_only and mask_cfg.is_2d:
        raise ExplorerError(f"the {network.label} is trained with column masks; choose a 1D mask type")
    ckpts.check_arch(o.model, o.arch)
    RobustTraining.of(o.jitter, o.adv_train, o.adv_steps)
    return mask_cfg


def _check_sizes(network: NetworkKind, arch: dict[str, Any], data: SliceSet) -> None:
    kspace_side, crop_side = data.min_shapes()
    pools, what = network.input_side(arch)
    side = crop_side if what == "reference" else kspace_side
    if side < 2 ** pools:
        raise ExplorerError(f"the smallest {what} side ({side}) is too small for {pools} pooling layers")


def train(options: TrainOptions, progress: ProgressFn | None = None, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or resume training) a network and write its checkpoint.

    Args:
        options: :class:`TrainOptions`.
        progress: ``progress(step, total, {"loss": ...}) -> bool | None``; True stops early (state and
            checkpoint are written first).
        log: receives one line per epoch and the final summary.

    Returns:
        :class:`TrainResult`.

    Raises:
        ExplorerError: bad options or data, an incompatible or missing state with ``resume``.
    """
    o = options
    log = log or (lambda line: None)
    mask_cfg = _validate_options(o)
    kind, network = o.model, get_network(o.model)
    arch = {**network.default_arch, **o.arch}
    lr = o.lr if o.lr is not None else network.train_lr
    out = Path(o.out).expanduser()
    state_file = Path(o.state).expanduser() if o.state else state_path(out)
    trainset = SliceSet(o.data, o.challenge, "--data")
    valset = SliceSet(o.val, o.challenge, "--val") if o.val else None
    _check_sizes(network, arch, trainset)
    device = get_device()
    check_amp(o.amp, device)
    robust = RobustTraining.of(o.jitter, o.adv_train, o.adv_steps)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(o.seed)
        model = ckpts.build_model(kind, arch)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    supervised = criterion(kind, device)

    maps_cache: dict[int, torch.Tensor | None] = {}

    def self_maps(i: int) -> torch.Tensor | None:
        """ESPIRiT maps of training slice ``i`` for the self-supervised term on multicoil data (from the fully sampled
        centre, once per slice: every mask keeps that centre); ``None`` otherwise."""
        if o.loss == "supervised":
            return None
        if i not in maps_cache:
            from explorer.robustness.insertion import full_maps  # noqa: PLC0415

            sl = trainset.read(i)
            maps_cache[i] = full_maps(sl.kspace).to(device)[None] if sl.num_coils > 1 else None
        return maps_cache[i]

    n = len(trainset)
    per_epoch = math.ceil(n / o.batch_size)
    total = o.steps if o.steps is not None else o.epochs * per_epoch
    saved_opts = {"model": kind, "arch": arch, "challenge": o.challenge, "mask": mask_cfg.type,
                  "acceleration": float(mask_cfg.acceleration), "center_fraction": mask_cfg.resolved_center_fraction,
                  "batch_size": o.batch_size, "lr": lr, "seed": o.seed, "train_slices": n,
                  **({"loss": o.loss} if o.loss != "supervised" else {}),
                  **({"robust": robust.options()} if robust is not None else {})}
    st = {"step": 0, "epoch": 0, "epoch_start": 0, "rng": torch.Generator().manual_seed(o.seed).get_state(),
          "losses": [], "val_history": [], "seconds": 0.0}
    if o.resume:
        st = _load_state(state_file, saved_opts, model, optimizer)
    else:
        _check_writable(out, state_file, o.force, o.snapshot_every > 0)

    gen = torch.Generator()
    gen.set_state(st["rng"])
    perm = torch.randperm(n, generator=gen)
    started = time.perf_counter()
    seconds = lambda: st["seconds"] + time.perf_counter() - started  # noqa: E731
    last_val_step = st["val_history"][-1]["step"] if st["val_history"] else -1
    stopped = False
    schedule = batches(n, o.batch_size, st["rng"], st["step"], st["epoch_start"], total)
    loader = (iter(example_loader(kind, trainset, mask_cfg, o.seed, o.workers, schedule, device, robust is not None))
              if o.workers else None)

    def loss_of(examples: list) -> torch.Tensor:
        """The training loss of ``examples`` (what the optimizer steps on, and adversarial training's inner loop raises)."""
        with autocast(o.amp, device):
            return training_loss(kind, model, examples, supervised, o.loss)

    def save_state() -> None:
        payload = {"format": STATE_FORMAT, "version": 1, "options": saved_opts, "model": model.state_dict(),
                   "optimizer": optimizer.state_dict(), "step": st["step"], "epoch": st["epoch"],
                   "epoch_start": st["epoch_start"], "rng": st["rng"], "losses": list(st["losses"]),
                   "val_history": list(st["val_history"]), "seconds": seconds()}
        try:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            ckpts._atomic_torch_save(payload, state_file)
        except OSError as exc:
            raise ExplorerError(f"cannot write {state_file} ({exc.strerror or exc})") from None

    def run_validation() -> None:
        nonlocal last_val_step
        if valset is None or last_val_step == st["step"]:
            return
        ssim = validate(kind, model, valset, mask_cfg, device, o.val_slices)
        st["val_history"].append({"epoch": st["epoch"], "step": st["step"], "ssim": ssim})
        last_val_step = st["step"]
        model.train()

    if st["step"] >= total:
        log(f"already trained {st['step']} steps (asked for {total}); writing the checkpoint")
    try:
        while st["step"] < total:
            pos = st["step"] - st["epoch_start"]
            idx = perm[pos * o.batch_size:(pos + 1) * o.batch_size].tolist()
            if loader is None and robust is None:
                examples = [make_example(kind, trainset.read(i), dataclasses.replace(mask_cfg, seed=step_seed(o.seed, st["step"], j)),
                                         device, self_maps(i))
                            for j, i in enumerate(idx)]
            elif loader is None:
                masked = [mask_slice(trainset.read(i), dataclasses.replace(mask_cfg, seed=step_seed(o.seed, st["step"], j)),
                                     device) for j, i in enumerate(idx)]
            else:
                at, loaded, built = next(loader)
                if (at, list(loaded)) != (st["step"], idx):  # the worker schedule follows this loop's, or it is a bug
                    raise RuntimeError(f"the example loader is at step {at} {loaded}, training at {st['step']} {idx}")
                if robust is None:
                    examples = [on_device(ex, device, self_maps(i)) for ex, i in zip(built, idx)]
                else:
                    masked = [m.to(device) for m in built]
            if robust is not None:  # perturb the measured data, then build the kind's examples from it
                examples = robust.examples(kind, masked, [self_maps(i) for i in idx], o.seed, st["step"], loss_of)
            loss = loss_of(examples)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            st["step"] += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ExplorerError(f"the training loss became {value} at step {st['step']}; lower --lr")
            st["losses"].append(value)
            if (st["step"] - st["epoch_start"]) * o.batch_size >= n:  # epoch done: next permutation
                st["epoch"] += 1
                st["epoch_start"] = st["step"]
                st["rng"] = gen.get_state()
                perm = torch.randperm(n, generator=gen)
                run_validation()
                epoch_losses = st["losses"][-per_epoch:]
                val = f"  val SSIM {st['val_history'][-1]['ssim']:.4f}" if valset is not None else ""
                log(f"epoch {st['epoch']}  step {st['step']}/{total}  loss {np.mean(epoch_losses):.4g}{val}  {seconds():.1f} s")
                _write_checkpoint(out, model, kind, arch, o, trainset, valset, mask_cfg, st, per_epoch, lr, seconds())
                save_state()
            elif st["step"] % o.save_every == 0:
                save_state()
            if o.snapshot_every and st["step"] % o.snapshot_every == 0 and st["step"] < total:
                run_validation()  # the snapshot's card carries its own validation SSIM
                _write_checkpoint(snapshot_path(out, st["step"]), model, kind, arch, o, trainset, valset, mask_cfg, st,
                                  per_epoch, lr, seconds())
            if progress is not None and progress(st["step"], total, {"loss": value}):
                stopped = True
                break
    except KeyboardInterrupt:  # a hard abort may land mid-update: keep the last consistent (periodic) state
        raise
    finally:
        loader = None  # the workers end with their iterator
    run_validation()
    card = _write_checkpoint(out, model, kind, arch, o, trainset, valset, mask_cfg, st, per_epoch, lr, seconds())
    save_state()
    val_ssim = st["val_history"][-1]["ssim"] if st["val_history"] else None
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)  steps {st['step']}  "
        f"{'val SSIM %.4f  ' % val_ssim if val_ssim is not None else ''}{seconds():.1f} s; state {state_file}")
    return TrainResult(out, state_file, st["step"], st["step"] / per_epoch, list(st["losses"]), val_ssim, seconds(), card, stopped)


def validate(kind: str, model: torch.nn.Module, valset: SliceSet, mask_cfg: MaskConfig, device: torch.device,
             limit: int = 0) -> float:
    """Mean SSIM of ``model`` over the validation slices (slice ``i`` masked with seed ``VAL_SEED + i``).

    The model is put in eval mode; each slice goes through the engine (:func:`~explorer.engine.prepare`,
    :func:`~explorer.engine.reconstruct` with the explorer's reconstructor around ``model``, cropped to
    each reference, and :func:`~explorer.engine.score`), as every other scored reconstruction.
    """
    from explorer.engine import MethodInstance, prepare, reconstruct, score  # noqa: PLC0415

    model.eval()
    scores = []
    with torch.no_grad():
        for i in val_indices(len(valset), limit):
            sl = valset.read(i)
            problem = prepare(sl, dataclasses.replace(mask_cfg, seed=VAL_SEED + i), device)
            recon = make_recon(kind, model, tuple(sl.target.shape))
            x = reconstruct(problem, MethodInstance.of(kind), reconstructor=recon)  # checkpoint kinds are method names
            scores.append(score(problem, x).metrics["ssim"])
    return float(np.mean(scores))


def _write_checkpoint(out: Path, model, kind, arch, o: TrainOptions, trainset: SliceSet, valset: SliceSet | None,
                      mask_cfg: MaskConfig, st: dict, per_epoch: int, lr: float, seconds: float) -> dict:
    network = get_network(kind)
    robust = RobustTraining.of(o.jitter, o.adv_train, o.adv_steps)
    card = {
        "data": {**trainset.describe(), "val": valset.describe() if valset is not None else None},
        "mask": {"type": mask_cfg.type, "acceleration": float(mask_cfg.acceleration),
                 "center_fraction": mask_cfg.resolved_center_fraction},
        "steps": st["step"],
        "epochs": round(st["step"] / per_epoch, 3),
        "batch_size": o.batch_size,
        "lr": lr,
        "loss": network.loss_name if o.loss == "supervised" else
                ("self-supervised k-space l1" if o.loss == "self" else f"{network.loss_name} + self-supervised k-space l1"),
        "seed": o.seed,
        "val_ssim": st["val_history"][-1]["ssim"] if st["val_history"] else None,
        "val_history": list(st["val_history"]),
        "seconds": round(seconds, 1),
        "device": str(next(model.parameters()).device),
        **({"amp": o.amp} if o.amp != "off" else {}),
        **({"robust_training": robust.card()} if robust is not None else {}),
    }
    ckpts.save_checkpoint(out, model.state_dict(), kind, arch, card, half=o.half)
    return json.loads(out.with_suffix(".json").read_text())


def _check_writable(out: Path, state_file: Path, force: bool = False, snapshots: bool = False) -> None:
    """The outputs of a fresh run can be written, and (without ``force``) clobber nothing that exists."""
    if not force:
        existing = [p for p in (out, out.with_suffix(".json"), state_file) if p.exists()]
        if snapshots:
            existing += sorted(out.parent.glob(f"{out.stem}_step*{out.suffix}"))
        if existing:
            raise ExplorerError(f"{existing[0]} exists: add --resume to continue that run, --force to overwrite it, "
                                "or choose another --out")
    for path in (out, state_file):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExplorerError(f"cannot create {path.parent} ({exc.strerror or exc})") from None
        if path.is_dir():
            raise ExplorerError(f"{path} is a directory; give a file name")


def _load_state(path: Path, opts: dict, model, optimizer) -> dict:
    if not path.is_file():
        raise ExplorerError(f"no training state to resume at {path}")
    st = ckpts.safe_torch_load(path, "training state")
    if not isinstance(st, dict) or st.get("format") != STATE_FORMAT:
        raise ExplorerError(f"{path.name} is not a training-state file")
    saved = st.get("options", {})
    for key in _RESUME_KEYS:
        if saved.get(key) != opts[key]:
            raise ExplorerError(f"cannot resume from {path.name}: {key} was {saved.get(key)!r}, now {opts[key]!r}")
    if saved.get("robust") != opts.get("robust"):  # absent: plain training
        raise ExplorerError(f"cannot resume from {path.name}: robust training was {saved.get('robust')!r}, "
                            f"now {opts.get('robust')!r}")
    model.load_state_dict(st["model"])
    optimizer.load_state_dict(st["optimizer"])  # casts the moments to the parameters' device
    return {k: st[k] for k in ("step", "epoch", "epoch_start", "rng", "losses", "val_history", "seconds")}
