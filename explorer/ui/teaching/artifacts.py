"""The teaching mode's artifacts section: what noise, motion, spikes, partial Fourier and truncation do to k-space and
to the image (:mod:`explorer.teaching.artifacts`). Widget keys: ``home.teach.art.*``."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.errors import ExplorerError
from explorer.figures import images as figures
from explorer.teaching import artifacts
from explorer.ui import widgets
from explorer.ui.teaching.slice import CHART, PX, TeachingSlice

KINDS = {
    "noise": "Noise (SNR)",
    "motion": "Motion per shot",
    "spikes": "k-space spikes",
    "partial": "Partial Fourier",
    "gibbs": "Truncation and Hamming filter",
}
ABOUT = {
    "noise": "Thermal noise is white in k-space: every sample gets the same complex Gaussian noise. Because the centre "
             "holds almost all the energy, the periphery (fine detail) drowns first; the image gets grainy everywhere "
             "alike. SNR = mean |k|² / noise power.",
    "motion": "A multi-shot scan acquires the phase-encode columns shot after shot. If the object moves between shots, "
              "each shot's columns show it in another position, and the inconsistent columns smear copies (ghosts) "
              "along the phase-encode direction. Sequential shots put the motion in blocks of columns (the centre "
              "block decides the contrast); interleaved shots spread it over all frequencies (periodic ghosts).",
    "spikes": "A single corrupt k-space sample (static discharge, a loose contact) is one spatial frequency added to "
              "the whole image: a stripe pattern (herringbone) across it, at the angle and spacing of its position.",
    "partial": "Partial Fourier skips the columns past the centre on one side to save time. Zero-filling them blurs and "
               "rings along the phase encodes; filling them by conjugate symmetry is exact only for a real image, so "
               "wherever the image has phase (field inhomogeneity, coil phase) it leaves errors.",
    "gibbs": "Keeping only the central part of k-space (a lower resolution) multiplies it by a box: sharp edges ring "
             "(Gibbs). A Hamming window tapers the kept part to zero at its border: no ringing, a little more blur.",
}


def render(data: TeachingSlice) -> None:
    """The section: a corruption and its settings, then k-space, the corrupted image and its difference."""
    st.markdown("Real acquisitions are not ideal. Corrupt this slice's **fully sampled** k-space the way scanners and "
                "patients do, and see the k-space, the image and what changed.")
    kind = st.radio("Corruption", list(KINDS), format_func=KINDS.get, horizontal=True, key="home.teach.art.kind")
    kspace = data.slice.kspace
    c1, c2, c3, c4 = st.columns(4)
    try:
        if kind == "noise":
            snr = c1.slider("SNR (dB)", 0.0, 60.0, 30.0, 1.0, key="home.teach.art.snr")
            seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="home.teach.art.seed")
            corrupted, note = artifacts.add_noise(kspace, float(snr), int(seed)), f"SNR {snr:g} dB"
        elif kind == "motion":
            shots = c1.slider("Shots", 1, 32, 8, key="home.teach.art.shots")
            rotation = c2.slider("Rotation by the last shot (°)", -artifacts.MAX_ROTATION, artifacts.MAX_ROTATION, 3.0,
                                 0.5, key="home.teach.art.rotation")
            shift = c3.slider("Shift by the last shot (px, along the phase encodes)", -artifacts.MAX_SHIFT,
                              artifacts.MAX_SHIFT, 4.0, 0.5, key="home.teach.art.shift")
            ordering = c4.radio("Shot ordering", list(artifacts.ORDERINGS), key="home.teach.art.ordering",
                                help=" · ".join(f"{k}: {v}" for k, v in artifacts.ORDERINGS.items()))
            config = artifacts.Motion(int(shots), float(rotation), (0.0, float(shift)), ordering)
            corrupted = artifacts.motion(kspace, config)
            note = f"{shots} {ordering} shots, up to {rotation:g}° and {shift:g} px"
        elif kind == "spikes":
            count = c1.slider("Spikes", 1, artifacts.MAX_SPIKES, 1, key="home.teach.art.spikes")
            amplitude = c2.slider("Amplitude (× the k-space maximum)", 0.05, 2.0, 0.3, 0.05, key="home.teach.art.amp")
            seed = c3.number_input("Seed", 0, 2**31 - 1, 0, key="home.teach.art.spike_seed")
            corrupted = artifacts.spikes(kspace, int(count), float(amplitude), int(seed))
            note = f"{count} spike(s) at {amplitude:g} × max"
        elif kind == "partial":
            fraction = c1.slider("Acquired fraction of the columns", 0.5, 1.0, 0.625, 0.005,
                                 key="home.teach.art.fraction", help="5/8 = 0.625 is a common choice.")
            method = c2.radio("Missing columns", list(artifacts.PARTIAL_METHODS), key="home.teach.art.method",
                              format_func={"zero": "zero-filled", "conjugate": "conjugate-symmetric"}.get,
                              help=" · ".join(f"{k}: {v}" for k, v in artifacts.PARTIAL_METHODS.items()))
            corrupted, _ = artifacts.partial_fourier(kspace, float(fraction), method)
            note = f"{fraction:g} of the columns, {method}"
        else:
            fraction = c1.slider("Kept central fraction", 0.05, 1.0, 0.25, 0.01, key="home.teach.art.keep")
            hamming = c2.toggle("Hamming filter", key="home.teach.art.hamming")
            corrupted = artifacts.truncate(kspace, float(fraction), bool(hamming))
            note = f"central {fraction:g}{' with Hamming' if hamming else ''}"
    except ExplorerError as exc:
        widgets.show_error(exc)
        return
    clean = artifacts.image(kspace, data.crop)
    bad = artifacts.image(corrupted, data.crop)
    top = float(clean.max()) or 1.0
    error = np.abs(bad - clean)
    cols = st.columns(3)
    cols[0].plotly_chart(figures.kspace_figure(corrupted.numpy(), f"k-space · {note}", height=PX, colorbar=False),
                         key="home.teach.art.kspace", theme=None, config=CHART)
    cols[1].plotly_chart(figures.image_figure(bad, "Image", (0.0, top), height=PX), key="home.teach.art.image",
                         theme=None, config=CHART)
    cols[2].plotly_chart(figures.image_figure(error, "|image − clean image|", (0.0, top / 4), height=PX),
                         key="home.teach.art.error", theme=None, config=CHART)
    nrmse = float(np.linalg.norm(bad - clean) / max(np.linalg.norm(clean), 1e-30))
    st.caption(f"{ABOUT[kind]} Relative error of this image: {100 * nrmse:.1f}% (the difference is shown at 4× the "
               "image's contrast).")


__all__ = ["ABOUT", "KINDS", "render"]
