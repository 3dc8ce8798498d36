"""The request engine: error classification, rate budgets, pricing, sending."""
