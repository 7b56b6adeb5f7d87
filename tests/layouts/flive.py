"""FLIVE as published: database/ with labels_image.csv (name,mos), labels_patch.csv, the split lists
labels=640_padded.csv (training images, is_valid) and labels640.csv (test images), both in the
authors' 30-column image+patch layout, and the images in their source subfolders."""
from __future__ import annotations

from pathlib import Path
from typing import List

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos"]
BOX = ["width", "height", "top", "left", "bottom", "right"]
HEADER = (["mos_patch_1", "name_patch"] + [f"{b}_patch_1" for b in BOX]
          + [f"{k}_patch_{p}" for p in (2, 3) for k in ["mos"] + BOX]
          + ["mos_image", "name_image"] + [f"{b}_image" for b in BOX])
NAMES = ["voc_emotic_ava/EMOTIC__cwpvmtkuw83q2or3za.jpg", "blur_dataset/motion0044.jpg",
         "voc_emotic_ava/AVA__129332.jpg", "voc_emotic_ava/JPEGImages__2007_001630.jpg",
         "voc_emotic_ava/VOC2012__2008_000497.jpg", "blur_dataset/out_of_focus0059.jpg",
         "EE371R/rq59.jpg", "voc_emotic_ava/AVA__12958.jpg", "voc_emotic_ava/EMOTIC__0yp3ixisn6pvw3uoph.jpg",
         "blur_dataset/motion0091.jpg", "voc_emotic_ava/AVA__927384.jpg", "EE371R/rq73.jpg",
         "voc_emotic_ava/JPEGImages__2008_000203.jpg", "voc_emotic_ava/AVA__894521.jpg",
         "blur_dataset/out_of_focus0351.jpg", "voc_emotic_ava/VOC2012__2010_000500.jpg"]
TEST = [0, 8, 10]          # in labels640.csv (images larger than 640 pixels)
VALID = [3, 6, 13, 15]     # is_valid True in labels=640_padded.csv
UNLISTED = [14]            # in neither list: train, as pyiqa counts it


def mos(k: int) -> float:
    return 0.0 if k == 9 else round(40 + (k * 37) % 50 + 0.123456789 * (k % 7), 9)


def _split_row(k: int) -> List[str]:
    name = NAMES[k]
    stem = name.split("/")[-1]
    patches = [[f"{mos(k) + p:.8f}"] + ["320", "280", "10", "20", "290", "340"] for p in (1, 2, 3)]
    return ([patches[0][0], f"patches/{stem}"] + patches[0][1:] + patches[1] + patches[2]
            + [f"{mos(k):.8f}", name, "800", "700", "0", "0", "700", "800"])


def write(root: Path) -> Layout:
    db = root / "database"
    db.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(NAMES):
        tiny_image(db / name, seed=k)
    (db / "labels_image.csv").write_text(
        "name,mos\n" + "".join(f"{n},{mos(k)}\n" for k, n in enumerate(NAMES)))
    (db / "labels_patch.csv").write_text(
        "name,mos\n" + "".join(f"patches/{NAMES[k].split('/')[-1]}_patch_{p},{mos(k) + p}\n"
                               for k in range(3) for p in (1, 2, 3)))
    train_val = [k for k in range(len(NAMES)) if k not in TEST + UNLISTED]
    (db / "labels=640_padded.csv").write_text(
        ",".join(HEADER + ["is_valid"]) + "\n"
        + "".join(",".join(_split_row(k) + [str(k in VALID)]) + "\n" for k in train_val))
    (db / "labels640.csv").write_text(
        ",".join(HEADER) + "\n" + "".join(",".join(_split_row(k)) + "\n" for k in TEST))
    return Layout(rows=len(NAMES), columns=COLUMNS, official=True)
