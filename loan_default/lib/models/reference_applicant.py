"""The reference applicant every explanation of a version compares with: its own module so
that the families, training and the reason codes all read it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Reference:
    """What an applicant is compared with: the reference applicant, each numeric input's
    median and each category's most frequent value over the training window (one row).
    Stored with the model at training, so every explanation of a version uses the same one."""

    applicant: pl.DataFrame


def reference_of(train: pl.DataFrame, categorical: list[str], numeric: list[str]) -> Reference:
    return Reference(
        train.select(
            *(pl.col(c).drop_nulls().mode().sort().first().alias(c) for c in categorical),
            *(pl.col(c).median().cast(train.schema[c]).alias(c) for c in numeric),
        )
    )
