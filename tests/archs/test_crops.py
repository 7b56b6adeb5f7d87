"""Test-crop geometry and cutting: pure functions of the crop options, shared by the model and workers."""
import dataclasses
import pickle

import pytest
import torch

from pyiqa.archs.crops import (TEST_CROPS, CropSpec, make_crop_positions, make_crops, to_unit_float,
                               upscale_short_side)


def positions(h, w, test_crop, num_crops=10, seed=0, s=224):
    return make_crop_positions(h, w, s, test_crop, num_crops, seed)


def test_layouts_stay_inside_the_image():
    for mode, n in (("grid", 10), ("center", 1), ("five", 5), ("random10", 10), ("random10-global", 10)):
        pos = positions(384, 512, mode)
        assert len(pos) == n and all(0 <= i <= 160 and 0 <= j <= 288 for i, j in pos), mode
    assert set(TEST_CROPS) == {"random10", "random10-global", "grid", "center", "five"}


def test_grid_layout():
    pos = positions(384, 512, "grid")  # landscape: 2 rows x 5 columns
    assert sorted({i for i, _ in pos}) == [0, 160] and sorted({j for _, j in pos}) == [0, 72, 144, 216, 288]
    portrait = positions(512, 384, "grid")  # the longer side gets the larger count
    assert sorted({i for i, _ in portrait}) == [0, 72, 144, 216, 288]
    assert positions(224, 224, "grid") == [(0, 0)] * 10
    assert len(set(positions(600, 600, "grid", num_crops=7))) == 7  # prime: thinned 3 x 3 grid
    assert positions(300, 300, "grid", num_crops=1) == [(38, 38)]


def test_center_and_five():
    assert positions(256, 240, "center") == [(16, 8)]
    assert positions(256, 240, "five") == [(16, 8), (0, 0), (0, 16), (32, 0), (32, 16)]


def test_random10_is_seeded_per_call_and_global_draws_from_the_global_rng():
    assert positions(400, 380, "random10") == positions(400, 380, "random10")
    assert positions(400, 380, "random10", seed=1) != positions(400, 380, "random10")
    torch.manual_seed(0)
    first = positions(400, 380, "random10-global")
    assert positions(400, 380, "random10-global") != first  # the global stream moved on
    assert first == positions(400, 380, "random10")  # same draws as a generator seeded alike


def test_upscale_short_side():
    assert upscale_short_side(torch.rand(1, 3, 100, 60), 224).shape[-2:] == (373, 224)
    big = torch.rand(2, 3, 224, 300)
    assert upscale_short_side(big, 224) is big  # large enough: untouched
    up = upscale_short_side(torch.rand(1, 3, 5, 300), 224)
    assert up.shape[-2:] == (224, 13440) and 0 <= up.min() and up.max() <= 1


def test_make_crops_one_image_and_a_batch():
    spec = CropSpec(224, "five", 10, 0)
    img = torch.rand(3, 256, 240)
    crops = make_crops(img, spec)
    assert crops.shape == (5, 3, 224, 224)
    assert torch.equal(crops[0], img[:, 16:240, 8:232]) and torch.equal(crops[4], img[:, 32:, 16:])
    batch = torch.rand(3, 3, 256, 240)
    cut = make_crops(batch, spec)
    assert cut.shape == (3, 5, 3, 224, 224)
    for k in range(3):
        assert torch.equal(cut[k], make_crops(batch[k], spec))


def test_a_batch_shares_one_random10_global_draw():
    spec = CropSpec(224, "random10-global", 4, 0)
    batch = torch.rand(1, 3, 300, 300).expand(2, -1, -1, -1)  # two identical images
    cut = make_crops(batch, spec)
    assert torch.equal(cut[0], cut[1])  # one set of positions per batch, as the release drew them


def test_make_crops_keeps_uint8_and_upscales_small_images_to_float():
    spec = CropSpec(224, "center", 1, 0)
    img = torch.randint(0, 256, (3, 300, 260), dtype=torch.uint8)
    crops = make_crops(img, spec)
    assert crops.dtype == torch.uint8
    torch.testing.assert_close(to_unit_float(crops), make_crops(img.float() / 255, spec), rtol=0, atol=0)
    small = make_crops(torch.randint(0, 256, (3, 100, 60), dtype=torch.uint8), spec)
    assert small.shape == (1, 3, 224, 224) and small.dtype == torch.float32
    assert 0 <= small.min() and small.max() <= 1


def test_spec_is_picklable_for_workers():
    spec = CropSpec(224, "grid", 10, 3)
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.test_crop = "center"  # frozen: a worker's copy cannot drift
