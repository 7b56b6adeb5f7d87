"""Weight lookup order, the missing-weights messages, bad weight files and ``install-weights``."""
import os
import shutil
import socket

import pytest
import torch

import pyiqa
from inference_helpers import write_adapter, write_backbone
from pyiqa.cli import main
from pyiqa.inference.weights import weight_dirs
from pyiqa.utils.errors import CheckpointError


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_lookup_order_explicit_then_env_then_hub(weights_env, backbone_file, tmp_path, no_network):
    env_dir, hub_dir = weights_env
    assert weight_dirs() == [env_dir, hub_dir]
    hub_dir.mkdir(parents=True)
    shutil.copy(backbone_file, hub_dir / "UniQA_weight.pt")
    assert pyiqa.create_metric("uniqa").weights["backbone"] == str(hub_dir / "UniQA_weight.pt")

    shutil.copy(backbone_file, env_dir / "UniQA_weight.pt")
    assert pyiqa.create_metric("uniqa").weights["backbone"] == str(env_dir / "UniQA_weight.pt")

    explicit = write_backbone(tmp_path / "mine.pt", seed=5)
    metric = pyiqa.create_metric("uniqa", backbone=explicit)
    assert metric.weights["backbone"] == str(explicit)
    # a different file really is used: different weights, different score
    img = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    assert metric(img).item() != pyiqa.create_metric("uniqa")(img).item()


def test_several_env_dirs(weights_env, backbone_file, tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    second.mkdir()
    shutil.copy(backbone_file, second / "UniQA_weight.pt")
    monkeypatch.setenv("PYIQA_WEIGHTS_DIR", os.pathsep.join([str(first), str(second)]))
    assert pyiqa.create_metric("uniqa").weights["backbone"] == str(second / "UniQA_weight.pt")


def test_missing_backbone_message(weights_env):
    env_dir, hub_dir = weights_env
    with pytest.raises(CheckpointError) as info:
        pyiqa.create_metric("uniqa")
    msg = str(info.value)
    for part in ("UniQA_weight.pt", str(env_dir / "UniQA_weight.pt"), str(hub_dir / "UniQA_weight.pt"),
                 "drive.google.com", "pan.baidu.com", "backbone=", "PYIQA_WEIGHTS_DIR"):
        assert part in msg, part


def test_explicit_missing_path_is_an_error_not_a_fallback(weights_env, backbone_file, tmp_path):
    shutil.copy(backbone_file, weights_env[0] / "UniQA_weight.pt")
    with pytest.raises(CheckpointError, match="backbone=.*nope.pt' does not exist"):
        pyiqa.create_metric("uniqa", backbone=tmp_path / "nope.pt")


def test_missing_adapter_says_how_to_make_it(weights_env, backbone_file):
    shutil.copy(backbone_file, weights_env[0] / "UniQA_weight.pt")
    with pytest.raises(CheckpointError) as info:
        pyiqa.create_metric("uniqa-koniq")
    msg = str(info.value)
    assert "uniqa_koniq_adapter.pth" in msg and str(weights_env[0]) in msg
    assert "pyiqa-train -opt options/train/UniQA/koniq.yml" in msg
    assert "pyiqa install-weights uniqa-koniq" in msg
    with pytest.raises(CheckpointError, match="(?s)uniqa_spaq_adapter.pth.*pyiqa-train -opt options/train/UniQA/spaq.yml"):
        pyiqa.create_metric("uniqa-spaq")


def test_both_missing_reported_together(weights_env):
    with pytest.raises(CheckpointError, match="(?s)UniQA_weight.pt.*uniqa_livec_adapter.pth"):
        pyiqa.create_metric("uniqa-livec")


def test_adapter_for_zero_shot_card_is_refused(backbone_file, tmp_path):
    adapter = write_adapter(tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="zero-shot and takes no adapter"):
        pyiqa.create_metric("uniqa", backbone=backbone_file, pretrained_model_path=adapter)


@pytest.mark.parametrize("content, match", [
    (b"\x00" * 100, "not a readable torch file|corrupt"),
    ("non-clip", "not an OpenAI-format ViT CLIP state dict"),
])
def test_corrupt_or_non_clip_backbone(tmp_path, content, match):
    path = tmp_path / "UniQA_weight.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=match) as info:
        pyiqa.create_metric("uniqa", backbone=path)
    assert "Backbone of 'uniqa'" in str(info.value)


def test_adapter_files_that_do_not_fit(backbone_file, tmp_path):
    wide = write_adapter(tmp_path / "wide.pth", dim=512)  # made for ViT-B/16, not the tiny backbone
    with pytest.raises(CheckpointError, match="Adapter .*wide.pth.*shape mismatches"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=wide)
    full = tmp_path / "full.pth"
    torch.save({"params": {"clip.visual.proj": torch.zeros(2), "score_level": torch.zeros(5)}}, full)
    with pytest.raises(CheckpointError, match="missing keys.*adapter.fc.0.weight.*'clip.'"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=full)
    multi = write_adapter(tmp_path / "multi.pth", arch={"type": "UniQA", "prompts": ["quality", "blur"]})
    with pytest.raises(CheckpointError, match="trained with prompts \\['quality', 'blur'\\]"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=multi)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="Cannot read adapter checkpoint"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=junk)


def test_install_weights_cli(weights_env, tmp_path, capsys):
    env_dir, _ = weights_env
    # a training checkpoint of the card's arch, at the released backbone's width (512)
    ckpt = write_adapter(tmp_path / "net_best.pth", dim=512, hidden=8,
                         arch={"type": "UniQA_Adapter_Patchtest", "prompts": ["quality"],
                               "use_adapter": True}, iter=100, version="0.1.0")
    assert main(["install-weights", "uniqa-koniq", str(ckpt)]) == 0
    installed = env_dir / "uniqa_koniq_adapter.pth"
    assert installed.read_bytes() == ckpt.read_bytes()
    assert [p.name for p in env_dir.iterdir()] == ["uniqa_koniq_adapter.pth"]  # no temp file left
    assert str(installed) in capsys.readouterr().out

    tiny = write_adapter(tmp_path / "tiny.pth", dim=64)
    assert main(["install-weights", "uniqa-livec", str(tiny)]) == 2
    assert "D=64" in capsys.readouterr().err
    assert not (env_dir / "uniqa_livec_adapter.pth").exists()
    assert main(["install-weights", "uniqa", str(ckpt)]) == 2
    assert "zero-shot" in capsys.readouterr().err


def test_installed_adapter_is_found(weights_env, backbone_file, tmp_path):
    env_dir, _ = weights_env
    shutil.copy(backbone_file, env_dir / "UniQA_weight.pt")
    shutil.copy(write_adapter(tmp_path / "a.pth"), env_dir / "uniqa_ava_adapter.pth")
    metric = pyiqa.create_metric("uniqa-ava")
    assert metric.weights["adapter"] == str(env_dir / "uniqa_ava_adapter.pth")
    assert metric.net.adapter.fc[0].weight.shape == (16, 64)  # hidden width read from the file
