"""The WoE scorecard on a small frame made here, checked by hand: WoE from the bin counts, points
from WoE, coefficient, intercept and the pdo/odds scaling, the score against the probability,
missing clickstream as a bin of its own, monotonic bins, and the artifact round trip."""

from __future__ import annotations

import math
import pickle

import numpy as np
import polars as pl
import pytest

from loan_default.lib.models.families import FAMILIES
from loan_default.lib.models.scorecard import ScorecardParams, scorecard

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
    assert all(c < 0 for c in model.coefficients().values())  # no reversed sign left in
    values = model.information_values()
    assert values.columns == ["feature", "iv", "n_bins", "selected", "left_out", "monotonic_trend"]
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


def proxies_frame(n: int = 3000, seed: int = 4, k: int = 10) -> tuple[pl.DataFrame, np.ndarray]:
    """Ten noisier and noisier copies of one risk driver; the target follows the first alone,
    so the others' coefficients have either sign, and leaving some out turns others."""
    rng = np.random.default_rng(seed)
    driver = rng.normal(size=n)
    frame = pl.DataFrame(
        {f"x{i}": driver + rng.normal(scale=0.3 + 0.2 * i, size=n) for i in range(k)}
    )
    y = (rng.random(n) < 1 / (1 + np.exp(1 - 2 * frame["x0"].to_numpy()))).astype(int)
    return frame, y


def test_sign_rounds_rebin_no_feature_and_match_a_fit_on_the_kept_features(monkeypatch):
    """Leaving features out changes the regression, not the bins: a feature is binned once for
    the IV table and once more if the scorecard keeps it, whatever the number of sign rounds,
    and the scorecard is the one fitted on the kept features alone."""
    from optbinning import OptimalBinning

    binned: list[str] = []
    fit = OptimalBinning.fit

    def counted_fit(self, *args, **kwargs):
        binned.append(self.name)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(OptimalBinning, "fit", counted_fit)
    frame, y = proxies_frame()
    params = ScorecardParams(min_iv=0.0)
    model = scorecard([], frame.columns, params).fit(frame, y)
    kept = list(model.coefficients())
    reversed_sign = [f for f, why in model.left_out.items() if why == "reversed sign"]
    assert len(reversed_sign) >= 3
    assert all(c < 0 for c in model.coefficients().values())
    assert sorted(binned) == sorted([*frame.columns, *kept])
    alone = scorecard([], kept, params).fit(frame.select(kept), y)
    assert alone.left_out == {}
    assert alone.points_table().equals(model.points_table())
    np.testing.assert_array_equal(alone.predict_proba(frame), model.predict_proba(frame))
