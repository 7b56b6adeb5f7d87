"""The part files of a scoring run as tables: written atomically, sorted by key, read back a batch at a
time and merged by a streaming k-way merge (:mod:`pyiqa.inference.score_parts` owns the folder).

A CSV table keeps its values as the text the file holds (``{v:.6f}``, empty for none), so a merge copies
them through; a parquet table holds floats or None. A part is read through
:func:`pyiqa.utils.bounded_read.open_regular` (a regular file under MAX_PART_BYTES), a merge's own
temporary runs without a cap. Parts of a version that did not sort them are detected as they are read
(:class:`UnsortedPart`) and sorted one at a time (:func:`sorted_part`).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import heapq
import io
import itertools
import operator
import re
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..utils.atomic import atomic_write
from ..utils.bounded_read import open_regular
from ..utils.errors import DataError, OutputError

MAX_PART_BYTES = 1 << 30
#: Files are read (a CSV file also written) READ_BATCH_ROWS rows at a time, so a merge pass holds about
#: fan-in x that many rows. pyarrow holds a row group of each open parquet part, so parts are written in
#: small row groups; the merged file, read by others, in large ones.
READ_BATCH_ROWS = 1 << 8
PART_GROUP_ROWS = 1 << 10
MERGED_GROUP_ROWS = 1 << 16

#: A table row, [key, *metric values, error]: in a CSV table the values are the strings the file holds
#: (``{v:.6f}``, empty for none), in a parquet table floats or None. Rows sort by their key, a str.
Row = Sequence[Any]
row_key = operator.itemgetter(0)
#: A CSV value as write_part formats it (``{v:.6f}`` below 1e9, where parsing and formatting again gives
#: the same text; nan, inf; empty): kept as it is. Any other value is parsed and formatted, as always.
_VALUE = r"(?:-?(?:0|[1-9][0-9]{0,8})\.[0-9]{6}|nan|-?inf)?"
_FORMATTED_COLUMN = re.compile(f"{_VALUE}(?:\n{_VALUE})*")


class UnsortedPart(Exception):
    """A part's rows are not sorted by key (written by a version that did not sort them)."""


@dataclasses.dataclass(frozen=True)
class TableSource:
    """A file the merge streams: a part (at most MAX_PART_BYTES; values re-formatted, order checked) or
    a temporary run the merge wrote (sorted and formatted already, any size)."""

    path: Path
    part: bool = True


def _open(source: TableSource) -> BinaryIO:
    """A source opened for reading: a part is a regular, non-empty file of at most MAX_PART_BYTES."""
    f = open_regular(source.path, "part file", MAX_PART_BYTES if source.part else None)
    if source.part and f.seek(0, io.SEEK_END) == 0:
        f.close()
        raise DataError(f"{source.path} is empty: delete it and rerun with --resume")
    f.seek(0)
    return f


class TableReader:
    """One table file opened for streaming: ``columns``, then its rows in file order, a batch at a time
    (a few hundred rows in memory per open file; pyarrow also holds a part's row group). A parquet
    merge's runs are Arrow IPC streams."""

    def __init__(self, source: TableSource, fmt: str):
        self.path, self.fmt, self.part = source.path, fmt, source.part
        self.file = _open(source)
        try:
            if fmt == "csv":
                self.csv = csv.reader(io.TextIOWrapper(self.file, encoding="utf-8", newline=""))
                header = self._csv_rows(1)
                if not header:
                    raise DataError(f"{self.path} is empty: delete it and rerun with --resume")
                self.columns = header[0]
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq
                self.arrow_errors: Tuple[type, ...] = (pa.ArrowException, ValueError, OSError)
                try:
                    if self.part:
                        parquet = pq.ParquetFile(self.file, pre_buffer=False)
                        schema = parquet.schema_arrow
                        self.arrow = parquet.iter_batches(batch_size=READ_BATCH_ROWS, use_threads=False)
                    else:
                        self.arrow = pa.ipc.open_stream(self.file)
                        schema = self.arrow.schema
                    self.columns = [str(name) for name in schema.names]
                    key = schema.types[0] if schema.types else pa.null()
                    self.str_keys = pa.types.is_string(key) or pa.types.is_large_string(key)
                except self.arrow_errors as err:
                    raise DataError(f"{self.path} is not a readable parquet table ({err}): delete it and rerun "
                                    "with --resume") from err
        except BaseException:
            self.file.close()
            raise

    def close(self) -> None:
        self.file.close()

    def _csv_rows(self, n: int) -> List[List[str]]:
        try:
            return list(itertools.islice(self.csv, n))
        except (OSError, ValueError, csv.Error) as err:  # ValueError: not UTF-8
            raise DataError(f"{self.path}: cannot be read ({err}); delete it and rerun with --resume") from err

    def batches(self) -> Iterator[List[Row]]:
        """The rows in batches; a CSV part's values re-formatted as the merged file writes them."""
        if self.fmt == "csv":
            while True:
                batch = self._csv_rows(READ_BATCH_ROWS)
                if not batch:
                    return
                yield self._formatted(batch) if self.part else batch
        while True:
            try:
                batch = next(self.arrow, None)
                if batch is None:
                    return
                columns = [column.to_pylist() for column in batch.columns]
                if not self.str_keys or batch.column(0).null_count:  # sorted and written as str
                    columns[0] = [str(key) for key in columns[0]]
                rows = list(zip(*columns))
            except self.arrow_errors as err:
                raise DataError(f"{self.path}: cannot be read ({err}); delete it and rerun with --resume") from err
            yield rows

    def _formatted(self, batch: List[List[str]]) -> List[Row]:
        """The rows with their values as the merged file writes them: as they are when write_part wrote
        them (checked a column at a time at C speed), else parsed and formatted."""
        width = len(self.columns)
        if any(n != width for n in map(len, batch)):
            row = next(r for r in batch if len(r) != width)
            raise DataError(f"{self.path}: a row has {len(row)} fields, the header {width} ({row[:2]}...); "
                            "delete it and rerun with --resume")
        if all(_formatted_column(batch, j) for j in range(1, width - 1)):
            return batch
        try:
            return [[r[0], *("" if not v else f"{float(v):.6f}" for v in r[1:-1]), r[-1]] for r in batch]
        except ValueError as err:
            raise DataError(f"{self.path}: {err}; delete it and rerun with --resume") from err

    def rows(self) -> Iterator[Row]:
        """The rows one by one; a part's order is checked as they pass (raises UnsortedPart)."""
        last = None
        for batch in self.batches():
            if self.part:
                keys = list(map(row_key, batch))
                if (last is not None and keys[0] < last) or keys != sorted(keys):
                    raise UnsortedPart(self.path)
                last = keys[-1]
            yield from batch


def _formatted_column(batch: List[List[str]], j: int) -> bool:
    text = "\n".join(map(operator.itemgetter(j), batch))
    return text.count("\n") == len(batch) - 1 and _FORMATTED_COLUMN.fullmatch(text) is not None


def common_columns(parts: List[Path], fmt: str) -> List[str]:
    """The columns every part has (each opened and checked in turn, before anything is written)."""
    columns: Optional[List[str]] = None
    for path in parts:
        reader = TableReader(TableSource(path), fmt)
        reader.close()
        if columns is not None and reader.columns != columns:
            raise DataError(f"{path} has columns {reader.columns}, the other parts {columns}")
        if len(reader.columns) < 2:
            raise DataError(f"{path} has columns {reader.columns}: a part has a key column, the metrics and "
                            "'error'; delete it and rerun with --resume")
        columns = reader.columns
    return columns or []


def sorted_part(path: Path, columns: List[str], fmt: str, tmp: Path) -> TableSource:
    """A part as it is if its rows are sorted, else sorted into a run in ``tmp`` (one part in memory)."""
    reader = TableReader(TableSource(path), fmt)
    try:
        rows = [row for batch in reader.batches() for row in batch]
    finally:
        reader.close()
    if all(row_key(a) <= row_key(b) for a, b in zip(rows, rows[1:])):
        return TableSource(path)
    rows.sort(key=row_key)
    run = tmp / f"sorted-{path.stem}.{run_suffix(fmt)}"
    write_table(run, columns, rows, fmt, run=True)
    return TableSource(run, part=False)


def merge_into(path: Path, sources: Sequence[TableSource], columns: List[str], fmt: str,
               group_rows: int = PART_GROUP_ROWS, run: bool = False) -> Tuple[Path, int, int]:
    """Stream the k-way merge of ``sources`` (each sorted; ties in source order) into ``path``."""
    with contextlib.ExitStack() as stack:
        readers = []
        for source in sources:
            reader = TableReader(source, fmt)
            stack.callback(reader.close)
            if reader.columns != columns:
                raise DataError(f"{source.path} has columns {reader.columns}, the other parts {columns}")
            readers.append(reader)
        rows, errors = write_table(path, columns, heapq.merge(*(r.rows() for r in readers), key=row_key),
                                   fmt, group_rows, run)
    return path, rows, errors


def write_table(path: Path, columns: List[str], rows: Iterable[Row], fmt: str,
                group_rows: int = PART_GROUP_ROWS, run: bool = False) -> Tuple[int, int]:
    """Write ``rows`` (in this format's form, see ``Row``) atomically as they come, in parquet row groups
    of ``group_rows`` (a parquet ``run``: an Arrow IPC stream); returns (rows, error rows)."""
    counts = [0, 0]

    def write(f: BinaryIO) -> None:
        table = (_CsvTable(f, columns) if fmt == "csv" else _RunTable(f, columns) if run
                 else _ParquetTable(f, columns, group_rows))
        try:
            for batch in _batched(rows, READ_BATCH_ROWS):
                table.write(batch)
                counts[0] += len(batch)
                counts[1] += sum(1 for r in batch if r[-1])
        except BaseException:
            with contextlib.suppress(Exception):  # the temporary file goes; only let go of the writer
                table.close()
            raise
        table.close()

    try:
        atomic_write(path, write)
    except OSError as err:
        raise OutputError(f"Cannot write {path}: {err.strerror or err}") from err
    return counts[0], counts[1]


def run_suffix(fmt: str) -> str:
    return "csv" if fmt == "csv" else "arrows"


def _batched(rows: Iterable[Row], n: int) -> Iterator[List[Row]]:
    it = iter(rows)
    while True:
        batch = list(itertools.islice(it, n))
        if not batch:
            return
        yield batch


class _CsvTable:
    """The CSV form: a header line, then the rows as they are (values formatted already)."""

    def __init__(self, f: BinaryIO, columns: List[str]):
        self.text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        self.out = csv.writer(self.text)
        self.out.writerow(columns)

    def write(self, batch: List[Row]) -> None:
        self.out.writerows(batch)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


class _ArrowTable:
    """Rows as arrow data, with the column types and pandas metadata ``DataFrame.to_parquet`` gives a
    table of keys, scores and errors."""

    def __init__(self, columns: List[str]):
        import pandas as pd
        import pyarrow as pa
        self.pa = pa
        typical = (pd.DataFrame([["", *[0.0] * (len(columns) - 2), ""]], columns=columns) if len(columns) >= 2
                   else pd.DataFrame(columns=columns))
        self.schema = pa.Schema.from_pandas(typical, preserve_index=False)

    def record_batch(self, batch: List[Row]) -> Any:
        arrays = [self.pa.array(column, type=field.type, from_pandas=True)
                  for column, field in zip(zip(*batch), self.schema)]
        return self.pa.RecordBatch.from_arrays(arrays, schema=self.schema)


class _ParquetTable(_ArrowTable):
    """The parquet form; batches become arrow data at once (compact), written a row group at a time."""

    def __init__(self, f: BinaryIO, columns: List[str], group_rows: int):
        import pyarrow.parquet as pq
        super().__init__(columns)
        self.writer = pq.ParquetWriter(f, self.schema)
        self.group_rows, self.pending, self.pending_rows = group_rows, [], 0

    def write(self, batch: List[Row]) -> None:
        self.pending.append(self.record_batch(batch))
        self.pending_rows += len(batch)
        if self.pending_rows >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(self.pa.Table.from_batches(self.pending, self.schema),
                                    row_group_size=self.group_rows)
        self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self.writer.close()


class _RunTable(_ArrowTable):
    """A parquet merge's temporary run: an Arrow IPC stream, read back a batch at a time (a parquet file's
    footer, held by its reader, grows with its row groups)."""

    def __init__(self, f: BinaryIO, columns: List[str]):
        super().__init__(columns)
        self.writer = self.pa.ipc.new_stream(f, self.schema)

    def write(self, batch: List[Row]) -> None:
        self.writer.write_batch(self.record_batch(batch))

    def close(self) -> None:
        self.writer.close()
