"""GeneralNR/LIVEChallenge/AVA datasets, meta CSV + split handling, and the loader helpers."""
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pyiqa.data import build_dataloader, build_dataset, collate_images
from pyiqa.data.loader_options import loader_options
from pyiqa.data.ava_dataset import AVADataset
from pyiqa.data.general_nr_dataset import GeneralNRDataset, LIVEChallengeDataset
from pyiqa.data.meta_info import read_meta_info, read_split_pickle
from pyiqa.utils.errors import ConfigError, DataError


def make_images(root, n, size=(24, 16), prefix="img"):
    """n real JPEGs of (W, H) ``size`` (or a list of sizes); returns their names."""
    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(exist_ok=True)
    names = []
    for i in range(n):
        w, h = size[i] if isinstance(size, list) else size
        name = f"imgs/{prefix}{i:02d}.jpg"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name, quality=90)
        names.append(name)
    return names


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def nr(tmp_path):
    """10 images, MOS 10..100, a split pickle (1: 6/2/2, 2: no val) and a split column."""
    names = make_images(tmp_path, 10)
    split_col = ["train"] * 7 + ["test"] * 3
    csv = write_csv(tmp_path / "meta.csv", ["image_name", "mos", "split_a"],
                    [(n, 10.0 * (i + 1), s) for i, (n, s) in enumerate(zip(names, split_col))])
    pkl = tmp_path / "split.pkl"
    pkl.write_bytes(pickle.dumps({1: {"train": [0, 1, 2, 3, 4, 5], "val": [6, 7], "test": [8, 9]},
                                  2: {"train": [0, 1, 2, 3, 4, 5, 6, 7], "test": [8, 9]}}))
    opt = dict(type="GeneralNRDataset", name="toy", dataroot_target=str(tmp_path), meta_info_file=str(csv))
    return tmp_path, opt, pkl


def mos_of(ds):
    return [float(ds[i]["mos_label"]) for i in range(len(ds))]


def test_item_keys_types_and_split_pickle(nr):
    root, opt, pkl = nr
    ds = build_dataset({**opt, "split_file": str(pkl), "split_index": 1}, "train", "datasets.train")
    assert isinstance(ds, GeneralNRDataset) and len(ds) == 6
    item = ds[0]
    assert set(item) == {"img", "mos_label", "img_path", "failed"} and item["failed"] == []
    assert item["img"].shape == (3, 16, 24) and item["img"].dtype == torch.float32
    assert 0.0 <= item["img"].min() and item["img"].max() <= 1.0
    assert item["mos_label"].shape == (1,) and item["mos_label"].dtype == torch.float32
    assert item["img_path"].endswith("img00.jpg")
    assert mos_of(build_dataset({**opt, "split_file": str(pkl)}, "val", "d")) == [70.0, 80.0]
    assert mos_of(build_dataset({**opt, "split_file": str(pkl)}, "test", "d")) == [90.0, 100.0]
    assert "toy" in ds.describe() and "6 images" in repr(ds) and "train" in repr(ds)


def test_val_falls_back_to_test_with_warning(nr, caplog):
    root, opt, pkl = nr
    with caplog.at_level(logging.WARNING):
        ds = build_dataset({**opt, "split_file": str(pkl), "split_index": 2}, "val", "datasets.val")
    assert mos_of(ds) == [90.0, 100.0]
    assert "validation runs on the TEST split" in caplog.text


def test_split_column_and_all_rows(nr, caplog):
    root, opt, _ = nr
    assert len(build_dataset({**opt, "split_column": "split_a"}, "train", "d")) == 7
    assert len(build_dataset({**opt, "split_column": "split_a"}, "val", "d")) == 3  # falls back to test
    with caplog.at_level(logging.INFO):
        assert len(build_dataset(opt, "test", "d")) == 10
    assert "uses all 10 rows" in caplog.text


def test_mos_normalisation_and_lower_better(nr):
    root, opt, _ = nr
    ds = build_dataset({**opt, "mos_normalize": True, "mos_range": [0, 100]}, "test", "d")
    assert mos_of(ds)[0] == pytest.approx(0.1) and mos_of(ds)[-1] == pytest.approx(1.0)
    flipped = {**opt, "mos_normalize": True, "mos_range": [0, 100], "lower_better": True}
    ds = build_dataset(flipped, "test", "d")
    assert mos_of(ds)[0] == pytest.approx(0.9) and mos_of(ds)[-1] == pytest.approx(0.0)
    with pytest.raises(ConfigError, match=r"datasets\.val_x\.mos_normalize.*mos_range"):
        build_dataset({**opt, "mos_normalize": True}, "val", "datasets.val_x")
    with pytest.raises(ConfigError, match=r"mos_range"):
        build_dataset({**opt, "mos_range": [100, 0]}, "val", "d")


def test_mos_far_outside_mos_range_is_refused_near_misses_warn(nr, caplog):
    """MOS 10..100 against [0, 5]: a wrong scale, refused naming the row; LIVE-like 111.8 on 0-100 warns."""
    root, opt, _ = nr
    with pytest.raises(DataError, match=r"meta\.csv': row 0 \(line 2\) has MOS 10 in column 'mos', far "
                                        r"outside 'datasets\.train\.mos_range' \[0, 5\].*10 such row"):
        build_dataset({**opt, "mos_range": [0, 5]}, "train", "datasets.train")
    with caplog.at_level(logging.WARNING):  # 100 is 11% of the span above [0, 90]: kept, with a warning
        ds = build_dataset({**opt, "mos_range": [0, 90], "mos_normalize": True}, "test", "d")
    assert len(ds) == 10 and "1 MOS value(s) outside mos_range [0, 90]" in caplog.text


def test_enlarge_ratio_img_range_and_legacy_options(nr):
    root, opt, _ = nr
    ds = build_dataset({**opt, "dataset_enlarge_ratio": 3, "img_range": 255.0, "prefetch_mode": None,
                        "num_prefetch_queue": 2}, "train", "d")
    assert len(ds) == 30 and "x3 = 30 items" in ds.describe()
    assert ds[0]["img"].max() > 1.0


def test_unknown_option_suggests_closest(nr):
    root, opt, _ = nr
    with pytest.raises(ConfigError, match=r"datasets\.train\.split_indx.*'split_index'"):
        build_dataset({**opt, "split_indx": 1}, "train", "datasets.train")
    with pytest.raises(ConfigError, match=r"datasets\.train_koniq\.augment\.hfilp.*'hflip'"):
        build_dataset({**opt, "augment": {"hfilp": True}}, "train", "datasets.train_koniq")


def test_livechallenge_drops_first_seven_rows_before_split(tmp_path):
    train7 = make_images(tmp_path, 7, prefix="trainingImages_")
    names = make_images(tmp_path, 5)
    rows = [(n, 1.0) for n in train7] + [(n, 50.0 + i) for i, n in enumerate(names)]
    csv = write_csv(tmp_path / "livec.csv", ["name", "mos"], rows)
    pkl = tmp_path / "s.pkl"
    pkl.write_bytes(pickle.dumps({1: {"train": [0, 1, 2], "val": [], "test": [3, 4]}}))
    opt = dict(type="LIVEChallengeDataset", name="livec", dataroot_target=str(tmp_path),
               meta_info_file=str(csv), split_file=str(pkl))
    ds = build_dataset(opt, "train", "d")
    assert isinstance(ds, LIVEChallengeDataset)
    assert [ds[i]["img_path"].split("/")[-1] for i in range(3)] == ["img00.jpg", "img01.jpg", "img02.jpg"]
    assert mos_of(build_dataset(opt, "test", "d")) == [53.0, 54.0]
    assert len(build_dataset({k: v for k, v in opt.items() if k != "split_file"}, "test", "d")) == 5
    pkl.write_bytes(pickle.dumps({1: {"train": [5]}}))  # row 5 exists in the CSV but not after the drop
    with pytest.raises(DataError, match=r"row index 5 is out of range.*5 usable rows"):
        build_dataset(opt, "train", "d")


def write_ava(tmp_path, votes, official):
    names = make_images(tmp_path, len(votes))
    header = ["name", "mos"] + [f"v{i}" for i in range(1, 11)] + ["official_split"]
    rows = [(n, float(np.dot(np.arange(1, 11), v) / max(sum(v), 1)), *v, s)
            for n, v, s in zip(names, votes, official)]
    return dict(type="AVADataset", name="ava", dataroot_target=str(tmp_path),
                meta_info_file=str(write_csv(tmp_path / "ava.csv", header, rows)))


def test_ava_vote_dist_and_official_split(tmp_path):
    votes = [[0, 0, 1, 2, 3, 4, 0, 0, 0, 0], [1] * 10, [0] * 9 + [5], [2] + [0] * 9]
    opt = write_ava(tmp_path, votes, [0, 0, 1, 2])
    train = build_dataset(opt, "train", "d")
    assert isinstance(train, AVADataset) and len(train) == 2
    item = train[0]
    assert item["mos_dist"].shape == (10,) and item["mos_dist"].dtype == torch.float32
    assert float(item["mos_dist"].sum()) == pytest.approx(1.0)
    assert item["mos_dist"][5].item() == pytest.approx(0.4)
    assert item["mos_label"].item() == pytest.approx(0.5)  # as pyiqa: MOS / 10 (mean vote 5.0)
    assert len(build_dataset(opt, "val", "d")) == 1 and len(build_dataset(opt, "test", "d")) == 1
    batch = collate_images([train[0], train[1]])
    assert batch["mos_dist"].shape == (2, 10)
    with pytest.raises(ConfigError, match=r"datasets\.train\.val_nun.*val_num"):
        build_dataset({**opt, "val_nun": 3}, "train", "datasets.train")


def test_ava_split_file_keeps_the_last_val_num_images_for_validation(tmp_path):
    opt = write_ava(tmp_path, [[1] * 10] * 8, [0] * 8)
    pkl = tmp_path / "ava_split.pkl"
    pkl.write_bytes(pickle.dumps({1: {"train": [0, 1], "val": [2, 3, 4, 5], "test": [6, 7]}}))
    opt = {**opt, "split_file": str(pkl), "val_num": 1}
    rows = {phase: build_dataset(opt, phase, "d").rows for phase in ("train", "val", "test")}
    assert rows == {"train": [0, 1, 2, 3, 4], "val": [5], "test": [6, 7]}


def test_ava_zero_votes_and_bad_official_split(tmp_path):
    opt = write_ava(tmp_path, [[1] * 10, [0] * 10], [1, 0])  # a val row: no train rows move to val
    with pytest.raises(DataError, match=r"ava\.csv.*row 1 .*image 'imgs/img01\.jpg'.*vote counts zero"):
        build_dataset(opt, "train", "d")
    opt = write_ava(tmp_path, [[1] * 10, [1] * 10], [0, 7])
    with pytest.raises(DataError, match=r"row 1 \(line 3\) has '7' in split column 'official_split'"):
        build_dataset(opt, "train", "d")


# --- errors: meta CSV and split files -----------------------------------------------------------
def test_meta_csv_errors(tmp_path):
    with pytest.raises(DataError, match=r"missing\.csv' does not exist"):
        read_meta_info(tmp_path / "missing.csv")
    write_csv(tmp_path / "one.csv", ["name"], [("a.jpg",)])
    with pytest.raises(DataError, match=r"one\.csv' needs at least 2 columns"):
        read_meta_info(tmp_path / "one.csv")
    write_csv(tmp_path / "empty.csv", ["name", "mos"], [])
    with pytest.raises(DataError, match=r"empty\.csv' has a header but no rows"):
        read_meta_info(tmp_path / "empty.csv")
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DataError, match=r"blank\.csv' cannot be parsed"):
        read_meta_info(tmp_path / "blank.csv")
    write_csv(tmp_path / "bad.csv", ["name", "mos"], [("a.jpg", 3.5), ("b.jpg", "n/a")])
    with pytest.raises(DataError, match=r"bad\.csv': row 1 \(line 3\) has MOS 'n/a'"):
        read_meta_info(tmp_path / "bad.csv")


def test_named_columns_read_a_reference_first_csv(tmp_path):
    """pyiqa's synthetic-set layout (ref_name, dist_name, dmos): image and MOS named, not positional."""
    names = make_images(tmp_path, 4)
    csv = write_csv(tmp_path / "fr.csv", ["ref_name", "dist_name", "dmos", "std"],
                    [("ref.png", n, 0.2 * (i + 1), 0.01) for i, n in enumerate(names)])
    opt = dict(type="GeneralNRDataset", name="fr", dataroot_target=str(tmp_path), meta_info_file=str(csv),
               img_column="dist_name", mos_column="dmos", mos_range=[0, 1], lower_better=True,
               mos_normalize=True)
    ds = build_dataset(opt, "test", "datasets.test")
    assert [Path(ds[i]["img_path"]).name for i in range(4)] == [Path(n).name for n in names]
    assert mos_of(ds) == pytest.approx([0.8, 0.6, 0.4, 0.2])  # DMOS flipped: 1 = best
    assert (ds.image_name(0), ds.mos(0)) == (names[0], 0.2)
    with pytest.raises(DataError, match=r"fr\.csv' has no column 'dist' \(image_column\); its columns: "
                                        r"\['ref_name', 'dist_name', 'dmos', 'std'\]"):
        build_dataset({**opt, "img_column": "dist"}, "test", "datasets.test")
    with pytest.raises(DataError, match=r"has MOS 'imgs/img00.jpg' in column 'dist_name'"):
        build_dataset({**opt, "img_column": None, "mos_column": None}, "test", "datasets.test")


def test_split_errors(nr, tmp_path):
    root, opt, pkl = nr
    with pytest.raises(DataError, match=r"split_index 5; available: \[1, 2\]"):
        read_split_pickle(pkl, 5)
    assert read_split_pickle(pkl, "2")["val"] == []  # str index from YAML/CLI overrides is accepted
    with pytest.raises(DataError, match=r"nothere\.pkl' does not exist"):
        build_dataset({**opt, "split_file": str(tmp_path / "nothere.pkl")}, "train", "d")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({1: {"train": [0, 42]}}))
    with pytest.raises(DataError, match=r"bad\.pkl', split 1, 'train': row index 42 is out of range"):
        build_dataset({**opt, "split_file": str(bad)}, "train", "d")
    with pytest.raises(DataError, match=r"no split column 'split_b'.*'split_a'"):
        build_dataset({**opt, "split_column": "split_b"}, "train", "d")
    with pytest.raises(ConfigError, match="not both"):
        build_dataset({**opt, "split_column": "split_a", "split_file": str(pkl)}, "train", "d")


def test_image_error_names_file_and_row(nr):
    root, opt, _ = nr
    ds = build_dataset(opt, "test", "d")
    (root / "imgs" / "img03.jpg").write_bytes(b"")  # unreadable after the start-up check
    with pytest.raises(DataError, match=r"meta\.csv' row 3 \(line 5\).*img03\.jpg"):
        ds[3]


def test_missing_images_and_folder_fail_at_construction_with_names(nr):
    root, opt, _ = nr
    for k in (3, 4):
        (root / "imgs" / f"img0{k}.jpg").unlink()
    with pytest.raises(DataError, match=r"2 of the 10 images .* missing .*img03\.jpg.*img04\.jpg"):
        build_dataset(opt, "test", "datasets.test")
    with pytest.raises(DataError, match=r"dataroot_target.*nowhere.*does not exist"):
        build_dataset({**opt, "dataroot_target": str(root / "nowhere")}, "test", "datasets.test")


def test_unreadable_training_image_is_replaced_and_reported(nr):
    root, opt, pkl = nr
    ds = build_dataset({**opt, "split_file": str(pkl)}, "train", "datasets.train")
    broken = Path(ds[2]["img_path"])
    broken.write_bytes(b"not an image")
    item = ds[2]
    assert item["img_path"] != str(broken) and item["failed"][0][0] == str(broken)
    assert "not a recognised image" in item["failed"][0][1]
    assert ds[2]["img_path"] == item["img_path"]  # the stand-in is deterministic


def test_augmentation_depends_only_on_seed_epoch_and_index(nr):
    _, opt, _ = nr
    ds = build_dataset({**opt, "augment": {"random_crop": 8, "hflip": True}}, "train", "d")
    ds.reseed(5, 0)
    first = ds[4]["img"]
    torch.manual_seed(123)  # the global RNG (a worker's) plays no part
    assert torch.equal(ds[4]["img"], first)
    ds.reseed(5, 1)
    assert not torch.equal(ds[4]["img"], first)


def test_split_index_uses_pyiqas_split_columns(nr):
    root, opt, pkl = nr
    names = [f"imgs/img{i:02d}.jpg" for i in range(10)]
    csv = write_csv(root / "cols.csv", ["image_name", "mos", "ratio802_seed123_split_01", "ratio712_seed123_split_02"],
                    [(n, 10.0 * (i + 1), "train" if i < 8 else "test", "val" if i < 3 else "test")
                     for i, n in enumerate(names)])
    base = {**opt, "meta_info_file": str(csv)}
    assert len(build_dataset({**base, "split_index": 1}, "train", "d")) == 8
    assert len(build_dataset({**base, "split_index": 1}, "test", "d")) == 2
    assert len(build_dataset({**base, "split_index": 2, "split_ratio": 712}, "val", "d")) == 3
    assert len(build_dataset({**base, "split_index": "ratio712_seed123_split_02"}, "test", "d")) == 7
    with pytest.raises(DataError, match=r"no split column 'ratio802_seed123_split_03'.*ratio802_seed123_split_01"):
        build_dataset({**base, "split_index": 3}, "train", "d")
    assert len(build_dataset(base, "train", "d")) == 10  # no split given: every row, e.g. a whole test set


def test_override_phase_evaluates_the_val_part_of_a_train_val_split_file(nr):
    root, opt, _ = nr
    pkl = root / "trainval.pkl"
    pkl.write_bytes(pickle.dumps({1: {"train": [0, 1, 2, 3, 4, 5, 6, 7], "val": [8, 9]}}))
    base = {**opt, "split_file": str(pkl)}
    with pytest.raises(DataError, match="no 'test' rows.*override_phase: val"):
        build_dataset(base, "test", "datasets.test")
    ds = build_dataset({**base, "override_phase": "val"}, "test", "datasets.test")
    assert len(ds) == 2 and "'val'" in ds.split_source
    with pytest.raises(ConfigError, match="override_phase"):
        build_dataset({**base, "override_phase": "dev"}, "test", "datasets.test")


# --- collate / loaders ----------------------------------------------------------------------------
def test_collate_mixed_sizes_and_eval_loader(tmp_path):
    names = make_images(tmp_path, 3, size=[(20, 10), (20, 10), (12, 14)])
    csv = write_csv(tmp_path / "m.csv", ["name", "mos"], [(n, i) for i, n in enumerate(names)])
    opt = dict(type="GeneralNRDataset", name="mixed", dataroot_target=str(tmp_path), meta_info_file=str(csv),
               batch_size_per_gpu=3)
    ds = build_dataset(opt, "val", "d")
    batch = next(iter(build_dataloader(ds, loader_options(opt, "datasets.val"), "val")))
    assert isinstance(batch["img"], list) and [t.shape for t in batch["img"]][2] == (3, 14, 12)
    assert batch["mos_label"].shape == (3, 1) and len(batch["img_path"]) == 3
    same = collate_images([ds[0], ds[1]])
    assert same["img"].shape == (2, 3, 10, 20)
    train_loader = build_dataloader(ds, loader_options(opt, "datasets.train"), "train", seed=0)
    with pytest.raises(DataError, match="different sizes.*random_crop"):
        next(iter(train_loader))


def test_train_loader_seeded_and_drop_last(nr):
    root, opt, _ = nr
    opt = {**opt, "augment": {"random_crop": 8, "hflip": True}, "batch_size_per_gpu": 4}
    ds = build_dataset(opt, "train", "d")

    def epoch():
        torch.manual_seed(0)
        loader = build_dataloader(ds, loader_options(opt, "datasets.train"), "train", seed=7)
        return [(b["img_path"], b["img"]) for b in loader]

    a, b = epoch(), epoch()
    assert len(a) == 2  # 10 images, batch 4, drop_last
    assert all(pa == pb and torch.equal(ia, ib) for (pa, ia), (pb, ib) in zip(a, b))
    with pytest.raises(ConfigError, match=r"datasets\.train\.batch_size_per_gpu' = 16 is larger than the 10"):
        build_dataloader(ds, loader_options({**opt, "batch_size_per_gpu": 16}, "datasets.train"), "train")
    for bad in (0, "eight", True):
        with pytest.raises(ConfigError, match=r"datasets\.train\.batch_size_per_gpu' must be an integer >= 1"):
            build_dataloader(ds, loader_options({**opt, "batch_size_per_gpu": bad}, "datasets.train"), "train")
    with pytest.raises(ConfigError, match=r"datasets\.val_x\.num_worker_per_gpu' must be an integer >= 0"):
        build_dataloader(ds, loader_options({**opt, "num_worker_per_gpu": -1}, "datasets.val_x"), "val")


def test_dataset_class_gets_no_loader_options(nr):
    """Loader keys configure the DataLoader; the dataset constructor never sees them."""
    from pyiqa.data.loader_options import LOADER_KEYS, split_options
    _, opt, _ = nr
    full = {**opt, "batch_size_per_gpu": 4, "num_worker_per_gpu": 0, "use_shuffle": False,
            "max_failed_fraction": 0.1}
    dataset_opt, loader_opt = split_options(full)
    assert set(loader_opt) == set(LOADER_KEYS) and not set(dataset_opt) & set(LOADER_KEYS)
    ds = build_dataset(full, "train", "d")
    assert not any(hasattr(ds, k) for k in LOADER_KEYS)


def test_distributed_train_loader_shards(nr):
    root, opt, _ = nr
    ds = build_dataset(opt, "train", "d")
    one = loader_options({**opt, "batch_size_per_gpu": 1}, "datasets.train")
    loaders = [build_dataloader(ds, one, "train", rank=r, world_size=2, seed=5) for r in (0, 1)]
    seen = [sorted(p for b in loader for p in b["img_path"]) for loader in loaders]
    assert len(seen[0]) == len(seen[1]) == 5 and not set(seen[0]) & set(seen[1])


@pytest.mark.parametrize("name, why", [("../outside.png", "climbs out of the image folder"),
                                       ("/etc/passwd", "is an absolute path")])
def test_meta_csv_names_outside_the_image_folder_are_refused(tmp_path, name, why):
    """A meta CSV handed to training must not make the loader read any file on the machine."""
    from pyiqa.data.meta_info import read_meta_info
    csv_path = tmp_path / "meta.csv"
    csv_path.write_text(f"img_name,mos\na.png,3.0\n{name},4.0\n")
    with pytest.raises(DataError, match=rf"row 1 \(line 3\): image name '{name}' {why}"):
        read_meta_info(csv_path)
