"""The month-partitioned steps of a backfill, in the order they run (`python -m
loan_default.production`, `make run-production`).

Within one step no month reads another month of the step's own assets, so the daemon may run
its months side by side, in runs of BACKFILL_MONTHS_PER_RUN months (the assets' backfill
policy), at most MAX_CONCURRENT_RUNS at once. A step that reads earlier months of another step
(the feature store reads silver up to T; realized performance reads the estimates of T - mob)
comes after it. Each step is also a job, to backfill from the UI or `dagster job backfill`.
"""

import dagster as dg

from loan_default.defs.partitions import monthly_partitions

REPORT = dg.AssetKey(["monitoring", "monitoring_report"])

BACKFILL_STEPS: dict[str, tuple[str, dg.AssetSelection]] = {
    "month_layers": (
        "Bronze, silver and the label store: each month from its own rows.",
        dg.AssetSelection.groups("bronze", "silver")
        | dg.AssetSelection.assets(["gold", "label_store"]),
    ),
    "feature_layer": (
        "The feature store: month T reads silver of every month up to T.",
        dg.AssetSelection.assets(["gold", "feature_store"]),
    ),
    "monthly_predictions": (
        "The champion's and each family's scores.",
        dg.AssetSelection.groups("predictions"),
    ),
    "monitoring_of_scores": (
        "Drift and estimated performance of each month's scores.",
        dg.AssetSelection.assets(["monitoring", "drift"], ["monitoring", "estimated_performance"]),
    ),
    "monitoring_of_outcomes": (
        "Realized performance and fairness: label month T against the scores of T - mob.",
        dg.AssetSelection.groups("monitoring")
        - dg.AssetSelection.assets(
            ["monitoring", "drift"], ["monitoring", "estimated_performance"], REPORT
        ),
    ),
}

backfill_jobs = [
    dg.define_asset_job(
        name, selection=selection, partitions_def=monthly_partitions, description=description
    )
    for name, (description, selection) in BACKFILL_STEPS.items()
]
