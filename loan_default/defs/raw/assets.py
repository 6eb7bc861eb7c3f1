"""The raw CSVs as observable external assets: their data version is the file's sha256.

Each observation also records what the file holds per month, as bronze reads it: the rows and
a content fingerprint (lib/ingest/raw_months.py), so the UI shows when a month's raw content
changed. Bronze keeps the same per-month record in the warehouse (raw.month_history) and
refuses a month already ingested that changed without a restatement.
"""

import dagster as dg

from loan_default.defs.metadata import frame_table
from loan_default.defs.resources import RawDataResource
from loan_default.lib.file_hash import file_sha256
from loan_default.lib.ingest.raw_months import month_fingerprints
from loan_default.lib.ingest.raw_reader import RawInputError
from loan_default.lib.ingest.sources import SOURCES, Source


def raw_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["raw", source.name])


def _raw_file_asset(source: Source):
    @dg.observable_source_asset(
        key=raw_asset_key(source),
        group_name="raw",
        description=f"{source.description} Raw file `{source.file_name}` in the raw folder.",
        tags={"dagster/kind/csv": ""},
    )
    def observe(raw_data: RawDataResource) -> dg.ObserveResult:
        raw = raw_data.locate(source)
        metadata = {"path": dg.MetadataValue.path(str(raw.path)), "bytes": raw.path.stat().st_size}
        try:
            months = month_fingerprints(raw, source, raw_data.date_format)
        except RawInputError as error:
            # Still observed (the file changed); bronze refuses it with the same message.
            metadata["problem"] = str(error)
        else:
            metadata["dagster/row_count"] = int(months["rows"].sum())
            metadata["months"] = frame_table(months)
        return dg.ObserveResult(
            data_version=dg.DataVersion(file_sha256(raw.path)), metadata=metadata
        )

    return observe


raw_files = [_raw_file_asset(source) for source in SOURCES.values()]
