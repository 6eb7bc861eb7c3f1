import pytest

from loan_default_tests.benchmarks.data_layers import step_seconds


def test_step_seconds_reads_milliseconds_seconds_and_minutes():
    log = "\n".join(
        f'... STEP_SUCCESS - Finished execution of step "{name}" in {took}.'
        for name, took in [("a", "400ms"), ("b", "3.54s"), ("c", "1m14s"), ("d", "2m0.5s")]
    )
    assert step_seconds(log + "\nFinished steps in process (pid: 1) in 9.9s") == pytest.approx(
        0.4 + 3.54 + 74 + 120.5
    )
