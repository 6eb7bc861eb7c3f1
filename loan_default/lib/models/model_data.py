"""What the models see: feature columns by type, and applications joined with their labels.

A loan applied in month T is labeled at month on book `mob`, in label month T + mob. The join
keeps only labels observed on or before the as-of month, so no model can use a future label.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import polars as pl

from loan_default.lib.gold.label_contract import LabelDefinition
from loan_default.lib.thresholds import load_thresholds

KEY_COLUMNS = ("loan_id", "customer_id", "application_month", "max_source_date")
CATEGORICAL_FEATURES = (
    "occupation",
    "credit_mix",
    "payment_of_min_amount",
    "payment_spend_level",
    "payment_value_level",
)
TARGET = "label"
# Feature-store columns kept for analysis but never model inputs. The long window's count of
# clickstream months grows with the calendar while history is shorter than the window (all
# clickstream here starts in one month), so it teaches a model the application month, not the
# applicant; the backtest loses nothing without it (README).
NOT_MODEL_INPUTS = ("clickstream_months_seen_long",)


def protected_non_inputs(rules: Mapping | None = None) -> tuple[str, ...]:
    """Protected characteristics (age) stay in the feature store for fairness monitoring; one
    is a model input only while `model_inputs.protected_inputs_allowed` of the thresholds file
    lists it (it lists age, as today's models use it: README, "Age as a model input")."""
    rules = rules if rules is not None else load_thresholds()["model_inputs"]
    allowed = set(rules["protected_inputs_allowed"])
    return tuple(c for c in rules["protected_attributes"] if c not in allowed)


def feature_columns(
    features: pl.DataFrame, model_input_rules: Mapping | None = None
) -> tuple[list[str], list[str]]:
    """(categorical, numeric) model inputs of a feature-store frame, in a stable order."""
    excluded = {*KEY_COLUMNS, *NOT_MODEL_INPUTS, *protected_non_inputs(model_input_rules), TARGET}
    categorical = [c for c in CATEGORICAL_FEATURES if c in features.columns and c not in excluded]
    numeric = [
        c
        for c in features.columns
        if c not in excluded and c not in categorical and features.schema[c].is_numeric()
    ]
    return categorical, numeric


def labeled_applications(
    features: pl.DataFrame,
    labels: pl.DataFrame,
    label: LabelDefinition,
    as_of: date | None = None,
) -> pl.DataFrame:
    """Feature rows of month T with the label observed at T + mob, when observed by `as_of`,
    in (application month, loan) order: training sees the same rows in the same order whatever
    order the warehouse returns them in (a DuckLake table's files come in no fixed order)."""
    label.require(labels)
    observed = labels if as_of is None else labels.filter(pl.col("label_month") <= as_of)
    joined = features.join(
        observed.select("loan_id", "label_month", TARGET), on="loan_id", how="inner"
    )
    expected = pl.col("application_month").dt.offset_by(f"{label.mob}mo")
    labeled = joined.filter(pl.col("label_month") == expected).drop("label_month")
    return labeled.sort("application_month", "loan_id")


def newest_labeled_month(labels: pl.DataFrame) -> date:
    return labels["label_month"].max()
