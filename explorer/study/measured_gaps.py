"""The gaps test-time training has to close: for each of the TTT paper's four shifts
(:data:`explorer.robustness.ttt_shifts.SHIFTS`), the network trained on P and the one trained on Q, both on Q's
held-back slices, beside zero-filled, l1 and TV. The gap is SSIM(trained on Q) - SSIM(trained on P), the papers'
definition (arXiv 2204.07204, introduction)."""

from __future__ import annotations

from collections import defaultdict

from explorer.robustness.ttt_shifts import SHIFTS, TTTShift
from explorer.study.results import Measurement, Part

#: Held-back subjects of the samples (never trained on), five slices each, as the knee -> brain TTT measurement.
SUBJECTS = (201, 202)
SLICES = 5
#: The papers' P-sup and Q-sup SSIM on their one test slice per shift (seed-code-facts, "Reported numbers").
PAPERS = {("anatomy", "unet"): (0.8552, 0.9185), ("anatomy", "varnet"): (0.8782, 0.9316),
          ("dataset", "unet"): (0.6709, 0.6918), ("dataset", "varnet"): (0.6863, 0.7236),
          ("contrast", "unet"): (0.8705, 0.9248), ("contrast", "varnet"): (0.9089, 0.9299),
          ("acceleration", "unet"): (0.8572, 0.9122), ("acceleration", "varnet"): (0.8804, 0.9173)}
CLASSICAL = ("zero_filled", "l1", "tv")


def checkpoint_file(kind: str, name: str) -> str:
    """The shipped file of network ``kind``'s checkpoint ``name``, relative to the checkout."""
    return f"assets/checkpoints/{kind}_{name}.pt"


def kinds_with_both(shift: TTTShift) -> tuple[str, ...]:
    """The network kinds with both of ``shift``'s checkpoints shipped (the one trained on P and the reference)."""
    from explorer.recon.networks import kind_names  # noqa: PLC0415
    from explorer.resources import root  # noqa: PLC0415

    return tuple(k for k in kind_names()
                 if all((root() / checkpoint_file(k, n)).is_file() for n in (shift.checkpoint, shift.reference)))


def parts() -> tuple[Part, ...]:
    """One ``evaluate`` per shift and held-back subject: the classical methods and, per network kind with both
    checkpoints, the network trained on P (``<kind>_P``) and the one trained on Q (``<kind>_Q``)."""
    out = []
    for shift in SHIFTS:
        methods: list[str] = [a for m in CLASSICAL for a in ("--method", m)]
        for kind in kinds_with_both(shift):
            for role, name in (("P", shift.checkpoint), ("Q", shift.reference)):
                methods += ["--method", f"{kind}_{role}={kind}", "--set", f"{kind}_{role}.checkpoint={checkpoint_file(kind, name)}"]
        for subject in SUBJECTS:
            data = f"sample:{shift.family},seed={subject},slices={SLICES}" + (f",{shift.variant}" if shift.variant else "")
            out.append(Part(shift.name, ("evaluate", "--data", data, "--mask", "random", "--acceleration",
                                         f"{shift.acceleration:g}", "--seed", "0", *methods, "--json")))
    return tuple(out)


def files() -> tuple[str, ...]:
    """Every checkpoint the parts load."""
    return tuple(sorted({checkpoint_file(k, n) for s in SHIFTS for k in kinds_with_both(s)
                         for n in (s.checkpoint, s.reference)}))


def _pooled(docs: list[dict]) -> dict[str, tuple[float, int]]:
    """``{label: (mean SSIM over every slice of the docs, slices)}`` (each doc's mean weighted by its slices)."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for doc in docs:
        for r in doc["results"]:
            sums[r["label"]][0] += r["ssim"] * r["slices"]
            sums[r["label"]][1] += r["slices"]
    return {label: (total / n, n) for label, (total, n) in sums.items() if n}


def render_gaps(outputs: list[tuple[str, dict]]) -> str:
    """One row per shift and network kind: SSIM on Q's held-back slices of zero-filled, l1, TV, the network trained
    on P and the one trained on Q, the gap, and the papers' gap on their one slice."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for label, doc in outputs:
        grouped[label].append(doc)
    lines = ["| shift | Q (held-back slices) | network | zero-filled | l1 | TV | trained on P | trained on Q | gap | "
             "the papers' gap (P -> Q, one slice) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for shift in SHIFTS:
        docs = grouped.get(shift.name, [])
        if not docs:
            continue
        pooled = _pooled(docs)
        n = pooled[CLASSICAL[0]][1]
        kinds = sorted({label.rsplit("_", 1)[0] for label in pooled if label.endswith(("_P", "_Q"))})
        where = f"`{shift.source}` at {shift.acceleration:g}x ({n})"
        for kind in kinds:
            p, q = pooled[f"{kind}_P"][0], pooled[f"{kind}_Q"][0]
            papers = PAPERS.get((shift.name, kind))
            paper = f"{papers[1] - papers[0]:+.3f} ({papers[0]:.3f} -> {papers[1]:.3f})" if papers else "-"
            lines.append(f"| {shift.name} | {where} | {kind} `{shift.checkpoint}` / `{shift.reference}` | "
                         + " | ".join(f"{pooled[m][0]:.3f}" for m in CLASSICAL)
                         + f" | {p:.3f} | {q:.3f} | **{q - p:+.3f}** | {paper} |")
    return "\n".join(lines) + (
        f"\n\nMean SSIM over the held-back subjects {', '.join(map(str, SUBJECTS))} of each shift's sample "
        f"({SLICES} slices each; slices in brackets); random columns, seed 0 for the first slice. The gap is "
        "SSIM(trained on Q) - SSIM(trained on P) on Q, the papers' definition; test-time training of the network "
        "trained on P has this gap to close.")


def measurements(method_code: tuple[str, ...], method_files: tuple[str, ...]) -> list[Measurement]:
    """The gaps' measurement; the arguments as :func:`explorer.study.measured_real.measurements`'."""
    return [Measurement(
        name="ttt-shift-gaps", title="the four TTT shifts: networks trained on P and on Q, on Q's held-back slices",
        parts=parts(), render=render_gaps, code=method_code, files=method_files + files(),
        note="Our protocol; fastMRI's per-slice SSIM (data range = the slice reference's max); l1 and TV with their "
             "tuned defaults; the networks trained on Q are the shipped references of the four shifts "
             "(explorer/robustness/ttt_shifts.py).")]


__all__ = ["PAPERS", "SUBJECTS", "files", "kinds_with_both", "measurements", "parts", "render_gaps"]
