"""Attack: worst-case k-space perturbations under an l2 budget, for every chosen method.

Thin page: widgets -> AttackRequest -> explorer.robustness.attack (via explorer.ui.runs.attack) -> the viewer.
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import re

import streamlit as st

from explorer.errors import ExplorerError
from explorer.export import npy_bytes, png_bytes
from explorer.figures import attack as attack_figures
from explorer.recon.base import available_methods
from explorer.robustness.attack import STRATEGIES
from explorer.robustness.noise import NOISE_NAME
from explorer.robustness.objectives import BUDGETS, MAX_NOISE_DRAWS, OBJECTIVES, OPTIMIZERS
from explorer.robustness.perturbations import perturbation_image
from explorer.robustness.realistic import KINDS as REALISTIC_KINDS
from explorer.robustness.realistic import ORDERINGS
from explorer.ui import bundle, cache, pickers, present, state, viewer, warmup, widgets
from explorer.ui.runs import attack as attack_run
from explorer.ui.runs import realistic as realistic_run
from explorer.ui.runs.protocol import Download, downloads

st.title("Attack")
st.caption("Search a small perturbation e of the measured k-space, ‖e‖ ≤ eps·‖k‖, that changes each method's "
           "reconstruction the most (Darestani, Chaudhari & Heckel, ICML 2021), and compare the methods.")

source = state.source_or_stop()
# Attackable: an exact gradient (projected gradient ascent) or a fit with data consistency (the joint scheme).
methods = {m.name: m for m in available_methods() if m.capabilities.gradient in STRATEGIES}

# ---------------------------------------------------------------- 1. slice and mask
st.subheader("1 · Slice and sampling mask", divider="gray")
setup, info_col = st.columns([1.1, 2], gap="large")
with widgets.stop_on_error():
    choice = pickers.slice_and_mask("attack", source, setup)
problem = choice.problem
warmup.prefetch(problem)
info_col.markdown(f"**Actual acceleration R = {problem.sampled.acceleration:.2f}** · {problem.slice.num_coils} coil(s) · "
                  f"k-space {problem.slice.shape[0]}×{problem.slice.shape[1]}, images {problem.crop[0]}×{problem.crop[1]}")
info_col.caption("Threat model: y' = M(k + e), e on the sampled entries, ‖e‖₂ ≤ eps·‖k‖₂ with k the fully sampled "
                 "k-space (the paper's; 0.08 at 4× in its experiments). Coil maps stay those of the clean data.")

# ---------------------------------------------------------------- 2. methods
st.subheader("2 · Methods", divider="gray")
defaults = pickers.default_methods(methods)  # a classical, a sparse and a trained network
with widgets.stop_on_error():
    instances = pickers.method_instances(
        "attack", methods, defaults, problem.slice.meta.defaults_key, label="Methods to attack",
        describe=lambda spec: {"gradient": "gradient ascent", "joint": "joint scheme"}[STRATEGIES[spec.capabilities.gradient]],
        help_text="Methods with an exact gradient are attacked by projected gradient ascent through the whole "
                  "reconstruction; un-trained networks by the paper's joint scheme (network and e optimised "
                  "together, then a refit on y + e from scratch).")

# ---------------------------------------------------------------- 3. attack settings
st.subheader("3 · Attack", divider="gray")
c1, c2, c3, c4 = st.columns([1.3, 1.6, 0.8, 0.8])
eps_text = c1.text_input("Budget eps (several: a sweep)", "0.08", key="attack.eps",
                         help="Relative l2 budget ‖e‖/‖k‖; comma-separated values run a sweep, each budget warm-started "
                              "from the previous one's worst perturbation.")
objective = c2.selectbox("Objective", list(OBJECTIVES), key="attack.objective", format_func=lambda o: f"{o}: {OBJECTIVES[o]}")
steps = c3.number_input("Steps", 1, 2000, 20, key="attack.steps", help="Gradient steps per restart.")
restarts = c4.number_input("Restarts", 1, 20, 1, key="attack.restarts",
                           help="Independent random starts; the worst result is kept.")
with st.expander("More settings", icon=":material/tune:"):
    a1, a2, a3, a4, a5, a6 = st.columns(6)
    full_kspace = problem.slice.acquired_mask is None  # a test file holds only its undersampled data
    budget = a1.selectbox("Budget relative to", list(BUDGETS), key="attack.budget", index=0 if full_kspace else 1,
                          format_func=lambda b: {"full": "full k-space (paper)", "measured": "measured y"}[b],
                          help=" / ".join(f"{k}: {v}" for k, v in BUDGETS.items()))
    optimizer = a2.selectbox("Optimizer", list(OPTIMIZERS), key="attack.optimizer",
                             help="pgd: normalised l2 steps with projection; adam: Adam on e (the paper's), projected.")
    step_size = a3.number_input("Step size (× budget)", 0.0, 10.0, 0.0, 0.01, format="%g", key="attack.step_size",
                                help="0 = 2.5 / steps.")
    patience = a4.number_input("Patience", 0, 100000, 5, key="attack.patience",
                               help="Stop after this many steps without a new worst (0 = never).")
    seed = a5.number_input("Seed", 0, 2**31 - 1, 0, key="attack.seed", help="Seed of the random starts.")
    noise_draws = a6.number_input("Noise draws", 0, MAX_NOISE_DRAWS, 3, key="attack.noise_draws",
                                  help="The random baseline beside each worst case: complex Gaussian perturbations of "
                                       "exactly the budget's norm, on the same sampled entries, each reconstructed and "
                                       "scored (mean ± sd). 0 = none. Each draw costs one more reconstruction per "
                                       "method and budget (an un-trained network is refitted per draw).")
    region_text = st.text_input("Region (row0,col0,row1,col1; empty = whole image)", "", key="attack.region",
                                help=f"Maximise the error inside this box of the {problem.crop[0]}×{problem.crop[1]} "
                                     "image only, e.g. to erase or hallucinate a small feature. Hover the images to "
                                     "read pixel coordinates.")
do_transfer = st.checkbox("Transfer: apply each method's perturbation to every other method", key="attack.transfer")
with widgets.stop_on_error():
    request = attack_run.request(source, choice.plane, choice.index, choice.mask, instances, eps_text, region_text,
                                 problem.crop, problem.target is not None, do_transfer, objective=objective,
                                 budget=budget, steps=int(steps), step_size=float(step_size), restarts=int(restarts),
                                 optimizer=optimizer, patience=int(patience), seed=int(seed),
                                 noise_draws=int(noise_draws),
                                 metric=state.metric())

with st.expander("Realistic corruptions beside the worst case: noise, motion per shot, spikes",
                 icon=":material/blur_on:"):
    st.caption("The acquisition corrupted as scanners and patients do (before the mask; coil maps re-estimated from "
               "the corrupted data), the same methods reconstructed, and each corruption's size in the budget's units "
               "‖M(k′ − k)‖/‖k‖, to set beside the adversarial budgets above.")
    real_request = None
    if not full_kspace:
        st.info("This file holds undersampled data only: there is no acquisition to corrupt.", icon=":material/info:")
    else:
        r1, r2, r3, r4 = st.columns([1.2, 1.4, 0.8, 1.2])
        kind = r1.selectbox("Corruption", list(REALISTIC_KINDS), key="attack.real.kind",
                            help=" · ".join(f"{k}: {v}" for k, v in REALISTIC_KINDS.items()))
        levels_text = r2.text_input("Levels", realistic_run.DEFAULT_LEVELS[kind], key=f"attack.real.levels.{kind}")
        shots = r3.number_input("Shots", 1, 64, 8, key="attack.real.shots", disabled=kind != "motion")
        ordering = r4.radio("Shot ordering", list(ORDERINGS), key="attack.real.ordering", horizontal=True,
                            disabled=kind != "motion")
        try:  # a bad level is one error line here; the attack below stays usable
            real_request = realistic_run.request(source, choice.plane, choice.index, choice.mask, instances, kind,
                                                 levels_text, full_kspace, int(shots), ordering,
                                                 metric=state.metric())
        except ExplorerError as exc:
            widgets.show_error(exc)
    if real_request is not None:
        real_run = realistic_run.RUN.section(real_request, heading=None, stop_if_idle=False,
                                             disabled=not instances or not instances.confirmed)
        if real_run is not None and real_run.rows:
            st.dataframe(realistic_run.table(real_run), hide_index=True, key="attack.real.table", width="stretch")
            images = {f"{r['label']} · {r['kind']} {r['level']:g}": r["image"] for r in real_run.rows}
            real_problem = cache.problem(real_run.request.source, real_run.request.plane, real_run.request.index,
                                         real_run.request.mask)
            viewer.show("attack.real", real_problem.target, images, columns=3, filename="corrupted",
                        uirevision=f"real|{real_run.request.source.spec}|{real_problem.crop}")

# ---------------------------------------------------------------- 4. results
run = attack_run.RUN.section(request, heading="4 · Results", disabled=not instances or not instances.confirmed)
if not run.results:
    st.stop()
shown = run.request
with widgets.stop_on_error():
    shown_problem = cache.problem(shown.source, shown.plane, shown.index, shown.mask)
table, formats = attack_run.table(run)
st.markdown("**Metrics** (against the fully sampled reference, centre-cropped; drop = clean − perturbed)"
            if shown_problem.target is not None else "**Attacks** (no reference in this file: no metrics)")
st.dataframe(table, hide_index=True, key="attack.table", column_config=formats, width="stretch")
st.caption(f"Objective: {OBJECTIVES[shown.config.objective]}"
           + (f", inside rows {shown.config.region[0]}–{shown.config.region[2]}, columns "
              f"{shown.config.region[1]}–{shown.config.region[3]}" if shown.config.region else "")
           + f" · budget relative to the {shown.config.budget} k-space · coil maps: the clean data's ESPIRiT maps."
           + (f" · Gaussian noise, same norm: the mean over {shown.config.noise_draws} complex Gaussian perturbations of "
              "exactly the budget's norm on the same sampled entries, sd over the draws: the drop a random perturbation "
              "of that size causes, beside the worst case." if any(r.noise is not None for r in run.results) else ""))

widgets.notes_box(st, [(result.instance.display, note) for result in {r.instance.label: r for r in run.results}.values()
                       for note in result.clean.notes])
budgets = sorted({r.config.eps for r in run.results})
if len(budgets) > 1:
    sweep = present.bound_ssim_axes(attack_figures.sweep_figure(attack_run.csv_rows(run)))
    sweep.update_xaxes(title_text="budget ε = ‖e‖ / ‖k‖")
    st.plotly_chart(sweep, key="attack.sweep", theme=None, config={"displaylogo": False})
    show_eps = st.select_slider("Budget shown below", budgets, value=budgets[-1], key="attack.show_eps",
                                format_func=lambda v: f"eps {v:g}")
else:
    show_eps = budgets[0]
chosen = [r for r in run.results if r.config.eps == show_eps]
target = shown_problem.target
ref_max = float(target.max()) if target is not None else max(float(r.clean.image.max()) for r in chosen)
images, pairs, subtitles = {}, {}, {}
for r in chosen:
    clean, perturbed = f"{r.instance.display}: clean", f"{r.instance.display}: perturbed"
    images[clean], images[perturbed], pairs[perturbed] = r.clean.image, r.perturbed.image, clean
    if r.clean.metrics and r.perturbed.metrics:
        subtitles[clean] = f"SSIM {r.clean.metrics['ssim']:.3f} · PSNR {r.clean.metrics['psnr']:.2f} dB"
        subtitles[perturbed] = f"SSIM {r.perturbed.metrics['ssim']:.3f} · PSNR {r.perturbed.metrics['psnr']:.2f} dB"
region = shown.config.region
st.markdown(f"**Clean vs perturbed reconstructions at eps {show_eps:g}**")
viewer.show("attack", target, images, subtitles=subtitles, pairs=pairs, pair_name="|perturbed − clean|",
            boxes=[region] if region else (), box_labels=["attack region"] if region else None, show_target=False,
            columns=2, uirevision=f"{shown.source.spec}|{shown.plane}|{shown_problem.crop}", filename="attack")
with st.expander("The perturbations: k-space and image domain", icon=":material/blur_on:"):
    views = {r.instance.display: (r.e[0].numpy(), perturbation_image(shown_problem, r.e).numpy()) for r in chosen}
    st.plotly_chart(attack_figures.perturbation_figure(views, panel_px=280), key="attack.perturbation", theme=None,
                    config={"scrollZoom": True, "displaylogo": False})
    st.caption("Left: log₁₀ of the perturbation's coil-RSS magnitude in k-space (zero off the sampled lines). "
               "Right: |Aᴴe|, the perturbation seen through the adjoint with the clean ESPIRiT maps.")

if run.transfers:
    st.markdown(f"**Transfer matrix at eps {show_eps:g}**: the SSIM drop of each method (column) under the "
                "perturbation found for each method (row); the diagonal is each method's own attack"
                + ("; the last row: Gaussian noise of the same norm (mean over the draws)."
                   if any(t["source"] == NOISE_NAME for t in run.transfers) else "."))
    mine = [t for t in attack_run.transfer_rows(run) if t["eps"] == show_eps]
    st.plotly_chart(attack_figures.transfer_figure(mine), key="attack.transfer_fig", theme=None,
                    config={"displaylogo": False})

st.markdown("**Downloads**")
stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{shown.source.label}_s{shown.index}_{shown.mask.type}_R{shown.mask.acceleration:g}")
bundle.offer("attack.bundle", f"{stem}_attack", attack_run.bundle(run, shown_problem, target, (0.0, ref_max),
                                                                   f"{stem}_attack"))
st.caption("The zip holds the settings, the tables, the reference, every clean and perturbed image at every budget "
           "and every perturbation (k-space .npy and its image |Aᴴe|).")
metric = run.request.metric
items = [Download("Attack table (.csv)", present.csv_text(attack_run.csv_rows(run), {"metric": metric}),
                  f"{stem}_attack.csv", "text/csv", icon=":material/table:")]
if run.transfers:
    items.append(Download("Transfer table (.csv)", present.csv_text(attack_run.transfer_rows(run), {"metric": metric}),
                          f"{stem}_transfer.csv", "text/csv", icon=":material/table:"))
downloads("attack.dl", items, columns=2)
for r in chosen:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{stem}_{r.instance.label}_eps{r.config.eps:g}")
    downloads(f"attack.dl.{r.instance.label}", [
        Download("e (.npy)", npy_bytes(r.e[0].numpy()), f"{name}_e.npy",
                 help="The perturbation (C, H, W) complex64, zero off the sampled entries."),
        Download("perturbed (.npy)", npy_bytes(r.perturbed.image), f"{name}_perturbed.npy"),
        Download("perturbed (.png)", png_bytes(r.perturbed.image, 0.0, ref_max), f"{name}_perturbed.png", "image/png"),
    ], label=r.instance.display)
