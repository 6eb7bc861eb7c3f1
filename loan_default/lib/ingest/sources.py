"""The four raw sources of the course schema: file names, columns, keys and how each column types.

One declaration drives reading, cleaning, the UI column schema and the checks, so adding a
column means editing this file only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

# Text hygiene, for every column: a value that still holds a control character (NUL, the other
# C0 codes or DEL) once its surrounding whitespace is stripped is not what the source meant
# to say. Cleaning quarantines its row with the reason `control_character:<column>`, so no
# such byte reaches silver, gold or a model.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"


class Kind(StrEnum):
    """How a raw text column becomes a typed silver column."""

    TEXT = "text"
    DATE = "date"
    INT = "int"
    FLOAT = "float"
    CATEGORY = "category"
    PERSONAL = "personal"
    # Text such as "10 Years and 9 Months", typed as a number of months.
    DURATION = "duration"


# Values of `Source.expected_months`: every month the loan book has snapshots in, or every month
# a loan starts in (its mob-0 snapshots).
SNAPSHOT_MONTHS = "snapshot"
APPLICATION_MONTHS = "application"


# Values of `RawContract.volume`: how a source's rows per month move. The band a month's rows
# may lie in, around the median of its recent months, is set per shape in thresholds.json
# (data_quality.raw_month_volume).
STEADY_VOLUME = "steady"  # about the same every month
ON_BOOK_VOLUME = "on_book"  # loans on book: ramps up over the first tenure, runs off at the end


@dataclass(frozen=True)
class RawContract:
    """What a source's raw file promises, judged before bronze writes a month
    (lib/ingest/source_contract.py); a broken promise stops the run, naming source and months.

    - Every file holds data rows: an empty or header-only file is refused.
    - `covers_every_month`: each configured month a run ingests must hold rows, but for the
      months from `gap_from` on, a known gap declared with its reason (no alarm there). False
      leaves coverage to silver's `months_present` check, which knows the loan book's months.
    - `volume`: STEADY_VOLUME or ON_BOOK_VOLUME; a month outside its band is a WARN.
    """

    covers_every_month: bool
    volume: str = STEADY_VOLUME
    gap_from: date | None = None
    gap_reason: str = ""

    def expects(self, month: date) -> bool:
        """True when the file must hold rows in `month`."""
        return self.covers_every_month and (self.gap_from is None or month < self.gap_from)

    def in_gap(self, month: date) -> bool:
        return self.gap_from is not None and month >= self.gap_from


@dataclass(frozen=True)
class Column:
    """One raw column and its cleaning rules: silver applies exactly what is declared here.

    Each rule's outcome, as `cleaning` applies it (the quarantine reasons name the column):
    - `kind`: how the stripped text parses; text that does not is `unreadable_<kind>:<name>`.
    - `placeholders`: values that mean "unknown": null, counted as `<name> (placeholder)`.
    - `valid_min` / `valid_max` (inclusive): a value outside is `out_of_range:<name>` when the
      column is required, otherwise null, counted as `<name>`.
    - `required`: a missing value (blank or a placeholder) is `missing_value:<name>`.
    """

    name: str
    kind: Kind
    description: str
    valid_min: float | None = None
    valid_max: float | None = None
    placeholders: tuple[str, ...] = ()
    required: bool = False

    @property
    def silver_name(self) -> str:
        return self.name.lower()

    @property
    def has_range(self) -> bool:
        return self.valid_min is not None or self.valid_max is not None


@dataclass(frozen=True)
class Source:
    name: str
    file_name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    date_column: str = "snapshot_date"
    description: str = ""
    # Months the loan book says this source has rows in (a month without silver rows there
    # fails a blocking check): SNAPSHOT_MONTHS, APPLICATION_MONTHS, or None when the source may
    # legitimately stop (clickstream covers no cohort from 2024-07).
    expected_months: str | None = None
    contract: RawContract = RawContract(covers_every_month=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


LMS_LOAN_DAILY = Source(
    name="lms_loan_daily",
    file_name="lms_loan_daily.csv",
    description="Loan management system: one row per loan per month on book.",
    key=("loan_id", "snapshot_date"),
    expected_months=SNAPSHOT_MONTHS,
    # The loan book defines the months: every configured month holds snapshots.
    contract=RawContract(covers_every_month=True, volume=ON_BOOK_VOLUME),
    columns=(
        Column("loan_id", Kind.TEXT, "Loan identifier: <Customer_ID>_<start date>.", required=True),
        Column("Customer_ID", Kind.TEXT, "Customer identifier (pseudonymous key).", required=True),
        Column("loan_start_date", Kind.DATE, "Month the loan was booked.", required=True),
        Column("tenure", Kind.INT, "Number of monthly installments.", 1, 600, required=True),
        Column(
            "installment_num", Kind.INT, "Month on book of this snapshot.", 0, 600, required=True
        ),
        Column("loan_amt", Kind.FLOAT, "Principal.", 0, None, required=True),
        Column("due_amt", Kind.FLOAT, "Amount due this month.", 0, None, required=True),
        Column("paid_amt", Kind.FLOAT, "Amount paid this month.", 0, None, required=True),
        Column("overdue_amt", Kind.FLOAT, "Cumulative amount overdue.", 0, None, required=True),
        Column("balance", Kind.FLOAT, "Outstanding balance.", None, None, required=True),
        Column("snapshot_date", Kind.DATE, "Snapshot month.", required=True),
    ),
)

FEATURES_ATTRIBUTES = Source(
    name="features_attributes",
    file_name="features_attributes.csv",
    description="Customer attributes, one row per customer dated at the loan's start month.",
    key=("Customer_ID", "snapshot_date"),
    expected_months=APPLICATION_MONTHS,
    # Rows only in months a loan starts: silver judges them against the loan book.
    contract=RawContract(covers_every_month=False),
    columns=(
        Column("Customer_ID", Kind.TEXT, "Customer identifier (pseudonymous key).", required=True),
        Column("Name", Kind.PERSONAL, "Personal data: kept raw in bronze only."),
        Column("Age", Kind.INT, "Age in years; impossible values become null.", 14, 100),
        Column("SSN", Kind.PERSONAL, "Personal data: kept raw in bronze only."),
        Column("Occupation", Kind.CATEGORY, "Occupation.", placeholders=("_______", "_")),
        Column("snapshot_date", Kind.DATE, "Month the attributes were recorded.", required=True),
    ),
)

# The loan types `Type_of_Loan` lists (as "Auto Loan, and Payday Loan"): the feature store
# counts each, and the synthetic generator draws from them.
LOAN_TYPES = (
    "Auto Loan",
    "Credit-Builder Loan",
    "Debt Consolidation Loan",
    "Home Equity Loan",
    "Mortgage Loan",
    "Not Specified",
    "Payday Loan",
    "Personal Loan",
    "Student Loan",
)

FEATURES_FINANCIALS = Source(
    name="features_financials",
    file_name="features_financials.csv",
    description="Customer financials, one row per customer dated at the loan's start month.",
    key=("Customer_ID", "snapshot_date"),
    expected_months=APPLICATION_MONTHS,
    # Rows only in months a loan starts: silver judges them against the loan book.
    contract=RawContract(covers_every_month=False),
    columns=(
        Column("Customer_ID", Kind.TEXT, "Customer identifier (pseudonymous key).", required=True),
        Column("Annual_Income", Kind.FLOAT, "Annual income.", 0, 1e8),
        Column("Monthly_Inhand_Salary", Kind.FLOAT, "Monthly take-home salary.", 0, 1e7),
        Column("Num_Bank_Accounts", Kind.INT, "Bank accounts held.", 0, 20),
        Column("Num_Credit_Card", Kind.INT, "Credit cards held.", 0, 20),
        Column("Interest_Rate", Kind.INT, "Interest rate in percent.", 0, 50),
        Column("Num_of_Loan", Kind.INT, "Loans held.", 0, 20),
        Column("Type_of_Loan", Kind.TEXT, "Comma list of loan types held."),
        Column("Delay_from_due_date", Kind.INT, "Average days of delay.", -10, 100),
        Column("Num_of_Delayed_Payment", Kind.INT, "Delayed payments.", 0, 50),
        Column("Changed_Credit_Limit", Kind.FLOAT, "Change of credit limit.", -50, 50, ("_",)),
        Column("Num_Credit_Inquiries", Kind.INT, "Credit inquiries.", 0, 50),
        Column("Credit_Mix", Kind.CATEGORY, "Credit mix: Good/Standard/Bad.", placeholders=("_",)),
        Column("Outstanding_Debt", Kind.FLOAT, "Outstanding debt.", 0, 1e7),
        Column("Credit_Utilization_Ratio", Kind.FLOAT, "Credit utilisation in percent.", 0, 100),
        Column(
            "Credit_History_Age",
            Kind.DURATION,
            "Length of credit history in months (raw: 'N Years and M Months').",
        ),
        Column(
            "Payment_of_Min_Amount",
            Kind.CATEGORY,
            "Pays only the minimum: Yes/No.",
            placeholders=("NM",),
        ),
        Column("Total_EMI_per_month", Kind.FLOAT, "Monthly instalments on all loans.", 0, 1e6),
        Column(
            "Amount_invested_monthly",
            Kind.FLOAT,
            "Monthly investment.",
            0,
            1e6,
            placeholders=("__10000__",),
        ),
        Column(
            "Payment_Behaviour",
            Kind.CATEGORY,
            "Spending and payment-size profile.",
            placeholders=("!@9#%8",),
        ),
        Column("Monthly_Balance", Kind.FLOAT, "Monthly balance.", -1e7, 1e7),
        Column("snapshot_date", Kind.DATE, "Month the financials were recorded.", required=True),
    ),
)

FEATURE_CLICKSTREAM = Source(
    name="feature_clickstream",
    file_name="feature_clickstream.csv",
    description="Monthly clickstream features per customer (fe_1..fe_20).",
    key=("Customer_ID", "snapshot_date"),
    contract=RawContract(
        covers_every_month=True,
        gap_from=date(2025, 1, 1),
        gap_reason=(
            "the clickstream feed stops covering new customers from the 2024-07 cohort and "
            "holds no rows from 2025-01 on: a known gap, not a late delivery"
        ),
    ),
    columns=(
        *(
            Column(f"fe_{i}", Kind.INT, f"Clickstream feature {i}.", required=True)
            for i in range(1, 21)
        ),
        Column("Customer_ID", Kind.TEXT, "Customer identifier (pseudonymous key).", required=True),
        Column("snapshot_date", Kind.DATE, "Month of the clickstream snapshot.", required=True),
    ),
)

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (LMS_LOAN_DAILY, FEATURES_ATTRIBUTES, FEATURES_FINANCIALS, FEATURE_CLICKSTREAM)
}

# Silver names of the personal-data columns: dropped by silver, and no table past bronze may
# hold one (the data-quality check reads this).
PERSONAL_COLUMNS = frozenset(
    c.silver_name for s in SOURCES.values() for c in s.columns if c.kind is Kind.PERSONAL
)
