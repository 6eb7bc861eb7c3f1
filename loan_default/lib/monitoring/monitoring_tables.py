"""Monthly monitoring tables of every scored model version: drift, estimated and realized
performance. Pure polars over the predictions, feature and label tables; no Dagster here.

Months are aligned the way the team reads them: drift and estimates belong to the application
month T (known at T); realized performance belongs to the label month T, whose loans were
scored at T - mob.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from loan_default.lib.gold.features import CLICKSTREAM_COUNTS
from loan_default.lib.gold.label_contract import LabelDefinition
from loan_default.lib.models.registry import RegistryRecord
from loan_default.lib.models.training import CLICKSTREAM_FEATURES
from loan_default.lib.monitoring.drift import (
    BinnedReference,
    BinningRule,
    reference_bins,
    stability,
)
from loan_default.lib.monitoring.performance import (
    calibration_across_months,
    estimated_performance,
    realized_performance,
)
from loan_default.lib.months import add_months
from loan_default.lib.thresholds import load_thresholds

SCORE = "score"
VERSION_KEYS = {
    "model_family": pl.String,
    "model_version": pl.String,
    "is_champion": pl.Boolean,
}
DRIFT_SCHEMA = {
    "month": pl.Date,
    **VERSION_KEYS,
    "held_out": pl.Boolean,
    "feature": pl.String,
    "kind": pl.String,
    "psi": pl.Float64,
    "missing_share_reference": pl.Float64,
    "missing_share": pl.Float64,
    "reference_rows": pl.Int64,
    "current_rows": pl.Int64,
}
# Inputs that count a source's rows: zero means the source is absent. Drift reads that zero as
# missing, so an applicant without clickstream is a missingness change of these inputs too, not
# a value shift of them on top of it.
ABSENT_WHEN_ZERO = ("has_clickstream", *CLICKSTREAM_COUNTS)
CLICKSTREAM_INPUTS = frozenset((*CLICKSTREAM_FEATURES, *ABSENT_WHEN_ZERO))


def input_group(feature: str) -> str:
    """How findings name an input: the clickstream's averages and counts are one source."""
    return "clickstream" if feature in CLICKSTREAM_INPUTS else feature


ESTIMATE_SCHEMA = {
    "application_month": pl.Date,
    "label_month": pl.Date,
    **VERSION_KEYS,
    "n": pl.Int64,
    "expected_defaults": pl.Float64,
    "expected_default_rate": pl.Float64,
    "expected_roc_auc": pl.Float64,
}
METRICS = (
    "defaults",
    "default_rate",
    "predicted_default_rate",
    "default_rate_gap",
    "roc_auc",
    "roc_auc_low",
    "roc_auc_high",
    "gini",
    "ks",
    "pr_auc",
    "brier",
    "log_loss",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "threshold",
)
# Calibration against its band (performance.calibration_band): observed `defaults` against
# the Poisson-binomial band of the window's probabilities, and across the months pooled.
CALIBRATION = {
    "expected_defaults": pl.Float64,
    "defaults_band_low": pl.Int64,
    "defaults_band_high": pl.Int64,
    "inside_band": pl.Boolean,
    "calibration_p_value": pl.Float64,
    "calibration_chi2": pl.Float64,
    "calibration_chi2_p_value": pl.Float64,
}
PERFORMANCE_SCHEMA = {
    "label_month": pl.Date,
    "application_month": pl.Date,
    **VERSION_KEYS,
    "window": pl.String,
    "months_pooled": pl.Int64,
    "held_out": pl.Boolean,
    "n": pl.Int64,
    **{m: pl.Int64 if m == "defaults" else pl.Float64 for m in METRICS},
    **CALIBRATION,
    "estimated_roc_auc": pl.Float64,
    "oot_baseline_roc_auc": pl.Float64,
}


def band_alpha(rules: Mapping | None = None) -> float:
    """The level below which a calibration p-value is outside its band: the data-science
    threshold of `calibration_p_value`, so the recorded band (confidence 1 - alpha, 95%) is
    the one the alarm judges."""
    rules = rules or load_thresholds()["monitoring"]
    return rules["performance"]["calibration_p_value"]["data_science"]


@dataclass(frozen=True)
class ScoredVersion:
    """What monitoring needs to know of a registered version."""

    family: str
    version_id: str
    threshold: float
    train_months: tuple[date, date]
    last_fitted_month: date  # newest application month used to fit or calibrate
    oot_roc_auc: float | None
    features: tuple[str, ...]

    @classmethod
    def of(cls, record: RegistryRecord) -> ScoredVersion:
        """Validation is the newest window a version is fitted or calibrated on."""
        train = tuple(date.fromisoformat(m) for m in record.windows["train"])
        return cls(
            family=record.family,
            version_id=record.version_id,
            threshold=record.threshold,
            train_months=train,
            last_fitted_month=date.fromisoformat(record.windows["validation"][1]),
            oot_roc_auc=(record.metrics.get("oot") or {}).get("roc_auc"),
            features=tuple(record.features),
        )


@dataclass(frozen=True)
class DriftReference:
    """A version's training population, binned once: its scores and every model input."""

    version: ScoredVersion
    bins: dict[str, BinnedReference]
    rows: int

    @classmethod
    def of(
        cls,
        version: ScoredVersion,
        train_rows: pl.DataFrame,
        scores: pl.Series,
        rule: BinningRule,
    ) -> DriftReference:
        frame = _drift_inputs(train_rows, version.features, scores)
        return cls(version, reference_bins(frame, [SCORE, *version.features], rule), frame.height)


def _drift_inputs(rows: pl.DataFrame, features: tuple[str, ...], scores: pl.Series) -> pl.DataFrame:
    absent = [c for c in ABSENT_WHEN_ZERO if c in features]
    return rows.select(features).with_columns(
        *(pl.when(pl.col(c) != 0).then(pl.col(c)).alias(c) for c in absent),
        scores.alias(SCORE),
    )


def drift_rows(
    month: date,
    reference: DriftReference,
    is_champion: bool,
    features: pl.DataFrame,
    scores: pl.Series,
) -> pl.DataFrame:
    """Value PSI and missing shares of the score and each input of one version for one
    application month; `held_out` says whether the month may be judged (after the version's
    last fitted month) or is only shown."""
    current = _drift_inputs(features, reference.version.features, scores)
    table = stability(reference.bins, current)
    return table.select(
        pl.lit(month).alias("month"),
        pl.lit(reference.version.family).alias("model_family"),
        pl.lit(reference.version.version_id).alias("model_version"),
        pl.lit(is_champion).alias("is_champion"),
        pl.lit(month > reference.version.last_fitted_month).alias("held_out"),
        "feature",
        pl.when(pl.col("feature") == SCORE)
        .then(pl.lit("score"))
        .otherwise(pl.lit("feature"))
        .alias("kind"),
        "psi",
        "missing_share_reference",
        "missing_share",
        pl.lit(reference.rows, pl.Int64).alias("reference_rows"),
        pl.lit(current.height, pl.Int64).alias("current_rows"),
    ).cast(DRIFT_SCHEMA)


def estimate_rows(month: date, predictions: pl.DataFrame, mob: int) -> pl.DataFrame:
    """Expected default rate and ROC-AUC of each version's scores of one application month."""
    rows = []
    for (family, version, champion), group in predictions.group_by(
        "model_family", "model_version", "is_champion", maintain_order=True
    ):
        estimate = estimated_performance(group["calibrated_probability"].to_numpy())
        rows.append(
            {
                "application_month": month,
                "label_month": add_months(month, mob),
                "model_family": family,
                "model_version": version,
                "is_champion": champion,
                "n": estimate["n"],
                "expected_defaults": estimate["expected_defaults"],
                "expected_default_rate": estimate["expected_default_rate"],
                "expected_roc_auc": estimate["expected_roc_auc"],
            }
        )
    return pl.DataFrame(rows, schema=ESTIMATE_SCHEMA)


def performance_rows(
    label_month: date,
    scored_labels: pl.DataFrame,
    versions: dict[str, ScoredVersion],
    estimates: pl.DataFrame,
    mob: int,
    rolling_months: int,
    alpha: float | None = None,
) -> pl.DataFrame:
    """Realized performance of label month T, alone and pooled over the last rolling months.

    `scored_labels` holds predictions joined to their labels (columns label_month, label,
    calibrated_probability, model_family, model_version, is_champion). A month counts as held
    out when its applications were not used to fit or calibrate the version; only held-out
    months are pooled, so the rolling figure never mixes in training rows. Each window's
    calibration band is at confidence 1 - `alpha` (default: `band_alpha()`, from the
    thresholds file).
    """
    alpha = band_alpha() if alpha is None else alpha
    application_month = add_months(label_month, -mob)
    first_pooled = add_months(label_month, -(rolling_months - 1))
    this_month = scored_labels.filter(pl.col("label_month") == label_month)
    rows = []
    for (family, version_id, champion), group in this_month.group_by(
        "model_family", "model_version", "is_champion", maintain_order=True
    ):
        version = versions[version_id]
        held_out = application_month > version.last_fitted_month
        pooled = scored_labels.filter(
            (pl.col("model_version") == version_id)
            & pl.col("label_month").is_between(first_pooled, label_month)
            & (pl.col("label_month") > add_months(version.last_fitted_month, mob))
        )
        estimate = estimates.filter(pl.col("model_version") == version_id)
        keys = {
            "label_month": label_month,
            "application_month": application_month,
            "model_family": family,
            "model_version": version_id,
            "is_champion": champion,
            "held_out": held_out,
            "estimated_roc_auc": estimate["expected_roc_auc"][0] if estimate.height else None,
            "oot_baseline_roc_auc": version.oot_roc_auc,
        }
        windows = [("month", group, 1)]
        if pooled.height:
            windows.append((f"rolling_{rolling_months}m", pooled, pooled["label_month"].n_unique()))
        for window, cohort, months in windows:
            label = cohort["label"].to_numpy()
            probability = cohort["calibrated_probability"].to_numpy()
            metrics = realized_performance(
                label, probability, version.threshold, alpha
            ) | calibration_across_months(label, probability, cohort["label_month"].to_numpy())
            rows.append(
                {
                    **keys,
                    "window": window,
                    "months_pooled": months,
                    "n": metrics["n"],
                    **{m: metrics[m] for m in (*METRICS, *CALIBRATION)},
                }
            )
    return pl.DataFrame(rows, schema=PERFORMANCE_SCHEMA)


def scores_with_labels(
    predictions: pl.DataFrame, labels: pl.DataFrame, label: LabelDefinition
) -> pl.DataFrame:
    """Each score of application month A paired with its loan's label of month A + mob only."""
    label.require(labels)
    return predictions.join(
        labels.select("loan_id", "label_month", "label"), on="loan_id", how="inner"
    ).filter(pl.col("label_month") == pl.col("application_month").dt.offset_by(f"{label.mob}mo"))


def estimates_to_judge(
    estimates: pl.DataFrame, versions: dict[str, ScoredVersion], newest_label_month: date | None
) -> pl.DataFrame:
    """Estimate rows of held-out months whose labels have not arrived: realized performance
    judges a month once its labels are in."""
    held = with_held_out(estimates, versions).filter(pl.col("held_out")).drop("held_out")
    if newest_label_month is None:
        return held
    return held.filter(pl.col("label_month") > newest_label_month)


def with_held_out(frame: pl.DataFrame, versions: dict[str, ScoredVersion]) -> pl.DataFrame:
    """Marks rows whose application month came after the version's last fitted month."""
    fitted = pl.DataFrame(
        {
            "model_version": list(versions),
            "last_fitted_month": [v.last_fitted_month for v in versions.values()],
        },
        schema={"model_version": pl.String, "last_fitted_month": pl.Date},
    )
    return (
        frame.join(fitted, on="model_version", how="left")
        .with_columns(held_out=pl.col("application_month") > pl.col("last_fitted_month"))
        .drop("last_fitted_month")
    )
