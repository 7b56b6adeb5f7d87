"""Option checks, batch arithmetic, optimiser groups, the schedule, locking and exact accumulation."""
from __future__ import annotations

import pytest
import torch
from clip_helpers import clip_options
from helpers import write_yaml

from pyiqa.utils.errors import ConfigError
from train_clip.export import check_exportable
from train_clip.model import build_model
from train_clip.optim import lr_at, param_groups
from train_clip.options import per_rank_batch, validate
from train_clip.step import ContrastiveStep, build_loss, split_micro


def test_world_size_must_divide_the_global_batch():
    assert per_rank_batch(256, 8, 1) == 32 and per_rank_batch(256, 8, 4) == 32
    with pytest.raises(ConfigError, match=r"batch_size=10 .* not divisible by the world size 4"):
        per_rank_batch(10, 4, 1)
    with pytest.raises(ConfigError, match=r"not divisible by train.accum_steps=3"):
        per_rank_batch(8, 2, 3)


def test_options_are_validated_with_suggestions(pairs):
    opt = clip_options("x", pairs)
    validate(opt)
    with pytest.raises(ConfigError, match=r"Unknown option 'train.btach_size'.*Did you mean 'batch_size'"):
        validate(clip_options("x", pairs, train__btach_size=4))
    with pytest.raises(ConfigError, match=r"exactly one starting point"):
        validate(clip_options("x", pairs, model__backbone="random-tiny"))
    with pytest.raises(ConfigError, match=r"'precision' must be one of"):
        validate(clip_options("x", pairs, precision="fp8"))


def test_batch_larger_than_the_dataset_stops_the_run(pairs, tmp_path):
    from train_clip.trainer import main
    yml = write_yaml(tmp_path / "big.yml", clip_options("big", pairs, train__batch_size=32))
    with pytest.raises(ConfigError, match=r"batch_size=32 is larger than the 16 training"):
        main(["-opt", str(yml), "--root", str(tmp_path)])


def test_no_weight_decay_on_norms_biases_embeddings_and_temperature():
    model = build_model({"config": "tiny-64px"})
    decay, rest = param_groups(model, 0.2)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for p in rest["params"]}
    assert {"logit_scale", "token_embedding.weight", "positional_embedding", "visual.class_embedding",
            "visual.positional_embedding", "ln_final.weight", "visual.ln_post.bias"} <= no_decay
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in {names[id(p)] for p in decay["params"]}
    assert not any("bias" in names[id(p)] or "ln_" in names[id(p)] for p in decay["params"])


def test_cosine_schedule_with_linear_warmup():
    assert lr_at(1, 1.0, 100, 10) == pytest.approx(0.1)
    assert lr_at(10, 1.0, 100, 10) == pytest.approx(1.0)
    assert lr_at(55, 1.0, 100, 10, 0.0) == pytest.approx(0.5)
    assert lr_at(100, 1.0, 100, 10, 0.1) == pytest.approx(0.1)


def test_lock_first_blocks_and_reject_unexportable_configs():
    model = build_model({"config": "tiny-64px", "lock_vision_blocks": 1, "lock_text_blocks": 2})
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert "visual.conv1.weight" in frozen and "visual.transformer.resblocks.0.mlp.c_fc.weight" in frozen
    assert "visual.transformer.resblocks.1.mlp.c_fc.weight" not in frozen
    assert "transformer.resblocks.1.attn.out_proj.weight" in frozen and "logit_scale" not in frozen
    with pytest.raises(ConfigError, match=r"lock_vision_blocks=3 but the vision tower has 2 blocks"):
        build_model({"config": "tiny-64px", "lock_vision_blocks": 3})
    odd = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16,
                                           "head_width": 32}, "text_cfg": {"width": 64, "heads": 2, "layers": 1}}
    with pytest.raises(ConfigError, match=r"cannot be exported as a UniQA backbone"):
        check_exportable(build_model({"config": odd}))


def test_gradient_accumulation_gives_the_full_batch_gradient():
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 64, 64, generator=gen)
    tokens = torch.randint(1, 400, (8, 77), generator=gen)
    grads = []
    for accum in (1, 4):
        model = build_model({"config": "tiny-64px"}, seed=3)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        runner = ContrastiveStep(model, model, build_loss(), opt, "fp32", torch.device("cpu"))
        loss = runner.forward_backward(split_micro(images, tokens, accum))
        grads.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (l1, g1), (l4, g4) = grads
    assert l1 == pytest.approx(l4, rel=1e-5)
    assert all(torch.allclose(g1[n], g4[n], rtol=1e-4, atol=1e-6) for n in g1)


@pytest.mark.parametrize("name", ["demo.yml", "uniqa_vitb16.yml"])
def test_shipped_yamls_are_valid(name):
    from helpers import REPO
    from train_clip.options import parse_options
    opt, _ = parse_options(REPO / "options" / "train_clip" / name)
    assert opt["export"]["filename"] == "uniqa_backbone.pt"
