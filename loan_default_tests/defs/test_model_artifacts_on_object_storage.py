"""Model artifacts and reports on object storage, as the production profile keeps them: the
model assets write the pickle and the scorecard's CSV tables to an s3:// prefix, and the gate,
the model document, the predictions and drift read them back from there; the training curves,
the model documents and the monitoring report go to the bucket too, and the API serves the
champion's document from it (a real moto S3 server)."""

import gc
import json
import shutil
import socket

import dagster as dg
import duckdb
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.defs.models.model_document import MODEL_DOCUMENT
from loan_default.defs.resources import ModelStoreResource, S3Resource
from loan_default.lib.models import registry
from loan_default.lib.storage import object_storage
from loan_default.lib.storage.embedded_tables import EmbeddedTables
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.serving.app import create_app
from loan_default_tests.conftest import (
    project_assets,
    project_resources,
    range_tags,
    require_real_data,
)

BUCKET = "loan-default-test"
SCORECARD = dg.AssetKey(["models", "scorecard"])
CHAMPION = dg.AssetKey(["models", "champion"])
PREDICTIONS = dg.AssetKey(["models", "predictions"])
DRIFT = dg.AssetKey(["monitoring", "drift"])
REPORT = dg.AssetKey(["monitoring", "monitoring_report"])
TAB_TRANSFORMER = dg.AssetKey(["models", "tab_transformer"])


@pytest.fixture
def s3_endpoint():
    """A moto S3 server on a free loopback port, with an empty bucket."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "us-east-1", "testing", "testing")
        endpoint.client().create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def run(resources: dict, selection: list, run_config=None, months=None):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            project_assets(),
            selection=dg.AssetSelection.assets(*selection),
            instance=instance,
            resources=resources,
            run_config=dg.RunConfig(run_config or {}),
            tags=range_tags(months),
        )
    assert result.success
    return result


def materialized(result: dg.ExecuteInProcessResult) -> dict:
    return {
        m.asset_key: m.metadata
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }


def keys(s3: S3Endpoint, prefix: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_artifacts_and_reports_are_written_to_and_read_from_object_storage(
    real_warehouse, tmp_path, s3_endpoint, monkeypatch
):
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse[0], database)
    resources = {
        **project_resources(require_real_data(), database),
        "model_store": ModelStoreResource(
            artifact_dir=f"s3://{BUCKET}/artifacts",
            report_dir=f"s3://{BUCKET}/reports",
            s3=S3Resource(
                endpoint=s3_endpoint.endpoint,
                region=s3_endpoint.region,
                access_key_id=s3_endpoint.access_key_id,
                secret_access_key=s3_endpoint.secret_access_key,
            ),
        ),
    }
    config = {"models__scorecard": FAMILY_CONFIGS["scorecard"](window_mode="absolute")}
    trained = materialized(run(resources, [SCORECARD, CHAMPION, MODEL_DOCUMENT], config))
    with duckdb.connect(str(database)) as connection:
        [record] = registry.all_versions(connection)
    folder = f"s3://{BUCKET}/artifacts/scorecard"
    assert record.artifact_path == f"{folder}/{record.version_id}.pkl"
    assert record.status == "champion"  # the gate loaded it from object storage
    metadata = trained[SCORECARD]
    assert metadata["artifact"].value == record.artifact_path
    assert metadata["scorecard_csv"].value == f"{folder}/{record.version_id}.scorecard.csv"
    assert keys(s3_endpoint, "artifacts/") == [
        f"artifacts/scorecard/{record.version_id}.{name}"
        for name in ("information_value.csv", "pkl", "scorecard.csv")
    ]
    assert not (tmp_path / "artifacts").exists()
    assert registry.load_artifact(record, s3_endpoint).features == record.features
    # The document found the scorecard's own IV table beside the artifact.
    document = trained[MODEL_DOCUMENT][f"document {record.version_id}"].value
    assert "the scorecard's own binning, recorded beside its artifact" in document
    # The document itself is an object in the bucket, and the registry row links it there.
    reports = f"s3://{BUCKET}/reports"
    assert record.document_path == f"{reports}/model_documents/{record.version_id}.html"
    assert keys(s3_endpoint, "reports/") == [f"reports/model_documents/{record.version_id}.html"]
    assert trained[MODEL_DOCUMENT]["champion_document"].value == record.document_path
    assert trained[MODEL_DOCUMENT]["document_dir"].value == f"{reports}/model_documents"
    page = object_storage.read_bytes(record.document_path, s3_endpoint).decode()
    assert page.startswith("<!DOCTYPE html>") and record.artifact_sha256 in page
    # A current document on S3 is found there: the next run writes none.
    again = materialized(run(resources, [MODEL_DOCUMENT]))
    assert again[MODEL_DOCUMENT]["written"].value == 0

    # The API serves the champion's document from the bucket, and asks whether it is there once
    # for GET /model, not on every call.
    asked = []
    exists = object_storage.exists

    def counted(location, s3=None):
        asked.append(location)
        return exists(location, s3)

    app = create_app(warehouse=EmbeddedTables(database), s3=s3_endpoint)
    with monkeypatch.context() as patch:
        patch.setattr(object_storage, "exists", counted)
        try:
            with TestClient(app) as api:
                for _ in range(3):
                    model = api.get("/model").json()
                    assert model["version_id"] == record.version_id
                    assert model["document_path"] == record.document_path
                    assert model["document_url"] == "/model/document"
                assert asked.count(record.document_path) == 1
                served = api.get(model["document_url"])
                assert served.status_code == 200
                assert served.headers["content-type"].startswith("text/html")
                assert served.text == page
                s3_endpoint.client().delete_object(
                    Bucket=BUCKET, Key=f"reports/model_documents/{record.version_id}.html"
                )
                assert api.get(model["document_url"]).status_code == 404
        finally:
            gc.unfreeze()  # the app's start-up froze the test process's objects

    # One month scored; drift's reference (the training months, never scored) comes from
    # scoring them with the artifact, read from object storage. The monitoring report and its
    # dashboard go to the bucket as well.
    scored = materialized(
        run(resources, [PREDICTIONS, DRIFT, REPORT], months=("2024-05-01", "2024-05-01"))
    )
    assert scored[PREDICTIONS]["dagster/row_count"].value > 400
    assert scored[DRIFT]["dagster/row_count"].value > 0
    monitoring = f"s3://{BUCKET}/reports/monitoring"
    assert scored[REPORT]["report"].value == f"{monitoring}/monitoring_report.json"
    assert scored[REPORT]["dashboard"].value == f"{monitoring}/monitoring_dashboard.html"
    assert "dashboard_url" not in scored[REPORT]  # no file:// link to an object
    report = object_storage.read_bytes(f"{monitoring}/monitoring_report.json", s3_endpoint)
    assert set(json.loads(report)) == {"thresholds_version", "actions"}
    dashboard = object_storage.read_bytes(f"{monitoring}/monitoring_dashboard.html", s3_endpoint)
    assert dashboard.startswith(b"<!DOCTYPE html>") and b"plotly" in dashboard

    # The TabTransformer's training curves (a short run: two epochs, no pretraining).
    tab_transformer = FAMILY_CONFIGS["tab_transformer"](
        window_mode="absolute", max_epochs=2, pretrain_epochs=0
    )
    curves = materialized(
        run(resources, [TAB_TRANSFORMER], {"models__tab_transformer": tab_transformer})
    )[TAB_TRANSFORMER]
    version_id = curves["version_id"].value
    assert curves["training_curves"].value == f"s3://{BUCKET}/reports/{version_id}.html"
    page = object_storage.read_bytes(curves["training_curves"].value, s3_endpoint)
    assert b"plotly" in page and b"early-stopping ROC-AUC" in page
    assert keys(s3_endpoint, "reports/") == [  # the champion's document was deleted above
        "reports/monitoring/monitoring_dashboard.html",
        "reports/monitoring/monitoring_report.json",
        f"reports/{version_id}.html",
    ]
    assert not (tmp_path / "reports").exists()
