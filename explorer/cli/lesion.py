"""``python -m explorer lesion``: worst-case lesions of one slice for each method instance.

``--mode false-negative``: per method, the lesion within the bounds (``--region`` or the whole object, ``--sizes``,
``--contrasts``, ``--shapes``) it recovers worst (a seeded random search of ``--candidates`` lesions and ``--refine``
local refinement steps, ranked by ``--measure``), then the smallest eps of ``--eps`` at which a targeted attack
erases that lesion (``--vanish``: contrast recovery below it; ``--vanish-local-ssim``: or local SSIM below it).
``--mode hallucination``: per method, the smallest eps at which a targeted attack creates a structure (``--at ROW,COL``
with ``--shape/--size/--contrast``, or ``--box`` with ``--image FILE.npy``) in the clean slice's reconstruction
(``--appear``: contrast change at least that fraction of the structure's). The thresholds are printed with every
result. ``--json``: one object; ``--out DIR``: ``candidates.csv``, ``attacks.csv``, ``headline.csv`` and per method and
eps ``e_<label>_<eps>.npy`` / ``attacked_<label>_<eps>.npy`` (a folder holding such files is refused unless
``--force``). One Ctrl-C stops the method under way (keeping its result so far) and ends the command: the methods
after it are listed as ``not_run``.
"""

from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.options import add_slice_arguments, load_problem, parse_list
from explorer.cli.outputs import add_force, refuse_earlier
from explorer.errors import ExplorerError

NAME = "lesion"
MODES = ("false-negative", "hallucination")
OUTPUTS = ("candidates.csv", "attacks.csv", "headline.csv", "e_*.npy", "attacked_*.npy")  # what --out receives


def add_parser(sub) -> None:
    """Register the ``lesion`` sub-command."""
    p = sub.add_parser("lesion", help="worst-case lesions: the lesion a method misses, the budget that erases or "
                                      "creates one")
    add_slice_arguments(p)
    p.add_argument("--mode", required=True, help="false-negative or hallucination")
    p.add_argument("--eps", default="0.005,0.01,0.02,0.04,0.08",
                   help="increasing relative l2 budgets of the headline (comma-separated)")
    p.add_argument("--budget", default="full", help="full (eps x ||fully sampled k||) or measured (eps x ||y||)")
    p.add_argument("--steps", type=int, default=20, help="gradient steps per restart")
    p.add_argument("--step-size", type=float, default=0.0, help="step as a fraction of the budget (0 = 2.5/steps)")
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--optimizer", default="pgd", help="pgd or adam")
    p.add_argument("--patience", type=int, default=5, help="stop after this many steps without a better iterate")
    p.add_argument("--attack-seed", type=int, default=0, help="seed of the random starts and of the noise draws")
    p.add_argument("--noise-draws", type=int, default=2,
                   help="Gaussian perturbations of each budget's norm measured beside each attack (0 = none)")
    p.add_argument("--outside-weight", type=float, default=1.0,
                   help="lambda: weight of the change outside the structure's box in the targeted loss")
    p.add_argument("--appear", type=float, default=0.5,
                   help="hallucination: appeared when the contrast change reaches this fraction of the structure's")
    p.add_argument("--vanish", type=float, default=0.5, help="false negative: vanished when the contrast recovery < this")
    p.add_argument("--vanish-local-ssim", type=float, default=None, help="false negative: or when the local SSIM < this")
    g = p.add_argument_group("false-negative search")
    g.add_argument("--region", default=None, help="row0,col0,row1,col1: lesions inside this box (default: whole object)")
    g.add_argument("--sizes", default="3,7", help="smallest,largest size in pixels")
    g.add_argument("--contrasts", default="0.1,0.25", help="lowest,highest contrast (relative to --relative-to)")
    g.add_argument("--shapes", default="square", help="shape families, comma-separated (square, disk, line, blob)")
    g.add_argument("--candidates", type=int, default=16, help="random lesions tried")
    g.add_argument("--refine", type=int, default=16, help="local refinement evaluations (0 = none)")
    g.add_argument("--search-seed", type=int, default=0, help="seed of the random lesions")
    g.add_argument("--measure", default="contrast_recovery", help="contrast_recovery, local_ssim or window_mse")
    g.add_argument("--paper-mode", action="store_true", help="insert lesions as the paper's code (every coil image)")
    h = p.add_argument_group("hallucination structure")
    h.add_argument("--at", default=None, metavar="ROW,COL", help="centre of the structure (reference-size image)")
    h.add_argument("--shape", default="square")
    h.add_argument("--size", type=int, default=5)
    h.add_argument("--contrast", type=float, default=1 / 6, help="relative to --relative-to (the paper's: 1/6 of the max)")
    h.add_argument("--angle", type=float, default=0.0, help="line angle in degrees")
    h.add_argument("--width", type=int, default=1, help="line width in pixels")
    h.add_argument("--box", default=None, help="row0,col0,row1,col1: a given structure image's box")
    h.add_argument("--image", default=None, help="FILE.npy: the real (h, w) magnitude to add inside --box")
    p.add_argument("--relative-to", default="max", help="contrast reference: max or local")
    p.add_argument("--out", default=None, help="write the tables and perturbations here")
    add_force(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _settings(args):
    """Everything checked before any work: ``(eps, config, criteria, bounds or None)``."""
    import dataclasses  # noqa: PLC0415

    from explorer.robustness.lesion_structures import Criteria  # noqa: PLC0415
    from explorer.robustness.lesions import MEASURES, LesionBounds  # noqa: PLC0415
    from explorer.robustness.objectives import AttackConfig, parse_eps, parse_region  # noqa: PLC0415

    if args.mode not in MODES:
        raise ExplorerError(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}")
    eps = parse_eps(args.eps, "--eps")
    config = AttackConfig(eps=max(eps), budget=args.budget, steps=args.steps, step_size=args.step_size,
                          restarts=args.restarts, optimizer=args.optimizer, patience=args.patience, seed=args.attack_seed,
                          noise_draws=args.noise_draws)
    for value in eps:
        dataclasses.replace(config, eps=value)
    criteria = Criteria(args.appear, args.vanish, args.vanish_local_ssim)
    if not 0 <= args.outside_weight <= 1e6:
        raise ExplorerError(f"--outside-weight must be in [0, 1e6], got {args.outside_weight}")
    bounds = None
    if args.mode == "false-negative":
        sizes, contrasts = parse_list(args.sizes, int, "--sizes"), parse_list(args.contrasts, float, "--contrasts")
        if len(sizes) != 2 or len(contrasts) != 2:
            raise ExplorerError("--sizes and --contrasts take two values each: lowest,highest")
        bounds = LesionBounds(parse_region(args.region), tuple(sizes), tuple(contrasts),
                              tuple(v.strip() for v in parse_list(args.shapes, str, "--shapes")), args.relative_to)
        if args.measure not in MEASURES:
            raise ExplorerError(f"--measure must be one of {', '.join(MEASURES)}, got {args.measure!r}")
        for name, value in (("--candidates", args.candidates), ("--refine", args.refine)):
            if not 0 <= value <= 256 or (name == "--candidates" and value < 1):
                raise ExplorerError(f"{name} must be in [{1 if name == '--candidates' else 0}, 256], got {value}")
    return eps, config, criteria, bounds


def _structure_source(args):
    """The hallucination's structure as given: ``("feature", Feature)`` or ``("image", (box, patch))``."""
    import numpy as np  # noqa: PLC0415

    from explorer.robustness.insertion import Feature, parse_position  # noqa: PLC0415
    from explorer.robustness.objectives import parse_region  # noqa: PLC0415

    if (args.at is None) == (args.box is None):
        raise ExplorerError("hallucination: give the structure's centre (--at ROW,COL) or a box and image "
                            "(--box r0,c0,r1,c1 --image FILE.npy), one of them")
    if args.at is not None:
        row, col = parse_position(args.at)
        return "feature", Feature(shape=args.shape, row=row, col=col, size=args.size, contrast=args.contrast,
                                  relative_to=args.relative_to, angle=args.angle, width=args.width)
    if args.image is None:
        raise ExplorerError("--box needs --image FILE.npy (the real magnitude to add inside the box)")
    try:
        patch = np.load(args.image, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ExplorerError(f"--image {args.image}: cannot read a .npy array ({exc})") from None
    return "image", (parse_region(args.box), patch)


def run(args: argparse.Namespace) -> int:
    """Run the ``lesion`` command; returns the exit status."""
    from explorer.cli.progress import Progress  # noqa: PLC0415
    from explorer.robustness.insertion import full_maps  # noqa: PLC0415
    from explorer.robustness.lesion_structures import image_structure  # noqa: PLC0415
    from explorer.robustness.lesion_runs import lesion_method, lesion_structure  # noqa: PLC0415

    eps, config, criteria, bounds = _settings(args)
    source = _structure_source(args) if args.mode == "hallucination" else None
    refuse_earlier(args.out, OUTPUTS, args.force)
    data, volume, index, _, problem, instances = load_problem(args)
    full = problem.slice.acquired_mask is None
    if args.mode == "false-negative" and not full:
        raise ExplorerError("a false-negative search inserts lesions into fully sampled data: this file is undersampled")
    insertion = "paper" if args.paper_mode else "coil"
    maps = (full_maps(problem.slice.kspace) if args.mode == "false-negative" and insertion == "coil"
            and problem.slice.num_coils > 1 else None)
    structure = None
    if source is not None:  # checked against this slice before any method runs
        structure = (lesion_structure(problem, source[1], instances[0]) if source[0] == "feature"
                     else image_structure(*source[1], problem.crop))
    searches, headlines, attacks, not_run, notes = [], [], [], [], []
    halted = False
    for instance in instances:
        if halted:
            not_run.append(instance.label)
            continue
        with Progress(f"lesion {instance.display}", enabled=not args.json) as progress:
            try:
                outcome = lesion_method(problem, instance, eps, config, criteria, args.outside_weight, bounds=bounds,
                                        candidates=args.candidates, refine=args.refine, seed=args.search_seed,
                                        measure=args.measure, mode=insertion, maps=maps, structure=structure,
                                        progress=progress)
            except ExplorerError as exc:
                raise ExplorerError(f"{instance.label}: {exc}") from None
        searches += [outcome.search] if outcome.search is not None else []
        notes += [outcome.note] if outcome.note else []
        if outcome.headline is not None:
            headlines.append(outcome.headline)
            attacks += outcome.headline.results
        halted = outcome.stopped
    mode = "erase" if bounds is not None else "hallucination"
    if args.out is not None:
        _write(args.out, searches, headlines, attacks, criteria, args.metric)
    report = {"file": data, "slice": index, "mode": args.mode, "device": str(problem.device), "metric": problem.metric,
              "maps": "fixed during each attack: ESPIRiT of the unattacked measurements (with the lesion, in "
                      "false-negative mode; each search candidate: its own measurements)",
              "thresholds": criteria.row(mode), "eps": eps,
              "bounds": bounds.describe() if bounds is not None else None,
              "structure": structure.describe() if structure is not None else None,
              "searches": [s.summary() for s in searches], "candidates": [r for s in searches for r in s.rows()],
              "headline": [h.row() for h in headlines], "attacks": [a.row(criteria) for a in attacks],
              "notes": notes, **({"not_run": not_run} if not_run else {})}
    if args.json:
        print(json.dumps(report, default=float))
        return 0
    _print(volume.name, index, args.mode, criteria.describe(mode), searches, headlines, criteria)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if halted:
        print("stopped early: the results so far are reported" + (f"; not run: {', '.join(not_run)}" if not_run else ""),
              file=sys.stderr)
    return 0


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print(name, index, mode, criterion, searches, headlines, criteria) -> None:
    print(f"{name}  slice {index}  mode {mode}  criterion: {criterion}")
    for s in searches:
        summary, w = s.summary(), s.worst
        if w is None:
            print(f"{s.instance.label:<14} no lesion scored")
            continue
        f = w.feature
        print(f"{s.instance.label:<14} worst {f.shape} {f.size}px at ({f.row},{f.col}) contrast {f.contrast:.3f}: "
              f"{s.measure} {_f(w.value)} (random {len(s.candidates)}: worst {_f(summary['random_worst'])}, median "
              f"{_f(summary['random_median'])}, best {_f(summary['random_best'])}; {len(s.refined)} refinement steps)")
    for h in headlines:
        verdict = ("met without any perturbation" if h.clean_met else "not met at any eps tried" if h.eps is None else
                   f"smallest eps {h.eps:g} (found by the attack at eps {h.found_at:g}, ||e||/||k|| {h.reached:.4f})")
        print(f"{h.instance.label:<14} {h.mode}: {verdict}")
        for r in h.results:
            row = r.row(criteria)
            print(f"{'':14}eps {row['eps']:<7g} reached {row['ratio']:.4f}  measure {_f(r.measure)}  noise "
                  f"{_f(row['noise_measure'])}  outside change {_f(row['outside_change'])}  met {row['met']}  "
                  f"{r.strategy}")


def _write(out: str, searches, headlines, attacks, criteria, metric: str) -> None:
    from pathlib import Path  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from explorer.export import records_csv  # noqa: PLC0415

    folder = Path(out)
    for a in attacks:
        stem = f"{a.instance.label}_{a.config.eps:g}"
        np.save(folder / f"e_{stem}.npy", a.e[0].numpy())
        np.save(folder / f"attacked_{stem}.npy", a.attacked.image)
    tables = (("candidates.csv", [r for s in searches for r in s.rows()]),
              ("attacks.csv", [a.row(criteria) for a in attacks]), ("headline.csv", [h.row() for h in headlines]))
    for name, table in tables:
        if table:
            (folder / name).write_text(records_csv(table, {"metric": metric}))
