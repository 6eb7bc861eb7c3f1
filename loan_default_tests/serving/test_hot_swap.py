"""Hot swap: a promotion in the registry reaches a running server with no failed request."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import duckdb
import httpx
import pytest

from loan_default.lib.models import registry
from loan_default.serving.model_holder import ChampionHolder
from loan_default.serving.schemas import EXAMPLE_APPLICATION
from loan_default_tests.serving.conftest import copy_warehouse, versions

CLIENTS = 3


def connect_for_writing(database, seconds: float = 30) -> duckdb.DuckDBPyConnection:
    """A write connection, retried while the server's brief read-only check holds the file, as
    Dagster's DuckDB resource retries it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return duckdb.connect(str(database))
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def promote(database, version: registry.RegistryRecord, hold_seconds: float) -> None:
    """An operator's promotion, keeping the write lock a while as a pipeline run would."""
    with connect_for_writing(database) as connection:
        current = registry.champion(connection)
        registry.set_status(connection, current.version_id, "retired")
        registry.set_status(connection, version.version_id, "champion")
        registry.record_decision(
            connection,
            {
                "decided_at": datetime.now(UTC).replace(tzinfo=None),
                "candidate_version": version.version_id,
                "champion_version": current.version_id,
                "window_name": "validation",
                "candidate_auc": None,
                "champion_auc": None,
                "margin": 0.0,
                "promoted": True,
                "reason": "manual promotion (test)",
            },
        )
        time.sleep(hold_seconds)


def wait_for(predicate, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def served_version(server) -> str:
    return httpx.get(f"{server.url}/health").json()["model_version"]


@pytest.mark.parametrize("promoted", ["logistic_regression", "scorecard"])
def test_promotion_is_served_without_a_failed_request(
    trained_warehouse, tmp_path, server_factory, promoted
):
    database = copy_warehouse(trained_warehouse, tmp_path / "swap")
    old, new = (versions(database)[f] for f in ("gradient_boosting", promoted))
    server = server_factory(database, refresh_seconds=0.2)
    assert served_version(server) == old.version_id

    stop = threading.Event()
    seen: list[list[tuple[int, str | None]]] = [[] for _ in range(CLIENTS)]

    def client(results: list) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                try:
                    response = http.post("/predict", json=EXAMPLE_APPLICATION)
                    version = response.json().get("model_version")
                    results.append((response.status_code, version))
                except httpx.HTTPError as error:
                    results.append((0, repr(error)))

    threads = [threading.Thread(target=client, args=(s,)) for s in seen]
    for thread in threads:
        thread.start()
    try:
        assert wait_for(lambda: all(len(s) >= 5 for s in seen))
        # While the write lock is held the server cannot read the registry: it keeps serving.
        holder = threading.Thread(target=promote, args=(database, new, 2.0))
        holder.start()
        assert wait_for(
            lambda: (
                "lock" in (httpx.get(f"{server.url}/health").json()["last_registry_error"] or "")
            ),
            10,
        )
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "ok" and health["model_version"] == old.version_id
        holder.join()
        assert wait_for(lambda: served_version(server) == new.version_id)
        counts = [len(s) for s in seen]
        assert wait_for(lambda: all(len(s) >= c + 5 for s, c in zip(seen, counts, strict=True)))
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    every = [result for results in seen for result in results]
    assert len(every) > 50
    assert {status for status, _ in every} == {200}, [r for r in every if r[0] != 200][:5]
    assert {version for _, version in every} == {old.version_id, new.version_id}
    for results in seen:  # each client, sending one request after another, never goes back
        versions_in_order = [version for _, version in results]
        first_new = versions_in_order.index(new.version_id)
        assert set(versions_in_order[first_new:]) == {new.version_id}
    model = httpx.get(f"{server.url}/model").json()
    assert model["version_id"] == new.version_id and model["family"] == promoted
    assert model["promotion"]["reason"] == "manual promotion (test)"
    assert f"champion {new.version_id} ({promoted}) loaded" in server.log()
    scored = httpx.post(f"{server.url}/predict", json=EXAMPLE_APPLICATION).json()
    assert scored["model_family"] == promoted and 0 < scored["calibrated_probability"] < 1


def test_the_registry_is_read_again_only_after_a_commit(trained_warehouse, tmp_path):
    database = copy_warehouse(trained_warehouse, tmp_path / "stamp")
    old, new = (versions(database)[f] for f in ("gradient_boosting", "logistic_regression"))
    holder = ChampionHolder(database)
    assert holder.refresh() and holder.registry_reads == 1
    assert not holder.refresh() and not holder.refresh()
    assert holder.registry_reads == 1 and holder.current.record.version_id == old.version_id

    promote(database, new, 0)
    assert holder.refresh() and holder.registry_reads == 2
    assert holder.current.record.version_id == new.version_id
    assert not holder.refresh() and holder.registry_reads == 2

    with duckdb.connect(str(database)) as connection:  # a commit that leaves the champion alone
        connection.execute("create table unrelated as select 1 as x")
    assert not holder.refresh() and holder.registry_reads == 3
    assert holder.current.record.version_id == new.version_id and holder.last_error is None


def test_a_tampered_artifact_is_never_served(trained_warehouse, tmp_path, server_factory):
    database = copy_warehouse(trained_warehouse, tmp_path / "tamper")
    old, new = (versions(database)[f] for f in ("gradient_boosting", "logistic_regression"))
    artifact = tmp_path / "tamper" / "artifacts" / "logistic_regression"
    (path,) = artifact.glob("*.pkl")
    original = path.read_bytes()
    path.write_bytes(original + b"tampered")
    server = server_factory(database, refresh_seconds=0.2)
    promote(database, new, 0)

    assert wait_for(
        lambda: "sha256" in (httpx.get(f"{server.url}/health").json()["last_registry_error"] or ""),
        10,
    )
    response = httpx.post(f"{server.url}/predict", json=EXAMPLE_APPLICATION)
    assert response.status_code == 200
    assert response.json()["model_version"] == old.version_id

    path.write_bytes(original)  # the right file again: now it loads
    assert wait_for(lambda: served_version(server) == new.version_id)
    assert httpx.get(f"{server.url}/health").json()["last_registry_error"] is None


def test_no_champion_means_503_not_a_crash(tmp_path, server_factory):
    server = server_factory(tmp_path / "missing.duckdb", ready_status=503)
    health = httpx.get(f"{server.url}/health")
    assert health.status_code == 503 and health.json()["status"] == "no_model"
    assert "no warehouse" in health.json()["last_registry_error"]
    response = httpx.post(f"{server.url}/predict", json=EXAMPLE_APPLICATION)
    assert response.status_code == 503
    assert httpx.get(f"{server.url}/model").status_code == 503
