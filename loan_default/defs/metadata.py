"""Standard UI metadata for a table asset: row count, column schema with descriptions."""

import dagster as dg
import polars as pl

from loan_default.lib.column_docs import COLUMN_DESCRIPTIONS


def table_metadata(frame: pl.DataFrame, months_column: str | None = None) -> dict:
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=COLUMN_DESCRIPTIONS.get(name))
            for name, dtype in frame.schema.items()
        ]
    )
    metadata: dict = {
        "dagster/row_count": dg.MetadataValue.int(frame.height),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
    }
    if months_column and frame.height:
        per_month = frame.group_by(months_column).len().sort(months_column)
        metadata["rows_per_month"] = dg.MetadataValue.md(
            "| month | rows |\n|---|---|\n"
            + "\n".join(f"| {m} | {n:,} |" for m, n in per_month.iter_rows())
        )
    return metadata
