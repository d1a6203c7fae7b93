"""The leaderboard's static web site: an index of tasks, a sortable and filterable table of
entries per task, a page per benchmark of the task's test set, and plots.

``data`` is the plain JSON-like record the leaderboard store exports (``generated``,
``optgym_version`` and a list of ``tasks``, each with its ``entries``). Every string in it is
treated as hostile: text is HTML-escaped, only ``http(s)`` URLs become links, names used in
file names become a slug plus a hash, and the pages run only the one script written here
(a Content-Security-Policy allows that script by its hash and nothing else).

>>> from pathlib import Path
>>> from optgym.leaderboard.site import build_site
>>> data = {"generated": "2026-11-29T00:10:00Z", "optgym_version": "0.1.0", "tasks": [
...     {"name": "path-planning", "problem": "path-planning", "score_name": "plan reward",
...      "aggregate": "mean", "budget": "calls=2000", "hardware_dependent": False,
...      "benchmarks": ["benchmark://nav2d-v0/maze-3"], "reference": None, "entries": []}]}
>>> [p.name for p in build_site(data, Path("public"))][:3]  # then open public/index.html
['style.css', 'index.html', 'task-path-planning-9dda02340182.html']

Files written into ``out``: ``index.html``, ``style.css``, and per task ``task-<slug>.html``,
``plot-<slug>.png`` (each entry's score with its 95% interval), ``benchmarks-<slug>.png``
(each entry's scores per benchmark: every seed's and their mean) and
``bench-<task-slug>-<bench-slug>.html`` per benchmark. A task without entries gets its page
and benchmark pages but no plots.

An entry's score is shown once per page, as the store computed it (``score``): the table and
the score plot show that number, and the per-benchmark plot shows no aggregate of its own.
Entries are shown pool by pool (``pool``, ``pool_label``: a track and round, a status, a
hardware class where it matters), since a rank holds only within its pool.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: The columns every entry table opens with, naming the entry: (key, header, numeric).
_ENTRY_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("rank", "rank", True),
    ("pool", "ranked among", False),
    ("name", "name", False),
    ("agent", "agent", False),
)

#: The entries table's columns: (key, header, numeric). The key names the column for the
#: script and tests (``data-column``); numeric columns sort by their cells' ``data-value``.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    *_ENTRY_COLUMNS,
    ("hardware", "hardware class", False),
    ("version", "OptGym version", False),
    ("score", "score", True),
    ("interval", "95% interval", True),
    ("test-set", "benchmarks x seeds", True),
    ("vs-above", "vs above (paired 95%)", True),
    ("badges", "badges", False),
    ("status", "status", False),
    ("replay", "replay command", False),
)

#: The selects that filter the entries table: (element id, entry field, label). A row carries
#: the field's value as ``data-<element id>``, which the script compares with the selection.
FILTERS: tuple[tuple[str, str, str], ...] = (
    ("track", "track", "track"),
    ("hardware", "hardware_class", "hardware class"),
    ("version", "optgym_version", "version"),
)

_SLUG_CHARS = 40  # readable part of a slug; the hash keeps it unique
_HASH_CHARS = 12
_LABEL_CHARS = 40  # plot labels are clipped to this
_NUM_CLASS = ' class="num"'

# Sorting by any table.sortable header (numeric columns by data-value, missing values last in
# both directions), and filtering the entries table by text and by its selects.
_SCRIPT = """
(function () {
  "use strict";
  function key(row, col, numeric) {
    var cell = row.cells[col];
    if (!cell) { return null; }
    var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
    if (!numeric) { return raw.toLowerCase(); }
    var n = parseFloat(raw);
    return isNaN(n) ? null : n;
  }
  function sortBy(table, th) {
    var col = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "number";
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir);
    var sign = dir === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col, numeric), y = key(b, col, numeric);
      if (x === y) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * sign;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
      });
    });
  });
  var table = document.getElementById("entries");
  if (!table) { return; }
  var text = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var selects = [["track", "data-track"], ["hardware", "data-hardware"],
                 ["version", "data-version"]].map(function (pair) {
    return {el: document.getElementById(pair[0]), attr: pair[1]};
  }).filter(function (s) { return s.el !== null; });
  function apply() {
    var needle = text ? text.value.trim().toLowerCase() : "";
    var rows = table.tBodies[0].rows, count = 0;
    Array.prototype.forEach.call(rows, function (row) {
      var ok = (!needle || row.textContent.toLowerCase().indexOf(needle) !== -1) &&
        selects.every(function (s) {
          return s.el.selectedIndex <= 0 || row.getAttribute(s.attr) === s.el.value;
        });
      row.hidden = !ok;
      if (ok) { count += 1; }
    });
    if (shown) { shown.textContent = count + " of " + rows.length + " entries shown"; }
  }
  if (text) { text.addEventListener("input", apply); }
  selects.forEach(function (s) { s.el.addEventListener("change", apply); });
  apply();
})();
"""

_CSS = """\
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1400px; margin: 0 auto; padding: 0 1rem 2rem; }
header.site { padding: .6rem 0; border-bottom: 1px solid #ddd; margin-bottom: 1rem; }
header.site a { font-weight: 600; color: #234; text-decoration: none; }
footer { margin-top: 2rem; color: #777; font-size: 12px; }
h1 { font-size: 1.4rem; margin: .4rem 0; word-break: break-word; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0; }
dl.meta dt { color: #666; }
dl.meta dd { margin: 0; word-break: break-word; }
.note { background: #eef4ff; border-left: 3px solid #4a7bd0; padding: .3rem .6rem; }
.empty { color: #777; font-style: italic; }
img.plot { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
.filters { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; margin: .8rem 0; }
.filters input { width: 16rem; }
#shown { color: #666; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #e6e6e6; text-align: left;
         vertical-align: top; }
thead th { background: #f3f3f3; white-space: nowrap; position: sticky; top: 0; }
table.sortable thead th { cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 9px; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 9px; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.group-start td { border-top: 2px solid #999; }
tr.stale td { background: #fff7e8; color: #777; }
.badge { display: inline-block; padding: 0 .45em; margin: 0 .2em .15em 0; border-radius: .7em;
         background: #e2f1e2; color: #1d5e1d; font-size: 11px; white-space: nowrap; }
.status-verified { color: #1d5e1d; }
.status-stale { color: #9a4a00; font-weight: 600; white-space: nowrap; }
small { color: #666; }
code { font-size: 11px; background: #f4f4f4; padding: 0 .2em; word-break: break-all; }
ul.benchmarks { columns: 2 22rem; padding-left: 1.2rem; }
[hidden] { display: none !important; }
"""


# -- shared helpers: text, links, slugs, numbers ----------------------------------------------


def _esc(value: Any) -> str:
    """``value`` as text that is safe in HTML content and in quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def _safe_url(url: Any) -> str | None:
    """``url`` when it is an absolute ``http(s)`` URL with a host and no whitespace or
    control characters (which browsers strip, hiding a scheme); else None."""
    if not isinstance(url, str) or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _link(url: Any, text: Any) -> str:
    """An ``<a>`` to ``url`` showing ``text`` when the URL is http(s); otherwise the text
    alone (escaped)."""
    safe = _safe_url(url)
    if safe is None:
        return _esc(text)
    return f'<a href="{_esc(safe)}" rel="noopener noreferrer nofollow">{_esc(text)}</a>'


def _slug(text: Any) -> str:
    """A file-name-safe slug: lowercase ASCII letters, digits and dashes from ``text``, then a
    hash of the whole text, so texts that read alike (``a/b``, ``a-b``) still differ."""
    raw = "" if text is None else str(text)
    readable = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{readable or 'x'}-{digest}"


def _slugs(names: list[str], what: str) -> dict[str, str]:
    """Each distinct name's slug; ``ValueError`` if two names share one (a hash collision)."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in names:
        slug = _slug(name)
        if slug in seen and seen[slug] != name:
            raise ValueError(f"{what} {seen[slug]!r} and {name!r} have the same slug {slug!r}")
        seen[slug] = name
        out[name] = slug
    return out


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None for anything else (missing, nan, text, bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: Any, digits: int = 4) -> str:
    """A number for a cell: ints as they are, floats to ``digits`` places, else ``-``."""
    number = _number(value)
    if number is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{number:.{digits}f}"


def _value(value: Any) -> str:
    """A numeric cell's ``data-value``: the number, or empty (sorted last)."""
    number = _number(value)
    return "" if number is None else repr(number)


def _text(value: Any) -> str:
    """A string field as text; None becomes empty."""
    return "" if value is None else str(value)


def _clip(text: str, limit: int = _LABEL_CHARS) -> str:
    """``text`` as a plot label: control characters as spaces, lone surrogates as ``?``
    (matplotlib's font code refuses them), cut to ``limit`` characters with an ellipsis."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# -- pages ------------------------------------------------------------------------------------


def _csp() -> str:
    """The pages' Content-Security-Policy: no external resources, images and the style sheet
    from the site itself, and only :data:`_SCRIPT` (by its hash) may run."""
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    return (
        "default-src 'none'; img-src 'self' data:; style-src 'self'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _page(title: str, body: str, meta: dict[str, Any], script: bool = False) -> str:
    """A whole HTML page around ``body`` (already HTML), footed by the generation time and
    OptGym version; ``script`` adds the sorting and filtering script."""
    footer = (
        f"generated {_esc(meta.get('generated'))} \u00b7 OptGym {_esc(meta.get('optgym_version'))}"
    )
    tail = f"<script>{_SCRIPT}</script>\n" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{_esc(title)} \u00b7 OptGym leaderboard</title>\n"
        '<link rel="icon" href="data:,">\n<link rel="stylesheet" href="style.css">\n'
        '</head>\n<body>\n<header class="site"><a href="index.html">OptGym leaderboard</a>'
        f"</header>\n<main>\n{body}\n</main>\n<footer>{footer}</footer>\n{tail}</body>\n</html>\n"
    )


def _index_body(data: dict[str, Any], task_slugs: dict[str, str]) -> str:
    """The index: one row per task with its entry counts, linked to the task's page."""
    rows = []
    for task in data.get("tasks") or []:
        entries = task.get("entries") or []
        verified = sum(1 for e in entries if e.get("status") == "verified")
        name = _text(task.get("name"))
        rows.append(
            f'<tr><td><a href="task-{task_slugs[name]}.html">{_esc(name)}</a></td>'
            f"<td>{_esc(task.get('problem'))}</td><td>{_esc(task.get('score_name'))}</td>"
            f"<td>{_esc(task.get('budget'))}</td>"
            f'<td class="num" data-value="{len(entries)}">{len(entries)}</td>'
            f'<td class="num" data-value="{verified}">{verified}</td></tr>'
        )
    table = (
        '<table id="tasks"><thead><tr><th>task</th><th>problem</th><th>score</th>'
        '<th>budget</th><th class="num">entries</th><th class="num">verified</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="empty">There are no tasks yet.</p>'
    )
    return (
        f"<h1>Tasks</h1>\n<p>Generated {_esc(data.get('generated'))} with OptGym "
        f"{_esc(data.get('optgym_version'))}.</p>\n{table}"
    )


def _task_header(task: dict[str, Any], ranks_note: str) -> str:
    """The task's title, its facts (score, budget, aggregate, reference), how its ranks are
    made (``ranks_note``) and its hardware note."""
    reference = _reference(task)
    facts = [
        ("problem", _esc(task.get("problem"))),
        ("score", _esc(task.get("score_name"))),
        ("aggregate", _esc(task.get("aggregate"))),
        ("budget", _esc(task.get("budget"))),
        ("benchmarks", str(len(task.get("benchmarks") or []))),
    ]
    if reference is not None:
        label = f" ({_esc(reference[1])})" if reference[1] else ""
        facts.append(("reference", f"{_fmt(reference[0])}{label}"))
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    note = (
        '<p class="note">Scores depend on the hardware: entries are ranked within a hardware '
        "class (the rank column), grouped by class; filter by class below.</p>"
        if task.get("hardware_dependent")
        else ""
    )
    ranks = f'<p class="note">{_esc(ranks_note)}</p>' if ranks_note else ""
    return f'<h1>{_esc(task.get("name"))}</h1>\n<dl class="meta">{rows}</dl>\n{ranks}{note}'


def _pool(task: dict[str, Any], entry: dict[str, Any]) -> str:
    """The pool an entry is ranked in (the store's ``pool``; for data without one, its track
    and round, and its hardware class where ranks are per class)."""
    if entry.get("pool") is not None:
        return _text(entry.get("pool"))
    pool = _text(entry.get("track")) + (f"/{_text(entry['round'])}" if entry.get("round") else "")
    if task.get("hardware_dependent"):
        pool += f" @ {_text(entry.get('hardware_class'))}"
    return pool


def _pool_label(task: dict[str, Any], entry: dict[str, Any]) -> str:
    """The pool's words for a reader (the store's ``pool_label``, else its key)."""
    return _text(entry.get("pool_label")) or _pool(task, entry)


def _ordered(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's entries in display order: pool by pool, in the order the store gave them
    (the open track first), by rank within a pool."""
    entries = list(task.get("entries") or [])
    pools = list(dict.fromkeys(_pool(task, e) for e in entries))

    def rank(entry: dict[str, Any]) -> float:
        number = _number(entry.get("rank"))
        return math.inf if number is None else number

    return sorted(entries, key=lambda e: (pools.index(_pool(task, e)), rank(e)))


def _name_cell(entry: dict[str, Any]) -> str:
    """The entry's name (linked to its code when that is an http(s) URL; another code URL is
    shown as text), its authors and license."""
    url = _text(entry.get("code_url"))
    name = _link(url, _text(entry.get("name")))
    authors = ", ".join(_text(a) for a in entry.get("authors") or [])
    unlinked = f"code: {url}" if url and _safe_url(url) is None else ""
    extra = " \u00b7 ".join(x for x in (authors, _text(entry.get("license")), unlinked) if x)
    small = f"<br><small>{_esc(extra)}</small>" if extra else ""
    return f'<td data-value="{_esc(entry.get("name"))}">{name}{small}</td>'


def _status_cell(entry: dict[str, Any]) -> str:
    """The entry's status; stale entries are marked (the row is also shaded)."""
    status = _text(entry.get("status"))
    css = {"verified": "status-verified", "stale": "status-stale"}.get(status, "status-other")
    title = ' title="no longer reproduces on this OptGym version"' if status == "stale" else ""
    mark = "\u26a0 " if status == "stale" else ""
    return f'<td><span class="{css}"{title}>{mark}{_esc(status)}</span></td>'


def _interval(bounds: Any) -> tuple[str, str]:
    """A ``[low, high]`` cell's text and ``data-value`` (its low end), ``-`` when missing."""
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return "-", ""
    return f"[{_fmt(bounds[0])}, {_fmt(bounds[1])}]", _value(bounds[0])


def _test_set(entry: dict[str, Any]) -> str:
    """The entry's test set as benchmarks x seeds (the store's ``test_set``), else its
    episodes."""
    if entry.get("test_set"):
        return _text(entry.get("test_set"))
    return f"{_fmt(entry.get('episodes'))} episodes"


def _entry_row(entry: dict[str, Any], pool_label: str, group_start: bool) -> str:
    """One ``<tr>`` of the entries table, in the pool ``pool_label``."""
    classes = [c for c, on in (("stale", entry.get("status") == "stale"),
                               ("group-start", group_start)) if on]  # fmt: skip
    badges = "".join(f'<span class="badge">{_esc(b)}</span>' for b in entry.get("badges") or [])
    low, high = entry.get("low"), entry.get("high")
    hardware = _text(entry.get("hardware_class"))
    above, above_value = _interval(entry.get("vs_above"))
    cells = [
        f'<td class="num" data-value="{_value(entry.get("rank"))}">{_fmt(entry.get("rank"))}</td>',
        f"<td>{_esc(pool_label)}</td>",
        _name_cell(entry),
        f"<td>{_esc(entry.get('agent'))}</td>",
        f"<td>{_esc(hardware) if hardware else '<small>(none)</small>'}</td>",
        f"<td>{_esc(entry.get('optgym_version'))}</td>",
        f'<td class="num" data-value="{_value(entry.get("score"))}">'
        f"{_fmt(entry.get('score'))}</td>",
        f'<td class="num" data-value="{_value(low)}">[{_fmt(low)}, {_fmt(high)}]</td>',
        f'<td class="num" data-value="{_value(entry.get("episodes"))}">'
        f"{_esc(_test_set(entry))}</td>",
        f'<td class="num" data-value="{above_value}">{_esc(above)}</td>',
        f"<td>{badges}</td>",
        _status_cell(entry),
        f"<td><code>{_esc(entry.get('replay_command'))}</code></td>",
    ]
    return (
        f'<tr class="{" ".join(classes)}" data-id="{_esc(entry.get("id"))}" '
        f'data-track="{_esc(entry.get("track"))}" data-hardware="{_esc(hardware)}" '
        f'data-version="{_esc(entry.get("optgym_version"))}">{"".join(cells)}</tr>'
    )


def _head(columns: tuple[tuple[str, str, bool], ...]) -> str:
    """A sortable table's ``<thead>``; numeric columns are marked for the script."""
    cells = "".join(
        f'<th data-column="{key}" data-type="{"number" if numeric else "text"}" tabindex="0"'
        f"{_NUM_CLASS if numeric else ''}>{_esc(label)}</th>"
        for key, label, numeric in columns
    )
    return f"<thead><tr>{cells}</tr></thead>"


def _filters(entries: list[dict[str, Any]]) -> str:
    """The text box and the track, hardware-class and version selects above the table."""
    parts = [
        '<label>filter <input id="filter" type="search" placeholder="name, agent, author\u2026">'
        "</label>"
    ]
    for element, field, label in FILTERS:
        values = sorted({_text(e.get(field)) for e in entries})
        options = "".join(
            f'<option value="{_esc(v)}">{_esc(v) if v else "(none)"}</option>' for v in values
        )
        parts.append(
            f'<label>{label} <select id="{element}"><option value="">all</option>{options}'
            "</select></label>"
        )
    parts.append('<span id="shown"></span>')
    return f'<div class="filters">{"".join(parts)}</div>'


def _entries_table(task: dict[str, Any]) -> str:
    """The task's one entries table, one ``<tr>`` per entry, pool by pool (a line between
    pools), with its filters."""
    entries = _ordered(task)
    rows = []
    previous: str | None = None
    for entry in entries:
        pool = _pool(task, entry)
        start = previous is not None and pool != previous
        rows.append(_entry_row(entry, _pool_label(task, entry), start))
        previous = pool
    return (
        f'{_filters(entries)}\n<table id="entries" class="sortable">{_head(COLUMNS)}'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _task_body(
    task: dict[str, Any], slug: str, bench_slugs: dict[str, str], ranks_note: str
) -> str:
    """A task's page: header, plots and entries table (or a no-entries note), benchmarks."""
    parts = [_task_header(task, ranks_note)]
    if task.get("entries"):
        parts += [
            f'<img class="plot" src="plot-{slug}.png" alt="each entry\'s score with its 95% '
            'interval">',
            _entries_table(task),
            "<h2>Per benchmark</h2>",
            f'<img class="plot" src="benchmarks-{slug}.png" alt="each entry\'s scores per '
            'benchmark: every seed and the mean over seeds">',
        ]
        if task.get("after_the_fact"):
            parts.append(_after_the_fact(task["after_the_fact"]))
    else:
        parts.append('<p class="empty">There are no entries yet.</p>')
    links = "".join(
        f'<li><a href="bench-{slug}-{b}.html">{_esc(uri)}</a></li>'
        for uri, b in bench_slugs.items()
    )
    parts.append(f'<h2>Benchmarks</h2>\n<ul class="benchmarks">{links}</ul>')
    return "\n".join(parts)


def _after_the_fact(table: dict[str, Any]) -> str:
    """The problem's table over every entry's lines together (``board_table``): figures
    measured after the fact across entries, such as gaps to the best any entry found."""
    header = [_text(h) for h in table.get("header") or []]
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for row in table.get("rows") or []:
        cells = []
        for value in row:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                cells.append(f"<td{_NUM_CLASS}>{_fmt(value)}</td>")
            else:
                cells.append(f"<td>{_esc(_text(value)) if value is not None else 'n/a'}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        "<h2>Across entries, after the fact</h2>\n<p>Measured over every entry's episodes "
        "together: each gap is to the best objective any entry (or a reference) found on the "
        f'instance.</p>\n<table id="after-the-fact"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


_BENCH_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    *_ENTRY_COLUMNS,
    ("track", "track", False),
    ("hardware", "hardware class", False),
    ("score", "score (mean over seeds)", True),
    ("seeds", "seeds", True),
    ("per-seed", "per seed", False),
)


def _bench_row(entry: dict[str, Any], pool_label: str, uri: str) -> str:
    """One entry's scores on benchmark ``uri``: the mean over seeds and each seed's score."""
    score = (entry.get("per_benchmark") or {}).get(uri)
    mine = [r for r in entry.get("rows") or [] if isinstance(r, dict) and r.get("benchmark") == uri]
    seeds = ", ".join(f"{_esc(r.get('seed'))}: {_fmt(r.get('score'))}" for r in mine)
    stale = ' class="stale"' if entry.get("status") == "stale" else ""
    return (
        f'<tr{stale}><td class="num" data-value="{_value(entry.get("rank"))}">'
        f"{_fmt(entry.get('rank'))}</td><td>{_esc(pool_label)}</td>{_name_cell(entry)}"
        f"<td>{_esc(entry.get('agent'))}</td>"
        f"<td>{_esc(entry.get('track'))}</td><td>{_esc(entry.get('hardware_class'))}</td>"
        f'<td class="num" data-value="{_value(score)}">{_fmt(score)}</td>'
        f'<td class="num" data-value="{len(mine)}">{len(mine)}</td><td>{seeds}</td></tr>'
    )


def _bench_body(task: dict[str, Any], task_slug: str, uri: str) -> str:
    """A benchmark's page: every entry's score on it, linked back to the task."""
    entries = _ordered(task)
    back = f'<p>Task <a href="task-{task_slug}.html">{_esc(task.get("name"))}</a>; score: '
    back += f"{_esc(task.get('score_name'))}</p>"
    if not entries:
        return f'<h1>{_esc(uri)}</h1>\n{back}\n<p class="empty">There are no entries yet.</p>'
    rows = "".join(_bench_row(e, _pool_label(task, e), uri) for e in entries)
    table = (
        f'<table id="scores" class="sortable">{_head(_BENCH_COLUMNS)}<tbody>{rows}</tbody></table>'
    )
    return f"<h1>{_esc(uri)}</h1>\n{back}\n{table}"


def _benchmarks(task: dict[str, Any]) -> list[str]:
    """The task's benchmark URIs: its test set, then any others its entries scored."""
    uris = [_text(u) for u in task.get("benchmarks") or []]
    for entry in task.get("entries") or []:
        uris += [_text(u) for u in (entry.get("per_benchmark") or {})]
    return list(dict.fromkeys(uris))


# -- plots ------------------------------------------------------------------------------------


def _reference(task: dict[str, Any]) -> tuple[float, str] | None:
    """The task's ``(value, label)`` reference line, when it has a numeric one."""
    ref = task.get("reference")
    if not isinstance(ref, (list, tuple)) or len(ref) != 2 or _number(ref[0]) is None:
        return None
    return float(ref[0]), _text(ref[1])


@contextmanager
def _plotting() -> Iterator[Any]:
    """``matplotlib.pyplot`` on the Agg backend with text taken literally (no ``$...$``
    mathtext from hostile names) and missing-glyph warnings silenced."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Gg]lyph.*missing")
            warnings.filterwarnings("ignore", message=".*missing from (current )?font")
            yield plt


def _labels(entries: list[dict[str, Any]]) -> list[str]:
    """Plot labels for the entries: their names, clipped, made unique with the id's start."""
    labels: list[str] = []
    for entry in entries:
        label = _clip(_text(entry.get("name")) or "?")
        if label in labels:
            label = f"{_clip(label, _LABEL_CHARS - 10)} ({_text(entry.get('id'))[:8]})"
        labels.append(label)
    return labels


def _error_bars(entries: list[dict[str, Any]]) -> list[list[float]]:
    """Matplotlib's ``xerr``: each entry's distance from its score down to ``low`` and up to
    ``high`` (0 where any of the three is missing)."""
    errors: list[list[float]] = [[], []]
    for entry in entries:
        score = _number(entry.get("score"))
        low, high = _number(entry.get("low")), _number(entry.get("high"))
        if score is None or low is None or high is None:
            low = high = score = 0.0
        errors[0].append(max(score - low, 0.0))
        errors[1].append(max(high - score, 0.0))
    return errors


def _pool_colors(
    task: dict[str, Any], entries: list[dict[str, Any]], palette: list[str]
) -> tuple[list[str], dict[str, str]]:
    """A bar color per entry and the legend's color per pool: one color for all when the
    task has one pool (ranks hold within a pool: a closed round, a hardware class)."""
    pools = list(dict.fromkeys(_pool(task, e) for e in entries))
    if len(pools) < 2:
        return [palette[0]] * len(entries), {}
    labels = {_pool(task, e): _pool_label(task, e) for e in entries}
    legend = {labels[p]: palette[i % len(palette)] for i, p in enumerate(pools)}
    return [legend[labels[_pool(task, e)]] for e in entries], legend


def _plot_scores(task: dict[str, Any], path: Path) -> Path:
    """A horizontal bar per entry (display order, top first): its score (the table's
    number) with the bootstrap 95% interval as an error bar, stale entries hatched, bars
    colored by pool when there are several; the reference dashed."""
    entries = _ordered(task)
    scores = [_number(e.get("score")) or 0.0 for e in entries]
    with _plotting() as plt:
        from matplotlib.patches import Patch

        from optgym.report import save_figure

        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        colors, legend = _pool_colors(task, entries, palette)
        fig, ax = plt.subplots(figsize=(8.0, max(2.2, 0.8 + 0.32 * len(entries))))
        ys = list(range(len(entries)))
        bars = ax.barh(ys, scores, xerr=_error_bars(entries), capsize=3, color=colors,
                       ecolor="#222")  # fmt: skip
        for bar, entry in zip(bars, entries, strict=True):
            if entry.get("status") == "stale":
                bar.set_hatch("//")
                bar.set_alpha(0.5)
        ax.set_yticks(ys, _labels(entries), fontsize=8)
        ax.invert_yaxis()
        handles: list[Any] = [Patch(color=c, label=_clip(k or "(none)")) for k, c in legend.items()]
        reference = _reference(task)
        if reference is not None:
            handles.append(ax.axvline(reference[0], color="black", linestyle="--", linewidth=1,
                                      label=_clip(reference[1]) or "reference"))  # fmt: skip
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="lower right")
        ax.set_xlabel(_clip(_text(task.get("score_name")), 90), fontsize=8)
        title = (
            f"{_text(task.get('name'))}: {_text(task.get('aggregate'))} over benchmarks of "
            "the mean over seeds, with 95% interval"
        )
        ax.set_title(_clip(title, 90), fontsize=10)
        fig.tight_layout()
        save_figure(fig, path, dpi=110)
    return path


def _short(uri: str) -> str:
    """``benchmark://nav2d-v0/open`` -> ``nav2d-v0/open``: axis labels without the scheme."""
    return _clip(uri.split("://", 1)[-1], 40)


def _benchmark_points(
    entry: dict[str, Any], uris: list[str], positive_only: bool
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """An entry's (benchmark index, score) points: every seed's, and each benchmark's mean
    over seeds (the store's ``per_benchmark``); values that are not numbers, or not positive
    on a log axis, left out."""
    index = {uri: i for i, uri in enumerate(uris)}

    def keep(value: Any) -> float | None:
        number = _number(value)
        return None if number is None or (positive_only and number <= 0) else number

    seeds = []
    for row in entry.get("rows") or []:
        if isinstance(row, dict) and _text(row.get("benchmark")) in index:
            value = keep(row.get("score"))
            if value is not None:
                seeds.append((index[_text(row["benchmark"])], value))
    per_benchmark = entry.get("per_benchmark")
    means = []
    for uri, value in per_benchmark.items() if isinstance(per_benchmark, dict) else []:
        if _text(uri) in index and keep(value) is not None:
            means.append((index[_text(uri)], float(value)))
    return seeds, means


def _plot_benchmarks(task: dict[str, Any], path: Path) -> Path:
    """Each entry's scores per benchmark: every seed's score (a dot) and the benchmark's
    mean over seeds (a diamond), the values the entry's score aggregates. It shows no
    aggregate of its own: an entry's score is the table's and the score plot's one number."""
    entries = _ordered(task)
    uris = _benchmarks(task)
    positive_only = task.get("aggregate") == "geomean"  # scores on a log axis
    points = [_benchmark_points(e, uris, positive_only) for e in entries]
    with _plotting() as plt:
        from matplotlib.ticker import FormatStrFormatter, ScalarFormatter

        from optgym.report import save_figure

        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        fig, ax = plt.subplots(figsize=(max(8.0, 4.0 + 0.6 * len(uris)), 4.5))
        width = 0.7 / max(len(entries), 1)
        for i, ((seeds, means), label) in enumerate(zip(points, _labels(entries), strict=True)):
            offset = (i - (len(entries) - 1) / 2) * width
            color = palette[i % len(palette)]
            alpha = 0.45 if entries[i].get("status") == "stale" else 0.9
            if seeds:
                ax.scatter([x + offset for x, _ in seeds], [y for _, y in seeds], s=12,
                           color=color, alpha=alpha * 0.6, linewidths=0)  # fmt: skip
            ax.scatter([x + offset for x, _ in means], [y for _, y in means], s=40, marker="D",
                       color=color, alpha=alpha, label=label)  # fmt: skip
        if positive_only and any(means for _, means in points):
            ax.set_yscale("log")
            # Scores sit near 1: plain numbers read better than powers of ten on a log axis.
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
        reference = _reference(task)
        if reference is not None and (reference[0] > 0 or not positive_only):
            ax.axhline(reference[0], color="black", linestyle="--", linewidth=1,
                       label=_clip(reference[1]) or "reference")  # fmt: skip
        ax.set_xlim(-0.5, max(len(uris), 1) - 0.5)
        ax.set_xticks(range(len(uris)), [_short(u) for u in uris], rotation=30, ha="right",
                      fontsize=8)  # fmt: skip
        ax.set_ylabel(_clip(_text(task.get("score_name")), 90), fontsize=8)
        ax.set_title("per benchmark: each seed (dot) and the mean over seeds (diamond)",
                     fontsize=10)  # fmt: skip
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        save_figure(fig, path, dpi=110)
    return path


# -- the site ---------------------------------------------------------------------------------


def _write(path: Path, text: str, written: list[Path]) -> None:
    """Write ``text`` (UTF-8; unencodable lone surrogates replaced) and note the path."""
    path.write_text(text, encoding="utf-8", errors="replace")
    written.append(path)


def _build_task(
    task: dict[str, Any], slug: str, meta: dict[str, Any], ranks_note: str, out: Path
) -> list[Path]:
    """Write one task's page, plots and benchmark pages; the paths written."""
    written: list[Path] = []
    bench_slugs = _slugs(_benchmarks(task), "benchmarks")
    if task.get("entries"):
        written.append(_plot_scores(task, out / f"plot-{slug}.png"))
        written.append(_plot_benchmarks(task, out / f"benchmarks-{slug}.png"))
    body = _task_body(task, slug, bench_slugs, ranks_note)
    _write(out / f"task-{slug}.html", _page(_text(task.get("name")), body, meta, True), written)
    for uri, bench in bench_slugs.items():
        page = _page(uri, _bench_body(task, slug, uri), meta, script=bool(task.get("entries")))
        _write(out / f"bench-{slug}-{bench}.html", page, written)
    return written


def build_site(data: dict[str, Any], out: Path) -> list[Path]:
    """Write the leaderboard's static site for ``data`` into folder ``out`` (created; files
    of the same names overwritten) and return the paths written: ``index.html``,
    ``style.css``, and per task its page, plots and benchmark pages.

    ``ValueError`` when two tasks share a name (their pages would collide).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = list(data.get("tasks") or [])
    names = [_text(t.get("name")) for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"task names must be unique; repeated: {duplicates!r}")
    task_slugs = _slugs(names, "tasks")
    meta = {"generated": data.get("generated"), "optgym_version": data.get("optgym_version")}
    written: list[Path] = []
    _write(out / "style.css", _CSS, written)
    _write(out / "index.html", _page("Tasks", _index_body(data, task_slugs), meta), written)
    for task, name in zip(tasks, names, strict=True):
        written += _build_task(task, task_slugs[name], meta, _text(data.get("ranks")), out)
    return written
