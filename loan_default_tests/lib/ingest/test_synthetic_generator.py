"""The synthetic generator: the course schema and grain, dirty values, a learnable signal."""

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from loan_default.lib.gold.label_contract import LabelDefinition
from loan_default.lib.gold.labels import build_labels
from loan_default.lib.gold.loan_delinquency import with_delinquency
from loan_default.lib.ingest.cleaning import clean
from loan_default.lib.ingest.raw_reader import RawFile, check_header, read_bronze
from loan_default.lib.ingest.sources import SOURCES
from loan_default.lib.synthetic import CLICKSTREAM_LAST_COHORT, generate

LOANS = 2_000


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    written = generate(out, loans=LOANS, seed=7)
    return out, written


def silver_of(out, name: str):
    source = SOURCES[name]
    return clean(read_bronze(RawFile.locate(out, source), source, None, datetime.now(UTC)), source)


def test_grain_and_headers(synthetic_dir):
    out, written = synthetic_dir
    assert written["lms_loan_daily"] == 11 * LOANS
    assert written["features_attributes"] == written["features_financials"] == LOANS
    for source in SOURCES.values():
        assert check_header(RawFile.locate(out, source), source) == source.column_names
    attributes = pl.read_csv(out / "features_attributes.csv", infer_schema=False)
    covered = attributes.filter(
        pl.col("snapshot_date").str.to_date() <= CLICKSTREAM_LAST_COHORT
    ).height
    assert written["feature_clickstream"] == covered * 24
    starts = attributes["snapshot_date"].str.to_date()
    assert (starts.min(), starts.max()) == (date(2023, 1, 1), date(2025, 1, 1))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, synthetic_dir):
    out, _ = synthetic_dir
    generate(tmp_path / "again", loans=LOANS, seed=7)
    generate(tmp_path / "other", loans=LOANS, seed=8)
    for source in SOURCES.values():
        original = (out / source.file_name).read_bytes()
        assert (tmp_path / "again" / source.file_name).read_bytes() == original
        assert (tmp_path / "other" / source.file_name).read_bytes() != original


def test_pipeline_reads_it_with_dirty_values_but_no_quarantine(synthetic_dir):
    out, _ = synthetic_dir
    for name in SOURCES:
        result = silver_of(out, name)
        assert result.quarantine.height == 0, result.quarantine["reason"].unique().to_list()
    financials = silver_of(out, "features_financials").nulled_values
    assert financials["Credit_Mix (placeholder)"] > 0
    assert financials["Payment_Behaviour (placeholder)"] > 0
    assert financials["Monthly_Balance"] == 1
    assert silver_of(out, "features_attributes").nulled_values["Age"] > 0


def test_default_rate_and_learnable_signal(synthetic_dir):
    out, _ = synthetic_dir
    labels = build_labels(
        with_delinquency(silver_of(out, "lms_loan_daily").silver),
        LabelDefinition(dpd_threshold=30, mob=6),
    )
    assert labels.height == LOANS
    assert 0.2 <= labels["label"].mean() <= 0.4
    financials = silver_of(out, "features_financials").silver
    data = labels.join(financials, on="customer_id")
    columns = [
        "delay_from_due_date",
        "num_of_delayed_payment",
        "credit_history_age",
        "interest_rate",
        "outstanding_debt",
    ]
    x, y = data.select(columns).to_numpy(), data["label"].to_numpy()
    model = HistGradientBoostingClassifier(random_state=0).fit(x[:1500], y[:1500])
    assert roc_auc_score(y[1500:], model.predict_proba(x[1500:])[:, 1]) > 0.7


def test_drift_changes_only_later_cohorts(tmp_path, synthetic_dir):
    out, _ = synthetic_dir
    drift_month = date(2024, 7, 1)
    generate(tmp_path / "drift", loans=LOANS, seed=7, drift_from=drift_month)

    def mean_delay(folder) -> tuple[float, float]:
        frame = silver_of(folder, "features_financials").silver
        before = frame.filter(pl.col("snapshot_date") < drift_month)["delay_from_due_date"]
        after = frame.filter(pl.col("snapshot_date") >= drift_month)["delay_from_due_date"]
        return float(before.mean()), float(after.mean())

    (base_before, base_after), (drift_before, drift_after) = (
        mean_delay(out),
        mean_delay(tmp_path / "drift"),
    )
    assert np.isclose(base_before, drift_before)
    assert drift_after > base_after + 5
