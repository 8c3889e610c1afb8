"""Benchmarks for referral_hub: run them with `make bench` (see bench/README.md)."""
