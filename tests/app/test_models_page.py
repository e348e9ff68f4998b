"""AppTest of the Models page: shipped checkpoints with cards, adding files, refusing bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
import torch
from fastmri.models import VarNet
from streamlit.testing.v1 import AppTest

from explorer.recon.checkpoints import random_checkpoint
from explorer.data.fastmri import write_volume
from tests.conftest import TINY_ARCH, multicoil_kspace

APP = str(Path(__file__).resolve().parents[2] / "app.py")
MODELS = "pages/models.py"


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A checkpoint directory holding only unet_knee and varnet_brain (tiny, random weights)."""
    folder = tmp_path / "shipped"
    random_checkpoint("unet", TINY_ARCH["unet"], folder / "unet_knee.pt", card={"data": {"anatomy": "knee", "challenge": "multicoil", "slices": 7}, "steps": 11, "val_ssim": 0.5})
    random_checkpoint("varnet", TINY_ARCH["varnet"], folder / "varnet_brain.pt", card={"data": {"anatomy": "brain"}})
    monkeypatch.setenv("EXPLORER_CHECKPOINT_DIR", str(folder))
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "64")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))  # local paths are read only under the data directory
    write_volume(tmp_path / "data.h5", multicoil_kspace(slices=1, coils=2, h=32, w=32))
    st.cache_data.clear()
    st.cache_resource.clear()
    return folder


def _models_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(MODELS).run()
    assert not at.exception, at.exception
    return at


def test_shipped_checkpoints_listed_with_cards_and_missing_ones_with_their_command(shipped):
    at = _models_page()
    table = at.dataframe[0].value
    assert list(table["Checkpoint"]) == ["unet_knee", "varnet_brain"]
    assert table.loc[0, "Training steps"] == "11" and table.loc[0, "Validation SSIM"] == "0.5000"
    assert table.loc[1, "Validation SSIM"] == "—"  # unknown: a dash, not "None"
    assert table.loc[0, "Trained on"] == "random weights"
    missing = [w.value for w in at.warning]
    assert len(missing) == 2 and "unet_brain" in missing[0] and "varnet_knee" in missing[1]
    assert any("python -m explorer train --model varnet" in c.value and "varnet_knee.pt" in c.value for c in at.code)
    at.selectbox(key="models.card").set_value("varnet_brain").run()
    assert not at.exception and at.json[0].value  # the card is shown


def test_add_official_state_dict_and_refuse_bad_files(shipped, tmp_path):
    # a plain state dict of an official-style VarNet (fewer cascades to keep the test fast)
    official = tmp_path / "varnet_state_dict.pt"
    torch.save(VarNet(num_cascades=2, chans=18, pools=4, sens_chans=8, sens_pools=4).state_dict(), official)
    at = _models_page()
    at.text_input(key="models.path").set_value(str(official))
    at.button(key="models.add").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Added E2E VarNet" in at.success[0].value
    added = at.dataframe[-1].value
    assert added.loc[0, "Architecture"] == "num_cascades=2, sens_chans=8, sens_pools=4, chans=18, pools=4"
    assert added.loc[0, "Trained on"] == "external state dict (no model card)"

    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pt"
    torch.save({"x": _Evil(marker)}, evil)
    for bad, message in [(evil, "is not a plain state dict/checkpoint; refused"), (tmp_path / "none.pt", "no such file"),
                         ("", "enter the path")]:
        at.text_input(key="models.path").set_value(str(bad))
        at.button(key="models.add").click().run()
        assert not at.exception
        assert len(at.error) == 1 and message in at.error[0].value, [e.value for e in at.error]
    assert not marker.exists()
    assert len(at.dataframe[-1].value) == 1  # the page keeps working; nothing bad was added


def test_local_paths_outside_the_data_directory_are_refused_alike(shipped, tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    real = random_checkpoint("unet", TINY_ARCH["unet"], outside / "real.pt")
    (tmp_path / "link.pt").symlink_to(real)
    at = _models_page()
    answers = []
    for text in (str(real), str(outside / "missing.pt"), "../" * 12 + str(real).lstrip("/"), str(tmp_path / "link.pt"),
                 "/etc/passwd", "/etc/no-such-file"):
        at.text_input(key="models.path").set_value(text)
        at.button(key="models.add").click().run()
        assert not at.exception and len(at.error) == 1, text
        answers.append(at.error[0].value.replace(repr(text), "PATH"))
    assert all("is outside the data directory" in a for a in answers), answers
    assert len(set(answers)) == 1  # existing or not, the same answer: no existence oracle


def test_upload_is_validated_before_it_is_added(shipped, tmp_path):
    good = random_checkpoint("unet", TINY_ARCH["unet"], tmp_path / "mine.pt", card={"data": {"anatomy": "brain"}})

    def script(data: bytes, name: str):
        from pathlib import Path  # noqa: PLC0415

        import streamlit as st  # noqa: PLC0415

        from explorer.errors import ExplorerError  # noqa: PLC0415
        from explorer.ui import checkpoint_store  # noqa: PLC0415

        try:
            row = checkpoint_store.add_upload(name, data)
            st.write(f"ok {row['kind']} {Path(row['file']).exists()}")
        except ExplorerError as exc:
            st.write(f"error {exc}")

    for data, name, expected in [(good.read_bytes(), "mine.pt", "ok unet True"), (b"junk", "junk.pt", "error"),
                                 (b"", "empty.pt", "error empty.pt: the uploaded file is empty"),
                                 (good.read_bytes(), "mine.h5", "error mine.h5: upload a PyTorch checkpoint")]:
        at = AppTest.from_function(script, args=(data, name), default_timeout=30).run()
        assert not at.exception
        assert at.markdown[0].value.startswith(expected), at.markdown[0].value
