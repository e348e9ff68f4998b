"""Test-time training: adapt a trained network to one slice (self-supervised, self-validated) and compare it with
the network as shipped and with one trained on this data's distribution.

Thin page: widgets -> TTTRequest -> explorer.robustness.ttt (via explorer.ui.runs.ttt) -> the viewer.
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import pandas as pd
import streamlit as st

from explorer.recon.base import MethodInstance, available_methods
from explorer.robustness.ttt import HOLDOUT_UNITS, PROTOCOLS, protocol_config
from explorer.robustness.ttt_shifts import SHIFTS, get_shift
from explorer.ui import bundle, cache, checkpoint_store, pickers, present, state, viewer, warmup, widgets
from explorer.ui.runs import ttt as ttt_run
from explorer.ui.runs.protocol import Download, downloads

def instance_label(request) -> str:
    """The adapted network and its checkpoint, for file names."""
    return f"{request.method.name}_{getattr(request.method.config, 'checkpoint', '')}".rstrip("_")


st.title("Test-time training")
st.caption("Adapt a trained network to the slice in front of it with a self-supervised loss on its own "
           "measurements, stopping on held-out measurements (Darestani, Liu & Heckel, ICML 2022).")

source = state.source_or_stop()
methods = {m.name: m for m in available_methods() if m.capabilities.weights}

st.subheader("1 · Slice and sampling mask", divider="gray")
setup, info = st.columns([1, 1.4], gap="large")
with widgets.stop_on_error():
    choice = pickers.slice_and_mask("ttt", source, setup)
problem = choice.problem
warmup.prefetch(problem)
anatomy = problem.slice.meta.anatomy
info.markdown(f"**Actual acceleration R = {problem.sampled.acceleration:.2f}** · {problem.slice.num_coils} coil(s) · "
              f"anatomy: {anatomy or 'unknown'}")
info.caption("The page starts on a distribution shift: the network trained on the other anatomy (a knee network on "
             "brain data, a brain network on knee data) is adapted, with the network trained on this data's anatomy "
             "as the in-distribution reference. Set the checkpoint to `auto` to adapt the matching network instead.")

st.subheader("2 · Network and settings", divider="gray")
left, right = st.columns(2, gap="large")
name = left.selectbox("Network", list(methods), format_func=lambda n: methods[n].label, key="ttt.method")
spec = methods[name]
ttt_run.start_on_shift(spec, anatomy)  # a real shift by default: the other anatomy's network
if anatomy == "brain" and ttt_run.REAL_CHECKPOINT in checkpoint_store.shipped_extras(name):
    left.button("Real-data arm: adapt the network trained on real brain slices", key="ttt.real_arm",
                icon=":material/neurology:", on_click=ttt_run.apply_real_arm, args=(name, anatomy),
                help="For the measured multi-coil slices of the README's real-brain build (`real-brain/measured`): "
                     "the `brain-real` checkpoint, the papers' protocol with the dataset shift's window 20, and no "
                     "reference, since no network trained on those scanners exists (SSIM before and after).")
with left.expander("The paper's four shifts", icon=":material/swap_horiz:"):
    ready = {s.name: ttt_run.shift_available(name, s) for s in SHIFTS}
    st.selectbox("Shift", [s.name for s in SHIFTS], key="ttt.paper_shift",
                 format_func=lambda n: get_shift(n).title + ("" if ready[n] else " (checkpoints not shipped)"))
    chosen = get_shift(st.session_state["ttt.paper_shift"])
    st.caption(f"The papers: {chosen.papers}. Here: `{chosen.source}` at {chosen.acceleration:g}x, the "
               f"`{chosen.checkpoint}` {spec.label} adapted, the `{chosen.reference}` one as the reference, the papers' "
               f"protocol with W = {chosen.window_for(name)}.")
    st.button("Set up this shift", key="ttt.paper_shift_apply", on_click=ttt_run.apply_paper_shift, args=(name,),
              disabled=not ready[chosen.name], icon=":material/tune:",
              help="Switches the sidebar to the shift's sample and sets the mask, the two checkpoints and the protocol."
              if ready[chosen.name] else f"{spec.label} lacks the `{chosen.checkpoint}` or `{chosen.reference}` "
              "checkpoint (README: test-time training on the four shifts).")
with widgets.stop_on_error(), left.expander(f"**{spec.label}** parameters (the network to adapt)", expanded=True):
    config = widgets.method_config(spec, "ttt.params", anatomy=anatomy)
instance = MethodInstance(name, name, config)
reference = None
if hasattr(config, "checkpoint"):
    ref_text = left.text_input("Reference checkpoint (trained on this data's distribution; empty = none)",
                               anatomy if anatomy in ("knee", "brain") else "", key="ttt.reference",
                               help="The same network trained on data like this slice: SSIM_QQ of the gap closed.")
    with widgets.stop_on_error():
        reference = ttt_run.reference_instance(spec, config, ref_text, anatomy)
protocol = right.radio("Protocol", list(PROTOCOLS), key="ttt.protocol", horizontal=True,
                        on_change=ttt_run.apply_protocol, help=" · ".join(f"{k}: {v}" for k, v in PROTOCOLS.items()))
ttt_run.init_protocol(protocol)
r1, r2, r3 = right.columns(3)
steps = r1.number_input("Max steps", 1, 20000, key="ttt.steps")
lr = r2.number_input("Learning rate (0 = the network's)", 0.0, 1.0, 0.0, format="%g", key="ttt.lr",
                     help=f"0 uses {spec.label}'s declared rate ({spec.capabilities.adapt_lr:g}).")
window = r3.number_input("Window W", 1, 1000, key="ttt.window",
                         help="Stop when the mean held-out error of the last W steps exceeds that of the W before "
                              "(the papers: 100, and 20 for the dataset shift).")
r4, r5, r6 = right.columns(3)
holdout = r4.number_input("Held-out share", 0.0, 0.45, step=0.01, format="%g", key="ttt.holdout",
                          help="Of the sampled k-space (self-validation).")
unit = r5.selectbox("Held out", list(HOLDOUT_UNITS), key="ttt.holdout_unit", format_func=HOLDOUT_UNITS.get)
seed = r6.number_input("Hold-out seed", 0, 2**31 - 1, 0, key="ttt.seed")
r7, r8 = right.columns([1, 2])
monitor = r7.number_input("SSIM every N steps (0 = off)", 0, 1000, 10 if problem.target is not None else 0,
                          key="ttt.monitor", help="Scores the adapted network against the reference (a forward pass).")
rollback = r8.toggle("Roll back to the lowest held-out error", key="ttt.rollback",
                     help="The papers' code keeps the last weights; our protocol restores the best held-out ones.")
with widgets.stop_on_error():
    ttt_config = protocol_config(protocol, steps=int(steps), lr=float(lr), window=int(window), holdout=float(holdout),
                                 seed=int(seed), rollback=bool(rollback), monitor=int(monitor), holdout_unit=unit)
right.caption(f"Protocol **{ttt_config.protocol}**: " + (PROTOCOLS.get(ttt_config.protocol)
                                                        or "settings changed from the chosen protocol"))
request = ttt_run.TTTRequest(source, choice.plane, choice.index, choice.mask, instance, reference, ttt_config,
                             state.metric())

page_run = ttt_run.RUN.section(request, heading="3 · Results")
result = page_run.result
if result is None:
    st.stop()
row = result.row(page_run.reference)
shown = page_run.request
shown_problem = cache.problem(shown.source, shown.plane, shown.index, shown.mask)
images = {"as shipped": result.before.image, "after TTT": result.after.image}
if page_run.reference is not None:
    images["in-distribution"] = page_run.reference.image
metrics = {"as shipped": result.before.metrics, "after TTT": result.after.metrics,
           "in-distribution": page_run.reference.metrics if page_run.reference is not None else None}
subtitles = {k: f"SSIM {m['ssim']:.3f} · PSNR {m['psnr']:.2f} dB" for k, m in metrics.items() if m and k in images}
viewer.show("ttt", shown_problem.target, images, subtitles=subtitles, filename="ttt",
            uirevision=f"ttt|{shown.source.spec}|{shown_problem.crop}")
table = pd.DataFrame([{"Network": k, "SSIM": m["ssim"], "PSNR (dB)": m["psnr"], "NMSE": m["nmse"]}
                      for k, m in metrics.items() if m])
c1, c2 = st.columns([2, 1], gap="large")
c1.dataframe(table, hide_index=True, key="ttt.table", width="stretch",
             column_config={"SSIM": st.column_config.NumberColumn(format="%.4f"),
                            "PSNR (dB)": st.column_config.NumberColumn(format="%.2f"),
                            "NMSE": st.column_config.NumberColumn(format="%.5f")})
gap = row.get("gap_closed")
c2.metric("Gap closed", "—" if gap is None else f"{gap:.0%}",
          help="(SSIM after TTT − SSIM as shipped) / (SSIM in-distribution − SSIM as shipped)")
c2.caption(f"Protocol {result.protocol} · {result.steps} steps ({result.stop_reason}), weights of step "
           f"{result.best_step}, lr {result.lr:g}, {result.seconds:.1f} s")
curves = ttt_run.curves_figure(result.history)
curves.update_yaxes(title_text="loss, held-out error (log)", row=1, col=1)
curves.update_yaxes(title_text="SSIM", row=1, col=2)
st.plotly_chart(present.bound_ssim_axes(curves), key="ttt.curves", theme=None, config={"displaylogo": False})
st.caption("Left: the self-supervised loss on the training entries and the error on the held-out entries "
           "(relative l1); the weights of the lowest held-out error are used. Right: SSIM against the fully "
           "sampled reference, when monitored.")
stem = f"{shown.source.label}_s{shown.index}_ttt_{instance_label(shown)}"
bundle.offer("ttt.bundle", stem, ttt_run.bundle(page_run, shown_problem.target, stem))
st.caption("The zip holds the settings, the results and the training curves (CSV), the reference and the images as "
           "shipped, after test-time training and of the in-distribution network (.npy and .png).")
downloads("ttt.dl", [Download("Results (.csv)", present.csv_text([row], {"metric": page_run.request.metric}), "ttt.csv",
                              "text/csv", icon=":material/table:")])
