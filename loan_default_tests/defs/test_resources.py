"""The warehouse resource bounds every pipeline connection's DuckDB memory."""

from loan_default import settings
from loan_default.defs.resources import warehouse_resource


def test_warehouse_connections_carry_the_memory_cap(tmp_path):
    resource = warehouse_resource(tmp_path / "warehouse.duckdb")
    with resource.connect() as connection:
        limit = connection.execute("select current_setting('memory_limit')").fetchone()[0]
    assert settings.DUCKDB_MEMORY == "3GB"
    assert limit == "2.7 GiB"  # DuckDB states 3 GB (10^9 bytes) in GiB
