"""AGIN preparer: the table is found by its columns (filename, MOS_nat, MOS_tech, MOS_rat: the authors'
loader), the images by name; all three labels are kept, naturalness is the default label."""
from __future__ import annotations

import pytest

from layouts import agin
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.prepare import get_preparer
from pyiqa.utils.errors import DataError


def test_agin_keeps_all_labels_and_skips_the_partitioned_copies(tmp_path):
    root = tmp_path / "agin"
    layout = agin.write(root)
    run_prepare("agin", root, tmp_path / "out")
    table = check_prepared("agin", tmp_path / "out", columns=layout.columns, rows=layout.rows)
    first, last = table.iloc[0], table.iloc[-1]
    assert (first["img_name"], first["mos_nat"], first["mos_tech"], first["mos_rat"], first["model"]) == \
        ("images/CoCosNet_1.png", 1.1, "4.9", "1.5", "CoCosNet")
    assert (last["img_name"], last["model"]) == ("images/natural_3.png", "natural")
    assert table["model"].iloc[6] == "Inpaint_LaMa"
    assert get_preparer("agin").mos_column == "mos_nat"
    check_rerun_is_noop("agin", root, tmp_path / "out")


def test_agin_out_of_range_scores_are_reported_with_the_observed_range(tmp_path, caplog):
    root = tmp_path / "agin"
    agin.write(root)
    path = root / "AGIN_mos.csv"
    path.write_text(path.read_text().replace(",4.9000,", ",7.5000,"))
    run_prepare("agin", root, tmp_path / "out")
    assert "MOS_tech spans" in caplog.text and "to 7.5, outside the nominal [1.0, 5.0]" in caplog.text


def test_agin_bad_score_and_repeated_image(tmp_path):
    root = tmp_path / "agin"
    agin.write(root)
    path = root / "AGIN_mos.csv"
    original = path.read_text()
    path.write_text(original.replace(",1.5000\n", ",\n", 1))
    with pytest.raises(DataError, match=r"AGIN_mos.csv' line 2: MOS_rat '' is empty"):
        run_prepare("agin", root, tmp_path / "out")
    lines = original.splitlines()
    path.write_text("\n".join(lines + [lines[1].replace(",1.1000,", ",2.0000,")]) + "\n")
    with pytest.raises(DataError, match=r"'images/CoCosNet_1.png' is listed twice with different mos_nat"):
        run_prepare("agin", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_agin_table_and_images_must_be_unambiguous(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"expected one CSV directly under --root .*empty.* found none"):
        run_prepare("agin", tmp_path / "empty", tmp_path / "out")
    root = tmp_path / "agin"
    agin.write(root)
    (root / "copy.csv").write_bytes((root / "AGIN_mos.csv").read_bytes())
    with pytest.raises(DataError, match=r"found 2: \['AGIN_mos.csv', 'copy.csv'\]"):
        run_prepare("agin", root, tmp_path / "out")
    (root / "copy.csv").unlink()
    (root / "more").mkdir()
    (root / "more" / "DALLE2_1.png").write_bytes((root / "images" / "DALLE2_1.png").read_bytes())
    with pytest.raises(DataError, match=r"image 'DALLE2_1.png' exists in 2 places"):
        run_prepare("agin", root, tmp_path / "out")
