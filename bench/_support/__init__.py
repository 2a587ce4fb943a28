"""Helpers for the benchmarks (not benchmarks themselves: ``make bench`` runs only bench/*.py)."""
