"""Benchmarks behind `make bench` / `make bench-gpu`: measured against a reference in-process."""
