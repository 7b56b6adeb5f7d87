"""KADID-10k preparer on a fixture in its published layout."""
from __future__ import annotations

import pytest

from layouts import kadid10k
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError


def test_kadid10k_csv_splits_and_rerun(tmp_path):
    layout = kadid10k.write(tmp_path / "kadid10k")
    run_prepare("kadid10k", tmp_path / "kadid10k", tmp_path / "out")
    table = check_prepared("kadid10k", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           reference=layout.reference)
    first = table.iloc[0]
    assert (first["ref_name"], first["dist_name"], first["dmos"], first["std"]) == \
        ("I01.png", "I01_01_01.png", 4.2, "0.400")
    assert (first["distortion_type"], first["distortion_level"]) == ("1", "1")
    check_rerun_is_noop("kadid10k", tmp_path / "kadid10k", tmp_path / "out")


def test_kadid10k_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "kadid10k"
    layout = kadid10k.write(root)
    (root / "images" / "I02_01_02.png").unlink()
    report = run_prepare("kadid10k", root, tmp_path / "out")
    assert report.missing == ["I02_01_02.png"] and report.rows == layout.rows - 1
    assert "1 of 24 listed images are missing" in caplog.text and "I02_01_02.png" in caplog.text
    check_prepared("kadid10k", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1,
                   reference=layout.reference)


def test_kadid10k_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'dmos.csv' under --root .*elsewhere"):
        run_prepare("kadid10k", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()
