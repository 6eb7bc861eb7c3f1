"""How often the champion/challenger gate promotes, by simulation at this platform's scale.

The scenario the gate meets: a challenger fitted later than the champion is first compared on
its own test window (`first_months`, 2 with the relative 12/3/2/1 windows), then judged again
each month as one more held-out month is labelled (its out-of-time month is never used), the
months pooled up to the rule's look-back. Each month holds `loans_per_month` loans (500), each
a default with probability `default_rate` (0.29).

Scores follow the binormal model: model k scores a loan d_k x y + e_k, with y the default
indicator and (e_challenger, e_champion) standard normal with correlation `correlation` within
each class, so model k's ROC-AUC is Phi(d_k / sqrt 2) and the two models are as correlated as
models on the same features are. The champion's ROC-AUC is `champion_auc`; the challenger's is
the same (equal skill: every promotion is a false one) or `advantage` higher. Both cases share
their random numbers. Each decision is the rule itself (`GateRule.pooled`, `GateRule.promotes`)
on the paired DeLong difference, computed for all simulations at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

from loan_default.lib.models.promotion import GateRule


@dataclass(frozen=True)
class Scenario:
    champion_auc: float = 0.80
    advantage: float = 0.03
    correlation: float = 0.7
    loans_per_month: int = 500
    default_rate: float = 0.29
    first_months: int = 2
    decisions: int = 3


@dataclass(frozen=True)
class GateRates:
    """Rates over the simulations of one scenario: per decision (the rule promoting at that
    decision, whatever it did before) and cumulative (at any of the first k decisions)."""

    scenario: Scenario
    simulations: int
    loans: tuple[int, ...]  # loans pooled at each decision
    false_promotion: tuple[float, ...]  # equal skill, per decision
    false_promotion_within: tuple[float, ...]  # equal skill, at any decision up to k
    promotion: tuple[float, ...]  # the better challenger, per decision
    promotion_within: tuple[float, ...]  # the better challenger, at any decision up to k

    @property
    def worst_false_promotion(self) -> float:
        """Property (a): the highest per-decision false-promotion rate."""
        return max(self.false_promotion)

    @property
    def power(self) -> float:
        """Property (b): the better challenger promoted within the scenario's decisions."""
        return self.promotion_within[-1]


def placements(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """DeLong's structural components (as metrics.py) for every row of (simulations, loans)
    arrays at once, in the loans' order: per default, the share of non-defaults it outranks;
    per non-default, the share of defaults that outrank it. Scores are continuous (no ties)."""
    y = y.astype(bool)
    positives = y.sum(axis=1, keepdims=True)
    negatives = y.shape[1] - positives
    order = np.argsort(score, axis=1)
    ranked = np.take_along_axis(y, order, axis=1)
    negatives_below = np.cumsum(~ranked, axis=1) - ~ranked
    positives_below = np.cumsum(ranked, axis=1) - ranked
    ranked_placement = np.where(
        ranked, negatives_below / negatives, (positives - positives_below) / positives
    )
    placement = np.empty_like(ranked_placement)
    np.put_along_axis(placement, order, ranked_placement, axis=1)
    return placement


def difference_and_error(y: np.ndarray, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paired ROC-AUC difference and its DeLong standard error per row, from the gap of
    the two models' placements (first - second)."""
    y = y.astype(bool)
    positives, negatives = y.sum(axis=1), (~y).sum(axis=1)
    difference = np.where(y, gap, 0.0).sum(axis=1) / positives
    squares = (gap - difference[:, None]) ** 2
    variance = np.where(y, squares, 0.0).sum(axis=1) / ((positives - 1) * positives) + np.where(
        y, 0.0, squares
    ).sum(axis=1) / ((negatives - 1) * negatives)
    return difference, np.sqrt(np.maximum(variance, 0.0))


def paired_delong(
    y: np.ndarray, first: np.ndarray, second: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`metrics.paired_roc_auc_difference` (first - second: difference, standard error) for
    every row of (simulations, loans) arrays at once."""
    return difference_and_error(y, placements(y, first) - placements(y, second))


def simulate(rule: GateRule, scenario: Scenario, simulations: int, seed: int) -> GateRates:
    """The rule's false-promotion rate (equal skill) and promotion rate (a challenger better by
    `scenario.advantage`) at each of `scenario.decisions` monthly decisions."""
    rng = np.random.default_rng(seed)
    per_month = scenario.loans_per_month
    months = scenario.first_months + scenario.decisions - 1
    shape = (simulations, months * per_month)
    y = rng.random(shape) < scenario.default_rate
    noise_challenger = rng.standard_normal(shape)
    noise_champion = scenario.correlation * noise_challenger + np.sqrt(
        1 - scenario.correlation**2
    ) * rng.standard_normal(shape)

    def separation(auc: float) -> float:
        return np.sqrt(2) * NormalDist().inv_cdf(auc)

    champion = separation(scenario.champion_auc) * y + noise_champion
    equal = separation(scenario.champion_auc) * y + noise_challenger
    better = separation(scenario.champion_auc + scenario.advantage) * y + noise_challenger

    loans, false_promoted, promoted = [], [], []
    for decision in range(scenario.decisions):
        pool = rule.pooled(range(scenario.first_months + decision))
        columns = slice(pool[0] * per_month, (pool[-1] + 1) * per_month)
        loans.append(len(pool) * per_month)
        pooled_y = y[:, columns]
        champion_placement = placements(pooled_y, champion[:, columns])
        for challenger, found in ((equal, false_promoted), (better, promoted)):
            gap = placements(pooled_y, challenger[:, columns]) - champion_placement
            found.append(rule.promotes(*difference_and_error(pooled_y, gap)))
    false_promoted, promoted = np.array(false_promoted), np.array(promoted)
    return GateRates(
        scenario=scenario,
        simulations=simulations,
        loans=tuple(loans),
        false_promotion=tuple(float(r) for r in false_promoted.mean(axis=1)),
        false_promotion_within=tuple(
            float(r) for r in np.logical_or.accumulate(false_promoted).mean(axis=1)
        ),
        promotion=tuple(float(r) for r in promoted.mean(axis=1)),
        promotion_within=tuple(float(r) for r in np.logical_or.accumulate(promoted).mean(axis=1)),
    )


def rates_by_correlation(
    rule: GateRule,
    correlations: tuple[float, ...] = (0.5, 0.7, 0.9),
    scenario: Scenario = Scenario(),
    simulations: int = 1000,
    seed: int = 23,
) -> list[GateRates]:
    """`simulate` for each correlation, each with its own seed derived from `seed`."""
    seeds = np.random.SeedSequence(seed).generate_state(len(correlations))
    return [
        simulate(
            rule,
            replace(scenario, correlation=correlation),
            simulations,
            int(s),
        )
        for correlation, s in zip(correlations, seeds, strict=True)
    ]


def table(rates: list[GateRates]) -> str:
    """A markdown table of the rates, one row per scenario."""
    lines = [
        "| correlation | champion ROC-AUC | loans per decision | false promotion per decision "
        "| false promotion within | promoted per decision (+advantage) | promoted within |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rates:

        def pct(values: tuple[float, ...]) -> str:
            return " / ".join(f"{v:.1%}" for v in values)

        lines.append(
            f"| {r.scenario.correlation} | {r.scenario.champion_auc} | "
            f"{' / '.join(f'{n:,}' for n in r.loans)} | {pct(r.false_promotion)} | "
            f"{r.false_promotion_within[-1]:.1%} | {pct(r.promotion)} | {r.power:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    """The README's table: the rule of thresholds.json at champion ROC-AUC 0.75, 0.80, 0.85."""
    from loan_default.lib.thresholds import load_thresholds

    rule = GateRule.of(load_thresholds()["promotion"])
    print(rule)
    for champion_auc in (0.80, 0.75, 0.85):
        rates = rates_by_correlation(
            rule,
            (0.5, 0.6, 0.7, 0.8, 0.9),
            Scenario(champion_auc=champion_auc),
            simulations=2000,
            seed=23,
        )
        print(table(rates))


if __name__ == "__main__":
    main()
