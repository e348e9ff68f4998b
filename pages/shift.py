"""Distribution shift: every model on an in-distribution set and a shifted set; SSIM on one against the other.

Thin page: widgets -> ShiftRequest -> explorer.robustness.shift (via explorer.ui.runs.shift) -> figures.
"""
# ruff: noqa: E402

from explorer.ui import state

state.require_router()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import pandas as pd
import streamlit as st

from explorer.data.sample_sources import VARIANTS
from explorer.errors import ExplorerError
from explorer.export import records_csv
from explorer.recon.base import MethodInstance, available_methods
from explorer.figures.shift import shift_figure
from explorer.ui import pickers, viewer, widgets
from explorer.ui.runs import shift as shift_run
from explorer.ui.runs.handoff import run_or_last, stale_note
from explorer.training.zoo import read_zoo

st.title("Distribution shift")
st.caption("Every model on an in-distribution set P and a shifted set Q (same seeded mask per slice for every "
           "model; each model's settings fixed on P). The paper: under natural shifts every family loses about as "
           "much as its in-distribution quality predicts, a linear relation across models.")
methods = {m.name: m for m in available_methods()}


def set_picker(key: str, title: str, default: str) -> str:
    """A sample family or a folder/file inside the data directory."""
    st.markdown(f"**{title}**")
    kind = st.radio("Kind", ["sample", "folder"], key=f"{key}.kind", horizontal=True, label_visibility="collapsed",
                    format_func=lambda k: {"sample": "Embedded sample", "folder": "Folder or file in the data directory"}[k])
    if kind == "sample":
        return st.selectbox("Sample", list(VARIANTS), index=list(VARIANTS).index(default), key=f"{key}.family",
                            format_func=VARIANTS.get)
    folder = st.text_input("Folder or .h5 file", key=f"{key}.folder", placeholder="knee_multicoil_val")
    if not folder.strip():
        raise ExplorerError(f"{title}: enter a folder or file inside the data directory")
    return str(state.confined(folder.strip()))


left, right = st.columns(2, gap="large")
with widgets.stop_on_error():
    with left:
        id_set = set_picker("shift.id", "In-distribution set P", "sample:knee")
    with right:
        ood_set = set_picker("shift.ood", "Shifted set Q", "sample:brain")
st.subheader("Models", divider="gray")
st.caption("Several instances of a method make several points (e.g. U-nets of several sizes, l1 at several λ). "
           "Parameters that default per anatomy (checkpoint `auto`, tuned λ) take P's values on both sets.")
defaults = [n for n, spec in methods.items() if spec.capabilities.cost != "long"]
anatomy = id_set.split(":", 1)[1].split(",")[0] if id_set.startswith("sample:") else None
with widgets.stop_on_error():
    instances = pickers.method_instances("shift", methods, defaults, anatomy, label="Models")
    zoo = st.text_input("Model zoo folder (optional)", key="shift.zoo", placeholder="zoo/knee",
                        help="A folder written by `python -m explorer zoo` inside the data directory: every checkpoint "
                             "in it (several sizes and training lengths) becomes a model of the scatter.")
    if zoo.strip():
        instances += [MethodInstance.of(m["method"], {"checkpoint": m["checkpoint"]}, anatomy, m["label"])
                      for m in read_zoo(state.confined(zoo.strip()))]
c1, c2 = st.columns([2, 1])
with c1, widgets.stop_on_error():
    mask = widgets.mask_controls("shift.mask")
max_slices = c2.number_input("Slices per set (0 = all)", 0, 10000, 5, key="shift.max_slices")
request = shift_run.ShiftRequest(id_set, ood_set, tuple(instances), mask, int(max_slices) or None,
                                 state.sample_size())
pressed = st.button("Run study", type="primary", icon=":material/compare_arrows:", key="shift.run",
                    disabled=not instances)
progress = st.container()
page_run = run_or_last(pressed, lambda: shift_run.execute(request, progress), shift_run.stored)
if page_run is None:
    st.info("Choose the sets and models and press **Run study**.", icon=":material/compare_arrows:")
    st.stop()
st.subheader("Results", divider="gray")
stale_note(page_run.request != request, "Run study")
if page_run.error:
    st.error(page_run.error, icon=":material/error:")
    st.stop()
study = page_run.study
if page_run.stopped or study is None:
    st.warning("Stopped: nothing to compare yet." if study is None else "Stopped early.", icon=":material/stop_circle:")
    st.stop()
st.plotly_chart(shift_figure(study.rows, study.fit), key="shift.figure", theme=None, config={"displaylogo": False})
if study.fit:
    r_text = "—" if study.fit["r"] is None else f"{study.fit['r']:+.3f}"
    st.caption(f"Fit across {study.fit['n']} models: SSIM(Q) = {study.fit['slope']:.3f} · SSIM(P) "
               f"{study.fit['intercept']:+.3f}, Pearson r = {r_text}. Points below y = x lose quality under the shift.")
table = pd.DataFrame([{"Model": r["label"], "Method": r["method"], "Family": r["family"], "SSIM P": r["ssim_id"],
                       "SSIM Q": r["ssim_ood"], "Gap": r["gap"], "PSNR P": r["psnr_id"], "PSNR Q": r["psnr_ood"],
                       "Slices P": r["slices_id"], "Slices Q": r["slices_ood"]} for r in study.rows])
st.dataframe(table, hide_index=True, key="shift.table")
st.download_button("Study (.csv)", records_csv(study.rows), "shift.csv", "text/csv", key="shift.dl", on_click="ignore",
                   icon=":material/table:")
st.markdown("**Drill into a model**: its SSIM on every slice of both sets")
label = st.selectbox("Model", [r["label"] for r in study.rows], key="shift.drill")
per_slice = []
for name, ev in (("P", study.id_eval), ("Q", study.ood_eval)):
    for (file, index), ssim, psnr in zip(ev.slices, ev.metrics[label]["ssim"], ev.metrics[label]["psnr"]):
        per_slice.append({"Set": name, "File": file, "Slice": index, "SSIM": float(ssim), "PSNR": float(psnr)})
st.dataframe(pd.DataFrame(per_slice), hide_index=True, key="shift.slices")
pick = st.selectbox("Look at one slice", range(len(per_slice)), key="shift.view_slice",
                    format_func=lambda i: f"{per_slice[i]['Set']} · {per_slice[i]['File']} [{per_slice[i]['Slice']}] · "
                                          f"SSIM {per_slice[i]['SSIM']:.3f}")
which, n = ("id", pick) if per_slice[pick]["Set"] == "P" else ("ood", pick - len(study.id_eval.slices))
if st.button("Show this slice", key="shift.view", icon=":material/visibility:",
             help="Reconstructs it again exactly as the study did (same mask seed, pinned settings) and shows it "
                  "in the viewer"):
    st.session_state["shift.show"] = (page_run.request, label, pick)
if st.session_state.get("shift.show") == (page_run.request, label, pick):
    with widgets.stop_on_error(), st.spinner(f"Reconstructing {label} on that slice…"):
        target, image, metrics = shift_run.slice_view(page_run, which, n, label)
    name = f"{label} on {'P' if which == 'id' else 'Q'}"
    viewer.show("shift.slice", target, {name: image}, uirevision=f"shift|{which}|{n}|{target.shape}", filename="shift",
                subtitles={name: f"SSIM {metrics['ssim']:.3f} · PSNR {metrics['psnr']:.2f} dB"} if metrics else None)
