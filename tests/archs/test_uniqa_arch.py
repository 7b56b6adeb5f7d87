"""UniQA: scores checked against an independent computation of the paper's formula, crops, precision,
trainable-weight checkpoints. Tiny random CLIPs written to disk in the release's file format."""
import copy
import logging
import math

import open_clip
import pytest
import torch
import torch.nn.functional as F

from pyiqa.archs import ARCH_REGISTRY, PROMPT_GROUPS, VARIANTS, UniQA, build_network
from pyiqa.archs.clip_backbone import save_random_backbone
from pyiqa.archs.crops import make_crops
from pyiqa.archs.uniqa_arch import check_prompt_groups
from pyiqa.utils.errors import CheckpointError, ConfigError

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return save_random_backbone(tmp_path_factory.mktemp("clip") / "UniQA_weight.pt", "tiny", seed=1)


@pytest.fixture(scope="module")
def reference_clip(tiny_path):
    """A CLIP built independently by open_clip's OpenAI converter from a copy of the raw dict."""
    raw = torch.load(tiny_path, map_location="cpu", weights_only=True)
    clip = open_clip.model.build_model_from_openai_state_dict(dict(raw), cast_dtype=None)
    return clip.float().eval()


def make(tiny_path, seed=0, **kw):
    """A tiny UniQA with a strong adapter and a trained-CLIP-like temperature (so scores spread)."""
    torch.manual_seed(seed)
    model = UniQA(backbone=str(tiny_path), embedding_dim=kw.pop("embedding_dim", 32), **kw)
    with torch.no_grad():
        if model.adapter is not None:
            for layer in (model.adapter.fc[0], model.adapter.fc[2]):
                layer.weight.normal_(0, 0.5)
        model.head.logit_scale.fill_(math.log(100.0))  # the head's copy of CLIP's scale
    return model


@torch.no_grad()
def reference_scores(clip, crops, groups, levels, w1=None, w2=None, logit_scale=math.log(100.0)):
    """The paper's formula, by hand: crops (N, 3, S, S) in [0, 1] -> (N,)."""
    f = clip.encode_image((crops - MEAN) / STD)  # (N, D)
    if w1 is not None:
        f = f + torch.relu(torch.relu(f @ w1.t()) @ w2.t())
    f = f / f.norm(dim=-1, keepdim=True)
    texts = [p for g in groups for p in PROMPT_GROUPS[g]]
    t = clip.encode_text(open_clip.tokenize(texts))
    t = t / t.norm(dim=-1, keepdim=True)  # (G*5, D)
    probs = (math.exp(logit_scale) * f @ t.t()).view(len(crops), len(groups), 5).softmax(-1)
    return (probs * torch.as_tensor(levels)).sum(-1).mean(-1)


def adapter_weights(model):
    return model.adapter.fc[0].weight.detach(), model.adapter.fc[2].weight.detach()


@pytest.mark.parametrize("groups", [["quality"], ["quality", "blur", "noise", "lowhigh"]])
def test_scores_match_formula(tiny_path, reference_clip, groups):
    model = make(tiny_path, prompts=groups).train()
    crops = torch.rand(3, 3, 224, 224)
    got = model(crops)
    assert got.shape == (3, 1)
    expected = reference_scores(reference_clip, crops, groups, [0.2, 0.4, 0.6, 0.8, 1.0],
                                *adapter_weights(model))
    torch.testing.assert_close(got[:, 0].detach(), expected, rtol=1e-5, atol=1e-5)
    assert expected.std() > 1e-3  # the comparison is not between constants


def test_zero_shot_matches_formula(tiny_path, reference_clip):
    levels = [1.0, 2.0, 3.0, 4.0, 5.0]
    model = make(tiny_path, prompts=["quality", "content"], use_adapter=False,
                 learnable_levels=False, score_levels=levels, test_crop="center").eval()
    assert model.adapter is None and not any(p.requires_grad for p in model.parameters())
    crops = torch.rand(2, 3, 224, 224)
    torch.testing.assert_close(model(crops)[:, 0],
                               reference_scores(reference_clip, crops, ["quality", "content"], levels),
                               rtol=1e-5, atol=1e-5)
    assert set(model.trainable_state_dict()) == {"score_level"}


def test_five_crops_match_manual_crops(tiny_path, reference_clip):
    model = make(tiny_path, test_crop="five").eval()
    img = torch.rand(1, 3, 256, 240)
    crops = torch.cat([img[..., 16:240, 8:232], img[..., :224, :224], img[..., :224, 16:],
                       img[..., 32:, :224], img[..., 32:, 16:]])
    expected = reference_scores(reference_clip, crops, ["quality"], [0.2, 0.4, 0.6, 0.8, 1.0],
                                *adapter_weights(model)).mean()
    torch.testing.assert_close(model(img)[0, 0].detach(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_release_names_build_their_prompt_groups(tiny_path, name, caplog):
    opt = {"type": name, "backbone": str(tiny_path), "model_type": "UniQA_adapter",
           "pretrained": True, "clip_finetune": True, "embedding_dim": 32}
    with caplog.at_level(logging.INFO):
        model = build_network(opt)
    assert "Ignoring legacy option 'network.clip_finetune'" in caplog.text
    assert isinstance(model, UniQA) and model.prompts == VARIANTS[name]["prompts"]
    assert model.text_features.shape == (5 * len(model.prompts), 64)
    assert name in ARCH_REGISTRY
    with pytest.raises(ConfigError, match="Did you mean 'test_crop'"):
        build_network({"type": name, "backbone": str(tiny_path), "test_crops": "grid"})


def test_vit_b_16_parameter_counts():
    model = UniQA(backbone="random")
    assert sum(p.numel() for p in model.clip.parameters()) == 149_620_737
    assert not any(p.requires_grad for p in model.clip.parameters())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 262_149
    assert sorted(n for n, p in model.head.named_parameters() if p.requires_grad) == [
        "adapter.fc.0.weight", "adapter.fc.2.weight", "score_level"]
    assert not any(p.requires_grad for n, p in model.named_parameters() if not n.startswith("head."))
    assert model.adapter.fc[0].weight.shape == (256, 512)
    v = model.clip.visual
    assert (v.conv1.weight.shape, len(v.transformer.resblocks), v.transformer.resblocks[0].attn.num_heads) \
        == ((768, 3, 16, 16), 12, 12)
    assert model.clip.transformer.resblocks[0].attn.num_heads == 8
    assert model.text_features.shape == (5, 512)


def test_random10_is_deterministic_and_global_is_not(tiny_path):
    model = make(tiny_path).eval()
    img = torch.rand(2, 3, 400, 380)
    a, b = model(img), model(img)
    assert torch.equal(a, b)
    assert torch.equal(make(tiny_path).eval()(img), a)  # a fresh instance (another process) agrees
    torch.manual_seed(0)
    model.test_crop = "random10-global"
    g1, g2 = model(img), model(img)
    assert not torch.equal(g1, g2)
    # same draws as the release's torch.randint(top), torch.randint(left) on a seeded global RNG
    torch.manual_seed(model.crop_seed)
    torch.testing.assert_close(model(img), a)


def test_crop_layouts(tiny_path):
    model = make(tiny_path).eval()
    for mode in ("grid", "center", "five", "random10"):
        model.test_crop = mode  # read on every call (crop_spec), like the other crop options
        assert model.crop_spec.test_crop == mode
        assert model(torch.rand(2, 3, 384, 512)).shape == (2, 1)
    with pytest.raises(ConfigError, match="Valid values"):
        UniQA(backbone=str(tiny_path), test_crop="random")


def test_small_and_mixed_size_images(tiny_path):
    model = make(tiny_path, test_crop="grid").eval()
    small = torch.rand(3, 100, 60)
    images = [small, torch.rand(3, 224, 300), torch.rand(3, 500, 260)]
    scores = model(images)
    assert scores.shape == (3, 1) and torch.all((scores > 0) & (scores < 1))
    for k, img in enumerate(images):  # a score does not depend on the rest of the batch
        torch.testing.assert_close(model(img.unsqueeze(0))[0], scores[k])


def test_eval_forward_is_make_crops_then_score_crops(tiny_path, reference_clip):
    model = make(tiny_path, test_crop="grid", num_crops=4).eval()
    images = [torch.rand(3, 230, 300), torch.rand(3, 260, 224)]
    crops = [make_crops(img, model.crop_spec) for img in images]  # 4 crops each
    scores = model.score_crops(crops)
    assert scores.shape == (2,) and scores.dtype == torch.float32
    torch.testing.assert_close(model(images)[:, 0], scores, rtol=0, atol=1e-6)
    expected = torch.stack([reference_scores(reference_clip, c, ["quality"], [0.2, 0.4, 0.6, 0.8, 1.0],
                                             *adapter_weights(model)).mean() for c in crops])
    torch.testing.assert_close(scores.detach(), expected, rtol=1e-5, atol=1e-5)
    as_uint8 = [(c * 255).round().to(torch.uint8) for c in crops]
    from_uint8 = [c.float() / 255 for c in as_uint8]
    torch.testing.assert_close(model.score_crops(as_uint8), model.score_crops(from_uint8), rtol=0, atol=0)
    mixed = model.score_crops([as_uint8[0], from_uint8[1]])  # uint8 and float in one call
    torch.testing.assert_close(mixed, model.score_crops(from_uint8), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="no images"):
        model.score_crops([])


def test_prompt_groups_need_exactly_five_prompts():
    check_prompt_groups(PROMPT_GROUPS)  # the shipped table (also checked at import)
    bad = dict(PROMPT_GROUPS, sharpness=("blurry image", "fair image", "sharp image"))
    with pytest.raises(ConfigError, match=r"'sharpness' in PROMPT_GROUPS.*holds 3 prompt\(s\).*exactly 5"):
        check_prompt_groups(bad)
    with pytest.raises(ConfigError, match="'one' in my table .*holds 1 prompt"):
        check_prompt_groups({"one": "bad image"}, where="my table")


def test_other_sample_size(tiny_path):
    model = make(tiny_path, sample_size=288, test_crop="center").eval()
    assert model.clip.visual.positional_embedding.shape[0] == 1 + 18 * 18
    assert model(torch.rand(1, 3, 300, 320)).shape == (1, 1)
    with pytest.raises(ValueError, match="expects crops"):
        model.train()(torch.rand(1, 3, 224, 224))


def test_bf16_clip_close_to_fp32(tiny_path):
    model = make(tiny_path, prompts=["quality", "blur"], test_crop="five").eval()
    img = torch.rand(2, 3, 256, 256)
    fp32 = model(img)
    model.clip.to(torch.bfloat16)
    bf16 = model(img)
    assert bf16.dtype == torch.float32
    assert (bf16 - fp32).abs().max() < 0.02


def test_text_encoded_once(tiny_path, monkeypatch):
    calls = []
    original = open_clip.model.CLIP.encode_text
    monkeypatch.setattr(open_clip.model.CLIP, "encode_text",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    model = make(tiny_path)
    assert len(calls) == 1
    before = model.text_features.clone()
    model.train()(torch.rand(2, 3, 224, 224))
    model.eval()(torch.rand(1, 3, 250, 250))
    assert len(calls) == 1
    model.refresh_text_features()
    assert len(calls) == 2 and torch.equal(model.text_features, before)
    assert "text_features" not in model.state_dict()


def test_trainable_state_dict_roundtrip_release_format(tiny_path):
    model = make(tiny_path, seed=1)
    with torch.no_grad():
        model.score_level.add_(0.05)
    sd = model.trainable_state_dict()
    assert sorted(sd) == ["adapter.fc.0.weight", "adapter.fc.2.weight", "score_level"]
    release = {"params": {f"module.{k}": v.clone().half() for k, v in sd.items()}}
    other = make(tiny_path, seed=2)
    assert other.load_trainable_state_dict(release) == ([], [])
    for key, value in other.trainable_state_dict().items():
        torch.testing.assert_close(value, sd[key].half().float())
    rebuilt = UniQA(**model.arch_options)
    rebuilt.load_trainable_state_dict(copy.deepcopy(sd))
    with torch.no_grad():
        rebuilt.head.logit_scale.fill_(math.log(100.0))  # make() changed the head's copy of the scale
    img = torch.rand(1, 3, 240, 240)
    torch.testing.assert_close(rebuilt.eval()(img), model.eval()(img))


def test_mismatched_trainable_weights(tiny_path):
    model = make(tiny_path)
    sd = model.trainable_state_dict()
    bad = {"adapter.fc.0.weight": sd["adapter.fc.0.weight"], "foo": torch.zeros(1),
           "adapter.fc.2.weight": sd["adapter.fc.2.weight"]}
    with pytest.raises(CheckpointError, match=r"missing keys \['score_level'\].*unexpected keys \['foo'\]"):
        model.load_trainable_state_dict(bad)
    assert model.load_trainable_state_dict(bad, strict=False) == (["score_level"], ["foo"])
    wide = make(tiny_path, embedding_dim=48).trainable_state_dict()
    with pytest.raises(CheckpointError, match=r"shape mismatches \['adapter.fc.0.weight: checkpoint "
                                              r"\(48, 64\) vs model \(32, 64\)'"):
        model.load_trainable_state_dict(wide, strict=False)
    with pytest.raises(CheckpointError, match="full module state_dict"):
        model.load_trainable_state_dict(model.state_dict())


def test_train_keeps_clip_frozen_in_eval(tiny_path):
    model = make(tiny_path).train()
    assert model.training and not any(m.training for m in model.clip.modules())
    loss = model(torch.rand(2, 3, 224, 224)).sum()
    loss.backward()
    assert all(p.grad is None for p in model.clip.parameters())
    assert model.score_level.grad is not None and model.adapter.fc[0].weight.grad is not None


def test_pos_embedding_false_warns_and_keeps(tiny_path, caplog):
    with caplog.at_level(logging.WARNING):
        kept = make(tiny_path, pos_embedding=False)
    assert "silently dropped" in caplog.text
    assert kept.clip.visual.positional_embedding.abs().sum() > 0
    dropped = make(tiny_path, pos_embedding=False, drop_pos_embedding=True)
    assert dropped.clip.visual.positional_embedding.abs().sum() == 0
    with pytest.raises(ConfigError, match="only applies with 'pos_embedding: false'"):
        UniQA(backbone=str(tiny_path), drop_pos_embedding=True)
    with pytest.raises(ConfigError, match="Did you mean 'noise'"):
        UniQA(backbone=str(tiny_path), prompts=["nosie"])


def test_forward_is_forward_head_of_forward_features(tiny_path):
    """The split the training loop relies on: the head on the tower's embeddings is the whole network."""
    model = make(tiny_path, prompts=["quality", "blur"], test_crop="grid", num_crops=4)
    crops = torch.rand(3, 3, 224, 224)
    feats = model.forward_features(crops)
    assert feats.shape == (3, 64) and feats.dtype == torch.float32
    assert torch.equal(model.train()(crops), model.forward_head(feats))
    images = [torch.rand(3, 230, 300), torch.rand(3, 224, 224), torch.rand(3, 260, 250)]
    model.eval()
    feats, counts = model.test_crop_features(images)
    crops = [make_crops(img, model.crop_spec) for img in images]  # (K, 3, S, S) each
    assert counts == [c.shape[0] for c in crops] == [4, 4, 4]
    assert torch.equal(feats, model.forward_features(torch.cat(crops)))
    assert torch.equal(model(images), model.forward_head(feats, counts))
    # ragged counts: each image's score is the mean over its own crops
    ragged = model.forward_head(feats[:9], [4, 1, 4])
    torch.testing.assert_close(ragged[:, 0], torch.stack([model.forward_head(f[None]).squeeze() for f in
                                                          (feats[:4], feats[4:5], feats[5:9])]), rtol=0, atol=1e-6)
    # (N, T, D): T crops per image, the mean over them, as the cached evaluation feeds them
    same = torch.rand(2, 3, 300, 300)
    per_image = model.forward_features(make_crops(same, model.crop_spec).flatten(0, 1)).view(2, 4, -1)
    torch.testing.assert_close(model.forward_head(per_image), model(same), rtol=0, atol=1e-6)
    for bad, counts in [(torch.rand(4), None), (torch.rand(2, 4, 64), [4, 4]), (torch.rand(5, 64), [2, 2])]:
        with pytest.raises(ValueError, match="forward_head"):
            model.forward_head(bad, counts)


@pytest.mark.parametrize("dtype", [None, "bf16"])
def test_scoring_only_build_equals_build_then_drop(tiny_path, dtype):
    """keep_text_tower=False embeds the prompts before the image tower exists and frees the text
    tower: the same prompt embeddings, logit scale and scores as building whole and then dropping."""
    options = dict(backbone=str(tiny_path), prompts=["quality", "noise"], use_adapter=False,
                   learnable_levels=False, backbone_dtype=dtype, test_crop="five")
    old = UniQA(**options).eval()
    old.drop_text_tower()
    new = UniQA(**options, keep_text_tower=False).eval()
    assert new.text_tower_dropped and new.clip.transformer is None and new.clip.token_embedding is None
    assert "keep_text_tower" not in new.arch_options
    assert torch.equal(new.text_features, old.text_features)
    assert torch.equal(new.head.logit_scale, old.head.logit_scale)
    img = torch.rand(2, 3, 256, 240, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(new(img), old(img))
    with pytest.raises(RuntimeError, match="text tower was dropped"):
        new.refresh_text_features()
    in_memory = dict(options, backbone="in memory", clip_model=UniQA(**options).clip, keep_text_tower=False)
    given = UniQA(**{k: v for k, v in in_memory.items() if k != "backbone_dtype"})
    assert given.clip.transformer is None and torch.equal(given.text_features, old.text_features)
