"""Loading the frozen CLIP from the file formats users have, with random weights written to disk."""
import logging
import os

import pytest
import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU

from pyiqa.archs.clip_backbone import (REQUIRED_KEYS, build_clip, config_from_state_dict,
                                       load_clip_state_dict, save_random_backbone)
from pyiqa.utils.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return save_random_backbone(tmp_path_factory.mktemp("clip") / "UniQA_weight.pt", "tiny")


@pytest.fixture(scope="module")
def raw(tiny_path):
    return torch.load(tiny_path, map_location="cpu", weights_only=True)


def test_saved_file_has_release_format(raw):
    for key in REQUIRED_KEYS + ("visual.transformer.resblocks.0.attn.in_proj_weight",
                                "transformer.resblocks.0.mlp.c_fc.weight", "visual.ln_post.weight"):
        assert key in raw
    assert raw["visual.conv1.weight"].dtype == torch.float16
    assert (raw["input_resolution"], raw["context_length"], raw["vocab_size"]) == (224, 77, 49408)


def _wrap(raw, form):
    tensors = {k: v for k, v in raw.items() if torch.is_tensor(v)}
    if form == "bare":
        return raw
    if form == "fp32":
        return {k: v.float() if torch.is_tensor(v) else v for k, v in raw.items()}
    if form == "module":
        return {f"module.{k}": v for k, v in raw.items()}
    if form == "model_state_dict":
        return {"model_state_dict": raw, "optimizer_state_dict": {"state": {}}}
    # open_clip training checkpoint: DDP prefixes inside 'state_dict'
    return {"epoch": 3, "name": "run", "state_dict": {f"module.{k}": v for k, v in tensors.items()},
            "optimizer": {}}


@pytest.mark.parametrize("form", ["bare", "fp32", "module", "model_state_dict", "state_dict"])
def test_load_every_wrapper(tmp_path, raw, form):
    path = tmp_path / f"{form}.pt"
    torch.save(_wrap(raw, form), path)
    sd = load_clip_state_dict(path)
    expected = {k: v for k, v in raw.items() if torch.is_tensor(v)}
    assert set(sd) == set(expected)
    for key in ("visual.proj", "logit_scale", "token_embedding.weight"):
        torch.testing.assert_close(sd[key].float(), expected[key].float())

    model = build_clip(path)
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert isinstance(model.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert isinstance(model.transformer.resblocks[0].mlp.gelu, QuickGELU)
    torch.testing.assert_close(model.visual.proj.detach(), expected["visual.proj"].float())


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="No CLIP checkpoint file exists at .*nope.pt"):
        load_clip_state_dict(tmp_path / "nope.pt")


@pytest.mark.parametrize("name", ["ViT-B/16", "RN50"])
def test_model_names_are_not_downloaded(name):
    with pytest.raises(CheckpointError, match=rf"No file exists at backbone path '{name}'.*cannot be "
                                              r"downloaded.*UniQA_weight.pt.*'random'"):
        build_clip(name)


def test_corrupt_and_truncated_files(tmp_path, tiny_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_clip_state_dict(junk)
    cut = tmp_path / "cut.pt"
    data = tiny_path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_clip_state_dict(cut)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_clip_state_dict(empty)


def test_pickled_objects_are_refused_with_advice(tmp_path):
    path = tmp_path / "obj.pt"
    torch.save({"cfg": logging.Formatter()}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects.*weights_only=False"):
        load_clip_state_dict(path)


def test_not_a_clip_state_dict(tmp_path, raw):
    path = tmp_path / "resnet_head.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match=r"missing required keys .*visual.proj.*text_projection"):
        load_clip_state_dict(path)
    partial = {k: v for k, v in raw.items() if k not in ("logit_scale", "text_projection")}
    torch.save(partial, path)
    with pytest.raises(CheckpointError, match=r"missing required keys \['text_projection', "
                                              r"'logit_scale'\]"):
        load_clip_state_dict(path)
    torch.save({**raw, "visual.layer1.0.conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="ResNet CLIPs are not supported"):
        load_clip_state_dict(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="expected a state dict"):
        load_clip_state_dict(path)


def test_config_read_from_shapes(raw):
    cfg = config_from_state_dict(raw)
    assert cfg == dict(embed_dim=64, vision_width=64, vision_layers=2, patch_size=16, image_size=224,
                       text_width=64, text_layers=2, context_length=77, vocab_size=49408)


def test_pos_embed_resized_on_2d_grid(tiny_path, raw):
    model = build_clip(tiny_path, image_size=288)
    old = raw["visual.positional_embedding"].float()  # (1 + 14*14, D)
    new = model.visual.positional_embedding.detach()  # (1 + 18*18, D)
    assert new.shape == (1 + 18 * 18, old.shape[1])
    torch.testing.assert_close(new[0], old[0], rtol=0, atol=0)  # class token unchanged
    grid = old[1:].reshape(14, 14, -1).permute(2, 0, 1).unsqueeze(0)  # (1, D, 14, 14)
    manual = F.interpolate(grid, size=(18, 18), mode="bicubic", align_corners=False, antialias=True)
    torch.testing.assert_close(new[1:], manual[0].permute(1, 2, 0).reshape(18 * 18, -1))
    assert model.visual.grid_size == (18, 18)
    assert model.encode_image(torch.rand(1, 3, 288, 288)).shape == (1, 64)
    with pytest.raises(ConfigError, match="multiple of the CLIP patch size"):
        build_clip(tiny_path, image_size=300)


def test_random_backbones_warn_and_are_seeded(caplog):
    state = torch.get_rng_state()
    with caplog.at_level(logging.WARNING):
        a = build_clip("random-tiny")
    assert "NOT a quality model" in caplog.text and "NOT image quality" in caplog.text
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    b = build_clip("random-tiny")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not a.training


@pytest.mark.filterwarnings("ignore")  # TorchScript deprecation and tracer notices
def test_torchscript_archive(tmp_path):
    """OpenAI's original .pt files are TorchScript archives; their state dict is what we load."""
    model = build_clip("random-tiny")
    path = tmp_path / "ViT-B-16-jit.pt"
    torch.jit.save(torch.jit.trace_module(model, {"encode_image": torch.rand(1, 3, 224, 224)}), path)
    loaded = build_clip(path)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), loaded.parameters()))


@pytest.mark.parametrize("pass_bytes", [32 * 2 ** 20, 40_000])
@pytest.mark.parametrize("size", [224, 256])
def test_adopted_weights_equal_the_classic_load(tiny_path, monkeypatch, pass_bytes, size):
    """The frozen-backbone loader (mapped file, converted pass by pass, token table kept as stored)
    builds the same network as random init + load_state_dict; 40 kB passes force many re-mappings."""
    import open_clip

    from pyiqa.archs import clip_backbone
    monkeypatch.setattr(clip_backbone, "PASS_BYTES", pass_bytes)
    classic = build_clip(tiny_path, image_size=size)
    adopted = build_clip(tiny_path, image_size=size, visual_dtype=torch.float32)
    assert adopted.token_embedding.weight.dtype == torch.float16  # the file's dtype: rows read on use
    tensors = dict(classic.named_parameters())
    for name, value in adopted.named_parameters():
        assert torch.equal(value.float(), tensors[name]), name
    tokens = open_clip.tokenize(["bad image", "perfect image"])
    image = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(adopted.encode_text(tokens), classic.encode_text(tokens))
        assert torch.equal(adopted.encode_image(image), classic.encode_image(image))
    bf16 = build_clip(tiny_path, image_size=size, visual_dtype=torch.bfloat16)
    assert bf16.visual.conv1.weight.dtype == torch.bfloat16
    assert bf16.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.float32


def test_adopted_weights_do_not_depend_on_the_file(tmp_path):
    """Only the token table stays file-backed: the other weights are copies, so rewriting the file in
    place (same inode and size, other values) after loading changes none of them."""
    # stored in the dtype it is used in: converting would not copy by itself
    path = save_random_backbone(tmp_path / "a" / "b.pt", "tiny", dtype=torch.float32, seed=4)
    model = build_clip(path, visual_dtype=torch.float32)
    before = {k: v.clone() for k, v in model.named_parameters() if k != "token_embedding.weight"}
    other = save_random_backbone(tmp_path / "b.pt", "tiny", dtype=torch.float32,
                                 seed=5).read_bytes()  # same archive name, so same size
    assert len(other) == path.stat().st_size
    with open(path, "r+b") as f:  # in place: a mapped page would now read the new bytes
        f.write(other)
    for name, value in model.named_parameters():
        if name in before:
            assert torch.equal(value, before[name]), name


@pytest.mark.parametrize("backbone", ["file", "random-tiny"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_text_tower_first_build_equals_the_whole_build(tiny_path, monkeypatch, backbone, dtype):
    """``encode_prompts`` sees the text tower before the image tower is loaded (from a file: still on
    the meta device), and gets the embeddings of the whole model; the CLIP returned has no text tower
    and the same image tower. 40 kB passes force many re-mappings in both phases."""
    import open_clip

    from pyiqa.archs import clip_backbone
    monkeypatch.setattr(clip_backbone, "PASS_BYTES", 40_000)
    source = str(tiny_path) if backbone == "file" else backbone
    tokens = open_clip.tokenize(["bad image", "perfect image"])
    whole = build_clip(source, visual_dtype=dtype)
    seen = {}

    def encode(model):
        seen["visual_loaded"] = not model.visual.conv1.weight.is_meta
        with torch.no_grad():
            seen["text"] = model.encode_text(tokens)

    first = build_clip(source, visual_dtype=dtype, encode_prompts=encode)
    assert seen["visual_loaded"] == (backbone != "file")  # random weights are made whole
    with torch.no_grad():
        assert torch.equal(seen["text"], whole.encode_text(tokens))
    assert first.transformer is None and first.token_embedding is None and first.attn_mask is None
    assert not first.training
    params = dict(whole.named_parameters())
    assert sorted(n for n, _ in first.named_parameters()) == sorted(
        n for n in params if n.startswith("visual.") or n == "logit_scale")
    for name, value in first.named_parameters():
        assert value.dtype == params[name].dtype and torch.equal(value, params[name]), name
    image = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(dtype)
    with torch.no_grad():
        assert torch.equal(first.encode_image(image), whole.encode_image(image))


def test_text_tower_first_build_checks_the_text_tower(tmp_path, raw):
    """A file lacking a text-tower tensor fails before the prompts are encoded, naming the tensor."""
    path = tmp_path / "no_text_block.pt"
    torch.save({k: v for k, v in raw.items() if k != "transformer.resblocks.1.ln_2.weight"}, path)
    calls = []
    with pytest.raises(CheckpointError, match=r"transformer\.resblocks\.1\.ln_2\.weight.*not initialised"):
        build_clip(path, visual_dtype=torch.float32, encode_prompts=calls.append)
    assert not calls
