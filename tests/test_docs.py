"""The documentation: the site builds with no warning, and the tutorial runs as written.

``docs/tutorial.md`` marks what is run: its ```python blocks, in order and in one
namespace, and the ``optgym`` lines of its ```bash blocks, each in a temporary folder.
The ``optgym`` lines of its ```sh blocks are only parsed, and its ```yaml blocks must be
hyperparameter files that :func:`optgym.train.resolve` accepts.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
DOCS_SCRIPT = ROOT / "scripts" / "docs.py"
#: The env the tutorial trains on.
TUTORIAL_ENV = "optgym/PathPlanning2DClosedLoop-v0"
_BLOCK = re.compile(r"^(?P<fence>`{3,})(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.M | re.S)  # fmt: skip


def code_blocks(language: str, path: Path = TUTORIAL) -> list[str]:
    """The bodies of the fenced blocks of ``language`` in a Markdown file, in order."""
    text = re.sub(r"<!--.*?-->", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [m.group("body") for m in _BLOCK.finditer(text) if m.group("lang") == language]


def optgym_commands(language: str, path: Path = TUTORIAL) -> list[list[str]]:
    """The ``optgym ...`` command lines of the ``language`` blocks, as argument lists
    (continuation lines joined, comments dropped)."""
    commands = []
    for body in code_blocks(language, path):
        for line in body.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv and argv[0] == "optgym":
                commands.append(argv)
    return commands


def docs_script() -> ModuleType:
    """``scripts/docs.py`` as a module."""
    spec = importlib.util.spec_from_file_location("optgym_docs_script", DOCS_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


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


def run_optgym(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``optgym ARGS`` as the installed command runs it, in ``cwd``."""
    assert argv[0] == "optgym"
    return subprocess.run(
        [sys.executable, "-m", "optgym.cli", *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
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


def test_tutorial_commands_are_valid_commands() -> None:
    """Every ``optgym`` line of the tutorial, run or only shown, parses."""
    from optgym.cli import build_parser

    parser = build_parser()
    commands = optgym_commands("bash") + optgym_commands("sh")
    assert commands
    for argv in commands:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            try:
                parser.parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"`{shlex.join(argv)}` does not parse: {stderr.getvalue().strip()}")


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


# --- the site -------------------------------------------------------------------------------------


def test_docstring_markdown() -> None:
    docs = docs_script()
    doc = (
        "## Description\n\nUses ``x_y`` and :class:`~optgym.budget.Budget`, on <seed>; a * b.\n"
        "Args:\n    env: the env.\n    n (int): how many,\n        at most 3.\n\n"
        ">>> a = 1\n... b = 2\n>>> a + b\n3\n\n* an item\n"
    )
    md = docs.docstring_markdown(doc, shift=1)
    assert "### Description" in md
    assert "`x_y`" in md and "`Budget`" in md and "``x_y``" not in md
    assert "&lt;seed&gt;" in md and "a \\* b" in md
    assert "- `env`: the env." in md and "- `n` (int): how many, at most 3." in md
    assert "```python\na = 1\nb = 2\na + b\n# 3\n```" in md
    assert "\n* an item" in md


def test_build_fails_on_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken link is a warning, and a warning fails the build, with its text."""
    docs = docs_script()
    hand = tmp_path / "docs"
    hand.mkdir()
    (hand / "index.md").write_text("# Home\n\n[a page that is not there](missing.md)\n")
    for name in ("tutorial.md", "leaderboard.md"):
        (hand / name).write_text(f"# {name}\n")
    monkeypatch.setattr(docs, "DOCS", hand)
    monkeypatch.setattr(docs, "generate", lambda problems=None: [docs.Page(
        "reference/index.md", "# Reference\n")])  # fmt: skip
    monkeypatch.setattr(docs, "reference_nav", lambda pages, problems: ["reference/index.md"])
    with pytest.raises(docs.DocsError, match="missing.md"):
        docs.build(tmp_path / "site", tmp_path / "work")


def test_missing_train_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = docs_script()
    monkeypatch.setattr(docs, "TRAIN_MODULE", "optgym.no_such_module")
    with pytest.raises(docs.DocsError, match="optgym.no_such_module cannot be found"):
        docs.import_train_module()


def test_docs_build_has_a_page_per_env_and_the_tutorial(tmp_path: Path) -> None:
    require_train()
    import optgym

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
    docs = docs_script()
    for env_id in optgym.ENV_IDS:
        page = site / "reference" / "envs" / docs.env_slug(env_id) / "index.html"
        assert page.is_file(), f"no page for {env_id}"
        assert env_id in page.read_text(encoding="utf-8")
    tutorial = (site / "tutorial" / "index.html").read_text(encoding="utf-8")
    assert "optgym train optgym/PathPlanning2DClosedLoop-v0 --algo ppo" in tutorial
    for page in ("reference/cli", "reference/api/train", "reference/agents/ppo"):
        assert (site / page / "index.html").is_file(), page
    assert not (ROOT / "docs" / "reference").exists(), "the build wrote into docs/"
