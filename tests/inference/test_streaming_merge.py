"""ScoreFolder.merge as a streaming k-way merge: multi-pass merges (fan-in lowered) give exactly the file the
all-in-memory merge gave, memory and open files stay bounded by the fan-in, ties keep part order, parts
written unsorted by earlier versions still merge, and every bad part is refused by name."""
from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from pyiqa.inference import part_tables
from pyiqa.inference.collection import ImageRef
from pyiqa.inference.score_parts import ScoreFolder
from pyiqa.utils.errors import DataError

METRICS = ["uniqa", "uniqa-aesthetic"]
COLUMNS = ["path", *METRICS, "error"]


def make_parts(folder: ScoreFolder, parts: int, rows: int, seed: int = 0):
    """``parts`` parts of ``rows`` rows written with write_part, keys shuffled across the parts, a few
    error rows; returns every part's rows as written: [(key, scores or None, error or None)]."""
    rng = random.Random(seed)
    order = list(range(parts * rows))
    rng.shuffle(order)
    folder.parts.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(parts):
        records = []
        for n in order[i * rows:(i + 1) * rows]:
            key = f"shard-{n // rows:06d}/img-{n % rows:06d}.jpg"
            if n % 97 == 5:
                records.append((key, None, "Cannot decode image: truncated"))
            else:
                records.append((key, [rng.uniform(1, 5), rng.uniform(0, 1)], None))
        folder.write_part(i, "path", METRICS, [(ImageRef(k), s, e) for k, s, e in records])
        written.append(records)
    return written


def reference_records(written):
    """What the all-in-memory merge produced: every part's rows in part order, stably sorted by key."""
    records = [[key, *(scores or [None, None]), error or ""] for part in written for key, scores, error in part]
    records.sort(key=lambda r: str(r[0]))
    return records


def reference_csv(records) -> bytes:
    text = io.StringIO(newline="")
    out = csv.writer(text)
    out.writerow(COLUMNS)
    for r in records:
        out.writerow([r[0], *("" if v is None else f"{v:.6f}" for v in r[1:-1]), r[-1]])
    return text.getvalue().encode()


def part_files(folder: ScoreFolder):
    return sorted(p.name for p in folder.parts.iterdir())


@pytest.mark.parametrize("fmt,fan_in", [("csv", 8), ("csv", 3), ("parquet", 8)])
def test_multi_pass_merge_equals_the_in_memory_merge(tmp_path, fmt, fan_in):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    folder = ScoreFolder(tmp_path / "out", fmt)
    written = make_parts(folder, parts=40, rows=2000)
    before = part_files(folder)
    path, rows, errors = folder.merge(40, fan_in=fan_in)
    records = reference_records(written)
    assert (path, rows, errors) == (folder.merged, 80_000, sum(1 for r in records if r[-1]))
    assert part_files(folder) == before and sorted(p.name for p in folder.root.iterdir()) == ["parts", path.name]
    if fmt == "csv":
        assert path.read_bytes() == reference_csv(records)
        with open(path, newline="") as f:
            merged = list(csv.reader(f))[1:]
        read_back = []
        for name in before:
            with open(folder.parts / name, newline="") as f:
                read_back.extend(list(csv.reader(f))[1:])
        assert merged == sorted(read_back)
        return
    import pandas as pd
    import pyarrow.parquet as pq
    reference = io.BytesIO()
    pd.DataFrame(records, columns=COLUMNS).to_parquet(reference, index=False)
    reference.seek(0)
    assert pq.read_schema(path) == pq.read_schema(reference)  # the types and pandas metadata of before
    assert pq.read_schema(path).metadata == pq.read_schema(reference).metadata
    reference.seek(0)
    assert pd.read_parquet(path).equals(pd.read_parquet(reference))
    merged = pd.read_parquet(path).astype(object).values.tolist()
    read_back = pd.concat([pd.read_parquet(folder.parts / n) for n in before]).astype(object).values.tolist()
    assert [r[0] for r in merged] == sorted(r[0] for r in read_back)


def merge_peak_bytes(tmp_path: Path, parts: int) -> int:
    folder = ScoreFolder(tmp_path / f"out{parts}", "csv")
    make_parts(folder, parts=parts, rows=500)
    tracemalloc.start()
    try:
        folder.merge(parts, fan_in=8)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_merge_memory_does_not_grow_with_rows(tmp_path, monkeypatch):
    """8x the rows at the same fan-in: the peak stays that of fan-in x a read batch (all the rows were
    held before: 8x the peak). Batches of 100 rows, so that parts of 500 rows are several batches."""
    monkeypatch.setattr(part_tables, "READ_BATCH_ROWS", 100)
    small, large = merge_peak_bytes(tmp_path, 10), merge_peak_bytes(tmp_path, 80)
    assert large < 1.5 * small, (small, large)


def test_open_files_bounded_by_fan_in(tmp_path):
    """Under a limit of 24 open files, 40 parts merge with fan-in 8 (in passes) and not in one pass."""
    folder = ScoreFolder(tmp_path / "out", "csv")
    make_parts(folder, parts=40, rows=20)
    code = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))\n"
            "from pathlib import Path\nfrom pyiqa.inference.score_parts import ScoreFolder\n"
            "print(ScoreFolder(Path(sys.argv[1]), 'csv').merge(40, fan_in=int(sys.argv[2]))[1])")
    run = [sys.executable, "-c", code, str(folder.root)]
    done = subprocess.run([*run, "8"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["800"], done.stderr
    done = subprocess.run([*run, "40"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Too many open files" in done.stderr
    assert part_files(folder) == [f"part-{i:06d}.csv" for i in range(40)]


def test_ties_keep_part_order(tmp_path):
    folder = ScoreFolder(tmp_path / "out", "csv")
    folder.parts.mkdir(parents=True)
    for i in range(5):
        folder.write_part(i, "path", METRICS, [(ImageRef(k), None, f"part {i} {k}") for k in ("b", "a", "a")])
    folder.merge(5, fan_in=2)
    with open(folder.merged, newline="") as f:
        errors = [r[-1] for r in list(csv.reader(f))[1:]]
    assert errors == [f"part {i} a" for i in range(5) for _ in range(2)] + [f"part {i} b" for i in range(5)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_unsorted_parts_of_earlier_versions_merge(tmp_path, fmt):
    """Parts written unsorted, as before parts were sorted (CSV values here in full, parquet by pandas),
    give the same merged file, via sorted runs."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    sorted_folder = ScoreFolder(tmp_path / "sorted", fmt)
    written = make_parts(sorted_folder, parts=12, rows=50)
    folder = ScoreFolder(tmp_path / "old", fmt)
    folder.parts.mkdir(parents=True)
    for i, part in enumerate(written):
        if fmt == "parquet":
            import pandas as pd
            records = [[key, *(scores or [None, None]), error or ""] for key, scores, error in part]
            pd.DataFrame(records, columns=COLUMNS).to_parquet(folder.part_path(i), index=False)
            continue
        with open(folder.part_path(i), "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(COLUMNS)
            for key, scores, error in part:
                out.writerow([key, *(map(repr, scores) if scores else ["", ""]), error or ""])  # re-formatted
    assert folder.merge(12, fan_in=4)[1:] == sorted_folder.merge(12, fan_in=4)[1:]
    assert folder.merged.read_bytes() == sorted_folder.merged.read_bytes()
    if fmt == "csv":
        assert folder.merged.read_bytes() == reference_csv(reference_records(written))
    assert part_files(folder) == [f"part-{i:06d}.{fmt}" for i in range(12)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bad_parts_are_refused_by_name(tmp_path, monkeypatch, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    folder = ScoreFolder(tmp_path / "out", fmt)
    make_parts(folder, parts=3, rows=10)
    folder.merge(3)
    merged = folder.merged.read_bytes()
    part = folder.part_path(2)

    def refused(match: str) -> None:
        with pytest.raises(DataError, match=match):
            folder.merge(3, fan_in=2)
        assert folder.merged.read_bytes() == merged  # the earlier merged file is untouched
        assert part_files(folder) == [f"part-{i:06d}.{fmt}" for i in range(3)]

    part.write_bytes(b"")
    refused(f"{part} is empty: delete it and rerun with --resume")
    other = ScoreFolder(tmp_path / "other", fmt)
    other.parts.mkdir(parents=True)
    other.write_part(0, "path", ["uniqa"], [(ImageRef("x"), [1.0], None)])
    os.replace(other.part_path(0), part)
    refused(rf"{part} has columns \['path', 'uniqa', 'error'\], the other parts \['path', 'uniqa', "
            r"'uniqa-aesthetic', 'error'\]")
    big = ScoreFolder(tmp_path / "big", fmt)
    make_parts(big, parts=1, rows=50)
    os.replace(big.part_path(0), part)  # the same columns, more rows than the other parts
    monkeypatch.setattr(part_tables, "MAX_PART_BYTES", max(folder.part_path(i).stat().st_size for i in (0, 1)))
    refused(f"{part}: the part file is larger than the {part_tables.MAX_PART_BYTES} bytes cap for it")
    monkeypatch.undo()
    part.unlink()
    os.mkfifo(part)  # not a regular file: counted missing, never opened (nothing blocks)
    refused(f"1 of 3 parts are missing \\(e.g. {part.name}\\)")


def test_a_bad_value_names_the_part_and_a_killed_merges_runs_go(tmp_path):
    folder = ScoreFolder(tmp_path / "out", "csv")
    make_parts(folder, parts=3, rows=10)
    leftover = folder.parts / ".merge-killed.tmp"
    leftover.mkdir()
    (leftover / "run-000001.csv").write_text("path\n")
    with open(folder.part_path(1), newline="") as f:
        rows = list(csv.reader(f))
    next(r for r in rows[1:] if r[1])[1] = "high"
    with open(folder.part_path(1), "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(DataError, match=f"{folder.part_path(1)}: could not convert string to float: 'high'"):
        folder.merge(3)
    assert not folder.merged.exists() and part_files(folder) == [f"part-{i:06d}.csv" for i in range(3)]
