"""The public surface: lazy ``import pyiqa``, model cards, ``list_models``, ``create_metric`` options."""
import inspect
import subprocess
import sys

import pytest
import torch

import pyiqa
from pyiqa.archs.uniqa_arch import MODEL_CARDS, UniQA
from pyiqa.utils.errors import ConfigError


def test_import_pyiqa_is_light_and_exports_lazily():
    code = ("import sys, pyiqa; heavy = [m for m in ('torch', 'tensorboard', 'open_clip', 'pandas') "
            "if m in sys.modules]; assert not heavy, heavy; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert {"create_metric", "list_models"} <= set(dir(pyiqa))
    assert callable(pyiqa.create_metric) and callable(pyiqa.list_models)
    with pytest.raises(AttributeError):
        pyiqa.no_such_thing  # noqa: B018


def test_list_models_and_filter():
    names = pyiqa.list_models()
    assert names == sorted(MODEL_CARDS)
    assert {"uniqa", "uniqa-single", "uniqa-koniq", "uniqa-livec", "uniqa-spaq", "uniqa-ava"} <= set(names)
    assert pyiqa.list_models(filter="*koniq") == ["uniqa-koniq"]
    assert pyiqa.list_models(filter="*single") == ["uniqa-single"]
    assert pyiqa.list_models(filter="single") == []  # IQA-PyTorch's globs: no substring match


def test_cards_are_data_that_build_the_arch():
    for card in MODEL_CARDS.values():
        assert card.description and "\n" not in card.description
        assert card.backbone_file == "UniQA_weight.pt"
        assert (card.adapter_file is None) == (not card.options["use_adapter"])
        assert set(card.options) <= set(inspect.signature(UniQA).parameters)
    assert MODEL_CARDS["uniqa"].options["prompts"] == ["quality", "blur", "noise", "lowhigh"]
    assert MODEL_CARDS["uniqa-koniq"].adapter_file == "uniqa_koniq_adapter.pth"
    assert MODEL_CARDS["uniqa-koniq"].options["prompts"] == ["quality"]


def test_unknown_name_lists_close_matches():
    with pytest.raises(ConfigError, match=r"Unknown metric 'uniqa-konik'.*'uniqa-koniq'.*Available"):
        pyiqa.create_metric("uniqa-konik")


def test_unknown_and_bad_options(backbone_file):
    with pytest.raises(ConfigError, match="unknown option 'precison'.*'precision'"):
        pyiqa.create_metric("uniqa", backbone=backbone_file, precison="bf16")
    with pytest.raises(ConfigError, match="Unknown crops 'grd'.*'grid'"):
        pyiqa.create_metric("uniqa", backbone=backbone_file, crops="grd")
    with pytest.raises(ConfigError, match="fp16' needs CUDA"):
        pyiqa.create_metric("uniqa", backbone=backbone_file, device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="max_side"):
        pyiqa.create_metric("uniqa", backbone=backbone_file, max_side=0)


def test_metric_attributes(backbone_file):
    metric = pyiqa.create_metric("uniqa", device="cpu", backbone=backbone_file)
    assert isinstance(metric, torch.nn.Module)
    assert (metric.metric_name, metric.metric_mode, metric.lower_better) == ("uniqa", "NR", False)
    assert metric.score_range == (0.2, 1.0)
    assert metric.precision == "fp32" and not metric.as_loss
    assert metric.weights["backbone"] == str(backbone_file)
    # the text tower is freed once the prompt embeddings are cached; nothing is trainable
    assert metric.net.clip.transformer is None and metric.net.text_features.shape[0] == 20
    assert not any(p.requires_grad for p in metric.parameters())
    metric.train()
    assert not metric.net.training
