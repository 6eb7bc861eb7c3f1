"""Pure logic of the platform: no Dagster imports here, so it is testable on small frames."""
