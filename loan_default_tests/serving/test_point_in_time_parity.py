"""API and pipeline agree on source rows dated a month before the loan or mid-month.

The pipeline builds a real warehouse from a raw copy whose rows are so dated; the real server
scores the same applications, with the same rows; the champion's scores of the pipeline's
feature rows equal the server's.
"""

from __future__ import annotations

import duckdb
import httpx
import polars as pl

from loan_default.lib.models import registry
from loan_default_tests.conftest import require_real_data
from loan_default_tests.defs.test_point_in_time import (
    EARLIER,
    MID_MONTH,
    REDATED_MONTH,
    build_redated,
    month_rows,
)
from loan_default_tests.serving.raw_requests import applications_of_month, null_refused

# The date each group's attributes and financials rows carry in the redated raw copy.
SENT_DATES = {"earlier": EARLIER, "mid_month": MID_MONTH, "unchanged": None}


def redated_applications(groups: dict[str, list[str]]) -> list[dict]:
    """REDATED_MONTH's applications of the sent groups, their rows dated as in the raw copy."""
    dated = {c: when for name, when in SENT_DATES.items() for c in groups[name]}
    applications = []
    for application in applications_of_month(require_real_data(), REDATED_MONTH):
        customer = application["Customer_ID"]
        if customer not in dated:
            continue
        if dated[customer] is not None:
            application["attributes"]["snapshot_date"] = dated[customer]
            application["financials"]["snapshot_date"] = dated[customer]
        applications.append(application)
    return applications


def test_api_scores_equal_pipeline_features_on_earlier_and_mid_month_rows(
    api, trained_warehouse, raw_copy, tmp_path
):
    redated_db = tmp_path / "redated.duckdb"
    groups, _ = build_redated(raw_copy, redated_db)
    applications = redated_applications(groups)
    assert len(applications) > 300

    url = f"{api.url}/predict"
    response = httpx.post(url, json={"applications": applications}, timeout=60)
    if response.status_code == 422:
        # Only the raw month's impossible values, which the pipeline nulls: the API names
        # them and the caller sends null. No row is refused for its date.
        details = response.json()["detail"]
        assert {d["type"] for d in details} == {"out_of_range"}, details[:5]
        null_refused(applications, details)
        response = httpx.post(url, json={"applications": applications}, timeout=60)
    assert response.status_code == 200, response.text[:2000]
    served = pl.DataFrame(response.json()["predictions"]).select(
        "loan_id", "probability", "calibrated_probability", "decision", "model_version"
    )

    with duckdb.connect(str(trained_warehouse), read_only=True) as connection:
        champion = registry.champion_read_only(connection)
    assert champion is not None
    model = registry.load_artifact(champion)
    features = month_rows(redated_db, REDATED_MONTH).filter(
        pl.col("loan_id").is_in(served["loan_id"].implode())
    )
    assert features.height == served.height
    # The pipeline used the redated rows: their features are there.
    assert features["annual_income"].is_not_null().mean() > 0.9
    assert features["age"].is_not_null().mean() > 0.9
    pipeline = features.select("loan_id").hstack(model.score(features))

    compared = pipeline.join(served, on="loan_id", suffix="_api")
    assert compared.height == served.height
    assert (compared["model_version"] == champion.version_id).all()
    for column in ("probability", "calibrated_probability"):
        assert (compared[column] - compared[f"{column}_api"]).abs().max() <= 1e-9, column
    assert (compared["decision"] == compared["decision_api"]).all()
