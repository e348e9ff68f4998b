"""Reconstruct: undersample one slice, run several methods, compare them side by side.

Thin page: widgets -> (Request of frozen configs) -> cached library calls -> one figure.
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import streamlit as st

from explorer.errors import ExplorerError
from explorer.figures import images as figures
from explorer.recon.base import available_methods
from explorer.ui import bundle, cache, pickers, state, viewer, volume, warmup, widgets
from explorer.ui.runs.handoff import stale_note


st.title("Reconstruct")
st.caption("Undersample one slice with a sampling mask, reconstruct it with several methods and compare "
           "them with the fully sampled reference.")

source = state.source_or_stop()
methods = {m.name: m for m in available_methods()}

# ---------------------------------------------------------------- 1. slice and mask
st.subheader("1 · Slice and sampling mask", divider="gray")
setup, mask_col, kspace_col = st.columns([1.1, 1, 1], gap="large")
with widgets.stop_on_error():
    choice = pickers.slice_and_mask("reconstruct", source, setup)
plane, index, mask_cfg, problem = choice.plane, choice.index, choice.mask, choice.problem
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
defaults = pickers.default_methods(methods)  # a classical, a sparse and a trained method
with widgets.stop_on_error():
    instances = pickers.method_instances("reconstruct", methods, defaults, problem.slice.meta.defaults_key)
chosen = bool(instances) and instances.confirmed
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
stale_note(shown != request, "Run reconstruction", notes)
with widgets.stop_on_error():
    shown_problem = cache.problem(shown.source, shown.plane, shown.index, shown.mask)
    results, failures = widgets.run_with_status(shown, progress, refit_stopped=run_pressed)
displays = {inst.label: inst.display for inst in shown.methods}
for label, message in failures.items():
    notes.error(f"**{displays.get(label, label)}** failed: {message}", icon=":material/error:")
anatomy = shown_problem.slice.meta.anatomy
result_notes, stopped = [], []
for r in results:
    try:
        note = methods[r.method].describe(r.config, anatomy) if r.method in methods else None
    except ExplorerError:
        note = None
    result_notes += ([(r.label, note)] if note else []) + [(r.label, n) for n in r.notes]
    if r.stopped:
        stopped.append((r.label, f" at step {r.steps[0]} of {r.steps[1]}" if r.steps else ""))
widgets.stopped_note(notes, stopped, "Run reconstruction")
widgets.notes_box(notes, result_notes)  # one collapsed box: the viewer stays at the top of the screen
if not results:
    st.stop()
target = shown_problem.target
pattern_shown = shown_problem.sampled.pattern(shown_problem.slice.shape)
ref_max = float(target.max()) if target is not None else max(float(r.image.max()) for r in results)
target_shape = shown_problem.crop
ref_name = "reference max" if target is not None else "max of the reconstructions"

subtitles = ({r.label: f"SSIM {r.metrics['ssim']:.3f} · PSNR {r.metrics['psnr']:.2f} dB" for r in results}
             if target is not None else {r.label: f"{r.seconds:.2f} s" for r in results})
viewer.show("reconstruct", target, {r.label: r.image for r in results}, subtitles=subtitles,
            uirevision=f"{shown.source.spec}|{shown.plane}|{target_shape}", filename="reconstructions",
            slices=volume.viewer_slices(shown, shown_problem.slice.meta.num_slices, "reconstruct.slice"),
            pixel_mm=volume.pixel_mm(shown.source, target_shape))

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
    bundle.offer("reconstruct.bundle", stem, bundle.results_bundle(
        stem, "reconstruct", shown, results, target, (0.0, ref_max), widgets.metrics_csv_text(results),
        state.metric(), extras={"sampling_mask": pattern_shown.astype("float32")}))
    widgets.download_buttons(results, stem, (0.0, ref_max), key="reconstruct.dl")
    st.caption(f"PNGs are windowed to [0, {ref_name}]; .npy files hold the float32 magnitude "
               f"({target_shape[0]}×{target_shape[1]}). The zip holds the settings, the metrics, every image and "
               "the sampling mask.")

fits = {r.label: r.history for r in results if r.history}
if fits:
    with st.expander("Fit loss curves", icon=":material/show_chart:"):
        st.plotly_chart(figures.loss_figure(fits), key="reconstruct.loss_fig", theme=None,
                        config={"displaylogo": False})
        st.caption("Relative data-consistency loss ||M F G(z) − y||² / ||y||² of each fit per iteration; the "
                   "image shown is the one with the lowest loss (early stopping keeps the best iterate).")
