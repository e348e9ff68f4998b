"""The teaching mode's primer sections: the k-space explorer, masks and their PSFs, coils and SENSE; each computed from
the current source's middle slice (:class:`~explorer.ui.teaching.slice.TeachingSlice`) by
:mod:`explorer.teaching.lessons` and the cached library calls of :mod:`explorer.ui.cache`. Widget keys:
``home.teach.*``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer.errors import ExplorerError
from explorer.figures import images as figures
from explorer.figures import style
from explorer.figures import teaching as tfig
from explorer.masks import MaskConfig
from explorer.physics import center_crop, ifft2c
from explorer.recon.base import MethodInstance
from explorer.teaching import lessons as teaching
from explorer.ui import widgets
from explorer.ui.teaching.slice import CHART, PSF_MASKS, PX, TeachingSlice

DB_FLOOR = -60.0  # the PSF tiles' and profile's floor in dB: low enough for incoherent (2D) side lobes to show


def kspace_section(data: TeachingSlice) -> None:
    st.markdown("Every k-space sample is one spatial frequency of the whole image. Keep only a **region** of "
                "k-space, zero the rest, and see the image that region alone makes (the coil root-sum-of-squares of "
                "the inverse FFT). The **centre** (low frequencies) carries the contrast and the coarse shapes, "
                "and almost all the energy; the **periphery** (high frequencies) carries edges and fine detail.")
    c1, c2, c3 = st.columns([2, 1, 1])
    kind = c1.radio("Region", list(teaching.REGION_KINDS), format_func=teaching.REGION_KINDS.get, horizontal=True,
                    key="home.teach.region")
    band = kind in ("rows", "columns")
    label = {"annulus": "Inner radius", "rows": "Half-height", "columns": "Half-width"}.get(kind, "Radius")
    radius = c2.slider(label, 0.0, teaching.MAX_RADIUS, 0.1, 0.01, key="home.teach.radius",
                       help="In units of the k-space half-size (1 = the edge of k-space, √2 = its corners)"
                            + (": the band keeps the rows/columns this close to the centre." if band else "."))
    outer = 1.0
    if kind == "annulus":
        if "home.teach.outer" not in st.session_state:  # first shown: a band 0.2 wide outside the inner radius
            st.session_state["home.teach.outer"] = round(min(float(radius) + 0.2, teaching.MAX_RADIUS), 2)
        outer = c3.slider("Outer radius", 0.0, teaching.MAX_RADIUS, step=0.01, key="home.teach.outer",
                          help="The band keeps the frequencies between the inner and the outer radius.")
    try:
        region = teaching.Region(kind, float(radius), float(outer))
    except ExplorerError as exc:
        widgets.show_error(exc)
        return
    kspace = data.slice.kspace
    pattern = teaching.region_mask(region, tuple(kspace.shape[-2:]))
    if not pattern.any():
        widgets.show_error(ExplorerError("this region holds no k-space sample: widen it"))
        return
    image = teaching.region_image(kspace, pattern, data.crop)
    full = teaching.region_image(kspace, np.ones(pattern.shape, bool), data.crop)
    share = teaching.energy_share(kspace, pattern)
    cols = st.columns(3)
    cols[0].plotly_chart(tfig.region_kspace_figure(kspace.numpy(), pattern, f"{teaching.REGION_KINDS[kind]} in k-space",
                                                   height=PX), key="home.teach.region_kspace", theme=None, config=CHART)
    cols[1].plotly_chart(figures.image_figure(image, f"Image of the region · {100 * share:.2f}% of the energy",
                                              (0.0, float(image.max()) or 1.0), height=PX),
                         key="home.teach.region_image", theme=None, config=CHART)
    cols[2].plotly_chart(figures.image_figure(full, "Image of the full k-space", (0.0, float(full.max()) or 1.0),
                                              height=PX), key="home.teach.region_full", theme=None, config=CHART)
    st.caption(f"{100 * pattern.mean():.1f}% of the k-space samples hold {100 * share:.2f}% of its energy (all "
               f"coils). Each image has its own window (0 to its maximum). Try a centre disc of radius 0.05 "
               f"(blurred but recognisable: contrast), then the periphery outside it (edges only); their coil "
               f"images add up to the full image exactly, since the Fourier transform is linear.")


# ----------------------------------------------------------------------------- masks and PSFs

def masks_section(data: TeachingSlice) -> None:
    st.markdown("A sampling mask multiplies k-space, so the zero-filled image is the true image **convolved with "
                "the mask's point-spread function** (PSF = |inverse FFT of the mask|). Equispaced lines give a PSF "
                "with R strong replicas: **coherent** aliasing, folded copies of the anatomy. Random lines and 2D "
                "Poisson-disc points spread the same energy over many weak side lobes: **incoherent**, noise-like "
                "aliasing. Sparse (compressed-sensing) recovery can remove noise-like aliasing, because a sparse "
                "image stands out from it, but it cannot tell a coherent copy from anatomy.")
    c1, c2, c3, c4 = st.columns([1, 2, 1, 1])
    acceleration = c1.slider("Acceleration R", 2, 8, 4, key="home.teach.psf_accel",
                             help="Nominal acceleration of every mask (with fastMRI's default centre fraction); the "
                                  "notes under the table say how each mask's actual R comes about.")
    kinds = c2.multiselect("Masks", list(widgets.MASK_LABELS), default=list(PSF_MASKS), format_func=widgets.MASK_LABELS.get,
                           key="home.teach.psf_masks")
    scale = c3.radio("PSF scale", ["db", "linear"], horizontal=True, key="home.teach.psf_scale",
                     format_func={"db": "log (dB)", "linear": "linear"}.get,
                     help=f"log: 20·log10|PSF| from {DB_FLOOR:g} to 0 dB, low enough to show the weak, spread-out side "
                          "lobes of a 2D Poisson disc; linear: |PSF| from 0 to 1 (1 = the centre).")
    area = c4.radio("PSF area", ["centre", "whole"], horizontal=True, key="home.teach.psf_area",
                    format_func={"centre": "centre", "whole": "whole image"}.get,
                    help="centre: the main lobe and the first aliases (±1.25·W/R pixels around the centre); whole "
                         "image: every alias. Either way each tile cell shows the largest |PSF| of its block of "
                         "pixels, so a one-pixel-thin PSF row and isolated alias peaks stay visible.")
    if not kinds:
        st.info("Choose at least one mask.", icon=":material/info:")
        return
    h, w = data.slice.shape
    half = None if area == "whole" else int(np.ceil(1.25 * w / acceleration))
    patterns, psfs, zero_filled, rows, titles = [], [], [], [], []
    profiles: list[np.ndarray] = []
    notes: list[str] = []
    coords = None
    for kind in kinds:
        mask = MaskConfig(kind, float(acceleration))
        try:
            problem = data.problem(mask)
            result = data.run(mask, MethodInstance.of("zero_filled"))
        except ExplorerError as exc:
            widgets.show_error(ExplorerError(f"{widgets.MASK_LABELS[kind]}: {exc}"))
            continue
        pattern = problem.sampled.pattern((h, w))
        psf = teaching.point_spread_function(pattern)
        spr = teaching.sidelobe_to_peak(psf)
        patterns.append(pattern)
        values = teaching.psf_decibels(psf, DB_FLOOR) if scale == "db" else np.abs(psf).astype(np.float32)
        profiles.append(values[h // 2])
        view, x, y = teaching.psf_view(values, half)
        psfs.append(view)
        coords = (x, y)
        zero_filled.append(result.image)
        titles.append(f"{widgets.MASK_LABELS[kind].split(' (')[0]} · R {problem.sampled.acceleration:.2f}")
        rows.append({"Mask": widgets.MASK_LABELS[kind], "Actual R": problem.sampled.acceleration,
                     "Peak side lobe / peak": spr, "Side lobe (dB)": 20 * np.log10(max(spr, 1e-12)),
                     "SSIM zero-filled": (result.metrics or {}).get("ssim")})
        notes.append(f"- **{widgets.MASK_LABELS[kind]}**: {teaching.acceleration_note(problem.sampled, (h, w))}")
    if not rows:
        return
    cols = min(len(titles), 4)
    st.plotly_chart(tfig.mask_tiles_figure(patterns, titles, cols=cols, panel_px=200),
                    key="home.teach.psf_masks_fig", theme=None, config=CHART)
    window = (DB_FLOOR, 0.0) if scale == "db" else (0.0, 1.0)
    st.plotly_chart(tfig.tiles_figure(psfs, [f"PSF · {t}" for t in titles], cols=cols, window=window,
                                      colorscale=style.KSPACE_COLORSCALE, panel_px=200,
                                      colorbar_title="dB" if scale == "db" else "|PSF|",
                                      hover="largest |PSF| (dB)" if scale == "db" else "largest |PSF|",
                                      coords=coords, coord_names=("offset x", "y")),
                    key="home.teach.psf_fig", theme=None, config=CHART)
    step = float(np.median(np.diff(coords[0]))) if coords is not None and len(coords[0]) > 1 else 1.0
    extent = "the whole image" if half is None else f"the centre ±{min(half, w // 2)} pixels"
    st.caption(f"PSFs over {extent}" + (f", each cell the largest |PSF| of a {step:g}×{step:g} block of pixels"
                                        if step > 1 else "") + ". A column mask's PSF is one row (the readout "
               "direction is fully sampled): its main lobe in the middle, its aliases along the row, at multiples of "
               "W/R for an equispaced mask. A 2D mask spreads its side lobes over the plane.")
    target = data.slice.target
    top = float(target.max()) if target is not None else float(max(z.max() for z in zero_filled))
    st.plotly_chart(tfig.tiles_figure(zero_filled, [f"Zero-filled · {t}" for t in titles], cols=cols,
                                      window=(0.0, top), panel_px=200),
                    key="home.teach.psf_zero_filled", theme=None, config=CHART)
    centre_row = dict(zip(titles, profiles))
    st.plotly_chart(tfig.profile_figure(centre_row, x_title="offset from the centre along the phase-encode axis ky "
                                        "(pixels)", y_title="|PSF| (dB)" if scale == "db" else "|PSF|"),
                    key="home.teach.psf_profile", theme=None, config=CHART)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="home.teach.psf_table",
                 column_config={"Actual R": st.column_config.NumberColumn(format="%.2f"),
                                "Peak side lobe / peak": st.column_config.NumberColumn(format="%.3f"),
                                "Side lobe (dB)": st.column_config.NumberColumn(format="%.1f"),
                                "SSIM zero-filled": st.column_config.NumberColumn(format="%.3f")})
    with st.container(key="home.teach.psf_notes"):
        st.markdown("**Why the actual R differs from the nominal R:**\n" + "\n".join(notes))
    st.caption("Measured here: the peak side-lobe-to-peak ratio is the largest |PSF| outside the main lobe (the "
               "centre pixel and its 8 neighbours: a variable-density mask widens the main lobe into them, which "
               "blurs rather than aliases) over the centre (after Lustig, Donoho & Pauly 2007; 1 = an alias as "
               "strong as the image). A column mask's PSF "
               "lies on the centre row only (the readout direction is fully sampled); the line plot shows that row. "
               "SSIM against the fully sampled reference. The actual R is the number of columns (points) over the "
               "number sampled: fastMRI's equispaced and MAGIC masks add their fully sampled centre on top of every "
               "R-th line, so they sample more than 1/R (most at high R); the random mask keeps each column with the "
               "probability that gives 1/R on average, so one draw lands near R; the fraction variants widen the "
               "spacing to hit 1/R.")


# ----------------------------------------------------------------------------- coils and SENSE

def sense_section(data: TeachingSlice) -> None:
    st.markdown("Each receive coil sees the anatomy through its own **sensitivity**: bright near the coil, dark far "
                "away. Equispaced undersampling by R folds the image R times, and every coil folds the same "
                "pixels, but with different weights. Knowing the sensitivities (estimated here by ESPIRiT from the "
                "fully sampled centre), each aliased pixel is a small linear system of R unknowns and C equations: "
                "**SENSE** solves it (by conjugate gradient) and unfolds the image, as long as R ≤ C.")
    if data.slice.num_coils < 2:
        st.info("This data is single-coil: there are no coil sensitivities to unfold with. Choose a multi-coil "
                "source (the sidebar's default sample has 8 coils).", icon=":material/info:")
        return
    top = max(4, min(8, data.slice.num_coils))
    acceleration = st.columns([1, 2])[0].slider("Equispaced acceleration R", 4, max(top, 5), 4, key="home.teach.sense_accel",
                             help="fastMRI's equispaced mask (every R-th column plus a fully sampled centre). From "
                                  "R = 4: at R = 2 the fully sampled centre is a large part of the mask (the actual R is "
                                  "well below 2) and the folded copy is faint, so there is little to unfold. Up to "
                                  "the number of coils, at most 8.")
    mask = MaskConfig("equispaced", float(acceleration))
    problem = data.problem(mask)
    maps = problem.coil_maps("1").maps[0]  # (C, H, W)
    coils = center_crop(ifft2c(data.slice.kspace), data.crop).numpy()
    maps = center_crop(maps.cpu(), data.crop).numpy()
    n = coils.shape[0]
    cols = min(n, 8)
    st.plotly_chart(tfig.tiles_figure(list(np.abs(coils)), [f"Coil {i + 1}" for i in range(n)], cols=cols,
                                      window=(0.0, float(np.abs(coils).max())), panel_px=150),
                    key="home.teach.coils", theme=None, config=CHART)
    st.plotly_chart(tfig.tiles_figure(list(np.abs(maps)), [f"Sensitivity {i + 1}" for i in range(n)], cols=cols,
                                      window=(0.0, 1.0), panel_px=150, colorscale="viridis"),
                    key="home.teach.maps", theme=None, config=CHART)
    anatomy = data.slice.meta.defaults_key
    zf = data.run(mask, MethodInstance.of("zero_filled"))
    sense = data.run(mask, MethodInstance.of("sense", None, anatomy))
    target = data.slice.target
    window = (0.0, float(target.max()) if target is not None else float(zf.image.max()))

    def title(name, result):
        return name + (f" · SSIM {result.metrics['ssim']:.3f}" if result.metrics else "")

    panels = st.columns(3)
    if target is not None:
        panels[0].plotly_chart(figures.image_figure(target, "Fully sampled", window, height=PX),
                               key="home.teach.sense_target", theme=None, config=CHART)
    panels[1].plotly_chart(figures.image_figure(zf.image, title(f"Zero-filled, {acceleration}× (actual {problem.sampled.acceleration:.2f})", zf),
                                                window, height=PX), key="home.teach.sense_aliased", theme=None, config=CHART)
    panels[2].plotly_chart(figures.image_figure(sense.image, title("SENSE unfolded", sense), window, height=PX),
                           key="home.teach.sense_unfolded", theme=None, config=CHART)
    chosen = problem.coil_maps(sense.config.maps)
    st.caption(f"Top: |coil image| of each of the {n} coils (fully sampled, one window); middle: |ESPIRiT "
               f"sensitivity| (0 to 1; zero where there is no signal). SENSE: {sense.config.iterations} CG "
               f"iterations, {chosen.note or 'no maps'}. A fully sampled centre of "
               f"{problem.sampled.num_low_frequencies} columns is part of the mask (ESPIRiT calibrates on it), so "
               "the zero-filled image shows ghosts rather than clean copies. "
               + teaching.acceleration_note(problem.sampled, data.slice.shape)
               + " Raise R towards the number of coils and watch SENSE amplify noise (the g-factor)."
               + _sense_vs_zero_filled(sense.metrics, zf.metrics))


def _sense_vs_zero_filled(sense: dict | None, zf: dict | None) -> str:
    """A sentence when SENSE scores a lower SSIM than zero-filled on this slice (and why), else ''."""
    if not sense or not zf or sense["ssim"] >= zf["ssim"]:
        return ""
    psnr = (f" and its PSNR is higher ({sense['psnr']:.1f} vs {zf['psnr']:.1f} dB)" if sense["psnr"] > zf["psnr"]
            else "")
    return (f" Here SENSE scores a lower SSIM than zero-filled ({sense['ssim']:.3f} vs {zf['ssim']:.3f}) though it "
            f"removes the folds{psnr}: unregularised least squares amplifies the noise (the grain in its image), "
            "and SSIM, a local-structure measure, penalises that grain more than zero-filled's smooth ghosts.")
