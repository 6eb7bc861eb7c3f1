"""PSI against hand-computed values, and its behaviour under no drift and under a gap."""

import math

import numpy as np
import polars as pl
import pytest

from loan_default.lib.drift import EPSILON, BinnedReference, psi, stability


def test_category_shift_matches_the_hand_computed_psi():
    reference = pl.Series(["a"] * 50 + ["b"] * 50)
    current = pl.Series(["a"] * 80 + ["b"] * 20)
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(reference, current) == pytest.approx(expected)  # 0.4159


def test_numeric_deciles_missing_bin_and_empty_bins_by_hand():
    # Reference 1..10: the deciles put every value in a bin of its own (10% each).
    reference = pl.Series([float(v) for v in range(1, 11)])
    current = pl.Series([1.0] * 5 + [2.0, 3.0, 4.0, 5.0, None])
    # Current: 50% in bin 1, 10% in bins 2-5, none in bins 6-10, 10% missing (ref 0%).
    expected = (
        (0.5 - 0.1) * math.log(0.5 / 0.1)
        + 5 * (EPSILON - 0.1) * math.log(EPSILON / 0.1)
        + (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    )
    assert psi(reference, current) == pytest.approx(expected)  # 4.784


def test_identical_population_reads_zero_and_sampling_noise_stays_small():
    rng = np.random.default_rng(7)
    reference = pl.Series(rng.normal(size=5_000))
    assert psi(reference, reference) == pytest.approx(0.0)
    # The domain notes: 500 rows against 5,000 with 10 bins read about 0.02 under no drift.
    noise = [psi(reference, pl.Series(rng.normal(size=500))) for _ in range(50)]
    assert 0.01 < float(np.mean(noise)) < 0.04
    shifted = psi(reference, pl.Series(rng.normal(0.5, 1, size=500)))
    assert shifted > 0.2


def test_a_feature_that_stops_arriving_is_a_shift_not_ignored():
    reference = BinnedReference.of(pl.Series([1.0, 2.0, 3.0, 4.0] * 25))
    assert reference.psi(pl.Series([None] * 100, dtype=pl.Float64)) > 0.25


def test_stability_gives_one_row_per_column_and_none_for_an_empty_month():
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "b"]})
    references = {c: BinnedReference.of(frame[c]) for c in frame.columns}
    same = stability(references, frame)
    assert same["feature"].to_list() == ["x", "kind"]
    assert same["psi"].to_list() == pytest.approx([0.0, 0.0])
    empty = stability(references, frame.clear())
    assert empty["psi"].to_list() == [None, None]
