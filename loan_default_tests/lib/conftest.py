"""Fixtures for the library tests: tiny raw files written into tmp_path, and the real data.

The real data lives beside the repo (../shared/data/raw); without it the real-data tests skip,
except in CI, where missing data is a failure rather than a silent pass.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from loan_default.lib.ingest.cleaning import CleanResult, clean
from loan_default.lib.ingest.raw_reader import ISO_DATE_FORMAT, RawFile, read_bronze
from loan_default.lib.ingest.sources import SOURCES, Source

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_RAW_DIR = REPO_ROOT.parent / "shared" / "data" / "raw"
EXCEL_DMY_DIR = REPO_ROOT.parent / "shared" / "data" / "raw_variants" / "excel_dmy"
INGESTED_AT = datetime(2025, 12, 1, 6, 0, tzinfo=UTC)

# One made-up, real-looking valid row per source; tests override single values.
GOOD_ROWS: dict[str, dict[str, str]] = {
    "lms_loan_daily": {
        "loan_id": "CUS_0x2b1f_2023_05_01",
        "Customer_ID": "CUS_0x2b1f",
        "loan_start_date": "2023-05-01",
        "tenure": "10",
        "installment_num": "0",
        "loan_amt": "10000",
        "due_amt": "0.0",
        "paid_amt": "0.0",
        "overdue_amt": "0.0",
        "balance": "10000.0",
        "snapshot_date": "2023-05-01",
    },
    "features_attributes": {
        "Customer_ID": "CUS_0x2b1f",
        "Name": "Maria Oyelaran",
        "Age": "34",
        "SSN": "521-08-3317",
        "Occupation": "Engineer",
        "snapshot_date": "2023-05-01",
    },
    "features_financials": {
        "Customer_ID": "CUS_0x2b1f",
        "Annual_Income": "41872.5",
        "Monthly_Inhand_Salary": "3289.375",
        "Num_Bank_Accounts": "4",
        "Num_Credit_Card": "5",
        "Interest_Rate": "12",
        "Num_of_Loan": "3",
        "Type_of_Loan": "Auto Loan, Student Loan, and Payday Loan",
        "Delay_from_due_date": "14",
        "Num_of_Delayed_Payment": "9",
        "Changed_Credit_Limit": "6.27",
        "Num_Credit_Inquiries": "4.0",
        "Credit_Mix": "Standard",
        "Outstanding_Debt": "1204.33",
        "Credit_Utilization_Ratio": "31.90412276501",
        "Credit_History_Age": "17 Years and 4 Months",
        "Payment_of_Min_Amount": "No",
        "Total_EMI_per_month": "88.1204556310",
        "Amount_invested_monthly": "120.75031",
        "Payment_Behaviour": "Low_spent_Small_value_payments",
        "Monthly_Balance": "361.0623",
        "snapshot_date": "2023-05-01",
    },
    "feature_clickstream": {
        **{f"fe_{i}": str((i * 37) % 211 - 60) for i in range(1, 21)},
        "Customer_ID": "CUS_0x2b1f",
        "snapshot_date": "2023-05-01",
    },
}


def require_dir(path: Path) -> Path:
    """The folder, or a skip; in CI (CI=true) a missing folder fails instead."""
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"data folder missing at {path}: CI must provide ../shared")
        pytest.skip(f"data folder not found at {path}")
    return path


def csv_line(source: Source, **values: str) -> str:
    """One CSV line (no newline) of the source's good row with `values` replaced."""
    row = {**GOOD_ROWS[source.name], **values}
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([row[c] for c in source.column_names])
    return buffer.getvalue()


def header_line(source: Source) -> str:
    return ",".join(source.column_names)


@pytest.fixture
def write_raw(tmp_path: Path) -> Callable[..., RawFile]:
    """Write raw bytes or text as the source's file (gzip-compressed when `gz`)."""

    def write(source: Source, content: str | bytes, gz: bool = False) -> RawFile:
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = tmp_path / (source.file_name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
        return RawFile(path)

    return write


def ingest(
    raw: RawFile,
    source: Source,
    months: tuple[date, date] | None = None,
    date_format: str = ISO_DATE_FORMAT,
) -> tuple[pl.DataFrame, CleanResult]:
    """read_bronze then clean, checking that every bronze line lands in exactly one output."""
    bronze = read_bronze(raw, source, months, INGESTED_AT, date_format)
    result = clean(bronze, source, date_format)
    assert bronze.height == result.silver.height + result.quarantine.height
    landed = [*result.silver["source_line"], *result.quarantine["source_line"]]
    assert sorted(landed) == sorted(bronze["source_line"])
    return bronze, result


@pytest.fixture(name="ingest")
def ingest_fixture() -> Callable[..., tuple[pl.DataFrame, CleanResult]]:
    return ingest


@pytest.fixture
def bronze_frame() -> Callable[..., pl.DataFrame]:
    """A bronze frame of good rows with per-row overrides, for cleaning-rule tests.

    Each row gets its own customer, so rows do not share a key unless a test says so.
    """

    def build(source: Source, *overrides: dict[str, str | None]) -> pl.DataFrame:
        rows = []
        for number, values in enumerate(overrides):
            customer = f"CUS_0x{0x2B1F + number:x}"
            keys = {"Customer_ID": customer, "loan_id": f"{customer}_2023_05_01"}
            row = {**GOOD_ROWS[source.name], **keys, **values}
            rows.append({c: row[c] for c in source.column_names})
        frame = pl.DataFrame(rows, schema={c: pl.String for c in source.column_names})
        return frame.with_columns(
            partition_month=pl.lit(date(2023, 5, 1)),
            source_file=pl.lit(f"/raw/{source.file_name}"),
            source_line=pl.int_range(2, pl.len() + 2, dtype=pl.Int64),
            ingested_at=pl.lit(INGESTED_AT, dtype=pl.Datetime("us", "UTC")),
        )

    return build


@pytest.fixture(scope="session")
def real_raw_dir() -> Path:
    return require_dir(REAL_RAW_DIR)


@pytest.fixture(scope="session")
def excel_dmy_dir() -> Path:
    return require_dir(EXCEL_DMY_DIR)


def _ingest_all(raw_dir: Path, date_format: str) -> dict[str, tuple[pl.DataFrame, CleanResult]]:
    return {
        name: ingest(RawFile.locate(raw_dir, source), source, None, date_format)
        for name, source in SOURCES.items()
    }


@pytest.fixture(scope="session")
def real_ingested(real_raw_dir: Path) -> dict[str, tuple[pl.DataFrame, CleanResult]]:
    """Bronze and clean result of every real source over all months, computed once."""
    return _ingest_all(real_raw_dir, ISO_DATE_FORMAT)


@pytest.fixture(scope="session")
def excel_ingested(excel_dmy_dir: Path) -> dict[str, tuple[pl.DataFrame, CleanResult]]:
    """The spreadsheet (D/M/YYYY, gzip) variant, read and cleaned with its date format."""
    return _ingest_all(excel_dmy_dir, "%d/%m/%Y")
