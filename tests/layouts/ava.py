"""AVA as published: AVA.txt (15 space-separated integers per line), tags.txt, challenges.txt,
aesthetics_image_lists/*.jpgl (one image id per line) and the downloaded images/<id>.jpg."""
from __future__ import annotations

from pathlib import Path

from . import Layout, tiny_image

COLUMNS = ["img_name", "MOS"] + [f"c{i}" for i in range(1, 11)] + \
          ["semantic_tag1", "semantic_tag2", "official_split", "challenge_id"]
IDS = [953619, 953958, 954184, 954113, 953980, 954175, 953349, 953645, 953897, 953841, 954195, 953873]
TEST_IDS = [953958, 954113, 953349]


def votes(k: int):
    """Ten vote counts of the k-th image: all different, so a shifted column changes the MOS."""
    return [(k * 7 + i * 3) % 11 + i for i in range(10)]


def write(root: Path) -> Layout:
    lines = []
    for k, image_id in enumerate(IDS):
        fields = [k + 1, image_id] + votes(k) + [(k % 5) * 3, 0 if k % 3 else 21, 1396 + k // 4]
        lines.append(" ".join(map(str, fields)))
        tiny_image(root / "images" / f"{image_id}.jpg", seed=k)
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    (root / "tags.txt").write_text("1 Abstract\n3 Animals\n6 Black and White\n9 Candid\n12 Still Life\n"
                                   "21 Nature\n")
    (root / "challenges.txt").write_text("1396 Green_Eyes\n1397 Gold\n1398 Shadow Play\n")
    lists = root / "aesthetics_image_lists"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "generic_test.jpgl").write_text("".join(f"{i}\n" for i in TEST_IDS))
    (lists / "generic_ls_train.jpgl").write_text("".join(f"{i}\n" for i in IDS if i not in TEST_IDS))
    return Layout(rows=len(IDS), columns=COLUMNS, official=True)
