"""The model document of one registered version (SR 11-7 style): purpose and label, data
windows, features with information value, hyperparameters, performance with 95% intervals,
calibration, stability, fairness at training time, the backtest, the gate's decisions,
limitations, artifact and code version.

One self-contained HTML page per version (no scripts, no external assets, so it opens offline
and can be archived as is; the defs layer writes it to the report dir, a folder or an s3://
prefix) and the same content as markdown for the Dagster UI. It is built
from the registry row and summaries of the warehouse only: no application row, and no
personal-data column, can reach it. No Dagster here.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from loan_default.lib.ingest.sources import PERSONAL_COLUMNS
from loan_default.lib.models.backtest import summarize
from loan_default.lib.models.fairness_alternative import (
    AlternativeRules,
    FairnessAlternatives,
    search,
)
from loan_default.lib.models.model_data import TARGET
from loan_default.lib.models.model_windows import WINDOW_NAMES, Windows
from loan_default.lib.models.registry import RegistryRecord
from loan_default.lib.models.training import TrainedModel, split
from loan_default.lib.monitoring.drift import BinningRule
from loan_default.lib.monitoring.fairness import BAND_METRICS, FairnessRules, age_band, band_rates
from loan_default.lib.monitoring.monitoring_tables import (
    DriftReference,
    ScoredVersion,
    band_alpha,
    drift_rows,
)
from loan_default.lib.monitoring.performance import (
    auc_interval,
    calibration_across_months,
    calibration_band,
)

SECTIONS = (
    "Purpose and label",
    "Data windows",
    "Features and information value",
    "Hyperparameters",
    "Performance by window",
    "Calibration",
    "Stability",
    "Fairness at training time",
    "Less discriminatory alternatives",
    "Walk-forward backtest",
    "Gate decisions",
    "Limitations",
    "Artifact and code",
)
IV_SCALE = ((0.02, "useless"), (0.1, "weak"), (0.3, "medium"), (float("inf"), "strong"))
FAIRNESS_COLUMNS = ("window", "age_band", "n", *BAND_METRICS)


class PersonalDataError(ValueError):
    """A personal-data column (SSN, name) was about to be documented as a model input."""


@dataclass(frozen=True)
class ModelDocument:
    """Everything a version's document shows, summarized: no frame here holds an application."""

    record: RegistryRecord
    label_text: str
    generated_at: datetime
    windows: pl.DataFrame  # window, first_month, last_month, n, defaults, ..., clickstream share
    information_value: pl.DataFrame  # feature, iv (+ the scorecard's own columns)
    information_value_source: str
    calibration: pl.DataFrame  # window, bin, n, mean_predicted, observed_default_rate
    stability: pl.DataFrame  # window, feature, kind, psi, missing shares (against train)
    decisions: pl.DataFrame  # the gate's decisions about this version
    monitoring_drift: pl.DataFrame | None = None  # monitoring.drift's score PSI by month
    # Observed defaults against their band per window and month (calibration_bands).
    calibration_band: pl.DataFrame | None = None
    fairness: pl.DataFrame | None = None  # by age band on its test and OOT windows
    # The less-discriminatory-alternative search (None: not searched for this version).
    alternatives: FairnessAlternatives | None = None
    backtest: pl.DataFrame | None = None  # models.backtest rows of its family
    # The first application month from which no application has clickstream (None: no gap).
    clickstream_gap: date | None = None

    def __post_init__(self) -> None:
        documented = {*self.record.features, *self.information_value["feature"].to_list()}
        personal = sorted(c for c in documented if c.lower() in PERSONAL_COLUMNS)
        if personal:
            raise PersonalDataError(f"personal data cannot be documented as inputs: {personal}")

    @property
    def sections(self) -> list[tuple[str, list[Block]]]:
        return [
            (title, list(build(self))) for title, build in zip(SECTIONS, _BUILDERS, strict=True)
        ]


# A block is a paragraph (str) or a table (DataFrame).
Block = str | pl.DataFrame


# --- figures computed from the warehouse -----------------------------------------------------


def performance_table(metrics: dict[str, dict]) -> pl.DataFrame:
    """The registry's figures per window, with the ROC-AUC's 95% interval (Hanley-McNeil)."""
    rows = []
    for window in WINDOW_NAMES:
        m = metrics.get(window)
        if not m:
            continue
        interval = auc_interval(m.get("roc_auc"), m["defaults"], m["n"] - m["defaults"])
        rows.append(
            {
                "window": window,
                "n": m["n"],
                "defaults": m["defaults"],
                "roc_auc": m.get("roc_auc"),
                "roc_auc_95": interval,
                **{k: m.get(k) for k in ("gini", "ks", "pr_auc", "brier", "log_loss")},
                **{k: m.get(k) for k in ("precision", "recall", "f1")},
            }
        )
    return pl.DataFrame(rows).with_columns(
        roc_auc_95=pl.col("roc_auc_95").map_elements(_interval_text, return_dtype=pl.String)
    )


def _interval_text(interval) -> str:
    return "" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def window_table(record: RegistryRecord, clickstream_share: dict[str, float]) -> pl.DataFrame:
    """Months, loans and defaults of each window (the registry's counts), and the share of its
    loans with clickstream (from the feature store)."""
    rows = []
    for window in WINDOW_NAMES:
        if window not in record.windows:
            continue
        first, last = record.windows[window]
        m = record.metrics.get(window) or {}
        rows.append(
            {
                "window": window,
                "first_month": first,
                "last_month": last,
                "loans": m.get("n", 0),
                "defaults": m.get("defaults", 0),
                "default_rate": m.get("default_rate"),
                "with_clickstream": clickstream_share.get(window),
                "use": {
                    "train": "fit",
                    "validation": "calibration, threshold, selection",
                    "test": "reported",
                    "oot": "reported only (never used to choose)",
                }[window],
            }
        )
    return pl.DataFrame(rows)


def calibration_table(
    window: str, label: np.ndarray, probability: np.ndarray, bins: int = 10
) -> pl.DataFrame:
    """Loans grouped by deciles of calibrated probability: mean predicted vs observed rate."""
    probability = np.asarray(probability, dtype=float)
    label = np.asarray(label, dtype=float)
    if probability.size == 0:
        return pl.DataFrame(schema=CALIBRATION_SCHEMA)
    edges = np.unique(np.quantile(probability, np.linspace(0, 1, bins + 1)[1:-1]))
    frame = pl.DataFrame(
        {"bin": np.searchsorted(edges, probability, side="right") + 1, "p": probability, "y": label}
    )
    return (
        frame.group_by("bin")
        .agg(
            n=pl.len(),
            mean_predicted=pl.col("p").mean(),
            observed_default_rate=pl.col("y").mean(),
        )
        .sort("bin")
        .select(pl.lit(window).alias("window"), pl.all())
        .cast(CALIBRATION_SCHEMA)
    )


CALIBRATION_SCHEMA = {
    "window": pl.String,
    "bin": pl.Int64,
    "n": pl.Int64,
    "mean_predicted": pl.Float64,
    "observed_default_rate": pl.Float64,
}
BAND_WINDOWS = ("validation", "test", "oot")  # train is the fit itself: its band says nothing
BAND_SCHEMA = {
    "window": pl.String,
    "month": pl.String,  # an application month, or "all" for the window pooled
    "n": pl.Int64,
    "expected_defaults": pl.Float64,
    "observed_defaults": pl.Int64,
    "band_low": pl.Int64,
    "band_high": pl.Int64,
    "predicted_rate": pl.Float64,
    "observed_rate": pl.Float64,
    "rate_band": pl.String,
    "inside_band": pl.Boolean,
    "p_value": pl.Float64,
    "chi2_months": pl.Float64,
    "chi2_p_value": pl.Float64,
}


def calibration_bands(
    window: str, label: np.ndarray, probability: np.ndarray, month: np.ndarray, alpha: float
) -> pl.DataFrame:
    """The window's observed defaults against the band of confidence 1 - alpha its calibrated
    probabilities imply (monitoring's rule, performance.calibration_band): pooled ("all"),
    then each application month; the pooled row adds the chi-square across its months."""
    label, probability, month = np.asarray(label), np.asarray(probability, float), np.asarray(month)
    rows = []
    for name, chosen in [("all", np.ones(label.size, bool))] + [
        (str(m), month == m) for m in np.unique(month)
    ]:
        y, p = label[chosen], probability[chosen]
        band = calibration_band(y, p, alpha)
        across = calibration_across_months(y, p, month[chosen]) if name == "all" else {}
        n = int(y.size)
        rows.append(
            {
                "window": window,
                "month": name,
                "n": n,
                "expected_defaults": band["expected_defaults"],
                "observed_defaults": int(y.sum()),
                "band_low": band["defaults_band_low"],
                "band_high": band["defaults_band_high"],
                "predicted_rate": float(p.mean()) if n else None,
                "observed_rate": float(y.mean()) if n else None,
                "rate_band": _interval_text(
                    (band["defaults_band_low"] / n, band["defaults_band_high"] / n) if n else None
                ),
                "inside_band": band["inside_band"],
                "p_value": band["calibration_p_value"],
                "chi2_months": across.get("calibration_chi2"),
                "chi2_p_value": across.get("calibration_chi2_p_value"),
            }
        )
    return pl.DataFrame(rows, schema=BAND_SCHEMA)


def training_stability(
    record: RegistryRecord,
    windows: dict[str, pl.DataFrame],
    scores: dict[str, pl.Series],
    rule: BinningRule,
) -> pl.DataFrame:
    """Score PSI and each input's CSI and missing share of every later window against the
    training window: monitoring's own drift rows (same bins, smoothing and missingness rule)."""
    version = ScoredVersion.of(record)
    reference = DriftReference.of(version, windows["train"], scores["train"], rule)
    frames = [
        drift_rows(
            date.fromisoformat(record.windows[name][0]), reference, False, rows, scores[name]
        ).select(
            pl.lit(name).alias("window"),
            "feature",
            "kind",
            "psi",
            "missing_share_reference",
            "missing_share",
        )
        for name, rows in windows.items()
        if name != "train" and rows.height
    ]
    return pl.concat(frames) if frames else pl.DataFrame()


def information_values(
    frame: pl.DataFrame, label: np.ndarray, categorical: list[str], numeric: list[str]
) -> pl.DataFrame:
    """Each input's information value from optbinning's default optimal binning of the training
    window, for families that do not bin (the scorecard records its own). Each input is binned
    by `OptimalBinning` with `BinningProcess`'s defaults, without the process's summary
    statistics (quality score, tests between bins) that the document does not show."""
    from optbinning import OptimalBinning  # imported on first use: seconds of import

    y = np.asarray(label)
    rows = []
    for column in [*categorical, *numeric]:
        dtype = "categorical" if column in categorical else "numerical"
        binning = OptimalBinning(name=column, dtype=dtype)
        binning.fit(frame[column].to_pandas(), y)
        binning.binning_table.build()
        rows.append(
            {
                "feature": column,
                "iv": float(binning.binning_table.iv),
                "n_bins": len(binning.splits) + (dtype == "numerical"),
            }
        )
    schema = {"feature": pl.String, "iv": pl.Float64, "n_bins": pl.Int64}
    return pl.DataFrame(rows, schema=schema).sort("iv", descending=True)


class TrainingInformationValues:
    """`information_values` of each distinct training window and inputs, fitted once: the
    versions of one gate run (every family) train on the same rows, and optbinning's fit is
    most of a document's cost."""

    def __init__(self) -> None:
        self._fitted: list[tuple[pl.DataFrame, pl.DataFrame]] = []

    def __call__(
        self, train: pl.DataFrame, categorical: list[str], numeric: list[str]
    ) -> pl.DataFrame:
        rows = train.select(*categorical, *numeric, TARGET)
        for fitted_rows, table in self._fitted:
            if fitted_rows.equals(rows):
                return table
        table = information_values(rows, rows[TARGET].to_numpy(), categorical, numeric)
        self._fitted.append((rows, table))
        return table


def clickstream_gap(data: pl.DataFrame) -> date | None:
    """The first application month from which no application of `data` has clickstream: the
    cohorts the model scores without it, measured rather than assumed."""
    if data.is_empty() or "has_clickstream" not in data.columns:
        return None
    months = (
        data.group_by("application_month")
        .agg(pl.col("has_clickstream").cast(pl.Int8).max().alias("seen"))
        .sort("application_month")
    )
    seen = months.filter(pl.col("seen") > 0)["application_month"]
    after = months if seen.is_empty() else months.filter(pl.col("application_month") > seen.max())
    return after["application_month"][0] if after.height else None


def fairness_at_training(
    parts: dict[str, pl.DataFrame], scored: dict[str, pl.DataFrame], rules: FairnessRules
) -> pl.DataFrame | None:
    """By age band on the test and out-of-time windows (held out when it was trained): the
    version's own decisions against the labels, the fairness it showed before any monitoring
    ran, by the monitoring's own rules. None when the applications carry no age."""
    frames = []
    for window in ("test", "oot"):
        rows = parts[window]
        if "age" not in rows.columns:
            return None
        banded = pl.DataFrame(
            {
                "age_band": rows.select(age_band(pl.col("age"), rules.bands)).to_series(),
                "decision": scored[window]["decision"],
                "label": rows[TARGET],
                "calibrated_probability": scored[window]["calibrated_probability"],
            }
        )
        rates = band_rates(banded, rules, labelled=True)
        frames.append(rates.with_columns(window=pl.lit(window)).select(FAIRNESS_COLUMNS))
    return pl.concat(frames)


def decisions_about(decisions: pl.DataFrame, version_id: str) -> pl.DataFrame:
    """Every gate decision that judged the version or compared a challenger with it."""
    if decisions.is_empty():
        return decisions
    return decisions.filter(
        (pl.col("candidate_version") == version_id) | (pl.col("champion_version") == version_id)
    ).sort("decided_at")


def stale_versions(
    records: Iterable[RegistryRecord], decisions: pl.DataFrame, exists: Callable[[str], bool]
) -> list[str]:
    """Versions whose document is missing, or older than a gate decision about them.
    `exists(location)` tells whether a document is where its registry row says (a path or an
    s3:// location)."""
    stale = []
    for record in records:
        written = record.document_written_at
        if written is None or not record.document_path or not exists(record.document_path):
            stale.append(record.version_id)
            continue
        about = decisions_about(decisions, record.version_id)
        if about.height and about["decided_at"].max() > written:
            stale.append(record.version_id)
    return stale


def record_windows(record: RegistryRecord) -> Windows:
    """The version's windows as its registry row records them."""
    return Windows(
        **{n: tuple(date.fromisoformat(m) for m in record.windows[n]) for n in WINDOW_NAMES}
    )


def window_frames(record: RegistryRecord, data: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The labeled applications of each of the version's windows."""
    return split(data, record_windows(record))


def document_of(
    record: RegistryRecord,
    model: TrainedModel,
    data: pl.DataFrame,
    label_text: str,
    rule: BinningRule,
    decisions: pl.DataFrame,
    generated_at: datetime,
    information_value: pl.DataFrame | None = None,
    monitoring_drift: pl.DataFrame | None = None,
    fairness_rules: FairnessRules | None = None,
    backtest: pl.DataFrame | None = None,
    training_information_values: TrainingInformationValues | None = None,
    calibration_alpha: float | None = None,
    alternative_rules: AlternativeRules | None = None,
) -> ModelDocument:
    """The version's document from its verified model and its labeled applications `data`
    (observed by its as-of month). Without `information_value` (the scorecard records its
    own), each input's IV is computed on the training window, by
    `training_information_values` when given (shared by the documents of one run). The
    calibration band has confidence 1 - `calibration_alpha` (default: monitoring's,
    `band_alpha()`). With `alternative_rules` (and `fairness_rules`) the family is retrained
    without age and its proxies (lib/models/fairness_alternative.py)."""
    parts = window_frames(record, data)
    source = "the scorecard's own binning, recorded beside its artifact"
    # One native thread (OpenMP, BLAS): the windows hold thousands of rows, and on shared cores
    # a thread team waits for its slowest member longer than it saves.
    with threadpool_limits(limits=1):
        scored = {n: model.score(rows) for n, rows in parts.items()}
        if information_value is None:
            fit = training_information_values or TrainingInformationValues()
            information_value = fit(parts["train"], model.categorical, model.numeric)
            source = "optbinning's optimal binning of the training window"
    scores = {n: frame["calibrated_probability"] for n, frame in scored.items()}
    share = {
        n: rows["has_clickstream"].cast(pl.Float64).mean()
        for n, rows in parts.items()
        if rows.height and "has_clickstream" in rows.columns
    }
    return ModelDocument(
        record=record,
        label_text=label_text,
        generated_at=generated_at,
        windows=window_table(record, share),
        information_value=information_value,
        information_value_source=source,
        calibration=pl.concat(
            [
                calibration_table(n, rows[TARGET].to_numpy(), scores[n].to_numpy())
                for n, rows in parts.items()
            ]
        ),
        calibration_band=pl.concat(
            [
                calibration_bands(
                    n,
                    parts[n][TARGET].to_numpy(),
                    scores[n].to_numpy(),
                    parts[n]["application_month"].to_numpy(),
                    band_alpha() if calibration_alpha is None else calibration_alpha,
                )
                for n in BAND_WINDOWS
            ]
        ),
        stability=training_stability(record, parts, scores, rule),
        decisions=decisions_about(decisions, record.version_id),
        monitoring_drift=monitoring_drift,
        fairness=None
        if fairness_rules is None
        else fairness_at_training(parts, scored, fairness_rules),
        backtest=backtest,
        clickstream_gap=clickstream_gap(data),
        alternatives=None
        if alternative_rules is None or fairness_rules is None
        else search(
            record.family,
            record.hyperparameters,
            model,
            record.metrics,
            data,
            record_windows(record),
            fairness_rules,
            alternative_rules,
        ),
    )


# --- sections --------------------------------------------------------------------------------


def _purpose(doc: ModelDocument) -> Iterable[Block]:
    r = doc.record
    yield (
        f"Version {r.version_id} of the {r.family.replace('_', ' ')} family estimates, at "
        "application (month on book 0), the probability that a loan defaults: "
        f"{doc.label_text}. Applications whose calibrated probability is at or above the "
        f"threshold {r.threshold:.4f} are decided as default (declined)."
    )
    yield (
        f"Label definition recorded on the registry row: {r.label_def or 'not recorded'}. "
        "Features use only source rows dated on or before the application month (point in time)."
    )
    yield pl.DataFrame(
        {
            "field": ["status", "trained_at", "as_of_month", "reason_trained", "reason_detail"],
            "value": [
                r.status,
                str(r.trained_at),
                str(r.as_of_month),
                r.reason_trained,
                r.reason_detail or "",
            ],
        }
    )


def _data(doc: ModelDocument) -> Iterable[Block]:
    yield (
        "Windows by application month; loans are labeled applications observed by the as-of "
        f"month {doc.record.as_of_month}. Training data fingerprint: "
        f"{doc.record.input_data_version}."
    )
    yield doc.windows


def _features(doc: ModelDocument) -> Iterable[Block]:
    yield (
        f"{len(doc.record.features)} model inputs. Information value "
        f"({doc.information_value_source}; IV < 0.02 useless, 0.02-0.1 weak, 0.1-0.3 medium, "
        "> 0.3 strong)."
    )
    yield doc.information_value.with_columns(
        strength=pl.col("iv").map_elements(_iv_strength, return_dtype=pl.String)
    )


def _iv_strength(iv: float) -> str:
    return next(name for bound, name in IV_SCALE if iv < bound)


def _hyperparameters(doc: ModelDocument) -> Iterable[Block]:
    yield "As recorded on the registry row (the family's defaults with the run's config)."
    yield pl.DataFrame(
        {
            "hyperparameter": list(doc.record.hyperparameters),
            "value": [str(v) for v in doc.record.hyperparameters.values()],
        }
    )


def _performance(doc: ModelDocument) -> Iterable[Block]:
    yield (
        "The registry's figures per window, at the calibrated probability; the ROC-AUC's 95% "
        "interval is Hanley-McNeil's. The model is chosen on validation; out-of-time is only "
        f"reported. Decision metrics at the threshold {doc.record.threshold:.4f}."
    )
    yield performance_table(doc.record.metrics)


def _calibration(doc: ModelDocument) -> Iterable[Block]:
    yield (
        "Loans per decile of calibrated probability (Platt, fitted on validation): the mean "
        "predicted probability against the observed default rate."
    )
    yield doc.calibration
    if doc.calibration_band is None:
        return
    pooled = doc.calibration_band.filter(pl.col("month") == "all")
    verdicts = ", ".join(
        f"{r['window']} {'inside' if r['inside_band'] else 'outside'}"
        for r in pooled.iter_rows(named=True)
        if r["inside_band"] is not None
    )
    yield (
        "Observed defaults against the band the calibrated probabilities imply, the rule "
        "monitoring judges: if they are calibrated, the count of defaults is Poisson-binomial "
        "(mean sum p, variance sum p(1 - p)), and the band holds the counts whose exact "
        "two-sided p-value is at least the monitoring's data-science threshold (a 95% band). "
        "Each window pooled (month 'all', with the Hosmer-Lemeshow-style chi-square across its "
        "months, one degree of freedom a month), then each application month. About 500 loans "
        "move a month's default rate by about 4 points from chance alone. Validation is where "
        "the calibration was fitted; test and out-of-time are the evidence. Pooled over each "
        f"window: {verdicts}."
    )
    yield doc.calibration_band


def _stability(doc: ModelDocument) -> Iterable[Block]:
    score = doc.stability.filter(pl.col("kind") == "score") if doc.stability.height else None
    yield (
        "At training time, each later window against the training window, with monitoring's "
        "rule (PSI/CSI < 0.10 stable, 0.10-0.25 watch, > 0.25 shift; missing shares apart)."
    )
    if score is not None:
        yield score.drop("feature", "kind")
        yield from _moved_inputs(doc)
    if doc.monitoring_drift is not None and doc.monitoring_drift.height:
        yield "Since then, monitoring.drift: the score's PSI per application month."
        yield doc.monitoring_drift


def _moved_inputs(doc: ModelDocument, top: int = 15) -> Iterable[Block]:
    """Inputs past a watch level (CSI > 0.10, or missing share moved by > 0.05) in some
    window: their CSI per window, the most shifted first."""
    inputs = doc.stability.filter(pl.col("kind") == "feature").with_columns(
        missing_change=(pl.col("missing_share") - pl.col("missing_share_reference")).abs()
    )
    moved = (
        inputs.group_by("feature")
        .agg(
            max_csi=pl.col("psi").max(),
            max_missing_change=pl.col("missing_change").max(),
        )
        .filter((pl.col("max_csi") > 0.10) | (pl.col("max_missing_change") > 0.05))
        # Ties (inputs whose missing share jumps alike) in a fixed order: the same document
        # for the same data.
        .sort(
            "max_csi",
            "max_missing_change",
            "feature",
            descending=[True, True, False],
            nulls_last=True,
        )
    )
    yield (
        f"Inputs past a watch level (CSI > 0.10 or missing share moved by > 0.05) in some "
        f"window: {moved.height} of {len(doc.record.features)}"
        + (f"; the {min(top, moved.height)} most shifted:" if moved.height else ".")
    )
    if moved.height:
        per_window = inputs.pivot(on="window", index="feature", values="psi")
        yield moved.head(top).join(per_window, on="feature", how="left")


def _fairness(doc: ModelDocument) -> Iterable[Block]:
    if doc.fairness is None:
        yield "The applications carry no age: no fairness by age band at training time."
        return
    yield (
        "By age band, this version's own decisions on its test and out-of-time windows (held "
        "out when it was trained): approval rate, the adverse impact ratio against the "
        "most-approved band with enough loans (four-fifths rule: below 0.8 is flagged), and "
        "the error rates against the labels. monitoring.fairness follows them month by month."
    )
    yield doc.fairness


def _alternatives(doc: ModelDocument) -> Iterable[Block]:
    found = doc.alternatives
    if found is None:
        yield (
            f"Not searched for this version: the search retrains the family, and runs for the "
            f"champion and the families monitoring.fairness.alternatives lists "
            f"({doc.record.family} is not one of them unless it is the champion)."
        )
        return
    proxies = found.proxies.filter(pl.col("dropped"))["feature"].to_list()
    yield (
        f"Age {'is' if found.age_is_input else 'is not'} an input of this version. "
        + ("The first alternative drops it; the next " if found.age_is_input else "The search ")
        + "drops age's closest proxies too: inputs ranked by eta² with age on the training "
        f"window (the share of age's variance between their deciles or categories), here "
        f"{', '.join(proxies) or 'none above the cut-off'}. Each alternative is the same "
        "family and hyperparameters refitted on the same windows, its threshold at best F1 on "
        "validation; the adverse impact ratio is the lowest judged band's on test and "
        "out-of-time pooled (every band then holds its minimum). A reviewer weighs the "
        f"ROC-AUC lost against the ratio gained. Search time: {found.seconds:.1f} s."
    )
    yield found.table
    yield found.proxies.head(10)


def _backtest(doc: ModelDocument) -> Iterable[Block]:
    if doc.backtest is None or doc.backtest.is_empty():
        yield (
            f"No walk-forward backtest of the {doc.record.family} family in models.backtest "
            "(make backtest)."
        )
        return
    yield (
        f"The {doc.record.family} family retrained per as-of month on relative windows (not "
        "this version itself): OOT ROC-AUC per month, and the mean with a 95% t interval."
    )
    yield summarize(doc.backtest)
    yield doc.backtest.select(
        "as_of_month", "oot_month", "n", "roc_auc", "roc_auc_low", "roc_auc_high"
    ).sort("as_of_month")


def _decisions(doc: ModelDocument) -> Iterable[Block]:
    if doc.decisions.is_empty():
        yield "The gate has not judged this version yet."
        return
    yield (
        "Every decision of models.promotion_decisions about this version, as candidate or as "
        "the champion compared with: who decided (the gate, a manual promotion or a rollback), "
        "months and loans compared, both ROC-AUCs, the paired difference with its 95% DeLong "
        "interval, the one-sided lower bound the gate compared with the margin, and the reason."
    )
    columns = (
        "decided_at",
        "kind",
        "decided_by",
        "candidate_version",
        "champion_version",
        "window_months",
        "n",
        "candidate_auc",
        "champion_auc",
        "auc_difference",
        "difference_low",
        "difference_high",
        "lower_bound",
        "margin",
        "confidence",
        "promoted",
        "reason",
    )
    yield doc.decisions.select([c for c in columns if c in doc.decisions.columns])


def _limitations(doc: ModelDocument) -> Iterable[Block]:
    performance = performance_table(doc.record.metrics)
    oot = performance.filter(pl.col("window") == "oot")
    if oot.height:
        yield (
            f"Sample size: the out-of-time window holds {oot['n'][0]:,} loans "
            f"({oot['defaults'][0]:,} defaults); its ROC-AUC {_number(oot['roc_auc'][0])} has "
            f"the 95% interval {oot['roc_auc_95'][0]}: one month moves by about +/-0.05 from "
            "sampling alone. Compare families on the walk-forward backtest."
        )
    shares = dict(zip(doc.windows["window"], doc.windows["with_clickstream"], strict=True))
    share_text = ", ".join(f"{w} {_number(s)}" for w, s in shares.items())
    gap = (
        f"cohorts from {doc.clickstream_gap:%Y-%m} on have no clickstream at all"
        if doc.clickstream_gap
        else "every cohort of the labeled applications has some clickstream"
    )
    yield (
        f"Clickstream gap: {gap} (share of loans with clickstream per window: "
        f"{share_text}). Training masks the "
        "clickstream of a share of training rows so the model scores applicants without it, "
        "but windows before the gap do not measure performance after it: watch "
        "monitoring.model_performance for months without clickstream."
    )
    yield (
        "Labels arrive months after application (month on book of the label): the newest "
        "cohorts are judged by estimated performance and drift until then."
    )
    age = "is" if "age" in doc.record.features else "is not"
    yield (
        f"Age, a protected characteristic, {age} an input of this version; fairness by age "
        "band is monitored (monitoring.fairness), not enforced by the model."
    )


def _artifact(doc: ModelDocument) -> Iterable[Block]:
    r = doc.record
    yield pl.DataFrame(
        {
            "field": [
                "artifact_sha256",
                "artifact_path",
                "code_version",
                "input_data_version",
                "train_seconds",
                "document_generated_at",
            ],
            "value": [
                r.artifact_sha256,
                r.artifact_path,
                r.code_version,
                r.input_data_version,
                f"{r.train_seconds:.1f}",
                str(doc.generated_at),
            ],
        }
    )
    yield f"artifact_sha256: {r.artifact_sha256}"


_BUILDERS = (
    _purpose,
    _data,
    _features,
    _hyperparameters,
    _performance,
    _calibration,
    _stability,
    _fairness,
    _alternatives,
    _backtest,
    _decisions,
    _limitations,
    _artifact,
)


# --- rendering -------------------------------------------------------------------------------


def _number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cells(frame: pl.DataFrame) -> list[list[str]]:
    return [[_number(v) for v in row] for row in frame.iter_rows()]


CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #f3f3f3; } td { font-variant-numeric: tabular-nums; }
"""


def render_html(doc: ModelDocument) -> str:
    """One self-contained page: inline CSS, no script, no external asset."""
    r = doc.record
    title = f"Model document: {r.version_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Family {html.escape(r.family)}, status {html.escape(r.status)}; generated "
        f"{html.escape(str(doc.generated_at))} from the registry and the warehouse.</p>",
        "<nav><ol>"
        + "".join(f'<li><a href="#s{i}">{html.escape(t)}</a></li>' for i, t in enumerate(SECTIONS))
        + "</ol></nav>",
    ]
    for i, (heading, blocks) in enumerate(doc.sections):
        parts.append(f'<section id="s{i}"><h2>{html.escape(heading)}</h2>')
        for block in blocks:
            if isinstance(block, str):
                parts.append(f"<p>{html.escape(block)}</p>")
            elif block.is_empty():
                parts.append("<p>(no rows)</p>")
            else:
                head = "".join(f"<th>{html.escape(c)}</th>" for c in block.columns)
                body = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                    for row in _cells(block)
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(doc: ModelDocument) -> str:
    """The same sections as markdown, for the Dagster UI."""
    lines = [f"# Model document: {doc.record.version_id}"]
    for heading, blocks in doc.sections:
        lines.append(f"\n## {heading}\n")
        for block in blocks:
            if isinstance(block, str):
                lines.append(f"{block}\n")
            elif block.is_empty():
                lines.append("(no rows)\n")
            else:
                lines.append("| " + " | ".join(block.columns) + " |")
                lines.append("|" + "---|" * block.width)
                lines.extend(
                    "| " + " | ".join(v.replace("|", "/") for v in row) + " |"
                    for row in _cells(block)
                )
                lines.append("")
    return "\n".join(lines)
