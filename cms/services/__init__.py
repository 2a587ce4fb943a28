"""Writes of the registry: each service locks its rows, re-reads, audits in its transaction."""
