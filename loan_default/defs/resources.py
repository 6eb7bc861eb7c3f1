"""Resources: where raw files are read from and the DuckDB warehouse the assets live in."""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import polars as pl
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBIOManager
from dagster_duckdb_polars import DuckDBPolarsTypeHandler

from loan_default import settings
from loan_default.lib.raw_reader import RawFile
from loan_default.lib.sources import Source


class RawDataResource(dg.ConfigurableResource):
    """The folder holding the four source CSVs (plain or .gz) and the date format they use."""

    raw_dir: str = str(settings.RAW_DIR)
    date_format: str = settings.RAW_DATE_FORMAT

    def locate(self, source: Source) -> RawFile:
        return RawFile.locate(Path(self.raw_dir), source)


class EmptyMonthPolarsTypeHandler(DuckDBPolarsTypeHandler):
    """Writes empty frames too, so a month with no rows still has a (typed, empty) table.

    The stock handler skips empty frames, which leaves no table for downstream loads.
    The I/O manager has already deleted the months being written, so nothing stale remains.
    """

    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection
    ):
        if not obj.is_empty():
            return super().handle_output(context, table_slice, obj, connection)
        empty_arrow = obj.to_arrow()  # noqa: F841  (referenced by name in the SQL below)
        connection.execute(
            f"create table if not exists {table_slice.schema}.{table_slice.table} as "
            "select * from empty_arrow"
        )
        return None


class WarehouseIOManager(DuckDBIOManager):
    """DuckDB warehouse; one schema per layer (the asset key prefix), one table per asset."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [EmptyMonthPolarsTypeHandler()]

    @staticmethod
    def default_load_type() -> type | None:
        return pl.DataFrame


def warehouse_io_manager(database: Path | None = None) -> WarehouseIOManager:
    path = Path(database or settings.WAREHOUSE_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    return WarehouseIOManager(database=str(path))
