"""The size-dependent ways of running a query give polars' own results on either side of the
threshold."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from loan_default.lib.storage import query_plans
from loan_default.lib.storage.query_plans import SMALL_INPUT_ROWS

SIZES = [1, SMALL_INPUT_ROWS - 1, SMALL_INPUT_ROWS]


def frame_of(rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": range(rows),
            "amount": [None if i % 7 == 0 else i * 1.5 for i in range(rows)],
            "text": [f"_{i}_" for i in range(rows)],
        }
    )


EXPRESSIONS = (
    pl.col("text").str.strip_chars("_").cast(pl.Int64).alias("parsed"),
    (pl.col("amount") * 2).alias("doubled"),
)


def test_size_threshold():
    assert query_plans.is_small(SMALL_INPUT_ROWS - 1)
    assert not query_plans.is_small(SMALL_INPUT_ROWS)


@pytest.mark.parametrize("rows", SIZES)
def test_select_and_with_columns_match_polars(rows: int):
    frame = frame_of(rows)
    assert_frame_equal(
        query_plans.select(frame, "id", *EXPRESSIONS, missing=pl.col("amount").is_null()),
        frame.select("id", *EXPRESSIONS, missing=pl.col("amount").is_null()),
    )
    assert_frame_equal(
        query_plans.with_columns(frame, EXPRESSIONS, count=pl.len()),
        frame.with_columns(EXPRESSIONS, count=pl.len()),
    )


@pytest.mark.parametrize("rows", SIZES)
def test_collect_matches_polars(rows: int):
    query = (
        frame_of(rows)
        .lazy()
        .with_columns_seq(*EXPRESSIONS)
        .filter(pl.col("parsed") % 2 == 0)
        .group_by(pl.col("parsed") % 10)
        .agg(pl.col("doubled").sum(), pl.len())
        .sort("parsed")
    )
    expected = query.collect()
    assert expected.height == min(rows, 5)
    assert_frame_equal(query_plans.collect(query, rows), expected)


@pytest.mark.parametrize("rows", [0, 1, 2, 50])
def test_sort_matches_polars(rows: int):
    frame = frame_of(rows).reverse()
    by = (pl.col("amount").is_null(), pl.col("id") % 3, "text")
    assert_frame_equal(query_plans.sort(frame, *by), frame.sort(*by))
