"""The `manual_promotion` job, run for real: the gate asset (`models/champion`) with an
operator's config, then predictions, monitoring and the model documents in the same run. A
Dagster instance, a DuckDB warehouse whose registry holds real trained versions (two cheap
families on a small synthetic loan book, judged by the real gate, every month scored once), and
the real scoring API following the registry's champion."""

from __future__ import annotations

import functools
import getpass
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import polars as pl
import pytest

from loan_default.definitions import defs as load_definitions
from loan_default.defs.models.config import FAMILY_CONFIGS, ChampionConfig
from loan_default.lib.models import registry
from loan_default.lib.models.served_decisions import SERVED_TABLE
from loan_default.lib.synthetic import generate
from loan_default_tests.conftest import (
    build_once,
    materialize_months,
    project_assets,
    project_resources,
    range_tags,
    shared_folder,
)
from loan_default_tests.serving.conftest import copy_warehouse
from loan_default_tests.serving.server import start_server

FAMILIES = ("logistic_regression", "scorecard")
STEP = "models__champion"
CHAMPION = dg.AssetKey(["models", "champion"])
PREDICTIONS = dg.AssetKey(["models", "predictions"])
# What follows the change of champion in the same run (the gate's follow-ups).
FOLLOW_UPS = {
    PREDICTIONS,
    dg.AssetKey(["models", "model_document"]),
    *(
        dg.AssetKey(["monitoring", name])
        for name in (
            "drift",
            "estimated_performance",
            "model_performance",
            "fairness",
            "monitoring_report",
        )
    ),
}
# Months up to the labels of the reference windows' OOT month (2024-05 + 6): all the two
# families and the gate read.
MONTHS = ("2023-01-01", "2024-11-01")
REFRESH_SECONDS = 1.0
# Loading a new champion's artifact and explaining the reference applicant once, after the
# check that finds it: allowed on top of the refresh interval.
LOAD_SECONDS = 5.0


def _train(folder: Path) -> None:
    generate(folder / "raw", loans=2_000, seed=3)
    database = folder / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        assert materialize_months(folder / "raw", database, instance, MONTHS).success
        result = dg.materialize(
            project_assets(),
            selection=dg.AssetSelection.assets(
                *(["models", f] for f in FAMILIES), CHAMPION, PREDICTIONS
            ),
            instance=instance,
            resources=project_resources(folder / "raw", database),
            run_config=dg.RunConfig(
                {f"models__{f}": FAMILY_CONFIGS[f](window_mode="absolute") for f in FAMILIES}
            ),
            tags=range_tags(MONTHS),
        )
    assert result.success


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A warehouse with two real versions judged by the gate: the first became champion, the
    second was refused; every month of MONTHS scored (predictions and served decisions). Built
    once per test session; each xdist worker gets its own copy. Never mutated: copy it."""
    built = build_once(shared_folder(tmp_path_factory, "manual_promotion"), _train)
    return copy_warehouse(built / "warehouse.duckdb", tmp_path_factory.mktemp("trained"))


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


def by_family(database: Path) -> dict[str, str]:
    with duckdb.connect(str(database)) as connection:
        return {v.version_id: v.family for v in registry.all_versions(connection)}


def champion_and_other(database: Path) -> tuple[str, str]:
    status = by_status(database)
    [champion] = status.pop("champion")
    [other] = [v for versions in status.values() for v in versions]
    return champion, other


def decisions(database: Path) -> pl.DataFrame:
    with duckdb.connect(str(database)) as connection:
        return registry.decisions(connection)


def table(database: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(f"select * from {name} order by all").pl()


def champion_rows(database: Path) -> pl.DataFrame:
    rows = table(database, "models.predictions").filter(pl.col("is_champion"))
    return rows.sort("application_month", "loan_id")


@functools.cache
def manual_promotion() -> dg.JobDefinition:
    return load_definitions().resolve_job_def("manual_promotion")


def run_job(
    database: Path, instance: dg.DagsterInstance, months=MONTHS, **config
) -> dg.ExecuteInProcessResult:
    """One run of the job over `months`, as `make promote` / `make rollback` do."""
    return manual_promotion().execute_in_process(
        run_config={"ops": {STEP: {"config": config}}},
        instance=instance,
        resources=project_resources(database.parent / "raw", database),
        tags=range_tags(months),
        raise_on_error=False,
    )


def champion_metadata(result: dg.ExecuteInProcessResult) -> dict:
    """The champion materialization's metadata, as the asset's page shows it."""
    [materialization] = result.asset_materializations_for_node(STEP)
    assert materialization.asset_key == CHAMPION
    return {key: value.value for key, value in materialization.metadata.items()}


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {
        e.event_specific_data.materialization.asset_key
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    }


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


def test_the_job_is_the_gate_with_its_follow_ups():
    definitions = load_definitions()
    job = definitions.resolve_job_def("manual_promotion")
    assert job.asset_layer.selected_asset_keys == {CHAMPION, *FOLLOW_UPS}
    gate = definitions.resolve_job_def("champion_gate")
    assert job.asset_layer.selected_asset_keys == gate.asset_layer.selected_asset_keys
    assert job.partitions_def == gate.partitions_def
    # The gate's own jobs (retrain, champion_gate) run the gate: the action defaults to it.
    assert ChampionConfig().action == "gate" and ChampionConfig().ignored() == []


def test_promote_then_rollback(warehouse):
    champion, challenger = champion_and_other(warehouse)
    scored, served = champion_rows(warehouse), table(warehouse, SERVED_TABLE)
    assert set(scored["model_version"]) == {champion} and served.height == scored.height
    months = {date.fromisoformat(m) for m in MONTHS}
    assert {min(scored["application_month"]), max(scored["application_month"])} == months
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        [(labels_through,)] = connection.execute(
            "select max(label_month) from gold.label_store"
        ).fetchall()
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
        assert by_status(warehouse) == {"champion": [challenger], "retired": [champion]}
        row = decisions(warehouse).row(-1, named=True)
        assert row["kind"] == "manual" and row["decided_by"] == "risk officer"
        assert row["reason"] == "INC-123: the champion over-declines thin-file applicants"
        assert (row["candidate_version"], row["champion_version"]) == (challenger, champion)
        assert row["promoted"]

        # The change shows on the champion asset's page: the gate's keys and the operator's.
        meta = champion_metadata(promoted)
        assert (meta["champion_version"], meta["replaced_version"]) == (challenger, champion)
        assert meta["champion_family"] == by_family(warehouse)[challenger]
        assert (meta["kind"], meta["decided_by"]) == ("manual", "risk officer")
        assert meta["reason"] == row["reason"]
        assert meta["pending_challengers"] == []
        assert meta["labels_through"] == labels_through.isoformat()
        assert challenger in meta["decisions"] and "manual" in meta["decisions"]

        # The same run re-scored and re-monitored the months and wrote the documents: the
        # predictions name the new champion on every application, once each.
        assert materialized(promoted) == {CHAMPION, *FOLLOW_UPS}
        now = champion_rows(warehouse)
        assert set(now["model_version"]) == {challenger}
        assert now.select("loan_id", "application_month").equals(
            scored.select("loan_id", "application_month")
        )
        # What applicants were told before is history: the served decisions stay the old
        # champion's, row for row.
        assert table(warehouse, SERVED_TABLE).equals(served)
        assert set(served["model_version"]) == {champion}
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            document = registry.version(connection, challenger).document_path
        assert document is not None and Path(document).is_file()
        assert challenger in Path(document).read_text()

        rolled_back = run_job(warehouse, instance, action="rollback", reason="INC-123 resolved")
        assert rolled_back.success
        assert champion_metadata(rolled_back)["champion_version"] == champion
        assert by_status(warehouse) == {"champion": [champion], "retired": [challenger]}
        assert set(champion_rows(warehouse)["model_version"]) == {champion}
        assert table(warehouse, SERVED_TABLE).equals(served)
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
        ({"action": "rollback"}, "a reason is required"),
        # A launchpad with the operator's fields but the action left at its default: the gate
        # would run instead of the promotion asked for.
        ({"version": "CHALLENGER", "reason": "r"}, "'gate' does not read version, reason"),
        ({"action": "promote", "version": "CHALLENGER", "reason": "r", "margin": 0.1}, "margin"),
    ],
)
def test_refused_requests_fail_clearly_and_change_nothing(warehouse, config, message):
    before, decided = by_status(warehouse), decisions(warehouse)
    scored = table(warehouse, "models.predictions")
    names = dict(zip(("CHAMPION", "CHALLENGER"), champion_and_other(warehouse), strict=True))
    config = {k: names.get(v, v) for k, v in config.items()}
    with dg.instance_for_test() as instance:
        result = run_job(warehouse, instance, **config)
        description = failure(result)
    assert description.startswith("champion unchanged: ") and message in description
    assert by_status(warehouse) == before
    assert decisions(warehouse).equals(decided)
    # Nothing downstream ran on the refused request.
    assert materialized(result) == set()
    assert table(warehouse, "models.predictions").equals(scored)


def test_a_run_without_months_is_refused_before_the_champion_changes(warehouse):
    """Without months the predictions step cannot run: the champion must not change alone."""
    before, decided = by_status(warehouse), decisions(warehouse)
    _, challenger = champion_and_other(warehouse)
    with dg.instance_for_test() as instance:
        result = run_job(
            warehouse, instance, months=None, action="promote", version=challenger, reason="r"
        )
        description = failure(result)
    assert description.startswith("champion unchanged: ") and "names no months" in description
    assert by_status(warehouse) == before and decisions(warehouse).equals(decided)
    assert materialized(result) == set()


def test_an_unknown_action_is_a_config_error(warehouse):
    with (
        dg.instance_for_test() as instance,
        pytest.raises(dg.DagsterInvalidConfigError, match="action"),
    ):
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
