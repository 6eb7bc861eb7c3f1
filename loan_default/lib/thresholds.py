"""The versioned thresholds file shipped in the package: one place for every alarm level.

The file is validated when loaded, against the schema declared below (one frozen pydantic
model per section, in the file's order, inner sections first), so a threshold that says nonsense
(a negative promotion margin, a business bar on the wrong side of its data-science bar, a typo
in a key) stops every reader at once instead of silently changing what is judged. Keys
beginning with "_" (such as "_why") are documentation and allowed anywhere.

Rules are declared once: `within("[0, 1]")` on a number, `rule(...)` on any other value, and
`Check`s across the keys of one section. Every problem is reported together in one
`ThresholdsError`, each naming its dotted key and the rule it breaks in plain words.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

THRESHOLDS_PATH = Path(__file__).resolve().parent.parent / "thresholds.json"


class ThresholdsError(ValueError):
    """The thresholds file breaks its schema; `problems` holds one line per broken rule."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"{source}: {count} in the thresholds file:\n  - " + "\n  - ".join(problems)
        )


class Broken(ValueError):
    """Raised inside validation: (key below the failing value, rule in plain words) pairs."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(text for _, text in problems))


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return json.dumps(value, default=str)


# --- the rule vocabulary ---------------------------------------------------------------------


def rule(holds: Callable[[Any], bool], text: str) -> AfterValidator:
    """A rule on one value, checked once its type is right."""

    def check(value: Any) -> Any:
        if not holds(value):
            raise Broken([((), f"{text} (got {_json(value)})")])
        return value

    return AfterValidator(check)


def within(interval: str, why: str = "") -> AfterValidator:
    """A number inside an interval written as in mathematics: "[0, 1]", "(0.5, 1)", "[0, inf)"."""
    low_open, high_open = interval[0] == "(", interval[-1] == ")"
    low, high = (float(bound) for bound in interval[1:-1].split(","))

    def holds(value: float) -> bool:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    if math.isinf(high):
        words = f"must be {'>' if low_open else '>='} {low:g}"
    else:
        words = f"must be in {interval}"
    return rule(holds, f"{words}: {why}" if why else words)


@dataclass(frozen=True)
class Check:
    """A rule across the keys of one section, reported on `key` (dotted, below the section).

    `text` may name the section's values as {key}; they are shown as JSON. Checks run once
    every key of their section has the right type and passes its own rule, so they may rely
    on both.
    """

    key: str
    holds: Callable[[Any], bool]
    text: str


class Section(BaseModel):
    """A part of the file: frozen, no unknown keys, strict types, then its `checks`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    checks: ClassVar[tuple[Check, ...]] = ()

    @model_validator(mode="after")
    def _checks_hold(self) -> Self:
        values = {name: _json(value) for name, value in self.model_dump().items()}
        problems = []
        for check in self.checks:
            if not check.holds(self):
                value: Any = self
                for part in check.key.split("."):
                    value = getattr(value, part)
                got = "" if isinstance(value, BaseModel) else f" (got {_json(value)})"
                problems.append((tuple(check.key.split(".")), check.text.format(**values) + got))
        if problems:
            raise Broken(problems)
        return self


Number = StrictFloat  # an int is a number too; a bool or a string is not
Count = StrictInt
Share = Annotated[Number, within("[0, 1]")]
NonNegative = Annotated[Number, within("[0, inf)")]
Action = Literal["RETRAIN", "ACTIVE_MONITORING", "MONITOR"]
Priority = Literal["P0", "P1", "P2"]
OpenRange = Annotated[
    tuple[Number | None, Number | None],
    rule(
        lambda r: None in r or r[0] < r[1],
        "must be [low, high] with low < high (null = an open end)",
    ),
]


# --- data_quality ----------------------------------------------------------------------------


class QuarantineShare(Section):
    max: Share
    top_reasons: Annotated[Count, within("[1, inf)")]


class LabelRate(Section):
    low: Share
    high: Share

    checks = (Check("high", lambda s: s.low < s.high, "must be above low ({low})"),)


VolumeBand = Annotated[
    tuple[Number, Number],
    rule(
        lambda band: 0 < band[0] < 1 < band[1],
        "must be [low, high] with 0 < low < 1 < high: factors of the recent median, and a month "
        "at the median must pass",
    ),
]


class RawMonthVolume(Section):
    """The band of a raw month's rows around its recent median, per volume shape declared in
    the sources' contracts (lib/ingest/sources.py)."""

    recent_months: Annotated[Count, within("[1, inf)")]
    min_recent_rows: Annotated[Count, within("[0, inf)")]
    steady: VolumeBand
    on_book: VolumeBand


class DataQuality(Section):
    quarantine_share: QuarantineShare
    label_rate: LabelRate
    raw_month_volume: RawMonthVolume
    feature_value_ranges: dict[StrictStr, OpenRange]


# --- monitoring ------------------------------------------------------------------------------


class Metric(Section):
    """A performance metric: every one the monitoring computes lies in [0, 1]."""

    priority: Priority
    direction: Literal["higher", "lower"]
    business: Share
    data_science: Share

    checks = (
        Check(
            "business",
            lambda m: m.direction != "higher" or m.business <= m.data_science,
            "must be <= data_science ({data_science}) when direction is 'higher': the business "
            "threshold is the lower, more severe bar (alarm when below)",
        ),
        Check(
            "business",
            lambda m: m.direction != "lower" or m.business >= m.data_science,
            "must be >= data_science ({data_science}) when direction is 'lower': the business "
            "threshold is the higher, more severe bar (alarm when above)",
        ),
    )


class RocAuc(Metric):
    """ROC-AUC alone may limit its drop from the version's out-of-time ROC-AUC."""

    max_degradation_from_oot: Annotated[Number, within("[0, 1]")] | None = None


class CalibrationPValue(Metric):
    """The p-value of a window's observed defaults under its predicted probabilities
    (lib/monitoring/performance.calibration_band): below a level, the observed count is outside
    the band of confidence 1 - level, so data_science is also the recorded band's 1 - confidence."""

    checks = (
        *Metric.checks,
        Check(
            "direction",
            lambda m: m.direction == "higher",
            "must be 'higher': a small p-value is the alarm",
        ),
        Check(
            "data_science",
            lambda m: 0 < m.data_science <= 0.5,
            "must be in (0, 0.5]: the recorded band's confidence, 1 - data_science, must lie "
            "in [0.5, 1)",
        ),
        Check(
            "business",
            lambda m: m.business > 0,
            "must be above 0: no p-value is below 0, so the threshold would never fire",
        ),
    )


class Performance(Section):
    roc_auc: RocAuc
    ks: Metric
    brier: Metric
    calibration_p_value: CalibrationPValue
    pr_auc: Metric
    f1: Metric


class Levels(Section):
    watch: NonNegative
    shift: NonNegative

    checks = (
        Check(
            "shift",
            lambda s: s.watch < s.shift,
            "must be above watch ({watch}): shift is the more severe level",
        ),
    )


class Stability(Section):
    bins: Annotated[Count, within("[2, inf)", "one bin tells nothing apart")]
    min_bin_share: Annotated[Number, within("(0, 1)")]
    smoothing: NonNegative
    score_psi: Levels
    feature_csi: Levels
    missing_share: Levels


class PriorityActions(Section):
    business: Action
    data_science: Action
    degradation: Action | None = None


class EstimateActions(Section):
    business: Action
    data_science: Action


class Actions(Section):
    P0: PriorityActions
    P1: PriorityActions
    P2: PriorityActions
    estimate: EstimateActions
    shift: Action
    watch: Action


class AdverseImpactRatio(Section):
    min: Annotated[Number, within("(0, 1]", "a ratio of approval rates")]
    action: Action


AgeBand = tuple[Annotated[Count, within("[0, inf)")], Annotated[Count, within("[0, inf)")] | None]


def _bands_apart(bands: tuple[AgeBand, ...]) -> tuple[AgeBand, ...]:
    """Bands [low, high] inclusive, ascending and apart; only the last may be open (null)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for index, (low, high) in enumerate(bands):
        if high is not None and high < low:
            problems.append(
                ((index,), f"must be [low, high] with low <= high (got {_json([low, high])})")
            )
        if high is None and index < len(bands) - 1:
            problems.append(
                (
                    (index,),
                    "only the last band may be open (high null): it overlaps the bands after it",
                )
            )
        if index:
            previous = bands[index - 1]
            if previous[1] is not None and low <= previous[1]:
                problems.append(
                    (
                        (index,),
                        f"must start above the band before it, {_json(list(previous))}: bands are "
                        f"ascending and must not overlap (got {_json([low, high])})",
                    )
                )
    if problems:
        raise Broken(problems)
    return bands


class JudgedWindow(Section):
    max_months: Annotated[Count, within("[1, inf)")]


class Alternatives(Section):
    top_proxies: Annotated[Count, within("[0, inf)")]
    min_eta_squared: Annotated[Number, within("[0, 1]", "a share of age's variance")]
    families: list[StrictStr]


class Fairness(Section):
    age_bands: Annotated[tuple[AgeBand, ...], AfterValidator(_bands_apart)]
    min_band_loans: Annotated[Count, within("[1, inf)")]
    evaluate_on: StrictStr
    judged_window: JudgedWindow
    adverse_impact_ratio: AdverseImpactRatio
    alternatives: Alternatives

    checks = (Check("age_bands", lambda f: len(f.age_bands) >= 1, "must hold at least one band"),)


def _windows(rolling_months: int) -> tuple[str, str]:
    """The windows the monitoring tables hold (monitoring_tables, fairness): `window` values."""
    return "month", f"rolling_{rolling_months}m"


# The fairness table's third window: per month, the shortest one that judges every age band
# (monitoring.fairness.judged_window; lib/monitoring/fairness.py, window_lengths).
ADAPTIVE_WINDOW = "adaptive"


class Monitoring(Section):
    evaluate_on: StrictStr
    rolling_months: Annotated[Count, within("[1, inf)")]
    performance: Performance
    stability: Stability
    actions: Actions
    score_shift_retrains: StrictBool
    fairness: Fairness

    checks = (
        Check(
            "evaluate_on",
            lambda m: m.evaluate_on in _windows(m.rolling_months),
            'must be "month" or "rolling_{rolling_months}m": the windows the monitoring tables '
            "hold (rolling_months is {rolling_months})",
        ),
        Check(
            "fairness.evaluate_on",
            lambda m: m.fairness.evaluate_on in (*_windows(m.rolling_months), ADAPTIVE_WINDOW),
            'must be "month" or "rolling_{rolling_months}m" (monitoring.rolling_months is '
            '{rolling_months}), or "adaptive": the windows the fairness table holds',
        ),
        Check(
            "actions",
            lambda m: (
                m.performance.roc_auc.max_degradation_from_oot is None
                or getattr(m.actions, m.performance.roc_auc.priority).degradation is not None
            ),
            "must give roc_auc's priority a 'degradation' action: roc_auc sets "
            "max_degradation_from_oot",
        ),
    )


# --- promotion, model_inputs, the file -------------------------------------------------------


class Promotion(Section):
    """The champion/challenger gate (lib/models/promotion); add a key here to add it to the file."""

    margin: Annotated[
        Number, within("[0, inf)", "a negative margin would promote a worse challenger")
    ]
    confidence: Annotated[
        Number, within("(0.5, 1)", "a one-sided confidence of 0.5 or less is no evidence")
    ]
    lookback_months: Annotated[Count, within("[1, inf)")]
    max_decisions: Annotated[Count, within("[1, inf)")]


class ModelInputs(Section):
    protected_attributes: list[StrictStr]
    protected_inputs_allowed: list[StrictStr]

    checks = (
        Check(
            "protected_inputs_allowed",
            lambda s: set(s.protected_inputs_allowed) <= set(s.protected_attributes),
            "must list only protected_attributes ({protected_attributes}): another name allows "
            "nothing and hides a typo",
        ),
    )


class Thresholds(Section):
    version: Annotated[
        StrictStr,
        rule(lambda v: re.fullmatch(r"\d+\.\d+\.\d+", v) is not None, "must be MAJOR.MINOR.PATCH"),
    ]
    data_quality: DataQuality
    monitoring: Monitoring
    promotion: Promotion
    model_inputs: ModelInputs


# --- validation ------------------------------------------------------------------------------

_TYPE_WORDS = {
    "float_type": "a number",
    "int_type": "a whole number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean (booleans are not numbers)"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _dotted(loc: tuple[str | int, ...]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return text.lstrip(".") or "(the whole file)"


def _problems(error: ValidationError) -> list[str]:
    """One line per broken rule: the dotted key, then the rule in plain words."""
    lines = []
    for e in error.errors():
        loc, kind, given = tuple(e["loc"]), e["type"], e.get("input")
        cause = e.get("ctx", {}).get("error")
        if isinstance(cause, Broken):
            lines += [f"{_dotted(loc + key)}: {text}" for key, text in cause.problems]
            continue
        if kind == "missing" and loc and isinstance(loc[-1], int):
            text = "missing item: must be a pair [low, high]"
        elif kind == "missing":
            text = "missing key: the schema requires it"
        elif kind == "extra_forbidden":
            text = "unknown key: not in the schema (a typo, or a key nothing reads)"
        elif kind in _TYPE_WORDS:
            shown = "" if isinstance(given, dict | list | tuple) else f" {_json(given)}"
            text = f"wrong type: must be {_TYPE_WORDS[kind]}, got {_kind(given)}{shown}"
        elif kind == "literal_error":
            text = f"must be {e['ctx']['expected']} (got {_json(given)})"
        else:
            text = f"{e['msg']} (got {_json(given)})"
        lines.append(f"{_dotted(loc)}: {text}")
    return lines


def _without_documentation(value: Any) -> Any:
    """The value without keys beginning with "_", at any depth."""
    if isinstance(value, dict):
        return {
            k: _without_documentation(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_"))
        }
    if isinstance(value, list):
        return [_without_documentation(v) for v in value]
    return value


def validate_thresholds(data: Mapping, source: str = "thresholds") -> Thresholds:
    """The file's contents as typed, validated values; ThresholdsError lists every problem."""
    try:
        return Thresholds.model_validate(_without_documentation(data))
    except ValidationError as error:
        raise ThresholdsError(source, _problems(error)) from None


@cache
def load_thresholds(path: Path = THRESHOLDS_PATH) -> dict:
    """The file as a dict, validated first so no reader sees a threshold that says nonsense."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ThresholdsError(str(path), [f"not valid JSON: {error}"]) from None
    validate_thresholds(data, str(path))
    return data
