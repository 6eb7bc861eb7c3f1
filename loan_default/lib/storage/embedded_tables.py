"""The embedded warehouse: one DuckDB file, with bronze and silver as Parquet month folders.

Bronze and silver are rewritten in bulk by every backfill (see `parquet_tables.py` for why they
are files); the other layers are DuckDB tables. Every table reads the same way through the file:
the Parquet ones as views, `<layer>.<table>`. DuckDB allows one writer per file, so the embedded
profile runs one warehouse step at a time (the "duckdb" pool of one in dagster.yaml).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from loan_default.lib.storage.parquet_tables import (
    MONTH_COLUMN,
    MonthReplacement,
    ParquetTables,
)
from loan_default.lib.storage.table_store import TableStore
from loan_default.lib.storage.warehouse import MonthWriter

# The layers stored as Parquet files beside the warehouse file.
PARQUET_LAYERS = ("bronze", "silver")
# How long a connection waits for another process's write lock on the file.
LOCK_WAIT_SECONDS = 100.0


class EmbeddedTables(TableStore):
    """The DuckDB file `database`, its Parquet layers in `<dir>/<file stem>_<layer>/`."""

    def __init__(self, database: Path, config: dict | None = None) -> None:
        self.database = Path(database)
        self.config = dict(config or {})

    def layer_files(self, layer: str) -> ParquetTables:
        return ParquetTables.beside(self.database, layer)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writer waits up to LOCK_WAIT_SECONDS while another process holds the file's write
        lock; a read-only open fails at once (the API keeps its model and tries again later)."""
        self.database.parent.mkdir(parents=True, exist_ok=True)
        deadline, pause = time.monotonic() + LOCK_WAIT_SECONDS, 0.1
        while True:
            try:
                connection = duckdb.connect(
                    str(self.database), read_only=read_only, config=self.config
                )
                break
            except duckdb.IOException as error:
                locked = "lock" in str(error).lower()
                if read_only or not locked or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        try:
            yield connection
        finally:
            connection.close()

    def scan(self, table: str, month_column: str, start: date, end: date) -> pl.LazyFrame:
        layer, name = table.split(".")
        if layer in PARQUET_LAYERS:
            return self.layer_files(layer).scan(name, start, end)
        return super().scan(table, month_column, start, end)

    def month_counts(
        self, table: str, month_column: str, start: date, end: date
    ) -> dict[date, int]:
        layer, name = table.split(".")
        if layer in PARQUET_LAYERS:
            return self.layer_files(layer).month_counts(name, start, end)
        return super().month_counts(table, month_column, start, end)

    def replacing(self, start: date, end: date) -> EmbeddedReplacement:
        return EmbeddedReplacement(self, start, end)


class EmbeddedReplacement:
    """Parquet layers staged and swapped in whole months; DuckDB tables in one transaction.

    Everything opened is closed in reverse order at the end: the transaction commits (or rolls
    back) first, and the staged months are swapped in only when it committed.
    """

    def __init__(self, store: EmbeddedTables, start: date, end: date) -> None:
        self.store, self.start, self.end = store, start, end
        self.written: dict[str, int] = {}
        self._opened = ExitStack()
        self._files: dict[str, MonthReplacement] = {}
        self._writer: MonthWriter | None = None

    def __enter__(self) -> EmbeddedReplacement:
        return self

    def write(self, table: str, frame: pl.DataFrame, month_column: str) -> None:
        layer, name = table.split(".")
        if layer in PARQUET_LAYERS:
            if month_column != MONTH_COLUMN:
                raise ValueError(f"{table}: Parquet layers are partitioned by {MONTH_COLUMN}")
            if layer not in self._files:
                files = self.store.layer_files(layer).replacing(self.start, self.end)
                self._files[layer] = self._opened.enter_context(files)
            self._files[layer].write(name, frame)
        else:
            if self._writer is None:
                connection = self._opened.enter_context(self.store.connect())
                writer = MonthWriter(connection, self.start, self.end)
                self._writer = self._opened.enter_context(writer)
            self._writer.write(table, frame, month_column)
        self.written[table] = self.written.get(table, 0) + frame.height

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self._opened.__exit__(kind, *rest)
        if kind is None and self._files:
            self._create_views()

    def _create_views(self) -> None:
        with self.store.connect() as connection:
            for table in self.written:
                layer, name = table.split(".")
                if layer in self._files:
                    self.store.layer_files(layer).create_view(connection, table, name)
