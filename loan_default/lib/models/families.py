"""The model families, declared once: training, the Dagster model assets and their config, the
retrain job, the gate, the backtest and serving all enumerate `FAMILIES`.

A family is a name, a frozen dataclass of hyperparameters (its fields and defaults are the
family's Dagster config and what the registry records) and a function building its unfitted
estimator. A new family is one entry here plus its module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from loan_default.lib.gold.features import CLICKSTREAM_COLUMNS
from loan_default.lib.models.scorecard import ScorecardParams, scorecard
from loan_default.lib.models.sklearn_families import (
    BoostingParams,
    LogisticParams,
    boosting_contributions,
    gradient_boosting,
    logistic_contributions,
    logistic_regression,
)
from loan_default.lib.models.tab_transformer_params import TabTransformerParams


def _tab_transformer(categorical: list[str], numeric: list[str], params: TabTransformerParams):
    """Imported on first use: only this family needs torch."""
    from loan_default.lib.models.tab_transformer import TabTransformerClassifier

    groups = {
        "clickstream": [f"{c}_mean" for c in CLICKSTREAM_COLUMNS],
        "clickstream_long": [f"{c}_mean_long" for c in CLICKSTREAM_COLUMNS],
    }
    return TabTransformerClassifier(categorical, numeric, params, groups=groups)


@dataclass(frozen=True)
class Family:
    """One model family."""

    name: str
    # A frozen dataclass: one field per hyperparameter, with its default.
    params: type
    # The unfitted estimator for the feature columns (categorical, numeric) and the params.
    build: Callable[[list[str], list[str], Any], Any]
    # The libraries it is built with, shown as the model asset's kinds in the UI.
    kinds: frozenset[str]
    # Reason codes: (fitted estimator, frame, inputs per reason code, its Reference) -> each
    # code's push towards default per row (n x codes), the family's own method
    # (lib/models/reason_codes.py).
    explain: Callable[[Any, pl.DataFrame, dict[str, list[str]], Any], np.ndarray]
    # Whether `fit` also pretrains on unlabeled applications (`unlabeled=`).
    pretrains: bool = False
    # Tables describing a fitted estimator (name -> frame): shown in the UI and written as CSV
    # beside its artifact, e.g. the scorecard's points per bin.
    tables: Callable[[Any], dict[str, pl.DataFrame]] | None = None

    def hyperparameters(self, **values: Any) -> dict:
        """Every hyperparameter: the defaults, with `values` (unknown names are refused)."""
        return dataclasses.asdict(self.params(**values))

    def report_tables(self, estimator: Any) -> dict[str, pl.DataFrame]:
        return self.tables(estimator) if self.tables else {}

    def estimator(self, categorical: list[str], numeric: list[str], hyperparameters: dict):
        return self.build(categorical, numeric, self.params(**hyperparameters))


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "logistic_regression",
            LogisticParams,
            logistic_regression,
            frozenset({"scikitlearn"}),
            explain=logistic_contributions,
        ),
        Family(
            "gradient_boosting",
            BoostingParams,
            gradient_boosting,
            frozenset({"scikitlearn"}),
            explain=boosting_contributions,
        ),
        Family(
            "tab_transformer",
            TabTransformerParams,
            _tab_transformer,
            frozenset({"pytorch", "plotly"}),
            explain=lambda model, frame, groups, reference: model.occlusion_contributions(
                frame, groups, reference
            ),
            pretrains=True,
        ),
        Family(
            "scorecard",
            ScorecardParams,
            scorecard,
            frozenset({"scikitlearn"}),
            explain=lambda model, frame, groups, reference: model.points_below_best(frame, groups),
            tables=lambda model: {
                "scorecard": model.points_table(),
                "information_value": model.information_values(),
            },
        ),
    )
}


def family(name: str) -> Family:
    """The family called `name`; a name the code does not know is refused by name."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown model family {name!r}; expected one of {list(FAMILIES)}"
        ) from None
