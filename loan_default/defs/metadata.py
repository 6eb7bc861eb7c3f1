"""Standard UI metadata for a warehouse table, read back after it was written, and for a
report file."""

from pathlib import Path

import dagster as dg
import polars as pl

from loan_default.lib.column_docs import COLUMN_DESCRIPTIONS
from loan_default.lib.storage import object_storage
from loan_default.lib.storage.table_store import TableDescription


def table_metadata(description: TableDescription) -> dict:
    """Row count of the months written, per-month counts and the column schema."""
    per_month = description.rows_per_month
    return {
        "dagster/row_count": dg.MetadataValue.int(description.rows),
        "dagster/table_name": description.table,
        "dagster/column_schema": dg.MetadataValue.table_schema(
            dg.TableSchema(
                columns=[
                    dg.TableColumn(name=c, type=t, description=COLUMN_DESCRIPTIONS.get(c))
                    for c, t in description.columns
                ]
            )
        ),
        "rows_per_month": dg.MetadataValue.md(
            "| month | rows |\n|---|---|\n" + "\n".join(f"| {m} | {n:,} |" for m, n in per_month)
        ),
    }


def frame_table(frame: pl.DataFrame, decimals: int = 4) -> dg.MetadataValue:
    """A small polars frame as a UI table, its columns typed and its floats rounded to be read
    (the CSV beside an artifact keeps full precision)."""
    frame = frame.with_columns(
        pl.col(pl.Float32, pl.Float64).round(decimals),
        pl.col(pl.Date, pl.Datetime).cast(pl.String),
    )
    kinds = {pl.String: "string", pl.Boolean: "bool"}
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=kinds.get(dtype, "int" if dtype.is_integer() else "float"),
            )
            for name, dtype in frame.schema.items()
        ]
    )
    records = [dg.TableRecord(row) for row in frame.iter_rows(named=True)]
    return dg.MetadataValue.table(records=records, schema=schema)


def report_metadata(name: str, location: str) -> dict:
    """A report as written: its location (a path or an s3:// URI) and, for a local file, a
    link that opens it in the browser (`<name>_url`); an object on S3 has no such link."""
    metadata = {name: dg.MetadataValue.path(location)}
    if not object_storage.is_remote(location):
        metadata[f"{name}_url"] = dg.MetadataValue.url(Path(location).resolve().as_uri())
    return metadata
