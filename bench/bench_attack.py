"""Attack benchmark: one attack step vs one forward + backward of the method, and a whole attack, per method.

Run: ``python bench/bench_attack.py [--method NAME ...] [--steps 20] [--family knee] [--size 320]``.

On the embedded sample's middle slice (default 320x320, 8 coils), 4x random mask (seed 0), eps 0.08, clean
objective. "fwd+bwd" is the engine's differentiable reconstruction of ``y`` followed by ``backward`` of the
attack objective (the median of 5 after a warm-up); "step" is the marginal cost of one attack step, the time of
a ``2 * --steps``-step attack minus that of a ``--steps``-step one, divided by ``--steps`` (so the fixed costs,
the clean objective, the last iterate's check and the final scoring, cancel); the ratio is the overhead of the
attack loop (target <= 1.15x). "attack s" is the whole ``--steps``-step attack. Joint-scheme methods (un-trained
networks) show their whole attack (joint fit + refit).
Prints a table (``--json``: one JSON document instead, for ``python -m explorer results run attack-speed``); asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_METHODS = ("zero_filled", "sense", "l1", "tv", "unet", "varnet", "convdecoder")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--family", default="knee")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.steps, args.method = 64, 2, args.method or ["zero_filled", "unet"]

    import torch  # noqa: PLC0415

    from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415
    from explorer.data.sample import SampleSpec, sample_path  # noqa: PLC0415
    from explorer.device import describe_device, get_device  # noqa: PLC0415
    from explorer.engine import prepare, reconstruct, run_method  # noqa: PLC0415
    from explorer.engine.core import sync  # noqa: PLC0415
    from explorer.robustness.evaluate import instances_for  # noqa: PLC0415
    from explorer.masks import MaskConfig  # noqa: PLC0415
    from explorer.robustness.attack import AttackConfig, attack  # noqa: PLC0415
    from explorer.robustness.objectives import make_objective  # noqa: PLC0415

    device = get_device()
    volume = FastMRIVolume(sample_path(SampleSpec(family=args.family, size=args.size)))
    problem = prepare(volume.read_slice(volume.num_slices // 2), MaskConfig("random", 4, seed=0), device)
    problem.maps_and_seconds  # noqa: B018  (maps estimated once, outside the timings)
    setting = {"family": args.family, "size": args.size, "coils": volume.num_coils, "mask": "random 4x, seed 0",
               "eps": 0.08, "steps": args.steps, "objective": "clean", "device": describe_device(device),
               "torch": torch.__version__, "threads": torch.get_num_threads()}
    rows = []
    say = (lambda *a, **k: None) if args.json else print
    say(f"sample:{args.family} {args.size}x{args.size} {volume.num_coils} coils, 4x random, eps 0.08, "
        f"{args.steps} steps, device {describe_device(device)}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads")
    say(f"{'method':<14}{'strategy':>10}{'fwd+bwd s':>11}{'step s':>9}{'ratio':>7}{'attack s':>10}{'SSIM':>8}{'->':>3}{'SSIM':>8}")
    for instance in instances_for(args.method or DEFAULT_METHODS, None, volume_anatomy(volume)):
        clean = run_method(problem, instance)
        objective = make_objective("clean", clean.image, problem.target, device)
        recon = instance.build()

        def fwd_bwd():
            e = torch.zeros_like(problem.y, requires_grad=True)
            with torch.enable_grad():
                value = objective(reconstruct(problem.perturbed(e=e), instance, reconstructor=recon))
                value.backward()

        timings = []
        gradient = instance.capabilities.gradient == "exact"
        for i in range(6 if gradient else 0):
            sync(device)
            start = time.perf_counter()
            fwd_bwd()
            sync(device)
            if i:
                timings.append(time.perf_counter() - start)

        def timed(steps: int):
            sync(device)
            start = time.perf_counter()
            out = attack(problem, instance, AttackConfig(eps=0.08, steps=steps, patience=0), clean=clean)
            sync(device)
            return out, time.perf_counter() - start

        result, total = timed(args.steps)
        base = statistics.median(timings) if timings else float("nan")
        step = (timed(2 * args.steps)[1] - total) / args.steps if gradient else float("nan")
        rows.append({"method": instance.name, "label": instance.label, "strategy": result.strategy,
                     "fwd_bwd_s": None if not timings else base, "step_s": None if not gradient else step,
                     "ratio": None if not gradient else step / base, "attack_s": total,
                     "reconstruct_s": clean.seconds, "ssim_clean": clean.metrics["ssim"],
                     "ssim_attacked": result.perturbed.metrics["ssim"]})
        say(f"{instance.label:<14}{result.strategy:>10}{base:11.3f}{step:9.3f}{step / base:7.2f}{total:10.1f}"
            f"{clean.metrics['ssim']:8.4f}{'':3}{result.perturbed.metrics['ssim']:8.4f}", flush=True)
    if args.json:
        print(json.dumps({"setting": setting, "rows": rows}))


def volume_anatomy(volume) -> str | None:
    return volume.read_slice(0).meta.anatomy


if __name__ == "__main__":
    main()
