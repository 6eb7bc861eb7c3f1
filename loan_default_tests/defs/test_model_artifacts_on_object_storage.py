"""Model artifacts on object storage, as the production profile keeps them: the model assets
write the pickle and the scorecard's CSV tables to an s3:// prefix, and the gate, the model
document, the predictions and drift read them back from there (a real moto S3 server)."""

import shutil
import socket

import dagster as dg
import duckdb
import pytest
from moto.server import ThreadedMotoServer

from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.defs.models.model_document import MODEL_DOCUMENT
from loan_default.defs.resources import ModelStoreResource, S3Resource
from loan_default.lib.models import registry
from loan_default.lib.storage.object_storage import S3Endpoint
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


def test_artifacts_are_written_to_and_read_from_object_storage(
    real_warehouse, tmp_path, s3_endpoint
):
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse[0], database)
    resources = {
        **project_resources(require_real_data(), database),
        "model_store": ModelStoreResource(
            artifact_dir=f"s3://{BUCKET}/artifacts",
            report_dir=str(tmp_path / "reports"),
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
    listed = s3_endpoint.client().list_objects_v2(Bucket=BUCKET, Prefix="artifacts/")
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        f"artifacts/scorecard/{record.version_id}.{name}"
        for name in ("information_value.csv", "pkl", "scorecard.csv")
    ]
    assert not (tmp_path / "artifacts").exists()
    assert registry.load_artifact(record, s3_endpoint).features == record.features
    # The document found the scorecard's own IV table beside the artifact.
    document = trained[MODEL_DOCUMENT][f"document {record.version_id}"].value
    assert "the scorecard's own binning, recorded beside its artifact" in document

    # One month scored; drift's reference (the training months, never scored) comes from
    # scoring them with the artifact, read from object storage.
    scored = materialized(run(resources, [PREDICTIONS, DRIFT], months=("2024-05-01", "2024-05-01")))
    assert scored[PREDICTIONS]["dagster/row_count"].value > 400
    assert scored[DRIFT]["dagster/row_count"].value > 0
