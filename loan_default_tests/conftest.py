"""Shared fixtures: the real dataset beside the repo, and a warehouse built from it once."""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

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
) -> dg.ExecuteInProcessResult:
    """One single-run backfill of `selection` over `months`, as the CLI does it."""
    return dg.materialize(
        project_assets(),
        selection=selection,
        instance=instance,
        resources=project_resources(raw_dir, database),
        tags=range_tags(months),
    )


@pytest.fixture(scope="session")
def real_warehouse(tmp_path_factory) -> tuple[Path, dg.ExecuteInProcessResult]:
    """Every data asset over every month of the real data, built once per test session."""
    raw_dir = require_real_data()
    database = tmp_path_factory.mktemp("real") / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        result = materialize_months(raw_dir, database, instance)
    assert result.success
    return database, result


@pytest.fixture
def raw_copy(tmp_path) -> Path:
    """A writable copy of the real raw folder, for tests that perturb it."""
    target = tmp_path / "raw"
    shutil.copytree(require_real_data(), target, ignore=shutil.ignore_patterns("*.md"))
    return target
