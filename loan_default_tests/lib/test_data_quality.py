"""Each data-quality rule passes on good frames and fails on bad ones."""

from datetime import date

import polars as pl

from loan_default.lib import data_quality as dq
from loan_default.lib.ingest.sources import PERSONAL_COLUMNS

JAN, FEB = date(2024, 1, 1), date(2024, 2, 1)


def test_rows_conserved_per_month():
    bronze = pl.DataFrame({"partition_month": [JAN, JAN, FEB]})
    silver = pl.DataFrame({"partition_month": [JAN, FEB]})
    quarantine = pl.DataFrame({"partition_month": [JAN]})
    assert dq.rows_conserved(bronze, [silver, quarantine]).passed
    lost = dq.rows_conserved(bronze, [silver, quarantine.clear()])
    assert not lost.passed
    assert lost.metadata["unbalanced_months"] == ["2024-01-01"]
    # A row moved between months is caught even though the totals match.
    moved = dq.rows_conserved(bronze, [pl.DataFrame({"partition_month": [FEB, FEB, FEB]})])
    assert not moved.passed


def test_keys_unique_and_not_null():
    frame = pl.DataFrame({"loan_id": ["a", "a", None], "month": [JAN, FEB, JAN]})
    assert dq.keys_unique(frame, ["loan_id", "month"]).passed
    assert not dq.keys_unique(frame, ["loan_id"]).passed
    assert dq.keys_unique(frame, ["loan_id"]).metadata["duplicates"] == 1
    nulls = dq.keys_not_null(frame, ["loan_id", "month"])
    assert not nulls.passed and nulls.metadata["null_keys"] == {"loan_id": 1}


def test_point_in_time_rule():
    frame = pl.DataFrame({"month": [JAN, FEB], "used": [JAN, JAN]})
    assert dq.no_future_sources(frame, "month", "used").passed
    late = frame.with_columns(used=pl.lit(FEB))
    assert not dq.no_future_sources(late, "month", "used").passed


def test_values_in_range_at_and_beyond_bounds():
    frame = pl.DataFrame({"age": [14, 100, None]})
    assert dq.values_in_range(frame, {"age": (14, 100)}).passed
    outside = dq.values_in_range(pl.DataFrame({"age": [13, 101]}), {"age": (14, 100)})
    assert outside.metadata["outside"] == {"age": 2}


def test_rate_band_is_inclusive():
    frame = pl.DataFrame({"label": [1, 0, 0, 0]})
    assert dq.rate_in_band(frame, "label", 0.25, 0.6).passed
    assert not dq.rate_in_band(frame, "label", 0.26, 0.6).passed
    assert dq.rate_in_band(frame.clear(), "label", 0.26, 0.6).passed


def test_personal_data_and_schema():
    assert not dq.no_personal_data(pl.DataFrame({"SSN": ["x"]})).passed
    assert dq.no_personal_data(pl.DataFrame({"ssn_valid": [True]})).passed
    # The personal columns are the source contract's: every Kind.PERSONAL column, none other.
    assert {"name", "ssn"} == PERSONAL_COLUMNS
    assert not dq.no_personal_data(pl.DataFrame({"Name": ["x"]})).passed
    outcome = dq.schema_matches(pl.DataFrame({"a": [1], "c": [1]}), ["a", "b"])
    assert not outcome.passed
    assert outcome.metadata == {"missing": ["b"], "unexpected": ["c"]}


def test_across_months_summarizes_passing_months_by_the_latest_with_rows():
    labels = pl.DataFrame({"label": [True, False, False, False]})
    by_month = {
        date(2025, 6, 1): dq.rate_in_band(labels, "label", 0.1, 0.5),
        date(2025, 7, 1): dq.rate_in_band(labels.head(2), "label", 0.1, 0.5),
        date(2025, 8, 1): dq.rate_in_band(labels.clear(), "label", 0.1, 0.5),
    }
    outcome = dq.across_months(by_month)
    assert outcome.passed and outcome.judged
    assert outcome.description == (
        "all 3 months pass; latest judged, 2025-07-01: label rate 0.5000, band [0.1, 0.5]"
    )
    assert outcome.metadata == {
        "months_checked": 3,
        "months_judged": 2,
        "rate": 0.5,
        "low": 0.1,
        "high": 0.5,
    }


def test_across_months_fails_on_any_month_and_names_it():
    labels = pl.DataFrame({"label": [True, True, False]})
    by_month = {
        date(2025, 6, 1): dq.rate_in_band(labels.tail(2), "label", 0.1, 0.5),
        date(2025, 7, 1): dq.rate_in_band(labels, "label", 0.1, 0.5),
    }
    outcome = dq.across_months(by_month)
    assert not outcome.passed
    assert outcome.description.startswith("1 month(s) fail; 2025-07-01: label rate 0.6667")
    assert outcome.metadata["failing_months"] == ["2025-07-01"]


def test_across_months_with_no_rows_anywhere_says_so():
    empty = pl.DataFrame({"label": []}, schema={"label": pl.Boolean})
    outcome = dq.across_months({date(2025, 8, 1): dq.rate_in_band(empty, "label", 0.1, 0.5)})
    assert outcome.passed and not outcome.judged
    assert outcome.description == "no rows in these months"
