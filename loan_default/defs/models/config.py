"""Run configuration of model training: windows, seed, gate margin and each family's knobs."""

from datetime import date

import dagster as dg

from loan_default import settings
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.sklearn_families import BoostingParams, LogisticParams


class TrainingConfig(dg.Config):
    """Which windows to train on and how; defaults match the team's current practice."""

    window_mode: str = "relative"  # or "absolute": the *_months below
    as_of_label_month: str | None = None  # newest labeled month when None
    relative_months: list[int] = [12, 3, 2, 1]
    train_months: list[str] = ["2023-01-01", "2023-12-01"]
    validation_months: list[str] = ["2024-01-01", "2024-02-01"]
    test_months: list[str] = ["2024-03-01", "2024-04-01"]
    oot_months: list[str] = ["2024-05-01", "2024-05-01"]
    seed: int = 42
    clickstream_dropout: float = 0.3
    decision_threshold: float | None = None  # F1-optimal on validation when None
    reason: str | None = None  # "initial" when the registry is empty, else "scheduled"
    reason_detail: str | None = None  # why a retrain was asked for, kept on the registry row

    def windows(self, newest_label_month: date) -> tuple[Windows, date]:
        """The windows and the as-of label month they respect."""
        if self.window_mode == "absolute":
            spans = [
                tuple(date.fromisoformat(m) for m in months)
                for months in (
                    self.train_months,
                    self.validation_months,
                    self.test_months,
                    self.oot_months,
                )
            ]
            windows = Windows(*spans)
            as_of = self._as_of(newest_label_month)
            return windows, as_of
        if self.window_mode != "relative":
            raise ValueError(
                f"window_mode must be 'relative' or 'absolute', not {self.window_mode}"
            )
        as_of = self._as_of(newest_label_month)
        return Windows.relative(as_of, settings.LABEL.mob, tuple(self.relative_months)), as_of

    def _as_of(self, newest_label_month: date) -> date:
        if self.as_of_label_month is None:
            return newest_label_month
        return date.fromisoformat(self.as_of_label_month)


class LogisticRegressionConfig(TrainingConfig):
    C: float = LogisticParams.C
    class_weight: str | None = LogisticParams.class_weight
    max_iter: int = LogisticParams.max_iter

    def hyperparameters(self) -> dict:
        return {"C": self.C, "class_weight": self.class_weight, "max_iter": self.max_iter}


class GradientBoostingConfig(TrainingConfig):
    learning_rate: float = BoostingParams.learning_rate
    max_iter: int = BoostingParams.max_iter
    max_leaf_nodes: int = BoostingParams.max_leaf_nodes
    min_samples_leaf: int = BoostingParams.min_samples_leaf
    l2_regularization: float = BoostingParams.l2_regularization

    def hyperparameters(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "max_iter": self.max_iter,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization,
            "seed": self.seed,
        }


class TabTransformerConfig(TrainingConfig):
    """Empty hyperparameters mean the module's defaults; pretraining is on by default."""

    max_epochs: int | None = None
    pretrain_epochs: int | None = None

    def hyperparameters(self) -> dict:
        chosen = {"max_epochs": self.max_epochs, "pretrain_epochs": self.pretrain_epochs}
        return {"seed": self.seed, **{k: v for k, v in chosen.items() if v is not None}}


class ChampionConfig(dg.Config):
    """ROC-AUC a challenger must gain over the champion on loans held out for both, and the
    fewest such loans a decision may rest on."""

    margin: float = 0.005
    min_loans: int = 1000


# The model families: one entry each, read by the model assets, the retrain job and the backtest.
FAMILY_CONFIGS: dict[str, type[TrainingConfig]] = {
    "logistic_regression": LogisticRegressionConfig,
    "gradient_boosting": GradientBoostingConfig,
    "tab_transformer": TabTransformerConfig,
}


class BacktestConfig(dg.Config):
    """Families compared walk-forward, each with its default hyperparameters."""

    families: list[str] = ["logistic_regression", "gradient_boosting"]
    relative_months: list[int] = [12, 3, 2, 1]
    seed: int = 42
    clickstream_dropout: float = 0.3
