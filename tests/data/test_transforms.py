"""build_transform: key order, sizes, small-image crops, seeded randomness, config errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from pyiqa.data.transforms import build_transform
from pyiqa.utils.errors import ConfigError


def gradient(w=40, h=30):
    x = np.tile(np.arange(w, dtype=np.uint8)[None, :, None] * 5, (h, 1, 3))
    return Image.fromarray(x)


def test_identity_for_none_and_empty():
    img = gradient()
    for augment in (None, {}):
        assert np.array_equal(np.asarray(build_transform(augment, "d")(img)), np.asarray(img))


def test_hflip_flips_with_seeded_rng():
    img = gradient()
    flip = build_transform({"hflip": True}, "d")
    torch.manual_seed(0)
    outs = [np.asarray(flip(img)) for _ in range(20)]
    flipped = [np.array_equal(o, np.asarray(img)[:, ::-1]) for o in outs]
    unchanged = [np.array_equal(o, np.asarray(img)) for o in outs]
    assert all(f or u for f, u in zip(flipped, unchanged))
    assert any(flipped) and any(unchanged)
    torch.manual_seed(0)
    again = [np.array_equal(np.asarray(flip(img)), np.asarray(img)[:, ::-1]) for _ in range(20)]
    assert again == flipped  # torch's RNG drives it


def test_vflip_false_is_noop():
    img = gradient()
    assert np.array_equal(np.asarray(build_transform({"vflip": False}, "d")(img)), np.asarray(img))


def test_random_crop_sizes_and_reproducible():
    img = gradient(40, 30)
    crop = build_transform({"random_crop": [10, 20]}, "d")
    torch.manual_seed(3)
    a = [np.asarray(crop(img)) for _ in range(5)]
    torch.manual_seed(3)
    b = [np.asarray(crop(img)) for _ in range(5)]
    assert all(x.shape == (10, 20, 3) for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_crop_on_small_image_upscales_first():
    img = gradient(20, 10)  # smaller than the crop in both sides
    assert build_transform({"random_crop": 16}, "d")(img).size == (16, 16)
    assert build_transform({"center_crop": [12, 30]}, "d")(img).size == (30, 12)


def test_resize_int_is_shorter_side_and_list_is_exact():
    img = gradient(40, 20)
    assert build_transform({"resize": 10}, "d")(img).size == (20, 10)
    assert build_transform({"resize": [7, 9]}, "d")(img).size == (9, 7)


def test_keys_applied_in_dict_order():
    img = gradient(40, 20)
    # resize shorter side to 10 (-> 20x10) then centre crop 8 -> 8x8; reversed order gives 10x10
    assert build_transform({"resize": 10, "center_crop": 8}, "d")(img).size == (8, 8)
    assert build_transform({"center_crop": 8, "resize": 10}, "d")(img).size == (10, 10)


def test_unknown_key_names_where_and_suggests():
    with pytest.raises(ConfigError, match=r"datasets\.train\.augment\.random_crp.*'random_crop'"):
        build_transform({"random_crp": 224}, "datasets.train.augment")


@pytest.mark.parametrize("augment, key", [({"hflip": "yes"}, "hflip"), ({"random_crop": 0}, "random_crop"),
                                          ({"resize": [1, 2, 3]}, "resize")])
def test_bad_values_name_the_key(augment, key):
    with pytest.raises(ConfigError, match=rf"datasets\.val\.augment\.{key}"):
        build_transform(augment, "datasets.val.augment")


def test_augment_must_be_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        build_transform(["hflip"], "datasets.train.augment")
