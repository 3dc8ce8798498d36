"""Collection: YAML suites with line numbers, their validation, items, the grok marker."""
