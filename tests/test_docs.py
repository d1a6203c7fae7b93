"""The documentation: the site builds with no warning, and its pages run as written.

``docs/tutorial.md`` marks what is run: its ```python blocks, in order and in one
namespace, and the ``optgym`` lines of its ```bash blocks, each in a temporary folder.
The ``optgym`` lines of its ```sh blocks are only parsed, and its ```yaml blocks must be
hyperparameter files that :func:`optgym.train.resolve` accepts. ``docs/writing-an-agent.md``
follows the same marks; its block titled ``my_agents.py`` is the plug-in the others import.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from html import unescape
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
AGENT_PAGE = ROOT / "docs" / "writing-an-agent.md"
DATASETS_PAGE = ROOT / "docs" / "datasets.md"
DOCS_SCRIPT = ROOT / "scripts" / "docs.py"
GRIFFE_EXTENSION = ROOT / "scripts" / "griffe_optgym.py"
#: The env the tutorial trains on.
TUTORIAL_ENV = "optgym/PathPlanning2DClosedLoop-v0"
_BLOCK = re.compile(
    r"^(?P<fence>`{3,})(?P<lang>[\w-]*)(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')
_ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: The plug-in of the "Writing an agent" page: the file its example block is saved as.
AGENT_FILE = "my_agents.py"


def code_blocks(language: str, path: Path = TUTORIAL, title: str | None = None) -> list[str]:
    """The bodies of the fenced blocks of ``language`` in a Markdown file, in order; with
    ``title``, only the blocks that carry it (```python title="x.py"), else only the blocks
    that carry none."""
    text = re.sub(r"<!--.*?-->", "", path.read_text(encoding="utf-8"), flags=re.S)
    out = []
    for m in _BLOCK.finditer(text):
        found = _TITLE.search(m.group("info"))
        if m.group("lang") == language and (found and found.group("title")) == title:
            out.append(m.group("body"))
    return out


def command_lines(language: str, path: Path = TUTORIAL) -> list[tuple[dict[str, str], list[str]]]:
    """The ``[NAME=VALUE ...] optgym ...`` command lines of the ``language`` blocks, as
    the variables they set and argument lists (continuation lines joined, comments
    dropped)."""
    commands = []
    for body in code_blocks(language, path):
        for line in body.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            env = {}
            while argv and _ENV_ASSIGNMENT.match(argv[0]):
                name, _, value = argv.pop(0).partition("=")
                env[name] = value
            if argv and argv[0] == "optgym":
                commands.append((env, argv))
    return commands


def optgym_commands(language: str, path: Path = TUTORIAL) -> list[list[str]]:
    """The ``optgym ...`` command lines of the ``language`` blocks, as argument lists."""
    return [argv for _, argv in command_lines(language, path)]


def load_script(path: Path) -> ModuleType:
    """A script of ``scripts/`` as a module."""
    spec = importlib.util.spec_from_file_location(f"optgym_docs_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def docs_script() -> ModuleType:
    """``scripts/docs.py`` as a module."""
    return load_script(DOCS_SCRIPT)


def require_train() -> None:
    """Fail, saying what the tutorial needs, while ``optgym.train`` does not exist."""
    if importlib.util.find_spec("optgym.train") is None:
        pytest.fail(
            "optgym.train is missing: the tutorial needs optgym.train.train(env_id, algo=, "
            "steps=, seed=, out=, progress=) returning a run with .model_path (the saved "
            "model.zip), .steps and .seconds; optgym.train.hyperparams_path(env_id) and "
            "resolve(env_id, algo, hyperparams=FILE); and `optgym train ENV_ID --algo ppo "
            "--steps N --seed S --out DIR` writing DIR/model.zip and DIR/train.json"
        )


def run_optgym(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``optgym ARGS`` as the installed command runs it, in ``cwd``, with the variables
    ``env`` set on top of this process's."""
    assert argv[0] == "optgym"
    return subprocess.run(
        [sys.executable, "-m", "optgym.cli", *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


# --- the tutorial -------------------------------------------------------------------------------


def test_tutorial_marks_its_runnable_blocks() -> None:
    python = code_blocks("python")
    assert len(python) >= 2
    for i, body in enumerate(python):
        compile(body, f"{TUTORIAL}:python block {i + 1}", "exec")
    verbs = [argv[1] for argv in optgym_commands("bash")]
    assert verbs == ["train", "bench", "validate"], verbs
    assert code_blocks("yaml"), "the tutorial shows a hyperparameter file"


def assert_commands_parse(commands: list[list[str]]) -> None:
    """Every ``optgym`` command line (an argv) parses with the CLI's parser."""
    from optgym.cli import build_parser

    parser = build_parser()
    for argv in commands:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            try:
                parser.parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"`{shlex.join(argv)}` does not parse: {stderr.getvalue().strip()}")


def test_tutorial_commands_are_valid_commands() -> None:
    """Every ``optgym`` line of the tutorial, run or only shown, parses."""
    commands = optgym_commands("bash") + optgym_commands("sh")
    assert commands
    assert_commands_parse(commands)


def test_tutorial_hyperparameter_file_is_valid(tmp_path: Path) -> None:
    require_train()
    from optgym.train import resolve

    for i, body in enumerate(code_blocks("yaml")):
        path = tmp_path / f"block{i}.yml"
        path.write_text(body)
        config = resolve(TUTORIAL_ENV, "ppo", hyperparams=path)
        assert config.env_id == TUTORIAL_ENV
        assert config.benchmarks


def test_tutorial_shell_commands_run(tmp_path: Path) -> None:
    """train, bench and validate, in order, as a reader types them."""
    require_train()
    for argv in optgym_commands("bash"):
        proc = run_optgym(argv, tmp_path)
        assert proc.returncode == 0, (
            f"`{shlex.join(argv)}` exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
        if argv[1] == "train":
            out = tmp_path / argv[argv.index("--out") + 1]
            assert (out / "model.zip").is_file() and (out / "train.json").is_file()
        if argv[1] == "validate":
            assert re.search(r"\b[1-9][0-9]* passed, 0 failed", proc.stdout), proc.stdout


def test_tutorial_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_train()
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "tutorial"}
    for i, body in enumerate(code_blocks("python")):
        code = compile(body, f"{TUTORIAL}:python block {i + 1}", "exec")
        exec(code, namespace)  # noqa: S102  the tutorial's own code
    run = namespace["run"]
    assert Path(run.model_path).is_file()
    assert run.steps >= 1 and run.seconds > 0
    assert namespace["model"] is not None


def test_index_python_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    index = ROOT / "docs" / "index.md"
    blocks = code_blocks("python", index)
    assert blocks
    namespace: dict[str, Any] = {"__name__": "index"}
    for i, body in enumerate(blocks):
        exec(compile(body, f"{index}:python block {i + 1}", "exec"), namespace)  # noqa: S102


# --- writing an agent, datasets ----------------------------------------------------------------


def test_agent_page_marks_its_runnable_blocks() -> None:
    (plugin,) = code_blocks("python", AGENT_PAGE, title=AGENT_FILE)
    compile(plugin, f"{AGENT_PAGE}:{AGENT_FILE}", "exec")
    assert code_blocks("python", AGENT_PAGE), "the page calls the agent from Python"
    verbs = [argv[1] for argv in optgym_commands("bash", AGENT_PAGE)]
    assert verbs == ["bench", "validate"], verbs


def test_agent_and_datasets_pages_commands_are_valid_commands() -> None:
    """Every ``optgym`` line of the two pages, run or only shown, parses."""
    commands = [argv for page in (AGENT_PAGE, DATASETS_PAGE) for lang in ("bash", "sh")
                for argv in optgym_commands(lang, page)]  # fmt: skip
    assert any(argv[1:3] == ["leaderboard", "run"] and "--code" in argv for argv in commands)
    assert_commands_parse(commands)


def test_agent_page_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's plug-in, saved as it says, runs under ``optgym bench`` (inline, 200 plan
    evaluations) and its lines validate; its Python block runs too."""
    (plugin,) = code_blocks("python", AGENT_PAGE, title=AGENT_FILE)
    (tmp_path / AGENT_FILE).write_text(plugin)
    commands = command_lines("bash", AGENT_PAGE)
    bench = next(argv for _, argv in commands if argv[1] == "bench")
    assert bench[2] == "path-planning" and "--executor" in bench and "inline" in bench
    assert "calls=200" in bench and bench[bench.index("--agent") + 1].startswith("my_agents:")
    for env, argv in commands:
        proc = run_optgym(argv, tmp_path, env)
        assert proc.returncode == 0, (
            f"`{shlex.join(argv)}` exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
        if argv[1] == "validate":
            assert re.search(r"\b[1-9][0-9]* passed, 0 failed", proc.stdout), proc.stdout
    results = tmp_path / bench[bench.index("--results") + 1]
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert lines
    for line in lines:
        assert line["error"] is None, line["error"]
        assert line["agent"] == bench[bench.index("--agent") + 1]
        assert 0 < line["budget_used"]["calls"] <= 200
        trace = line["state"]["extras"]["trace"]
        assert trace[-1][1] == line["reward"] == line["state"]["reward"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, Any] = {"__name__": "writing_an_agent"}
    try:
        for i, body in enumerate(code_blocks("python", AGENT_PAGE)):
            exec(compile(body, f"{AGENT_PAGE}:python block {i + 1}", "exec"), namespace)  # noqa: S102
    finally:
        sys.modules.pop(Path(AGENT_FILE).stem, None)  # the temporary module
    assert namespace["result"].budget_used["calls"] <= 100


def test_readme_plugin_template_runs(tmp_path: Path) -> None:
    """The README's plug-in template, saved as it says, runs under ``optgym bench`` (inline,
    a small budget) and its line validates."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("A plug-in agent is a class like")
    block = readme[readme.index("```python\n", start) + len("```python\n"):]
    (tmp_path / "my_agent.py").write_text(block[: block.index("```")])
    argv = ["optgym", "bench", "path-planning", "--agent", "my_agent:Shooting",
            "--budget", "calls=200", "--benchmark", "benchmark://nav2d-v0/open",
            "--executor", "inline", "--results", "r.jsonl", "--plot", "r.png",
            "--no-progress"]  # fmt: skip
    proc = run_optgym(argv, tmp_path, {})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = [json.loads(raw) for raw in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert line["error"] is None and line["budget_used"]["calls"] == 200
    proc = run_optgym(["optgym", "validate", "r.jsonl", "--budget", "calls=200"], tmp_path, {})
    assert proc.returncode == 0 and "1 passed, 0 failed" in proc.stdout, proc.stdout


def test_datasets_page_python_blocks_run() -> None:
    blocks = code_blocks("python", DATASETS_PAGE)
    assert len(blocks) >= 2
    for i, body in enumerate(blocks):
        namespace: dict[str, Any] = {"__name__": "datasets_page"}
        exec(compile(body, f"{DATASETS_PAGE}:python block {i + 1}", "exec"), namespace)  # noqa: S102


# --- the site -------------------------------------------------------------------------------------

#: What the Python API pages must document: page -> object ids (mkdocstrings anchors).
API_OBJECTS = {
    "optgym": ["optgym.make", "optgym.ENV_IDS"],
    "agents": [f"optgym.agents.protocol.{n}" for n in
               ("Agent", "LearnedAgent", "Result", "metered", "solved")]
    + [f"optgym.agents.registry.{n}" for n in
       ("make_agent", "resolve_agent", "AgentSpec", "agent_settings", "Setting")],
    "budget": ["optgym.budget.Budget", "optgym.budget.BudgetMeter",
               "optgym.budget.BudgetMeter.room", "optgym.budget.BudgetExceeded"],
    "state": ["optgym.state.EpisodeState", "optgym.state.StateWriter", "optgym.state.json_lines"],
    "env": ["optgym.env.OptGymEnv", "optgym.env.RewardTolerance", "optgym.env.BackendCrash",
            "optgym.env.ObservationView", "optgym.env.NamedSpace"],
    "problem": ["optgym.problem.Problem", "optgym.problem.Task", "optgym.problem.EnvEntry"],
    "datasets": ["optgym.datasets.Dataset", "optgym.datasets.DatasetRegistry",
                 "optgym.datasets.Benchmark", "optgym.datasets.uri.BenchmarkUri"],
    "wrappers": ["optgym.wrappers.BudgetWrapper"],
    "train": ["optgym.train.train", "optgym.train.resolve"],
    "bench": ["optgym.bench.run_bench", "optgym.bench.run_episode", "optgym.bench.benchmark_uris",
              "optgym.bench.sandboxed_episode"],
    "validate": ["optgym.validate.validate_results"],
    "executors": ["optgym.executors.make_executor", "optgym.executors.LocalExecutor"],
    "sandbox": ["optgym.sandbox.AgentSandbox", "optgym.sandbox.SandboxedAgent"],
    "leaderboard": ["optgym.leaderboard.submission.load_submission",
                    "optgym.leaderboard.verify.verify_submission",
                    "optgym.leaderboard.board.Board", "optgym.leaderboard.rounds.make_round",
                    "optgym.leaderboard.signing.sign"],
}  # fmt: skip


def test_griffe_extension_converts_roles_and_doctests() -> None:
    """Sphinx roles become optional cross-references to the full path, doctest blocks
    become pycon blocks, fenced blocks stay as they are, and converting twice changes
    nothing."""
    import griffe

    ext = load_script(GRIFFE_EXTENSION)
    package = griffe.Module("optgym")
    budget = griffe.Module("budget", parent=package)
    package.set_member("budget", budget)
    meter = griffe.Class("BudgetMeter", parent=budget)
    budget.set_member("BudgetMeter", meter)
    doc = (
        "Charges :class:`BudgetMeter`; see :mod:`optgym.state` and :func:`~optgym.a.b`.\n\n"
        ">>> 1 + 1\n2\n\n```python\n>>> kept\n```\n"
    )
    out = ext.convert(doc, meter)
    assert '<autoref identifier="optgym.budget.BudgetMeter" optional><code>BudgetMeter<' in out
    assert '<autoref identifier="optgym.state" optional><code>optgym.state</code>' in out
    assert '<autoref identifier="optgym.a.b" optional><code>b</code></autoref>' in out
    assert "```pycon\n>>> 1 + 1\n2\n```" in out and "```python\n>>> kept\n```" in out
    assert ext.convert(out, meter) == out
    assert ext.package_dirs()["optgym.agents"] == "agents"


def page_text(page: Path | str) -> str:
    """A built page's text (a file, or its HTML), without tags: highlighted code is split
    into spans."""
    html = page.read_text(encoding="utf-8") if isinstance(page, Path) else page
    return unescape(re.sub(r"<[^>]+>", "", html))


def test_build_fails_on_a_warning(tmp_path: Path) -> None:
    """A broken link is a warning, and a warning fails the build, with its text."""
    docs = docs_script()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n[a missing page](missing.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\nvalidation:\n  links:\n    not_found: warn\n")
    with pytest.raises(docs.DocsError, match="missing.md"):
        docs.build(tmp_path / "site", config)


def test_build_refuses_a_folder_it_would_wipe(tmp_path: Path) -> None:
    """mkdocs empties the site folder: the leaderboard's site there is refused, not lost."""
    docs = docs_script()
    board = tmp_path / "site"
    board.mkdir()
    (board / "index.html").write_text("<h1>leaderboard</h1>")
    assert docs.main(["build", "--out", str(board)]) == 1
    assert (board / "index.html").read_text() == "<h1>leaderboard</h1>"


def test_docs_build_has_every_page(tmp_path: Path) -> None:
    """The strict build: a page per env id and per agent, the CLI, the hand-written pages and
    an API page per public module with the objects users touch."""
    require_train()
    import optgym
    from optgym.agents import registry

    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, str(DOCS_SCRIPT), "build", "--out", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    assert re.search(rf"built \d+ pages into {re.escape(str(site))}", proc.stdout), output
    for env_id in optgym.ENV_IDS:
        page = site / "reference" / "envs" / env_id.removeprefix("optgym/") / "index.html"
        assert page.is_file(), f"no page for {env_id}"
        assert env_id in page.read_text(encoding="utf-8")
    for name in registry():
        assert (site / "reference" / "agents" / name / "index.html").is_file(), name
    tutorial = page_text(site / "tutorial" / "index.html")
    assert "optgym train optgym/PathPlanning2DClosedLoop-v0 --algo ppo" in tutorial
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert 'id="optgym-leaderboard-run"' in cli and "--code DIR" in page_text(cli)
    for page in ("writing-an-agent", "datasets", "reference/datasets", "reference/agents/ppo"):
        assert (site / page / "index.html").is_file(), page
    for page, objects in API_OBJECTS.items():
        html = (site / "api" / page / "index.html").read_text(encoding="utf-8")
        missing = [o for o in objects if f'id="{o}"' not in html]
        assert not missing, f"api/{page} lacks {missing}"
    assert not (ROOT / "docs" / "reference").exists(), "the build wrote into docs/"
