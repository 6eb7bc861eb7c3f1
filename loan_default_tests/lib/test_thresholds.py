"""The thresholds file is validated when loaded: each rule on a copy of the shipped file broken
in one place, and the error naming the file, the dotted key and the rule."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loan_default.lib.thresholds import (
    THRESHOLDS_PATH,
    Thresholds,
    ThresholdsError,
    load_thresholds,
    validate_thresholds,
)

SHIPPED: dict = json.loads(THRESHOLDS_PATH.read_text())


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(data))
    return path


def _changed(change: Callable[[dict], None]) -> dict:
    data = copy.deepcopy(SHIPPED)
    change(data)
    return data


def _set(dotted: str, value: Any) -> Callable[[dict], None]:
    """Sets the value at a dotted key (the last part may be new)."""

    def change(data: dict) -> None:
        *parents, last = dotted.split(".")
        for part in parents:
            data = data[part]
        data[last] = value

    return change


def _delete(dotted: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, last = dotted.split(".")
        for part in parents:
            data = data[part]
        del data[last]

    return change


def _problems(tmp_path: Path, data: Any) -> list[str]:
    path = _write(tmp_path, data)
    with pytest.raises(ThresholdsError) as caught:
        load_thresholds(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert all(line in str(caught.value) for line in caught.value.problems)
    return caught.value.problems


def test_the_shipped_file_loads_as_the_same_dict() -> None:
    assert load_thresholds() == SHIPPED
    assert isinstance(validate_thresholds(SHIPPED), Thresholds)


# (change, the dotted key the error names, words of the rule it breaks)
BROKEN = {
    "negative margin": (
        _set("promotion.margin", -0.01),
        "promotion.margin",
        "must be >= 0: a negative margin would promote a worse challenger",
    ),
    "business above data_science, direction higher": (
        _set("monitoring.performance.roc_auc.business", 0.75),
        "monitoring.performance.roc_auc.business",
        "must be <= data_science (0.72) when direction is 'higher'",
    ),
    "business below data_science, direction lower": (
        _set("monitoring.performance.brier.business", 0.18),
        "monitoring.performance.brier.business",
        "must be >= data_science (0.19) when direction is 'lower'",
    ),
    "unknown key": (
        _set("monitoring.performance.roc_auc.buisness", 0.6),
        "monitoring.performance.roc_auc.buisness",
        "unknown key",
    ),
    "unknown section": (
        _set("promotions", {}),
        "promotions",
        "unknown key",
    ),
    "degradation limit on a metric other than roc_auc": (
        _set("monitoring.performance.ks.max_degradation_from_oot", 0.1),
        "monitoring.performance.ks.max_degradation_from_oot",
        "unknown key",
    ),
    "missing key": (
        _delete("promotion.confidence"),
        "promotion.confidence",
        "missing key",
    ),
    "missing metric": (
        _delete("monitoring.performance.f1"),
        "monitoring.performance.f1",
        "missing key",
    ),
    "string for a number": (
        _set("monitoring.stability.smoothing", "0.5"),
        "monitoring.stability.smoothing",
        'wrong type: must be a number, got a string "0.5"',
    ),
    "boolean for a number": (
        _set("monitoring.stability.smoothing", True),
        "monitoring.stability.smoothing",
        "booleans are not numbers",
    ),
    "fraction for a whole number": (
        _set("promotion.lookback_months", 6.5),
        "promotion.lookback_months",
        "wrong type: must be a whole number",
    ),
    "number for a list": (
        _set("model_inputs.protected_attributes", 1),
        "model_inputs.protected_attributes",
        "wrong type: must be a list",
    ),
    "string for a section": (
        _set("promotion", "strict"),
        "promotion",
        "wrong type: must be an object",
    ),
    "unknown priority": (
        _set("monitoring.performance.ks.priority", "P3"),
        "monitoring.performance.ks.priority",
        "must be 'P0', 'P1' or 'P2'",
    ),
    "unknown direction": (
        _set("monitoring.performance.ks.direction", "up"),
        "monitoring.performance.ks.direction",
        "must be 'higher' or 'lower'",
    ),
    "metric threshold outside [0, 1]": (
        _set("monitoring.performance.pr_auc.data_science", 1.2),
        "monitoring.performance.pr_auc.data_science",
        "must be in [0, 1]",
    ),
    "negative degradation limit": (
        _set("monitoring.performance.roc_auc.max_degradation_from_oot", -0.08),
        "monitoring.performance.roc_auc.max_degradation_from_oot",
        "must be in [0, 1]",
    ),
    "watch at shift": (
        _set("monitoring.stability.feature_csi.watch", 0.25),
        "monitoring.stability.feature_csi.shift",
        "must be above watch (0.25)",
    ),
    "negative watch": (
        _set("monitoring.stability.missing_share.watch", -0.05),
        "monitoring.stability.missing_share.watch",
        "must be >= 0",
    ),
    "one bin": (
        _set("monitoring.stability.bins", 1),
        "monitoring.stability.bins",
        "must be >= 2",
    ),
    "min_bin_share of one": (
        _set("monitoring.stability.min_bin_share", 1),
        "monitoring.stability.min_bin_share",
        "must be in (0, 1)",
    ),
    "negative smoothing": (
        _set("monitoring.stability.smoothing", -0.5),
        "monitoring.stability.smoothing",
        "must be >= 0",
    ),
    "bad action": (
        _set("monitoring.actions.P1.business", "RETRIAN"),
        "monitoring.actions.P1.business",
        "must be 'RETRAIN', 'ACTIVE_MONITORING' or 'MONITOR'",
    ),
    "bad fairness action": (
        _set("monitoring.fairness.adverse_impact_ratio.action", "ALERT"),
        "monitoring.fairness.adverse_impact_ratio.action",
        "must be 'RETRAIN', 'ACTIVE_MONITORING' or 'MONITOR'",
    ),
    "degradation limit without a degradation action": (
        _delete("monitoring.actions.P0.degradation"),
        "monitoring.actions",
        "must give roc_auc's priority a 'degradation' action",
    ),
    "zero rolling months": (
        _set("monitoring.rolling_months", 0),
        "monitoring.rolling_months",
        "must be >= 1",
    ),
    "window the tables do not hold": (
        _set("monitoring.evaluate_on", "rolling_6m"),
        "monitoring.evaluate_on",
        'must be "month" or "rolling_3m"',
    ),
    "fairness window the table does not hold": (
        _set("monitoring.fairness.evaluate_on", "quarter"),
        "monitoring.fairness.evaluate_on",
        'must be "month" or "rolling_3m"',
    ),
    "overlapping age bands": (
        _set("monitoring.fairness.age_bands", [[14, 24], [24, 34], [35, 44], [45, None]]),
        "monitoring.fairness.age_bands[1]",
        "bands are ascending and must not overlap",
    ),
    "descending age bands": (
        _set("monitoring.fairness.age_bands", [[25, 34], [14, 24], [35, None]]),
        "monitoring.fairness.age_bands[1]",
        "bands are ascending and must not overlap",
    ),
    "open age band before the last": (
        _set("monitoring.fairness.age_bands", [[14, 24], [25, None], [45, 60]]),
        "monitoring.fairness.age_bands[1]",
        "only the last band may be open",
    ),
    "age band high below low": (
        _set("monitoring.fairness.age_bands", [[24, 14], [25, None]]),
        "monitoring.fairness.age_bands[0]",
        "low <= high",
    ),
    "age band not a pair": (
        _set("monitoring.fairness.age_bands", [[14], [25, None]]),
        "monitoring.fairness.age_bands[0][1]",
        "must be a pair [low, high]",
    ),
    "no age band": (
        _set("monitoring.fairness.age_bands", []),
        "monitoring.fairness.age_bands",
        "must hold at least one band",
    ),
    "zero min_band_loans": (
        _set("monitoring.fairness.min_band_loans", 0),
        "monitoring.fairness.min_band_loans",
        "must be >= 1",
    ),
    "zero adverse impact ratio": (
        _set("monitoring.fairness.adverse_impact_ratio.min", 0),
        "monitoring.fairness.adverse_impact_ratio.min",
        "must be in (0, 1]",
    ),
    "quarantine share above one": (
        _set("data_quality.quarantine_share.max", 5),
        "data_quality.quarantine_share.max",
        "must be in [0, 1]",
    ),
    "label rate low at high": (
        _set("data_quality.label_rate.low", 0.6),
        "data_quality.label_rate.high",
        "must be above low (0.6)",
    ),
    "feature range low above high": (
        _set("data_quality.feature_value_ranges.age", [100, 14]),
        "data_quality.feature_value_ranges.age",
        "must be [low, high] with low < high",
    ),
    "confidence of one half": (
        _set("promotion.confidence", 0.5),
        "promotion.confidence",
        "must be in (0.5, 1)",
    ),
    "confidence of one": (
        _set("promotion.confidence", 1),
        "promotion.confidence",
        "must be in (0.5, 1)",
    ),
    "zero lookback": (
        _set("promotion.lookback_months", 0),
        "promotion.lookback_months",
        "must be >= 1",
    ),
    "allowed input that is not protected": (
        _set("model_inputs.protected_inputs_allowed", ["agee"]),
        "model_inputs.protected_inputs_allowed",
        "must list only protected_attributes",
    ),
    "version without patch": (
        _set("version", "3.1"),
        "version",
        "must be MAJOR.MINOR.PATCH",
    ),
}


@pytest.mark.parametrize(("change", "key", "rule"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_rule_names_its_key_and_the_rule(
    tmp_path: Path, change: Callable[[dict], None], key: str, rule: str
) -> None:
    [problem] = _problems(tmp_path, _changed(change))
    assert problem.startswith(f"{key}: ")
    assert rule in problem


def test_documentation_keys_are_allowed_anywhere(tmp_path: Path) -> None:
    data = _changed(_set("monitoring.performance.roc_auc._why", "the P0 metric"))
    data["data_quality"]["feature_value_ranges"]["_why"] = ["inclusive", "null is open"]
    data["_changelog"] = {"3.1.0": "promotion"}
    assert load_thresholds(_write(tmp_path, data)) == data


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    data = _changed(_set("promotion.margin", -0.01))
    _set("monitoring.actions.watch", "IGNORE")(data)
    _delete("data_quality.label_rate.high")(data)
    problems = _problems(tmp_path, data)
    assert [p.split(": ")[0] for p in problems] == [
        "data_quality.label_rate.high",
        "monitoring.actions.watch",
        "promotion.margin",
    ]


def test_the_message_counts_the_problems_and_names_the_source() -> None:
    with pytest.raises(ThresholdsError, match=r"^mine\.json: 1 problem in the thresholds file"):
        validate_thresholds(_changed(_set("promotion.margin", -1)), "mine.json")


def test_a_file_that_is_not_json_is_a_thresholds_error(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    path.write_text('{"version": "3.1.0",')
    with pytest.raises(ThresholdsError, match="not valid JSON"):
        load_thresholds(path)


def test_a_file_that_is_not_an_object_is_a_thresholds_error(tmp_path: Path) -> None:
    assert _problems(tmp_path, [SHIPPED]) == [
        "(the whole file): wrong type: must be an object, got a list"
    ]
