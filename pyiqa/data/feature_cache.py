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
folder, so nothing stale is ever read; each row also records its image's size and modification time,
and a changed image invalidates its shard.

Rows index the whole meta CSV, not one split, so every split and few-label subset of a dataset shares
one cache; a run builds only the rows it needs that are missing. Shards of :data:`SHARD_ROWS` rows are
written atomically (``.npy``, then a ``.json`` with the rows, image stats and the ``.npy``'s SHA-256):
a killed build keeps its finished shards, and a corrupted or truncated shard is detected by its
checksum, deleted and rebuilt. Under DDP every rank builds its share of the shards, then every rank
memory-maps the same files.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..archs.crops import DETERMINISTIC_CROPS, CropSpec, make_crops, to_unit_float
from ..utils import dist
from ..utils.atomic import atomic_write, write_bytes
from ..utils.errors import ConfigError, DataError
from .failures import sample_seed

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
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


def shard_id(rows: Sequence[int]) -> str:
    """The name of the shard holding ``rows`` (in order)."""
    return hashlib.sha256(",".join(map(str, rows)).encode()).hexdigest()[:16]


def _image_stat(path: Path) -> List[int]:
    st = path.stat()
    return [int(st.st_size), int(st.st_mtime_ns)]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class FeatureTable:
    """The shards of one cache folder: which rows they hold, and their embeddings (memory-mapped).

    Args:
        folder: the cache folder (``<cache root>/<dataset>_<kind>_<key>``).
        spec: what the embeddings depend on (written to ``spec.json`` for people; the folder name is
            its key).
        image_path: row -> image file, for the per-row size/modification-time check.
    """

    def __init__(self, folder: Path, spec: CacheSpec, image_path: Callable[[int], Path]):
        self.folder, self.spec, self.image_path = Path(folder), spec, image_path
        self.index: Dict[int, Tuple[str, int]] = {}   # row -> (shard id, position in it)
        self.shards: Dict[str, np.ndarray] = {}        # shard id -> memory-mapped (n, K, D)

    # ------------------------------------------------------------------------------------ reading
    def shard_files(self) -> Iterator[Tuple[str, Path, Path]]:
        for meta in sorted(self.folder.glob("shard-*.json")):
            yield meta.stem[len("shard-"):], meta.with_suffix(".npy"), meta

    def open(self, rows: Sequence[int], delete_bad: bool) -> List[int]:
        """Index every valid shard holding one of ``rows``; returns the rows of ``rows`` still missing.

        A shard is valid when its ``.json`` parses, its ``.npy`` has the recorded SHA-256 and shape,
        and every image it holds still has the recorded size and modification time. An invalid shard
        is logged (and deleted when ``delete_bad``: one process deletes, the others only skip it).
        """
        wanted = set(rows)
        self.index, self.shards = {}, {}
        for number, npy, meta in self.shard_files():
            try:
                info = json.loads(meta.read_text())
                shard_rows = [int(r) for r in info["rows"]]
            except (OSError, ValueError, KeyError, TypeError) as err:
                self._bad(number, npy, meta, f"unreadable index ({err})", delete_bad)
                continue
            if not wanted.intersection(shard_rows):
                continue
            reason = self._check_shard(npy, info, shard_rows)
            if reason:
                self._bad(number, npy, meta, reason, delete_bad)
                continue
            self.shards[number] = np.load(npy, mmap_mode="r")
            for pos, row in enumerate(shard_rows):
                self.index[row] = (number, pos)
        return [r for r in sorted(wanted) if r not in self.index]

    def _check_shard(self, npy: Path, info: Dict[str, Any], rows: List[int]) -> str:
        shape = [len(rows), self.spec.per_image, self.spec.dim]
        if not npy.is_file():
            return "its .npy file is missing"
        if info.get("shape") != shape:
            return f"shape {info.get('shape')} recorded, {shape} expected"
        if _file_sha256(npy) != info.get("sha256"):
            return "its .npy file does not match the recorded SHA-256 (corrupted or truncated)"
        for row, stat in zip(rows, info.get("stats", [])):
            path = self.image_path(row)
            try:
                if _image_stat(path) != list(stat):
                    return f"image '{path}' changed since the shard was built"
            except OSError:
                return f"image '{path}' is gone"
        return ""

    def _bad(self, number: str, npy: Path, meta: Path, reason: str, delete: bool) -> None:
        logger.warning("Feature cache %s: shard %s is invalid (%s); it is %s", self.folder, number, reason,
                       "deleted and rebuilt" if delete else "skipped")
        if delete:
            for path in (meta, npy):
                path.unlink(missing_ok=True)

    def get(self, row: int) -> np.ndarray:
        """(K, D) float16 embeddings of ``row`` (a view into the memory-mapped shard)."""
        number, pos = self.index[row]
        return self.shards[number][pos]

    # ------------------------------------------------------------------------------------ writing
    def write_shard(self, rows: List[int], feats: np.ndarray) -> None:
        """Atomically write ``shard-<id>.npy``, then its ``.json`` (only a shard with both counts). The id
        is a hash of the rows, so every process names a shard alike whatever it saw of the folder."""
        npy = self.folder / f"shard-{shard_id(rows)}.npy"
        atomic_write(npy, lambda f: np.save(f, feats.astype(np.float16), allow_pickle=False))
        info = {"rows": rows, "shape": list(feats.shape), "sha256": _file_sha256(npy),
                "stats": [_image_stat(self.image_path(r)) for r in rows]}
        write_bytes(npy.with_suffix(".json"), json.dumps(info).encode())


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
        net: the UniQA network (its frozen tower embeds, its ``crop_spec`` cuts test crops).
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

    def spec(self, ds: Any, kind: str, views: int = 16, seed: int = 0) -> CacheSpec:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        crop = self.net.crop_spec
        if kind == "crops" and crop.test_crop not in DETERMINISTIC_CROPS:
            raise ConfigError(f"network.test_crop: {crop.test_crop} draws new crops at every evaluation, so "
                              f"it cannot be cached; use one of {list(DETERMINISTIC_CROPS)} with "
                              "train.feature_cache: true (random10 draws the same crops per image)")
        per_image = views if kind == "views" else {"center": 1, "five": 5}.get(crop.test_crop, crop.num_crops)
        return CacheSpec(kind=kind, dataset=dataset_identity(ds), tower=self.tower,
                         sample_size=int(self.net.sample_size), transform=repr(ds.transform),
                         crops=dataclasses.asdict(crop) if kind == "crops" else {}, per_image=int(per_image),
                         seed=int(seed) if kind == "views" else 0,
                         dim=int(self.net.clip.visual.proj.shape[1]))

    def folder(self, ds: Any, spec: CacheSpec) -> Path:
        return self.root / f"{ds.name}_{spec.kind}_{spec.key}"

    def prepare(self, ds: Any, kind: str, views: int = 16, seed: int = 0, progress: bool = True) -> FeatureTable:
        """The table of ``ds``'s rows (built where missing, by every rank its share), opened for reading."""
        spec = self.spec(ds, kind, views, seed)
        folder = self.folder(ds, spec)
        table = FeatureTable(folder, spec, ds.image_path)
        rows = sorted(set(ds.rows))
        rank, world = dist.get_rank(), dist.get_world_size()
        if rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            write_bytes(folder / "spec.json", json.dumps(spec.__dict__, indent=2, default=str).encode())
        dist.barrier()
        missing = table.open(rows, delete_bad=rank == 0)
        dist.barrier()  # every rank has the same plan before anyone writes
        what = f"{ds.name} {kind} ({spec.per_image} per image)"
        if missing:
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
            for row, crops in loader:
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
        out = torch.cat([self.net.embed(x[i:i + self.batch_crops])
                         for i in range(0, x.shape[0], self.batch_crops)])
        return [f.cpu().numpy().astype(np.float16) for f in out.split(counts)]


def cache_root(train_opt: Dict[str, Any], runs_root: Path) -> Path:
    """``train.feature_cache_dir`` or ``<runs root>/feature_cache``."""
    return Path(os.path.expanduser(str(train_opt.get("feature_cache_dir") or runs_root / "feature_cache")))
