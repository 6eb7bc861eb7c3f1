"""Each source's raw contract: coverage errors and the volume band, on hand-made month counts;
the volume band's thresholds and their validation."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest

from loan_default.lib.ingest.source_contract import (
    SourceContractError,
    VolumeRule,
    month_volume,
    refuse_breaches,
)
from loan_default.lib.ingest.sources import SOURCES
from loan_default.lib.months import month_range
from loan_default.lib.thresholds import THRESHOLDS_PATH, ThresholdsError, validate_thresholds

LMS, ATTRIBUTES, CLICKSTREAM = (
    SOURCES[n] for n in ("lms_loan_daily", "features_attributes", "feature_clickstream")
)
FILE = Path("/raw/file.csv")
MONTHS = month_range(date(2024, 10, 1), date(2025, 3, 1))  # 2024-10 .. 2025-02
RULE = VolumeRule(recent_months=3, min_recent_rows=100, low=0.5, high=2.0)


def test_header_only_file_is_refused_naming_file_and_source():
    for source in (LMS, ATTRIBUTES, CLICKSTREAM):
        with pytest.raises(
            SourceContractError, match=f"^/raw/file.csv: source {source.name} holds no data rows"
        ):
            refuse_breaches(source, FILE, {}, MONTHS)


def test_a_month_the_loan_book_covers_without_rows_is_refused():
    counts = {m: 500 for m in MONTHS if m != date(2024, 12, 1)}
    with pytest.raises(SourceContractError) as error:
        refuse_breaches(LMS, FILE, counts, MONTHS)
    assert "lms_loan_daily has no rows in 1 month(s)" in str(error.value)
    assert "(every configured month): 2024-12-01." in str(error.value)


def test_the_clickstream_gap_is_declared_and_months_before_it_are_covered():
    through_2024 = {m: 8974 for m in MONTHS if m < date(2025, 1, 1)}
    refuse_breaches(CLICKSTREAM, FILE, through_2024, MONTHS)  # 2025-01, 02: the declared gap
    del through_2024[date(2024, 11, 1)]
    with pytest.raises(
        SourceContractError, match="before its declared gap from 2025-01-01\\): 2024-11-01"
    ):
        refuse_breaches(CLICKSTREAM, FILE, through_2024, MONTHS)


def test_attributes_months_are_left_to_silver():
    refuse_breaches(ATTRIBUTES, FILE, {date(2024, 10, 1): 500}, MONTHS)


def test_volume_band_around_the_recent_median():
    # Recent medians: 2024-12 against (400, 500) -> 450; 2025-01 against (400, 500, 5000) -> 500.
    counts = {
        date(2024, 10, 1): 400,
        date(2024, 11, 1): 500,
        date(2024, 12, 1): 5000,
        date(2025, 1, 1): 240,
    }
    outcome = month_volume(ATTRIBUTES, counts, MONTHS, RULE)
    assert not outcome.passed
    assert outcome.metadata["flagged"] == {
        "2024-12-01": {"rows": 5000, "recent_median": 450, "ratio": 11.111},
        "2025-01-01": {"rows": 240, "recent_median": 500, "ratio": 0.48},
    }
    assert (
        "2024-12-01: 5,000 rows, 11.111x the median of its recent months (450)"
        in outcome.description
    )
    # 2024-11 (500 / 400 = 1.25) is judged and passes; 2024-10 has no month before it.
    assert outcome.metadata["months_judged"] == 3


def test_small_medians_and_gap_months_are_not_judged():
    small = {date(2024, 10, 1): 10, date(2024, 11, 1): 90}
    assert month_volume(ATTRIBUTES, small, MONTHS, RULE).metadata["months_judged"] == 0
    gap = {date(2024, 12, 1): 8974, date(2025, 1, 1): 90_000}
    assert month_volume(CLICKSTREAM, gap, MONTHS, RULE).passed


def test_each_source_reads_the_band_of_its_declared_volume_shape():
    assert VolumeRule.for_source(LMS) == VolumeRule(3, 100, 0.25, 4.0)
    assert VolumeRule.for_source(ATTRIBUTES) == VolumeRule(3, 100, 0.5, 2.0)


@pytest.mark.parametrize("band", [[1.0, 2.0], [0.5, 0.9], [0, 2.0], [2.0, 0.5]])
def test_a_band_that_would_flag_the_median_itself_is_refused(band):
    data = copy.deepcopy(json.loads(THRESHOLDS_PATH.read_text()))
    data["data_quality"]["raw_month_volume"]["steady"] = band
    with pytest.raises(ThresholdsError, match="data_quality.raw_month_volume.steady: must be"):
        validate_thresholds(data)
