"""Resources: where raw files are read from, the warehouse the tables live in, and where model
artifacts and reports go. Their defaults are the configured profile's (`loan_default.profile`)."""

from pathlib import Path

import dagster as dg

from loan_default import profile, settings
from loan_default.lib.ingest.raw_reader import RawFile
from loan_default.lib.ingest.sources import Source
from loan_default.lib.storage.embedded_tables import EmbeddedTables
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.table_store import TableStore


class RawDataResource(dg.ConfigurableResource):
    """The folder holding the four source CSVs (plain or .gz) and the date format they use."""

    raw_dir: str = str(settings.RAW_DIR)
    date_format: str = settings.RAW_DATE_FORMAT

    def locate(self, source: Source) -> RawFile:
        return RawFile.locate(Path(self.raw_dir), source)


class S3Resource(dg.ConfigurableResource):
    """An S3-compatible object store: AWS, or a server on loopback."""

    endpoint: str = settings.S3_ENDPOINT
    region: str = settings.S3_REGION
    access_key_id: str = settings.S3_ACCESS_KEY_ID
    secret_access_key: str = settings.S3_SECRET_ACCESS_KEY

    def endpoint_settings(self) -> S3Endpoint:
        return S3Endpoint(self.endpoint, self.region, self.access_key_id, self.secret_access_key)


class ModelStoreResource(dg.ConfigurableResource):
    """Where model artifacts and reports are written: each a folder, or an s3:// prefix on `s3`."""

    artifact_dir: str = profile.ARTIFACT_DIR
    report_dir: str = profile.REPORT_DIR
    s3: S3Resource | None = None

    def object_storage(self) -> S3Endpoint | None:
        return self.s3.endpoint_settings() if self.s3 else None


def warehouse_resource(database: Path | None = None) -> TableStore:
    """The embedded warehouse: a DuckDB file with Parquet layers beside it.

    The warehouse resource is the store itself (lib/storage/table_store): assets ask for it as
    `warehouse: dg.ResourceParam[TableStore]`, whichever backend the profile chose.
    """
    return EmbeddedTables(Path(database or settings.WAREHOUSE_PATH), profile.duckdb_config())


def profile_resources() -> dict:
    """The resources of the configured profile."""
    return {
        "warehouse": profile.warehouse(),
        "raw_data": RawDataResource(),
        # The S3 endpoint given here, not as the field's default: a nested resource as a
        # default recurses without end when Dagster initialises it.
        "model_store": ModelStoreResource(s3=S3Resource() if settings.PRODUCTION else None),
    }
