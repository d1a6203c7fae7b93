#!/usr/bin/env python3
"""Build OptGym's documentation site: reference pages generated from the code, then mkdocs.

    scripts/docs.py build [--out site] [--work DIR]

``build`` copies ``docs/`` (the hand-written pages) into a work folder (a temporary one
unless ``--work`` names one), writes the reference pages into its ``reference/`` by
introspection (one page per env id and per agent, the command line's ``--help`` texts, the
Python API), writes an mkdocs config whose nav lists every page (``mkdocs.yml`` with its
``Reference`` entry replaced by the generated section) and runs ``mkdocs build --strict``
into ``--out``. The repository is left as it was. Any mkdocs warning (a broken link, a
page missing from the nav) fails the build: the status is 1 and the warnings are printed.

Docstrings are written in the reStructuredText-flavoured style of the code base (````x````
literals, ``:mod:`x``` roles, ``>>>`` examples, gymnasium's ``## Section`` headings); they
are turned into Markdown here, not by an mkdocs plugin.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import inspect
import os
import pprint
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"
#: The nav entry of ``mkdocs.yml`` that the generated reference section replaces.
REFERENCE_TITLE = "Reference"
#: The module of the training API (written separately); its page renders its ``__all__``.
TRAIN_MODULE = "optgym.train"
#: Columns of the ``--help`` texts (argparse reads ``COLUMNS``).
HELP_COLUMNS = 100


class DocsError(RuntimeError):
    """A documentation build that cannot go on; the message says why."""


# --- docstrings to Markdown --------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^(\s*)([*+-]|\d+[.)])(\s+)")
_INLINE = re.compile(
    r":[a-z]+(?::[a-z]+)?:`(?P<target>[^`]+)`"  # :mod:`optgym.envs`, :func:`~a.b`
    r"|``(?P<double>.+?)``"  # RST literal
    r"|`(?P<single>[^`\n]+)`"  # Markdown code span or RST interpreted text
)
_GOOGLE_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Attributes|Examples?|Notes?)"
    r":\s*$"
)
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}[A-Za-z_][\w.]*)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_ITEM_SECTIONS = {"Args", "Arguments", "Parameters", "Raises", "Attributes"}
_SECTION_TITLES = {"Args": "Arguments", "Return": "Returns", "Example": "Examples",
                   "Note": "Notes"}  # fmt: skip


def code_span(text: str) -> str:
    """``text`` as a Markdown code span (double backticks when it holds one)."""
    if "`" in text:
        return f"`` {text} ``"
    return f"`{text}`"


def _role_text(target: str) -> str:
    """What a Sphinx role shows: ``Title <target>`` -> Title, ``~a.b.c`` -> c."""
    m = re.fullmatch(r"(.*?)\s*<(.+)>", target)
    if m and m.group(1):
        return m.group(1)
    if target.startswith("~"):
        return target[1:].rsplit(".", 1)[-1]
    return target


def _escape_text(text: str) -> str:
    """Plain docstring text made literal for Markdown: no emphasis, no raw HTML."""
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([*_])", r"\\\1", text)


def inline_markdown(line: str) -> str:
    """One line of docstring prose in Markdown: RST literals and roles become code spans,
    the rest is escaped; a list marker at the start of the line is kept."""
    prefix = ""
    m = _LIST_ITEM.match(line)
    if m:
        prefix, line = line[: m.end()], line[m.end() :]
    out: list[str] = []
    pos = 0
    for match in _INLINE.finditer(line):
        out.append(_escape_text(line[pos : match.start()]))
        if match.group("target") is not None:
            out.append(code_span(_role_text(match.group("target"))))
        else:
            out.append(code_span(match.group("double") or match.group("single")))
        pos = match.end()
    out.append(_escape_text(line[pos:]))
    return prefix + "".join(out)


def _doctest_block(lines: list[str]) -> list[str]:
    """``>>>`` lines as a fenced Python block: prompts removed, output lines as comments."""
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    code = []
    for raw in lines:
        line = raw[indent:]
        if line.startswith(">>>") or line.startswith("..."):
            code.append(line[4:] if len(line) > 3 else "")
        else:
            code.append(f"# {line}")
    return ["", "```python", *code, "```", ""]


def _indented_block(lines: list[str], start: int) -> tuple[list[str], int]:
    """The lines from ``start`` that are indented or blank (a block under a line), with
    trailing blank lines left out; the index after it."""
    end = start
    while end < len(lines) and (not lines[end].strip() or lines[end][:1] in " \t"):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end], end


def _dedent(lines: list[str]) -> list[str]:
    indent = min((len(s) - len(s.lstrip()) for s in lines if s.strip()), default=0)
    return [s[indent:] for s in lines]


def _google_section(name: str, body: list[str], shift: int) -> list[str]:
    """A Google-style ``Args:`` (or ``Returns:``...) section: a bold label, then a list of
    ``name (type): text`` items or the section's text."""
    title = _SECTION_TITLES.get(name, name)
    out = ["", f"**{title}**", ""]
    body = _dedent(body)
    if name not in _ITEM_SECTIONS:
        return out + docstring_markdown("\n".join(body), shift).splitlines() + [""]
    items: list[list[str]] = []
    for line in body:
        m = _GOOGLE_ITEM.match(line) if line[:1] not in " \t" else None
        if m:
            head = code_span(m.group(1)) + (f" ({m.group(2)})" if m.group(2) else "")
            items.append([head, m.group(3)])
        elif items:
            items[-1].append(line.strip())
        elif line.strip():
            items.append(["", line.strip()])
    for head, *text in items:
        desc = inline_markdown(" ".join(t for t in text if t))
        out.append(f"- {head}: {desc}" if head else f"- {desc}")
    return out + [""]


def docstring_markdown(doc: str | None, shift: int = 0) -> str:
    """A docstring (already dedented, as ``inspect.getdoc`` gives it) as Markdown.

    ``## Section`` headings move ``shift`` levels down; ``>>>`` examples and ``::``
    literal blocks become fenced code blocks; RST literals (````x````) and roles
    (``:class:`x```) become code spans; Google-style ``Args:`` sections become lists;
    fenced blocks already there are kept as they are. The rest is escaped, so that a ``*``
    or ``<seed>`` in prose shows as written."""
    if not doc:
        return ""
    lines = doc.expandtabs().splitlines()
    out: list[str] = []
    i = 0
    previous = ""  # the last non-blank line written, to know whether a list starts
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        fence = _FENCE.match(line)
        if fence:  # a Markdown fenced block: copied as it is
            close = fence.group(1)
            block = [line]
            i += 1
            while i < len(lines):
                block.append(lines[i])
                i += 1
                if lines[i - 1].strip().startswith(close):
                    break
            out += ["", *_dedent(block), ""]
            previous = ""
            continue
        if stripped.startswith(">>>"):
            start = i
            while i < len(lines) and lines[i].strip():
                i += 1
            out += _doctest_block(lines[start:i])
            previous = ""
            continue
        heading = _HEADING.match(line)
        if heading:
            level = min(len(heading.group(1)) + shift, 6)
            out += ["", f"{'#' * level} {inline_markdown(heading.group(2))}", ""]
            previous = ""
            i += 1
            continue
        section = _GOOGLE_SECTION.match(line)
        if section and i + 1 < len(lines) and lines[i + 1][:1] in " \t":
            body, i = _indented_block(lines, i + 1)
            out += _google_section(section.group(1), body, shift)
            previous = ""
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            text = line.rstrip()[:-2].rstrip()
            if text:
                out.append(inline_markdown(text + ":"))
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            body, end = _indented_block(lines, j)
            if body and j < len(lines) and lines[j][:1] in " \t":
                out += ["", "```text", *_dedent(body), "```", ""]
                i = end
            else:
                i += 1
            previous = ""
            continue
        if not stripped:
            out.append("")
            previous = ""
            i += 1
            continue
        if line[:4] == "    " and not previous:  # an indented block after a blank line
            body, i = _indented_block(lines, i)
            out += ["", "```text", *_dedent(body), "```", ""]
            continue
        if _LIST_ITEM.match(line) and previous and not _LIST_ITEM.match(previous) \
                and previous[:1] not in " \t":  # fmt: skip
            out.append("")  # Markdown needs a blank line before a list
        out.append(inline_markdown(line))
        previous = line
        i += 1
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# --- helpers for pages --------------------------------------------------------------------------


def env_slug(env_id: str) -> str:
    """The page name of an env id: ``optgym/PassOrdering-v0`` -> ``PassOrdering-v0``."""
    name = env_id.removeprefix("optgym/")
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def agent_slug(name: str) -> str:
    """The page name of a registered agent."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def command_anchor(prog: str) -> str:
    """The heading id of a command on the CLI page: ``optgym leaderboard run`` ->
    ``optgym-leaderboard-run``."""
    return re.sub(r"[^a-z0-9]+", "-", prog.lower()).strip("-")


def cell(text: Any) -> str:
    """A value made safe for a Markdown table cell (one line, pipes escaped)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; cells are taken as Markdown (escape them with :func:`cell`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _annotation_text(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation)


def signature_text(obj: Callable[..., Any], name: str | None = None, width: int = 88) -> str:
    """``name(arg: type = default, ...) -> type``, with string annotations unquoted, a
    dataclass field's default factory as ``factory()``, one argument a line when the whole
    does not fit in ``width``; a class's signature without its ``-> None``."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name or obj.__name__}(...)"
    factories = {}
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
        factories = {
            f.name: f.default_factory
            for f in dataclasses.fields(obj)
            if f.default_factory is not dataclasses.MISSING
        }
    parts = []
    star_done = False
    for param in sig.parameters.values():
        if param.name == "self":
            continue
        if param.kind is param.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        prefix = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}.get(param.kind, "")
        if param.kind is param.VAR_POSITIONAL:
            star_done = True
        text = prefix + param.name
        if param.annotation is not param.empty:
            text += f": {_annotation_text(param.annotation)}"
        if param.name in factories:
            text += f" = {getattr(factories[param.name], '__name__', 'factory')}()"
        elif param.default is not param.empty:
            text += f" = {param.default!r}"
        parts.append(text)
    tail = ""
    if sig.return_annotation is not sig.empty and not inspect.isclass(obj):
        tail = f" -> {_annotation_text(sig.return_annotation)}"
    head = name or obj.__name__
    one_line = f"{head}({', '.join(parts)}){tail}"
    if len(one_line) <= width or not parts:
        return one_line
    return f"{head}(\n" + "".join(f"    {p},\n" for p in parts) + f"){tail}"


def own_doc(obj: Any) -> str | None:
    """The object's own docstring (not one inherited), cleaned; None for a dataclass's
    made-up ``Name(field: type, ...)`` docstring."""
    doc = obj.__doc__ if isinstance(obj.__doc__, str) else None
    if doc is None:
        return None
    if (
        inspect.isclass(obj)
        and dataclasses.is_dataclass(obj)
        and doc.startswith(f"{obj.__name__}(")
    ):
        return None
    return inspect.cleandoc(doc)


def code_block(text: str, language: str = "text") -> str:
    """A fenced block whose fence is longer than any backtick run in ``text``."""
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}\n"


# --- the pages ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Page:
    """A generated page: its path under ``docs/`` and its Markdown."""

    path: str
    text: str


@dataclasses.dataclass
class AgentInfo:
    """What the pages say about a registered agent."""

    name: str
    entry: Any
    cls: type
    works_on: tuple[str, ...]
    home: str  # the problem it is listed under
    env_ids: tuple[str, ...]


def declared_problems(cls: type) -> tuple[str, ...]:
    """What an agent class says it works on: problem names, env ids, or ``"*"`` (any)."""
    declared = getattr(cls, "problems", ())
    if isinstance(declared, str):
        declared = (declared,)
    return tuple(p for p in declared if isinstance(p, str))


def _agents() -> dict[str, AgentInfo]:
    """Every registered agent, with the env ids it works on (read from its class: an
    agent with required settings cannot be made without them)."""
    from optgym.agents import registry
    from optgym.envs import problems

    known = problems()
    out = {}
    for name, entry in registry().items():
        cls = entry.agent_class()
        works_on = declared_problems(cls)
        envs = tuple(
            e.id
            for p in known.values()
            for e in p.envs
            if "*" in works_on or p.name in works_on or e.id in works_on
        )
        home = next((p for p in known if p in works_on), None)
        if home is None:
            home = next((p.name for p in known.values() if set(works_on) & set(p.env_ids)), "-")
        out[name] = AgentInfo(name, entry, cls, works_on, home, envs)
    return out


def _splits_text(dataset: Any) -> str:
    from optgym.datasets.dataset import SPLITS

    if dataset.infinite:
        from optgym.datasets.seeded import SPLIT_SEEDS

        return "; ".join(
            f"{s}: seeds {SPLIT_SEEDS[s][0]} to {SPLIT_SEEDS[s][1] - 1}" for s in SPLITS
        )
    parts = []
    for split in SPLITS:
        names = list(dataset.benchmark_names(split))
        shown = ", ".join(code_span(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
        parts.append(f"{split}: {len(names)}" + (f" ({shown})" if names else ""))
    return "; ".join(parts)


def _reference_markdown(reference: str) -> str:
    if re.fullmatch(r"https?://\S+", reference):
        return f"[{reference}]({reference})"
    return inline_markdown(reference)


def _dataset_markdown(dataset: Any) -> str:
    """A dataset: its description, license, splits, how it was made and references."""
    made = [inline_markdown(" ".join(line.split())) for line in dataset.provenance.splitlines()]
    made = [line for line in made if line]
    lines = [f"### {code_span(dataset.uri)}", "", docstring_markdown(dataset.description)]
    lines += [
        f"- **License**: {inline_markdown(' '.join(dataset.license.split()))}",
        f"- **Splits**: {_splits_text(dataset)}",
        f"- **How it was made**: {made[0] if made else '-'}",
    ]
    for line in made[1:]:
        lines += ["", f"    {line}"]
    if dataset.references:
        lines += ["- **References**:", ""]
        lines += [f"    - {_reference_markdown(r)}" for r in dataset.references]
    return "\n".join(lines) + "\n"


def _task_markdown(task: Any, agents: dict[str, AgentInfo], prefix: str) -> str:
    datasets = ", ".join(f"{code_span(uri)} ({split})" for uri, split in task.datasets)
    refs = ", ".join(
        f"[{code_span(a)}]({prefix}agents/{agent_slug(a)}.md)" if a in agents else code_span(a)
        for a in task.reference_agents
    )
    rows = [
        ("env config", code_span(repr(task.env_kwargs)) if task.env_kwargs else "the defaults"),
        ("datasets (split)", datasets),
        ("budget per episode", code_span(str(task.budget))),
        ("score", cell(task.score_name)),
        ("aggregate over benchmarks", task.aggregate),
        ("leaderboard test set", f"the first {task.board_size} benchmarks of each split"),
    ]
    if refs:
        rows.append(("reference agents", refs))
    run = f"optgym bench {task.name} --agent AGENT --episodes 3"
    return (
        f"### {code_span(task.name)}\n\n"
        + table(("property", "value"), rows)
        + "\n"
        + code_block(run, "sh")
        + "\n"
    )


def _make_spaces(env_id: str, kwargs: dict[str, Any] | None = None) -> tuple[str, str]:
    """The observation and action space of a fresh env (no reset)."""
    import optgym
    from optgym.spaces import space_text

    env = optgym.make(env_id, **(kwargs or {}))
    try:
        return space_text(env.observation_space), space_text(env.action_space)
    finally:
        env.close()


def env_page(problem: Any, entry: Any, agents: dict[str, AgentInfo]) -> Page:
    """The page of one env id: the class docstring and what the records say about it."""
    cls = entry.env_class()
    try:
        obs_space, act_space = (code_span(s) for s in _make_spaces(entry.id))
    except Exception as e:  # noqa: BLE001  a backend missing here: say so on the page
        obs_space = act_space = f"not shown: making the env failed ({cell(e)})"
    limit = entry.max_episode_steps
    tolerance = getattr(cls, "reward_tolerance", "")
    rows = [
        ("problem", f"[{problem.name}](index.md#{problem.name}): {cell(problem.title)}"),
        ("class", code_span(entry.entry_point)),
        ("step limit", f"{limit} steps (`max_episode_steps`)" if limit else "none"),
        ("work unit", code_span(cls.work_unit)),
        ("observation spaces", ", ".join(map(code_span, cls.observation_spaces)) or "-"),
        ("reward spaces", ", ".join(map(code_span, cls.reward_spaces)) or "-"),
        ("reward tolerance", cell(tolerance)),
        ("deterministic", "no (measured rewards)" if entry.nondeterministic else "yes"),
        ("default benchmark", code_span(cls.default_benchmark) if cls.default_benchmark else "-"),
        ("observation space", obs_space),
        ("action space", act_space),
    ]
    example = entry.example
    make_args = "".join(f", {k}={v!r}" for k, v in example.config.items())
    example_code = (
        "import optgym\n\n"
        f"env = optgym.make({entry.id!r}{make_args})\n"
        f'obs, info = env.reset(seed=0, options={{"benchmark": {example.benchmark!r}}})\n'
        f"for _ in range({example.steps}):\n"
        "    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())\n"
        "    if terminated or truncated:\n"
        "        break\n"
        "env.close()"
    )
    parts = [
        f"# {entry.id}\n",
        table(("property", "value"), rows),
        "\nThe spaces above are those of `optgym.make(id)` before its first reset (on the "
        "default benchmark); spaces that depend on the benchmark are set at reset.\n",
        "## Environment\n",
        docstring_markdown(inspect.getdoc(cls), shift=1),
        "## Quick episode\n",
        "The small episode the contract tests run on this env (its benchmark and a setting "
        "other than the default), with random actions:\n",
        code_block(example_code, "python"),
    ]
    tasks = [t for t in problem.tasks if t.env_id == entry.id]
    parts.append("## Leaderboard tasks\n")
    if tasks:
        parts += [_task_markdown(t, agents, "../") for t in tasks]
    else:
        parts.append("No task uses this env.\n")
    mine = [a for a in agents.values() if entry.id in a.env_ids]
    parts.append("## Agents\n")
    if mine:
        parts.append(
            table(
                ("agent", "description"),
                (
                    (f"[{code_span(a.name)}](../agents/{agent_slug(a.name)}.md)",
                     cell(inline_markdown(a.entry.summary())))
                    for a in mine
                ),
            )
        )  # fmt: skip
    else:
        parts.append("No registered agent works on this env.\n")
    parts.append("\n## Datasets\n")
    parts.append(f"The datasets of the {code_span(problem.name)} problem.\n")
    parts += [_dataset_markdown(d) for d in problem.datasets()]
    return Page(f"reference/envs/{env_slug(entry.id)}.md", "\n".join(parts))


def envs_index(problems: dict[str, Any]) -> Page:
    """The environments' index: each problem, its env ids and tasks."""
    parts = [
        "# Environments\n",
        "Every env id OptGym registers with gymnasium, by problem. Each page shows the env's "
        "documentation, its spaces, work unit, datasets, leaderboard tasks and agents.\n",
    ]
    for problem in problems.values():
        parts.append(f"## {problem.name} {{#{problem.name}}}\n")
        parts.append(f"{inline_markdown(problem.title)}\n")
        rows = []
        for entry in problem.envs:
            cls = entry.env_class()
            tasks = ", ".join(code_span(t.name) for t in problem.tasks if t.env_id == entry.id)
            rows.append((
                f"[{code_span(entry.id)}]({env_slug(entry.id)}.md)",
                code_span(cls.work_unit),
                entry.max_episode_steps or "-",
                tasks or "-",
            ))  # fmt: skip
        parts.append(table(("env id", "work unit", "step limit", "tasks"), rows))
    return Page("reference/envs/index.md", "\n".join(parts))


def _setting_kind(setting: Any) -> str:
    """``type, default x`` or ``type, required``."""
    kind = _escape_text(setting.type_name)
    if setting.required:
        return f"{kind}, required"
    return f"{kind}, default {code_span(repr(setting.default))}"


def agent_page(info: AgentInfo, problems: dict[str, Any]) -> Page:
    """The page of one registered agent: its settings, presets and class docstring."""
    from optgym.agents import agent_settings

    cls = info.cls
    entry = info.entry
    learns = all(callable(getattr(cls, m, None)) for m in ("train", "save", "load"))
    envs = ", ".join(f"[{code_span(e)}](../envs/{env_slug(e)}.md)" for e in info.env_ids)
    rows = [
        ("class", code_span(entry.target)),
        ("registered by", cell(entry.source)),
        ("works on", envs or ", ".join(map(code_span, info.works_on))),
        ("stochastic", "no" if getattr(cls, "stochastic", True) is False else "yes"),
        ("learns", "yes (`train`, `save`, `load`)" if learns else "no"),
    ]
    if entry.presets:
        presets = ", ".join(code_span(f"{k}={v}") for k, v in entry.presets.items())
        rows.append(("preset settings", presets))
    parts = [f"# {info.name}\n"]
    if entry.description:
        parts.append(f"{inline_markdown(entry.description)}.\n")
    parts.append(table(("property", "value"), rows))
    settings = agent_settings(cls)
    tasks = [t for p in problems.values() for t in p.tasks if t.env_id in info.env_ids]
    required = "".join(
        f"{',' if i else ':'}{s.name}={s.name.upper()}"
        for i, s in enumerate(x for x in settings if x.required and x.name not in entry.presets)
    )
    task = tasks[0].name if tasks and "*" not in info.works_on else "TASK"
    parts.append("\n" + code_block(f"optgym bench {task} --agent {info.name}{required}", "sh"))
    parts.append("## Settings\n")
    if settings:
        parts.append(
            f"Given as {code_span(info.name + ':key=value,key=value')} (lists take commas).\n"
        )
        for s in settings:
            preset = (
                f" Preset to {code_span(entry.presets[s.name])}." if s.name in entry.presets else ""
            )
            text = inline_markdown(s.help) if s.help else ""
            parts.append(f"- {code_span(s.name)} ({_setting_kind(s)}): {text}{preset}")
        parts.append("")
    else:
        parts.append("None.\n")
    doc = own_doc(cls)
    if doc:
        parts += [f"## Class {code_span(cls.__name__)}\n", docstring_markdown(doc, shift=1)]
    return Page(f"reference/agents/{agent_slug(info.name)}.md", "\n".join(parts))


def agents_index(agents: dict[str, AgentInfo], problems: dict[str, Any]) -> Page:
    """The agents' index, by problem."""
    parts = [
        "# Agents\n",
        "Every registered agent, by problem (`optgym agents` prints the same). An agent is "
        "given to `optgym bench` as `NAME` or `NAME:key=value,...`, or as any importable "
        "class, `package.module:Class[:key=value,...]`.\n",
    ]
    for problem in [*problems, "-"]:
        mine = [a for a in agents.values() if a.home == problem]
        if not mine:
            continue
        parts.append(f"## {problem}\n" if problem != "-" else "## Any problem\n")
        parts.append(
            table(
                ("agent", "description"),
                ((f"[{code_span(a.name)}]({agent_slug(a.name)}.md)",
                  cell(inline_markdown(a.entry.summary()))) for a in mine),
            )
        )  # fmt: skip
    return Page("reference/agents/index.md", "\n".join(parts))


def _walk_parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[int, argparse.ArgumentParser]]:
    """Every parser under ``parser`` (itself first), depth first, with its depth."""
    seen: set[int] = set()

    def walk(p: argparse.ArgumentParser, depth: int) -> Iterator[tuple[int, Any]]:
        if id(p) in seen:
            return
        seen.add(id(p))
        yield depth, p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from walk(child, depth + 1)

    yield from walk(parser, 0)


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def cli_page() -> Page:
    """The command line: the ``--help`` text of every command and subcommand."""
    from optgym import cli

    parser = cli.build_parser()
    parts = [
        "# Command line\n",
        "The `--help` of `optgym` and of each of its commands, as this version prints them.\n",
    ]
    with _columns(HELP_COLUMNS):
        commands = list(_walk_parsers(parser))
        parts.append(
            "\n".join(
                f"{'    ' * max(depth - 1, 0)}- [{code_span(p.prog)}](#{command_anchor(p.prog)})"
                for depth, p in commands
                if depth
            )
            + "\n"
        )
        for depth, p in commands:
            level = "#" * min(depth + 2, 6)
            parts.append(f"{level} {p.prog} {{#{command_anchor(p.prog)}}}\n")
            parts.append(code_block(p.format_help()))
    return Page("reference/cli.md", "\n".join(parts))


def _member_markdown(qualname: str, obj: Any, level: int) -> str:
    """A function's or class's signature and docstring (a class's public methods too)."""
    hashes = "#" * level
    short = qualname.rsplit(".", 1)[-1]
    if inspect.isclass(obj):
        parts = [
            f"{hashes} {code_span(short)} {{#{command_anchor(short)}}}\n",
            code_block(f"class {signature_text(obj, qualname)}", "python"),
            docstring_markdown(own_doc(obj), shift=level),
        ]
        if dataclasses.is_dataclass(obj):
            fields = [f for f in dataclasses.fields(obj) if not f.name.startswith("_")]
            if fields:
                parts.append("Fields: " + ", ".join(code_span(f.name) for f in fields) + ".\n")
        for name, member in vars(obj).items():
            if name.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            anchor = command_anchor(f"{short}-{name}")
            if isinstance(member, property):
                doc = own_doc(member)
                if doc:
                    parts.append(f"{hashes}# {code_span(short + '.' + name)} {{#{anchor}}}\n")
                    parts.append(f"Property.\n\n{docstring_markdown(doc, shift=level + 1)}")
            elif inspect.isfunction(member) and own_doc(member):
                parts.append(f"{hashes}# {code_span(short + '.' + name)} {{#{anchor}}}\n")
                parts.append(code_block(signature_text(member, f"{short}.{name}"), "python"))
                parts.append(docstring_markdown(own_doc(member), shift=level + 1))
        return "\n".join(parts)
    if callable(obj):
        return "\n".join([
            f"{hashes} {code_span(short)} {{#{command_anchor(short)}}}\n",
            code_block(signature_text(obj, qualname), "python"),
            docstring_markdown(own_doc(obj), shift=level),
        ])  # fmt: skip
    value = pprint.pformat(obj, width=88 - len(qualname) - 3, compact=True, sort_dicts=False)
    if len(value) > 2000:
        value = value[:1997] + "..."
    value = value.replace("\n", "\n" + " " * (len(qualname) + 3))
    return f"{hashes} {code_span(short)} {{#{command_anchor(short)}}}\n\n" + code_block(
        f"{qualname} = {value}", "python"
    )


def module_page(path: str, title: str, module: Any, names: Sequence[str], intro: str = "") -> Page:
    """A page for ``names`` of ``module``: the module docstring, then each member."""
    parts = [f"# {title}\n"]
    if intro:
        parts.append(intro + "\n")
    parts.append(docstring_markdown(own_doc(module), shift=1))
    for name in names:
        parts.append(_member_markdown(f"{module.__name__}.{name}", getattr(module, name), 2))
    return Page(path, "\n".join(parts))


def _public_names(module: Any) -> list[str]:
    """``__all__``, else the public functions and classes the module defines itself."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        n for n, o in vars(module).items()
        if not n.startswith("_") and (inspect.isfunction(o) or inspect.isclass(o))
        and getattr(o, "__module__", None) == module.__name__
    ]  # fmt: skip


def import_train_module() -> Any:
    """:mod:`optgym.train`; :class:`DocsError` when the module does not exist (an error
    inside it is raised as it is)."""
    try:
        return importlib.import_module(TRAIN_MODULE)
    except ModuleNotFoundError as e:
        if e.name in (TRAIN_MODULE, "optgym"):
            raise DocsError(
                f"{TRAIN_MODULE} cannot be found: the Python API pages document the training "
                f"API, so the docs need that module (optgym/train.py) ({e})"
            ) from None
        raise


def api_pages() -> list[Page]:
    """``optgym.make``, ``optgym.wrappers``, ``optgym.train``, ``optgym.executors`` and
    ``optgym.sandbox``."""
    import optgym
    import optgym.executors
    import optgym.sandbox
    import optgym.wrappers

    train = import_train_module()
    return [
        module_page(
            "reference/api/optgym.md", "optgym", optgym, ["make", "ENV_IDS", "__version__"],
            "Importing `optgym` registers every env id with gymnasium.",
        ),
        module_page(
            "reference/api/wrappers.md", "optgym.wrappers", optgym.wrappers,
            list(optgym.wrappers.__all__),
        ),
        module_page("reference/api/train.md", TRAIN_MODULE, train, _public_names(train)),
        module_page(
            "reference/api/executors.md", "optgym.executors", optgym.executors,
            [n for n in optgym.executors.__all__ if n not in ("DEFAULT_TIMEOUT", "EXECUTORS")],
            "Where episodes and training runs run: `--executor local|ray|inline`.",
        ),
        module_page(
            "reference/api/sandbox.md", "optgym.sandbox", optgym.sandbox,
            ["AgentSandbox", "describe_agent", "sandboxed_episode", "unavailable", "require"],
            "Where submitted agents run: the leaderboard's rerun and verify.",
        ),
    ]  # fmt: skip


def reference_index(problems: dict[str, Any]) -> Page:
    """The reference section's first page."""
    count = sum(len(p.envs) for p in problems.values())
    text = f"""# Reference

Generated from the code of this version of OptGym (its docstrings, the problem records,
the agent registry and the command-line parser).

- [Environments](envs/index.md): one page per env id ({count} ids): the env's documentation,
  spaces, work unit, datasets, leaderboard tasks and agents.
- [Agents](agents/index.md): one page per registered agent, with its settings.
- [Command line](cli.md): the `--help` of every `optgym` command.
- Python API: [`optgym.make`](api/optgym.md), [`optgym.wrappers`](api/wrappers.md),
  [`optgym.train`](api/train.md), [`optgym.executors`](api/executors.md),
  [`optgym.sandbox`](api/sandbox.md).
"""
    return Page("reference/index.md", text)


def generate(problems: dict[str, Any] | None = None) -> list[Page]:
    """Every reference page."""
    from optgym.envs import problems as all_problems

    problems = problems or all_problems()
    agents = _agents()
    pages = [reference_index(problems), envs_index(problems)]
    pages += [env_page(p, e, agents) for p in problems.values() for e in p.envs]
    pages.append(agents_index(agents, problems))
    pages += [agent_page(a, problems) for a in agents.values()]
    pages.append(cli_page())
    pages += api_pages()
    return pages


def reference_nav(pages: list[Page], problems: dict[str, Any]) -> list[Any]:
    """The nav of the generated pages, in mkdocs form."""
    by_path = {p.path for p in pages}
    envs: list[Any] = ["reference/envs/index.md"]
    for problem in problems.values():
        envs += [{e.id: f"reference/envs/{env_slug(e.id)}.md"} for e in problem.envs]
    agents: list[Any] = ["reference/agents/index.md"]
    for page in pages:
        if page.path.startswith("reference/agents/") and page.path != agents[0]:
            agents.append({Path(page.path).stem: page.path})
    nav = [
        "reference/index.md",
        {"Environments": envs},
        {"Agents": agents},
        {"Command line": "reference/cli.md"},
        {"Python API": [
            {"optgym.make": "reference/api/optgym.md"},
            {"optgym.wrappers": "reference/api/wrappers.md"},
            {"optgym.train": "reference/api/train.md"},
            {"optgym.executors": "reference/api/executors.md"},
            {"optgym.sandbox": "reference/api/sandbox.md"},
        ]},
    ]  # fmt: skip
    listed = set(_nav_paths(nav))
    missing = sorted(by_path - listed)
    if missing:
        raise DocsError(f"generated pages missing from the nav: {', '.join(missing)}")
    return nav


def _nav_paths(nav: Any) -> Iterator[str]:
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_paths(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_paths(value)


# --- the build ----------------------------------------------------------------------------------


def write_config(work: Path, docs_dir: Path, site_dir: Path, reference: list[Any]) -> Path:
    """``mkdocs.yml`` with the generated reference section in its nav, for ``docs_dir``."""
    config = yaml.safe_load(CONFIG.read_text())
    nav = config.get("nav") or []
    replaced = False
    for i, item in enumerate(nav):
        if isinstance(item, dict) and REFERENCE_TITLE in item:
            nav[i] = {REFERENCE_TITLE: reference}
            replaced = True
    if not replaced:
        nav.append({REFERENCE_TITLE: reference})
    config["nav"] = nav
    config["docs_dir"] = str(docs_dir)
    config["site_dir"] = str(site_dir)
    path = work / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def build(out: Path, work: Path) -> int:
    """Generate the pages into ``work`` and build the site into ``out``; the page count.
    :class:`DocsError` (with mkdocs' output) when mkdocs fails or warns."""
    from optgym.envs import problems as all_problems

    docs_dir = work / "docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    shutil.copytree(DOCS, docs_dir, ignore=shutil.ignore_patterns("reference"))
    problems = all_problems()
    pages = generate(problems)
    for page in pages:
        path = docs_dir / page.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page.text)
    config = write_config(work, docs_dir, out.resolve(), reference_nav(pages, problems))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config)],
        capture_output=True,
        text=True,
        cwd=work,
    )
    output = (proc.stdout + proc.stderr).strip()
    warnings = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))]
    if proc.returncode != 0 or warnings:
        raise DocsError(f"mkdocs build --strict failed (status {proc.returncode}):\n{output}")
    return sum(1 for _ in docs_dir.rglob("*.md"))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; the exit status."""
    parser = argparse.ArgumentParser(prog="scripts/docs.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("build", help="generate the reference pages and build the site")
    p.add_argument("--out", default=str(ROOT / "site"), help="site folder (default: site/)")
    p.add_argument(
        "--work",
        default=None,
        help="keep the generated Markdown and config in this folder (default: a temporary one)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = Path(args.out)
    try:
        if args.work is not None:
            work = Path(args.work).resolve()
            work.mkdir(parents=True, exist_ok=True)
            count = build(out, work)
        else:
            with tempfile.TemporaryDirectory(prefix="optgym-docs-") as tmp:
                count = build(out, Path(tmp))
    except DocsError as e:
        print(f"docs: error: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    print(f"built {count} pages into {out} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
