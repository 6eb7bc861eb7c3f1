"""The scoring API as a real server process on loopback, over a registry trained on real data."""

from __future__ import annotations

import copy
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from loan_default import settings
from loan_default.serving.__main__ import serving_cpus
from loan_default.serving.schemas import EXAMPLE_APPLICATION
from loan_default_tests.conftest import require_real_data
from loan_default_tests.serving.conftest import COMPARED_MONTHS
from loan_default_tests.serving.raw_requests import applications_of_month, null_refused

PERSONAL_VALUES = (
    EXAMPLE_APPLICATION["attributes"]["SSN"],
    EXAMPLE_APPLICATION["attributes"]["Name"],
)


def example(**changes) -> dict:
    """The documented example application with some fields changed (dotted paths)."""
    application = copy.deepcopy(EXAMPLE_APPLICATION)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = application
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is KeyError:
            del target[leaf]
        else:
            target[leaf] = value
    return application


def test_health_model_and_docs(api, trained_versions):
    champion = trained_versions["gradient_boosting"]
    health = httpx.get(f"{api.url}/health").json()
    assert health["status"] == "ok"
    assert health["model_version"] == champion.version_id
    assert health["last_registry_error"] is None

    model = httpx.get(f"{api.url}/model").json()
    assert model["version_id"] == champion.version_id
    assert model["family"] == "gradient_boosting"
    assert model["status"] == "champion"
    assert model["artifact_sha256"] == champion.artifact_sha256
    assert model["metrics"]["validation"]["roc_auc"] == champion.metrics["validation"]["roc_auc"]
    assert model["features"] == champion.features
    assert model["threshold"] == champion.threshold
    assert model["promotion"]["promoted"] is True
    assert "first model becomes champion" in model["promotion"]["reason"]
    # Its model document: linked from the registry row and served as HTML.
    assert model["document_path"] == champion.document_path is not None
    assert model["document_url"] == "/model/document"
    document = httpx.get(f"{api.url}{model['document_url']}")
    assert document.status_code == 200 and document.headers["content-type"].startswith("text/html")
    assert f"artifact_sha256: {champion.artifact_sha256}" in document.text
    assert document.text == Path(champion.document_path).read_text()

    assert httpx.get(f"{api.url}/docs").status_code == 200
    openapi = httpx.get(f"{api.url}/openapi.json").json()
    assert {"/predict", "/health", "/model", "/model/document"} <= set(openapi["paths"])
    # The docs state the platform's one label definition.
    assert settings.LABEL.text in openapi["info"]["description"]


def test_server_runs_on_one_cpu(api):
    # `make serve` pins the server to the last CPU it may use (settings.API_CPUS), and every
    # thread it started after that, the libraries' pools among them, inherits the pin.
    expected = {max(os.sched_getaffinity(0))}
    threads = Path(f"/proc/{api.process.pid}/task").iterdir()
    assert {frozenset(os.sched_getaffinity(int(t.name))) for t in threads} == {frozenset(expected)}


@pytest.mark.parametrize(
    ("setting", "cpus"), [("last", {3}), ("all", {0, 1, 2, 3}), ("0,2", {0, 2}), ("1", {1})]
)
def test_cpu_setting(setting, cpus):
    assert serving_cpus(setting, {0, 1, 2, 3}) == cpus


def test_cpu_setting_outside_the_allowed_set_or_unreadable_is_refused():
    with pytest.raises(ValueError, match=r"LOAN_DEFAULT_API_CPUS=0,5: .* only \{0, 1\}"):
        serving_cpus("0,5", {0, 1})
    with pytest.raises(ValueError, match="LOAN_DEFAULT_API_CPUS=first: expected 'last', 'all'"):
        serving_cpus("first", {0, 1})


def test_predict_one_application_and_a_batch(api, trained_versions):
    champion = trained_versions["gradient_boosting"]
    single = httpx.post(f"{api.url}/predict", json=EXAMPLE_APPLICATION)
    assert single.status_code == 200, single.text
    one = single.json()
    assert one["loan_id"] == EXAMPLE_APPLICATION["loan_id"]
    assert one["model_version"] == champion.version_id
    assert 0 < one["probability"] < 1 and 0 < one["calibrated_probability"] < 1
    assert one["decision"] == int(one["calibrated_probability"] >= champion.threshold)

    # Same customer id twice in one batch, one without clickstream: each is scored on its own.
    no_clickstream = example(loan_id="second", clickstream=[])
    batch = httpx.post(
        f"{api.url}/predict", json={"applications": [EXAMPLE_APPLICATION, no_clickstream]}
    )
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["model_version"] == champion.version_id
    first, second = body["predictions"]
    assert first == one
    assert second["loan_id"] == "second"
    alone = httpx.post(f"{api.url}/predict", json=no_clickstream).json()
    assert second["calibrated_probability"] == alone["calibrated_probability"]
    assert second["calibrated_probability"] != first["calibrated_probability"]


@pytest.mark.parametrize("month", COMPARED_MONTHS)
def test_api_scores_equal_the_predictions_asset(api, trained_warehouse, month):
    """Applications of a month, sent as raw text, score exactly as models/predictions did."""
    applications = applications_of_month(require_real_data(), date.fromisoformat(month))
    refused = httpx.post(f"{api.url}/predict", json={"applications": applications}, timeout=60)
    # The raw month holds impossible values (ages of -500, 1,500 inquiries) that the pipeline
    # nulls: the API refuses them, naming each one, and the caller sends null instead.
    assert refused.status_code == 422
    details = refused.json()["detail"]
    assert {d["type"] for d in details} == {"out_of_range"}
    assert len(details) > 20
    assert all(d["field"] == d["loc"][-1] for d in details)
    null_refused(applications, details)

    response = httpx.post(f"{api.url}/predict", json={"applications": applications}, timeout=60)
    assert response.status_code == 200, response.text[:2000]
    scored = pl.DataFrame(response.json()["predictions"])
    with duckdb.connect(str(trained_warehouse), read_only=True) as connection:
        batch = connection.execute(
            "select loan_id, probability, calibrated_probability, decision, model_version "
            "from models.predictions where is_champion and application_month = ?",
            [date.fromisoformat(month)],
        ).pl()
    assert batch.height == len(applications) > 400
    compared = batch.join(scored, on="loan_id", how="full", suffix="_api", coalesce=True)
    assert compared.height == batch.height
    assert (compared["model_version"] == compared["model_version_api"]).all()
    for column in ("probability", "calibrated_probability"):
        assert (compared[column] - compared[f"{column}_api"]).abs().max() <= 1e-9
    assert (compared["decision"] == compared["decision_api"]).all()


INVALID = {
    "malformed number": (example(financials__Annual_Income="12,5x"), "unreadable_float"),
    "malformed date": (example(loan_start_date="2024-13-45"), "unreadable_date"),
    "malformed history": (example(financials__Credit_History_Age="ten years"), "unreadable"),
    "malformed clickstream": (example(clickstream__1__fe_3="many"), "unreadable_int"),
    "out of range": (example(attributes__Age=-500), "out_of_range"),
    "out of range, required": (example(tenure=0), "out_of_range"),
    "huge sentinel": (
        example(financials__Num_of_Loan="__-333333333333333333333333333__"),
        "out_of_range",
    ),
    "missing field": (example(financials__Credit_Mix=KeyError), "missing"),
    "missing section": (example(attributes=KeyError), "missing"),
    "missing required value": (example(financials__snapshot_date=None), "missing_value"),
    "wrong type": (example(attributes__Age=[34]), "string_type"),
    "boolean": (example(loan_amt=True), "string_type"),
    "unknown field": (example(attributes__Favourite_Colour="blue"), "extra_forbidden"),
    "repeated month": (
        example(clickstream__1__snapshot_date="2024-04-01"),
        "duplicate_key",
    ),
    "future clickstream": (
        example(clickstream__1__snapshot_date="2024-06-01"),
        "after_application_month",
    ),
    "future financials": (
        example(financials__snapshot_date="2024-07-01"),
        "after_application_month",
    ),
}
EXPECTED_LOC = {
    "malformed number": ["financials", "Annual_Income"],
    "malformed date": ["loan_start_date"],
    "malformed history": ["financials", "Credit_History_Age"],
    "malformed clickstream": ["clickstream", 1, "fe_3"],
    "out of range": ["attributes", "Age"],
    "out of range, required": ["tenure"],
    "huge sentinel": ["financials", "Num_of_Loan"],
    "missing field": ["financials", "Credit_Mix"],
    "missing section": ["attributes"],
    "missing required value": ["financials", "snapshot_date"],
    "wrong type": ["attributes", "Age"],
    "boolean": ["loan_amt"],
    "unknown field": ["attributes", "Favourite_Colour"],
    "repeated month": ["clickstream", 1, "snapshot_date"],
    "future clickstream": ["clickstream", 1, "snapshot_date"],
    "future financials": ["financials", "snapshot_date"],
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_input_is_a_422_naming_the_field(api, case):
    application, kind = INVALID[case]
    for body, prefix in (
        (application, ["body"]),
        ({"applications": [EXAMPLE_APPLICATION, application]}, ["body", "applications", 1]),
    ):
        response = httpx.post(f"{api.url}/predict", json=body)
        assert response.status_code == 422, response.text
        (detail,) = response.json()["detail"]
        assert detail["loc"] == prefix + EXPECTED_LOC[case]
        assert detail["field"] == EXPECTED_LOC[case][-1]
        assert detail["type"].startswith(kind)
        assert not any(value in response.text for value in PERSONAL_VALUES)


@pytest.mark.parametrize(
    ("character", "kind", "why"),
    [
        ("\x00", "control_character", "a control character (NUL, another C0 code or DEL)"),
        (
            "\u200b",
            "invisible_character",
            "an invisible character (a byte-order mark or zero-width)",
        ),
    ],
)
def test_a_customer_id_the_pipeline_quarantines_is_a_422(api, character, kind, why):
    """The batch pipeline quarantines a Customer_ID holding NUL or a zero-width space; the API
    refuses it by the same rule rather than scoring it and echoing it back."""
    response = httpx.post(f"{api.url}/predict", json=example(Customer_ID=f"CUS_0xD3E0{character}"))
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [
        {
            "loc": ["body", "Customer_ID"],
            "field": "Customer_ID",
            "type": kind,
            "msg": f"Customer_ID holds {why}",
        }
    ]
    assert "CUS_0xD3E0" not in response.text


def test_malformed_json_and_bad_batches_are_422(api):
    broken = httpx.post(
        f"{api.url}/predict", content=b'{"loan_id": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    empty = httpx.post(f"{api.url}/predict", json={"applications": []})
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["body", "applications"]


def test_personal_data_is_never_returned_or_logged(api):
    ssn_error = example(attributes__SSN={"number": "123-45-6789"})
    age_error = example(attributes__Age="-500")
    other_ssn = example(**{"attributes__SSN": "999-99-9999", "attributes__Name": "Other Name"})
    responses = [
        httpx.post(f"{api.url}/predict", json=body)
        for body in (
            EXAMPLE_APPLICATION,
            ssn_error,
            age_error,
            {"applications": [EXAMPLE_APPLICATION, age_error]},
        )
    ]
    assert [r.status_code for r in responses] == [200, 422, 422, 422]
    assert [d["field"] for r in responses[1:] for d in r.json()["detail"]] == ["SSN", "Age", "Age"]
    for response in responses:
        assert not any(value in response.text for value in (*PERSONAL_VALUES, "123-45-6789"))
    log = api.log()
    assert "POST /predict" in log and "refused value(s): ['Age']" in log
    assert not any(value in log for value in (*PERSONAL_VALUES, "123-45-6789"))
    # Not a model input: another SSN and name give the same score.
    changed = httpx.post(f"{api.url}/predict", json=other_ssn).json()
    assert changed["calibrated_probability"] == responses[0].json()["calibrated_probability"]


def test_health_answers_while_a_batch_is_scored(api):
    """A batch is scored off the event loop (one application is scored on it)."""
    month = EXAMPLE_APPLICATION["clickstream"][0]
    history = [  # 24 months of clickstream, so that scoring the batch takes a while
        {**month, "snapshot_date": f"{2022 + (m + 5) // 12}-{(m + 5) % 12 + 1:02d}-01"}
        for m in range(24)
    ]
    batch = {"applications": [{**EXAMPLE_APPLICATION, "clickstream": history}] * 3000}
    with httpx.Client(base_url=api.url, timeout=120) as http, ThreadPoolExecutor(1) as pool:
        scoring = pool.submit(http.post, "/predict", json=batch)
        answered = 0
        while not scoring.done():
            assert http.get("/health").status_code == 200
            answered += not scoring.done()
            time.sleep(0.01)
        assert scoring.result().status_code == 200
    # Had scoring held the event loop, /health would have waited for all of it.
    assert answered >= 5, answered
