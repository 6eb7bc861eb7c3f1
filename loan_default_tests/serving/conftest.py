"""Fixtures for the scoring API: a trained real-data registry and real server processes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.defs.models.model_document import MODEL_DOCUMENT
from loan_default.lib.models import registry
from loan_default_tests.defs.test_models import CHAMPION, GB, LR, PREDICTIONS, REFERENCE, SC, run
from loan_default_tests.serving.server import Server, start_server

LogisticRegressionConfig = FAMILY_CONFIGS["logistic_regression"]
GradientBoostingConfig = FAMILY_CONFIGS["gradient_boosting"]
ScorecardConfig = FAMILY_CONFIGS["scorecard"]

# Months the predictions asset scores for the comparison: with clickstream, and after the gap.
COMPARED_MONTHS = ("2024-05-01", "2025-01-01")


@pytest.fixture(scope="session")
def trained_warehouse(real_warehouse, tmp_path_factory) -> Path:
    """The real-data warehouse with boosting (champion) and logistic (refused) registered, a
    scorecard challenger not yet judged (the hot-swap tests promote it), the model document of
    each, and the predictions asset run over the compared months. Never mutated: copy it to
    change it."""
    database = tmp_path_factory.mktemp("serving") / "warehouse.duckdb"
    shutil.copy(real_warehouse[0], database)
    run(
        database,
        [LR, GB, CHAMPION],
        {
            "models__logistic_regression": LogisticRegressionConfig(**REFERENCE),
            "models__gradient_boosting": GradientBoostingConfig(**REFERENCE),
        },
    )
    run(database, [SC], {"models__scorecard": ScorecardConfig(**REFERENCE)})
    run(database, [MODEL_DOCUMENT])
    run(database, [PREDICTIONS], months=COMPARED_MONTHS)
    return database


def copy_warehouse(source: Path, target_dir: Path) -> Path:
    """A private copy whose registry points at private copies of the artifacts."""
    target_dir.mkdir(parents=True, exist_ok=True)
    database = target_dir / "warehouse.duckdb"
    shutil.copy(source, database)
    shutil.copytree(source.parent / "artifacts", target_dir / "artifacts")
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            f"update {registry.REGISTRY_TABLE} set artifact_path = replace(artifact_path, ?, ?)",
            [str(source.parent / "artifacts"), str(target_dir / "artifacts")],
        )
    return database


def versions(database: Path) -> dict[str, registry.RegistryRecord]:
    """The newest version per family. Opens the file read-write: only while no server runs on it."""
    with duckdb.connect(str(database)) as connection:
        return {r.family: r for r in registry.all_versions(connection)}


@pytest.fixture(scope="session")
def trained_versions(trained_warehouse) -> dict[str, registry.RegistryRecord]:
    return versions(trained_warehouse)


@pytest.fixture
def server_factory(tmp_path) -> Iterator:
    """Starts servers for one test and stops them all at its end."""
    started: list[Server] = []

    def factory(warehouse: Path, **kwargs) -> Server:
        server = start_server(warehouse, tmp_path / f"server{len(started)}.log", **kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def api(trained_warehouse, trained_versions, tmp_path_factory) -> Iterator[Server]:
    """One server over the trained warehouse, shared by the read-only tests of a module."""
    server = start_server(trained_warehouse, tmp_path_factory.mktemp("api") / "server.log")
    yield server
    server.stop()
