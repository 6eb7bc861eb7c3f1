"""Turns data-quality outcomes into Dagster check results."""

import dagster as dg

from loan_default.lib.data_quality import Outcome

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


def check_spec(
    asset: dg.AssetKey, name: str, description: str, blocking: bool
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, description=description, blocking=blocking)


def check_result(
    asset: dg.AssetKey, name: str, outcome: Outcome, severity: dg.AssetCheckSeverity
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=outcome.passed,
        severity=severity,
        description=outcome.description,
        metadata={
            k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v
            for k, v in outcome.metadata.items()
            if v is not None
        },
    )
