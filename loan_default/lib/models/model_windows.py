"""Temporal windows by application month: train, validation, test and out-of-time (OOT).

Absolute mode names the months; relative mode counts back from an as-of label month, whose
newest usable application month is as_of - mob (its label is observed exactly at as_of).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from loan_default.lib.months import add_months

WINDOW_NAMES = ("train", "validation", "test", "oot")


@dataclass(frozen=True)
class Windows:
    """Inclusive (first, last) application months per window, in time order."""

    train: tuple[date, date]
    validation: tuple[date, date]
    test: tuple[date, date]
    oot: tuple[date, date]

    def __post_init__(self) -> None:
        spans = [getattr(self, n) for n in WINDOW_NAMES]
        for (first, last), name in zip(spans, WINDOW_NAMES, strict=True):
            if first > last:
                raise ValueError(f"{name} window starts after it ends: {first} > {last}")
        for (_, last), (first, _) in zip(spans, spans[1:], strict=False):
            if first <= last:
                raise ValueError(f"windows overlap or are out of order: {spans}")

    @classmethod
    def relative(
        cls,
        as_of_label_month: date,
        mob: int,
        months: tuple[int, int, int, int] = (12, 3, 2, 1),
    ) -> Windows:
        """The newest `months` application months whose labels are observed by the as-of month."""
        end = add_months(as_of_label_month, -mob)
        spans = []
        for length in reversed(months):
            spans.append((add_months(end, -(length - 1)), end))
            end = add_months(end, -length)
        oot, test, validation, train = spans
        return cls(train=train, validation=validation, test=test, oot=oot)

    @classmethod
    def recent(
        cls, as_of_label_month: date, mob: int, months: tuple[int, int] = (12, 1)
    ) -> Windows:
        """Train and validation on the newest labelled application months; test and out-of-time
        are the two cohorts after them, whose labels arrive later.

        The window policy of a retrain after an alarm: with labels six months late, the windows
        of `relative` train only on cohorts from before a change the alarm has just seen. These
        learn from the changed cohorts at once; the gate and monitoring judge the version on its
        held-out cohorts as their labels arrive.
        """
        train, validation = months
        newest = add_months(as_of_label_month, -mob)
        first_validation = add_months(newest, -(validation - 1))
        return cls(
            train=(add_months(first_validation, -train), add_months(first_validation, -1)),
            validation=(first_validation, newest),
            test=(add_months(newest, 1), add_months(newest, 1)),
            oot=(add_months(newest, 2), add_months(newest, 2)),
        )

    def as_dict(self) -> dict[str, list[str]]:
        return {n: [m.isoformat() for m in getattr(self, n)] for n in WINDOW_NAMES}

    def window_of(self, month: pl.Expr) -> pl.Expr:
        """The window name of each application month, null outside all windows."""
        expression = pl.lit(None, dtype=pl.String)
        for name in reversed(WINDOW_NAMES):
            first, last = getattr(self, name)
            expression = (
                pl.when(month.is_between(first, last)).then(pl.lit(name)).otherwise(expression)
            )
        return expression

    @property
    def last_application_month(self) -> date:
        return self.oot[1]
