"""A gold month runs only when the silver months it reads exist (issue 14, finding 5).

Why: a feature-store month T reads silver clickstream months T-23..T. Month runs started
together each write only their own silver month, so without this guard month T can be built
while another run has not yet written T-1: features from partial history, with every check
green. The months each dependency needs come from the asset's own partition mappings.

The rule, per run: the months a dependency needs are its mapped months that lie in the
partition range and in the loan book this instance knows (silver loan-book months that a run
has materialized, is writing or failed to write). When some are not materialized:
- another run in progress is going to write them: the step waits (a retry after
  WAIT_SECONDS, at most MAX_WAITS times), which frees the `duckdb` pool slot meanwhile;
- no run is writing them, or the wait runs out: the step fails, naming the missing months
  and the command that fills them.
"""

from collections.abc import Iterable
from datetime import date

import dagster as dg

from loan_default import settings
from loan_default.defs.partitions import months_of
from loan_default.lib.months import add_months, month_range

WAIT_SECONDS = 10
MAX_WAITS = 60
RUN_IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def offsets(assets_def: dg.AssetsDefinition, dep: dg.AssetKey) -> tuple[int, int]:
    """The months before and after T that `dep` is read for, from the declared mapping."""
    mapping = assets_def.get_partition_mapping(dep)
    if isinstance(mapping, dg.TimeWindowPartitionMapping):
        return mapping.start_offset, mapping.end_offset
    return 0, 0


def mapped_months(months: Iterable[date], start_offset: int, end_offset: int) -> set[date]:
    """Every month some month of `months` reads, kept within the partition range."""
    needed: set[date] = set()
    for month in months:
        first, last = add_months(month, start_offset), add_months(month, end_offset)
        needed.update(month_range(first, add_months(last, 1)))
    return {m for m in needed if settings.FIRST_MONTH <= m <= settings.LAST_MONTH}


def run_months(run: dg.DagsterRun) -> set[date]:
    """The months a run targets, from the partition tags the CLI and the UI set."""
    tags = run.tags
    if PARTITION_TAG in tags:
        return {date.fromisoformat(tags[PARTITION_TAG])}
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        first, last = (date.fromisoformat(tags[t]) for t in (RANGE_START_TAG, RANGE_END_TAG))
        return set(month_range(first, add_months(last, 1)))
    return set()


def being_written(
    instance: dg.DagsterInstance, asset: dg.AssetKey, own_run_id: str
) -> dict[date, str]:
    """Months of `asset` that another run in progress targets, with that run's id."""
    months: dict[date, str] = {}
    for run in instance.get_runs(dg.RunsFilter(statuses=RUN_IN_PROGRESS)):
        if run.run_id == own_run_id:
            continue
        if run.asset_selection is not None and asset not in run.asset_selection:
            continue
        for month in run_months(run):
            months.setdefault(month, run.run_id)
    return months


def materialized(instance: dg.DagsterInstance, asset: dg.AssetKey) -> set[date]:
    return {date.fromisoformat(key) for key in instance.get_materialized_partitions(asset)}


def attempted(context: dg.AssetExecutionContext, asset: dg.AssetKey) -> set[date]:
    """Months of `asset` that a run has materialized, is writing, or failed to write."""
    keys = context.assets_def.partitions_def.get_partition_keys()  # type: ignore[union-attr]
    statuses = context.instance.get_status_by_partition(
        asset, keys, context.assets_def.partitions_def
    )
    return {date.fromisoformat(k) for k, status in (statuses or {}).items() if status is not None}


def spans(months: Iterable[date]) -> str:
    """Months as compact first...last spans: 2023-01-01...2023-03-01, 2023-06-01."""
    ordered, parts = sorted(months), []
    start = previous = None
    for month in [*ordered, None]:
        if month is not None and previous is not None and month == add_months(previous, 1):
            previous = month
            continue
        if start is not None:
            parts.append(start.isoformat() if start == previous else f"{start}...{previous}")
        start = previous = month
    return ", ".join(parts)


def require_upstream_months(context: dg.AssetExecutionContext, loan_book: dg.AssetKey) -> None:
    """Waits for, or refuses clearly, silver months this run's gold months read but lack."""
    instance, run_id = context.instance, context.run.run_id
    months = months_of(context)
    book = attempted(context, loan_book) | set(being_written(instance, loan_book, run_id))
    book |= set(months)
    missing: dict[dg.AssetKey, set[date]] = {}
    writers: dict[dg.AssetKey, dict[date, str]] = {}
    for dep in sorted(context.assets_def.dependency_keys, key=lambda k: k.to_user_string()):
        needed = mapped_months(months, *offsets(context.assets_def, dep)) & book
        lacking = needed - materialized(instance, dep)
        if lacking:
            missing[dep] = lacking
            pending = being_written(instance, dep, run_id)
            writers[dep] = {m: pending[m] for m in lacking if m in pending}
    if not missing:
        return
    lines = [f"{dep.to_user_string()}: {spans(m)}" for dep, m in missing.items()]
    waiting_on = sorted({r for pending in writers.values() for r in pending.values()})
    if waiting_on and context.retry_number < MAX_WAITS:
        context.log.warning(
            f"silver months not written yet ({'; '.join(lines)}); runs in progress "
            f"{', '.join(waiting_on)} write them: waiting {WAIT_SECONDS} s "
            f"(wait {context.retry_number + 1} of {MAX_WAITS})"
        )
        raise dg.RetryRequested(max_retries=MAX_WAITS, seconds_to_wait=WAIT_SECONDS)
    every = set().union(*missing.values(), months)
    first, last = min(every), max(every)
    reason = (
        f"the runs writing them ({', '.join(waiting_on)}) did not finish within "
        f"{WAIT_SECONDS * MAX_WAITS} s"
        if waiting_on
        else "no run in progress writes them"
    )
    raise dg.Failure(
        description=(
            f"{context.assets_def.key.to_user_string()} for {spans(months)} reads silver months "
            f"that are not materialized, and {reason}: {'; '.join(lines)}. Materialize them "
            f"first, e.g. `make backfill MONTHS={first}...{last}`, or one run over the range: "
            "dagster asset materialize -m loan_default.definitions --select "
            f"'group:bronze or group:silver or group:gold' --partition-range {first}...{last}"
        ),
        allow_retries=False,
    )
