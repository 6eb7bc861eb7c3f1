"""Real-time scoring API for the registry's champion model (FastAPI, no Dagster imports)."""
