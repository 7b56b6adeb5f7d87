"""SPAQ preparer on a fixture in its published layout (Excel workbooks)."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from layouts import spaq, tiny_image
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError

MOS_XLSX = "MOS and Image attribute scores.xlsx"


def test_spaq_csv_splits_and_rerun(tmp_path):
    root, out = tmp_path / "spaq", tmp_path / "out"
    layout = spaq.write(root)
    report = run_prepare("spaq", root, out)
    assert report.dataroot == root / "TestImage"
    table = check_prepared("spaq", out, columns=layout.columns, rows=layout.rows)
    assert list(table.columns[:len(layout.columns)]) == layout.columns
    row = table.iloc[2]
    assert (row["Image name"], row["MOS"], row["Brightness"], row["Sharpness"]) == ("00003.jpg", 22.5, "42", "42.4")
    assert (row["Human"], row["Animal"], row["ISO"], row["Brightness.1"], row["Time0"]) == \
        ("1", "0", "102", "5", "-0.5")
    check_rerun_is_noop("spaq", root, out)


def test_spaq_without_scene_and_exif_workbooks(tmp_path):
    layout = spaq.write(tmp_path / "spaq", images=8, extras=False)
    run_prepare("spaq", tmp_path / "spaq", tmp_path / "out")
    table = check_prepared("spaq", tmp_path / "out", columns=layout.columns, rows=layout.rows)
    assert "Animal" not in table.columns and table["MOS"].tolist()[:2] == [12.5, 17.5]


def test_spaq_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "spaq"
    layout = spaq.write(root)
    (root / "TestImage" / "00004.jpg").unlink()
    report = run_prepare("spaq", root, tmp_path / "out")
    assert report.missing == ["00004.jpg"] and report.rows == layout.rows - 1
    assert "1 of 15 listed images are missing" in caplog.text and "00004.jpg" in caplog.text
    check_prepared("spaq", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1)


def test_spaq_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=rf"expected 'Annotations/{MOS_XLSX}' under --root .*elsewhere"):
        run_prepare("spaq", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_spaq_bad_mos_and_misaligned_scene_sheet_name_the_row(tmp_path):
    root = tmp_path / "spaq"
    spaq.write(root)
    path = root / "Annotations" / MOS_XLSX
    sheet = pd.read_excel(path, engine="openpyxl", dtype={"Image name": str})
    sheet["MOS"] = sheet["MOS"].astype(object)
    sheet.loc[5, "MOS"] = "n/a"
    sheet.to_excel(path, sheet_name="Sheet1", index=False, engine="openpyxl")
    with pytest.raises(DataError, match=r"row 7 \(00006.jpg\): MOS 'n/a' is not a number"):
        run_prepare("spaq", root, tmp_path / "out")
    spaq.write(root)
    scene = root / "Annotations" / "Scene category labels.xlsx"
    sheet = pd.read_excel(scene, engine="openpyxl", dtype={"Image name": str})
    sheet.iloc[[3, 4]] = sheet.iloc[[4, 3]].to_numpy()
    sheet.to_excel(scene, sheet_name="Sheet1", index=False, engine="openpyxl")
    with pytest.raises(DataError, match=r"Scene category labels.xlsx' does not list .* first difference at row 5"):
        run_prepare("spaq", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "spaq"


def test_spaq_output_equals_iqa_pytorchs_meta_file_on_its_real_rows(tmp_path):
    """Workbooks rebuilt from the real rows of IQA-PyTorch's meta CSV (tests/fixtures/real/spaq, written by
    its script from the real workbooks) give back exactly those rows: header, names and values."""
    with open(REAL / "meta_info_SPAQDataset.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    n_mos, n_scene = 7, 9
    root = tmp_path / "spaq"
    # the EXIF sheet's last two columns are renamed Time0, Time1; their own names are not known
    exif_header = ["Image name"] + header[n_mos + n_scene:-2] + ["Time", "Time"]
    for path, head, lo, hi in (("MOS and Image attribute scores.xlsx", header[:n_mos], 0, n_mos),
                               ("Scene category labels.xlsx", ["Image name"] + header[n_mos:n_mos + n_scene],
                                n_mos, n_mos + n_scene),
                               ("EXIF_tags.xlsx", exif_header, n_mos + n_scene, len(header))):
        cells = [[r[0]] + [float(v) for v in r[max(lo, 1):hi]] for r in rows]
        spaq._xlsx(root / "Annotations" / path, head, cells)
    for k, r in enumerate(rows):
        tiny_image(root / "TestImage" / r[0], seed=k)
    run_prepare("spaq", root, tmp_path / "out", few_labels=())
    ours = pd.read_csv(tmp_path / "out" / "meta_info_SPAQDataset.csv")
    theirs = pd.read_csv(REAL / "meta_info_SPAQDataset.csv")  # pandas names the second Brightness .1 too
    assert list(ours.columns[:len(theirs.columns)]) == list(theirs.columns) and len(theirs.columns) == 24
    assert ours["Image name"].tolist() == ["00001.jpg", "00002.jpg", "00003.jpg", "00004.jpg", "00005.jpg"]
    pd.testing.assert_frame_equal(ours[theirs.columns], theirs, check_dtype=False)
    assert ours["MOS"].tolist()[:3] == [48.86, 62.5, 77.25]


def test_spaq_mos_sheet_with_wrong_header_lists_the_sheets(tmp_path):
    root = tmp_path / "spaq"
    spaq.write(root, images=3, extras=False)
    path = root / "Annotations" / MOS_XLSX
    pd.DataFrame({"notes": ["x"]}).to_excel(path, sheet_name="README", index=False, engine="openpyxl")
    with pytest.raises(DataError, match=r"must start with column 'Image name', found \['notes'\] "
                                        r"\(sheets found: \['README'\]\)"):
        run_prepare("spaq", root, tmp_path / "out")
