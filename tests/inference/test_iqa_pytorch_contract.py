"""IQA-PyTorch's metric contract, run on every card of ``list_models()``.

What IQA-PyTorch's own general metric tests (tests/test_metric_general.py of chaofengc/IQA-PyTorch) do
to each of its metrics, done to ours: ``metric(x, y)`` with a reference (ignored by a no-reference
metric, whatever its size), ``as_loss=True`` backward on ``torch.randn`` input without NaN, its
keywords (``seed``, ``check_input_range``, ``loss_weight=None``, ``metric_mode``) and attributes, 1-channel
input, ``imread2tensor`` from ``pyiqa.utils``, ``load_weights(path, weight_keys='params')`` and
``list_models(metric_mode, filter, exclude_filters)`` with its glob semantics. Scores come from a tiny
RANDOM backbone: they test the plumbing, not quality.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch
from PIL import Image

import pyiqa
from inference_helpers import smooth_image, write_adapter
from pyiqa.archs.model_cards import MODEL_CARDS
from pyiqa.archs.uniqa_arch import UniQA
from pyiqa.inference import InputError
from pyiqa.utils import imread2tensor
from pyiqa.utils.errors import CheckpointError, ConfigError, DataError

CARDS = pyiqa.list_models()
ADAPTER_CARDS = [n for n in CARDS if MODEL_CARDS[n].adapter_file]
ZERO_SHOT_CARDS = [n for n in CARDS if not MODEL_CARDS[n].adapter_file]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {"a": write_adapter(root / "a.pth", seed=1, scale=0.5),
            "b": write_adapter(root / "b.pth", seed=2, scale=0.5)}


def build(name: str, backbone: Path, adapters: Dict[str, Path], **kw) -> pyiqa.inference.InferenceMetric:
    """The card ``name`` on the tiny backbone (adapter cards with adapter 'a'), on the CPU."""
    if MODEL_CARDS[name].adapter_file:
        kw.setdefault("pretrained_model_path", adapters["a"])
    return pyiqa.create_metric(name, device="cpu", backbone=backbone, **kw)


@pytest.fixture(scope="module")
def metrics(backbone_file, adapters) -> Dict[str, pyiqa.inference.InferenceMetric]:
    return {name: build(name, backbone_file, adapters) for name in CARDS}


@pytest.mark.parametrize("name", CARDS)
def test_forward_ignores_a_reference_of_any_size(metrics, name):
    metric = metrics[name]
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    alone = metric(x)
    assert alone.shape == (2,) and torch.isfinite(alone).all()
    torch.testing.assert_close(metric(x, torch.rand(2, 3, 224, 224)), alone, rtol=0, atol=0)
    torch.testing.assert_close(metric(x, ref=torch.rand(1, 3, 97, 301)), alone, rtol=0, atol=0)
    torch.testing.assert_close(metric(x, "no/such/reference.png"), alone, rtol=0, atol=0)


@pytest.mark.parametrize("name", CARDS)
def test_as_loss_backward_on_randn_has_no_nan(backbone_file, adapters, name):
    metric = build(name, backbone_file, adapters, as_loss=True)
    assert metric.as_loss and metric.check_input_range is False  # a loss never checks the range
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1)).requires_grad_()
    y = torch.randn(2, 3, 224, 224)
    score = metric(x, y)
    assert score.dim() == 0
    score.sum().backward()
    assert torch.isnan(x.grad).sum() == 0
    assert x.grad.abs().sum() > 0  # the loss really depends on the input


@pytest.mark.parametrize("name", CARDS)
def test_keywords_and_attributes(backbone_file, adapters, name):
    metric = build(name, backbone_file, adapters, seed=123, check_input_range=False, loss_weight=None,
                   metric_mode="NR")
    card = MODEL_CARDS[name]
    assert metric.metric_name == name and metric.metric_mode == "NR"
    assert metric.lower_better is card.lower_better is False
    assert metric.score_range == card.score_range
    assert isinstance(metric.net, UniQA) and metric.device == torch.device("cpu")
    assert metric.seed == 123 and metric.crop_spec.crop_seed == 123
    assert metric.as_loss is False and metric.check_input_range is False
    # unchecked: values outside [0, 1] are scored as given (IQA-PyTorch's check_input_range=False)
    assert torch.isfinite(metric(torch.full((1, 3, 224, 224), 1.5))).all()
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        metrics_default = build(name, backbone_file, adapters)
        metrics_default(torch.full((1, 3, 224, 224), 1.5))


def test_seed_selects_the_crops(metrics, backbone_file, adapters):
    x = torch.rand(1, 3, 300, 400, generator=torch.Generator().manual_seed(3))
    seeded = build("uniqa", backbone_file, adapters, seed=7)
    same = build("uniqa", backbone_file, adapters, crop_seed=7)
    torch.testing.assert_close(seeded(x), same(x), rtol=0, atol=0)
    assert not torch.equal(seeded(x), metrics["uniqa"](x))  # seed 7 draws other crops than seed 0
    with pytest.raises(ConfigError, match="seed=1 and crop_seed=2"):
        build("uniqa", backbone_file, adapters, seed=1, crop_seed=2)


@pytest.mark.parametrize("bad, match", [(dict(metric_mode="FR"), "no-reference"),
                                        (dict(loss_weight="x"), "loss_weight"),
                                        (dict(seed=-1), "non-negative")])
def test_bad_keywords_are_refused(backbone_file, adapters, bad, match):
    with pytest.raises(ConfigError, match=match):
        build("uniqa", backbone_file, adapters, **bad)


def test_forward_options_it_does_not_take_are_refused(metrics):
    with pytest.raises(InputError, match="takes no forward options; got align_crop_face"):
        metrics["uniqa"](torch.rand(1, 3, 224, 224), align_crop_face=False)


@pytest.mark.parametrize("name", ["uniqa", "uniqa-koniq"])
def test_one_channel_tensors_are_gray_images(metrics, name):
    gray = torch.rand(2, 1, 240, 250, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(metrics[name](gray), metrics[name](gray.expand(-1, 3, -1, -1)),
                               rtol=0, atol=0)
    torch.testing.assert_close(metrics[name](gray[0]), metrics[name](gray[:1]), rtol=0, atol=0)


# ---------------------------------------------------------------------------------- imread2tensor
@pytest.fixture(scope="module")
def image_files(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("contract_images")
    rgb = smooth_image(260, 300, 5)
    files = {"rgb": root / "rgb.png", "jpg": root / "photo.jpg", "gray": root / "gray.png",
             "rgba": root / "rgba.png"}
    Image.fromarray(rgb).save(files["rgb"])
    Image.fromarray(rgb).save(files["jpg"], quality=85)
    Image.fromarray(rgb[..., 0]).save(files["gray"])
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(files["rgba"])
    return files


@pytest.mark.parametrize("kind", ["rgb", "jpg", "gray"])
def test_imread2tensor_round_trip_scores_like_the_path(metrics, image_files, kind):
    path = image_files[kind]
    x = imread2tensor(str(path))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert x.shape[0] == (1 if kind == "gray" else 3)  # rgb=False keeps gray as one channel
    for name in ("uniqa", "uniqa-koniq"):
        torch.testing.assert_close(metrics[name](x[None]), metrics[name](str(path)), rtol=0, atol=1e-6)
    # the same pixels from bytes, a PIL image and rgb=True
    torch.testing.assert_close(imread2tensor(path.read_bytes()), x, rtol=0, atol=0)
    with Image.open(path) as img:
        torch.testing.assert_close(imread2tensor(img), x, rtol=0, atol=0)
    rgb = imread2tensor(str(path), rgb=True)
    assert rgb.shape[0] == 3
    torch.testing.assert_close(rgb, x.expand(3, -1, -1), rtol=0, atol=0)


def test_imread2tensor_keeps_alpha_like_iqa_pytorch(image_files):
    assert imread2tensor(str(image_files["rgba"])).shape[0] == 4
    assert imread2tensor(str(image_files["rgba"]), rgb=True).shape[0] == 3


def test_imread2tensor_bad_sources(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        imread2tensor(str(tmp_path / "missing.png"))
    with pytest.raises(DataError, match="not a regular file"):
        imread2tensor(str(tmp_path))
    with pytest.raises(DataError, match="not a recognised image"):
        imread2tensor(b"not an image at all")
    with pytest.raises(TypeError, match="path .* bytes or a PIL image"):
        imread2tensor(12)
    buf = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buf, format="JPEG")
    with pytest.raises(DataError, match="bytes of image data"):
        imread2tensor(buf.getvalue()[:200])  # truncated


# ---------------------------------------------------------------------------------- load_weights
@pytest.mark.parametrize("name", ADAPTER_CARDS)
def test_load_weights_changes_an_adapter_cards_scores(metrics, backbone_file, adapters, name):
    metric = build(name, backbone_file, adapters)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(6))
    before = metric(x)
    metric.load_weights(str(adapters["b"]), weight_keys="params")
    after = metric(x)
    assert not torch.allclose(before, after)
    assert metric.weights["adapter"] == str(adapters["b"])
    built_from_b = build(name, backbone_file, adapters, pretrained_model_path=adapters["b"])
    torch.testing.assert_close(after, built_from_b(x), rtol=0, atol=0)


def test_load_weights_reads_trainer_checkpoints_and_other_keys(backbone_file, adapters, tmp_path):
    metric = build("uniqa-livec", backbone_file, adapters)
    net = UniQA(backbone=str(backbone_file), prompts=["quality"], use_adapter=True, embedding_dim=16)
    with torch.no_grad():
        net.score_level.copy_(torch.tensor([0.0, 0.1, 0.2, 0.3, 2.0]))
    # the layout of IQAModel.network_checkpoint (models/net_best.pth)
    ours = tmp_path / "net_best.pth"
    torch.save({"params": net.trainable_state_dict(), "arch": {"type": "UniQA", **net.arch_options},
                "precision": "fp32", "iter": 5, "version": pyiqa.__version__, "config": {"name": "x"}},
               ours)
    metric.load_weights(ours)
    torch.testing.assert_close(metric.net.score_level, torch.tensor([0.0, 0.1, 0.2, 0.3, 2.0]))
    ema = tmp_path / "ema.pth"
    torch.save({"params_ema": net.trainable_state_dict()}, ema)  # BasicSR's other key
    metric.load_weights(ema, weight_keys="params_ema")
    with pytest.raises(CheckpointError, match=r"no entry 'params'.*params_ema"):
        metric.load_weights(ema)
    bare = tmp_path / "bare.pth"
    torch.save(net.trainable_state_dict(), bare)
    metric.load_weights(bare, weight_keys=None)


def test_load_weights_refuses_other_cards_files(backbone_file, adapters, tmp_path):
    metric = build("uniqa-koniq", backbone_file, adapters)
    multi = UniQA(backbone=str(backbone_file), prompts=["quality", "blur", "noise", "lowhigh"],
                  use_adapter=True, embedding_dim=16)
    other = tmp_path / "multi.pth"
    torch.save({"params": multi.trainable_state_dict(), "arch": {"type": "UniQA", **multi.arch_options}},
               other)
    before = metric.net.trainable_state_dict()
    with pytest.raises(CheckpointError, match=r"trained with prompts \['quality', 'blur', 'noise', 'lowhigh'\]"):
        metric.load_weights(other)
    big = UniQA(backbone=str(backbone_file), prompts=["quality"], use_adapter=True, embedding_dim=16,
                sample_size=256)
    resized = tmp_path / "resized.pth"
    torch.save({"params": big.trainable_state_dict(), "arch": {"type": "UniQA", **big.arch_options}},
               resized)
    with pytest.raises(CheckpointError, match=r"sample_size: file 256 vs metric 224.*pretrained_model_path"):
        metric.load_weights(resized)
    wide = write_adapter(tmp_path / "wide.pth", dim=512)  # made for ViT-B/16, not this backbone
    with pytest.raises(CheckpointError, match="512"):
        metric.load_weights(wide)
    for key, value in before.items():  # a refused file changes nothing
        torch.testing.assert_close(metric.net.trainable_state_dict()[key], value, rtol=0, atol=0)


class _Planted:
    def __reduce__(self):
        return (Path.touch, (Path(_Planted.marker),))


def test_load_weights_never_runs_a_planted_pickle(metrics, tmp_path):
    _Planted.marker = str(tmp_path / "PWNED")
    planted = tmp_path / "planted.pth"
    with open(planted, "wb") as f:
        pickle.dump({"params": _Planted()}, f, protocol=2)
    with pytest.raises(CheckpointError):
        metrics["uniqa-koniq"].load_weights(planted)
    torch.save({"params": {"adapter.fc.0.weight": _Planted()}}, tmp_path / "planted2.pth")
    with pytest.raises(CheckpointError):
        metrics["uniqa-koniq"].load_weights(tmp_path / "planted2.pth")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("name", ZERO_SHOT_CARDS)
def test_zero_shot_cards_say_what_load_weights_takes(metrics, adapters, name):
    with pytest.raises(CheckpointError, match=rf"'{name}' is zero-shot.*backbone=.*adapter card"):
        metrics[name].load_weights(adapters["a"])


# ---------------------------------------------------------------------------------- list_models
def test_list_models_glob_semantics_as_iqa_pytorch():
    assert pyiqa.list_models() == CARDS and len(CARDS) == len(MODEL_CARDS)
    assert pyiqa.list_models(filter="uniqa") == ["uniqa"]  # a glob: an exact name, not a substring
    assert pyiqa.list_models(filter="*koniq*") == ["uniqa-koniq"]
    assert pyiqa.list_models(filter=["*koniq", "*ava"]) == ["uniqa-ava", "uniqa-koniq"]
    assert pyiqa.list_models(exclude_filters="uniqa-*") == ["uniqa"]
    assert pyiqa.list_models("NR", "uniqa-*", exclude_filters=["*k", "*koniq"]) == [
        "uniqa-aadb", "uniqa-agin", "uniqa-ava", "uniqa-csiq", "uniqa-eciqad", "uniqa-flive", "uniqa-live",
        "uniqa-livec", "uniqa-single", "uniqa-spaq", "uniqa-tid2013"]
    assert pyiqa.list_models(metric_mode="FR") == []
    # natural order: digit runs compare as numbers
    assert CARDS.index("uniqa-agiqa1k") < CARDS.index("uniqa-agiqa3k")
    with pytest.raises(ConfigError, match="filter must be a glob"):
        pyiqa.list_models(filter=3)
