"""`python -m loan_default.production run` (`make run-production`) on the real data and its real
services (a throwaway PostgreSQL, moto's S3 server): the whole pipeline as `make run` runs it,
each step one Dagster run over every month in one process, recorded in the PostgreSQL instance
(no daemon, no backfill runs), with `make run`'s progress lines, and the DuckLake warehouse's
data tables equal, month by month, to the embedded profile's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from loan_default.lib.storage.warehouse_tables import month_fingerprints
from loan_default_tests.cli_env import REPO_ROOT
from loan_default_tests.conftest import require_real_data
from loan_default_tests.production_services import (
    ProductionServices,
    free_ports,
    running_services,
    services_folder,
)

PIPELINE = ["data", "models", "predictions", "monitoring", "report"]
MONTHLY = {"data", "predictions", "monitoring"}
FIRST, LAST = "2023-01-01", "2025-11-01"
# Each run of the instance: its step, status, month range, backfill and the process it ran in.
RUNS = """
import json, dagster as dg
with dg.DagsterInstance.get() as instance:
    for record in reversed(instance.get_run_records()):
        tags, run_id = record.dagster_run.tags, record.dagster_run.run_id
        started = dg.DagsterEventType.STEP_START
        step = instance.get_records_for_run(run_id, of_type=started, limit=1).records[0]
        print(json.dumps([
            tags.get("loan_default/step"), record.dagster_run.status.value,
            tags.get("dagster/asset_partition_range_start"),
            tags.get("dagster/asset_partition_range_end"),
            tags.get("dagster/backfill"), step.event_log_entry.dagster_event.pid,
        ]))
"""


@dataclass
class ProductionRun:
    services: ProductionServices
    env: dict[str, str]
    done: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def production_run(tmp_path_factory) -> Iterator[ProductionRun]:
    raw = require_real_data()
    home = tmp_path_factory.mktemp("production_run")
    with services_folder() as folder, running_services(folder, *free_ports(2)) as services:
        env = {
            **os.environ,
            **services.environment(),
            "DAGSTER_HOME": str(home / "dagster_home"),
            "LOAN_DEFAULT_RAW_DIR": str(raw),
            "LOAN_DEFAULT_REPORTS": str(home / "reports"),
        }
        done = subprocess.run(
            [sys.executable, "-m", "loan_default.production", "run"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield ProductionRun(services, env, done)


def test_each_step_is_one_run_over_every_month_in_one_process_writing_the_embedded_data(
    production_run, real_warehouse
):
    shown = subprocess.run(
        [sys.executable, "-c", RUNS], env=production_run.env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    runs = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [run[0] for run in runs] == PIPELINE
    assert {run[1] for run in runs} == {"SUCCESS"}
    for step, _, start, end, backfill, _ in runs:
        assert (start, end) == ((FIRST, LAST) if step in MONTHLY else (None, None)), step
        assert backfill is None, step
    pids = {run[5] for run in runs}
    assert len(pids) == 1 and None not in pids  # one process ran them all

    store = production_run.services.warehouse()
    tables = [t for t in store.tables() if t.split(".")[0] in ("bronze", "silver", "gold")]
    assert len(tables) == 14  # 4 bronze, 8 silver, 2 gold tables
    produced = month_fingerprints(store, tables)
    embedded = month_fingerprints(real_warehouse[0], sorted(tables))
    different = {key for key in produced if produced[key] != embedded.get(key)}
    assert set(produced) == set(embedded)
    assert not different, sorted(different)[:10]


def test_the_terminal_shows_make_runs_progress_lines(production_run):
    lines = production_run.done.stdout.splitlines()
    for number, step in enumerate(PIPELINE, start=1):
        assert any(line.startswith(f"[{number}/5] {step}") for line in lines), step
    assert any(line.startswith("5 runs in ") for line in lines)
    assert any(line.startswith("Warehouse: DuckLake") for line in lines)
