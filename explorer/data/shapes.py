"""Drawing primitives for the embedded sample's anatomy (:mod:`explorer.data.knee`, :mod:`explorer.data.brain`).

Everything here is plain vectorised numpy on a :class:`Grid` of physical coordinates
(millimetres), so the same subject looks the same at any matrix size, and every
structure is a function of ``(x, y, z)``: a volume's slices are cuts of one 3D
object at the requested ``z`` positions, and only those cuts are ever evaluated.

Building blocks:

* approximate signed distance functions (SDFs, mm; negative inside) of ellipses,
  round cones, segments and quadratic curves, combined with smooth min/max and
  rendered with a one-pixel partial-volume ramp (:func:`soft`);
* :class:`SmoothField`: low-frequency 3D random fields (sums of plane waves) that
  perturb shapes and shade tissues;
* :class:`NoiseVolume`: 3D-consistent band-limited texture (white noise on planes
  along ``z``, B-spline interpolated, filtered in k-space), with spectral gradients
  so that zero level sets can be drawn as lines of constant width in mm
  (trabeculae, fat septa, small vessels);
* :func:`stamp`: small 3D objects (lesions, vessels) drawn only inside their
  bounding boxes; cortical sulci (:func:`_sulci`) likewise;
* :func:`psf_blur`: the acquisition's point-spread function.

Magnitudes are roughly in ``[0, 1]`` (fat / CSF about 1); physics (phase, coils,
noise, scaling) is added in :mod:`explorer.data.sample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

F32 = np.float32
KNEE_ID, BRAIN_ID = 1, 2


# --------------------------------------------------------------------------- grid, rng


@dataclass(frozen=True)
class Grid:
    """Physical sampling grid of a volume.

    Attributes:
        x: column coordinates ``(1, 1, W)`` in mm (0 at column ``W // 2``).
        y: row coordinates ``(1, H, 1)`` in mm (0 at row ``H // 2``; + is down).
        z: slice positions ``(S, 1, 1)`` in mm.
        px: pixel size in mm.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    px: float

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(S, H, W)``."""
        return (self.z.shape[0], self.y.shape[1], self.x.shape[2])


def make_grid(size: int, fov: float, zs) -> Grid:
    """Square ``size x size`` grid over ``fov`` mm, at slice positions ``zs`` (mm)."""
    px = fov / size
    c = ((np.arange(size) - size // 2) * px).astype(F32)
    z = np.asarray(zs, dtype=F32).reshape(-1, 1, 1)
    return Grid(c[None, None, :], c[None, :, None], z, float(px))


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """Independent numpy generator for stream ``key`` of subject ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *key]))


def seed_int(seed: int, *key: int) -> int:
    """Independent 63-bit seed (for ``torch.Generator``) for stream ``key`` of ``seed``."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *key]).generate_state(2, np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


# --------------------------------------------------------------------------- SDF toolkit


def soft(sdf, width: float):
    """Partial-volume occupancy of ``sdf < 0``: a linear ramp ``width`` mm wide."""
    return np.clip(0.5 - sdf * (1.0 / width), 0.0, 1.0).astype(F32, copy=False)


def blend(img: np.ndarray, value, alpha) -> np.ndarray:
    """``img <- img + alpha * (value - img)`` (in place where shapes allow)."""
    delta = alpha * (value - img)
    if np.broadcast(img, delta).shape == img.shape:
        img += delta
        return img
    return img + delta


def smin(a, b, k: float):
    """Polynomial smooth minimum (smooth union of two SDFs, blend radius ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + h * (a - b) - k * h * (1.0 - h)


def smax(a, b, k: float):
    """Smooth maximum (smooth intersection)."""
    return -smin(-a, -b, k)


def rot(x, y, cx: float, cy: float, deg: float):
    """Coordinates relative to ``(cx, cy)`` rotated by ``-deg`` degrees."""
    t = np.deg2rad(deg)
    c, s = F32(np.cos(t)), F32(np.sin(t))
    dx, dy = x - F32(cx), y - F32(cy)
    return c * dx + s * dy, -s * dx + c * dy


def ellipse(x, y, cx: float, cy: float, rx, ry, deg: float = 0.0):
    """Approximate SDF (mm) of an ellipse with semi-axes ``rx, ry`` rotated by ``deg``."""
    u, v = rot(x, y, cx, cy, deg) if deg else (x - F32(cx), y - F32(cy))
    k0 = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    k1 = np.sqrt((u / rx**2) ** 2 + (v / ry**2) ** 2) + F32(1e-6)
    # accurate near the boundary; deep inside use the concentric-ellipse bound instead
    return np.minimum(k0 * (k0 - 1.0) / k1, (k0 - 1.0) * np.asarray(np.minimum(rx, ry), dtype=F32))


def segment(x, y, a, b):
    """Distance to segment ``a``-``b`` and the projection parameter ``t`` in [0, 1]."""
    bax, bay = F32(b[0] - a[0]), F32(b[1] - a[1])
    pax, pay = x - F32(a[0]), y - F32(a[1])
    t = np.clip((pax * bax + pay * bay) / F32(bax * bax + bay * bay + 1e-9), 0.0, 1.0)
    return np.sqrt((pax - t * bax) ** 2 + (pay - t * bay) ** 2), t


def limb(x, y, pts, radii):
    """SDF of a chain of round cones through ``pts`` with radii ``radii`` (mm)."""
    out = None
    for i in range(len(pts) - 1):
        d, t = segment(x, y, pts[i], pts[i + 1])
        d = d - (radii[i] + t * (radii[i + 1] - radii[i]))
        out = d if out is None else smin(out, d, 2.0)
    return out


def curve(x, y, pts, n: int = 10):
    """Distance to a quadratic Bezier curve with control points ``pts`` (3 points).

    Returns:
        ``(distance, t)`` with ``t`` the curve parameter of the nearest piece.
    """
    p = np.asarray(pts, dtype=np.float64)
    ts = np.linspace(0.0, 1.0, n + 1)
    q = ((1 - ts) ** 2)[:, None] * p[0] + (2 * (1 - ts) * ts)[:, None] * p[1] + (ts**2)[:, None] * p[2]
    best, tbest = None, None
    for i in range(n):
        d, t = segment(x, y, q[i], q[i + 1])
        tt = (i + t) / n
        if best is None:
            best, tbest = d, tt
        else:
            closer = d < best
            best = np.where(closer, d, best)
            tbest = np.where(closer, tt, tbest)
    return best, tbest


def band_profile(t, lo: float, hi: float, ramp: float):
    """1 inside ``[lo, hi]``, linear ramps ``ramp`` wide outside, 0 far away."""
    return np.clip(np.minimum(t - lo, hi - t) / ramp + 1.0, 0.0, 1.0).astype(F32)


# --------------------------------------------------------------------------- random fields


class SmoothField:
    """Unit-variance smooth random 3D field: a sum of ``n`` random plane waves.

    Args:
        rng: generator.
        wavelength: typical wavelength in mm.
        n: number of plane waves.
        zstretch: the z wavelength is ``zstretch`` times longer (slices vary slowly).
    """

    def __init__(self, rng: np.random.Generator, wavelength: float, n: int = 6, zstretch: float = 1.5):
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        d[:, 2] /= zstretch
        self.w = (d * (2 * np.pi / wavelength) * rng.uniform(0.7, 1.3, size=(n, 1))).astype(F32)
        self.phi = rng.uniform(0, 2 * np.pi, size=n).astype(F32)
        self.amp = F32(np.sqrt(2.0 / n))

    def __call__(self, g: Grid) -> np.ndarray:
        """Evaluate on the grid: ``(S, H, W)`` float32 (separable: no full-size cosines)."""
        out = np.zeros(g.shape, F32)
        for (wx, wy, wz), ph in zip(self.w, self.phi):
            a = wx * g.x
            b = wy * g.y + wz * g.z + ph
            out += np.cos(a) * np.cos(b) - np.sin(a) * np.sin(b)
        return out * self.amp


def _band_fraction(filt, px: float) -> float:
    """Fraction of a filter's power that lies below the grid's Nyquist frequency."""
    k = np.arange(-3.0, 3.0, 0.02, dtype=F32)
    p = filt(k[None, :], k[:, None]) ** 2
    nyq = 0.5 / px
    inside = (np.abs(k) <= nyq)
    total = float(p.sum())
    return float(p[np.ix_(inside, inside)].sum()) / total if total > 0 else 0.0


class NoiseVolume:
    """3D-consistent complex white noise, ready to be band-filtered slice by slice.

    White noise planes live at ``z = k * dz`` (plane ``k`` drawn from its own seeded
    stream, so any set of slices sees the same 3D field); a slice at ``z`` mixes the
    four nearest planes with cubic B-spline weights. Real and imaginary parts of a
    filtered field are two independent unit-variance textures.

    Args:
        seed: subject seed.
        key: stream key (family, purpose).
        g: grid.
        dz: plane spacing along z (mm): the texture's z correlation length.
    """

    def __init__(self, seed: int, key: tuple[int, ...], g: Grid, dz: float):
        S, H, W = g.shape
        self.g = g
        zk = g.z[:, 0, 0].astype(np.float64) / dz
        k0 = np.floor(zk).astype(np.int64)
        t = zk - k0
        weights = np.stack(
            [(1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6, t**3 / 6], 1
        )
        weights /= np.sqrt((weights**2).sum(1, keepdims=True))
        planes: dict[int, np.ndarray] = {}
        acc = np.zeros((S, H, W), np.complex64)
        for s in range(S):
            for j in range(4):
                k = int(k0[s]) - 1 + j
                if k not in planes:
                    gen = torch.Generator().manual_seed(seed_int(seed, *key, k + (1 << 20)))
                    planes[k] = torch.view_as_complex(torch.randn((H, W, 2), generator=gen)).numpy()
                acc[s] += F32(weights[s, j]) * planes[k]
        self.spec = torch.fft.fft2(torch.from_numpy(acc))
        self.kx = np.fft.fftfreq(W, d=g.px).astype(F32)[None, None, :]
        self.ky = np.fft.fftfreq(H, d=g.px).astype(F32)[None, :, None]

    def band(self, filt, grad: bool = False):
        """Filter the noise with ``filt(kx, ky)`` (cycles/mm, real and even).

        Returns:
            complex ``(S, H, W)`` field whose real and imaginary parts are independent
            textures of unit variance (less when the band exceeds the grid's Nyquist
            limit); with ``grad=True`` also the gradient magnitudes (per mm) of the real
            and imaginary parts as a complex array ``|grad re| + 1j |grad im|``.
        """
        hk = filt(self.kx, self.ky).astype(F32)
        var = float(np.mean(hk.astype(np.float64) ** 2))
        scale = np.sqrt(_band_fraction(filt, self.g.px) / var) if var > 0 else 0.0
        spec = self.spec * torch.from_numpy(hk * F32(scale))
        field = torch.fft.ifft2(spec).numpy()
        if not grad:
            return field
        gx = torch.fft.ifft2(spec * torch.from_numpy(np.complex64(2j * np.pi) * self.kx)).numpy()
        gy = torch.fft.ifft2(spec * torch.from_numpy(np.complex64(2j * np.pi) * self.ky)).numpy()
        gre = np.sqrt(gx.real**2 + gy.real**2)
        gim = np.sqrt(gx.imag**2 + gy.imag**2)
        return field, gre + 1j * gim


def ring(k0: float, bw: float):
    """Isotropic band-pass filter centred on ``k0`` cycles/mm, width ``bw``."""
    return lambda kx, ky: np.exp(-0.5 * ((np.sqrt(kx**2 + ky**2) - k0) / bw) ** 2)


def lowpass(scale: float):
    """Gaussian low-pass: features of about ``scale`` mm."""
    return lambda kx, ky: np.exp(-0.5 * (2 * np.pi * scale) ** 2 * (kx**2 + ky**2))


def streaks(along: float, across: float, deg: float = 0.0):
    """Anisotropic texture elongated along direction ``deg`` (0 = image columns / y)."""
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)

    def f(kx, ky):
        ka = ky * c + kx * s
        kc = kx * c - ky * s
        return np.exp(-0.5 * (2 * np.pi) ** 2 * ((ka * along) ** 2 + (kc * across) ** 2)) * (
            1 - np.exp(-0.5 * (2 * np.pi * 3 * across) ** 2 * kc**2)
        )

    return f


def lines(field, gradmag, width: float, px: float):
    """Occupancy of the zero level set of ``field`` drawn ``width`` mm wide.

    ``|field| / |grad field|`` approximates the distance (mm) to the zero line.
    """
    dist = np.abs(field) / (gradmag + 1e-6)
    return soft(dist - 0.5 * width, max(px, 0.25))


def psf_blur(img: np.ndarray, g: Grid, fwhm_pe: float = 1.1, fwhm_ro: float = 0.6) -> np.ndarray:
    """Gaussian point-spread function of the acquisition (pixels), e.g. the echo-train
    blurring of fast spin echo along the phase-encoding direction (columns, ``W``).

    Args:
        img: ``(S, H, W)`` float32.
        fwhm_pe: FWHM along W in pixels; ``fwhm_ro``: along H.

    Returns:
        blurred ``(S, H, W)`` float32.
    """
    H, W = img.shape[-2:]
    kx = np.fft.rfftfreq(W).astype(F32)[None, None, :]
    ky = np.fft.fftfreq(H).astype(F32)[None, :, None]
    c = F32(np.pi**2 / (4 * np.log(2)))
    filt = np.exp(-c * ((fwhm_pe * kx) ** 2 + (fwhm_ro * ky) ** 2))
    spec = torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(img, dtype=F32))) * torch.from_numpy(filt)
    return torch.fft.irfft2(spec, s=(H, W)).numpy()


# --------------------------------------------------------------------------- stamps


def stamp(img: np.ndarray, g: Grid, objs, value_fn) -> None:
    """Draw small 3D objects in place, each only inside its bounding box.

    Args:
        img: ``(S, H, W)`` image, modified in place.
        g: grid.
        objs: iterable of ``(x0, y0, x1, y1, radius, zc, zhalf)`` in mm: a capsule
            from ``(x0, y0)`` to ``(x1, y1)`` extruded over ``|z - zc| <= zhalf``
            (rounded ends in z, so cuts near the end are thinner).
        value_fn: ``value_fn(i, local)`` -> intensity of object ``i`` given the
            image value ``local`` at its centre in this slice.
    """
    _, H, W = g.shape
    px = g.px
    x0g, y0g = float(g.x[0, 0, 0]), float(g.y[0, 0, 0])
    zs = g.z[:, 0, 0]
    for i, (xa, ya, xb, yb, r, zc, zh) in enumerate(objs):
        for s in np.nonzero(np.abs(zs - zc) < zh)[0]:
            # radius shrinks towards the ends in z: an elongated ellipsoid-like body
            frac = 1.0 - ((zs[s] - zc) / zh) ** 2
            rr = float(r) * max(float(frac), 0.0) ** 0.25
            if rr <= 0.05 * px:
                continue
            lo_x, hi_x = min(xa, xb) - rr - 2 * px, max(xa, xb) + rr + 2 * px
            lo_y, hi_y = min(ya, yb) - rr - 2 * px, max(ya, yb) + rr + 2 * px
            c0, c1 = max(int((lo_x - x0g) / px), 0), min(int((hi_x - x0g) / px) + 2, W)
            r0, r1 = max(int((lo_y - y0g) / px), 0), min(int((hi_y - y0g) / px) + 2, H)
            if c0 >= c1 or r0 >= r1:
                continue
            xx, yy = g.x[0, :, c0:c1], g.y[0, r0:r1, :]
            d, _ = segment(xx, yy, (xa, ya), (xb, yb))
            alpha = soft(d - rr, px) * (min(1.0, rr / (0.5 * px)) if rr < 0.5 * px else 1.0)
            ci = min(max(int(round(((xa + xb) / 2 - x0g) / px)), 0), W - 1)
            ri = min(max(int(round(((ya + yb) / 2 - y0g) / px)), 0), H - 1)
            v = value_fn(i, float(img[s, ri, ci]))
            if v is None:
                continue
            win = img[s, r0:r1, c0:c1]
            win += alpha * (F32(v) - win)


# --------------------------------------------------------------------------- knee
