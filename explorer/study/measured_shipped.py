"""The shipped checkpoints on the samples' held-back subjects (never trained or validated on), beside the classical
methods: ``evaluate`` of every method on subjects 201-204 of each anatomy."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from explorer.study.results import Measurement, Part

ANATOMIES = ("knee", "brain")
SUBJECTS = (201, 202, 203, 204)
SLICES = 5
#: ``(label, method, checkpoint or None)`` in table order; each network with the checkpoint of the data's anatomy.
METHODS = (("zero_filled", "zero_filled", None), ("l1", "l1", None), ("tv", "tv", None),
           ("unet", "unet", "anatomy"), ("varnet", "varnet", "anatomy"))


def parts() -> tuple[Part, ...]:
    """One ``evaluate`` per anatomy and held-back subject (4x random, seed 0 for the first slice)."""
    out = []
    for anatomy in ANATOMIES:
        methods: list[str] = []
        for label, method, checkpoint in METHODS:
            methods += ["--method", f"{label}={method}"]
            if checkpoint:
                methods += ["--set", f"{label}.checkpoint={anatomy}"]
        for subject in SUBJECTS:
            out.append(Part(anatomy, ("evaluate", "--data", f"sample:{anatomy},seed={subject},slices={SLICES}",
                                      "--mask", "random", "--acceleration", "4", "--seed", "0", *methods, "--json")))
    return tuple(out)


def render_shipped(outputs: list[tuple[str, dict]]) -> str:
    """Per method: mean SSIM ± sd over the slices (PSNR dB) per anatomy; the best SSIM of a column in bold."""
    per: dict[str, dict[str, list[float]]] = {a: defaultdict(list) for a in ANATOMIES}
    psnr: dict[str, dict[str, list[float]]] = {a: defaultdict(list) for a in ANATOMIES}
    for anatomy, doc in outputs:
        for r in doc["results"]:  # one subject's mean per method: weight it by its slices
            per[anatomy][r["label"]] += [r["ssim"]] * r["slices"]
            psnr[anatomy][r["label"]] += [r["psnr"]] * r["slices"]
    lines = ["| method | " + " | ".join(f"{a} (slices)" for a in ANATOMIES) + " |", "|---|" + "---|" * len(ANATOMIES)]
    best = {a: max(np.mean(v) for v in per[a].values()) for a in ANATOMIES if per[a]}
    sds = {a: _subject_sd(outputs, a) for a in ANATOMIES}
    for label, _, checkpoint in METHODS:
        cells = []
        for a in ANATOMIES:
            values = per[a].get(label)
            if not values:
                cells.append("-")
                continue
            text = f"{np.mean(values):.3f} ± {sds[a][label]:.3f} ({np.mean(psnr[a][label]):.2f} dB, {len(values)})"
            cells.append(f"**{text}**" if np.mean(values) == best[a] else text)
        name = f"{label} (shipped `{label}_<anatomy>.pt`)" if checkpoint else label
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + (
        f"\n\nSSIM ± the standard deviation over the {len(SUBJECTS)} subjects' means (subjects "
        f"{', '.join(map(str, SUBJECTS))}, {SLICES} slices each; none seen in training or validation).")


def _subject_sd(outputs: list[tuple[str, dict]], anatomy: str) -> dict[str, float]:
    means: dict[str, list[float]] = defaultdict(list)
    for a, doc in outputs:
        if a == anatomy:
            for r in doc["results"]:
                means[r["label"]].append(r["ssim"])
    return {label: float(np.std(v)) for label, v in means.items()}


def measurements(method_code: tuple[str, ...], method_files: tuple[str, ...]) -> list[Measurement]:
    """The shipped checkpoints' measurement; the arguments as :func:`explorer.study.measured_real.measurements`'."""
    return [Measurement(
        name="shipped-networks", title="the shipped knee and brain checkpoints against l1 and TV on held-back subjects",
        parts=parts(), render=render_shipped, code=method_code,
        files=method_files + tuple(f"assets/checkpoints/{m}_{a}.pt" for _, m, c in METHODS if c for a in ANATOMIES),
        note="Our protocol: 4x random columns (centre 0.08), seed 0 for a subject's first slice and +1 per slice; "
             "fastMRI's per-slice SSIM; l1 and TV with their tuned defaults (db2 wavelets with cycle spinning, "
             "`maps=auto`); each network with its anatomy's checkpoint.")]


__all__ = ["METHODS", "SUBJECTS", "measurements", "parts", "render_shipped"]
