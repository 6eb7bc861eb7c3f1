"""Issue 26, part 3: the training window and the clickstream dropout, compared on the
walk-forward backtest (as-of label months 2024-07..2025-07) without changing any default.

Each choice refits every family on every as-of month exactly as `make backtest` does, only
with another train window or dropout. One OOT month's ROC-AUC moves by about +/-0.05 from
sampling alone, so a choice is judged by its paired difference against the default on the same
as-of months, with a 95% t interval. The OOT months from 2024-07 have no clickstream (the
data's gap), so each mean is also split into the months without and with it.

    .venv/bin/python -m loan_default_tests.benchmarks.training_choices \
        [--families gradient_boosting scorecard] [--tab-transformer] [--choices 12m 18m ...]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl
from scipy import stats

from loan_default.lib.models.backtest import BACKTEST_SCHEMA, BacktestData, evaluate
from loan_default.lib.models.model_windows import Windows
from loan_default.settings import LABEL
from loan_default_tests.benchmarks.models import BACKTEST_AS_OF, labeled_real_data

CLICKSTREAM_GAP = date(2024, 7, 1)
SEED = 42


@dataclass(frozen=True)
class Choice:
    """A train window length in months (None: expanding from the first labelled month) and a
    clickstream dropout; validation, test and OOT stay 3, 2 and 1 months."""

    name: str
    train_months: int | None
    dropout: float


DEFAULT = Choice("12m", 12, 0.3)
CHOICES = {
    c.name: c
    for c in (
        DEFAULT,
        Choice("18m", 18, 0.3),
        Choice("expanding", None, 0.3),
        Choice("6m", 6, 0.3),
        Choice("dropout0", 12, 0.0),
        Choice("dropout0.5", 12, 0.5),
    )
}


def windows_of(choice: Choice, as_of: date, mob: int, first_month: date) -> Windows:
    """The backtest's relative windows with the choice's train window; an expanding window
    keeps the 3/2/1 validation/test/OOT months and trains on everything before them."""
    relative = Windows.relative(as_of, mob, (choice.train_months or 12, 3, 2, 1))
    if choice.train_months is not None:
        return relative
    return Windows(
        train=(first_month, relative.train[1]),
        validation=relative.validation,
        test=relative.test,
        oot=relative.oot,
    )


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """The mean and its 95% t interval (nan bounds with fewer than two values)."""
    if len(values) < 2:
        mean = values[0] if values else math.nan
        return mean, math.nan, math.nan
    interval = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    return sum(values) / len(values), interval.low, interval.high


def paired_difference(rows: pl.DataFrame, default: pl.DataFrame) -> tuple[float, float, float]:
    """Mean (choice - default) OOT ROC-AUC over the as-of months both have, with its 95% t
    interval: the month-to-month noise the two share cancels."""
    diffs = (
        rows.join(default, on="as_of_month", suffix="_default")
        .select(pl.col("roc_auc") - pl.col("roc_auc_default"))
        .drop_nulls()
        .to_series()
        .to_list()
    )
    return mean_interval(diffs)


def run_choice(
    family: str, choice: Choice, data: BacktestData, first_month: date
) -> tuple[pl.DataFrame, float]:
    """The backtest rows of one family under one choice, and its wall time."""
    started = time.perf_counter()
    rows = []
    for as_of in BACKTEST_AS_OF:
        window = windows_of(choice, as_of, LABEL.mob, first_month)
        row = evaluate(
            family,
            as_of,
            window,
            data.in_windows(window),
            data.features,
            {},
            SEED,
            choice.dropout,
            lambda _: None,
        )
        print(
            f"  {family} {choice.name} as of {as_of:%Y-%m}: train {window.train[0]:%Y-%m}.."
            f"{window.train[1]:%Y-%m}, OOT ROC-AUC {row['roc_auc']:.4f}",
            file=sys.stderr,
            flush=True,
        )
        rows.append(row)
    return pl.DataFrame(rows, schema=BACKTEST_SCHEMA), time.perf_counter() - started


def fmt(triple: tuple[float, float, float], signed: bool = False) -> str:
    mean, low, high = triple
    sign = "+" if signed else ""
    return f"{mean:{sign}.3f} [{low:{sign}.3f}, {high:{sign}.3f}]"


def summary_line(
    family: str, choice: Choice, rows: pl.DataFrame, default: pl.DataFrame, seconds: float
) -> str:
    scored = rows.filter(pl.col("roc_auc").is_not_null())
    without = scored.filter(pl.col("oot_month") >= CLICKSTREAM_GAP)["roc_auc"].mean()
    with_ = scored.filter(pl.col("oot_month") < CLICKSTREAM_GAP)["roc_auc"].mean()
    label = f"{choice.name} (d={choice.dropout})"
    mean = fmt(mean_interval(scored["roc_auc"].to_list()))
    diff = "default" if choice == DEFAULT else fmt(paired_difference(rows, default), signed=True)
    return (
        f"| {family} | {label} | {scored.height} | {mean} | "
        f"{without:.3f} | {with_:.3f} | {diff} | {seconds:.0f} |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["gradient_boosting", "scorecard"])
    parser.add_argument("--tab-transformer", action="store_true", help="add the slow family")
    parser.add_argument("--choices", nargs="+", default=list(CHOICES), choices=list(CHOICES))
    args = parser.parse_args(argv)
    families = list(dict.fromkeys(args.families + ["tab_transformer"] * args.tab_transformer))
    choices = [DEFAULT] + [CHOICES[n] for n in args.choices if n != DEFAULT.name]

    started = time.perf_counter()
    _, features, labels = labeled_real_data()
    data = BacktestData.of(features, labels, LABEL)
    first_month = data.labeled["application_month"].min()
    print(
        f"data loaded in {time.perf_counter() - started:.0f} s; first labelled month "
        f"{first_month:%Y-%m}",
        file=sys.stderr,
        flush=True,
    )
    lines = [
        "| family | choice | months | mean OOT ROC-AUC [95%] | no clickstream | clickstream "
        "| vs 12m d=0.3 [95%] | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family in families:
        default = pl.DataFrame(schema=BACKTEST_SCHEMA)
        for choice in choices:
            rows, seconds = run_choice(family, choice, data, first_month)
            default = rows if choice == DEFAULT else default
            line = summary_line(family, choice, rows, default, seconds)
            print(line, file=sys.stderr, flush=True)
            lines.append(line)
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
