"""The shared run runtime: folders, training states on disk, resume mid-epoch, pruning."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from pyiqa.data.resumable_sampler import ResumableSampler
from pyiqa.engine.run import Run
from pyiqa.engine.run_options import RunOptions
from pyiqa.utils.option_fields import parse_section
from pyiqa.utils.errors import CheckpointError

STEPS_PER_EPOCH = 5  # 10 samples, batch 2


def make_run(root: Path, config: dict, auto_resume: bool = False) -> Run:
    return Run(parse_section(RunOptions, config), config, root=root, auto_resume=auto_resume)


def make_loader(seed: int) -> DataLoader:
    data = list(range(10))
    # a loader generator, as the trainers use: without one, every new epoch iterator draws its worker
    # seed from the global RNG, which a resumed run would draw again
    return DataLoader(data, batch_size=2, sampler=ResumableSampler(len(data), shuffle=True, seed=seed),
                      drop_last=True, generator=torch.Generator().manual_seed(seed))


def options(keep: int = 2) -> dict:
    return {"name": "unit", "manual_seed": 3, "num_gpu": 0, "logger": {"keep_checkpoints": keep}}


def consume(run: Run, total: int, stop_at: int = None, ends: list = None) -> list:
    """Batches of ``run`` as lists; saves a state after every step; returns at ``stop_at`` (a 'kill')."""
    seen = []
    run.start()
    for batch in run.batches(make_loader(run.seed), total, STEPS_PER_EPOCH,
                             on_epoch_end=(ends.append if ends is not None else None)):
        seen.append((run.step, run.epoch, batch.tolist(), torch.rand(1).item()))
        run.save_state(lambda: {"note": "unit"})
        if run.step == stop_at:
            return seen
    return seen


def test_resume_mid_epoch_continues_exactly(tmp_path):
    full_ends = []
    full = consume(make_run(tmp_path / "a", options()), total=13, ends=full_ends)
    assert [s for s, *_ in full] == list(range(1, 14)) and full_ends == [0, 1]
    # epochs are permutations of the 10 samples, different from one epoch to the next
    epoch0 = sorted(x for _, e, b, _ in full if e == 0 for x in b)
    assert epoch0 == list(range(10))

    killed = make_run(tmp_path / "b", options())
    first = consume(killed, total=13, stop_at=7)
    killed.close()  # what the end of its process does
    ends = []
    resumed_run = make_run(tmp_path / "b", options(), auto_resume=True)
    assert [p.name for p in resumed_run.candidates[:2]] == ["7.state", "6.state"]
    restored = {}
    assert resumed_run.resume(restored.update)
    assert restored["note"] == "unit" and (resumed_run.step, resumed_run.epoch, resumed_run.epoch_step) == (7, 1, 2)
    rest = consume(resumed_run, total=13, ends=ends)
    assert first + rest == full  # same batches and the same random numbers after the resume
    assert ends == [1]
    states = sorted(p.name for p in (tmp_path / "b" / "experiments" / "unit" / "training_states").iterdir())
    assert states == ["12.state", "13.state"]  # logger.keep_checkpoints = 2


def test_resume_at_epoch_boundary_ends_the_epoch_once(tmp_path):
    killed = make_run(tmp_path, options())
    consume(killed, total=20, stop_at=STEPS_PER_EPOCH)
    killed.close()
    ends = []
    run = make_run(tmp_path, options(), auto_resume=True)
    run.resume(lambda state: None)
    rest = consume(run, total=7, ends=ends)
    assert ends == [0] and [(s, e) for s, e, *_ in rest] == [(6, 1), (7, 1)]


def test_new_run_archives_the_old_folder_and_state_of_another_program_is_refused(tmp_path):
    first = make_run(tmp_path, options())
    consume(first, total=2)
    first.close()  # releases the name: a second run may take the folder over
    make_run(tmp_path, options()).start()
    archived = [p.name for p in (tmp_path / "experiments").iterdir() if p.name.startswith("unit_archived_")]
    assert len(archived) == 1
    bad = tmp_path / "other.state"
    torch.save({"model": {}}, bad)
    run = make_run(tmp_path, {**options(), "path": {"resume_state": str(bad)}})
    with pytest.raises(CheckpointError, match=r"other\.state does not fit this run"):
        run.resume(lambda state: None)


def test_building_and_closing_a_run_changes_no_global_logging(tmp_path):
    """The runtime owns its logger and its log file: a Run built in a test (or a notebook) leaves the
    ``pyiqa`` logger tree as it found it; only the entry point (run_main) configures logging."""
    tree = logging.getLogger("pyiqa")
    before = (list(tree.handlers), tree.level, tree.propagate)
    run = make_run(tmp_path, options())
    assert (list(tree.handlers), tree.level, tree.propagate) == before
    assert run.logger.name == "pyiqa.engine.run.unit"
    run.start()  # the run's own log file, attached while the run lives
    log_files = [h for h in tree.handlers if isinstance(h, logging.FileHandler)]
    assert [Path(h.baseFilename).parent for h in log_files] == [tmp_path / "experiments" / "unit"]
    run.logger.warning("written to the run's file")
    run.close()
    assert (list(tree.handlers), tree.level, tree.propagate) == before
    text = next((tmp_path / "experiments" / "unit").glob("train_unit_*.log")).read_text()
    assert "written to the run's file" in text
