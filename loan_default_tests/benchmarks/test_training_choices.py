import math
from datetime import date

import polars as pl
import pytest

from loan_default.lib.models.model_windows import Windows
from loan_default_tests.benchmarks.training_choices import (
    CHOICES,
    mean_interval,
    paired_difference,
    windows_of,
)


def test_mean_interval_is_the_t_interval_of_the_mean():
    # sd 1, se 1/sqrt(3), t(0.975, 2 df) = 4.302653: half-width 2.484138
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - 2.484138, 2.0 + 2.484138))
    one = mean_interval([0.5])
    assert one[0] == 0.5 and math.isnan(one[1]) and math.isnan(one[2])


def test_paired_difference_pairs_the_as_of_months_both_scored():
    months = [date(2025, m, 1) for m in (1, 2, 3, 4)]
    rows = pl.DataFrame(
        {"as_of_month": months[:3], "roc_auc": [0.80, 0.90, None]},
        schema={"as_of_month": pl.Date, "roc_auc": pl.Float64},
    )
    default = pl.DataFrame({"as_of_month": months, "roc_auc": [0.70, 0.85, 0.90, 0.60]})
    # differences 0.10 and 0.05: sd 0.035355, se 0.025, t(0.975, 1 df) = 12.706205
    assert paired_difference(rows, default) == pytest.approx(
        (0.075, 0.075 - 0.317655, 0.075 + 0.317655), abs=1e-6
    )


def test_windows_of_keeps_validation_test_and_oot_and_sets_the_train_window():
    as_of, first = date(2025, 7, 1), date(2023, 1, 1)
    default = windows_of(CHOICES["12m"], as_of, 6, first)
    assert default == Windows(
        train=(date(2023, 8, 1), date(2024, 7, 1)),
        validation=(date(2024, 8, 1), date(2024, 10, 1)),
        test=(date(2024, 11, 1), date(2024, 12, 1)),
        oot=(date(2025, 1, 1), date(2025, 1, 1)),
    )
    longer = windows_of(CHOICES["18m"], as_of, 6, first)
    expanding = windows_of(CHOICES["expanding"], as_of, 6, first)
    assert longer.train == (date(2023, 2, 1), date(2024, 7, 1))
    assert expanding.train == (first, date(2024, 7, 1))
    for windows in (longer, expanding):
        assert (windows.validation, windows.test, windows.oot) == (
            default.validation,
            default.test,
            default.oot,
        )


def test_an_expanding_window_starting_after_its_end_is_refused():
    with pytest.raises(ValueError, match="train window starts after it ends"):
        windows_of(CHOICES["expanding"], date(2025, 7, 1), 6, date(2024, 8, 1))
