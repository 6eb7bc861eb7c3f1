"""Check results from threshold findings: RETRAIN is an ERROR, ACTIVE_MONITORING a WARN.

Checks judge the champion on the newest month of the run that has something to judge; the
retrain sensor reads `model_version` and `month` from their metadata.
"""

from collections.abc import Mapping
from datetime import date

import dagster as dg

from loan_default.defs.checks import check_spec
from loan_default.lib.monitoring.alerts import Finding, action_of

ERROR_ACTIONS = {"RETRAIN"}


def finding_check(
    asset: dg.AssetKey,
    name: str,
    findings: list[Finding],
    subject: Mapping[str, object] | None,
    figures: Mapping[str, float | None] | None = None,
    not_judged: str = "no champion rows in the months of this run",
    note: str = "",
    details: Mapping[str, dg.MetadataValue] | None = None,
) -> dg.AssetCheckResult:
    """One check result; `subject` (month, family, version) is None when nothing was judged.
    `note` is appended to the description (e.g. what the check left out), `details` to the
    metadata (tables, lists)."""
    if subject is None:
        return dg.AssetCheckResult(
            asset_key=asset,
            check_name=name,
            passed=True,
            description=f"nothing to judge: {not_judged}",
            metadata=dict(details or {}),
        )
    action = action_of(findings)
    month = subject["month"]
    description = "; ".join(f.reason for f in findings) or f"{action}: within thresholds"
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=action == "MONITOR",
        severity=dg.AssetCheckSeverity.ERROR
        if action in ERROR_ACTIONS
        else dg.AssetCheckSeverity.WARN,
        description=f"{description}; {note}" if note else description,
        metadata={
            "month": month.isoformat() if isinstance(month, date) else str(month),
            "model_family": str(subject["model_family"]),
            "model_version": str(subject["model_version"]),
            "action": action,
            "reasons": dg.MetadataValue.json([f.reason for f in findings]),
            **{k: float(v) for k, v in (figures or {}).items() if v is not None},
            **(details or {}),
        },
    )


def non_blocking_specs(
    asset: dg.AssetKey, descriptions: Mapping[str, str]
) -> list[dg.AssetCheckSpec]:
    """Monitoring checks never block: the report must still run when a champion fails."""
    return [check_spec(asset, name, text, blocking=False) for name, text in descriptions.items()]
