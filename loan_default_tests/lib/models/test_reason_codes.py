"""The reason-code catalogue: versioned, one code per input, never personal or protected data;
and every reason told true of the applicant it is sent to (observed values or absent ones).

The truth test on the real data reuses the trained models of the reason-code faithfulness tests
(loan_default_tests/serving: logistic regression, boosting and the scorecard on the reference
windows, and a briefly trained TabTransformer).
"""

import fnmatch
import json

import numpy as np
import polars as pl
import pytest

from loan_default.lib.gold.features import FEATURE_STORE_COLUMNS
from loan_default.lib.ingest.sources import PERSONAL_COLUMNS
from loan_default.lib.models.model_data import KEY_COLUMNS, NOT_MODEL_INPUTS
from loan_default.lib.models.reason_codes import (
    Catalogue,
    ReasonCode,
    absent_groups,
    load_catalogue,
    prepare,
    reason_lists,
    top_reasons,
)
from loan_default.lib.models.training import TrainedModel
from loan_default.lib.thresholds import load_thresholds
from loan_default_tests.serving.test_reason_codes_real_data import (
    OBSERVED_ACTIVITY,
    all_null,
    feature_store,
)

PROTECTED = tuple(load_thresholds()["model_inputs"]["protected_attributes"])
INPUTS = [c for c in FEATURE_STORE_COLUMNS if c not in {*KEY_COLUMNS, *NOT_MODEL_INPUTS}]


def test_the_catalogue_is_versioned_and_every_code_has_a_text():
    catalogue = load_catalogue()
    assert catalogue.version
    assert all(code.text for code in catalogue.codes.values())
    # a code is an input group, or the missing code of exactly one group (never a group itself)
    missing = [c.missing for c in catalogue.codes.values() if c.missing]
    assert len(missing) == len(set(missing))
    for code in catalogue.codes.values():
        assert bool(code.features) != (code.code in missing), code
        assert not code.missing or catalogue.codes[code.missing].text != code.text
    assert catalogue.codes["R19"].missing == "R19M"
    assert catalogue.codes["R19M"].text == "No recent online account activity on record"


def test_a_code_declared_twice_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "reason_codes.json"
    text = {"text": "t", "features": ["a"], "missing": {"code": "R02", "text": "no a"}}
    codes = {"R01": text, "R02": {"text": "b", "features": ["b"]}}
    path.write_text(json.dumps({"version": "x", "codes": codes}))
    with pytest.raises(ValueError, match=f"{path}: reason code R02 is declared twice"):
        load_catalogue(path)


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


# A small frame, checked by hand: clickstream (R19, absent when every fe_*_mean is null), occupation
# (R17, one input) and late payments (R01, never all null here).
SMALL_FEATURES = [
    "fe_1_mean",
    "fe_1_mean_long",
    "has_clickstream",
    "occupation",
    "delay_from_due_date",
    "num_of_delayed_payment",
]
SMALL = pl.DataFrame(
    {
        "fe_1_mean": [None, 2.0, None, 1.0],
        # row 2: activity 7-24 months back, none in the recent window
        "fe_1_mean_long": [None, 1.0, 5.0, 1.0],
        "has_clickstream": [0, 1, 0, 1],
        "occupation": ["Lawyer", None, "Doctor", "Writer"],
        "delay_from_due_date": [3, 10, 0, 5],
        "num_of_delayed_payment": [None, 4.0, None, 2.0],
    }
)


def test_a_group_is_absent_when_all_of_its_when_null_inputs_are_null():
    catalogue = load_catalogue()
    absent = absent_groups(SMALL, ["R19", "R17", "R01"], SMALL_FEATURES, catalogue)
    assert absent.tolist() == [
        [True, False, False],
        [False, True, False],
        [True, False, False],
        [False, False, False],
    ]
    # one applicant (the API's case) reads the same as the batch
    for row in range(SMALL.height):
        one = absent_groups(SMALL[row], ["R19", "R17", "R01"], SMALL_FEATURES, catalogue)
        assert one.tolist() == [absent[row].tolist()]
    # a model without the clickstream inputs has no R19 group that could be absent
    without = absent_groups(SMALL, ["R19"], ["has_clickstream"], catalogue)
    assert not without.any()


def test_an_absent_group_is_told_by_its_missing_code_never_the_observed_text():
    catalogue = load_catalogue()
    codes = ["R19", "R17", "R01"]
    absent = absent_groups(SMALL, codes, SMALL_FEATURES, catalogue)
    matrix = np.array([[2.0, 1.0, 0.5], [0.1, 3.0, -1.0], [0.4, -0.2, 0.9], [1.0, 0.0, 0.2]])
    found = reason_lists(5, np.array([0, 1, 2, 4]), codes, matrix, catalogue, absent).to_list()
    told = [[(r["code"], r["text"], r["contribution"]) for r in row] for row in found]
    assert told == [
        [
            ("R19M", "No recent online account activity on record", 2.0),
            ("R17", "Occupation group has a higher rate of missed payments", 1.0),
            ("R01", "Payments on existing credit have been made late", 0.5),
        ],
        [
            ("R17M", "Occupation is not on record", 3.0),
            ("R19", OBSERVED_ACTIVITY, 0.1),
        ],
        [
            ("R01", "Payments on existing credit have been made late", 0.9),
            ("R19M", "No recent online account activity on record", 0.4),
        ],
        [],
        [
            ("R19", OBSERVED_ACTIVITY, 1.0),
            ("R01", "Payments on existing credit have been made late", 0.2),
        ],
    ]
    one = top_reasons(matrix[0], codes, catalogue, absent=absent[0])
    assert [(r.code, r.text) for r in one] == [t[:2] for t in told[0]]


def test_every_group_that_is_absent_on_the_real_data_has_a_missing_code(real_warehouse):
    """The real feature store decides which groups need a missing text: every group whose inputs
    are all null for some applicant declares one, and no other group does."""
    features = feature_store(real_warehouse[0])
    catalogue = load_catalogue()
    grouped = catalogue.groups(INPUTS)
    counts = features.select(
        **{code: all_null(features, tuple(cols)).sum() for code, cols in grouped.items()}
    ).row(0, named=True)
    absent = {code: n for code, n in counts.items() if n}
    assert absent == {
        "R05": 1438,
        "R06": 2611,
        "R08": 192,
        "R10": 2,
        "R11": 270,
        "R12": 254,
        "R16": 998,
        "R17": 880,
        # counts and has_clickstream are 0, never null: clickstream's own rule, below
    }
    declared = {c.code for c in catalogue.codes.values() if c.missing}
    assert declared == {*absent, "R19"}
    # R19 is absent exactly when the applicant has no recent clickstream: the 3,526 loans that
    # start 2024-07..2025-01
    r19 = features.select(
        absent=all_null(features, catalogue.codes["R19"].when_null),
        none=pl.col("has_clickstream") == 0,
    )
    assert (r19["absent"] == r19["none"]).all() and r19["absent"].sum() == 3526
