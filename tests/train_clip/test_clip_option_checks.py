"""Every train_clip option refuses a bad value at start-up with one ConfigError naming the key, the value
and what is expected: the real option parser on real YAML files, and the real script as a subprocess
(exit 2, no traceback, no experiment folder)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from clip_helpers import clip_options
from helpers import REPO, apply_changes, run_script, write_yaml
from PIL import Image

from pyiqa.utils.errors import ConfigError
from train_clip.data import clip_transform
from train_clip.options import parse_options

NAN, INF = float("nan"), float("inf")

# (changes as for clip_options: a__b=value sets opt['a']['b'], expected message as a regex)
BAD = {
    # learning rate and AdamW
    "lr-nan": ({"train__lr": NAN}, r"'train\.lr' must be a finite number > 0 and <= 1 \(the peak .*\), got nan"),
    "lr-inf": ({"train__lr": INF}, r"'train\.lr' must be a finite number > 0 and <= 1 .*got inf"),
    "lr-negative": ({"train__lr": -1e-3}, r"'train\.lr' must be .*> 0.*got -0\.001"),
    "lr-zero": ({"train__lr": 0}, r"'train\.lr' must be .*> 0.*got 0"),
    "lr-huge": ({"train__lr": 5.0}, r"'train\.lr' must be .*<= 1.*got 5\.0"),
    "lr-text": ({"train__lr": "fast"}, r"'train\.lr' must be a finite number.*got 'fast'"),
    "lr-bool": ({"train__lr": True}, r"'train\.lr' must be a finite number.*got True"),
    "lr-empty": ({"train__lr": None}, r"Missing required option 'train\.lr'"),
    "min-lr-above-lr": ({"train__min_lr": 0.01}, r"'train\.min_lr' is 0\.01, above 'train\.lr' \(0\.001\)"),
    "min-lr-nan": ({"train__min_lr": NAN}, r"'train\.min_lr' must be a finite number >= 0 and <= 1.*got nan"),
    "eps-zero": ({"train__eps": 0.0}, r"'train\.eps' must be a finite number > 0 and <= 1.*got 0\.0"),
    "eps-empty": ({"train__eps": None}, r"'train\.eps' must be a finite number.*got None"),
    "weight-decay-negative": ({"train__weight_decay": -0.1}, r"'train\.weight_decay' must be .*>= 0 and <= 10.*-0\.1"),
    "weight-decay-inf": ({"train__weight_decay": INF}, r"'train\.weight_decay' must be a finite number.*got inf"),
    "betas-one": ({"train__betas": [0.9]},
        r"'train\.betas' must be a list of 2 numbers, e\.g\. \[0\.9, 0\.98\].*got \[0\.9\]"),
    "betas-text": ({"train__betas": "0.9,0.98"}, r"'train\.betas' must be a list of 2 numbers.*got '0\.9,0\.98'"),
    "betas-at-1": ({"train__betas": [0.9, 1.0]}, r"'train\.betas\[1\]' must be a finite number >= 0 and < 1, got 1\.0"),
    "betas-nan": ({"train__betas": [NAN, 0.98]}, r"'train\.betas\[0\]' must be a finite number.*got nan"),
    "grad-clip-zero": ({"train__grad_clip_norm": 0},
        r"'train\.grad_clip_norm' must be a finite number > 0 .*null for no clipping.*got 0"),
    "grad-clip-nan": ({"train__grad_clip_norm": NAN}, r"'train\.grad_clip_norm' must be a finite number > 0.*got nan"),
    # lengths and counts
    "warmup-fraction": ({"train__warmup_steps": 2.5}, r"'train\.warmup_steps' must be an integer >= 0, got 2\.5"),
    "warmup-bool": ({"train__warmup_steps": True}, r"'train\.warmup_steps' must be an integer >= 0, got True"),
    "total-steps-1e100": ({"train__total_steps": 1e100}, r"'train\.total_steps' must be an integer >= 1, got 1e\+100"),
    "total-steps-huge": ({"train__total_steps": 10 ** 12},
        r"'train\.total_steps' must be an integer >= 1 and at most 1,000,000,000"),
    "batch-size-0": ({"train__batch_size": 0}, r"'train\.batch_size' must be an integer >= 1, got 0"),
    "batch-size-1e12": ({"train__batch_size": 10 ** 12},
        r"'train\.batch_size' must be an integer >= 1 and at most 1,048,576"),
    "batch-size-text": ({"train__batch_size": "8"},
        r"'train\.batch_size' must be an integer >= 1, got '8' \(YAML reads 8 as text"),
    "accum-above-batch": ({"train__accum_steps": 16},
        r"'train\.accum_steps' is 16, more micro-batches than the 8 images"),
    "accum-zero": ({"train__accum_steps": 0}, r"'train\.accum_steps' must be an integer >= 1, got 0"),
    "local-loss-text": ({"train__local_loss": "yes"}, r"'train\.local_loss' must be true or false, got 'yes'"),
    # top level
    "manual-seed-text": ({"manual_seed": "abc"}, r"'manual_seed' must be an integer >= 0, got 'abc'"),
    "manual-seed-negative": ({"manual_seed": -1}, r"'manual_seed' must be an integer >= 0, got -1"),
    "manual-seed-2**32": ({"manual_seed": 2 ** 32}, r"'manual_seed' must be an integer >= 0 and at most 4,294,967,295"),
    "manual-seed-float": ({"manual_seed": 1.5}, r"'manual_seed' must be an integer >= 0, got 1\.5"),
    "manual-seed-empty": ({"manual_seed": None}, r"'manual_seed' must be an integer >= 0, got None"),
    "num-gpu-text": ({"num_gpu": "two"}, r"'num_gpu' must be an integer >= 0 \(0 = CPU\) or 'auto', got 'two'"),
    "num-gpu-negative": ({"num_gpu": -1}, r"'num_gpu' must be an integer >= 0, got -1"),
    "num-gpu-bool": ({"num_gpu": True}, r"'num_gpu' must be an integer >= 0, got True"),
    # data
    "num-workers-negative": ({"data__num_workers": -1}, r"'data\.num_workers' must be an integer >= 0, got -1"),
    "num-workers-huge": ({"data__num_workers": 100000}, r"'data\.num_workers' must be an integer >= 0 and at most 256"),
    "failed-fraction-1": ({"data__max_failed_fraction": 1.0},
        r"'data\.max_failed_fraction' must be a finite number >= 0 and < 1 .*got 1\.0"),
    "failed-fraction-nan": ({"data__max_failed_fraction": NAN},
        r"'data\.max_failed_fraction' must be a finite number.*got nan"),
    "failed-fraction-bool": ({"data__max_failed_fraction": True},
        r"'data\.max_failed_fraction' must be a finite number.*got True"),
    "repeat-0": ({"source": {"repeat": 0}}, r"'data\.train\[0\]\.repeat' must be an integer >= 1, got 0"),
    "repeat-huge": ({"source": {"repeat": 10 ** 9}},
        r"'data\.train\[0\]\.repeat' must be an integer >= 1 and at most 10,000"),
    "repeat-bool": ({"source": {"repeat": True}}, r"'data\.train\[0\]\.repeat' must be an integer >= 1, got True"),
    "source-path-number": ({"source": {"path": 3}}, r"'data\.train\[0\]\.path' must be a non-empty string, got 3"),
    "source-allow-absolute-text": ({"source": {"allow_absolute": "yes"}},
        r"'data\.train\[0\]\.allow_absolute' must be true or false, got 'yes'"),
    "demo-split-0": ({"data__train": [{"type": "demo", "split_index": 0}]},
        r"'data\.train\[0\]\.split_index' must be an integer >= 1, got 0"),
    "demo-split-11": ({"data__train": [{"type": "demo", "split_index": 11}]},
        r"'data\.train\[0\]\.split_index' is 11, but the demo dataset has splits 1 to 10"),
    "demo-phase": ({"data__train": [{"type": "demo", "phase": "dev"}]},
        r"'data\.train\[0\]\.phase' must be train, val or test, got 'dev'"),
    # data.transform (open_clip's AugmentationCfg)
    "scale-reversed": ({"data__transform": {"scale": [1.0, 0.5]}},
        r"'data\.transform\.scale' must be a \[low, high\] range with low <= high, e\.g\. \[0\.9, 1\.0\]"
        r".*got \[1\.0, 0\.5\]"),
    "scale-zero": ({"data__transform": {"scale": [0.0, 1.0]}},
        r"'data\.transform\.scale\[0\]' must be a finite number > 0 and <= 1, got 0\.0"),
    "scale-above-1": ({"data__transform": {"scale": [0.5, 1.5]}},
        r"'data\.transform\.scale\[1\]' must be a finite number > 0 and <= 1, got 1\.5"),
    "scale-one-value": ({"data__transform": {"scale": [0.5]}},
        r"'data\.transform\.scale' must be a list of 2 numbers.*got \[0\.5\]"),
    "scale-nan": ({"data__transform": {"scale": [NAN, 1.0]}},
        r"'data\.transform\.scale\[0\]' must be a finite number.*got nan"),
    "scale-text": ({"data__transform": {"scale": ["5e-1", 1.0]}},
        r"'data\.transform\.scale\[0\]' must be a finite number.*got '5e-1' \(YAML reads 5e-1 as text"),
    "transform-typo": ({"data__transform": {"scal": [0.5, 1.0]}},
        r"Unknown option 'data\.transform\.scal'.*Did you mean 'scale'"),
    "transform-not-mapping": ({"data__transform": [0.5, 1.0]},
        r"'data\.transform' must be a mapping, got \[0\.5, 1\.0\]"),
    "ratio-without-timm": ({"data__transform": {"ratio": [0.75, 1.33]}},
        r"'data\.transform\.ratio' only applies with 'data\.transform\.use_timm: true'"),
    "re-prob-without-timm": ({"data__transform": {"re_prob": 0.2}},
        r"'data\.transform\.re_prob' only applies with 'data\.transform\.use_timm: true'"),
    "gray-prob-with-timm": ({"data__transform": {"use_timm": True, "gray_scale_prob": 0.2}},
        r"'data\.transform\.gray_scale_prob' only applies with 'data\.transform\.use_timm: false'"),
    "gray-prob-above-1": ({"data__transform": {"gray_scale_prob": 1.5}},
        r"'data\.transform\.gray_scale_prob' must be a finite number >= 0 and <= 1 \(a probability\), got 1\.5"),
    "jitter-without-prob": ({"data__transform": {"color_jitter": [0.4, 0.4, 0.4, 0.1]}},
        r"'data\.transform\.color_jitter' needs 'data\.transform\.color_jitter_prob' > 0"),
    "jitter-prob-without-jitter": ({"data__transform": {"color_jitter_prob": 0.8}},
        r"'data\.transform\.color_jitter_prob' needs 'data\.transform\.color_jitter'"),
    "jitter-three-values": ({"data__transform": {"color_jitter": [0.4, 0.4, 0.4], "color_jitter_prob": 0.8}},
        r"'data\.transform\.color_jitter' must be a list of 4 numbers.*got \[0\.4, 0\.4, 0\.4\]"),
    "jitter-hue": ({"data__transform": {"color_jitter": [0.4, 0.4, 0.4, 0.6], "color_jitter_prob": 0.8}},
        r"'data\.transform\.color_jitter\[3\]' must be a finite number >= 0 and <= 0\.5, got 0\.6"),
    "ratio-reversed": ({"data__transform": {"use_timm": True, "ratio": [1.33, 0.75]}},
        r"'data\.transform\.ratio' must be a \[low, high\] range with low <= high"),
    "re-count-zero": ({"data__transform": {"use_timm": True, "re_count": 0}},
        r"'data\.transform\.re_count' must be an integer >= 1, got 0"),
    "use-timm-text": ({"data__transform": {"use_timm": "yes"}},
        r"'data\.transform\.use_timm' must be true or false, got 'yes'"),
    # model
    "image-size-tiny": ({"model__image_size": 8}, r"'model\.image_size' must be an integer >= 16, got 8"),
    "image-size-huge": ({"model__image_size": 100000},
        r"'model\.image_size' must be an integer >= 16 and at most 2,048"),
    "image-size-float": ({"model__image_size": 64.0}, r"'model\.image_size' must be an integer >= 16, got 64\.0"),
    "init-seed-negative": ({"model__init_seed": -5}, r"'model\.init_seed' must be an integer >= 0, got -5"),
    "lock-blocks-fraction": ({"model__lock_vision_blocks": 1.5},
        r"'model\.lock_vision_blocks' must be an integer >= 0, got 1\.5"),
    "grad-checkpointing-text": ({"model__grad_checkpointing": "yes"},
        r"'model\.grad_checkpointing' must be true or false, got 'yes'"),
    "backbone-number": ({"model": {"backbone": 3}},
        r"'model\.backbone' must be a CLIP file path, 'random' or 'random-tiny', got 3"),
    # eval
    "eval-freq-negative": ({"eval__eval_freq": -1}, r"'eval\.eval_freq' must be an integer >= 0, got -1"),
    "eval-at-start-text": ({"eval__eval_at_start": "no"}, r"'eval\.eval_at_start' must be true or false, got 'no'"),
    "prompts-string": ({"eval__prompts": "quality"},
        r"'eval\.prompts' must be a non-empty list of prompt groups.*e\.g\. \[quality\], got 'quality'"),
    "prompts-typo": ({"eval__prompts": ["qualty"]},
        r"Unknown prompt group 'qualty' in 'eval\.prompts'.*Did you mean 'quality'"),
    "test-crop-typo": ({"eval__test_crop": "centre"},
        r"'eval\.test_crop' must be one of \[.*'center'.*\], got 'centre'"),
    "num-crops-zero": ({"eval__num_crops": 0}, r"'eval\.num_crops' must be an integer >= 1, got 0"),
    "eval-batch-fraction": ({"eval__batch_size": 2.5}, r"'eval\.batch_size' must be an integer >= 1, got 2\.5"),
    "iqa-workers-negative": ({"eval__iqa__stripes__num_worker_per_gpu": -2},
        r"'eval\.iqa\.stripes\.num_worker_per_gpu' must be an integer >= 0, got -2"),
    "retrieval-max-pairs-0": ({"eval__retrieval__max_pairs": 0},
        r"'eval\.retrieval\.max_pairs' must be an integer >= 1, got 0"),
    "retrieval-sources-empty": ({"eval__retrieval__sources": []},
        r"'eval\.retrieval\.sources' must be a non-empty list"),
    # logger, export, dist, path
    "save-freq-0": ({"logger__save_latest_freq": 0},
        r"'logger\.save_latest_freq' must be an integer >= 1, got 0"),
    "save-freq-empty": ({"logger__save_latest_freq": None},
        r"'logger\.save_latest_freq' must be an integer >= 1, got None"),
    "save-freq-old-name": ({"logger__save_checkpoint_freq": 100},  # one meaning in both trainers
        r"'logger\.save_checkpoint_freq' is 'logger\.save_latest_freq' in train_clip now"),
    "print-freq-0": ({"logger__print_freq": 0}, r"'logger\.print_freq' must be an integer >= 1, got 0"),
    "keep-checkpoints-fraction": ({"logger__keep_checkpoints": 0.5},
        r"'logger\.keep_checkpoints' must be an integer >= 1, got 0\.5"),
    "tb-logger-text": ({"logger__use_tb_logger": "true"}, r"'logger\.use_tb_logger' must be true or false, got 'true'"),
    "export-verify-text": ({"export__verify": "yes"}, r"'export\.verify' must be true or false, got 'yes'"),
    "dist-backend-typo": ({"dist_params__backend": "ncl"},
        r"'dist_params\.backend' must be one of \['gloo', 'nccl'.*got 'ncl'.*Did you mean 'nccl'"),
    "resume-state-number": ({"path__resume_state": 5},
        r"'path\.resume_state' must be the path of a file, got 5"),
}


def _options(pairs, changes):
    """clip_options with ``changes``; 'source': {...} updates the first training source."""
    changes = dict(changes)
    opt = clip_options("checks", pairs)
    opt["data"]["train"][0].update(changes.pop("source", {}))
    return apply_changes(opt, changes)


@pytest.mark.parametrize("changes,message", list(BAD.values()), ids=list(BAD))
def test_bad_value_is_one_clear_config_error(pairs, tmp_path, changes, message):
    yml = write_yaml(tmp_path / "bad.yml", _options(pairs, changes))
    with pytest.raises(ConfigError, match=message):
        parse_options(yml)


# YAML spellings of the sweep's cases, edited into the shipped demo config as a user would write them
SHIPPED_EDITS = {
    "lr: .nan": ("lr: !!float 5e-4", "lr: .nan", r"'train\.lr' must be a finite number > 0 and <= 1 .*got nan"),
    "lr: -.inf": ("lr: !!float 5e-4", "lr: -.inf", r"'train\.lr' must be a finite number.*got -inf"),
    "scale reversed": ("{scale: [0.9, 1.0]}", "{scale: [1.0, 0.5]}",
                       r"'data\.transform\.scale' must be a \[low, high\] range"),
    "manual_seed: abc": ("manual_seed: 123", "manual_seed: abc", r"'manual_seed' must be an integer >= 0, got 'abc'"),
    "save_latest_freq: 0": ("save_latest_freq: 120", "save_latest_freq: 0",
                            r"'logger\.save_latest_freq' must be an integer >= 1, got 0"),
    "weight_decay: .inf": ("weight_decay: 0.2", "weight_decay: .inf",
                           r"'train\.weight_decay' must be a finite number.*got inf"),
    "grad_clip_norm: 0": ("grad_clip_norm: 5.0", "grad_clip_norm: 0",
                          r"'train\.grad_clip_norm' must be a finite number > 0"),
}


@pytest.mark.parametrize("old,new,message", list(SHIPPED_EDITS.values()), ids=list(SHIPPED_EDITS))
def test_bad_value_in_the_shipped_yaml(tmp_path, old, new, message):
    text = (REPO / "pyiqa" / "configs" / "train_clip" / "demo.yml").read_text()
    assert text.count(old) == 1
    yml = tmp_path / "demo.yml"
    yml.write_text(text.replace(old, new))
    with pytest.raises(ConfigError, match=message):
        parse_options(yml)


@pytest.mark.parametrize("override,message", [
    ("train.lr=nan", r"'train\.lr' must be a finite number.*got 'nan'"),
    ("train.lr=.inf", r"'train\.lr' must be a finite number.*got inf"),
    ("data.transform.scale=[1.0, 0.5]", r"'data\.transform\.scale' must be a \[low, high\] range"),
    ("manual_seed=abc", r"'manual_seed' must be an integer >= 0, got 'abc'"),
])
def test_bad_override_is_refused(pairs, tmp_path, override, message):
    yml = write_yaml(tmp_path / "ok.yml", clip_options("checks", pairs))
    with pytest.raises(ConfigError, match=message):
        parse_options(yml, [override])


GOOD_TRANSFORMS = {  # accepted augmentation -> what the built transform must then contain
    "equal-bounds": ({"scale": [0.5, 0.5]}, ["scale=(0.5, 0.5)"]),
    "jitter-gray": ({"scale": [0.3, 1.0], "color_jitter": [0.4, 0.4, 0.4, 0.1], "color_jitter_prob": 0.8,
                     "gray_scale_prob": 0.2}, ["scale=(0.3, 1.0)", "color_jitter object", "gray_scale object"]),
    "timm": ({"use_timm": True, "scale": [0.5, 1.0], "ratio": [0.75, 1.333], "re_prob": 0.25, "re_count": 1,
              "color_jitter": 0.4},
             ["ratio=(0.75, 1.333)", "ColorJitter(brightness=(0.6, 1.4)", "RandomErasing(p=0.25"]),
}


@pytest.mark.filterwarnings("ignore:Unused augmentation cfg items")  # open_clip says so even of keys it uses
@pytest.mark.parametrize("aug,parts", list(GOOD_TRANSFORMS.values()), ids=list(GOOD_TRANSFORMS))
def test_accepted_transform_builds_and_runs(pairs, tmp_path, aug, parts):
    """What the check lets through, open_clip (or timm) builds with every given option, and applies."""
    opt, _ = parse_options(write_yaml(tmp_path / "ok.yml", _options(pairs, {"data__transform": aug})))
    transform = clip_transform(64, True, opt["data"]["transform"])
    assert all(part in repr(transform) for part in parts), repr(transform)
    image = transform(Image.new("RGB", (80, 72), (120, 60, 30)))
    assert image.shape == (3, 64, 64) and torch.isfinite(image).all()


def test_edge_values_are_accepted(pairs, tmp_path):
    """Bounds that are valid stay valid: YAML-1.1 text numbers, equal min_lr and lr, warm-up as long as
    the run, betas of 0, no clipping, the checkpoint's own image size, the largest seed."""
    changes = {"train__lr": "5e-4", "train__min_lr": "5e-4", "train__warmup_steps": 24, "train__betas": [0.0, 0.999],
               "train__grad_clip_norm": None, "train__eps": 1e-8, "train__weight_decay": 0, "model__image_size": None,
               "manual_seed": 2 ** 32 - 1, "num_gpu": "auto", "eval__eval_freq": 0, "logger__keep_checkpoints": 1,
               "data__max_failed_fraction": 0}
    opt, _ = parse_options(write_yaml(tmp_path / "edge.yml", _options(pairs, changes)))
    assert opt["train"]["lr"] == "5e-4" and math.isclose(float(opt["train"]["min_lr"]), 5e-4)
    before = copy.deepcopy(opt)
    parse_options(write_yaml(tmp_path / "again.yml", opt))
    assert opt == before  # validation never mutates the options


def test_cli_exits_2_without_traceback_or_folder(tmp_path):
    """The real script: one 'error:' line naming the key, exit 2, and nothing created under --root."""
    text = (REPO / "pyiqa" / "configs" / "train_clip" / "demo.yml").read_text()
    yml = tmp_path / "bad.yml"
    yml.write_text(text.replace("lr: !!float 5e-4", "lr: .nan"))
    root = tmp_path / "root"
    root.mkdir()
    proc = run_script([str(REPO / "train_clip" / "train.py"), "-opt", str(yml), "--root", str(root)], cwd=root,
                      check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "'train.lr'" in errors[0] and "got nan" in errors[0], proc.stderr[-2000:]
    assert list(root.iterdir()) == []  # no experiments/, no demo dataset, no log
