"""The `manual_promotion` job: an operator promotes a named version, or rolls back to the
previous champion, from the UI's launchpad or `make promote` / `make rollback`.

An op job, not an asset job: it writes no asset (the registry rows belong to the models and
the gate); it records an observation of models/champion so the asset's page shows the change.
The checks and the decision row are lib/models/manual_promotion.py's; the change of champion is
the gate's own transaction (`registry.apply_decision`).
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from loan_default.defs.models.assets import CHAMPION
from loan_default.defs.resources import ModelStoreResource
from loan_default.lib.models import registry
from loan_default.lib.models.manual_promotion import ManualPromotionError, decision_for
from loan_default.lib.storage.table_store import TableStore

# What stops a change of champion before anything is written: reported as the run's failure.
REFUSALS = (ManualPromotionError, registry.ArtifactIntegrityError, registry.PromotionError)


class ManualPromotionConfig(dg.Config):
    """What to do, and why: every field but `version` and `decided_by` is required."""

    action: Literal["promote", "rollback"] = Field(
        description="promote: `version` becomes champion; rollback: the version the most "
        "recent promotion replaced becomes champion again."
    )
    reason: str = Field(description="Why (required, kept with the decision row).")
    version: str | None = Field(
        default=None, description="The version_id to promote (required for promote)."
    )
    decided_by: str | None = Field(
        default=None, description="Who decides; the OS user running the job when empty."
    )


@dg.op(
    pool="duckdb",
    description="Checks the request, verifies the new champion's artifact, then records the "
    "decision and changes the champion in one transaction.",
)
def change_champion(
    context: dg.OpExecutionContext,
    config: ManualPromotionConfig,
    warehouse: dg.ResourceParam[TableStore],
    model_store: ModelStoreResource,
) -> dg.Output[str]:
    with warehouse.connect() as connection:
        try:
            decision = decision_for(
                connection, config.action, config.version, config.reason, config.decided_by
            )
            record = registry.version(connection, decision["candidate_version"])
            # The API refuses an artifact that fails its sha256: never name such a champion.
            registry.verified_artifact_bytes(record, model_store.object_storage())
            registry.apply_decision(connection, decision)
        except REFUSALS as error:
            raise dg.Failure(description=f"champion unchanged: {error}") from error
        now = registry.champion(connection)
    replaced = decision["champion_version"] or "none"
    message = (
        f"{decision['kind']}: {now.version_id} ({now.family}) is champion, was {replaced}; "
        f"by {decision['decided_by']}: {decision['reason']}"
    )
    context.log.info(message)
    metadata = {
        "kind": decision["kind"],
        "champion_version": now.version_id,
        "champion_family": now.family,
        "replaced_version": replaced,
        "reason": decision["reason"],
        "decided_by": decision["decided_by"],
        "decided_at": decision["decided_at"].isoformat(),
    }
    context.log_event(
        dg.AssetObservation(asset_key=CHAMPION, description=message, metadata=metadata)
    )
    return dg.Output(now.version_id, metadata=metadata)


@dg.job(
    description="Manual promotion or rollback of the champion model, with a reason; recorded "
    "in models.promotion_decisions as kind 'manual' or 'rollback'. The API follows within "
    "LOAN_DEFAULT_API_REFRESH_SECONDS.",
)
def manual_promotion() -> None:
    change_champion()
