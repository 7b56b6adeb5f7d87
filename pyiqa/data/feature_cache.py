"""The frozen image tower's embeddings of a dataset, computed once and memory-mapped from disk.

UniQA trains only its adapter and score levels on top of a frozen CLIP, so the tower's output for a
given crop never changes during training. ``train.feature_cache: true`` runs the tower once over

* ``views``: K augmented views of every training image (the training section's own ``augment``,
  random crop + flip, the view ``v`` of row ``r`` drawn from ``sample_seed(seed, v, r)``), and
* ``crops``: the deterministic test crops of every validation/test image (the network's crop protocol
  applied after the section's own ``augment``, exactly as evaluation cuts them),

and stores the embeddings (float16, ``(rows, K, D)`` per shard) under a folder named by a key: a hash
of the dataset's image list, the image tower's weights (file, dtype and positional-embedding changes
included), the transform or crop protocol, the sample size, K and the seed. Any change gives a new
folder, so nothing stale is ever read; each row also records its image's size, modification time and
content hash (``feature_shards.image_fingerprint``: SHA-256 of the file's size and its first and last 64 KiB, read
when the shard is built and again each time it is opened: cheap, and blind only to an edit confined to
the middle of a large file that also keeps its modification time), and a changed image invalidates its
shard.

Rows index the whole meta CSV, not one split, so every split and few-label subset of a dataset shares
one cache; a run builds only the rows it needs that are missing. Shards of :data:`SHARD_ROWS` rows are
written atomically (``.npy``, then a ``.json`` with the shard format, the cache key, the rows, the
array's shape and dtype, the image identities and the ``.npy``'s SHA-256, all covered by one checksum;
see feature_shards.py): a killed build keeps its finished shards, and a shard that is corrupted,
truncated, edited (rows permuted), copied from another cache, of another shape or dtype, or written in
an older format is detected, logged, deleted and rebuilt. (The checksum finds damage and hand edits; it
is not a signature.)
Under DDP every rank builds its share of the shards, then every rank memory-maps the same files. A cache
folder that cannot be written is fine while nothing is missing (a shared read-only cache); otherwise it
is one DataError naming the folder, before anything is built.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..archs.crops import DETERMINISTIC_CROPS, CropSpec, make_crops, to_unit_float
from ..utils import dist
from ..utils.atomic import write_bytes
from ..utils.bounded_read import read_bounded
from ..utils.errors import ConfigError, DataError, OutputError
from ..utils.worker_guard import guarded_batches, reading_failed
from .failures import sample_seed
from .feature_shards import SHARD_JSON_LIMIT, FeatureTable

logger = logging.getLogger(__name__)

#: ``train.views_per_image`` when unset: fixed augmented views cached per training image.
DEFAULT_VIEWS = 16

CACHE_VERSION = 1          # part of the folder key: what the embeddings are (unchanged by SHARD_FORMAT)
SHARD_ROWS = 256           # images per shard file
KINDS = ("views", "crops")


def tower_fingerprint(visual: torch.nn.Module) -> str:
    """SHA-256 of the image tower's parameters and buffers (names, dtypes, shapes, bytes).

    It identifies what the embeddings depend on, whatever the weights came from: a backbone file, a
    random initialisation, a dtype (precision), a resized or dropped positional embedding.
    """
    h = hashlib.sha256()
    for name, tensor in sorted({**dict(visual.named_parameters()), **dict(visual.named_buffers())}.items()):
        t = tensor.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass(frozen=True)
class CacheSpec:
    """Everything the stored embeddings depend on; its hash names the cache folder."""

    kind: str                 # 'views' or 'crops'
    dataset: Dict[str, Any]   # class, folder, meta CSV, image column, hash of the image list, rows
    tower: str                # tower_fingerprint of the frozen image tower
    sample_size: int
    transform: str            # the section's augment (views: the random ops; crops: e.g. a resize)
    crops: Dict[str, Any]     # crops: the CropSpec; views: {}
    per_image: int            # K views or T crops per image
    seed: int                 # views: the run seed; crops: 0
    dim: int                  # embedding width D

    @property
    def key(self) -> str:
        text = json.dumps({"version": CACHE_VERSION, **self.__dict__}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def dataset_identity(ds: Any) -> Dict[str, Any]:
    """The rows a cache indexes: every row of the dataset's meta CSV (after any dropped leading rows)."""
    names = [ds.image_name(r) for r in range(len(ds.table))]
    return {"class": type(ds).__name__, "dataroot": str(Path(ds.dataroot).resolve()),
            "meta_info_file": str(Path(ds.meta_info_file).resolve()), "image_column": ds.img_column,
            "rows": len(names), "images_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest()}


def safe_name(name: str) -> str:
    """A dataset name usable as part of one folder name (no separators: the cache stays in its root)."""
    return re.sub(r"[/\\\x00]", "_", str(name))


class _CropSource(Dataset):
    """Row -> uint8 crops (n, 3, S, S) of one image: its K training views or its test crops."""

    def __init__(self, ds: Any, rows: List[int], spec: CacheSpec, crop_spec: Optional[CropSpec]):
        self.ds, self.rows, self.spec, self.crop_spec = ds, rows, spec, crop_spec

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Tuple[int, torch.Tensor]:
        row = self.rows[i]
        img = self.ds.load_image(row)
        if self.spec.kind == "views":
            views = []
            for v in range(self.spec.per_image):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(sample_seed(self.spec.seed, v, row))
                    views.append(_as_uint8(self.ds.transform(img)))
            return row, torch.stack(views)
        return row, make_crops(_as_uint8(self.ds.transform(img)), self.crop_spec)


def _as_uint8(img: Any) -> torch.Tensor:
    """RGB PIL image -> uint8 (3, H, W); /255 later gives exactly torchvision's to_tensor values."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()


def epoch_views(seed: int, epoch: int, items: int, views: int) -> np.ndarray:
    """Which of the K cached views each of ``items`` training items uses in ``epoch``: a pure function
    of (seed, epoch), so a resumed run and every DDP rank draw the same."""
    return np.random.default_rng([int(seed), int(epoch), 0x5EED]).integers(0, views, size=items)


class FeatureCache:
    """Build (what is missing) and open the cache of one dataset for one run.

    Args:
        root: cache root folder (``train.feature_cache_dir``; default ``<--root>/feature_cache``).
        net: the UniQA network (its ``forward_features`` embeds, its ``crop_spec`` cuts test crops).
        device: where the tower runs.
        workers: DataLoader workers that decode and crop while the tower runs.
        batch_crops: crops per tower forward pass.
    """

    def __init__(self, root: Path, net: Any, device: torch.device, workers: int = 0, batch_crops: int = 64):
        self.root, self.net, self.device = Path(root), net, device
        self.workers, self.batch_crops = workers, batch_crops
        self._tower: Optional[str] = None

    @property
    def tower(self) -> str:
        if self._tower is None:
            self._tower = tower_fingerprint(self.net.clip.visual)
        return self._tower

    def spec(self, ds: Any, kind: str, views: int = DEFAULT_VIEWS, seed: int = 0) -> CacheSpec:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        crop = self.net.crop_spec
        if kind == "crops":
            check_cacheable_crop(crop.test_crop)
        per_image = views if kind == "views" else {"center": 1, "five": 5}.get(crop.test_crop, crop.num_crops)
        return CacheSpec(kind=kind, dataset=dataset_identity(ds), tower=self.tower,
                         sample_size=int(self.net.sample_size), transform=repr(ds.transform),
                         crops=dataclasses.asdict(crop) if kind == "crops" else {}, per_image=int(per_image),
                         seed=int(seed) if kind == "views" else 0,
                         dim=int(self.net.clip.visual.proj.shape[1]))

    def folder(self, ds: Any, spec: CacheSpec) -> Path:
        return self.root / f"{safe_name(ds.name)}_{spec.kind}_{spec.key}"

    def _make_folder(self, folder: Path, spec: CacheSpec) -> None:
        """Create ``folder`` (DataError naming it and the root when it cannot be) and write ``spec.json``
        where it is missing or stale (for people; a read-only cache keeps its own)."""
        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"Feature cache folder '{self.root}' (train.feature_cache_dir) is a file, not a "
                            "folder; name a folder there")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(f"Feature cache folder '{folder}' cannot be created ({err.strerror or err}); "
                            "train.feature_cache_dir must name a folder you can write") from err
        if not folder.is_dir():
            raise DataError(f"Feature cache folder '{folder}' is not a folder; delete or move it")
        text = json.dumps(spec.__dict__, indent=2, default=str).encode()
        try:
            current = read_bounded(folder / "spec.json", SHARD_JSON_LIMIT, "cache description")
        except DataError:
            current = None
        if current != text:
            try:
                write_bytes(folder / "spec.json", text)
            except OutputError as err:
                logger.warning("Feature cache %s: %s", folder, err)

    @staticmethod
    def _check_writable(folder: Path, missing: int, total: int) -> None:
        """DataError before a build starts when no file can be created in ``folder``."""
        try:
            with tempfile.TemporaryFile(dir=folder, prefix=".write-check-"):
                pass
        except OSError as err:
            raise DataError(f"Feature cache folder '{folder}' cannot be written ({err.strerror or err}), "
                            f"and {missing} of {total} images' embeddings are missing from it; make it "
                            "writable or point train.feature_cache_dir at a folder you can write") from err

    def prepare(self, ds: Any, kind: str, views: int = DEFAULT_VIEWS, seed: int = 0,
                progress: bool = True) -> FeatureTable:
        """The table of ``ds``'s rows (built where missing, by every rank its share), opened for reading."""
        spec = self.spec(ds, kind, views, seed)
        folder = self.folder(ds, spec)
        table = FeatureTable(folder, spec, ds.image_path)
        rows = sorted(set(ds.rows))
        rank, world = dist.get_rank(), dist.get_world_size()
        failure: Optional[DataError] = None
        if rank == 0:
            try:
                self._make_folder(folder, spec)
            except DataError as err:  # raised after the barrier, so no rank waits for rank 0 forever
                failure = err
        dist.barrier()
        if failure is not None:
            raise failure
        if not folder.is_dir():
            raise DataError(f"Feature cache folder '{folder}' could not be created (see rank 0's error)")
        missing = table.open(rows, delete_bad=rank == 0)
        dist.barrier()  # every rank has the same plan before anyone writes
        what = f"{ds.name} {kind} ({spec.per_image} per image)"
        if missing:
            self._check_writable(folder, len(missing), len(rows))
            logger.info("Feature cache %s: building %d of %d images' %s in %s", folder.name, len(missing),
                        len(rows), what, folder)
            chunks = [missing[i:i + SHARD_ROWS] for i in range(0, len(missing), SHARD_ROWS)]
            mine = [chunk for j, chunk in enumerate(chunks) if j % world == rank]
            self._build(ds, table, mine, progress and rank == 0, what)
            dist.barrier()
            missing = table.open(rows, delete_bad=False)
            if missing:
                raise DataError(f"Feature cache {folder}: {len(missing)} images still missing after the build "
                                f"(e.g. rows {missing[:5]}); another process may be writing it")
        else:
            logger.info("Feature cache %s: all %d images' %s found in %s", folder.name, len(rows), what, folder)
        return table

    @torch.no_grad()
    def _build(self, ds: Any, table: FeatureTable, shards: List[List[int]], progress: bool, what: str) -> None:
        rows = [r for chunk in shards for r in chunk]
        if not rows:
            return
        crop = self.net.crop_spec if table.spec.kind == "crops" else None
        loader = DataLoader(_CropSource(ds, rows, table.spec, crop), batch_size=None, shuffle=False,
                            num_workers=self.workers, pin_memory=self.device.type == "cuda")
        was_training = self.net.training
        self.net.eval()
        todo = iter(shards)
        chunk = next(todo)
        buffer: List[np.ndarray] = []
        try:
            bar = tqdm(total=len(rows), desc=f"cache {what}", unit="img", disable=not progress,
                       mininterval=2.0)
            pending: List[Tuple[int, torch.Tensor]] = []
            for row, crops in guarded_batches(loader, reading_failed(f"the images of the {what} feature cache")):
                pending.append((row, crops))
                if sum(c.shape[0] for _, c in pending) >= self.batch_crops or len(pending) == len(chunk) - len(buffer):
                    for feats in self._embed([c for _, c in pending]):
                        buffer.append(feats)
                    bar.update(len(pending))
                    pending = []
                    if len(buffer) == len(chunk):
                        table.write_shard(chunk, np.stack(buffer))
                        buffer = []
                        chunk = next(todo, [])
            bar.close()
        finally:
            self.net.train(was_training)

    def _embed(self, crops: List[torch.Tensor]) -> List[np.ndarray]:
        """Tower embeddings (n_i, D) float16 of each image's crops, in one or more forward passes."""
        counts = [c.shape[0] for c in crops]
        # per image: crops of an image smaller than the sample size come upscaled, as floats
        x = torch.cat([to_unit_float(c.to(self.device, non_blocking=True)) for c in crops])
        out = torch.cat([self.net.forward_features(x[i:i + self.batch_crops])
                         for i in range(0, x.shape[0], self.batch_crops)])
        return [f.cpu().numpy().astype(np.float16) for f in out.split(counts)]


def check_cacheable_crop(test_crop: str) -> None:
    """The rule of what the cache can store: test crops drawn the same way at every evaluation
    (checked at start-up by the experiment options, and here for library use)."""
    if test_crop not in DETERMINISTIC_CROPS:
        raise ConfigError(f"'network.test_crop: {test_crop}' draws new crops at every evaluation, so the feature "
                          f"cache cannot store them; use one of {list(DETERMINISTIC_CROPS)} with "
                          "'train.feature_cache: true' (random10 draws the same 10 crops of an image every time)")


def cache_root(feature_cache_dir: Optional[str], runs_root: Path) -> Path:
    """``train.feature_cache_dir`` or ``<runs root>/feature_cache``."""
    return Path(os.path.expanduser(str(feature_cache_dir or runs_root / "feature_cache")))
