"""The real-data arms of ``study --preset paper-fast --data real-brain=DIR`` (issue 26 item 3), measured: the knee
networks and every other model on real brain slices (anatomy shift), the real-anatomy networks and the classical
methods on their semi-real test slices against the measured multi-coil slices (contrast, coil and scanner shift), and
test-time training of the real-anatomy networks on the measured slices. The data: the README's "Real brain data"
build in ``data/real-brain`` (not committed)."""

from __future__ import annotations

import re

from explorer.study import measured_gaps as gaps
from explorer.study.results import Measurement, Part

#: Where the README's commands put the build, relative to the checkout.
REAL_DATA = "data/real-brain"


def _short(text: str) -> str:
    """A set name without the path of the checkout that measured it (the README is read on other machines, and the
    results file must draw the same table in any checkout)."""
    return re.sub(r"[^\s]*/(" + re.escape(REAL_DATA) + ")", r"\1", text)


def _is_real(pair: str) -> bool:
    return REAL_DATA in pair


def render_arms(outputs: list[tuple[str, dict]]) -> str:
    """Per real shift pair, every model's SSIM in and out of distribution; the papers' conclusions judged on those
    pairs; the test-time training rows (before -> after, no reference)."""
    doc = outputs[0][1]
    rows = [r for r in doc["summaries"].get("shift", []) if _is_real(r["shifted_set"])]
    pairs = list(dict.fromkeys(r["shifted_set"] for r in rows))
    lines = []
    for pair in pairs:
        mine = sorted((r for r in rows if r["shifted_set"] == pair), key=lambda r: -r["ssim_id"])
        target, _, origin = _short(pair).partition(" from ")
        lines += [f"**{origin or 'the knee sample (the study data)'} -> {target}**", "",
                  "| model | family | SSIM in distribution | SSIM shifted | gap |", "|---|---|---|---|---|"]
        lines += [f"| {r['label']} | {r['family']} | {r['ssim_id']:.3f} ({r['slices_id']}) | {r['ssim_ood']:.3f} "
                  f"({r['slices_ood']}) | {r['gap']:+.3f} |" for r in mine]
        lines.append("")
    verdicts = [c for c in doc["conclusions"] if _is_real(c["measured"])]
    if verdicts:
        lines += ["| the papers' conclusion | this run | measured |", "|---|---|---|"]
        lines += [f"| {c[next(iter(c))]} | {c['this run']} | {_short(c['measured'])} |" for c in verdicts]
        lines.append("")
    ttt = [r for r in doc["summaries"].get("ttt", []) if r.get("ssim_reference") is None]
    if ttt:
        lines += ["| network | measured slice | SSIM before -> after TTT | steps | stopped by |", "|---|---|---|---|---|"]
        lines += [f"| {r['label']} | {r['data']} | {r['ssim_before']:.3f} -> {r['ssim_after']:.3f} | {r['steps']} | "
                  f"{r['stop_reason']} |" for r in ttt]
        lines.append("")
    lines.append(f"SSIM (slices in brackets), fastMRI's per-slice SSIM; configurations pinned on the in-distribution "
                 f"set; {doc['units']} units of the whole preset in {doc['seconds'] / 60:.1f} min ({doc['failed']} "
                 "failed). Test-time training: no network trained on the measured scanners exists, so no gap closed.")
    return "\n".join(lines)


def measurements(method_code: tuple[str, ...], method_files: tuple[str, ...],
                 experiment_code: tuple[str, ...]) -> list[Measurement]:
    """The arms' measurement; the arguments as :func:`explorer.study.measured_real.measurements`', and the
    experiment modules (:data:`explorer.study.measured.EXPERIMENT_CODE`)."""
    return [Measurement(
        name="real-brain-arms", title="the paper-fast preset's real-data arms (study --data real-brain=DIR)",
        parts=(Part("study", ("study", "--preset", "paper-fast", "--data", f"real-brain={REAL_DATA}", "--out",
                              "{work}/real-arms", "--json")),),
        render=render_arms, code=method_code + experiment_code,
        files=tuple(sorted(set(method_files + tuple(f"assets/checkpoints/{k}_{a}.pt" for k in ("unet", "varnet")
                                                    for a in ("knee", "brain", "brain-real")) + gaps.files()))),
        note="`python -m explorer study --preset paper-fast --data real-brain=data/real-brain`: 5 of the 31 semi-real "
             "8-coil test slices, the three measured multi-coil slices (README 'Real brain data'); 4x random masks; the "
             "real-anatomy TTT under the papers' protocol capped at 80 steps with the dataset shift's window of 20.")]


__all__ = ["REAL_DATA", "measurements", "render_arms"]
