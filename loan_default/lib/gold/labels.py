"""The label store's rows: did a loan reach the label's days past due at its month on book."""

from __future__ import annotations

import polars as pl

from loan_default.lib.gold.label_contract import LabelDefinition

LABEL_STORE_COLUMNS = (
    "loan_id",
    "customer_id",
    "label_month",
    "loan_start_date",
    "mob",
    "dpd",
    "label",
    "label_def",
)


def build_labels(loans: pl.DataFrame, definition: LabelDefinition) -> pl.DataFrame:
    """One row per loan at the label mob; label month = the snapshot month."""
    return (
        loans.filter(pl.col("mob") == definition.mob)
        .select(
            "loan_id",
            "customer_id",
            label_month=pl.col("partition_month"),
            loan_start_date=pl.col("loan_start_date"),
            mob=pl.col("mob"),
            dpd=pl.col("dpd"),
            label=(pl.col("dpd") >= definition.dpd_threshold).cast(pl.Int8),
            label_def=pl.lit(definition.name),
        )
        .sort("label_month", "loan_id")
    )
