"""`make bench` (models): training time per family and scoring throughput on 2 cores.

Targets: logistic + boosting training <= 15 s together, the TabTransformer's fit <= 20 s (its
epochs shown, pretraining and fine-tuning; issue 24); scoring >= 100k rows/s for logistic and
boosting, >= 20k rows/s for the TabTransformer. Then the
walk-forward backtest of `make backtest` (as-of label months 2024-07..2025-07, every family):
its wall time (target <= 10 minutes) and each OOT month's ROC-AUC.
"""

import time
from datetime import UTC, date, datetime

import polars as pl

from loan_default.lib.gold.features import build_features
from loan_default.lib.gold.labels import build_labels
from loan_default.lib.gold.loan_delinquency import with_delinquency
from loan_default.lib.gold.lookback import ClickstreamLookback
from loan_default.lib.ingest.cleaning import clean
from loan_default.lib.ingest.raw_reader import RawFile, read_bronze
from loan_default.lib.ingest.sources import SOURCES
from loan_default.lib.models.backtest import (
    BacktestData,
    months_markdown,
    summarize,
    summary_markdown,
    walk_forward,
)
from loan_default.lib.models.families import FAMILIES
from loan_default.lib.models.model_data import labeled_applications
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.training import train
from loan_default.settings import LABEL
from loan_default_tests.benchmarks.data_layers import REAL_RAW_DIR

REFERENCE = Windows(
    train=(date(2023, 1, 1), date(2023, 12, 1)),
    validation=(date(2024, 1, 1), date(2024, 2, 1)),
    test=(date(2024, 3, 1), date(2024, 4, 1)),
    oot=(date(2024, 5, 1), date(2024, 5, 1)),
)
SCORING_ROWS = 200_000
TAB_TRANSFORMER_FIT_S = 20.0
BACKTEST_S = 600.0


BACKTEST_AS_OF = [date(2024 + (6 + i) // 12, (6 + i) % 12 + 1, 1) for i in range(13)]


def labeled_real_data() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    silver = {
        name: clean(
            read_bronze(RawFile.locate(REAL_RAW_DIR, s), s, None, datetime.now(UTC)), s
        ).silver
        for name, s in SOURCES.items()
    }
    loans = with_delinquency(silver["lms_loan_daily"])
    features = build_features(
        loans,
        silver["features_attributes"],
        silver["features_financials"],
        silver["feature_clickstream"],
        ClickstreamLookback(),
    )
    labels = build_labels(loans, LABEL)
    return labeled_applications(features, labels, LABEL), features, labels


def backtest(features: pl.DataFrame, labels: pl.DataFrame) -> None:
    families = list(FAMILIES)
    started = time.perf_counter()
    table = walk_forward(
        families,
        BACKTEST_AS_OF,
        BacktestData.of(features, labels, LABEL),
        LABEL,
        dict.fromkeys(families, {}),
        log=lambda _: None,
    )
    seconds = time.perf_counter() - started
    verdict = "met" if seconds <= BACKTEST_S else "NOT met"
    print(
        f"\nbacktest, as-of 2024-07..2025-07, {families}: {seconds:.1f} s "
        f"(target <= {BACKTEST_S:.0f} s: {verdict})",
        flush=True,
    )
    print(months_markdown(table), flush=True)
    print(summary_markdown(summarize(table)), flush=True)


def main() -> None:
    data, features, labels = labeled_real_data()
    families = list(FAMILIES)
    unlabeled = features.filter(pl.col("application_month") < REFERENCE.oot[0])
    big = pl.concat([features] * (SCORING_ROWS // features.height + 1)).head(SCORING_ROWS)
    print(f"{'family':<22} {'train s':>8} {'OOT AUC':>8} {'score rows/s':>13}", flush=True)
    for family in families:
        result = train(family, data, REFERENCE, {}, unlabeled=unlabeled, log=lambda _: None)
        started = time.perf_counter()
        result.model.score(big)
        rate = SCORING_ROWS / (time.perf_counter() - started)
        print(
            f"{family:<22} {result.train_seconds:>8.1f} "
            f"{result.metrics['oot']['roc_auc']:>8.4f} {rate:>13,.0f}",
            flush=True,
        )
        if family == "tab_transformer":
            phases = [h["phase"] for h in result.history]
            verdict = "met" if result.train_seconds <= TAB_TRANSFORMER_FIT_S else "NOT met"
            print(
                f"  tab_transformer fit {result.train_seconds:.1f} s: "
                f"{phases.count('pretrain')} pretraining + {phases.count('train')} fine-tuning "
                f"epochs (target <= {TAB_TRANSFORMER_FIT_S:.0f} s: {verdict})",
                flush=True,
            )
    backtest(features, labels)


if __name__ == "__main__":
    main()
