"""Data-quality rules evaluated on in-memory frames; the Dagster layer turns them into checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from loan_default.lib.ingest.cleaning import REASON_SEPARATOR
from loan_default.lib.ingest.sources import PERSONAL_COLUMNS
from loan_default.lib.months import add_months


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


def top_reasons(quarantine: pl.DataFrame, top: int) -> list[tuple[str, int]]:
    """The `top` most frequent quarantine reasons, each of a row's reasons counted on its own."""
    if quarantine.is_empty():
        return []
    counts = (
        quarantine.select(pl.col("reason").str.split(REASON_SEPARATOR).explode())
        .group_by("reason")
        .len()
        .sort(["len", "reason"], descending=[True, False])
        .head(top)
    )
    return [(reason, int(rows)) for reason, rows in counts.iter_rows()]


def _reasons_text(reasons: list[tuple[str, int]]) -> str:
    return ", ".join(f"{reason} ({rows:,})" for reason, rows in reasons)


def quarantine_share(
    bronze: pl.DataFrame, quarantine: pl.DataFrame, max_share: float, top: int
) -> Outcome:
    """A month's quarantined share of its bronze rows at most `max_share`.

    Above it the file is broken rather than dirty (every row of a source quarantined still
    makes empty, valid-looking tables downstream): the message names the top reasons.
    """
    if bronze.is_empty():
        return Outcome(True, "no rows in this month", {"share": None}, judged=False)
    share = quarantine.height / bronze.height
    reasons = top_reasons(quarantine, top)
    metadata = {
        "share": share,
        "max_share": max_share,
        "quarantined": quarantine.height,
        "bronze_rows": bronze.height,
        "top_reasons": dict(reasons),
    }
    text = f"{quarantine.height:,} of {bronze.height:,} rows quarantined ({share:.1%})"
    if share <= max_share:
        return Outcome(True, f"{text}, at most {max_share:.0%}", metadata)
    return Outcome(
        False, f"{text}, above {max_share:.0%}; top reasons: {_reasons_text(reasons)}", metadata
    )


def month_present(
    expected: bool, silver: pl.DataFrame, quarantine: pl.DataFrame, top: int, why: str
) -> Outcome:
    """Silver rows in a month the loan book says the source has (`expected`, because `why`)."""
    if not expected:
        return Outcome(True, "no rows expected", {"silver_rows": silver.height}, judged=False)
    metadata = {"silver_rows": silver.height, "quarantined": quarantine.height}
    if silver.height:
        return Outcome(True, f"{silver.height:,} silver rows, as the loan book expects", metadata)
    reasons = top_reasons(quarantine, top)
    found = (
        f"all {quarantine.height:,} rows quarantined; top reasons: {_reasons_text(reasons)}"
        if reasons
        else "no row in bronze either"
    )
    return Outcome(
        False,
        f"no silver rows in a month the loan book holds {why}: {found}",
        {**metadata, "top_reasons": dict(reasons)},
    )


def installment_sequences(loans: pl.DataFrame, start: date, end: date, shown: int = 20) -> Outcome:
    """Each loan with a snapshot in [start, end) has months on book 0..newest, each once.

    `loans` holds loan_id, installment_num and partition_month of every snapshot up to `end`.
    A gap or a repeat means the loan's label and features rest on missing or doubled months
    (a loan without its mob-6 row silently gets no label), so each is named with a reason.
    """
    judged = loans.filter(pl.col("partition_month").is_between(start, end, closed="left"))
    if judged.is_empty():
        return Outcome(True, "no loan snapshots in these months", {"loans": 0}, judged=False)
    mob = pl.col("installment_num")
    per_loan = (
        loans.join(judged.select("loan_id").unique(), on="loan_id", how="semi")
        .group_by("loan_id")
        .agg(
            rows=pl.len(),
            newest=mob.max(),
            present=mob.unique().sort(),
            repeated=mob.filter(mob.is_duplicated()).unique().sort(),
        )
        .sort("loan_id")
    )
    bad = per_loan.filter(
        (pl.col("rows") != pl.col("present").list.len())
        | (pl.col("present").list.len() != pl.col("newest") + 1)
    )
    metadata = {"loans": per_loan.height, "loans_flagged": bad.height}
    if bad.is_empty():
        return Outcome(True, f"{per_loan.height:,} loans with complete, unique sequences", metadata)
    reasons = {}
    for loan, newest, present, repeated in bad.select(
        "loan_id", "newest", "present", "repeated"
    ).iter_rows():
        missing = sorted(set(range(newest + 1)) - set(present))
        found = []
        if missing:
            found.append("installment_gap:" + ",".join(map(str, missing)))
        if repeated:
            found.append("installment_repeat:" + ",".join(map(str, repeated)))
        reasons[loan] = REASON_SEPARATOR.join(found)
    listed = dict(list(reasons.items())[:shown])
    return Outcome(
        False,
        f"{bad.height:,} of {per_loan.height:,} loans have a gap or repeat in their months on "
        f"book up to their newest snapshot: {listed}",
        {**metadata, "flagged": listed},
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
