"""The model documents of the real-data registry the API serves: one per version, its figures
the registry's, linked from each row, and rewritten after the gate judges the version."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import polars as pl

from loan_default.defs.models.model_document import DOCUMENT_DIR, MODEL_DOCUMENT
from loan_default.lib.models import registry
from loan_default.lib.models.model_document import SECTIONS
from loan_default.lib.monitoring.performance import auc_interval
from loan_default_tests.defs.test_models import CHAMPION, run
from loan_default_tests.serving.conftest import copy_warehouse


class Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found, self._open = [], False

    def handle_starttag(self, tag, attrs):
        self._open = tag == "h2"

    def handle_data(self, data):
        if self._open:
            self.found.append(data)
            self._open = False


def all_records(database: Path) -> dict[str, registry.RegistryRecord]:
    """Opens the file read-write (the registry may add columns): no server runs on it here."""
    with duckdb.connect(str(database)) as connection:
        return {r.version_id: r for r in registry.all_versions(connection)}


def test_one_document_per_version_with_the_registrys_figures(trained_warehouse):
    records = all_records(trained_warehouse)
    assert {r.family for r in records.values()} == {
        "logistic_regression",
        "gradient_boosting",
        "scorecard",
    }
    directory = trained_warehouse.parent / "reports" / DOCUMENT_DIR
    assert sorted(p.name for p in directory.glob("*.html")) == sorted(f"{v}.html" for v in records)
    for version_id, record in records.items():
        assert record.document_path == str(directory / f"{version_id}.html")
        text = Path(record.document_path).read_text()
        headings = Headings()
        headings.feed(text)
        assert headings.found == list(SECTIONS)
        assert f"artifact_sha256: {record.artifact_sha256}" in text
        assert record.code_version in text
        for window, metrics in record.metrics.items():
            low, high = auc_interval(
                metrics["roc_auc"], metrics["defaults"], metrics["n"] - metrics["defaults"]
            )
            assert f"<td>{window}</td><td>{metrics['n']:,}</td>" in text
            assert f"<td>{metrics['roc_auc']:.3f}</td><td>[{low:.3f}, {high:.3f}]</td>" in text
        # Each family's information value: the scorecard's own table, computed for the others.
        assert "Information value" in text and "strong" in text
    champion = next(r for r in records.values() if r.status == "champion")
    assert champion.family == "gradient_boosting"
    assert "first model becomes champion" in Path(champion.document_path).read_text()
    scorecard = next(r for r in records.values() if r.family == "scorecard")
    assert "The gate has not judged this version yet." in Path(scorecard.document_path).read_text()


def test_the_gate_rewrites_the_documents_of_the_versions_it_judged(trained_warehouse, tmp_path):
    database = copy_warehouse(trained_warehouse, tmp_path)
    before = all_records(database)
    run(database, [CHAMPION, MODEL_DOCUMENT])
    after = all_records(database)
    with duckdb.connect(str(database)) as connection:
        newest = registry.decisions(connection).sort("decided_at").tail(1)
    scorecard = next(v for v, r in after.items() if r.family == "scorecard")
    assert newest["candidate_version"][0] == scorecard
    judged = {scorecard, newest["champion_version"][0]}
    for version_id, record in after.items():
        moved = record.document_written_at != before[version_id].document_written_at
        assert moved == (version_id in judged), version_id
        if moved:
            assert record.document_path == str(
                tmp_path / "reports" / DOCUMENT_DIR / f"{version_id}.html"
            )
    text = Path(after[scorecard].document_path).read_text()
    assert html.escape(newest["reason"][0]) in text
    assert "The gate has not judged this version yet." not in text
    current = next(r for r in after.values() if r.status == "champion")
    assert current.document_path and Path(current.document_path).exists()
    assert pl.Series([r.document_path for r in after.values()]).is_not_null().all()
