"""This run against an earlier report: regressions, fixes, new and removed cases, new answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_grokeval.messages import plural

PASSING = frozenset({"passed", "xpassed"})
FAILING = frozenset({"failed", "error"})
CATEGORIES = ("regressions", "fixes", "new", "removed", "changed")
# Regressions and fixes are always listed in full; the rest can run to hundreds after a big
# suite change, so the terminal shows this many of each unless -v.
SHORT_LIST = 20


def compare(
    baseline: Mapping[str, Any], items: Sequence[Mapping[str, Any]], path: str
) -> dict[str, Any]:
    """The report's "baseline" section: every item that differs from the baseline, by kind."""
    before = {item["id"]: item for item in baseline["items"]}
    now = {item["id"] for item in items}
    found: dict[str, list[dict[str, Any]]] = {key: [] for key in CATEGORIES}
    for item in items:
        old = before.get(item["id"])
        if old is None:
            found["new"].append(_change(item["id"], None, item["outcome"]))
            continue
        change = _change(item["id"], old["outcome"], item["outcome"])
        if old["outcome"] in PASSING and item["outcome"] in FAILING:
            found["regressions"].append(change)
        elif old["outcome"] in FAILING and item["outcome"] in PASSING:
            found["fixes"].append(change)
        previous = _changed_samples(old, item)
        if previous:
            found["changed"].append({**change, "samples": previous})
    found["removed"] = [
        _change(item["id"], item["outcome"], None) for item in baseline["items"]
        if item["id"] not in now
    ]
    return {"path": path, "created": baseline["created"], **found}


def _change(item_id: str, before: str | None, after: str | None) -> dict[str, Any]:
    return {"id": item_id, "before": before, "after": after}


def _changed_samples(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Samples answered in both runs whose text differs, with the old text."""
    was = _texts(old)
    return [
        {"sample": sample, "previous": was[sample]}
        for sample, text in _texts(new).items()
        if sample in was and was[sample] != text
    ]


def _texts(item: Mapping[str, Any]) -> dict[int, str]:
    return {s["sample"]: s["response"]["text"] for s in item["samples"] if "response" in s}


def summary_lines(comparison: Mapping[str, Any], *, verbose: bool) -> list[str]:
    """The terminal block: one line of counts, then each differing item by kind."""
    counts = ", ".join([
        plural(len(comparison["regressions"]), "regression"),
        plural(len(comparison["fixes"]), "fix", "fixes"),
        f"{len(comparison['new'])} new",
        f"{len(comparison['removed'])} removed or not run",
        plural(len(comparison["changed"]), "changed response"),
    ])
    lines = [f"compared with {comparison['path']} of {comparison['created']}: {counts}"]
    for key, label in (
        ("regressions", "regressed"), ("fixes", "fixed"), ("new", "new"),
        ("removed", "removed"), ("changed", "changed response"),
    ):
        entries = comparison[key]
        shown = entries if verbose or key in ("regressions", "fixes") else entries[:SHORT_LIST]
        lines += [f"  {label}: {entry['id']} ({_describe(key, entry)})" for entry in shown]
        if len(shown) < len(entries):
            lines.append(f"  ... and {len(entries) - len(shown)} more {label} (-v lists all)")
    return lines


def _describe(key: str, entry: Mapping[str, Any]) -> str:
    if key == "new":
        return str(entry["after"])
    if key == "removed":
        return f"was {entry['before']}"
    if key == "changed":
        samples = [str(s["sample"]) for s in entry["samples"]]
        return f"{'sample' if len(samples) == 1 else 'samples'} {', '.join(samples)}"
    return f"{entry['before']} -> {entry['after']}"
