"""Reason codes for every decision, from the model that made it (adverse-action reasons).

Each family explains a fitted model its own way (`Family.explain`, lib/models/families.py):
per group of inputs that share a reason code, how much that group pushed the applicant
towards default, in the family's own units (points below the best bin, log-odds, probability).
This module is the one code path the predictions asset and the API share: it groups the
inputs by the versioned catalogue (`loan_default/reason_codes.json`), asks the family, and
keeps the four largest positive contributions of every application decided as default.
Personal data and protected characteristics have no code, so they can never be a reason.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from loan_default.lib.models import families

if TYPE_CHECKING:
    from loan_default.lib.models.training import TrainedModel

CATALOGUE_PATH = Path(__file__).resolve().parents[2] / "reason_codes.json"
# Regulation B practice: up to four principal reasons.
MAX_REASONS = 4
REASON_TYPE = pl.List(pl.Struct({"code": pl.String, "text": pl.String, "contribution": pl.Float64}))


@dataclass(frozen=True)
class ReasonCode:
    code: str
    text: str
    # Input names or fnmatch patterns (`fe_*_mean`): one code for inputs that say one thing.
    features: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    version: str
    codes: dict[str, ReasonCode]

    def groups(self, features: list[str]) -> dict[str, list[str]]:
        """The model inputs of each code, in the model's order; codes without one are left out
        and an input matched by two codes is refused. Inputs without a code get none."""
        owner: dict[str, str] = {}
        for code in self.codes.values():
            for feature in features:
                if any(fnmatch.fnmatchcase(feature, p) for p in code.features):
                    if feature in owner:
                        raise ValueError(
                            f"{feature} has two reason codes: {owner[feature]}, {code.code}"
                        )
                    owner[feature] = code.code
        grouped = {code: [f for f in features if owner.get(f) == code] for code in self.codes}
        return {code: columns for code, columns in grouped.items() if columns}


@functools.cache
def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    raw = json.loads(path.read_text())
    codes = {
        code: ReasonCode(code, entry["text"], tuple(entry["features"]))
        for code, entry in raw["codes"].items()
    }
    return Catalogue(str(raw["version"]), codes)


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    # In the family's units, positive: towards default (see README, "Reason codes").
    contribution: float


def top_reasons(
    contributions: np.ndarray, codes: list[str], catalogue: Catalogue, top: int = MAX_REASONS
) -> list[Reason]:
    """The `top` largest positive contributions; when none is positive (rare: a default
    decision with every group at or below its reference), the single largest, so every
    declined applicant is told at least one reason."""
    order = np.argsort(-contributions, kind="stable")
    chosen = [i for i in order[:top] if contributions[i] > 0] or [int(order[0])]
    return [
        Reason(codes[i], catalogue.codes[codes[i]].text, float(contributions[i])) for i in chosen
    ]


def contributions(
    model: TrainedModel, frame: pl.DataFrame, catalogue: Catalogue | None = None
) -> tuple[list[str], np.ndarray]:
    """(codes, matrix of n rows x codes): each code's push towards default, by the family's
    own explainer."""
    catalogue = catalogue or load_catalogue()
    reference = getattr(model, "reference", None)
    if reference is None:
        raise ValueError(
            f"{model.family} version has no reference applicants (trained before reason "
            "codes): retrain it"
        )
    groups = catalogue.groups(model.features)
    explain = families.family(model.family).explain
    return list(groups), explain(model.estimator, frame, groups, reference)


def prepare(model: TrainedModel) -> None:
    """Explains the reference applicant once, so a server pays the explainer's set-up (shap's
    import, the tree explainer) when it loads a model, not on the first declined applicant;
    a version without a reference (trained before reason codes) is refused here."""
    reference = getattr(model, "reference", None)
    contributions(model, reference.applicant if reference is not None else pl.DataFrame())


def reasons(
    model: TrainedModel,
    frame: pl.DataFrame,
    decision: np.ndarray,
    catalogue: Catalogue | None = None,
) -> list[list[Reason]]:
    """Per row of `frame`: its reasons when `decision` is 1 (default), none otherwise."""
    catalogue = catalogue or load_catalogue()
    declined = np.flatnonzero(np.asarray(decision) == 1)
    result: list[list[Reason]] = [[] for _ in range(frame.height)]
    if declined.size == 0:
        return result
    codes, matrix = contributions(model, frame[declined], catalogue)
    for row, index in enumerate(declined):
        result[index] = top_reasons(matrix[row], codes, catalogue)
    return result


def score_with_reasons(model: TrainedModel, frame: pl.DataFrame) -> pl.DataFrame:
    """The model's scores (`TrainedModel.score`) plus `reasons` (code, text, contribution;
    empty unless decision is 1): what the predictions asset stores and the API returns."""
    scored = model.score(frame)
    found = reasons(model, frame, scored["decision"].to_numpy())
    column = pl.Series(
        "reasons",
        [[r.__dict__ for r in row] for row in found],
        dtype=REASON_TYPE,
    )
    return scored.with_columns(column)


def stored_reasons(scored: pl.DataFrame, catalogue: Catalogue | None = None) -> pl.DataFrame:
    """`score_with_reasons`' frame as models.predictions stores it: the codes in order
    (`reason_codes`, empty unless decision is 1) and the catalogue's version, not the texts."""
    catalogue = catalogue or load_catalogue()
    return scored.with_columns(
        reason_codes=pl.col("reasons").list.eval(pl.element().struct.field("code")),
        reason_catalogue_version=pl.lit(catalogue.version),
    ).drop("reasons")
