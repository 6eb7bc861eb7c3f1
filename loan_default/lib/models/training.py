"""Training one model family on temporal windows: fit, calibrate, evaluate, explain.

The model is fitted on the train window only (early stopping, where a family has it, on a
held-out share of it; pretraining on applications up to its end); calibration and the decision
threshold are fitted on validation; test and out-of-time (OOT) are only reported. A fraction of
training rows has its clickstream masked, so every family learns to score applicants without
clickstream, as the cohorts after the clickstream gap are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from loan_default.lib.gold.features import CLICKSTREAM_COLUMNS, CLICKSTREAM_COUNTS
from loan_default.lib.models import families
from loan_default.lib.models.calibration import PlattCalibrator, best_f1_threshold
from loan_default.lib.models.metrics import classification_metrics
from loan_default.lib.models.model_data import TARGET, feature_columns
from loan_default.lib.models.model_windows import WINDOW_NAMES, Windows
from loan_default.lib.models.reference_applicant import Reference, reference_of

CLICKSTREAM_FEATURES = tuple(
    f"{c}_mean{suffix}" for c in CLICKSTREAM_COLUMNS for suffix in ("", "_long")
)


@dataclass
class TrainedModel:
    """Everything needed to score a feature-store frame the way training did."""

    family: str
    estimator: object
    calibrator: PlattCalibrator
    threshold: float
    categorical: list[str]
    numeric: list[str]
    # What reason codes compare an applicant with (None in versions trained before them).
    reference: Reference | None = None

    @property
    def features(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        """probability, calibrated_probability and decision for each row of `frame`."""
        probability = self.estimator.predict_proba(frame) if frame.height else np.empty(0)
        calibrated = self.calibrator.transform(probability) if frame.height else np.empty(0)
        return pl.DataFrame(
            {
                "probability": probability.astype(float),
                "calibrated_probability": calibrated.astype(float),
                "decision": (calibrated >= self.threshold).astype(np.int8),
            }
        )


@dataclass
class TrainingResult:
    model: TrainedModel
    metrics: dict[str, dict]
    importance: list[tuple[str, float]]
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0


def split(data: pl.DataFrame, windows: Windows) -> dict[str, pl.DataFrame]:
    assigned = data.with_columns(window=windows.window_of(pl.col("application_month")))
    return {n: assigned.filter(pl.col("window") == n).drop("window") for n in WINDOW_NAMES}


def mask_clickstream(frame: pl.DataFrame, fraction: float, seed: int) -> pl.DataFrame:
    """Rows picked at random lose their clickstream, exactly as a post-gap applicant has none."""
    if fraction <= 0 or frame.is_empty():
        return frame
    picked = pl.Series(np.random.default_rng(seed).random(frame.height) < fraction)
    present = [c for c in CLICKSTREAM_FEATURES if c in frame.columns]
    return frame.with_columns(
        *(pl.when(picked).then(None).otherwise(pl.col(c)).alias(c) for c in present),
        pl.when(picked)
        .then(0)
        .otherwise(pl.col("has_clickstream"))
        .cast(pl.Int8)
        .alias("has_clickstream"),
        *(
            pl.when(picked).then(0).otherwise(pl.col(c)).cast(pl.Int32).alias(c)
            for c in CLICKSTREAM_COUNTS
            if c in frame.columns
        ),
    )


def permutation_importance(
    model: TrainedModel, frame: pl.DataFrame, seed: int, top: int = 20
) -> list[tuple[str, float]]:
    """Drop in validation ROC-AUC when one feature's values are shuffled."""
    y = frame[TARGET].to_numpy()
    if len(np.unique(y)) < 2:
        return []
    base = roc_auc_score(y, model.estimator.predict_proba(frame))
    rng = np.random.default_rng(seed)
    drops = []
    for column in model.features:
        shuffled = frame.with_columns(frame[column].gather(rng.permutation(frame.height)))
        drops.append(
            (column, float(base - roc_auc_score(y, model.estimator.predict_proba(shuffled))))
        )
    return sorted(drops, key=lambda item: -item[1])[:top]


def pretraining_rows(unlabeled: pl.DataFrame | None, windows: Windows) -> pl.DataFrame | None:
    """Applications up to the end of the training window: none of validation, test or OOT."""
    if unlabeled is None:
        return None
    rows = unlabeled.filter(pl.col("application_month") <= windows.train[1])
    return rows.sort("application_month", "loan_id")  # the warehouse's order is not fixed


def train(
    family: str,
    data: pl.DataFrame,
    windows: Windows,
    params: dict,
    seed: int = 42,
    clickstream_dropout: float = 0.3,
    decision_threshold: float | None = None,
    unlabeled: pl.DataFrame | None = None,
    log: Callable[[str], None] = print,
    importance: bool = True,
) -> TrainingResult:
    """Fits `family` on the train window of labeled applications `data`; `importance=False`
    skips the permutation importance (a fit whose report nobody reads, as a counterfactual's).

    OpenMP (boosting's fit and predictions) runs one thread: on cores shared with other runs
    a thread team waits for its slowest member far longer than it saves, and the results do not
    depend on it (the BLAS pool keeps its threads, as their count changes the logistic
    regression's sums)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return _train(
            family,
            data,
            windows,
            params,
            seed,
            clickstream_dropout,
            decision_threshold,
            unlabeled,
            log,
            importance,
        )


def _train(
    family: str,
    data: pl.DataFrame,
    windows: Windows,
    params: dict,
    seed: int,
    clickstream_dropout: float,
    decision_threshold: float | None,
    unlabeled: pl.DataFrame | None,
    log: Callable[[str], None],
    importance: bool,
) -> TrainingResult:
    parts = split(data, windows)
    empty = [n for n in ("train", "validation") if parts[n].is_empty()]
    if empty:
        raise ValueError(f"no labeled applications in the {empty} window(s) of {windows}")
    categorical, numeric = feature_columns(data)
    train_rows = mask_clickstream(parts["train"], clickstream_dropout, seed)
    estimator = families.family(family).estimator(categorical, numeric, params)
    started = time.perf_counter()
    y_train, y_valid = train_rows[TARGET].to_numpy(), parts["validation"][TARGET].to_numpy()
    if families.family(family).pretrains:
        estimator.fit(train_rows, y_train, unlabeled=pretraining_rows(unlabeled, windows), log=log)
    else:
        estimator.fit(train_rows, y_train)
    seconds = time.perf_counter() - started
    raw_valid = estimator.predict_proba(parts["validation"])
    calibrator = PlattCalibrator().fit(raw_valid, y_valid)
    threshold = (
        decision_threshold
        if decision_threshold is not None
        else best_f1_threshold(y_valid, calibrator.transform(raw_valid))
    )
    # From the training rows as they are, before any clickstream is masked.
    reference = reference_of(parts["train"], categorical, numeric)
    model = TrainedModel(family, estimator, calibrator, threshold, categorical, numeric, reference)
    metrics = {}
    for name, part in parts.items():
        if part.is_empty():
            continue
        scored = model.score(part)
        metrics[name] = classification_metrics(
            part[TARGET].to_numpy(), scored["calibrated_probability"].to_numpy(), threshold
        )
        log(f"{family} {name}: n={part.height} roc_auc={metrics[name]['roc_auc']}")
    return TrainingResult(
        model=model,
        metrics=metrics,
        importance=permutation_importance(model, parts["validation"], seed) if importance else [],
        history=list(getattr(estimator, "history", [])),
        train_seconds=seconds,
    )
