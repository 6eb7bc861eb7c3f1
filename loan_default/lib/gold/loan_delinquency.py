"""Days past due from the monthly loan snapshot (the course definition)."""

from __future__ import annotations

from typing import TypeVar

import polars as pl

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def _delinquency_columns() -> dict[str, pl.Expr]:
    """installments_missed = ceil(overdue / due) when due > 0; the first missed payment lies that
    many months before the snapshot; dpd counts the days since then while anything is overdue.
    """
    missed = (
        pl.when(pl.col("due_amt") > 0)
        .then((pl.col("overdue_amt") / pl.col("due_amt")).ceil())
        .otherwise(0)
        .cast(pl.Int64)
    )
    first_missed = pl.when(missed > 0).then(
        pl.col("snapshot_date").dt.offset_by(pl.format("-{}mo", missed))
    )
    dpd = (
        pl.when(pl.col("overdue_amt") > 0)
        .then((pl.col("snapshot_date") - first_missed).dt.total_days())
        .otherwise(0)
        .cast(pl.Int64)
    )
    # Each column written out in full: on a one-row request a second projection costs more
    # than evaluating `missed` three times.
    return {
        "mob": pl.col("installment_num"),
        "installments_missed": missed,
        "first_missed_date": first_missed,
        "dpd": dpd,
    }


# Built once: on a one-row request, building the expressions costs as much as running them.
_DELINQUENCY_COLUMNS = _delinquency_columns()


def with_delinquency(loans: Frame) -> Frame:
    """Adds mob, installments_missed, first_missed_date and dpd to typed lms rows (a frame, or
    a step of a lazy query)."""
    # In sequence: on a request's one row, polars' thread pool costs more than four columns.
    return loans.with_columns_seq(**_DELINQUENCY_COLUMNS)
