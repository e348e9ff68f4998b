"""The ID-vs-OOD scatter on the samples (Darestani et al. 2021, section 5): many models per family, each a point
(SSIM on the knee sample, SSIM on the shifted set), for the anatomy shift (knee -> brain) and the dataset shift
(fastMRI-like -> Stanford-like knee).

The models: zero-filled and SENSE; l1 and TV at three weights each; two un-trained networks (ConvDecoder, Deep
Decoder, 100-step fits); the shipped knee U-net and VarNet; and a zoo trained by ``python -m explorer zoo`` (two
U-net and two VarNet sizes, snapshots after 100, 200 and 300 steps). The zoo's training is part of the measurement,
so one command regenerates every point.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from explorer.study.results import Measurement, Part

#: The shifted sets and how the table names them.
SHIFTS = (("knee -> brain (anatomy)", "sample:brain"),
          ("fastMRI-like -> Stanford-like knee (dataset)", "sample:knee,dataset=stanford"))
#: Slices per set (the sample's five of subject 0).
SLICES = 5
#: ``(label, method, {parameter: value})`` of the models besides the zoo.
MODELS: tuple[tuple[str, str, dict], ...] = (
    ("zero_filled", "zero_filled", {}), ("sense", "sense", {}),
    ("l1_lam0.002", "l1", {"lam": 0.002}), ("l1_lam0.005", "l1", {"lam": 0.005}), ("l1_lam0.02", "l1", {"lam": 0.02}),
    ("tv_lam0.003", "tv", {"lam": 0.003}), ("tv_lam0.007", "tv", {"lam": 0.007}), ("tv_lam0.02", "tv", {"lam": 0.02}),
    ("convdecoder_100", "convdecoder", {"iterations": 100}), ("deep_decoder_100", "deep_decoder", {"iterations": 100}),
    ("unet_knee_shipped", "unet", {"checkpoint": "knee"}), ("varnet_knee_shipped", "varnet", {"checkpoint": "knee"}),
)
ZOO = "{work}/zoo"


def _model_args() -> tuple[str, ...]:
    args: list[str] = []
    for label, method, params in MODELS:
        args += ["--method", f"{label}={method}"]
        for key, value in params.items():
            args += ["--set", f"{label}.{key}={value}"]
    return tuple(args)


def parts() -> tuple[Part, ...]:
    """The zoo's training, then one ``shift`` command per shifted set with every model."""
    return (Part("zoo", ("zoo", "--out", ZOO, "--snapshot-every", "100", "--json")),
            *(Part(name, ("shift", "--id", "sample:knee", "--ood", ood, *_model_args(), "--zoo", ZOO,
                          "--max-slices", str(SLICES), "--json")) for name, ood in SHIFTS))


def _fit(rows: list[dict]) -> str:
    if len(rows) < 3:
        return f"{len(rows)} models: no fit"
    x = np.array([r["ssim_id"] for r in rows])
    y = np.array([r["ssim_ood"] for r in rows])
    if np.ptp(x) < 1e-9:
        return "no spread in distribution: no fit"
    slope = np.polyfit(x, y, 1)[0]
    r = np.corrcoef(x, y)[0, 1]
    return f"slope {slope:.2f}, r = {r:+.2f}"


def _range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:+.3f}" if abs(hi - lo) < 5e-4 else f"{lo:+.3f} to {hi:+.3f}"


def render_zoo(outputs: list[tuple[str, dict]]) -> str:
    """Per shift: each family's models (count, SSIM in distribution, change under the shift, fit within the family)
    and the fit across all models; then every model's point."""
    docs = dict(outputs)
    zoo = docs["zoo"]
    shifts = [(name, docs[name]) for name, _ in SHIFTS if name in docs]
    lines = ["| shift | family | models | SSIM in distribution | SSIM shifted - in distribution | fit within the family |",
             "|---|---|---|---|---|---|"]
    for name, doc in shifts:
        families: dict[str, list[dict]] = defaultdict(list)
        for row in doc["models"]:
            families[row["family"]].append(row)
        for family, rows in families.items():
            ids = [r["ssim_id"] for r in rows]
            lines.append(f"| {name} | {family} | {len(rows)} | {min(ids):.3f}-{max(ids):.3f} | "
                         f"{_range([r['ssim_ood'] - r['ssim_id'] for r in rows])} | {_fit(rows)} |")
        lines.append(f"| {name} | **all** | {len(doc['models'])} | | | **{_fit(doc['models'])}** |")
    lines += ["", "<details><summary>Every model's point</summary>", "",
              "| model | family | " + " | ".join(f"{name}: in / shifted" for name, _ in shifts) + " |",
              "|---|---|" + "---|" * len(shifts)]
    labels = list(dict.fromkeys(r["label"] for _, doc in shifts for r in doc["models"]))
    by = [{r["label"]: r for r in doc["models"]} for _, doc in shifts]
    for label in labels:
        family = next(b[label]["family"] for b in by if label in b)
        cells = [f"{b[label]['ssim_id']:.3f} / {b[label]['ssim_ood']:.3f}" if label in b else "-" for b in by]
        lines.append(f"| {label} | {family} | " + " | ".join(cells) + " |")
    lines += ["", "</details>", "",
              f"SSIM: fastMRI's per-slice definition (`{_metric(shifts)}`), the mean over {SLICES} slices per set. "
              f"The zoo ({len(zoo['models'])} checkpoints, validation SSIM "
              f"{min(m['val_ssim'] for m in zoo['models']):.3f}-{max(m['val_ssim'] for m in zoo['models']):.3f}) "
              f"trained in {zoo['seconds'] / 60:.0f} min with the {zoo['loss']} loss."]
    return "\n".join(lines)


def _metric(shifts: list[tuple[str, dict]]) -> str:
    found = sorted({doc["metric"] for _, doc in shifts})
    return found[0] if len(found) == 1 else ", ".join(found)


def measurements(method_code: tuple[str, ...], method_files: tuple[str, ...]) -> list[Measurement]:
    """The scatter's measurement; the arguments as :func:`explorer.study.measured_real.measurements`'."""
    return [Measurement(
        name="shift-zoo", title="the ID-vs-OOD scatter on the samples: every family, many models, anatomy and dataset shifts",
        parts=parts(), render=render_zoo, code=method_code,
        files=method_files + tuple(f"assets/checkpoints/{k}_knee.pt" for k in ("unet", "varnet")),
        note="Our protocol: knee sample subject 0 (5 slices) in distribution, the brain sample and the Stanford-like "
             "3D FSE knee (same subject) shifted; 4x random masks (centre 0.08, seed 0 for the first slice, +1 per "
             "slice); configurations pinned on the knee set (l1/TV weights, the shipped knee checkpoints); the zoo is "
             "`python -m explorer zoo` (24 training subjects of the knee sample, supervised loss).")]


__all__ = ["MODELS", "SHIFTS", "measurements", "parts", "render_zoo"]
