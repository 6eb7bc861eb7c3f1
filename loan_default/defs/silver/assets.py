"""Silver: typed and cleaned rows per source, plus a quarantine of rows that cannot be valid."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from loan_default import settings
from loan_default.defs.bronze.assets import bronze_asset_key
from loan_default.defs.checks import ERROR, check_result, check_spec
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import monthly_partitions, single_run
from loan_default.defs.resources import RawDataResource
from loan_default.lib import data_quality
from loan_default.lib.cleaning import clean
from loan_default.lib.loan_delinquency import with_delinquency
from loan_default.lib.sources import LMS_LOAN_DAILY, SOURCES, Source

# Extra typing beyond cleaning, per source: the loan book gains days past due.
ENRICHMENT = {LMS_LOAN_DAILY.name: with_delinquency}


def silver_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["silver", source.name])


def quarantine_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["silver", f"quarantine_{source.name}"])


def silver_key_columns(source: Source) -> list[str]:
    return [source.column(k).silver_name for k in source.key]


def _silver_assets(source: Source) -> dg.AssetsDefinition:
    silver_key, quarantine_key = silver_asset_key(source), quarantine_asset_key(source)
    keys = silver_key_columns(source)
    common = dict(
        group_name="silver",
        metadata={"partition_expr": "partition_month"},
        kinds={"duckdb", "polars"},
        owners=settings.OWNERS,
    )

    @dg.multi_asset(
        name=f"silver_{source.name}",
        outs={
            "silver": dg.AssetOut(
                key=silver_key,
                description=f"{source.description} Typed and cleaned; personal data removed.",
                **common,
            ),
            "quarantine": dg.AssetOut(
                key=quarantine_key,
                description=f"Rows of {source.name} that could not be made valid, with reasons.",
                **common,
            ),
        },
        ins={"bronze": dg.AssetIn(bronze_asset_key(source))},
        partitions_def=monthly_partitions,
        backfill_policy=single_run,
        pool="duckdb",
        check_specs=[
            check_spec(
                silver_key,
                "rows_conserved",
                "bronze rows = silver rows + quarantined rows, per month",
                blocking=True,
            ),
            check_spec(silver_key, "keys_not_null", f"no null {keys}", blocking=True),
            check_spec(silver_key, "keys_unique", f"unique {keys}", blocking=True),
            check_spec(silver_key, "no_personal_data", "no SSN or name column", blocking=True),
        ],
    )
    def silver(
        context: dg.AssetExecutionContext, bronze: pl.DataFrame, raw_data: RawDataResource
    ) -> Iterator:
        result = clean(bronze, source, raw_data.date_format)
        typed = ENRICHMENT.get(source.name, lambda frame: frame)(result.silver)
        if result.quarantine.height:
            context.log.warning(
                f"{source.name}: {result.quarantine.height:,} rows quarantined: "
                f"{result.quarantine['reason'].value_counts().rows()}"
            )
        yield dg.Output(
            typed,
            output_name="silver",
            metadata={
                **table_metadata(typed, "partition_month"),
                "nulled_values": dg.MetadataValue.json(result.nulled_values),
            },
        )
        yield dg.Output(
            result.quarantine,
            output_name="quarantine",
            metadata=table_metadata(result.quarantine, "partition_month"),
        )
        outcomes = {
            "rows_conserved": data_quality.rows_conserved(bronze, [typed, result.quarantine]),
            "keys_not_null": data_quality.keys_not_null(typed, keys),
            "keys_unique": data_quality.keys_unique(typed, keys),
            "no_personal_data": data_quality.no_personal_data(typed),
        }
        for name, outcome in outcomes.items():
            yield check_result(silver_key, name, outcome, ERROR)

    return silver


silver_assets = [_silver_assets(source) for source in SOURCES.values()]
