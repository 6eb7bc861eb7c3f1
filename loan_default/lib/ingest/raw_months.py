"""What a raw folder holds, cheaply: a fingerprint of its files and the loan book's months.

Used by the new-month sensor, which must answer in seconds without hashing gigabytes.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import polars as pl

from loan_default.lib.ingest.raw_reader import RawFile, raw_month
from loan_default.lib.ingest.sources import Source


def files_fingerprint(files: list[Path]) -> str:
    """Changes whenever a file is replaced, grows or is touched: name, size and mtime."""
    digest = hashlib.sha256()
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def month_counts(raw: RawFile, source: Source, date_format: str) -> dict[date, int]:
    """Rows per month of the file's date column, in month order; unreadable dates are left to
    the pipeline, which refuses them with file, line and column."""
    with raw.open_bytes() as handle:
        dates = pl.read_csv(handle, columns=[source.date_column], infer_schema=False)
    counts = (
        dates.select(month=raw_month(source.date_column, date_format))
        .drop_nulls()
        .group_by("month")
        .len()
        .sort("month")
    )
    return dict(counts.iter_rows())


def months_in_loan_book(raw: RawFile, source: Source, date_format: str) -> list[date]:
    """The months the file's date column covers; unreadable dates are left to the pipeline."""
    return list(month_counts(raw, source, date_format))


def outside_months(counts: dict[date, int], first: date, end: date) -> dict[date, int]:
    """The months of `counts` outside the configured [first, end): rows no partition ingests."""
    return {month: rows for month, rows in counts.items() if not first <= month < end}
