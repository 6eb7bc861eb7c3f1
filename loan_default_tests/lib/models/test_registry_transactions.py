"""A change of champion commits with its decision, or nothing does (`registry.apply_decision`):
on the embedded DuckDB file, a local DuckLake, and the production backend (DuckLake with its
catalog in a real PostgreSQL and its files on a real S3 server).

The failures are real ones, not mocks: a version id without a registry row, a version id on two
rows, a decision taken on a registry that changed since. Each is found only after the old
champion was retired inside the transaction, so only the rollback can restore it."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from loan_default.lib.models import registry
from loan_default.lib.storage.embedded_tables import EmbeddedTables
from loan_default.lib.storage.lake_tables import LakeTables
from loan_default.lib.storage.table_store import TableStore
from loan_default_tests.lib.models.test_model_building_blocks import record
from loan_default_tests.production_services import free_ports, running_services, services_folder


@pytest.fixture(scope="module")
def services():
    with services_folder() as folder, running_services(folder, *free_ports(2)) as running:
        yield running


@pytest.fixture(params=["embedded", "ducklake", "production"])
def store(request, tmp_path) -> Iterator[TableStore]:
    """An empty registry on each backend."""
    if request.param == "embedded":
        yield EmbeddedTables(tmp_path / "warehouse.duckdb")
        return
    if request.param == "ducklake":
        yield LakeTables(str(tmp_path / "catalog.ducklake"), str(tmp_path / "files") + "/")
        return
    lake = request.getfixturevalue("services").warehouse()
    with lake.connect() as connection:  # one catalog for the module: start each test empty
        for table in (registry.REGISTRY_TABLE, registry.DECISIONS_TABLE):
            connection.execute(f"drop table if exists {table}")
    yield lake


def decision(candidate: str, champion: str | None, promoted: bool = True, **changes) -> dict:
    return {
        "decided_at": datetime.now(UTC).replace(tzinfo=None),
        "candidate_version": candidate,
        "champion_version": champion,
        "window_name": "held_out_for_both",
        "promoted": promoted,
        "reason": f"test: {candidate} {'promoted' if promoted else 'refused'}",
        "kind": "gate",
        **changes,
    }


def with_champion(store: TableStore, folder: Path, *challengers: str) -> None:
    """v1 champion through a first gate decision, then the challengers registered."""
    with store.connect() as connection:
        registry.register(connection, record(folder, "v1", {"weights": [1]}))
        registry.apply_decision(connection, decision("v1", None))
        for number, version in enumerate(challengers, start=2):
            registry.register(connection, record(folder, version, {"weights": [number]}))


def statuses(store: TableStore) -> dict[str, str]:
    with store.connect() as connection:
        return {r.version_id: r.status for r in registry.all_versions(connection)}


def decided(store: TableStore) -> list[tuple]:
    with store.connect() as connection:
        frame = registry.decisions(connection)
    return list(frame.select("candidate_version", "promoted", "kind").iter_rows())


def test_a_promotion_retires_the_champion_and_records_why_and_who(store, tmp_path):
    with_champion(store, tmp_path, "v2")
    with store.connect() as connection:
        registry.apply_decision(connection, decision("v2", "v1"))
    assert statuses(store) == {"v1": "retired", "v2": "champion"}
    with store.connect(read_only=True) as connection:
        assert registry.champion_read_only(connection).version_id == "v2"
        promotion = registry.promotion_of(connection, "v2")
    assert promotion["kind"] == "gate" and promotion["reason"] == "test: v2 promoted"
    assert promotion["decided_by"] == getpass.getuser() and promotion["champion_version"] == "v1"


def test_a_promotion_failing_halfway_leaves_exactly_the_old_champion(store, tmp_path):
    """ "ghost" has no registry row: v1 is retired, then promoting ghost changes no row, and the
    rollback must bring v1 back and drop the decision row."""
    with_champion(store, tmp_path, "v2")
    before, decisions_before = statuses(store), decided(store)
    with store.connect() as connection:
        with pytest.raises(registry.PromotionError, match="ghost changed 0 registry rows"):
            registry.apply_decision(connection, decision("ghost", "v1"))
        # The same connection is usable afterwards: no transaction left open.
        assert registry.champion(connection).version_id == "v1"
    assert statuses(store) == before == {"v1": "champion", "v2": "challenger"}
    assert decided(store) == decisions_before == [("v1", True, "gate")]
    with store.connect(read_only=True) as connection:
        assert registry.champion_read_only(connection).version_id == "v1"
    with store.connect() as connection:  # and a good promotion still goes through
        registry.apply_decision(connection, decision("v2", "v1"))
    assert statuses(store) == {"v1": "retired", "v2": "champion"}


def test_a_version_on_two_rows_is_not_promoted(store, tmp_path):
    """DuckLake has no keys: a version id on two rows would make two champions."""
    with_champion(store, tmp_path, "v2")
    with store.connect() as connection:
        connection.execute(
            f"insert into {registry.REGISTRY_TABLE} select * from {registry.REGISTRY_TABLE} "
            "where version_id = 'v2'"
        )
        with pytest.raises(registry.PromotionError, match="v2 changed 2 registry rows"):
            registry.apply_decision(connection, decision("v2", "v1"))
        champions = connection.execute(
            f"select version_id from {registry.REGISTRY_TABLE} where status = 'champion'"
        ).fetchall()
    assert champions == [("v1",)]
    assert decided(store) == [("v1", True, "gate")]


def test_a_decision_on_a_stale_registry_is_refused(store, tmp_path):
    """The champion changed since the decision was taken (another gate run, an operator)."""
    with_champion(store, tmp_path, "v2")
    with store.connect() as connection:
        with pytest.raises(registry.PromotionError, match="stale"):
            registry.apply_decision(connection, decision("v2", "v0"))
        with pytest.raises(registry.PromotionError, match="stale"):
            registry.apply_decision(connection, decision("v2", None))
    assert statuses(store) == {"v1": "champion", "v2": "challenger"}
    assert decided(store) == [("v1", True, "gate")]


def test_a_refusal_is_recorded_and_changes_no_status(store, tmp_path):
    with_champion(store, tmp_path, "v2")
    with store.connect() as connection:
        registry.apply_decision(connection, decision("v2", "v1", promoted=False))
    assert statuses(store) == {"v1": "champion", "v2": "challenger"}
    assert decided(store) == [("v1", True, "gate"), ("v2", False, "gate")]


def test_two_champions_left_by_the_old_three_statements_become_one(store, tmp_path):
    with_champion(store, tmp_path, "v2", "v3")
    with store.connect() as connection:
        registry.set_status(connection, "v2", "champion")  # as a crash between them left it
        registry.apply_decision(
            connection, decision("v3", "v2", kind="manual", decided_by="risk officer")
        )
    assert statuses(store) == {"v1": "retired", "v2": "retired", "v3": "champion"}
    with store.connect() as connection:
        row = registry.decisions(connection).row(-1, named=True)
    assert (row["kind"], row["decided_by"]) == ("manual", "risk officer")


def test_a_malformed_decision_writes_nothing(store, tmp_path):
    with_champion(store, tmp_path, "v2")
    with store.connect() as connection:
        with pytest.raises(ValueError, match="kind must be one of"):
            registry.apply_decision(connection, decision("v2", "v1", kind="whim"))
        with pytest.raises(ValueError, match="needs a reason"):
            registry.apply_decision(connection, decision("v2", "v1", reason="  "))
    assert statuses(store) == {"v1": "champion", "v2": "challenger"}
    assert decided(store) == [("v1", True, "gate")]


def test_decisions_written_before_kind_existed_are_the_gates(tmp_path):
    """An older warehouse's decisions table gains kind and decided_by in place."""
    database = tmp_path / "old.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema models")
        connection.execute(
            f"create table {registry.DECISIONS_TABLE} (decided_at timestamp, "
            "candidate_version varchar, champion_version varchar, window_name varchar, "
            "candidate_auc double, champion_auc double, margin double, promoted boolean, "
            "reason varchar)"
        )
        connection.execute(
            f"insert into {registry.DECISIONS_TABLE} values "
            "('2026-01-01', 'v1', null, 'validation', null, null, 0.005, true, 'first')"
        )
        frame = registry.decisions(connection)
    assert frame.select("kind", "decided_by").rows() == [("gate", None)]
