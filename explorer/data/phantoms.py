"""Anatomy drawing for the embedded sample: realistic knee and brain magnitude volumes.

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
import scipy.fft as sfft
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
        self.kx = sfft.fftfreq(W, d=g.px).astype(F32)[None, None, :]
        self.ky = sfft.fftfreq(H, d=g.px).astype(F32)[None, :, None]

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
    kx = sfft.rfftfreq(W).astype(F32)[None, None, :]
    ky = sfft.fftfreq(H).astype(F32)[None, :, None]
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

KNEE_FOV = 160.0  # mm; 0.5 mm pixels at 320
KNEE_SPACING = 3.0  # mm between slices
KNEE_SPAN = 36.0  # slices never spread over more than this (mm)

# PD (no fat suppression) intensities
_FAT, _MARROW, _MUSCLE, _CART, _FLUID = 0.95, 0.85, 0.36, 0.62, 0.80
_DARK, _SKIN = 0.06, 0.55


def knee(g: Grid, seed: int) -> np.ndarray:
    """Sagittal proton-density knee magnitude (no fat suppression).

    Anterior is left, superior up. Femur, tibia and patella with cortical rims,
    trabecular marrow and physeal scars; articular cartilage on femur, tibia and
    patella; menisci (dark wedges); PCL/ACL in the notch slices, patellar and
    quadriceps tendons; muscles with fascia, intermuscular fat and fibre streaks;
    subcutaneous fat with septa and small vessels; skin; joint fluid; popliteal and
    saphenous vessels; small bright/dark lesions of 0.5-3 mm. Slices at ``z < -3`` mm
    enter the intercondylar notch.

    Args:
        g: grid (mm), ``z`` = medial-lateral position of each slice.
        seed: subject.

    Returns:
        float32 magnitude ``(S, H, W)``, about 0..1.
    """
    px = g.px
    r = rng_for(seed, KNEE_ID, 0)
    size_f = r.uniform(0.93, 1.07)
    tilt = r.uniform(-5.0, 5.0)
    off = r.uniform(-4.0, 4.0, 2)
    # anatomical coordinates: u anterior(-)->posterior(+), v superior(-)->inferior(+)
    u, v = rot(g.x, g.y, off[0], off[1], tilt)
    u, v = u / F32(size_f), v / F32(size_f)
    z = g.z
    big = SmoothField(rng_for(seed, KNEE_ID, 1), 60.0)(g)
    mid = SmoothField(rng_for(seed, KNEE_ID, 2), 18.0)(g)

    tex = NoiseVolume(seed, (KNEE_ID, 10), g, dz=1.5)
    fine = tex.band(ring(0.45, 0.2))  # trabecular scale
    trab, trab_g = tex.band(ring(0.55, 0.12), grad=True)
    streak = tex.band(streaks(along=5.0, across=0.5))
    tex2 = NoiseVolume(seed, (KNEE_ID, 11), g, dz=4.0)
    septa, septa_g = tex2.band(streaks(along=6.0, across=2.0, deg=10.0), grad=True)
    gate = tex2.band(lowpass(4.0))
    coarse = gate.imag

    # ---- silhouette, fat, skin
    ant = -46.0 + 12.0 / (1 + np.exp(-(v - 22.0) / 9.0))
    post = 67.0 + 7.0 / (1 + np.exp(-(v - 25.0) / 15.0)) + 3.0 / (1 + np.exp((v + 60.0) / 12.0)) - 0.03 * z**2
    sdf_leg = np.maximum(ant - u, u - post) + 2.0 * big
    leg = soft(sdf_leg, px)
    inner = sdf_leg + 6.5 + 2.5 * big + 1.0 * mid  # inner border of the subcutaneous fat
    septa_on = np.clip(gate.imag * 1.5 - 0.5, 0, 1)
    fat = _FAT * (1.0 + 0.03 * fine.real) * (1.0 - 0.3 * lines(septa.real, septa_g.real, 0.35, px) * septa_on)
    # small vessels in fat: gated zero lines of a second field (open, curvy, dark)
    vessels = lines(septa.imag, septa_g.imag, 0.6, px) * np.clip((gate.real - 0.7) * 3, 0, 1)
    fat = fat * (1.0 - 0.8 * vessels)
    img = (leg * fat).astype(F32)
    dermis = soft(-sdf_leg - 1.6, px) * leg
    img = blend(img, _SKIN * (1 + 0.05 * fine.imag), dermis)

    # ---- bones (SDFs; drawn later, needed to shape muscles)
    notch = np.clip((-z - 3.0) / 6.0, 0.0, 1.0)  # 0 in the condyle, -> 1 in the notch
    cond_scale = np.sqrt(np.clip(1.0 - ((z - 6.0) / 30.0) ** 2, 0.2, 1.0))
    shaft = limb(u, v, [(4.0, -130.0), (5.0, -14.0)], [13.5, 15.0])
    condyle = ellipse(u, v, 10.0, -6.0, 24.0 * cond_scale, 19.0 * cond_scale)
    post_cond = ellipse(u, v, 17.0, -8.0, 17.5 * cond_scale, 18.0 * cond_scale)
    femur = smin(smin(shaft, condyle, 16.0), post_cond, 4.0) + 0.7 * mid
    roof = (v - (-4.0 - 0.55 * (u - 5.0))) * 0.87  # Blumensaat line
    femur = smax(femur, roof - 45.0 * (1.0 - notch), 3.0)
    plateau = 17.5 + 0.12 * u
    hw = 14.0 + 12.0 * np.exp(-(((v - 17.0) / 22.0) ** 2))
    tibia = smax(np.abs(u - 3.0) - hw, (plateau - v) * 0.99, 3.0)
    tibia = smin(tibia, ellipse(u, v, -21.0, 40.0, 5.0, 12.0), 5.0) + 0.6 * mid
    spine = ellipse(u, v, 4.0, 16.0, 5.0, 4.0)  # tibial spines, notch slices only
    tibia = smin(tibia, spine + 8.0 * (1.0 - notch), 3.0)
    pat_c, pat_deg = (-31.0, -24.0), -8.0
    pat_z = np.clip(1.0 - np.abs(z) / 30.0, 0.0, 1.0)
    pu, pv = rot(u, v, *pat_c, pat_deg)
    # flatter anterior surface, pointed inferior pole
    pat_rx = 8.5 * (1.0 - 0.35 * np.clip(pv / 19.0, 0.0, 1.0)) * (1.0 - 0.15 * (pu < 0).astype(F32))
    patella = ellipse(pu, pv, 0.0, 0.0, pat_rx, 19.0) + 0.4 * mid + 10.0 * (1.0 - pat_z)

    # ---- large vessels (under the muscles): popliteal artery (flow void) and vein,
    # great saphenous vein in the subcutaneous fat
    for uc, zc, rad, val in ((34.0, -2.0, 3.4, 0.08), (40.0, -1.0, 4.0, 0.5), (None, 5.0, 2.2, 0.30)):
        rz = np.sqrt(np.clip(rad**2 - (z - zc) ** 2, 0.0, None))
        cu = post - 6.0 + 2.0 * big if uc is None else uc - 0.08 * v - 0.0012 * v**2 + 1.5 * big
        img = blend(img, val, soft(np.abs(u - cu) - rz, px) * leg * (rz > 0))

    # ---- muscles: fill the compartments inside the subcutaneous fat; fascia = dark rim
    muscles = [
        ([(-24, -130), (-24, -72), (-20, -52)], [17, 14, 4]),  # vastus (quadriceps)
        ([(46, -130), (42, -62), (36, -30)], [27, 20, 4]),  # semimembranosus
        ([(30, -28), (41, 2), (50, 50), (50, 120)], [5, 13, 19, 19]),  # medial gastrocnemius
        ([(27, 42), (29, 72), (29, 120)], [4, 9, 10]),  # soleus
        ([(29, 27), (21, 44), (13, 56)], [3, 6, 3]),  # popliteus
        ([(16, 64), (17, 120)], [4, 6]),  # deep flexors
    ]
    mval = _MUSCLE * (1 + 0.10 * streak.real + 0.04 * fine.real)
    # fatty streaks between fibre bundles: a narrow value band of the streak texture
    mval = mval + 0.45 * lines(streak.imag, 1.0, 0.25, px) * np.clip(gate.imag, 0, 1)
    for pts, rad in muscles:
        sd = smax(limb(u, v, pts, rad) + 1.2 * mid, inner, 2.0)
        img = blend(img, mval, soft(sd + 0.6, px) * leg)
        img = blend(img, 0.2, soft(np.abs(sd + 0.45) - 0.2, px) * leg)  # fascia

    # ---- joint fluid: suprapatellar and posterior recesses (drawn under cartilage)
    recess = limb(u, v, [(-25.0, -44.0), (-19.0, -58.0), (-12.0, -66.0)], [1.2, 1.6, 0.6])
    img = blend(img, _FLUID, soft(recess + 0.4 * mid, px))
    img = blend(img, _FLUID, soft(ellipse(u, v, 30.0, -14.0, 3.0, 8.0, 20.0), px) * (1 - notch))

    # ---- cartilage, thickness tapered to 0 at its ends
    w_f = np.clip((v + 33.0 - 0.35 * np.clip(u, 0, 30)) / 6.0, 0.0, 1.0) * (1.0 - notch)
    w_f = w_f * np.clip((34.0 - u) / 4.0, 0, 1)
    cart_f = soft(femur - 2.4 * w_f, px) * (w_f > 0.05)
    w_t = band_profile(u, -19.0, 24.0, 5.0) * (1.0 - 0.8 * notch)
    cart_t = soft(tibia - 2.1 * w_t, px) * (w_t > 0.05)
    w_p = np.clip(pu / 3.0, 0, 1) * band_profile(pv, -15.0, 14.0, 4.0)
    cart_p = soft(patella - 3.4 * w_p, px) * (w_p > 0.05)
    cval = _CART * (1.0 + 0.05 * fine.imag)
    for c, sd in ((cart_f, femur), (cart_t, tibia), (cart_p, patella)):
        depth = np.clip(sd / 2.5, 0.0, 1.0)  # 0 at bone, 1 at the surface
        img = blend(img, cval * (0.82 + 0.25 * depth), c)

    # ---- menisci: wedges between the femoral and tibial cartilage at the periphery
    top_t = plateau - 2.1
    outside = np.minimum(femur - 2.4 * w_f, tibia - 2.1 * w_t)
    for apex, base, height in ((12.0, 28.5, 8.0), (-8.0, -21.0, 6.5)):
        frac = (u - apex) / (base - apex)
        wedge = np.maximum((top_t - v) - height * np.clip(frac, 0, 1.0), -(top_t + 0.2 - v))
        wedge = np.maximum(wedge, np.maximum(-frac * 8.0, (frac - 1.0) * 8.0))
        wedge = np.maximum(wedge, -outside + 0.3)
        mval = _DARK * (1.3 + 0.8 * np.clip(fine.real, 0, None))
        img = blend(img, mval, soft(wedge + 0.4, 1.6 * px) * (1.0 - notch))

    # ---- bone: dark cortex, marrow with trabecular network and a physeal scar
    trab_net = lines(trab.real, trab_g.real, 0.32, px)
    marrow = _MARROW * (1.0 + 0.07 * fine.real + 0.05 * mid) * (1.0 - 0.16 * trab_net)
    wavy = 0.8 * mid + 0.35 * coarse
    scar_f = soft(np.abs(v - (-24.0 + 4.0 * np.cos((u - 5.0) / 9.0)) - wavy) - 0.4, px) * (0.6 + 0.4 * gate.real)
    scar_t = soft(np.abs(v - (34.0 - 3.0 * np.cos((u - 3.0) / 10.0)) - wavy) - 0.4, px) * (0.6 + 0.4 * gate.real)
    t_cf = 0.8 + 3.2 / (1 + np.exp((v + 50.0) / 7.0))
    t_ct = 0.8 + 2.4 / (1 + np.exp(-(v - 55.0) / 7.0))
    for sd, tc, scar in ((femur, t_cf, scar_f), (tibia, t_ct, scar_t), (patella, 1.1, 0.0)):
        img = blend(img, _DARK * 0.6, soft(sd, px))
        img = blend(img, marrow * (1.0 - 0.5 * scar), soft(sd + tc, px))

    # ---- tendons and ligaments (dark, with faint longitudinal striation)
    lig = _DARK * (1.0 + 1.5 * np.clip(streak.real, 0, None))
    d, t = curve(u, v, [(-34.0, -42.0), (-33.0, -62.0), (-28.0, -85.0)], n=6)  # quadriceps tendon
    img = blend(img, lig, soft(d - 3.2 + 1.2 * t + 0.3 * mid, px) * pat_z)
    d, t = curve(u, v, [(-34.5, -6.5), (-32.0, 16.0), (-25.0, 37.0)], n=6)  # patellar tendon
    img = blend(img, lig, soft(d - (2.0 + 1.2 * t**2) + 0.3 * mid, px) * pat_z)
    not_bone = (1.0 - soft(femur, px)) * (1.0 - soft(tibia, px))
    pcl_w = np.clip(1.0 - np.abs(z + 6.0) / 5.0, 0.0, 1.0)
    d, t = curve(u, v, [(23.0, 26.0), (19.0, -6.0), (-2.0, -2.0)])
    pcl = soft(d - 3.4 * np.minimum(1.6 * pcl_w, 1.0) ** 0.5, px) * (pcl_w > 0.05) * not_bone
    img = blend(img, lig * 0.8, pcl)
    acl_w = np.clip(1.0 - np.abs(z + 11.0) / 4.5, 0.0, 1.0)
    d, t = segment(u, v, (-5.0, 18.0), (17.0, -7.0))
    img = blend(img, 0.18 + 0.25 * lines(streak.imag, 1.0, 0.4, px), soft(d - 3.0, px) * acl_w * not_bone)
    d, t = curve(u, v, [(35.0, -36.0), (34.0, -22.0), (29.0, -13.0)], n=6)  # gastrocnemius origin
    img = blend(img, lig, soft(d - 0.6 - 0.8 * t, px) * not_bone)

    # ---- small lesions / focal spots: 3D blobs of 0.3-1.4 mm radius, random contrast
    rl = rng_for(seed, KNEE_ID, 3)
    n = 160
    cx, cy = rl.uniform(-60.0, 70.0, n), rl.uniform(-75.0, 75.0, n)
    rad = rl.choice([0.3, 0.45, 0.6, 0.8, 1.0, 1.4], n)
    zc = rl.uniform(-KNEE_SPAN / 2 - 6, KNEE_SPAN / 2 + 6, n)
    zh = rl.uniform(1.5, 5.0, n)
    ang = rl.uniform(0, np.pi, n)
    ln = np.where(rl.uniform(0.0, 1.0, n) < 0.25, rl.uniform(1.0, 4.0, n), 0.0)
    dark = rl.uniform(0.0, 1.0, n) < 0.5
    dx, dy = ln * np.cos(ang), ln * np.sin(ang)
    objs = list(zip(cx - dx, cy - dy, cx + dx, cy + dy, rad, zc, zh))

    def lesion_value(i: int, local: float):
        if local < 0.15:
            return None  # not in air or inside cortex
        return 0.25 * local if (local > 0.55 or dark[i]) else min(1.0, local + 0.45)

    stamp(img, g, objs, lesion_value)

    # ---- small vessels crossing the slice (genicular branches): dark dots in fat
    n_v = 140
    vx, vy = rl.uniform(-50.0, 70.0, n_v), rl.uniform(-78.0, 78.0, n_v)
    voids = list(zip(vx, vy, vx, vy, rl.uniform(0.3, 0.9, n_v), rl.uniform(-25, 25, n_v), rl.uniform(2, 8, n_v)))
    stamp(img, g, voids, lambda i, local: 0.15 if local > 0.75 else None)
    return np.clip(psf_blur(img, g), 0.0, None)


# --------------------------------------------------------------------------- brain

BRAIN_FOV = 220.0  # mm; 0.69 mm pixels at 320
BRAIN_SPACING = 5.0
BRAIN_SPAN = 60.0

# T2 (fast spin echo) intensities
_CSF, _GM, _WM, _SCALP_FAT, _BONE, _DIPLOE = 1.0, 0.62, 0.32, 0.78, 0.04, 0.45


def _wrap(a):
    """Angles wrapped to ``[-pi, pi)``."""
    return (a + np.pi) % (2 * np.pi) - np.pi


def _step(p, ang, length):
    """``p`` moved ``length`` mm inwards along direction ``ang`` (``p``: ``(2, S)``)."""
    return p + length * np.stack([-np.cos(ang), -np.sin(ang)])


def _seg(x, y, ax, ay, bx, by):
    """Distance to segments with per-slice endpoints (arrays ``(S, 1, 1)``)."""
    bax, bay = bx - ax, by - ay
    pax, pay = x - ax, y - ay
    t = np.clip((pax * bax + pay * bay) / (bax * bax + bay * bay + 1e-9), 0.0, 1.0)
    return np.sqrt((pax - t * bax) ** 2 + (pay - t * bay) ** 2)


def _sulci(g: Grid, u, v, to_xy, ra, rb, vc: float, seed: int, n_primary: int) -> np.ndarray:
    """Distance (mm) to the cortical sulci, each a bent, sometimes branched polyline.

    A sulcus starts just outside the brain surface at angle ``theta`` (ellipse with
    semi-axes ``ra, rb`` per slice, centre ``(0, vc)``) and runs inwards for its depth;
    angle, depth and bends drift smoothly with ``z`` and sulci fade in and out along
    ``z``, so neighbouring slices show the same folds, slightly moved. Each sulcus is
    evaluated only inside its bounding box.

    Returns:
        float32 ``(S, H, W)`` distances (large where no sulcus is near).
    """
    S, H, W = g.shape
    out = np.full((S, H, W), 99.0, F32)
    rs = rng_for(seed, BRAIN_ID, 6)
    n_sec = int(0.8 * n_primary)
    n = n_primary + n_sec
    primary = np.arange(n) < n_primary
    even = 2 * np.pi * (np.arange(n) + rs.uniform(-0.3, 0.3, n)) / n_primary
    theta0 = np.where(primary, even, rs.uniform(0, 2 * np.pi, n))
    depth0 = np.where(primary, rs.uniform(8.0, 22.0, n), rs.uniform(3.0, 8.0, n))
    zc, hz = rs.uniform(-50.0, 50.0, n), rs.uniform(30.0, 70.0, n)
    slope = rs.normal(0.0, 0.006, n)
    bend = rs.normal(0.0, 0.45, (n, 3))
    bend_z = rs.normal(0.0, 0.012, (n, 3))
    branch = np.where(rs.uniform(0, 1, n) < 0.45, rs.choice([-1.0, 1.0], n) * rs.uniform(0.5, 1.0, n), 0.0)
    zs = g.z[:, 0, 0].astype(np.float64)
    x0g, y0g, px = float(g.x[0, 0, 0]), float(g.y[0, 0, 0]), g.px
    for k in range(n):
        length = depth0[k] * np.sqrt(np.clip(1.0 - ((zs - zc[k]) / hz[k]) ** 2, 0.0, 1.0))
        if not np.any(length > 0.5):
            continue
        th = theta0[k] + slope[k] * zs
        # not along the interhemispheric fissure
        valid = (length > 0.5) & (np.abs(np.abs(_wrap(th)) - np.pi / 2) > 0.1)
        if not valid.any():
            continue
        c, s_ = np.cos(th), np.sin(th)
        rad = 1.0 / np.sqrt((c / ra) ** 2 + (s_ / rb) ** 2)
        p0 = np.stack([(rad + 3.0) * c, vc + (rad + 3.0) * s_])
        b1, b2, b3 = (bend[k, j] * (0.5 if j == 0 else 1.0) + bend_z[k, j] * zs for j in range(3))
        p1 = _step(p0, th + b1, 3.0 + 0.35 * length)
        p2 = _step(p1, th + b1 + b2, 0.35 * length)
        p3 = _step(p2, th + b1 + b2 + b3, 0.3 * length)
        segs = [(p0, p1), (p1, p2), (p2, p3)]
        if branch[k]:
            segs.append((p1, _step(p1, th + b1 + branch[k], 0.4 * length)))
        pts = np.concatenate([p0, p1, p2, p3] + [sg[1] for sg in segs[3:]], 1)
        margin = 6.0
        cu = [pts[0].min() - margin, pts[0].max() + margin]
        cv = [pts[1].min() - margin, pts[1].max() + margin]
        xs, ys = to_xy(np.array([cu[0], cu[0], cu[1], cu[1]]), np.array([cv[0], cv[1], cv[0], cv[1]]))
        c0, c1 = max(int((xs.min() - x0g) / px), 0), min(int((xs.max() - x0g) / px) + 2, W)
        r0, r1 = max(int((ys.min() - y0g) / px), 0), min(int((ys.max() - y0g) / px) + 2, H)
        if c0 >= c1 or r0 >= r1:
            continue
        uw, vw = u[..., r0:r1, c0:c1], v[..., r0:r1, c0:c1]
        dist = None
        for a, b in segs:
            dd = _seg(uw, vw, *(F32(q).reshape(-1, 1, 1) for q in (a[0], a[1], b[0], b[1])))
            dist = dd if dist is None else np.minimum(dist, dd)
        dist = np.where(valid.reshape(-1, 1, 1), dist, F32(99.0))
        np.minimum(out[:, r0:r1, c0:c1], dist, out=out[:, r0:r1, c0:c1])
    return out


def brain(g: Grid, seed: int) -> np.ndarray:
    """Axial T2-weighted brain magnitude at the level of the basal ganglia (z = 0).

    Anterior is up. Scalp (skin, fat, temporalis muscle), skull (outer and inner
    tables, diploe), subarachnoid CSF; cortex as a grey-matter ribbon about 3 mm thick
    around the brain surface and around every sulcus (bent, branched CSF clefts of
    3-22 mm depth, see :func:`_sulci`), so that white matter reaches into the gyri;
    interhemispheric fissure with falx, Sylvian fissures with insular cortex; lateral
    and third ventricles with choroid plexus; caudate, putamen, globus pallidus,
    thalamus; flow voids in the sulci, perivascular spaces, white-matter lesions
    (0.7-6 mm) and microbleeds; subtle texture. Higher ``z`` moves towards the vertex
    (ventricular bodies, centrum semiovale), lower towards the third ventricle.

    Args:
        g: grid (mm), ``z`` = head-foot position (+ superior) of each slice.
        seed: subject.

    Returns:
        float32 magnitude ``(S, H, W)``, about 0..1.
    """
    px = g.px
    r = rng_for(seed, BRAIN_ID, 0)
    size_f = r.uniform(0.94, 1.05)
    tilt = r.uniform(-4.0, 4.0)
    off = r.uniform(-3.0, 3.0, 2)
    n_gyri = int(r.integers(40, 47))
    age = r.uniform(0.0, 1.0)  # wider sulci and ventricles, more lesions
    u, v = rot(g.x, g.y, off[0], off[1], tilt)  # u: right->left of image, v: anterior(-)->posterior(+)
    u, v = u / F32(size_f), v / F32(size_f)
    z = g.z
    big = SmoothField(rng_for(seed, BRAIN_ID, 1), 70.0)(g)
    mid = SmoothField(rng_for(seed, BRAIN_ID, 2), 22.0)(g)
    deep = SmoothField(rng_for(seed, BRAIN_ID, 4), 14.0, n=8)(g)

    tex = NoiseVolume(seed, (BRAIN_ID, 10), g, dz=2.0)
    fine = tex.band(ring(0.35, 0.18))
    coarse = tex.band(lowpass(3.0))

    # ---- head: scalp and skull layers by depth below the skin
    zf = np.sqrt(np.clip(1.0 - ((z + 20.0) / 110.0) ** 2, 0.3, 1.0))
    ax = 73.0 * zf * (1.0 + 0.05 * v / 90.0)
    head = ellipse(u, v, 0.0, 4.0, ax, 92.0 * zf) + 1.2 * big
    t = -head  # depth below the skin (mm)
    inside = soft(head, px)
    img = inside * (_SCALP_FAT * (1.0 + 0.04 * fine.real))
    img = blend(img, 0.5, soft(t - 1.4, px) * inside)  # skin
    temporal = np.clip(1.0 - ((v + 8.0) / 40.0) ** 2, 0.0, 1.0) * np.clip((np.abs(u) - 35.0) / 20.0, 0, 1)
    fat_t = 3.0 + 0.6 * mid
    mus_t = 7.0 * temporal * np.clip((10.0 - z) / 20.0, 0.0, 1.0)
    img = blend(img, 0.28 * (1 + 0.08 * fine.imag), soft(np.abs(t - (1.4 + fat_t + 0.5 * mus_t)) - 0.5 * mus_t, px))
    skull0 = 1.4 + fat_t + mus_t + 0.6
    dip = 2.2 + 2.0 * (v / 92.0) ** 2 + 0.6 * mid
    t_out, t_in = 1.4, 1.3
    skull1 = skull0 + t_out + dip + t_in
    img = blend(img, _BONE, soft(np.abs(t - 0.5 * (skull0 + skull1)) - 0.5 * (skull1 - skull0), px))
    diploe = _DIPLOE * (1.0 + 0.25 * fine.imag + 0.2 * coarse.real)
    img = blend(img, diploe, soft(np.abs(t - (skull0 + t_out + 0.5 * dip)) - 0.5 * dip, px))
    csf_t = 1.0 + 0.8 * age + 0.5 * np.abs(mid)
    d = t - skull1 - csf_t  # depth below the brain surface (mm)
    img = blend(img, _CSF, soft(skull1 - t, px))  # everything below the inner table starts as CSF

    # ---- cortical folding: distance to the CSF skeleton (surface, sulci, fissures)
    sc, tc = np.cos(np.deg2rad(tilt)), np.sin(np.deg2rad(tilt))

    def to_xy(uu, vv):  # inverse of the (u, v) transform, for bounding boxes
        uu, vv = uu * size_f, vv * size_f
        return sc * uu - tc * vv + off[0], tc * uu + sc * vv + off[1]

    s_dist = _sulci(g, u, v, to_xy, zf[:, 0, 0] * 60.0, zf[:, 0, 0] * 79.0, 4.0, seed, n_gyri)
    # interhemispheric fissure, open except where the corpus callosum bridges it
    u_mid = 1.0 * np.sin(v / 35.0) + 0.5 * big + 0.4 * mid
    gap = np.clip((20.0 - z) / 10.0, 0.0, 1.0)
    v_genu, v_spl = -24.0 * gap, 34.0 * gap
    fiss = np.sqrt((u - u_mid) ** 2 + np.maximum(np.minimum(v - v_genu, v_spl - v), 0.0) ** 2)
    # Sylvian fissures (lateral sulci) down to the insulae
    syl_w = np.clip((14.0 - np.abs(z + 4.0)) / 4.0, 0.0, 1.0)
    syl = None
    for sgn in (-1.0, 1.0):
        dl, _ = curve(u, v, [(sgn * 68.0, -2.0), (sgn * 50.0, -12.0), (sgn * 38.0, -5.0)], n=6)
        di, _ = curve(u, v, [(sgn * 34.0, -24.0), (sgn * 40.0, -4.0), (sgn * 35.0, 15.0)], n=6)
        dl = np.minimum(dl, di)
        syl = dl if syl is None else np.minimum(syl, dl)
    syl = syl + 40.0 * (1.0 - syl_w)
    skeleton = np.minimum(np.minimum(d, s_dist), np.minimum(fiss, syl))

    brain_in = soft(-d, px)
    w_s = 0.35 + 0.35 * age + 0.5 * np.exp(-np.maximum(d, 0.0) / 3.0)
    csf = np.maximum(soft(s_dist - w_s, px), soft(fiss - 0.9 - 0.5 * age, px))
    csf = np.maximum(csf, soft(syl - 0.8 - 0.4 * age, px))
    t_gm = 2.8 + 0.35 * deep
    wm_a = soft(t_gm - skeleton, px)
    tissue = _GM * (1.0 + 0.03 * fine.real + 0.03 * coarse.imag)
    tissue = blend(tissue, _WM * (1.0 + 0.03 * fine.real + 0.05 * mid), wm_a)
    img = blend(img, tissue, brain_in * (1.0 - csf))
    img = blend(img, 0.15, soft(np.abs(u - u_mid) - 0.25, px) * soft(fiss - 1.0, px) * brain_in)  # falx

    # ---- deep grey nuclei and claustrum (ellipses that shrink away from their z range)
    def zenv(zc, hz):
        return np.sqrt(np.clip(1.0 - ((z - zc) / hz) ** 2, 0.0, 1.0))

    for sgn in (-1.0, 1.0):
        nuclei = [
            ((sgn * 24.0, -5.0), (5.5, 15.0), -sgn * 14.0, zenv(-4.0, 15.0), 0.50),  # putamen
            ((sgn * 17.0, -3.0), (3.2, 8.5), -sgn * 20.0, zenv(-6.0, 10.0), 0.34),  # globus pallidus
            ((sgn * 10.0, 13.0), (8.0, 11.0), sgn * 15.0, zenv(-5.0, 13.0), 0.49),  # thalamus
            ((sgn * 10.5, -17.0), (5.0, 8.0), -sgn * 20.0, zenv(0.0, 16.0), 0.55),  # caudate head
        ]
        for (cx, cy), (rx, ry), deg, env, val in nuclei:
            sd = ellipse(u, v, cx, cy, rx * env + 1e-3, ry * env + 1e-3, deg) + 0.5 * mid
            img = blend(img, val * (1.0 + 0.03 * fine.imag), soft(sd, px) * (env > 0.05) * brain_in)

    # ---- ventricles (CSF) with choroid plexus
    grow = 1.0 + 0.5 * age
    vent = None
    for sgn in (-1.0, 1.0):
        f_front, f_body, f_atr = zenv(2.0, 14.0), zenv(14.0, 13.0), zenv(0.0, 12.0)
        # frontal horn -> (foramen of Monro) -> body -> atrium -> occipital horn; the body
        # lies above the thalamus, so at z = 0 horn and atrium taper off separately
        pts = [(sgn * 4.2, -30.0), (sgn * 6.5, -14.0), (sgn * 7.5, -4.0), (sgn * 10.0, 10.0),
               (sgn * 15.0, 22.0), (sgn * 14.0, 38.0)]
        rad = [3.0 * f_front, 4.2 * f_front, 3.2 * f_body, 3.2 * f_body, 5.0 * f_atr, 1.6 * f_atr]
        rad = [rr * grow for rr in rad]
        lv = limb(u, v, pts, rad) + 0.4 * mid
        lv = np.maximum(lv, 1.0 - sgn * u)  # septum pellucidum
        vent = lv if vent is None else np.minimum(vent, lv)
    third = np.maximum(np.abs(u) - 1.5 * grow, np.abs(v - 3.0) - 10.0) + 40.0 * (1.0 - zenv(-8.0, 10.0))
    vent = np.minimum(vent, third)
    img = blend(img, _CSF, soft(vent, px) * brain_in)
    for sgn in (-1.0, 1.0):
        cp = ellipse(u, v, sgn * 16.0, 24.0, 2.6, 4.5, sgn * 25.0) + 0.6 * mid
        img = blend(img, 0.55 * (1.0 + 0.08 * fine.imag), soft(cp, px) * zenv(0.0, 9.0) * brain_in)

    # ---- small things: flow voids, perivascular spaces, lesions, microbleeds
    rs = rng_for(seed, BRAIN_ID, 5)
    n_v = 260
    ang = rs.uniform(0, 2 * np.pi, n_v)
    rr = np.sqrt(rs.uniform(0.3, 1.0, n_v)) * 80.0
    vx, vy = rr * np.cos(ang) * 0.8, rr * np.sin(ang) + 4.0
    voids = list(zip(vx, vy, vx, vy, rs.uniform(0.35, 0.8, n_v), rs.uniform(-40, 40, n_v), rs.uniform(3, 12, n_v)))
    stamp(img, g, voids, lambda i, local: 0.12 if local > 0.8 else None)

    n_p = 120
    ang = rs.uniform(0, 2 * np.pi, n_p)
    rr = np.sqrt(rs.uniform(0.02, 0.45, n_p)) * 70.0
    px0, py0 = rr * np.cos(ang) * 0.8, rr * np.sin(ang) + 4.0
    ln = rs.uniform(1.0, 4.0, n_p)
    pvs = list(zip(px0, py0, px0 + ln * np.cos(ang), py0 + ln * np.sin(ang),
                   rs.uniform(0.3, 0.55, n_p), rs.uniform(-40, 40, n_p), rs.uniform(2, 5, n_p)))
    stamp(img, g, pvs, lambda i, local: 0.85 if 0.25 < local < 0.62 else None)

    n_l = int(30 + 40 * age)
    ang = rs.uniform(0, 2 * np.pi, n_l)
    rr = np.sqrt(rs.uniform(0.02, 0.5, n_l)) * 70.0
    lx, ly = rr * np.cos(ang) * 0.75, rr * np.sin(ang) + 4.0
    lrad = rs.choice([0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0], n_l, p=[0.2, 0.2, 0.18, 0.15, 0.12, 0.1, 0.05])
    la = rs.uniform(0, np.pi, n_l)
    ll = rs.uniform(0.0, 0.8, n_l) * lrad
    bleed = (rs.uniform(0, 1, n_l) < 0.25) & (lrad <= 0.7)
    les = list(zip(lx - ll * np.cos(la), ly - ll * np.sin(la), lx + ll * np.cos(la), ly + ll * np.sin(la),
                   lrad, rs.uniform(-40, 40, n_l), rs.uniform(2.0, 7.0, n_l)))

    def lesion_value(i: int, local: float):
        if not 0.22 < local < 0.45:
            return None  # white matter only
        return 0.08 if bleed[i] else 0.82

    stamp(img, g, les, lesion_value)
    return np.clip(psf_blur(img, g), 0.0, None)
