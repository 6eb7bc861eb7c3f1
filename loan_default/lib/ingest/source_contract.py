"""Judges a raw file's months against its source's contract (declared in sources.py).

Two outcomes, judged on the rows per month bronze reads, before it writes: a broken promise
(an empty or header-only file, a month the source must cover without rows) raises
`SourceContractError`, naming file, source and months, and the warehouse stays unchanged; a
month whose rows lie far from the median of the file's recent months is a WARN outcome (the
band per volume shape in thresholds.json, data_quality.raw_month_volume).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from statistics import median

from loan_default.lib.data_quality import Outcome
from loan_default.lib.ingest.sources import Source
from loan_default.lib.thresholds import load_thresholds


class SourceContractError(ValueError):
    """A raw file breaks its source's contract; the message names file, source and months."""


def refuse_breaches(
    source: Source, file: Path, counts: dict[date, int], months: list[date]
) -> None:
    """Raises when the file holds no data rows at all, or no rows in a month of `months` (the
    run's) that the contract says it covers; months of a declared gap are not expected."""
    if not any(counts.values()):
        raise SourceContractError(
            f"{file}: source {source.name} holds no data rows (an empty or header-only file); "
            "its contract expects rows. Deliver the file again with its rows."
        )
    contract = source.contract
    missing = [m for m in months if contract.expects(m) and not counts.get(m)]
    if missing:
        gap = f" before its declared gap from {contract.gap_from}" if contract.gap_from else ""
        raise SourceContractError(
            f"{file}: source {source.name} has no rows in {len(missing)} month(s) its contract "
            f"says it covers (every configured month{gap}): {', '.join(map(str, missing))}. "
            "Deliver those months, or declare a known gap in lib/ingest/sources.py."
        )


@dataclass(frozen=True)
class VolumeRule:
    """A month's rows may lie in [low, high] x the median of the file's `recent_months` months
    before it that hold rows; a median below `min_recent_rows` is too noisy to judge."""

    recent_months: int
    min_recent_rows: int
    low: float
    high: float

    @classmethod
    def for_source(cls, source: Source, thresholds: dict | None = None) -> VolumeRule:
        """The rule of the source's declared volume shape, from the thresholds file."""
        section = (thresholds or load_thresholds())["data_quality"]["raw_month_volume"]
        low, high = section[source.contract.volume]
        return cls(section["recent_months"], section["min_recent_rows"], low, high)


def month_volume(
    source: Source, counts: dict[date, int], months: list[date], rule: VolumeRule
) -> Outcome:
    """Months of `months` holding rows, each against the median of its recent months in the
    file (`counts`, every month the file holds). Months without rows are the coverage rule's
    business, months of a declared gap are not judged."""
    held = sorted(m for m, rows in counts.items() if rows)
    flagged: dict[str, dict] = {}
    judged = 0
    for month in months:
        rows = counts.get(month, 0)
        recent = [counts[m] for m in held if m < month][-rule.recent_months :]
        if not rows or source.contract.in_gap(month) or not recent:
            continue
        baseline = median(recent)
        if baseline < rule.min_recent_rows:
            continue
        judged += 1
        ratio = rows / baseline
        if not rule.low <= ratio <= rule.high:
            flagged[str(month)] = {
                "rows": rows,
                "recent_median": baseline,
                "ratio": round(ratio, 3),
            }
    band = f"{rule.low:g}x..{rule.high:g}x"
    metadata = {"flagged": flagged, "band": [rule.low, rule.high], "months_judged": judged}
    if not flagged:
        return Outcome(
            True,
            f"{judged} month(s) within {band} of their recent median ({source.contract.volume})",
            metadata,
            judged=judged > 0,
        )
    worst = "; ".join(
        f"{m}: {v['rows']:,} rows, {v['ratio']:g}x the median of its recent months "
        f"({v['recent_median']:,g})"
        for m, v in flagged.items()
    )
    return Outcome(
        False,
        f"{source.name}: {len(flagged)} month(s) outside {band} of the median of their "
        f"{rule.recent_months} recent months ({source.contract.volume} volume): {worst}",
        metadata,
    )
