"""The as-of clock's delivery: on month M the landing folder holds the rows dated up to M."""

from datetime import date

import polars as pl

from loan_default.lib.ingest.sources import SOURCES
from loan_default.lib.operations.landing import deliver, read_histories
from loan_default.lib.synthetic import generate


def test_a_month_delivers_only_rows_dated_up_to_it_and_keeps_their_text(tmp_path):
    source, landing = tmp_path / "source", tmp_path / "landing"
    generate(source, loans=300, seed=3)
    loan_book = (source / "lms_loan_daily.csv").read_text().splitlines()
    # A row whose date cannot be read goes with the first drop, for the pipeline to refuse.
    undated = loan_book[1].split(",")
    undated[SOURCES["lms_loan_daily"].column_names.index("snapshot_date")] = "someday"
    (source / "lms_loan_daily.csv").write_text("\n".join([*loan_book, ",".join(undated)]) + "\n")
    histories = read_histories(source, "%Y-%m-%d")

    written = deliver(histories, landing, date(2023, 6, 1), first_drop=True)
    for name, history in histories.items():
        delivered = pl.read_csv(landing / history.source.file_name, infer_schema=False)
        assert delivered.height == written[name] > 0
        dates = delivered[history.source.date_column]
        dated = dates.str.to_date("%Y-%m-%d", strict=False).drop_nulls()
        assert dated.max() <= date(2023, 6, 30), name
        assert delivered.columns == history.rows.columns[:-1]
    assert "someday" in (landing / "lms_loan_daily.csv").read_text()

    later = deliver(histories, landing, date(2023, 7, 1), first_drop=False)
    assert later["lms_loan_daily"] > written["lms_loan_daily"] - 1
    text = (landing / "lms_loan_daily.csv").read_text()
    assert "someday" not in text  # only the first drop carries it
    # Every row dated up to the month, byte for byte the source's text.
    expected = [
        line
        for line in loan_book[1:]
        if line.split(",")[SOURCES["lms_loan_daily"].column_names.index("snapshot_date")]
        <= "2023-07-31"
    ]
    assert sorted(text.splitlines()[1:]) == sorted(expected)
