"""Reason codes for every decision, from the model that made it (adverse-action reasons).

Each family explains a fitted model its own way (`Family.explain`, lib/models/families.py):
per group of inputs that share a reason code, how much that group pushed the applicant
towards default, in the family's own units (points below the best bin, log-odds, probability).
This module is the one code path the predictions asset and the API share: it groups the
inputs by the versioned catalogue (`loan_default/reason_codes.json`), asks the family, and
keeps the four largest positive contributions of every application decided as default.
A reason is told as the applicant's values stand: when a group's inputs are absent for the
applicant (no clickstream on file), its push comes from that absence, so the applicant gets
the group's missing code ("No recent online account activity on record"), never the text
written for observed values. Personal data and protected characteristics have no code, so
they can never be a reason.
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
    from loan_default.lib.models.reference_applicant import Reference
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
    # A missing code has none: it is told in place of the code it belongs to.
    features: tuple[str, ...]
    # The code told instead when all of the applicant's `when_null` inputs (patterns, the
    # features by default) are null: the group's push then comes from its values being absent.
    missing: str | None = None
    when_null: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    version: str
    codes: dict[str, ReasonCode]

    def groups(self, features: list[str]) -> dict[str, list[str]]:
        """The model inputs of each code, in the model's order; codes without one (missing
        codes among them) are left out and an input matched by two codes is refused. Inputs
        without a code get none."""
        rules = tuple((c.code, c.features) for c in self.codes.values() if c.features)
        return {code: list(columns) for code, columns in _grouped(rules, tuple(features)).items()}

    def group_of(self, code: str) -> str:
        """The input group a told code stands for: the code whose missing code it is, else
        itself (what `groups` keys it by)."""
        return next((c.code for c in self.codes.values() if c.missing == code), code)


@functools.cache
def _grouped(
    rules: tuple[tuple[str, tuple[str, ...]], ...], features: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """`Catalogue.groups`, matched once per catalogue and model's inputs: matching every
    input against every pattern costs about a millisecond, too much for each request."""
    owner: dict[str, str] = {}
    for code, patterns in rules:
        for feature in features:
            if any(fnmatch.fnmatchcase(feature, p) for p in patterns):
                if feature in owner:
                    raise ValueError(f"{feature} has two reason codes: {owner[feature]}, {code}")
                owner[feature] = code
    grouped = {code: tuple(f for f in features if owner.get(f) == code) for code, _ in rules}
    return {code: columns for code, columns in grouped.items() if columns}


@functools.cache
def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    """The catalogue at `path`: every code, each missing code as a code of its own (its text is
    looked up like any other); a code id declared twice is refused, naming the file."""
    raw = json.loads(path.read_text())
    codes: dict[str, ReasonCode] = {}

    def add(code: ReasonCode) -> None:
        if code.code in codes:
            raise ValueError(f"{path}: reason code {code.code} is declared twice")
        codes[code.code] = code

    for code, entry in raw["codes"].items():
        features = tuple(entry["features"])
        missing = entry.get("missing")
        if missing is None:
            add(ReasonCode(code, entry["text"], features))
            continue
        when_null = tuple(missing.get("when_null", features))
        add(ReasonCode(code, entry["text"], features, missing["code"], when_null))
        add(ReasonCode(missing["code"], missing["text"], ()))
    return Catalogue(str(raw["version"]), codes)


@functools.cache
def _absence_inputs(
    when_null: tuple[tuple[str, ...], ...], features: tuple[str, ...]
) -> tuple[list[str], list[list[int]]]:
    """The model inputs any group's absence reads, and per group their positions among them
    (none: the group can never be absent). Worked out once per model's inputs."""
    matched = [
        [f for f in features if any(fnmatch.fnmatchcase(f, p) for p in w)] for w in when_null
    ]
    columns = sorted({c for inputs in matched for c in inputs})
    position = {c: i for i, c in enumerate(columns)}
    return columns, [[position[c] for c in inputs] for inputs in matched]


def _null_mask(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """(rows x columns) True where null. A column's null count is stored with it, so a column
    with no null or only nulls (every column of one applicant) costs no per-row pass."""
    mask = np.empty((frame.height, len(columns)), dtype=bool)
    for k, column in enumerate(columns):
        series = frame.get_column(column)
        nulls = series.null_count()
        mask[:, k] = series.is_null().to_numpy() if 0 < nulls < frame.height else nulls > 0
    return mask


def absent_groups(
    frame: pl.DataFrame, codes: list[str], features: list[str], catalogue: Catalogue
) -> np.ndarray:
    """(rows of `frame` x `codes`) True where the code has a missing code and all of the row's
    `when_null` inputs are null: the group's push comes from its values being absent."""
    rules = tuple(catalogue.codes[c].when_null if catalogue.codes[c].missing else () for c in codes)
    columns, positions = _absence_inputs(rules, tuple(features))
    mask = _null_mask(frame, columns)
    absent = np.zeros((frame.height, len(codes)), dtype=bool)
    for j, index in enumerate(positions):
        if index:
            absent[:, j] = mask[:, index].all(axis=1)
    return absent


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


def told_code(code: str, absent: bool, catalogue: Catalogue) -> str:
    """The code an applicant is told for a reason: its missing code when the group is absent."""
    return (catalogue.codes[code].missing or code) if absent else code


def top_reasons(
    contributions: np.ndarray,
    codes: list[str],
    catalogue: Catalogue,
    top: int = MAX_REASONS,
    absent: np.ndarray | None = None,
) -> list[Reason]:
    """The reasons of one applicant (`top_reason_indices` of one row); `absent` (per code,
    `absent_groups`) turns a reason into its missing code."""
    chosen = top_reason_indices(contributions[np.newaxis, :], top)[0]
    absent = np.zeros(len(codes), dtype=bool) if absent is None else absent
    told = [told_code(codes[i], bool(absent[i]), catalogue) for i in chosen[chosen >= 0]]
    return [
        Reason(code, catalogue.codes[code].text, float(contributions[i]))
        for code, i in zip(told, chosen[chosen >= 0], strict=True)
    ]


def _reference(model: TrainedModel) -> Reference:
    """The model's reference applicant; a version trained before reason codes has none."""
    reference = getattr(model, "reference", None)
    if reference is None:
        raise ValueError(
            f"{model.family} version has no reference applicants (trained before reason "
            "codes): retrain it"
        )
    return reference


def contributions(
    model: TrainedModel, frame: pl.DataFrame, catalogue: Catalogue | None = None
) -> tuple[list[str], np.ndarray]:
    """(codes, matrix of n rows x codes): each code's push towards default, by the family's
    own explainer."""
    catalogue = catalogue or load_catalogue()
    reference = _reference(model)
    groups = catalogue.groups(model.features)
    explain = families.family(model.family).explain
    return list(groups), explain(model.estimator, frame, groups, reference)


def prepare(model: TrainedModel) -> None:
    """Gives the reference applicant its reasons once, so a server pays the explainer's set-up
    (shap's import, the tree explainer, the absence checks) when it loads a model, not on the
    first declined applicant; a version without a reference (trained before reason codes) is
    refused here."""
    reason_column(model, _reference(model).applicant, np.ones(1))


def reason_lists(
    rows: int,
    declined: np.ndarray,
    codes: list[str],
    matrix: np.ndarray,
    catalogue: Catalogue,
    absent: np.ndarray | None = None,
) -> pl.Series:
    """`rows` lists of reasons (REASON_TYPE): row `declined[i]` gets the top reasons of
    `matrix[i]` (`top_reason_indices`), each told by its missing code where `absent[i]` (same
    shape, `absent_groups`) says so; every other row an empty list. Built from arrays in one
    pass, so thousands of applicants cost no Python loop over rows."""
    matrix = np.asarray(matrix, dtype=np.float64)
    absent = np.zeros(matrix.shape, dtype=bool) if absent is None else np.asarray(absent)
    chosen = top_reason_indices(matrix)
    kept = chosen >= 0
    column = chosen[kept]  # row-major: each applicant's reasons together, largest first
    cells = np.where(kept, chosen, 0)
    told = np.where(
        np.take_along_axis(absent, cells, axis=1)[kept],
        np.asarray([told_code(c, True, catalogue) for c in codes], dtype=object)[column],
        np.asarray(codes, dtype=object)[column],
    )
    found = pl.DataFrame(
        {
            "row": np.repeat(np.asarray(declined, dtype=np.int64), kept.sum(axis=1)),
            "code": told,
            "text": np.asarray([catalogue.codes[c].text for c in told], dtype=object),
            "contribution": np.take_along_axis(matrix, cells, axis=1)[kept],
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
    """`reasons` per row of `frame`: the top reasons when `decision` is 1 (default), each told
    as the applicant's values stand (`absent_groups`), an empty list otherwise; one explainer
    call for all declined rows, however many months they span."""
    catalogue = catalogue or load_catalogue()
    declined = np.flatnonzero(np.asarray(decision) == 1)
    if declined.size == 0:
        return pl.Series("reasons", [[]] * frame.height, dtype=REASON_TYPE)
    rows = frame[declined]
    codes, matrix = contributions(model, rows, catalogue)
    absent = absent_groups(rows, codes, model.features, catalogue)
    return reason_lists(frame.height, declined, codes, matrix, catalogue, absent)


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
