"""TID2013 (Ponomarenko et al., 2013): 3,000 images, 25 references x 24 distortions x 5 levels.

Published layout: ``mos_with_names.txt`` (one ``<MOS> <image name>`` line per distorted image, space
separated, no header), ``mos_std.txt`` (the MOS standard deviation, one number per line, same order),
``distorted_images/`` (``i01_01_1.bmp``: reference 01-25, distortion type 01-24, level 1-5) and
``reference_images/`` (``I01.BMP`` ... ``I24.BMP``, ``i25.bmp``). ``mos.txt`` repeats the MOS without
names and is not read. The MOS is on 0-9, higher = better.

Checked on the real files (``mos_with_names.txt`` and ``mos_std.txt`` as vendored in
github.com/parag2489/Image-Quality, CRLF line ends): 3,000 rows, 25 references, MOS 0.24242-7.21429,
std 0-0.29978; what we write equals IQA-PyTorch's published ``meta_info_TID2013Dataset.csv`` row for row
(names, MOS and std). A MOS or std that is empty, text, ``inf`` or negative is an error naming the line;
an image listed twice is kept once when its scores agree and an error when they differ.

pyiqa's CSV is ``ref_name,dist_name,mos,std``: the names exactly as ``mos_with_names.txt`` spells them
(their case is irregular: ``I01_01_1.bmp``, ``i01_01_2.bmp``, ``I01_11_1.BMP``) and the reference
``I<nn>.BMP`` (``i25.bmp`` for reference 25). We write the same and add the distortion type and level
parsed from the name. Where a listed name is not on disk but a file differing only in letter case is
(copies of the release do not all keep its irregular case), the on-disk spelling is written, so the
image check does not drop the image on a case-sensitive file system.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...utils.errors import DataError
from .label_checks import drop_repeats, scores
from .registry import Annotations, Preparer, register, require
from .user_files import read_text

TITLE = "TID2013"
EXPECTS = "mos_with_names.txt, mos_std.txt, distorted_images/ and reference_images/"
NAME = r"(?i)^i(\d{2})_(\d{2})_(\d)\.bmp$"


def read(root: Path) -> Annotations:
    names_path = require(root, "mos_with_names.txt", TITLE, EXPECTS)
    std_path = require(root, "mos_std.txt", TITLE, EXPECTS)
    table, lines = _read_mos_with_names(names_path)
    table["std"] = _read_std(std_path, len(table), names_path)
    table = drop_repeats(table, "dist_name", ["mos", "std"], [f"line {n}" for n in lines],
                         f"{TITLE}: '{names_path}'")
    parts = table["dist_name"].str.extract(NAME)
    if parts.isna().any().any():
        row = int(parts.isna().any(axis=1).to_numpy().nonzero()[0][0])
        raise DataError(f"{TITLE}: '{names_path}' line {row + 1}: image name {table['dist_name'][row]!r} is "
                        f"not of the form i<ref>_<type>_<level>.bmp")
    refs = ("I" + parts[0] + ".BMP").where(parts[0] != "25", "i25.bmp")  # pyiqa's names for the references
    table.insert(0, "ref_name", _on_disk(refs, Path(root) / "reference_images"))
    table["dist_name"] = _on_disk(table["dist_name"], Path(root) / "distorted_images")
    table["distortion_type"] = parts[1].astype(int)
    table["distortion_level"] = parts[2].astype(int)
    return Annotations(table, reference_column="ref_name")


def _read_mos_with_names(path: Path):
    """``dist_name,mos`` rows of ``mos_with_names.txt`` and their line numbers; DataError on a bad line."""
    rows, lines = [], []
    for number, line in enumerate(read_text(path, f"{TITLE} annotations").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{TITLE}: '{path}' line {number}: expected '<MOS> <image name>', got {line!r}")
        rows.append((fields[1], fields[0]))
        lines.append(number)
    if not rows:
        raise DataError(f"{TITLE}: '{path}' lists no images")
    table = pd.DataFrame(rows, columns=["dist_name", "mos"])
    table["mos"] = scores(table["mos"], [f"line {n}" for n in lines], "MOS", f"{TITLE}: '{path}'")
    return table, lines


def _read_std(path: Path, count: int, names_path: Path) -> pd.Series:
    """The ``count`` numbers of ``mos_std.txt`` (one per line, as ``mos_with_names.txt`` orders them)."""
    lines = [(n, s.strip()) for n, s in enumerate(read_text(path, f"{TITLE} annotations").splitlines(), start=1)
             if s.strip()]
    if len(lines) != count:
        raise DataError(f"{TITLE}: '{path}' has {len(lines)} values for the {count} images of '{names_path}'")
    return pd.Series(scores([s for _, s in lines], [f"line {n}" for n, _ in lines], "std", f"{TITLE}: '{path}'"))


def _on_disk(names: pd.Series, folder: Path) -> pd.Series:
    """``names``, each replaced by the file in ``folder`` that differs only in letter case when the
    listed spelling is absent but that one exists; unchanged when ``folder`` does not exist."""
    if not folder.is_dir():
        return names
    present = {p.name for p in folder.iterdir()}
    by_lower = {name.lower(): name for name in sorted(present)}
    return names.map(lambda n: n if n in present else by_lower.get(n.lower(), n))


register(Preparer(name="tid2013", title=TITLE, meta_file="meta_info_TID2013Dataset.csv",
                  image_dir="distorted_images", expects=EXPECTS, read=read, mos_range=(0.0, 9.0),
                  mos_column="mos", image_column="dist_name", lower_better=False, size=3000,
                  marker="mos_with_names.txt"))
