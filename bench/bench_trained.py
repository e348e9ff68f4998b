"""Trained networks benchmark: inference time per slice, against calling ``fastmri.models`` directly.

Run: ``python bench/bench_trained.py [--official unet --official varnet | --official none] [--repeats 3]``.

On the default embedded sample slice (knee, 320x320, 8 coils, middle slice), 4x random mask (seed 0),
for every shipped checkpoint present in ``assets/checkpoints`` (missing ones are listed with a note)
and for the published fastMRI architectures with random weights (VarNet 12 cascades / chans 18; U-net
chans 256 / 4 pools: ~500M parameters, slow on a CPU), on the CPU and on CUDA when present:

* ``explorer s``: the registered reconstructor (``recon(y, op)`` under ``torch.no_grad``, as the app runs it);
* ``fastmri s``: fastMRI's own transform functions (``fastmri.ifft2c``, ``complex_center_crop``,
  ``complex_abs``/``rss``, ``normalize_instance``) and the model called directly on the same k-space;
* ``max |diff|``: between the two outputs (centre 320x320), relative to the output maximum;
* ``ratio``: explorer / fastmri time (target <= 1.05), and SSIM against the reference.

Times are the minimum over ``--repeats`` runs after one warm-up. Targets (issue 4): identical output,
ratio <= 1.05, shipped checkpoints < 2 s per 320x320 slice on 2 CPU cores. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import explorer  # noqa: E402, F401, I001  (first: the OpenMP wait policy must be set before torch loads)
import torch  # noqa: E402
from explorer.data.sources import open_volume  # noqa: E402
from explorer.masks import MaskConfig  # noqa: E402
from explorer.metrics import compute_metrics, to_magnitude  # noqa: E402
from explorer.engine import prepare  # noqa: E402
from explorer.recon import checkpoints as ckpts  # noqa: E402
from explorer.recon import model_store  # noqa: E402
from explorer.recon.networks import get_network, kind_names  # noqa: E402
from explorer.recon.base import build, get_method  # noqa: E402


def fastmri_direct(kind: str, model, y: torch.Tensor, mask: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
    """fastMRI's transforms + model on masked k-space ``y`` ``(1, C, H, W)``; returns ``(h, w)``."""
    import fastmri  # noqa: PLC0415
    from fastmri.data import transforms as T  # noqa: PLC0415

    kspace = torch.view_as_real(y[0])  # (C, H, W, 2), already masked
    if kind == "unet":
        image = T.complex_center_crop(fastmri.ifft2c(kspace), crop)
        image = fastmri.rss(fastmri.complex_abs(image))
        image, mean, std = T.normalize_instance(image, eps=1e-11)
        image = image.clamp(-6, 6)
        return model(image[None, None])[0, 0] * std + mean
    out = model(kspace[None], mask[..., None], None)[0]
    return T.center_crop(out, crop)


def timed(fn, repeats: int, device: torch.device) -> tuple[float, torch.Tensor]:
    """Minimum wall time of ``fn()`` over ``repeats`` runs after a warm-up, and its last output."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_one(label: str, kind: str, path: Path, problem, device: torch.device, repeats: int) -> tuple:
    crop = problem.crop
    config = get_method(kind).make_config({"checkpoint": str(path), "crop": max(crop)})
    recon = build(kind, config)
    op = problem.operator(False).to(device)
    y = problem.y.to(device)

    def ours():
        with torch.no_grad():
            return recon(y, op)

    model = model_store.load_model(path, kind, device)

    def theirs():
        with torch.inference_mode():
            return fastmri_direct(kind, model, y, op.mask, crop)

    t_ours, x = timed(ours, repeats, device)
    t_theirs, ref = timed(theirs, repeats, device)
    image = to_magnitude(x[0], crop)
    diff = float((torch.from_numpy(image) - ref.abs().cpu()).abs().max() / ref.abs().max().clamp_min(1e-30))
    ssim = compute_metrics(problem.target, image)["ssim"] if problem.target is not None else float("nan")
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return (label, device.type, params, t_ours, t_theirs, diff, t_ours / t_theirs, ssim)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", action="append", choices=("unet", "varnet", "none"),
                   help="official architectures with random weights (default: varnet and unet)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = p.parse_args()
    if args.smoke:
        args.repeats, args.official = 1, ["none"]
    if args.threads:
        torch.set_num_threads(args.threads)
    official = [k for k in (args.official or ["varnet", "unet"]) if k != "none"]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])

    volume = open_volume("sample:knee,size=64,slices=3" if args.smoke else "sample:knee")
    sl = volume.read_slice(volume.num_slices // 2)
    notes, models = [], []
    for kind in kind_names():
        for anatomy in ckpts.ANATOMIES:
            path = model_store.shipped_path(kind, anatomy)
            if path.is_file():
                models.append((f"{kind}_{anatomy} (shipped)", kind, path))
            else:
                notes.append(f"skipped {path}: not trained yet (see README, 'Trained networks')")
    tmp = Path(tempfile.mkdtemp(prefix="bench-trained-"))
    for kind in official:
        path = tmp / f"{kind}_official_random.pt"
        ckpts.random_checkpoint(kind, dict(get_network(kind).official_arch), path, seed=0)
        models.append((f"{kind} official arch (random)", kind, path))

    print(f"sample:knee slice {sl.meta.index}  {sl.shape[0]}x{sl.shape[1]}  {sl.num_coils} coils  mask random 4x seed 0  "
          f"torch {torch.__version__}  threads {torch.get_num_threads()}  cpus {os.cpu_count()}  "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'model':<32}{'device':>7}{'Mparams':>9}{'explorer s':>12}{'fastmri s':>11}{'max |diff|':>12}{'ratio':>7}{'SSIM':>8}")
    for device in devices:
        problem = prepare(sl, MaskConfig("random", 4, seed=0), device)
        for label, kind, path in models:
            row = bench_one(label, kind, path, problem, device, args.repeats)
            print(f"{row[0]:<32}{row[1]:>7}{row[2]:>9.2f}{row[3]:>12.3f}{row[4]:>11.3f}{row[5]:>12.2e}{row[6]:>7.3f}{row[7]:>8.4f}")
            model_store.clear_cache()
    for note in notes:
        print(note)
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
