"""Shared fixtures: the real dataset beside the repo, and a warehouse built from it once per
test session, shared by every pytest-xdist worker."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from filelock import FileLock

from loan_default.definitions import defs as load_definitions
from loan_default.defs.resources import ModelStoreResource, RawDataResource, warehouse_resource

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_RAW_DIR = REPO_ROOT.parent / "shared" / "data" / "raw"
ALL_MONTHS = ("2023-01-01", "2025-11-01")
DATA_SELECTION = dg.AssetSelection.groups("bronze", "silver", "gold")


def require_real_data() -> Path:
    """The real data folder; tests skip without it, except in CI where that is a failure."""
    if not (REAL_RAW_DIR / "lms_loan_daily.csv").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data missing at {REAL_RAW_DIR}: CI must have ../shared")
        pytest.skip(f"real data not found at {REAL_RAW_DIR}")
    return REAL_RAW_DIR


def project_resources(raw_dir: Path, database: Path) -> dict:
    """The project's real resources, with every file under the test's own folders."""
    return {
        "warehouse": warehouse_resource(database),
        "raw_data": RawDataResource(raw_dir=str(raw_dir)),
        "model_store": ModelStoreResource(
            artifact_dir=str(database.parent / "artifacts"),
            report_dir=str(database.parent / "reports"),
        ),
    }


def project_assets() -> list[dg.AssetsDefinition]:
    return [a for a in load_definitions().assets or [] if isinstance(a, dg.AssetsDefinition)]


def range_tags(months: tuple[str, str] | None) -> dict[str, str]:
    """The run tags of a single-run backfill over [first, last] months, as the CLI sets them."""
    if not months:
        return {}
    return {
        "dagster/asset_partition_range_start": months[0],
        "dagster/asset_partition_range_end": months[1],
    }


def materialize_months(
    raw_dir: Path,
    database: Path,
    instance: dg.DagsterInstance,
    months: tuple[str, str] = ALL_MONTHS,
    selection: dg.AssetSelection = DATA_SELECTION,
    run_config: dict | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """One single-run backfill of `selection` over `months`, as the CLI does it."""
    return dg.materialize(
        project_assets(),
        selection=selection,
        instance=instance,
        resources=project_resources(raw_dir, database),
        tags=range_tags(months),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


@dataclass(frozen=True)
class RecordedRun:
    """A finished run's events read back from storage: what the shared warehouse's tests read
    of the run that built it, the same on every xdist worker."""

    all_events: Sequence[dg.DagsterEvent]
    success: bool

    def get_asset_materialization_events(self) -> list[dg.DagsterEvent]:
        return [e for e in self.all_events if e.is_step_materialization]

    def get_asset_check_evaluations(self) -> list[dg.AssetCheckEvaluation]:
        return [
            e.event_specific_data
            for e in self.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ]


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this test session that every xdist worker sees: beside the workers' own
    base temps, named by the run's id, so a reused --basetemp never serves an older build."""
    base = tmp_path_factory.getbasetemp()
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    return base.parent / f"{name}-{run_id}" if run_id else base / name


def build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """Runs `build(folder)` once per test session: the first worker to get here builds while
    the others wait, then all read what it built."""
    done = folder / ".built"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def _build_real_warehouse(folder: Path) -> None:
    with dg.instance_for_test() as instance:
        result = materialize_months(require_real_data(), folder / "warehouse.duckdb", instance)
    assert result.success
    (folder / "events.json").write_text(dg.serialize_value(list(result.all_events)))


@pytest.fixture(scope="session")
def real_warehouse(tmp_path_factory) -> tuple[Path, RecordedRun]:
    """Every data asset over every month of the real data, built once per test session (one
    build for all xdist workers). Each worker gets its own copy of the DuckDB file, so its
    read-write opens never lock another worker out; the Parquet layers stay shared, read only."""
    built = build_once(shared_folder(tmp_path_factory, "real_warehouse"), _build_real_warehouse)
    database = tmp_path_factory.mktemp("real") / "warehouse.duckdb"
    shutil.copy(built / "warehouse.duckdb", database)
    events = dg.deserialize_value((built / "events.json").read_text(), list)
    return database, RecordedRun(events, success=True)


@pytest.fixture
def raw_copy(tmp_path) -> Path:
    """A writable copy of the real raw folder, for tests that perturb it."""
    target = tmp_path / "raw"
    shutil.copytree(require_real_data(), target, ignore=shutil.ignore_patterns("*.md"))
    return target


# The slowest end-to-end modules, slowest first (marked `slow`). `make test` runs the suite with
# `--dist loadscope`: each module is one work unit (its module-scoped fixtures built once), and
# units start in collection order, so these go first and no long module is left to run alone at
# the end. `-m "not slow"` skips them for a quick run.
SLOW_MODULES = (
    "loan_default_tests/test_production_profile.py",
    "loan_default_tests/test_production_run.py",
    "loan_default_tests/defs/test_manual_promotion.py",
    "loan_default_tests/defs/test_backtest.py",
    "loan_default_tests/test_label_contract.py",
    "loan_default_tests/defs/test_monitoring_real_data.py",
    "loan_default_tests/defs/test_models.py",
    "loan_default_tests/serving/test_reason_codes_real_data.py",
    "loan_default_tests/defs/test_point_in_time.py",
    "loan_default_tests/test_cli.py",
    "loan_default_tests/defs/test_model_artifacts_on_object_storage.py",
    "loan_default_tests/test_concurrent_runs.py",
    "loan_default_tests/test_replay.py",
    "loan_default_tests/test_pipeline_driver.py",
    "loan_default_tests/defs/test_retrain_on_drift.py",
    "loan_default_tests/test_recovery.py",
)


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the slow modules and puts them first, slowest first."""
    rank = {module: index for index, module in enumerate(SLOW_MODULES)}
    for item in items:
        if _module(item) in rank:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: rank.get(_module(item), len(rank)))
