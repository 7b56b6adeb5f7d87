"""decode_image/to_tensor on real files of every mode a dataset may contain; bounded decoding and
decompression bombs."""
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from pyiqa.data.image_io import decode_image, to_tensor
from pyiqa.utils.errors import DataError


def write_png16(path, arr: np.ndarray, color_type: int) -> None:
    """Minimal 16-bit PNG writer (Pillow cannot write 16-bit RGB/RGBA)."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def test_rgb_jpeg_roundtrip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = decode_image(tmp_path / "a.png")
    assert img.mode == "RGB" and img.size == (30, 20)
    assert np.array_equal(np.asarray(img), arr)
    t = to_tensor(img)
    assert t.shape == (3, 20, 30) and t.dtype == torch.float32
    assert torch.allclose(t[:, 0, 0], torch.tensor(arr[0, 0] / 255.0, dtype=torch.float32))


def test_grayscale_8bit(tmp_path):
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "g.png")
    out = np.asarray(decode_image(tmp_path / "g.png"))
    assert out.shape == (8, 8, 3) and (out == 77).all()


def test_grayscale_16bit_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 257 * 10, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = np.asarray(decode_image(tmp_path / "g16.png"))
    assert out[0, :, 0].tolist() == [0, 10, 128, 255]
    assert (out[..., 0] == out[..., 2]).all()


def test_rgb_16bit_png(tmp_path):
    arr = np.zeros((4, 4, 3), np.uint16)
    arr[..., 0], arr[..., 1], arr[..., 2] = 65535, 257 * 100, 0
    write_png16(tmp_path / "rgb16.png", arr, color_type=2)
    out = np.asarray(decode_image(tmp_path / "rgb16.png"))
    assert out[0, 0].tolist() == [255, 100, 0]


def test_rgba_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 200          # red channel under the alpha
    arr[:2, ..., 3] = 0        # top half fully transparent -> white
    arr[2:, ..., 3] = 255      # bottom half opaque -> (200, 0, 0)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = np.asarray(decode_image(tmp_path / "a.png"))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[3, 0].tolist() == [200, 0, 0]


def test_la_half_transparent(tmp_path):
    la = Image.merge("LA", [Image.new("L", (2, 2), 0), Image.new("L", (2, 2), 128)])
    la.save(tmp_path / "la.png")
    out = np.asarray(decode_image(tmp_path / "la.png"))
    assert abs(int(out[0, 0, 0]) - 127) <= 1  # black at 50% over white


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 255] + [255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 1)
    img.save(tmp_path / "p.png", transparency=0)  # index 0 (blue) is transparent
    out = np.asarray(decode_image(tmp_path / "p.png"))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[1, 1].tolist() == [255, 255, 255]


def test_palette_without_transparency(tmp_path):
    img = Image.new("P", (2, 2), 0)
    img.putpalette([10, 20, 30] + [0] * 765)
    img.save(tmp_path / "p.gif")
    assert np.asarray(decode_image(tmp_path / "p.gif"))[0, 0].tolist() == [10, 20, 30]


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 0, 0, 0)).save(tmp_path / "c.jpg", quality=95)
    img = decode_image(tmp_path / "c.jpg")
    assert img.mode == "RGB" and np.asarray(img).min() > 240  # no ink = white


def test_float_mode(tmp_path):
    Image.fromarray(np.full((3, 3), 0.5, np.float32), "F").save(tmp_path / "f.tiff")
    assert np.asarray(decode_image(tmp_path / "f.tiff"))[0, 0, 0] == 128


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.png.*does not exist"):
        decode_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path):
    (tmp_path / "x.jpg").write_text("hello")
    with pytest.raises(DataError, match=r"x\.jpg.*not a recognised image"):
        decode_image(tmp_path / "x.jpg")


def test_truncated_jpeg(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg.*truncated"):
        decode_image(tmp_path / "cut.jpg")


def test_to_tensor_rejects_non_rgb():
    with pytest.raises(ValueError, match="RGB"):
        to_tensor(Image.new("L", (2, 2)))


def test_max_side_bounds_the_longer_side(tmp_path):
    arr = np.random.default_rng(2).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    assert decode_image(tmp_path / "a.png").size == (300, 200)  # default: the stored pixels
    assert decode_image(tmp_path / "a.png", max_side=100).size == (100, 67)
    assert decode_image(tmp_path / "a.png", max_side=300).size == (300, 200)


def test_jpeg_is_decoded_reduced_and_bomb_checked_on_decoded_pixels(tmp_path, monkeypatch):
    Image.new("RGB", (1024, 768), (90, 120, 150)).save(tmp_path / "big.jpg", quality=90)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # full size (786k px) is over 2x the limit
    with pytest.raises(DataError, match=r"big\.jpg.*decompression bomb"):
        decode_image(tmp_path / "big.jpg")
    img = decode_image(tmp_path / "big.jpg", max_side=256)  # libjpeg decodes at 1/4 scale: 256x192
    assert img.size == (256, 192) and img.mode == "RGB"
    assert np.abs(np.asarray(img, dtype=int) - [90, 120, 150]).max() <= 3


def test_huge_png_needs_an_explicit_opt_in(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # pretend 64x64 is huge
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="big.png.*decompression bomb.*MAX_IMAGE_PIXELS = None"):
        decode_image(tmp_path / "big.png", max_side=32)  # non-JPEGs are decoded at full size first
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # the user's explicit opt-in
    assert decode_image(tmp_path / "big.png").size == (64, 64)
