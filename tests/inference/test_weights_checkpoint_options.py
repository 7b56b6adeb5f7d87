"""An adapter checkpoint is read back through the model options it stores, not rebuilt from the card."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import torch

import pyiqa
from inference_helpers import write_adapter
from pyiqa.archs.uniqa_arch import UniQA
from pyiqa.cli import main
from pyiqa.utils.errors import CheckpointError


def write_trained(path: Path, backbone: Path, **changes: Any) -> Dict[str, Any]:
    """A checkpoint as the trainer writes it (``network_checkpoint``), for a model built with
    ``changes`` over the uniqa-koniq card's options; returns the stored arch options."""
    options = {"prompts": ["quality"], "use_adapter": True, "embedding_dim": 8, **changes}
    net = UniQA(backbone=str(backbone), **options)
    with torch.no_grad():
        net.score_level.copy_(torch.tensor([0.1, 0.2, 0.5, 0.7, 0.9]))
    arch = {"type": "UniQA", **net.arch_options}
    torch.save({"params": net.trainable_state_dict(), "arch": arch, "iter": 10, "version": "0.1.0",
                "config": {"name": "tiny"}}, path)
    return arch


def test_stored_sample_size_rebuilds_the_model(backbone_file, tmp_path):
    ckpt = tmp_path / "net_best.pth"
    write_trained(ckpt, backbone_file, sample_size=256, test_crop="center", num_crops=3, crop_seed=9)
    metric = pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=ckpt,
                                 crops="grid", num_crops=4)
    assert metric.net.sample_size == 256
    assert metric.crop_spec.sample_size == 256
    assert metric.net.clip.visual.image_size[0] == 256  # positional embedding resized for it
    assert metric.net.adapter.fc[0].weight.shape == (8, 64)
    torch.testing.assert_close(metric.net.score_level, torch.tensor([0.1, 0.2, 0.5, 0.7, 0.9]))
    # runtime choices are create_metric's, not the checkpoint's
    assert (metric.crop_spec.test_crop, metric.crop_spec.num_crops, metric.crop_spec.crop_seed) == (
        "grid", 4, 0)
    assert metric.weights["backbone"] == str(backbone_file)
    assert metric(torch.rand(1, 3, 300, 280)).shape == (1,)


def test_a_stored_keep_text_tower_is_a_runtime_choice_not_the_files(backbone_file, tmp_path):
    """A checkpoint whose arch (written by hand or by another tool) says keep_text_tower: true: the
    option is not the model's (the stored options leave it out) and the metric still frees the tower."""
    from pyiqa.archs.uniqa_arch import MODEL_CARDS
    from pyiqa.inference import weights
    ckpt = tmp_path / "kept.pth"
    arch = write_trained(ckpt, backbone_file)
    saved = torch.load(ckpt, weights_only=True)
    torch.save({**saved, "arch": {**arch, "keep_text_tower": True}}, ckpt)
    card = MODEL_CARDS["uniqa-koniq"]
    stored = weights.model_options(card, weights.read_adapter_checkpoint(ckpt, card))
    assert "keep_text_tower" not in stored and stored["prompts"] == ["quality"]
    metric = pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=ckpt)
    assert metric.net.text_tower_dropped and metric.net.clip.transformer is None
    assert metric(torch.rand(1, 3, 240, 256)).shape == (1,)


def test_stored_options_the_card_does_not_declare_are_used(backbone_file, tmp_path):
    ckpt = tmp_path / "fixed.pth"
    write_trained(ckpt, backbone_file, learnable_levels=False, score_levels=[1, 2, 3, 4, 5])
    net = pyiqa.create_metric("uniqa-livec", backbone=backbone_file, pretrained_model_path=ckpt).net
    assert "score_level" in dict(net.head.named_buffers())  # not a parameter: trained with fixed levels


def test_mismatch_with_the_card_is_refused_naming_both(backbone_file, tmp_path):
    ckpt = tmp_path / "multi.pth"
    arch = write_trained(ckpt, backbone_file, prompts=["quality", "blur"])
    assert arch["prompts"] == ["quality", "blur"]
    with pytest.raises(CheckpointError) as info:
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=ckpt)
    msg = str(info.value)
    assert str(ckpt) in msg and "['quality', 'blur']" in msg and "['quality']" in msg

    zero = tmp_path / "zero.pth"
    write_adapter(zero, dim=64, arch={"type": "UniQA", "prompts": ["quality"], "use_adapter": False})
    with pytest.raises(CheckpointError, match=r"zero.pth.*use_adapter=False.*'uniqa-koniq' declares "
                                              r"use_adapter=True"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=zero)


def test_release_class_name_implies_its_prompts(backbone_file, tmp_path):
    ckpt = write_adapter(tmp_path / "es.pth", arch={"type": "UniQA_Adapter_Patchtest_PromptEs"})
    with pytest.raises(CheckpointError, match=r"trained with prompts \['quality', 'blur', 'noise', "
                                              r"'lowhigh'\]"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=ckpt)


def test_unknown_or_contradicting_stored_options_are_refused(backbone_file, tmp_path):
    odd = write_adapter(tmp_path / "odd.pth", arch={"type": "UniQA", "prompts": ["quality"],
                                                    "temperature": 0.5})
    with pytest.raises(CheckpointError, match=r"odd.pth' stores options \['temperature'\]"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=odd)
    other = write_adapter(tmp_path / "other.pth", arch={"type": "MUSIQ"})
    with pytest.raises(CheckpointError, match=r"other.pth.*'MUSIQ', not UniQA"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=other)
    bad_size = write_adapter(tmp_path / "size.pth", arch={"type": "UniQA", "sample_size": 250})
    with pytest.raises(CheckpointError, match=r"size.pth.*multiple of the CLIP patch size"):
        pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=bad_size)


def test_bare_release_file_uses_the_card(backbone_file, tmp_path):
    ckpt = write_adapter(tmp_path / "bare.pth", hidden=12)
    metric = pyiqa.create_metric("uniqa-koniq", backbone=backbone_file, pretrained_model_path=ckpt)
    assert metric.net.sample_size == 224 and metric.net.prompts == ["quality"]
    assert metric.net.adapter.fc[0].weight.shape == (12, 64)  # hidden width from the tensors


def test_install_weights_checks_stored_options(weights_env, tmp_path, capsys):
    env_dir, _ = weights_env
    odd = write_adapter(tmp_path / "odd.pth", dim=512, hidden=8,
                        arch={"type": "UniQA", "prompts": ["quality"], "temperature": 0.5})
    assert main(["install-weights", "uniqa-koniq", str(odd)]) == 2
    assert "temperature" in capsys.readouterr().err
    multi = write_adapter(tmp_path / "multi.pth", dim=512, hidden=8,
                          arch={"type": "UniQA", "prompts": ["quality", "noise"]})
    assert main(["install-weights", "uniqa-koniq", str(multi)]) == 2
    assert "['quality', 'noise']" in capsys.readouterr().err
    assert not (env_dir / "uniqa_koniq_adapter.pth").exists()
