"""Decisions already served are history: the first champion decision on an application stays.

`models.predictions` holds every scored version's view of a month and is rewritten whenever
the month is scored again (a new version, a champion change), so monitoring judges the model
that serves now. `models.served_decisions` holds what an applicant was actually told: the
champion's decision when the application was first scored. A later run keeps those rows as
they are and adds only applications that have none.
"""

from __future__ import annotations

import polars as pl

SERVED_TABLE = "models.served_decisions"
SERVED_COLUMNS = (
    "loan_id",
    "application_month",
    "model_family",
    "model_version",
    "probability",
    "calibrated_probability",
    "decision",
    "reason_codes",
    "reason_catalogue_version",
    "served_at",
)


def served_decisions(existing: pl.DataFrame | None, champion_scores: pl.DataFrame) -> pl.DataFrame:
    """The served rows of a month: those recorded before, unchanged, then the champion's
    decisions on applications not served yet."""
    fresh = champion_scores.rename({"scored_at": "served_at"}).select(SERVED_COLUMNS)
    if existing is None or existing.is_empty():
        return fresh
    kept = existing.select(SERVED_COLUMNS).cast(fresh.schema)
    return pl.concat([kept, fresh.join(kept.select("loan_id"), on="loan_id", how="anti")])
