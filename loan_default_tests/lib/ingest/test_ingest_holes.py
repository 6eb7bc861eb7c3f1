"""Smaller ingest holes (issue 14): control characters, oversized fields, mixed delimiters.

Files are written into tmp_path from made-up rows; the real data is never copied.
"""

from __future__ import annotations

import pytest

from loan_default.lib.ingest import raw_reader
from loan_default.lib.ingest.cleaning import clean
from loan_default.lib.ingest.raw_reader import RawInputError, read_bronze
from loan_default.lib.ingest.sources import FEATURES_ATTRIBUTES as ATTRS
from loan_default.lib.ingest.sources import FEATURES_FINANCIALS as FIN
from loan_default.lib.ingest.sources import LMS_LOAN_DAILY as LMS
from loan_default_tests.lib.conftest import INGESTED_AT, csv_line, header_line

# About 1.1 MB of loan types, broken over two lines inside its quotes.
HUGE_LOAN_TYPES = "Auto Loan, " * 50_000 + "\n" + "Student Loan, " * 40_000 + "and Payday Loan"


def lines(source, *rows: str) -> str:
    return "\n".join([header_line(source), *rows]) + "\n"


# --- text hygiene ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Engi\x00neer", "Engi\x01neer", "Eng\tineer", "Engineer\x1b"])
def test_control_character_in_text_is_quarantined(write_raw, ingest, value):
    raw = write_raw(
        ATTRS, lines(ATTRS, csv_line(ATTRS, Occupation=value), csv_line(ATTRS, Customer_ID="B"))
    )
    _, result = ingest(raw, ATTRS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (2, "control_character:Occupation")
    ]
    assert result.silver["occupation"].to_list() == ["Engineer"]


def test_control_character_in_key_and_number_columns(bronze_frame):
    frame = bronze_frame(
        LMS, {"Customer_ID": "CUS_0x2b1f\x00"}, {"due_amt": "0.0\x00"}, {"tenure": " 10\r\n"}
    )
    result = clean(frame, LMS)
    assert result.quarantine.select("source_line", "reason").rows() == [
        (2, "control_character:Customer_ID"),
        (3, "unreadable_float:due_amt; control_character:due_amt"),
    ]
    # Surrounding whitespace, line breaks included, is stripped as before.
    assert result.silver["tenure"].to_list() == [10]


def test_no_control_character_reaches_silver(write_raw, ingest):
    raw = write_raw(
        FIN,
        lines(
            FIN,
            csv_line(FIN, Type_of_Loan="Auto Loan,\x00 and Payday Loan"),
            csv_line(FIN, Customer_ID="B"),
        ),
    )
    _, result = ingest(raw, FIN)
    assert result.quarantine["reason"].to_list() == ["control_character:Type_of_Loan"]
    text = result.silver.select(c for c in result.silver.columns if result.silver[c].dtype == str)
    assert not any("\x00" in value for column in text.iter_columns() for value in column if value)


# --- fields larger than the csv module's default limit ---------------------------------------


def test_a_one_megabyte_quoted_field_is_read(write_raw, ingest):
    raw = write_raw(
        FIN, lines(FIN, csv_line(FIN, Type_of_Loan=HUGE_LOAN_TYPES), csv_line(FIN, Customer_ID="B"))
    )
    bronze, result = ingest(raw, FIN)
    assert bronze["source_line"].to_list() == [2, 4]
    assert bronze["Type_of_Loan"][0] == HUGE_LOAN_TYPES
    # Read, then judged like any value: the line break inside it is a control character.
    assert result.quarantine["reason"].to_list() == ["control_character:Type_of_Loan"]
    assert result.silver["customer_id"].to_list() == ["B"]


def test_a_field_beyond_the_reader_limit_is_refused_as_such(write_raw, monkeypatch):
    monkeypatch.setattr(raw_reader, "FIELD_SIZE_LIMIT", 100_000)
    raw = write_raw(
        FIN, lines(FIN, csv_line(FIN), csv_line(FIN, Type_of_Loan=HUGE_LOAN_TYPES, Customer_ID="B"))
    )
    with pytest.raises(RawInputError) as info:
        read_bronze(raw, FIN, None, INGESTED_AT)
    error = info.value
    assert (error.line, error.column) == (3, "Type_of_Loan")
    assert "larger than the reader's limit of 100,000 characters" in str(error)
    assert "unbalanced" not in str(error)


# --- mixed delimiters ------------------------------------------------------------------------


def test_comma_header_over_semicolon_body_is_named_mixed(write_raw):
    body = [csv_line(ATTRS).replace(",", ";"), csv_line(ATTRS, Customer_ID="B").replace(",", ";")]
    raw = write_raw(ATTRS, lines(ATTRS, *body))
    with pytest.raises(RawInputError) as info:
        read_bronze(raw, ATTRS, None, INGESTED_AT)
    error = info.value
    assert error.line == 2
    assert "mixed delimiters: the header is separated by ',' but this row by ';'" in str(error)
    assert "truncated" not in str(error)
