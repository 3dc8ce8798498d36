"""The prefetch: one run's jobs, per-item sample flows, judge calls, recordings."""
