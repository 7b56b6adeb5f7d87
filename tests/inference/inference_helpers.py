"""Files the API tests write: tiny backbones in the release's format, adapter checkpoints, images, and
a huge JPEG.

``write_uniform_jpeg``: a valid baseline JPEG of any size (up to 65535 px a side) written without
holding its pixels. Every 8x8 block of a uniform mid-grey image codes as "DC difference 0, end of
block"; with one-symbol Huffman tables both are the 1-bit code '0', so the scan is all zero bytes: a
20000 x 20000 JPEG is ~1.6 MB of zeros plus a header, written in milliseconds.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import torch

from pyiqa.archs.clip_backbone import save_random_backbone


def write_backbone(path: Path, seed: int) -> Path:
    """A tiny random CLIP in UniQA_weight.pt's format, with a trained-CLIP-like temperature (100) so
    that scores differ between images (random features are nearly parallel)."""
    save_random_backbone(path, config="tiny", dtype=torch.float16, seed=seed)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    sd["logit_scale"] = torch.tensor(math.log(100.0), dtype=torch.float16)
    torch.save(sd, path)
    return path


def write_adapter(path: Path, dim: int = 64, hidden: int = 16, seed: int = 0, scale: float = 0.1,
                  **extra) -> Path:
    """An adapter checkpoint in the release's ``{'params': {...}}`` format (plus ``extra`` entries)."""
    g = torch.Generator().manual_seed(seed)
    params = {"adapter.fc.0.weight": torch.randn(hidden, dim, generator=g) * scale,
              "adapter.fc.2.weight": torch.randn(dim, hidden, generator=g) * scale,
              "score_level": torch.tensor([0.1, 0.3, 0.5, 0.7, 0.95])}
    torch.save({"params": params, **extra}, path)
    return path


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A uint8 HxWx3 image with structure at several scales (not just noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(2 * math.pi * (rng.uniform(1, 6) * xx + rng.uniform(1, 6) * yy
                                          + rng.uniform()))
                    for _ in range(3)], axis=-1) * 0.4 + 0.5
    img += rng.normal(0, rng.uniform(0, 0.15), size=img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def write_uniform_jpeg(path: Path, width: int, height: int) -> Path:
    """Write a grayscale mid-grey ``width`` x ``height`` baseline JPEG to ``path``."""
    dqt = _segment(0xDB, bytes([0x00]) + bytes([1] * 64))  # 8-bit table 0, all ones
    sof = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0]))
    one_code = bytes([1] + [0] * 15)  # one code of length 1
    dht = _segment(0xC4, bytes([0x00]) + one_code + bytes([0x00])    # DC table 0: symbol 0 (diff 0)
                   + bytes([0x10]) + one_code + bytes([0x00]))        # AC table 0: symbol 0x00 (EOB)
    sos = _segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = 2 * blocks  # '0' (DC) + '0' (EOB) per block
    scan_bytes, rest = divmod(bits, 8)
    with open(path, "wb") as f:
        f.write(b"\xff\xd8" + dqt + sof + dht + sos)
        chunk = bytes(1 << 20)
        left = scan_bytes
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
        if rest:  # pad the last byte with 1-bits, as the standard asks
            f.write(bytes([(0xFF >> rest) & 0xFF]))
        f.write(b"\xff\xd9")
    return path
