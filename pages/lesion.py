"""Lesions: could a lesion be erased, or a fake one created, within a small k-space budget, and would I notice?

Thin page: widgets -> LesionRequest -> explorer.robustness.lesions (via explorer.ui.runs.lesion) -> the viewer.
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import re

import streamlit as st

from explorer.recon.base import available_methods
from explorer.robustness.insertion import PAPER_CONTRAST, SHAPES
from explorer.robustness.lesions import MEASURES
from explorer.ui import cache, pickers, present, state, viewer, warmup, widgets
from explorer.ui.runs import lesion as lesion_run
from explorer.ui.runs.protocol import Download, downloads

st.title("Lesions")
st.caption("The radiologist's question of a method (FNAF, Cheng, Calivà et al., MIDL 2020; targeted hallucinations): "
           "which lesion does it miss, and how small a perturbation of the measured k-space erases a real lesion or "
           "makes a fake one appear, while the rest of the image changes little?")

source = state.source_or_stop()
methods = {m.name: m for m in available_methods()}

st.subheader("1 · Slice and sampling mask", divider="gray")
setup, info_col = st.columns([1.1, 2], gap="large")
with widgets.stop_on_error():
    choice = pickers.slice_and_mask("lesion", source, setup)
problem = choice.problem
warmup.prefetch(problem)
full_kspace = problem.slice.acquired_mask is None
h, w = problem.crop
info_col.markdown(f"**Actual acceleration R = {problem.sampled.acceleration:.2f}** · {problem.slice.num_coils} coil(s) · "
                  f"images {h}×{w}")
info_col.caption("Threat model as on the Attack page: y' = M(k + e), ‖e‖₂ ≤ eps·‖k‖₂ on the sampled entries; the "
                 "objective is targeted: change the lesion's box, keep the rest (outside weight 1).")

st.subheader("2 · Question and methods", divider="gray")
mode = st.radio("Question", list(lesion_run.MODES), key="lesion.mode", format_func=lesion_run.MODES.get)
defaults = pickers.default_methods(methods)
with widgets.stop_on_error():
    instances = pickers.method_instances("lesion", methods, defaults, problem.slice.meta.defaults_key,
                                         label="Methods",
                                         help_text="Every method can be searched for the lesion it misses; the "
                                                   "smallest budget needs a gradient or a fit (as on the Attack page).")

st.subheader("3 · Lesion and budgets", divider="gray")
c1, c2, c3 = st.columns([1.4, 1, 1])
eps_text = c1.text_input("Budgets eps (ascending sweep)", "0.005,0.01,0.02,0.04,0.08", key="lesion.eps",
                         help="The sweep stops at the first budget whose attack meets the criterion: the headline.")
steps = c2.number_input("Steps per budget", 1, 500, 10, key="lesion.steps")
threshold = c3.number_input("Criterion", 0.05, 0.95, 0.5, 0.05, key="lesion.threshold",
                            help="Vanished: the lesion's contrast recovery falls below this; appeared: the box's "
                                 "contrast reaches this share of the lesion's.")
settings = {}
if mode == "false-negative":
    d1, d2, d3, d4 = st.columns(4)
    sizes = d1.slider("Sizes (px)", 1, 15, (3, 7), key="lesion.sizes")
    contrasts = d2.slider("Contrasts (× max)", 0.02, 0.5, (0.1, 0.25), 0.01, key="lesion.contrasts")
    shapes = d3.multiselect("Shapes", list(SHAPES), ["square"], key="lesion.shapes")
    measure = d4.selectbox("Scored by", list(MEASURES), key="lesion.measure")
    e1, e2, e3 = st.columns([2, 1, 1])
    region_text = e1.text_input(f"Region (row0,col0,row1,col1 of the {h}×{w} image; empty = the whole object)", "",
                                key="lesion.region")
    candidates = e2.number_input("Random lesions", 1, 256, 8, key="lesion.candidates")
    refine = e3.number_input("Refinement steps", 0, 256, 8, key="lesion.refine")
    settings = dict(region_text=region_text, sizes=tuple(sizes), contrasts=tuple(contrasts), shapes=tuple(shapes),
                    candidates=int(candidates), refine=int(refine), measure=measure, vanish=float(threshold))
else:
    d1, d2, d3, d4, d5 = st.columns(5)
    row = d1.number_input("Row", 0, h - 1, h // 2, key="lesion.row")
    col = d2.number_input("Column", 0, w - 1, w // 2, key="lesion.col")
    shape = d3.selectbox("Shape", list(SHAPES), key="lesion.shape")
    size = d4.number_input("Size (px)", 1, 31, 5, key="lesion.size")
    contrast = d5.number_input("Contrast (× max)", -1.0, 1.0, float(PAPER_CONTRAST), 0.01, format="%.3f",
                               key="lesion.contrast", help="The papers' features: 1/6 of the reference's maximum.")
    settings = dict(at=(int(row), int(col)), shape=shape, size=int(size), contrast=float(contrast),
                    appear=float(threshold))
reference = lesion_run.placement_image(problem)
if reference is not None:
    with st.expander("Place it on the image" if mode == "hallucination" else "Draw the region on the image",
                     icon=":material/ads_click:", expanded=False):
        if mode == "hallucination":
            st.caption("Click the image (the *Mark* tool) to put the lesion's centre there.")
            viewer.show("lesion.place", None, {"fully sampled reference": reference}, uirevision=f"place|{h}x{w}",
                        details=False, mark=True, point=(int(settings["at"][0]), int(settings["at"][1])),
                        on_point=lesion_run.place, columns=1, filename="placement")
        else:
            st.caption("Draw a box (**Drag to: ROI box**), then use it as the search region.")
            viewer.show("lesion.place", None, {"fully sampled reference": reference}, uirevision=f"place|{h}x{w}",
                        columns=1, filename="placement")
            st.button("Use the drawn box as the region", key="lesion.use_roi", icon=":material/crop_free:",
                      on_click=lesion_run.use_drawn_region, args=("lesion.place",))
with widgets.stop_on_error():
    request = lesion_run.request(source, choice.plane, choice.index, choice.mask, instances, mode, eps_text,
                                 full_kspace, steps=int(steps), metric=state.metric(), **settings)

run = lesion_run.RUN.section(request, heading="4 · Results", disabled=not instances or not instances.confirmed)
if not run.outcomes:
    st.stop()
shown_request = run.request
with widgets.stop_on_error():
    shown_problem = cache.problem(shown_request.source, shown_request.plane, shown_request.index, shown_request.mask)
st.markdown("**The smallest budget per method** (the headline), the lesion, and the last attack beside Gaussian noise "
            "of the same norm")
st.dataframe(lesion_run.headline_table(run), hide_index=True, key="lesion.table", width="stretch")
criterion = shown_request.criteria.describe("erase" if shown_request.mode == "false-negative" else "hallucination")
st.caption(f"Criterion: {criterion}. Measure: the lesion box's contrast change relative to the lesion (erase: the "
           "recovery left; appear: the contrast created); outside change: the relative change of the rest.")
pairs_shown = lesion_run.shown(run)
if pairs_shown:
    images, pairs, subtitles, boxes = {}, {}, {}, []
    for outcome, attack in pairs_shown:
        clean, attacked = f"{outcome.instance.display}: clean", f"{outcome.instance.display}: attacked eps {attack.config.eps:g}"
        images[clean], images[attacked], pairs[attacked] = attack.clean.image, attack.attacked.image, clean
        subtitles[attacked] = f"measure {attack.change:.2f} · ‖e‖/‖k‖ {attack.ratio:.4f}"
        boxes.append(tuple(attack.structure.box))
    target = pairs_shown[0][0].problem.target if shown_request.mode == "false-negative" else shown_problem.target
    st.markdown("**Clean vs attacked, at each method's headline budget (else its largest)**; the lesion's box on every "
                "panel")
    viewer.show("lesion", target, images, subtitles=subtitles, pairs=pairs, pair_name="|attacked − clean|",
                boxes=sorted(set(boxes)), box_labels=["lesion"] * len(set(boxes)), show_target=target is not None,
                columns=2, uirevision=f"{shown_request.source.spec}|{shown_request.plane}|{shown_problem.crop}",
                filename="lesions")
stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{shown_request.source.label}_s{shown_request.index}_{shown_request.mode}")
metric = run.request.metric
rows = [r for o in run.outcomes if o.headline is not None for r in [o.headline.row()]]
attacks = [a.row(shown_request.criteria) for o in run.outcomes if o.headline is not None for a in o.headline.results]
candidates = [r for o in run.outcomes if o.search is not None for r in o.search.rows()]
items = [Download("Headline (.csv)", present.csv_text(rows, {"metric": metric}), f"{stem}_headline.csv", "text/csv",
                  icon=":material/table:")]
if attacks:
    items.append(Download("Attacks (.csv)", present.csv_text(attacks, {"metric": metric}), f"{stem}_attacks.csv",
                          "text/csv", icon=":material/table:"))
if candidates:
    items.append(Download("Search candidates (.csv)", present.csv_text(candidates, {"metric": metric}),
                          f"{stem}_candidates.csv", "text/csv", icon=":material/table:"))
downloads("lesion.dl", items)
