"""PSI against hand-computed values (smoothed shares, an empty bin, a small month), its
behaviour under no drift, and missingness reported apart from value drift."""

import math

import numpy as np
import polars as pl
import pytest

from loan_default.lib.monitoring.drift import BinnedReference, BinningRule, psi, stability


def _psi(reference: list[float], current: list[float]) -> float:
    return sum((c - r) * math.log(c / r) for r, c in zip(reference, current, strict=True))


def test_category_shift_matches_the_hand_computed_psi():
    reference = pl.Series(["a"] * 50 + ["b"] * 50)
    current = pl.Series(["a"] * 80 + ["b"] * 20)
    # Bins a, b and <other>; counts smoothed by 0.5: (count + 0.5) / (100 + 1.5).
    expected = _psi(
        [50.5 / 101.5, 50.5 / 101.5, 0.5 / 101.5], [80.5 / 101.5, 20.5 / 101.5, 0.5 / 101.5]
    )
    assert psi(reference, current) == pytest.approx(expected)
    assert expected == pytest.approx(0.4043, abs=1e-4)  # 0.1378 + 0.2665


def test_an_unseen_category_falls_in_the_other_bin():
    reference = pl.Series(["a"] * 50 + ["b"] * 50)
    current = pl.Series(["a"] * 50 + ["b"] * 40 + ["new"] * 10)
    expected = _psi(
        [50.5 / 101.5, 50.5 / 101.5, 0.5 / 101.5], [50.5 / 101.5, 40.5 / 101.5, 10.5 / 101.5]
    )
    assert psi(reference, current) == pytest.approx(expected)


def test_numeric_deciles_with_empty_bins_in_a_small_month_by_hand():
    # Reference 1..10: a bin per value (10 values, 10 bins), one value each.
    reference = pl.Series([float(v) for v in range(1, 11)])
    # A month of ten rows: five 1s, one each of 2..5, one missing; bins 6..10 are empty.
    current = pl.Series([1.0] * 5 + [2.0, 3.0, 4.0, 5.0, None])
    reference_shares = [1.5 / 15] * 10
    current_shares = [5.5 / 14] + [1.5 / 14] * 4 + [0.5 / 14] * 5
    expected = _psi(reference_shares, current_shares)
    assert expected == pytest.approx(0.7336, abs=1e-4)  # 0.4007 + 0.0020 + 0.3310
    binned = BinnedReference.of(reference)
    value, missing = binned.compare(current)
    assert value == pytest.approx(expected)
    # The missing value is no bin of the value statistic: it is the missing share.
    assert (binned.missing_share, missing) == (0.0, 0.1)


def test_thin_bins_of_a_discrete_column_are_merged():
    reference = pl.Series([0] * 90 + [1] * 7 + [2] * 3)
    binned = BinnedReference.of(reference, BinningRule(bins=10, min_bin_share=0.05))
    # Bins {0}, {1}, {2}: the last holds 3% < 5%, so it joins {1}.
    assert binned.edges.tolist() == [1.0]
    assert binned.counts.tolist() == [90, 10]
    assert binned.psi(pl.Series([0] * 90 + [2] * 10)) == pytest.approx(0.0)


def test_identical_population_reads_zero_and_sampling_noise_stays_small():
    rng = np.random.default_rng(7)
    reference = pl.Series(rng.normal(size=5_000))
    assert psi(reference, reference) == pytest.approx(0.0)
    # The domain notes: 500 rows against 5,000 with 10 bins read about 0.02 under no drift.
    noise = [psi(reference, pl.Series(rng.normal(size=500))) for _ in range(50)]
    assert 0.01 < float(np.mean(noise)) < 0.04
    assert max(noise) < 0.1
    shifted = psi(reference, pl.Series(rng.normal(0.5, 1, size=500)))
    assert shifted > 0.2


def test_a_reference_with_missing_values_does_not_read_a_value_shift_in_a_complete_month():
    # The clickstream case: the training window holds 9% without clickstream, the month none.
    rng = np.random.default_rng(11)
    values = rng.normal(size=5_000)
    reference = pl.Series(np.where(rng.random(5_000) < 0.09, np.nan, values)).fill_nan(None)
    month = pl.Series(rng.normal(size=500))
    binned = BinnedReference.of(reference)
    value, missing = binned.compare(month)
    assert value < 0.1
    assert binned.missing_share == pytest.approx(0.09, abs=0.01)
    assert missing == 0.0


def test_a_feature_that_stops_arriving_is_a_missingness_shift():
    binned = BinnedReference.of(pl.Series([1.0, 2.0, 3.0, 4.0] * 25))
    value, missing = binned.compare(pl.Series([None] * 100, dtype=pl.Float64))
    assert value is None
    assert (binned.missing_share, missing) == (0.0, 1.0)


def test_stability_gives_one_row_per_column_and_none_for_an_empty_month():
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, None], "kind": ["a", "b", "a", "b"]})
    references = {c: BinnedReference.of(frame[c]) for c in frame.columns}
    same = stability(references, frame)
    assert same["feature"].to_list() == ["x", "kind"]
    assert same["psi"].to_list() == pytest.approx([0.0, 0.0])
    assert same["missing_share_reference"].to_list() == [0.25, 0.0]
    assert same["missing_share"].to_list() == [0.25, 0.0]
    empty = stability(references, frame.clear())
    assert empty["psi"].to_list() == [None, None]
    assert empty["missing_share"].to_list() == [None, None]
