"""AGIQA-3K preparer on a fixture in its published layout."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from layouts import agiqa3k, tiny_image
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError


def test_agiqa3k_csv_splits_and_rerun(tmp_path):
    layout = agiqa3k.write(tmp_path / "agiqa3k")
    run_prepare("agiqa3k", tmp_path / "agiqa3k", tmp_path / "out")
    table = check_prepared("agiqa3k", tmp_path / "out", columns=layout.columns, rows=layout.rows)
    first, styled = table.iloc[0], table.iloc[11]
    assert (first["img_name"], first["mos"], first["std"], first["prompt"]) == \
        ("AttnGAN_normal_000.jpg", 0.5, "0.300", "statue of a man")
    assert (first["mos_align"], first["std_align"], first["generator"]) == ("4.200000000", "0.600", "AttnGAN")
    assert (first["adj1"], first["adj2"], first["style"]) == ("", "", "")
    assert (styled["img_name"], styled["mos"], styled["std"], styled["mos_align"]) == \
        ("xl2.2_normal_001.jpg", 3.8, "0.311", "2.000000000")
    assert (styled["prompt"], styled["adj1"], styled["generator"]) == \
        ("a cat doing karaoke, warm color", "warm color", "xl2.2")
    check_rerun_is_noop("agiqa3k", tmp_path / "agiqa3k", tmp_path / "out")


def test_agiqa3k_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "agiqa3k"
    layout = agiqa3k.write(root)
    (root / "file" / "glide_normal_001.jpg").unlink()
    report = run_prepare("agiqa3k", root, tmp_path / "out")
    assert report.missing == ["glide_normal_001.jpg"] and report.rows == layout.rows - 1
    assert "1 of 12 listed images are missing" in caplog.text and "glide_normal_001.jpg" in caplog.text
    check_prepared("agiqa3k", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1)


def test_agiqa3k_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'data.csv' under --root .*elsewhere"):
        run_prepare("agiqa3k", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_agiqa3k_non_numeric_mos_names_the_line(tmp_path):
    root = tmp_path / "agiqa3k"
    agiqa3k.write(root)
    path = root / "data.csv"
    path.write_text(path.read_text().replace(",1.100000000,", ",n/a,"))
    with pytest.raises(DataError, match=r"data.csv' line 4: mos_quality 'n/a' is not a number"):
        run_prepare("agiqa3k", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "agiqa3k"


def real_root(tmp_path: Path, image_dir: str = "file") -> Path:
    """The real data.csv excerpt (tests/fixtures/real/agiqa3k) with a tiny image for each row."""
    root = tmp_path / "agiqa3k"
    root.mkdir()
    shutil.copy(REAL / "data.csv", root / "data.csv")
    for k, name in enumerate(pd.read_csv(root / "data.csv")["name"]):
        tiny_image(root / image_dir / name, seed=k)
    return root


def test_agiqa3k_real_excerpt(tmp_path):
    root = real_root(tmp_path)
    report = run_prepare("agiqa3k", root, tmp_path / "out", few_labels=())
    assert report.rows == 7 and report.missing == []
    table = check_prepared("agiqa3k", tmp_path / "out", columns=agiqa3k.COLUMNS, rows=7, few_labels=())
    rows = table.set_index("img_name")
    assert rows.loc["AttnGAN_normal_000.jpg", "mos"] == 0.965602553
    assert (rows.loc["AttnGAN_normal_000.jpg", "std"], rows.loc["AttnGAN_normal_000.jpg", "std_align"]) == \
        ("0.223270101", "0.615607722")
    assert rows.loc["AttnGAN_normal_289.jpg", "mos"] == 0.0  # the release's lowest score
    assert rows.loc["midjourney_normal_065.jpg", "mos"] == 4.488740784  # and its highest
    assert (rows.loc["xl2.2_normal_299.jpg", "adj1"], rows.loc["xl2.2_normal_299.jpg", "style"],
            rows.loc["xl2.2_normal_299.jpg", "generator"]) == ("hyper detail", "baroque style", "xl2.2")
    assert rows.loc["AttnGAN_normal_060.jpg", "prompt"] == "artwork with only triangles, anime style"


def test_agiqa3k_images_in_the_archives_own_folder_and_root_one_level_up(tmp_path, caplog):
    root = real_root(tmp_path, image_dir="AGIQA-3K")  # not file/: the zip's folder is not documented
    report = run_prepare("agiqa3k", tmp_path, tmp_path / "out", few_labels=())  # --root one level too high
    assert report.dataroot == root / "AGIQA-3K" and report.rows == 7
    assert f"using '{root}', which does" in caplog.text
    assert f"the images are under '{root / 'AGIQA-3K'}', not '{root / 'file'}'" in caplog.text
