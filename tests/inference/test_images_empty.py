"""Images without pixels fail with InputError (not ZeroDivisionError), whatever their type."""
import numpy as np
import pytest
import torch
from PIL import Image

import pyiqa
from pyiqa.inference import InputError


@pytest.fixture(scope="module")
def center(backbone_file):
    return pyiqa.create_metric("uniqa", device="cpu", backbone=backbone_file, crops="center")


@pytest.mark.parametrize("x", [
    np.zeros((0, 0, 3), np.uint8),
    np.zeros((48, 0, 3), np.uint8),
    np.zeros((0, 48), np.uint8),
    np.zeros((0, 0, 3), np.float32),
    Image.new("RGB", (0, 0)),
    torch.zeros(3, 0, 0),
], ids=["0x0", "Hx0", "0xW-gray", "0x0-float", "pil-0x0", "tensor-0x0"])
def test_empty_image_is_an_input_error(center, x):
    with pytest.raises(InputError, match="(?i)empty image"):
        center(x)


def test_empty_image_in_a_list_names_its_shape(center):
    good = np.full((40, 40, 3), 128, np.uint8)
    with pytest.raises(InputError, match=r"shape \(0, 0, 3\)"):
        center([good, np.zeros((0, 0, 3), np.uint8)])
    assert center(good).shape == (1,)  # the metric is still usable


def test_metric_mode_comes_from_the_card(center):
    assert center.metric_mode == "NR" == center.card.metric_mode
