"""Monthly partitions shared by every data asset."""

from datetime import date

import dagster as dg

from loan_default import settings
from loan_default.lib.months import add_months, month_range

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=settings.FIRST_MONTH.isoformat(),
    end_date=add_months(settings.LAST_MONTH, 1).isoformat(),
)

# Every data asset fills any month range in one run. How a backfill splits into runs is the
# profile's: one run for the whole range (embedded), or runs of BACKFILL_MONTHS_PER_RUN months
# (production), each failing and retrying alone, side by side on the run workers.
backfill_policy = (
    dg.BackfillPolicy.multi_run(settings.BACKFILL_MONTHS_PER_RUN)
    if settings.BACKFILL_MONTHS_PER_RUN
    else dg.BackfillPolicy.single_run()
)


def month_span(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The [start, end) months this run covers, for one partition or a range."""
    span = context.partition_time_window
    return span.start.date(), span.end.date()


def months_of(context: dg.AssetExecutionContext) -> list[date]:
    return month_range(*month_span(context))
