"""Reason codes on the real data: faithful to the model that decided, stored for every decision
to decline, and the same from the API as in models.predictions.

The trained warehouse (serving/conftest.py) holds logistic regression, gradient boosting
(champion) and the scorecard trained on the reference windows; the TabTransformer, which no
shared fixture trains, is trained here once, briefly, on the same windows.
"""

from __future__ import annotations

import fnmatch
from datetime import date

import duckdb
import httpx
import numpy as np
import polars as pl
import pytest

from loan_default import settings
from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.lib.models import reason_codes, registry
from loan_default.lib.models.model_data import labeled_applications
from loan_default.lib.models.training import TrainedModel, train
from loan_default_tests.conftest import require_real_data
from loan_default_tests.serving.conftest import COMPARED_MONTHS
from loan_default_tests.serving.raw_requests import applications_of_month, null_refused

FAMILIES = ["scorecard", "logistic_regression", "gradient_boosting", "tab_transformer"]
# Declined applications judged per family (the TabTransformer's occlusion is the slow one).
JUDGED = 200
FAITHFUL_SHARE = 0.9


def _tables(database) -> tuple[pl.DataFrame, pl.DataFrame]:
    with duckdb.connect(str(database), read_only=True) as connection:
        features = connection.sql("select * from gold.feature_store").pl()
        labels = connection.sql("select * from gold.label_store").pl()
    return features, labels


@pytest.fixture(scope="module")
def reference_windows(trained_warehouse):
    features, labels = _tables(trained_warehouse)
    config = FAMILY_CONFIGS["tab_transformer"](window_mode="absolute")
    windows, as_of = config.windows(labels["label_month"].max())
    return labeled_applications(features, labels, settings.LABEL, as_of), windows


@pytest.fixture(scope="module")
def models(trained_warehouse, trained_versions, reference_windows) -> dict[str, TrainedModel]:
    loaded = {f: registry.load_artifact(r) for f, r in trained_versions.items()}
    data, windows = reference_windows
    quick = {"max_epochs": 4, "pretrain_epochs": 1}
    loaded["tab_transformer"] = train(
        "tab_transformer", data, windows, quick, log=lambda _: None
    ).model
    return loaded


def moved_to_reference(model: TrainedModel, row: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return row.with_columns(model.reference.applicant.select(columns))


def faithful_share(model: TrainedModel, declined: pl.DataFrame, seed: int = 0) -> float:
    """Share of declined applications whose probability falls further when the top reason's
    inputs take the reference applicant's values than when a randomly chosen non-reason's do."""
    catalogue = reason_codes.load_catalogue()
    groups = catalogue.groups(model.features)
    found = reason_codes.reasons(model, declined, np.ones(declined.height))
    rng = np.random.default_rng(seed)
    top, other = [], []
    for index, reasons in enumerate(found):
        row = declined[index]
        told = {catalogue.group_of(r.code) for r in reasons}  # R19M is group R19's
        not_reasons = sorted(set(groups) - told)
        top.append(moved_to_reference(model, row, groups[catalogue.group_of(reasons[0].code)]))
        other.append(moved_to_reference(model, row, groups[rng.choice(not_reasons)]))
    p_top = model.score(pl.concat(top))["calibrated_probability"].to_numpy()
    p_other = model.score(pl.concat(other))["calibrated_probability"].to_numpy()
    return float(np.mean(p_top < p_other))


@pytest.mark.parametrize("family", FAMILIES)
def test_the_top_reason_moves_the_probability_more_than_a_random_other(
    family, models, reference_windows
):
    data, windows = reference_windows
    model = models[family]
    held_out = data.filter(pl.col("application_month") >= windows.test[0])
    declined = held_out.filter(model.score(held_out)["decision"] == 1)
    declined = declined.sample(min(JUDGED, declined.height), seed=0)
    assert declined.height >= 100
    share = faithful_share(model, declined)
    print(f"{family}: top reason more faithful than a random other for {share:.1%}")
    assert share >= FAITHFUL_SHARE, share


def stored_predictions(database) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.sql("select * from models.predictions").pl()


def test_every_decision_to_decline_has_one_to_four_codes_from_the_catalogue(trained_warehouse):
    catalogue = reason_codes.load_catalogue()
    rows = stored_predictions(trained_warehouse)
    declined, approved = rows.filter(pl.col("decision") == 1), rows.filter(pl.col("decision") == 0)
    assert declined.height > 100 and approved.height > 100
    counts = declined["reason_codes"].list.len()
    assert counts.min() >= 1 and counts.max() <= 4
    assert set(declined["reason_codes"].explode().unique()) <= set(catalogue.codes)
    assert (declined["reason_codes"].list.n_unique() == counts).all()  # no code twice
    assert (approved["reason_codes"].list.len() == 0).all()
    assert (rows["reason_catalogue_version"] == catalogue.version).all()
    assert set(rows["model_family"]) == {"logistic_regression", "gradient_boosting", "scorecard"}


def test_the_api_returns_the_codes_of_the_predictions_table(api, trained_warehouse):
    month = date.fromisoformat(COMPARED_MONTHS[0])
    applications = applications_of_month(require_real_data(), month)
    url = f"{api.url}/predict"
    response = httpx.post(url, json={"applications": applications}, timeout=120)
    if response.status_code == 422:  # values the pipeline nulls: the API names them
        null_refused(applications, response.json()["detail"])
        response = httpx.post(url, json={"applications": applications}, timeout=120)
    assert response.status_code == 200, response.text[:2000]
    served = response.json()["predictions"]
    catalogue = reason_codes.load_catalogue()
    for prediction in served:
        for reason in prediction["reasons"]:
            assert reason["text"] == catalogue.codes[reason["code"]].text
            assert reason["contribution"] > 0 or len(prediction["reasons"]) == 1
    api_codes = pl.DataFrame(
        {
            "loan_id": [p["loan_id"] for p in served],
            "decision_api": [p["decision"] for p in served],
            "codes_api": [[r["code"] for r in p["reasons"]] for p in served],
        },
        schema_overrides={"codes_api": pl.List(pl.String)},
    )
    table = stored_predictions(trained_warehouse).filter(
        pl.col("is_champion") & (pl.col("application_month") == month)
    )
    compared = table.join(api_codes, on="loan_id")
    assert compared.height == table.height == len(served)
    assert (compared["decision"] == compared["decision_api"]).all()
    assert compared.filter(pl.col("decision") == 1).height > 50
    assert (compared["reason_codes"] == compared["codes_api"]).all()


def feature_store(database) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.sql("select * from gold.feature_store").pl()


def all_null(frame: pl.DataFrame, patterns: tuple[str, ...]) -> pl.Expr:
    """True where every input matching one of `patterns` is null."""
    inputs = [c for c in frame.columns if any(fnmatch.fnmatchcase(c, p) for p in patterns)]
    return pl.all_horizontal(pl.col(c).is_null() for c in inputs)


OBSERVED_ACTIVITY = "Recent online account activity suggests higher risk"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_reason_of_every_declined_applicant_is_true_of_its_values(
    family,
    models,
    trained_warehouse,
):
    """Every declined applicant of the real feature store (all months, both sides of the
    clickstream gap): a missing code exactly when the group's inputs are all null for that
    applicant, an observed-value code only when some of them are on file; R19's observed text
    never reaches an applicant without clickstream."""
    catalogue = reason_codes.load_catalogue()
    model = models[family]
    features = feature_store(trained_warehouse)
    scored = reason_codes.score_with_reasons(model, features).with_columns(
        features["has_clickstream"]
    )
    declined = scored.with_row_index("row").filter(pl.col("decision") == 1)
    groups = catalogue.groups(model.features)
    missing = [c.missing for c in catalogue.codes.values() if c.missing]
    owner = {code: catalogue.group_of(code) for code in missing}
    rules = {code: catalogue.codes[code].when_null or tuple(groups[code]) for code in groups}
    absence = (
        features.select(**{code: all_null(features, rules[code]) for code in groups})
        .with_row_index("row")
        .unpivot(index="row", variable_name="group", value_name="absent")
    )
    told = (
        declined.select("row", "has_clickstream", "reasons")
        .explode("reasons")
        .unnest("reasons")
        .with_columns(group=pl.col("code").replace(owner), is_missing=pl.col("code").is_in(missing))
        .join(absence, on=["row", "group"], how="left")
    )
    assert told.height >= declined.height > 1000
    texts = {c.code: c.text for c in catalogue.codes.values()}
    assert (told["text"] == told["code"].replace_strict(texts)).all()
    wrong = told.filter(pl.col("absent") != pl.col("is_missing"))
    assert wrong.is_empty(), wrong.group_by("code", "is_missing").len()
    none = told.filter(pl.col("has_clickstream") == 0)
    assert none["row"].n_unique() > 300
    assert (none["text"] != OBSERVED_ACTIVITY).all()
    assert (told.filter(pl.col("code") == "R19M")["has_clickstream"] == 0).all()
    share = (
        declined.filter(pl.col("has_clickstream") == 0)["reasons"]
        .list.eval(pl.element().struct.field("code"))
        .list.contains("R19M")
        .mean()
    )
    print(f"{family}: declined without clickstream told R19M {share:.1%}, R19 0%")
