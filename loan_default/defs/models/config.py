"""Run configuration of model training: windows, seed, gate margin, and each family's
hyperparameters as declared by its params dataclass in lib/models/families.py."""

import dataclasses
import typing
from datetime import date
from typing import ClassVar, Literal

import dagster as dg
from pydantic import Field

from loan_default import settings
from loan_default.lib.models.families import FAMILIES, Family
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.promotion import GateRule
from loan_default.lib.thresholds import load_thresholds


class TrainingConfig(dg.Config):
    """Which windows to train on and how; defaults match the team's current practice."""

    # "relative": relative_months back from the as-of label month; "recent": recent_months of
    # train and validation up to it, test and OOT the cohorts after (the policy after an
    # alarm, lib/models/model_windows.py); "absolute": the *_months below.
    window_mode: str = "relative"
    as_of_label_month: str | None = None  # newest labeled month when None
    relative_months: list[int] = [12, 3, 2, 1]
    recent_months: list[int] = [12, 1]
    train_months: list[str] = ["2023-01-01", "2023-12-01"]
    validation_months: list[str] = ["2024-01-01", "2024-02-01"]
    test_months: list[str] = ["2024-03-01", "2024-04-01"]
    oot_months: list[str] = ["2024-05-01", "2024-05-01"]
    seed: int = 42
    clickstream_dropout: float = 0.3
    decision_threshold: float | None = None  # F1-optimal on validation when None
    reason: str | None = None  # "initial" when the registry is empty, else "scheduled"
    reason_detail: str | None = None  # why a retrain was asked for, kept on the registry row
    # The family whose hyperparameters the fields after these are (set per family below).
    family: ClassVar[str]

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
        as_of = self._as_of(newest_label_month)
        if self.window_mode == "recent":
            return Windows.recent(as_of, settings.LABEL.mob, tuple(self.recent_months)), as_of
        if self.window_mode != "relative":
            raise ValueError(
                f"window_mode must be 'relative', 'recent' or 'absolute', not {self.window_mode}"
            )
        return Windows.relative(as_of, settings.LABEL.mob, tuple(self.relative_months)), as_of

    def _as_of(self, newest_label_month: date) -> date:
        if self.as_of_label_month is None:
            return newest_label_month
        return date.fromisoformat(self.as_of_label_month)

    def hyperparameters(self) -> dict:
        """Every hyperparameter of the family, as this run sets it."""
        params = FAMILIES[self.family].params
        return FAMILIES[self.family].hyperparameters(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(params)}
        )


class ChampionConfig(dg.Config):
    """The gate's rule for one run; each field left empty takes thresholds.json's "promotion"
    value (lib/models/promotion.py, GateRule), and every value is checked the same way.

    Or an operator's decision instead of the gate's (the `manual_promotion` job): `action`
    promote or rollback, with a reason (lib/models/manual_promotion.py checks the request)."""

    action: Literal["gate", "promote", "rollback"] = Field(
        default="gate",
        description="gate: judge the candidates on evidence; promote: `version` becomes "
        "champion; rollback: the version the most recent promotion replaced becomes champion "
        "again.",
    )
    version: str | None = Field(
        default=None, description="The version_id to promote (required for promote)."
    )
    reason: str | None = Field(
        default=None,
        description="Why (required for promote and rollback, kept with the decision row).",
    )
    decided_by: str | None = Field(
        default=None, description="Who decides; the OS user running the job when empty."
    )
    # The gate's rule (action "gate" only).
    margin: float | None = None
    confidence: float | None = None
    lookback_months: int | None = None
    max_decisions: int | None = None

    GATE_FIELDS: ClassVar[tuple[str, ...]] = (
        "margin",
        "confidence",
        "lookback_months",
        "max_decisions",
    )
    MANUAL_FIELDS: ClassVar[tuple[str, ...]] = ("version", "reason", "decided_by")

    def ignored(self) -> list[str]:
        """The fields set that this action does not read: a launchpad with `version` filled in
        but `action` left at gate would otherwise run the gate instead of the promotion."""
        unread = self.MANUAL_FIELDS if self.action == "gate" else self.GATE_FIELDS
        return [name for name in unread if getattr(self, name) is not None]

    def rule(self) -> GateRule:
        section = load_thresholds()["promotion"]
        chosen = {
            name: section[name] if getattr(self, name) is None else getattr(self, name)
            for name in ("margin", "confidence", "lookback_months", "max_decisions")
        }
        return GateRule.of(chosen)


def _family_config(family: Family) -> type[TrainingConfig]:
    """The family's run config: the training fields, then one field per hyperparameter of its
    params dataclass, with the dataclass's default (the training `seed` seeds the family too)."""
    types = typing.get_type_hints(family.params)
    fields = [
        f for f in dataclasses.fields(family.params) if f.name not in TrainingConfig.model_fields
    ]
    namespace = {
        "__module__": __name__,
        "__doc__": f"Training windows and hyperparameters of {family.name.replace('_', ' ')}.",
        "__annotations__": {f.name: types[f.name] for f in fields},
        **{f.name: f.default for f in fields},
        "family": family.name,
    }
    name = "".join(part.title() for part in family.name.split("_")) + "Config"
    return type(name, (TrainingConfig,), namespace)


# One config class per family, built from the family registry: the model assets, the retrain
# job and the backtest read these.
FAMILY_CONFIGS: dict[str, type[TrainingConfig]] = {
    name: _family_config(family) for name, family in FAMILIES.items()
}


class BacktestConfig(dg.Config):
    """Families compared walk-forward, each with its default hyperparameters."""

    families: list[str] = list(FAMILIES)
    relative_months: list[int] = [12, 3, 2, 1]
    seed: int = 42
    clickstream_dropout: float = 0.3
