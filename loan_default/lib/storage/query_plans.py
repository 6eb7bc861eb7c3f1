"""Running polars queries at the cost their input size warrants.

The scoring API cleans and featurizes frames of one application. On so few rows a query's fixed
costs are most of its time, and three of them can be skipped with the same results:
- the optimizer's passes over a plan of hundreds of expressions;
- the streaming engine's start-up (polars' default engine for a lazy query);
- handing every multi-expression projection to polars' thread pool. Each hand-off wakes a pool
  thread and puts the caller to sleep until it is done: about 0.1 ms on a 2-core VM, against a
  few microseconds to evaluate the expressions in place.
The pipeline's months keep all three: there they pay for themselves.
"""

from __future__ import annotations

from typing import Any

import polars as pl

# Below this many input rows a query runs faster in place and unoptimized (measured on one-row
# requests: cleaning and features take about 12% less time without the optimizer alone).
SMALL_INPUT_ROWS = 10_000


def is_small(rows: int) -> bool:
    return rows < SMALL_INPUT_ROWS


def collect(query: pl.LazyFrame, rows: int) -> pl.DataFrame:
    """`query` collected: in memory and unoptimized when its input (`rows`) is small."""
    if is_small(rows):
        return query.collect(engine="in-memory", optimizations=pl.QueryOptFlags.none())
    return query.collect()


def select(frame: pl.DataFrame, *exprs: Any, **named_exprs: Any) -> pl.DataFrame:
    """`frame.select(...)`, evaluated in the calling thread when `frame` is small."""
    if is_small(frame.height):
        return frame.select_seq(*exprs, **named_exprs)
    return frame.select(*exprs, **named_exprs)


def with_columns(frame: pl.DataFrame, *exprs: Any, **named_exprs: Any) -> pl.DataFrame:
    """`frame.with_columns(...)`, evaluated in the calling thread when `frame` is small."""
    if is_small(frame.height):
        return frame.with_columns_seq(*exprs, **named_exprs)
    return frame.with_columns(*exprs, **named_exprs)


def sort(frame: pl.DataFrame, *by: Any) -> pl.DataFrame:
    """`frame.sort(*by)`; a frame of one row (a request's) as it is, without a sort's hand-offs."""
    return frame if frame.height < 2 else frame.sort(*by)
