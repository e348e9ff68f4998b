"""The embedded sample's brain: an axial T2-like 3D subject (see :mod:`explorer.data.shapes`)."""

from __future__ import annotations

import numpy as np

from explorer.data.shapes import (  # drawing primitives
    BRAIN_ID,
    F32,
    Grid,
    NoiseVolume,
    SmoothField,
    blend,
    curve,
    ellipse,
    limb,
    lowpass,
    psf_blur,
    ring,
    rng_for,
    rot,
    soft,
    stamp,
)

BRAIN_FOV = 220.0  # mm; 0.69 mm pixels at 320
BRAIN_SPACING = 5.0
BRAIN_SPAN = 60.0

# T2 (fast spin echo) intensities
# Tissue intensities per contrast. "t2" (fastMRI AXT2): CSF bright, white matter darker than grey;
# "t1" (AXT1): CSF dark, white matter brighter than grey, fat and fatty diploe bright.
BRAIN_CONTRASTS: dict[str, dict[str, float]] = {
    "t2": {"csf": 1.0, "gm": 0.62, "wm": 0.32, "scalp_fat": 0.78, "bone": 0.04, "diploe": 0.45, "muscle": 0.28,
           "choroid": 0.55},
    "t1": {"csf": 0.12, "gm": 0.50, "wm": 0.78, "scalp_fat": 0.95, "bone": 0.04, "diploe": 0.70, "muscle": 0.35,
           "choroid": 0.45},
}


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


def brain(g: Grid, seed: int, contrast: str = "t2") -> np.ndarray:
    """Axial T2-weighted (``"t2"``) or T1-weighted (``"t1"``) brain magnitude at the level of the basal ganglia (z = 0).

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
    tv = BRAIN_CONTRASTS[contrast]
    _CSF, _GM, _WM, _SCALP_FAT, _BONE, _DIPLOE = (tv[k] for k in ("csf", "gm", "wm", "scalp_fat", "bone", "diploe"))
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
    img = blend(img, tv["muscle"] * (1 + 0.08 * fine.imag), soft(np.abs(t - (1.4 + fat_t + 0.5 * mus_t)) - 0.5 * mus_t, px))
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
        img = blend(img, tv["choroid"] * (1.0 + 0.08 * fine.imag), soft(cp, px) * zenv(0.0, 9.0) * brain_in)

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
