"""The generated reference pages of the docs site (a mkdocs-gen-files script, see mkdocs.yml).

Written at build time, never into ``docs/``, from what this version of OptGym registers:
one page per env id and per agent, the datasets and the command line, and the section's nav
(``reference/SUMMARY.md``, read by mkdocs-literate-nav). Docstrings are rendered by
mkdocstrings (``::: path`` blocks); the tables come from the problem records and the agent
registry.
"""

from __future__ import annotations

import argparse
import html
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import mkdocs_gen_files

import optgym
from optgym.agents import agent_settings, registry
from optgym.cli import build_parser
from optgym.datasets.dataset import SPLITS
from optgym.datasets.seeded import SPLIT_SEEDS
from optgym.envs import problems
from optgym.spaces import space_text

#: Columns of the ``--help`` texts (argparse reads ``COLUMNS``).
HELP_COLUMNS = 100
_CODE = re.compile(r"(`+)(.+?)\1", re.S)


def env_slug(env_id: str) -> str:
    """The page name of an env id: ``optgym/PassOrdering-v0`` -> ``PassOrdering-v0``."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", env_id.removeprefix("optgym/"))


def agent_slug(name: str) -> str:
    """The page name of a registered agent."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def text(value: Any) -> str:
    """A record's plain text (a description, a license, a setting's help) as Markdown on one
    line: code spans kept, ``<``, ``&`` and ``*`` elsewhere shown as written."""
    parts, pos, value = [], 0, " ".join(str(value).split())
    for m in _CODE.finditer(value):
        parts += [_escape(value[pos : m.start()]), m.group()]
        pos = m.end()
    return "".join([*parts, _escape(value[pos:])]).replace("|", "\\|")


def _escape(plain: str) -> str:
    return html.escape(plain, quote=False).replace("*", "\\*")


def code(value: Any) -> str:
    """``value`` as a code span (safe in a table cell)."""
    value = str(value).replace("|", "\\|")
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def table(rows: Iterable[Sequence[Any]], header: Sequence[str] = ("property", "value")) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]) + "\n"


def fenced(body: str, language: str = "text") -> str:
    return f"```{language}\n{body.rstrip()}\n```\n"


def docstring(path: str) -> str:
    """A class's heading and docstring, rendered by mkdocstrings (no members)."""
    return (f"::: {path}\n    options:\n      show_root_full_path: false\n      members: false\n"
            "      show_bases: false\n")  # fmt: skip


# --- what the records say ---------------------------------------------------------------------


def agent_records() -> dict[str, dict[str, Any]]:
    """Every registered agent: its entry, class, the env ids it works on (read from its
    class: an agent with required settings cannot be made without them) and the problem that
    lists it (``home``; empty for an entry point)."""
    out = {}
    for name, entry in registry().items():
        cls = entry.agent_class()
        works_on = getattr(cls, "problems", ())
        works_on = (works_on,) if isinstance(works_on, str) else tuple(works_on)
        envs = [e.id for p in problems().values() for e in p.envs
                if "*" in works_on or p.name in works_on or e.id in works_on]  # fmt: skip
        home = entry.source.removeprefix("problem ") if entry.source.startswith("problem ") else ""
        out[name] = {"entry": entry, "cls": cls, "works_on": works_on, "envs": envs, "home": home}
    return out


def splits(dataset: Any) -> str:
    if dataset.infinite:
        return "; ".join(f"{s}: seeds {SPLIT_SEEDS[s][0]} to {SPLIT_SEEDS[s][1] - 1}"
                         for s in SPLITS)  # fmt: skip
    parts = []
    for split in SPLITS:
        names = list(dataset.benchmark_names(split))
        shown = ", ".join(map(code, names[:12])) + (", ..." if len(names) > 12 else "")
        parts.append(f"{split}: {len(names)}" + (f" ({shown})" if names else ""))
    return "; ".join(parts)


def dataset_section(dataset: Any) -> str:
    """A dataset: description, license, splits, how it was made, references."""
    made = [text(line) for line in dataset.provenance.splitlines() if line.strip()]
    lines = [f"### {code(dataset.uri)}", "", text(dataset.description), "",
             f"- **License**: {text(dataset.license)}", f"- **Splits**: {splits(dataset)}",
             f"- **How it was made**: {made[0] if made else '-'}"]  # fmt: skip
    lines += [f"    {line}\n" for line in made[1:]]
    if dataset.references:
        lines.append("- **References**: " + ", ".join(
            f"<{r}>" if re.fullmatch(r"https?://\S+", r) else text(r) for r in dataset.references
        ))  # fmt: skip
    return "\n".join(lines) + "\n"


def task_section(task: Any, agents: dict[str, Any]) -> str:
    refs = ", ".join(f"[{code(a)}](../agents/{agent_slug(a)}.md)" if a in agents else code(a)
                     for a in task.reference_agents)  # fmt: skip
    rows = [
        ("env config", code(repr(task.env_kwargs)) if task.env_kwargs else "the defaults"),
        ("datasets (split)", ", ".join(f"{code(u)} ({s})" for u, s in task.datasets)),
        ("budget per episode", code(task.budget)),
        ("score", text(task.score_name)),
        ("aggregate over benchmarks", task.aggregate),
        ("leaderboard test set", f"the first {task.board_size} benchmarks of each split"),
    ] + ([("reference agents", refs)] if refs else [])
    return f"### {code(task.name)}\n\n{table(rows)}\n" + fenced(
        f"optgym bench {task.name} --agent AGENT --episodes 3", "sh"
    )


# --- pages -------------------------------------------------------------------------------------


def env_page(problem: Any, entry: Any, agents: dict[str, Any]) -> str:
    cls = entry.env_class()
    try:
        env = optgym.make(entry.id)
        obs, act = code(space_text(env.observation_space)), code(space_text(env.action_space))
        env.close()
    except Exception as e:  # noqa: BLE001  a backend missing here: say so on the page
        obs = act = f"not shown: making the env failed ({text(e)})"
    module, _, name = entry.entry_point.partition(":")
    rows = [
        ("problem", f"[{problem.name}](index.md#{problem.name}): {text(problem.title)}"),
        ("class", code(entry.entry_point)),
        ("step limit", f"{entry.max_episode_steps} steps" if entry.max_episode_steps else "none"),
        ("work unit", code(cls.work_unit)),
        ("observation spaces", ", ".join(map(code, cls.observation_spaces)) or "-"),
        ("reward spaces", ", ".join(map(code, cls.reward_spaces)) or "-"),
        ("reward tolerance", text(getattr(cls, "reward_tolerance", ""))),
        ("deterministic", "no (measured rewards)" if entry.nondeterministic else "yes"),
        ("default benchmark", code(cls.default_benchmark) if cls.default_benchmark else "-"),
        ("observation space", obs),
        ("action space", act),
    ]
    ex = entry.example
    make_args = "".join(f", {k}={v!r}" for k, v in ex.config.items())
    episode = (
        f"import optgym\n\nenv = optgym.make({entry.id!r}{make_args})\n"
        f'obs, info = env.reset(seed=0, options={{"benchmark": {ex.benchmark!r}}})\n'
        f"for _ in range({ex.steps}):\n"
        "    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())\n"
        "    if terminated or truncated:\n        break\nenv.close()"
    )
    tasks = [task_section(t, agents) for t in problem.tasks if t.env_id == entry.id]
    mine = [(n, a) for n, a in agents.items() if entry.id in a["envs"]]
    parts = [
        f"# {entry.id}\n", table(rows),
        "\nThe spaces are those of `optgym.make(id)` before its first reset (on the default "
        "benchmark); spaces that depend on the benchmark are set at reset.\n",
        docstring(f"{module}.{name}"),
        "## Quick episode\n",
        "The small episode the contract tests run on this env, with random actions:\n",
        fenced(episode, "python"),
        "## Leaderboard tasks\n", *(tasks or ["No task uses this env.\n"]),
        "## Agents\n",
        table(((f"[{code(n)}](../agents/{agent_slug(n)}.md)", text(a["entry"].summary()))
               for n, a in mine), ("agent", "description"))
        if mine else "No registered agent works on this env.\n",
        "## Datasets\n", f"The datasets of the {code(problem.name)} problem "
        "([all datasets](../datasets.md)).\n",
        *(dataset_section(d) for d in problem.datasets()),
    ]  # fmt: skip
    return "\n".join(parts)


def agent_page(name: str, info: dict[str, Any], shown_on: str) -> str:
    """An agent's page; its class's docstring is rendered on ``shown_on``'s page only (one
    anchor per class), which the other names of the class link to."""
    cls, entry = info["cls"], info["entry"]
    learns = all(callable(getattr(cls, m, None)) for m in ("train", "save", "load"))
    envs = ", ".join(f"[{code(e)}](../envs/{env_slug(e)}.md)" for e in info["envs"])
    rows = [
        ("class", code(entry.target)),
        ("registered by", text(entry.source)),
        ("works on", envs or ", ".join(map(code, info["works_on"]))),
        ("stochastic", "no" if getattr(cls, "stochastic", True) is False else "yes"),
        ("learns", "yes (`train`, `save`, `load`)" if learns else "no"),
    ] + ([("preset settings", ", ".join(code(f"{k}={v}") for k, v in entry.presets.items()))]
         if entry.presets else [])  # fmt: skip
    settings = agent_settings(cls)
    required = [s for s in settings if s.required and s.name not in entry.presets]
    spec = name + "".join(f"{',' if i else ':'}{s.name}={s.name.upper()}"
                          for i, s in enumerate(required))  # fmt: skip
    task = next((t.name for p in problems().values() for t in p.tasks
                 if t.env_id in info["envs"] and "*" not in info["works_on"]), "TASK")  # fmt: skip
    parts = [f"# {name}\n", f"{text(entry.description)}.\n" if entry.description else "",
             table(rows), "", fenced(f"optgym bench {task} --agent {spec}", "sh"),
             "## Settings\n"]  # fmt: skip
    if settings:
        parts.append(f"Given as {code(name + ':key=value,key=value')} (lists take commas).\n")
        for s in settings:
            kind = f"{text(s.type_name)}, " + (
                "required" if s.required else f"default {code(repr(s.default))}"
            )
            preset = f" Preset to {code(entry.presets[s.name])}." if s.name in entry.presets else ""
            parts.append(f"- {code(s.name)} ({kind}): {text(s.help)}{preset}")
        parts.append("")
    else:
        parts.append("None.\n")
    if shown_on == name:
        parts.append(docstring(f"{cls.__module__}.{cls.__qualname__}"))
    else:
        parts.append(f"## Class {code(cls.__name__)}\n")
        parts.append(
            f"Documented on the page of [{code(shown_on)}]({agent_slug(shown_on)}.md), "
            "the same class.\n"
        )
    return "\n".join(parts)


def envs_index() -> str:
    parts = ["# Environments\n",
             "Every env id OptGym registers with gymnasium, by problem: each page shows the "
             "env's documentation, spaces, work unit, datasets, tasks and agents.\n"]  # fmt: skip
    for p in problems().values():
        rows = [(f"[{code(e.id)}]({env_slug(e.id)}.md)", code(e.env_class().work_unit),
                 e.max_episode_steps or "-",
                 ", ".join(code(t.name) for t in p.tasks if t.env_id == e.id) or "-")
                for e in p.envs]  # fmt: skip
        parts += [f"## {p.name} {{#{p.name}}}\n", f"{text(p.title)}\n",
                  table(rows, ("env id", "work unit", "step limit", "tasks"))]  # fmt: skip
    return "\n".join(parts)


def agents_index(agents: dict[str, Any]) -> str:
    parts = ["# Agents\n",
             "Every registered agent, by problem (`optgym agents` prints the same). "
             "`optgym bench` takes an agent as `NAME`, `NAME:key=value,...` or any importable "
             "class, `package.module:Class[:key=value,...]` ([Writing an agent]"
             "(../../writing-an-agent.md)).\n"]  # fmt: skip
    for home in [*problems(), ""]:
        mine = [(n, a) for n, a in agents.items() if a["home"] == home]
        if mine:
            parts += [f"## {home or 'Every problem'}\n", table(
                ((f"[{code(n)}]({agent_slug(n)}.md)", text(a["entry"].summary()))
                 for n, a in mine), ("agent", "description"))]  # fmt: skip
    return "\n".join(parts)


def datasets_page() -> str:
    parts = ["# Datasets\n",
             "Every dataset of every problem, as `optgym datasets list` prints them: what it "
             "holds, its license, its splits and how it was made "
             "([URIs, splits and building](../datasets.md)).\n"]  # fmt: skip
    for p in problems().values():
        parts.append(f"## {p.name}\n")
        parts += [dataset_section(d) for d in p.datasets()]
    return "\n".join(parts)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[int, argparse.ArgumentParser]]:
    """Every parser under ``parser`` (itself first), depth first, with its depth."""
    seen: set[int] = set()

    def walk(p: argparse.ArgumentParser, depth: int) -> Iterator[tuple[int, Any]]:
        if id(p) not in seen:
            seen.add(id(p))
            yield depth, p
            for action in p._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for child in action.choices.values():
                        yield from walk(child, depth + 1)

    return walk(parser, 0)


def cli_page() -> str:
    """The ``--help`` of every command, at ``HELP_COLUMNS`` columns."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_COLUMNS)
    try:
        return _cli_page()
    finally:
        os.environ.pop("COLUMNS") if saved is None else os.environ.update(COLUMNS=saved)


def command_anchor(prog: str) -> str:
    """The heading id of a command on the CLI page: ``optgym leaderboard run`` ->
    ``optgym-leaderboard-run`` (the other pages link to these)."""
    return re.sub(r"[^a-z0-9]+", "-", prog.lower()).strip("-")


def _cli_page() -> str:
    commands = list(_parsers(build_parser()))
    parts = ["# Command line\n",
             "The `--help` of `optgym` and of each of its commands, as this version prints "
             "them.\n",
             "\n".join(f"{'    ' * (d - 1)}- [{code(p.prog)}](#{command_anchor(p.prog)})"
                       for d, p in commands if d) + "\n"]  # fmt: skip
    for depth, p in commands:
        parts += [f"{'#' * min(depth + 2, 6)} {p.prog} {{#{command_anchor(p.prog)}}}\n",
                  fenced(p.format_help())]  # fmt: skip
    return "\n".join(parts)


def index_page() -> str:
    count = sum(len(p.envs) for p in problems().values())
    return f"""# Reference

Generated from this version of OptGym: its problem records, its agent registry, its
command-line parser and its docstrings.

- [Environments](envs/index.md): one page per env id ({count} ids): the env's documentation,
  spaces, work unit, datasets, leaderboard tasks and agents.
- [Agents](agents/index.md): one page per registered agent, with its settings.
- [Datasets](datasets.md): every dataset, its license, splits and how it was made.
- [Command line](cli.md): the `--help` of every `optgym` command.
- The [Python API](../api/index.md), module by module.
"""


def main() -> None:
    agents = agent_records()
    pages = {"index.md": index_page(), "envs/index.md": envs_index()}
    nav = mkdocs_gen_files.Nav()
    nav["Environments"] = "envs/index.md"
    for p in problems().values():
        for e in p.envs:
            pages[f"envs/{env_slug(e.id)}.md"] = env_page(p, e, agents)
            nav["Environments", e.id] = f"envs/{env_slug(e.id)}.md"
    pages["agents/index.md"] = agents_index(agents)
    nav["Agents"] = "agents/index.md"
    shown_on: dict[type, str] = {}  # a class's docstring goes on its first agent's page
    for name, info in sorted(agents.items(), key=lambda a: bool(a[1]["entry"].presets)):
        shown_on.setdefault(info["cls"], name)
    for name, info in agents.items():
        pages[f"agents/{agent_slug(name)}.md"] = agent_page(name, info, shown_on[info["cls"]])
        nav["Agents", info["home"] or "every problem", name] = f"agents/{agent_slug(name)}.md"
    pages["datasets.md"] = datasets_page()
    nav["Datasets"] = "datasets.md"
    pages["cli.md"] = cli_page()
    nav["Command line"] = "cli.md"
    for path, body in pages.items():
        with mkdocs_gen_files.open(f"reference/{path}", "w") as f:
            f.write(body)
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as f:
        f.write("- [Reference](index.md)\n" + "".join(nav.build_literate_nav()))


main()
