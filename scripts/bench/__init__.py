"""Helpers of ``scripts/bench_ingest.py``: the baseline apps, pre-signed deliveries, the load generator."""
