"""Building blocks of the sparse-recovery solvers: wavelets, TV, proximal maps, FISTA, primal-dual.

sigpy-style: each algorithm is a pure ``step(state) -> state`` on plain callables (gradient,
prox, operators), and :func:`iterate` is the driver that loops a fixed number of times and
reports progress. Everything is out-of-place, so autograd differentiates through all
iterations (``d recon / d y``).

Shapes: complex images ``(B, H, W)``; wavelet coefficients of the real and imaginary parts
as a list of real tensors ``(B, 2, K, h, w)`` (``K`` = 1 for the coarse approximation, 3 for
each detail level; axis 1 is real/imaginary, thresholded jointly as a complex number);
image gradients ``(B, 2, H, W)`` complex (axis 1 = direction: rows, columns).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import pywt
import torch
import torch.nn.functional as F

from explorer.physics import Operator
import torch.utils.checkpoint

from explorer.recon.base import ProgressFn, Throttle

# Floor of magnitudes inside ratios: keeps the gradients of |c| finite at c = 0.
_EPS = 1e-12

# ---------------------------------------------------------------------------------------------
# Orthogonal (periodized) 2D wavelet transform
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _filters(name: str, dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Analysis weights ``(4, 1, L, L)`` (stride-2 correlation) and polyphase synthesis weights
    ``(4, 4, L/2, L/2)`` of the separable 2D filter bank of an orthogonal wavelet.

    Band order: (lo, lo), (lo, hi), (hi, lo), (hi, hi) as (rows, columns).
    """
    w = pywt.Wavelet(name)
    if not w.orthogonal:
        raise ValueError(f"wavelet {name!r} is not orthogonal")
    f = torch.tensor([w.dec_lo[::-1], w.dec_hi[::-1]], dtype=torch.float64)  # (band, L): correlation taps
    length = f.shape[1]
    analysis = torch.einsum("ai,bj->abij", f, f).reshape(4, 1, length, length)
    h = f.reshape(2, length // 2, 2)  # [band, m, phase] = f[band, 2m + phase]
    poly = torch.einsum("amp,bnq->abpqmn", h, h).reshape(4, 4, length // 2, length // 2)
    synthesis = poly.transpose(0, 1).flip(-2, -1).contiguous()  # adjoint of the polyphase analysis
    return analysis.to(device=device, dtype=dtype), synthesis.to(device=device, dtype=dtype)


@dataclass(frozen=True)
class Wavelet:
    """Orthonormal multilevel 2D DWT with periodic boundaries (``W^T W = W W^T = I``).

    ``c[j] = sum_l f[l] x[(2j + l) mod n]`` per axis: pywt's ``"periodization"`` mode up to a
    circular shift of ``L/2 - 1`` samples. Height and width must be divisible by ``2**levels``.
    Periodic boundaries suit MRI (a DFT image is periodic). Not ptwt: its padding modes give
    the redundant pywt-style transform (``floor((n + L - 1) / 2)`` coefficients per level, so
    ``W^T soft(W x)`` is not the prox), and its orthogonal boundary-filter matrices
    (``MatrixWavedec2``, ``orthogonalization="qr"``) ran about 2x slower than these convolutions.

    Attributes:
        name: an orthogonal PyWavelets wavelet ("haar", "db2", "db4", "sym4", ...).
        levels: decomposition levels (>= 1).
    """

    name: str = "db4"
    levels: int = 4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Analysis of a real batch ``(N, H, W)`` -> ``[approx (N, 1, h, w), details (N, 3, ., .) coarse..fine]``.

        Raises:
            ValueError: ``H`` or ``W`` not divisible by ``2**levels``.
        """
        if x.shape[-2] % 2**self.levels or x.shape[-1] % 2**self.levels:
            raise ValueError(f"image {tuple(x.shape[-2:])} is not divisible by 2**{self.levels}")
        analysis, _ = _filters(self.name, x.dtype, str(x.device))
        pad = analysis.shape[-1] - 2
        a, details = x.unsqueeze(1), []
        for _ in range(self.levels):
            r = F.conv2d(_circular_pad(a, 0, pad), analysis, stride=2)
            details.append(r[:, 1:])
            a = r[:, :1]
        return [a, *details[::-1]]

    def inverse(self, coeffs: list[torch.Tensor]) -> torch.Tensor:
        """Synthesis (= adjoint): coefficients as returned by :meth:`forward` -> ``(N, H, W)``."""
        _, synthesis = _filters(self.name, coeffs[0].dtype, str(coeffs[0].device))
        pad = synthesis.shape[-1] - 1
        a = coeffs[0]
        for d in coeffs[1:]:
            r = _circular_pad(torch.cat([a, d], 1), pad, 0)
            a = F.pixel_shuffle(F.conv2d(r, synthesis), 2)
        return a[:, 0]

    def forward_complex(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Complex image ``(B, H, W)`` -> coefficients ``(B, 2, K, h, w)`` (real, imaginary)."""
        b = x.shape[0]
        parts = torch.stack((x.real, x.imag), 1).flatten(0, 1)  # (2B, H, W)
        return [c.unflatten(0, (b, 2)) for c in self.forward(parts)]

    def inverse_complex(self, coeffs: list[torch.Tensor]) -> torch.Tensor:
        """Inverse of :meth:`forward_complex`: -> complex ``(B, H, W)``."""
        parts = self.inverse([c.flatten(0, 1) for c in coeffs]).unflatten(0, (coeffs[0].shape[0], 2))
        return torch.complex(parts[:, 0], parts[:, 1])


def _circular_pad(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Periodic extension of the last two dims of ``(N, K, h, w)`` by ``before``/``after`` samples."""
    if before == 0 and after == 0:
        return x
    h, w = x.shape[-2:]
    if max(before, after) <= min(h, w):
        return F.pad(x, (before, after, before, after), mode="circular")
    rows = torch.arange(-before, h + after, device=x.device) % h  # wraps more than once: index
    cols = torch.arange(-before, w + after, device=x.device) % w
    return x[..., rows, :][..., cols]


def soft_threshold(coeffs: list[torch.Tensor], thresh: torch.Tensor) -> list[torch.Tensor]:
    """Complex soft thresholding ``c * max(0, 1 - t / |c|)`` of real/imaginary coefficient pairs.

    Args:
        coeffs: tensors ``(B, 2, ...)`` (axis 1 = real, imaginary).
        thresh: threshold per batch item, broadcastable to ``(B, 1)``.
    """
    out = []
    for c in coeffs:
        t = thresh.reshape(-1, *([1] * (c.ndim - 1)))
        mag = torch.sqrt(c.pow(2).sum(1, keepdim=True) + _EPS**2)
        out.append(c * (F.relu(mag - t) / mag))
    return out


def wavelet_l1(coeffs: list[torch.Tensor]) -> torch.Tensor:
    """``sum |c|`` of complex coefficients per batch item -> ``(B,)``."""
    return sum(torch.sqrt(c.pow(2).sum(1)).flatten(1).sum(1) for c in coeffs)


# ---------------------------------------------------------------------------------------------
# Total variation: periodic backward differences (BART's ``linop_grad``), isotropic norm
# ---------------------------------------------------------------------------------------------


def grad2d(x: torch.Tensor) -> torch.Tensor:
    """``D x``: ``(B, ..., H, W)`` -> ``(B, 2, ..., H, W)`` with ``x[i] - x[i-1]`` (circular) along rows, columns."""
    return torch.stack((x - x.roll(1, -2), x - x.roll(1, -1)), 1)


def grad2d_adjoint(p: torch.Tensor) -> torch.Tensor:
    """``D^H p``: ``(B, 2, ..., H, W)`` -> ``(B, ..., H, W)`` (minus the divergence; ``||D||^2 <= 8``)."""
    return (p[:, 0] - p[:, 0].roll(-1, -2)) + (p[:, 1] - p[:, 1].roll(-1, -1))


def tv_norm(x: torch.Tensor) -> torch.Tensor:
    """Isotropic TV ``sum_pixels sqrt(|D_r x|^2 + |D_c x|^2)`` of complex ``(B, ..., H, W)`` -> ``(B,)``."""
    return grad2d(x).abs().pow(2).sum(1).sqrt().flatten(1).sum(1)


def project_l2_balls(p: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Pointwise projection of ``(B, 2, ..., H, W)`` onto ``{sqrt(|p_r|^2 + |p_c|^2) <= radius}``.

    The prox of the convex conjugate of ``radius * ||.||_{2,1}`` (isotropic TV's dual step).
    """
    r = radius.reshape(-1, *([1] * (p.ndim - 1)))
    mag = torch.sqrt(p.abs().pow(2).sum(1, keepdim=True) + _EPS**2)
    return p / torch.clamp(mag / r, min=1.0)


# ---------------------------------------------------------------------------------------------
# The data term 1/2 ||A x - y||^2 of the SENSE operator, without the centred-FFT shifts
# ---------------------------------------------------------------------------------------------


class DataTerm:
    """Gradient ``A^H (A x - y)`` of ``1/2 ||A x - y||^2`` for an :class:`~explorer.physics.Operator`.

    For even ``H, W`` the centred FFT is ``fft2c = P D F`` (``P`` = fftshift, ``D`` = the
    ``(-1)^(k_h + k_w)`` sign pattern, ``F`` = orthonormal ``fft2``), so
    ``A^H (A x - y) = S^H F^H (M' F (S x) - y')`` with ``M' = P^T M`` and ``y' = D P^T (M y)``
    precomputed once: no fftshift copies per iteration, identical values. Odd sizes use ``op``.

    Args:
        op: the operator (mask ``(B, 1, H|1, W)``, maps ``(B, C, H, W)``, ``(B, K, C, H, W)`` or None; several
            map sets take the out-of-place path).
        y: k-space ``(B, C, H, W)``.
    """

    def __init__(self, op: Operator, y: torch.Tensor):
        self.op, self.y = op, y
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None
        h, w = y.shape[-2:]
        self.fast = h % 2 == 0 and w % 2 == 0
        if self.fast:
            dims = (-2, -1)
            self.mask = torch.fft.ifftshift(op.mask, dim=dims).to(y.dtype)
            sign_h = 1 - 2 * (torch.arange(h, device=y.device) % 2)
            sign_w = 1 - 2 * (torch.arange(w, device=y.device) % 2)
            sign = (sign_h[:, None] * sign_w[None, :]).to(y.real.dtype)
            self.neg_y = torch.fft.ifftshift(y * op.mask, dim=dims) * -sign
            self.maps_conj = None if op.maps is None else op.maps.conj().resolve_conj()

    def residual_and_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A x - y, A^H (A x - y))`` for ``x`` of ``op.image_shape``; the residual only up to a unitary
        (sign/shift) map in the fast path, so only its norm is meaningful."""
        if not self.fast:
            r = self.op.forward(x) - self.y
            return r, self.op.adjoint(r)
        op = self.op
        if (op.maps is not None and op.maps.ndim == 5) or (
                torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, self.neg_y, op.maps))):
            r = torch.addcmul(self.neg_y, torch.fft.fft2(op.coil_images(x), norm="ortho"), self.mask)
            return r, op.combine_coils(torch.fft.ifft2(r, norm="ortho"))
        # No autograd graph: reuse two k-space buffers (no per-iteration allocations)
        shape = torch.broadcast_shapes(self.neg_y.shape, x.unsqueeze(1).shape if op.maps is None else op.maps.shape)
        if self._buffers is None or self._buffers[0].shape != shape or self._buffers[0].dtype != x.dtype:
            self._buffers = (torch.empty(shape, dtype=x.dtype, device=x.device), torch.empty(shape, dtype=x.dtype, device=x.device))
        a, b = self._buffers
        coils = a.copy_(x.unsqueeze(1)) if op.maps is None else torch.mul(op.maps, x.unsqueeze(1), out=a)
        r = torch.fft.fft2(coils, norm="ortho", out=b).mul_(self.mask).add_(self.neg_y)
        images = torch.fft.ifft2(r, norm="ortho", out=a)
        return r, (images[:, 0].clone() if op.maps is None else images.mul_(self.maps_conj).sum(1))


# ---------------------------------------------------------------------------------------------
# Algorithms (pure steps) and the driver
# ---------------------------------------------------------------------------------------------


class FistaState(NamedTuple):
    """FISTA iterate ``x`` (last prox output), extrapolated point ``z``, momentum ``t`` (float), steps done ``k``."""

    x: torch.Tensor
    z: torch.Tensor
    t: float
    k: int = 0


def fista_step(state: FistaState, gradient: Callable, prox: Callable, step: float) -> tuple[FistaState, dict]:
    """One FISTA step (Beck & Teboulle 2009) for ``min f(x) + g(x)``.

    Args:
        gradient: ``z -> (grad f(z), info dict)``.
        prox: ``(v, step, k) -> prox_{step g}(v)`` at step ``k`` (0-based; e.g. the cycle-spinning shift of
            step ``k``: a function of ``k`` only, so a recomputed (checkpointed) step is the same step).
        step: ``1 / L`` with ``L`` the Lipschitz constant of ``grad f``.

    Returns:
        the next state and the info of the gradient evaluation.
    """
    g, info = gradient(state.z)
    x = prox(state.z - step * g, step, state.k)
    t = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * state.t**2))
    z = x + ((state.t - 1.0) / t) * (x - state.x)
    return FistaState(x, z, t, state.k + 1), info


class PrimalDualState(NamedTuple):
    """Condat-Vu iterate: image ``x`` ``(B, H, W)`` and TV dual ``p`` ``(B, 2, H, W)``."""

    x: torch.Tensor
    p: torch.Tensor


def condat_vu_step(state: PrimalDualState, gradient: Callable, op: Callable, op_adjoint: Callable,
                   dual_prox: Callable, tau: float, sigma: float) -> tuple[PrimalDualState, dict]:
    """One primal-dual step (Condat 2013 / Vu 2013) for ``min f(x) + h(K x)``, ``f`` smooth.

    ``x+ = x - tau (grad f(x) + K^H p)``, ``p+ = prox_{sigma h*}(p + sigma K (2 x+ - x))``;
    converges when ``1/tau - sigma ||K||^2 >= L_f / 2``.
    """
    g, info = gradient(state.x)
    x = state.x - tau * (g + op_adjoint(state.p))
    p = dual_prox(state.p + sigma * op(2.0 * x - state.x))
    return PrimalDualState(x, p), info


def iterate(step: Callable, state, iterations: int, progress: ProgressFn | None = None, checkpoint: bool = False):
    """Run ``state, info = step(state)`` ``iterations`` times.

    ``progress(k, iterations, info)`` is called at most every :data:`~explorer.recon.base.PROGRESS_INTERVAL`
    seconds and after the last step (the info tensors are read, a GPU synchronisation, only then);
    when it returns True the loop stops and the current state is returned (the best estimate so far).

    Args:
        checkpoint: gradient checkpointing per step (``torch.utils.checkpoint``, non-reentrant): the
            autograd graph keeps only each step's input state and recomputes the step in the
            backward pass, so differentiating through hundreds of iterations costs the memory of the
            states (a few images per step) instead of every intermediate k-space.
    """
    throttle = Throttle(progress)
    for k in range(iterations):
        if checkpoint:
            state, info = torch.utils.checkpoint.checkpoint(step, state, use_reentrant=False)
        else:
            state, info = step(state)
        if throttle.due(k + 1, iterations) and throttle.report(k + 1, iterations, {key: float(v) for key, v in info.items()}):
            break
    return state
