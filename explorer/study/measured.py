"""The README's measured tables, each tied to the commands that regenerate it (:mod:`explorer.study.results`).

``python -m explorer results list`` names them; ``python -m explorer results run NAME`` re-measures one;
``python -m explorer results readme`` redraws the README's tables from the files.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from explorer.errors import ExplorerError
from explorer.recon.base import BUILTIN_MODULES as METHOD_MODULES
from explorer.robustness.registry import BUILTIN_MODULES as EXPERIMENT_MODULES
from explorer.study import (measured_arms, measured_lesions, measured_real, measured_realistic, measured_scaling,
                           measured_gaps, measured_shipped, measured_speed, measured_zoo)
from explorer.study.results import Measurement, Part

#: The methods a README table may show, in the order it shows them, with their display names.
NAMES = {"zero_filled": "Zero-filled", "sense": "SENSE (CG)", "l1": "l1-wavelet", "tv": "TV",
         "convdecoder": "ConvDecoder (joint)", "unet": "U-net", "varnet": "VarNet"}
#: Modules the reconstruction methods live in (loaded by name through the method registry).
METHOD_CODE = tuple(METHOD_MODULES)
#: Data the methods read: the tuned regularisation weights of l1 and TV.
METHOD_FILES = ("explorer/recon/tuned_lambdas.json",)


MEASUREMENTS: dict[str, Measurement] = {}


def register(measurement: Measurement) -> Measurement:
    """Add ``measurement`` (its name must be new)."""
    if measurement.name in MEASUREMENTS:
        raise ValueError(f"measurement {measurement.name!r} is already registered")
    MEASUREMENTS[measurement.name] = measurement
    return measurement


def get(name: str) -> Measurement:
    """The measurement ``name``.

    Raises:
        ExplorerError: an unknown name.
    """
    if name not in MEASUREMENTS:
        raise ExplorerError(f"no measurement {name!r}; known: {', '.join(MEASUREMENTS)}")
    return MEASUREMENTS[name]


def _groups(outputs: list[tuple[str, dict]]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for label, output in outputs:
        grouped[label].append(output)
    return grouped


def _series(rows: list[dict | None], key: str, digits: int) -> str:
    return " / ".join(_f(row.get(key) if row else None, f".{digits}f") for row in rows)


def _f(value, spec: str) -> str:
    """``value`` formatted, or ``-`` when the command printed none."""
    return "-" if value is None else format(value, spec)


def _span(values: list[int]) -> str:
    return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"


def _one(values, name: str) -> str:
    found = sorted({str(v) for v in values})
    return found[0] if len(found) == 1 else f"mixed {name}: {', '.join(found)}"


# --- test-time training, knee -> brain ----------------------------------------------------------------------------

TTT_SLICES = tuple((seed, index) for seed in (201, 202) for index in range(5))
TTT_NETWORKS = (("U-net (`--loss both`)", "unet"), ("VarNet (supervised)", "varnet"))


def ttt_parts(protocol: str = "ours") -> tuple[Part, ...]:
    """Knee -> brain TTT of each shipped knee network on the 10 held-back brain slices, the brain network as the
    reference (one command per network and slice)."""
    extra = () if protocol == "ours" else ("--protocol", protocol)
    return tuple(Part(label, ("ttt", "--data", f"sample:brain,seed={seed},slices=5", "--slice", str(index),
                              "--method", method, "--set", f"{method}.checkpoint=knee", "--reference-checkpoint",
                              "brain", *extra, "--json"))
                 for label, method in TTT_NETWORKS for seed, index in TTT_SLICES)


def render_ttt(outputs: list[tuple[str, dict]]) -> str:
    """Per network: mean SSIM before / after / reference, the gap closed of the means and per slice, what stopped the
    runs, PSNR before -> after and the time per slice."""
    lines = ["| network | protocol | metric | slices | knee network | after TTT | brain network | gap closed (of the "
             "means) | per slice | stopped by | PSNR (dB) | s per slice |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, docs in _groups(outputs).items():
        rows = [d["results"][0] for d in docs]
        before, after, ref = (np.mean([r[k] for r in rows]) for k in ("ssim_before", "ssim_after", "ssim_reference"))
        gaps = [100 * r["gap_closed"] for r in rows if r.get("gap_closed") is not None]
        gap = f"**{100 * (after - before) / (ref - before):.0f}%**" if ref - before > 1e-6 else "no gap"
        stops = defaultdict(list)
        for r in rows:
            stops[r["stop_reason"]].append(r["steps"])
        stopped = "; ".join(f"{reason} on {len(steps)} (after {_span(steps)} steps)"
                            for reason, steps in sorted(stops.items(), key=lambda kv: -len(kv[1])))
        psnr = f"{np.mean([r['psnr_before'] for r in rows]):.1f} -> {np.mean([r['psnr_after'] for r in rows]):.1f}"
        lines.append(
            f"| {label}, lr {rows[0]['lr']:g} | {_one([d['protocol'] for d in docs], 'protocols')} | "
            f"{_one([d['metric'] for d in docs], 'metrics')} | {len(rows)} | {before:.3f} | {after:.3f} | {ref:.3f} | "
            f"{gap} | {f'{min(gaps):.0f} to {max(gaps):.0f}%' if gaps else '-'} | {stopped} | "
            f"{psnr} | {np.median([r['seconds'] for r in rows]):.0f} |")
    return "\n".join(lines)


register(Measurement(
    name="ttt-knee-brain", title="test-time training of the knee networks on 10 held-back brain slices",
    parts=ttt_parts("ours"), render=render_ttt, code=METHOD_CODE,
    files=METHOD_FILES + tuple(f"assets/checkpoints/{m}_{a}.pt" for _, m in TTT_NETWORKS for a in ("knee", "brain")),
    note="4x random masks; our protocol: at most 200 steps, window 20, 5% of the sampled columns outside the centre "
         "held out of input and loss, rollback to the best held-out step."))


# --- adversarial attacks ------------------------------------------------------------------------------------------

ATTACK_EPS = "0.02,0.04,0.08"


def attack_parts(anatomy: str) -> tuple[Part, ...]:
    """One attack sweep per method on the anatomy's sample (middle slice, 4x random, seed 0) under the papers'
    objective per family."""
    return tuple(Part(method, ("attack", "--data", f"sample:{anatomy}", "--method", method, "--eps", ATTACK_EPS,
                               "--objective", "paper", "--json"))
                 for method in NAMES)


def _pm_series(rows: list[dict | None], key: str, digits: int) -> str:
    return " / ".join("-" if not row or row.get(key) is None else
                      _f(row[key], f".{digits}f") + ("" if row.get(f"{key}_sd") is None else f" ± {row[f'{key}_sd']:.{digits}f}")
                      for row in rows)


def render_attack(outputs: list[tuple[str, dict]]) -> str:
    """Per method: its objective, clean SSIM / PSNR and their drops at each budget, the time of the sweep; then,
    where the command printed its noise baseline, a row of Gaussian perturbations of the same norm (mean ± sample sd
    over the draws) and the time of the draws."""
    eps = [float(e) for e in ATTACK_EPS.split(",")]
    head = " / ".join(f"{e:g}" for e in eps)
    lines = [f"| method | objective | metric | SSIM clean | SSIM drop @{head} | PSNR clean (dB) | PSNR drop @{head} (dB) "
             "| attack time (s) |", "|---|---|---|---|---|---|---|---|"]
    for label, docs in _groups(outputs).items():
        rows = {round(r["eps"], 6): r for d in docs for r in d["results"]}
        ordered = [rows.get(round(e, 6)) for e in eps]
        first = next(r for r in ordered if r is not None)
        stopped = " (stopped early)" if any(r and r.get("stopped") for r in ordered) else ""
        lines.append(
            f"| {NAMES.get(label, label)}{stopped} | {first['objective_name']} | {docs[0]['metric']} | "
            f"{_f(first.get('ssim_clean'), '.3f')} | {_series(ordered, 'ssim_drop', 3)} | "
            f"{_f(first.get('psnr_clean'), '.2f')} | {_series(ordered, 'psnr_drop', 2)} | "
            f"{sum(r['seconds'] for r in ordered if r):.0f} |")
        noise = {round(r["eps"], 6): r for d in docs for r in d.get("noise", [])}
        if noise:
            shown = [noise.get(round(e, 6)) for e in eps]
            draws = _one([r["draws"] for r in shown if r], "draws")
            lines.append(
                f"| {NAMES.get(label, label)}: Gaussian noise, same norm ({draws} draws) | noise | {docs[0]['metric']} | "
                f"{_f(first.get('ssim_clean'), '.3f')} | {_pm_series(shown, 'ssim_drop', 3)} | "
                f"{_f(first.get('psnr_clean'), '.2f')} | {_pm_series(shown, 'psnr_drop', 2)} | "
                f"{sum(r['seconds'] for r in shown if r):.0f} |")
    return "\n".join(lines)


for _anatomy in ("knee", "brain"):
    register(Measurement(
        name=f"attack-{_anatomy}", title=f"PGD attacks on the {_anatomy} sample, every method",
        parts=attack_parts(_anatomy), render=render_attack, code=METHOD_CODE,
        files=METHOD_FILES + tuple(f"assets/checkpoints/{m}_{_anatomy}.pt" for m in ("unet", "varnet")),
        note=f"sample:{_anatomy}, middle slice, 4x random mask (seed 0); the papers' objective per family (clean "
             "reconstruction for trained networks, ground truth for the others, the ConvDecoder by the joint scheme); "
             "20 PGD steps of 2.5/20 of the l2 budget eps x ||fully sampled k||, patience 5."))


# --- small features -----------------------------------------------------------------------------------------------

FEATURE_METHODS = ("zero_filled", "l1", "tv", "convdecoder", "unet", "varnet")
FEATURE_SCORES = (("window_mse", "window MSE"), ("contrast_recovery", "contrast recovery"), ("local_ssim", "local SSIM"))


def features_parts(anatomy: str) -> tuple[Part, ...]:
    """One feature study on the anatomy's sample: 8 random squares on each of its 5 slices, every method."""
    methods = tuple(a for m in FEATURE_METHODS for a in ("--method", m))
    return (Part(anatomy, ("features", "--data", f"sample:{anatomy}", "--slices", "0,1,2,3,4", "--random", "8",
                           "--sizes", "3,5,8", "--contrasts", "0.1,0.17,0.25", *methods, "--json")),)


def render_features(outputs: list[tuple[str, dict]]) -> str:
    """Per method: mean whole-image SSIM and feature scores, and the correlation over its features; then the
    correlations across methods (their means) and over all (feature, method) pairs."""
    from explorer.robustness.features import correlation, method_correlation  # noqa: PLC0415

    (_, doc), = outputs
    rows = doc["rows"]
    lines = ["| method | metric | whole-image SSIM | window MSE (paper's score) | contrast recovery | local SSIM | "
             "r(SSIM, window MSE) over its features |", "|---|---|---|---|---|---|---|"]
    for m in doc["method_means"]:
        r = doc["correlation"].get(m["label"], {}).get("pearson")
        lines.append(f"| {NAMES.get(m['label'], m['label'])} | {doc['metric']} | {_f(m['ssim'], '.3f')} | "
                     f"{_f(m['window_mse'], '.3f')} | {_f(m['contrast_recovery'], '.3f')} | "
                     f"{_f(m['local_ssim'], '.3f')} | {_f(r, '+.2f')} |")

    def r(value):
        return "-" if value is None else format(value, "+.2f")

    across = ", ".join(f"{name} {r(method_correlation(rows, y=key)['pearson'])}" for key, name in FEATURE_SCORES)
    pooled = ", ".join(r(correlation(rows, y=key)["all"]["pearson"]) for key, _ in FEATURE_SCORES)
    failed = "".join(f" {label} failed: {error}." for label, error in sorted(doc.get("errors", {}).items()))
    return "\n".join(lines) + (f"\n\nCorrelation with whole-image SSIM, across the {len(doc['method_means'])} methods "
                               f"(their means): {across}; over all {len(rows)} (feature, method) pairs: {pooled}."
                               f"{failed}")


for _anatomy in ("knee", "brain"):
    register(Measurement(
        name=f"features-{_anatomy}", title=f"small features inserted into the {_anatomy} sample, every method",
        parts=features_parts(_anatomy), render=render_features, code=METHOD_CODE,
        files=METHOD_FILES + tuple(f"assets/checkpoints/{m}_{_anatomy}.pt" for m in ("unet", "varnet")),
        note=f"sample:{_anatomy}, 4x random mask (seed 0), 8 random squares on each of its 5 slices (40 per method), "
             "side 3, 5 or 8 px, contrast 0.1, 0.17 or 0.25 of the maximum; our protocol (insertion through the coil "
             "maps; the papers' code adds the feature to every coil image: `--paper-mode`)."))


# --- the papers' findings in one study -----------------------------------------------------------------------------

EXPERIMENT_CODE = tuple(EXPERIMENT_MODULES)


def render_study(outputs: list[tuple[str, dict]]) -> str:
    """The study's conclusions page (the papers' conclusions beside what it measured) and its size and time."""
    (_, doc), = outputs
    lines = ["| the papers' conclusion | this run | measured | rule |", "|---|---|---|---|"]
    for row in doc["conclusions"]:
        lines.append("| " + " | ".join(str(row[k]).replace("|", "/") for k in
                                       ("the papers' conclusion", "this run", "measured", "rule")) + " |")
    return "\n".join(lines) + (
        f"\n\n`--preset {doc['preset']}`, executor {doc['executor']}: {doc['units']} units ({doc['failed']} failed), "
        f"{doc['rows']} rows, {doc['seconds'] / 60:.1f} min{' (stopped early)' if doc['stopped'] else ''}. "
        f"{doc['definitions']}")


register(Measurement(
    name="study-paper-fast", title="the papers' findings on the samples in one study (--preset paper-fast)",
    parts=(Part("paper-fast", ("study", "--preset", "paper-fast", "--out", "{work}/paper-fast", "--json")),),
    render=render_study, code=METHOD_CODE + EXPERIMENT_CODE,
    files=tuple(sorted(set(METHOD_FILES + tuple(f"assets/checkpoints/{m}_{a}.pt" for m in ("unet", "varnet")
                                                for a in ("knee", "brain")) + measured_gaps.files()))),
    note="The spec is `explorer/study/presets.py`'s paper-fast: every experiment on the embedded samples, 4x random "
         "masks, the four method groups; its report's first page is this table."))


# --- single-coil sparse recovery against BART (a benchmark script) --------------------------------------------------

SINGLECOIL_DATA = {"sample:knee,coils=1": "knee (fastMRI-like)", "sample:knee,coils=1,dataset=stanford":
                   "knee (Stanford-like 3D FSE)", "sample:brain,coils=1": "brain"}
SINGLECOIL_COLUMNS = (("zero_filled", "zero-filled"), ("l1 (defaults)", "l1"), ("l1 spin=False", "l1 without spinning"),
                      ("tv (defaults)", "TV"), ("bart pics -l1 -r 0.01", "BART `pics -l1 -r 0.01`"),
                      ("bart pics -R T:3:0:0.01", "BART `pics -R T:3:0:0.01`"))


def render_singlecoil(outputs: list[tuple[str, dict]]) -> str:
    """SSIM (PSNR in dB) of each method on each single-coil sample; the best SSIM of a row in bold."""
    (_, doc), = outputs
    cells: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in doc["rows"]:
        column = next((key for key, _ in SINGLECOIL_COLUMNS if row["method"].startswith(key)), row["method"])
        cells[row["data"]][column] = row
    lines = ["| single-coil data | " + " | ".join(name for _, name in SINGLECOIL_COLUMNS) + " |",
             "|---|" + "---|" * len(SINGLECOIL_COLUMNS)]
    for data, found in cells.items():
        best = max((r["ssim"] for r in found.values()), default=None)
        shown = []
        for key, _ in SINGLECOIL_COLUMNS:
            r = found.get(key)
            text = "-" if r is None else f"{r['ssim']:.3f} ({r['psnr']:.2f})"
            shown.append(f"**{text}**" if r is not None and r["ssim"] == best else text)
        lines.append(f"| {SINGLECOIL_DATA.get(data, data)} | " + " | ".join(shown) + " |")
    lams = "; ".join(f"{SINGLECOIL_DATA.get(data, data)}: " + ", ".join(
        f"{r['method'].split(' ')[0]} {r['method'].split(' lam ')[1]}" for key, r in found.items() if " lam " in r["method"]
        and "spin" not in key) for data, found in cells.items())
    return "\n".join(lines) + f"\n\n{doc['setting']}. Our tuned `lam`: {lams}."


register(Measurement(
    name="singlecoil-sparse", title="single-coil l1 and TV against BART pics on the single-coil samples",
    parts=(Part("bench", ("bench/bench_singlecoil.py", "--json")),), render=render_singlecoil, code=METHOD_CODE,
    files=METHOD_FILES,
    note="Held-out slice 2 of each 320x320 single-coil sample, 4x random (centre 0.08, seed 0); SSIM (PSNR dB) scored "
         "the same way for every image (explorer.engine.score against the file's reference); one thread."))


def render_robust(outputs: list[tuple[str, dict]]) -> str:
    """Per network (plain, jittered, adversarially trained): clean SSIM and, per eps, the worst-case SSIM drop beside
    the drop under Gaussian noise of the same norm (means ± sd over the held-back slices)."""
    (_, doc), = outputs
    eps = doc["eps"]
    lines = ["| network | train (s) | SSIM clean | " + " | ".join(f"worst @{e:g} | noise @{e:g}" for e in eps) + " |",
             "|" + "---|" * (3 + 2 * len(eps))]
    for net in doc["networks"]:
        cells = " | ".join(f"{_pm_series([r], 'worst_ssim_drop', 3)} | {_pm_series([r], 'noise_ssim_drop', 3)}"
                           for r in net["rows"])
        lines.append(f"| {net['label']} | {net['train_seconds']:.0f} | {net['clean_ssim']:.3f} | {cells} |")
    st = doc["settings"]
    return "\n".join(lines) + (
        f"\n\nSSIM drops (clean - perturbed). {st['size']}x{st['size']} {st['coils']}-coil knee sample, U-net chans "
        f"{st['chans']} / pools {st['pools']}, {st['steps']} steps at batch {st['batch_size']} (seed {st['seed']}) for every "
        f"network; {st['attack_steps']}-step attacks and {st['noise_draws']} noise draws per budget; {doc['device']}.")


register(Measurement(
    name="robust-training", title="U-nets trained plainly, with jittering and adversarially, then attacked",
    parts=(Part("bench", ("bench/bench_robust_training.py", "--json", "-")),), render=render_robust,
    code=("explorer.recon.unet",),
    note="The same U-net recipe (architecture, seed, steps, slice order, masks) trained three ways; attacked on the "
         "held-back subjects' slices with the clean objective (eps relative to the fully sampled k-space norm) beside "
         "complex Gaussian noise of exactly each budget's norm; fastMRI's SSIM."))


def render_viewer(outputs: list[tuple[str, dict]]) -> str:
    """The browser viewer's speed against the plotly viewer it replaced, with the issue's targets."""
    (_, doc), = outputs
    t = doc.get("targets", {})
    ms = lambda key: "-" if doc.get(key) is None else f"{doc[key]:.0f} ms"  # noqa: E731
    before = str(doc["before"]["change_s"]).split(" ")[0]  # "6-14 (issue 27: ...)": seconds, as issue 27 measured
    fraction = doc["payload_bytes"] / doc["plotly_bytes"]
    server = doc.get("slice_server_ms")
    lines = ["| measure | before: plotly viewer | after: browser viewer | target |", "|---|---|---|---|",
             f"| repaint after a window/level drag step | a rerun: {before} s (issue 27) | {ms('repaint_ms')} median, "
             f"{ms('repaint_p90_ms')} p90 ({doc.get('repaints', 0)} steps) | <= {t.get('repaint_ms', 50):.0f} ms |",
             f"| repaint after a layout change | a rerun: {before} s (issue 27) | {ms('layout_ms')} median, {ms('layout_max_ms')} max "
             f"| <= {t.get('repaint_ms', 50):.0f} ms |",
             f"| error map: local SSIM (first time / again) | a rerun | {ms('ssim_first_ms')} / {ms('ssim_cached_ms')} | - |",
             f"| data sent for a result | {doc['plotly_bytes'] / 1e6:.2f} MB (figure JSON) | "
             f"{doc['payload_bytes'] / 1e6:.2f} MB ({fraction:.2f} of before) | <= {t.get('bytes_fraction', 0.25):.2f} of before |",
             f"| slice change, slice held by the browser | a new Run | {ms('slice_held_ms')} (wheel to screen: "
             f"{ms('slice_held_wall_ms')}) | <= {t.get('slice_ms', 200):.0f} ms |",
             f"| slice change, cached on the server only | a new Run | {ms('slice_server_ms')} (a rerun and the transfer) | "
             f"<= {t.get('slice_ms', 200):.0f} ms{' (missed)' if server and server > t.get('slice_ms', 200) else ''} |"]
    return "\n".join(lines) + f"\n\n{doc['setting']}; {doc['machine']}."


register(Measurement(
    name="viewer-browser", title="the browser viewer's repaint, bytes and slice changes in a real browser",
    parts=(Part("bench", ("bench/bench_viewer.py", "--json")),), render=render_viewer,
    files=("explorer/ui/viewer_assets/viewer.js", "explorer/ui/viewer_assets/viewer.css", "bench/viewer_app.py"),
    note="Times from the viewer's own paint timing (performance.now) in headless Chromium 1600x1000, software "
         "rendering; 'before' times are issue 27's measurement of the plotly viewer, 'before' bytes measured here."))


__all__ = ["ATTACK_EPS", "EXPERIMENT_CODE", "FEATURE_METHODS", "MEASUREMENTS", "METHOD_CODE", "METHOD_FILES", "NAMES",
           "TTT_NETWORKS", "TTT_SLICES", "attack_parts", "features_parts", "get", "register", "render_attack",
           "render_features", "render_robust", "render_singlecoil", "render_study", "render_ttt", "render_viewer", "ttt_parts"]

for _measurement in measured_real.measurements(METHOD_CODE, METHOD_FILES):  # the real-brain data (README)
    register(_measurement)
for _measurement in measured_lesions.measurements(METHOD_CODE, METHOD_FILES):  # worst-case lesions
    register(_measurement)
for _measurement in measured_realistic.measurements(METHOD_CODE, METHOD_FILES):  # noise, motion, spikes
    register(_measurement)
for _measurement in measured_scaling.measurements(METHOD_CODE):  # Ray executor vs Ray Data
    register(_measurement)
for _measurement in measured_arms.measurements(METHOD_CODE, METHOD_FILES, EXPERIMENT_CODE):  # the real-data arms
    register(_measurement)
for _measurement in measured_zoo.measurements(METHOD_CODE, METHOD_FILES):  # the ID-vs-OOD scatter, many models
    register(_measurement)
for _measurement in measured_speed.measurements(METHOD_CODE, METHOD_FILES):  # attack speed per method
    register(_measurement)
for _measurement in measured_gaps.measurements(METHOD_CODE, METHOD_FILES):  # the four TTT shifts' gaps
    register(_measurement)
for _measurement in measured_shipped.measurements(METHOD_CODE, METHOD_FILES):  # the shipped checkpoints
    register(_measurement)
