"""Monthly partitions shared by every data asset."""

import dagster as dg

from loan_default import settings
from loan_default.lib.months import add_months

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=settings.FIRST_MONTH.isoformat(),
    end_date=add_months(settings.LAST_MONTH, 1).isoformat(),
)

# Every data asset can fill any month range in one run.
single_run = dg.BackfillPolicy.single_run()


def months_of(context: dg.AssetExecutionContext) -> tuple:
    """The [start, end) months this run covers, for one partition or a range."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()
