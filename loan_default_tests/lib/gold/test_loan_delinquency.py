"""Days past due on hand-checked snapshots."""

from datetime import date

import polars as pl

from loan_default.lib.gold.label_contract import LabelDefinition
from loan_default.lib.gold.labels import build_labels
from loan_default.lib.gold.loan_delinquency import with_delinquency


def loan_rows(rows: list[tuple[int, float, float, date]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "loan_id": ["L1"] * len(rows),
            "customer_id": ["C1"] * len(rows),
            "loan_start_date": [date(2023, 1, 1)] * len(rows),
            "installment_num": [r[0] for r in rows],
            "due_amt": [r[1] for r in rows],
            "overdue_amt": [r[2] for r in rows],
            "snapshot_date": [r[3] for r in rows],
            "partition_month": [r[3] for r in rows],
        }
    )


def test_dpd_counts_days_since_the_first_missed_installment():
    loans = with_delinquency(
        loan_rows(
            [
                (0, 0.0, 0.0, date(2023, 1, 1)),  # nothing due yet
                (1, 1000.0, 0.0, date(2023, 2, 1)),  # paid
                (2, 1000.0, 1000.0, date(2023, 3, 1)),  # one missed: since 2023-02-01
                (3, 1000.0, 2000.0, date(2023, 4, 1)),  # two missed: since 2023-02-01
                (4, 1000.0, 1500.0, date(2023, 5, 1)),  # ceil(1.5) = 2: since 2023-03-01
            ]
        )
    )
    assert loans["mob"].to_list() == [0, 1, 2, 3, 4]
    assert loans["installments_missed"].to_list() == [0, 0, 1, 2, 2]
    assert loans["first_missed_date"].to_list() == [
        None,
        None,
        date(2023, 2, 1),
        date(2023, 2, 1),
        date(2023, 3, 1),
    ]
    assert loans["dpd"].to_list() == [0, 0, 28, 59, 61]


def test_label_uses_the_configured_threshold_and_mob():
    loans = with_delinquency(
        loan_rows([(6, 1000.0, 1000.0, date(2023, 7, 1)), (5, 1000.0, 3000.0, date(2023, 6, 1))])
    )
    # One installment missed at mob 6: dpd = days from 2023-06-01 to 2023-07-01 = 30.
    labels = build_labels(loans, LabelDefinition(dpd_threshold=30, mob=6))
    assert labels.select("loan_id", "label_month", "dpd", "label", "label_def").rows() == [
        ("L1", date(2023, 7, 1), 30, 1, "30dpd_6mob")
    ]
    strict = build_labels(loans, LabelDefinition(dpd_threshold=31, mob=6))
    assert strict["label"].to_list() == [0]
    at_mob_5 = build_labels(loans, LabelDefinition(dpd_threshold=30, mob=5))
    # Three missed at 2023-06-01: since 2023-03-01, 31 + 30 + 31 = 92 days.
    assert at_mob_5.select("dpd", "label", "label_def").rows() == [(92, 1, "30dpd_5mob")]
