"""Single-coil sparse recovery against BART (issue 14): l1 and TV on single-coil knees and brain vs ``bart pics``.

Usage: python bench/bench_singlecoil.py [--slice 2] [--acceleration 4] [--json]

``--json`` prints one JSON document instead of the table (``python -m explorer results run singlecoil-sparse`` runs it
and draws the README's table from it).

For each single-coil embedded sample (fastMRI-like knee, Stanford-like 3D FSE knee, brain; 320x320, slice 2 is
held out of the lambda tuning), 4x random mask (centre 0.08, seed 0): SSIM / PSNR / seconds of zero-filled,
our l1 and TV at their single-coil defaults, our l1 without cycle spinning, and BART ``pics`` at its usual
``-l1 -r 0.01`` (BART's own data scale, its default wavelet with cycle spinning) and ``-R T:3:0:0.01``. All
images are scored the same way (explorer.engine.score against the file's reference). One thread.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.data.cfl import read_cfl, write_cfl  # noqa: E402
from explorer.data.sources import open_volume  # noqa: E402
from explorer.engine import MethodInstance, prepare, run_method  # noqa: E402
from explorer.engine.core import score  # noqa: E402
from explorer.masks import MaskConfig  # noqa: E402

SOURCES = ("sample:knee,coils=1", "sample:knee,coils=1,dataset=stanford", "sample:brain,coils=1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slice", type=int, default=2)
    ap.add_argument("--acceleration", type=float, default=4.0)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    ap.add_argument("--json", action="store_true", help="print one JSON document (the rows) instead of the table")
    args = ap.parse_args()
    found: list[dict] = []

    def emit(data: str, method: str, ssim: float, psnr: float, seconds: float) -> None:
        found.append({"data": data, "method": method, "ssim": ssim, "psnr": psnr, "seconds": seconds})
        if not args.json:
            print(f"{data:40s} {method:34s} {ssim:7.4f} {psnr:7.2f} {seconds:6.2f}")

    sources = [f"{s},size=64,slices=3" for s in SOURCES] if args.smoke else SOURCES
    if args.smoke:
        args.slice = 1
    torch.set_num_threads(1)
    bart = shutil.which("bart")
    header = (f"single-coil, {args.acceleration:g}x random (centre 0.08, seed 0), slice {args.slice}, torch "
              f"{torch.__version__}, 1 thread; BART {'found' if bart else 'not found: BART rows skipped'}")
    if not args.json:
        print(f"# {header}")
        print(f"{'data':40s} {'method':34s} {'SSIM':>7s} {'PSNR':>7s} {'s':>6s}")
    for src in sources:
        sl = open_volume(src).read_slice(args.slice)
        p = prepare(sl, MaskConfig("random", args.acceleration, 0.08, seed=0), "cpu")
        key = sl.meta.defaults_key
        rows = [("zero_filled", MethodInstance.of("zero_filled")), ("l1 (defaults)", MethodInstance.of("l1", anatomy=key)),
                ("l1 spin=False", MethodInstance.of("l1", {"spin": False}, anatomy=key)),
                ("tv (defaults)", MethodInstance.of("tv", anatomy=key))]
        for label, inst in rows:
            r = run_method(p, inst)
            extra = f" lam {inst.config.lam:g}" if hasattr(inst.config, "lam") else ""
            emit(src, label + extra, r.metrics["ssim"], r.metrics["psnr"], r.seconds)
        if not bart:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            h, w = p.y.shape[-2:]
            write_cfl(d / "k", p.y[0].permute(1, 2, 0).numpy()[:, :, None, :])
            write_cfl(d / "s", np.ones((h, w, 1, 1), np.complex64))
            for label, extra in (("bart pics -l1 -r 0.01", ["-l1", "-r", "0.01"]),
                                 ("bart pics -R T:3:0:0.01", ["-R", "T:3:0:0.01"])):
                t0 = time.perf_counter()
                subprocess.run(["bart", "pics", "-S", *extra, "k", "s", "o"], cwd=d, check=True, capture_output=True,
                               env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
                seconds = time.perf_counter() - t0
                x = torch.from_numpy(read_cfl(d / "o").reshape(h, w))[None]
                m = score(p, x).metrics
                emit(src, label, m["ssim"], m["psnr"], seconds)
    if args.json:
        print(json.dumps({"setting": header, "device": "cpu", "bart": bool(bart), "rows": found}))


if __name__ == "__main__":
    main()
