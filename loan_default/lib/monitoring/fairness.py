"""Fair-lending monitoring by age band: approval rates, the adverse impact ratio, and error
rates once labels arrive. Pure polars over scored applications; no Dagster here.

A decision of 0 approves (the model expects repayment), 1 declines. Every month, version,
clock, window and band is one group of a single grouped computation (counts, then rates from
them; ROC-AUC from the rank sum of the defaulters' scores), since a metric frame per cell
costs far more than the arithmetic. The adverse impact ratio divides each band's approval
rate by that of the most-approved band. Each month is shown alone, pooled with the months
before it (`rolling_{n}m`) and over its adaptive window (`adaptive`, window_lengths: the fewest
months that give every band `min_band_loans` loans), which the check judges by default, so a
small band is judged in every month rather than dropped. Edge cases, decided once here:
- every configured band, and `unknown` (no valid age), has a row in every month, with n = 0
  and null rates when it holds no loan;
- a band with fewer than `min_band_loans` loans, and `unknown`, is shown but not judged: it is
  neither the reference nor flagged, since one month of a small band flaps by chance;
- with fewer than two judged bands there is nothing to compare: the check does not judge;
- when no judged band approves anyone, every ratio is undefined (null) and the check warns
  that nothing was approved, rather than staying silent.
Rates that have no denominator (a true-positive rate without defaults, a false-positive rate
without repayers, an ROC-AUC with one class) are null, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from loan_default.lib.monitoring.alerts import Finding
from loan_default.lib.monitoring.monitoring_tables import ScoredVersion
from loan_default.lib.thresholds import ADAPTIVE_WINDOW

UNKNOWN_BAND = "unknown"
CLOCKS = ("application", "label")
BAND_METRICS = (
    "approval_rate",
    "adverse_impact_ratio",
    "default_rate",
    "true_positive_rate",
    "false_positive_rate",
    "roc_auc",
)
# One group of the grouped computation: a version's cohort of a month on a clock and window.
CELL = ["month", "clock", "model_family", "model_version", "is_champion", "window"]
FAIRNESS_SCHEMA = {
    "month": pl.Date,  # the application month (clock "application") or label month ("label")
    "clock": pl.String,
    "application_month": pl.Date,
    "model_family": pl.String,
    "model_version": pl.String,
    "is_champion": pl.Boolean,
    "window": pl.String,
    "months_pooled": pl.Int64,
    "held_out": pl.Boolean,
    "threshold": pl.Float64,
    "age_band": pl.String,
    "n": pl.Int64,
    "judged": pl.Boolean,
    "reference_band": pl.String,
    "approved": pl.Int64,
    "defaults": pl.Int64,
    **{m: pl.Float64 for m in BAND_METRICS},
}


@dataclass(frozen=True)
class AgeBand:
    name: str
    low: int
    high: int | None  # inclusive; None = no upper bound


@dataclass(frozen=True)
class FairnessRules:
    """The `monitoring.fairness` section of the thresholds file."""

    bands: tuple[AgeBand, ...]
    min_band_loans: int
    min_adverse_impact_ratio: float
    action: str
    evaluate_on: str
    # The judged window's cap: it pools at most this many months (the month and those before).
    max_window_months: int = 12

    @classmethod
    def of(cls, rules: Mapping) -> FairnessRules:
        bands = tuple(
            AgeBand(f"{low}+" if high is None else f"{low}-{high}", low, high)
            for low, high in rules["age_bands"]
        )
        return cls(
            bands=bands,
            min_band_loans=rules["min_band_loans"],
            min_adverse_impact_ratio=rules["adverse_impact_ratio"]["min"],
            action=rules["adverse_impact_ratio"]["action"],
            evaluate_on=rules["evaluate_on"],
            max_window_months=rules["judged_window"]["max_months"],
        )

    @property
    def band_names(self) -> list[str]:
        return [b.name for b in self.bands] + [UNKNOWN_BAND]


def age_band(age: pl.Expr, bands: tuple[AgeBand, ...]) -> pl.Expr:
    """The band an age falls in; `unknown` for a null age or one outside every band."""
    expression = pl.lit(UNKNOWN_BAND)
    for band in reversed(bands):
        inside = age >= band.low if band.high is None else age.is_between(band.low, band.high)
        expression = pl.when(inside).then(pl.lit(band.name)).otherwise(expression)
    return expression.alias("age_band")


def band_rates(rows: pl.DataFrame, rules: FairnessRules, labelled: bool) -> pl.DataFrame:
    """Per age band of one version's scored applications: counts, approval rate, and with
    labels the default, true-positive (defaulters declined) and false-positive (repayers
    declined) rates and ROC-AUC; then which bands are judged and their adverse impact ratio.

    `rows` holds `age_band` and `decision` (and `label`, `calibrated_probability` when
    labelled). Every band of `rules` gets a row, empty ones included.
    """
    present = set(rows.columns) if labelled else set()
    inputs = rows.select(
        pl.lit(0, pl.UInt32).alias("cell"),
        _band(rules),
        "decision",
        *(
            pl.col(c) if c in present else pl.lit(None, dtype).alias(c)
            for c, dtype in (("label", pl.Int8), ("calibrated_probability", pl.Float64))
        ),
    )
    one_cell = pl.DataFrame({"cell": [0]}, schema={"cell": pl.UInt32})
    return band_table(inputs, one_cell, rules).drop("cell")


def _band(rules: FairnessRules) -> pl.Expr:
    """The position of a row's band in `rules`; null for a band the rules do not name (such
    a row has no band row to count in)."""
    return (
        pl.col("age_band")
        .replace_strict(
            rules.band_names, range(len(rules.band_names)), default=None, return_dtype=pl.UInt8
        )
        .alias("band")
    )


def _band_counts() -> list[pl.Expr]:
    """Sums per group of rows (cell and band): every rate is a ratio of these. The rank sum
    of the defaulters' scores (average ranks for ties) gives the ROC-AUC by Mann-Whitney."""
    declined, label = pl.col("decision") == 1, pl.col("label")
    return [
        pl.len().cast(pl.Int64).alias("n"),
        (~declined).sum().cast(pl.Int64).alias("approved"),
        label.count().cast(pl.Int64).alias("labelled"),
        label.sum().cast(pl.Int64).alias("defaults"),
        (declined & (label == 1)).sum().cast(pl.Int64).alias("declined_defaults"),
        (declined & (label == 0)).sum().cast(pl.Int64).alias("declined_repayers"),
        pl.col("calibrated_probability")
        .rank("average")
        .filter(label == 1)
        .sum()
        .cast(pl.Float64)
        .alias("default_rank_sum"),
    ]


def _band_rates() -> list[pl.Expr]:
    """Rates from the counts; a rate whose denominator is zero is null, never 0: an empty
    band has none, the application clock (no labels) has no label rate, and a band of one
    class has no ROC-AUC."""
    n, defaults = pl.col("n"), pl.when(pl.col("labelled") > 0).then(pl.col("defaults"))
    repayers = pl.col("labelled") - defaults
    return [
        pl.when(n > 0).then(pl.col("approved")).alias("approved"),
        defaults.alias("defaults"),
        (pl.col("approved") / n).alias("approval_rate"),
        (defaults / pl.col("labelled")).alias("default_rate"),
        pl.when(defaults > 0)
        .then(pl.col("declined_defaults") / defaults)
        .alias("true_positive_rate"),
        pl.when(repayers > 0)
        .then(pl.col("declined_repayers") / repayers)
        .alias("false_positive_rate"),
        pl.when((defaults > 0) & (repayers > 0))
        .then((pl.col("default_rank_sum") - defaults * (defaults + 1) / 2) / (defaults * repayers))
        .alias("roc_auc"),
    ]


def band_table(
    rows: pl.DataFrame | pl.LazyFrame, cells: pl.DataFrame | pl.LazyFrame, rules: FairnessRules
) -> pl.DataFrame:
    """Band rates of every cell in one grouped computation: each row of `cells` (an id
    `cell` and any columns to carry through) gets every band of `rules` in band order, empty
    ones with n = 0; then judged bands and the adverse impact ratio per cell.

    `rows` holds cell, band (see _band), decision, label and calibrated_probability (label
    null where the clock has none)."""
    counts = rows.lazy().group_by("cell", "band").agg(_band_counts())
    bands = pl.LazyFrame(
        {"band": range(len(rules.band_names)), "age_band": rules.band_names},
        schema={"band": pl.UInt8, "age_band": pl.String},
    )
    rates = (
        cells.lazy()
        .join(bands, how="cross")
        .join(counts, on=["cell", "band"], how="left")
        .with_columns(pl.col("n").fill_null(0))
        .with_columns(_band_rates())
        .sort("cell", "band")
        .drop("band", "labelled", "declined_defaults", "declined_repayers", "default_rank_sum")
    )
    return with_adverse_impact(rates, rules, ["cell"]).collect()


def with_adverse_impact(
    rates: pl.DataFrame | pl.LazyFrame, rules: FairnessRules, cell: list[str] | None = None
) -> pl.DataFrame | pl.LazyFrame:
    """Marks the judged bands (a configured band with at least `min_band_loans` loans) and
    divides every band's approval rate by the most-approved judged band's within its cell
    (the reference; the first in band order on a tie). Null when no band is judged or none
    approved anyone. Without `cell`, `rates` is one cell.

    With the counts (`approved`) the ratio is taken from them, (approved / n) over the
    reference's, in one rounding: a ratio of exactly four fifths then reads 0.8, not a float
    step below it, and holds."""
    partition = cell or pl.lit(0)
    judged = (pl.col("age_band") != UNKNOWN_BAND) & (pl.col("n") >= rules.min_band_loans)
    order = pl.col("age_band").replace_strict(
        rules.band_names, range(len(rules.band_names)), default=None, return_dtype=pl.Int64
    )

    def of_reference(column: str) -> pl.Expr:
        return (
            pl.col(column)
            .filter(judged)
            .sort_by(
                pl.col("approval_rate").filter(judged),
                order.filter(judged),
                descending=[True, False],
                nulls_last=True,
            )
            .first()
            .over(partition)
        )

    if "approved" in rates.collect_schema().names():
        approved = of_reference("approved")
        ratio = pl.when(approved > 0).then(
            pl.col("approved") * of_reference("n") / (pl.col("n") * approved)
        )
    else:
        best = of_reference("approval_rate")
        ratio = pl.when(best > 0).then(pl.col("approval_rate") / best)
    return rates.with_columns(
        judged=judged, reference_band=of_reference("age_band"), adverse_impact_ratio=ratio
    )


def _clock_rows(
    frame: pl.DataFrame, clock: str, month_column: str, rules: FairnessRules
) -> pl.LazyFrame:
    """Scored rows of one clock, `month` being that clock's month (application or label)."""
    labelled = clock == "label"
    return frame.lazy().select(
        pl.col(month_column).alias("month"),
        pl.lit(clock).alias("clock"),
        "model_family",
        "model_version",
        "is_champion",
        "application_month",
        _band(rules),
        "decision",
        pl.col("label").cast(pl.Int8) if labelled else pl.lit(None, pl.Int8).alias("label"),
        pl.col("calibrated_probability")
        if labelled
        else pl.lit(None, pl.Float64).alias("calibrated_probability"),
    )


def window_lengths(cells: pl.LazyFrame, pooled: pl.LazyFrame, rules: FairnessRules) -> pl.LazyFrame:
    """The adaptive window of each cell (`cell`, `clock`, `model_version`, `month`): the
    shortest trailing window, month T and the months before it, in which every configured
    band holds at least `min_band_loans` of the version's loans on the cell's clock, capped at
    `max_window_months`; the cap when no shorter window (or none at all) fills every band.
    `window_months` per cell, from the version's monthly band counts in `pooled` (rows of
    _clock_rows): a band as small as the older applicants' then is judged in every month, at
    the cost of a longer memory in that month only."""
    configured, longest = len(rules.bands), rules.max_window_months
    monthly = (
        pooled.filter(pl.col("band") < configured)  # `unknown` is never judged: it never waits
        .group_by("month", "clock", "model_version", "band")
        .agg(n=pl.len())
    )
    reached = (
        cells.select("cell", "clock", "model_version", "month", back=pl.int_ranges(0, longest))
        .explode("back")
        .with_columns(month=pl.col("month").dt.offset_by(pl.format("-{}mo", "back")))
        .join(monthly, on=["month", "clock", "model_version"])
        .with_columns(total=pl.col("n").cum_sum().over("cell", "band", order_by="back"))
        .group_by("cell", "band")
        .agg(first=pl.col("back").filter(pl.col("total") >= rules.min_band_loans).min())
        .group_by("cell")
        .agg(
            window_months=pl.when(pl.col("first").count() == configured).then(
                pl.col("first").max() + 1
            )
        )
    )
    return (
        cells.select("cell")
        .join(reached, on="cell", how="left")
        .select("cell", pl.col("window_months").fill_null(longest).cast(pl.Int64))
    )


def _windows(
    this_month: pl.LazyFrame,
    pooled: pl.LazyFrame,
    lengths: Mapping[str, int | None],
    application_month: pl.Expr,
    rules: FairnessRules,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The cells and their rows. Both frames hold the columns of _clock_rows: `this_month`
    the rows of the months to show, `pooled` those the windows pool. A version gets a cell
    in month T on a clock (window `month`) only when it scored a loan of T on it; each pooled
    window of `lengths` (name -> months, None for the adaptive window of window_lengths) gives
    it a cell holding its rows of T and the months before, under the family and champion flag
    it had in T, whatever they were before.

    Cells are numbered (`cell`) so that each row, repeated once per cell it counts in, is a
    few narrow columns. They carry application_month (`application_month` over the month's
    rows) and months_pooled (the application months a window holds)."""
    keys = ["month", "clock", "model_family", "model_version", "is_champion"]
    month_cells = (
        this_month.group_by(keys)
        .agg(application_month.alias("application_month"))
        .sort(keys)
        .with_row_index("cell")
        .collect()
    )
    windows = []
    for position, (window, length) in enumerate(lengths.items(), start=1):
        cells = month_cells.lazy().with_columns(
            pl.col("cell") + position * month_cells.height, window=pl.lit(window)
        )
        if length is None:
            windows.append(cells.join(window_lengths(cells, pooled, rules), on="cell"))
        else:
            windows.append(cells.with_columns(window_months=pl.lit(length, pl.Int64)))
    pooled_cells = pl.concat(windows)
    # A pooled cell of month T draws on the rows of T - k, k < its window's months.
    sources = (
        pooled_cells.select(
            "cell", "clock", "model_version", "month", back=pl.int_ranges(0, "window_months")
        )
        .explode("back")
        .with_columns(month=pl.col("month").dt.offset_by(pl.format("-{}mo", "back")))
        .drop("back")
    )
    narrow = ["cell", "band", "decision", "label", "calibrated_probability"]
    alone = this_month.join(month_cells.lazy().select(*keys, "cell"), on=keys, nulls_equal=True)
    pooled_rows = pooled.join(sources, on=["month", "clock", "model_version"])
    rows, months_pooled, pooled_cells = pl.collect_all(
        [
            pl.concat([alone.select(narrow), pooled_rows.select(narrow)]),
            pooled_rows.group_by("cell").agg(
                months_pooled=pl.col("application_month").n_unique().cast(pl.Int64)
            ),
            pooled_cells.drop("window_months"),
        ]
    )
    cells = pl.concat(
        [
            month_cells.with_columns(window=pl.lit("month"), months_pooled=pl.lit(1, pl.Int64)),
            pooled_cells.join(months_pooled, on="cell"),
        ]
    )
    return rows, cells


def _table(
    this_month: pl.LazyFrame,
    pooled: pl.LazyFrame,
    lengths: Mapping[str, int | None],
    versions: Mapping[str, ScoredVersion],
    rules: FairnessRules,
    application_month: pl.Expr,
) -> pl.DataFrame:
    """FAIRNESS_SCHEMA rows of every cell of `this_month` (see _windows)."""
    rows, cells = _windows(this_month, pooled, lengths, application_month, rules)
    known = pl.DataFrame(
        {
            "model_version": list(versions),
            "threshold": [v.threshold for v in versions.values()],
            "last_fitted_month": [v.last_fitted_month for v in versions.values()],
        },
        schema={"model_version": pl.String, "threshold": pl.Float64, "last_fitted_month": pl.Date},
    )
    cells = cells.join(known, on="model_version", how="left").with_columns(
        held_out=pl.col("application_month") > pl.col("last_fitted_month")
    )
    unknown = cells.filter(pl.col("threshold").is_null())["model_version"].unique().to_list()
    if unknown:
        raise KeyError(f"versions not in the registry: {sorted(unknown)}")
    table = band_table(rows, cells, rules).sort(CELL, maintain_order=True)
    return table.select(list(FAIRNESS_SCHEMA)).cast(FAIRNESS_SCHEMA)


def pooled_months_needed(rules: FairnessRules, rolling_months: int) -> int:
    """How many months (the month and those before) the table's pooled windows reach back."""
    return max(rolling_months, rules.max_window_months)


def fairness_table(
    months: Sequence[date],
    scored: pl.DataFrame,
    labelled: pl.DataFrame,
    versions: Mapping[str, ScoredVersion],
    rules: FairnessRules,
    rolling_months: int,
) -> pl.DataFrame:
    """Band rows of every month of `months` on both clocks, for every version scored in it:
    each month alone, pooled with the months before it (the last `rolling_months`), and
    pooled over its adaptive window (ADAPTIVE_WINDOW, see window_lengths), all cells in one
    grouped computation rather than a pass per month, clock and version.

    `scored` holds model_family, model_version, is_champion, application_month, decision (at
    the version's threshold) and age_band of the applications of `months` and the months
    pooled before them (clock `application`: pooled_months_needed); `labelled` the same with
    label_month, label and calibrated_probability (clock `label`: month T is the label month,
    and application_month that of the loans scored at T - mob). A month is held out when its
    applications came after the version's last fitted month; fairness is shown for every
    month either way.
    """
    rows = pl.concat(
        [
            _clock_rows(scored, "application", "application_month", rules),
            _clock_rows(labelled, "label", "label_month", rules),
        ]
    )
    shown = rows.filter(pl.col("month").is_in(pl.Series(months, dtype=pl.Date).implode()))
    lengths = {f"rolling_{rolling_months}m": rolling_months, ADAPTIVE_WINDOW: None}
    return _table(shown, rows, lengths, versions, rules, pl.col("application_month").min())


def fairness_rows(
    month: date,
    clock: str,
    application_month: date,
    this_month: pl.DataFrame,
    pooled: pl.DataFrame,
    versions: Mapping[str, ScoredVersion],
    rules: FairnessRules,
    rolling_months: int,
) -> pl.DataFrame:
    """Band rows of one month on one clock for every version scored in it: the month alone,
    and pooled with the months before it (`pooled`, cut by the caller; it stands for both
    the rolling and the adaptive window); fairness_table for a single month and clock.

    Both frames hold model_family, model_version, is_champion, application_month, decision
    (at the version's threshold) and age_band, plus label and calibrated_probability on the
    label clock.
    """
    in_month = pl.lit(month).alias("cell_month")  # every pooled row counts in month T
    return _table(
        _clock_rows(this_month.with_columns(in_month), clock, "cell_month", rules),
        _clock_rows(pooled.with_columns(in_month), clock, "cell_month", rules),
        {f"rolling_{rolling_months}m": 1, ADAPTIVE_WINDOW: 1},
        versions,
        rules,
        pl.lit(application_month),
    )


def adverse_impact_findings(bands: pl.DataFrame, rules: FairnessRules) -> list[Finding]:
    """The four-fifths rule on one version's band rows of one month and window: a finding for
    each judged band whose ratio is strictly below the minimum (exactly at it holds), or one
    finding when no judged band approved anyone. Fewer than two judged bands: no finding."""
    judged = bands.filter(pl.col("judged"))
    if judged.height < 2:
        return []
    threshold = rules.min_adverse_impact_ratio
    reference = judged.filter(pl.col("age_band") == pl.col("reference_band"))["approval_rate"]
    if judged["adverse_impact_ratio"].is_null().all():
        return [
            Finding(
                "approval_rate",
                "fair lending",
                "any_approval",
                0.0,
                0.0,
                rules.action,
                "at",
                "no judged age band had an approved application: the adverse impact ratio "
                "is undefined",
            )
        ]
    return [
        Finding(
            f"adverse_impact_ratio:{row['age_band']}",
            "fair lending",
            "four_fifths",
            row["adverse_impact_ratio"],
            threshold,
            rules.action,
            "below",
            f"approval {row['approval_rate']:.3f} of n={row['n']} vs "
            f"{row['reference_band']}'s {reference[0]:.3f}",
        )
        for row in judged.sort("adverse_impact_ratio").iter_rows(named=True)
        if row["adverse_impact_ratio"] < threshold
    ]


def not_judged_bands(bands: pl.DataFrame, rules: FairnessRules) -> list[str]:
    """Why bands were left out of the check, for its description: small or unknown bands."""
    small = f" < {rules.min_band_loans}"
    return [
        f"{band} (n={n}{', no valid age' if band == UNKNOWN_BAND else small})"
        for band, n in bands.filter(~pl.col("judged")).select("age_band", "n").iter_rows()
    ]
