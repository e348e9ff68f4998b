"""Small features: insert fine details (or load pathology boxes), reconstruct, and check each method recovers them.

Thin page: widgets -> FeatureRequest -> explorer.robustness.features (via explorer.ui.runs.features) -> the viewer.
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import re

import numpy as np
import streamlit as st

from explorer.errors import ExplorerError
from explorer.export import npy_bytes
from explorer.figures import features as feature_figures
from explorer.figures import images as figures
from explorer.recon.base import available_methods
from explorer.robustness.boxes import boxes_for, read_boxes
from explorer.robustness.insertion import CONTRAST_REFERENCES, MODES, PAPER_CONTRAST, SHAPES, Feature, reference_image
from explorer.ui import bundle, cache, pickers, present, state, viewer, warmup, widgets
from explorer.ui.runs import features as feature_run
from explorer.ui.runs.protocol import Download, downloads

POSITIONS = "features.positions"  # the text box of feature positions (a click on the reference adds one)

st.title("Small features")
st.caption("Insert small features (the paper's 5×5 square, disks, thin lines, blobs) into a fully sampled slice, "
           "undersample it, and see whether each method recovers them (Darestani, Chaudhari & Heckel, ICML 2021).")

source = state.source_or_stop()
methods = {m.name: m for m in available_methods()}

# ---------------------------------------------------------------- 1. slice and mask
st.subheader("1 · Slice and sampling mask", divider="gray")
setup, ref_col = st.columns([1, 1.4], gap="large")
with widgets.stop_on_error():
    choice = pickers.slice_and_mask("features", source, setup)
    problem = choice.problem
    if problem.slice.acquired_mask is not None:
        raise ExplorerError("small features need a fully sampled slice: this file is already undersampled")
warmup.prefetch(problem)
reference = reference_image(problem.slice.kspace, problem.crop)
h, w = reference.shape

# ---------------------------------------------------------------- 2. features
st.subheader("2 · Features", divider="gray")
c1, c2, c3, c4 = st.columns(4)
shape = c1.selectbox("Shape", list(SHAPES), key="features.shape", help=" · ".join(f"{k}: {v}" for k, v in SHAPES.items()))
size = c2.number_input("Size (px)", 1, 64, 5, key="features.size", help="Side, diameter, length or FWHM in pixels.")
contrast = c3.number_input("Contrast", -10.0, 10.0, round(PAPER_CONTRAST, 4), 0.01, format="%g", key="features.contrast",
                           help="Amplitude relative to the image maximum (or the local mean); negative = darker. "
                                "The paper: 1/6 of the maximum.")
relative_to = c4.selectbox("Relative to", CONTRAST_REFERENCES, key="features.relative_to",
                           format_func=lambda r: {"max": "image maximum", "local": "local mean"}[r])
angle, width = 0.0, 1
if shape == "line":
    l1, l2 = st.columns(2)
    angle = l1.number_input("Line angle (°)", -180.0, 180.0, 30.0, 5.0, key="features.angle")
    width = l2.number_input("Line width (px)", 1, 8, 1, key="features.width")
mode = st.radio("Insertion", list(MODES), key="features.mode", horizontal=True,
                format_func=lambda m: {"coil": "through the coil maps (physical)", "paper": "paper mode"}[m],
                help=" · ".join(f"{k}: {v}" for k, v in MODES.items()))
p1, p2, p3 = st.columns([2, 1, 1], vertical_alignment="bottom")
positions_text = p1.text_input("Positions (row,col; row,col; …): or drag a small box on the reference image",
                               key=POSITIONS, help=f"Feature centres in the {h}×{w} reference image, row 0 at the top.")
n_random = p2.number_input("Random features", 0, 32, 0, key="features.random",
                           help="Placed at random entirely inside the anatomy (never in air), seeded.")
seed = p3.number_input("Placement seed", 0, 2**31 - 1, 0, key="features.seed")
with widgets.stop_on_error():
    template = Feature(shape=shape, size=int(size), contrast=float(contrast), relative_to=relative_to,
                       angle=float(angle), width=int(width))
    placed = feature_run.place(template, positions_text, (h, w), reference, int(n_random), int(seed))
boxes_file = st.file_uploader("Pathology boxes (annotation CSV, fastMRI+ or Calivà layout)", type=["csv"],
                              key="features.boxes_csv",
                              help="The boxes of this file and slice are scored on the unmodified slice.")
boxes = ()
if boxes_file is not None:
    with widgets.stop_on_error():
        path = state.store_bytes(boxes_file.name, boxes_file.getbuffer())
        volume = cache.open_volume(source, choice.plane)
        boxes = tuple(boxes_for(read_boxes(path), volume, choice.index))
        st.caption(f"{len(boxes)} box(es) for {volume.name} slice {choice.index}" +
                   ("" if boxes else ": none on this slice (fastMRI+ slices are 0-based)"))


def add_clicked() -> None:
    """Append the clicked pixel of the reference image to the positions (runs before the widgets)."""
    position = feature_run.clicked_position(st.session_state.get("features.reference"))
    if position is not None:
        st.session_state[POSITIONS] = feature_run.append_position(st.session_state.get(POSITIONS, ""), position)


preview = figures.image_figure(reference, "Reference: drag a small box to add a feature at its centre",
                               (0.0, float(reference.max())), height=360)
preview.update_layout(dragmode="select")
if placed or boxes:
    feature_figures.add_boxes(preview, [f.window((h, w)) for f in placed] + [b.rows_cols((h, w)) for b in boxes],
                              [str(i + 1) for i in range(len(placed))] + [b.label for b in boxes])
ref_col.plotly_chart(preview, key="features.reference", on_select=add_clicked, selection_mode=("box", "points"), theme=None,
                     config={"displaylogo": False, "scrollZoom": True})

# ---------------------------------------------------------------- 3. methods and run
st.subheader("3 · Methods", divider="gray")
defaults = pickers.default_methods(methods)  # a classical, a sparse and a trained method
with widgets.stop_on_error():
    instances = pickers.method_instances("features", methods, defaults, problem.slice.meta.defaults_key)
request = feature_run.FeatureRequest(source, choice.plane, choice.index, choice.mask, tuple(instances), placed, mode, boxes,
                                     state.metric())

# ---------------------------------------------------------------- 4. results
page_run = feature_run.RUN.section(request, heading="4 · Results", stop_if_idle=False,
                                   disabled=not instances or not instances.confirmed or not (placed or boxes))
run = page_run.run if page_run is not None else None
if run is not None and run.results:
    widgets.notes_box(st, [(result.label, note) for result in run.results for note in result.notes])
    truth, without = run.problem.target, run.inserted.reference
    table, formats = feature_run.table(run)
    st.markdown("**Per feature** (window MSE after normalising each image, the paper's score; contrast "
                "recovery 1 = the feature's contrast fully recovered; local SSIM around it)")
    st.dataframe(table, hide_index=True, key="features.table", column_config=formats, width="stretch")
    viewer.show("features", truth, {r.label: r.image for r in run.results},
                subtitles={r.label: f"SSIM {r.metrics['ssim']:.3f} · PSNR {r.metrics['psnr']:.2f} dB"
                           for r in run.results if r.metrics},
                boxes=[f.window(truth.shape) for f in run.inserted.features],
                uirevision=f"features|{page_run.request.source.spec}|{truth.shape}", filename="features")
    st.caption("The reference holds the features (numbered boxes).")
    st.markdown("**Detectability**: each feature up close, the same window for every tile")
    tiles, titles = feature_run.detectability(run)
    st.plotly_chart(feature_figures.tiles_figure(tiles, (0.0, float(truth.max())), row_titles=titles),
                    key="features.tiles", theme=None, config={"displaylogo": False})
    which = st.selectbox("Line profile through feature", range(len(run.inserted.features)), key="features.profile_of",
                         format_func=lambda i: titles[i])
    st.plotly_chart(feature_figures.profile_figure(*feature_run.profiles(run, which)), key="features.profile",
                    theme=None, config={"displaylogo": False})
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{page_run.request.source.label}_s{page_run.request.index}_features")
    bundle.offer("features.bundle", stem, feature_run.bundle(page_run, stem))
    downloads("features.dl", [
        Download("Feature scores (.csv)", present.csv_text(feature_run.csv_rows(run), {"metric": page_run.request.metric}),
                 f"{stem}.csv", "text/csv", icon=":material/table:"),
        Download("Reference with features (.npy)", npy_bytes(truth), f"{stem}_reference.npy"),
        Download("Reconstructions (.npy, stacked)", npy_bytes(np.stack([r.image for r in run.results])),
                 f"{stem}_recons.npy", help="Shape (methods, h, w), in the order of the table."),
    ])
if page_run is not None and page_run.box_rows:
    st.markdown("**Pathology boxes** (scored on the unmodified slice)")
    box_table, box_config = present.table(page_run.box_rows, formats={"window_mse": "%.4f", "local_ssim": "%.4f",
                                                                      "ssim": "%.4f"})
    st.dataframe(box_table, hide_index=True, key="features.box_table", column_config=present.column_config(box_config),
                 width="stretch")

# ---------------------------------------------------------------- 5. study
with st.expander("Study: random features over slices → recovery vs whole-image quality", icon=":material/scatter_plot:"):
    st.caption("N random features per slice (sizes and contrasts drawn from the lists), every chosen method; a "
               "scatter of the window MSE against whole-image SSIM with its correlation. The paper: \"recovery of "
               "fine details is strongly correlated with overall reconstruction quality\".")
    volume = cache.open_volume(source, choice.plane)
    s1, s2, s3, s4 = st.columns(4)
    slices = s1.multiselect("Slices", list(range(volume.num_slices)), default=[choice.index], key="features.study_slices")
    count = s2.number_input("Features per slice", 1, 32, 4, key="features.study_count")
    sizes_text = s3.text_input("Sizes (px)", "3,5,8", key="features.study_sizes")
    contrasts_text = s4.text_input("Contrasts", "0.1,0.17,0.25", key="features.study_contrasts")
    with widgets.stop_on_error():
        study_request = feature_run.study_request(source, slices, choice.mask, instances, int(count), template,
                                                  sizes_text, contrasts_text, int(seed), mode, state.metric())
    study = feature_run.STUDY.section(study_request, heading=None, disabled=not (slices and instances),
                                      stop_if_idle=False)
    if study is not None and study.rows:
        scatter = feature_figures.scatter_figure(feature_run.labelled(study.rows), feature_run.labelled_keys(study.correlations))
        scatter.update_layout(title_text=scatter.layout.title.text.replace("window_mse vs whole-image ssim",
                                                                           "Window MSE vs whole-image SSIM"))
        for trace in scatter.data:  # the hover in words too
            trace.hovertemplate = (trace.hovertemplate or "").replace("<br>ssim ", "<br>SSIM ").replace(
                "<br>window_mse ", "<br>window MSE ")
        st.plotly_chart(present.bound_ssim_axes(scatter), key="features.scatter", theme=None,
                        config={"displaylogo": False})
        corr, corr_config = present.table([{"label": k, "n": v["n"], "pearson": v["pearson"], "spearman": v["spearman"]}
                                           for k, v in study.correlations.items()],
                                          formats={"pearson": "%+.2f", "spearman": "%+.2f"})
        st.dataframe(corr, hide_index=True, key="features.corr", column_config=present.column_config(corr_config))
        st.caption("n: features scored per method (all: every method's features together); "
                   + present.fit_caption(study.correlations.get("all", {}).get("n"), "features") + ". "
                   "Across methods (each method's mean over the features), Pearson r with whole-image SSIM: " + ", ".join(
                       f"{present.column(y).lower()} {'—' if c['pearson'] is None else format(c['pearson'], '+.2f')}"
                       f" (n = {c['n']} methods)" for y, c in study.across.items()))
        study_stem = f"{page_run.request.source.label if page_run else source.label}_feature_study"
        bundle.offer("features.study_bundle", study_stem, feature_run.study_bundle(study, study_stem),
                     label="Download this study (.zip)")
        downloads("features.study_dl", [Download("Study rows (.csv)", present.csv_text(study.rows, {"metric": study.request.metric}),
                                                 "feature_study.csv", "text/csv", icon=":material/table:")])
