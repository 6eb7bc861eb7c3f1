"""The reason-code catalogue: versioned, one code per input, never personal or protected data."""

import fnmatch

import numpy as np
import pytest

from loan_default.lib.gold.features import FEATURE_STORE_COLUMNS
from loan_default.lib.ingest.sources import PERSONAL_COLUMNS
from loan_default.lib.models.model_data import KEY_COLUMNS, NOT_MODEL_INPUTS
from loan_default.lib.models.reason_codes import (
    Catalogue,
    ReasonCode,
    load_catalogue,
    prepare,
    reason_lists,
    top_reasons,
)
from loan_default.lib.models.training import TrainedModel
from loan_default.lib.thresholds import load_thresholds

PROTECTED = tuple(load_thresholds()["model_inputs"]["protected_attributes"])
INPUTS = [c for c in FEATURE_STORE_COLUMNS if c not in {*KEY_COLUMNS, *NOT_MODEL_INPUTS}]


def test_the_catalogue_is_versioned_and_every_code_has_a_text():
    catalogue = load_catalogue()
    assert catalogue.version
    assert all(code.text and code.features for code in catalogue.codes.values())


def test_no_personal_data_or_protected_characteristic_can_become_a_reason():
    names = [*PERSONAL_COLUMNS, *(c.lower() for c in PERSONAL_COLUMNS), *PROTECTED, "ssn", "name"]
    for code in load_catalogue().codes.values():
        for pattern in code.features:
            matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            assert not matched, (code.code, pattern, matched)
    grouped = load_catalogue().groups([*INPUTS, *PERSONAL_COLUMNS])
    assert not {f for cols in grouped.values() for f in cols} & {*PERSONAL_COLUMNS, *PROTECTED}


def test_every_other_model_input_has_exactly_one_code():
    grouped = load_catalogue().groups(INPUTS)
    coded = [f for cols in grouped.values() for f in cols]
    assert sorted(coded) == sorted(c for c in INPUTS if c not in PROTECTED)
    # the 40 clickstream averages and the clickstream counts are one reason
    assert len(grouped["R19"]) == 40 + 2


def test_an_input_matched_by_two_codes_is_refused():
    twice = Catalogue(
        "t", {"A": ReasonCode("A", "a", ("fe_*",)), "B": ReasonCode("B", "b", ("fe_1_mean",))}
    )
    with pytest.raises(ValueError, match="two reason codes"):
        twice.groups(["fe_1_mean"])


def test_top_reasons_are_the_four_largest_positive_contributions():
    catalogue = load_catalogue()
    codes = list(catalogue.codes)[:6]
    picked = top_reasons(np.array([0.1, -2.0, 3.0, 0.0, 0.5, 0.2]), codes, catalogue)
    assert [r.code for r in picked] == [codes[2], codes[4], codes[5], codes[0]]
    assert picked[0].text == catalogue.codes[codes[2]].text
    # none positive: still the one largest, so a declined applicant always gets a reason
    assert [r.code for r in top_reasons(np.array([-1.0, -0.5]), codes[:2], catalogue)] == [codes[1]]


def test_reasons_of_many_applicants_at_once_are_each_applicants_own():
    """The batch path (every month's declined applicants in one matrix) gives each row what
    `top_reasons` gives it alone: ties, no positive contribution, fewer codes than four."""
    catalogue = load_catalogue()
    codes = list(catalogue.codes)[:6]
    rng = np.random.default_rng(0)
    matrix = rng.choice([-1.0, 0.0, 0.25, 0.5, 2.0], size=(300, len(codes)))
    matrix[:20] = -rng.random((20, len(codes)))  # none positive
    declined = np.sort(rng.choice(1000, size=300, replace=False))
    found = reason_lists(1000, declined, codes, matrix, catalogue).to_list()
    expected = [[] for _ in range(1000)]
    for row, index in enumerate(declined):
        expected[index] = [r.__dict__ for r in top_reasons(matrix[row], codes, catalogue)]
    assert found == expected
    few = reason_lists(2, np.array([1]), codes[:2], np.array([[0.5, 0.7]]), catalogue)
    assert [[r["code"] for r in row] for row in few.to_list()] == [[], [codes[1], codes[0]]]


def test_a_version_trained_before_reason_codes_is_refused_by_name():
    old = TrainedModel("gradient_boosting", None, None, 0.5, [], ["outstanding_debt"])
    with pytest.raises(ValueError, match="retrain it"):
        prepare(old)
