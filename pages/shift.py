"""Distribution shift: every model on an in-distribution set and a shifted set; SSIM on one against the other.

Thin page: widgets -> ShiftRequest -> explorer.robustness.shift (via explorer.ui.runs.shift) -> figures.
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import pandas as pd
import streamlit as st

from explorer.data.sample_sources import VARIANTS
from explorer.errors import ExplorerError
from explorer.figures.shift import shift_figure
from explorer.recon.base import MethodInstance, available_methods
from explorer.training.zoo import read_zoo
from explorer.ui import bundle, paths, pickers, present, state, viewer, widgets
from explorer.ui.runs import filtered as filtered_run
from explorer.ui.runs import shift as shift_run
from explorer.ui.runs.protocol import Download, downloads

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
    return str(paths.confine_path(folder, "the folder"))


real_folder = shift_run.real_brain_folder(state.data_roots()[0])
with st.expander("Real-data arms (the README's real-brain build)", icon=":material/neurology:"):
    if real_folder is None:
        st.caption("Build the real brain sets first (README, 'Real brain data': `python -m explorer dataset build` of "
                   "the public SIAT / EDAEPRec / espirit-matlab-examples files) into `real-brain/` of the data "
                   "directory; then these arms fill the sets and models below.")
    else:
        arm = st.radio("Arm", list(shift_run.REAL_ARMS), index=None, key="shift.real_arm",
                       format_func=lambda a: shift_run.REAL_ARMS[a][0],
                       on_change=lambda: st.session_state.get("shift.real_arm") and shift_run.apply_real_arm(
                           st.session_state["shift.real_arm"], real_folder))
        st.caption(f"From `{real_folder}/`: the 31 semi-real 8-coil EDAEPRec test slices (`mc/test`) and the three "
                   "measured multi-coil slices (`measured`). The knee arm keeps each network's knee checkpoint; the "
                   "real-anatomy arm sets the U-net's and VarNet's checkpoint to `brain-real`.")

MODES = {"pair": "Two sets: P against a shifted Q", "filtered": "Adversarially filtered: a pool against its hardest "
         "slices for filter models"}
mode = st.radio("Shift", list(MODES), format_func=MODES.get, key="shift.mode", horizontal=True)
left, right = st.columns(2, gap="large")
with widgets.stop_on_error():
    with left:
        id_set = set_picker("shift.id", "In-distribution set P" if mode == "pair" else "Pool", "sample:knee")
    if mode == "pair":
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
                      for m in read_zoo(paths.confine_path(zoo, "the zoo folder"))]
c1, c2 = st.columns([2, 1])
with c1, widgets.stop_on_error():
    mask = widgets.mask_controls("shift.mask")
max_slices = c2.number_input("Slices per set (0 = all)", 0, 10000, 5, key="shift.max_slices")
if mode == "filtered":
    with right:
        st.markdown("**Filter models**")
        labels = [i.label for i in instances]
        filters = st.multiselect("Keep the slices these models do worst on", labels, default=labels[-1:],
                                 key="shift.filters", help="Their mean SSIM per pool slice decides (the papers: one "
                                 "strong model); every model is then compared on those slices.")
        keep = st.number_input("Slices kept", 1, 100000, 3, key="shift.keep")
    with widgets.stop_on_error():
        request = filtered_run.request(id_set, instances, filters, int(keep), mask, int(max_slices) or None,
                                       state.sample_size(), state.metric())
    run = filtered_run.RUN.section(request, disabled=not instances or not instances.confirmed)
    result = run.result
    if result is None:
        st.stop()
    kept = ", ".join(f"{f} [{s}]" for f, s in result.kept_slices)
    filters = " + ".join(present.method_name(f) for f in result.filters)
    st.plotly_chart(present.bound_ssim_axes(shift_figure(
        shift_run.labelled(result.rows), result.fit, x="ssim_pool", y="ssim_filtered",
        x_title=f"SSIM, whole pool ({len(result.evaluation.slices)} slices)",
        y_title=f"SSIM, the {len(result.kept)} slices where {filters} do worst")),
        key="shift.filtered_figure", theme=None, config={"displaylogo": False})
    fit_text = ""
    if result.fit:
        fit_text = (f"Fit across the models: slope {result.fit['slope']:.3f}, intercept {result.fit['intercept']:+.3f}"
                    + ("" if result.fit.get("r") is None else f", Pearson r = {result.fit['r']:+.3f}")
                    + f" ({present.fit_caption(result.fit.get('n', len(result.rows)))}). ")
    st.caption(f"{fit_text}Kept slices: {kept}. Points below y = x lose quality on the hardest slices of the filter "
               "models.")
    st.dataframe(filtered_run.table(result), hide_index=True, key="shift.filtered_table", width="stretch",
                 column_config=filtered_run.COLUMNS)
    stem = "filtered_shift"
    bundle.offer("shift.filtered_bundle", stem, filtered_run.bundle(run, stem))
    downloads("shift.filtered_dl", [Download("Filtered shift (.csv)", present.csv_text(result.rows, {"metric": run.request.metric}),
                                             "filtered.csv", "text/csv", icon=":material/table:")])
    st.stop()
request = shift_run.ShiftRequest(id_set, ood_set, tuple(instances), mask, int(max_slices) or None,
                                 state.sample_size(), state.metric())

page_run = shift_run.RUN.section(request, disabled=not instances or not instances.confirmed)
study = page_run.study
if page_run.stopped or study is None:
    st.stop()
st.plotly_chart(present.bound_ssim_axes(shift_figure(shift_run.labelled(study.rows), study.fit)), key="shift.figure",
                theme=None, config={"displaylogo": False})
if study.fit:
    r_text = "—" if study.fit["r"] is None else f"{study.fit['r']:+.3f}"
    st.caption(f"Fit across {study.fit['n']} models: SSIM(Q) = {study.fit['slope']:.3f} · SSIM(P) "
               f"{study.fit['intercept']:+.3f}, Pearson r = {r_text} ({present.fit_caption(study.fit['n'])}). "
               "Points below y = x lose quality under the shift.")
else:
    st.caption(f"No fit: {present.fit_caption(len(study.rows))}. Points below y = x lose quality under the shift.")
st.dataframe(shift_run.table(study), hide_index=True, key="shift.table", width="stretch", column_config=shift_run.COLUMNS)
stem = "shift_study"
bundle.offer("shift.bundle", stem, shift_run.bundle(page_run, stem))
downloads("shift.dl", [Download("Study (.csv)", present.csv_text(study.rows, {"metric": page_run.request.metric}),
                                "shift.csv", "text/csv", icon=":material/table:")])
st.markdown("**Drill into a model**: its SSIM on every slice of both sets")
label = st.selectbox("Model", [r["label"] for r in study.rows], key="shift.drill", format_func=present.method_name)
per_slice = shift_run.per_slice(study, label)
st.dataframe(pd.DataFrame(per_slice), hide_index=True, key="shift.slices", width="stretch",
             column_config={"SSIM": st.column_config.NumberColumn(format="%.4f"),
                            "PSNR": st.column_config.NumberColumn("PSNR (dB)", format="%.2f")})
pick = st.selectbox("Look at one slice", range(len(per_slice)), key="shift.view_slice",
                    format_func=lambda i: f"{per_slice[i]['Set']} · {per_slice[i]['File']} [{per_slice[i]['Slice']}] · "
                                          f"SSIM {per_slice[i]['SSIM']:.3f}")
which, n = ("id", pick) if per_slice[pick]["Set"] == "P" else ("ood", pick - len(study.id_eval.slices))
if st.button("Show this slice", key="shift.view", icon=":material/visibility:",
             help="Reconstructs it again with every model exactly as the study did (same mask seed, pinned "
                  "settings) and shows them side by side in the viewer"):
    st.session_state["shift.show"] = (page_run.request, pick)
if st.session_state.get("shift.show") == (page_run.request, pick):
    labels = [r["label"] for r in study.rows]
    bar = st.empty()

    def reconstructing(done: int, total: int, model: str) -> None:
        bar.progress(done / max(total, 1), text=f"Reconstructing {present.method_name(model)} on that slice "
                                                f"({done + 1}/{total})…")

    with widgets.stop_on_error():
        target, views = shift_run.slice_views(page_run, which, n, labels, reconstructing)
    bar.empty()
    where = "P" if which == "id" else "Q"
    images = {present.method_name(m): image for m, (image, _) in views.items()}
    subtitles = {present.method_name(m): f"SSIM {metrics['ssim']:.3f} · PSNR {metrics['psnr']:.2f} dB"
                 for m, (_, metrics) in views.items() if metrics}
    st.caption(f"Every model on slice {per_slice[pick]['Slice']} of {per_slice[pick]['File']} (set {where}).")
    viewer.show("shift.slice", target, images, uirevision=f"shift|{which}|{n}|{target.shape}", filename="shift",
                subtitles=subtitles or None)
