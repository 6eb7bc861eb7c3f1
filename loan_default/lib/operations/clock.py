"""The as-of clock: what "now" means to the platform's decisions.

Decisions read the month from the data, never from the wall: training and the gate are as of
the newest label month in the label store, monitoring judges the newest partition of its run,
and bronze ingests the months the raw files hold. A replay moves the clock by delivering the
raw rows dated up to the simulated month (lib/operations/landing.py); wall time only stamps
audit columns (trained_at, decided_at, scored_at, ingested_at). Every run of a replay carries
the simulated month as a tag.
"""

SIMULATED_MONTH_TAG = "loan_default/simulated_month"
# Dagster's name for the time-partition freshness checks: they compare the newest partition
# with the wall clock, which a replay does not move, so its timeline leaves them out.
FRESHNESS_CHECK = "freshness_check"
