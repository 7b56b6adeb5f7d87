"""Helpers the tests share: a release-layout training YAML over the demo data, and running scripts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

REPO = Path(__file__).resolve().parents[1]


def train_options(name: str, demo: Dict[str, Any], backbone: Path, **changes: Any) -> Dict[str, Any]:
    """A small but complete training YAML (release key layout) over the demo data."""
    dataset = {"name": "demo", "type": "GeneralNRDataset", "dataroot_target": str(demo["root"]),
               "meta_info_file": str(demo["meta_info_file"]), "split_file": str(demo["split_file"]),
               "split_index": 1, "mos_range": [0, 100], "lower_better": False, "mos_normalize": True,
               "img_range": 1, "num_worker_per_gpu": 0, "prefetch_mode": None}
    opt = {
        "name": name, "num_gpu": 0, "manual_seed": 123,
        "datasets": {
            "train": {**dataset, "augment": {"hflip": True, "random_crop": 224}, "use_shuffle": True,
                      "batch_size_per_gpu": 4, "dataset_enlarge_ratio": 1},
            "val": {**dataset, "batch_size_per_gpu": 13},
        },
        "network": {"type": "UniQA_Adapter_Patchtest", "model_type": "UniQA_adapter",
                    "backbone": str(backbone), "pretrained": True, "pos_embedding": True,
                    "clip_finetune": False, "sample_size": 224, "embedding_dim": 32},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"optim": {"type": "Adam", "lr": 1e-3, "weight_decay": 0},
                  "scheduler": {"type": "CosineAnnealingLR", "T_max": 40, "eta_min": 0},
                  "total_iter": 12, "warmup_iter": 3,
                  "mos_loss_opt": {"type": "MSELoss", "loss_weight": 1.0}},
        "val": {"val_freq": 6, "save_img": False, "pbar": False, "key_metric": "srcc",
                "metrics": {"srcc": {"type": "calculate_srcc"}, "plcc": {"type": "calculate_plcc"}}},
        "logger": {"print_freq": 2, "save_latest_freq": 4, "use_tb_logger": True,
                   "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "gloo", "port": 29500},
    }
    return apply_changes(opt, changes)


def apply_changes(opt: Dict[str, Any], changes: Dict[str, Any]) -> Dict[str, Any]:
    """Set nested options from keyword names such as ``train__total_iter=20``."""
    for dotted, value in changes.items():
        node = opt
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return opt


def write_yaml(path: Path, opt: Dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def run_script(args: List[str], cwd: Path, timeout: int = 300, check: bool = True,
               env_extra: Dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repo as a user would; fail with its output on error."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2", **(env_extra or {})}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nSTDOUT:\n{proc.stdout[-4000:]}\n"
                             f"STDERR:\n{proc.stderr[-4000:]}")
    return proc
