"""ECIQAD preparer on the layout it documents (no public annotation file found): one score CSV, images
found by name, enhancements of one low-light source kept on one side of every split."""
from __future__ import annotations

import pytest

from layouts import eciqad
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError


def test_eciqad_groups_enhancements_by_source(tmp_path):
    root = tmp_path / "eciqad"
    layout = eciqad.write(root)
    run_prepare("eciqad", root, tmp_path / "out")
    table = check_prepared("eciqad", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           reference=layout.reference)
    assert (table["img_name"].iloc[1], table["mos"].iloc[1], table["ref_name"].iloc[1]) == \
        ("enhanced/001_RetinexNet.png", 1.38, "low_001.png")
    check_rerun_is_noop("eciqad", root, tmp_path / "out")


def test_eciqad_without_source_column_warns(tmp_path, caplog):
    root = tmp_path / "eciqad"
    layout = eciqad.write(root, with_source=False)
    run_prepare("eciqad", root, tmp_path / "out")
    check_prepared("eciqad", tmp_path / "out", columns=layout.columns, rows=layout.rows)
    assert "no source-image column" in caplog.text


def test_eciqad_bad_input(tmp_path, caplog):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "other.csv").write_text("file,score\na.png,1\n")
    with pytest.raises(DataError, match=r"with the columns image/image_name/img_name/name/filename and mos/MOS"):
        run_prepare("eciqad", tmp_path / "elsewhere", tmp_path / "out")
    root = tmp_path / "eciqad"
    layout = eciqad.write(root)
    path = root / "ECIQAD_MOS.csv"
    text = path.read_text()
    path.write_text(text.replace(",1.380\n", ",-1.380\n"))
    with pytest.raises(DataError, match=r"ECIQAD_MOS.csv' line 3: mos '-1.380' is negative"):
        run_prepare("eciqad", root, tmp_path / "out")
    path.write_text(text)
    (root / "enhanced" / "002_LIME.png").unlink()
    report = run_prepare("eciqad", root, tmp_path / "out")
    assert report.missing == ["002_LIME.png"] and report.rows == layout.rows - 1
    assert "1 of 20 listed images are missing" in caplog.text
