"""Recordings: per-suite files of responses, replayed in CI without a key."""
