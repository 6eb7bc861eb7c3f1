"""What a raw folder holds, cheaply: a fingerprint of its files and the loan book's months.

Used by the new-month sensor, which must answer in seconds without hashing gigabytes.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import polars as pl

from loan_default.lib.raw_reader import RawFile
from loan_default.lib.sources import Source


def files_fingerprint(files: list[Path]) -> str:
    """Changes whenever a file is replaced, grows or is touched: name, size and mtime."""
    digest = hashlib.sha256()
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def months_in_loan_book(raw: RawFile, source: Source, date_format: str) -> list[date]:
    """The months the file's date column covers; unreadable dates are left to the pipeline."""
    with raw.open_bytes() as handle:
        dates = pl.read_csv(handle, columns=[source.date_column], infer_schema=False)
    months = dates.select(
        pl.col(source.date_column)
        .str.strip_chars()
        .str.strptime(pl.Date, date_format, strict=False)
        .dt.truncate("1mo")
        .drop_nulls()
        .unique()
        .sort()
    )
    return months.to_series().to_list()
