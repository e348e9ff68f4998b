"""Test-time training benchmark: one TTT step vs one supervised training step, and TTT wall time per slice.

Run: ``python bench/bench_ttt.py [--method unet|varnet ...] [--family brain] [--size 320] [--steps 20]``.

On the embedded sample's middle slice (default brain, 320x320, 8 coils), 4x random mask (seed 0), the shipped
knee checkpoint of each network (a distribution shift). "train step" is one supervised training step of the
same network on this slice as ``python -m explorer train`` runs it (forward, fastMRI's loss, backward, Adam),
the median of 5 after a warm-up; "TTT step" is the marginal cost of one test-time training step (the time of a
``2 * --steps``-step run minus a ``--steps``-step one, divided by ``--steps``, no early stop), so the fixed costs
(the reconstructions before and after) cancel. Target: TTT step <= 1.2x train step. "TTT s" is a whole
``--steps``-step run. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", default=None)
    parser.add_argument("--family", default="brain")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.steps = 64, 2

    import torch  # noqa: PLC0415

    from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415
    from explorer.data.sample import SampleSpec, sample_path  # noqa: PLC0415
    from explorer.device import describe_device, get_device  # noqa: PLC0415
    from explorer.engine import MethodInstance, prepare, run_method, trainable_copy  # noqa: PLC0415
    from explorer.engine.core import sync  # noqa: PLC0415
    from explorer.masks import MaskConfig  # noqa: PLC0415
    from explorer.recon.base import get_method  # noqa: PLC0415
    from explorer.robustness.ttt import TTTConfig, test_time_train  # noqa: PLC0415
    from explorer.training.examples import batch_loss, criterion, make_example  # noqa: PLC0415

    device = get_device()
    volume = FastMRIVolume(sample_path(SampleSpec(family=args.family, size=args.size)))
    slc = volume.read_slice(volume.num_slices // 2)
    mask = MaskConfig("random", 4, seed=0)
    problem = prepare(slc, mask, device)
    problem.maps_and_seconds  # noqa: B018  (maps estimated once, outside the timings)
    print(f"sample:{args.family} {args.size}x{args.size} {volume.num_coils} coils, 4x random, knee checkpoints, "
          f"{args.steps} steps, device {describe_device(device)}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'method':<8}{'train step s':>14}{'TTT step s':>12}{'ratio':>7}{'TTT s':>8}{'SSIM':>8}{'->':>3}{'SSIM':>8}")
    for name in args.method or ["unet", "varnet"]:
        spec = get_method(name)
        instance = MethodInstance(name, name, spec.make_config({"checkpoint": "knee"}))
        module = trainable_copy(instance).module
        module.train()
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-5)
        supervised = criterion(name, device)  # the loss `explorer train` uses for this network (fastMRI's)
        example = make_example(name, slc, mask, device)
        timings = []
        for i in range(6):
            sync(device)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(module, [example], supervised)
            loss.backward()
            optimizer.step()
            sync(device)
            if i:
                timings.append(time.perf_counter() - start)
        before = run_method(problem, instance)

        def timed(steps: int):
            sync(device)
            start = time.perf_counter()
            out = test_time_train(problem, instance, TTTConfig(steps=steps, window=10000), before=before)
            sync(device)
            return out, time.perf_counter() - start

        result, total = timed(args.steps)
        step = (timed(2 * args.steps)[1] - total) / args.steps
        base = statistics.median(timings)
        print(f"{name:<8}{base:14.3f}{step:12.3f}{step / base:7.2f}{total:8.1f}{before.metrics['ssim']:8.4f}{'':3}"
              f"{result.after.metrics['ssim']:8.4f}", flush=True)


if __name__ == "__main__":
    main()
