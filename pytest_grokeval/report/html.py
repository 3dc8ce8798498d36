"""--grok-html: one self-contained page (inline CSS, JS and SVG; nothing fetched) from a report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from html import escape
from importlib import resources
from typing import Any

from pytest_grokeval.data import Usage
from pytest_grokeval.jsonfile import dumps
from pytest_grokeval.messages import usd
from pytest_grokeval.report.charts import charts, ms

# Nothing may load from anywhere: a report opened from a CI artefact must not phone home.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
_CHANGE_LABELS = {"regressions": "regression", "fixes": "fixed", "new": "new", "changed": "changed"}
_COLUMNS = ("status", "case", "model", "samples", "latency", "tokens", "cost", "source")


def render_html(document: Mapping[str, Any]) -> str:
    """The whole page; every value from the report is escaped, the embedded JSON included."""
    summary = document["summary"]
    items = document["items"]
    comparison = document["baseline"]
    anchors = {item["id"]: f"case-{index}" for index, item in enumerate(items)}
    outcomes = summary["outcomes"]
    title = ", ".join(f"{n} {name}" for name, n in outcomes.items() if n) or "no items"
    assets = resources.files(__package__)
    return "\n".join([
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>grokeval report: {escape(title)}</title>",
        f"<style>\n{assets.joinpath('report.css').read_text(encoding='utf-8')}</style>",
        "</head>",
        "<body>",
        _header(document),
        _cards(summary),
        _baseline(comparison, anchors),
        charts(summary, items),
        _table(items, summary, comparison, anchors),
        '<script type="application/json" id="grokeval-report">'
        f"{_script_json(document)}</script>",
        f"<script>\n{assets.joinpath('report.js').read_text(encoding='utf-8')}</script>",
        "</body>",
        "</html>",
        "",
    ])


def _script_json(document: Mapping[str, Any]) -> str:
    # "<" as \u003c keeps "</script>" and "<!--" in any prompt from ending the script element;
    # JSON.parse reads the escapes back unchanged.
    text = dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _header(document: Mapping[str, Any]) -> str:
    return (
        "<header><h1>grokeval report</h1>"
        f'<p class="meta">{escape(document["created"])} &middot; '
        f'pytest-grokeval {escape(document["pytest_grokeval"])} &middot; '
        '<a id="download" download="grokeval-report.json" href="#">report JSON</a></p>'
        "</header>"
    )


def _cards(summary: Mapping[str, Any]) -> str:
    outcomes = summary["outcomes"]
    rate = summary["pass_rate"]
    ran = outcomes["passed"] + outcomes["failed"] + outcomes["error"]
    others = ", ".join(
        f"{outcomes[name]} {name}" for name in ("error", "skipped", "xfailed", "xpassed")
        if outcomes[name]
    )
    tokens = summary["tokens"]
    latency = summary["latency_ms"]
    cards = [
        ("pass rate", "-" if rate is None else f"{rate:.1%}",
         f"{outcomes['passed']} of {ran} passed" + (f"; {others}" if others else ""),
         "good" if rate == 1 else "bad" if rate is not None else ""),
        ("cost", _known(summary["cost_usd"], summary.get("cost_unknown"), _usd),
         f"{summary['replayed']} of {summary['responses']} responses replayed"
         + _unknown(summary.get("cost_unknown"), "of unknown cost"), ""),
        ("tokens", _known(tokens["total"], tokens.get("unknown"), "{:,}".format),
         f"{tokens['prompt']:,} in, {tokens['output']:,} out"
         + _unknown(tokens.get("unknown"), "without usage"), ""),
        ("latency p50", "unknown" if latency["p50"] is None and latency.get("unknown")
         else ms(latency["p50"]),
         f"p95 {ms(latency['p95'])}, max {ms(latency['max'])}"
         + _unknown(latency.get("unknown"), "of unknown latency"), ""),
    ]
    return '<section class="cards">' + "".join(
        f'<div class="card {tone}"><span class="label">{label}</span>'
        f'<span class="value">{escape(value)}</span><span class="sub">{escape(sub)}</span></div>'
        for label, value, sub, tone in cards
    ) + "</section>"


def _baseline(comparison: Mapping[str, Any] | None, anchors: Mapping[str, str]) -> str:
    if comparison is None:
        return ""
    groups = [
        ("regressions", "Regressions", "bad", "regression", "regressions"),
        ("fixes", "Fixes", "good", "fix", "fixes"),
        ("new", "New", "", "new", "new"),
        ("removed", "Removed or not run", "", "removed or not run", "removed or not run"),
        ("changed", "Changed responses", "", "changed response", "changed responses"),
    ]
    counts = "".join(
        f'<li class="{tone}"><b>{len(comparison[key])}</b> '
        f"{one if len(comparison[key]) == 1 else many}</li>"
        for key, _, tone, one, many in groups
    )
    lists = "".join(
        f'<div class="group {tone}"><h3>{label}</h3><ul>'
        + "".join(_baseline_entry(entry, anchors) for entry in comparison[key])
        + "</ul></div>"
        for key, label, tone, _, _ in groups if comparison[key]
    )
    return (
        '<section class="baseline"><h2>Compared with '
        f'<code>{escape(comparison["path"])}</code> <small>of {escape(comparison["created"])}'
        f'</small></h2><ul class="counts">{counts}</ul>{lists}</section>'
    )


def _baseline_entry(entry: Mapping[str, Any], anchors: Mapping[str, str]) -> str:
    before, after = entry["before"] or "absent", entry["after"] or "absent"
    name = escape(entry["id"])
    anchor = anchors.get(entry["id"])
    # Removed items have no row to jump to.
    link = name if anchor is None else f'<a class="goto" href="#{anchor}">{name}</a>'
    return f'<li>{link} <span class="muted">{escape(before)} &rarr; {escape(after)}</span></li>'


def _table(
    items: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    comparison: Mapping[str, Any] | None,
    anchors: Mapping[str, str],
) -> str:
    status_options = "".join(
        f'<option value="{name}">{name} ({n})</option>'
        for name, n in summary["outcomes"].items() if n
    )
    suite_options = "".join(
        f'<option value="{escape(s["suite"])}">{escape(s["suite"])} ({s["items"]})</option>'
        for s in summary["suites"]
    )
    change_filter = ""
    if comparison is not None:
        options = "".join(f'<option value="{v}">{v}</option>' for v in _CHANGE_LABELS.values())
        change_filter = (f'<label>Baseline <select id="f-change"><option value="">any</option>'
                         f"{options}</select></label>")
    head = "".join(f"<th>{name}</th>" for name in _COLUMNS)
    changes = _changes_by_id(comparison)
    previous = _previous_by_id(comparison)
    bodies = "".join(
        _case(item, anchors[item["id"]], changes.get(item["id"], []), previous.get(item["id"], {}))
        for item in items
    )
    return (
        '<section class="cases"><form class="filters" id="filters" onsubmit="return false">'
        f'<label>Status <select id="f-status"><option value="">all ({len(items)})</option>'
        f"{status_options}</select></label>"
        f'<label>Suite <select id="f-suite"><option value="">all</option>{suite_options}'
        f"</select></label>{change_filter}"
        '<label class="grow">Search <input id="f-text" type="search" '
        'placeholder="id, prompt or response text"></label>'
        f'<span id="shown">{len(items)} of {len(items)} cases</span></form>'
        f'<table id="cases"><thead><tr>{head}</tr></thead>{bodies}</table>'
        '<p id="empty" class="muted" hidden>No case matches these filters.</p></section>'
    )


def _case(
    item: Mapping[str, Any], anchor: str, changes: Sequence[str], previous: Mapping[int, str]
) -> str:
    outcome = item["outcome"]
    tags = "".join(f' <span class="tag {c}">{c}</span>' for c in changes)
    samples = item["samples"]
    counted = f'{item["samples_passed"]}/{len(samples)}' if samples else "-"
    tokens = item["tokens"]["total"] if item["tokens"] is not None else None
    cost, latency = item["cost_usd"], item["latency_ms"]
    source = {True: "replayed", False: "live", None: "-"}[item["replayed"]]
    answered = item["replayed"] is not None  # some sample got a response
    cells = [
        f'<span class="badge {outcome}">{outcome}</span>{tags}',
        f'<span class="name">{escape(item["name"])}</span>'
        f'<span class="where">{escape(item["suite"])}:{item["line"]}</span>{_headline(item)}',
        escape(item["model"] or "-"),
        counted,
        "-" if not answered else "unknown" if latency is None else ms(latency),
        "-" if not answered else "unknown" if tokens is None else f"{tokens:,}",
        "-" if not answered else "unknown" if cost is None else _usd(cost),
        source,
    ]
    row = "".join(f"<td>{cell}</td>" for cell in cells)
    # Failures start open, so that the page shows what went wrong without a click.
    is_open = outcome in ("failed", "error")
    return (
        f'<tbody class="case" id="{anchor}" data-id="{escape(item["id"])}" '
        f'data-status="{outcome}" data-suite="{escape(item["suite"])}" '
        f'data-change="{" ".join(changes)}">'
        f'<tr class="row" tabindex="0" aria-expanded="{str(is_open).lower()}">{row}</tr>'
        f'<tr class="detail"{"" if is_open else " hidden"}><td colspan="{len(_COLUMNS)}">'
        f"{_detail(item, previous)}</td></tr></tbody>"
    )


def _headline(item: Mapping[str, Any]) -> str:
    """The first line of the failure or the skip reason, readable with the row closed."""
    if not item["message"] or item["outcome"] == "passed":
        return ""
    first = item["message"].strip().splitlines()[0]
    return f'<span class="headline {item["outcome"]}">{escape(first[:200])}</span>'


def _detail(item: Mapping[str, Any], previous: Mapping[int, str]) -> str:
    parts = []
    if item["message"]:
        label = {"skipped": "skipped", "xfailed": "xfail reason", "xpassed": "xfail reason"}
        title = label.get(item["outcome"], "pytest's failure message")
        parts.append(f'<details class="message"{" open" if not item["samples"] else ""}>'
                     f"<summary>{title}</summary><pre>{escape(item['message'])}</pre></details>")
    samples = item["samples"]
    if samples:
        parts.append('<div class="pair"><div class="prompt">'
                     f"{_request(samples[0]['request'])}</div><div class=\"answers\">")
        parts += [_sample(s, len(samples), previous) for s in samples]
        parts.append("</div></div>")
    return "".join(parts)


def _request(request: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in request["params"].items())
    head = f"prompt &middot; {escape(request['model'])}" + (
        f" &middot; {escape(params)}" if params else ""
    )
    messages = "".join(
        f'<div class="msg"><span class="role">{escape(str(m.get("role", "?")))}</span>'
        f"<pre>{escape(_content(m.get('content')))}</pre></div>"
        for m in request["messages"]
    )
    return f"<h4>{head}</h4>{messages}"


def _content(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, indent=2)


def _sample(sample: Mapping[str, Any], count: int, previous: Mapping[int, str]) -> str:
    number = f"sample {sample['sample'] + 1} of {count} &middot; " if count > 1 else ""
    if "error" in sample:
        error = sample["error"]
        status = f" {error['status']}" if error["status"] is not None else ""
        return (f'<div class="sample failed"><h4>{number}no response ({escape(error["kind"])}'
                f'{status})</h4><pre class="error">{escape(error["message"])}</pre></div>')
    r = sample["response"]
    verdict = "passed" if sample["passed"] else "failed"
    usage = Usage.from_json(r["usage"])
    counted = "tokens unknown" if usage is None else (
        f"{usage.prompt_tokens:,} in + {usage.output_tokens:,} out tokens")
    latency = "latency unknown" if r["latency_ms"] is None else ms(r["latency_ms"])
    facts = [escape(r["model"]), latency, counted]
    facts.append("cost unknown" if r["cost_usd"] is None else _usd(r["cost_usd"]))
    facts += [f"finish {escape(str(r['finish_reason']))}", "replayed" if r["replayed"] else "live"]
    old = previous.get(sample["sample"])
    was = "" if old is None else (
        f'<details class="previous"><summary>baseline response</summary>'
        f"<pre>{escape(old)}</pre></details>"
    )
    checks = "".join(
        ('<tr class="ok"><td>&#10003;' if c["passed"] else '<tr class="fail"><td>&#10007;')
        + f'</td><th>{escape(c["name"])}</th><td>{escape(c["expected"])}</td>'
        f'<td>{escape(c["got"])}</td></tr>'
        for c in sample["checks"]
    )
    return (
        f'<div class="sample {verdict}"><h4>{number}response &middot; {" &middot; ".join(facts)}'
        f'</h4><pre class="text">{escape(r["text"])}</pre>{was}'
        f'<table class="checks"><thead><tr><th></th><th>check</th><th>expected</th>'
        f"<th>got</th></tr></thead>{checks}</table></div>"
    )


def _changes_by_id(comparison: Mapping[str, Any] | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, label in _CHANGE_LABELS.items():
        for entry in (comparison or {}).get(key, []):
            found.setdefault(entry["id"], []).append(label)
    return found


def _previous_by_id(comparison: Mapping[str, Any] | None) -> dict[str, dict[int, str]]:
    """The baseline's text of each changed response, by item id and sample."""
    return {
        entry["id"]: {s["sample"]: s["previous"] for s in entry["samples"]}
        for entry in (comparison or {}).get("changed", [])
    }


def _known(total: float, unknown: int | None, shown: Callable[[Any], str]) -> str:
    # A sum of nothing known is no zero: every response of the run left it unknown.
    return "unknown" if unknown and not total else shown(total)


def _unknown(count: int | None, what: str) -> str:
    # Sums leave out what is unknown: say how many, so they are not read as the whole.
    return f"; {count} {'response' if count == 1 else 'responses'} {what}" if count else ""


def _usd(value: float) -> str:
    # Four decimals hide the cost of a single short prompt; six are noise above a cent.
    return usd(value, 4) if value >= 0.01 else usd(value)
