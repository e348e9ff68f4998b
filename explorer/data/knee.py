"""The embedded sample's knee: a sagittal proton-density-like 3D subject (see :mod:`explorer.data.shapes`)."""

from __future__ import annotations

import numpy as np

from explorer.data.shapes import (  # drawing primitives
    F32,
    KNEE_ID,
    Grid,
    NoiseVolume,
    SmoothField,
    band_profile,
    blend,
    curve,
    ellipse,
    limb,
    lines,
    lowpass,
    psf_blur,
    ring,
    rng_for,
    rot,
    segment,
    smax,
    smin,
    soft,
    stamp,
    streaks,
)

KNEE_FOV = 160.0  # mm; 0.5 mm pixels at 320
KNEE_SPACING = 3.0  # mm between slices
KNEE_SPAN = 36.0  # slices never spread over more than this (mm)

# Tissue intensities per contrast. "pd": proton density without fat suppression (fastMRI CORPD_FBK);
# "pdfs": with fat suppression (CORPDFS_FBK): fat and fatty marrow dark, fluid the brightest tissue.
KNEE_CONTRASTS: dict[str, dict[str, float]] = {
    "pd": {"fat": 0.95, "marrow": 0.85, "muscle": 0.36, "cart": 0.62, "fluid": 0.80, "dark": 0.06, "skin": 0.55,
           "streak": 0.45},
    "pdfs": {"fat": 0.14, "marrow": 0.18, "muscle": 0.30, "cart": 0.55, "fluid": 0.95, "dark": 0.05, "skin": 0.40,
             "streak": 0.05},
}
# A 3D FSE (CUBE) acquisition of the same contrast: its longer echo train weights T2 more (fluid brighter,
# muscle, cartilage and fat darker) and blurs more along the phase encoding (FWHM in pixels).
CUBE_CHANGE = {"fat": -0.07, "marrow": -0.05, "muscle": -0.06, "cart": -0.05, "fluid": 0.05, "skin": -0.05}
PSF_2D, PSF_3D = (1.1, 0.6), (1.7, 0.8)  # (phase encoding, readout)


def knee(g: Grid, seed: int, contrast: str = "pd", three_d: bool = False) -> np.ndarray:
    """Sagittal proton-density knee magnitude, without (``"pd"``) or with (``"pdfs"``) fat suppression.

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
        contrast: a key of :data:`KNEE_CONTRASTS`.
        three_d: a 3D FSE acquisition (:data:`CUBE_CHANGE` contrast, :data:`PSF_3D` blurring) instead of 2D FSE.

    Returns:
        float32 magnitude ``(S, H, W)``, about 0..1.
    """
    tv = KNEE_CONTRASTS[contrast]
    if three_d:
        tv = {k: max(0.02, v + CUBE_CHANGE.get(k, 0.0)) for k, v in tv.items()}
    _FAT, _MARROW, _MUSCLE, _CART, _FLUID, _DARK, _SKIN = (tv[k] for k in ("fat", "marrow", "muscle", "cart", "fluid",
                                                                          "dark", "skin"))
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
    mval = mval + tv["streak"] * lines(streak.imag, 1.0, 0.25, px) * np.clip(gate.imag, 0, 1)  # intermuscular fat
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
    fwhm_pe, fwhm_ro = PSF_3D if three_d else PSF_2D
    return np.clip(psf_blur(img, g, fwhm_pe, fwhm_ro), 0.0, None)


# --------------------------------------------------------------------------- brain
