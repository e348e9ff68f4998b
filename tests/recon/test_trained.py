"""Trained networks (U-net, E2E VarNet): fastMRI equivalence, checkpoint loading and safety, resolution."""

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fastmri.data.transforms import UnetDataTransform, VarNetDataTransform

from explorer.errors import ExplorerError
from explorer.physics import Operator, center_crop, fft2c
from explorer.recon import checkpoints as ckpts
from explorer.recon import model_store
from explorer.recon.base import build, get_method
from explorer.recon.networks import get_network, kind_names
from explorer.recon.trained import checkpoint_anatomy, describe, make_recon
from tests.conftest import TINY_ARCH, phantom, smooth_maps

H, W, CROP = 40, 36, 32


def _data(coils=4, h=H, w=W):
    """Masked k-space ``(1, C, H, W)`` of a phantom and its column mask ``(1, 1, 1, W)``."""
    mask = torch.zeros(1, 1, 1, w, dtype=torch.bool)
    mask[..., 1::3] = True
    mask[..., w // 2 - 3 : w // 2 + 3] = True
    image = phantom(h, w)
    k = fft2c(smooth_maps(coils, h, w) * image if coils > 1 else image[None])[None]
    return k * mask, mask


def _recon(name, path, crop=CROP):
    return build(name, get_method(name).make_config({"checkpoint": str(path), "crop": crop}))


@pytest.mark.parametrize("coils", [1, 4])
def test_unet_matches_fastmri_transform_and_model(tiny_checkpoints, coils):
    y, mask = _data(coils)
    out = _recon("unet", tiny_checkpoints["unet"])(y, Operator(mask))
    assert out.shape == (1, H, W) and out.dtype == torch.complex64
    # fastMRI: UnetDataTransform on the masked k-space, the model, de-normalisation (UnetModule)
    kspace = y[0, 0].numpy() if coils == 1 else y[0].numpy()
    sample = UnetDataTransform("singlecoil" if coils == 1 else "multicoil")(
        kspace, None, np.zeros((CROP, CROP), np.float32), {}, "f.h5", 0)
    model = model_store.load_model(tiny_checkpoints["unet"], "unet")
    with torch.no_grad():
        ref = model(sample.image[None, None])[0, 0] * sample.std + sample.mean
    assert torch.equal(center_crop(out[0].real, (CROP, CROP)), ref)
    assert (out.imag == 0).all()
    ring = out[0].abs().clone()
    ring[(H - CROP) // 2 : (H + CROP) // 2, (W - CROP) // 2 : (W + CROP) // 2] = 0
    assert (ring == 0).all()  # zero outside the crop


def test_varnet_matches_fastmri_transform_and_model(tiny_checkpoints):
    y, mask = _data(4)
    out = _recon("varnet", tiny_checkpoints["varnet"])(y, Operator(mask))
    attrs = {"padding_left": 0, "padding_right": W, "recon_size": (CROP, CROP), "max": 1.0}
    sample = VarNetDataTransform()(y[0].numpy(), mask.reshape(W).numpy().astype(np.float32), None, attrs, "f.h5", 0)
    model = model_store.load_model(tiny_checkpoints["varnet"], "varnet")
    with torch.no_grad():
        ref = model(sample.masked_kspace[None], sample.mask[None], sample.num_low_frequencies)[0]
    assert torch.equal(center_crop(out[0].real, (CROP, CROP)), center_crop(ref, (CROP, CROP)))
    assert out[0, 0].abs().sum() == 0 and out[0, :, 0].abs().sum() == 0


def test_varnet_accepts_2d_masks(tiny_checkpoints):
    y, _ = _data(4, 32, 32)
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(1, 1, 32, 32, generator=g) < 0.3
    mask[..., 12:20, 12:20] = True
    x = _recon("varnet", tiny_checkpoints["varnet"])(y * mask, Operator(mask))
    assert torch.isfinite(x.real).all() and x.abs().sum() > 0


@pytest.mark.parametrize("name", ["unet", "varnet"])
def test_gradient_flows_and_shared_model_is_untouched(tiny_checkpoints, name):
    y, mask = _data(4)
    model = model_store.load_model(tiny_checkpoints[name], name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    y = y.clone().requires_grad_(True)
    x = _recon(name, tiny_checkpoints[name])(y, Operator(mask))
    (g,) = torch.autograd.grad(x.abs().pow(2).sum(), y)
    assert torch.isfinite(torch.view_as_real(g)).all() and g.abs().sum() > 0
    assert (g[..., ~mask[0, 0, 0]] == 0).all()  # unsampled entries do not enter the reconstruction
    assert model_store.load_model(tiny_checkpoints[name], name) is model and not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_output_without_gradients_can_enter_a_later_backward(tiny_checkpoints):
    """Outputs computed without gradients (inference mode inside) are ordinary tensors (attack targets)."""
    y, mask = _data(4)
    recon = _recon("varnet", tiny_checkpoints["varnet"])
    with torch.no_grad():
        reference = recon(y, Operator(mask))
    assert not reference.is_inference()
    e = torch.zeros_like(y, requires_grad=True)
    loss = (recon(y + e, Operator(mask)) - reference).abs().pow(2).sum() + (reference.abs() * e.abs().sum()).sum()
    loss.backward()
    assert torch.isfinite(e.grad.real).all()


def test_deep_copy_with_trainable_parameters_gets_gradients(tiny_checkpoints):
    """Test-time training: a deep copy of the cached model, made trainable, gets parameter gradients."""
    import copy

    y, mask = _data(4)
    shared = model_store.load_model(tiny_checkpoints["unet"], "unet")
    model = copy.deepcopy(shared).requires_grad_(True)
    x = make_recon("unet", model, CROP)(y, Operator(mask))
    x.abs().sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.grad is None and not p.requires_grad for p in shared.parameters())


def _meta_state_dict(kind, arch):
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        return ckpts.build_model(kind, arch).state_dict()


@pytest.mark.parametrize("kind", ["unet", "varnet"])
def test_official_architectures_are_recognised(kind):
    sd = _meta_state_dict(kind, dict(get_network(kind).official_arch))
    assert ckpts.recognise(sd) == (kind, dict(get_network(kind).official_arch))
    prefixed = {f"{kind}.{k}": v for k, v in sd.items()}
    prefixed["loss.w"] = torch.ones(1, 1, 7, 7)  # VarNetModule's SSIM window buffer
    assert ckpts.recognise(ckpts._strip_prefixes(prefixed)) == (kind, dict(get_network(kind).official_arch))


def test_official_varnet_file_loads_and_reconstructs(tmp_path):
    """A published-style VarNet state dict (12 cascades, chans 18, pools 4, sens 8/4) through the file path."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        official = ckpts.build_model("varnet", dict(get_network("varnet").official_arch))
    torch.save(official.state_dict(), tmp_path / "varnet_knee_state_dict.pt")
    ckpt = ckpts.load_checkpoint(tmp_path / "varnet_knee_state_dict.pt", "varnet")
    assert ckpt.arch == dict(get_network("varnet").official_arch) and ckpt.card == {}
    y, mask = _data(4, 32, 32)
    x = _recon("varnet", tmp_path / "varnet_knee_state_dict.pt")(y, Operator(mask))
    with torch.no_grad():
        ref = official.eval()(torch.view_as_real(y), mask[..., None], None)
    assert torch.equal(x[0].real, ref[0])


@pytest.mark.parametrize("kind,arch", [
    ("unet", {"chans": 8, "num_pool_layers": 3}),
    ("unet", {"in_chans": 2, "out_chans": 2, "chans": 4, "num_pool_layers": 2}),
    ("varnet", {"num_cascades": 3, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 3}),
])
def test_plain_and_lightning_files_load_through_the_same_path(tmp_path, kind, arch):
    model = ckpts.build_model(kind, arch)
    expected = {**get_network(kind).default_arch, **arch}
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    torch.save({"state_dict": {**{f"{kind}.{k}": v for k, v in model.state_dict().items()}, "loss.w": torch.ones(1)},
                "epoch": 3}, tmp_path / "lightning.pt")
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dataparallel.pt")
    for name in ("plain.pt", "lightning.pt", "dataparallel.pt"):
        ckpt = ckpts.load_checkpoint(tmp_path / name)
        assert (ckpt.kind, ckpt.arch) == (kind, expected)
        loaded = ckpts.model_from_checkpoint(ckpt)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    if expected.get("in_chans", 1) != 1:  # loads, but the explorer's U-net is magnitude in, magnitude out
        with pytest.raises(ExplorerError, match="2 input / 2 output channels"):
            _recon("unet", tmp_path / "plain.pt")


def test_mismatches_are_clear_one_line_errors(tmp_path, tiny_checkpoints):
    with pytest.raises(ExplorerError, match=r"holds a unet checkpoint, not a varnet"):
        model_store.load_model(tiny_checkpoints["unet"], "varnet")
    with pytest.raises(ExplorerError, match=r"holds a varnet checkpoint"):
        _recon("unet", tiny_checkpoints["varnet"])
    payload = torch.load(tiny_checkpoints["unet"], weights_only=True)
    payload["card"]["architecture"]["kwargs"]["chans"] = 32
    torch.save(payload, tmp_path / "liar.pt")
    with pytest.raises(ExplorerError, match=r"card says chans=32 but the weights have chans=4"):
        ckpts.load_checkpoint(tmp_path / "liar.pt")
    sd = ckpts.load_checkpoint(tiny_checkpoints["varnet"]).state_dict
    del sd["cascades.1.dc_weight"]
    torch.save(sd, tmp_path / "incomplete.pt")
    with pytest.raises(ExplorerError, match=r"weights do not fit varnet\(.*1 missing \(e\.g\. cascades\.1\.dc_weight\)") as err:
        model_store.load_model(tmp_path / "incomplete.pt", "varnet")
    assert "\n" not in str(err.value)
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ExplorerError, match=r"not a U-net or E2E VarNet state dict"):
        ckpts.load_checkpoint(tmp_path / "other.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ExplorerError, match=r"holds no state dict"):
        ckpts.load_checkpoint(tmp_path / "list.pt")


class _Evil:
    """Unpickling calls ``Path.touch(marker)``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("layout", ["torch_zip", "pickle_protocol_2", "pickle_protocol_4", "inside_state_dict"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, layout):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    if layout == "torch_zip":
        torch.save({"x": _Evil(marker)}, path)
    elif layout == "inside_state_dict":
        torch.save({"state_dict": {"down_sample_layers.0.layers.0.weight": _Evil(marker)}}, path)
    else:
        path.write_bytes(pickle.dumps({"x": _Evil(marker)}, protocol=int(layout[-1])))
    assert not marker.exists()
    with pytest.raises(ExplorerError, match=r"evil\.pt is not a plain state dict/checkpoint; refused"):
        model_store.load_model(path, "unet")
    assert not marker.exists()
    with pytest.raises(ExplorerError, match="refused"):
        _recon("unet", path)
    assert not marker.exists()


def test_missing_and_non_torch_files(tmp_path, multicoil_file):
    with pytest.raises(ExplorerError, match=r"no such unet checkpoint file"):
        _recon("unet", tmp_path / "nope.pt")
    (tmp_path / "text.pt").write_text("hello, I am not a checkpoint")
    with pytest.raises(ExplorerError, match=r"text\.pt is not a"):
        ckpts.load_checkpoint(tmp_path / "text.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ExplorerError, match=r"empty\.pt is not a readable PyTorch"):
        ckpts.load_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(ExplorerError, match=r"multi\.h5 is not a PyTorch checkpoint file"):
        ckpts.load_checkpoint(multicoil_file)
    good = ckpts.random_checkpoint("unet", TINY_ARCH["unet"], tmp_path / "good.pt")
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:2000])
    assert zipfile.is_zipfile(good)
    with pytest.raises(ExplorerError, match=r"truncated\.pt is not a readable PyTorch checkpoint file") as err:
        ckpts.load_checkpoint(tmp_path / "truncated.pt")
    assert "\n" not in str(err.value)


def test_half_precision_checkpoints_are_smaller_and_load_as_float32(tmp_path):
    full = ckpts.random_checkpoint("unet", {"chans": 16, "num_pool_layers": 2}, tmp_path / "full.pt", seed=3)
    half = ckpts.random_checkpoint("unet", {"chans": 16, "num_pool_layers": 2}, tmp_path / "half.pt", seed=3, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    a, b = ckpts.load_checkpoint(full), ckpts.load_checkpoint(half)
    assert b.card["weights_dtype"] == "float16" and a.card["weights_dtype"] == "float32"
    for k, v in b.state_dict.items():
        assert v.dtype == torch.float32
        torch.testing.assert_close(v, a.state_dict[k].half().float(), rtol=0, atol=0)
    y, mask = _data(4)
    xa, xb = _recon("unet", full)(y, Operator(mask)), _recon("unet", half)(y, Operator(mask))
    assert (xa - xb).abs().max() < 0.02 * xa.abs().max()
    assert (tmp_path / "half.json").is_file()


def test_cache_reloads_a_rewritten_file(tmp_path):
    path = ckpts.random_checkpoint("unet", TINY_ARCH["unet"], tmp_path / "m.pt", seed=0)
    first = model_store.load_model(path, "unet")
    assert model_store.load_model(path, "unet") is first
    ckpts.random_checkpoint("unet", TINY_ARCH["unet"], tmp_path / "m.pt", seed=1)
    second = model_store.load_model(path, "unet")
    assert second is not first
    assert not torch.equal(next(first.parameters()), next(second.parameters()))


def test_auto_resolves_to_the_shipped_checkpoint_of_the_data_anatomy(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CHECKPOINT_DIR", str(tmp_path))
    ckpts.random_checkpoint("unet", TINY_ARCH["unet"], tmp_path / "unet_knee.pt", card={"data": {"anatomy": "knee"}})
    spec = get_method("unet")
    assert spec.config_cls().checkpoint == "auto"
    assert spec.make_config({}, anatomy="brain").checkpoint == "brain"
    assert spec.make_config({}, anatomy="knee").checkpoint == "knee"
    assert spec.make_config({}, anatomy=None).checkpoint == "knee"
    assert spec.make_config({"checkpoint": "brain"}, anatomy="knee").checkpoint == "brain"  # the user's value wins
    assert {p.name: p.default for p in spec.params("brain")}["checkpoint"] == "brain"
    assert model_store.resolve("auto", "unet") == model_store.resolve("knee", "unet") == tmp_path / "unet_knee.pt"
    y, mask = _data(4)
    for config in (spec.config_cls(), spec.make_config({}, anatomy="knee")):
        x = spec.factory(config)(y, Operator(mask))
        assert torch.isfinite(x.real).all()
    with pytest.raises(ExplorerError) as err:
        spec.factory(spec.make_config({}, anatomy="brain"))
    message = str(err.value)
    assert "brain checkpoint" in message and "missing" in message and "\n" not in message
    assert model_store.train_command("unet", "brain") in message


def test_describe_names_the_checkpoint_and_the_anatomy_shift(tmp_path, monkeypatch, tiny_checkpoints):
    monkeypatch.setenv("EXPLORER_CHECKPOINT_DIR", str(tmp_path))
    spec = get_method("varnet")
    knee_on_brain = spec.make_config({"checkpoint": "knee"})
    assert checkpoint_anatomy(knee_on_brain) == "knee"
    assert describe(knee_on_brain, "brain") == "knee checkpoint · on brain data: anatomy shift"
    assert describe(spec.make_config({}, anatomy="brain"), "brain") == "brain checkpoint · on brain data"
    assert describe(knee_on_brain, None) == "knee checkpoint"
    by_path = spec.make_config({"checkpoint": str(tiny_checkpoints["varnet"])})
    assert checkpoint_anatomy(by_path) == "knee"
    assert describe(by_path, "brain") == "random-weights knee checkpoint varnet_tiny.pt · on brain data: anatomy shift"
    sd = ckpts.load_checkpoint(tiny_checkpoints["varnet"]).state_dict
    torch.save(sd, tmp_path / "external.pt")
    external = spec.make_config({"checkpoint": str(tmp_path / "external.pt")})
    assert checkpoint_anatomy(external) is None
    assert describe(external, "knee") == "external checkpoint external.pt (anatomy unknown)"


def test_readme_lists_the_commands_that_train_the_shipped_checkpoints():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "## Trained networks" in readme
    for kind in kind_names():
        for anatomy in ckpts.ANATOMIES:
            assert model_store.train_command(kind, anatomy) in readme.replace("\\\n    ", "")


def test_cache_token_follows_the_checkpoint_file(tmp_path):
    from explorer.recon.trained import file_token
    from explorer.recon.unet import UnetConfig

    path = ckpts.random_checkpoint("unet", {"chans": 4, "num_pool_layers": 2}, tmp_path / "u.pt", seed=0)
    config = UnetConfig(checkpoint=str(path))
    first = file_token(config)
    assert get_method("unet").cache_token(config) == first
    ckpts.random_checkpoint("unet", {"chans": 4, "num_pool_layers": 2}, path, seed=1)  # retrained weights
    os.utime(path, ns=(first[1] + 10**9, first[1] + 10**9))
    assert file_token(config) != first


def test_architecture_sizes_are_bounded_before_any_model_is_built(tmp_path, tiny_checkpoints):
    from explorer.recon import checkpoints as c

    sd = torch.load(tiny_checkpoints["varnet"], weights_only=True)["state_dict"]
    sd["cascades.99999.eta"] = torch.ones(1)  # 13 KB of file claiming 100,000 cascades
    torch.save(sd, tmp_path / "evil.pt")
    with pytest.raises(ExplorerError, match="num_cascades = 100000 is past the limit"):
        c.model_from_checkpoint(c.load_checkpoint(tmp_path / "evil.pt", "varnet"))
    with pytest.raises(ExplorerError, match="chans = 100000"):
        c.build_model("unet", {"chans": 100000})
    with pytest.raises(ExplorerError, match="bottleneck"):
        c.build_model("unet", {"chans": 1024, "num_pool_layers": 8})
    for kind in ("unet", "varnet"):  # the published architectures stay inside the limits
        assert c.check_arch(kind, dict(get_network(kind).official_arch)) == dict(get_network(kind).official_arch)


def test_model_cache_is_bounded_by_bytes_not_count(tmp_path, monkeypatch):
    paths = [ckpts.random_checkpoint("unet", TINY_ARCH["unet"], tmp_path / f"m{i}.pt", seed=i) for i in range(3)]
    model_store.clear_cache()
    size = model_store.module_bytes(model_store.load_model(paths[0], "unet"))
    model_store.clear_cache()
    monkeypatch.setenv("EXPLORER_MODEL_CACHE_MB", str(2.5 * size / 2**20))  # room for two models
    first, second = (model_store.load_model(p, "unet") for p in paths[:2])
    assert len(model_store.MODELS) == 2 and model_store.MODELS.bytes == 2 * size
    assert model_store.load_model(paths[0], "unet") is first  # now the most recently used
    model_store.load_model(paths[2], "unet")  # evicts the least recently used: the second
    assert len(model_store.MODELS) == 2 and model_store.MODELS.bytes <= 2.5 * size
    assert model_store.load_model(paths[0], "unet") is first
    assert model_store.load_model(paths[1], "unet") is not second  # reloaded
    monkeypatch.setenv("EXPLORER_MODEL_CACHE_MB", "0")  # a model larger than the limit is served, not kept
    model_store.clear_cache()
    assert model_store.load_model(paths[0], "unet") is not None and len(model_store.MODELS) == 0
    monkeypatch.setenv("EXPLORER_MODEL_CACHE_MB", "lots")
    with pytest.raises(ExplorerError, match="EXPLORER_MODEL_CACHE_MB"):
        model_store.load_model(paths[1], "unet")
    model_store.clear_cache()
