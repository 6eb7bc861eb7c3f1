"""Month arithmetic on first-of-month dates."""

from __future__ import annotations

from datetime import date


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_range(start: date, end_exclusive: date) -> list[date]:
    """First-of-month dates from start up to, not including, end_exclusive."""
    months, current = [], date(start.year, start.month, 1)
    while current < end_exclusive:
        months.append(current)
        current = add_months(current, 1)
    return months
