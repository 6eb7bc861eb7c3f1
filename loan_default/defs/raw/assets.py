"""The raw CSVs as observable external assets: their data version is the file's sha256."""

import dagster as dg

from loan_default.defs.resources import RawDataResource
from loan_default.lib.file_hash import file_sha256
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
        path = raw_data.locate(source).path
        return dg.ObserveResult(
            data_version=dg.DataVersion(file_sha256(path)),
            metadata={"path": dg.MetadataValue.path(str(path)), "bytes": path.stat().st_size},
        )

    return observe


raw_files = [_raw_file_asset(source) for source in SOURCES.values()]
