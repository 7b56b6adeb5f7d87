"""KonIQ-10k preparer on a fixture in its published layout."""
from __future__ import annotations

import pytest

from layouts import koniq10k
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.meta_info import read_split_pickle
from pyiqa.utils.errors import DataError


def test_koniq10k_csv_splits_official_and_rerun(tmp_path):
    root, out = tmp_path / "koniq10k", tmp_path / "out"
    layout = koniq10k.write(root)
    report = run_prepare("koniq10k", root, out)
    assert report.dataroot == root / "512x384"
    table = check_prepared("koniq10k", out, columns=layout.columns, rows=layout.rows, official=True)
    first = table.iloc[0]
    # mos is the 0-100 MOS_zscore, std the 1-5 SD, mos_1to5 the release's 1-5 MOS
    assert (first["img_name"], first["mos"], first["std"], first["split"]) == \
        ("1000000.jpg", 20.5, "0.5", "training")
    assert (first["c1"], first["c2"], first["c_total"], first["mos_1to5"]) == ("0.0", "0.11764705882352941",
                                                                              "85", "3.352941")
    last = table.iloc[-1]
    assert (last["mos"], last["split"], last["official_split"]) == (82.25, "test", "test")
    assert table["official_split"].tolist() == ["train"] * 12 + ["val"] * 3 + ["test"] * 5
    assert read_split_pickle(out / "koniq10k_official.pkl", 1) == \
        {"train": list(range(12)), "val": [12, 13, 14], "test": list(range(15, 20))}
    check_rerun_is_noop("koniq10k", root, out)


def test_koniq10k_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root, out = tmp_path / "koniq10k", tmp_path / "out"
    layout = koniq10k.write(root)
    (root / "512x384" / "1000481.jpg").unlink()  # image 13, in the validation set
    report = run_prepare("koniq10k", root, out)
    assert report.missing == ["1000481.jpg"] and report.rows == layout.rows - 1
    assert "1 of 20 listed images are missing" in caplog.text and "1000481.jpg" in caplog.text
    check_prepared("koniq10k", out, columns=layout.columns, rows=layout.rows - 1, official=True)
    assert read_split_pickle(out / "koniq10k_official.pkl", 1)["val"] == [12, 13]


def test_koniq10k_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'koniq10k_distributions_sets.csv' under --root .*elsewhere"):
        run_prepare("koniq10k", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_koniq10k_bad_set_and_bad_mos_name_the_line(tmp_path):
    root = tmp_path / "koniq10k"
    koniq10k.write(root)
    sets = root / "koniq10k_distributions_sets.csv"
    good = sets.read_text()
    sets.write_text(good.replace(",training\n", ",train\n", 1))
    with pytest.raises(DataError, match=r"distributions_sets.csv' line 2: set 'train' is not one of"):
        run_prepare("koniq10k", root, tmp_path / "out")
    lines = good.splitlines()
    lines[3] = lines[3].replace(",27.0,", ",n/a,")
    sets.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 4 \(1000074.jpg\): MOS 'n/a' is not a number"):
        run_prepare("koniq10k", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
