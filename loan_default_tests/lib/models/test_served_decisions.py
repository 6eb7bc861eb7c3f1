"""Served decisions are history: a later scoring adds applications, never rewrites one."""

from datetime import UTC, date, datetime

import polars as pl

from loan_default.lib.models.served_decisions import served_decisions

MONTH = date(2024, 5, 1)


def champion_scores(version: str, loans: list[str], probability: float) -> pl.DataFrame:
    n = len(loans)
    return pl.DataFrame(
        {
            "loan_id": loans,
            "application_month": [MONTH] * n,
            "model_family": [version.split("-")[0]] * n,
            "model_version": [version] * n,
            "probability": [probability] * n,
            "calibrated_probability": [probability] * n,
            "decision": [int(probability > 0.5)] * n,
            "reason_codes": [["R01"] if probability > 0.5 else []] * n,
            "reason_catalogue_version": ["1"] * n,
            "is_champion": [True] * n,
            "scored_at": [datetime(2024, 5, 2, tzinfo=UTC)] * n,
        }
    )


def test_the_first_champion_decision_stays_and_new_applications_are_added():
    first = served_decisions(None, champion_scores("gradient_boosting-1", ["a", "b"], 0.7))
    assert first["model_version"].to_list() == ["gradient_boosting-1"] * 2
    assert first["served_at"].to_list() == [datetime(2024, 5, 2, tzinfo=UTC)] * 2
    # A new champion scores the month again, with one late application: a and b keep what they
    # were told; c gets the new champion's decision.
    later = champion_scores("scorecard-2", ["a", "b", "c"], 0.2)
    again = served_decisions(first, later).sort("loan_id")
    assert again["model_version"].to_list() == ["gradient_boosting-1"] * 2 + ["scorecard-2"]
    assert again["decision"].to_list() == [1, 1, 0]
    assert again["reason_codes"].to_list() == [["R01"], ["R01"], []]


def test_an_empty_history_takes_the_champion_as_is():
    scores = champion_scores("gradient_boosting-1", ["a"], 0.3)
    empty = served_decisions(None, scores).clear()
    assert served_decisions(empty, scores)["loan_id"].to_list() == ["a"]
