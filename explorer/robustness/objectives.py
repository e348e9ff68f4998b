"""What an attack maximises, and the budget it spends (Darestani, Chaudhari & Heckel, ICML 2021).

* Budget: ``||e||_2 <= eps * ||k||_2`` with ``k`` the slice's fully sampled multi-coil k-space (the paper's),
  or the measured ``y`` (``budget="measured"``: for test files, which hold no full k-space).
* Objective: the relative squared deviation of the reconstruction's magnitude, centre-cropped to the
  reference size, from a reference image ``r``: ``||m - r||^2 / ||r||^2``, over the whole image or inside
  a box. ``r`` is the clean reconstruction (``"clean"``: the paper's objective for trained networks, which
  works without a reference) or the fully sampled reference (``"target"``: the paper's for l1 and
  ConvDecoder). Relative, so values compare across methods and slices; maximising it maximises the MSE.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.physics import center_crop, magnitude

OBJECTIVES: dict[str, str] = {
    "clean": "deviation from the clean reconstruction (the paper's objective for trained networks)",
    "target": "distance from the fully sampled reference (the paper's for l1 and ConvDecoder)",
    "paper": "the papers' per family: clean for methods with trained weights, target for the others",
}


def resolve_objective(name: str, has_weights: bool) -> str:
    """The objective an attack of a method runs: ``name``, or for ``"paper"`` the papers' choice for its family
    (``"clean"`` for a method with trained weights, ``"target"`` otherwise; from its capabilities)."""
    return ("clean" if has_weights else "target") if name == "paper" else name
BUDGETS: dict[str, str] = {
    "full": "eps x the norm of the fully sampled k-space (the paper's)",
    "measured": "eps x the norm of the measured k-space y (test files without full k-space)",
}


MAX_BUDGETS = 16
MAX_NOISE_DRAWS = 32
OPTIMIZERS = ("pgd", "adam")


@dataclass(frozen=True)
class AttackConfig:
    """Attack settings (frozen: a cache key).

    Attributes:
        eps: relative l2 budget (the paper: 0.08 at 4x).
        objective: ``"clean"`` or ``"target"`` (:data:`~explorer.robustness.objectives.OBJECTIVES`).
        region: ``(row0, col0, row1, col1)`` box in the reference-size image the objective is restricted to.
        budget: ``"full"`` or ``"measured"``.
        steps: gradient steps per restart (gradient strategy).
        step_size: step length as a fraction of the budget (PGD) or Adam's learning rate in the same unit;
            0 = ``2.5 / steps`` (the usual PGD choice: the ball is crossed in well under the steps given).
        restarts: independent starts (gradient strategy); the worst result over all is kept.
        optimizer: ``"pgd"`` (normalised steps) or ``"adam"``.
        patience: stop a restart after this many steps without a new worst iterate (0 = never).
        seed: random starts.
        joint_weight: weight of the objective in the joint scheme (the paper's lam1 = 0.05).
        joint_warmup: fraction of the fit's steps fitted to the clean data before ``e`` enters (paper: 100/400).
        noise_draws: Gaussian perturbations of the budget's norm scored beside the worst case
            (:mod:`~explorer.robustness.noise`; 0 = none): each one more reconstruction per method and budget.
    """

    eps: float = 0.08
    objective: str = "clean"
    region: tuple[int, int, int, int] | None = None
    budget: str = "full"
    steps: int = 20
    step_size: float = 0.0
    restarts: int = 1
    optimizer: str = "pgd"
    patience: int = 5
    seed: int = 0
    joint_weight: float = 0.05
    joint_warmup: float = 0.25
    noise_draws: int = 3

    def __post_init__(self) -> None:
        for name, kind in (("eps", float), ("objective", str), ("budget", str), ("steps", int), ("step_size", float),
                           ("restarts", int), ("optimizer", str), ("patience", int), ("seed", int),
                           ("joint_weight", float), ("joint_warmup", float), ("noise_draws", int)):
            value = getattr(self, name)
            ok = isinstance(value, kind if kind is not float else (int, float)) and not isinstance(value, bool)
            if not ok or (kind is float and not math.isfinite(value)):
                wanted = {int: "an integer", float: "a finite number", str: "a string"}[kind]
                raise ExplorerError(f"{name.replace('_', ' ')} must be {wanted}, got {value!r}")
        checks = [
            (0 <= self.eps <= 10 and math.isfinite(self.eps), f"eps must be in [0, 10], got {self.eps}"),
            (self.objective in OBJECTIVES, f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"),
            (self.budget in BUDGETS, f"budget must be one of {', '.join(BUDGETS)}, got {self.budget!r}"),
            (1 <= self.steps <= 100000, f"steps must be in [1, 100000], got {self.steps}"),
            (0 <= self.step_size <= 10, f"step size must be in [0, 10], got {self.step_size}"),
            (1 <= self.restarts <= 100, f"restarts must be in [1, 100], got {self.restarts}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (0 <= self.patience <= 100000, f"patience must be in [0, 100000], got {self.patience}"),
            (0 <= self.seed < 2**32, f"seed must be in [0, 2**32), got {self.seed}"),
            (0 <= self.joint_weight <= 100, f"joint weight must be in [0, 100], got {self.joint_weight}"),
            (0 <= self.joint_warmup < 1, f"joint warm-up must be in [0, 1), got {self.joint_warmup}"),
            (0 <= self.noise_draws <= MAX_NOISE_DRAWS,
             f"noise draws must be in [0, {MAX_NOISE_DRAWS}], got {self.noise_draws}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ExplorerError(message)

    @property
    def alpha(self) -> float:
        """The step size actually used (fraction of the budget)."""
        return self.step_size or 2.5 / self.steps



def parse_eps(text: str, name: str = "eps") -> list[float]:
    """``"0.02,0.04,0.08"`` -> ``[0.02, 0.04, 0.08]`` (sorted, duplicates dropped).

    Raises:
        ExplorerError: no number, a value that is not a number, or more than :data:`MAX_BUDGETS` values.
    """
    try:
        values = sorted({float(v) for v in str(text).split(",") if v.strip()})
    except ValueError:
        values = []
    if not values:
        raise ExplorerError(f"{name} {text!r}: give one or more numbers, comma-separated")
    if len(values) > MAX_BUDGETS:
        raise ExplorerError(f"{name}: at most {MAX_BUDGETS} budgets, got {len(values)}")
    return values


def parse_region(text: str | None) -> tuple[int, int, int, int] | None:
    """``"row0,col0,row1,col1"`` (half-open, in the reference-size image) -> a tuple; empty -> ``None``.

    Raises:
        ExplorerError: not four integers with ``row0 < row1`` and ``col0 < col1``, or negative.
    """
    if text is None or not str(text).strip():
        return None
    try:
        box = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or min(box) < 0 or box[0] >= box[2] or box[1] >= box[3]:
        raise ExplorerError(f"region {text!r}: give row0,col0,row1,col1 with row0 < row1 and col0 < col1 (pixels >= 0)")
    return box  # type: ignore[return-value]


def check_region(region: tuple[int, int, int, int] | None, shape: tuple[int, int]) -> None:
    """Refuse a box that does not lie inside the image ``shape`` ``(h, w)``."""
    if region is not None and (region[2] > shape[0] or region[3] > shape[1]):
        raise ExplorerError(f"region {region} lies outside the {shape[0]}x{shape[1]} image")


def budget_norm(kspace: torch.Tensor, y: torch.Tensor, budget: str, eps: float, has_full: bool) -> float:
    """``eps * ||k||`` (``budget="full"``) or ``eps * ||y||`` (``"measured"``).

    Args:
        kspace: fully sampled k-space ``(1, C, H, W)``; y: measured k-space; has_full: whether ``kspace`` is
            really fully sampled (a test file holds only its undersampled data).

    Raises:
        ExplorerError: unknown budget; ``"full"`` on a test file; zero data.
    """
    if budget not in BUDGETS:
        raise ExplorerError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    if budget == "full" and not has_full:
        raise ExplorerError("this file holds no fully sampled k-space (a test file): use the measured budget")
    norm = float((kspace if budget == "full" else y).detach().abs().pow(2).sum().sqrt())
    if not norm > 0:
        raise ExplorerError("the k-space is zero: an attack budget relative to it is zero")
    return eps * norm


@dataclass(frozen=True)
class Objective:
    """``value(m) = ||(m - r)[box]||^2 / ||r[box]||^2`` for a magnitude ``m`` ``(h, w)`` (reference size).

    Attributes:
        name: ``"clean"`` or ``"target"``; reference: ``r`` ``(h, w)`` float32 on the device;
        region: the box ``(row0, col0, row1, col1)`` or ``None`` (whole image).
    """

    name: str
    reference: torch.Tensor
    region: tuple[int, int, int, int] | None = None

    def _box(self, m: torch.Tensor) -> torch.Tensor:
        if self.region is None:
            return m
        r0, c0, r1, c1 = self.region
        return m[..., r0:r1, c0:c1]

    def of_magnitude(self, m: torch.Tensor) -> torch.Tensor:
        """The objective of a magnitude ``(h, w)`` (torch scalar, differentiable)."""
        ref = self._box(self.reference)
        return (self._box(m) - ref).pow(2).sum() / ref.pow(2).sum().clamp_min(torch.finfo(ref.dtype).tiny)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The objective of a reconstruction ``x`` ``(1, H, W)`` (complex or real; differentiable)."""
        m = center_crop(magnitude(x[0] if x.ndim == 3 else x), tuple(self.reference.shape))
        return self.of_magnitude(m.float())

    def of_image(self, image: np.ndarray) -> float:
        """The objective of a scored magnitude image ``(h, w)`` (e.g. ``MethodResult.image``)."""
        return float(self.of_magnitude(torch.from_numpy(np.asarray(image, np.float32)).to(self.reference.device)))


def make_objective(name: str, clean_image: np.ndarray, target: np.ndarray | None, device: torch.device,
                   region: tuple[int, int, int, int] | None = None) -> Objective:
    """The :class:`Objective` ``name`` for a slice whose clean reconstruction magnitude is ``clean_image``.

    Raises:
        ExplorerError: unknown objective; ``"target"`` without a reference; a box outside the image.
    """
    if name not in OBJECTIVES or name == "paper":
        raise ExplorerError(f"objective must be clean or target (resolve 'paper' per method first), got {name!r}")
    if name == "target" and target is None:
        raise ExplorerError("this slice has no reference image: use the clean objective")
    reference = np.asarray(clean_image if name == "clean" else target, np.float32)
    check_region(region, reference.shape)
    return Objective(name, torch.from_numpy(reference).to(device), region)
