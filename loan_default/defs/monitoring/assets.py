"""Monitoring: drift and estimated performance at once, realized performance when labels arrive.

Drift and estimates are partitioned by application month T; realized performance by label
month T and reads the predictions of T - mob through a partition mapping.
"""

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
from loan_default.defs.metadata import table_metadata
from loan_default.defs.models.assets import PREDICTIONS, PREDICTIONS_TABLE
from loan_default.defs.monitoring.checks import finding_check, non_blocking_specs
from loan_default.defs.partitions import backfill_policy, month_span, monthly_partitions, months_of
from loan_default.defs.resources import ModelStoreResource
from loan_default.lib.models import registry
from loan_default.lib.monitoring.alerts import drift_findings, judge_estimate, performance_findings
from loan_default.lib.monitoring.drift import BinningRule
from loan_default.lib.monitoring.fairness import (
    FairnessRules,
    adverse_impact_findings,
    age_band,
    fairness_table,
    not_judged_bands,
    pooled_months_needed,
)
from loan_default.lib.monitoring.monitoring_tables import (
    DRIFT_SCHEMA,
    ESTIMATE_SCHEMA,
    PERFORMANCE_SCHEMA,
    DriftReference,
    ScoredVersion,
    drift_rows,
    estimate_rows,
    estimates_to_judge,
    input_group,
    performance_rows,
    scores_with_labels,
)
from loan_default.lib.months import add_months
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.table_store import TableStore
from loan_default.lib.thresholds import load_thresholds

DRIFT = dg.AssetKey(["monitoring", "drift"])
ESTIMATED = dg.AssetKey(["monitoring", "estimated_performance"])
PERFORMANCE = dg.AssetKey(["monitoring", "model_performance"])
FAIRNESS = dg.AssetKey(["monitoring", "fairness"])
DRIFT_TABLE = "monitoring.drift"
ESTIMATE_TABLE = "monitoring.estimated_performance"
PERFORMANCE_TABLE = "monitoring.model_performance"
FAIRNESS_TABLE = "monitoring.fairness"

RULES = load_thresholds()["monitoring"]
MOB = settings.LABEL.mob
ROLLING_MONTHS = RULES["rolling_months"]
FAIRNESS_RULES = FairnessRules.of(RULES["fairness"])
# The fairness table's longest pooled window: rolling_months, or the adaptive window's cap.
FAIRNESS_MONTHS = pooled_months_needed(FAIRNESS_RULES, ROLLING_MONTHS)

monitoring_common = dict(
    group_name="monitoring",
    partitions_def=monthly_partitions,
    backfill_policy=backfill_policy,
    kinds={"duckdb", "polars"},
    owners=settings.OWNERS,
    pool="duckdb",
    freshness_policy=monthly_freshness,  # month T is due with gold, by the 5th
)
STABILITY_CHECKS = {
    "champion_score_psi": "PSI of the champion's score against its training population",
    "champion_feature_csi": "CSI of the champion's inputs (non-missing values) against its "
    "training population",
    "champion_input_missing": "change of each champion input's missing share against its "
    "training population",
}
STABILITY_SIGNALS = {
    "champion_score_psi": "score_psi",
    "champion_feature_csi": "csi:",
    "champion_input_missing": "missing:",
}
ESTIMATE_CHECKS = {
    "champion_estimated_roc_auc": "P0 ROC-AUC of the champion estimated from its calibrated "
    "probabilities, on the newest held-out month whose labels have not arrived"
}
PERFORMANCE_CHECKS = {
    f"champion_{metric}": f"{rule['priority']} {metric} of the champion on held-out labels "
    f"({RULES['evaluate_on']})"
    for metric, rule in RULES["performance"].items()
}


def _versions(warehouse: TableStore) -> dict[str, registry.RegistryRecord]:
    with warehouse.connect() as connection:
        return {r.version_id: r for r in registry.all_versions(connection)}


def _sql_text(value: str) -> str:
    """`value` as a SQL string literal, for a `where` condition of the warehouse's reads."""
    return "'" + value.replace("'", "''") + "'"


def _drift_reference(
    warehouse: TableStore,
    record: registry.RegistryRecord,
    rule: BinningRule,
    s3: S3Endpoint | None,
) -> DriftReference:
    """The version's training population and its own scores of it: from the predictions
    table when the version scored those months, otherwise from its artifact."""
    version = ScoredVersion.of(record)
    first, last = version.train_months
    months = ("application_month", first, add_months(last, 1))
    train = warehouse.read(FEATURE_TABLE, *months)
    scored = warehouse.read(
        PREDICTIONS_TABLE, *months, where=f"model_version = {_sql_text(record.version_id)}"
    ).select("loan_id", "calibrated_probability")
    if scored.height == train.height:
        train = train.join(scored, on="loan_id")
        scores = train["calibrated_probability"]
    else:
        scores = registry.load_artifact(record, s3).score(train)["calibrated_probability"]
    return DriftReference.of(version, train, scores, rule)


def _write(
    warehouse: TableStore,
    table: str,
    frames: list[pl.DataFrame],
    month_column: str,
    window: tuple,
) -> tuple[pl.DataFrame, dict]:
    """Replaces the run's months of `table` and returns the rows with their UI metadata."""
    rows = pl.concat(frames).sort(month_column, "model_family", maintain_order=True)
    warehouse.replace(table, rows, month_column, *window)
    return rows, table_metadata(warehouse.describe(table, month_column, *window))


def _newest_champion_rows(frame: pl.DataFrame, month_column: str) -> pl.DataFrame | None:
    """The champion's rows of the newest month that has any, or None."""
    champion = frame.filter(pl.col("is_champion"))
    if champion.is_empty():
        return None
    return champion.filter(pl.col(month_column) == champion[month_column].max())


def _subject(rows: pl.DataFrame, month_column: str) -> dict:
    first = rows.row(0, named=True)
    return {
        "month": first[month_column],
        "model_family": first["model_family"],
        "model_version": first["model_version"],
    }


@dg.asset(
    key=DRIFT,
    deps=[PREDICTIONS, FEATURE_STORE],
    check_specs=non_blocking_specs(DRIFT, STABILITY_CHECKS),
    description=(
        "PSI of each model version's score, CSI of its inputs (non-missing values) and their "
        "missing shares for application month T, against the version's training population. "
        "Needs no labels; months inside a version's fitted window are shown, not judged."
    ),
    **monitoring_common,
)
def drift(
    context: dg.AssetExecutionContext,
    warehouse: dg.ResourceParam[TableStore],
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    rule = BinningRule.of(RULES["stability"])
    frames = [pl.DataFrame(schema=DRIFT_SCHEMA)]
    start, end = month_span(context)
    s3 = model_store.object_storage()
    records = _versions(warehouse)
    # One read for the whole run, split in memory: per-month queries would dominate.
    features = warehouse.read(FEATURE_TABLE, "application_month", start, end)
    predictions = warehouse.read(PREDICTIONS_TABLE, "application_month", start, end)
    references: dict[str, DriftReference] = {}
    for (month, version_id, champion), scored in predictions.partition_by(
        "application_month", "model_version", "is_champion", as_dict=True
    ).items():
        if version_id not in references:
            references[version_id] = _drift_reference(warehouse, records[version_id], rule, s3)
        current = features.join(scored.select("loan_id", "calibrated_probability"), on="loan_id")
        scores = current["calibrated_probability"]
        frames.append(drift_rows(month, references[version_id], champion, current, scores))
    table, metadata = _write(warehouse, DRIFT_TABLE, frames, "month", (start, end))
    return dg.MaterializeResult(metadata=metadata, check_results=stability_check_results(table))


_IN_WINDOW = "the newest month is inside the champion's fitted window: shown, not judged"


def stability_check_results(table: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """The champion's score PSI, input CSI and missingness checks on the newest month of
    `table`; a month inside the champion's fitted window is shown, never judged."""
    rows = _newest_champion_rows(table, "month")
    if rows is None:
        return [finding_check(DRIFT, name, [], None) for name in STABILITY_CHECKS]
    if not rows["held_out"].all():
        return [
            finding_check(DRIFT, name, [], None, not_judged=_IN_WINDOW) for name in STABILITY_CHECKS
        ]
    subject = _subject(rows, "month")
    findings = drift_findings(rows, RULES, input_group)
    features = rows.filter(pl.col("kind") == "feature")
    score = rows.filter(pl.col("kind") == "score")["psi"]
    missing_change = (features["missing_share"] - features["missing_share_reference"]).abs()
    figures = {
        "champion_score_psi": {"score_psi": score[0] if score.len() else None},
        "champion_feature_csi": {"max_feature_csi": features["psi"].max()},
        "champion_input_missing": {"max_missing_share_change": missing_change.max()},
    }
    return [
        finding_check(
            DRIFT,
            name,
            [f for f in findings if f.signal.startswith(STABILITY_SIGNALS[name])],
            subject,
            figures[name],
        )
        for name in STABILITY_CHECKS
    ]


@dg.asset(
    key=ESTIMATED,
    deps=[PREDICTIONS],
    check_specs=non_blocking_specs(ESTIMATED, ESTIMATE_CHECKS),
    description=(
        "Default rate and ROC-AUC each version expects of application month T, from its "
        "calibrated probabilities: the performance signal before labels arrive."
    ),
    **monitoring_common,
)
def estimated_performance(
    context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[TableStore]
) -> dg.MaterializeResult:
    frames = [pl.DataFrame(schema=ESTIMATE_SCHEMA)]
    start, end = month_span(context)
    predictions = warehouse.read(PREDICTIONS_TABLE, "application_month", start, end)
    for (month,), rows in predictions.partition_by("application_month", as_dict=True).items():
        frames.append(estimate_rows(month, rows, MOB))
    table, metadata = _write(warehouse, ESTIMATE_TABLE, frames, "application_month", (start, end))
    versions = {k: ScoredVersion.of(r) for k, r in _versions(warehouse).items()}
    judged = estimates_to_judge(table, versions, _newest_label_month(warehouse))
    return dg.MaterializeResult(metadata=metadata, check_results=estimate_check_results(judged))


def _newest_label_month(warehouse: TableStore):
    """The newest label month of the label store, None before it has any."""
    labels = warehouse.read_if_exists(LABEL_TABLE)
    return None if labels is None else labels["label_month"].max()


def estimate_check_results(judged: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """The champion's estimated ROC-AUC on its newest held-out month without labels yet."""
    rows = _newest_champion_rows(judged, "application_month")
    if rows is None:
        not_judged = "no held-out champion month without labels in this run"
        return [
            finding_check(ESTIMATED, n, [], None, not_judged=not_judged) for n in ESTIMATE_CHECKS
        ]
    row = rows.row(0, named=True)
    return [
        finding_check(
            ESTIMATED,
            "champion_estimated_roc_auc",
            judge_estimate(row["expected_roc_auc"], RULES),
            _subject(rows, "application_month"),
            {"expected_roc_auc": row["expected_roc_auc"], "n": row["n"]},
        )
    ]


def _offset(first: int, last: int) -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(
        start_offset=first, end_offset=last, allow_nonexistent_upstream_partitions=True
    )


@dg.asset(
    key=PERFORMANCE,
    deps=[
        # Label month T joins the scores made at application month T - mob (and the months
        # before it for the rolling window); nothing newer than T - mob is read.
        dg.AssetDep(PREDICTIONS, partition_mapping=_offset(-(MOB + ROLLING_MONTHS - 1), -MOB)),
        dg.AssetDep(ESTIMATED, partition_mapping=_offset(-MOB, -MOB)),
        dg.AssetDep(LABEL_STORE, partition_mapping=_offset(-(ROLLING_MONTHS - 1), 0)),
    ],
    check_specs=non_blocking_specs(PERFORMANCE, PERFORMANCE_CHECKS),
    description=(
        f"Realized performance of each version for label month T: the predictions made at "
        f"T - {MOB} joined with the labels of T ({settings.LABEL.text}), alone and pooled over "
        f"the last months, with the estimate made at T - {MOB} beside it."
    ),
    **monitoring_common,
)
def model_performance(
    context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[TableStore]
) -> dg.MaterializeResult:
    frames = [pl.DataFrame(schema=PERFORMANCE_SCHEMA)]
    start, end = month_span(context)
    first_label = add_months(start, -(ROLLING_MONTHS - 1))
    versions = {k: ScoredVersion.of(r) for k, r in _versions(warehouse).items()}
    labels = warehouse.read(LABEL_TABLE, "label_month", first_label, end)
    predictions = warehouse.read(
        PREDICTIONS_TABLE,
        "application_month",
        add_months(first_label, -MOB),
        add_months(end, -MOB),
    )
    estimates = warehouse.read(
        ESTIMATE_TABLE, "application_month", add_months(start, -MOB), add_months(end, -MOB)
    )
    scored_labels = scores_with_labels(predictions, labels, settings.LABEL)
    for label_month in months_of(context):
        pooled_from = add_months(label_month, -(ROLLING_MONTHS - 1))
        frames.append(
            performance_rows(
                label_month,
                scored_labels.filter(pl.col("label_month").is_between(pooled_from, label_month)),
                versions,
                estimates.filter(pl.col("application_month") == add_months(label_month, -MOB)),
                MOB,
                ROLLING_MONTHS,
            )
        )
    table, metadata = _write(warehouse, PERFORMANCE_TABLE, frames, "label_month", (start, end))
    return dg.MaterializeResult(metadata=metadata, check_results=performance_check_results(table))


def performance_check_results(table: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """One check per thresholded metric, on the champion's newest held-out judged window."""
    judged = table.filter(pl.col("held_out") & (pl.col("window") == RULES["evaluate_on"]))
    rows = _newest_champion_rows(judged, "label_month")
    if rows is None:
        return [finding_check(PERFORMANCE, name, [], None) for name in PERFORMANCE_CHECKS]
    row = rows.row(0, named=True)
    findings = performance_findings(row, RULES)
    subject = _subject(rows, "label_month")
    return [
        finding_check(
            PERFORMANCE,
            f"champion_{metric}",
            [f for f in findings if f.signal == metric or f.signal.startswith(f"{metric}_drop")],
            subject,
            {metric: row[metric], "n": row["n"], "months_pooled": row["months_pooled"]},
        )
        for metric in RULES["performance"]
    ]


FAIRNESS_CHECKS = {
    "champion_adverse_impact_ratio": "Four-fifths rule: each age band's approval rate at the "
    "champion's threshold against the most-approved band's, on the newest application month "
    f"pooled over {FAIRNESS_RULES.evaluate_on} (adaptive: the fewest months, at most "
    f"{FAIRNESS_RULES.max_window_months}, that give every band "
    f"{FAIRNESS_RULES.min_band_loans} loans); only bands with at least "
    f"{FAIRNESS_RULES.min_band_loans} loans are judged"
}


@dg.asset(
    key=FAIRNESS,
    deps=[
        # Application clock: month T and the months pooled before it. Label clock: the labels
        # of T (and the pooled months) joined with the scores made at T - mob.
        dg.AssetDep(PREDICTIONS, partition_mapping=_offset(-(MOB + FAIRNESS_MONTHS - 1), 0)),
        dg.AssetDep(FEATURE_STORE, partition_mapping=_offset(-(MOB + FAIRNESS_MONTHS - 1), 0)),
        dg.AssetDep(LABEL_STORE, partition_mapping=_offset(-(FAIRNESS_MONTHS - 1), 0)),
    ],
    check_specs=non_blocking_specs(FAIRNESS, FAIRNESS_CHECKS),
    description=(
        "Per version and age band, on two clocks: the approval rate at the version's threshold "
        "and the adverse impact ratio against the most-approved band for application month T "
        f"(clock 'application'), and for label month T the loans scored at T - {MOB} with "
        "their labels: approval, default, true- and false-positive rates and ROC-AUC (clock "
        f"'label'); each month alone, pooled over rolling_{ROLLING_MONTHS}m, and pooled over "
        "its adaptive window: the fewest months (months_pooled, at most "
        f"{FAIRNESS_RULES.max_window_months}) in which every band holds "
        f"{FAIRNESS_RULES.min_band_loans} loans. The check judges {FAIRNESS_RULES.evaluate_on}."
    ),
    **monitoring_common,
)
def fairness(
    context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[TableStore]
) -> dg.MaterializeResult:
    start, end = month_span(context)
    first_pooled = add_months(start, -(FAIRNESS_MONTHS - 1))
    first_scored = add_months(first_pooled, -MOB)
    versions = {k: ScoredVersion.of(r) for k, r in _versions(warehouse).items()}
    # Only the age leaves the feature store: no other applicant attribute is read.
    ages = warehouse.read(FEATURE_TABLE, "application_month", first_scored, end)
    scored = (
        warehouse.read(PREDICTIONS_TABLE, "application_month", first_scored, end)
        .join(ages.select("loan_id", "age"), on="loan_id", how="left")
        .with_columns(age_band(pl.col("age"), FAIRNESS_RULES.bands))
    )
    labels = warehouse.read(LABEL_TABLE, "label_month", first_pooled, end)
    labelled = scores_with_labels(scored, labels, settings.LABEL)
    table = fairness_table(
        months_of(context), scored, labelled, versions, FAIRNESS_RULES, ROLLING_MONTHS
    ).sort("month", "clock", "model_family", maintain_order=True)
    warehouse.replace(FAIRNESS_TABLE, table, "month", start, end)
    metadata = table_metadata(warehouse.describe(FAIRNESS_TABLE, "month", start, end))
    return dg.MaterializeResult(
        metadata=metadata, check_results=adverse_impact_check_results(table)
    )


def adverse_impact_check_results(table: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """The four-fifths rule on the champion's newest application month, pooled over the
    judged window (evaluate_on); every month is judged, fitted or not: approval gaps of
    in-sample months are decisions too."""
    name = "champion_adverse_impact_ratio"
    window = table.filter(
        (pl.col("clock") == "application") & (pl.col("window") == FAIRNESS_RULES.evaluate_on)
    )
    rows = _newest_champion_rows(window, "month")
    if rows is None:
        return [finding_check(FAIRNESS, name, [], None)]
    left_out = not_judged_bands(rows, FAIRNESS_RULES)
    bands = rows.select(
        "age_band", "n", "judged", "approval_rate", "adverse_impact_ratio", "reference_band"
    )
    details = {
        "bands": dg.MetadataValue.md(_markdown(bands)),
        "not_judged": dg.MetadataValue.json(left_out),
    }
    if rows["judged"].sum() < 2:
        not_judged = (
            f"fewer than two age bands with at least {FAIRNESS_RULES.min_band_loans} loans "
            f"in the newest month's window ({rows['months_pooled'][0]} months): "
            f"{', '.join(left_out)}"
        )
        return [finding_check(FAIRNESS, name, [], None, not_judged=not_judged, details=details)]
    judged = rows.filter(pl.col("judged"))
    note = f"judged bands with at least {FAIRNESS_RULES.min_band_loans} loans only" + (
        f"; not judged: {', '.join(left_out)}" if left_out else ""
    )
    return [
        finding_check(
            FAIRNESS,
            name,
            adverse_impact_findings(rows, FAIRNESS_RULES),
            _subject(rows, "month"),
            {
                "min_adverse_impact_ratio": judged["adverse_impact_ratio"].min(),
                "judged_bands": judged.height,
                "n": rows["n"].sum(),
                "months_pooled": rows["months_pooled"][0],
            },
            note=note,
            details=details,
        )
    ]


def _markdown(frame: pl.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.width
    lines = [
        "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.iter_rows()
    ]
    return "\n".join([head, *lines])
