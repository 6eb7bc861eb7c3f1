"""Windows, metrics, calibration, the promotion rule and the registry on hand-checked inputs."""

import pickle
from datetime import date, datetime

import duckdb
import numpy as np
import polars as pl
import pytest

from loan_default.lib.gold.label_contract import LabelDefinition, LabelMismatchError
from loan_default.lib.models import registry
from loan_default.lib.models.calibration import PlattCalibrator, best_f1_threshold
from loan_default.lib.models.metrics import classification_metrics, ks_statistic
from loan_default.lib.models.model_data import feature_columns, labeled_applications
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.sklearn_families import BoostingParams, FrameModel, gradient_boosting
from loan_default.lib.models.training import mask_clickstream, pretraining_rows


def test_relative_windows_count_back_from_the_as_of_label_month():
    windows = Windows.relative(date(2025, 7, 1), mob=6)
    assert windows.as_dict() == {
        "train": ["2023-08-01", "2024-07-01"],
        "validation": ["2024-08-01", "2024-10-01"],
        "test": ["2024-11-01", "2024-12-01"],
        "oot": ["2025-01-01", "2025-01-01"],
    }
    frame = pl.DataFrame({"m": [date(2023, 7, 1), date(2023, 8, 1), date(2025, 1, 1)]})
    names = frame.select(windows.window_of(pl.col("m")).alias("w"))["w"].to_list()
    assert names == [None, "train", "oot"]


def test_overlapping_windows_are_refused():
    jan, feb = date(2024, 1, 1), date(2024, 2, 1)
    with pytest.raises(ValueError, match="overlap"):
        Windows(
            train=(jan, feb),
            validation=(feb, feb),
            test=(date(2024, 3, 1),) * 2,
            oot=(date(2024, 4, 1),) * 2,
        )


def test_labels_after_the_as_of_month_are_not_used():
    features = pl.DataFrame(
        {
            "loan_id": ["a", "b"],
            "application_month": [date(2024, 1, 1), date(2024, 2, 1)],
        }
    )
    labels = pl.DataFrame(
        {
            "loan_id": ["a", "b"],
            "label_month": [date(2024, 7, 1), date(2024, 8, 1)],
            "label": [1, 0],
            "label_def": ["30dpd_6mob"] * 2,
        }
    )
    label = LabelDefinition(dpd_threshold=30, mob=6)
    assert labeled_applications(features, labels, label)["loan_id"].to_list() == ["a", "b"]
    observed = labeled_applications(features, labels, label, as_of=date(2024, 7, 1))
    assert observed["loan_id"].to_list() == ["a"]


def test_labels_of_another_definition_are_refused():
    features = pl.DataFrame({"loan_id": ["a"], "application_month": [date(2024, 1, 1)]})
    labels = pl.DataFrame(
        {
            "loan_id": ["a"],
            "label_month": [date(2024, 4, 1)],
            "label": [1],
            "label_def": ["60dpd_3mob"],
        }
    )
    with pytest.raises(LabelMismatchError, match="60dpd_3mob.*30dpd_6mob"):
        labeled_applications(features, labels, LabelDefinition(30, 6))
    assert labeled_applications(features, labels, LabelDefinition(60, 3)).height == 1


def test_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification_metrics(y, p, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["gini"] == pytest.approx(0.5)
    assert ks_statistic(y, p) == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.5)
    assert (m["precision"], m["recall"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert classification_metrics(np.array([0, 0]), np.array([0.2, 0.3]), 0.5)["roc_auc"] is None


def test_calibration_fixes_a_biased_score():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.6, 20_000)
    y = (rng.random(truth.size) < truth).astype(int)
    biased = truth**0.5  # over-predicts everywhere
    calibrated = PlattCalibrator().fit(biased, y).transform(biased)
    assert abs(calibrated.mean() - y.mean()) < 0.01
    assert abs(biased.mean() - y.mean()) > 0.2
    assert 0 < best_f1_threshold(y, calibrated) < 1


def test_calibration_is_the_sigmoid_of_a_line_in_the_logit():
    # Outcomes drawn with P(y = 1 | p) = sigmoid(2 * logit(p) - 1): Platt scaling recovers it.
    rng = np.random.default_rng(7)
    logit = rng.normal(0, 1.5, 200_000)
    score = 1 / (1 + np.exp(-logit))
    y = (rng.random(logit.size) < 1 / (1 + np.exp(-(2 * logit - 1)))).astype(int)
    calibrator = PlattCalibrator().fit(score, y)
    e = np.e
    # logit 0 -> sigmoid(-1) = 0.2689; logit 1 -> sigmoid(1) = 0.7311; logit -1 -> sigmoid(-3).
    got = calibrator.transform(np.array([0.5, e / (1 + e), 1 / (1 + e)]))
    np.testing.assert_allclose(got, [0.2689, 0.7311, 0.0474], atol=0.006)


def test_the_long_windows_month_count_is_no_model_input():
    frame = pl.DataFrame(
        {
            "loan_id": ["a"],
            "application_month": [date(2024, 1, 1)],
            "credit_mix": ["Good"],
            "clickstream_months_seen": [6],
            "clickstream_months_seen_long": [13],
            "fe_1_mean_long": [1.0],
        }
    )
    assert feature_columns(frame) == (
        ["credit_mix"],
        ["clickstream_months_seen", "fe_1_mean_long"],
    )


def test_age_is_a_model_input_only_while_the_thresholds_file_allows_it():
    frame = pl.DataFrame({"loan_id": ["a"], "age": [34], "annual_income": [52_000.0]})
    # The shipped file allows age: today's models keep it.
    assert feature_columns(frame) == ([], ["age", "annual_income"])
    forbidden = {"protected_attributes": ["age"], "protected_inputs_allowed": []}
    assert feature_columns(frame, forbidden) == ([], ["annual_income"])


def test_pretraining_rows_end_with_the_training_window():
    windows = Windows.relative(date(2025, 7, 1), mob=6)  # train 2023-08..2024-07
    months = [date(2023, 7, 1), date(2024, 7, 1), date(2024, 8, 1), date(2025, 1, 1)]
    rows = pl.DataFrame({"application_month": months, "loan_id": ["a", "b", "c", "d"]})
    assert pretraining_rows(rows, windows)["loan_id"].to_list() == ["a", "b"]
    assert pretraining_rows(None, windows) is None


def test_masked_rows_look_like_applicants_without_clickstream():
    frame = pl.DataFrame(
        {
            "fe_1_mean": [1.0] * 1000,
            "fe_1_mean_long": [2.0] * 1000,
            "has_clickstream": pl.Series([1] * 1000, dtype=pl.Int8),
            "clickstream_months_seen": pl.Series([6] * 1000, dtype=pl.Int32),
            "clickstream_months_seen_long": pl.Series([9] * 1000, dtype=pl.Int32),
            "age": [30] * 1000,
        }
    )
    masked = mask_clickstream(frame, 0.3, seed=1)
    gone = masked.filter(pl.col("has_clickstream") == 0)
    assert 200 < gone.height < 400
    assert gone["fe_1_mean"].null_count() == gone["fe_1_mean_long"].null_count() == gone.height
    assert (gone["clickstream_months_seen"] == 0).all() and (gone["age"] == 30).all()
    assert masked.equals(mask_clickstream(frame, 0.3, seed=1))


def record(tmp_path, version: str, model: object, status: str = "challenger"):
    path, sha = registry.save_artifact(model, tmp_path, version)
    return registry.RegistryRecord(
        family="gradient_boosting",
        version_id=version,
        trained_at=datetime(2026, 1, 1),
        as_of_month=date(2025, 7, 1),
        windows={},
        hyperparameters={"a": 1},
        features=["x"],
        metrics={"validation": {"roc_auc": 0.8}},
        threshold=0.3,
        artifact_path=str(path),
        artifact_sha256=sha,
        input_data_version="abc",
        code_version="test",
        status=status,
        reason_trained="initial",
        train_seconds=1.0,
    )


def test_registry_round_trip_and_status(tmp_path):
    connection = duckdb.connect(str(tmp_path / "r.duckdb"))
    registry.register(connection, record(tmp_path, "v1", {"weights": [1, 2]}))
    registry.register(connection, record(tmp_path, "v2", {"weights": [3]}))
    assert registry.champion(connection) is None
    registry.set_status(connection, "v1", "champion")
    assert registry.champion(connection).version_id == "v1"
    latest = registry.latest_versions(connection)["gradient_boosting"]
    assert latest.version_id == "v2" and latest.metrics["validation"]["roc_auc"] == 0.8
    assert registry.load_artifact(latest) == {"weights": [3]}
    with pytest.raises(ValueError):
        registry.set_status(connection, "v1", "king")


def test_tampered_artifact_is_refused(tmp_path):
    entry = record(tmp_path, "v1", {"weights": [1, 2]})
    with open(entry.artifact_path, "wb") as handle:
        pickle.dump({"weights": [666]}, handle)
    with pytest.raises(registry.ArtifactIntegrityError, match="refusing to load"):
        registry.load_artifact(entry)


def test_frame_model_matrix_codes_categories_and_turns_nulls_into_nan():
    model = gradient_boosting(["grade"], ["count", "ratio"], BoostingParams())
    model.categories = {"grade": ["A", "B"]}
    frame = pl.DataFrame(
        {
            "grade": ["B", None, "Z"],
            "count": pl.Series([3, None, -1], dtype=pl.Int32),
            "ratio": [0.5, 1.25, None],
        }
    )
    expected = np.array([[1.0, 3.0, 0.5], [np.nan, np.nan, 1.25], [np.nan, -1.0, np.nan]])
    matrix = model.matrix(frame)
    assert matrix.dtype == np.float64
    assert np.array_equal(matrix, expected, equal_nan=True)
    only_ints = frame.with_columns(
        pl.col("ratio").fill_null(2).cast(pl.Int8), pl.col("count").fill_null(0)
    )
    assert model.matrix(only_ints).dtype == np.float64
    assert model.matrix(frame.clear()).shape == (0, 3)


def test_category_codes_follow_the_latest_fit_and_stay_out_of_the_artifact():
    frame = pl.DataFrame({"grade": ["A", "B", "C", "B"] * 20, "ratio": np.arange(80.0)})
    y = np.arange(80) % 2
    model = gradient_boosting(["grade"], ["ratio"], BoostingParams(max_iter=5)).fit(frame, y)
    assert model.matrix(frame[:4])[:, 0].tolist() == [0.0, 1.0, 2.0, 1.0]
    assert "category_codes" not in pickle.loads(pickle.dumps(model)).__dict__
    others = frame["grade"] != "A"
    model.fit(frame.filter(others), y[others.to_numpy()])  # B and C only: B is now code 0
    codes = model.matrix(frame[:4])[:, 0]
    assert np.isnan(codes[0]) and codes[1:].tolist() == [0.0, 1.0, 0.0]


def test_artifacts_pickled_with_a_pipeline_attribute_still_predict():
    rng = np.random.default_rng(3)
    frame = pl.DataFrame({"grade": rng.choice(["A", "B"], 400), "ratio": rng.normal(size=400)})
    y = ((frame["ratio"].to_numpy() > 0) ^ (frame["grade"] == "B").to_numpy()).astype(int)
    model = gradient_boosting(["grade"], ["ratio"], BoostingParams(max_iter=20)).fit(frame, y)
    old = FrameModel.__new__(FrameModel)  # the attributes as artifacts stored them before
    old.__dict__ = {**model.__dict__, "pipeline": model.estimator}
    del old.__dict__["estimator"]
    loaded = pickle.loads(pickle.dumps(old))
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


def test_recent_windows_learn_the_newest_labelled_cohorts():
    # As of label month 2025-07 with labels at mob 6: the newest labelled application month is
    # 2025-01. Train 2024-01..2024-12 and validation 2025-01; test and OOT are the next cohorts.
    windows = Windows.recent(date(2025, 7, 1), mob=6).as_dict()
    assert windows == {
        "train": ["2024-01-01", "2024-12-01"],
        "validation": ["2025-01-01", "2025-01-01"],
        "test": ["2025-02-01", "2025-02-01"],
        "oot": ["2025-03-01", "2025-03-01"],
    }
    two = Windows.recent(date(2025, 7, 1), mob=6, months=(6, 2)).as_dict()
    assert two["train"] == ["2024-06-01", "2024-11-01"]
    assert two["validation"] == ["2024-12-01", "2025-01-01"]
