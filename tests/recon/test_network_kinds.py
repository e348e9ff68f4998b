"""Trained-network kinds are a registry: a third network, declared here and touching no project file, is built,
recognised from its weights, reconstructs, is trained by the ``train`` command and adapted at test time."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from explorer.cli.main import main
from explorer.data.sample import SampleSpec, write_sample
from explorer.engine import MethodInstance, prepare, run_method
from explorer.masks import MaskConfig
from explorer.recon import base, checkpoints, networks
from explorer.recon.networks import NetworkKind, Shipped, get_network, network_kinds
from explorer.recon.trained import checkpoint_field, crop_field, register_network
from explorer.recon.unet import UNET, UnetRecon
from explorer.robustness import ttt


class ToyNet(nn.Module):
    """Two 3x3 convolutions with a residual: magnitude in, magnitude out."""

    def __init__(self, width: int = 4, depth: int = 2):
        super().__init__()
        layers = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        self.toy = nn.Sequential(*layers, nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x):
        return x + self.toy(x)



@dataclass(frozen=True)
class ToyConfig:
    checkpoint: str = checkpoint_field("toy")
    crop: int = crop_field()


class ToyRecon(UnetRecon):
    """Fed as the U-net is (normalised zero-filled magnitude), no pooling."""

    label = "Toy"

    def _pool_count(self, module: nn.Module) -> int:
        return 0


def _recognise(state_dict):
    if "toy.0.weight" not in state_dict:
        return None
    convs = sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("toy.") and k.endswith(".weight")})
    return {"width": int(state_dict["toy.0.weight"].shape[0]), "depth": len(convs)}


TOY = NetworkKind(
    name="toynet", label="Toy net", description="A toy residual CNN (test of the network-kind registry).",
    build=ToyNet, default_arch={"width": 4, "depth": 2}, official_arch={"width": 4, "depth": 2},
    recognised=("width", "depth"), recognise=_recognise, key_prefixes=("toy.",), lightning_prefix="toynet.",
    recon=ToyRecon, config=ToyConfig, adapt_lr=1e-4, train_lr=1e-3, loss_name="l1 (normalised image)",
    flags={"width": ("width", "channels (default 4)"), "depth": ("depth", "convolutions (default 2)")},
    shipped=Shipped("--width 4", "--steps 10"), tiny={"width": 2, "depth": 2},
    input_side=lambda arch: (0, "reference"), example=UNET.example, criterion=UNET.criterion,
)


@pytest.fixture
def toy_kind():
    """The toy kind registered for one test (and removed afterwards: other tests see the built-in kinds only)."""
    register_network(TOY)
    try:
        yield TOY
    finally:
        networks.NETWORKS.pop(TOY.name, None)
        base.REGISTRY.pop(TOY.name, None)


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_data")
    write_sample(root / "train", SampleSpec("knee", 32, 2, 4, 1))
    return root


def test_the_builtin_kinds_are_the_fastmri_networks():
    assert [k.name for k in network_kinds()] == ["unet", "varnet"]
    for kind in network_kinds():
        assert base.get_method(kind.name).capabilities.weights
        assert base.get_method(kind.name).family == "trained"


def test_a_new_kind_is_a_method_a_checkpoint_format_and_a_training_target(toy_kind, volumes, tmp_path, capsys):
    assert get_network("toynet") is toy_kind and "toynet" in [m.name for m in base.available_methods()]
    assert base.get_method("toynet").capabilities.adapt_lr == 1e-4

    # checkpoints: saved, recognised from the weights alone (also under its Lightning prefix), loaded safely
    path = checkpoints.random_checkpoint("toynet", {"width": 3, "depth": 3}, tmp_path / "toy.pt", seed=0)
    loaded = checkpoints.load_checkpoint(path)
    assert (loaded.kind, loaded.arch) == ("toynet", {"width": 3, "depth": 3})
    plain = {f"toynet.{k}": v for k, v in loaded.state_dict.items()}
    assert checkpoints.recognise(checkpoints._strip_prefixes(plain)) == ("toynet", {"width": 3, "depth": 3})

    # reconstruction through the engine, like every method
    volume_slice = next(iter(sorted((volumes / "train").glob("*.h5"))))
    from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415

    problem = prepare(FastMRIVolume(volume_slice).read_slice(0), MaskConfig("random", 4, seed=0), torch.device("cpu"))
    instance = MethodInstance.of("toynet", {"checkpoint": str(path)})
    result = run_method(problem, instance)
    assert result.image.shape == (32, 32) and result.metrics is not None

    # the train command: its flags come from the kind
    out = tmp_path / "trained.pt"
    code = main(["train", "--model", "toynet", "--data", str(volumes / "train"), "--width", "2", "--steps", "3",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["architecture"] == {"model": "toynet", "kwargs": {"width": 2, "depth": 2}}
    assert card["loss"] == "l1 (normalised image)" and card["lr"] == 1e-3 and card["steps"] == 3
    assert main(["train", "--model", "unet", "--data", str(volumes / "train"), "--width", "2", "--steps", "1",
                 "--out", str(tmp_path / "u.pt")]) == 2
    assert "--width applies to the Toy net only" in capsys.readouterr().err

    # test-time training adapts it (a network with weights, whatever its kind)
    adapted = ttt.test_time_train(problem, MethodInstance.of("toynet", {"checkpoint": str(out)}), ttt.TTTConfig(steps=3))
    assert adapted.steps >= 1 and adapted.after.image.shape == (32, 32)


def test_unknown_kinds_are_one_line_errors():
    with pytest.raises(Exception, match="unknown model kind 'nope'"):
        get_network("nope")
