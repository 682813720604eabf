"""Storage: the Parquet lake (local disk or object store), the DuckDB warehouse, the run log, crash points."""
