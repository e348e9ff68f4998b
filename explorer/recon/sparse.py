"""Sparse recovery: l1-wavelet (FISTA) and isotropic total variation (primal-dual).

Both solve ``x = argmin_x 1/2 ||A x - y_n||^2 + lam R(x)`` on normalised data ``y_n = y / s``
and return ``s * x``, where ``A`` is the SENSE operator (mask + ESPIRiT maps; plain masked
FFT single-coil) and ``R`` is ``||W x||_1`` (orthonormal wavelet, all bands, complex modulus)
or ``||x||_TV`` (isotropic, periodic backward differences), the conventions of
``bart pics -R W:3:0:lam`` / ``-R T:3:0:lam``.

Lambda convention (scale invariance): ``s = data_scale(y, op)`` is the 99th percentile of
``|A^H y|`` per batch item, so ``lam`` is relative to the bright-tissue intensity of the
zero-filled SENSE image; ``recon(c * y) = c * recon(y)`` exactly. The percentile (rather than
BART's k-space calibration-region rule, which switches between its 90th percentile and its
maximum) is continuous in ``y`` (no jumps for attacks to exploit), ignores a few hot pixels,
works for any mask, and is differentiable. To give BART the same problem, pass it ``-w s``.

Output: ``"dc_rss"`` (default) re-inserts the measured k-space into the coil images ``S x``
and takes the root-sum-of-squares, the quantity fastMRI's RSS targets measure (a SENSE image
has no noise floor outside the ESPIRiT support and scores low SSIM against an RSS target even
from fully sampled data); ``"image"`` returns the SENSE image ``x`` itself (what BART returns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from explorer import resources
from explorer.physics import Operator, combine_sets
from explorer.recon import solvers
from explorer.recon.base import Capabilities, ProgressFn, register
from explorer.recon.classical import _OUTPUT_HELP, MAP_SETS, MAPS_HELP, OUTPUTS, combine

TUNED_PATH = resources.package_file("recon/tuned_lambdas.json")
TUNED: dict = json.loads(TUNED_PATH.read_text())
PERCENTILE = 0.99
WAVELETS: tuple[str, ...] = ("haar", "db2", "db3", "db4", "db6", "sym4", "coif2")
CHECKPOINT_BYTES = 2**30  # differentiated iterations are checkpointed beyond about this much autograd graph
SPIN_SEED = 7919  # cycle-spinning shifts (spin_shift)
TV_DUAL_RATIO = 6.0  # primal-dual: dual step sigma = TV_DUAL_RATIO * lam (tuned: steps balance the dual ball radius)


def tuned_lambda(method: str, key: str | None = None) -> float:
    """The stored tuned ``lam`` of ``method`` ("l1" or "tv") for data of ``key`` (a
    :func:`~explorer.data.slice.defaults_key`: ``"knee"``, ``"brain/singlecoil"``...; the single-coil value of an
    unknown anatomy is ``"singlecoil"``; anything unknown or None: ``"default"``)."""
    table = TUNED[method]
    return float(table.get(key or "default", table["default"]))


@dataclass(frozen=True)
class L1Config:
    """l1-wavelet parameters."""

    lam: float = field(default=tuned_lambda("l1"), metadata={"help": "regularisation weight, relative to the 99th percentile of |A^H y| (tuned default)", "min": 0.0, "max": 10.0})
    iterations: int = field(default=50, metadata={"help": "FISTA iterations (fixed count)", "min": 1, "max": 2000})
    wavelet: str = field(default="db2", metadata={"help": "orthogonal wavelet (periodized; db2 = BART's default family, chosen by tuning)", "choices": WAVELETS})
    levels: int = field(default=4, metadata={"help": "wavelet decomposition levels (the image is zero-padded to a multiple of 2^levels)", "min": 1, "max": 6})
    spin: bool = field(default=True, metadata={"help": "random cycle spinning: each iteration thresholds a randomly shifted wavelet transform (BART pics' default; seeded, so deterministic)"})
    output: str = field(default="dc_rss", metadata={"help": _OUTPUT_HELP, "choices": OUTPUTS})
    maps: str = field(default="auto", metadata={"help": MAPS_HELP, "choices": MAP_SETS})


@dataclass(frozen=True)
class TVConfig:
    """Total-variation parameters."""

    lam: float = field(default=tuned_lambda("tv"), metadata={"help": "regularisation weight, relative to the 99th percentile of |A^H y| (tuned default)", "min": 0.0, "max": 10.0})
    iterations: int = field(default=100, metadata={"help": "primal-dual iterations (fixed count; one A and one A^H each)", "min": 1, "max": 5000})
    output: str = field(default="dc_rss", metadata={"help": _OUTPUT_HELP, "choices": OUTPUTS})
    maps: str = field(default="auto", metadata={"help": MAPS_HELP, "choices": MAP_SETS})


def data_scale(y: torch.Tensor, op: Operator) -> torch.Tensor:
    """Per-item data scale ``s``: the 99th percentile of ``|A^H y|`` (1 where that is 0; with several map sets,
    of the root-sum-of-squares of the sets).

    Args:
        y: k-space ``(B, C, H, W)``.

    Returns:
        real ``(B,)``, differentiable w.r.t. ``y``.
    """
    s = torch.quantile(combine_sets(op.adjoint(y), op).abs().flatten(1), PERCENTILE, dim=1)
    return torch.where(s > 0, s, torch.ones_like(s))


def lipschitz(op: Operator) -> torch.Tensor:
    """Upper bound of ``||A^H A||`` per item: ``max_pixels ||S(pixel)||^2`` (1 single-coil) -> ``(B,)``.

    ``||M F S x|| <= ||S x||`` (orthonormal FFT, 0/1 mask), so the bound is exact for unit-norm
    ESPIRiT maps: the step 1/L is then 1. One set: ``||S||^2 = sum_c |S_c|^2``; ``K`` sets: the largest
    eigenvalue of the ``K x K`` Gram ``S^H S`` of each pixel (ESPIRiT sets are orthogonal: 1 again).
    """
    if op.maps is None:
        return torch.ones(op.mask.shape[0], device=op.mask.device)
    maps = op.maps.detach()
    if maps.ndim == 4:
        return maps.abs().pow(2).sum(1).flatten(1).amax(1).clamp_min(1e-6)
    s = maps.permute(0, 3, 4, 2, 1)  # (B, H, W, C, K)
    top = torch.linalg.eigvalsh(s.mH @ s)[..., -1]  # (B, H, W)
    return top.flatten(1).amax(1).clamp_min(1e-6)


def l1_wavelet(y: torch.Tensor, op: Operator, lam: float, iterations: int, wavelet: str = "db4", levels: int = 4,
               progress: ProgressFn | None = None, spin: bool = False) -> torch.Tensor:
    """FISTA for ``min 1/2||A x - y/s||^2 + lam ||W x||_1``, returned as ``s * x``.

    Step ``1/L`` with ``L`` = :func:`lipschitz` (1 for ESPIRiT maps), ``x0 = 0``; sizes not
    divisible by ``2**levels`` are solved on a zero-padded grid (``A`` crops it back).

    ``spin``: random cycle spinning (BART ``pics``' default; its ``-n`` turns it off): step ``k`` thresholds
    the wavelet coefficients of the image circularly shifted by a pseudo-random ``(dy, dx)`` in
    ``[0, 2^levels)^2``, a fixed function of ``k`` (:func:`spin_shift`), so the result is a deterministic,
    differentiable function of ``y``. It averages out the shift variance of a decimated wavelet (blocky
    artifacts), which matters most without coil sensitivities to constrain the image (single-coil data).

    Args:
        y: k-space ``(B, C, H, W)`` (complex64 or complex128).
        op: its operator (mask, maps or None).
        lam: weight relative to ``s`` = :func:`data_scale`.
        iterations: fixed number of FISTA steps.
        wavelet, levels: the orthogonal wavelet (:class:`~explorer.recon.solvers.Wavelet`).
        spin: random cycle spinning (see above).
        progress: ``progress(k, iterations, {"residual": ||A z - y/s||})``; True stops early.

    Returns:
        complex SENSE image ``op.image_shape`` (``(B, H, W)``, or ``(B, K, H, W)`` with ``K`` map sets; each set
        regularised on its own), same dtype as ``y``, differentiable w.r.t. ``y``.
    """
    h, w = y.shape[-2:]
    x0 = y.new_zeros(op.image_shape(y.shape[0], h, w))
    s = _per_item(data_scale(y, op), x0)
    yn = y / _per_item(s.flatten(), y)
    m = 2**levels
    ph, pw = -h % m, -w % m  # solve on a grid divisible by 2^levels, cropped inside A
    wav = solvers.Wavelet(wavelet, levels)
    data = solvers.DataTerm(op, yn)
    step = _per_item(1.0 / lipschitz(op), x0)
    lam_t = torch.full((y.shape[0],), float(lam), device=y.device, dtype=y.real.dtype)
    per_image = x0[0].numel() // (h * w)  # map sets: each is a wavelet "batch item" of its own

    def gradient(z):
        r, g = data.residual_and_gradient(z[..., :h, :w])
        return _pad(g, ph, pw), _info(r, progress)

    def prox(v, st, k):
        images = v.reshape(-1, *v.shape[-2:])
        shift = spin_shift(k, levels) if spin else (0, 0)
        if shift != (0, 0):
            images = images.roll(shift, (-2, -1))
        thresh = (lam_t * st.flatten()).repeat_interleave(per_image)
        out = wav.inverse_complex(solvers.soft_threshold(wav.forward_complex(images), thresh))
        if shift != (0, 0):
            out = out.roll((-shift[0], -shift[1]), (-2, -1))
        return out.reshape(v.shape)

    x0 = _pad(x0, ph, pw)
    state = solvers.iterate(lambda st: solvers.fista_step(st, gradient, prox, step), solvers.FistaState(x0, x0, 1.0),
                            iterations, progress, checkpoint=_checkpointed(y, op, iterations))
    return state.x[..., :h, :w] * s


def spin_shift(k: int, levels: int) -> tuple[int, int]:
    """The cycle-spinning shift ``(dy, dx)`` of FISTA step ``k``: uniform in ``[0, 2^levels)^2``, a fixed
    pseudo-random function of ``k`` (seeded), the same on every call and device."""
    rng = torch.Generator().manual_seed(SPIN_SEED + int(k))
    dy, dx = torch.randint(0, 2**levels, (2,), generator=rng).tolist()
    return int(dy), int(dx)


def total_variation(y: torch.Tensor, op: Operator, lam: float, iterations: int,
                    progress: ProgressFn | None = None) -> torch.Tensor:
    """Condat-Vu primal-dual for ``min 1/2||A x - y/s||^2 + lam ||x||_TV``, returned as ``s * x``.

    Gradient step on the data term, dual ascent on the TV term (``p`` in the ``lam`` ball):
    ``sigma = 6 lam`` (the dual step follows the ball radius, so the iterates behave alike for
    every ``lam``; the factor was tuned on the knee sample), ``tau = 0.95 / (L/2 + 8 sigma)``
    (Condat's condition ``1/tau - sigma ||D||^2 > L/2``, ``||D||^2 <= 8``).

    Args:
        y, op, lam, iterations, progress: as :func:`l1_wavelet` (one ``A`` and one ``A^H`` per iteration).

    Returns:
        complex SENSE image ``op.image_shape`` (with ``K`` map sets ``(B, K, H, W)``, TV of each set summed),
        differentiable w.r.t. ``y``.
    """
    x0 = y.new_zeros(op.image_shape(y.shape[0], *y.shape[-2:]))
    s = _per_item(data_scale(y, op), x0)
    yn = y / _per_item(s.flatten(), y)
    data = solvers.DataTerm(op, yn)
    lam_t = torch.full((y.shape[0],), float(lam), device=y.device, dtype=y.real.dtype)
    sigma = max(TV_DUAL_RATIO * float(lam), 1e-3)
    tau = _per_item(0.95 / (0.5 * lipschitz(op) + 8.0 * sigma), x0)

    def gradient(x):
        r, g = data.residual_and_gradient(x)
        return g, _info(r, progress)

    state = solvers.PrimalDualState(x0, solvers.grad2d(x0))
    state = solvers.iterate(
        lambda st: solvers.condat_vu_step(st, gradient, solvers.grad2d, solvers.grad2d_adjoint,
                                          lambda p: solvers.project_l2_balls(p, lam_t), tau, sigma),
        state, iterations, progress, checkpoint=_checkpointed(y, op, iterations))
    return state.x * s


def l1_objective(x: torch.Tensor, y: torch.Tensor, op: Operator, lam: float, wavelet: str = "db4",
                 levels: int = 4) -> torch.Tensor:
    """``1/2||A x_n - y_n||^2 + lam ||W x_n||_1`` per item ``(B,)`` with ``x_n = x/s, y_n = y/s``
    (``x`` of ``op.image_shape``; with several map sets the l1 norms of the sets add up)."""
    s = data_scale(y, op)
    xn, h, w, m = x / _per_item(s, x), *x.shape[-2:], 2**levels
    images = _pad(xn, -h % m, -w % m).reshape(-1, h + (-h % m), w + (-w % m))
    l1 = solvers.wavelet_l1(solvers.Wavelet(wavelet, levels).forward_complex(images)).reshape(x.shape[0], -1).sum(1)
    return _data_term(xn, y / _per_item(s, y), op) + lam * l1


def tv_objective(x: torch.Tensor, y: torch.Tensor, op: Operator, lam: float) -> torch.Tensor:
    """``1/2||A x_n - y_n||^2 + lam ||x_n||_TV`` per item ``(B,)`` (normalised as :func:`l1_objective`)."""
    s = data_scale(y, op)
    return _data_term(x / _per_item(s, x), y / _per_item(s, y), op) + lam * solvers.tv_norm(x / _per_item(s, x))


def _checkpointed(y: torch.Tensor, op: Operator, iterations: int) -> bool:
    """Whether to checkpoint the iterations (:func:`solvers.iterate`): when autograd records them and the
    graph would exceed :data:`CHECKPOINT_BYTES`.

    The recorded graph costs about one k-space of ``y`` per iteration (measured by
    ``bench/bench_grad.py``: 5.9 MB per l1 iteration, 3.7 MB per TV iteration for 8x320x320 complex64,
    6.6 MB); checkpointing keeps a few images per iteration instead, for ~1.3x the backward time.
    """
    recorded = torch.is_grad_enabled() and (y.requires_grad or (op.maps is not None and op.maps.requires_grad))
    return recorded and iterations * y.numel() * y.element_size() > CHECKPOINT_BYTES


def _info(r: torch.Tensor, progress: ProgressFn | None) -> dict:
    """Progress info: the data residual norm (only computed when someone listens)."""
    return {"residual": r.abs().pow(2).sum().sqrt()} if progress is not None else {}


def _data_term(x, y, op):
    return 0.5 * (op.forward(x) - y).abs().pow(2).flatten(1).sum(1)


def _per_item(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-item values ``(B,)`` shaped ``(B, 1, ..., 1)`` to broadcast against ``like``."""
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def _pad(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Zero-pad a complex ``(..., H, W)`` at the bottom/right (out-of-place, differentiable)."""
    if ph == 0 and pw == 0:
        return x
    return torch.view_as_complex(F.pad(torch.view_as_real(x), (0, 0, 0, pw, 0, ph)).contiguous())


@register("l1", "l1-wavelet", "sparse", L1Config,
          "Compressed sensing: FISTA on 1/2||Ax-y||^2 + lam||Wx||_1 (orthogonal wavelet, ESPIRiT maps).",
          needs_maps=lambda cfg: cfg.maps, anatomy_defaults=lambda anatomy: {"lam": tuned_lambda("l1", anatomy)},
          capabilities=Capabilities(gradient="exact", cost="interactive"))
def l1_method(config: L1Config):
    """l1-wavelet reconstructor (see :func:`l1_wavelet`, :func:`combine`)."""

    def recon(y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        x = l1_wavelet(y, op, config.lam, config.iterations, config.wavelet, config.levels, progress, config.spin)
        return combine(x, y, op, config.output)

    return recon


@register("tv", "Total variation", "sparse", TVConfig,
          "Compressed sensing: primal-dual on 1/2||Ax-y||^2 + lam TV(x) (isotropic, ESPIRiT maps).",
          needs_maps=lambda cfg: cfg.maps, anatomy_defaults=lambda anatomy: {"lam": tuned_lambda("tv", anatomy)},
          capabilities=Capabilities(gradient="exact", cost="interactive"))
def tv_method(config: TVConfig):
    """Total-variation reconstructor (see :func:`total_variation`, :func:`combine`)."""

    def recon(y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor:
        return combine(total_variation(y, op, config.lam, config.iterations, progress), y, op, config.output)

    return recon
