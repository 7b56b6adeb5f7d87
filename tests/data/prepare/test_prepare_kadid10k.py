"""KADID-10k preparer on a fixture in its published layout."""
from __future__ import annotations

import pandas as pd
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
        ("I01.png", "I01_01_01.png", 4.2, "0.4")
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


def test_kadid10k_rows_of_iqa_pytorchs_meta_csv_come_back_unchanged(tmp_path):
    """dmos.csv re-written from IQA-PyTorch's real KADID-10k rows (the real dmos.csv was not found):
    our CSV gives back its columns and values."""
    layout = kadid10k.write_real(tmp_path / "kadid10k")
    report = run_prepare("kadid10k", tmp_path / "kadid10k", tmp_path / "out")
    assert report.rows == 30
    table = pd.read_csv(tmp_path / "out" / "meta_info_KADID10kDataset.csv", dtype=str)
    published = pd.read_csv(kadid10k.REAL / "kadid10k" / "meta_info_KADID10kDataset.csv", dtype=str)
    assert list(table.columns[:6]) == layout.columns and list(published.columns) == layout.columns[:4]
    assert table[["ref_name", "dist_name"]].equals(published[["ref_name", "dist_name"]])
    for column in ("dmos", "std"):
        assert table[column].astype(float).tolist() == published[column].astype(float).tolist()
    first = table.iloc[0]
    assert (first["dist_name"], first["dmos"], first["std"]) == ("I01_01_01.png", "4.57", "0.496")


@pytest.mark.parametrize("cell, message", [("", "dmos '' is empty"), ("high", "dmos 'high' is not a number"),
                                           ("inf", "dmos 'inf' is infinite"), ("-1", "dmos '-1' is negative")])
def test_kadid10k_bad_dmos_cell_names_file_line_and_value(tmp_path, cell, message):
    root = tmp_path / "kadid10k"
    kadid10k.write(root)
    lines = (root / "dmos.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[2] = cell
    lines[3] = ",".join(fields)
    (root / "dmos.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"dmos.csv' line 4: {message}"):
        run_prepare("kadid10k", root, tmp_path / "out")


def test_kadid10k_repeated_row_is_kept_once_and_logged(tmp_path, caplog):
    root = tmp_path / "kadid10k"
    layout = kadid10k.write(root)
    lines = (root / "dmos.csv").read_text().splitlines()
    (root / "dmos.csv").write_text("\n".join(lines + [lines[2]]) + "\n")
    report = run_prepare("kadid10k", root, tmp_path / "out")
    assert report.rows == layout.rows
    assert "listed more than once with the same scores, kept once: ['I01_01_02.png']" in caplog.text
