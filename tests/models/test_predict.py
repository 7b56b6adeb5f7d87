"""The one predict loop: real image files through a real dataset and loader into a tiny UniQA."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from pyiqa.archs import UniQA
from pyiqa.archs.clip_backbone import save_random_backbone
from pyiqa.data import build_dataset, collate_images
from pyiqa.models.predict import predict


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = save_random_backbone(tmp_path_factory.mktemp("clip") / "UniQA_weight.pt", "tiny", seed=1)
    return UniQA(backbone=str(path), embedding_dim=16, test_crop="random10-global", num_crops=2)


@pytest.fixture(scope="module")
def loader(tmp_path_factory):
    """5 JPEGs of mixed sizes (one smaller than a crop), MOS 1..5, batches of 2 kept as lists."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    rows = []
    for k, (w, h) in enumerate([(260, 230), (224, 300), (200, 180), (240, 240), (300, 226)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"{k}.jpg")
        rows.append(f"{k}.jpg,{k + 1},test\n")
    (root / "meta.csv").write_text("image_name,mos,split\n" + "".join(rows))
    ds = build_dataset({"type": "GeneralNRDataset", "name": "toy", "dataroot_target": str(root),
                        "meta_info_file": str(root / "meta.csv"), "split_column": "split"},
                       "test", "datasets.test")
    return DataLoader(ds, batch_size=2, shuffle=False, collate_fn=collate_images)


def test_predict_scores_every_image_in_order(net, loader):
    net.train()
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    result = predict(net, loader, torch.device("cpu"))
    assert torch.equal(torch.rand(3), before)  # random10-global drew crops, yet the stream is untouched
    assert not net.training  # left in eval mode
    assert set(result) == {"pred", "mos", "img_path"}
    assert result["mos"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [p.rsplit("/", 1)[-1] for p in result["img_path"]] == [f"{k}.jpg" for k in range(5)]
    assert len(result["pred"]) == 5 and all(0.2 <= p <= 1.0 for p in result["pred"])
    torch.manual_seed(7)
    assert predict(net, loader, "cpu")["pred"] == result["pred"]  # same RNG state, same crops
