import pytest

from loan_default_tests.benchmarks.data_layers import step_seconds
from loan_default_tests.benchmarks.production import pipeline_steps


def test_step_seconds_reads_milliseconds_seconds_and_minutes():
    log = "\n".join(
        f'... STEP_SUCCESS - Finished execution of step "{name}" in {took}.'
        for name, took in [("a", "400ms"), ("b", "3.54s"), ("c", "1m14s"), ("d", "2m0.5s")]
    )
    assert step_seconds(log + "\nFinished steps in process (pid: 1) in 9.9s") == pytest.approx(
        0.4 + 3.54 + 74 + 120.5
    )


def test_pipeline_steps_reads_each_steps_closing_line_not_its_progress():
    stdout = "\n".join(
        [
            "[1/3] data  2023-01..2025-11  2/14 assets (35 months each)  7 s, about 43 s left",
            "[1/3] data         2023-01..2025-11  18.2 s",
            "[2/3] backtest     2024-07..2025-07  3 min 8 s",
            "[3/3] report                         failed after 1.1 s",
            "5 runs in 74.4 s; Dagster's events: /x.log",
        ]
    )
    assert pipeline_steps(stdout) == {"data": 18.2, "backtest": 188.0}
