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


def top_reason_indices(contributions: np.ndarray, top: int = MAX_REASONS) -> np.ndarray:
    """Per row of `contributions` (rows x codes): the columns of its `top` largest positive
    contributions, largest first, padded with -1; when none is positive (rare: a default
    decision with every group at or below its reference), the single largest, so every
    declined applicant is told at least one reason. Ties keep the catalogue's order."""
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
    keep = np.take_along_axis(contributions, order, axis=1) > 0
    keep[:, :1] = True  # descending: the first is positive whenever any is
    return np.where(keep, order, -1)


def top_reasons(
    contributions: np.ndarray, codes: list[str], catalogue: Catalogue, top: int = MAX_REASONS
) -> list[Reason]:
    """The reasons of one applicant (`top_reason_indices` of one row)."""
    chosen = top_reason_indices(contributions[np.newaxis, :], top)[0]
    return [
        Reason(codes[i], catalogue.codes[codes[i]].text, float(contributions[i]))
        for i in chosen[chosen >= 0]
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


def reason_lists(
    rows: int,
    declined: np.ndarray,
    codes: list[str],
    matrix: np.ndarray,
    catalogue: Catalogue,
) -> pl.Series:
    """`rows` lists of reasons (REASON_TYPE): row `declined[i]` gets the top reasons of
    `matrix[i]` (`top_reason_indices`), every other row an empty list. Built from arrays in
    one pass, so thousands of applicants cost no Python loop over rows."""
    matrix = np.asarray(matrix, dtype=np.float64)
    chosen = top_reason_indices(matrix)
    kept = chosen >= 0
    column = chosen[kept]  # row-major: each applicant's reasons together, largest first
    found = pl.DataFrame(
        {
            "row": np.repeat(np.asarray(declined, dtype=np.int64), kept.sum(axis=1)),
            "code": np.asarray(codes, dtype=object)[column],
            "text": np.asarray([catalogue.codes[c].text for c in codes], dtype=object)[column],
            "contribution": np.take_along_axis(matrix, np.where(kept, chosen, 0), axis=1)[kept],
        },
        schema={"row": pl.Int64, "code": pl.String, "text": pl.String, "contribution": pl.Float64},
    )
    listed = found.group_by("row", maintain_order=True).agg(
        reasons=pl.struct("code", "text", "contribution")
    )
    return (
        pl.DataFrame({"row": np.arange(rows, dtype=np.int64)})
        .join(listed, on="row", how="left", maintain_order="left")
        .select(pl.col("reasons").fill_null(pl.lit([], dtype=REASON_TYPE)).cast(REASON_TYPE))
        .to_series()
    )


def reason_column(
    model: TrainedModel,
    frame: pl.DataFrame,
    decision: np.ndarray,
    catalogue: Catalogue | None = None,
) -> pl.Series:
    """`reasons` per row of `frame`: the top reasons when `decision` is 1 (default), an empty
    list otherwise; one explainer call for all declined rows, however many months they span."""
    catalogue = catalogue or load_catalogue()
    declined = np.flatnonzero(np.asarray(decision) == 1)
    if declined.size == 0:
        return pl.Series("reasons", [[]] * frame.height, dtype=REASON_TYPE)
    codes, matrix = contributions(model, frame[declined], catalogue)
    return reason_lists(frame.height, declined, codes, matrix, catalogue)


def reasons(
    model: TrainedModel,
    frame: pl.DataFrame,
    decision: np.ndarray,
    catalogue: Catalogue | None = None,
) -> list[list[Reason]]:
    """Per row of `frame`: its reasons when `decision` is 1 (default), none otherwise."""
    column = reason_column(model, frame, decision, catalogue)
    return [[Reason(**r) for r in row] for row in column.to_list()]


def score_with_reasons(model: TrainedModel, frame: pl.DataFrame) -> pl.DataFrame:
    """The model's scores (`TrainedModel.score`) plus `reasons` (code, text, contribution;
    empty unless decision is 1): what the predictions asset stores and the API returns."""
    scored = model.score(frame)
    return scored.with_columns(reason_column(model, frame, scored["decision"].to_numpy()))


def stored_reasons(scored: pl.DataFrame, catalogue: Catalogue | None = None) -> pl.DataFrame:
    """`score_with_reasons`' frame as models.predictions stores it: the codes in order
    (`reason_codes`, empty unless decision is 1) and the catalogue's version, not the texts."""
    catalogue = catalogue or load_catalogue()
    return scored.with_columns(
        reason_codes=pl.col("reasons").list.eval(pl.element().struct.field("code")),
        reason_catalogue_version=pl.lit(catalogue.version),
    ).drop("reasons")
