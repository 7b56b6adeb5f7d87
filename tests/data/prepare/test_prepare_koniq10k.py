"""KonIQ-10k preparer on a fixture in its published layout."""
from __future__ import annotations

import pandas as pd
import pytest

from layouts import koniq10k
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.meta_info import read_split_pickle, split_from_column
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
        ("1000000.jpg", 20.5, "0.5", "0")
    assert (first["c1"], first["c2"], first["c_total"], first["mos_1to5"]) == ("0.0", "0.11764705882352941",
                                                                              "85", "3.352941")
    last = table.iloc[-1]
    assert (last["mos"], last["split"], last["official_split"]) == (82.25, "2", "test")
    assert table["split"].tolist() == ["0"] * 12 + ["1"] * 3 + ["2"] * 5  # IQA-PyTorch's codes
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


def test_koniq10k_on_the_real_sets_file_equals_iqa_pytorchs_meta_csv(tmp_path):
    """The authors' real koniq10k_distributions_sets.csv (first 40 rows), without the optional scores file,
    gives IQA-PyTorch's published meta rows: same columns, values and split codes 0/1/2."""
    root, out = tmp_path / "koniq10k", tmp_path / "out"
    layout = koniq10k.write_real(root)
    report = run_prepare("koniq10k", root, out)
    assert report.rows == 40 and report.missing == []
    table = check_prepared("koniq10k", out, columns=layout.columns, rows=40, official=True)
    published = pd.read_csv(koniq10k.REAL / "koniq10k" / "meta_info_KonIQ10kDataset.csv", dtype=str)
    assert list(published.columns) == layout.columns
    assert table["img_name"].tolist() == published["img_name"].tolist()
    assert table["split"].tolist() == published["split"].tolist()
    assert table["c_total"].tolist() == published["c_total"].tolist()
    for column in ("mos", "std", "c1", "c2", "c3", "c4", "c5"):
        assert table[column].astype(float).tolist() == published[column].astype(float).tolist(), column
    assert "mos_1to5" not in table.columns
    assert (table.iloc[0]["img_name"], table.iloc[0]["mos"], table.iloc[0]["split"]) == \
        ("10004473376.jpg", 77.3836206897, "0")
    official = read_split_pickle(out / "koniq10k_official.pkl", 1)
    assert {k: len(v) for k, v in official.items()} == {"train": 28, "val": 5, "test": 7}
    assert split_from_column(table, "split", out / "meta_info_KonIQ10kDataset.csv") == official


@pytest.mark.parametrize("cell, message", [("", "MOS '' is empty"), ("inf", "MOS 'inf' is infinite"),
                                           ("-3.5", "MOS '-3.5' is negative")])
def test_koniq10k_bad_mos_cell_names_file_line_and_value(tmp_path, cell, message):
    root = tmp_path / "koniq10k"
    koniq10k.write_real(root)
    sets = root / "koniq10k_distributions_sets.csv"
    lines = sets.read_text().splitlines()
    fields = lines[5].split(",")
    fields[7] = cell
    lines[5] = ",".join(fields)
    sets.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"distributions_sets.csv' line 6 \({fields[0]}\): {message}"):
        run_prepare("koniq10k", root, tmp_path / "out")


def test_koniq10k_repeated_image_with_other_scores_is_refused(tmp_path):
    root = tmp_path / "koniq10k"
    koniq10k.write_real(root)
    sets = root / "koniq10k_distributions_sets.csv"
    lines = sets.read_text().splitlines()
    fields = lines[1].split(",")
    fields[7] = "50.0"
    sets.write_text("\n".join(lines + [",".join(fields)]) + "\n")
    with pytest.raises(DataError, match=r"image '10004473376.jpg' is listed twice with different mos: "
                                        r"77.3836206897 \(line 2\) and 50.0 \(line 42\)"):
        run_prepare("koniq10k", root, tmp_path / "out")
