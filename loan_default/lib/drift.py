"""Population stability: PSI of scores and CSI of features against a training reference.

Numeric values are cut at the reference's deciles, categories are their own bins, and a missing
value is a bin of its own: a feature that stops arriving (the clickstream gap) is a shift, not
something to ignore. Empty bins are floored at EPSILON so the logarithm stays finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

EPSILON = 1e-4
MISSING = "<missing>"


def psi_from_shares(reference: np.ndarray, current: np.ndarray) -> float:
    """sum((current - reference) * ln(current / reference)) over bins, shares floored."""
    reference = np.maximum(np.asarray(reference, dtype=float), EPSILON)
    current = np.maximum(np.asarray(current, dtype=float), EPSILON)
    return float(np.sum((current - reference) * np.log(current / reference)))


def is_categorical(values: pl.Series) -> bool:
    return values.dtype in (pl.String, pl.Categorical, pl.Enum)


def _numbers(values: pl.Series) -> np.ndarray:
    """Floats with NaN for missing values."""
    return values.cast(pl.Float64).fill_null(np.nan).to_numpy()


def _numeric_shares(numbers: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values in each decile bin, the last bin holding the missing ones."""
    codes = np.searchsorted(edges, numbers, side="right")
    codes[np.isnan(numbers)] = edges.size + 1
    return np.bincount(codes, minlength=edges.size + 2) / max(numbers.size, 1)


def _category_shares(values: pl.Series) -> dict[str, float]:
    counts = values.cast(pl.String).fill_null(MISSING).value_counts()
    return {category: n / values.len() for category, n in counts.iter_rows()}


@dataclass(frozen=True)
class BinnedReference:
    """A reference distribution, binned once and compared with many months."""

    edges: np.ndarray | None  # inner decile cut points; None for categories
    shares: np.ndarray | dict[str, float]

    @classmethod
    def of(cls, values: pl.Series, bins: int = 10) -> BinnedReference:
        if is_categorical(values):
            return cls(None, _category_shares(values))
        numbers = _numbers(values)
        present = numbers[~np.isnan(numbers)]
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        edges = np.unique(np.quantile(present, quantiles)) if present.size else np.empty(0)
        return cls(edges, _numeric_shares(numbers, edges))

    def psi(self, values: pl.Series) -> float | None:
        """PSI of `values` against this reference; None when either side is empty."""
        if values.len() == 0:
            return None
        if self.edges is not None:
            return self.psi_of_numbers(_numbers(values))
        current = _category_shares(values)
        categories = list(self.shares.keys() | current.keys())
        return psi_from_shares(
            np.array([self.shares.get(c, 0.0) for c in categories]),
            np.array([current.get(c, 0.0) for c in categories]),
        )

    def psi_of_numbers(self, numbers: np.ndarray) -> float | None:
        if numbers.size == 0:
            return None
        return psi_from_shares(self.shares, _numeric_shares(numbers, self.edges))


def psi(reference: pl.Series, current: pl.Series, bins: int = 10) -> float | None:
    """PSI of `current` against `reference` (decile bins of the reference)."""
    return BinnedReference.of(reference, bins).psi(current) if reference.len() else None


def reference_bins(
    frame: pl.DataFrame, columns: list[str], bins: int = 10
) -> dict[str, BinnedReference]:
    """Each column of the reference frame binned once."""
    return {c: BinnedReference.of(frame[c], bins) for c in columns}


def stability(references: dict[str, BinnedReference], current: pl.DataFrame) -> pl.DataFrame:
    """PSI of every referenced column of `current`: one row per column.

    Numeric columns go to numpy in one conversion; per-column polars calls would dominate.
    """
    numeric = [c for c, ref in references.items() if ref.edges is not None]
    matrix = current.select(pl.col(numeric).cast(pl.Float64)).to_numpy() if numeric else None
    values = {}
    for column, reference in references.items():
        if reference.edges is None:
            values[column] = reference.psi(current[column])
        else:
            values[column] = reference.psi_of_numbers(matrix[:, numeric.index(column)])
    return pl.DataFrame(
        {"feature": list(values), "psi": list(values.values())},
        schema={"feature": pl.String, "psi": pl.Float64},
    )
