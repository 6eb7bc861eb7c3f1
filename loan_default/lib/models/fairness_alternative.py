"""The less-discriminatory-alternative (LDA) search of a version's model document: the same
family retrained without age and without age's closest proxies, its ROC-AUC and adverse
impact ratio beside the version's own, so a reviewer sees what fairness would cost in accuracy.

The search starts from what the version learned: when age is one of its inputs, the first
alternative drops it; either way the next drops its closest proxies too, the inputs that carry
age in the training window. An input's association with age is the correlation ratio eta²:
the share of age's variance lying between the input's categories (numbers in deciles, a
missing value its own category), one measure for numbers and categories alike, found by one
grouped polars computation. An input is a proxy from `min_eta_squared` up; the top
`top_proxies` are dropped.

Each alternative is fitted as the version was (its family and hyperparameters, the training
defaults: seed, clickstream dropout, a threshold of best F1 on validation), without
pretraining data and without permutation importance. The adverse impact ratio is judged on
the held-out windows pooled (test and out-of-time), the only pool in which every age band
holds `min_band_loans` applicants (one out-of-time month holds about 90 aged 45 and over).
No Dagster here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.training import TrainedModel, TrainingResult, split, train
from loan_default.lib.monitoring.fairness import FairnessRules, age_band, band_rates

PROTECTED = "age"
HELD_OUT = ("test", "oot")
AUC_WINDOWS = ("validation", "test", "oot")
ALTERNATIVE_SCHEMA = {
    "alternative": pl.String,
    "dropped": pl.String,
    "inputs": pl.Int64,
    **{f"roc_auc_{w}": pl.Float64 for w in AUC_WINDOWS},
    "approval_rate_held_out": pl.Float64,
    "min_air_held_out": pl.Float64,
    "lowest_band": pl.String,
    "reference_band": pl.String,
    "fit_seconds": pl.Float64,
}

# (family, labeled applications, windows, hyperparameters) -> the fitted alternative.
Fit = Callable[[str, pl.DataFrame, Windows, dict], TrainingResult]


@dataclass(frozen=True)
class AlternativeRules:
    """`monitoring.fairness.alternatives` of the thresholds file."""

    top_proxies: int
    min_eta_squared: float
    families: tuple[str, ...]  # searched for every version; the champion is always searched

    @classmethod
    def of(cls, rules: Mapping) -> AlternativeRules:
        return cls(rules["top_proxies"], rules["min_eta_squared"], tuple(rules["families"]))


@dataclass(frozen=True)
class FairnessAlternatives:
    """What the document shows: the proxy ranking and the alternatives beside the version."""

    age_is_input: bool
    proxies: pl.DataFrame  # feature, eta_squared, proxy: every input but age, strongest first
    table: pl.DataFrame  # ALTERNATIVE_SCHEMA: the version first, then each alternative
    seconds: float  # the whole search, fits included


def proxy_ranking(
    train_rows: pl.DataFrame, inputs: Sequence[str], categorical: Sequence[str], bins: int = 10
) -> pl.DataFrame:
    """eta² of age against each input of `inputs` on the rows with an age, strongest first
    (ties by name): between-category sum of squares over the total. A number is cut into
    `bins` quantile bins (fewer where values repeat); a missing value is one more category."""
    inputs = [c for c in inputs if c != PROTECTED]
    rows = train_rows.filter(pl.col(PROTECTED).is_not_null())
    if rows.height < 2 or not inputs:
        return pl.DataFrame(schema={"feature": pl.String, "eta_squared": pl.Float64})
    binned = rows.select(
        pl.col(PROTECTED).cast(pl.Float64),
        *(
            (
                pl.col(c).cast(pl.String)
                if c in categorical
                else pl.col(c).qcut(bins, allow_duplicates=True).cast(pl.String)
            ).alias(c)
            for c in inputs
        ),
    )
    mean = pl.col(PROTECTED).mean()
    total = binned.select(((pl.col(PROTECTED) - mean) ** 2).sum()).item()
    return (
        binned.unpivot(index=PROTECTED, variable_name="feature", value_name="category")
        .group_by("feature", "category")
        .agg(n=pl.len(), category_mean=pl.col(PROTECTED).mean())
        .group_by("feature")
        .agg(
            eta_squared=(pl.col("n") * (pl.col("category_mean") - rows[PROTECTED].mean()) ** 2)
            .sum()
            .truediv(total)
            if total > 0
            else pl.lit(0.0)
        )
        .sort(["eta_squared", "feature"], descending=[True, False])
    )


def alternatives(
    features: Sequence[str], ranking: pl.DataFrame, rules: AlternativeRules
) -> list[tuple[str, list[str]]]:
    """(name, inputs dropped) of each alternative: without age when it is an input, then
    without age (if an input) and its top proxies (eta² >= min_eta_squared). An alternative
    that drops nothing, or what the one before dropped, is left out."""
    age = [PROTECTED] if PROTECTED in features else []
    proxies = (
        ranking.filter(pl.col("eta_squared") >= rules.min_eta_squared)
        .head(rules.top_proxies)["feature"]
        .to_list()
    )
    steps = [("without age", age)] if age else []
    if proxies:
        name = f"without {'age and ' if age else ''}its top {len(proxies)} proxies"
        steps.append((name, [*age, *proxies]))
    return [(n, dropped) for n, dropped in steps if dropped]


def held_out_fairness(
    parts: Mapping[str, pl.DataFrame], decisions: Mapping[str, pl.Series], rules: FairnessRules
) -> dict:
    """Approval rate and the lowest adverse impact ratio of the judged bands on the held-out
    windows pooled, with that band and the reference; nulls without an age or two judged
    bands."""
    rows = pl.concat(
        [
            parts[w].select(age_band(pl.col(PROTECTED), rules.bands), decision=decisions[w])
            for w in HELD_OUT
        ]
    )
    bands = band_rates(rows, rules, labelled=False)
    judged = bands.filter(pl.col("judged") & pl.col("adverse_impact_ratio").is_not_null())
    lowest = judged.sort("adverse_impact_ratio").head(1)
    two = judged.height >= 2
    return {
        "approval_rate_held_out": (rows["decision"] == 0).mean() if rows.height else None,
        "min_air_held_out": lowest["adverse_impact_ratio"][0] if two else None,
        "lowest_band": lowest["age_band"][0] if two else None,
        "reference_band": lowest["reference_band"][0] if two else None,
    }


def _row(
    name: str, dropped: list[str], inputs: int, metrics: dict, fairness: dict, seconds: float | None
) -> dict:
    auc = {f"roc_auc_{w}": metrics.get(w, {}).get("roc_auc") for w in AUC_WINDOWS}
    return {
        "alternative": name,
        "dropped": ", ".join(dropped),
        "inputs": inputs,
        **auc,
        **fairness,
        "fit_seconds": seconds,
    }


def _fit(family: str, data: pl.DataFrame, windows: Windows, params: dict) -> TrainingResult:
    return train(family, data, windows, params, importance=False, log=lambda _: None)


def search(
    family: str,
    hyperparameters: dict,
    model: TrainedModel,
    metrics: Mapping[str, dict],
    data: pl.DataFrame,
    windows: Windows,
    fairness_rules: FairnessRules,
    rules: AlternativeRules,
    fit: Fit = _fit,
) -> FairnessAlternatives | None:
    """The version (its `model` and registry `metrics`) and each alternative fitted by `fit`
    on the labeled applications `data` over `windows`. None when the applications carry no
    age: there is nothing to be fair about by age."""
    if PROTECTED not in data.columns:
        return None
    started = time.perf_counter()
    parts = split(data, windows)
    ranking = proxy_ranking(parts["train"], model.features, model.categorical)
    own = {w: model.score(parts[w])["decision"] for w in HELD_OUT}
    rows = [
        _row(
            "this version",
            [],
            len(model.features),
            dict(metrics),
            held_out_fairness(parts, own, fairness_rules),
            None,
        )
    ]
    for name, dropped in alternatives(model.features, ranking, rules):
        fit_started = time.perf_counter()
        result = fit(family, data.drop(dropped), windows, hyperparameters)
        seconds = time.perf_counter() - fit_started
        decisions = {w: result.model.score(parts[w].drop(dropped))["decision"] for w in HELD_OUT}
        fairness = held_out_fairness(parts, decisions, fairness_rules)
        rows.append(
            _row(name, dropped, len(result.model.features), result.metrics, fairness, seconds)
        )
    proxies = ranking.with_columns(
        proxy=pl.col("eta_squared") >= rules.min_eta_squared,
        dropped=pl.int_range(pl.len()) < rules.top_proxies,
    ).with_columns(pl.col("dropped") & pl.col("proxy"))
    return FairnessAlternatives(
        age_is_input=PROTECTED in model.features,
        proxies=proxies,
        table=pl.DataFrame(rows, schema=ALTERNATIVE_SCHEMA),
        seconds=time.perf_counter() - started,
    )
