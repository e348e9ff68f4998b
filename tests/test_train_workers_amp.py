"""Training with DataLoader workers (``--workers``) and bfloat16 autocast (``--amp``): workers build the same examples,
bf16 trains finite steps and saves a float32 checkpoint that loads, bad values are one-line errors (tiny, CPU)."""

import json

import numpy as np
import pytest
import torch

from explorer.cli.main import main
from explorer.data.sample import SampleSpec, write_sample
from explorer.errors import ExplorerError
from explorer.physics import Operator
from explorer.recon import checkpoints as ckpts
from explorer.recon import model_store
from explorer.training.loader import batches, step_seed
from explorer.training.train import TrainOptions, train
from tests.conftest import TINY_ARCH


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Tiny knee volumes (32x32, 2 slices each, 2 and 4 coils): 4 training slices."""
    root = tmp_path_factory.mktemp("data")
    write_sample(root / "train", SampleSpec("knee", 32, 2, 2, 1))
    write_sample(root / "train", SampleSpec("knee", 32, 2, 4, 2))
    return root / "train"


def _options(dataset, out, kind="unet", **kw):
    return TrainOptions(model=kind, data=dataset, out=out, arch=TINY_ARCH[kind], **{"batch_size": 2, **kw})


def _weights(path):
    return ckpts.load_checkpoint(path).state_dict  # weights_only loading


def test_workers_train_on_the_same_examples_as_the_training_process(dataset, tmp_path):
    """4 slices, batch 2, 5 steps: three epochs' permutations; loss "both" also attaches the ESPIRiT maps."""
    inline = train(_options(dataset, tmp_path / "w0.pt", steps=5, loss="both"))
    workers = train(_options(dataset, tmp_path / "w2.pt", steps=5, loss="both", workers=2))
    assert workers.losses == inline.losses and np.isfinite(inline.losses).all()
    a, b = _weights(inline.checkpoint), _weights(workers.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "amp" not in inline.card and "amp" not in workers.card  # the defaults write the card as before
    # stopped at step 3 and resumed with workers: the schedule picks up mid-epoch, where the loop is
    resumed = _options(dataset, tmp_path / "r.pt", steps=5, loss="both", workers=1)
    assert train(resumed, progress=lambda step, total, info: step == 3).steps == 3
    resumed.resume = True
    assert train(resumed).losses == inline.losses


def test_the_schedule_is_the_loops_shuffling():
    rng = torch.Generator().manual_seed(7)
    steps = list(batches(5, 2, rng.get_state(), 0, 0, 6))
    assert [s for s, _ in steps] == list(range(6)) and [len(i) for _, i in steps] == [2, 2, 1, 2, 2, 1]
    first, second = torch.randperm(5, generator=rng).tolist(), torch.randperm(5, generator=rng).tolist()
    assert [i for _, idx in steps[:3] for i in idx] == first and [i for _, idx in steps[3:] for i in idx] == second
    epoch_two = torch.Generator().manual_seed(7)
    torch.randperm(5, generator=epoch_two)  # the state saved at the end of epoch one (a resumed run starts from it)
    assert list(batches(5, 2, epoch_two.get_state(), 4, 3, 6)) == steps[4:]
    assert step_seed(0, 1, 0) != step_seed(0, 1, 1) != step_seed(0, 2, 1)


@pytest.mark.parametrize("kind,lr", [("unet", None), ("varnet", 3e-3)])
def test_bf16_autocast_trains_finite_steps_and_saves_a_checkpoint_that_loads(dataset, tmp_path, kind, lr):
    result = train(_options(dataset, tmp_path / f"{kind}.pt", kind, steps=2, lr=lr, amp="bf16"))
    assert len(result.losses) == 2 and np.isfinite(result.losses).all()
    assert result.card["amp"] == "bf16" and json.loads(result.checkpoint.with_suffix(".json").read_text())["amp"] == "bf16"
    payload = torch.load(result.checkpoint, weights_only=True)
    assert all(v.dtype == torch.float32 for v in payload["state_dict"].values() if v.is_floating_point())
    model = model_store.load_model(result.checkpoint, kind)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415
    from explorer.recon.base import build, get_method  # noqa: PLC0415

    sl = FastMRIVolume(next(dataset.glob("*c4*.h5"))).read_slice(0)
    mask = torch.zeros(1, 1, 1, 32, dtype=torch.bool)
    mask[..., ::2] = True
    x = build(kind, get_method(kind).make_config({"checkpoint": str(result.checkpoint)}))(sl.kspace[None] * mask, Operator(mask))
    assert x.shape == (1, 32, 32) and torch.isfinite(x.real).all()
    if kind == "unet":  # autocast really ran: the same weights and examples give another float32 loss
        full = train(_options(dataset, tmp_path / "fp32.pt", kind, steps=1, lr=lr))
        assert full.losses[0] != result.losses[0] and full.losses[0] == pytest.approx(result.losses[0], rel=0.05)


def test_bad_values_are_refused(dataset, tmp_path):
    with pytest.raises(ExplorerError, match="--amp must be one of off, bf16, got 'fp16'"):
        train(_options(dataset, tmp_path / "a.pt", steps=1, amp="fp16"))
    with pytest.raises(ExplorerError, match="--workers must be >= 0, got -1"):
        train(_options(dataset, tmp_path / "b.pt", steps=1, workers=-1))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args,message", [
    (["--workers", "-1"], "--workers must be >= 0, got -1"),
    (["--workers", "two"], "invalid int value: 'two'"),
    (["--amp", "fp16"], "invalid choice: 'fp16'"),
])
def test_cli_bad_workers_and_amp_exit_2_with_one_line(capsys, dataset, tmp_path, args, message):
    code, out, err = run(capsys, "train", "--model", "unet", "--data", dataset, *args, "--out", tmp_path / "x.pt")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err
    assert not (tmp_path / "x.pt").exists()


def test_cli_trains_with_workers_and_bf16(capsys, dataset, tmp_path):
    out = tmp_path / "unet.pt"
    code, stdout, err = run(capsys, "train", "--model", "unet", "--data", dataset, "--chans", "4", "--pools", "2",
                            "--steps", "2", "--batch-size", "2", "--workers", "2", "--amp", "bf16", "--out", out)
    assert code == 0, err
    assert f"wrote {out}" in stdout and json.loads(out.with_suffix(".json").read_text())["amp"] == "bf16"
