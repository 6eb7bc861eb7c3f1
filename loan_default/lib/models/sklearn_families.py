"""The two scikit-learn families: an interpretable logistic baseline and gradient boosting.

Both take the feature store's polars frame and handle missing values on purpose: the logistic
pipeline imputes with the median and adds missing-value indicators; boosting routes missing
values natively. Both are wrapped so they predict straight from a polars frame.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, RobustScaler

if TYPE_CHECKING:
    from loan_default.lib.models.reference_applicant import Reference


@dataclass(frozen=True)
class LogisticParams:
    C: float = 0.05
    class_weight: str | None = "balanced"
    max_iter: int = 2000


@dataclass(frozen=True)
class BoostingParams:
    # 0.1 rather than 0.05: validation AUC within 0.003, half the trees, twice the scoring speed.
    learning_rate: float = 0.1
    max_iter: int = 400
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    early_stopping: bool = True
    validation_fraction: float = 0.15
    class_weight: str | None = None
    seed: int = 42


class FrameModel:
    """A fitted scikit-learn classifier (or pipeline) that predicts from a polars frame.

    Categories are coded as floats (NaN for missing or unseen) with the mapping learnt at fit,
    so scoring builds one float matrix in polars and never touches Python objects.
    """

    def __init__(
        self, estimator: BaseEstimator, categorical: list[str], numeric: list[str]
    ) -> None:
        self.estimator, self.categorical, self.numeric = estimator, categorical, numeric
        self.categories: dict[str, list[str]] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("category_codes", None)  # derived from `categories`, rebuilt on first use
        return state

    def __setstate__(self, state: dict) -> None:
        # Artifacts pickled before the estimator was stored as `estimator` still load.
        if "pipeline" in state:
            state["estimator"] = state.pop("pipeline")
        self.__dict__.update(state)

    @functools.cached_property
    def category_codes(self) -> tuple[pl.Expr, ...]:
        """Each category's code as a float: its position in the Enum of the categories seen at
        fit, null (NaN) when unseen. Cheaper than replace_strict, which joins with the mapping;
        built once, as building an Enum costs as much as the cast on one application."""
        return tuple(
            pl.col(c).cast(pl.Enum(self.categories[c]), strict=False).to_physical().cast(pl.Float64)
            for c in self.categorical
        )

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        # In sequence: a few casts, cheaper in the calling thread than in polars' thread pool.
        codes = frame.select_seq(*self.category_codes)
        # Numeric columns straight to float (null -> NaN): no per-column cast expression, which
        # on a one-row request costs more than the conversion. Row-major, as hstack returns it
        # anyway: polars converts mixed types column by column then, not in its thread pool.
        numbers = frame[self.numeric].to_numpy(order="c").astype(np.float64, copy=False)
        return np.hstack([codes.to_numpy(), numbers])

    def fit(self, frame: pl.DataFrame, y: np.ndarray) -> FrameModel:
        self.categories = {
            c: frame[c].drop_nulls().unique().sort().to_list() for c in self.categorical
        }
        self.__dict__.pop("category_codes", None)  # built from the categories of a former fit
        self.estimator.fit(self.matrix(frame), y)
        return self

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(self.matrix(frame))[:, 1]


def _indices(categorical: list[str], numeric: list[str]) -> tuple[list[int], list[int]]:
    n_cat = len(categorical)
    return list(range(n_cat)), list(range(n_cat, n_cat + len(numeric)))


def logistic_regression(
    categorical: list[str], numeric: list[str], params: LogisticParams
) -> FrameModel:
    cat_idx, num_idx = _indices(categorical, numeric)
    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1.0),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=20),
                ),
                cat_idx,
            ),
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    RobustScaler(quantile_range=(5, 95)),
                ),
                num_idx,
            ),
        ]
    )
    model = LogisticRegression(
        C=params.C, class_weight=params.class_weight, max_iter=params.max_iter
    )
    return FrameModel(
        Pipeline([("preprocess", preprocess), ("model", model)]), categorical, numeric
    )


def gradient_boosting(
    categorical: list[str], numeric: list[str], params: BoostingParams
) -> FrameModel:
    model = HistGradientBoostingClassifier(
        learning_rate=params.learning_rate,
        max_iter=params.max_iter,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=params.early_stopping,
        validation_fraction=params.validation_fraction,
        class_weight=params.class_weight,
        # Category codes split as ordered numbers, not as native category sets: TreeSHAP (the
        # reason codes) reads threshold splits only, and shap misreads native category splits.
        categorical_features=None,
        random_state=params.seed,
    )
    # The classifier itself, not a one-step Pipeline: that wrapper costs more per call than
    # the trees do on one application.
    return FrameModel(model, categorical, numeric)


def _positions(model: FrameModel, groups: dict[str, list[str]]) -> list[list[int]]:
    position = {c: i for i, c in enumerate(model.columns)}
    return [[position[c] for c in columns] for columns in groups.values()]


def logistic_contributions(
    model: FrameModel, frame: pl.DataFrame, groups: dict[str, list[str]], reference: Reference
) -> np.ndarray:
    """Reason-code contributions (n rows x groups) in log-odds against the reference applicant:
    the drop in log-odds when a group's inputs take the reference's values. Each input is
    imputed, scaled and encoded on its own, so the log-odds are a sum over inputs and the
    contributions add up exactly to the applicant's log-odds minus the reference's."""
    x = model.matrix(frame)
    baseline = model.matrix(reference.applicant)[0]
    log_odds = model.estimator.decision_function(x)
    out = np.empty((frame.height, len(groups)))
    for j, index in enumerate(_positions(model, groups)):
        moved = x.copy()
        moved[:, index] = baseline[index]
        out[:, j] = log_odds - model.estimator.decision_function(moved)
    return out


# One TreeSHAP explainer per fitted model, built on first use (it walks every tree).
_TREE_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def boosting_contributions(
    model: FrameModel, frame: pl.DataFrame, groups: dict[str, list[str]], reference: Reference
) -> np.ndarray:
    """Reason-code contributions (n rows x groups) in log-odds: TreeSHAP values (shap's
    TreeExplainer, path-dependent: the trees' own training cover is the background) summed
    over each group's inputs. They add up to the log-odds minus the training average."""
    explainer = _TREE_EXPLAINERS.get(model)
    if explainer is None:
        import shap  # imported on first use: seconds of numba start-up

        explainer = _TREE_EXPLAINERS[model] = shap.TreeExplainer(model.estimator)
    values = np.asarray(explainer.shap_values(model.matrix(frame)), dtype=np.float64)
    return np.column_stack([values[:, index].sum(axis=1) for index in _positions(model, groups)])
