"""Silver: typed and cleaned rows per source, plus a quarantine of rows that cannot be valid.

Both are warehouse tables, `silver.<source>` and `silver.quarantine_<source>` (Parquet files
in the embedded profile, DuckLake tables in production: lib/storage/table_store.py). Blocking
checks keep a broken file from yielding empty but green gold: a month's quarantined share above
the threshold in `thresholds.json`, or a month the loan book holds without silver rows, stops
downstream.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl

from loan_default import settings
from loan_default.defs.bronze.assets import bronze_asset_key, bronze_table
from loan_default.defs.checks import ERROR, WARN, check_result, check_spec
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import backfill_policy, month_span, monthly_partitions, months_of
from loan_default.defs.resources import RawDataResource
from loan_default.lib import data_quality
from loan_default.lib.gold.loan_delinquency import with_delinquency
from loan_default.lib.ingest.cleaning import (
    FIXED_PER_ENTITY,
    CleanResult,
    clean,
    first_values,
    nulled_reason,
)
from loan_default.lib.ingest.raw_reader import MONTH_COLUMN as MONTH
from loan_default.lib.ingest.sources import (
    APPLICATION_MONTHS,
    LMS_LOAN_DAILY,
    SNAPSHOT_MONTHS,
    SOURCES,
    Source,
)
from loan_default.lib.months import month_range
from loan_default.lib.storage.table_store import TableStore
from loan_default.lib.storage.warehouse import MissingTableError, month_chunks
from loan_default.lib.thresholds import load_thresholds

# Extra typing beyond cleaning, per source: the loan book gains days past due.
ENRICHMENT = {LMS_LOAN_DAILY.name: with_delinquency}
# Bronze rows cleaned at a time: a whole run on small data, a month or a few at scale.
CHUNK_ROWS = 1_500_000
SILVER_CHECKS = {
    "rows_conserved": "bronze rows = silver rows + quarantined rows, per month",
    "keys_not_null": "no null key column",
    "keys_unique": "unique key per month",
    "no_personal_data": "no SSN or name column",
    "quarantine_share": "quarantined share of each month's rows within thresholds.json",
}
MONTHS_PRESENT = "months_present"
# The loan book's own integrity, a WARN: one loan's gap must not stop every other loan.
INSTALLMENT_SEQUENCE = "installment_sequence"
# What each kind of expected month means, for the check's message.
EXPECTED_WHY = {SNAPSHOT_MONTHS: "snapshots in", APPLICATION_MONTHS: "loans starting in"}


def silver_checks(source: Source) -> dict[str, str]:
    """The silver checks of a source, all blocking: months_present where the loan book says."""
    if source.expected_months is None:
        return SILVER_CHECKS
    return {
        **SILVER_CHECKS,
        MONTHS_PRESENT: f"silver rows in every month the loan book holds "
        f"{EXPECTED_WHY[source.expected_months]}",
    }


def silver_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["silver", source.name])


def silver_table(source: Source) -> str:
    """The source's silver table in the warehouse."""
    return f"silver.{source.name}"


def quarantine_name(source: Source) -> str:
    return f"quarantine_{source.name}"


def quarantine_table(source: Source) -> str:
    """The source's quarantine table in the warehouse."""
    return f"silver.{quarantine_name(source)}"


def silver_key_columns(source: Source) -> list[str]:
    return [source.column(k).silver_name for k in source.key]


def _silver_assets(source: Source) -> dg.AssetsDefinition:
    silver_key = silver_asset_key(source)
    quarantine_key = dg.AssetKey(["silver", f"quarantine_{source.name}"])
    keys = silver_key_columns(source)
    checks = silver_checks(source)
    # Sources judged against the loan book's applications read its bronze rows.
    loan_book = [bronze_asset_key(LMS_LOAN_DAILY)] if source is not LMS_LOAN_DAILY else []
    common = dict(
        deps=[bronze_asset_key(source), *loan_book],
        group_name="silver",
        kinds={"duckdb", "polars", "parquet"},
        owners=settings.OWNERS,
        partitions_def=monthly_partitions,
    )

    @dg.multi_asset(
        name=f"silver_{source.name}",
        specs=[
            dg.AssetSpec(
                silver_key,
                description=f"{source.description} Typed and cleaned; personal data removed.",
                **common,
            ),
            dg.AssetSpec(
                quarantine_key,
                description=f"Rows of {source.name} that could not be made valid, with reasons.",
                **common,
            ),
        ],
        partitions_def=monthly_partitions,
        backfill_policy=backfill_policy,
        pool="duckdb",
        check_specs=[
            *(
                check_spec(silver_key, name, description, blocking=True)
                for name, description in checks.items()
            ),
            *(
                [
                    check_spec(
                        silver_key,
                        INSTALLMENT_SEQUENCE,
                        "each loan's months on book are 0..newest snapshot, each once",
                        blocking=False,
                    )
                ]
                if source is LMS_LOAN_DAILY
                else []
            ),
        ],
    )
    def silver(
        context: dg.AssetExecutionContext,
        raw_data: RawDataResource,
        warehouse: dg.ResourceParam[TableStore],
    ) -> Iterator:
        window = month_span(context)
        outcomes: dict[str, dict] = {name: {} for name in checks}
        nulled: dict[str, int] = {}
        bronze = bronze_table(source)
        counts = warehouse.month_counts(bronze, MONTH, *window)
        expected = _expected_months(source, warehouse, counts, window)
        known = _earlier_first_values(source, warehouse, window[0])
        with warehouse.replacing(*window) as replacement:
            for start, end in month_chunks(months_of(context), counts, CHUNK_ROWS):
                rows = warehouse.scan(bronze, MONTH, start, end).collect()
                result = clean(rows, source, raw_data.date_format, known=known)
                known = _with_first_values(source, known, result.silver)
                typed = ENRICHMENT.get(source.name, lambda frame: frame)(result.silver)
                replacement.write(silver_table(source), typed, MONTH)
                replacement.write(quarantine_table(source), result.quarantine, MONTH)
                _log_quarantine(context, source, result.quarantine)
                _log_unreadable(context, source, result)
                for column, count in result.nulled_values.items():
                    nulled[column] = nulled.get(column, 0) + count
                _check_chunk(
                    outcomes, month_range(start, end), rows, typed, result, keys, source, expected
                )
        silver_metadata = table_metadata(warehouse.describe(silver_table(source), MONTH, *window))
        quarantine_metadata = table_metadata(
            warehouse.describe(quarantine_table(source), MONTH, *window)
        )
        yield dg.MaterializeResult(
            asset_key=silver_key,
            metadata={**silver_metadata, "nulled_values": dg.MetadataValue.json(nulled)},
        )
        yield dg.MaterializeResult(asset_key=quarantine_key, metadata=quarantine_metadata)
        for name, by_month in outcomes.items():
            outcome = data_quality.across_months(by_month)
            if not outcome.passed:
                context.log.error(f"{source.name} {name}: {outcome.description}")
            yield check_result(silver_key, name, outcome, ERROR)
        if source is LMS_LOAN_DAILY:
            loans = warehouse.scan(silver_table(source), MONTH, settings.FIRST_MONTH, window[1])
            outcome = data_quality.installment_sequences(
                loans.select("loan_id", "installment_num", "partition_month").collect(), *window
            )
            if not outcome.passed:
                context.log.warning(f"{source.name} {INSTALLMENT_SEQUENCE}: {outcome.description}")
            yield check_result(silver_key, INSTALLMENT_SEQUENCE, outcome, WARN)

    return silver


def _log_quarantine(
    context: dg.AssetExecutionContext, source: Source, quarantine: pl.DataFrame
) -> None:
    for (month,), rows in quarantine.partition_by("partition_month", as_dict=True).items():
        context.log.warning(
            f"{source.name} {month}: {rows.height:,} rows quarantined: "
            f"{rows['reason'].value_counts().rows()}"
        )


def _earlier_first_values(
    source: Source, warehouse: TableStore, before: date
) -> pl.DataFrame | None:
    """The values fixed per entity (a loan's start date and tenure) that silver holds from
    months before the run: rows in the run must repeat them."""
    if source.name not in FIXED_PER_ENTITY:
        return None
    try:
        earlier = warehouse.scan(silver_table(source), MONTH, settings.FIRST_MONTH, before)
        return first_values(earlier.collect(), source)
    except MissingTableError:  # no silver yet: the run's own first rows decide
        return None


def _with_first_values(
    source: Source, known: pl.DataFrame | None, silver: pl.DataFrame
) -> pl.DataFrame | None:
    """`known` plus the entities first seen in a chunk (chunks run in month order)."""
    if source.name not in FIXED_PER_ENTITY:
        return None
    new = first_values(silver, source)
    if known is None:
        return new
    return pl.concat([known, new]).unique(new.columns[0], keep="first", maintain_order=True)


def _log_unreadable(context: dg.AssetExecutionContext, source: Source, result: CleanResult) -> None:
    """Values nulled because they did not parse, with their lines: the count alone (metadata
    `nulled_values`) does not say where to look."""
    for label in result.nulled.columns[1:]:
        reason = nulled_reason(label)
        if reason is None or not reason[1].startswith("unreadable_"):
            continue
        lines = result.nulled.filter(pl.col(label))["source_line"]
        if lines.len():
            context.log.warning(
                f"{source.name}: {lines.len():,} values of {reason[0]} set to null as "
                f"{reason[1]}, at lines {lines.head(20).to_list()}"
                + (" ..." if lines.len() > 20 else "")
            )


def _expected_months(
    source: Source, warehouse: TableStore, counts: dict[date, int], window: tuple[date, date]
) -> set[date]:
    """The months of the window the loan book says the source has rows in."""
    if source.expected_months == SNAPSHOT_MONTHS:
        return set(counts)
    if source.expected_months != APPLICATION_MONTHS:
        return set()
    try:
        loans = warehouse.scan(bronze_table(LMS_LOAN_DAILY), MONTH, *window)
    except MissingTableError:  # no loan book ingested: it says nothing yet
        return set()
    starts = loans.filter(pl.col("installment_num").str.strip_chars() == "0")
    return set(starts.select(pl.col("partition_month").unique()).collect().to_series())


def _check_chunk(
    outcomes: dict[str, dict],
    months: list[date],
    bronze: pl.DataFrame,
    typed: pl.DataFrame,
    result: CleanResult,
    keys: list[str],
    source: Source,
    expected: set[date],
) -> None:
    """Each check's outcome for every month of a chunk, from narrow slices of its frames."""
    month = "partition_month"
    limits = load_thresholds()["data_quality"]["quarantine_share"]
    held = result.quarantine.select(month, "reason")
    outcomes["quarantine_share"] |= data_quality.by_month(
        months,
        month,
        lambda rows, bad: data_quality.quarantine_share(
            rows, bad, limits["max"], limits["top_reasons"]
        ),
        bronze.select(month),
        held,
    )
    if MONTHS_PRESENT in outcomes:
        kept = data_quality.by_month(months, month, lambda rows: rows, typed.select(month))
        bad = data_quality.by_month(months, month, lambda rows: rows, held)
        why = EXPECTED_WHY[source.expected_months]
        outcomes[MONTHS_PRESENT] |= {
            m: data_quality.month_present(
                m in expected, kept[m], bad[m], limits["top_reasons"], why
            )
            for m in months
        }
    outcomes["rows_conserved"] |= data_quality.by_month(
        months,
        month,
        lambda rows, kept, held: data_quality.rows_conserved(rows, [kept, held]),
        bronze.select(month),
        typed.select(month),
        result.quarantine.select(month),
    )
    key_rows = typed.select(month, *keys)
    outcomes["keys_not_null"] |= data_quality.by_month(
        months, month, lambda rows: data_quality.keys_not_null(rows, keys), key_rows
    )
    outcomes["keys_unique"] |= data_quality.by_month(
        months, month, lambda rows: data_quality.keys_unique(rows, keys), key_rows
    )
    # Judged on the columns, which every month shares.
    personal = data_quality.no_personal_data(typed)
    outcomes["no_personal_data"] |= dict.fromkeys(months, personal)


silver_assets = [_silver_assets(source) for source in SOURCES.values()]
