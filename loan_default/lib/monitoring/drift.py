"""Population stability of a model's score and inputs against its training reference.

Two signals per column, because they call for different actions:
- value drift: PSI (score) or CSI (input) over the non-missing values only;
- missingness drift: the share of missing values now against the reference's.
A feature that stops arriving (the clickstream gap) is a missingness shift; it does not also
distort the value statistic through an empty "missing" bin.

The rules, the same for every column:
- Bins come from the reference. Numeric columns are cut at the reference's deciles (of its
  non-missing values), or get a bin per value when they have no more distinct values than
  bins; adjacent bins are then merged until each holds at least `min_bin_share` of the
  reference, because thin bins make shares noise. Categories with at least `min_bin_share`
  of the reference are bins of their own; rarer ones, and categories the reference never saw,
  share one `<other>` bin.
- Shares are smoothed by counts (additive smoothing): share = (count + a) / (n + a * bins) with
  a = `smoothing` (0.5), on both sides. An empty bin then counts half a row, so the logarithm
  stays finite and an empty bin in a 500-loan month weighs what 500 rows can show, where a fixed
  floor of 1e-4 would add about 0.59 for a 9% bin by itself.
- A side without non-missing values has no value distribution: its PSI is None, and the
  missingness signal carries the change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

OTHER = "<other>"


@dataclass(frozen=True)
class BinningRule:
    """How references are binned and shares smoothed (the `stability` section of thresholds)."""

    bins: int = 10
    min_bin_share: float = 0.05
    smoothing: float = 0.5

    @classmethod
    def of(cls, stability: dict) -> BinningRule:
        return cls(stability["bins"], stability["min_bin_share"], stability["smoothing"])


def smoothed_shares(counts: np.ndarray, smoothing: float) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    return (counts + smoothing) / (counts.sum() + smoothing * counts.size)


def psi_of_counts(reference: np.ndarray, current: np.ndarray, smoothing: float) -> float | None:
    """sum((c - r) * ln(c / r)) over smoothed shares; None when a side has no values."""
    if np.sum(reference) == 0 or np.sum(current) == 0:
        return None
    r, c = smoothed_shares(reference, smoothing), smoothed_shares(current, smoothing)
    return float(np.sum((c - r) * np.log(c / r)))


def is_categorical(values: pl.Series) -> bool:
    return values.dtype in (pl.String, pl.Categorical, pl.Enum)


def _numbers(values: pl.Series) -> np.ndarray:
    """Floats with NaN for missing values."""
    return values.cast(pl.Float64).fill_null(np.nan).to_numpy()


def _merged_edges(edges: np.ndarray, counts: np.ndarray, minimum: float) -> np.ndarray:
    """Cut points kept so that every bin between them holds at least `minimum` values."""
    kept, running = [], 0.0
    for i, count in enumerate(counts):
        running += count
        if i < edges.size and running >= minimum:
            kept.append(edges[i])
            running = 0.0
    if kept and running < minimum:  # the last bin is thin: it joins the one before
        kept.pop()
    return np.asarray(kept, dtype=float)


def _missing_share(missing: int, rows: int) -> float | None:
    return missing / rows if rows else None


@dataclass(frozen=True)
class BinnedReference:
    """A reference distribution, binned once and compared with many months."""

    rule: BinningRule
    edges: np.ndarray | None  # inner cut points of numeric bins; None for categories
    categories: tuple[str, ...] | None  # categories with bins of their own; None for numbers
    counts: np.ndarray  # reference values per bin
    missing_share: float | None

    @classmethod
    def of(cls, values: pl.Series, rule: BinningRule | None = None) -> BinnedReference:
        rule = rule or BinningRule()
        present = values.len() - values.null_count()
        if is_categorical(values):
            counts = values.drop_nulls().cast(pl.String).value_counts()
            kept = tuple(
                sorted(c for c, n in counts.iter_rows() if n >= rule.min_bin_share * present)
            )
            return cls(rule, None, kept, _category_counts(values, kept), _missing(values))
        numbers = _numbers(values)
        finite = numbers[~np.isnan(numbers)]
        distinct = np.unique(finite)
        if distinct.size <= rule.bins:  # a bin per value: quantiles of ties would merge them
            edges = distinct[1:]
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, rule.bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
        edges = _merged_edges(edges, counts, rule.min_bin_share * finite.size)
        counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
        return cls(
            rule, edges, None, counts, _missing_share(numbers.size - finite.size, numbers.size)
        )

    def _number_counts(self, numbers: np.ndarray) -> tuple[np.ndarray, float | None]:
        finite = numbers[~np.isnan(numbers)]
        counts = np.bincount(
            np.searchsorted(self.edges, finite, side="right"), minlength=self.edges.size + 1
        )
        return counts, _missing_share(numbers.size - finite.size, numbers.size)

    def compare(self, values: pl.Series) -> tuple[float | None, float | None]:
        """(PSI of the non-missing values, missing share) of `values` against this reference."""
        if self.edges is not None:
            return self.compare_numbers(_numbers(values))
        counts = _category_counts(values, self.categories)
        return psi_of_counts(self.counts, counts, self.rule.smoothing), _missing(values)

    def compare_numbers(self, numbers: np.ndarray) -> tuple[float | None, float | None]:
        counts, missing = self._number_counts(numbers)
        return psi_of_counts(self.counts, counts, self.rule.smoothing), missing

    def psi(self, values: pl.Series) -> float | None:
        return self.compare(values)[0]


def _missing(values: pl.Series) -> float | None:
    return _missing_share(values.null_count(), values.len())


def _category_counts(values: pl.Series, categories: tuple[str, ...]) -> np.ndarray:
    """Values per category bin, the last bin holding every other category."""
    binned = (
        values.drop_nulls()
        .cast(pl.String)
        .replace_strict(
            {c: i for i, c in enumerate(categories)}, default=len(categories), return_dtype=pl.Int64
        )
    )
    return np.bincount(binned.to_numpy(), minlength=len(categories) + 1)


def psi(reference: pl.Series, current: pl.Series, rule: BinningRule | None = None) -> float | None:
    """PSI of the non-missing values of `current` against those of `reference`."""
    return BinnedReference.of(reference, rule).psi(current)


def reference_bins(
    frame: pl.DataFrame, columns: list[str], rule: BinningRule | None = None
) -> dict[str, BinnedReference]:
    """Each column of the reference frame binned once."""
    return {c: BinnedReference.of(frame[c], rule) for c in columns}


STABILITY_SCHEMA = {
    "feature": pl.String,
    "psi": pl.Float64,
    "missing_share_reference": pl.Float64,
    "missing_share": pl.Float64,
}


def stability(references: dict[str, BinnedReference], current: pl.DataFrame) -> pl.DataFrame:
    """Value PSI and missing shares of every referenced column of `current`: a row per column.

    Numeric columns go to numpy in one conversion; per-column polars calls would dominate.
    """
    numeric = [c for c, ref in references.items() if ref.edges is not None]
    matrix = current.select(pl.col(numeric).cast(pl.Float64)).to_numpy() if numeric else None
    rows = []
    for column, reference in references.items():
        if reference.edges is None:
            value, missing = reference.compare(current[column])
        else:
            value, missing = reference.compare_numbers(matrix[:, numeric.index(column)])
        rows.append((column, value, reference.missing_share, missing))
    return pl.DataFrame(rows, schema=STABILITY_SCHEMA, orient="row")
