"""Data-quality rules evaluated on in-memory frames; the Dagster layer turns them into checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from loan_default.lib.months import add_months

PERSONAL_COLUMNS = frozenset({"name", "ssn"})


@dataclass(frozen=True)
class Outcome:
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)
    # False when there was nothing to judge (no rows): such an outcome never serves as example.
    judged: bool = True


def schema_matches(frame: pl.DataFrame, expected: Sequence[str]) -> Outcome:
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    return Outcome(
        not missing and not extra,
        f"missing {missing}, unexpected {extra}" if missing or extra else "schema as expected",
        {"missing": missing, "unexpected": extra},
    )


def keys_not_null(frame: pl.DataFrame, keys: Sequence[str]) -> Outcome:
    nulls = frame.select(pl.col(k).null_count() for k in keys).row(0, named=True)
    bad = {k: int(v) for k, v in nulls.items() if v}
    return Outcome(not bad, f"null keys: {bad}" if bad else "no null keys", {"null_keys": bad})


def keys_unique(frame: pl.DataFrame, keys: Sequence[str]) -> Outcome:
    duplicates = frame.height - frame.select(keys).n_unique() if frame.height else 0
    return Outcome(
        duplicates == 0, f"{duplicates} duplicate {tuple(keys)} rows", {"duplicates": duplicates}
    )


def values_in_range(
    frame: pl.DataFrame, bounds: dict[str, tuple[float | None, float | None]]
) -> Outcome:
    outside: dict[str, int] = {}
    for column, (low, high) in bounds.items():
        condition = pl.lit(False)
        if low is not None:
            condition = condition | (pl.col(column) < low)
        if high is not None:
            condition = condition | (pl.col(column) > high)
        count = frame.select(condition.sum()).item() or 0
        if count:
            outside[column] = int(count)
    return Outcome(
        not outside,
        f"values outside range: {outside}" if outside else "all values in range",
        {"outside": outside, "bounds": {k: list(v) for k, v in bounds.items()}},
    )


def rows_conserved(
    bronze: pl.DataFrame, outputs: Iterable[pl.DataFrame], month_column: str = "partition_month"
) -> Outcome:
    """Per month: bronze rows = rows of all outputs together."""
    counted = pl.concat([o.select(month_column) for o in outputs]).group_by(month_column).len()
    compared = (
        bronze.group_by(month_column)
        .len()
        .join(counted, on=month_column, how="full", coalesce=True, suffix="_out")
        .fill_null(0)
        .filter(pl.col("len") != pl.col("len_out"))
    )
    return Outcome(
        compared.is_empty(),
        "bronze rows = silver + quarantine in every month"
        if compared.is_empty()
        else f"{compared.height} month(s) lose or gain rows",
        {"unbalanced_months": [str(m) for m in compared[month_column].to_list()]},
    )


def rows_outside_months(outside: dict[date, int], first: date, end: date) -> Outcome:
    """Rows dated in months outside the configured [first, end): no partition ingests them."""
    total = sum(outside.values())
    by_month = {str(month): rows for month, rows in outside.items()}
    if not total:
        return Outcome(True, "every row is dated within the configured months", {"rows": 0})
    return Outcome(
        False,
        f"{total:,} row(s) dated outside the configured months {first}..{add_months(end, -1)} "
        f"are not ingested: {by_month}; extend LOAN_DEFAULT_FIRST_MONTH / "
        "LOAN_DEFAULT_LAST_MONTH to ingest them",
        {"rows": total, "rows_by_month": by_month},
    )


def no_future_sources(frame: pl.DataFrame, as_of: str, used: str) -> Outcome:
    late = frame.filter(pl.col(used) > pl.col(as_of))
    return Outcome(
        late.is_empty(),
        f"{late.height} feature rows use source data dated after their month",
        {"late_rows": late.height},
    )


def no_personal_data(frame: pl.DataFrame) -> Outcome:
    found = sorted(c for c in frame.columns if c.lower() in PERSONAL_COLUMNS)
    return Outcome(
        not found,
        f"personal columns present: {found}" if found else "no personal data",
        {"personal_columns": found},
    )


def rate_in_band(frame: pl.DataFrame, column: str, low: float, high: float) -> Outcome:
    if frame.is_empty():
        return Outcome(True, "no rows in these months", {"rate": None}, judged=False)
    rate = float(frame[column].mean())
    return Outcome(
        low <= rate <= high,
        f"{column} rate {rate:.4f}, band [{low}, {high}]",
        {"rate": rate, "low": low, "high": high},
    )


def across_months(outcomes: dict) -> Outcome:
    """One outcome for a run over several months: passes when every month passes."""
    failing = {str(month): o for month, o in outcomes.items() if not o.passed}
    if not failing:
        judged = [(month, o) for month, o in outcomes.items() if o.judged]
        counts = {"months_checked": len(outcomes), "months_judged": len(judged)}
        if not judged:
            return Outcome(True, "no rows in these months", counts, judged=False)
        month, latest = judged[-1]
        if len(outcomes) == 1:
            return Outcome(True, latest.description, {**counts, **latest.metadata})
        return Outcome(
            True,
            f"all {len(outcomes)} months pass; latest judged, {month}: {latest.description}",
            {**counts, **latest.metadata},
        )
    first_month, first = next(iter(failing.items()))
    return Outcome(
        False,
        f"{len(failing)} month(s) fail; {first_month}: {first.description}",
        {"failing_months": list(failing), **first.metadata},
    )


def by_month(
    months: Iterable,
    month_column: str,
    check: Callable[..., Outcome],
    *frames: pl.DataFrame,
) -> dict:
    """`check` on each month's slice of `frames`, for every month in `months` (empty or not).

    Lets a run check a chunk of several months at once while still reporting month by month.
    Pass narrow frames (the month column plus what the check reads): slicing copies them.
    """
    parts = [
        {key[0]: part for key, part in frame.partition_by(month_column, as_dict=True).items()}
        for frame in frames
    ]
    return {
        month: check(*(p.get(month, frame.clear()) for p, frame in zip(parts, frames, strict=True)))
        for month in months
    }
