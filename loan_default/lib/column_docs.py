"""Descriptions of every column the platform writes, for the UI's column schema."""

from __future__ import annotations

from loan_default.lib.gold.features import CLICKSTREAM_COLUMNS, loan_type_column
from loan_default.lib.ingest.sources import LOAN_TYPES, SOURCES

_LINEAGE = {
    "partition_month": "Month partition the row belongs to (first day of month).",
    "source_file": "Raw file the row was read from.",
    "source_line": "Line number of the row in the raw file (header is line 1).",
    "ingested_at": "When the row was read into bronze (UTC).",
    "reason": "Why the row was quarantined; several reasons are joined by '; '.",
}
_DERIVED = {
    "mob": "Month on book (installment_num).",
    "installments_missed": "ceil(overdue_amt / due_amt) when due_amt > 0, else 0.",
    "first_missed_date": "Snapshot month minus installments missed; null when none missed.",
    "dpd": "Days past due at the snapshot; 0 when nothing is overdue.",
    "label_month": "Month the label was observed (the loan's snapshot at the label mob).",
    "label": "1 when dpd at the label mob reached the threshold, else 0.",
    "label_def": "Label definition, e.g. 30dpd_6mob.",
    "application_month": "Month the loan was applied for (mob 0); features use data <= this.",
    "credit_history_months": "Length of credit history in months at application.",
    "num_loan_types": "Number of loan types listed in Type_of_Loan.",
    "payment_spend_level": "Spending level from Payment_Behaviour (High/Low).",
    "payment_value_level": "Payment size from Payment_Behaviour (Small/Medium/Large).",
    "debt_to_income": "outstanding_debt / annual_income.",
    "emi_to_salary": "total_emi_per_month / monthly_inhand_salary.",
    "loan_to_income": "loan_amt / annual_income.",
    "balance_to_salary": "monthly_balance / monthly_inhand_salary.",
    "clickstream_months_seen": "Months of clickstream found in the trailing window.",
    "has_clickstream": "1 when any clickstream was found in the window, else 0.",
    "clickstream_months_seen_long": "Months of clickstream found in the long trailing window.",
    "max_source_date": "Newest source date used; never in a month after application_month.",
    **{
        f"{c}_mean": f"Mean of {c} over the trailing clickstream window."
        for c in CLICKSTREAM_COLUMNS
    },
    **{
        f"{c}_mean_long": f"Mean of {c} over the long trailing clickstream window."
        for c in CLICKSTREAM_COLUMNS
    },
    **{loan_type_column(t): f"Times '{t}' appears in Type_of_Loan." for t in LOAN_TYPES},
}

COLUMN_DESCRIPTIONS: dict[str, str] = {
    **{c.name: c.description for s in SOURCES.values() for c in s.columns},
    **{c.silver_name: c.description for s in SOURCES.values() for c in s.columns},
    **_LINEAGE,
    **_DERIVED,
}
