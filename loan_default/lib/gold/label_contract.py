"""The label: did a loan reach `dpd_threshold` days past due at month on book `mob`.

The definition is declared once (`settings.LABEL`) and passed to everything that builds,
joins or describes labels; the label store stamps each row with its name, so a join can refuse
labels built under another definition instead of silently mixing them. This module imports no
data library: settings reads it before the scoring server sets its thread limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


class LabelMismatchError(ValueError):
    """Labels built under a definition other than the platform's."""


@dataclass(frozen=True)
class LabelDefinition:
    """Default when days past due >= `dpd_threshold` at month on book `mob`."""

    dpd_threshold: int
    mob: int

    def __post_init__(self) -> None:
        if self.dpd_threshold < 1 or self.mob < 1:
            raise ValueError(f"label needs dpd_threshold >= 1 and mob >= 1, got {self}")

    @property
    def name(self) -> str:
        return f"{self.dpd_threshold}dpd_{self.mob}mob"

    @property
    def text(self) -> str:
        """The definition in words, for reports and API docs."""
        return (
            f"{self.dpd_threshold} or more days past due at month on book {self.mob} "
            f"(label {self.name}, observed {self.mob} months after application)"
        )

    def require(self, labels: pl.DataFrame) -> pl.DataFrame:
        """`labels` unchanged when every row was built under this definition."""
        found = sorted(set(labels["label_def"].unique().drop_nulls().to_list()))
        other = [name for name in found if name != self.name]
        if other:
            raise LabelMismatchError(
                f"the label store holds labels {other}, but the platform's label is "
                f"{self.name}: materialize gold/label_store again for every month"
            )
        return labels
