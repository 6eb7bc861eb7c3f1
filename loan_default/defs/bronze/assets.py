"""Bronze: each month's raw rows exactly as text, with file, line and ingestion time.

The warehouse stores them as `bronze.<source>` (Parquet files in the embedded profile, a
DuckLake table in production: lib/storage/table_store.py). Rows dated outside the configured
months are ingested by no partition: every materialization counts them per month, in its
metadata and a WARN check, so they never vanish unmentioned.

Before a run writes, the file's months are judged: against the source's contract (no empty
file, no month it covers without rows) and against the raw history (a month ingested before
that differs now stops the run unless restated with `restate_months`); nothing is written when
either fails. A month far from its recent volume is a WARN check.
"""

from datetime import UTC, date, datetime

import dagster as dg
import polars as pl
from pydantic import Field

from loan_default import settings
from loan_default.defs.checks import WARN, check_result, check_spec
from loan_default.defs.metadata import frame_table, table_metadata
from loan_default.defs.partitions import backfill_policy, month_span, monthly_partitions
from loan_default.defs.raw.assets import raw_asset_key
from loan_default.defs.resources import RawDataResource
from loan_default.lib import data_quality
from loan_default.lib.ingest import raw_history, source_contract
from loan_default.lib.ingest.raw_months import month_fingerprints, outside_months
from loan_default.lib.ingest.raw_reader import write_bronze
from loan_default.lib.ingest.sources import SOURCES, Source
from loan_default.lib.months import add_months, month_range
from loan_default.lib.storage.table_store import TableStore

# The months partitions exist for, [first, end): rows dated elsewhere are not ingested.
CONFIGURED_MONTHS = (settings.FIRST_MONTH, add_months(settings.LAST_MONTH, 1))
OUTSIDE_CHECK = "rows_outside_months"
VOLUME_CHECK = "month_volume"


class BronzeConfig(dg.Config):
    """Run-time choices of a bronze run: a deliberate restatement of months already ingested."""

    restate_months: list[str] = Field(
        default=[],
        description="Months of this run (YYYY-MM-01) whose raw rows may differ from what bronze "
        "ingested before: they are replaced and the restatement is recorded in "
        "raw.month_history and the materialization metadata. Without it, a month that shrank, "
        "vanished or changed stops the run.",
    )
    restate_reason: str = Field(default="", description="Why the months are restated.")

    def restated(self, months: list[date]) -> set[date]:
        """The months to restate; each must be a month of the run."""
        chosen = {date.fromisoformat(m) for m in self.restate_months}
        outside = sorted(chosen - set(months))
        if outside:
            raise ValueError(
                f"restate_months {', '.join(map(str, outside))} are not months of this run "
                f"({months[0]}..{months[-1]}): a run restates only the months it ingests"
            )
        return chosen


def bronze_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["bronze", source.name])


def bronze_table(source: Source) -> str:
    """The source's bronze table in the warehouse."""
    return f"bronze.{source.name}"


def _bronze_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=bronze_asset_key(source),
        deps=[raw_asset_key(source)],
        group_name="bronze",
        description=f"{source.description} Raw text per month plus lineage columns.",
        partitions_def=monthly_partitions,
        backfill_policy=backfill_policy,
        kinds={"duckdb", "polars", "parquet"},
        owners=settings.OWNERS,
        pool="duckdb",
        check_specs=[
            check_spec(
                bronze_asset_key(source),
                OUTSIDE_CHECK,
                "no raw row dated outside the configured months (such rows are not ingested)",
                blocking=False,
            ),
            check_spec(
                bronze_asset_key(source),
                VOLUME_CHECK,
                "each month's raw rows within the contract's band of its recent median",
                blocking=False,
            ),
        ],
    )
    def bronze(
        context: dg.AssetExecutionContext,
        config: BronzeConfig,
        raw_data: RawDataResource,
        warehouse: dg.ResourceParam[TableStore],
    ) -> dg.MaterializeResult:
        raw, window, table = raw_data.locate(source), month_span(context), bronze_table(source)
        months, ingested_at = month_range(*window), datetime.now(UTC)
        restate = config.restated(months)
        # Judged before anything is written: a refusal leaves the warehouse as it was.
        fingerprints = month_fingerprints(raw, source, raw_data.date_format)
        counts = dict(zip(fingerprints["month"], fingerprints["rows"], strict=True))
        now = raw_history.month_states(fingerprints)
        with warehouse.connect() as connection:
            before = raw_history.recorded(connection, source.name)
        found = raw_history.changes(before, now, months)
        raw_history.refuse_unrestated(raw.path, source.name, found, restate)
        source_contract.refuse_breaches(source, raw.path, counts, months)
        # Streamed in batches: memory stays flat however large the file is.
        written = write_bronze(
            warehouse, table, raw, source, window, ingested_at, raw_data.date_format
        )
        entries = raw_history.entries(
            source.name, raw.path, before, now, months, ingested_at, config.restate_reason
        )
        warehouse.transaction(lambda connection: raw_history.append(connection, entries))
        metadata = table_metadata(warehouse.describe(table, "partition_month", *window))
        context.log.info(f"{source.name}: {written:,} rows from {raw.path}")
        if found:
            context.log.warning(
                f"{source.name}: restated {'; '.join(map(str, found))} "
                f"({config.restate_reason or 'no reason given'})"
            )
        outside = outside_months(counts, *CONFIGURED_MONTHS)
        outcome = data_quality.rows_outside_months(outside, *CONFIGURED_MONTHS)
        if not outcome.passed:
            context.log.warning(f"{source.name}: {outcome.description}")
        volume = source_contract.month_volume(
            source, counts, months, source_contract.VolumeRule.for_source(source)
        )
        if not volume.passed:
            context.log.warning(volume.description)
        key = bronze_asset_key(source)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "source_file": str(raw.path),
                OUTSIDE_CHECK: dg.MetadataValue.json({str(m): n for m, n in outside.items()}),
                "raw_months": frame_table(
                    fingerprints.filter(pl.col("month").is_in(months)).with_columns(
                        pl.col("fingerprint").str.head(16)
                    )
                ),
                "months_first_seen": entries.filter(~entries["restated"]).height,
                "restated_months": dg.MetadataValue.json(
                    {str(c.month): {"before": c.before.rows, "after": c.after.rows} for c in found}
                ),
            },
            check_results=[
                check_result(key, OUTSIDE_CHECK, outcome, WARN),
                check_result(key, VOLUME_CHECK, volume, WARN),
            ],
        )

    return bronze


bronze_assets = [_bronze_asset(source) for source in SOURCES.values()]
