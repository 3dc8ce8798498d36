"""The checks: one registry read by collection, items, expect() and the docs."""
