"""The two feeds of the score head: live embeddings of the images a loader reads, and a feature cache's
stored ones. Same crops in, same head outputs out (up to the cache's float16 storage)."""
import numpy as np
import pytest
import torch

from pyiqa.archs import UniQA
from pyiqa.data import build_dataloader, build_dataset
from pyiqa.data.loader_options import loader_options
from pyiqa.data.cached_dataset import CachedTrainLoader, cached_crops_loader
from pyiqa.data.failures import sample_seed
from pyiqa.data.feature_cache import FeatureCache, epoch_views
from pyiqa.data.image_io import to_tensor
from pyiqa.models.embedding_feed import EmbeddingFeed
from pyiqa.models.predict import predict

CPU = torch.device("cpu")
SEED, VIEWS = 5, 3


def _dataset(demo, phase, **extra):
    opt = {"type": "GeneralNRDataset", "name": "demo", "dataroot_target": str(demo["root"]),
           "meta_info_file": str(demo["meta_info_file"]), "split_file": str(demo["split_file"]),
           "split_index": 1, "mos_range": [0, 100], "mos_normalize": True, **extra}
    return build_dataset(opt, phase, where=f"datasets.{phase}")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return UniQA(backbone="random-tiny", embedding_dim=16, test_crop="five")


def test_live_and_stored_training_feeds_give_the_same_head_outputs(tmp_path, demo_data, net):
    ds = _dataset(demo_data, "train", augment={"hflip": True, "random_crop": 224})
    images = build_dataloader(ds, loader_options({"batch_size_per_gpu": 6}, "datasets.train"), "train", seed=SEED)
    table = FeatureCache(tmp_path, net, CPU).prepare(ds, "views", VIEWS, seed=SEED, progress=False)
    stored = EmbeddingFeed.stored(CachedTrainLoader(images, table, CPU))
    assert stored.sampler is images.sampler and len(stored) == len(images) == len(ds) // 6
    stored.sampler.set_epoch(2)
    batch = next(iter(stored))
    # the same crops, cut as the cache cut them: the epoch's view of each item's image
    items = list(images.sampler)[:6]
    views = epoch_views(SEED, 2, len(ds), VIEWS)[items]
    crops = []
    for index, view in zip(items, views):
        row = ds.rows[index]
        torch.manual_seed(sample_seed(SEED, int(view), row))
        crops.append(to_tensor(ds.transform(ds.load_image(row))))
    labels = torch.tensor([[float(ds.labels[ds.rows[i]])] for i in items])
    live = next(iter(EmbeddingFeed.live([{"img": torch.stack(crops), "mos_label": labels}], net, CPU, train=True)))
    assert "img" not in live and live["feat"].shape == batch["feat"].shape == (6, 64)
    assert not live["feat"].requires_grad  # nothing before the head trains
    torch.testing.assert_close(batch["mos_label"], labels)
    net.train()
    assert torch.allclose(net.forward_head(batch["feat"]), net.forward_head(live["feat"]), rtol=2e-3, atol=2e-4)
    assert torch.equal(net.forward_head(live["feat"]), net(torch.stack(crops)))


def test_live_and_stored_evaluation_feeds_give_the_same_scores(tmp_path, demo_data, net):
    ds = _dataset(demo_data, "test")
    images = build_dataloader(ds, loader_options({"batch_size_per_gpu": 5}, "datasets.test"), "test")
    table = FeatureCache(tmp_path, net, CPU).prepare(ds, "crops", progress=False)
    live = predict(net, EmbeddingFeed.live(images, net, CPU), CPU)
    stored = predict(net, EmbeddingFeed.stored(cached_crops_loader(images, table)), CPU)
    assert live["img_path"] == stored["img_path"] and live["mos"] == stored["mos"] and len(live["pred"]) == len(ds)
    np.testing.assert_allclose(stored["pred"], live["pred"], rtol=2e-3, atol=2e-4)
    assert predict(net, images, CPU)["pred"] == live["pred"]  # an image loader is fed live
    with torch.no_grad():
        whole = [net(to_tensor(ds.load_image(r)).unsqueeze(0)).item() for r in ds.rows[:3]]
    assert live["pred"][:3] == whole  # the feed and the network score alike
