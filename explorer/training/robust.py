"""Robust training: jittering (``train --jitter SIGMA``) and adversarial training (``train --adv-train EPS``).

Both perturb the *measured* k-space of every training example, in the attack's threat model
(:mod:`explorer.robustness.attack`): the example is built from ``y' = M (k + e) = y + M e``, ``e`` ``(1, C, H, W)``
complex64 on the sampled entries, its size relative to ``||k||_2``, the norm of the slice's fully sampled multi-coil
k-space (the attack's ``budget="full"``). The network kind then builds its example from ``y'`` exactly as from any
measured data (e.g. the U-net's zero-filled input and the target's normalisation by that input's mean and std).

* **Jittering** (Krainovic, Soltanolkotabi & Heckel, NeurIPS 2023): ``e`` is complex white Gaussian noise on the
  sampled entries, each entry ``e_j = s (a_j + i b_j) / sqrt(2)`` with ``a_j, b_j ~ N(0, 1)`` independent and
  ``s = SIGMA ||k||_2 / sqrt(m)``, ``m`` the number of sampled entries over all coils. So ``E|e_j|^2 = s^2`` (real
  and imaginary parts each of std ``s / sqrt(2)``) and ``E||e||_2^2 = SIGMA^2 ||k||_2^2``: SIGMA is the noise's
  expected (root-mean-square) norm in the unit of the attack's eps, so ``--jitter 0.02`` is noise as large as an
  eps-0.02 attack (``||e||`` concentrates at ``SIGMA ||k||`` within ``O(1 / sqrt(m))``). Not rescaled to an exact
  norm (that is the attack's noise *baseline*, :mod:`explorer.robustness.noise`): jittering is Gaussian noise.
  A fresh draw per example and step, from a ``torch.Generator`` seeded with ``(seed, step, item)``
  (:func:`perturbation_seed`), drawn on the CPU: a run is deterministic and resumes exactly.
* **Adversarial training** (Madry et al., ICLR 2018, as robust-nets / SMUG train MRI networks): each step, ``N``
  (``--adv-steps``, default :data:`ADV_STEPS`) steps of projected gradient ascent on ``e`` maximise the *training loss*
  of the perturbed examples (the kind's supervised loss against the reference, or the ``--loss`` in use) against the
  current weights, under ``||e||_2 <= EPS ||k||_2``; the attack's PGD (:mod:`explorer.robustness.search`): a random
  start of norm ``START_FRACTION`` x the budget on the sampled entries, normalised l2 steps of ``2.5 / N`` x the budget,
  projection onto the ball by rescaling. The last iterate is kept; the optimizer step is then taken on the perturbed
  examples only (no clean term: Madry's objective). Each item's start is seeded from ``(seed, step, item)``.
  Cost: ``N`` extra forward + backward passes per step.

The two cannot be combined in one run (one perturbation per example and step); ``0`` is off, the default, and then
training is exactly what it was without this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.recon.networks import Example
from explorer.robustness.search import START_FRACTION, l2norm, project, random_direction
from explorer.training.examples import MaskedSlice, example_of

ADV_STEPS = 3
MAX_LEVEL = 10.0  # the attack's eps range: [0, 10]
MAX_ADV_STEPS = 100
#: Streams of :func:`perturbation_seed` (apart from the masks' :func:`~explorer.training.loader.step_seed`).
JITTER_STREAM, ADVERSARIAL_STREAM = 1, 2

JITTER_DEFINITION = ("complex white Gaussian noise on the sampled k-space entries, per entry (a + ib) s / sqrt(2) with "
                     "a, b ~ N(0, 1) and s = sigma ||k|| / sqrt(m) (k the slice's fully sampled multi-coil k-space, "
                     "m the sampled entries over all coils): E||e||^2 = sigma^2 ||k||^2; a fresh draw per example "
                     "and step, seeded by (seed, step, item)")
ADVERSARIAL_DEFINITION = ("PGD on the measured k-space maximising the training loss against the current weights: "
                          "||e|| <= eps ||k|| (k the slice's fully sampled multi-coil k-space), e on the sampled entries, "
                          "random start of norm {start} x budget, {steps} normalised l2 steps of {alpha:.4g} x budget, "
                          "projection by rescaling, last iterate; the step trains on the perturbed examples only")


def perturbation_seed(seed: int, step: int, item: int, stream: int) -> int:
    """Seed of batch item ``item``'s perturbation at step ``step`` (``stream``: :data:`JITTER_STREAM` or
    :data:`ADVERSARIAL_STREAM`), independent of its mask seed."""
    return int(np.random.SeedSequence([seed, step, item, stream]).generate_state(1)[0])


def check_robust(jitter: float, adv_train: float, adv_steps: int | None) -> None:
    """The robust-training options are usable.

    Raises:
        ExplorerError: a level that is not a finite number in ``[0, MAX_LEVEL]``; both levels set; ``adv_steps``
            outside ``[1, MAX_ADV_STEPS]`` or given without ``adv_train``.
    """
    for flag, value in (("jitter", jitter), ("adv-train", adv_train)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= MAX_LEVEL:
            raise ExplorerError(f"--{flag} must be a finite number in [0, {MAX_LEVEL:g}] (relative to ||k||), got {value!r}")
    if jitter > 0 and adv_train > 0:
        raise ExplorerError("--jitter and --adv-train cannot be combined: choose one")
    if adv_steps is not None:
        if isinstance(adv_steps, bool) or not isinstance(adv_steps, int) or not 1 <= adv_steps <= MAX_ADV_STEPS:
            raise ExplorerError(f"--adv-steps must be an integer in [1, {MAX_ADV_STEPS}], got {adv_steps!r}")
        if not adv_train > 0:
            raise ExplorerError("--adv-steps applies to adversarial training only: add --adv-train EPS")


def jitter_noise(masked: MaskedSlice, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """One jittering draw for a masked slice (the module's definition).

    Args:
        masked: the slice (its ``y`` gives the shape, its ``mask`` the sampled entries, ``kspace_norm`` the unit).
        sigma: the relative noise level: ``E||e||^2 = sigma^2 ||k||^2``.
        generator: a CPU ``torch.Generator`` (the draw is made on the CPU, then moved to ``y``'s device).

    Returns:
        ``e`` ``(1, C, H, W)`` complex64 on ``y``'s device, zero off the sampled entries.
    """
    shape = tuple(masked.y.shape)
    mask = masked.mask.expand(shape)
    m = max(int(mask.sum()), 1)
    scale = sigma * masked.kspace_norm / math.sqrt(2 * m)  # the std of the real and of the imaginary part
    e = torch.complex(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))
    return e.to(masked.y.device) * scale * masked.mask


def adversarial_perturbations(loss_of: Callable[[list[Example]], torch.Tensor], kind: str, masked: list[MaskedSlice],
                              maps: list[torch.Tensor | None], eps: float, steps: int,
                              generators: list[torch.Generator]) -> list[torch.Tensor]:
    """PGD perturbations of a batch's measured k-space that increase the training loss (the module's definition).

    Args:
        loss_of: ``examples -> scalar`` the training loss (differentiable in the examples' data).
        kind: the network kind; masked: the batch's slices; maps: their ESPIRiT maps ``(1, C, H, W)`` or ``None``.
        eps: relative budget: ``||e_i|| <= eps ||k_i||`` for every item.
        steps: gradient steps; generators: one CPU ``torch.Generator`` per item (its random start).

    Returns:
        one ``e`` ``(1, C, H, W)`` complex64 per item (detached, on ``y``'s device, zero off the sampled entries).

    The loss of a batch is a mean of per-item terms (the kinds' losses have no batch coupling), so one backward pass
    gives every item's gradient; each item takes its own normalised step and projection.
    """
    budgets = [eps * m.kspace_norm for m in masked]
    es = [random_direction(tuple(m.y.shape), m.mask, g, m.y.device) * (b * START_FRACTION)
          for m, g, b in zip(masked, generators, budgets)]
    for e, b in zip(es, budgets):
        project(e, b)
    alpha = 2.5 / steps
    for _ in range(steps):
        es = [e.detach().requires_grad_(True) for e in es]
        with torch.enable_grad():
            loss = loss_of([example_of(kind, m, mp, e) for m, mp, e in zip(masked, maps, es)])
            grads = torch.autograd.grad(loss, es)
        with torch.no_grad():
            for e, g, b in zip(es, grads, budgets):
                norm = float(l2norm(g))
                if norm > 0:  # g is zero off the sampled entries: e enters only through M e
                    e.add_(g, alpha=alpha * b / norm)
                    project(e, b)
    return [e.detach() for e in es]


@dataclass(frozen=True)
class RobustTraining:
    """A run's robust training: ``method`` ``"jitter"`` (level = sigma) or ``"adversarial"`` (level = eps, ``steps``)."""

    method: str
    level: float
    steps: int = 0

    @classmethod
    def of(cls, jitter: float, adv_train: float, adv_steps: int | None) -> "RobustTraining | None":
        """From the options (checked by :func:`check_robust`); ``None`` when both levels are 0 (plain training)."""
        check_robust(jitter, adv_train, adv_steps)
        if jitter > 0:
            return cls("jitter", float(jitter))
        if adv_train > 0:
            return cls("adversarial", float(adv_train), ADV_STEPS if adv_steps is None else int(adv_steps))
        return None

    def options(self) -> dict:
        """What a resumed run must share (the training state's options)."""
        return {"method": self.method, "level": self.level, "steps": self.steps}

    def card(self) -> dict:
        """The model card's ``robust_training`` entry (also in ``train --json``)."""
        if self.method == "jitter":
            return {"method": "jitter", "sigma": self.level, "definition": JITTER_DEFINITION}
        return {"method": "adversarial", "eps": self.level, "steps": self.steps, "step_size": 2.5 / self.steps,
                "objective": "training loss", "trains_on": "perturbed examples only",
                "definition": ADVERSARIAL_DEFINITION.format(start=START_FRACTION, steps=self.steps,
                                                            alpha=2.5 / self.steps)}

    def examples(self, kind: str, masked: list[MaskedSlice], maps: list[torch.Tensor | None], seed: int, step: int,
                 loss_of: Callable[[list[Example]], torch.Tensor]) -> list[Example]:
        """The step's training examples, perturbed.

        Args:
            kind: the network kind; masked: the batch's slices (item ``j`` at position ``j``); maps: theirs.
            seed, step: the run's seed and the step (the draws' seeds, :func:`perturbation_seed`).
            loss_of: the training loss of a list of examples (used by adversarial training only).
        """
        stream = JITTER_STREAM if self.method == "jitter" else ADVERSARIAL_STREAM
        generators = [torch.Generator().manual_seed(perturbation_seed(seed, step, j, stream)) for j in range(len(masked))]
        if self.method == "jitter":
            es = [jitter_noise(m, self.level, g) for m, g in zip(masked, generators)]
        else:
            es = adversarial_perturbations(loss_of, kind, masked, maps, self.level, self.steps, generators)
        return [example_of(kind, m, mp, e) for m, mp, e in zip(masked, maps, es)]


__all__ = ["ADV_STEPS", "ADVERSARIAL_DEFINITION", "JITTER_DEFINITION", "RobustTraining", "adversarial_perturbations",
           "check_robust", "jitter_noise", "perturbation_seed"]
