"""The code location: every asset, check and resource of the platform."""

from pathlib import Path

import dagster as dg

from loan_default.defs.resources import profile_resources


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(
            resources=profile_resources(),
            executor=dg.in_process_executor,
        ),
    )
