"""Request and response models of the scoring API, in the raw source schema.

The request fields are the raw CSV columns, generated from `lib/sources.py` so the API and the
pipeline share one declaration. Values travel as raw text (numbers are accepted and turned into
text): the pipeline's own cleaning decides what is valid, exactly as it does for the files.
Every raw field must be present (null means unknown), so a renamed or forgotten field is a 422
rather than a silently missing feature. Personal data (Name, SSN) is accepted but excluded from
dumps and reprs, so it cannot reach a log line or a response.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    create_model,
)

from loan_default import settings
from loan_default.lib.ingest.sources import (
    FEATURE_CLICKSTREAM,
    FEATURES_ATTRIBUTES,
    FEATURES_FINANCIALS,
    LMS_LOAN_DAILY,
    Kind,
    Source,
)

# A customer's id is given once per application, not repeated in each section.
SHARED_KEY = "Customer_ID"
# The longest clickstream history an application may carry (the long window uses at most 24).
MAX_CLICKSTREAM_MONTHS = 60


# Raw values are text in the files; JSON numbers become the same text (in pydantic's core,
# coerce_numbers_to_str), anything else (booleans, lists) is a 422.
RawValue = Annotated[
    str | None,
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]}),
]
STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True, coerce_numbers_to_str=True)


def _section(name: str, source: Source, doc: str) -> type[BaseModel]:
    """A pydantic model with one field per raw column of `source` (bar the customer key)."""
    fields: dict[str, Any] = {}
    for column in source.columns:
        if column.name == SHARED_KEY:
            continue
        if column.kind is Kind.PERSONAL:
            fields[column.name] = (
                RawValue,
                Field(
                    default=None,
                    description=f"{column.description} Accepted, never used, logged or returned.",
                    exclude=True,
                    repr=False,
                ),
            )
        else:
            fields[column.name] = (RawValue, Field(description=column.description))
    return create_model(name, __config__=STRICT, __doc__=doc, **fields)


Attributes = _section(
    "Attributes", FEATURES_ATTRIBUTES, "The applicant's row of features_attributes.csv."
)
Financials = _section(
    "Financials", FEATURES_FINANCIALS, "The applicant's row of features_financials.csv."
)
ClickstreamMonth = _section(
    "ClickstreamMonth", FEATURE_CLICKSTREAM, "One month of feature_clickstream.csv."
)


def _loan_field(name: str) -> Any:
    return Field(description=LMS_LOAN_DAILY.column(name).description)


def _clickstream_example(month: str, start: int) -> dict:
    return {**{f"fe_{i}": start + 7 * i for i in range(1, 21)}, "snapshot_date": month}


# A made-up applicant in the raw files' own text, dirty values included ("_" is unknown).
EXAMPLE_APPLICATION = {
    "loan_id": "CUS_0xD3E0_2024_05_01",
    "Customer_ID": "CUS_0xD3E0",
    "loan_start_date": "2024-05-01",
    "tenure": 10,
    "loan_amt": 10000,
    "attributes": {
        "Name": "Jane Example",
        "Age": "34",
        "SSN": "000-12-3456",
        "Occupation": "Engineer",
        "snapshot_date": "2024-05-01",
    },
    "financials": {
        "Annual_Income": "52312.68_",
        "Monthly_Inhand_Salary": 4250.39,
        "Num_Bank_Accounts": 6,
        "Num_Credit_Card": 5,
        "Interest_Rate": 17,
        "Num_of_Loan": 2,
        "Type_of_Loan": "Credit-Builder Loan, and Home Equity Loan",
        "Delay_from_due_date": 12,
        "Num_of_Delayed_Payment": 8,
        "Changed_Credit_Limit": "9.73",
        "Num_Credit_Inquiries": 4,
        "Credit_Mix": "_",
        "Outstanding_Debt": 1562.91,
        "Credit_Utilization_Ratio": 30.08,
        "Credit_History_Age": "10 Years and 9 Months",
        "Payment_of_Min_Amount": "Yes",
        "Total_EMI_per_month": 42.94,
        "Amount_invested_monthly": 77.31,
        "Payment_Behaviour": "High_spent_Medium_value_payments",
        "Monthly_Balance": 400.36,
        "snapshot_date": "2024-05-01",
    },
    "clickstream": [
        _clickstream_example("2024-04-01", -20),
        _clickstream_example("2024-05-01", 5),
    ],
}


class Application(BaseModel):
    """One loan application: the loan book's mob-0 fields plus the applicant's source rows.

    The loan book row at application is implied: month on book 0, nothing due, paid or
    overdue, balance = loan_amt, snapshot at loan_start_date (the application month).
    """

    model_config = ConfigDict(**STRICT, json_schema_extra={"examples": [EXAMPLE_APPLICATION]})

    loan_id: str | None = Field(default=None, description="Echoed back; not a model input.")
    Customer_ID: str = Field(min_length=1, description="Customer identifier (pseudonymous).")
    loan_start_date: RawValue = _loan_field("loan_start_date")
    tenure: RawValue = _loan_field("tenure")
    loan_amt: RawValue = _loan_field("loan_amt")
    attributes: Attributes  # type: ignore[valid-type]
    financials: Financials  # type: ignore[valid-type]
    clickstream: list[ClickstreamMonth] = Field(  # type: ignore[valid-type]
        default_factory=list,
        max_length=MAX_CLICKSTREAM_MONTHS,
        description="Monthly clickstream up to the application month; empty when there is none.",
    )


class Batch(BaseModel):
    """Several applications scored in one request by one model version."""

    model_config = STRICT

    applications: list[Application] = Field(min_length=1, max_length=settings.API_MAX_BATCH)


def _shape(body: Any) -> str:
    return "batch" if isinstance(body, dict) and "applications" in body else "single"


# POST /predict takes one application or {"applications": [...]}; the discriminator picks the
# shape up front so a bad request gets the errors of its own shape only.
PredictBody = Annotated[
    Annotated[Application, Tag("single")] | Annotated[Batch, Tag("batch")],
    Discriminator(_shape),
]
UNION_TAGS = ("single", "batch")


class ReasonCode(BaseModel):
    code: str = Field(description="The reason code (catalogue loan_default/reason_codes.json).")
    text: str = Field(description="The reason in words a declined applicant can read.")
    contribution: float = Field(
        description=(
            "How far this reason pushed the application towards default, in the model family's "
            "units: scorecard points below the best bin, log-odds for logistic regression and "
            "gradient boosting, probability for the TabTransformer."
        )
    )


class Prediction(BaseModel):
    loan_id: str | None
    Customer_ID: str
    probability: float = Field(
        description=f"The model's raw probability of default ({settings.LABEL.name})."
    )
    calibrated_probability: float = Field(
        description=f"Platt-calibrated probability of default: {settings.LABEL.text}."
    )
    decision: int = Field(description="1 when calibrated_probability >= the model's threshold.")
    model_version: str
    model_family: str
    reasons: list[ReasonCode] = Field(
        description=(
            "When decision is 1: the top four reasons (at most), largest first, from the model "
            "that decided; empty otherwise."
        )
    )


class BatchPrediction(BaseModel):
    model_version: str
    model_family: str
    predictions: list[Prediction]


class Health(BaseModel):
    status: str = Field(description="'ok' while a champion is loaded, else 'no_model'.")
    model_version: str | None
    model_family: str | None
    loaded_at: str | None
    last_registry_check: str | None
    last_registry_error: str | None


class ModelInfo(BaseModel):
    version_id: str
    family: str
    status: str
    trained_at: str
    as_of_month: str
    reason_trained: str
    code_version: str
    threshold: float
    windows: dict
    hyperparameters: dict
    features: list[str]
    metrics: dict
    artifact_sha256: str
    loaded_at: str
    promotion: dict | None = Field(description="The gate decision that made it champion.")
    document_path: str | None = Field(
        default=None,
        description="Its model document (HTML) where the pipeline wrote it, from its registry "
        "row; null until `models/model_document` has run after the gate.",
    )
    document_url: str | None = Field(
        default=None, description="Where this API serves that document (GET), when it exists."
    )
