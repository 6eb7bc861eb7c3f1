"""The `manual_promotion` job, run for real: a Dagster instance, a DuckDB warehouse whose
registry holds real trained versions (two cheap families on a small synthetic loan book, judged
by the real gate), and the real scoring API following the registry's champion."""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import polars as pl
import pytest

from loan_default.definitions import defs as load_definitions
from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.defs.models.manual_promotion import manual_promotion
from loan_default.lib.models import registry
from loan_default.lib.synthetic import generate
from loan_default_tests.conftest import materialize_months, project_assets, project_resources
from loan_default_tests.serving.conftest import copy_warehouse
from loan_default_tests.serving.server import start_server

FAMILIES = ("logistic_regression", "scorecard")
OP = "change_champion"
# Months up to the labels of the reference windows' OOT month (2024-05 + 6): all the two
# families and the gate read.
MONTHS = ("2023-01-01", "2024-11-01")
REFRESH_SECONDS = 1.0
# Loading a new champion's artifact and explaining the reference applicant once, after the
# check that finds it: allowed on top of the refresh interval.
LOAD_SECONDS = 5.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A warehouse with two real versions judged by the gate: the first became champion, the
    second was refused. Never mutated: copy it."""
    folder = tmp_path_factory.mktemp("manual_promotion")
    generate(folder / "raw", loans=2_000, seed=3)
    database = folder / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        assert materialize_months(folder / "raw", database, instance, MONTHS).success
        result = dg.materialize(
            project_assets(),
            selection=dg.AssetSelection.assets(
                *(["models", f] for f in FAMILIES), ["models", "champion"]
            ),
            instance=instance,
            resources=project_resources(folder / "raw", database),
            run_config=dg.RunConfig(
                {f"models__{f}": FAMILY_CONFIGS[f](window_mode="absolute") for f in FAMILIES}
            ),
        )
    assert result.success
    return database


@pytest.fixture
def warehouse(trained, tmp_path) -> Path:
    return copy_warehouse(trained, tmp_path / "copy")


def by_status(database: Path) -> dict[str, list[str]]:
    with duckdb.connect(str(database)) as connection:
        versions = registry.all_versions(connection)
    found: dict[str, list[str]] = {}
    for version in versions:
        found.setdefault(version.status, []).append(version.version_id)
    return found


def champion_and_other(database: Path) -> tuple[str, str]:
    status = by_status(database)
    [champion] = status.pop("champion")
    [other] = [v for versions in status.values() for v in versions]
    return champion, other


def decisions(database: Path) -> pl.DataFrame:
    with duckdb.connect(str(database)) as connection:
        return registry.decisions(connection)


def run_job(database: Path, instance: dg.DagsterInstance, **config) -> dg.ExecuteInProcessResult:
    return manual_promotion.execute_in_process(
        run_config={"ops": {OP: {"config": config}}},
        instance=instance,
        resources=project_resources(database.parent / "raw", database),
        raise_on_error=False,
    )


def failure(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    [event] = [e for e in result.all_events if e.is_step_failure]
    return event.step_failure_data.user_failure_data.description


def test_the_gate_recorded_its_decisions_as_gate_decisions(trained):
    rows = decisions(trained)
    assert rows["kind"].to_list() == ["gate", "gate"]
    assert set(rows["decided_by"]) == {getpass.getuser()}
    assert sorted(rows["promoted"]) == [False, True]
    status = by_status(trained)
    assert len(status["champion"]) == 1 and len(status["challenger"]) == 1


def test_the_job_is_part_of_the_code_location():
    job = load_definitions().resolve_job_def("manual_promotion")
    assert [node.name for node in job.nodes] == [OP]


def test_promote_then_rollback(warehouse):
    champion, challenger = champion_and_other(warehouse)
    with dg.instance_for_test() as instance:
        promoted = run_job(
            warehouse,
            instance,
            action="promote",
            version=challenger,
            reason="INC-123: the champion over-declines thin-file applicants",
            decided_by="risk officer",
        )
        assert promoted.success
        assert promoted.output_for_node(OP) == challenger
        assert by_status(warehouse) == {"champion": [challenger], "retired": [champion]}
        row = decisions(warehouse).row(-1, named=True)
        assert row["kind"] == "manual" and row["decided_by"] == "risk officer"
        assert row["reason"] == "INC-123: the champion over-declines thin-file applicants"
        assert (row["candidate_version"], row["champion_version"]) == (challenger, champion)
        assert row["promoted"]

        # The change shows on the champion asset's page and in the step's output.
        [observation] = [
            e.asset_observation_data.asset_observation
            for e in promoted.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        ]
        assert observation.asset_key == dg.AssetKey(["models", "champion"])
        assert observation.metadata["champion_version"].value == challenger
        assert observation.metadata["replaced_version"].value == champion

        rolled_back = run_job(warehouse, instance, action="rollback", reason="INC-123 resolved")
        assert rolled_back.success and rolled_back.output_for_node(OP) == champion
        assert by_status(warehouse) == {"champion": [champion], "retired": [challenger]}
        row = decisions(warehouse).row(-1, named=True)
        assert (row["kind"], row["reason"]) == ("rollback", "INC-123 resolved")
        assert row["decided_by"] == getpass.getuser()  # the OS user, when not given
        assert (row["candidate_version"], row["champion_version"]) == (champion, challenger)

        # A rollback is a promotion too: a second one undoes the first.
        again = run_job(warehouse, instance, action="rollback", reason="undo the rollback")
        assert again.success and by_status(warehouse)["champion"] == [challenger]
        runs = instance.get_runs(dg.RunsFilter(job_name="manual_promotion"))
        assert len(runs) == 3
    kinds = decisions(warehouse)["kind"].to_list()
    assert kinds == ["gate", "gate", "manual", "rollback", "rollback"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"action": "promote", "version": "gradient_boosting-1999", "reason": "r"}, "not in the"),
        ({"action": "promote", "version": "CHAMPION", "reason": "r"}, "is the champion already"),
        ({"action": "promote", "reason": "r"}, "promote needs the version"),
        ({"action": "promote", "version": "CHALLENGER", "reason": "   "}, "a reason is required"),
        ({"action": "rollback", "reason": "r"}, "the first champion: there is no previous"),
        ({"action": "rollback", "version": "CHALLENGER", "reason": "r"}, "takes no version"),
    ],
)
def test_refused_requests_fail_clearly_and_change_nothing(warehouse, config, message):
    before, decided = by_status(warehouse), decisions(warehouse)
    names = dict(zip(("CHAMPION", "CHALLENGER"), champion_and_other(warehouse), strict=True))
    config = {k: names.get(v, v) for k, v in config.items()}
    with dg.instance_for_test() as instance:
        description = failure(run_job(warehouse, instance, **config))
    assert description.startswith("champion unchanged: ") and message in description
    assert by_status(warehouse) == before
    assert decisions(warehouse).equals(decided)


def test_a_missing_reason_or_an_unknown_action_is_a_config_error(warehouse):
    with dg.instance_for_test() as instance:
        with pytest.raises(dg.DagsterInvalidConfigError, match='"reason"'):
            run_job(warehouse, instance, action="rollback")
        with pytest.raises(dg.DagsterInvalidConfigError, match="action"):
            run_job(warehouse, instance, action="demote", reason="r")


def test_a_tampered_artifact_is_never_promoted(warehouse):
    before = by_status(warehouse)
    _, challenger = champion_and_other(warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        artifact = Path(registry.version(connection, challenger).artifact_path)
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with dg.instance_for_test() as instance:
        description = failure(
            run_job(warehouse, instance, action="promote", version=challenger, reason="r")
        )
    assert "sha256" in description and by_status(warehouse) == before


def wait_for_model(server, version: str, seconds: float) -> dict | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        model = httpx.get(f"{server.url}/model").json()
        if model["version_id"] == version:
            return model
        time.sleep(0.05)
    return None


def test_the_api_follows_a_manual_promotion_and_a_rollback(warehouse, tmp_path):
    champion, challenger = champion_and_other(warehouse)
    server = start_server(warehouse, tmp_path / "server.log", refresh_seconds=REFRESH_SECONDS)
    try:
        assert httpx.get(f"{server.url}/model").json()["version_id"] == champion
        with dg.instance_for_test() as instance:
            reason = "manual promotion under test"
            assert run_job(
                warehouse, instance, action="promote", version=challenger, reason=reason
            ).success
            model = wait_for_model(server, challenger, REFRESH_SECONDS + LOAD_SECONDS)
            assert model is not None, server.log()
            assert model["promotion"]["kind"] == "manual"
            assert model["promotion"]["reason"] == reason
            assert model["promotion"]["decided_by"] == getpass.getuser()

            assert run_job(warehouse, instance, action="rollback", reason="back").success
            model = wait_for_model(server, champion, REFRESH_SECONDS + LOAD_SECONDS)
            assert model is not None, server.log()
            assert model["promotion"]["kind"] == "rollback"
            assert model["promotion"]["champion_version"] == challenger
    finally:
        server.stop()
    assert f"champion {challenger}" in server.log() and f"champion {champion}" in server.log()
