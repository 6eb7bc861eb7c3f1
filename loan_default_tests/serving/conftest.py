"""Fixtures for the scoring API: a trained real-data registry and real server processes."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.defs.models.model_document import MODEL_DOCUMENT
from loan_default.lib.models import registry
from loan_default_tests.conftest import build_once, shared_folder
from loan_default_tests.defs.test_models import CHAMPION, GB, LR, PREDICTIONS, REFERENCE, SC, run
from loan_default_tests.serving.server import Server, start_server

LogisticRegressionConfig = FAMILY_CONFIGS["logistic_regression"]
GradientBoostingConfig = FAMILY_CONFIGS["gradient_boosting"]
ScorecardConfig = FAMILY_CONFIGS["scorecard"]

# Months the predictions asset scores for the comparison: with clickstream, and after the gap.
COMPARED_MONTHS = ("2024-05-01", "2025-01-01")


def _train(real_database: Path, folder: Path) -> None:
    database = folder / "warehouse.duckdb"
    shutil.copy(real_database, database)
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


@pytest.fixture(scope="session")
def trained_warehouse(real_warehouse, tmp_path_factory) -> Path:
    """The real-data warehouse with boosting (champion) and logistic (refused) registered, a
    scorecard challenger not yet judged (the hot-swap tests promote it), the model document of
    each, and the predictions asset run over the compared months. Trained once per test
    session; each xdist worker gets its own copy, artifacts and documents included. Never
    mutated: copy it to change it."""
    built = build_once(
        shared_folder(tmp_path_factory, "trained_warehouse"),
        functools.partial(_train, real_warehouse[0]),
    )
    target = tmp_path_factory.mktemp("serving")
    database = copy_warehouse(built / "warehouse.duckdb", target)
    shutil.copytree(built / "reports", target / "reports")
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            f"update {registry.REGISTRY_TABLE} set document_path = replace(document_path, ?, ?)",
            [str(built / "reports"), str(target / "reports")],
        )
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
