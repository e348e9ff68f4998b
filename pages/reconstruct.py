"""Reconstruct: undersample one slice, run several methods, compare them side by side.

Thin page: widgets -> (Request of frozen configs) -> cached library calls -> one figure.
"""
# ruff: noqa: E402

from explorer.ui import state

state.require_router()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import numpy as np
import streamlit as st

from explorer import figures
from explorer.data.sources import PLANES
from explorer.errors import ExplorerError
from explorer.recon.base import MethodInstance, available_methods
from explorer.ui import cache, warmup, widgets

FAMILY_LABELS = {"baseline": "baseline", "sparse": "sparse / ℓ1", "untrained": "un-trained network",
                 "trained": "trained network"}
DEFAULT_MASK = {"brain": "equispaced"}  # fastMRI challenge masks by anatomy (knee: random)
EXTRA = "reconstruct.extra_instances"  # [(method name, instance number >= 2), ...]


def add_instance(name: str) -> None:
    """Add another instance of method ``name`` (numbered 2, 3, ...)."""
    extra = st.session_state.setdefault(EXTRA, [])
    taken = {n for m, n in extra if m == name}
    extra.append((name, next(n for n in range(2, 100) if n not in taken)))


def remove_instance(name: str, number: int) -> None:
    st.session_state[EXTRA] = [(m, n) for m, n in st.session_state.get(EXTRA, []) if (m, n) != (name, number)]


PLANE_HELP = ("Raw 3D ISMRMRD volumes: kx-ky planes are the papers' 2D slices (1D masks); ky-kz planes "
              "(after an inverse FFT along the readout) suit 2D Poisson masks.")

st.title("Reconstruct")
st.caption("Undersample one slice with a sampling mask, reconstruct it with several methods and compare "
           "them with the fully sampled reference.")

source = state.current_source()
if source is None:
    st.info("Choose a valid data source in the sidebar.", icon=":material/arrow_back:")
    st.stop()
methods = {m.name: m for m in available_methods()}
labels = {name: spec.label for name, spec in methods.items()}

# ---------------------------------------------------------------- 1. slice and mask
st.subheader("1 · Slice and sampling mask", divider="gray")
setup, mask_col, kspace_col = st.columns([1.1, 1, 1], gap="large")
with widgets.stop_on_error():
    with setup:
        plane = "kxky"
        if cache.is_raw_ismrmrd(source):
            plane = st.radio("k-space plane", PLANES, horizontal=True, key="reconstruct.plane", help=PLANE_HELP)
            cache.ensure_plane_cache(source, plane)
        volume = cache.open_volume(source, plane)
        if volume.num_slices > 1:
            index = st.slider("Slice", 0, volume.num_slices - 1, volume.num_slices // 2, key="reconstruct.slice",
                              help=f"{volume.name}: {volume.num_slices} slices")
        else:
            index = 0
            st.caption(f"{volume.name}: a single slice")
        mask_cfg = widgets.mask_controls("reconstruct.mask", default_type=DEFAULT_MASK.get(source.family, "random"))
    problem = cache.problem(source, plane, index, mask_cfg)
warmup.prefetch(problem)  # coil maps + first-run imports, in the background while the page renders

sampled = problem.sampled
h, w = problem.slice.shape
pattern = sampled.pattern((h, w))
mask_col.image(figures.mask_preview(pattern, h), caption=f"Sampling mask · {h}×{w} (white = sampled)",
               width="stretch")
kspace_col.image(figures.kspace_preview(problem.y[0].cpu().numpy()), width="stretch",
                 caption="Sampled k-space, log₁₀ |k| / max over 5 decades (coil RSS)")
if sampled.config is None:
    setup.warning("This file is already undersampled (fastMRI test data): its own mask is used and the "
                  "mask settings are ignored.", icon=":material/info:")
lines = f"{int(pattern.any(0).sum())}/{w} columns" if not mask_cfg.is_2d else f"{pattern.mean():.1%} of k-space"
setup.markdown(f"**Actual acceleration R = {sampled.acceleration:.2f}** · {lines} sampled · "
               f"{sampled.num_low_frequencies} centre lines · {problem.slice.num_coils} coil(s)")

# ---------------------------------------------------------------- 2. methods
st.subheader("2 · Methods", divider="gray")
defaults = [name for name, spec in methods.items() if spec.capabilities.cost == "instant"]  # the baselines
chosen = st.multiselect("Methods to compare", list(methods), default=defaults, key="reconstruct.methods",
                        format_func=lambda n: f"{labels[n]} ({FAMILY_LABELS.get(methods[n].family, methods[n].family)})",
                        help="Any registered method; its parameters appear below with their defaults.")
extras = [(name, n) for name, n in st.session_state.setdefault(EXTRA, []) if name in chosen]
add_col, add_button = st.columns([3, 1], vertical_alignment="bottom")
if chosen:
    another = add_col.selectbox("Add another instance of a chosen method (e.g. a second checkpoint)", chosen,
                                format_func=labels.get, key="reconstruct.add_method",
                                help="The same method again under its own label and parameters, side by side.")
    add_button.button("Add instance", icon=":material/add:", key="reconstruct.add_instance",
                      on_click=add_instance, args=(another,))
slots = [(name, "", name) for name in chosen] + [(name, f"#{n}", f"{labels[name]} #{n}") for name, n in extras]
instances = []
with widgets.stop_on_error(), st.container():  # always present: keeps the figure's position fixed
    columns = st.columns(3) if slots else []
    for i, (name, slot, label) in enumerate(slots):
        spec = methods[name]
        title = spec.label if not slot else label
        with columns[i % 3].expander(f"**{title}** parameters", icon=":material/settings:"):
            st.caption(spec.description)
            config = widgets.method_config(spec, "reconstruct.params", anatomy=problem.slice.meta.anatomy, slot=slot)
            if slot:
                st.button("Remove this instance", key=f"reconstruct.remove.{name}{slot}", type="tertiary",
                          icon=":material/delete:", on_click=remove_instance, args=(name, int(slot[1:])))
        instances.append(MethodInstance(label, name, config))
request = state.Request(source, plane, int(index), mask_cfg, tuple(instances))
cache.speculate(source, plane, int(index), mask_cfg, instances)  # instant methods start before Run is pressed
run_pressed = st.button("Run reconstruction", type="primary", icon=":material/play_arrow:", disabled=not chosen,
                        key="reconstruct.run")
if run_pressed:
    st.session_state[state.REQUEST] = request

# ---------------------------------------------------------------- 3. results
shown = st.session_state.get(state.REQUEST)
if shown is None:
    st.info("Choose methods and press **Run reconstruction**.", icon=":material/play_arrow:")
    st.stop()
st.subheader("3 · Results", divider="gray")
# Fixed containers for optional notes: elements that come and go would shift the figure's
# position, and Streamlit remounts a moved chart (losing the user's zoom).
notes, progress = st.container(), st.container()
if shown != request:
    notes.info("Settings changed since the last run: the results below are for the previous settings. "
               "Press **Run reconstruction** to update.", icon=":material/history:")
with widgets.stop_on_error():
    shown_problem = cache.problem(shown.source, shown.plane, shown.index, shown.mask)
    results, failures = widgets.run_with_status(shown, progress, refit_stopped=run_pressed)
displays = {inst.label: inst.display for inst in shown.methods}
for label, message in failures.items():
    notes.error(f"**{displays.get(label, label)}** failed: {message}", icon=":material/error:")
anatomy = shown_problem.slice.meta.anatomy
for r in results:
    try:
        note = methods[r.method].describe(r.config, anatomy) if r.method in methods else None
    except ExplorerError:
        note = None
    if note:
        shift = "shift" in note
        notes.info(f"**{r.label}**: {note}" + (" (trained on another anatomy: a distribution shift)" if shift else ""),
                   icon=":material/swap_horiz:" if shift else ":material/model_training:")
    if r.stopped:
        done = f" at step {r.steps[0]} of {r.steps[1]}" if r.steps else ""
        notes.warning(f"**{r.label}** was stopped{done}: its best image so far is shown. Press **Run reconstruction** "
                      "to run it again in full.", icon=":material/stop_circle:")
if not results:
    st.stop()
target = shown_problem.target
ref_max = float(target.max()) if target is not None else max(float(r.image.max()) for r in results)
target_shape = shown_problem.crop
ref_name = "reference max" if target is not None else "max of the reconstructions"

error_max = None
if target is not None:
    # Default top of the common error scale: the 99.5th percentile of all errors (a few
    # outlier pixels would otherwise darken every map), rounded up to the slider's 0.02 grid.
    top = max(float(np.percentile(abs(r.image - target), 99.5)) for r in results) / ref_max
    error_max = float(min(1.0, max(0.02, np.ceil(top / 0.02) * 0.02))) * ref_max
subtitles = ({r.label: f"SSIM {r.metrics['ssim']:.3f} · PSNR {r.metrics['psnr']:.2f} dB" for r in results}
             if target is not None else {r.label: f"{r.seconds:.2f} s" for r in results})
cols = len(results) + (target is not None)
fig = figures.comparison_figure(target, {r.label: r.image for r in results}, (0.0, ref_max), error_max,
                                subtitles=subtitles, uirevision=f"{shown.source.spec}|{shown.plane}|{target_shape}",
                                panel_px=int(min(420, max(240, 1500 / cols))))
st.plotly_chart(fig, key="reconstruct.figure",
                config={"scrollZoom": True, "displaylogo": False,
                        "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
                        "toImageButtonOptions": {"format": "png", "filename": "reconstructions", "scale": 2}},
                theme=None)
st.caption(f"Drag to zoom, double-click to reset: all panels share one zoom. The sliders under the panels set the "
           f"display window of all images and the top of the common error scale, in units of the {ref_name} "
           f"({ref_max:.3g}).")

table_col, download_col = st.columns([3, 2], gap="large")
with table_col:
    st.markdown("**Metrics** (against the reference, centre-cropped)" if target is not None else "**Timing**")
    if target is None:
        st.info("No reference image in this file (fastMRI test data): images only, no metrics.",
                icon=":material/info:")
    widgets.metrics_table(results, key="reconstruct.metrics")
with download_col:
    st.markdown("**Downloads**")
    stem = f"{shown.source.label}_s{shown.index}_{shown.mask.type}_R{shown.mask.acceleration:g}"
    widgets.download_buttons(results, stem, (0.0, ref_max), key="reconstruct.dl")
    st.caption(f"PNGs are windowed to [0, {ref_name}]; .npy files hold the float32 magnitude "
               f"({target_shape[0]}×{target_shape[1]}).")

fits = {r.label: r.history for r in results if r.history}
if fits:
    with st.expander("Fit loss curves", icon=":material/show_chart:"):
        st.plotly_chart(figures.loss_figure(fits), key="reconstruct.loss_fig", theme=None,
                        config={"displaylogo": False})
        st.caption("Relative data-consistency loss ||M F G(z) − y||² / ||y||² of each fit per iteration; the "
                   "image shown is the one with the lowest loss (early stopping keeps the best iterate).")
