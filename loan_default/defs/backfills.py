"""The month-partitioned jobs a backfill targets from the CLI (`make backfill-production`):

    dagster job backfill -j data_layers --from 2023-01-01 --to 2025-11-01 --noprompt

The daemon splits each backfill into runs by the assets' backfill policy (defs/partitions.py)
and the queued run coordinator starts them, at most MAX_CONCURRENT_RUNS at once.
"""

import dagster as dg

from loan_default.defs.partitions import monthly_partitions

data_layers = dg.define_asset_job(
    "data_layers",
    selection=dg.AssetSelection.groups("bronze", "silver", "gold"),
    partitions_def=monthly_partitions,
    description="Bronze, silver and gold for the chosen months.",
)
monthly_predictions = dg.define_asset_job(
    "monthly_predictions",
    selection=dg.AssetSelection.groups("predictions"),
    partitions_def=monthly_partitions,
    description="The champion's and each family's scores for the chosen months.",
)
monthly_monitoring = dg.define_asset_job(
    "monthly_monitoring",
    selection=dg.AssetSelection.groups("monitoring")
    - dg.AssetSelection.assets(["monitoring", "monitoring_report"]),
    partitions_def=monthly_partitions,
    description="Drift, estimated and realized performance and fairness for the chosen months.",
)
