"""The real pre-training script as a subprocess on data the test writes: one process, a resumed run and
``torchrun --nproc_per_node=2`` with gloo, all with a tiny CLIP for a couple of dozen steps."""
from __future__ import annotations

import shutil

import pytest
import torch
from clip_helpers import clip_options, first_last, losses
from helpers import REPO, run_script, write_yaml

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

SCRIPT = str(REPO / "train_clip" / "train.py")
STEPS = 24
# One thread per process: tiny models gain nothing from more, and on a loaded 2-core machine OpenMP's
# spinning threads make a run 10-20x slower.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def single_run(pairs, tmp_path_factory):
    """One process, 24 steps over 128 good entries + 1 corrupt image (0.8 %: skipped, run continues)."""
    root = tmp_path_factory.mktemp("clip_run")
    sources = [{"type": "json", "path": str(pairs["json"]), "repeat": 8},
               {"type": "json", "path": str(pairs["broken_json"])}]
    yml = write_yaml(root / "clip.yml", clip_options("clip", pairs, data__train=sources))
    proc = run_script([SCRIPT, "-opt", str(yml), "--root", str(root)], cwd=root, env_extra=ONE_THREAD)
    return {"root": root, "yml": yml, "out": proc.stdout, "exp": root / "experiments" / "clip"}


def test_loss_falls_metrics_are_logged_and_bad_image_is_skipped(single_run):
    out = single_run["out"]
    loss = losses(out)
    assert sorted(loss) == list(range(1, STEPS + 1))
    first, last = first_last([loss[s] for s in sorted(loss)])
    assert last < 0.7 * first, loss
    assert "Skipped unreadable image" in out and "broken.png" in out and "skipped images 1" in out
    assert "Evaluation @ step 12" in out and "Evaluation @ step 24" in out
    for key in ("iqa/stripes/srcc", "iqa/stripes/plcc", "retrieval/i2t_r1", "retrieval/t2i_r1"):
        assert key in out
    assert "samples/s" in out and "temperature" in out
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(single_run["exp"] / "tb_logger")).Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/temperature", "train/samples_per_s",
            "eval/iqa/stripes/srcc", "eval/retrieval/i2t_r1"} <= tags
    assert len(acc.Scalars("train/loss")) == STEPS
    states = sorted(int(p.stem) for p in (single_run["exp"] / "training_states").glob("*.state"))
    assert states == [8, 16, 24]


def test_exported_backbone_loads_into_uniqa_and_scores(single_run):
    from pyiqa.archs import UniQA, load_clip_state_dict
    path = single_run["exp"] / "uniqa_backbone.pt"
    raw = torch.load(path, weights_only=True)
    assert raw["input_resolution"] == 64 and raw["context_length"] == 77
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in raw and "text_projection" in raw
    load_clip_state_dict(path)  # the core's reader accepts it as is
    images = torch.rand(3, 3, 96, 120)
    for size in (64, 224):  # as trained, and at UniQA's default size (positional grid resized)
        net = UniQA(backbone=str(path), use_adapter=False, sample_size=size, test_crop="center").eval()
        with torch.no_grad():
            scores = net(images)
        assert scores.shape == (3, 1) and torch.isfinite(scores).all()
        assert ((scores > 0) & (scores < 1.0 + 1e-6)).all()
    # an intermediate training state exports to the same layout
    from train_clip.export import export_state
    out = export_state(single_run["exp"] / "training_states" / "16.state", single_run["root"] / "step16.pt")
    assert UniQA(backbone=str(out), use_adapter=False, sample_size=64).clip.visual.image_size == (64, 64)


def test_resume_continues_at_the_right_step_with_the_same_weights(single_run, tmp_path):
    exp = tmp_path / "experiments" / "clip"
    shutil.copytree(single_run["exp"], exp)
    for stale in ("16.state", "24.state"):  # as if killed between step 16 and its checkpoint
        (exp / "training_states" / stale).unlink()
    (exp / "uniqa_backbone.pt").unlink()
    proc = run_script([SCRIPT, "-opt", str(single_run["yml"]), "--root", str(tmp_path), "--auto_resume"],
                      cwd=tmp_path, env_extra=ONE_THREAD)
    assert "Resumed from" in proc.stdout and "8.state at epoch 0, step 8" in proc.stdout
    resumed, full = losses(proc.stdout), losses(single_run["out"])
    assert sorted(resumed) == list(range(9, STEPS + 1))
    assert all(resumed[s] == pytest.approx(full[s], abs=1e-6) for s in resumed)
    a = torch.load(single_run["exp"] / "uniqa_backbone.pt", weights_only=True)
    b = torch.load(exp / "uniqa_backbone.pt", weights_only=True)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a if torch.is_tensor(a[k]))


def test_torchrun_two_processes_match_one_process_on_the_same_global_batch(single_run, tmp_path):
    proc = run_script(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", SCRIPT,
                       "-opt", str(single_run["yml"]), "--root", str(tmp_path), "--launcher", "pytorch"],
                      cwd=tmp_path, env_extra=ONE_THREAD)
    assert "world size 2" in proc.stdout and "2 process(es) x 4" in proc.stdout
    two, one = losses(proc.stdout), losses(single_run["out"])
    assert sorted(two) == sorted(one)
    # the gathered loss of 2 x 4 images is the loss of the same 8 images on one process ...
    assert all(two[s] == pytest.approx(one[s], rel=1e-5) for s in range(1, 4))
    # ... and so are the gradients: the weights stay together over the whole run
    assert all(two[s] == pytest.approx(one[s], rel=1e-3, abs=1e-4) for s in one)
    a = torch.load(single_run["exp"] / "uniqa_backbone.pt", weights_only=True)
    b = torch.load(tmp_path / "experiments" / "clip" / "uniqa_backbone.pt", weights_only=True)
    assert max((a[k] - b[k]).abs().max().item() for k in a if torch.is_tensor(a[k])) < 1e-3
