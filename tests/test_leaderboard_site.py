"""The leaderboard's static site: hostile data stays text, file names stay apart, a task
without entries still gets its page, and in a real (headless) Chromium the entries table
sorts, filters and logs no errors."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from optgym.leaderboard.site import build_site

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'
MAPS = ["benchmark://nav2d-v0/maze-3", "benchmark://nav2d-v0/open", "benchmark://nav2d-v0/trap"]


def _entry(rank: int, name: str, score: float, **extra: Any) -> dict[str, Any]:
    """One exported entry with three seeds on :data:`MAPS`, scores around ``score``."""
    rows = [
        {"agent": extra.get("agent", "cem"), "benchmark": uri, "seed": seed,
         "score": round(score + 0.01 * (seed - 1) + 0.005 * i, 4)}
        for i, uri in enumerate(MAPS)
        for seed in range(3)
    ]  # fmt: skip
    entry = {
        "id": hashlib.sha256(name.encode()).hexdigest(),
        "rank": rank,
        "name": name,
        "agent": "cem",
        "track": "open",
        "status": "verified",
        "hardware_class": None,
        "optgym_version": "0.1.0",
        "score": score,
        "low": score - 0.03,
        "high": score + 0.02,
        "episodes": 9,
        "seeds": 3,
        "badges": ["replay-verified"],
        "replay_command": f"optgym leaderboard verify leaderboard/board/entries/t/{rank}",
        "authors": ["A. Author"],
        "code_url": "https://example.org/code",
        "license": "MIT",
        "verified_at": "2026-11-28T00:00:00Z",
        "per_benchmark": {uri: score + 0.005 * i for i, uri in enumerate(MAPS)},
        "rows": rows,
    }
    entry.update(extra)
    return entry


def _task(name: str, entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """One exported task on :data:`MAPS`."""
    task = {
        "name": name,
        "problem": "path-planning",
        "score_name": "plan reward (mean over episodes)",
        "aggregate": "mean",
        "budget": "calls=2000",
        "hardware_dependent": False,
        "benchmarks": list(MAPS),
        "reference": [0.8, "CEM at 600 calls (0.8)"],
        "entries": entries,
    }
    task.update(extra)
    return task


def _data(*tasks: dict[str, Any]) -> dict[str, Any]:
    """The exported board holding ``tasks``."""
    return {"generated": "2026-11-29T00:10:00Z", "optgym_version": "0.1.0", "tasks": list(tasks)}


def _five_entries() -> list[dict[str, Any]]:
    """Five entries over two tracks, two hardware classes and two versions, one stale, one
    with a hostile name (escaped, it must neither run nor load anything in the browser)."""
    small, big = "x86_64/2cpu/speed+0", "x86_64/8cpu/speed+1"  # the two hardware classes
    return [
        _entry(1, "CEM (reference)", 0.93, hardware_class=small),
        _entry(2, "Shooting", 0.71, agent="shooting", hardware_class=small,
               badges=["replay-verified", "rerun-verified"]),
        _entry(1, "Tuned PPO", 0.88, agent="ppo", track="closed", hardware_class=big, code_url=""),
        _entry(2, HOSTILE, 0.52, agent="random", hardware_class=big,
               code_url="javascript:alert(1)"),
        _entry(3, "Old CEM", 0.35, status="stale", optgym_version="0.0.9", track="closed",
               hardware_class=big),
    ]  # fmt: skip


class _Table(HTMLParser):
    """Counts the ``<tr>`` in the ``<tbody>`` of the table with a given id, and collects
    every ``href`` and ``src``."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.inside = False
        self.in_body = False
        self.rows = 0
        self.links: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.links += [v for k, v in attrs if k in ("href", "src") and v is not None]
        self.scripts += tag == "script"
        if tag == "table":
            self.inside = values.get("id") == self.table_id
        elif tag == "tbody" and self.inside:
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.inside = False


def _parse(path: Path, table_id: str = "entries") -> _Table:
    """``path`` parsed, counting the rows of table ``table_id``."""
    parser = _Table(table_id)
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _task_page(paths: list[Path]) -> Path:
    """The one task page among ``paths``."""
    (page,) = [p for p in paths if p.name.startswith("task-")]
    return page


def test_site_files_and_one_row_per_entry(tmp_path: Path) -> None:
    """Index, style, plots (real PNGs), a task page with one row per entry, one page per
    benchmark; local links resolve; a second build overwrites the same files."""
    entries = _five_entries()
    paths = build_site(_data(_task("path-planning", entries)), tmp_path / "site")
    names = sorted(p.name for p in paths)
    assert all(p.is_file() for p in paths) and len(set(paths)) == len(paths)
    assert {"index.html", "style.css"} <= set(names)
    assert sum(n.startswith("bench-") for n in names) == len(MAPS)
    for prefix in ("plot-", "benchmarks-"):
        (png,) = [p for p in paths if p.name.startswith(prefix)]
        assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5000
    page = _parse(_task_page(paths))
    assert page.rows == len(entries)
    for bench in (p for p in paths if p.name.startswith("bench-")):
        assert _parse(bench, "scores").rows == len(entries)
    # Every local link points at a file the site wrote.
    local = {link for p in paths if p.suffix == ".html" for link in _parse(p).links}
    local = {x for x in local if not x.startswith(("http", "data:"))}
    assert local <= set(names)
    index = (tmp_path / "site" / "index.html").read_text()
    assert "2026-11-29T00:10:00Z" in index and "0.1.0" in index and _task_page(paths).name in index
    # Built again into the same folder: the same files, overwritten.
    assert sorted(p.name for p in build_site(_data(_task("path-planning", entries)),
                                             tmp_path / "site")) == names  # fmt: skip


def test_hostile_strings_stay_text(tmp_path: Path) -> None:
    """Markup in every field is escaped, only http(s) URLs are linked, file names stay
    inside ``out`` and safe, and mathtext, NUL or a lone surrogate break no plot."""
    entry = _entry(1, HOSTILE, 0.9, agent=HOSTILE, track=HOSTILE, hardware_class=HOSTILE,
                   optgym_version=HOSTILE, badges=[HOSTILE], replay_command=HOSTILE,
                   authors=[HOSTILE], license=HOSTILE, code_url="javascript:alert(1)",
                   id=HOSTILE, per_benchmark={HOSTILE: 1.0, "$\\frac{": 2.0})  # fmt: skip
    entry["rows"] = [{"agent": HOSTILE, "benchmark": "$\\frac{", "seed": HOSTILE, "score": 1.0}]
    others = [
        _entry(2, "$\\frac{$ tab", 0.8, code_url="java\tscript:alert(2)"),
        _entry(3, "mixed", 0.7, code_url=" JavaScript:alert(3)"),
        _entry(4, "data", 0.6, code_url="data:text/html,<script>alert(4)</script>"),
        _entry(5, "nul", 0.5, code_url="https://example.org/code"),
    ]
    others[-1]["name"] = "lone \ud800 surrogate and \x00 NUL"  # written, plotted, not fatal
    task = _task(HOSTILE, [entry, *others], score_name=HOSTILE, budget=HOSTILE,
                 problem=HOSTILE, aggregate=HOSTILE, benchmarks=[HOSTILE, "../../etc/passwd"],
                 reference=[1.0, HOSTILE], hardware_dependent=True,
                 after_the_fact={"header": [HOSTILE, "n"],
                                 "rows": [[HOSTILE, 1.5], [None, 2]]})  # fmt: skip
    data = _data(task)
    data["generated"] = data["optgym_version"] = HOSTILE
    paths = build_site(data, tmp_path)
    assert all(p.parent == tmp_path for p in paths)
    assert all(re.fullmatch(r"[a-z0-9.-]+", p.name) for p in paths)
    for path in (p for p in paths if p.suffix == ".html"):
        text = path.read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<img src=x" not in text, path.name
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text, path.name
        parsed = _parse(path)
        assert parsed.scripts <= 1  # only the site's own script
        external = [x for x in parsed.links if ":" in x and not x.startswith("data:,")]
        assert all(x == "https://example.org/code" for x in external), external
    task_page = _task_page(paths).read_text(encoding="utf-8")
    assert "javascript:alert(1)" in task_page  # shown as text, not linked
    assert _parse(_task_page(paths), "after-the-fact").rows == 2  # the problem's own table
    assert 'href="javascript' not in task_page.lower()


def test_benchmark_pages_do_not_collide(tmp_path: Path) -> None:
    """URIs that slug alike still get pages of their own."""
    uris = ["benchmark://x/a-b", "benchmark://x/a/b", "benchmark://x/A_b", "benchmark://x/a b"]
    task = _task("t", [], benchmarks=uris)
    paths = build_site(_data(task), tmp_path)
    benches = [p.name for p in paths if p.name.startswith("bench-")]
    assert len(set(benches)) == len(uris)
    assert all(re.fullmatch(r"bench-[a-z0-9-]+\.html", b) for b in benches)


def test_task_without_entries(tmp_path: Path) -> None:
    """A task without entries gets a page saying so and no plots; tasks need unique names."""
    paths = build_site(_data(_task("empty", []), _task("full", _five_entries()[:2])), tmp_path)
    empty = [p for p in paths if "empty" in p.name]
    assert not [p for p in empty if p.suffix == ".png"]
    (page,) = [p for p in empty if p.name.startswith("task-")]
    text = page.read_text()
    assert "no entries yet" in text and 'id="entries"' not in text
    assert [p.name for p in paths if p.suffix == ".png"]  # the other task has its plots
    with pytest.raises(ValueError, match="'empty'"):
        build_site(_data(_task("empty", []), _task("empty", [])), tmp_path)


# -- a real browser -------------------------------------------------------------------------


def _column(driver: Any, key: str) -> list[str]:
    """The ``data-value`` of column ``key`` in the rows' current order (visible or not)."""
    return driver.execute_script(
        "var i = document.querySelector('#entries th[data-column=\"' + arguments[0] + '\"]')"
        ".cellIndex; return Array.from(document.querySelectorAll('#entries tbody tr'))"
        ".map(function (r) { return r.cells[i].getAttribute('data-value'); });",
        key,
    )


def test_task_page_in_chromium(browser: Any, shown_rows: Any, tmp_path: Path) -> None:
    """In headless Chromium: every entry shows, the score header sorts both ways, the text
    box and the selects filter, images and style load, and the console has no errors."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    entries = _five_entries()
    paths = build_site(_data(_task("path-planning", entries, hardware_dependent=True)), tmp_path)
    url = _task_page(paths).as_uri()
    browser.get(url)
    assert len(shown_rows(browser)) == len(entries)

    score = browser.find_element(By.CSS_SELECTOR, '#entries th[data-column="score"]')
    score.click()
    ascending = [float(v) for v in _column(browser, "score")]
    assert ascending == sorted(ascending) and len(ascending) == len(entries)
    score.click()
    descending = [float(v) for v in _column(browser, "score")]
    assert descending == sorted(ascending, reverse=True)
    browser.find_element(By.CSS_SELECTOR, '#entries th[data-column="name"]').click()
    assert _column(browser, "score") != descending  # a text column sorts too

    browser.find_element(By.ID, "filter").send_keys("cem")
    shown = shown_rows(browser)
    assert len(shown) == 2 and all("cem" in r.text.lower() for r in shown)

    browser.get(url)
    Select(browser.find_element(By.ID, "track")).select_by_visible_text("closed")
    shown = shown_rows(browser)
    assert len(shown) == 2 and {r.get_attribute("data-track") for r in shown} == {"closed"}
    Select(browser.find_element(By.ID, "hardware")).select_by_visible_text("x86_64/8cpu/speed+1")
    assert len(shown_rows(browser)) == 2
    Select(browser.find_element(By.ID, "version")).select_by_visible_text("0.0.9")
    assert [r.get_attribute("data-version") for r in shown_rows(browser)] == ["0.0.9"]

    browser.get(url)
    # The plots and the style sheet load under the pages' Content-Security-Policy.
    widths = browser.execute_script(
        "return Array.from(document.images).map(function (i) { return i.naturalWidth; });"
    )
    assert len(widths) == 2 and min(widths) > 100
    badge = browser.find_element(By.CSS_SELECTOR, "#entries .badge")
    assert badge.value_of_css_property("border-radius") != "0px"
    shot = tmp_path / "task.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 5000
    if os.environ.get("OPTGYM_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["OPTGYM_SCREENSHOT"])
    # A benchmark page (sortable only) and the index load cleanly too.
    browser.find_element(By.CSS_SELECTOR, "ul.benchmarks a").click()
    assert browser.find_elements(By.CSS_SELECTOR, "#scores tbody tr")
    browser.get((tmp_path / "index.html").as_uri())
    severe = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, severe
    assert "alert" not in browser.title
