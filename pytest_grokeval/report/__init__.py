"""Reporting: the terminal (header, progress, summary) and files (JSON, HTML, JUnit)."""
