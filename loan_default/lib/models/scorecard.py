"""The weight-of-evidence scorecard: optbinning's monotonic binning, a logistic regression on
the WoE of each bin, and points scaled by base points, base odds and points to double the odds.

The model a credit committee reads bin by bin. Binning and points are optbinning's
(`BinningProcess`, `Scorecard`), not hand-written. A missing value is a bin of its own with its
own empirical WoE (`metric_missing="empirical"`), so an applicant without clickstream scores
what such applicants were observed to do, not an average; the clickstream month counts, zero
when there is none, keep that zero apart as a special bin. The logistic regression is not
class-weighted, so points read as the odds of the training population (the Platt calibration
on validation, as for every family, corrects the level).

Features are chosen by evidence, on the training window alone: a feature with too little
information value is left out, and of features whose WoE says the same thing (highly
correlated) the one with the most information value stands for the others. A coefficient's sign
decides only after them: with correlated WoE inputs a reversed sign is mostly the regression
sharing evidence between partners, which the pruning removes first; what still comes out
reversed is left out, since a scorecard whose points rise with risk could not give a true
reason (README, the scorecard).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from loan_default.lib.gold.features import CLICKSTREAM_COUNTS

if TYPE_CHECKING:
    import pandas as pd

# optbinning's trends for the event rate over ordered bins; "auto_asc_desc" picks the better
# of ascending and descending per feature, so every numeric feature's bins are monotonic.
MONOTONIC_TRENDS = (
    "auto",
    "auto_heuristic",
    "auto_asc_desc",
    "ascending",
    "descending",
    "convex",
    "concave",
    "peak",
    "valley",
    "peak_heuristic",
    "valley_heuristic",
)
# Trends under which the event rate of the regular bins (not Special, not Missing) never turns.
MONOTONIC = ("auto_asc_desc", "ascending", "descending")
# Counts of clickstream months: zero means the applicant has none, a bin of its own.
ZERO_MEANS_NO_CLICKSTREAM = tuple(CLICKSTREAM_COUNTS)


@dataclass(frozen=True)
class ScorecardParams:
    # Points scaling (optbinning's "pdo_odds"): an applicant at good:bad odds of `base_odds`
    # scores `base_points`; every `pdo` more points doubles the odds.
    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    # The event-rate trend of every numeric feature's bins, unless `monotonic_trends` names
    # another for that feature (any feature, categorical too; a name that is not a model input
    # is refused). Categorical bins are ordered by event rate, so they need none.
    monotonic_trend: str = "auto_asc_desc"
    monotonic_trends: dict[str, str] | None = None
    max_n_prebins: int = 20
    min_prebin_size: float = 0.05
    max_n_bins: int | None = None
    min_bin_size: float | None = None
    # Features whose information value is below this are left out of the regression
    # (IV < 0.02 is "useless" by the usual scale); they still show in the IV table.
    min_iv: float = 0.02
    C: float = 1.0
    max_iter: int = 1000
    rounding: bool = False  # whole points in the table; the probability is the regression's
    # Of features whose WoE correlates at |r| >= this on the training window, only the one
    # with the highest IV enters the regression (None: no pruning). 0.8 is the walk-forward
    # backtest's choice among 0.7, 0.8, 0.95 and none (README, the scorecard).
    max_woe_correlation: float | None = 0.8
    # Then, while a kept feature's coefficient has the reversed sign (more points for a riskier
    # bin), it is left out and the regression refitted: points must fall as risk rises, or a
    # reason told from them ("debt is high relative to income") would be false of the applicant.
    max_sign_rounds: int = 10


class ScorecardModel:
    """A fitted optbinning Scorecard that scores a polars frame of (categorical, numeric)
    feature-store columns, with its points table and information values."""

    def __init__(self, categorical: list[str], numeric: list[str], params: ScorecardParams):
        cut = params.max_woe_correlation
        if cut is not None and not 0 < cut <= 1:
            raise ValueError(f"max_woe_correlation must be in (0, 1] or None, got {cut}")
        self.categorical, self.numeric, self.params = categorical, numeric, params
        self.trends = feature_trends(categorical, numeric, params)
        # Why each feature left out of the regression is out: its IV, or a partner whose WoE
        # says the same with more IV.
        self.left_out: dict[str, str] = {}
        self.scorecard = self._unfitted(self.columns)

    def _unfitted(self, columns: list[str]):
        # Imported on first use: optbinning brings ortools and cvxpy, seconds of import that
        # reading the families (the definitions, the API) should not pay.
        from optbinning import BinningProcess, Scorecard

        params = self.params
        fit_params = {f: {"monotonic_trend": t} for f, t in self.trends.items() if f in columns}
        for feature in ZERO_MEANS_NO_CLICKSTREAM:
            if feature in columns:
                fit_params.setdefault(feature, {})["special_codes"] = [0]
        return Scorecard(
            binning_process=BinningProcess(
                columns,
                categorical_variables=[c for c in self.categorical if c in columns],
                max_n_prebins=params.max_n_prebins,
                min_prebin_size=params.min_prebin_size,
                max_n_bins=params.max_n_bins,
                min_bin_size=params.min_bin_size,
                selection_criteria={"iv": {"min": params.min_iv}} if params.min_iv > 0 else None,
                binning_fit_params=fit_params,
            ),
            estimator=LogisticRegression(C=params.C, max_iter=params.max_iter),
            scaling_method="pdo_odds",
            scaling_method_params={
                "pdo": params.pdo,
                "odds": params.base_odds,
                "scorecard_points": params.base_points,
            },
            rounding=params.rounding,
        )

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def _pandas(self, frame: pl.DataFrame):
        """optbinning reads pandas; categories stay strings, nulls become its Missing bin."""
        return frame.select(self.columns).to_pandas()

    def fit(self, frame: pl.DataFrame, y: np.ndarray) -> ScorecardModel:
        """Bins every feature and measures its IV; leaves out the features below `min_iv` and,
        going down by IV, each feature whose WoE correlates with a feature already kept at
        |r| >= `max_woe_correlation`; regresses on the rest and, while some coefficient has the
        reversed sign (more points for a riskier bin), leaves those out and regresses again
        (at most `max_sign_rounds` times), so every feature's points rise as its risk falls.

        A feature's bins depend on its own values and the target alone, so leaving features out
        changes the regression, not the bins: the correlations are those of the first fit's WoE
        columns, and the scorecard is binned once more, for the features it keeps."""
        # One BLAS thread: the regressions are small, and on shared cores a second thread waits
        # for the first more than it helps.
        with threadpool_limits(limits=1, user_api="blas"):
            self._fit(self._pandas(frame), y)
        return self

    def _fit(self, data: pd.DataFrame, y: np.ndarray) -> None:
        self.left_out = {}
        self.scorecard = self._fitted(self.columns, data, y)
        # The first fit's IV of every feature, for the IV table.
        self.summary = _summary(self.scorecard.binning_process_.summary())
        for feature in self.summary.filter(~pl.col("selected"))["feature"].to_list():
            self.left_out[feature] = f"IV below {self.params.min_iv}"
        ranked = self.summary.filter(pl.col("selected"))["feature"].to_list()
        woe = self.scorecard.binning_process_.transform(
            data, metric_missing="empirical", metric_special="empirical"
        )
        if self.params.max_woe_correlation is not None:
            self.left_out.update(correlated_partners(woe[ranked], self.params.max_woe_correlation))
        regressed = [c for c in self.columns if c not in self.left_out]
        for sign_round in range(self.params.max_sign_rounds + 1):
            estimator = clone(self.scorecard.estimator).fit(woe[regressed], y)
            coefficients = dict(zip(regressed, estimator.coef_.ravel().tolist(), strict=True))
            reversed_sign = [f for f, c in coefficients.items() if c > 0]
            if not reversed_sign or sign_round == self.params.max_sign_rounds:
                break  # with no round left the scorecard keeps this regression's features
            self.left_out.update(dict.fromkeys(reversed_sign, "reversed sign"))
            regressed = [c for c in regressed if c not in self.left_out]
        if regressed != [c for c in self.columns if c in set(ranked)]:
            self.scorecard = self._fitted(regressed, data, y)

    def _fitted(self, columns: list[str], data: pd.DataFrame, y: np.ndarray):
        """The scorecard on `columns`, with empirical WoE for Missing and Special bins: each is
        a bin the regression weighs."""
        return self._unfitted(columns).fit(
            data, y, metric_missing="empirical", metric_special="empirical"
        )

    def coefficients(self) -> dict[str, float]:
        """The regression's coefficient per WoE feature (negative: WoE is higher for safer
        bins, the regression predicts default)."""
        names = [str(n) for n in self.scorecard.binning_process_.get_support(names=True)]
        return dict(zip(names, self.scorecard.estimator_.coef_.ravel().tolist(), strict=True))

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return self.scorecard.predict_proba(self._pandas(frame))[:, 1]

    def points(self, frame: pl.DataFrame) -> np.ndarray:
        """Each applicant's score: the sum of the points of its bins (higher is safer)."""
        return self.scorecard.score(self._pandas(frame))

    def points_below_best(
        self, frame: pl.DataFrame, groups: dict[str, list[str]], reference: object = None
    ) -> np.ndarray:
        """Reason-code contributions (n rows x groups): per group, the points its features fall
        below their best bin (the most points any bin with applicants gives), summed; a feature
        the regression leaves out gives none. The scorecard is its own reference."""
        table = self.scorecard.table(style="detailed")
        table = table[table["Count"] > 0]
        best = table.groupby("Variable")["Points"].max().to_dict()
        points = self.scorecard.transform(self._pandas(frame))  # points per applicant and input
        below = {f: best[f] - points[f].to_numpy(dtype=np.float64) for f in best}
        zero = np.zeros(frame.height)
        return np.column_stack(
            [sum((below.get(f, zero) for f in cols), zero) for cols in groups.values()]
        )

    def points_table(self) -> pl.DataFrame:
        """One row per feature and bin of the features in the regression, with its points.
        Special bins of features without special codes can hold no applicant: left out."""
        table = self.scorecard.table(style="detailed")
        points = pl.DataFrame(
            {
                "feature": table["Variable"].astype(str).tolist(),
                "bin_id": table["Bin id"].to_numpy().astype(np.int64),
                # A numeric interval as optbinning prints it, or the categories of the bin.
                "bin": [_bin_label(b) for b in table["Bin"]],
                "count": table["Count"].to_numpy().astype(np.int64),
                "event_rate": table["Event rate"].to_numpy().astype(np.float64),
                "woe": table["WoE"].to_numpy().astype(np.float64),
                "iv": table["IV"].to_numpy().astype(np.float64),
                "coefficient": table["Coefficient"].to_numpy().astype(np.float64),
                "points": table["Points"].to_numpy().astype(np.float64),
            }
        )
        special_features = [f for f in ZERO_MEANS_NO_CLICKSTREAM if f in self.numeric]
        return points.filter(
            (pl.col("bin") != "Special") | pl.col("feature").is_in(special_features)
        )

    def information_values(self) -> pl.DataFrame:
        """Every model input's information value, highest first, whether the regression uses
        it and, when not, why (IV below `min_iv`, or the correlated partner standing for it);
        for a feature in the regression its coefficient (positive: the reversed sign, more
        points for a riskier bin, kept as the evidence its partners leave to it)."""
        coefficients = self.coefficients()
        return self.summary.with_columns(
            selected=pl.col("feature").is_in(list(coefficients)),
            left_out=pl.col("feature").replace_strict(
                self.left_out, default=None, return_dtype=pl.String
            ),
            monotonic_trend=pl.col("feature").replace_strict(
                self.trends, default=None, return_dtype=pl.String
            ),
            coefficient=pl.col("feature").replace_strict(
                coefficients, default=None, return_dtype=pl.Float64
            ),
        )


def _summary(summary) -> pl.DataFrame:
    """optbinning's binning summary (pandas) as feature, iv, n_bins, selected."""
    return pl.DataFrame(
        {
            "feature": summary["name"].astype(str).tolist(),
            "iv": summary["iv"].to_numpy().astype(np.float64),
            "n_bins": summary["n_bins"].to_numpy().astype(np.int64),
            "selected": summary["selected"].to_numpy().astype(bool),
        }
    ).sort(["iv", "feature"], descending=[True, False])  # ties by name: the same every run


def correlated_partners(woe: pd.DataFrame, cut: float) -> dict[str, str]:
    """Features whose WoE says what a feature with more IV says, each with its reason. `woe`
    holds the WoE columns by IV, highest first: going down, a feature whose |r| with a feature
    already kept is >= `cut` is left out, naming the kept feature it correlates with most. A
    feature correlated only with left-out ones stays. A constant column correlates with none."""
    columns = list(woe.columns)
    if len(columns) < 2:
        return {}
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.atleast_2d(np.corrcoef(woe.to_numpy(dtype=np.float64), rowvar=False))
    kept: list[int] = []
    reasons = {}
    for i, feature in enumerate(columns):
        partners = [j for j in kept if abs(r[i, j]) >= cut]
        if not partners:
            kept.append(i)
            continue
        j = max(partners, key=lambda k: abs(r[i, k]))
        reasons[feature] = (
            f"WoE correlated with {columns[j]} (r = {r[i, j]:+.2f}, |r| >= {cut}), "
            "which ranks above it by IV"
        )
    return reasons


def _bin_label(value) -> str:
    """A bin as text: a numeric interval as optbinning prints it, categories joined."""
    if isinstance(value, str):
        return value
    return ", ".join(str(v) for v in value)


def feature_trends(
    categorical: list[str], numeric: list[str], params: ScorecardParams
) -> dict[str, str]:
    """The monotonic trend each feature is binned under: the default for numeric features,
    the mapping's where it names one. Unknown trends and unknown features are refused."""
    chosen = dict(params.monotonic_trends or {})
    unknown = sorted(set(chosen) - {*categorical, *numeric})
    if unknown:
        raise ValueError(f"monotonic_trends names features that are not model inputs: {unknown}")
    for feature, trend in {"monotonic_trend": params.monotonic_trend, **chosen}.items():
        if trend not in MONOTONIC_TRENDS:
            raise ValueError(
                f"{feature}: unknown monotonic trend {trend!r}; one of {MONOTONIC_TRENDS}"
            )
    return {**{f: params.monotonic_trend for f in numeric}, **chosen}


def scorecard(
    categorical: list[str], numeric: list[str], params: ScorecardParams
) -> ScorecardModel:
    return ScorecardModel(categorical, numeric, params)
