"""Cleaning rules on hand-checked tiny frames, and the real data's exact cleaning outcome."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import polars as pl
import pytest

from loan_default.lib.ingest.cleaning import clean
from loan_default.lib.ingest.sources import FEATURE_CLICKSTREAM as CLICKS
from loan_default.lib.ingest.sources import FEATURES_ATTRIBUTES as ATTRS
from loan_default.lib.ingest.sources import FEATURES_FINANCIALS as FIN
from loan_default.lib.ingest.sources import LMS_LOAN_DAILY as LMS
from loan_default.lib.ingest.sources import SOURCES, Column, Kind, Source

SENTINEL = "__-333333333333333333333333333__"


def cleaned(bronze: pl.DataFrame, source, date_format: str = "%Y-%m-%d"):
    result = clean(bronze, source, date_format)
    assert bronze.height == result.silver.height + result.quarantine.height
    return result


def reasons(result) -> list[tuple[int, str]]:
    return result.quarantine.select("source_line", "reason").rows()


def test_underscores_around_numbers_are_stripped(bronze_frame):
    bronze = bronze_frame(
        FIN, {"Annual_Income": "52312.68_", "Num_of_Loan": "2_", "Outstanding_Debt": "_1204.33"}
    )
    silver = cleaned(bronze, FIN).silver
    assert silver.select("annual_income", "num_of_loan", "outstanding_debt").row(0) == (
        52312.68,
        2,
        1204.33,
    )
    age = cleaned(bronze_frame(ATTRS, {"Age": "32_"}), ATTRS).silver["age"]
    assert age.to_list() == [32]


@pytest.mark.parametrize(
    ("column", "placeholder"),
    [
        ("Occupation", "_______"),
        ("Credit_Mix", "_"),
        ("Payment_Behaviour", "!@9#%8"),
        ("Payment_of_Min_Amount", "NM"),
        ("Changed_Credit_Limit", "_"),
        ("Amount_invested_monthly", "__10000__"),
    ],
)
def test_placeholders_become_null_and_are_counted(bronze_frame, column, placeholder):
    source = ATTRS if column == "Occupation" else FIN
    result = cleaned(bronze_frame(source, {column: placeholder}, {}), source)
    assert result.quarantine.height == 0
    assert result.silver[column.lower()].to_list()[0] is None
    assert result.silver[column.lower()].to_list()[1] is not None
    assert result.nulled_values == {f"{column} (placeholder)": 1}


def test_out_of_range_optional_becomes_null_and_is_counted(bronze_frame):
    bronze = bronze_frame(ATTRS, {"Age": "-500"}, {"Age": "8678"}, {"Age": "100"}, {"Age": "14"})
    result = cleaned(bronze, ATTRS)
    assert result.silver["age"].to_list() == [None, None, 100, 14]
    assert result.nulled_values == {"Age": 2}
    assert result.quarantine.height == 0


def test_out_of_range_required_is_quarantined(bronze_frame):
    bronze = bronze_frame(LMS, {"tenure": "0"}, {"loan_amt": "-10000"}, {"installment_num": "601"})
    result = cleaned(bronze, LMS)
    assert reasons(result) == [
        (2, "out_of_range:tenure"),
        (3, "out_of_range:loan_amt"),
        (4, "out_of_range:installment_num"),
    ]
    assert result.nulled_values == {}


def test_huge_sentinel_becomes_null(bronze_frame):
    result = cleaned(bronze_frame(FIN, {"Monthly_Balance": SENTINEL}), FIN)
    assert result.silver["monthly_balance"].to_list() == [None]
    assert result.nulled_values == {"Monthly_Balance": 1}


def test_huge_sentinel_in_an_int_column_does_not_break_the_cast(bronze_frame):
    """Optional bounded: null; required bounded: out of range; unbounded: unreadable."""
    fin = cleaned(bronze_frame(FIN, {"Num_of_Loan": SENTINEL}), FIN)
    assert fin.silver["num_of_loan"].to_list() == [None]
    assert fin.nulled_values == {"Num_of_Loan": 1}
    lms = cleaned(bronze_frame(LMS, {"tenure": SENTINEL}), LMS)
    assert reasons(lms) == [(2, "out_of_range:tenure")]
    clicks = cleaned(bronze_frame(CLICKS, {"fe_3": SENTINEL}, {"fe_3": "1e30"}), CLICKS)
    assert reasons(clicks) == [(2, "unreadable_int:fe_3"), (3, "unreadable_int:fe_3")]


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("10 Years and 9 Months", 129),
        ("1 Year and 1 Month", 13),
        ("0 Years and 11 Months", 11),
        ("", None),
    ],
)
def test_credit_history_age_in_months(bronze_frame, text, months):
    result = cleaned(bronze_frame(FIN, {"Credit_History_Age": text}), FIN)
    assert result.silver["credit_history_age"].to_list() == [months]


def test_unreadable_credit_history_age_is_nulled_with_its_reason(bronze_frame):
    result = cleaned(bronze_frame(FIN, {"Credit_History_Age": "ten years"}), FIN)
    assert result.quarantine.height == 0
    assert result.silver["credit_history_age"].to_list() == [None]
    assert result.nulled_values == {"Credit_History_Age (unreadable_duration)": 1}


def test_personal_columns_are_dropped(bronze_frame):
    bronze = bronze_frame(ATTRS, {}, {"Customer_ID": "", "SSN": "#F%$D@*&8"})
    result = cleaned(bronze, ATTRS)
    assert result.silver.height == result.quarantine.height == 1
    personal = [c.name for c in ATTRS.columns if c.kind is Kind.PERSONAL]
    assert personal == ["Name", "SSN"]
    for frame in (result.silver, result.quarantine):
        assert not {"Name", "SSN", "name", "ssn"} & set(frame.columns)


def test_integral_float_text_is_an_int(bronze_frame):
    result = cleaned(bronze_frame(FIN, {"Num_Credit_Inquiries": "11.0"}), FIN)
    assert result.silver["num_credit_inquiries"].to_list() == [11]
    assert result.silver["num_credit_inquiries"].dtype == pl.Int64


def test_non_integral_number_in_an_int_column_is_unreadable(bronze_frame):
    result = cleaned(bronze_frame(CLICKS, {"fe_3": "2.5"}), CLICKS)
    assert reasons(result) == [(2, "unreadable_int:fe_3")]
    assert result.quarantine["fe_3"].to_list() == ["2.5"]
    # An optional financials count is nulled instead (NULLED_WHEN_UNREADABLE).
    result = cleaned(bronze_frame(FIN, {"Num_Credit_Inquiries": "2.5"}), FIN)
    assert result.nulled_values == {"Num_Credit_Inquiries (unreadable_int)": 1}


def test_multiple_reasons_are_joined(bronze_frame):
    bronze = bronze_frame(LMS, {}, {"tenure": "x", "due_amt": "", "balance": "1e400"})
    result = cleaned(bronze, LMS)
    assert reasons(result) == [
        (3, "unreadable_int:tenure; missing_value:due_amt; unreadable_float:balance")
    ]


def test_missing_required_value_is_quarantined(bronze_frame):
    result = cleaned(bronze_frame(CLICKS, {"fe_7": " "}), CLICKS)
    assert reasons(result) == [(2, "missing_value:fe_7")]


def test_whitespace_around_values_is_ignored(bronze_frame):
    result = cleaned(bronze_frame(LMS, {"tenure": " 10 ", "Customer_ID": "CUS_0x2b1f "}), LMS)
    assert result.silver.select("tenure", "customer_id").row(0) == (10, "CUS_0x2b1f")


def test_silver_types(bronze_frame):
    silver = cleaned(bronze_frame(LMS, {}), LMS).silver
    assert silver.schema["loan_start_date"] == pl.Date
    assert silver.schema["tenure"] == pl.Int64
    assert silver.schema["paid_amt"] == pl.Float64
    assert silver.columns[-3:] == ["partition_month", "source_file", "source_line"]


def test_clean_uses_the_date_format_it_is_given(bronze_frame):
    bronze = bronze_frame(LMS, {"loan_start_date": "1/5/2023", "snapshot_date": "1/6/2023"})
    spreadsheet = cleaned(bronze, LMS, "%d/%m/%Y")
    assert spreadsheet.silver.select("loan_start_date", "snapshot_date").row(0) == (
        date(2023, 5, 1),
        date(2023, 6, 1),
    )
    iso = cleaned(bronze, LMS)
    assert reasons(iso) == [(2, "unreadable_date:loan_start_date; unreadable_date:snapshot_date")]


def test_nulled_values_count_silver_rows_only(bronze_frame):
    bronze = bronze_frame(ATTRS, {"Age": "-500"}, {"Age": "-500", "Customer_ID": ""})
    result = cleaned(bronze, ATTRS)
    assert reasons(result) == [(3, "missing_value:Customer_ID")]
    assert result.nulled_values == {"Age": 1}


def test_empty_bronze(bronze_frame):
    result = cleaned(bronze_frame(FIN), FIN)
    assert result.silver.height == result.quarantine.height == 0
    assert result.nulled_values == {}


# --- the real data ---------------------------------------------------------------------------

# Placeholder counts are those of SOURCES.md. Range counts were recounted with the csv module:
# Age 104 x -500 + 215 over 100; Num_of_Loan 500 x -100 + 66 over 20; Num_of_Delayed_Payment
# 84 negative + 104 over 50; Monthly_Balance is the one huge sentinel.
REAL_NULLED = {
    "lms_loan_daily": {},
    "features_attributes": {"Age": 319, "Occupation (placeholder)": 880},
    "features_financials": {
        "Num_Bank_Accounts": 171,
        "Num_Credit_Card": 296,
        "Interest_Rate": 270,
        "Num_of_Loan": 566,
        "Num_of_Delayed_Payment": 188,
        "Changed_Credit_Limit (placeholder)": 254,
        "Num_Credit_Inquiries": 192,
        "Credit_Mix (placeholder)": 2611,
        "Payment_of_Min_Amount (placeholder)": 1438,
        "Amount_invested_monthly (placeholder)": 558,
        "Payment_Behaviour (placeholder)": 998,
        "Monthly_Balance": 1,
    },
    "feature_clickstream": {},
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_real_data_has_no_quarantine(real_ingested, name):
    bronze, result = real_ingested[name]
    assert result.quarantine.height == 0
    assert result.silver.height == bronze.height


@pytest.mark.parametrize("name", list(SOURCES))
def test_real_data_nulled_counts(real_ingested, name):
    assert real_ingested[name][1].nulled_values == REAL_NULLED[name]


def test_real_data_silver_values(real_ingested):
    silver = real_ingested["features_financials"][1].silver
    assert silver["credit_history_age"].null_count() == 0
    assert silver["type_of_loan"].null_count() == 1426
    lms = real_ingested["lms_loan_daily"][1].silver
    assert lms["tenure"].unique().to_list() == [10]
    assert lms["loan_amt"].unique().to_list() == [10000.0]


@pytest.mark.parametrize("name", list(SOURCES))
def test_spreadsheet_variant_cleans_like_the_original(excel_ingested, real_ingested, name):
    """With its date format passed to clean, the D/M/YYYY copy quarantines nothing."""
    bronze, result = excel_ingested[name]
    assert result.quarantine.height == 0
    assert result.silver.height == bronze.height
    assert result.nulled_values == REAL_NULLED[name]
    for column in (c.silver_name for c in SOURCES[name].columns if c.kind is Kind.DATE):
        assert result.silver[column].null_count() == 0
        original = real_ingested[name][1].silver[column]
        assert (
            result.silver[column].value_counts(sort=True).equals(original.value_counts(sort=True))
        )


@pytest.mark.parametrize("source", list(SOURCES.values()), ids=list(SOURCES))
def test_an_empty_quarantine_has_the_columns_of_a_full_one(bronze_frame, source):
    """Chunks without bad rows skip building reasons; their quarantine must still concatenate
    with those of chunks that have some."""
    date_column = source.date_column
    clean_chunk = cleaned(bronze_frame(source, {}), source).quarantine
    bad_chunk = cleaned(bronze_frame(source, {date_column: "not a date"}), source).quarantine
    assert clean_chunk.height == 0 and bad_chunk.height == 1
    assert clean_chunk.schema == bad_chunk.schema
    assert bad_chunk["reason"].to_list() == [f"unreadable_date:{date_column}"]


@pytest.mark.parametrize("source", list(SOURCES.values()), ids=list(SOURCES))
def test_numbers_taken_as_they_are_equal_numbers_through_every_rule(bronze_frame, source):
    """A frame whose numeric columns break no rule takes its numbers as parsed; beside a row
    that sends every numeric column through the full rules, the same row comes out the same."""
    # Each column's lowest valid whole number, with underscores: valid, but not plain.
    lowest = {
        c.name: int(c.valid_min or 1) for c in source.columns if c.kind in (Kind.INT, Kind.FLOAT)
    }
    alone = cleaned(bronze_frame(source, {}), source).silver
    underscored = {name: f"_{value}_" for name, value in lowest.items()}
    ruled = cleaned(bronze_frame(source, {}, underscored), source).silver
    assert ruled.height == 2
    assert alone.schema == ruled.schema
    assert alone.drop("source_line").row(0) == ruled.drop("source_line").row(0)
    assert ruled.select(c.lower() for c in lowest).row(1) == tuple(lowest.values())


@pytest.mark.parametrize(
    "value", [None, "nan", "inf", "-inf", "1e400", "2.5", "-1", "9.3e18", "1e30"]
)
@pytest.mark.parametrize(
    ("source", "column"),
    [(CLICKS, "fe_1"), (FIN, "Num_Bank_Accounts"), (FIN, "Annual_Income"), (ATTRS, "Age")],
)
def test_a_number_alone_is_judged_as_beside_rows_that_take_every_rule(
    bronze_frame, source, column, value
):
    """Alone, a parseable value may let its column skip the rules; it must come out exactly
    as it does when a valid underscored value sends the column through them."""
    valid = f"_{int(source.column(column).valid_min or 1)}_"
    alone = cleaned(bronze_frame(source, {column: value}), source)
    beside = cleaned(bronze_frame(source, {column: value}, {column: valid}), source)
    assert alone.silver.schema == beside.silver.schema
    first = beside.silver.filter(pl.col("source_line") == 2)
    assert alone.silver.rows() == first.rows()
    assert reasons(alone) == reasons(beside)
    assert alone.nulled_values == beside.nulled_values


def test_a_placeholder_that_parses_as_a_number_is_still_a_placeholder(bronze_frame):
    """Numbers that all parse may skip the rules, but not past a placeholder written as one
    (here inside the valid range, so that nothing else sends the column through the rules)."""
    column = replace(FIN.column("Num_Bank_Accounts"), placeholders=("NA", "19"))
    source = replace(
        FIN, columns=tuple(column if c.name == column.name else c for c in FIN.columns)
    )
    for rows in ([{column.name: "19"}], [{column.name: "19"}, {column.name: "_3_"}]):
        result = cleaned(bronze_frame(source, *rows), source)
        assert result.silver["num_bank_accounts"].to_list()[0] is None
        assert result.nulled_values == {"Num_Bank_Accounts (placeholder)": 1}


# --- rules are declarations ------------------------------------------------------------------


def with_declaration(source: Source, column: Column) -> Source:
    """A copy of `source` with one column's declaration replaced."""
    columns = tuple(column if c.name == column.name else c for c in source.columns)
    return replace(source, columns=columns)


def test_a_range_declared_on_an_optional_column_nulls_and_counts(bronze_frame):
    """A new rule is one declaration: a valid_max on a column without a range."""
    bronze = bronze_frame(
        FIN,
        {"Credit_History_Age": "10 Years and 1 Month"},
        {"Credit_History_Age": "10 Years and 0 Months"},
    )
    assert cleaned(bronze, FIN).silver["credit_history_age"].to_list() == [121, 120]
    ruled = with_declaration(FIN, replace(FIN.column("Credit_History_Age"), valid_max=120))
    result = cleaned(bronze, ruled)
    assert result.quarantine.height == 0
    assert result.silver["credit_history_age"].to_list() == [None, 120]
    assert result.nulled_values == {"Credit_History_Age": 1}


def test_a_range_declared_on_a_required_column_quarantines(bronze_frame):
    bronze = bronze_frame(CLICKS, {"fe_5": "101"}, {"fe_5": "100"})
    assert cleaned(bronze, CLICKS).quarantine.height == 0
    ruled = with_declaration(CLICKS, replace(CLICKS.column("fe_5"), valid_max=100))
    result = cleaned(bronze, ruled)
    assert reasons(result) == [(2, "out_of_range:fe_5")]
    assert result.silver.select("source_line", "fe_5").rows() == [(3, 100)]
    assert result.nulled_values == {}
