"""Ingest benchmarks: the API's throughput next to raw Postgres ceilings (`make bench`)."""
