"""The model registry: one row per trained version in the warehouse, artifacts on disk.

An artifact is loaded only when its sha256 matches the registry row, so a model file that was
replaced or corrupted after training can never score applications. A change of champion is one
transaction with the decision that made it (`apply_decision`), so the registry never has two
champions, or none, and never a champion without the decision that explains it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import pickle
import subprocess
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from loan_default.lib.storage import object_storage
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.warehouse import table_columns, table_exists

REGISTRY_TABLE = "models.registry"
DECISIONS_TABLE = "models.promotion_decisions"
STATUSES = ("champion", "challenger", "retired")
RETRAIN_AFTER_ALERT = "retrain-after-alert"
REASONS = ("initial", "scheduled", RETRAIN_AFTER_ALERT)
# Who made a decision: the gate (models/champion), an operator naming a version (the
# manual_promotion job), or an operator restoring the previous champion (its rollback).
DECISION_KINDS = ("gate", "manual", "rollback")


class ArtifactIntegrityError(RuntimeError):
    """The artifact on disk is not the one the registry recorded."""


class PromotionError(RuntimeError):
    """A decision that cannot be applied as it stands; nothing of it was written."""


@dataclass
class RegistryRecord:
    family: str
    version_id: str
    trained_at: datetime
    as_of_month: date
    windows: dict
    hyperparameters: dict
    features: list[str]
    metrics: dict
    threshold: float
    artifact_path: str
    artifact_sha256: str
    input_data_version: str
    code_version: str
    status: str
    reason_trained: str
    train_seconds: float
    reason_detail: str | None = None  # e.g. the failed check that asked for this retrain
    label_def: str | None = None  # the label it learned, e.g. 30dpd_6mob
    # Its model document (HTML) and when it was written: rewritten after every gate decision
    # about the version (lib/models/model_document.py).
    document_path: str | None = None
    document_written_at: datetime | None = None


def save_artifact(
    model: object, directory: str | Path, version_id: str, s3: S3Endpoint | None = None
) -> tuple[str, str]:
    """Writes the pickled model to `<directory>/<version_id>.pkl` (a folder or an s3://
    prefix); returns its location and the sha256 the registry records."""
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    location = object_storage.join(str(directory), f"{version_id}.pkl")
    object_storage.write_bytes(location, data, s3)
    return location, hashlib.sha256(data).hexdigest()


def verified_artifact_bytes(record: RegistryRecord, s3: S3Endpoint | None = None) -> bytes:
    """The artifact's bytes, once their sha256 matched the registry row: a promotion checks
    this first, so it never names a champion the API would refuse to load."""
    location = record.artifact_path
    try:
        data = object_storage.read_bytes(location, s3)
    except FileNotFoundError as error:
        raise ArtifactIntegrityError(
            f"artifact of {record.version_id} missing at {location}"
        ) from error
    actual = hashlib.sha256(data).hexdigest()
    if actual != record.artifact_sha256:
        raise ArtifactIntegrityError(
            f"artifact of {record.version_id} at {location} has sha256 {actual}, but the "
            f"registry recorded {record.artifact_sha256}: refusing to load it"
        )
    return data


def load_artifact(record: RegistryRecord, s3: S3Endpoint | None = None) -> object:
    data = verified_artifact_bytes(record, s3)
    return pickle.loads(data)  # noqa: S301  (only after the sha256 matched the registry)


def code_version() -> str:
    """The git commit the code runs from, or 'unknown' outside a checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


_JSON_FIELDS = ("windows", "hyperparameters", "features", "metrics")
REGISTRY_ADDED_COLUMNS = {
    "reason_detail": "varchar",
    "label_def": "varchar",
    "document_path": "varchar",
    "document_written_at": "timestamp",
}
DECISION_EVIDENCE = {
    "window_months": "varchar",
    "n": "integer",
    "auc_difference": "double",
    "difference_low": "double",
    "difference_high": "double",
    "min_loans": "integer",  # the former rule's minimum; null for decisions by GateRule
    "lower_bound": "double",  # the one-sided lower bound judged against the margin
    "confidence": "double",
}
# Who decided, and how (DECISION_KINDS). Rows written before these columns existed were all
# the gate's, and say so once the columns are added.
DECISION_AUTHORSHIP = {
    "kind": "varchar",
    "decided_by": "varchar",
}


def _ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Creates the registry's tables, or adds the columns an older registry lacks. Changes the
    catalog only when something is missing: on DuckLake every DDL statement is a snapshot, and
    the registry is read far more often than it changes. No key constraints (DuckLake has none):
    `register` keeps version ids unique."""
    if not table_exists(connection, REGISTRY_TABLE):
        connection.execute("create schema if not exists models")
        connection.execute(
            f"""create table if not exists {REGISTRY_TABLE} (
                family varchar, version_id varchar, trained_at timestamp,
                as_of_month date, windows json, hyperparameters json, features json,
                metrics json, threshold double, artifact_path varchar, artifact_sha256 varchar,
                input_data_version varchar, code_version varchar, status varchar,
                reason_trained varchar, train_seconds double, reason_detail varchar,
                label_def varchar, document_path varchar, document_written_at timestamp)"""
        )
    if not table_exists(connection, DECISIONS_TABLE):
        connection.execute(
            f"""create table if not exists {DECISIONS_TABLE} (
                decided_at timestamp, candidate_version varchar, champion_version varchar,
                window_name varchar, candidate_auc double, champion_auc double, margin double,
                promoted boolean, reason varchar)"""
        )
    # Registries written before these columns existed gain them in place; so does the
    # evidence of each decision (the months compared, n, the paired difference, its interval).
    for table, added in (
        (REGISTRY_TABLE, REGISTRY_ADDED_COLUMNS),
        (DECISIONS_TABLE, {**DECISION_EVIDENCE, **DECISION_AUTHORSHIP}),
    ):
        present = {name for name, _ in table_columns(connection, table)}
        for column, kind in added.items():
            if column not in present:
                connection.execute(f"alter table {table} add column {column} {kind}")
                if table == DECISIONS_TABLE and column == "kind":
                    connection.execute(f"update {table} set kind = 'gate' where kind is null")


def register(connection: duckdb.DuckDBPyConnection, record: RegistryRecord) -> None:
    _ensure_tables(connection)
    taken = connection.execute(
        f"select count(*) from {REGISTRY_TABLE} where version_id = ?", [record.version_id]
    ).fetchone()[0]
    if taken:
        raise ValueError(f"version {record.version_id} is registered already")
    row = asdict(record)
    for name in _JSON_FIELDS:
        row[name] = json.dumps(row[name], default=str)
    connection.execute(
        f"insert into {REGISTRY_TABLE} ({', '.join(row)}) values ({', '.join('?' for _ in row)})",
        list(row.values()),
    )


def _records(connection: duckdb.DuckDBPyConnection, where: str, params: list) -> list:
    _ensure_tables(connection)
    frame = connection.execute(
        f"select * from {REGISTRY_TABLE} {where} order by trained_at, version_id", params
    ).pl()
    records = []
    for row in frame.iter_rows(named=True):
        for name in _JSON_FIELDS:
            row[name] = json.loads(row[name])
        records.append(RegistryRecord(**row))
    return records


def all_versions(connection: duckdb.DuckDBPyConnection) -> list[RegistryRecord]:
    return _records(connection, "", [])


def latest_versions(connection: duckdb.DuckDBPyConnection) -> dict[str, RegistryRecord]:
    """The newest version of each family."""
    return {r.family: r for r in _records(connection, "", [])}


def champion(connection: duckdb.DuckDBPyConnection) -> RegistryRecord | None:
    found = _records(connection, "where status = 'champion'", [])
    return found[-1] if found else None


def version(connection: duckdb.DuckDBPyConnection, version_id: str) -> RegistryRecord | None:
    """The registry row of `version_id`, or None when no such version was registered."""
    found = _records(connection, "where version_id = ?", [version_id])
    return found[-1] if found else None


def set_status(connection: duckdb.DuckDBPyConnection, version_id: str, status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    connection.execute(
        f"update {REGISTRY_TABLE} set status = ? where version_id = ?", [status, version_id]
    )


def set_document(
    connection: duckdb.DuckDBPyConnection, version_id: str, path: str, written_at: datetime
) -> None:
    """Links a version's row to its model document."""
    _ensure_tables(connection)
    connection.execute(
        f"update {REGISTRY_TABLE} set document_path = ?, document_written_at = ? "
        "where version_id = ?",
        [path, written_at, version_id],
    )


def record_decision(connection: duckdb.DuckDBPyConnection, decision: dict) -> None:
    """Inserts a decision row and nothing else: a decision that promotes goes through
    `apply_decision`, which changes the champion in the same transaction."""
    _ensure_tables(connection)
    _insert_decision(connection, decision)


def _insert_decision(connection: duckdb.DuckDBPyConnection, decision: dict) -> None:
    connection.execute(
        f"insert into {DECISIONS_TABLE} ({', '.join(decision)}) values "
        f"({', '.join('?' for _ in decision)})",
        list(decision.values()),
    )


def current_user() -> str:
    """Who runs this process, for `decided_by`: the OS user, or the uid where it has no name
    (a container's arbitrary uid)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def _decision_with_author(decision: dict) -> dict:
    """The decision row with its kind checked and `decided_by` filled in."""
    kind = decision.get("kind")
    if kind not in DECISION_KINDS:
        raise ValueError(f"decision kind must be one of {DECISION_KINDS}, got {kind!r}")
    if not str(decision.get("reason") or "").strip():
        raise ValueError("a decision needs a reason")
    if not decision.get("candidate_version"):
        raise ValueError("a decision needs its candidate_version")
    return {**decision, "decided_by": decision.get("decided_by") or current_user()}


def _champions(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        f"select version_id from {REGISTRY_TABLE} where status = 'champion' order by version_id"
    ).fetchall()
    return [row[0] for row in rows]


def _count(result: duckdb.DuckDBPyConnection) -> int:
    """Rows an update changed (DuckDB and DuckLake both return the count)."""
    return result.fetchone()[0]


def apply_decision(connection: duckdb.DuckDBPyConnection, decision: dict) -> None:
    """Records a decision (a row of models.promotion_decisions: `kind` one of DECISION_KINDS,
    `reason`, `decided_by`, by default the OS user) and, when `decision["promoted"]`, makes
    `decision["candidate_version"]` the one champion: every champion retired, the candidate
    promoted, all in one transaction.

    Inside it, before anything is committed: the champion must still be the one the decision
    replaces (`champion_version`, None for the first), exactly one row must be promoted and
    exactly one champion must remain; otherwise PromotionError, and the rollback leaves the
    registry and the decisions as they were. A crash at any point has the same effect. Works on
    the DuckDB file and on DuckLake, where the commit is one catalog snapshot.
    """
    row = _decision_with_author(decision)
    _ensure_tables(connection)  # DDL, if any, before the transaction: a snapshot of its own
    connection.begin()
    try:
        if row.get("promoted"):
            before = _champions(connection)
            replaced = row.get("champion_version")
            if (replaced is None and before) or (replaced is not None and replaced not in before):
                raise PromotionError(
                    f"the decision replaces champion {replaced or 'none'}, but the registry's "
                    f"champion is {', '.join(before) or 'none'}: decided on a stale registry, "
                    "decide again"
                )
        _insert_decision(connection, row)
        if row.get("promoted"):
            _promote(connection, row["candidate_version"])
        connection.commit()
    except BaseException:
        with suppress(duckdb.TransactionException):  # a failed commit has already rolled back
            connection.rollback()
        raise


def _promote(connection: duckdb.DuckDBPyConnection, version_id: str) -> None:
    """Inside apply_decision's transaction: the champion(s) retired, then `version_id`."""
    connection.execute(f"update {REGISTRY_TABLE} set status = 'retired' where status = 'champion'")
    promoted = _count(
        connection.execute(
            f"update {REGISTRY_TABLE} set status = 'champion' where version_id = ?", [version_id]
        )
    )
    if promoted != 1:
        raise PromotionError(
            f"promoting {version_id} changed {promoted} registry rows, not exactly one: "
            "nothing was changed"
        )
    champions = _champions(connection)
    if champions != [version_id]:
        raise PromotionError(
            f"after promoting {version_id} the champions would be {champions}: nothing was changed"
        )


def decisions(connection: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    _ensure_tables(connection)
    return connection.execute(f"select * from {DECISIONS_TABLE} order by decided_at").pl()


def champion_read_only(connection: duckdb.DuckDBPyConnection) -> RegistryRecord | None:
    """The champion through a read-only connection, which cannot create the registry tables.

    Serving reads the warehouse read-only so it never takes the pipeline's write lock; a
    warehouse without a registry yet simply has no champion.
    """
    if not table_exists(connection, REGISTRY_TABLE):
        return None
    frame = connection.execute(
        f"select * from {REGISTRY_TABLE} where status = 'champion' "
        "order by trained_at desc, version_id desc limit 1"
    ).pl()
    if frame.is_empty():
        return None
    row = frame.row(0, named=True)
    for name in _JSON_FIELDS:
        row[name] = json.loads(row[name])
    return RegistryRecord(**row)


def promotion_of(connection: duckdb.DuckDBPyConnection, version_id: str) -> dict | None:
    """The gate decision that promoted `version_id`, if any (read-only safe)."""
    if not table_exists(connection, DECISIONS_TABLE):
        return None
    frame = connection.execute(
        f"select * from {DECISIONS_TABLE} where candidate_version = ? and promoted "
        "order by decided_at desc limit 1",
        [version_id],
    ).pl()
    return None if frame.is_empty() else frame.row(0, named=True)
