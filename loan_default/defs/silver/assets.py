"""Silver: typed and cleaned rows per source, plus a quarantine of rows that cannot be valid."""

from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from loan_default import settings
from loan_default.defs.bronze.assets import bronze_asset_key, bronze_table
from loan_default.defs.checks import ERROR, check_result, check_spec
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import monthly_partitions, months_of, single_run, window_of
from loan_default.defs.resources import RawDataResource
from loan_default.lib import data_quality
from loan_default.lib.cleaning import clean
from loan_default.lib.loan_delinquency import with_delinquency
from loan_default.lib.months import add_months
from loan_default.lib.sources import LMS_LOAN_DAILY, SOURCES, Source
from loan_default.lib.warehouse import read_months, replace_months

# Extra typing beyond cleaning, per source: the loan book gains days past due.
ENRICHMENT = {LMS_LOAN_DAILY.name: with_delinquency}
SILVER_CHECKS = {
    "rows_conserved": "bronze rows = silver rows + quarantined rows, per month",
    "keys_not_null": "no null key column",
    "keys_unique": "unique key per month",
    "no_personal_data": "no SSN or name column",
}


def silver_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["silver", source.name])


def silver_table(source: Source) -> str:
    return f"silver.{source.name}"


def quarantine_table(source: Source) -> str:
    return f"silver.quarantine_{source.name}"


def silver_key_columns(source: Source) -> list[str]:
    return [source.column(k).silver_name for k in source.key]


def _silver_assets(source: Source) -> dg.AssetsDefinition:
    silver_key = silver_asset_key(source)
    quarantine_key = dg.AssetKey(["silver", f"quarantine_{source.name}"])
    keys = silver_key_columns(source)
    common = dict(
        deps=[bronze_asset_key(source)],
        group_name="silver",
        kinds={"duckdb", "polars"},
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
        backfill_policy=single_run,
        pool="duckdb",
        check_specs=[
            check_spec(silver_key, name, description, blocking=True)
            for name, description in SILVER_CHECKS.items()
        ],
    )
    def silver(
        context: dg.AssetExecutionContext, raw_data: RawDataResource, warehouse: DuckDBResource
    ) -> Iterator:
        window = window_of(context)
        outcomes: dict[str, dict] = {name: {} for name in SILVER_CHECKS}
        nulled: dict[str, int] = {}
        with warehouse.get_connection() as connection:
            for month in months_of(context):
                next_month = add_months(month, 1)
                bronze = read_months(
                    connection, bronze_table(source), "partition_month", month, next_month
                )
                result = clean(bronze, source, raw_data.date_format)
                typed = ENRICHMENT.get(source.name, lambda frame: frame)(result.silver)
                for table, frame in (
                    (silver_table(source), typed),
                    (quarantine_table(source), result.quarantine),
                ):
                    replace_months(connection, table, frame, "partition_month", month, next_month)
                if result.quarantine.height:
                    context.log.warning(
                        f"{source.name} {month}: {result.quarantine.height:,} rows quarantined: "
                        f"{result.quarantine['reason'].value_counts().rows()}"
                    )
                for column, count in result.nulled_values.items():
                    nulled[column] = nulled.get(column, 0) + count
                outcomes["rows_conserved"][month] = data_quality.rows_conserved(
                    bronze, [typed, result.quarantine]
                )
                outcomes["keys_not_null"][month] = data_quality.keys_not_null(typed, keys)
                outcomes["keys_unique"][month] = data_quality.keys_unique(typed, keys)
                outcomes["no_personal_data"][month] = data_quality.no_personal_data(typed)
            silver_metadata = table_metadata(
                connection, silver_table(source), "partition_month", window
            )
            quarantine_metadata = table_metadata(
                connection, quarantine_table(source), "partition_month", window
            )
        yield dg.MaterializeResult(
            asset_key=silver_key,
            metadata={**silver_metadata, "nulled_values": dg.MetadataValue.json(nulled)},
        )
        yield dg.MaterializeResult(asset_key=quarantine_key, metadata=quarantine_metadata)
        for name, by_month in outcomes.items():
            yield check_result(silver_key, name, data_quality.across_months(by_month), ERROR)

    return silver


silver_assets = [_silver_assets(source) for source in SOURCES.values()]
