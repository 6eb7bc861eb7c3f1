"""A corpus of bad raw inputs: each either fails with file, line and column, or quarantines.

Files are written into tmp_path from made-up rows; the real data is never copied.
"""

from __future__ import annotations

import gzip
import re
import zlib
from datetime import date

import pytest

from loan_default.lib.ingest import raw_reader
from loan_default.lib.ingest.cleaning import clean, first_values, value_reasons
from loan_default.lib.ingest.raw_months import month_counts
from loan_default.lib.ingest.raw_reader import RawFile, RawInputError, read_bronze
from loan_default.lib.ingest.sources import FEATURE_CLICKSTREAM as CLICKS
from loan_default.lib.ingest.sources import FEATURES_ATTRIBUTES as ATTRS
from loan_default.lib.ingest.sources import FEATURES_FINANCIALS as FIN
from loan_default.lib.ingest.sources import LMS_LOAN_DAILY as LMS
from loan_default_tests.lib.conftest import INGESTED_AT, REPO_ROOT, csv_line, header_line

ATTRS_HEADER = "Customer_ID,Name,Age,SSN,Occupation,snapshot_date"
ATTRS_ROWS = (
    "CUS_0x2b1f,Maria Oyelaran,34,521-08-3317,Engineer,2023-05-01\n"
    "CUS_0x3c07,Tom Brandt,41_,#F%$D@*&8,_______,2023-05-01\n"
    "CUS_0x4d22,Chen Yu,-500,604-11-9082,Teacher,2023-06-01\n"
)
LMS_ROWS = (
    "CUS_0x2b1f_2023_05_01,CUS_0x2b1f,2023-05-01,10,0,10000,0.0,0.0,0.0,10000.0,2023-05-01\n"
    "CUS_0x2b1f_2023_05_01,CUS_0x2b1f,2023-05-01,10,1,10000,1000.0,1000.0,0.0,9000.0,2023-06-01\n"
    "CUS_0x2b1f_2023_05_01,CUS_0x2b1f,2023-05-01,10,2,10000,1000.0,0.0,1000.0,9000.0,2023-07-01\n"
)


def raises(raw, source, **kwargs) -> RawInputError:
    with pytest.raises(RawInputError) as info:
        read_bronze(raw, source, None, INGESTED_AT, **kwargs)
    assert str(info.value).startswith(str(raw.path))
    return info.value


# --- header problems -------------------------------------------------------------------------


def test_missing_column(write_raw):
    raw = write_raw(ATTRS, "Customer_ID,Name,Age,SSN,snapshot_date\nCUS_1,Ann,30,1,2023-05-01\n")
    error = raises(raw, ATTRS)
    assert (error.line, error.column) == (1, "Occupation")
    assert "missing column(s) ['Occupation']" in str(error)
    assert f"{raw.path}, line 1, column 'Occupation': " in str(error)


def test_extra_column(write_raw):
    raw = write_raw(ATTRS, ATTRS_HEADER + ",Email\n" + ATTRS_ROWS.replace("\n", ",a@b.c\n"))
    error = raises(raw, ATTRS)
    assert (error.line, error.column) == (1, "Email")
    assert "unexpected column(s) ['Email']" in str(error)


def test_repeated_header_column(write_raw):
    raw = write_raw(ATTRS, ATTRS_HEADER + ",Age\n" + ATTRS_ROWS.replace("\n", ",34\n"))
    error = raises(raw, ATTRS)
    assert (error.line, error.column) == (1, "Age")
    assert "['Age'] appear more than once in the header" in str(error)


def test_wrong_delimiter_semicolon(write_raw):
    raw = write_raw(ATTRS, (ATTRS_HEADER + "\n" + ATTRS_ROWS).replace(",", ";"))
    error = raises(raw, ATTRS)
    assert (error.line, error.column) == (1, None)
    assert "header is delimited by ';', not ','" in str(error)
    assert "re-export the file as comma-separated CSV" in str(error)


def test_wrong_delimiter_tab(write_raw):
    raw = write_raw(ATTRS, (ATTRS_HEADER + "\n" + ATTRS_ROWS).replace(",", "\t"))
    assert "header is delimited by '\\t', not ','" in str(raises(raw, ATTRS))


def test_empty_file(write_raw):
    raw = write_raw(ATTRS, b"")
    error = raises(raw, ATTRS)
    assert (error.line, error.column) == (1, None)
    assert f"file is empty; expected a header line: {ATTRS_HEADER}" in str(error)


def test_header_only_gives_no_rows(write_raw, ingest):
    bronze, result = ingest(write_raw(ATTRS, ATTRS_HEADER + "\n"), ATTRS)
    assert bronze.height == result.silver.height == result.quarantine.height == 0
    assert result.nulled_values == {}


def test_header_only_without_newline(write_raw, ingest):
    bronze, _ = ingest(write_raw(ATTRS, ATTRS_HEADER), ATTRS)
    assert bronze.height == 0


# --- partition dates -------------------------------------------------------------------------


def test_unparseable_partition_date_names_line_and_column(write_raw):
    rows = ATTRS_ROWS.replace("Teacher,2023-06-01", "Teacher,2023-13-01")
    error = raises(write_raw(ATTRS, ATTRS_HEADER + "\n" + rows), ATTRS)
    assert (error.line, error.column) == (4, "snapshot_date")
    assert str(error) == (
        f"{error.file}, line 4, column 'snapshot_date': "
        "cannot read date '2023-13-01' with format '%Y-%m-%d'."
    )


def test_empty_partition_date(write_raw):
    rows = ATTRS_ROWS.replace("Engineer,2023-05-01", "Engineer,")
    error = raises(write_raw(ATTRS, ATTRS_HEADER + "\n" + rows), ATTRS)
    assert (error.line, error.column) == (2, "snapshot_date")
    assert str(error).endswith(": the date is empty; every row needs a snapshot_date.")


def test_spreadsheet_dates_with_default_format(write_raw):
    text = (
        "\n".join(
            [
                header_line(LMS),
                csv_line(LMS, loan_start_date="1/5/2023", snapshot_date="1/5/2023"),
                csv_line(
                    LMS, loan_start_date="1/5/2023", snapshot_date="1/6/2023", installment_num="1"
                ),
            ]
        )
        + "\n"
    )
    error = raises(write_raw(LMS, text), LMS)
    assert (error.line, error.column) == (2, "snapshot_date")
    message = str(error)
    assert "cannot read date '1/5/2023' with format '%Y-%m-%d'" in message
    assert "The dates are D/M/YYYY, as a spreadsheet re-save writes them" in message
    assert "Re-export with ISO dates (YYYY-MM-DD), or set LOAN_DEFAULT_DATE_FORMAT='%d/%m/%Y'" in (
        message
    )


def test_spreadsheet_dates_with_their_format(write_raw, ingest):
    text = (
        "\n".join(
            [
                header_line(LMS),
                csv_line(LMS, loan_start_date="1/5/2023", snapshot_date="1/5/2023"),
                csv_line(
                    LMS, loan_start_date="1/5/2023", snapshot_date="1/6/2023", installment_num="1"
                ),
            ]
        )
        + "\n"
    )
    bronze, result = ingest(write_raw(LMS, text), LMS, date_format="%d/%m/%Y")
    assert bronze["partition_month"].to_list() == [date(2023, 5, 1), date(2023, 6, 1)]
    assert result.quarantine.height == 0
    assert result.silver["loan_start_date"].to_list() == [date(2023, 5, 1)] * 2


def test_spreadsheet_dates_with_the_other_slash_format(write_raw):
    """1/5/2023 also parses as 5 January: a format the data contradicts must not pass."""
    text = (
        "\n".join(
            [
                header_line(LMS),
                csv_line(LMS, loan_start_date="1/5/2023", snapshot_date="1/5/2023"),
                csv_line(
                    LMS, loan_start_date="1/5/2023", snapshot_date="1/6/2023", installment_num="1"
                ),
            ]
        )
        + "\n"
    )
    error = raises(write_raw(LMS, text), LMS, date_format="%m/%d/%Y")
    assert error.column == "snapshot_date"
    assert "the dates do not match format '%m/%d/%Y'. The dates are D/M/YYYY" in str(error)


def test_iso_dates_with_spreadsheet_format(write_raw):
    raw = write_raw(ATTRS, ATTRS_HEADER + "\n" + ATTRS_ROWS)
    error = raises(raw, ATTRS, date_format="%d/%m/%Y")
    assert (error.line, error.column) == (2, "snapshot_date")
    assert "The dates are ISO (YYYY-MM-DD): unset LOAN_DEFAULT_DATE_FORMAT" in str(error)


# --- values judged in silver -----------------------------------------------------------------


def test_unparseable_loan_start_date_is_quarantined(write_raw, ingest):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[1] = rows[1].replace(",2023-05-01,10,1,", ",2023-02-30,10,1,")
    bronze, result = ingest(write_raw(LMS, header_line(LMS) + "\n" + "".join(rows)), LMS)
    assert bronze.height == 3
    assert result.quarantine.select("source_line", "reason").rows() == [
        (3, "unreadable_date:loan_start_date")
    ]
    assert result.quarantine["loan_start_date"].to_list() == ["2023-02-30"]
    assert result.silver["source_line"].to_list() == [2, 4]


def test_unparseable_numbers_are_quarantined_naming_the_column(write_raw, ingest):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[0] = rows[0].replace(",10,0,10000,", ",ten,0,10000,")
    rows[2] = rows[2].replace(",1000.0,0.0,1000.0,", ",1000.0,n/a,1000.0,")
    _, result = ingest(write_raw(LMS, header_line(LMS) + "\n" + "".join(rows)), LMS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (2, "unreadable_int:tenure"),
        (4, "unreadable_float:paid_amt"),
    ]
    assert result.silver["source_line"].to_list() == [3]


def test_unparseable_optional_number_is_nulled_with_its_reason(write_raw, ingest):
    """An optional income that does not parse loses that value, not the applicant's row."""
    text = (
        "\n".join(
            [
                header_line(FIN),
                csv_line(FIN),
                csv_line(FIN, Customer_ID="CUS_0x77", Annual_Income="4l872"),
            ]
        )
        + "\n"
    )
    _, result = ingest(write_raw(FIN, text), FIN)
    assert result.quarantine.height == 0
    assert result.silver["annual_income"].to_list() == [41872.5, None]
    assert result.nulled_values == {"Annual_Income (unreadable_float)": 1}


def test_duplicate_rows_quarantine_the_later_ones(write_raw, ingest):
    first = LMS_ROWS.splitlines()[0]
    text = header_line(LMS) + "\n" + LMS_ROWS + first + "\n" + first.replace(",0.0,0.0,", ",5,5,")
    bronze, result = ingest(write_raw(LMS, text + "\n"), LMS)
    assert bronze.height == 5
    assert result.quarantine.select("source_line", "reason").rows() == [
        (5, "duplicate_key"),
        (6, "duplicate_key"),
    ]
    assert result.silver["source_line"].to_list() == [2, 3, 4]


def test_duplicate_key_among_other_reasons(write_raw, ingest):
    first = LMS_ROWS.splitlines()[0]
    text = header_line(LMS) + "\n" + first + "\n" + first.replace(",10,0,", ",x,0,") + "\n"
    _, result = ingest(write_raw(LMS, text), LMS)
    assert result.quarantine["reason"].to_list() == ["unreadable_int:tenure; duplicate_key"]


# --- ragged and truncated rows ---------------------------------------------------------------


def test_truncated_last_line(write_raw):
    cut = LMS_ROWS + "CUS_0x2b1f_2023_05_01,CUS_0x2b1f,2023-05-01,10,3,10000,1000.0,10"
    error = raises(write_raw(LMS, header_line(LMS) + "\n" + cut), LMS)
    assert (error.line, error.column) == (5, "overdue_amt")
    assert "row is truncated: it has 8 of 11 fields" in str(error)
    assert "['overdue_amt', 'balance', 'snapshot_date'] are missing" in str(error)


def test_truncated_row_in_the_middle(write_raw):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows.insert(1, "CUS_0x2b1f_2023_05_01,CUS_0x2b1f\n")
    error = raises(write_raw(LMS, header_line(LMS) + "\n" + "".join(rows)), LMS)
    assert (error.line, error.column) == (3, "loan_start_date")


def test_row_with_too_many_fields(write_raw):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[2] = rows[2].replace("\n", ",extra\n")
    error = raises(write_raw(LMS, header_line(LMS) + "\n" + "".join(rows)), LMS)
    assert (error.line, error.column) == (4, None)
    assert "row has 12 fields, expected 11" in str(error)


def test_too_many_fields_after_quoted_commas(write_raw):
    """Quoted names with commas and doubled quotes are not ragged; the later long row is."""
    text = (
        ATTRS_HEADER + "\n"
        '"CUS_0x11a0",", Europeanx",29,318-44-1029,Doctor,2023-05-01\n'
        'CUS_0x11a1,"Ann ""Nan"" Ruiz, Jr",33,903-12-4410,Writer,2023-05-01\n'
        "CUS_0x11a2,Ola,25,118-20-3311,Writer,2023-05-01\n"
        "CUS_0x11a3,Smith, John,40,551-19-0228,Lawyer,2023-05-01\n"
    )
    error = raises(write_raw(ATTRS, text), ATTRS)
    assert (error.line, error.column) == (5, None)
    assert "row has 7 fields, expected 6; a value probably contains an unquoted ','" in str(error)


def test_quoted_commas_read_as_one_value(write_raw, ingest):
    text = (
        ATTRS_HEADER + "\n"
        'CUS_0x11a0,", Europeanx",29,318-44-1029,Doctor,2023-05-01\n'
        'CUS_0x11a1,"Ann ""Nan"" Ruiz, Jr",33,903-12-4410,Writer,2023-05-01\n'
    )
    bronze, result = ingest(write_raw(ATTRS, text), ATTRS)
    assert bronze["Name"].to_list() == [", Europeanx", 'Ann "Nan" Ruiz, Jr']
    assert result.silver.height == 2


def test_too_many_fields_in_gzip_file(write_raw):
    rows = LMS_ROWS.replace(",2023-07-01\n", ",2023-07-01,,\n")
    error = raises(write_raw(LMS, header_line(LMS) + "\n" + rows, gz=True), LMS)
    assert (error.line, error.column) == (4, None)
    assert "row has 13 fields, expected 11" in str(error)


def test_blank_line(write_raw):
    rows = LMS_ROWS.replace("2023-06-01\n", "2023-06-01\n\n")
    error = raises(write_raw(LMS, header_line(LMS) + "\n" + rows), LMS)
    assert (error.line, error.column) == (4, None)
    assert "line is blank; remove blank lines" in str(error)


def test_unbalanced_quote(write_raw):
    unbalanced = 'CUS_0x5e01,"Rita Mae,37,229-01-7720,Nurse,2023-06-01\n'
    text = ATTRS_HEADER + "\n" + ATTRS_ROWS + unbalanced
    error = raises(write_raw(ATTRS, text), ATTRS)
    assert error.line == 5
    assert "unbalanced '\"' quote" in str(error)


def test_quoted_line_break_keeps_physical_line_numbers(write_raw, ingest):
    text = (
        ATTRS_HEADER + "\n"
        'CUS_0x11a0,"Lee\nWong",29,318-44-1029,Doctor,2023-05-01\n'
        "CUS_0x11a1,Ola,25,118-20-3311,Writer,2023-05-01\n"
    )
    bronze, _ = ingest(write_raw(ATTRS, text), ATTRS)
    assert bronze["source_line"].to_list() == [2, 4]
    bad = write_raw(ATTRS, text + "CUS_0x11a2,Ida,25,118-20-3312,Writer,2023-5-x\n")
    assert raises(bad, ATTRS).line == 5


# --- encodings and line endings --------------------------------------------------------------


def assert_clean_text(bronze) -> None:
    for column in bronze.select(ATTRS.column_names).columns:
        for value in bronze[column]:
            assert "\r" not in value and "\ufeff" not in value, (column, value)


def test_utf8_bom(write_raw, ingest):
    raw = write_raw(ATTRS, b"\xef\xbb\xbf" + (ATTRS_HEADER + "\n" + ATTRS_ROWS).encode())
    bronze, result = ingest(raw, ATTRS)
    assert bronze.columns[0] == "Customer_ID"
    assert bronze["Customer_ID"][0] == "CUS_0x2b1f"
    assert_clean_text(bronze)
    assert result.silver.height == 3


def test_crlf_line_endings(write_raw, ingest):
    raw = write_raw(ATTRS, (ATTRS_HEADER + "\n" + ATTRS_ROWS).replace("\n", "\r\n"))
    bronze, result = ingest(raw, ATTRS)
    assert bronze["snapshot_date"].to_list() == ["2023-05-01", "2023-05-01", "2023-06-01"]
    assert bronze["source_line"].to_list() == [2, 3, 4]
    assert_clean_text(bronze)
    assert result.silver["snapshot_date"].null_count() == 0


def test_bom_crlf_and_gzip_together(write_raw, ingest):
    text = (ATTRS_HEADER + "\n" + ATTRS_ROWS).replace("\n", "\r\n")
    bronze, result = ingest(write_raw(ATTRS, b"\xef\xbb\xbf" + text.encode(), gz=True), ATTRS)
    assert_clean_text(bronze)
    assert bronze["Customer_ID"][0] == "CUS_0x2b1f"
    assert result.silver.height == 3


def test_crlf_truncated_row_names_its_line(write_raw):
    text = (header_line(LMS) + "\n" + LMS_ROWS).replace("\n", "\r\n") + "CUS_0x2b1f_2023"
    error = raises(write_raw(LMS, text), LMS)
    assert (error.line, error.column) == (5, "Customer_ID")


# --- month ranges ----------------------------------------------------------------------------


def test_month_range_with_an_empty_month(write_raw, ingest):
    raw = write_raw(LMS, header_line(LMS) + "\n" + LMS_ROWS.replace("2023-06-01\n", "2023-08-01\n"))
    bronze, _ = ingest(raw, LMS, (date(2023, 5, 1), date(2023, 9, 1)))
    assert bronze["partition_month"].to_list() == [
        date(2023, 5, 1),
        date(2023, 8, 1),
        date(2023, 7, 1),
    ]
    empty, result = ingest(raw, LMS, (date(2023, 6, 1), date(2023, 7, 1)))
    assert empty.height == result.silver.height == result.quarantine.height == 0


def test_month_range_keeps_lineage(write_raw, ingest):
    raw = write_raw(CLICKS, header_line(CLICKS) + "\n" + csv_line(CLICKS) + "\n")
    bronze, _ = ingest(raw, CLICKS, (date(2023, 5, 1), date(2023, 6, 1)))
    row = bronze.row(0, named=True)
    assert (row["partition_month"], row["source_line"]) == (date(2023, 5, 1), 2)
    assert row["source_file"] == str(raw.path)
    assert row["ingested_at"] == INGESTED_AT


def test_latin1_file_names_the_first_bad_line(write_raw):
    latin1 = "CUS_0x5e02,Renée Doyle,29,338-01-7721,Nurse,2023-06-01\n"
    text = ATTRS_HEADER + "\n" + ATTRS_ROWS + latin1
    error = raises(write_raw(ATTRS, text.encode("latin-1")), ATTRS)
    assert (error.line, error.column) == (5, None)
    assert "the file is not UTF-8 (byte 0xe9 at byte 15 of the line); re-export it as UTF-8" in (
        str(error)
    )


def test_latin1_header(write_raw):
    raw = write_raw(ATTRS, (ATTRS_HEADER.replace("Name", "Nom_é") + "\n").encode("latin-1"))
    error = raises(raw, ATTRS)
    assert error.line == 1
    assert "the file is not UTF-8" in str(error)


# --- issue 25: plausibility, consistency, limits, locations ----------------------------------


def lms_text(*rows: str) -> str:
    return header_line(LMS) + "\n" + "".join(rows)


def test_implausible_loan_amount_is_quarantined(write_raw, ingest):
    """1e300 parses as a float and is above 0, the column's own bound: plausibility stops it."""
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[1] = rows[1].replace(",10000,1000.0,", ",1e300,1000.0,")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.select("source_line", "reason", "loan_amt").rows() == [
        (3, "out_of_range:loan_amt", "1e300")
    ]
    assert result.silver["loan_amt"].to_list() == [10000.0, 10000.0]


def test_implausible_balance_is_quarantined(write_raw, ingest):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[2] = rows[2].replace(",9000.0,2023-07-01", ",-1e12,2023-07-01")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.select("source_line", "reason").rows() == [(4, "out_of_range:balance")]


def test_loan_start_date_contradicting_the_first_snapshot_is_quarantined(write_raw, ingest):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[2] = rows[2].replace(",2023-05-01,10,2,", ",2023-06-01,10,2,")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (
            4,
            "contradicts_loan:loan_start_date (loan_id CUS_0x2b1f_2023_05_01: 2023-05-01 in "
            "its first snapshot, 2023-06-01 here)",
        )
    ]
    assert result.silver["source_line"].to_list() == [2, 3]


def test_tenure_contradicting_the_first_snapshot_is_quarantined(write_raw, ingest):
    """The first snapshot is the earliest by date, wherever it stands in the file."""
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[0] = rows[0].replace(",2023-05-01,10,0,", ",2023-05-01,12,0,")
    _, result = ingest(write_raw(LMS, lms_text(rows[2], rows[1], rows[0])), LMS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (
            2,
            "contradicts_loan:tenure (loan_id CUS_0x2b1f_2023_05_01: 12 in its first "
            "snapshot, 10 here)",
        ),
        (
            3,
            "contradicts_loan:tenure (loan_id CUS_0x2b1f_2023_05_01: 12 in its first "
            "snapshot, 10 here)",
        ),
    ]


def test_a_later_month_contradicting_silver_is_quarantined(write_raw, ingest):
    """A month cleaned on its own is judged against the first values earlier months left in
    silver, as the silver asset passes them."""
    first, second, third = LMS_ROWS.splitlines(keepends=True)
    _, earlier = ingest(write_raw(LMS, lms_text(first, second)), LMS)
    later = read_bronze(
        write_raw(LMS, lms_text(third.replace(",10,2,", ",11,2,"))), LMS, None, INGESTED_AT
    )
    result = clean(later, LMS, known=first_values(earlier.silver, LMS))
    assert result.quarantine["reason"].to_list() == [
        "contradicts_loan:tenure (loan_id CUS_0x2b1f_2023_05_01: 10 in its first snapshot, 11 here)"
    ]
    assert clean(later, LMS).quarantine.height == 0  # without silver, nothing to contradict


def test_text_nan_in_optional_income_nulls_the_value_not_the_row(write_raw, ingest):
    text = header_line(FIN) + "\n" + csv_line(FIN, Annual_Income="nan") + "\n"
    _, result = ingest(write_raw(FIN, text), FIN)
    assert result.quarantine.height == 0
    assert result.silver["annual_income"].to_list() == [None]
    assert result.silver["monthly_inhand_salary"].to_list() == [3289.375]
    assert result.nulled.select("source_line", "Annual_Income (unreadable_float)").rows() == [
        (2, True)
    ]


def test_text_nan_in_a_required_amount_still_quarantines(write_raw, ingest):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[0] = rows[0].replace(",0.0,0.0,0.0,", ",nan,0.0,0.0,")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine["reason"].to_list() == ["unreadable_float:due_amt"]


def test_nul_byte_in_customer_id_is_quarantined_as_the_api_refuses_it(write_raw, ingest):
    text = header_line(ATTRS) + "\n" + ATTRS_ROWS.replace("CUS_0x3c07", "CUS_0x3c\x0007")
    _, result = ingest(write_raw(ATTRS, text), ATTRS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (3, "control_character:Customer_ID")
    ]
    # The API judges a Customer_ID with the same rules.
    assert value_reasons(["CUS_0x3c\x0007", "CUS_0x3c07"], ATTRS, "Customer_ID") == [
        ["control_character:Customer_ID"],
        [],
    ]


def test_trailing_blank_lines_are_not_rows(write_raw, ingest):
    for ending in ("\n", "\n\n\n", "\r\n"):
        bronze, result = ingest(write_raw(LMS, lms_text(LMS_ROWS) + ending), LMS)
        assert bronze["source_line"].to_list() == [2, 3, 4], repr(ending)
        assert result.silver.height == 3
    gz = write_raw(LMS, lms_text(LMS_ROWS) + "\n", gz=True)
    assert ingest(gz, LMS)[0]["source_line"].to_list() == [2, 3, 4]


def test_trailing_blank_line_after_a_multiline_value(write_raw, ingest):
    text = ATTRS_HEADER + "\n" + 'CUS_0x11a0,"Lee\nWong",29,318-44-1029,Doctor,2023-05-01\n\n'
    bronze, _ = ingest(write_raw(ATTRS, text), ATTRS)
    assert bronze["source_line"].to_list() == [2]


def test_plain_and_gzip_file_for_one_source(tmp_path):
    (tmp_path / "lms_loan_daily.csv").write_text(lms_text(LMS_ROWS))
    (tmp_path / "lms_loan_daily.csv.gz").write_bytes(gzip.compress(lms_text(LMS_ROWS).encode()))
    with pytest.raises(RawInputError) as info:
        RawFile.locate(tmp_path, LMS)
    message = str(info.value)
    assert str(tmp_path / "lms_loan_daily.csv") in message
    assert str(tmp_path / "lms_loan_daily.csv.gz") in message
    assert "two files for source 'lms_loan_daily'" in message


def write_gzip_bytes(tmp_path, data: bytes) -> RawFile:
    """Already-compressed bytes as the source's .gz file."""
    path = tmp_path / (LMS.file_name + ".gz")
    path.write_bytes(data)
    return RawFile(path)


def test_gzip_cut_short_names_the_first_unreadable_line(tmp_path):
    compressed = gzip.compress(lms_text(*[LMS_ROWS] * 400).encode())
    raw = write_gzip_bytes(tmp_path, compressed[: len(compressed) // 2])
    with pytest.raises(EOFError):  # what it was: no file, no line
        gzip.decompress(raw.path.read_bytes())
    readable = zlib.decompressobj(wbits=31).decompress(raw.path.read_bytes())
    error = raises(raw, LMS)
    assert error.line == readable.count(b"\n") + 1 > 2
    assert f"{raw.path}, line {error.line}: the gzip data is cut short" in str(error)


def test_damaged_gzip_names_a_line(tmp_path):
    compressed = bytearray(gzip.compress(lms_text(*[LMS_ROWS] * 400).encode()))
    compressed[-6] ^= 0xFF  # inside the CRC-32 trailer: every line decompresses
    raw = write_gzip_bytes(tmp_path, bytes(compressed))
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(raw.path.read_bytes())
    error = raises(raw, LMS)
    assert error.line == 1201
    assert "decompresses to this line but fails its checksum" in str(error)
    compressed[len(compressed) // 2] ^= 0xFF  # inside the deflate data
    assert raises(write_gzip_bytes(tmp_path, bytes(compressed)), LMS).line <= 1201


def test_the_new_month_sensors_count_names_the_line_of_a_cut_gzip(tmp_path):
    """The sensor counts months before any run: it refuses as bronze does, not with EOFError."""
    compressed = gzip.compress(lms_text(*[LMS_ROWS] * 400).encode())
    raw = write_gzip_bytes(tmp_path, compressed[: len(compressed) // 2])
    with pytest.raises(RawInputError) as info:
        month_counts(raw, LMS, "%Y-%m-%d")
    assert info.value.line == raises(raw, LMS).line > 2


def test_cr_only_line_endings_are_refused_by_name(write_raw):
    raw = write_raw(LMS, lms_text(LMS_ROWS).replace("\n", "\r"))
    error = raises(raw, LMS)
    assert (error.line, error.column) == (1, None)
    assert "lines end in a carriage return only (CR" in str(error)


def test_stray_quote_inside_a_value_names_line_and_column(write_raw):
    """The csv module keeps a '"' inside an unquoted value; polars reads on past the line."""
    rows = [ATTRS_ROWS] * 200
    bad = 'CUS_0x5e01,Rita Mae,37,229-01-7720,Nurse",2023-06-01\n'
    error = raises(write_raw(ATTRS, ATTRS_HEADER + "\n" + "".join(rows) + bad + ATTRS_ROWS), ATTRS)
    assert (error.line, error.column) == (602, "Occupation")
    assert "a '\"' inside a value that is not quoted" in str(error)


def test_field_over_the_limit_names_file_line_and_column(write_raw, monkeypatch):
    """The limit holds for well-formed files (polars reads them) as for the others."""
    monkeypatch.setattr(raw_reader, "FIELD_SIZE_LIMIT", 1000)
    at_limit = ATTRS_ROWS.replace("Maria Oyelaran", "M" * 1000)
    assert (
        read_bronze(write_raw(ATTRS, ATTRS_HEADER + "\n" + at_limit), ATTRS, None, INGESTED_AT)[
            "Name"
        ]
        .str.len_chars()
        .max()
        == 1000
    )
    over = ATTRS_ROWS.replace("Teacher", '"' + "T" * 1001 + '"')
    for gz in (False, True):
        error = raises(write_raw(ATTRS, ATTRS_HEADER + "\n" + over, gz=gz), ATTRS)
        assert (error.line, error.column) == (4, "Occupation")
        assert "larger than the reader's limit of 1,000 characters" in str(error)


def test_the_readme_field_limit_is_the_one_enforced(write_raw):
    readme = (REPO_ROOT / "README.md").read_text()
    (mebibytes,) = re.findall(r"a field over the reader's\s+limit of (\d+) MiB", readme)
    stated = int(mebibytes) << 20
    assert stated == raw_reader.FIELD_SIZE_LIMIT
    over = ATTRS_ROWS.replace("Teacher", "T" * (stated + 1))
    error = raises(write_raw(ATTRS, ATTRS_HEADER + "\n" + over), ATTRS)
    assert (error.line, error.column) == (4, "Occupation")
    assert f"limit of {stated:,} characters" in str(error)


# --- issue 25: more kinds of bad or surprising input -----------------------------------------


def attrs_text(rows: str = ATTRS_ROWS) -> str:
    return ATTRS_HEADER + "\n" + rows


def test_utf16_with_byte_order_mark_is_not_utf8(write_raw):
    error = raises(write_raw(ATTRS, attrs_text().encode("utf-16")), ATTRS)
    assert (error.line, error.column) == (1, None)
    assert "the file is not UTF-8 (byte 0xff at byte 1 of the line)" in str(error)


def test_utf16_without_byte_order_mark_names_its_nul_bytes(write_raw):
    error = raises(write_raw(ATTRS, attrs_text().encode("utf-16-le")), ATTRS)
    assert (error.line, error.column) == (1, None)
    assert "the header holds NUL bytes: the file is binary or UTF-16" in str(error)


def test_binary_file_named_csv(write_raw):
    error = raises(write_raw(ATTRS, b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 30), ATTRS)
    assert error.line == 1
    assert "not UTF-8 text; re-export it as UTF-8 CSV" in str(error)


def test_header_name_with_trailing_space(write_raw):
    error = raises(write_raw(ATTRS, attrs_text().replace(",Age,", ",Age ,", 1)), ATTRS)
    assert (error.line, error.column) == (1, "Age")
    assert "missing column(s) ['Age']; the header has ['Customer_ID', 'Name', 'Age '," in str(error)


def test_header_name_in_another_case(write_raw):
    error = raises(
        write_raw(ATTRS, attrs_text().replace("snapshot_date", "Snapshot_Date", 1)), ATTRS
    )
    assert (error.line, error.column) == (1, "snapshot_date")
    assert "missing column(s) ['snapshot_date']" in str(error)


def test_quoted_header_names_are_the_names(write_raw, ingest):
    """Quotes are CSV syntax, not part of a name: an accepted, documented form."""
    header = ",".join(f'"{name}"' for name in ATTRS_HEADER.split(","))
    bronze, result = ingest(write_raw(ATTRS, header + "\n" + ATTRS_ROWS), ATTRS)
    assert bronze["Customer_ID"].to_list() == ["CUS_0x2b1f", "CUS_0x3c07", "CUS_0x4d22"]
    assert result.silver.height == 3


def test_columns_in_another_order_are_read_by_name(write_raw, ingest):
    """The header must hold exactly the source's names; their order is free (accepted)."""
    swapped = "".join(
        f"{b},{a},{rest}"
        for a, b, rest in (line.split(",", 2) for line in ATTRS_ROWS.splitlines(True))
    )
    raw = write_raw(ATTRS, "Name,Customer_ID,Age,SSN,Occupation,snapshot_date\n" + swapped)
    _, result = ingest(raw, ATTRS)
    assert result.silver.select("customer_id", "age").rows() == [
        ("CUS_0x2b1f", 34),
        ("CUS_0x3c07", 41),
        ("CUS_0x4d22", None),
    ]


def test_header_repeated_mid_file_as_two_files_joined(write_raw):
    joined = attrs_text() + attrs_text(ATTRS_ROWS.replace("CUS_0x", "CUS_1x"))
    error = raises(write_raw(ATTRS, joined), ATTRS)
    assert (error.line, error.column) == (5, "snapshot_date")
    assert "cannot read date 'snapshot_date'" in str(error)


def test_blank_first_line(write_raw):
    for text in ("\n" + attrs_text(), "\n\n\n", "\r\n\r\n"):
        error = raises(write_raw(ATTRS, text), ATTRS)
        assert (error.line, error.column) == (1, None), repr(text)
        assert "line is blank; the first line must be the header: Customer_ID,Name" in str(error)


def test_whitespace_only_line_mid_file(write_raw):
    text = attrs_text() + "   \n" + ATTRS_ROWS.replace("CUS_0x", "CUS_1x")
    error = raises(write_raw(ATTRS, text), ATTRS)
    assert (error.line, error.column) == (5, "Name")
    assert "row is truncated: it has 1 of 6 fields" in str(error)


def test_line_of_thousands_of_fields(write_raw):
    text = attrs_text() + ATTRS_ROWS.splitlines()[0] + "," * 5000 + "\n"
    error = raises(write_raw(ATTRS, text), ATTRS)
    assert (error.line, error.column) == (5, None)
    assert "row has 5006 fields, expected 6" in str(error)


def test_plain_text_named_gz(tmp_path):
    path = tmp_path / (ATTRS.file_name + ".gz")
    path.write_text(attrs_text())
    error = raises(RawFile(path), ATTRS)
    assert error.line == 1
    assert "named .gz but does not start as gzip data does; if it is plain CSV text, drop" in (
        str(error)
    )


def test_gzip_data_named_csv(write_raw):
    error = raises(write_raw(ATTRS, gzip.compress(attrs_text().encode())), ATTRS)
    assert error.line == 1
    assert "the file holds gzip-compressed data, not CSV text: add .gz" in str(error)


def test_gzip_compressed_twice(write_raw):
    error = raises(write_raw(ATTRS, gzip.compress(attrs_text().encode()), gz=True), ATTRS)
    assert error.line == 1
    assert "it is compressed twice; decompress it once" in str(error)


def test_zero_byte_gz_file(tmp_path):
    path = tmp_path / (ATTRS.file_name + ".gz")
    path.write_bytes(b"")
    error = raises(RawFile(path), ATTRS)
    assert error.line == 1
    assert "the gzip data is cut short" in str(error)


# Partition dates: any of these would put the row in no month, or in the wrong one.


def test_nul_byte_in_partition_date(write_raw):
    rows = ATTRS_ROWS.replace("Teacher,2023-06-01", "Teacher,2023-06\x00-01")
    error = raises(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert (error.line, error.column) == (4, "snapshot_date")


def test_day_that_does_not_exist_in_partition_date(write_raw):
    rows = ATTRS_ROWS.replace("Teacher,2023-06-01", "Teacher,2023-02-30")
    error = raises(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert (error.line, error.column) == (4, "snapshot_date")
    assert "cannot read date '2023-02-30'" in str(error)


def test_two_digit_year_is_not_the_year_23(write_raw, ingest):
    """'%Y' reads any number of digits: '23-06-01' was the year 23, a month no run selects."""
    rows = ATTRS_ROWS.replace("Teacher,2023-06-01", "Teacher,23-06-01")
    error = raises(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert (error.line, error.column) == (4, "snapshot_date")
    assert "cannot read date '23-06-01' with format '%Y-%m-%d'" in str(error)
    lms_rows = LMS_ROWS.splitlines(keepends=True)
    lms_rows[1] = lms_rows[1].replace(",2023-05-01,10,1,", ",23-05-01,10,1,")
    _, result = ingest(write_raw(LMS, lms_text(*lms_rows)), LMS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (3, "unreadable_date:loan_start_date")
    ]


def test_time_of_day_in_a_date(write_raw):
    rows = ATTRS_ROWS.replace("-01\n", "-01T00:00:00\n")
    error = raises(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert (error.line, error.column) == (2, "snapshot_date")
    assert "cannot read date '2023-05-01T00:00:00'" in str(error)


def test_day_other_than_the_first_belongs_to_its_month(write_raw, ingest):
    """Accepted: a snapshot dated mid-month is that month's, and silver keeps its day."""
    rows = ATTRS_ROWS.replace("Teacher,2023-06-01", "Teacher,2023-06-15")
    bronze, result = ingest(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert bronze["partition_month"][2] == date(2023, 6, 1)
    assert result.silver["snapshot_date"][2] == date(2023, 6, 15)


# The loan book: values each readable, but impossible for a loan.


def test_tenure_zero_or_negative(write_raw, ingest):
    for tenure in ("0", "-10"):
        row = LMS_ROWS.splitlines(keepends=True)[0].replace(",10,0,", f",{tenure},0,")
        _, result = ingest(write_raw(LMS, lms_text(row)), LMS)
        assert result.quarantine.select("source_line", "reason").rows() == [
            (2, "out_of_range:tenure")  # named once: the range rule, not the tenure's use
        ], tenure


def test_fractional_tenure(write_raw, ingest):
    rows = [r.replace(",10,", ",10.5,", 1) for r in LMS_ROWS.splitlines(keepends=True)]
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert set(result.quarantine["reason"]) == {"unreadable_int:tenure"}
    assert result.silver.height == 0


def test_snapshot_before_the_loan_starts(write_raw, ingest):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[0] = rows[0].replace(",2023-05-01\n", ",2023-04-01\n")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (2, "inconsistent:snapshot_date (before loan_start_date)")
    ]


def test_installment_number_out_of_sequence_is_taken_as_given(write_raw, ingest):
    """Accepted, not judged: installment_num is the month on book as the loan book states it.
    (The real data always has it equal to the months from loan_start_date to snapshot_date;
    a rule for that would also refuse the made-up rows of test_cleaning.py.)"""
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[1] = rows[1].replace(",10,1,", ",10,5,")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.height == 0
    assert result.silver["installment_num"].to_list() == [0, 5, 2]


def test_installment_beyond_the_tenure(write_raw, ingest):
    """Month 3 of a 2-month loan: its dates agree with the number, the tenure does not."""
    rows = [r.replace(",10,", ",2,", 1) for r in LMS_ROWS.splitlines(keepends=True)]
    late = rows[2].replace(",2,2,", ",2,3,").replace(",2023-07-01\n", ",2023-08-01\n")
    _, result = ingest(write_raw(LMS, lms_text(*rows, late)), LMS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (5, "inconsistent:installment_num (beyond tenure)")
    ]


def test_negative_payment(write_raw, ingest):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[1] = rows[1].replace(",1000.0,1000.0,", ",1000.0,-1000.0,")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.select("source_line", "reason", "paid_amt").rows() == [
        (3, "out_of_range:paid_amt", "-1000.0")
    ]


def test_thousands_separator_in_an_amount(write_raw, ingest):
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[0] = rows[0].replace(",10000,0.0,", ',"10,000",0.0,')
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.select("source_line", "reason", "loan_amt").rows() == [
        (2, "unreadable_float:loan_amt", "10,000")
    ]


def test_scientific_notation_is_a_number(write_raw, ingest):
    """Accepted: '1e4' is how some exports write 10000."""
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[0] = rows[0].replace(",10000,0.0,", ",1e4,0.0,")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.height == 0
    assert result.silver["loan_amt"].to_list() == [10000.0] * 3


def test_overdue_above_balance_is_kept(write_raw, ingest):
    """Accepted: cleaning judges each amount's range, not sums among amounts (the real data
    never has overdue above balance; a fee or interest could make it so)."""
    rows = LMS_ROWS.splitlines(keepends=True)
    rows[2] = rows[2].replace(",1000.0,9000.0,", ",50000.0,9000.0,")
    _, result = ingest(write_raw(LMS, lms_text(*rows)), LMS)
    assert result.quarantine.height == 0
    assert result.silver["overdue_amt"].to_list() == [0.0, 0.0, 50000.0]


# Keys.


def test_empty_or_blank_customer_id(write_raw, ingest):
    for blank in ("", "   "):
        rows = ATTRS_ROWS.replace("CUS_0x3c07", blank)
        _, result = ingest(write_raw(ATTRS, attrs_text(rows)), ATTRS)
        assert result.quarantine.select("source_line", "reason").rows() == [
            (3, "missing_value:Customer_ID")
        ], repr(blank)


def test_padded_key_is_the_same_key(write_raw, ingest):
    """' CUS_0x2b1f ' is CUS_0x2b1f once stripped: the same customer and month twice."""
    rows = ATTRS_ROWS.replace("CUS_0x3c07", " CUS_0x2b1f ")
    _, result = ingest(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert result.quarantine.select("source_line", "reason").rows() == [(3, "duplicate_key")]


def test_line_break_inside_a_quoted_key(write_raw, ingest):
    rows = ATTRS_ROWS.replace("CUS_0x3c07", '"CUS_0x3c\n07"')
    bronze, result = ingest(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert bronze["source_line"].to_list() == [2, 3, 5]
    assert result.quarantine.select("source_line", "reason").rows() == [
        (3, "control_character:Customer_ID")
    ]


@pytest.mark.parametrize("mark", ["\ufeff", "\u200b"])
def test_invisible_character_in_a_key(write_raw, ingest, mark):
    """A byte-order mark left by joining files, or a zero-width space, makes a key that looks
    like another's but is not."""
    rows = ATTRS_ROWS.replace("CUS_0x4d22", mark + "CUS_0x2b1f")
    _, result = ingest(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (4, "invisible_character:Customer_ID")
    ]
    assert result.silver["customer_id"].to_list() == ["CUS_0x2b1f", "CUS_0x3c07"]


# Features.


def clicks_text(**values: str) -> str:
    other = csv_line(CLICKS, Customer_ID="CUS_0x77", **values)
    return header_line(CLICKS) + "\n" + csv_line(CLICKS) + "\n" + other + "\n"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc", "unreadable_int:fe_3"),
        ("3.5", "unreadable_int:fe_3"),
        ("99999999999999999999", "unreadable_int:fe_3"),
        ("", "missing_value:fe_3"),
    ],
)
def test_clickstream_value_that_is_no_count(write_raw, ingest, value, reason):
    _, result = ingest(write_raw(CLICKS, clicks_text(fe_3=value)), CLICKS)
    assert result.quarantine.select("source_line", "reason").rows() == [(3, reason)]


def test_negative_clickstream_value_is_kept(write_raw, ingest):
    """Accepted: the real clickstream holds negative values (down to -401)."""
    _, result = ingest(write_raw(CLICKS, clicks_text(fe_3="-250")), CLICKS)
    assert result.quarantine.height == 0
    assert result.silver["fe_3"].to_list()[1] == -250


def test_credit_history_with_twelve_or_more_months(write_raw, ingest):
    """'17 Years and 14 Months' was read as 218 months; months run 0..11 beside years."""
    other = csv_line(FIN, Customer_ID="CUS_0x77", Credit_History_Age="17 Years and 14 Months")
    text = header_line(FIN) + "\n" + csv_line(FIN) + "\n" + other + "\n"
    _, result = ingest(write_raw(FIN, text), FIN)
    assert result.quarantine.height == 0
    assert result.silver["credit_history_age"].to_list() == [208, None]
    assert result.nulled_values == {"Credit_History_Age (unreadable_duration)": 1}


def test_fractional_age(write_raw, ingest):
    rows = ATTRS_ROWS.replace(",34,", ",35.5,")
    _, result = ingest(write_raw(ATTRS, attrs_text(rows)), ATTRS)
    assert result.quarantine.height == 0
    assert result.silver["age"].to_list() == [None, 41, None]
    assert result.nulled_values["Age (unreadable_int)"] == 1


def test_empty_optional_text_is_unknown(write_raw, ingest):
    """Accepted: an empty optional text (Type_of_Loan) is null, as no loans listed."""
    text = header_line(FIN) + "\n" + csv_line(FIN, Type_of_Loan="") + "\n"
    _, result = ingest(write_raw(FIN, text), FIN)
    assert result.quarantine.height == 0
    assert result.silver["type_of_loan"].to_list() == [None]
