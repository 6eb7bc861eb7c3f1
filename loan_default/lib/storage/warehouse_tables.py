"""Read-only views of the DuckDB warehouse: which tables exist and a fingerprint of each."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import polars as pl

# Ingestion time changes on every run by design; a re-run is "identical" in everything else.
VOLATILE_COLUMNS = ("ingested_at",)


def list_tables(database: Path) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "select table_schema || '.' || table_name from information_schema.tables order by 1"
        ).fetchall()
    return [name for (name,) in rows]


def read_table(database: Path, table: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(f"select * from {table}").pl()


def fingerprint(frame: pl.DataFrame) -> str:
    """sha256 of the table's content in a canonical row order, volatile columns left out."""
    stable = frame.drop([c for c in VOLATILE_COLUMNS if c in frame.columns])
    canonical = stable.sort(stable.columns, nulls_last=True).write_csv()
    return hashlib.sha256(canonical.encode()).hexdigest()


def fingerprints(database: Path) -> dict[str, tuple[int, str]]:
    """Row count and content hash of every table in the warehouse."""
    result = {}
    for table in list_tables(database):
        frame = read_table(database, table)
        result[table] = (frame.height, fingerprint(frame))
    return result
