"""Scoring requests built straight from the raw CSVs: the applications of one month, as text.

Values are the files' own text, dirty values included, so the API sees what bronze sees.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from loan_default import settings
from loan_default.lib.ingest.sources import (
    FEATURE_CLICKSTREAM,
    FEATURES_ATTRIBUTES,
    FEATURES_FINANCIALS,
    LMS_LOAN_DAILY,
    Source,
)
from loan_default.lib.months import add_months
from loan_default.serving.schemas import SHARED_KEY


def _read(raw_dir: Path, source: Source) -> pl.DataFrame:
    return pl.read_csv(raw_dir / source.file_name, infer_schema=False).with_columns(
        month=pl.col(source.date_column).str.to_date().dt.month_start()
    )


def _rows_by_customer(frame: pl.DataFrame, source: Source) -> dict[str, list[dict]]:
    columns = [c for c in source.column_names if c != SHARED_KEY]
    grouped: dict[str, list[dict]] = {}
    for row in frame.sort(source.date_column).iter_rows(named=True):
        grouped.setdefault(row[SHARED_KEY], []).append({c: row[c] for c in columns})
    return grouped


def applications_of_month(raw_dir: Path, month: date) -> list[dict]:
    """Every loan applied in `month` as a POST /predict application, in loan_id order.

    Attributes and financials are the rows the feature store reads for that month; the
    clickstream is every month of the long window up to the application month.
    """
    loans = (
        _read(raw_dir, LMS_LOAN_DAILY)
        .filter((pl.col("installment_num") == "0") & (pl.col("month") == month))
        .sort("loan_id")
    )
    customers = loans[SHARED_KEY].implode()
    same_month = {
        source.name: _rows_by_customer(
            _read(raw_dir, source).filter(
                pl.col(SHARED_KEY).is_in(customers) & (pl.col("month") == month)
            ),
            source,
        )
        for source in (FEATURES_ATTRIBUTES, FEATURES_FINANCIALS)
    }
    first = add_months(month, 1 - settings.CLICKSTREAM_LOOKBACK.long_months)
    clickstream = _rows_by_customer(
        _read(raw_dir, FEATURE_CLICKSTREAM).filter(
            pl.col(SHARED_KEY).is_in(customers) & pl.col("month").is_between(first, month)
        ),
        FEATURE_CLICKSTREAM,
    )
    applications = []
    for loan in loans.iter_rows(named=True):
        customer = loan[SHARED_KEY]
        (attributes,) = same_month[FEATURES_ATTRIBUTES.name][customer]
        (financials,) = same_month[FEATURES_FINANCIALS.name][customer]
        applications.append(
            {
                "loan_id": loan["loan_id"],
                "Customer_ID": customer,
                "loan_start_date": loan["loan_start_date"],
                "tenure": loan["tenure"],
                "loan_amt": loan["loan_amt"],
                "attributes": attributes,
                "financials": financials,
                "clickstream": clickstream.get(customer, []),
            }
        )
    return applications


def null_refused(applications: list[dict], detail: list[dict]) -> int:
    """Sets each field a batch 422 named as out of range to null, as a caller would resend it.

    The pipeline nulls such values itself; the API names them instead. Returns how many.
    """
    for error in detail:
        _, _, index, section, field = error["loc"]
        applications[index][section][field] = None
    return len(detail)
