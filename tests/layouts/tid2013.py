"""TID2013 as published: mos_with_names.txt ('<MOS> <name>' lines), mos_std.txt (one std a line),
distorted_images/ and reference_images/ (BMP), with the release's irregular letter case."""
from __future__ import annotations

from pathlib import Path

from . import Layout, tiny_image

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"  # excerpts; see their SOURCE.md

COLUMNS = ["ref_name", "dist_name", "mos", "std", "distortion_type", "distortion_level"]
REFS = (1, 2, 3, 4, 5, 25)
TYPES = (1, 11)


def dist_name(ref: int, kind: int, level: int) -> str:
    """The release's spelling: level 1 of a reference's first type and of types 11 and 13 is capitalised."""
    if level == 1 and kind in (11, 13):
        return f"I{ref:02d}_{kind:02d}_{level}.BMP"
    return f"{'I' if (kind, level) == (1, 1) else 'i'}{ref:02d}_{kind:02d}_{level}.bmp"


def ref_name(ref: int) -> str:
    return "i25.bmp" if ref == 25 else f"I{ref:02d}.BMP"


def write(root: Path, levels: int = 2) -> Layout:
    mos_lines, std_lines = [], []
    seed = 0
    for r in REFS:
        tiny_image(root / "reference_images" / ref_name(r), seed=1000 + r)
        for t in TYPES:
            for lv in range(1, levels + 1):
                name = dist_name(r, t, lv)
                mos_lines.append(f"{6.5 - lv * 1.1 - t * 0.05 + r * 0.01:.5f} {name}")
                std_lines.append(f"0.{10000 + seed:05d}")
                tiny_image(root / "distorted_images" / name, seed=seed)
                seed += 1
    (root / "mos_with_names.txt").write_text("\n".join(mos_lines) + "\n")
    (root / "mos_std.txt").write_text("\n".join(std_lines) + "\n")
    (root / "mos.txt").write_text("\n".join(line.split()[0] for line in mos_lines) + "\n")
    return Layout(rows=len(mos_lines), columns=COLUMNS, reference="ref_name")


def write_real(root: Path) -> Layout:
    """The real first 60 lines of mos_with_names.txt / mos_std.txt (fixtures/real/tid2013), tiny images."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("mos_with_names.txt", "mos_std.txt"):
        (root / name).write_bytes((REAL / "tid2013" / name).read_bytes())
    names = [line.split()[1] for line in (root / "mos_with_names.txt").read_text().splitlines()]
    for i, name in enumerate(names):
        tiny_image(root / "distorted_images" / name, seed=i, size=(8, 6))
    tiny_image(root / "reference_images" / "I01.BMP", seed=999, size=(8, 6))
    return Layout(rows=len(names), columns=COLUMNS, reference="ref_name")
