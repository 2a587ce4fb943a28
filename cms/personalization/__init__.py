"""Stations, personalization jobs and the server-side personalization session (DESIGN.md §5)."""
