"""Custom checks for test_order_extraction.yaml, referenced as `python: order_checks:<name>`."""

from __future__ import annotations

import json

from pytest_grokeval import Completion


def _order(response: Completion) -> dict[str, object]:
    body = response.text.strip().removeprefix("```json").removesuffix("```").strip()
    return dict(json.loads(body))


def quantity_is_positive(response: Completion) -> bool:
    quantity = _order(response)["quantity"]
    return isinstance(quantity, int) and quantity > 0


def sku_is_uppercase(response: Completion) -> str | None:
    sku = str(_order(response)["sku"])
    return None if sku.isupper() else f"sku {sku!r} is not upper-case"
