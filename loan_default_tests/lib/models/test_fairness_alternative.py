"""The less-discriminatory-alternative search: eta² of age by hand, the alternatives the rules
ask for, the held-out adverse impact ratio by hand, and a real search fitting gradient
boosting on small synthetic windows."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import polars as pl
import pytest

from loan_default.lib.models.fairness_alternative import (
    ALTERNATIVE_SCHEMA,
    AlternativeRules,
    alternatives,
    held_out_fairness,
    proxy_ranking,
    search,
)
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.training import train
from loan_default.lib.monitoring.fairness import AgeBand, FairnessRules
from loan_default.lib.thresholds import load_thresholds

# Six applicants, mean age 30, total sum of squares 4 x 10² = 400. eta² = between / 400:
#   y = age, 3 quantile bins: every age its own bin, between = 400             -> 1.0
#   w: missing for the two 20s (mean 20), 1 for the rest (mean 35):
#      between = 2 x 10² + 4 x 5² = 300                                         -> 0.75
#   x: a = (20, 20, 30) mean 23.33, b = (40, 40, 30) mean 36.67:
#      between = 2 x 3 x (20/3)² = 266.67                                       -> 0.6667
#   z: one value, between = 0                                                   -> 0.0
SIX = pl.DataFrame(
    {
        "age": [20, 20, 40, 40, 30, 30],
        "y": [20.0, 20.0, 40.0, 40.0, 30.0, 30.0],
        "w": [None, None, 1.0, 1.0, 1.0, 1.0],
        "x": ["a", "a", "b", "b", "a", "b"],
        "z": [5.0] * 6,
    }
)


def test_proxy_ranking_is_eta_squared_by_hand():
    ranking = proxy_ranking(SIX, ["age", "x", "y", "z", "w"], ["x"], bins=3)
    assert ranking["feature"].to_list() == ["y", "w", "x", "z"]  # age is never its own proxy
    assert ranking["eta_squared"].to_list() == pytest.approx([1.0, 0.75, 2 / 3, 0.0])
    # A row without an age says nothing about age: it is left out, not counted as age 0.
    unknown = pl.concat([SIX, SIX.head(1).with_columns(age=None, x=pl.lit("b"))])
    assert proxy_ranking(unknown, ["x"], ["x"])["eta_squared"].to_list() == pytest.approx([2 / 3])


@pytest.mark.parametrize(
    ("features", "top", "cut", "expected"),
    [
        (
            ["age", "x", "y", "w"],
            2,
            0.7,
            [("without age", ["age"]), ("without age and its top 2 proxies", ["age", "y", "w"])],
        ),
        # Age not an input: the search is over its proxies alone.
        (["x", "y", "w"], 2, 0.7, [("without its top 2 proxies", ["y", "w"])]),
        # Only y reaches the cut-off: one proxy, whatever top_proxies allows.
        (
            ["age", "x", "y", "w"],
            3,
            0.8,
            [("without age", ["age"]), ("without age and its top 1 proxies", ["age", "y"])],
        ),
        (["x", "y", "w"], 2, 1.1, []),  # nothing to drop: no alternative
    ],
)
def test_the_alternatives_drop_age_then_its_top_proxies(features, top, cut, expected):
    ranking = proxy_ranking(SIX, features, ["x"], bins=3)
    assert alternatives(features, ranking, AlternativeRules(top, cut, ())) == expected


def test_held_out_fairness_pools_test_and_oot_by_hand():
    rules = FairnessRules(
        bands=(AgeBand("14-34", 14, 34), AgeBand("35+", 35, None)),
        min_band_loans=4,
        min_adverse_impact_ratio=0.8,
        action="ACTIVE_MONITORING",
        evaluate_on="adaptive",
    )
    # Test: 14-34 approves 2 of 3, 35+ 2 of 2; OOT: 14-34 1 of 1, 35+ 1 of 3. Alone no window
    # has 4 loans in a band; pooled, 14-34 approves 3/4 = 0.75, 35+ 3/5 = 0.6 (ratio 0.8).
    parts = {
        "test": pl.DataFrame({"age": [20, 25, 30, 40, 50]}),
        "oot": pl.DataFrame({"age": [22, 36, 45, 55]}),
    }
    decisions = {"test": pl.Series([0, 0, 1, 0, 0]), "oot": pl.Series([0, 0, 1, 1])}
    figures = held_out_fairness(parts, decisions, rules)
    assert figures["approval_rate_held_out"] == pytest.approx(6 / 9)
    assert figures["min_air_held_out"] == pytest.approx(0.8)
    assert (figures["lowest_band"], figures["reference_band"]) == ("35+", "14-34")
    # Fewer than two judged bands: no ratio.
    small = dataclasses.replace(rules, min_band_loans=5)
    assert held_out_fairness(parts, decisions, small)["min_air_held_out"] is None


MONTHS = {
    "train": (date(2023, 1, 1), date(2023, 6, 1)),
    "validation": (date(2023, 7, 1), date(2023, 7, 1)),
    "test": (date(2023, 8, 1), date(2023, 8, 1)),
    "oot": (date(2023, 9, 1), date(2023, 9, 1)),
}


def synthetic(n_per_month: int = 150) -> pl.DataFrame:
    """Applications whose default depends on income and age; `tenure` (age / 10 plus noise)
    is age's proxy, `noise` and `occupation` carry nothing."""
    rng = np.random.default_rng(7)
    frames = []
    for month in range(1, 10):
        age = rng.integers(18, 60, n_per_month)
        income = rng.normal(50, 10, n_per_month)
        p = 1 / (1 + np.exp((income - 50) / 5 + (age - 35) / 10))
        frames.append(
            pl.DataFrame(
                {
                    "loan_id": [f"{month}-{i}" for i in range(n_per_month)],
                    "application_month": [date(2023, month, 1)] * n_per_month,
                    "age": age,
                    "tenure": age / 10 + rng.normal(0, 0.5, n_per_month),
                    "income": income,
                    "noise": rng.normal(0, 1, n_per_month),
                    "occupation": rng.choice(["Engineer", "Teacher"], n_per_month),
                    "has_clickstream": [1] * n_per_month,
                    "label": (rng.random(n_per_month) < p).astype(np.int8),
                }
            )
        )
    return pl.concat(frames)


def test_a_real_search_retrains_without_age_and_its_proxy():
    data, windows = synthetic(), Windows(**MONTHS)
    params = {"max_iter": 30, "early_stopping": False}
    fitted = train("gradient_boosting", data, windows, params, importance=False, log=print)
    fairness = FairnessRules(
        bands=(AgeBand("18-34", 18, 34), AgeBand("35+", 35, None)),
        min_band_loans=50,
        min_adverse_impact_ratio=0.8,
        action="ACTIVE_MONITORING",
        evaluate_on="adaptive",
    )
    rules = AlternativeRules(top_proxies=1, min_eta_squared=0.2, families=())
    found = search(
        "gradient_boosting", params, fitted.model, fitted.metrics, data, windows, fairness, rules
    )
    assert found is not None and found.age_is_input
    assert found.proxies["feature"][0] == "tenure"
    assert found.proxies["dropped"].to_list() == [True, False, False, False, False]
    table = found.table
    assert table.schema == pl.Schema(ALTERNATIVE_SCHEMA)
    assert table["alternative"].to_list() == [
        "this version",
        "without age",
        "without age and its top 1 proxies",
    ]
    assert table["dropped"].to_list() == ["", "age", "age, tenure"]
    # occupation, age, tenure, income, noise, has_clickstream
    assert table["inputs"].to_list() == [6, 5, 4]
    assert table["roc_auc_oot"][0] == fitted.metrics["oot"]["roc_auc"]
    # Age drives default here: the model without age and its proxy loses accuracy.
    assert table["roc_auc_test"][2] < table["roc_auc_test"][0]
    assert table["min_air_held_out"].is_not_null().all() and found.seconds > 0
    assert (
        search(
            "gradient_boosting",
            params,
            fitted.model,
            fitted.metrics,
            data.drop("age"),
            windows,
            fairness,
            rules,
        )
        is None
    )


def test_the_thresholds_file_declares_the_search():
    rules = AlternativeRules.of(load_thresholds()["monitoring"]["fairness"]["alternatives"])
    assert rules.top_proxies >= 1 and 0 <= rules.min_eta_squared <= 1
    assert "gradient_boosting" in rules.families
