"""Every input type scores the same image identically; awkward and broken inputs fail clearly."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import to_tensor

import pyiqa
from inference_helpers import smooth_image, write_uniform_jpeg
from pyiqa.data.image_io import decode_image
from pyiqa.inference import DEFAULT_MAX_SIDE, InputError
from pyiqa.utils.errors import DataError


@pytest.fixture(scope="module")
def metric(backbone_file):
    return pyiqa.create_metric("uniqa", device="cpu", backbone=backbone_file)


@pytest.fixture(scope="module")
def center(backbone_file):
    """One crop per image: for the tests about decoding, where the crop protocol does not matter."""
    return pyiqa.create_metric("uniqa", device="cpu", backbone=backbone_file, crops="center")


def test_every_input_type_gives_the_same_score(metric, image_dir):
    path = image_dir / "img0.jpg"
    pil = decode_image(path)
    arr = np.array(pil)
    tensor = to_tensor(pil)
    reference = metric(str(path))
    assert reference.shape == (1,) and reference.dtype == torch.float32
    for x in (path, pil, arr, tensor, tensor[None], torch.from_numpy(arr).permute(2, 0, 1).contiguous(),
              [path], arr[None]):
        assert torch.equal(metric(x), reference), type(x)


def test_lists_mix_types_and_sizes(metric, image_dir):
    paths = sorted(image_dir.iterdir())
    singles = torch.cat([metric(p) for p in paths])
    mixed = [str(paths[0]), decode_image(paths[1]), np.asarray(decode_image(paths[2])),
             to_tensor(decode_image(paths[3]))]
    scores = metric(mixed)
    assert scores.shape == (4,)
    torch.testing.assert_close(scores, singles, rtol=0, atol=1e-6)  # batching changes nothing
    assert scores.std() > 1e-3  # different images, different scores
    small_batches = pyiqa.create_metric("uniqa", backbone=metric.weights["backbone"], batch_size=1)
    torch.testing.assert_close(small_batches(paths), scores, rtol=0, atol=1e-6)


def test_converted_modes_score_like_their_rgb(center, tmp_path):
    rgb = smooth_image(240, 300, seed=7)
    cases = {
        "gray.png": Image.fromarray(rgb[..., 0]),
        "rgba.png": Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
        "gray16.png": Image.fromarray(rgb[..., 1].astype(np.uint16) * 257),
        "palette.png": Image.fromarray(rgb).convert("P"),
    }
    for name, img in cases.items():
        img.save(tmp_path / name)
        expected = center(to_tensor(decode_image(tmp_path / name)))  # training's conversion rules
        assert torch.equal(center(tmp_path / name), expected), name
    gray = Image.open(tmp_path / "gray.png")
    assert torch.equal(center(np.asarray(gray)), center(tmp_path / "gray.png"))  # HxW arrays too


def test_tiny_images_are_upscaled(center, tmp_path):
    Image.new("RGB", (1, 1), (200, 30, 30)).save(tmp_path / "one.png")
    score = center(tmp_path / "one.png")
    assert score.shape == (1,) and torch.isfinite(score).all()
    assert center(torch.rand(3, 5, 300)).shape == (1,)


def test_huge_jpeg_is_decoded_reduced(center, tmp_path):
    path = write_uniform_jpeg(tmp_path / "huge.jpg", 20000, 20000)  # 400 Mpx: over Pillow's limit
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)  # what a plain decoder does
    assert pyiqa.inference.decode_image is decode_image  # public name of the one decoder
    assert decode_image(path, DEFAULT_MAX_SIDE).size == (4096, 4096)  # the metric's bound
    assert torch.isfinite(center(path)).all()
    assert Image.MAX_IMAGE_PIXELS is not None  # the global protection was not switched off


def test_huge_png_is_refused_with_the_opt_in_named(center, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # pretend 64x64 is huge
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="big.png.*decompression bomb.*MAX_IMAGE_PIXELS = None"):
        center(tmp_path / "big.png")


@pytest.mark.parametrize("kind, match", [
    ("missing", "does not exist"),
    ("folder", "is a directory"),
    ("text", "not a recognised image format"),
    ("truncated", "truncated|broken|premature"),
])
def test_unreadable_files(center, image_dir, tmp_path, kind, match):
    path = tmp_path / f"{kind}.jpg"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("hello")
    elif kind == "truncated":
        path.write_bytes((image_dir / "img0.jpg").read_bytes()[:3000])
    with pytest.raises(DataError, match=rf"{kind}.jpg.*({match})"):
        center(path)


@pytest.mark.parametrize("x, match", [
    (torch.rand(1, 3, 64, 64) * 255, r"values in \[0, 1\].*divide by 255"),
    (torch.rand(1, 3, 64, 64) * 2 - 1, r"values in \[0, 1\].*\(x \+ 1\) / 2"),
    (torch.full((3, 64, 64), float("nan")), "NaN"),
    (torch.rand(1, 2, 64, 64), "3 \\(RGB\\) or 1 \\(gray\\) channels.*2 channels"),
    (torch.rand(1, 4, 64, 64), "4 channels.*alpha"),
    (torch.rand(64, 64, 3), "permute"),
    (torch.rand(64, 64), r"\(N, 3, H, W\)"),
    (torch.zeros(3, 64, 64, dtype=torch.int64), "float in \\[0, 1\\]"),
    (np.zeros((3, 64, 64), np.uint8), "transpose"),
    (np.zeros((64, 64, 3), np.int32), "uint8"),
    (np.full((64, 64, 3), 2.0), r"values in \[0, 1\]"),
    (12, "type int"),
    ([], "No images"),
])
def test_bad_inputs(center, x, match):
    with pytest.raises(InputError, match=match):
        center(x)


def test_float_array_and_uint8_tensor_inputs(center, image_dir):
    pil = decode_image(image_dir / "img2.jpg")
    expected = center(pil)
    assert torch.equal(center(np.asarray(pil).astype(np.float32) / 255), expected)
    assert torch.equal(center(torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1)), expected)
