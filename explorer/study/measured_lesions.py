"""Worst-case lesions on the embedded samples (issue 28 item 2e): per method, the smallest k-space budget at which a
5x5 lesion of the papers' contrast (1/6 of the reference's maximum) at a fixed place inside the anatomy appears in the
reconstruction of the clean slice (hallucination), and at which the same lesion, inserted into the slice, vanishes
(erase; the false-negative mode with a region that admits only that centre); beside each, the same measure under
Gaussian noise of the same norm. Commands: ``python -m explorer lesion``.
"""

from __future__ import annotations

from explorer.study.results import Measurement, Part

#: The methods of the table (the ConvDecoder's joint scheme takes minutes per budget on a CPU: not in it).
METHODS = ("zero_filled", "sense", "l1", "tv", "unet", "varnet")
#: The budgets of every sweep, ascending.
EPS = "0.005,0.01,0.02,0.04,0.08"
#: Where the appearing lesion is put on each sample (row, col of the 320x320 image: inside the anatomy).
CENTRES = {"knee": (150, 160), "brain": (160, 160)}
PAPER_CONTRAST = "0.1667"
STEPS = 20
MODES = (("appear", "appears"), ("vanish", "vanishes"))
NAMES = {"zero_filled": "Zero-filled", "sense": "SENSE (CG)", "l1": "l1-wavelet", "tv": "TV", "unet": "U-net",
         "varnet": "VarNet"}


def lesion_parts() -> tuple[Part, ...]:
    """Per sample: one hallucination sweep and one false-negative search + erase sweep, every method."""
    methods = tuple(a for m in METHODS for a in ("--method", m))
    common = ("--eps", EPS, "--steps", str(STEPS), "--json")
    parts = []
    for anatomy, (row, col) in CENTRES.items():
        data = ("lesion", "--data", f"sample:{anatomy}", *methods)
        parts.append(Part(f"{anatomy} appear", (*data, "--mode", "hallucination", "--at", f"{row},{col}", "--size", "5",
                                               "--contrast", PAPER_CONTRAST, *common)))
        only = f"{row - 3},{col - 3},{row + 4},{col + 4}"  # a 5x5 square (radius 3) fits there only centred here
        parts.append(Part(f"{anatomy} vanish", (*data, "--mode", "false-negative", "--sizes", "5,5", "--contrasts",
                                               f"{PAPER_CONTRAST},{PAPER_CONTRAST}", "--shapes", "square", "--region",
                                               only, "--candidates", "1", "--refine", "0", *common)))
    return tuple(parts)


def _cell(headline: dict | None, attacks: list[dict], mode: str) -> str:
    """``eps (measure vs noise)`` of one method: the smallest budget or ``> largest``, the last attack's measure and
    the noise's mean measure at that budget."""
    if headline is None:
        return "-"
    if headline["clean_met"]:
        what = "contrast" if mode == "appear" else "recovery"
        return f"0 (clean {what} {headline['clean_measure']:.2f})" if headline.get("clean_measure") is not None else "0"
    mine = [a for a in attacks if a["label"] == headline["label"]]
    last = mine[-1] if mine else None
    first = min(float(v) for v in EPS.split(","))
    smallest = headline["smallest_eps"]
    eps = (f"> {max(headline['eps_tried']):g}" if smallest is None
           else f"<= {smallest:g}" if smallest <= first else f"{smallest:g}")  # the list's first: a bound, not a value
    if last is None:
        return eps
    key = "contrast_change" if mode == "appear" else "contrast_recovery"
    value, noise = last.get(key), last.get("noise_measure")
    what = "contrast made" if mode == "appear" else "recovery left"
    return (f"{eps} ({what} {value:.2f} at {last['eps']:g}; noise {noise:.2f})" if value is not None and noise is not None
            else eps)


def render_lesions(outputs: list[tuple[str, dict]]) -> str:
    """One row per method, one column per sample and question."""
    columns = [label for label, _ in outputs]
    cells: dict[str, dict[str, str]] = {m: {} for m in METHODS}
    for label, doc in outputs:
        mode = label.split()[1]
        heads = {h["label"]: h for h in doc["headline"]}
        for m in METHODS:
            cells[m][label] = _cell(heads.get(m), doc["attacks"], mode)
    head = " | ".join(f"{c.split()[0]}: lesion {dict(MODES)[c.split()[1]]}" for c in columns)
    lines = [f"| method | {head} |", "|---|" + "---|" * len(columns)]
    for m in METHODS:
        lines.append(f"| {NAMES[m]} | " + " | ".join(cells[m].get(c, "-") for c in columns) + " |")
    notes = [f"Smallest budget eps = ||e|| / ||k|| of {EPS.replace(',', ', ')} at which a 5x5 square of contrast 1/6 of "
             "the reference's maximum appears (box contrast made >= 0.5 of the lesion's) or vanishes (contrast "
             "recovery < 0.5); '<= 0.005': already at the smallest budget tried; '> 0.08': not by the largest. In brackets: the measure the last attack "
             "reached, and the mean of the same measure under Gaussian noise of the same norm (2 draws)."]
    notes.append("Lesion centres (row, column): " + ", ".join(f"{a} {r}, {c}" for a, (r, c) in CENTRES.items())
                 + "; 'vanishes': the lesion inserted into the slice (each coil image through the clean data's ESPIRiT "
                 "maps), '0': the method misses it without any perturbation.")
    return "\n".join(lines) + "\n\n" + " ".join(notes)


def measurements(method_code: tuple[str, ...], method_files: tuple[str, ...]) -> list[Measurement]:
    """The lesion measurement; the arguments as :func:`explorer.study.measured_real.measurements`'."""
    return [Measurement(
        name="lesions", title="the smallest budget at which a lesion appears or vanishes, per method, on the samples",
        parts=lesion_parts(), render=render_lesions, code=method_code,
        files=method_files + tuple(f"assets/checkpoints/{k}_{a}.pt" for k in ("unet", "varnet") for a in CENTRES),
        note=f"Targeted attack of `python -m explorer lesion` ({STEPS} steps per budget, PGD, a fresh start and the "
             "previous budget's best e at each larger budget, outside weight 1, budget relative to the full k-space); "
             "4x random mask (centre 0.08, seed 0), the middle slice; coil maps fixed (the clean data's ESPIRiT). The "
             "un-trained ConvDecoder is not in the table (its joint scheme takes minutes per budget on a CPU).")]


__all__ = ["CENTRES", "EPS", "METHODS", "lesion_parts", "measurements", "render_lesions"]
