"""An operator's change of champion: promote a named version, or roll back to the previous one.

The gate (models/champion) decides on evidence; an operator sometimes must decide without it
(an incident, a regulator's request, a bad promotion). Such a decision is still a row of
models.promotion_decisions, with its kind ('manual' or 'rollback'), its reason and who made it,
and it changes the champion through the same transaction as the gate's
(`registry.apply_decision`). This module checks the request and builds that row; it reads the
registry but writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import polars as pl

from loan_default.lib.models import registry
from loan_default.lib.models.families import FAMILIES

ACTIONS = ("promote", "rollback")


class ManualPromotionError(ValueError):
    """A request that cannot be carried out as asked; the registry is left as it was."""


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ManualPromotionError(
            "a reason is required: say why the champion changes (it is kept with the decision)"
        )
    return text


def _promotable(connection: duckdb.DuckDBPyConnection, version_id: str) -> registry.RegistryRecord:
    """The version's registry row, if it exists and is of a family this code declares."""
    record = registry.version(connection, version_id)
    if record is None:
        raise ManualPromotionError(f"version {version_id!r} is not in the registry")
    if record.family not in FAMILIES:
        raise ManualPromotionError(
            f"version {version_id} is of family {record.family!r}, which this code does not "
            f"declare ({', '.join(FAMILIES)}): the API could not serve it"
        )
    return record


def rollback_target(decisions: pl.DataFrame, champion: str | None) -> str:
    """The version the most recent promotion replaced, given every decision row and the current
    champion. That promotion must be the one that made today's champion; a rollback is itself a
    promotion, so a second rollback undoes the first."""
    promotions = decisions.filter(pl.col("promoted").fill_null(False))
    if promotions.is_empty():
        raise ManualPromotionError("no promotion is recorded: there is nothing to roll back")
    latest = promotions.sort("decided_at", maintain_order=True).row(-1, named=True)
    if champion is None:
        raise ManualPromotionError("the registry has no champion: promote a version by name")
    if latest["candidate_version"] != champion:
        raise ManualPromotionError(
            f"the most recent promotion ({latest['decided_at']}) made "
            f"{latest['candidate_version']} champion, but the champion is {champion}: the "
            "registry changed outside a decision; promote a version by name"
        )
    if latest["champion_version"] is None:
        raise ManualPromotionError(
            f"{champion} was the first champion: there is no previous champion to roll back to"
        )
    return latest["champion_version"]


def _decision(
    kind: str,
    candidate: str,
    current: registry.RegistryRecord | None,
    reason: str,
    decided_by: str | None,
    decided_at: datetime | None,
) -> dict:
    """A decision row without the gate's evidence: an operator's reason instead."""
    return {
        "decided_at": decided_at or datetime.now(UTC).replace(tzinfo=None),
        "candidate_version": candidate,
        "champion_version": current.version_id if current else None,
        "window_name": None,
        "promoted": True,
        "reason": reason,
        "kind": kind,
        "decided_by": (decided_by or "").strip() or registry.current_user(),
    }


def promotion_decision(
    connection: duckdb.DuckDBPyConnection,
    version_id: str | None,
    reason: str | None,
    decided_by: str | None = None,
    decided_at: datetime | None = None,
) -> dict:
    """The 'manual' decision making `version_id` champion; refused when the version is not
    registered, of an undeclared family, or champion already."""
    reason = _reason(reason)
    if not (version_id or "").strip():
        raise ManualPromotionError("promote needs the version to promote (`version`)")
    record = _promotable(connection, version_id.strip())
    current = registry.champion(connection)
    if current is not None and current.version_id == record.version_id:
        raise ManualPromotionError(f"{record.version_id} is the champion already")
    return _decision("manual", record.version_id, current, reason, decided_by, decided_at)


def rollback_decision(
    connection: duckdb.DuckDBPyConnection,
    reason: str | None,
    decided_by: str | None = None,
    decided_at: datetime | None = None,
) -> dict:
    """The 'rollback' decision making the previous champion champion again."""
    reason = _reason(reason)
    current = registry.champion(connection)
    target = rollback_target(
        registry.decisions(connection), current.version_id if current else None
    )
    record = _promotable(connection, target)
    return _decision("rollback", record.version_id, current, reason, decided_by, decided_at)


def decision_for(
    connection: duckdb.DuckDBPyConnection,
    action: str,
    version_id: str | None,
    reason: str | None,
    decided_by: str | None = None,
) -> dict:
    """The decision an operator's request asks for (`action` one of ACTIONS)."""
    if action == "promote":
        return promotion_decision(connection, version_id, reason, decided_by)
    if action == "rollback":
        if version_id:
            raise ManualPromotionError(
                "rollback restores the previous champion and takes no version: to make "
                f"{version_id} champion, promote it"
            )
        return rollback_decision(connection, reason, decided_by)
    raise ManualPromotionError(f"action must be one of {ACTIONS}, got {action!r}")
