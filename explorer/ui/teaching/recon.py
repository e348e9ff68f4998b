"""Teaching mode, "How each family reconstructs": solver iterates (ℓ1 / TV), an un-trained network's fit (on a
button, with progress) and a trained network's single forward pass. Widget keys: ``home.teach.*``."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from explorer.errors import ExplorerError
from explorer.figures import images as figures
from explorer.figures import style
from explorer.figures import teaching as tfig
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance, available_methods
from explorer.teaching import lessons as teaching
from explorer.ui import cache
from explorer.ui.teaching.slice import CHART, PX, TeachingSlice

MASK = MaskConfig("random", 4.0)  # the section's undersampling: fastMRI's knee default
FIT_STEPS = (25, 50, 100, 200)
FIT_NETWORK = {"width": 16, "layers": 5}  # smaller than the methods' "fast" preset: seconds on 2 CPU cores
SNAPSHOTS = (0, 1, 2, 5, 10, 25, 50, 100, 200)
_FITS = "home.teach.fits"  # session state: {key: FitSnapshots}


def render(data: TeachingSlice) -> None:
    st.markdown("Three ways to fill in the missing k-space, on the same 4× random undersampling of this slice. "
                "**Sparse recovery** iterates: each step pulls the image towards the measurements, then shrinks "
                "it towards a sparse (wavelet / piecewise-constant) one. An **un-trained network** fits its "
                "weights to this scan's measurements alone: its structure is the prior. A **trained network** "
                "has learned the prior from thousands of scans and needs one forward pass.")
    anatomy = data.slice.meta.defaults_key
    target = data.slice.target
    zf = data.run(MASK, MethodInstance.of("zero_filled"))
    window = (0.0, float(target.max()) if target is not None else float(zf.image.max()))
    st.markdown("##### Sparse recovery, iteration by iteration")
    iterates_part(data, anatomy, window, zf)
    st.markdown("##### An un-trained network fitting this scan")
    fit_part(data, window)
    st.markdown("##### A trained network: one forward pass")
    trained_part(data, anatomy, zf, window)


def _title(name: str, result) -> str:
    return name + (f" · SSIM {result.metrics['ssim']:.3f}" if result.metrics else "")


# ----------------------------------------------------------------------------- iterates

def iterates_part(data: TeachingSlice, anatomy: str | None, window: tuple[float, float], zf=None) -> None:
    solvers = teaching.iterative_methods()
    if not solvers:
        st.info("No iterative sparse method is registered in this build.")
        return
    specs = {m.name: m for m in available_methods()}
    c1, c2, c3 = st.columns([1, 1, 2])
    name = c1.selectbox("Solver", solvers, format_func=lambda n: specs[n].label, key="home.teach.solver")
    output = c2.radio("Show", ["dc_rss", "image"], horizontal=True, key="home.teach.iter_output",
                      format_func={"image": "the iterate x_k", "dc_rss": "the method's output"}.get,
                      help="The method's output (what every page scores): x_k's coil images with the measured "
                           "k-space re-inserted, combined by root-sum-of-squares like the reference. The iterate "
                           "x_k: the solver's own SENSE image after k iterations.")
    k = c3.select_slider("Iteration k", teaching.ITERATES, value=10, key="home.teach.iterate",
                         help="The solver starts from zero and is deterministic: iterate k is a run stopped after "
                              "k iterations (each one is computed and cached).")
    current = data.run(MASK, teaching.iterate_instance(name, k, anatomy, output))
    done = {kk: data_cached(data, teaching.iterate_instance(name, kk, anatomy, output)) for kk in teaching.ITERATES}
    left, right = st.columns([1, 2])
    left.plotly_chart(figures.image_figure(current.image, _title(f"{specs[name].label}, k = {k}", current), window,
                                           height=PX), key="home.teach.iterate_fig", theme=None, config=CHART)
    missing = [kk for kk, r in done.items() if r is None]
    zf_ssim = (zf.metrics or {}).get("ssim") if zf is not None else None
    with right:
        if st.button(f"Compute all iterates ({len(missing)} left)", key="home.teach.iter_all",
                     icon=":material/play_arrow:", disabled=not missing,
                     help="Runs the solver for every k on the slider (once; cached) to draw the SSIM curve."):
            bar = st.progress(0.0, text="Computing iterates…")
            for i, kk in enumerate(missing):
                done[kk] = data.run(MASK, teaching.iterate_instance(name, kk, anatomy, output))
                bar.progress((i + 1) / len(missing), text=f"iterate {kk} done")
            st.rerun()  # all cached now: redraw the button (nothing left) and the curve
        points = [(kk, r.metrics["ssim"]) for kk, r in done.items() if r is not None and r.metrics]
        if points:
            label = f"{specs[name].label} ({'x_k' if output == 'image' else 'output'})"
            st.plotly_chart(tfig.curve_figure([p[0] for p in points], {label: [p[1] for p in points]},
                                              current=k, y_title="SSIM", y_range=(0.0, 1.0),
                                              x_ticks=teaching.ITERATES,
                                              references={"zero-filled": zf_ssim} if zf_ssim is not None else None),
                            key="home.teach.iterate_curve", theme=None, config=CHART)
    st.caption(f"λ = {current.config.lam:g} (the tuned default), {current.seconds:.2f} s for these {k} iterations. "
               "Early iterates look like a denoised zero-filled image; later ones remove the aliasing as the sparsity "
               "prior and the measurements agree. The curve shows the iterates computed so far; the dashed line is "
               "the zero-filled image's SSIM.")
    if current.metrics and zf_ssim is not None:
        st.caption(_form_note(data, name, anatomy, output, current.metrics["ssim"], zf.metrics))


def _form_note(data: TeachingSlice, name: str, anatomy: str | None, output: str, ssim: float, zf: dict) -> str:
    """Why the iterate x_k (the SENSE image form) scores below zero-filled while the method's output does not,
    measured on this slice (:func:`explorer.teaching.lessons.sense_form`)."""
    try:
        form = teaching.sense_form(data.problem(MASK), name, anatomy)
    except ExplorerError:
        return ""
    if form.metrics is None:
        return ""
    below = ssim < zf["ssim"]
    why = (f"SSIM is measured against the fully sampled coil root-sum-of-squares. x_k is the single SENSE image "
           f"behind the ESPIRiT coil maps, and the maps are zero outside the anatomy's support: "
           f"{100 * form.outside:.0f}% of this slice, where the reference keeps background signal and noise "
           f"(its mean there is {100 * form.reference_outside:.0f}% of its mean inside). SSIM counts that "
           f"background as an error, so even the fully sampled k-space, combined with these maps, scores only "
           f"SSIM {form.metrics['ssim']:.3f} against the reference (PSNR {form.metrics['psnr']:.1f} dB).")
    if output == "image":
        head = (f"**Why x_k scores {'below' if below else 'near'} zero-filled** (SSIM {ssim:.3f} vs "
                f"{zf['ssim']:.3f}; it is the image's form, not the solver): ")
        tail = (" The method's output re-inserts the measured k-space into x_k's coil images and combines them "
                "like the reference: choose it above to compare the iterates with zero-filled on equal terms.")
        return head + why + tail
    return ("The method's output is what every page scores. The iterate x_k itself (the other choice above) scores a "
            "lower SSIM (often below zero-filled's) for a reason that has nothing to do with the solver: "
            + why)


def data_cached(data: TeachingSlice, instance: MethodInstance):
    """The cached result of ``instance`` on the section's mask, or ``None`` (nothing is computed)."""
    return cache.cached_result(data.source, "kxky", data.index, MASK, instance)


# ----------------------------------------------------------------------------- un-trained fit

def fit_part(data: TeachingSlice, window: tuple[float, float]) -> None:
    nets = [m for m in available_methods() if m.capabilities.gradient == "data_consistency"]  # per-slice fits
    if not nets:
        st.info("No un-trained network is registered in this build.")
        return
    labels = {m.name: m.label for m in nets}
    c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    name = c1.selectbox("Network", list(labels), format_func=labels.get, key="home.teach.fit_method")
    steps = c2.select_slider("Adam steps", FIT_STEPS, value=50, key="home.teach.fit_steps",
                             help="The papers run 20,000 steps on a GPU; a few dozen show the idea on a CPU.")
    key = (data.source, data.index, MASK, name, int(steps))
    fits = st.session_state.setdefault(_FITS, {})
    if c3.button("Fit the network", key="home.teach.fit_run", icon=":material/play_arrow:", type="primary",
                 help=f"{steps} Adam steps of a small {labels[name]} ({FIT_NETWORK['layers']} layers × "
                      f"{FIT_NETWORK['width']} channels) on this slice."):
        bar = st.progress(0.0, text="Fitting…")
        last = [0.0]

        def progress(step, total, info):
            now = time.perf_counter()
            if step >= total or now - last[0] > 0.2:
                last[0] = now
                bar.progress(step / total, text=f"step {step}/{total} · loss {info['loss']:.4g}")

        wanted = tuple(s for s in SNAPSHOTS if s < steps) + (int(steps),)
        fits[key] = teaching.fit_snapshots(data.problem(MASK), name, wanted, FIT_NETWORK, progress)
        bar.empty()
    snaps = fits.get(key)
    if snaps is None:
        st.caption("Press **Fit the network** to watch it: the output at several Adam steps, from the random "
                   "network (step 0) on.")
        return
    s1, s2 = st.columns([2, 1])
    step = s1.select_slider("Snapshot at step", snaps.steps, value=snaps.steps[-1], key="home.teach.fit_snapshot")
    view = s2.radio("Show", ["generator", "consistent"], horizontal=True, key="home.teach.fit_view",
                    format_func={"generator": "network output", "consistent": "after data consistency"}.get)
    i = snaps.steps.index(step)
    image = (snaps.generator if view == "generator" else snaps.consistent)[i]
    left, right = st.columns([1, 2])
    left.plotly_chart(figures.image_figure(image, f"{labels[name]} · step {step}", window, height=PX),
                      key="home.teach.fit_fig", theme=None, config=CHART)
    right.plotly_chart(figures.loss_figure({labels[name]: list(enumerate(snaps.losses, start=1))}, height=PX - 40),
                       key="home.teach.fit_loss", theme=None, config=CHART)
    st.caption(f"{len(snaps.losses)} Adam steps in {snaps.seconds:.1f} s (loss = relative misfit to the measured "
               "k-space). The network fits coarse structure first and fine detail later; fitted long enough it also "
               "fits the noise, which is why the papers stop early or keep the best iterate. The registered method "
               "uses a larger network, more steps and keeps the best-loss output.")


# ----------------------------------------------------------------------------- trained forward pass

def trained_part(data: TeachingSlice, anatomy: str | None, zf, window: tuple[float, float]) -> None:
    nets = [m for m in available_methods() if m.capabilities.weights]
    if not nets:
        st.info("No trained network is registered in this build.")
        return
    labels = {m.name: m.label for m in nets}
    nets_by_name = {m.name: m for m in nets}
    name = st.selectbox("Network", list(labels), format_func=labels.get, key="home.teach.net")
    result = data.run(MASK, MethodInstance.of(name, None, anatomy))
    cols = st.columns(3)
    cols[0].plotly_chart(figures.image_figure(zf.image, _title("Input: zero-filled", zf), window, height=PX),
                         key="home.teach.net_input", theme=None, config=CHART)
    cols[1].plotly_chart(figures.image_figure(result.image, _title(f"{labels[name]} output", result), window, height=PX),
                         key="home.teach.net_output", theme=None, config=CHART)
    target = data.slice.target
    if target is not None:
        error = np.abs(result.image - target)
        cols[2].plotly_chart(figures.image_figure(error, "|output − fully sampled|", (0.0, window[1] / 4),
                                                  colorscale=style.ERROR_COLORSCALE, height=PX),
                             key="home.teach.net_error", theme=None, config=CHART)
    note = " · ".join(result.notes)
    st.caption(f"One forward pass: {result.seconds:.2f} s on this machine. "
               + f"{nets_by_name[name].description} "
               + "These are the small demo checkpoints shipped with the explorer." + (f" {note}" if note else ""))
