"""The raw reader on the real files and the spreadsheet variant, plus its small helpers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from loan_default.lib.ingest.raw_reader import (
    ISO_DATE_FORMAT,
    LINEAGE_COLUMNS,
    RawFile,
    RawInputError,
    guess_date_format,
    raw_month,
    read_bronze,
)
from loan_default.lib.ingest.sources import LMS_LOAN_DAILY as LMS
from loan_default.lib.ingest.sources import SOURCES
from loan_default_tests.lib.conftest import INGESTED_AT, require_dir

REAL_ROWS = {
    "lms_loan_daily": 137_500,
    "features_attributes": 12_500,
    "features_financials": 12_500,
    "feature_clickstream": 215_376,
}
REAL_MONTHS = {
    "lms_loan_daily": (35, date(2023, 1, 1), date(2025, 11, 1)),
    "features_attributes": (25, date(2023, 1, 1), date(2025, 1, 1)),
    "features_financials": (25, date(2023, 1, 1), date(2025, 1, 1)),
    "feature_clickstream": (24, date(2023, 1, 1), date(2024, 12, 1)),
}


def test_error_message_names_file_line_and_column():
    error = RawInputError(Path("/raw/x.csv"), "bad value", line=7, column="Age")
    assert str(error) == "/raw/x.csv, line 7, column 'Age': bad value"
    assert (error.file, error.line, error.column) == (Path("/raw/x.csv"), 7, "Age")
    assert str(RawInputError(Path("/raw/x.csv"), "gone")) == "/raw/x.csv: gone"


def test_locate_finds_the_plain_or_the_gzip_file(tmp_path):
    with pytest.raises(RawInputError, match=r"file not found \(also looked for .*\.csv\.gz\)"):
        RawFile.locate(tmp_path, LMS)
    (tmp_path / "lms_loan_daily.csv.gz").write_bytes(b"")
    assert RawFile.locate(tmp_path, LMS).compressed
    (tmp_path / "lms_loan_daily.csv.gz").unlink()
    (tmp_path / "lms_loan_daily.csv").write_text("")
    assert not RawFile.locate(tmp_path, LMS).compressed


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2023-05-01", "2024-12-01"], "%Y-%m-%d"),
        (["1/5/2023", "1/12/2024"], "%d/%m/%Y"),
        (["5/1/2023", "12/1/2024"], "%m/%d/%Y"),
        (["13/5/2023", "2/5/2023"], "%d/%m/%Y"),
        (["5/13/2023", "5/2/2023"], "%m/%d/%Y"),
        (["2/5/2023", "3/4/2023"], None),
        (["1/1/2023"], None),
        (["2023-05-01", "1/5/2023"], None),
        ([], None),
    ],
)
def test_guess_date_format(values, expected):
    assert guess_date_format(values) == expected


# --- the real files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SOURCES))
def test_real_files_row_counts_and_months(real_ingested, name):
    bronze, _ = real_ingested[name]
    assert bronze.height == REAL_ROWS[name]
    months = bronze["partition_month"]
    assert (months.n_unique(), months.min(), months.max()) == REAL_MONTHS[name]
    assert bronze.columns == [*SOURCES[name].column_names, *LINEAGE_COLUMNS]
    assert set(bronze.select(SOURCES[name].column_names).schema.values()) == {pl.String}
    assert bronze["source_line"].to_list() == list(range(2, REAL_ROWS[name] + 2))


def test_real_quoted_names_are_kept(real_ingested):
    names = real_ingested["features_attributes"][0]["Name"]
    assert names.str.contains(",", literal=True).sum() == 12
    assert names.str.contains('"', literal=True).sum() == 107


def test_real_lms_month_range(real_raw_dir):
    raw = RawFile.locate(real_raw_dir, LMS)
    bronze = read_bronze(raw, LMS, (date(2023, 1, 1), date(2023, 3, 1)), INGESTED_AT)
    assert bronze["partition_month"].value_counts(sort=True).rows() == [
        (date(2023, 2, 1), 1031),
        (date(2023, 1, 1), 530),
    ]


def test_real_clickstream_has_no_rows_after_2024(real_raw_dir):
    source = SOURCES["feature_clickstream"]
    raw = RawFile.locate(real_raw_dir, source)
    bronze = read_bronze(raw, source, (date(2025, 1, 1), date(2025, 12, 1)), INGESTED_AT)
    assert bronze.height == 0


# --- the spreadsheet (Excel D/M/YYYY, gzip) variant ------------------------------------------


@pytest.mark.parametrize("name", list(SOURCES))
def test_spreadsheet_variant_with_iso_format_explains_the_fix(excel_dmy_dir, name):
    source = SOURCES[name]
    raw = RawFile.locate(excel_dmy_dir, source)
    assert raw.compressed
    with pytest.raises(RawInputError) as info:
        read_bronze(raw, source, None, INGESTED_AT, ISO_DATE_FORMAT)
    error = info.value
    assert (error.line, error.column) == (2, "snapshot_date")
    message = str(error)
    assert "with format '%Y-%m-%d'." in message
    assert "The dates are D/M/YYYY, as a spreadsheet re-save writes them." in message
    assert "Re-export with ISO dates (YYYY-MM-DD), or set LOAN_DEFAULT_DATE_FORMAT='%d/%m/%Y'." in (
        message
    )


def test_spreadsheet_variant_with_month_first_format_is_refused(excel_dmy_dir):
    raw = RawFile.locate(excel_dmy_dir, LMS)
    with pytest.raises(RawInputError, match="the dates do not match format '%m/%d/%Y'"):
        read_bronze(raw, LMS, None, INGESTED_AT, "%m/%d/%Y")


@pytest.mark.parametrize("name", list(SOURCES))
def test_spreadsheet_variant_with_its_format_reads_every_row(excel_ingested, real_ingested, name):
    bronze = excel_ingested[name][0]
    assert bronze.height == REAL_ROWS[name]
    original = real_ingested[name][0]
    assert (
        bronze["partition_month"]
        .value_counts(sort=True)
        .equals(original["partition_month"].value_counts(sort=True))
    )
    assert bronze["Customer_ID"].equals(original["Customer_ID"])


def test_missing_data_folder_skips_locally_and_fails_in_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_dir(tmp_path / "missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must provide ../shared"):
        require_dir(tmp_path / "missing")
    assert require_dir(tmp_path) == tmp_path


def test_a_raw_date_belongs_to_its_month_whatever_the_day_and_padding():
    dates = pl.DataFrame({"d": ["2024-05-17", " 2024-05-01 ", "2024-05-31\r\n", "", "x"]})
    months = dates.select(raw_month("d", ISO_DATE_FORMAT))["d"].to_list()
    assert months == [date(2024, 5, 1)] * 3 + [None, None]
