"""The model document on a hand-built registry row and frames: every section, the figures as
given, no personal data, and which documents are stale."""

from __future__ import annotations

import os
from datetime import date, datetime
from html.parser import HTMLParser

import numpy as np
import polars as pl
import pytest

from loan_default.lib.models.model_document import (
    SECTIONS,
    ModelDocument,
    PersonalDataError,
    TrainingInformationValues,
    calibration_bands,
    calibration_table,
    clickstream_gap,
    fairness_at_training,
    information_values,
    render_html,
    render_markdown,
    stale_versions,
    training_stability,
    window_table,
)
from loan_default.lib.models.registry import RegistryRecord
from loan_default.lib.monitoring.drift import BinningRule
from loan_default.lib.monitoring.fairness import AgeBand, FairnessRules

SSN, NAME = "000-12-3456", "Jane Example"
WINDOWS = {
    "train": ["2023-01-01", "2023-12-01"],
    "validation": ["2024-01-01", "2024-02-01"],
    "test": ["2024-03-01", "2024-04-01"],
    "oot": ["2024-05-01", "2024-05-01"],
}


def window_metrics(n: int, defaults: int, auc: float) -> dict:
    return {
        "n": n,
        "defaults": defaults,
        "default_rate": defaults / n,
        "roc_auc": auc,
        "gini": 2 * auc - 1,
        "ks": 0.5,
        "pr_auc": 0.6,
        "brier": 0.12,
        "log_loss": 0.4,
        "precision": 0.7,
        "recall": 0.6,
        "f1": 0.65,
    }


def record(**changes) -> RegistryRecord:
    values = {
        "family": "logistic_regression",
        "version_id": "logistic_regression-20261201T000000000000",
        "trained_at": datetime(2026, 12, 1),
        "as_of_month": date(2024, 11, 1),
        "windows": WINDOWS,
        "hyperparameters": {"C": 0.5, "class_weight": "balanced"},
        "features": ["occupation", "income", "fe_1_mean", "has_clickstream"],
        "metrics": {
            "train": window_metrics(6000, 1700, 0.85),
            "validation": window_metrics(1000, 290, 0.83),
            "test": window_metrics(1000, 300, 0.82),
            "oot": window_metrics(500, 145, 0.8),
        },
        "threshold": 0.4242,
        "artifact_path": "/nowhere/model.pkl",
        "artifact_sha256": "ab" * 32,
        "input_data_version": "cd" * 32,
        "code_version": "abc1234",
        "status": "champion",
        "reason_trained": "initial",
        "train_seconds": 1.5,
        "label_def": "30dpd_6mob",
    }
    return RegistryRecord(**{**values, **changes})


def applications(month: str, n: int, seed: int, clickstream: bool = True) -> pl.DataFrame:
    """Scored applications of one month, personal data included, as a careless caller might
    pass them: the document must show summaries only."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 10, n)
    label = (rng.random(n) < 1 / (1 + np.exp((income - 45) / 5))).astype(int)
    return pl.DataFrame(
        {
            "application_month": [date.fromisoformat(month)] * n,
            "ssn": [SSN] * n,
            "name": [NAME] * n,
            "occupation": rng.choice(["Engineer", "Teacher", "Lawyer"], n),
            "income": income,
            "fe_1_mean": rng.normal(3, 1, n) if clickstream else [None] * n,
            "has_clickstream": [int(clickstream)] * n,
            "label": label,
            "score": 1 / (1 + np.exp((income - 45) / 5)),
        }
    )


@pytest.fixture(scope="module")
def windows() -> dict[str, pl.DataFrame]:
    return {
        "train": applications("2023-06-01", 600, 1),
        "validation": applications("2024-01-01", 200, 2),
        "test": applications("2024-03-01", 200, 3),
        "oot": applications("2024-05-01", 100, 4, clickstream=False),
    }


def decisions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "decided_at": [datetime(2026, 12, 1, 1), datetime(2026, 12, 2, 1)],
            "candidate_version": [record().version_id, "scorecard-20261202T000000000000"],
            "champion_version": [None, record().version_id],
            "window_months": [None, "2024-06-01,2024-07-01"],
            "n": [0, 1204],
            "candidate_auc": [None, 0.8312],
            "champion_auc": [None, 0.8251],
            "auc_difference": [None, 0.0061],
            "difference_low": [None, -0.0042],
            "difference_high": [None, 0.0164],
            "margin": [0.005, 0.005],
            "min_loans": [1000, 1000],
            "promoted": [True, False],
            "reason": ["no champion yet: the first model becomes champion", "below the margin"],
        }
    )


def document(windows, fairness: pl.DataFrame | None = None, **changes) -> ModelDocument:
    """`fairness`: the table fairness_at_training gives (None: applications without age)."""
    version = record(**changes)
    scores = {n: rows["score"] for n, rows in windows.items()}
    train = windows["train"]
    share = {n: rows["has_clickstream"].mean() for n, rows in windows.items()}
    return ModelDocument(
        record=version,
        label_text="30 or more days past due at month on book 6",
        generated_at=datetime(2026, 12, 3),
        windows=window_table(version, share),
        information_value=information_values(
            train, train["label"].to_numpy(), ["occupation"], ["income", "fe_1_mean"]
        ),
        information_value_source="optbinning on the training window",
        calibration=pl.concat(
            calibration_table(n, rows["label"].to_numpy(), rows["score"].to_numpy())
            for n, rows in windows.items()
        ),
        stability=training_stability(version, windows, scores, BinningRule()),
        decisions=decisions(),
        fairness=fairness,
    )


class Page(HTMLParser):
    """What a browser would find: section ids, headings, and any script or external asset."""

    def __init__(self) -> None:
        super().__init__()
        self.sections, self.headings, self.external, self._in_h2 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "h2":
            self._in_h2 = True
        if tag in ("script", "link", "img", "iframe") or "src" in attrs:
            self.external.append(tag)

    def handle_endtag(self, tag):
        self._in_h2 = self._in_h2 and tag != "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)


def test_every_section_with_the_figures_as_given(windows):
    doc = document(windows)
    page_text = render_html(doc)
    page = Page()
    page.feed(page_text)
    assert page.headings == list(SECTIONS)
    assert len(page.sections) == len(SECTIONS)
    assert page.external == []  # self-contained: opens offline
    markdown = render_markdown(doc)
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")] == list(SECTIONS)

    for text in (page_text, markdown):
        # OOT: ROC-AUC 0.8 on 145 defaults of 500; Hanley-McNeil by hand: SE 0.0238.
        assert "0.800" in text and "[0.753, 0.847]" in text
        assert f"artifact_sha256: {'ab' * 32}" in text
        assert "abc1234" in text and "30dpd_6mob" in text
        assert "0.4242" in text  # the threshold
        assert "2023-01-01" in text and "2024-05-01" in text  # windows
        assert "6,000" in text and "1,700" in text  # the registry's counts
        assert "balanced" in text  # a hyperparameter
        assert "[0.753, 0.847]: one month moves" in text  # limitations: sample size
        assert "oot 0.000" in text  # the OOT window has no clickstream
        assert "0.0061" not in text and "0.006" in text  # the gate's paired difference
        assert "below the margin" in text
        assert "no fairness by age band" in text
        assert "No walk-forward backtest" in text
    # The calibration table: deciles of the hand-built scores of each window.
    calibration = doc.calibration.filter(pl.col("window") == "train")
    assert calibration["n"].sum() == 600 and calibration.height == 10
    assert calibration["mean_predicted"].is_sorted()
    # Stability: the OOT window without clickstream is a missingness shift of fe_1_mean.
    fe_oot = doc.stability.filter((pl.col("window") == "oot") & (pl.col("feature") == "fe_1_mean"))
    assert fe_oot["missing_share"][0] == 1.0 and fe_oot["psi"][0] is None
    stability = page_text.split(f'id="s{SECTIONS.index("Stability")}"')[1].split("</section>")[0]
    assert "fe_1_mean" in stability


def test_information_values_are_the_binning_processs(windows):
    """Each input binned on its own, as optbinning's binning process bins it: the same IV and
    number of bins per input."""
    from optbinning import BinningProcess

    train = windows["train"]
    label = train["label"].to_numpy()
    categorical, numeric = ["occupation"], ["income", "fe_1_mean", "has_clickstream"]
    process = BinningProcess([*categorical, *numeric], categorical_variables=categorical)
    process.fit(train.select(*categorical, *numeric).to_pandas(), label)
    summary = process.summary()
    expected = {
        name: (iv, n_bins)
        for name, iv, n_bins in zip(summary["name"], summary["iv"], summary["n_bins"], strict=True)
    }
    table = information_values(train, label, categorical, numeric)
    assert {r["feature"]: (r["iv"], r["n_bins"]) for r in table.iter_rows(named=True)} == expected
    assert table["iv"].is_sorted(descending=True)


def test_one_information_value_fit_per_training_window(windows):
    """The versions of one gate run train on the same rows: their documents share one fit."""
    fit = TrainingInformationValues()
    train = windows["train"]
    first = fit(train, ["occupation"], ["income", "fe_1_mean"])
    # Another family's training rows: equal, from another frame, with other columns around.
    same_rows = train.with_columns(score=pl.lit(0.5)).select(reversed(train.columns))
    assert fit(same_rows, ["occupation"], ["income", "fe_1_mean"]) is first
    other_window = fit(windows["validation"], ["occupation"], ["income", "fe_1_mean"])
    other_inputs = fit(train, ["occupation"], ["income"])
    assert other_window is not first and not other_window.equals(first)
    assert sorted(other_inputs["feature"]) == ["income", "occupation"]


def test_inputs_shifted_alike_in_a_fixed_order(windows):
    """Inputs tied on CSI and missing-share change (the clickstream columns at the gap) are
    listed by name: the same data gives the same document."""
    features = [f"fe_{i}_mean" for i in range(1, 21)]
    stability = pl.DataFrame(
        {
            "window": ["oot"] * 21,
            "feature": [None, *features],
            "kind": ["score", *["feature"] * 20],
            "psi": [0.01, *[0.9] * 20],
            "missing_share_reference": [0.0] * 21,
            "missing_share": [0.0, *[1.0] * 20],
        }
    )
    doc = document(windows)
    markdown = render_markdown(ModelDocument(**{**doc.__dict__, "stability": stability}))
    section = markdown.split("## Stability")[1].split("## Fairness")[0]
    listed = [line.split(" | ")[0][2:] for line in section.splitlines() if line.startswith("| fe_")]
    assert listed == sorted(features)[:15]


def test_no_personal_data_anywhere(windows):
    doc = document(windows)
    for text in (render_markdown(doc), render_html(doc)):
        assert SSN not in text and NAME not in text
        assert "ssn" not in text.lower()
    with pytest.raises(PersonalDataError, match="ssn"):
        document(windows, features=["income", "ssn"])


def test_fairness_at_training_by_age_band_on_the_held_out_windows(windows):
    rules = FairnessRules(
        bands=(AgeBand("14-24", 14, 24), AgeBand("25-34", 25, 34)),
        min_band_loans=1,
        min_adverse_impact_ratio=0.8,
        action="MONITOR",
        evaluate_on="rolling_3m",
    )
    held_out = pl.DataFrame({"age": [20, 20, 20, 20, 30, 30, 30, 30]}).with_columns(
        label=pl.Series([1, 0, 0, 0, 0, 0, 1, 1])
    )
    decided = pl.DataFrame(
        {
            "decision": [1, 1, 0, 0, 0, 0, 0, 1],
            "calibrated_probability": [0.9, 0.6, 0.2, 0.1, 0.1, 0.2, 0.3, 0.8],
        }
    )
    parts = {"test": held_out, "oot": held_out}
    table = fairness_at_training(parts, {"test": decided, "oot": decided}, rules)
    assert table is not None
    test = table.filter(pl.col("window") == "test").drop("window")
    by_band = {row["age_band"]: row for row in test.iter_rows(named=True)}
    # 14-24: 2 of 4 approved (decision 0), 1 default of 4, the defaulter declined, 1 of 3
    # repayers declined. 25-34: 3 of 4 approved, 2 defaults, 1 of them declined, no repayer
    # declined. The adverse impact ratio is 0.5 / 0.75 against the most-approved band.
    young, older = by_band["14-24"], by_band["25-34"]
    assert (young["n"], young["approval_rate"], young["default_rate"]) == (4, 0.5, 0.25)
    assert young["adverse_impact_ratio"] == pytest.approx(2 / 3)
    assert young["true_positive_rate"] == 1.0
    assert young["false_positive_rate"] == pytest.approx(1 / 3)
    assert (older["n"], older["approval_rate"], older["adverse_impact_ratio"]) == (4, 0.75, 1.0)
    assert (older["true_positive_rate"], older["false_positive_rate"]) == (0.5, 0.0)
    assert by_band["unknown"]["n"] == 0
    assert table.filter(pl.col("window") == "oot").height == 3

    markdown = render_markdown(document(windows, fairness=table))
    assert "| test | 14-24 | 4 | 0.500 | 0.667 |" in markdown
    assert "no fairness by age band" not in markdown
    # Applications without age: said so, no table.
    assert fairness_at_training({"test": held_out.drop("age")}, {}, rules) is None


def test_stale_documents(tmp_path):
    written = tmp_path / "doc.html"
    written.write_text("<html></html>")
    at = datetime(2026, 12, 1, 12)
    missing = record(version_id="a")
    fresh = record(document_path=str(written), document_written_at=at)
    judged_since = record(
        version_id="scorecard-20261202T000000000000",
        document_path=str(written),
        document_written_at=at,
    )
    gone = record(version_id="b", document_path=str(tmp_path / "gone.html"), document_written_at=at)
    # The first decision (before `at`) judged `fresh`; the second (after) judged the scorecard
    # against it: both documents are stale then.
    exists = os.path.exists
    assert stale_versions([missing, judged_since, gone], decisions(), exists) == [
        "a",
        "scorecard-20261202T000000000000",
        "b",
    ]
    early = decisions().filter(pl.col("decided_at") < at)
    assert stale_versions([fresh], early, exists) == []
    assert stale_versions([fresh], decisions(), exists) == [fresh.version_id]


def test_the_clickstream_gap_is_measured_from_the_applications(windows):
    data = pl.concat(windows.values())
    # The OOT month (2024-05) is the first, and only, month without clickstream.
    assert clickstream_gap(data) == date(2024, 5, 1)
    assert clickstream_gap(pl.concat([windows["train"], windows["test"]])) is None
    doc = document(windows)
    text = render_markdown(
        ModelDocument(**{**doc.__dict__, "clickstream_gap": clickstream_gap(data)})
    )
    assert "cohorts from 2024-05 on have no clickstream at all" in text
    assert "every cohort of the labeled applications has some clickstream" in render_markdown(doc)


def test_calibration_bands_by_hand_and_in_the_calibration_section(windows):
    """March: 500 loans at 0.2 with 100 defaults, the band of Binomial(500, 0.2) by hand
    ([83, 118]: see the monitoring's band test), inside. April: 4 loans at probability 0 with
    one default, band [0, 0], outside (p-value 0). Pooled: 101 of 100 expected, inside; the
    chi-square across the months is infinite (April cannot happen), its p-value 0."""
    label = np.array([1] * 100 + [0] * 400 + [1, 0, 0, 0])
    probability = np.array([0.2] * 500 + [0.0] * 4)
    month = np.array([date(2024, 3, 1)] * 500 + [date(2024, 4, 1)] * 4, dtype="datetime64[D]")
    table = calibration_bands("test", label, probability, month, alpha=0.05)
    assert table.select("month", "n", "observed_defaults", "band_low", "band_high").rows() == [
        ("all", 504, 101, 83, 118),
        ("2024-03-01", 500, 100, 83, 118),
        ("2024-04-01", 4, 1, 0, 0),
    ]
    assert table["expected_defaults"].to_list() == pytest.approx([100.0, 100.0, 0.0])
    assert table["inside_band"].to_list() == [True, True, False]
    assert table["p_value"].to_list()[2] == 0.0
    assert table["rate_band"].to_list()[1] == "[0.166, 0.236]"  # 83 / 500, 118 / 500
    assert table["chi2_months"].to_list() == [float("inf"), None, None]
    assert table["chi2_p_value"].to_list() == [0.0, None, None]

    # The section: each held-out window's band and whether it is inside, in both renderings.
    bands = pl.concat(
        calibration_bands(
            n,
            windows[n]["label"].to_numpy(),
            windows[n]["score"].to_numpy(),
            windows[n]["application_month"].to_numpy(),
            0.05,
        )
        for n in ("validation", "test", "oot")
    )
    doc = ModelDocument(**{**document(windows).__dict__, "calibration_band": bands})
    section = dict(doc.sections)["Calibration"]
    assert section[2].startswith("Observed defaults against the band")
    assert "validation inside, test inside, oot inside." in section[2]
    assert section[3]["window"].to_list() == ["validation"] * 2 + ["test"] * 2 + ["oot"] * 2
    markdown = render_markdown(doc)
    assert "| window | month | n | expected_defaults | observed_defaults | band_low |" in markdown
    assert "Poisson-binomial" in render_html(doc)
    # Without band rows (an older document) the section shows the deciles only.
    assert len(dict(document(windows).sections)["Calibration"]) == 2


def test_the_less_discriminatory_alternatives_section(windows):
    import dataclasses

    from loan_default.lib.models.fairness_alternative import (
        ALTERNATIVE_SCHEMA,
        FairnessAlternatives,
    )

    table = pl.DataFrame(
        {
            "alternative": ["this version", "without age"],
            "dropped": ["", "age"],
            "inputs": [4, 3],
            "roc_auc_validation": [0.83, 0.8212],
            "roc_auc_test": [0.82, 0.8123],
            "roc_auc_oot": [0.8, 0.7934],
            "approval_rate_held_out": [0.6, 0.62],
            "min_air_held_out": [0.7312, 0.8456],
            "lowest_band": ["14-24", "14-24"],
            "reference_band": ["45+", "45+"],
            "fit_seconds": [None, 1.25],
        },
        schema=ALTERNATIVE_SCHEMA,
    )
    proxies = pl.DataFrame(
        {"feature": ["income"], "eta_squared": [0.0667], "proxy": [True], "dropped": [True]}
    )
    searched = dataclasses.replace(
        document(windows),
        alternatives=FairnessAlternatives(True, proxies, table, 3.5),
    )
    title = "Less discriminatory alternatives"
    for text in (render_html(searched), render_markdown(searched)):
        assert title in text
        assert "Age is an input of this version" in text and "here income" in text
        assert "0.846" in text and "0.793" in text and "3.5 s" in text
    not_searched = render_markdown(document(windows))
    section = not_searched.split(f"## {title}")[1].split("## ")[0]
    assert "Not searched for this version" in section and "logistic_regression" in section
