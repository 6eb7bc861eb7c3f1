"""Synthetic raw files in the course schema, for fresh machines, scale tests and drift tests.

The four CSVs match the real ones in columns, grain, date range, dirty values and the
clickstream gap. Defaults are driven mainly by credit-behaviour columns, so models can learn
from them. Everything is vectorized and seeded: the same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from loan_default.lib.ingest.sources import LOAN_TYPES, SOURCES
from loan_default.lib.months import add_months, month_range

FIRST_START, LAST_START = date(2023, 1, 1), date(2025, 1, 1)
CLICKSTREAM_MONTHS = month_range(date(2023, 1, 1), date(2025, 1, 1))
CLICKSTREAM_LAST_COHORT = date(2024, 6, 1)
TENURE, LOAN_AMOUNT, INSTALMENT = 10, 10_000, 1_000.0
TARGET_DEFAULT_RATE = 0.29
OCCUPATIONS = (
    "Lawyer",
    "Mechanic",
    "Engineer",
    "Teacher",
    "Doctor",
    "Writer",
    "Architect",
    "Scientist",
    "Accountant",
    "Manager",
    "Developer",
    "Journalist",
    "Musician",
)
BEHAVIOURS = tuple(
    f"{s}_spent_{v}_value_payments" for s in ("High", "Low") for v in ("Small", "Medium", "Large")
)
SYLLABLES = ("al", "is", "tar", "bar", "ru", "na", "shir", "bo", "ni", "ke", "lo", "ma", "den")


def _months_as_dates(offsets: np.ndarray, base: date) -> pl.Series:
    months = base.year * 12 + base.month - 1 + offsets
    return pl.Series(
        [date(m // 12, m % 12 + 1, 1) for m in range(months.min(), months.max() + 1)]
    ).gather(months - months.min())


def _choice(rng: np.random.Generator, options: tuple[str, ...], n: int, p=None) -> np.ndarray:
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=n, p=p)]


# In the drift scenario the number of loans an applicant already holds becomes the main risk
# driver (log-odds-like units per loan above two): a model trained before the change cannot
# know it, one retrained on changed cohorts can learn it.
DRIFT_DRIVER = 1.6


def _customers(
    rng: np.random.Generator, n: int, drift_from: date | None, last_start: date = LAST_START
) -> pl.DataFrame:
    n_months = len(month_range(FIRST_START, add_months(last_start, 1)))
    start_offset = np.sort(rng.integers(0, n_months, n))
    ids = 0x1000 + rng.permutation(n * 4)[:n]
    drifted = np.zeros(n, dtype=bool)
    if drift_from is not None:
        drift_offset = (drift_from.year - FIRST_START.year) * 12 + drift_from.month - 1
        drifted = start_offset >= drift_offset

    credit_mix = rng.choice(3, size=n, p=[0.3, 0.45, 0.25])  # 0 good, 1 standard, 2 bad
    min_payment = (rng.random(n) < 0.25 + 0.3 * credit_mix).astype(int)  # pays only minimum
    delay = np.clip(rng.normal(8 + 9 * credit_mix, 7), -5, 67).round().astype(int)
    delayed_payments = np.clip(rng.poisson(4 + 5 * credit_mix), 0, 28)
    history = np.clip(rng.normal(300 - 70 * credit_mix, 80), 6, 404).round().astype(int)
    income = np.exp(rng.normal(10.6 - 0.15 * credit_mix, 0.6))
    debt = np.clip(rng.gamma(2, 300 + 500 * credit_mix), 1, 4999)
    interest = np.clip(rng.normal(8 + 6 * credit_mix, 4), 1, 34).round().astype(int)
    # The drift scenario: later cohorts look riskier on the credit-behaviour columns (a policy
    # or market change), which no longer carry the risk: scores shift and ranking degrades.
    delay = np.where(drifted, np.clip(delay + rng.normal(15, 6, n), -5, 67).round(), delay)
    delayed_payments = np.where(drifted, np.clip(delayed_payments + 6, 0, 28), delayed_payments)
    interest = np.where(drifted, np.clip(interest + 8, 1, 34), interest)
    inquiries = np.clip(rng.poisson(3 + 3 * credit_mix), 0, 17)
    clickstream_signal = rng.normal(0, 1, n)

    z = (
        0.9 * (credit_mix - 1)
        + 0.8 * min_payment
        + 0.05 * (delay - 15)
        + 0.08 * (delayed_payments - 8)
        - 0.004 * (history - 230)
        + 0.0004 * (debt - 900)
        + 0.04 * (interest - 14)
        + 0.35 * clickstream_signal
        + rng.normal(0, 2.6, n)
    )
    drift_noise = rng.normal(0, 1.2, n)
    salary = income / 12 * rng.uniform(0.75, 0.95, n)
    n_types = rng.integers(0, 5, n)
    # After the drift month the old signals lose most of their meaning and the number of loans
    # carries the risk: the champion degrades, a retrained model recovers.
    z = np.where(drifted, 0.3 * z + drift_noise + DRIFT_DRIVER * (n_types - 2), z)
    threshold = np.quantile(z, 1 - TARGET_DEFAULT_RATE)
    defaults = z > threshold
    type_of_loan = [
        "" if k == 0 else (", ".join(t[:-1]) + (", and " if k > 1 else "") + t[-1])
        for k, t in zip(
            n_types, (tuple(rng.choice(LOAN_TYPES, size=max(k, 1))) for k in n_types), strict=True
        )
    ]
    return pl.DataFrame(
        {
            "customer_id": [f"CUS_0x{i:x}" for i in ids],
            "start_offset": start_offset,
            "default": defaults,
            "drifted": drifted,
            "credit_mix": np.asarray(["Good", "Standard", "Bad"], dtype=object)[credit_mix],
            "min_payment": np.asarray(["No", "Yes"], dtype=object)[min_payment],
            "delay": delay.astype(int),
            "delayed_payments": delayed_payments,
            "history": history,
            "income": income.round(2),
            "salary": salary,
            "debt": debt.round(2),
            "interest": interest,
            "inquiries": inquiries,
            "n_loans": n_types,
            "type_of_loan": type_of_loan,
            "clickstream_signal": clickstream_signal,
        }
    )


def generate(
    out_dir: Path,
    loans: int = 12_500,
    seed: int = 42,
    drift_from: date | None = None,
    last_start: date = LAST_START,
) -> dict[str, int]:
    """Writes the four CSVs into `out_dir`; returns rows written per file. Loans start from
    2023-01 to `last_start` (2025-01 as in the real data; later for a longer replay)."""
    rng = np.random.default_rng(seed)
    people = _customers(rng, loans, drift_from, last_start)
    start = _months_as_dates(people["start_offset"].to_numpy(), FIRST_START)
    people = people.with_columns(start=start)
    frames = {
        "lms_loan_daily": [_loan_book(rng, people)],
        "features_attributes": [_attributes(rng, people)],
        "features_financials": [_financials(rng, people)],
        "feature_clickstream": _clickstream(rng, people),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, chunks in frames.items():
        source = SOURCES[name]
        target = out_dir / source.file_name
        partial = target.with_suffix(".csv.partial")
        rows = 0
        with open(partial, "wb") as handle:
            for chunk in chunks:
                chunk.select(source.column_names).write_csv(handle, include_header=rows == 0)
                rows += chunk.height
        os.replace(partial, target)
        written[name] = rows
    return written


def _loan_book(rng: np.random.Generator, people: pl.DataFrame) -> pl.DataFrame:
    n = people.height
    # Defaulters stop paying at instalment 1..6, so at month on book 6 they are >= 30 dpd.
    stop = np.where(people["default"].to_numpy(), rng.integers(1, 7, n), TENURE + 1)
    # A few good payers slip once after month on book 6 and catch up.
    slip = np.where(rng.random(n) < 0.08, rng.integers(7, TENURE + 1, n), -1)
    k = np.arange(TENURE + 1)
    due = np.where(k == 0, 0.0, INSTALMENT)[None, :].repeat(n, 0)
    paying = (k[None, :] < stop[:, None]) & (k[None, :] != slip[:, None])
    paid = np.where(paying, due, 0.0)
    catch_up = (
        (slip[:, None] >= 0) & (k[None, :] == slip[:, None] + 1) & (k[None, :] < stop[:, None])
    )
    paid = paid + np.where(catch_up, INSTALMENT, 0.0)
    overdue = np.cumsum(due, 1) - np.cumsum(paid, 1)
    balance = LOAN_AMOUNT - np.cumsum(paid, 1)
    starts = people["start"].to_numpy().astype("datetime64[M]")
    snapshots = (starts[:, None] + k[None, :].astype("timedelta64[M]")).astype("datetime64[D]")
    customer = np.repeat(people["customer_id"].to_numpy(), TENURE + 1)
    start_text = np.repeat(starts.astype("datetime64[D]").astype(str), TENURE + 1)
    return pl.DataFrame(
        {
            "loan_id": [
                f"{c}_{s.replace('-', '_')}" for c, s in zip(customer, start_text, strict=True)
            ],
            "Customer_ID": customer,
            "loan_start_date": start_text,
            "tenure": TENURE,
            "installment_num": np.tile(k, n),
            "loan_amt": LOAN_AMOUNT,
            "due_amt": due.ravel(),
            "paid_amt": paid.ravel(),
            "overdue_amt": overdue.ravel(),
            "balance": balance.ravel(),
            "snapshot_date": snapshots.ravel().astype(str),
        }
    ).sort("Customer_ID", "snapshot_date")


def _attributes(rng: np.random.Generator, people: pl.DataFrame) -> pl.DataFrame:
    n = people.height
    age = rng.integers(18, 60, n).astype(object).astype(str)
    weird = rng.random(n)
    age = np.where(
        weird < 0.008, "-500", np.where(weird < 0.025, rng.integers(101, 8700, n).astype(str), age)
    )
    age = np.where(rng.random(n) < 0.05, np.char.add(age.astype(str), "_"), age)
    ssn = np.char.add(
        np.char.add(rng.integers(100, 999, n).astype(str), "-"),
        np.char.add(
            np.char.add(rng.integers(10, 99, n).astype(str), "-"),
            rng.integers(1000, 9999, n).astype(str),
        ),
    )
    ssn = np.where(rng.random(n) < 0.056, "#F%$D@*&8", ssn)
    first = np.char.add(
        _choice(rng, SYLLABLES, n).astype(str), _choice(rng, SYLLABLES, n).astype(str)
    )
    last = np.char.add(
        _choice(rng, SYLLABLES, n).astype(str), _choice(rng, SYLLABLES, n).astype(str)
    )
    name = np.char.add(np.char.add(np.char.capitalize(first), " "), np.char.capitalize(last))
    occupation = np.where(rng.random(n) < 0.07, "_______", _choice(rng, OCCUPATIONS, n))
    return pl.DataFrame(
        {
            "Customer_ID": people["customer_id"],
            "Name": name,
            "Age": age,
            "SSN": ssn,
            "Occupation": occupation.astype(str),
            "snapshot_date": people["start"].cast(pl.String),
        }
    ).sort("Customer_ID")


def _financials(rng: np.random.Generator, people: pl.DataFrame) -> pl.DataFrame:
    n = people.height
    u = {
        c: rng.random(n)
        for c in (
            "income",
            "loans",
            "delayed",
            "debt",
            "limit",
            "mix",
            "beh",
            "min",
            "invest",
            "outlier",
        )
    }
    salary = people["salary"].to_numpy()
    emi = salary * rng.uniform(0.0, 0.08, n)
    invested = salary * rng.uniform(0.02, 0.15, n)
    balance = salary - emi - invested
    n_loans = people["n_loans"].to_numpy().astype(object).astype(str)
    n_loans = np.where(u["outlier"] < 0.04, "-100", n_loans)
    frame = pl.DataFrame(
        {
            "Customer_ID": people["customer_id"],
            "Annual_Income": people["income"],
            "Monthly_Inhand_Salary": salary,
            "Num_Bank_Accounts": rng.integers(0, 11, n),
            "Num_Credit_Card": rng.integers(1, 11, n),
            "Interest_Rate": people["interest"],
            "Num_of_Loan": n_loans,
            "Type_of_Loan": people["type_of_loan"],
            "Delay_from_due_date": people["delay"],
            "Num_of_Delayed_Payment": people["delayed_payments"],
            "Changed_Credit_Limit": rng.normal(10, 6, n).round(2),
            "Num_Credit_Inquiries": people["inquiries"].cast(pl.Float64),
            "Credit_Mix": people["credit_mix"],
            "Outstanding_Debt": people["debt"],
            "Credit_Utilization_Ratio": rng.uniform(20, 45, n),
            "Credit_History_Age": [
                f"{h // 12} Years and {h % 12} Months" for h in people["history"]
            ],
            "Payment_of_Min_Amount": people["min_payment"],
            "Total_EMI_per_month": emi,
            "Amount_invested_monthly": invested,
            "Payment_Behaviour": _choice(rng, BEHAVIOURS, n),
            "Monthly_Balance": balance,
            "snapshot_date": people["start"].cast(pl.String),
        }
    )
    text = {c: pl.col(c).cast(pl.String) for c in frame.columns}
    mask = {k: pl.lit(v) for k, v in u.items()}
    return frame.with_columns(
        Annual_Income=pl.when(mask["income"] < 0.07)
        .then(text["Annual_Income"] + "_")
        .otherwise(text["Annual_Income"]),
        Num_of_Loan=pl.when(mask["loans"] < 0.05)
        .then(text["Num_of_Loan"] + "_")
        .otherwise(text["Num_of_Loan"]),
        Num_of_Delayed_Payment=pl.when(mask["delayed"] < 0.03)
        .then(text["Num_of_Delayed_Payment"] + "_")
        .otherwise(text["Num_of_Delayed_Payment"]),
        Outstanding_Debt=pl.when(mask["debt"] < 0.011)
        .then(text["Outstanding_Debt"] + "_")
        .otherwise(text["Outstanding_Debt"]),
        Changed_Credit_Limit=pl.when(mask["limit"] < 0.02)
        .then(pl.lit("_"))
        .otherwise(text["Changed_Credit_Limit"]),
        Credit_Mix=pl.when(mask["mix"] < 0.2).then(pl.lit("_")).otherwise(text["Credit_Mix"]),
        Payment_Behaviour=pl.when(mask["beh"] < 0.08)
        .then(pl.lit("!@9#%8"))
        .otherwise(text["Payment_Behaviour"]),
        Payment_of_Min_Amount=pl.when(mask["min"] < 0.115)
        .then(pl.lit("NM"))
        .otherwise(text["Payment_of_Min_Amount"]),
        Amount_invested_monthly=pl.when(mask["invest"] < 0.045)
        .then(pl.lit("__10000__"))
        .otherwise(text["Amount_invested_monthly"]),
        Monthly_Balance=pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("__-333333333333333333333333333__"))
        .otherwise(text["Monthly_Balance"]),
    ).sort("Customer_ID")


def _clickstream(rng: np.random.Generator, people: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """One frame per month, so memory stays at one month's rows at any scale."""
    covered = people.filter(pl.col("start") <= CLICKSTREAM_LAST_COHORT).sort("start", "customer_id")
    signal = covered["clickstream_signal"].to_numpy()
    loadings = rng.normal(0, 25, 20)
    base = rng.normal(100, 30, 20)
    customers = covered["customer_id"]
    for month in CLICKSTREAM_MONTHS:
        noise = rng.normal(0, 80, (covered.height, 20))
        values = (base[None, :] + signal[:, None] * loadings[None, :] + noise).round()
        frame = pl.DataFrame({f"fe_{i + 1}": values[:, i].astype(np.int64) for i in range(20)})
        yield frame.with_columns(Customer_ID=customers, snapshot_date=pl.lit(month.isoformat()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/raw"))
    parser.add_argument("--loans", type=int, default=12_500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drift-from", type=date.fromisoformat, default=None)
    parser.add_argument("--last-start", type=date.fromisoformat, default=LAST_START)
    args = parser.parse_args()
    written = generate(args.out, args.loans, args.seed, args.drift_from, args.last_start)
    for name, rows in written.items():
        print(f"{args.out / SOURCES[name].file_name}: {rows:,} rows")


if __name__ == "__main__":
    main()
