"""Read-only views of a warehouse, whatever stores it: its tables and a fingerprint of each,
whole or per month, to compare two warehouses (two runs, two profiles) table by table."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from loan_default.lib.storage.embedded_tables import EmbeddedTables
from loan_default.lib.storage.table_store import TableStore

# Ingestion and scoring times change on every run by design; a re-run is "identical" in
# everything else.
VOLATILE_COLUMNS = ("ingested_at", "scored_at", "served_at")
# The month column of a table: the first of these it has.
MONTH_COLUMNS = ("partition_month", "label_month", "application_month", "month", "as_of_month")


def _store(warehouse: TableStore | Path) -> TableStore:
    return warehouse if isinstance(warehouse, TableStore) else EmbeddedTables(Path(warehouse))


def read_table(warehouse: TableStore | Path, table: str) -> pl.DataFrame:
    return _store(warehouse).read(table)


def fingerprint(frame: pl.DataFrame) -> str:
    """sha256 of the table's content in a canonical row order, volatile columns left out."""
    stable = frame.drop([c for c in VOLATILE_COLUMNS if c in frame.columns])
    canonical = stable.sort(stable.columns, nulls_last=True).write_csv()
    return hashlib.sha256(canonical.encode()).hexdigest()


def fingerprints(warehouse: TableStore | Path) -> dict[str, tuple[int, str]]:
    """Row count and content hash of every table in the warehouse."""
    store = _store(warehouse)
    result = {}
    for table in store.tables():
        frame = store.read(table)
        result[table] = (frame.height, fingerprint(frame))
    return result


def month_fingerprints(
    warehouse: TableStore | Path, tables: list[str] | None = None
) -> dict[tuple[str, str], tuple[int, str]]:
    """Row count and content hash of every (table, month); a table without a month column
    counts as one month, "all", and an empty table as one, "none" (its hash is its columns')."""
    store = _store(warehouse)
    result = {}
    for table in tables or store.tables():
        frame = store.read(table)
        month = next((c for c in MONTH_COLUMNS if c in frame.columns), None)
        if frame.is_empty():
            parts = {("none",): frame}
        elif month:
            parts = frame.partition_by(month, as_dict=True)
        else:
            parts = {("all",): frame}
        for (key,), part in parts.items():
            result[(table, str(key))] = (part.height, fingerprint(part))
    return result
