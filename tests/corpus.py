"""A generated corpus of bad inputs: data files and checkpoints a hostile or careless user could give.

:func:`volumes` writes the data files, :func:`checkpoints` the checkpoint files, :func:`zoo_manifests` zoo folders; all return
:class:`Case` s. ``must_fail`` cases must be refused with a one-line error; the others (odd but
readable files, such as all-zero k-space or a 1x1 slice) may also succeed, but never crash. Tests
run every case through the CLI (``tests/test_bad_inputs.py``) and the app, by upload and from the
data directory (``tests/app/test_bad_inputs_app.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from explorer.data.fastmri import write_volume
from explorer.data.header import build_header
from explorer.data.ismrmrd_write import write_stanford_like
from explorer.physics import fft2c


@dataclass(frozen=True)
class Case:
    """One bad input: ``path`` on disk, what it is, and whether it must be refused."""

    name: str
    path: Path
    must_fail: bool = True


def _kspace(slices: int = 2, coils: int = 2, h: int = 32, w: int = 32) -> np.ndarray:
    """A small smooth multicoil k-space ``(S, C, H, W)`` complex64."""
    yy, xx = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
    image = ((yy / 0.8) ** 2 + (xx / 0.6) ** 2 < 1).astype(np.float32)
    coil = np.stack([np.exp(-((yy - np.sin(a)) ** 2 + (xx - np.cos(a)) ** 2)) for a in np.arange(coils) * 2.0])
    k = fft2c(torch.from_numpy((coil * image).astype(np.complex64))).numpy()
    return np.stack([k * (1 + 0.1 * s) for s in range(slices)]).astype(np.complex64)


def _raw(path: Path, **datasets) -> Path:
    """An HDF5 file holding exactly ``datasets`` (name -> array, or ``None`` for a group)."""
    with h5py.File(path, "w") as hf:
        for key, value in datasets.items():
            if value is None:
                hf.create_group(key)
            else:
                hf.create_dataset(key, data=value)
    return path


def _with(good: Path, path: Path, edit) -> Path:
    """A copy of ``good`` changed in place by ``edit(h5py.File)``."""
    path.write_bytes(good.read_bytes())
    with h5py.File(path, "r+") as hf:
        edit(hf)
    return path


def _replace(hf: h5py.File, key: str, value) -> None:
    del hf[key]
    hf.create_dataset(key, data=value)


def _header(xml: str):
    return lambda hf: _replace(hf, "ismrmrd_header", np.bytes_(xml))


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                  + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
                  + ']><ismrmrdHeader>&i;</ismrmrdHeader>')
EXTERNAL_ENTITY = ('<?xml version="1.0"?><!DOCTYPE h [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                   '<ismrmrdHeader>&x;</ismrmrdHeader>')


def volumes(folder: Path) -> list[Case]:
    """Write the bad data files into ``folder`` (created); returns their cases."""
    folder.mkdir(parents=True, exist_ok=True)
    k = _kspace()
    good = write_volume(folder / ".good.tmp", k)
    target = np.abs(np.fft.ifft2(k)).sum(1).astype(np.float32)
    cases: list[Case] = []

    def add(name: str, path: Path, must_fail: bool = True) -> None:
        cases.append(Case(name, path, must_fail))

    (folder / "text.h5").write_text("this is not HDF5\n")
    add("not HDF5", folder / "text.h5")
    (folder / "empty.h5").write_bytes(b"")
    add("empty file", folder / "empty.h5")
    (folder / "truncated.h5").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    add("truncated HDF5", folder / "truncated.h5")
    add("no kspace", _raw(folder / "no_kspace.h5", reconstruction_rss=target))
    add("kspace is a group", _raw(folder / "kspace_group.h5", kspace=None))
    add("kspace 2D", _raw(folder / "kspace_2d.h5", kspace=k[0, 0]))
    add("kspace 5D", _raw(folder / "kspace_5d.h5", kspace=k[None]))
    add("kspace integer", _raw(folder / "kspace_int.h5", kspace=np.ones((2, 2, 8, 8), np.int32)))
    add("kspace real", _raw(folder / "kspace_real.h5", kspace=np.abs(k)))
    add("kspace bytes", _raw(folder / "kspace_bytes.h5", kspace=np.array([b"abc", b"def"])))
    add("kspace empty", _raw(folder / "kspace_empty.h5", kspace=np.zeros((0, 2, 8, 8), np.complex64)))
    add("NaN k-space", write_volume(folder / "nan.h5", np.where(np.arange(32) == 3, np.nan, k).astype(np.complex64)))
    add("Inf k-space", write_volume(folder / "inf.h5", np.where(np.arange(32) == 3, np.inf, k).astype(np.complex64)))
    add("zero k-space", write_volume(folder / "zeros.h5", np.zeros_like(k)), must_fail=False)
    add("1x1 slice", _raw(folder / "one_pixel.h5", kspace=np.ones((1, 1, 1, 1), np.complex64)), must_fail=False)
    add("odd 7x5 slice", _raw(folder / "odd.h5", kspace=_kspace(1, 2, 7, 5)), must_fail=False)
    add("singlecoil 3x3", _raw(folder / "single_3x3.h5", kspace=_kspace(1, 1, 3, 3)[:, 0]), must_fail=False)
    with h5py.File(folder / "huge_declared.h5", "w") as hf:  # 6 KB on disk, 32 GB declared
        hf.create_dataset("kspace", shape=(16, 1, 16384, 16384), dtype=np.complex64, chunks=(1, 1, 64, 64))
    add("16x16384x16384 declared", folder / "huge_declared.h5")
    with h5py.File(folder / "many_coils.h5", "w") as hf:
        hf.create_dataset("kspace", shape=(1, 100_000, 32, 32), dtype=np.complex64, chunks=(1, 1, 32, 32))
    add("100,000 coils declared", folder / "many_coils.h5")
    add("short reference", _with(good, folder / "short_ref.h5", lambda hf: hf.create_dataset(
        "reconstruction_rss", data=target[:1])))
    add("2D reference", _with(good, folder / "ref_2d.h5", lambda hf: hf.create_dataset(
        "reconstruction_rss", data=target[0])))
    add("NaN reference", _with(good, folder / "ref_nan.h5", lambda hf: hf.create_dataset(
        "reconstruction_rss", data=np.full_like(target, np.nan))))
    add("test mask of wrong length", _with(good, folder / "mask_short.h5", lambda hf: hf.create_dataset(
        "mask", data=np.ones(7, bool))))
    add("2D test mask", _with(good, folder / "mask_2d.h5", lambda hf: hf.create_dataset(
        "mask", data=np.ones((32, 32), bool))))
    add("header not XML", _with(good, folder / "header_text.h5", _header("<ismrmrdHeader><unclosed>")))
    add("header zero recon size", _with(good, folder / "header_zero.h5", _header(
        build_header((32, 32, 1), (0, 0, 1)))))
    add("header negative sizes", _with(good, folder / "header_negative.h5", _header(
        build_header((-32, 32, 1), (32, -5, 1)))))
    add("header without sizes", _with(good, folder / "header_empty.h5", _header("<ismrmrdHeader/>")))
    add("header billion laughs", _with(good, folder / "header_laughs.h5", _header(BILLION_LAUGHS)))
    add("header external entity", _with(good, folder / "header_xxe.h5", _header(EXTERNAL_ENTITY)))
    hybrid = np.moveaxis(_kspace(4, 2, 8, 6), 0, 1).copy()  # (C, Z, KY, KX)
    raw = write_stanford_like(folder / ".raw.tmp", hybrid)
    add("ISMRMRD missing acquisitions", write_stanford_like(folder / "ismrmrd_missing.h5", hybrid, drop=[(1, 2)]))

    def huge_raw(hf):
        records = hf["dataset/data"][:]
        records["head"]["active_channels"] = 60000
        records["head"]["number_of_samples"] = 60000
        hf["dataset/data"][:] = records

    add("ISMRMRD 60000 coils declared", _with(raw, folder / "ismrmrd_huge.h5", huge_raw))

    def far_slice(hf):
        rec = hf["dataset/data"][0]
        rec["head"]["idx"]["slice"] = 65000
        hf["dataset/data"][0] = rec

    add("ISMRMRD slice 65000", _with(raw, folder / "ismrmrd_far_slice.h5", far_slice))
    add("ISMRMRD without acquisitions", _raw(folder / "ismrmrd_xml_only.h5", **{"dataset/xml": np.array([b"<x/>"])}))
    good.unlink()
    raw.unlink()
    return cases


class _Hostile:
    """Pickles to a call of ``os.system`` (creating ``sentinel``) when unpickled without restrictions."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def checkpoints(folder: Path, good: dict[str, Path], sentinel: Path) -> list[Case]:
    """Write bad checkpoints into ``folder``; ``good`` maps ``"unet"``/``"varnet"`` to valid tiny ones.

    ``sentinel`` is the file the hostile pickle would create if it were ever unpickled.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str, path: Path) -> None:
        cases.append(Case(name, path))

    (folder / "text.pt").write_text("not a checkpoint")
    add("not a checkpoint", folder / "text.pt")
    (folder / "empty.pt").write_bytes(b"")
    add("empty checkpoint", folder / "empty.pt")
    data = good["varnet"].read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    add("truncated checkpoint", folder / "truncated.pt")
    torch.save({"state_dict": _Hostile(sentinel)}, folder / "hostile.pt")
    add("pickled code", folder / "hostile.pt")
    torch.save(_Hostile(sentinel), folder / "hostile_top.pt")
    add("pickled code at top level", folder / "hostile_top.pt")
    torch.save({}, folder / "empty_dict.pt")
    add("empty dict", folder / "empty_dict.pt")
    torch.save(torch.zeros(3), folder / "tensor.pt")
    add("a bare tensor", folder / "tensor.pt")
    state = torch.load(good["varnet"], weights_only=True)
    weights = dict(state.get("state_dict", state))
    torch.save({**weights, "cascades.99999.eta": torch.ones(1)}, folder / "cascades_99999.pt")
    add("VarNet with cascade 99999", folder / "cascades_99999.pt")
    torch.save({"down_sample_layers.0.layers.0.weight": torch.zeros(2000, 1, 3, 3)}, folder / "chans_2000.pt")
    add("U-net with 2000 channels", folder / "chans_2000.pt")
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()},
               folder / "nan_weights.pt")
    add("NaN weights", folder / "nan_weights.pt")
    return cases


def zoo_manifests(folder: Path, checkpoint: Path, outside: Path) -> list[Case]:
    """Zoo folders whose ``zoo.json`` is malformed or points outside the zoo; each must be refused with one line.

    Args:
        checkpoint: a valid checkpoint file (copied into each zoo where an entry needs one);
        outside: an existing file outside every zoo folder (escapes must not reveal that it exists).
    """
    import json  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    good = {"label": "m", "method": "unet", "checkpoint": "m.pt"}
    manifests = {
        "models not a list": {"models": 5},
        "models a string": {"models": "m.pt"},
        "entry a number": {"models": [1]},
        "entry a list": {"models": [["m.pt"]]},
        "entry without checkpoint": {"models": [{"label": "m", "method": "unet"}]},
        "checkpoint not a string": {"models": [{**good, "checkpoint": 3}]},
        "empty label": {"models": [{**good, "label": " "}]},
        "unknown method": {"models": [{**good, "method": "resnet"}]},
        "absolute checkpoint outside": {"models": [{**good, "checkpoint": str(outside)}]},
        "dotdot escape": {"models": [{**good, "checkpoint": os.path.relpath(outside, folder / "dotdot escape")}]},
        "absolute missing outside": {"models": [{**good, "checkpoint": str(outside.parent / "no-such.pt")}]},
        "symlink escape": {"models": [{**good, "checkpoint": "link.pt"}]},
        "missing inside": {"models": [{**good, "checkpoint": "gone.pt"}]},
        "not json": None,
        "wrong format": {},
    }
    cases = []
    for name, body in manifests.items():
        zoo = folder / name
        zoo.mkdir(parents=True)
        shutil.copyfile(checkpoint, zoo / "m.pt")
        if name == "symlink escape":
            (zoo / "link.pt").symlink_to(outside)
        text = "{not json" if body is None else json.dumps(
            body if name == "wrong format" else {"format": "mri-explorer/zoo", "version": 1, **body})
        (zoo / "zoo.json").write_text(text)
        cases.append(Case(name, zoo))
    return cases


def spec_files(folder: Path) -> list[Case]:
    """Study spec files a careless or hostile user could give ``study``; each must be refused with one line
    before any unit runs (every one of them names the embedded sample, so a late check would show as work done).
    """
    import json  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    base = {"data": [{"source": "sample:knee,slices=2,size=32,coils=2"}], "methods": ["zero_filled"]}

    def spec(**experiment) -> str:
        return json.dumps({**base, "experiments": [experiment]})

    texts: dict[str, bytes | str] = {
        "not utf-8": b"data: [sample:knee]\nmethods: [zero_filled]\nname: \xff\xfe\n",
        "larger than 1 MB": "# " + "x" * 1_100_000 + "\n" + json.dumps(base),
        "brackets 50000 deep": "data: " + "[" * 50_000 + "]" * 50_000,
        "block nesting 1300 deep": "".join(" " * i + "a:\n" for i in range(1300)),
        "settings a list": spec(attack=[0.08]),
        "settings a string": spec(attack="eps 0.08"),
        "steps 1.5": spec(attack={"steps": 1.5}),
        "seed .inf": "data: [{source: 'sample:knee,slices=2,size=32,coils=2'}]\nmethods: [zero_filled]\n"
                     "experiments: [{attack: {seed: .inf}}]\n",
        "eps nan": "data: [{source: 'sample:knee,slices=2,size=32,coils=2'}]\nmethods: [zero_filled]\n"
                   "experiments: [{attack: {eps: [.nan]}}]\n",
        "10000 budgets": spec(attack={"eps": [0.001 * (i + 1) / 10 for i in range(10_000)]}),
        "steps true": spec(attack={"steps": True}),
        "objective a number": spec(attack={"objective": 3}),
        "features shape bogus": spec(features={"shape": "bogus"}),
        "features sizes negative": spec(features={"sizes": [-5]}),
        "features sizes huge": spec(features={"sizes": [100_000]}),
        "features contrasts strings": spec(features={"contrasts": ["bright"]}),
        "features mode unknown": spec(features={"mode": "magic"}),
        "features seed a float": spec(features={"seed": 0.5}),
        "method config wrong type": json.dumps({**base, "methods": [{"method": "l1", "config": {"lam": [1]}}]}),
        "70 methods": json.dumps({**base, "methods": [f"m{i}=zero_filled" for i in range(70)]}),
        "a date as a value": "data: [{source: 'sample:knee'}]\nmethods: [zero_filled]\nname: 2026-12-05\n",
        "a number as a key": "data: [{source: 'sample:knee'}]\nmethods: [zero_filled]\n1: x\n",
        "deep settings": spec(attack={"eps": [[[[[[[[[0.08]]]]]]]]]}),
        "alias bomb": "methods: [zero_filled]\ndata: [&a [x, x, x, x, x, x, x, x], &b [*a, *a, *a, *a, *a, *a, *a, *a],"
                      " &c [*b, *b, *b, *b, *b, *b, *b, *b], &d [*c, *c, *c, *c, *c, *c, *c, *c],"
                      " [*d, *d, *d, *d, *d, *d, *d, *d]]\n",
        "a 21600-unit grid": json.dumps({"data": [{"source": "sample:knee,slices=2,size=32,coils=2", "slices": "all"}],
                                         "masks": [{"seed": s} for s in range(60)],
                                         "methods": [f"m{i}=zero_filled" for i in range(60)],
                                         "experiments": ["clean", {"attack": {"eps": [0.01]}}, "features"]}),
    }
    cases = []
    for name, text in texts.items():
        path = folder / f"{name.replace(' ', '_').replace('.', '')}.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        cases.append(Case(name, path))
    return cases
