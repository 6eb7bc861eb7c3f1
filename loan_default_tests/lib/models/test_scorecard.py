"""The WoE scorecard on a small frame made here, checked by hand: WoE from the bin counts, points
from WoE, coefficient, intercept and the pdo/odds scaling, the score against the probability,
missing clickstream as a bin of its own, monotonic bins, the artifact round trip, and the
choice of features by evidence (IV, correlated partners), not by sign; then on the real data."""

from __future__ import annotations

import math
import pickle
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest

from loan_default.lib.models.backtest import BacktestData
from loan_default.lib.models.families import FAMILIES
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.scorecard import ScorecardParams, correlated_partners, scorecard
from loan_default.lib.models.training import train
from loan_default.settings import LABEL
from loan_default_tests.conftest import require_real_data

# The real data as of 2025-07 (seed 42, the default clickstream dropout), measured: 49 of the 80
# inputs in the regression, 28 under the IV floor, 3 for a partner (num_of_loan for
# num_loan_types; loan_to_income and monthly_inhand_salary for annual_income).
COUNTS = {"kept": 27, "left_out": 53, "iv": 28, "sign": 22, "oot_roc_auc": 0.75470}
CATEGORICAL, NUMERIC = ["grade"], ["delay_days", "fe_1_mean", "clickstream_months_seen"]
SCALING = {"base_points": 500.0, "base_odds": 20.0, "pdo": 40.0}


def small_frame(n: int = 4000, seed: int = 3) -> tuple[pl.DataFrame, np.ndarray]:
    """Default risk rising with delay_days and grade; clickstream missing for 40% of rows."""
    rng = np.random.default_rng(seed)
    delay = rng.uniform(0, 60, n)
    grade = rng.choice(["A", "B", "C"], n, p=[0.4, 0.4, 0.2])
    has_clickstream = rng.random(n) < 0.6
    clicks = rng.normal(100, 30, n)
    logit = (delay - 30) / 10 + np.select([grade == "B", grade == "C"], [0.5, 1.2], 0.0)
    logit += np.where(has_clickstream, (clicks - 100) / 40, 0.4)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pl.DataFrame(
        {
            "grade": grade,
            "delay_days": delay,
            "fe_1_mean": np.where(has_clickstream, clicks, np.nan),
            "clickstream_months_seen": np.where(has_clickstream, rng.integers(1, 7, n), 0),
        }
    ).with_columns(pl.col("fe_1_mean").fill_nan(None))
    return frame, y


@pytest.fixture(scope="module")
def fitted():
    frame, y = small_frame()
    model = scorecard(CATEGORICAL, NUMERIC, ScorecardParams(**SCALING, min_iv=0.0)).fit(frame, y)
    return model, frame, y


def test_points_of_each_bin_are_the_scaling_of_woe_coefficient_and_intercept(fitted):
    model, frame, y = fitted
    table = model.points_table()
    n_features = table["feature"].n_unique()
    assert n_features >= 2
    intercept = float(model.scorecard.estimator_.intercept_[0])
    factor = SCALING["pdo"] / math.log(2)
    offset = SCALING["base_points"] - factor * math.log(SCALING["base_odds"])
    events, non_events = y.sum(), len(y) - y.sum()
    coefficients = model.coefficients()
    for row in table.filter(pl.col("count") > 0).iter_rows(named=True):
        event_share = row["event_rate"] * row["count"] / events
        non_event_share = (1 - row["event_rate"]) * row["count"] / non_events
        woe = math.log(non_event_share / event_share)  # higher WoE: a safer bin
        assert row["woe"] == pytest.approx(woe, rel=1e-6), row
        assert row["coefficient"] == pytest.approx(coefficients[row["feature"]])
        points = -(woe * row["coefficient"] + intercept / n_features) * factor + offset / n_features
        assert row["points"] == pytest.approx(points, rel=1e-6), row


def test_the_score_is_base_points_at_base_odds_plus_pdo_per_doubling(fitted):
    """score = base_points + pdo * log2(good:bad odds / base_odds), odds from the regression."""
    model, frame, _ = fitted
    p = model.predict_proba(frame)
    expected = SCALING["base_points"] + SCALING["pdo"] * np.log2((1 - p) / p / SCALING["base_odds"])
    np.testing.assert_allclose(model.points(frame), expected, rtol=1e-9)


def test_missing_clickstream_is_a_bin_of_its_own(fitted):
    model, frame, y = fitted
    table = model.points_table()
    missing = table.filter((pl.col("feature") == "fe_1_mean") & (pl.col("bin") == "Missing"))
    nulls = frame["fe_1_mean"].is_null().to_numpy()
    assert missing["count"].to_list() == [nulls.sum()]
    assert missing["event_rate"][0] == pytest.approx(y[nulls].mean())
    # Zero months of clickstream is the special bin of the month count, not its lowest bin.
    special = table.filter(
        (pl.col("feature") == "clickstream_months_seen") & (pl.col("bin") == "Special")
    )
    if special.height:  # the count is in the regression only if its sign is right
        assert special["count"].to_list() == [nulls.sum()]
    # An applicant without clickstream scores the Missing bin's points for the feature.
    without = frame.filter(pl.col("fe_1_mean").is_null()).head(1)
    with_clicks = without.with_columns(fe_1_mean=pl.lit(100.0))
    present = table.filter(
        (pl.col("feature") == "fe_1_mean") & ~pl.col("bin").is_in(["Missing", "Special"])
    )
    gained = model.points(with_clicks)[0] - model.points(without)[0]
    assert any(gained == pytest.approx(p - missing["points"][0]) for p in present["points"])


def test_bins_follow_the_configured_trend_and_points_fall_as_risk_rises():
    frame, y = small_frame()
    params = ScorecardParams(monotonic_trends={"delay_days": "ascending"}, min_iv=0.0)
    model = scorecard(CATEGORICAL, NUMERIC, params).fit(frame, y)
    regular = model.points_table().filter(~pl.col("bin").is_in(["Missing", "Special"]))
    delay = regular.filter(pl.col("feature") == "delay_days").sort("bin_id")
    assert delay.height >= 3
    assert np.all(np.diff(delay["event_rate"].to_numpy()) > 0)
    assert np.all(np.diff(delay["points"].to_numpy()) < 0)
    for feature, trend in model.trends.items():
        rates = regular.filter(pl.col("feature") == feature).sort("bin_id")["event_rate"]
        steps = np.diff(rates.to_numpy())
        assert trend != "auto_asc_desc" or np.all(steps >= 0) or np.all(steps <= 0), feature
    values = model.information_values()
    assert values.columns == [
        "feature", "iv", "n_bins", "selected", "left_out", "monotonic_trend", "coefficient"
    ]  # fmt: skip
    assert set(values["feature"]) == {*CATEGORICAL, *NUMERIC}
    assert values["iv"].is_sorted(descending=True)
    assert values.filter(pl.col("feature") == "delay_days")["monotonic_trend"][0] == "ascending"


def test_unknown_features_and_trends_in_the_mapping_are_refused():
    with pytest.raises(ValueError, match=r"not model inputs: \['income'\]"):
        scorecard(CATEGORICAL, NUMERIC, ScorecardParams(monotonic_trends={"income": "ascending"}))
    with pytest.raises(ValueError, match="unknown monotonic trend 'upwards'"):
        scorecard(CATEGORICAL, NUMERIC, ScorecardParams(monotonic_trend="upwards"))


def test_the_points_table_has_the_committee_columns(fitted):
    model, _, _ = fitted
    table = model.points_table()
    assert table.columns == [
        "feature", "bin_id", "bin", "count", "event_rate", "woe", "iv", "coefficient", "points"
    ]  # fmt: skip
    grades = table.filter(pl.col("feature") == "grade")["bin"].to_list()
    assert {"A", "B", "C"} <= {g for b in grades for g in b.split(", ")}
    assert FAMILIES["scorecard"].report_tables(model).keys() == {"scorecard", "information_value"}


def test_an_unseen_category_and_the_pickled_model_score(fitted):
    model, frame, _ = fitted
    odd = frame.head(3).with_columns(grade=pl.Series(["Z", None, "A"]))
    probabilities = model.predict_proba(odd)
    assert np.all((probabilities > 0) & (probabilities < 1))
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(frame), model.predict_proba(frame))


def test_of_perfectly_correlated_woe_the_higher_iv_feature_stays():
    """WoE columns in IV order: b is 2a + 1 (r = +1), d is -c (r = -1), e is a constant (one
    bin, correlated with nothing) and c is uncorrelated with a by construction."""
    woe = pd.DataFrame(
        {
            "a": [1.0, -1.0, 1.0, -1.0],
            "c": [1.0, 1.0, -1.0, -1.0],
            "b": [3.0, -1.0, 3.0, -1.0],
            "d": [-1.0, -1.0, 1.0, 1.0],
            "e": [0.5, 0.5, 0.5, 0.5],
        }
    )
    assert correlated_partners(woe, 0.8) == {
        "b": "WoE correlated with a (r = +1.00, |r| >= 0.8), which ranks above it by IV",
        "d": "WoE correlated with c (r = -1.00, |r| >= 0.8), which ranks above it by IV",
    }
    # y = x + z with x and z uncorrelated: r(x, y) = r(z, y) = 4 / (2 sqrt 8) = 0.71. y goes
    # for x; z, correlated only with y, which is out, stays.
    chain = pd.DataFrame(
        {"x": [1.0, -1.0, 1.0, -1.0], "y": [2.0, 0.0, 0.0, -2.0], "z": [1.0, 1.0, -1.0, -1.0]}
    )
    assert correlated_partners(chain, 0.7) == {
        "y": "WoE correlated with x (r = +0.71, |r| >= 0.7), which ranks above it by IV"
    }


def partners_frame(n: int = 4000, seed: int = 5) -> tuple[pl.DataFrame, np.ndarray]:
    """Risk follows 2a - b, where b = 0.6 a + 0.6 noise (r(a, b) about 0.71): b alone looks
    risky (cov(2a - b, b) = 0.48 > 0), but given a it makes an applicant safer, so its WoE
    coefficient comes out reversed. a_copy is a with 15% of values missing: its WoE correlates
    with a's at about 0.9, and it has less IV."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.6 * a + 0.6 * rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * a - b)))).astype(int)
    a_copy = np.where(rng.random(n) < 0.15, np.nan, a)
    frame = pl.DataFrame({"a": a, "a_copy": a_copy, "b": b}).with_columns(
        pl.col("a_copy").fill_nan(None)
    )
    return frame, y


@pytest.fixture(scope="module")
def partners():
    frame, y = partners_frame()
    model = scorecard([], frame.columns, ScorecardParams(min_iv=0.02)).fit(frame, y)
    return model, frame, y


def test_a_correlated_partner_with_less_iv_is_left_out_with_its_reason(partners):
    model, _, _ = partners
    values = model.information_values()
    iv = dict(zip(values["feature"], values["iv"], strict=True))
    assert iv["a"] > iv["a_copy"] > 0.3 and iv["b"] > 0.02
    assert list(model.left_out) == ["a_copy", "b"]  # b: reversed sign, the next test
    assert model.left_out["a_copy"].startswith("WoE correlated with a (r = +0.9")
    assert model.left_out["a_copy"].endswith("|r| >= 0.8), which ranks above it by IV")
    row = values.filter(pl.col("feature") == "a_copy").row(0, named=True)
    assert (row["selected"], row["coefficient"]) == (False, None)
    assert row["left_out"] == model.left_out["a_copy"]


def test_a_sign_still_reversed_after_pruning_is_left_out_so_points_fall_as_risk_rises(partners):
    """Kept, b's reversed coefficient would give its riskier bins more points, and a reason told
    from the points ("b is high") would be false of the applicant: b is left out, named."""
    model, frame, y = partners
    assert set(model.coefficients()) == {"a"} and model.coefficients()["a"] < 0
    assert model.left_out["b"] == "reversed sign"
    row = model.information_values().filter(pl.col("feature") == "b").row(0, named=True)
    assert (row["selected"], row["left_out"]) == (False, "reversed sign")
    params = ScorecardParams(min_iv=0.02, max_sign_rounds=0)
    kept = scorecard([], frame.columns, params).fit(frame, y)
    coefficients = kept.coefficients()
    assert coefficients["a"] < 0 < coefficients["b"]
    bins = kept.points_table().filter(
        (pl.col("feature") == "b") & (pl.col("count") > 0) & (pl.col("bin") != "Missing")
    )
    order = np.argsort(bins["event_rate"].to_numpy())
    assert np.all(np.diff(bins["points"].to_numpy()[order]) > 0)  # what the rule prevents
    # The same fit twice is the same scorecard.
    again = scorecard([], frame.columns, ScorecardParams(min_iv=0.02)).fit(frame, y)
    assert again.left_out == model.left_out
    np.testing.assert_array_equal(again.predict_proba(frame), model.predict_proba(frame))


def test_without_pruning_every_feature_with_enough_iv_is_regressed():
    frame, y = partners_frame()
    params = ScorecardParams(min_iv=0.02, max_woe_correlation=None, max_sign_rounds=0)
    model = scorecard([], frame.columns, params).fit(frame, y)
    assert model.left_out == {}
    assert set(model.coefficients()) == {"a", "a_copy", "b"}


@pytest.mark.parametrize("cut", [0.0, -0.5, 1.5])
def test_a_correlation_cut_outside_0_1_is_refused(cut):
    with pytest.raises(ValueError, match=rf"max_woe_correlation must be in \(0, 1\] .* {cut}"):
        scorecard(CATEGORICAL, NUMERIC, ScorecardParams(max_woe_correlation=cut))


def test_pruning_rebins_no_feature_and_matches_a_fit_on_the_kept_features(monkeypatch):
    """Leaving features out changes the regression, not the bins: a feature is binned once for
    the IV table and once more if the scorecard keeps it, and the scorecard is the one fitted
    on the kept features alone."""
    from optbinning import OptimalBinning

    binned: list[str] = []
    fit = OptimalBinning.fit

    def counted_fit(self, *args, **kwargs):
        binned.append(self.name)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(OptimalBinning, "fit", counted_fit)
    frame, y = partners_frame()
    params = ScorecardParams(min_iv=0.02)
    model = scorecard([], frame.columns, params).fit(frame, y)
    kept = list(model.coefficients())
    assert kept == ["a"]  # a_copy: a's partner; b: reversed sign
    assert sorted(binned) == sorted([*frame.columns, *kept])
    alone = scorecard([], kept, params).fit(frame.select(kept), y)
    assert alone.left_out == {}
    assert alone.points_table().equals(model.points_table())
    np.testing.assert_array_equal(alone.predict_proba(frame), model.predict_proba(frame))


def test_on_the_real_data_a_feature_is_left_out_for_its_iv_a_stronger_partner_or_its_sign():
    """As of 2025-07 (train 2023-12..2024-11, OOT 2025-01): every feature left out names why,
    a partner always of higher IV, and every kept feature's points fall as its risk rises."""
    from loan_default_tests.benchmarks.models import labeled_real_data

    require_real_data()
    _, features, labels = labeled_real_data()
    data = BacktestData.of(features, labels, LABEL)
    windows = Windows.relative(date(2025, 7, 1), LABEL.mob, (12, 3, 2, 1))
    result = train(
        "scorecard", data.in_windows(windows), windows, {}, log=lambda _: None, importance=False
    )
    model = result.model.estimator
    values = model.information_values()
    iv = dict(zip(values["feature"], values["iv"], strict=True))
    coefficients = model.coefficients()
    assert all(c < 0 for c in coefficients.values())
    for feature, why in model.left_out.items():
        if why.startswith("WoE correlated with "):
            partner = why.removeprefix("WoE correlated with ").split(" ")[0]
            assert iv[partner] >= iv[feature], (feature, why)
        else:
            assert why in ("IV below 0.02", "reversed sign"), (feature, why)
    reasons = [why.split(" (")[0] for why in model.left_out.values()]
    assert (len(coefficients), len(model.left_out)) == (COUNTS["kept"], COUNTS["left_out"])
    assert reasons.count("IV below 0.02") == COUNTS["iv"]
    assert reasons.count("reversed sign") == COUNTS["sign"]
    print(sorted((round(iv[f], 3), f) for f, w in model.left_out.items() if w == "reversed sign"))
    assert result.metrics["oot"]["roc_auc"] == pytest.approx(COUNTS["oot_roc_auc"], abs=1e-4)
