"""The production profile end to end on the real data, on its real services (a throwaway
PostgreSQL for Dagster's instance and the DuckLake catalog, moto's S3 server for the files):

- a backfill of the data layers, split into runs the daemon starts side by side, gives tables
  equal, month by month, to the embedded profile's;
- four month runs started at once all succeed, with no lock failure, and re-write their months
  identically;
- a month run killed with SIGKILL mid-write leaves every table readable and unchanged, and its
  re-run gives the same tables;
- a model trained there has the embedded profile's metrics for the same seed, and the API
  serves the champion from the catalog and object storage, and refuses a tampered artifact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest

from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.lib.models import registry
from loan_default.lib.storage.warehouse_tables import month_fingerprints
from loan_default.serving.schemas import EXAMPLE_APPLICATION
from loan_default_tests.cli_env import REPO_ROOT
from loan_default_tests.conftest import project_assets, project_resources, require_real_data
from loan_default_tests.production_services import (
    ProductionServices,
    free_ports,
    running_services,
    services_folder,
)
from loan_default_tests.serving.server import start_server

BIN = Path(sys.executable).parent
DATA_SELECTION = "group:bronze or group:silver or group:gold"
# Six months per run: the 35 months are six runs per layer, four at a time.
MONTHS_PER_RUN = 6
CONCURRENT_MONTHS = ("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01")
KILLED_MONTH = "2024-06-01"
LOCK_ERRORS = ("could not set lock", "database is locked", "conflict")


@dataclass
class Production:
    services: ProductionServices
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "loan_default.production", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def materialize(self, selection: str, partition: str) -> subprocess.Popen:
        """One month run from the CLI, as a user would start it; its own process group."""
        return subprocess.Popen(
            [
                str(BIN / "dagster"),
                *("asset", "materialize", "-m", "loan_default.definitions"),
                *("--select", selection, "--partition", partition),
            ],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def data_tables(self) -> dict:
        store = self.services.warehouse()
        tables = [t for t in store.tables() if t.split(".")[0] in ("bronze", "silver", "gold")]
        return month_fingerprints(store, tables)


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Iterator[Production]:
    raw = require_real_data()
    home = tmp_path_factory.mktemp("production")
    with services_folder() as folder, running_services(folder, *free_ports(2)) as services:
        env = {
            **os.environ,
            **services.environment(),
            "DAGSTER_HOME": str(home / "dagster_home"),
            "LOAN_DEFAULT_RAW_DIR": str(raw),
            "LOAN_DEFAULT_REPORTS": str(home / "reports"),
            "LOAN_DEFAULT_BACKFILL_MONTHS_PER_RUN": str(MONTHS_PER_RUN),
            "LOAN_DEFAULT_MAX_CONCURRENT_RUNS": "4",
            "LOAN_DEFAULT_API_THREADS": "1",
        }
        production = Production(services, env)
        backfill = production.cli("backfill", "data_layers")
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr
        yield production


def test_the_data_layers_equal_the_embedded_profile_month_by_month(production, real_warehouse):
    produced = production.data_tables()
    embedded = month_fingerprints(real_warehouse[0], sorted({table for table, _ in produced}))
    assert set(produced) == set(embedded)
    assert len({table for table, _ in produced}) == 14  # 4 bronze, 8 silver, 2 gold tables
    different = {key for key in produced if produced[key] != embedded[key]}
    assert not different, sorted(different)[:10]


def test_the_backfill_ran_as_runs_of_six_months_each_step_after_the_other(production):
    code = (
        "import dagster as dg\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    for backfill in reversed(instance.get_backfills()):\n"
        "        records = instance.get_run_records(\n"
        "            filters=dg.RunsFilter(tags={'dagster/backfill': backfill.backfill_id})\n"
        "        )\n"
        "        for record in sorted(records, key=lambda r: r.start_time or 0):\n"
        "            run = record.dagster_run\n"
        "            print(backfill.tags['loan_default/step'], run.status.value,\n"
        "                  run.tags['dagster/asset_partition_range_start'],\n"
        "                  run.tags['dagster/asset_partition_range_end'], record.start_time,\n"
        "                  record.end_time)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], env=production.env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    runs = [line.split() for line in shown.stdout.splitlines()]
    steps = [run[0] for run in runs]
    assert steps == ["month_layers"] * 6 + ["feature_layer"] * 6
    assert {run[1] for run in runs} == {"SUCCESS"}
    months = [f"{2023 + m // 12}-{m % 12 + 1:02d}-01" for m in range(35)]
    chunks = {(months[i], months[min(i + MONTHS_PER_RUN, 35) - 1]) for i in range(0, 35, 6)}
    for step in (runs[:6], runs[6:]):
        assert {(run[2], run[3]) for run in step} == chunks
    month_layers_end = max(float(run[5]) for run in runs[:6])
    assert min(float(run[4]) for run in runs[6:]) >= month_layers_end  # the steps in turn
    overlapping = sum(float(b[4]) < float(a[5]) for a, b in zip(runs[:6], runs[1:6], strict=False))
    assert overlapping >= 1  # runs of one step side by side


def test_four_month_runs_at_once_succeed_without_lock_failures_and_rewrite_identically(
    production,
):
    before = production.data_tables()
    runs = [production.materialize(DATA_SELECTION, month) for month in CONCURRENT_MONTHS]
    outputs = [run.communicate(timeout=1800)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    for output in outputs:
        assert not any(error in output.lower() for error in LOCK_ERRORS), output[-3000:]
    assert production.data_tables() == before


def test_a_month_run_killed_mid_write_leaves_the_catalog_consistent(production):
    before = production.data_tables()
    run = production.materialize(DATA_SELECTION, KILLED_MONTH)
    deadline = time.monotonic() + 600
    seen = ""
    while "silver" not in seen and time.monotonic() < deadline:  # killed inside silver
        line = run.stdout.readline()
        seen = line if "STEP_START" in line else seen
    time.sleep(1.0)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL
    assert production.data_tables() == before  # every table reads, nothing half written
    rerun = production.materialize(DATA_SELECTION, KILLED_MONTH)
    output = rerun.communicate(timeout=1800)[0]
    assert rerun.returncode == 0, output[-3000:]
    assert production.data_tables() == before


def test_a_model_trained_there_has_the_embedded_metrics_and_the_api_serves_it(
    production, real_warehouse, tmp_path
):
    trained = production.cli("materialize", "key:models/logistic_regression or key:models/champion")
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    with production.services.warehouse().connect() as connection:
        champion = registry.champion(connection)
    assert champion.family == "logistic_regression"
    assert champion.artifact_path.startswith(f"s3://{production.services.s3_bucket}/artifacts/")

    database = tmp_path / "embedded.duckdb"
    database.write_bytes(real_warehouse[0].read_bytes())
    embedded = dg.materialize(
        project_assets(),
        selection=dg.AssetSelection.assets(["models", "logistic_regression"]),
        resources=project_resources(require_real_data(), database),
        run_config=dg.RunConfig(
            {"models__logistic_regression": FAMILY_CONFIGS["logistic_regression"]()}
        ),
    )
    assert embedded.success
    with duckdb.connect(str(database)) as connection:
        local = registry.latest_versions(connection)["logistic_regression"]
    assert local.metrics == champion.metrics

    server = start_server(tmp_path / "unused.duckdb", tmp_path / "api.log", settings=production.env)
    try:
        model = httpx.get(f"{server.url}/model").json()
        assert model["version_id"] == champion.version_id
        scored = httpx.post(f"{server.url}/predict", json=EXAMPLE_APPLICATION)
        assert scored.status_code == 200 and scored.json()["model_version"] == champion.version_id
    finally:
        server.stop()

    s3 = production.services.s3_client()
    bucket, key = champion.artifact_path.removeprefix("s3://").split("/", 1)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=original + b"tampered")
    try:
        refused = start_server(
            tmp_path / "unused.duckdb",
            tmp_path / "tampered.log",
            ready_status=503,
            settings=production.env,
        )
        try:
            health = httpx.get(f"{refused.url}/health").json()
            assert health["status"] == "no_model"
            assert "refusing to load" in health["last_registry_error"]
            assert httpx.post(f"{refused.url}/predict", json=EXAMPLE_APPLICATION).status_code == 503
        finally:
            refused.stop()
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)
