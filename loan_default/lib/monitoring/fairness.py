"""Fair-lending monitoring by age band: approval rates, the adverse impact ratio, and error
rates once labels arrive. Pure polars + fairlearn over scored applications; no Dagster here.

A decision of 0 approves (the model expects repayment), 1 declines. Rates per band come from
fairlearn's MetricFrame; the adverse impact ratio divides each band's approval rate by that of
the most-approved band. Edge cases, decided once here:
- every configured band, and `unknown` (no valid age), has a row in every month, with n = 0
  and null rates when it holds no loan;
- a band with fewer than `min_band_loans` loans, and `unknown`, is shown but not judged: it is
  neither the reference nor flagged, since one month of a small band flaps by chance;
- with fewer than two judged bands there is nothing to compare: the check does not judge;
- when no judged band approves anyone, every ratio is undefined (null) and the check warns
  that nothing was approved, rather than staying silent.
Rates that have no denominator (a true-positive rate without defaults, a false-positive rate
without repayers, an ROC-AUC with one class) are null, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import roc_auc_score

from loan_default.lib.monitoring.alerts import Finding
from loan_default.lib.monitoring.monitoring_tables import ScoredVersion

UNKNOWN_BAND = "unknown"
CLOCKS = ("application", "label")
BAND_METRICS = (
    "approval_rate",
    "adverse_impact_ratio",
    "default_rate",
    "true_positive_rate",
    "false_positive_rate",
    "roc_auc",
)
FAIRNESS_SCHEMA = {
    "month": pl.Date,  # the application month (clock "application") or label month ("label")
    "clock": pl.String,
    "application_month": pl.Date,
    "model_family": pl.String,
    "model_version": pl.String,
    "is_champion": pl.Boolean,
    "window": pl.String,
    "months_pooled": pl.Int64,
    "held_out": pl.Boolean,
    "threshold": pl.Float64,
    "age_band": pl.String,
    "n": pl.Int64,
    "judged": pl.Boolean,
    "reference_band": pl.String,
    "approved": pl.Int64,
    "defaults": pl.Int64,
    **{m: pl.Float64 for m in BAND_METRICS},
}


@dataclass(frozen=True)
class AgeBand:
    name: str
    low: int
    high: int | None  # inclusive; None = no upper bound


@dataclass(frozen=True)
class FairnessRules:
    """The `monitoring.fairness` section of the thresholds file."""

    bands: tuple[AgeBand, ...]
    min_band_loans: int
    min_adverse_impact_ratio: float
    action: str
    evaluate_on: str

    @classmethod
    def of(cls, rules: Mapping) -> FairnessRules:
        bands = tuple(
            AgeBand(f"{low}+" if high is None else f"{low}-{high}", low, high)
            for low, high in rules["age_bands"]
        )
        return cls(
            bands=bands,
            min_band_loans=rules["min_band_loans"],
            min_adverse_impact_ratio=rules["adverse_impact_ratio"]["min"],
            action=rules["adverse_impact_ratio"]["action"],
            evaluate_on=rules["evaluate_on"],
        )

    @property
    def band_names(self) -> list[str]:
        return [b.name for b in self.bands] + [UNKNOWN_BAND]


def age_band(age: pl.Expr, bands: tuple[AgeBand, ...]) -> pl.Expr:
    """The band an age falls in; `unknown` for a null age or one outside every band."""
    expression = pl.lit(UNKNOWN_BAND)
    for band in reversed(bands):
        inside = age >= band.low if band.high is None else age.is_between(band.low, band.high)
        expression = pl.when(inside).then(pl.lit(band.name)).otherwise(expression)
    return expression.alias("age_band")


def _default_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true))


def _roc_auc(y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray) -> float:
    """NaN (null later) for a band holding one class only: its AUC does not exist."""
    return float(roc_auc_score(y_true, y_score)) if np.unique(y_true).size == 2 else np.nan


def band_rates(rows: pl.DataFrame, rules: FairnessRules, labelled: bool) -> pl.DataFrame:
    """Per age band of one version's scored applications: counts, approval rate, and with
    labels the default, true-positive (defaulters declined) and false-positive (repayers
    declined) rates and ROC-AUC; then which bands are judged and their adverse impact ratio.

    `rows` holds `age_band` and `decision` (and `label`, `calibrated_probability` when
    labelled). Every band of `rules` gets a row, empty ones included.
    """
    decision = rows["decision"].to_numpy()
    metrics = {"n": count, "approval_rate": lambda t, p: selection_rate(t, p, pos_label=0)}
    sample_params = {}
    if labelled:
        metrics |= {
            "default_rate": _default_rate,
            "true_positive_rate": lambda t, p: true_positive_rate(t, p, pos_label=1),
            "false_positive_rate": lambda t, p: false_positive_rate(t, p, pos_label=1),
            "roc_auc": _roc_auc,
        }
        sample_params["roc_auc"] = {"y_score": rows["calibrated_probability"].to_numpy()}
    grid = pl.DataFrame({"age_band": rules.band_names})
    if rows.is_empty():
        by_band = pl.DataFrame(schema={"age_band": pl.String, **dict.fromkeys(metrics, pl.Float64)})
    else:
        frame = MetricFrame(
            metrics=metrics,
            y_true=rows["label"].to_numpy() if labelled else decision,
            y_pred=decision,
            sensitive_features={"age_band": rows["age_band"].to_numpy()},
            sample_params=sample_params,
        )
        by_band = pl.from_pandas(frame.by_group.reset_index())
    rates = grid.join(by_band, on="age_band", how="left").with_columns(
        pl.col("n").fill_null(0).cast(pl.Int64),
        *(pl.lit(None, pl.Float64).alias(m) for m in BAND_METRICS if m not in by_band.columns),
    )
    return with_adverse_impact(_counts_and_undefined_rates(rates), rules)


def _counts_and_undefined_rates(rates: pl.DataFrame) -> pl.DataFrame:
    """Counts from the rates; a rate whose denominator is zero becomes null, not fairlearn's 0."""
    defaults = (pl.col("default_rate") * pl.col("n")).round().cast(pl.Int64)
    return rates.with_columns(
        approved=(pl.col("approval_rate") * pl.col("n")).round().cast(pl.Int64),
        defaults=defaults,
        true_positive_rate=pl.when(defaults > 0).then("true_positive_rate"),
        false_positive_rate=pl.when(pl.col("n") - defaults > 0).then("false_positive_rate"),
        roc_auc=pl.col("roc_auc").fill_nan(None),
    )


def with_adverse_impact(rates: pl.DataFrame, rules: FairnessRules) -> pl.DataFrame:
    """Marks the judged bands (a configured band with at least `min_band_loans` loans) and
    divides every band's approval rate by the most-approved judged band's (the reference;
    the first in band order on a tie). Null when no band is judged or none approved anyone."""
    judged = rates.with_columns(
        judged=(pl.col("age_band") != UNKNOWN_BAND) & (pl.col("n") >= rules.min_band_loans)
    )
    candidates = judged.filter(pl.col("judged")).sort("approval_rate", descending=True)
    best = candidates.row(0, named=True) if candidates.height else None
    if best is None or not best["approval_rate"]:
        return judged.with_columns(
            reference_band=pl.lit(best["age_band"] if best else None, pl.String),
            adverse_impact_ratio=pl.lit(None, pl.Float64),
        )
    return judged.with_columns(
        reference_band=pl.lit(best["age_band"]),
        adverse_impact_ratio=pl.col("approval_rate") / best["approval_rate"],
    )


def fairness_rows(
    month: date,
    clock: str,
    application_month: date,
    this_month: pl.DataFrame,
    pooled: pl.DataFrame,
    versions: Mapping[str, ScoredVersion],
    rules: FairnessRules,
    rolling_months: int,
) -> pl.DataFrame:
    """Band rows of one month on one clock for every version scored in it: the month alone,
    and pooled with the months before it (`pooled`, the last `rolling_months` months).

    Both frames hold model_family, model_version, is_champion, application_month, decision
    (at the version's threshold) and age_band, plus label and calibrated_probability on the
    label clock. A month is held out when its applications came after the version's last
    fitted month; fairness is shown for every month either way.
    """
    labelled = clock == "label"
    frames = [pl.DataFrame(schema=FAIRNESS_SCHEMA)]
    for (family, version_id, champion), group in this_month.group_by(
        "model_family", "model_version", "is_champion", maintain_order=True
    ):
        version = versions[version_id]
        pooled_rows = pooled.filter(pl.col("model_version") == version_id)
        windows = [("month", group, 1)]
        if pooled_rows.height:
            months = pooled_rows["application_month"].n_unique()
            windows.append((f"rolling_{rolling_months}m", pooled_rows, months))
        for window, cohort, months in windows:
            rates = band_rates(cohort, rules, labelled)
            frames.append(
                rates.with_columns(
                    month=pl.lit(month),
                    clock=pl.lit(clock),
                    application_month=pl.lit(application_month),
                    model_family=pl.lit(family),
                    model_version=pl.lit(version_id),
                    is_champion=pl.lit(champion),
                    window=pl.lit(window),
                    months_pooled=pl.lit(months, pl.Int64),
                    held_out=pl.lit(application_month > version.last_fitted_month),
                    threshold=pl.lit(version.threshold, pl.Float64),
                ).select(list(FAIRNESS_SCHEMA))
            )
    return pl.concat(frames).cast(FAIRNESS_SCHEMA)


def adverse_impact_findings(bands: pl.DataFrame, rules: FairnessRules) -> list[Finding]:
    """The four-fifths rule on one version's band rows of one month and window: a finding for
    each judged band whose ratio is strictly below the minimum (exactly at it holds), or one
    finding when no judged band approved anyone. Fewer than two judged bands: no finding."""
    judged = bands.filter(pl.col("judged"))
    if judged.height < 2:
        return []
    threshold = rules.min_adverse_impact_ratio
    reference = judged.filter(pl.col("age_band") == pl.col("reference_band"))["approval_rate"]
    if judged["adverse_impact_ratio"].is_null().all():
        return [
            Finding(
                "approval_rate",
                "fair lending",
                "any_approval",
                0.0,
                0.0,
                rules.action,
                "at",
                "no judged age band had an approved application: the adverse impact ratio "
                "is undefined",
            )
        ]
    return [
        Finding(
            f"adverse_impact_ratio:{row['age_band']}",
            "fair lending",
            "four_fifths",
            row["adverse_impact_ratio"],
            threshold,
            rules.action,
            "below",
            f"approval {row['approval_rate']:.3f} of n={row['n']} vs "
            f"{row['reference_band']}'s {reference[0]:.3f}",
        )
        for row in judged.sort("adverse_impact_ratio").iter_rows(named=True)
        if row["adverse_impact_ratio"] < threshold
    ]


def not_judged_bands(bands: pl.DataFrame, rules: FairnessRules) -> list[str]:
    """Why bands were left out of the check, for its description: small or unknown bands."""
    small = f" < {rules.min_band_loans}"
    return [
        f"{band} (n={n}{', no valid age' if band == UNKNOWN_BAND else small})"
        for band, n in bands.filter(~pl.col("judged")).select("age_band", "n").iter_rows()
    ]
