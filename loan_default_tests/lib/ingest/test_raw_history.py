"""Raw months' fingerprints and the append-only raw history, on tiny hand-written files and a
real DuckDB file."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from loan_default.lib.ingest import raw_history
from loan_default.lib.ingest.raw_history import MonthState, RawHistoryError
from loan_default.lib.ingest.raw_months import month_fingerprints
from loan_default.lib.ingest.raw_reader import ISO_DATE_FORMAT, RawFile
from loan_default.lib.ingest.sources import SOURCES
from loan_default.lib.storage.embedded_tables import EmbeddedTables
from loan_default.lib.storage.lake_tables import LakeTables
from loan_default.lib.storage.table_store import TableStore

ATTRIBUTES = SOURCES["features_attributes"]
HEADER = "Customer_ID,Name,Age,SSN,Occupation,snapshot_date"
ROWS = [
    "CUS_1,Ann,34,521-08-3317,Engineer,2024-01-01",
    "CUS_2,Bo,41,521-08-3318,_,2024-01-01",
    "CUS_3,Cy,29,521-08-3319,Lawyer,2024-02-01",
]
MAY, JUNE = date(2024, 5, 1), date(2024, 6, 1)
AT = datetime(2025, 12, 1, 6, 0, tzinfo=UTC)


def fingerprints(tmp_path: Path, rows: list[str], header: str = HEADER):
    path = tmp_path / "features_attributes.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return month_fingerprints(RawFile(path), ATTRIBUTES, ISO_DATE_FORMAT)


def test_fingerprint_is_sha256_of_the_months_sorted_lines(tmp_path):
    found = fingerprints(tmp_path, ROWS)
    assert found["month"].to_list() == [date(2024, 1, 1), date(2024, 2, 1)]
    assert found["rows"].to_list() == [2, 1]
    # Hand-computed: values joined by the unit separator, lines sorted, joined by newlines.
    january = sorted(row.replace(",", "\x1f") for row in ROWS[:2])
    expected = hashlib.sha256("\n".join(january).encode()).hexdigest()
    assert found["fingerprint"][0] == expected


def test_fingerprint_ignores_row_and_column_order_but_sees_a_changed_value(tmp_path):
    first = fingerprints(tmp_path, ROWS)
    reordered_header = "snapshot_date,Customer_ID,Name,Age,SSN,Occupation"
    moved = [",".join([r.split(",")[-1], *r.split(",")[:-1]]) for r in reversed(ROWS)]
    assert fingerprints(tmp_path, moved, reordered_header).equals(first)
    changed = fingerprints(tmp_path, [ROWS[0].replace("34", "35"), *ROWS[1:]])
    assert changed["fingerprint"][0] != first["fingerprint"][0]
    assert changed["fingerprint"][1] == first["fingerprint"][1]


def test_header_only_file_has_no_months(tmp_path):
    assert fingerprints(tmp_path, []).is_empty()


BEFORE = {MAY: MonthState(10, "a"), JUNE: MonthState(8, "b")}


@pytest.mark.parametrize(
    ("now", "kinds"),
    [
        ({MAY: MonthState(10, "a"), JUNE: MonthState(8, "b")}, []),
        (
            {MAY: MonthState(7, "c"), JUNE: MonthState(8, "b")},
            ["2024-05-01: 10 -> 7 rows (shrank)"],
        ),
        ({MAY: MonthState(10, "a")}, ["2024-06-01: 8 -> 0 rows (vanished)"]),
        (
            {MAY: MonthState(10, "z"), JUNE: MonthState(9, "y")},
            [
                "2024-05-01: 10 -> 10 rows (changed content)",
                "2024-06-01: 8 -> 9 rows (grew)",
            ],
        ),
    ],
)
def test_changes_name_each_month_with_rows_before_and_after(now, kinds):
    assert [str(c) for c in raw_history.changes(BEFORE, now, [MAY, JUNE])] == kinds


def test_months_outside_the_run_and_months_never_ingested_are_not_changes():
    now = {MAY: MonthState(1, "x"), date(2024, 7, 1): MonthState(5, "new")}
    assert raw_history.changes(BEFORE, now, [date(2024, 7, 1)]) == []


def test_unrestated_change_is_refused_naming_file_months_and_counts():
    found = raw_history.changes(BEFORE, {MAY: MonthState(7, "c")}, [MAY, JUNE])
    with pytest.raises(RawHistoryError) as error:
        raw_history.refuse_unrestated(Path("/raw/lms.csv"), "lms_loan_daily", found, {MAY})
    message = str(error.value)
    assert message.startswith("/raw/lms.csv: 1 month(s) of lms_loan_daily")
    assert "2024-06-01: 8 -> 0 rows (vanished)" in message
    assert "restate_months: [2024-06-01]" in message
    raw_history.refuse_unrestated(Path("/raw/lms.csv"), "lms_loan_daily", found, {MAY, JUNE})


@pytest.fixture(params=["embedded", "ducklake"])
def store(request, tmp_path) -> TableStore:
    """Both warehouse backends, through the store's connection as bronze uses them."""
    if request.param == "embedded":
        return EmbeddedTables(tmp_path / "warehouse.duckdb")
    return LakeTables(str(tmp_path / "catalog.ducklake"), str(tmp_path / "files") + "/")


def test_history_appends_new_and_restated_months_and_reads_the_latest(store):
    with store.connect() as connection:
        assert raw_history.recorded(connection, "lms_loan_daily") == {}
        first = raw_history.entries("lms_loan_daily", Path("f.csv"), {}, BEFORE, [MAY, JUNE], AT)
        raw_history.append(connection, first)
        assert raw_history.recorded(connection, "lms_loan_daily") == BEFORE
        assert raw_history.recorded(connection, "feature_clickstream") == {}
        # Unchanged: nothing to append.
        unchanged = raw_history.entries("lms_loan_daily", Path("f.csv"), BEFORE, BEFORE, [MAY], AT)
        assert unchanged.is_empty()
        later = AT.replace(day=2)
        now = {MAY: MonthState(7, "c"), JUNE: MonthState(8, "b")}
        restated = raw_history.entries(
            "lms_loan_daily", Path("f.csv"), BEFORE, now, [MAY, JUNE], later, "fix"
        )
        raw_history.append(connection, restated)
        assert raw_history.recorded(connection, "lms_loan_daily") == now
        rows = raw_history.history(connection, "lms_loan_daily").to_dicts()
    assert [
        (r["month"], r["rows"], r["restated"], r["replaced_rows"], r["reason"]) for r in rows
    ] == [
        (MAY, 10, False, None, None),
        (MAY, 7, True, 10, "fix"),
        (JUNE, 8, False, None, None),
    ]
