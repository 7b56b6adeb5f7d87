"""How ``create_metric`` builds its network: the prompts are embedded by the text tower alone, which is
freed before the image tower is loaded (peak memory, issue 21), with scores unchanged."""
import gc
import weakref

import open_clip
import pytest
import torch

import pyiqa
from pyiqa.archs.uniqa_arch import MODEL_CARDS, UniQA
from pyiqa.inference.metric import InferenceMetric


@pytest.fixture
def text_towers(monkeypatch):
    """Weak references to every text transformer that encodes text (the spy sits at open_clip's edge)."""
    refs = []
    original = open_clip.model.CLIP.encode_text

    def spy(self, *args, **kwargs):
        refs.append(weakref.ref(self.transformer))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(open_clip.model.CLIP, "encode_text", spy)
    return refs


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_text_tower_is_freed_and_scores_are_those_of_the_whole_build(backbone_file, image_dir,
                                                                     text_towers, precision):
    metric = pyiqa.create_metric("uniqa", device="cpu", backbone=backbone_file, precision=precision)
    gc.collect()
    assert len(text_towers) == 1 and text_towers[0]() is None  # encoded once, nothing keeps it alive
    clip = metric.net.clip
    assert clip.transformer is None and clip.token_embedding is None and clip.positional_embedding is None
    kept = {n for n, _ in metric.named_parameters()} | {n for n, _ in metric.named_buffers()}
    others = {"net.clip.logit_scale", "net.mean", "net.std", "net.prompt_tokens"}
    assert all(n.startswith(("net.clip.visual.", "net.head.")) or n in others for n in kept), sorted(kept)

    # the build before issue 21: the whole CLIP, prompts encoded, then the text tower dropped
    card = MODEL_CARDS["uniqa"]
    whole = UniQA(backbone=str(backbone_file), backbone_dtype=precision, **card.options)
    whole.drop_text_tower()
    old = InferenceMetric(whole.requires_grad_(False).eval(), card, precision)
    assert torch.equal(metric.net.text_features, old.net.text_features)
    paths = sorted(str(p) for p in image_dir.iterdir())
    scores = metric(paths)
    assert torch.equal(scores, old(paths))
    assert scores.std() > 0  # the images score differently: equality is not between constants
