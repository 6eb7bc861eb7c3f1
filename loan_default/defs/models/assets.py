"""Models: one asset per family (one materialization = one registered version), the
champion/challenger gate, and monthly batch predictions."""

from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from loan_default import settings
from loan_default.defs.gold.assets import (
    FEATURE_STORE,
    FEATURE_TABLE,
    LABEL_STORE,
    LABEL_TABLE,
    monthly_freshness,
)
from loan_default.defs.metadata import frame_table, table_metadata
from loan_default.defs.models.config import FAMILY_CONFIGS, ChampionConfig, TrainingConfig
from loan_default.defs.partitions import backfill_policy, month_span, monthly_partitions
from loan_default.defs.resources import ModelStoreResource
from loan_default.lib.models import registry
from loan_default.lib.models.families import FAMILIES
from loan_default.lib.models.manual_promotion import ManualPromotionError, decision_for
from loan_default.lib.models.model_data import TARGET, labeled_applications, newest_labeled_month
from loan_default.lib.models.promotion import (
    Comparison,
    GateRule,
    candidates,
    comparison_months,
    evidence_decisions,
    judge,
    still_candidate,
    waiting_reason,
)
from loan_default.lib.models.reason_codes import score_with_reasons, stored_reasons
from loan_default.lib.models.served_decisions import SERVED_TABLE, served_decisions
from loan_default.lib.models.training import train
from loan_default.lib.models.training_report import (
    importance_markdown,
    metrics_markdown,
    training_curves_html,
)
from loan_default.lib.months import add_months
from loan_default.lib.storage import object_storage
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.table_store import TableStore
from loan_default.lib.storage.warehouse_tables import fingerprint

CHAMPION = dg.AssetKey(["models", "champion"])
PREDICTIONS = dg.AssetKey(["models", "predictions"])
PREDICTIONS_TABLE = "models.predictions"


def _training_data(warehouse: TableStore, config: TrainingConfig):
    features, labels = warehouse.read(FEATURE_TABLE), warehouse.read(LABEL_TABLE)
    windows, as_of = config.windows(newest_labeled_month(labels))
    data = labeled_applications(features, labels, settings.LABEL, as_of)
    return data, features, windows, as_of


def _train_family(
    context: dg.AssetExecutionContext,
    family: str,
    config,
    warehouse: TableStore,
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    data, unlabeled, windows, as_of = _training_data(warehouse, config)
    with warehouse.connect() as connection:
        first_of_family = family not in registry.latest_versions(connection)
    context.log.info(f"{family}: windows {windows.as_dict()}, labels observed by {as_of}")
    result = train(
        family,
        data,
        windows,
        config.hyperparameters(),
        seed=config.seed,
        clickstream_dropout=config.clickstream_dropout,
        decision_threshold=config.decision_threshold,
        unlabeled=unlabeled,
        log=context.log.info,
    )
    trained_at = datetime.now(UTC).replace(tzinfo=None)
    version_id = f"{family}-{trained_at:%Y%m%dT%H%M%S%f}"
    s3 = model_store.object_storage()
    folder = object_storage.join(model_store.artifact_dir, family)
    location, sha = registry.save_artifact(result.model, folder, version_id, s3)
    record = registry.RegistryRecord(
        family=family,
        version_id=version_id,
        trained_at=trained_at,
        as_of_month=as_of,
        windows=windows.as_dict(),
        hyperparameters=config.hyperparameters(),
        features=result.model.features,
        metrics=result.metrics,
        threshold=result.model.threshold,
        artifact_path=location,
        artifact_sha256=sha,
        input_data_version=fingerprint(data),
        code_version=registry.code_version(),
        status="challenger",
        reason_trained=config.reason or ("initial" if first_of_family else "scheduled"),
        train_seconds=result.train_seconds,
        reason_detail=config.reason_detail,
        label_def=settings.LABEL.name,
    )
    with warehouse.connect() as connection:
        registry.register(connection, record)
    metadata = {
        "version_id": version_id,
        "metrics": dg.MetadataValue.md(metrics_markdown(result.metrics)),
        "feature_importance": dg.MetadataValue.md(importance_markdown(result.importance)),
        "oot_roc_auc": (result.metrics.get("oot") or {}).get("roc_auc"),
        "validation_roc_auc": result.metrics["validation"]["roc_auc"],
        "train_seconds": result.train_seconds,
        "artifact": dg.MetadataValue.path(location),
        "artifact_sha256": sha,
    }
    # The family's own tables (the scorecard's points per bin, its IV per feature): in the UI,
    # and as CSV beside the artifact.
    for name, table in FAMILIES[family].report_tables(result.model.estimator).items():
        csv = object_storage.join(folder, f"{version_id}.{name}.csv")
        object_storage.write_bytes(csv, table.write_csv().encode(), s3)
        metadata[name] = frame_table(table)
        metadata[f"{name}_csv"] = dg.MetadataValue.path(csv)
    if result.history:
        curves = object_storage.join(model_store.report_dir, f"{version_id}.html")
        object_storage.write_bytes(curves, training_curves_html(result.history).encode(), s3)
        metadata["training_curves"] = dg.MetadataValue.path(curves)
    return dg.MaterializeResult(metadata={k: v for k, v in metadata.items() if v is not None})


def _model_asset(family: str, config_type: type) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["models", family]),
        deps=[FEATURE_STORE, LABEL_STORE],
        group_name="models",
        kinds=set(FAMILIES[family].kinds),
        owners=settings.OWNERS,
        pool="duckdb",
        description=f"Trains and registers a new {family.replace('_', ' ')} version.",
    )
    def model(
        context: dg.AssetExecutionContext,
        config: config_type,
        warehouse: dg.ResourceParam[TableStore],
        model_store: ModelStoreResource,
    ) -> dg.MaterializeResult:
        return _train_family(context, family, config, warehouse, model_store)

    return model


model_assets = [_model_asset(family, config) for family, config in FAMILY_CONFIGS.items()]


def _compare(
    candidate: registry.RegistryRecord,
    current: registry.RegistryRecord,
    data: pl.DataFrame,
    months: list[date],
    s3: S3Endpoint | None,
) -> Comparison:
    """Both versions scored on the loans of `months`, held out for both."""
    rows = data.filter(pl.col("application_month").is_in(months))
    scores = [
        registry.load_artifact(r, s3).score(rows)["calibrated_probability"].to_numpy()
        for r in (candidate, current)
    ]
    return Comparison.of(months, rows[TARGET].to_numpy(), *scores)


def _decision_row(candidate, current, comparison, decision, rule: GateRule) -> dict:
    evidence = comparison or Comparison(months=(), n=0)
    return {
        "decided_at": datetime.now(UTC).replace(tzinfo=None),
        "candidate_version": candidate.version_id,
        "champion_version": current.version_id if current else None,
        "window_name": "held_out_for_both",
        "window_months": ",".join(m.isoformat() for m in evidence.months) or None,
        "n": evidence.n,
        "candidate_auc": evidence.challenger_auc,
        "champion_auc": evidence.champion_auc,
        "auc_difference": evidence.difference,
        "difference_low": evidence.difference_low,
        "difference_high": evidence.difference_high,
        "lower_bound": decision.lower_bound,
        "margin": rule.margin,
        "confidence": rule.confidence,
        "promoted": decision.promote,
        "reason": decision.reason,
    }


# What stops an operator's change of champion before anything is written: the run's failure.
MANUAL_REFUSALS = (ManualPromotionError, registry.ArtifactIntegrityError, registry.PromotionError)
# The tags by which a run names its months: one partition, or a single-run range.
MONTH_TAGS = ("dagster/partition", "dagster/asset_partition_range_start")


def _manual_change(
    context: dg.AssetExecutionContext,
    config: ChampionConfig,
    warehouse: TableStore,
    s3: S3Endpoint | None,
    labels_through: date,
) -> dg.MaterializeResult:
    """An operator's promotion or rollback instead of the gate's judgement: the request checked
    (lib/models/manual_promotion.py), the new champion's artifact verified, then the decision
    and the change of champion in the gate's own transaction. A refusal fails the step with the
    registry as it was, so nothing downstream runs."""
    if PREDICTIONS in context.job_def.asset_layer.selected_asset_keys and not any(
        tag in context.run.tags for tag in MONTH_TAGS
    ):
        # Else the champion would change and the predictions step fail on the missing months,
        # leaving predictions and monitoring to the old champion.
        raise dg.Failure(
            description="champion unchanged: the run names no months to score again: launch it "
            "over a partition range (tags dagster/asset_partition_range_start and _end)"
        )
    with warehouse.connect() as connection:
        try:
            decision = decision_for(
                connection, config.action, config.version, config.reason, config.decided_by
            )
            record = registry.version(connection, decision["candidate_version"])
            # The API refuses an artifact that fails its sha256: never name such a champion.
            registry.verified_artifact_bytes(record, s3)
            registry.apply_decision(connection, decision)
        except MANUAL_REFUSALS as error:
            raise dg.Failure(description=f"champion unchanged: {error}") from error
        now = registry.champion(connection)
    replaced = decision["champion_version"] or "none"
    context.log.info(
        f"{decision['kind']}: {now.version_id} ({now.family}) is champion, was {replaced}; "
        f"by {decision['decided_by']}: {decision['reason']}"
    )
    row = (
        f"| {now.version_id} | {decision['kind']}: champion, replaces {replaced} | "
        f"by {decision['decided_by']}: {decision['reason']} |"
    )
    return dg.MaterializeResult(
        metadata={
            # The gate's keys: no gate ran, so who waited for the last one is not known here
            # (none is listed; the next gate run finds them again).
            "champion_version": now.version_id,
            "champion_family": now.family,
            "decisions": dg.MetadataValue.md(
                "| candidate | decision | reason |\n|---|---|---|\n" + row
            ),
            "pending_challengers": dg.MetadataValue.json([]),
            "pending_after_alert": dg.MetadataValue.json([]),
            "labels_through": labels_through.isoformat(),
            "kind": decision["kind"],
            "replaced_version": replaced,
            "reason": decision["reason"],
            "decided_by": decision["decided_by"],
            "decided_at": decision["decided_at"].isoformat(),
        }
    )


@dg.asset(
    key=CHAMPION,
    deps=[a.key for a in model_assets],
    group_name="models",
    kinds={"duckdb"},
    owners=settings.OWNERS,
    pool="duckdb",
    description=(
        "Champion/challenger gate over versions not yet judged: both scored on loans held out "
        "for both (never the challenger's out-of-time window), with the evidence recorded. With "
        "config action promote or rollback (the manual_promotion job), an operator's decision "
        "instead, with its reason."
    ),
)
def champion(
    context: dg.AssetExecutionContext,
    config: ChampionConfig,
    warehouse: dg.ResourceParam[TableStore],
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    ignored = config.ignored()
    if ignored:
        raise dg.Failure(
            description=f"champion unchanged: action {config.action!r} does not read "
            f"{', '.join(ignored)}"
            + (" (set action promote or rollback)" if config.action == "gate" else "")
        )
    labels = warehouse.read(LABEL_TABLE)
    labels_through = newest_labeled_month(labels)
    s3 = model_store.object_storage()
    if config.action != "gate":
        return _manual_change(context, config, warehouse, s3, labels_through)
    rule = config.rule()
    data = labeled_applications(warehouse.read(FEATURE_TABLE), labels, settings.LABEL)
    newest_application = add_months(labels_through, -settings.LABEL.mob)
    lines, pending, unproven = [], [], set()
    with warehouse.connect() as connection:
        history = registry.decisions(connection)
        for candidate in candidates(registry.latest_versions(connection)):
            current = registry.champion(connection)
            comparison, months, earlier = None, [], []
            if current is not None:
                months = rule.pooled(
                    comparison_months(candidate.windows, current.windows, newest_application)
                )
                earlier = history.filter(
                    (pl.col("candidate_version") == candidate.version_id)
                    & (pl.col("champion_version") == current.version_id)
                ).to_dicts()
                waiting = waiting_reason(months, earlier, rule)
                if waiting is not None:
                    if still_candidate(earlier, rule):
                        pending.append(candidate.version_id)
                    if not evidence_decisions(earlier):
                        unproven.add(candidate.version_id)
                    lines.append(f"| {candidate.version_id} | not judged | {waiting} |")
                    continue
                comparison = _compare(candidate, current, data, months, s3)
            decision = judge(comparison, rule)
            # The decision and the change of champion commit together, or not at all.
            registry.apply_decision(
                connection,
                {**_decision_row(candidate, current, comparison, decision, rule), "kind": "gate"},
            )
            verdict = "promoted" if decision.promote else "refused"
            judged = [*earlier, {"n": comparison.n if comparison else 0}]
            if not decision.promote and still_candidate(judged, rule):
                pending.append(candidate.version_id)
            if not evidence_decisions(judged):
                unproven.add(candidate.version_id)
            lines.append(f"| {candidate.version_id} | {verdict} | {decision.reason} |")
            context.log.info(f"{candidate.version_id}: {verdict}: {decision.reason}")
        now = registry.champion(connection)
        after_alert = {
            r.version_id
            for r in registry.all_versions(connection)
            if r.reason_trained == registry.RETRAIN_AFTER_ALERT
        }
    return dg.MaterializeResult(
        metadata={
            "champion_version": now.version_id if now else "none",
            "champion_family": now.family if now else "none",
            "decisions": dg.MetadataValue.md(
                "| candidate | decision | reason |\n|---|---|---|\n" + "\n".join(lines)
                if lines
                else "no new versions to judge"
            ),
            # Read by the sensors: who waits, and for labels after when. While a retrain asked
            # by an alarm waits for its first held-out evidence, the alarm does not ask again;
            # once judged and refused, it no longer holds the next retrain back.
            "pending_challengers": dg.MetadataValue.json(pending),
            "pending_after_alert": dg.MetadataValue.json(
                [v for v in pending if v in after_alert and v in unproven]
            ),
            "labels_through": labels_through.isoformat(),
        }
    )


@dg.asset(
    key=PREDICTIONS,
    deps=[FEATURE_STORE, CHAMPION],
    group_name="predictions",
    partitions_def=monthly_partitions,
    freshness_policy=monthly_freshness,
    backfill_policy=backfill_policy,
    kinds={"duckdb", "polars"},
    owners=settings.OWNERS,
    pool="duckdb",
    description=(
        "Scores every application of month T with the champion and the newest version of each "
        "family; is_champion marks the champion's score (exactly one per application). "
        "Every application decided as default (decision = 1) has its top four reason codes "
        "(reason_codes, from the model that scored it; catalogue loan_default/reason_codes.json)."
    ),
)
def predictions(
    context: dg.AssetExecutionContext,
    warehouse: dg.ResourceParam[TableStore],
    model_store: ModelStoreResource,
) -> Iterator[dg.MaterializeResult]:
    with warehouse.connect() as connection:
        versions = _scored_versions(connection)
        current = registry.champion(connection)
    champion_id = current.version_id if current else None
    s3 = model_store.object_storage()
    models = {v: registry.load_artifact(r, s3) for v, r in versions.items()}
    start, end = month_span(context)
    # Every month at once: each version scores and explains the whole range in one call.
    features = warehouse.read(FEATURE_TABLE, "application_month", start, end)
    scored_at = datetime.now(UTC)
    scored = pl.concat(
        features.select("loan_id", "application_month")
        .hstack(stored_reasons(score_with_reasons(models[version_id], features)))
        .with_columns(
            model_family=pl.lit(record.family),
            model_version=pl.lit(version_id),
            is_champion=pl.lit(version_id == champion_id),
            scored_at=pl.lit(scored_at),
        )
        for version_id, record in versions.items()
    )
    existing = (
        warehouse.read(SERVED_TABLE, "application_month", start, end)
        if warehouse.exists(SERVED_TABLE)
        else None
    )
    served = served_decisions(existing, scored.filter(pl.col("is_champion")))
    # One transaction for the range: every month in it is replaced, as a run of that month would.
    with warehouse.replacing(start, end) as replacement:
        replacement.write(PREDICTIONS_TABLE, scored, "application_month")
        replacement.write(SERVED_TABLE, served, "application_month")
    metadata = table_metadata(
        warehouse.describe(PREDICTIONS_TABLE, "application_month", start, end)
    )
    yield dg.MaterializeResult(
        metadata={
            **metadata,
            "champion": champion_id or "none",
            "models": dg.MetadataValue.json({v: r.family for v, r in versions.items()}),
        }
    )


def _scored_versions(connection) -> dict[str, registry.RegistryRecord]:
    """The champion and the newest version of each declared family, in a stable order: a
    refused challenger of the champion's family is scored beside it, never instead of it."""
    latest = registry.latest_versions(connection)
    chosen = {latest[name].version_id: latest[name] for name in FAMILIES if name in latest}
    if not chosen:
        raise dg.Failure("no trained model in the registry: materialize group 'models' first")
    current = registry.champion(connection)
    if current is not None:
        chosen[current.version_id] = current
    return dict(sorted(chosen.items(), key=lambda item: (item[1].family, item[0])))
