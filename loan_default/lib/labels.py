"""The label store: did a loan reach `dpd_threshold` days past due at month on book `mob`."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

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


@dataclass(frozen=True)
class LabelDefinition:
    dpd_threshold: int = 30
    mob: int = 6

    @property
    def name(self) -> str:
        return f"{self.dpd_threshold}dpd_{self.mob}mob"


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
