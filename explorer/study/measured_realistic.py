"""Realistic corruptions on the embedded samples (issue 28 item 3): per method, the SSIM drop under noise at an SNR,
rigid motion per shot and k-space spikes, each beside its size in the adversarial budget's units
(``python -m explorer realistic``)."""

from __future__ import annotations

from explorer.study.results import Measurement, Part

METHODS = ("zero_filled", "sense", "l1", "tv", "unet", "varnet")
NAMES = {"zero_filled": "Zero-filled", "sense": "SENSE (CG)", "l1": "l1-wavelet", "tv": "TV", "unet": "U-net",
         "varnet": "VarNet"}
#: kind -> (levels, how a level reads).
LEVELS = {"noise": ("30,20", "SNR {:g} dB"), "motion": ("1,3", "{:g} deg + {:g} px"), "spikes": ("1,5", "{:g} spike(s)")}


def realistic_parts() -> tuple[Part, ...]:
    """One ``realistic`` command per sample and kind, every method."""
    methods = tuple(a for m in METHODS for a in ("--method", m))
    return tuple(Part(f"{anatomy} {kind}", ("realistic", "--data", f"sample:{anatomy}", *methods, "--kind", kind,
                                             "--levels", levels, "--json"))
                 for anatomy in ("knee", "brain") for kind, (levels, _) in LEVELS.items())


def _level(kind: str, level: float) -> str:
    text = LEVELS[kind][1]
    return text.format(level, level) if text.count("{") == 2 else text.format(level)


def render_realistic(outputs: list[tuple[str, dict]]) -> str:
    """One row per method; per sample, kind and level a column: the SSIM drop (the corruption's ||e||/||k|| in the
    column head, the same for every method)."""
    columns, cells = [], {m: {} for m in METHODS}
    for label, doc in outputs:
        anatomy, kind = label.split()
        for row in doc["rows"]:
            column = (anatomy, kind, row["level"])
            if column not in columns:
                columns.append(column)
            cells[row["label"]][column] = (row["ssim_drop"], row["ratio"])
    ratios = {c: next((cells[m][c][1] for m in METHODS if c in cells[m]), None) for c in columns}
    head = " | ".join(f"{a}: {_level(k, v)} (‖e‖/‖k‖ {ratios[(a, k, v)]:.3f})" for a, k, v in columns)
    lines = [f"| method | {head} |", "|---|" + "---|" * len(columns)]
    for m in METHODS:
        lines.append(f"| {NAMES[m]} | " + " | ".join("-" if cells[m].get(c, (None,))[0] is None
                                                      else f"{cells[m][c][0]:.3f}" for c in columns) + " |")
    return "\n".join(lines) + (
        "\n\nSSIM drop (clean minus corrupted, against the fully sampled reference) per method; in each column head "
        "the corruption's size ||M (k' - k)|| / ||k|| in the adversarial budget's units (the attack tables use 0.02 to "
        "0.08). Motion: sequential 8-shot ordering, rotation and shift along the phase encodes growing to the level "
        "by the last shot; spikes at 0.3 x the k-space maximum; coil maps re-estimated from the corrupted data.")


def measurements(method_code: tuple[str, ...], method_files: tuple[str, ...]) -> list[Measurement]:
    """The realistic-corruption measurement; arguments as :func:`explorer.study.measured_real.measurements`'."""
    return [Measurement(
        name="realistic", title="SSIM drops under noise, motion and spikes, per method, on the samples",
        parts=realistic_parts(), render=render_realistic, code=method_code,
        files=method_files + tuple(f"assets/checkpoints/{k}_{a}.pt" for k in ("unet", "varnet") for a in ("knee", "brain")),
        note="`python -m explorer realistic` on the middle slice of each sample, 4x random mask (centre 0.08, seed 0), "
             "noise and spikes seeded (seed 0); one draw per level.")]


__all__ = ["LEVELS", "METHODS", "measurements", "realistic_parts", "render_realistic"]
