"""GPU benchmark: the explorer's work timed on CUDA and on the CPU, side by side, with the GPU's peak memory.

Run: ``python bench/gpu.py [--size 320] [--coils 8] [--repeats 3] [--steps 5] [--fit-iterations 100] [--workers 2]
[--json PATH]``. ``--smoke`` (CI: ``tests/test_bench_smoke.py``) only checks that it runs: 32x32, 2 coils, one repeat,
no warm-up, 2 steps, 3 iterations of every iterative method (fits of 8 channels), random weights of the networks'
tiny architectures.

Data: the embedded knee sample (``sample:knee,size=S,slices=1,coils=C``), 4x random mask (seed 0), ESPIRiT maps
estimated before the timings. Rows, each measured on CUDA (when a device is present) and on the CPU:

* ``recon <method>``: every registered method (:func:`explorer.recon.base.available_methods`) through
  :func:`explorer.engine.run_method` (the reconstruction's own seconds; shipped knee checkpoints for the trained
  networks; per-slice fits, ``cost == "long"``, limited to ``--fit-iterations`` Adam steps); the median of
  ``--repeats`` after one warm-up.
* ``attack step <net>`` (:func:`explorer.robustness.attack.attack`, clean objective, eps 0.08) and ``TTT step <net>``
  (:func:`explorer.robustness.ttt.test_time_train`) for every method with trained weights: seconds per step, from
  the progress reports of a ``--steps``-step run (the time from step 1's report to the last one's, per step: the
  first step's warm-up and the fixed costs before and after the loop are left out).
* ``train step <kind>``: :func:`explorer.training.train.train` of every network kind (fastMRI's default
  architecture; ``--smoke``: the kind's tiny one) on a ``--steps + 1``-slice copy of the sample (so no epoch end,
  with its checkpoint writes, falls inside the timing), batch 1, per step from step 1 to the last, twice: float32
  with the examples built in the training process, and ``--amp bf16`` with ``--workers`` DataLoader workers.
* ``ESPIRiT``: :func:`explorer.espirit.espirit_maps` of the masked k-space ``(1, C, H, W)`` with the calibration the
  engine uses; median of ``--repeats`` after one warm-up.
* ``study``: :func:`explorer.study.runner.run_study` of zero-filled, SENSE and the trained networks (clean) on the
  slice, end to end (expansion, maps, model loading, Parquet), once per device (``EXPLORER_DEVICE`` picks it).

Columns: seconds on CUDA and on the CPU (torch's CPU threads), CPU/GPU (how many times faster the GPU is) and the
peak GPU memory of the row (``torch.cuda.max_memory_allocated`` after a reset, MiB: includes what was already
resident, e.g. cached models). Without CUDA (or with ``EXPLORER_DEVICE=cpu``) the GPU columns are ``-``.
``--json PATH`` writes the same numbers. A row that fails shows ``failed: ...`` (``EXPLORER_DEBUG=1``: its traceback
on stderr) and the script exits 1 after the table. Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer.data.sources import open_volume  # noqa: E402
from explorer.engine import MethodInstance, prepare, run_method  # noqa: E402
from explorer.engine.core import sync  # noqa: E402
from explorer.masks import MaskConfig  # noqa: E402
from explorer.recon.base import available_methods  # noqa: E402

MASK = MaskConfig("random", 4, seed=0)
Measure = Callable[[torch.device], float]  # runs the work on a device, returns its seconds


@contextlib.contextmanager
def explorer_device(device: torch.device):
    """``EXPLORER_DEVICE`` set to ``device``: code that picks its own device (training, studies, the trained networks'
    shared models that TTT copies) computes there too."""
    old = os.environ.get("EXPLORER_DEVICE")
    os.environ["EXPLORER_DEVICE"] = device.type
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("EXPLORER_DEVICE", None)
        else:
            os.environ["EXPLORER_DEVICE"] = old


class Steps:
    """A progress callback recording ``(step, time)`` of every report; :meth:`per_step` is the seconds per step
    between the first report and the last."""

    def __init__(self, device: torch.device):
        self.device, self.marks = device, []

    def __call__(self, step, total, info=None):
        sync(self.device)
        self.marks.append((int(step), time.perf_counter()))

    def per_step(self) -> float:
        (s0, t0), (s1, t1) = self.marks[0], self.marks[-1]
        if s1 <= s0:
            raise RuntimeError(f"need reports of two steps or more, got {self.marks}")
        return (t1 - t0) / (s1 - s0)


def median_of(repeats: int, warmup: int, once: Measure) -> Measure:
    """``once`` run ``warmup`` times untimed, then the median of ``repeats`` runs."""
    def measure(device: torch.device) -> float:
        for _ in range(warmup):
            once(device)
        return statistics.median(once(device) for _ in range(repeats))
    return measure


def build_rows(args, workdir: Path, devices: list[torch.device]) -> list[tuple[str, Measure]]:
    """The benchmark's ``(name, measure)`` rows, with the problem prepared on each of ``devices`` (and its ESPIRiT
    maps estimated) first."""
    from explorer.data.sample import SampleSpec, write_sample  # noqa: PLC0415
    from explorer.engine.problem import MAX_CALIB, MIN_KERNEL, espirit_kernel_width  # noqa: PLC0415
    from explorer.espirit import calib_shape_for, espirit_maps  # noqa: PLC0415
    from explorer.recon.checkpoints import random_checkpoint  # noqa: PLC0415
    from explorer.recon.networks import get_network, network_kinds  # noqa: PLC0415
    from explorer.robustness.attack import AttackConfig, attack  # noqa: PLC0415
    from explorer.robustness.ttt import TTTConfig, test_time_train  # noqa: PLC0415
    from explorer.study.runner import run_study  # noqa: PLC0415
    from explorer.study.spec import parse_spec  # noqa: PLC0415
    from explorer.training.train import TrainOptions, train  # noqa: PLC0415

    source = f"sample:knee,size={args.size},slices=1,coils={args.coils}"
    slc = open_volume(source).read_slice(0)
    problems = {d.type: prepare(slc, MASK, d) for d in devices}
    for p in problems.values():
        p.maps_and_seconds  # noqa: B018  (maps estimated once, outside the timings)

    def problem(device: torch.device):
        return problems[device.type]

    def settings(spec) -> dict:
        """The method's settings here: fits limited to ``--fit-iterations`` (``--smoke``: 8 channels too); in
        ``--smoke`` every iterative method runs ``--fit-iterations`` and the trained networks are random weights of
        their kind's tiny architecture."""
        if spec.capabilities.cost == "long":
            return {"iterations": args.fit_iterations, **({"width": 8} if args.smoke else {})}
        if args.smoke and "iterations" in {param.name for param in spec.params()}:
            return {"iterations": args.fit_iterations}
        if spec.capabilities.weights and args.smoke:
            path = random_checkpoint(spec.name, dict(get_network(spec.name).tiny), workdir / f"{spec.name}_tiny.pt",
                                     card={"data": {"anatomy": "knee"}})
            return {"checkpoint": str(path)}
        return {}

    values = {spec.name: settings(spec) for spec in available_methods()}
    instances = {spec.name: MethodInstance(spec.name, spec.name, spec.make_config(values[spec.name] or None))
                 for spec in available_methods()}
    warm = 0 if args.smoke else 1
    rows: list[tuple[str, Measure]] = []
    for spec in available_methods():
        name = f"recon {spec.name}" + (f" ({args.fit_iterations} its)" if spec.capabilities.cost == "long" else "")
        once = lambda d, i=instances[spec.name]: run_method(problem(d), i).seconds  # noqa: E731
        rows.append((name, median_of(args.repeats, warm, once)))

    networks = [spec for spec in available_methods() if spec.capabilities.weights]
    for spec in networks:
        instance = instances[spec.name]

        def attack_step(device, instance=instance):
            steps = Steps(device)
            attack(problem(device), instance, AttackConfig(eps=0.08, steps=args.steps, patience=0), progress=steps,
                   clean=run_method(problem(device), instance))
            return steps.per_step()

        rows.append((f"attack step {spec.name}", attack_step))
    for spec in networks:
        instance = instances[spec.name]

        def ttt_step(device, instance=instance):
            steps = Steps(device)
            test_time_train(problem(device), instance, TTTConfig(steps=args.steps, window=10000), progress=steps,
                            before=run_method(problem(device), instance))
            return steps.per_step()

        rows.append((f"TTT step {spec.name}", ttt_step))

    data = workdir / "train"
    write_sample(data, SampleSpec("knee", args.size, args.steps + 1, args.coils, 1))
    for kind in network_kinds():
        arch = dict(kind.tiny) if args.smoke else {}
        for amp, workers in (("off", 0), ("bf16", args.workers)):
            def train_step(device, kind=kind.name, arch=arch, amp=amp, workers=workers):
                steps = Steps(device)
                train(TrainOptions(model=kind, data=data, out=workdir / f"{kind}_{device.type}.pt", arch=arch,
                                   steps=args.steps, force=True, amp=amp, workers=workers), progress=steps)
                return steps.per_step()

            label = "float32, in process" if amp == "off" else f"{amp} autocast, {workers} workers"
            rows.append((f"train step {kind.name} ({label})", train_step))

    def espirit_once(device):
        p = problem(device)
        calib = calib_shape_for(p.sampled.mask.reshape(-1).cpu(), p.y.shape[-2], MAX_CALIB, kernel_width=MIN_KERNEL)
        sync(device)
        start = time.perf_counter()
        espirit_maps(p.y, calib_shape=calib, kernel_width=espirit_kernel_width(calib, p.y.shape[1]))
        sync(device)
        return time.perf_counter() - start

    rows.append(("ESPIRiT maps", median_of(args.repeats, warm, espirit_once)))
    study = parse_spec({"name": "gpu-bench", "data": [{"source": source, "slices": "all"}],
                        "methods": [{"method": s.name, "config": values[s.name]} for s in available_methods()
                                    if s.capabilities.cost == "instant" or s.capabilities.weights],
                        "experiments": ["clean"]})

    def study_once(device):
        start = time.perf_counter()
        run_study(study, workdir / f"study_{device.type}")
        return time.perf_counter() - start

    rows.append((f"study ({len(study.methods)} methods, clean, 1 slice)", study_once))
    return rows


def run_row(measure: Measure, device: torch.device) -> dict:
    """``{"seconds", "peak_mib"}`` of one row on ``device`` (``EXPLORER_DEVICE`` set to it), or ``{"error"}``."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with explorer_device(device):
            seconds = measure(device)
    except Exception as exc:  # noqa: BLE001  (one failed row must not hide the others)
        if os.environ.get("EXPLORER_DEBUG"):
            traceback.print_exc(file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:120]}
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"seconds": seconds, "peak_mib": peak}


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the reconstructions and ESPIRiT (median)")
    parser.add_argument("--steps", type=int, default=5, help="steps of the attack, TTT and training runs (>= 2)")
    parser.add_argument("--fit-iterations", type=int, default=100, help="Adam steps of the per-slice fits")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the bf16 training row")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the numbers to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.coils, args.repeats, args.steps, args.fit_iterations = 32, 2, 1, 2, 3
    if args.steps < 2:
        parser.error("--steps must be >= 2 (a step time needs two progress reports)")
    if min(args.size, args.coils, args.repeats, args.fit_iterations) < 1 or args.workers < 0:
        parser.error("--size, --coils, --repeats and --fit-iterations must be >= 1, --workers >= 0")
    forced_cpu = os.environ.get("EXPLORER_DEVICE", "").strip().lower() == "cpu"
    cuda = torch.cuda.is_available() and not forced_cpu
    devices = [torch.device("cuda"), torch.device("cpu")] if cuda else [torch.device("cpu")]
    gpu = torch.cuda.get_device_name(0) if cuda else None
    header = (f"sample:knee {args.size}x{args.size}, {args.coils} coils, 4x random; torch {torch.__version__}, "
              f"{torch.get_num_threads()} CPU threads, {os.cpu_count()} CPUs; GPU: {gpu or 'none'}")
    print(f"## GPU benchmark{' (smoke)' if args.smoke else ''}\n\n{header}")
    if not cuda:
        why = "EXPLORER_DEVICE=cpu" if forced_cpu else "No CUDA device"
        print(f"{why}: CPU column only (GPU columns '-').")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, measure in build_rows(args, Path(tmp), devices):
            out = {"name": name, **{d.type: run_row(measure, d) for d in devices}}
            print(f"  measured {name}", file=sys.stderr, flush=True)
            results.append(out)
    print(f"\n| {'what':<44} | {'GPU s':>9} | {'CPU s':>9} | {'CPU/GPU':>8} | {'GPU peak MiB':>12} |")
    print(f"|{'-' * 46}|{'-' * 10}:|{'-' * 10}:|{'-' * 9}:|{'-' * 13}:|")
    rows, failed = [], []
    for r in results:
        g, c = r.get("cuda", {}), r["cpu"]
        gs, cs = g.get("seconds"), c.get("seconds")
        ratio = cs / gs if gs and cs is not None else None
        rows.append({"name": r["name"], "gpu_s": gs, "cpu_s": cs, "cpu_over_gpu": ratio, "gpu_peak_mib": g.get("peak_mib"),
                     "gpu_error": g.get("error"), "cpu_error": c.get("error")})
        failed += [f"{r['name']} on {dev}: {e}" for dev, e in (("GPU", g.get("error")), ("CPU", c.get("error"))) if e]
        gcell = f"failed: {g['error']}" if g.get("error") else _cell(gs, ".4f")
        ccell = f"failed: {c['error']}" if c.get("error") else _cell(cs, ".4f")
        print(f"| {r['name']:<44} | {gcell:>9} | {ccell:>9} | {_cell(ratio, '.1f'):>8} | "
              f"{_cell(g.get('peak_mib'), '.0f'):>12} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "smoke": args.smoke, "cuda": cuda, "gpu": gpu,
                                               "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
                                               "size": args.size, "coils": args.coils, "repeats": args.repeats,
                                               "steps": args.steps, "fit_iterations": args.fit_iterations,
                                               "workers": args.workers, "rows": rows}, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
