"""How far back a feature row looks into the clickstream: the clickstream lookback.

Its own module, free of polars, so that settings can declare the platform's one lookback
(`settings.CLICKSTREAM_LOOKBACK`, read by the feature store and the API alike) without loading
a library before the server caps its threads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClickstreamLookback:
    """Months of clickstream averaged into a feature row, both spans ending at the application
    month T (T - months + 1 .. T).

    The short span is the team's six-month average; the long one averages all history it
    covers, which steadies these noisy monthly signals further.
    """

    months: int = 6
    long_months: int = 24

    def __post_init__(self) -> None:
        if not 1 <= self.months <= self.long_months:
            raise ValueError(f"need 1 <= months <= long_months, got {self}")
