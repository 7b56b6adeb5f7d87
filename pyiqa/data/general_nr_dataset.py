"""No-reference IQA datasets: an image folder + a meta_info CSV (+ an optional split).

A YAML ``datasets.<phase>`` section is passed to the constructor without its loader keys
(``pyiqa.data.loader_options.LOADER_KEYS``), so the signature below plus those keys *is* the list of valid
options (the registry rejects anything else with the closest valid name).

Which rows a section reads is decided by the class, not by its caller: :meth:`GeneralNRDataset.section_split`
gives, from the meta CSV alone, the split the constructor selects from (pyiqa's rules in
:mod:`pyiqa.data.splits` plus the class's own: rows it drops, an official split, defaults it fills in), so
the split runner plans with exactly the rows training will use.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..utils.errors import ConfigError, DataError
from ..utils.registry import DATASET_REGISTRY
from .image_io import decode_image, to_tensor
from .failures import load_or_replace, sample_seed
from .meta_info import Split, meta_columns, read_meta_info
from .splits import SPLIT_KEYS, find_split, phase_rows
from .transforms import RANDOM_KEYS, build_transform

logger = logging.getLogger(__name__)

PHASES = ("train", "val", "test")
OUT_OF_RANGE_MARGIN = 0.25  # a MOS this far (share of the span) outside mos_range is refused


@DATASET_REGISTRY.register()
class GeneralNRDataset(Dataset):
    """Images with one MOS each, selected by phase from a split pickle or a split column.

    Items are dicts: ``img`` float32 (3, H, W) in [0, img_range], ``mos_label`` float32 (1,) (mapped to
    [0, 1], higher = better, when ``mos_normalize``), ``img_path`` str; training items also carry
    ``failed``: [(path, reason)] of unreadable images replaced by another entry.

    Every listed image of the phase is checked on disk when the dataset is built (a stat, not a
    decode), so a wrong folder fails before training. Training augmentation of item ``i`` in epoch
    ``e`` is drawn from ``sample_seed(seed, e, i)`` (:meth:`reseed`): independent of the worker that
    loads it, hence identical after a resume.

    Args:
        name: dataset name for logs.
        dataroot_target: folder the CSV's image names are relative to.
        meta_info_file: meta_info CSV (by default column 0 image name, column 1 MOS).
        img_column, mos_column: the CSV's image and MOS columns by name, for CSVs in another layout
            (pyiqa's synthetic-distortion sets: ``img_column: dist_name``, ``mos_column: dmos``).
        phase: 'train', 'val' or 'test'; picks the split list.
        split_file, split_index, split_ratio, split_column, override_phase: which rows; pyiqa's rules,
            see :mod:`pyiqa.data.splits`.
        mos_range: [lo, hi] of the MOS scale; required by ``mos_normalize``.
        lower_better: the MOS is a distortion score (e.g. DMOS); flipped when normalising.
        mos_normalize: map MOS to [0, 1] with ``mos_range`` (1 = best).
        augment: transform options, see ``pyiqa.data.transforms.build_transform``.
        img_range: images are scaled to [0, img_range].
        dataset_enlarge_ratio: repeat the image list this many times (longer epochs on small sets).
        where: the section's config path for messages (``datasets.val_koniq``); given by
            ``DATASET_REGISTRY.build``, not by the YAML. Default ``datasets.<phase>``.
    """

    legacy_options = {
        "prefetch_mode": "data is prefetched by DataLoader workers",
        "num_prefetch_queue": "data is prefetched by DataLoader workers (see num_worker_per_gpu)",
    }
    #: Leading meta CSV rows that are not part of the dataset; split indices count rows after them.
    skip_rows = 0

    def __init__(self, name: str, dataroot_target: str, meta_info_file: str, phase: str = "train",
                 img_column: Optional[str] = None, mos_column: Optional[str] = None,
                 split_file: Optional[str] = None, split_index: Optional[Union[int, str]] = None,
                 split_ratio: Union[int, str] = "802", split_column: Optional[str] = None,
                 override_phase: Optional[str] = None, mos_range: Optional[Sequence[float]] = None,
                 lower_better: bool = False, mos_normalize: bool = False,
                 augment: Optional[Dict[str, Any]] = None, img_range: float = 1.0,
                 dataset_enlarge_ratio: int = 1, where: Optional[str] = None):
        super().__init__()
        where = where or f"datasets.{phase}"
        if phase not in PHASES:
            raise ConfigError(f"Dataset '{name}': phase must be one of {list(PHASES)}, got {phase!r}")
        if not isinstance(dataset_enlarge_ratio, int) or dataset_enlarge_ratio < 1:
            raise ConfigError(f"'{where}.dataset_enlarge_ratio' must be an int >= 1, "
                              f"got {dataset_enlarge_ratio!r}")
        if not isinstance(img_range, (int, float)) or img_range <= 0:
            raise ConfigError(f"'{where}.img_range' must be a positive number, got {img_range!r}")
        self.name, self.phase = name, phase
        self.dataroot = Path(dataroot_target)
        self.meta_info_file = Path(meta_info_file)
        self.mos_range = _check_mos_range(mos_range, mos_normalize, where)
        self.lower_better, self.mos_normalize = bool(lower_better), bool(mos_normalize)
        self.img_range = float(img_range)
        self.dataset_enlarge_ratio = dataset_enlarge_ratio
        if not self.dataroot.is_dir():
            raise DataError(f"'{where}.dataroot_target' {self.dataroot} is not a folder "
                            f"({'a file' if self.dataroot.exists() else 'it does not exist'})")

        self.table = self.meta_table(self.meta_info_file, img_column, mos_column)
        self.img_column, self.mos_column = meta_columns(self.table, self.meta_info_file, img_column, mos_column)
        selection = {"meta_info_file": meta_info_file, "split_file": split_file, "split_index": split_index,
                     "split_ratio": split_ratio, "split_column": split_column, "override_phase": override_phase,
                     **self.row_options()}
        source, split = self.find_split(self.table, selection, where)
        self.split_source, rows = phase_rows(source, split, len(self.table), phase, where, override_phase)
        self._validate_rows(rows)
        self._check_images_exist(rows, where)
        self.rows: List[int] = rows * dataset_enlarge_ratio
        mos = self.table[self.mos_column].iloc[rows].to_numpy(dtype=np.float64)
        self.labels = {r: np.float32(v) for r, v in zip(rows, self._to_label(mos))}
        self._check_mos_in_range(rows, mos, where)

        if augment and phase != "train" and any(k in augment for k in RANDOM_KEYS):
            logger.warning("%s: random augmentation %s in phase '%s' makes evaluation non-deterministic",
                           name, [k for k in augment if k in RANDOM_KEYS], phase)
        self.transform = build_transform(augment, f"{where}.augment")
        self.seed, self.epoch = 0, 0
        logger.info(self.describe())

    # --- row selection: one rule for the constructor and for whoever plans a run (the split runner) ---
    @classmethod
    def section_split(cls, options: Dict[str, Any], where: str) -> Tuple[str, Optional[Split]]:
        """(description, split) the rows of config section ``options`` come from, exactly as the
        constructor selects them, read from the meta CSV alone (no image is opened).

        Rows are numbered as the dataset numbers them (after :attr:`skip_rows`); the split is None when
        the section reads every row. Raises what the constructor would: ConfigError/DataError.
        """
        options = cls.source_options(options, where)
        if options.get("meta_info_file") is None:
            raise ConfigError(f"Missing required option '{where}.meta_info_file'")
        table = cls.meta_table(options["meta_info_file"], options.get("img_column"), options.get("mos_column"))
        return cls.find_split(table, options, where)

    @classmethod
    def source_options(cls, options: Dict[str, Any], where: str) -> Dict[str, Any]:
        """``options`` with what the class fills in by itself (DemoIQADataset: its built-in meta CSV and
        split file); none here."""
        return dict(options)

    @classmethod
    def meta_table(cls, meta_info_file: Union[str, Path], img_column: Optional[str] = None,
                   mos_column: Optional[str] = None) -> pd.DataFrame:
        """The dataset's rows of its meta CSV: read and checked (:func:`read_meta_info`), the first
        :attr:`skip_rows` dropped; dataset row r is CSV row r + skip_rows, and split indices count
        dataset rows."""
        table = read_meta_info(meta_info_file, img_column, mos_column)
        if len(table) <= cls.skip_rows:
            raise DataError(f"Meta info CSV '{meta_info_file}' has {len(table)} rows; "
                            f"{cls.__name__} drops the first {cls.skip_rows}")
        return table.iloc[cls.skip_rows:].reset_index(drop=True)

    @classmethod
    def find_split(cls, table: pd.DataFrame, options: Dict[str, Any], where: str
                   ) -> Tuple[str, Optional[Split]]:
        """(description, split or None for every row) of ``options`` over the dataset rows ``table``:
        pyiqa's rules (:func:`pyiqa.data.splits.find_split`) with the class's :meth:`official_split`
        and :meth:`adjust_split_file`."""
        return find_split(table, options.get("meta_info_file"), where,
                          **{key: options.get(key) for key in SPLIT_KEYS},
                          official=lambda: cls.official_split(table, options, where),
                          adjust_split_file=lambda split: cls.adjust_split_file(split, options))

    @classmethod
    def official_split(cls, table: pd.DataFrame, options: Dict[str, Any], where: str) -> Optional[Split]:
        """The split of a section without split_file, split_index or split_column; None = every row."""
        return None

    @classmethod
    def adjust_split_file(cls, split: Split, options: Dict[str, Any]) -> Split:
        """A class's own reading of a split file's lists (AVA's validation list); unchanged here."""
        return split

    def row_options(self) -> Dict[str, Any]:
        """Constructor options besides the split keys that change which rows are read, spelled as in a
        config section, for the class methods above (AVADataset: ``val_num``)."""
        return {}

    def _validate_rows(self, rows: List[int]) -> None:
        """Hook for subclasses to check the selected rows' extra columns at construction time."""

    def _check_images_exist(self, rows: List[int], where: str) -> None:
        missing = [self.image_name(r) for r in dict.fromkeys(rows) if not self.image_path(r).is_file()]
        if missing:
            raise DataError(f"{where}: {len(missing)} of the {len(set(rows))} images that meta CSV "
                            f"'{self.meta_info_file}' lists for this phase are missing under "
                            f"'{self.dataroot}', e.g. {missing[:10]}; is dataroot_target right?")

    def reseed(self, seed: int, epoch: int) -> None:
        """Draw this epoch's augmentations from (seed, epoch, index); set before iterating the loader."""
        self.seed, self.epoch = int(seed), int(epoch)

    # --- labels ----------------------------------------------------------------------------------
    def _to_label(self, mos: np.ndarray) -> np.ndarray:
        if not self.mos_normalize:
            return mos
        lo, hi = self.mos_range
        norm = (mos - lo) / (hi - lo)
        return 1.0 - norm if self.lower_better else norm

    def _check_mos_in_range(self, rows: List[int], mos: np.ndarray, where: str) -> None:
        """Refuse MOS far outside ``mos_range`` (a wrong column or scale); warn about near misses.

        Published scores can pass their nominal scale a little (LIVE's realigned DMOS reaches 111.8 on
        0-100), so only a value more than a quarter of the span outside the range is an error.
        """
        if self.mos_range is None or mos.size == 0:
            return
        lo, hi = self.mos_range
        margin = OUT_OF_RANGE_MARGIN * (hi - lo)
        far = np.flatnonzero((mos < lo - margin) | (mos > hi + margin))
        if far.size:
            row = self.csv_row(rows[int(far[0])])
            raise DataError(f"Meta info CSV '{self.meta_info_file}': row {row} (line {row + 2}) has MOS "
                            f"{mos[far[0]]:g} in column '{self.mos_column}', far outside "
                            f"'{where}.mos_range' [{lo:g}, {hi:g}] (more than {OUT_OF_RANGE_MARGIN:.0%} of "
                            f"its span; {far.size} such row(s)); is mos_range the scale of this file, and "
                            f"'{self.mos_column}' its score column?")
        outside = int(((mos < lo) | (mos > hi)).sum())
        if outside:
            logger.warning("%s: %d MOS value(s) outside mos_range [%g, %g] (observed [%g, %g])",
                           self.name, outside, lo, hi, mos.min(), mos.max())

    # --- items -----------------------------------------------------------------------------------
    def csv_row(self, row: int) -> int:
        """Meta CSV data row (0-based, header excluded) of dataset row ``row``."""
        return row + self.skip_rows

    def image_name(self, row: int) -> str:
        """The meta CSV's image entry of dataset row ``row`` (relative to ``dataroot_target``)."""
        return str(self.table[self.img_column].iat[row])

    def mos(self, row: int) -> float:
        """The raw MOS of dataset row ``row``, as the CSV gives it."""
        return float(self.table[self.mos_column].iat[row])

    def image_path(self, row: int) -> Path:
        return self.dataroot / self.image_name(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        if self.phase == "train":  # an unreadable image is replaced and reported, never fatal here
            (row, img), failed = load_or_replace(index, len(self.rows), self._decode,
                                                 name=lambda i: str(self.image_path(self.rows[i])))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed(self.seed, self.epoch, index))
                img = self.transform(img)
        else:
            (row, img), failed = self._decode(index), []
            img = self.transform(img)
        img_tensor = to_tensor(img)
        if self.img_range != 1.0:
            img_tensor = img_tensor * self.img_range
        item = {"img": img_tensor,
                "mos_label": torch.tensor([self.labels[row]], dtype=torch.float32),
                "img_path": str(self.image_path(row))}
        if self.phase == "train":
            item["failed"] = failed
        item.update(self._extra_item(row))
        return item

    def _decode(self, index: int) -> Tuple[int, Any]:
        """(row, decoded RGB image) of item ``index``; DataError naming the CSV row and file."""
        row = self.rows[index]
        return row, self.load_image(row)

    def load_image(self, row: int) -> Any:
        """The decoded RGB image of dataset row ``row`` (any row of the CSV, not only this phase's),
        before the transform; DataError naming the CSV row and file."""
        try:
            return decode_image(self.image_path(row))  # the stored pixels, no size bound
        except DataError as exc:
            csv_row = self.csv_row(row)
            raise DataError(f"{self.name}: meta CSV '{self.meta_info_file}' row {csv_row} "
                            f"(line {csv_row + 2}): {exc}") from exc

    def _extra_item(self, row: int) -> Dict[str, Any]:
        """Hook for subclasses to add keys to an item."""
        return {}

    def describe(self) -> str:
        """One line for logs: class, name, phase, number of images and where they came from."""
        unique = len(self.rows) // self.dataset_enlarge_ratio
        enlarge = f" x{self.dataset_enlarge_ratio} = {len(self.rows)} items" \
            if self.dataset_enlarge_ratio > 1 else ""
        label = "normalised MOS in [0, 1]" if self.mos_normalize else "raw MOS"
        return (f"{type(self).__name__}('{self.name}', phase={self.phase}): {unique} images{enlarge} "
                f"from {self.split_source}; {label}; root '{self.dataroot}'")

    def __repr__(self) -> str:
        return self.describe()


def _check_mos_range(mos_range: Any, mos_normalize: bool, where: str) -> Optional[tuple]:
    if mos_range is None:
        if mos_normalize:
            raise ConfigError(f"'{where}.mos_normalize' needs '{where}.mos_range: [lo, hi]' "
                              f"(e.g. [0, 100] for KonIQ/LIVEC)")
        return None
    ok = (isinstance(mos_range, (list, tuple)) and len(mos_range) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mos_range)
          and mos_range[0] < mos_range[1])
    if not ok:
        raise ConfigError(f"'{where}.mos_range' must be [lo, hi] with lo < hi, got {mos_range!r}")
    return float(mos_range[0]), float(mos_range[1])


@DATASET_REGISTRY.register()
class LIVEChallengeDataset(GeneralNRDataset):
    """LIVE Challenge (CLIVE): the meta CSV's first 7 rows are the 7 'training' images, which are not
    part of the 1,162-image benchmark; they are dropped *before* split indices are applied.

    IQA-PyTorch's published CSV has 1,169 rows, ``t1.bmp``..``t7.bmp`` first, and its split pickle
    (``livechallenge_seed123.pkl``: train/val lists over rows 0..1161) counts rows after the drop, as
    its own LIVEChallengeDataset does; the 7 images need not be on disk. Our prepared CSV leaves their
    split cells empty: being dropped, they are never read, here or when the split runner asks
    :meth:`section_split`."""

    skip_rows = 7
