"""Evaluation, scoring and caching loaders end with one clear error when a DataLoader worker fails.

Before: only the training loader was guarded; a worker of a validation, test, zero-shot, feature-cache or
``pyiqa`` scoring loader that could not hand over its batch (``/dev/shm`` or disk full, a file size
limit) printed 'File too large' and the main process waited for that batch for ever. Each case runs in
a subprocess with a timeout, so a regression fails the test instead of hanging the suite.
"""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import os, resource, sys
    import torch
    from torch.utils.data import DataLoader, Dataset
    from pyiqa.models.predict import predict
    from pyiqa.utils.errors import DataError

    class Images(Dataset):  # batches of 2 x 3 x 224 x 224 floats: 1.2 MB each
        def __len__(self):
            return 4
        def __getitem__(self, i):
            if sys.argv[1] == "dies":
                os._exit(3)
            return {"img": torch.zeros(3, 224, 224), "mos_label": torch.zeros(1), "img_path": f"{i}.png"}

    def tight_files(worker_id):  # in the worker only: shared-memory files of at most 200 KiB
        resource.setrlimit(resource.RLIMIT_FSIZE, (200 << 10, 200 << 10))

    class Mean(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2, 3))[:, None]

    loader = DataLoader(Images(), batch_size=2, num_workers=1, worker_init_fn=tight_files)
    try:
        predict(Mean(), loader, "cpu", desc="toy test set")
    except DataError as err:
        print("DataError:", err)
""")


@pytest.mark.parametrize("fault, reason", [("cannot-send", "File too large"), ("dies", "exited unexpectedly")])
def test_a_failed_evaluation_worker_is_one_clear_error_not_a_hang(fault, reason):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, fault], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("DataError: A DataLoader worker failed while reading toy test set: "), proc.stdout
    assert reason in proc.stdout and "fewer workers" in proc.stdout
