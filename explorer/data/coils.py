"""Smooth receive-coil sensitivities and background phase for the embedded sample.

Coils are circular loops (radius ``a``) placed on a cylinder around the object; a
loop's field on its axis falls off as ``(a^2 / (a^2 + d^2))^{3/2}`` (Biot-Savart),
which we use at distance ``d`` from the loop centre, with a smooth coil-dependent
phase (a constant plus a slow ramp with distance). The maps are evaluated in 3D at
each slice position, so they vary smoothly from slice to slice, and their
root-sum-of-squares is deliberately not flat (brighter near the coils), as in real
multi-coil data.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.data.shapes import F32, Grid, make_grid, rng_for

# cylinder around the object: centre (x, y), radii (x, y), axis ('y' = image rows, 'z')
_GEOMETRY = {
    "knee": dict(centre=(10.0, 0.0), radii=(78.0, 78.0), axis="y", loop=60.0, rings=35.0),
    "brain": dict(centre=(0.0, 0.0), radii=(100.0, 120.0), axis="z", loop=90.0, rings=30.0),
    # the Stanford-like 3D FSE knee's 8-element array: tighter around the leg, smaller loops
    "knee_stanford": dict(centre=(0.0, 0.0), radii=(70.0, 70.0), axis="y", loop=45.0, rings=28.0),
}
_FAMILY_KEY = {"knee": 1, "brain": 2, "knee_stanford": 11}


def _array(family: str, array: str) -> str:
    """Geometry key of ``family``'s coil array in dataset ``array`` (``"fastmri"``: the family's own)."""
    key = family if array in ("", "fastmri") else f"{family}_{array}"
    if key not in _GEOMETRY:
        raise ValueError(f"no {array!r} coil array for {family!r}")
    return key


def _positions(family: str, coils: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coil centres ``(C, 3)`` (x, y, z in mm) and constant phases ``(C,)``."""
    geo = _GEOMETRY[family]
    rng = rng_for(seed, _FAMILY_KEY[family], 50)
    n_rings = 2 if coils >= 4 else 1
    idx = np.arange(coils)
    ring = idx % n_rings
    per_ring = int(np.ceil(coils / n_rings))
    ang = 2 * np.pi * (idx // n_rings) / per_ring + np.pi * ring / per_ring + rng.uniform(-0.08, 0.08, coils)
    ang = ang + rng.uniform(0, 2 * np.pi)
    level = (ring - (n_rings - 1) / 2) * 2 * geo["rings"] + rng.uniform(-3, 3, coils)
    cx, cy = geo["centre"]
    rx, ry = geo["radii"]
    if geo["axis"] == "y":  # leg along image rows: ring in the (x, z) plane
        pos = np.stack([cx + rx * np.cos(ang), cy + level, ry * np.sin(ang)], 1)
    else:  # head axis along z: ring in the image plane
        pos = np.stack([cx + rx * np.cos(ang), cy + ry * np.sin(ang), level], 1)
    phase = rng.uniform(-np.pi, np.pi, coils)
    return pos.astype(F32), phase.astype(F32)


def _raw_maps(g: Grid, family: str, coils: int, seed: int) -> np.ndarray:
    """Unnormalised maps ``(S, C, H, W)``: evaluated on a coarse grid, bicubic-upsampled
    (the maps are smooth, so this is exact to well below the noise level and fast)."""
    pos, phase = _positions(family, coils, seed)
    a2 = F32(_GEOMETRY[family]["loop"] ** 2)
    S, H, W = g.shape
    n = min(max(H, W), 48)
    xs = np.linspace(float(g.x.min()), float(g.x.max()), n, dtype=F32)[None, None, None, :]
    ys = np.linspace(float(g.y.min()), float(g.y.max()), n, dtype=F32)[None, None, :, None]
    zs = g.z[:, None]  # (S, 1, 1, 1)
    px, py, pz = (pos[:, i].reshape(1, -1, 1, 1) for i in range(3))
    d2 = (xs - px) ** 2 + (ys - py) ** 2 + (zs - pz) ** 2  # (S, C, n, n)
    ratio = a2 / (a2 + d2)
    mag = ratio * np.sqrt(ratio)
    ph = phase.reshape(1, -1, 1, 1) + F32(2 * np.pi / 450.0) * np.sqrt(d2)
    coarse = np.stack([mag * np.cos(ph), mag * np.sin(ph)], 2).reshape(S * coils, 2, n, n)
    if (n, n) != (H, W):
        t = torch.nn.functional.interpolate(torch.from_numpy(coarse), size=(H, W), mode="bicubic", align_corners=True)
        coarse = t.numpy()
    fine = coarse.reshape(S, coils, 2, H, W)
    return (fine[:, :, 0] + 1j * fine[:, :, 1]).astype(np.complex64)


def coil_maps(g: Grid, family: str, coils: int, seed: int, array: str = "fastmri") -> np.ndarray:
    """Complex coil sensitivities at the grid's slices.

    With ``coils == 1`` the single "coil" is the smooth magnitude profile of the
    8-element array (root-sum-of-squares, real), mimicking fastMRI's emulated
    single-coil data whose phase is carried by the image.

    Args:
        g: grid (mm).
        family: ``"knee"`` or ``"brain"``.
        coils: number of coils ``C``.
        seed: subject (jitters coil placement and phases).
        array: the dataset whose coil array is simulated (``"fastmri"``, or ``"stanford"`` for the knee).

    Returns:
        complex64 ``(S, C, H, W)``, scaled so that the RSS of the maps peaks at 1 on
        the central plane ``z = 0``.
    """
    n = 8 if coils == 1 else coils
    family = _array(family, array)
    probe = make_grid(48, 2 * float(abs(g.x).max()) + g.px, [0.0])
    norm = float(np.sqrt((np.abs(_raw_maps(probe, family, n, seed)) ** 2).sum(1)).max())
    maps = _raw_maps(g, family, n, seed) / F32(norm)
    if coils == 1:
        maps = np.sqrt((np.abs(maps) ** 2).sum(1, keepdims=True)).astype(np.complex64)
    return maps


def background_phase(g: Grid, family: str, seed: int) -> np.ndarray:
    """Smooth object phase: a random polynomial of degree 2 in ``(x, y)`` plus a z ramp.

    Args:
        g: grid (mm).
        family: ``"knee"`` or ``"brain"``.
        seed: subject.

    Returns:
        float32 radians ``(S, H, W)``.
    """
    rng = rng_for(seed, _FAMILY_KEY[family], 51)
    half = float(abs(g.x).max()) + 1e-3
    x, y, z = g.x / F32(half), g.y / F32(half), g.z / F32(half)
    c = rng.normal(size=7) * np.array([0.0, 0.9, 0.9, 0.5, 0.5, 0.4, 0.5])
    c[0] = rng.uniform(-np.pi, np.pi)
    phi = c[0] + c[1] * x + c[2] * y + c[3] * x * x + c[4] * y * y + c[5] * x * y + c[6] * z
    return phi.astype(F32)
