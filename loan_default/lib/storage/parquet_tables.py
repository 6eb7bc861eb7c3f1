"""Month-partitioned tables as Parquet files beside the warehouse, read through DuckDB views.

Bronze and silver are rewritten in bulk by every backfill and read in bulk by the next layer.
Storing them inside DuckDB would cost most of a large backfill: DuckDB chooses an encoding for
every one of the raw clickstream's strings and writes each silver chunk slower than Parquet.
Polars writes Parquet without that work, and each table stays visible in the warehouse as a
view, `<layer>.<table>`, so SQL on it is unchanged.

Layout: `<root>/<table>/partition_month=YYYY-MM-01/part-NNNNN.parquet` (LZ4), plus an empty
`_schema.parquet` per table so its view keeps the columns when no month has rows. A
replacement stages every file outside the tables' folders and swaps whole months in only
when it completes, so a failed run changes nothing and a re-run replaces, never appends.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from loan_default.lib.months import month_range
from loan_default.lib.storage.warehouse import MissingTableError

MONTH_COLUMN = "partition_month"
SCHEMA_FILE = "_schema.parquet"
# Fast to write and read back; these layers are rewritten by every backfill.
COMPRESSION = "lz4"


def _by_month(batch: pl.DataFrame) -> Iterator[tuple[date, pl.DataFrame]]:
    """The batch's rows per month, in their order within each month.

    A file sorted by date gives batches of one month, which pass through uncopied; others are
    sorted once (stable) and sliced, which is cheaper than `partition_by`.
    """
    if batch.is_empty():
        return
    months = batch[MONTH_COLUMN]
    if months.min() == months.max():
        yield months[0], batch
        return
    ordered = batch.sort(MONTH_COLUMN, maintain_order=True)
    offset = 0
    for length, month in ordered[MONTH_COLUMN].rle().struct.unnest().iter_rows():
        yield month, ordered.slice(offset, length)
        offset += length


class ParquetTables:
    """The Parquet tables of one warehouse layer, under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def beside(cls, database: Path, layer: str) -> ParquetTables:
        """The layer's files of a warehouse file: `<dir>/<file stem>_<layer>/`."""
        database = Path(database)
        return cls(database.parent / f"{database.stem}_{layer}")

    def table_dir(self, name: str) -> Path:
        return self.root / name

    def month_dir(self, name: str, month: date) -> Path:
        return self.table_dir(name) / f"{MONTH_COLUMN}={month.isoformat()}"

    def replacing(self, start: date, end: date) -> MonthReplacement:
        """A context that replaces months [start, end) of every table written in it."""
        return MonthReplacement(self, start, end)

    def replace_months(
        self, name: str, batches: Iterable[pl.DataFrame], start: date, end: date
    ) -> int:
        """Replaces months [start, end) of table `name` with `batches`; returns rows written.

        The first batch may be empty: it fixes the schema. Every row must lie in the range.
        """
        with self.replacing(start, end) as replacement:
            for batch in batches:
                replacement.write(name, batch)
        if name not in replacement.written:
            raise ValueError(f"{name}: no batch given, not even an empty one for the schema")
        return replacement.written[name]

    def require(self, name: str, start: date, end: date) -> None:
        if not (self.table_dir(name) / SCHEMA_FILE).exists():
            raise MissingTableError(
                f"{name} has no files in {self.root} yet: materialize it for {start}..{end} first"
            )

    def files(self, name: str, start: date, end: date) -> list[Path]:
        """The Parquet files of months [start, end), in month and write order."""
        return [
            path
            for month in month_range(start, end)
            for path in sorted(self.month_dir(name, month).glob("*.parquet"))
        ]

    def scan(self, name: str, start: date, end: date) -> pl.LazyFrame:
        """Rows of months [start, end), in the order they were written."""
        self.require(name, start, end)
        files = self.files(name, start, end)
        return pl.scan_parquet(files if files else self.table_dir(name) / SCHEMA_FILE)

    def month_counts(self, name: str, start: date, end: date) -> dict[date, int]:
        """Rows per month in [start, end), read from the files' metadata; empty months left out."""
        self.require(name, start, end)
        counts = {}
        for month in month_range(start, end):
            files = sorted(self.month_dir(name, month).glob("*.parquet"))
            if files:
                counts[month] = pl.scan_parquet(files).select(pl.len()).collect().item()
        return counts

    def create_view(self, connection: duckdb.DuckDBPyConnection, view: str, name: str) -> None:
        """`view` in the warehouse over every file of table `name`."""
        pattern = str(self.table_dir(name).resolve() / "**" / "*.parquet").replace("'", "''")
        connection.execute(f"create schema if not exists {view.split('.')[0]}")
        connection.execute(
            f"create or replace view {view} as select * from "
            f"read_parquet('{pattern}', hive_partitioning = false)"
        )


class MonthReplacement:
    """Stages the months [start, end) of one or more tables; swaps them all in on success.

    Each table needs at least one `write` (an empty frame fixes its schema). Nothing changes
    if the block raises; the staged files are removed either way.
    """

    def __init__(self, tables: ParquetTables, start: date, end: date) -> None:
        self.tables, self.start, self.end = tables, start, end
        self.staging = tables.root / ".staging" / uuid.uuid4().hex
        self.written: dict[str, int] = {}
        self._parts = 0

    def __enter__(self) -> MonthReplacement:
        self.staging.mkdir(parents=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                for name in self.written:
                    self._swap_in(name)
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)

    def write(self, name: str, frame: pl.DataFrame) -> None:
        staged = self.staging / name
        if name not in self.written:
            staged.mkdir()
            frame.clear().write_parquet(staged / SCHEMA_FILE, compression=COMPRESSION)
            self.written[name] = 0
        self.written[name] += frame.height
        for month, part in _by_month(frame):
            if not self.start <= month < self.end:
                raise ValueError(f"{name}: a row of {month} is outside {self.start}..{self.end}")
            folder = staged / self.tables.month_dir(name, month).name
            folder.mkdir(exist_ok=True)
            part.write_parquet(folder / f"part-{self._parts:05d}.parquet", compression=COMPRESSION)
            self._parts += 1

    def _swap_in(self, name: str) -> None:
        staged, target = self.staging / name, self.tables.table_dir(name)
        target.mkdir(parents=True, exist_ok=True)
        (staged / SCHEMA_FILE).replace(target / SCHEMA_FILE)
        for month in month_range(self.start, self.end):
            old = self.tables.month_dir(name, month)
            new = staged / old.name
            if old.exists():
                shutil.rmtree(old)
            if new.exists():
                new.replace(old)
