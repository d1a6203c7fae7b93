"""The layering of docs/architecture.md, enforced on the import graph of the installed package.

The checker reads the layer table of docs/architecture.md (each layer: its modules, the layers
it may import) and the package-folder mapping of setup.py, parses every module of the package
with :mod:`ast` (nothing is imported) and reports, one line each:

* an import the table does not allow, or one of another problem's module;
* an import of another module's private name (``from m import _x``, ``m._x``);
* an import of an OptGym module that does not exist;
* a module the table gives no layer, or two;
* a cycle among modules (imports inside functions count; those under ``if TYPE_CHECKING:``
  never run and do not).

The last test plants each kind of violation in a small tree and checks it is reported.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
TABLE_BEGIN, TABLE_END = "<!-- layers: begin -->", "<!-- layers: end -->"


# --- the written rule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    name: str
    patterns: tuple[str, ...]  # "optgym.x", "optgym.x.*", "optgym.envs.<p>.*", ...
    may_import: frozenset[str]


def read_layers(doc: Path) -> list[Layer]:
    """The layer table between the markers of ``doc``: ``| layer | `modules`... | may import |``,
    lowest layer first."""
    text = doc.read_text(encoding="utf-8")
    table = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]  # no header
    layers = []
    for row in rows:
        name, modules, may = (cell.strip() for cell in row.strip().strip("|").split("|"))
        name = re.sub(r"[^a-z ]", "", name.lower()).strip()
        patterns = tuple(re.findall(r"`([^`]+)`", modules))
        layers.append(Layer(name, patterns, frozenset(w.strip() for w in may.split(","))))
    names = {layer.name for layer in layers}
    for layer in layers:
        unknown = layer.may_import - names
        assert not unknown, f"layer {layer.name!r} may import unknown layers {sorted(unknown)}"
    return layers


def read_package_dirs(setup_py: Path) -> dict[str, str]:
    """``PACKAGE_DIRS`` of setup.py (package -> folder), read without running setup.py."""
    for node in ast.parse(setup_py.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PACKAGE_DIRS" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{setup_py} defines no PACKAGE_DIRS")


# --- the package's modules and imports ----------------------------------------------------------


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (or whose name is)
    name: str | None  # the name taken from it, or None
    line: int


def find_modules(root: Path, package_dirs: dict[str, str]) -> tuple[dict[str, Path], set[str]]:
    """Every module of the package (name -> file) and the names that are packages."""
    modules: dict[str, Path] = {}
    packages: set[str] = set()
    for package, folder in package_dirs.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if "__pycache__" in parts or not (path.parent / "__init__.py").exists():
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
                packages.add(".".join((package, *parts)))
            modules[".".join((package, *parts))] = path
    return modules, packages


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``, leaving out the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            for stmt in child.orelse:
                yield stmt
                yield from _nodes(stmt)
            continue
        yield child
        yield from _nodes(child)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def imports_of(
    name: str, path: Path, modules: dict[str, Path], packages: set[str]
) -> tuple[list[Import], list[tuple[str, str, int]]]:
    """The OptGym imports of module ``name`` and its uses of a module's private attributes
    (``module._x``, where ``module`` names an imported OptGym module): (module, attr, line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if name in packages else name.rpartition(".")[0]
    found: list[Import] = []
    aliases: dict[str, str] = {}  # a local name -> the OptGym module it is bound to
    nodes = list(_nodes(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "optgym":
                    found.append(Import(alias.name, None, node.lineno))
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases["optgym"] = "optgym"
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of this module
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base.split(".")[0] != "optgym":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.append(Import(sub, None, node.lineno))
                    aliases[alias.asname or alias.name] = sub
                else:
                    found.append(Import(base, alias.name, node.lineno))
    private = []
    for node in nodes:
        if isinstance(node, ast.Attribute) and _private(node.attr):
            head = _dotted(node.value)
            if head is None:
                continue
            first, _, rest = head.partition(".")
            if first in aliases:
                target = aliases[first] + (f".{rest}" if rest else "")
                if target in modules and target != name:
                    private.append((target, node.attr, node.lineno))
    return found, private


# --- the check ----------------------------------------------------------------------------------


def _match(pattern: str, module: str, packages: set[str]) -> str | None:
    """Whether ``module`` matches ``pattern``: None if not, else its problem ("" for none).
    ``<p>`` is a subpackage (a problem's), ``<module>`` a module that is not a package, a
    final ``*`` the module before it and everything below."""
    want, have = pattern.split("."), module.split(".")
    if want[-1] == "*":
        want = want[:-1]
        if len(have) < len(want):
            return None
    elif len(have) != len(want):
        return None
    problem = ""
    for i, part in enumerate(want):
        prefix = ".".join(have[: i + 1])
        if part == "<p>":
            if prefix not in packages:
                return None
            problem = have[i]
        elif part == "<module>":
            if prefix in packages:
                return None
        elif part != have[i]:
            return None
    return problem


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def check(root: Path, package_dirs: dict[str, str], layers: list[Layer]) -> list[str]:
    """Every breach of the layering of ``layers`` in the package under ``root``, one line
    each (see the module docstring); empty when it keeps it."""
    modules, packages = find_modules(root, package_dirs)
    problems: list[str] = []
    where: dict[str, tuple[Layer, str]] = {}  # module -> its layer and problem
    for module in sorted(modules):
        hits = [
            (layer, problem)
            for layer in layers
            for pattern in layer.patterns
            if (problem := _match(pattern, module, packages)) is not None
        ]
        if len({layer.name for layer, _ in hits}) != 1:
            named = sorted({layer.name for layer, _ in hits}) or ["none"]
            problems.append(f"{module}: in layers {', '.join(named)}; the table must give one")
            continue
        where[module] = hits[0]
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in sorted(modules.items()):
        found, private = imports_of(module, path, modules, packages)
        at = f"{modules[module].relative_to(root)}"
        for target, attr, line in private:
            problems.append(f"{at}:{line}: {module} uses the private {target}.{attr}")
        for imp in found:
            if imp.target not in modules:
                problems.append(f"{at}:{imp.line}: {module} imports {imp.target}, no module")
                continue
            if imp.name is not None and _private(imp.name) and imp.target != module:
                problems.append(
                    f"{at}:{imp.line}: {module} imports the private {imp.target}.{imp.name}"
                )
            if imp.target == module:
                continue
            graph[module].add(imp.target)
            if module not in where or imp.target not in where:
                continue
            (layer, problem), (target_layer, target_problem) = where[module], where[imp.target]
            if target_layer.name not in layer.may_import:
                problems.append(
                    f"{at}:{imp.line}: {module} ({layer.name}) imports {imp.target} "
                    f"({target_layer.name}); {layer.name} may import "
                    f"{', '.join(sorted(layer.may_import))}"
                )
            elif target_problem and target_problem != problem:
                problems.append(
                    f"{at}:{imp.line}: {module} imports {imp.target}, a module of problem "
                    f"{target_problem!r}; only that problem's own modules may"
                )
    for component in _cycles(graph):
        problems.append(f"import cycle among {', '.join(component)}")
    return problems


# --- the tests ----------------------------------------------------------------------------------


def test_the_package_keeps_the_written_layering() -> None:
    """Every module of the package has one layer of docs/architecture.md and imports only
    what its layer may, no private name of another module, and no module in a cycle."""
    problems = check(ROOT, read_package_dirs(ROOT / "setup.py"), read_layers(DOC))
    assert not problems, "\n".join(problems)


def test_the_table_names_each_layer_of_the_doc_once() -> None:
    """The table lists the layers the doc describes, lowest first, each allowed to import
    itself and never a layer above."""
    layers = read_layers(DOC)
    names = [layer.name for layer in layers]
    assert names == ["core", "executors", "problems", "agents", "runner", "leaderboard",
                     "command line"]  # fmt: skip
    for i, layer in enumerate(layers):
        assert layer.name in layer.may_import
        assert layer.may_import <= set(names[: i + 1]), layer.name


def test_every_problem_package_is_in_the_per_problem_table() -> None:
    """The doc's per-problem table names every problem package of ``PROBLEM_PACKAGES``."""
    from optgym.envs import PROBLEM_PACKAGES

    text = DOC.read_text(encoding="utf-8")
    for package in PROBLEM_PACKAGES:
        assert f"`envs/{package}/`" in text, package


def test_no_docstring_cites_a_missing_design_document() -> None:
    """Docstrings point at docs/architecture.md, not at a "DESIGN x.y" that is not here."""
    cited = [
        f"{path.relative_to(ROOT)}"
        for folder in read_package_dirs(ROOT / "setup.py").values()
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"\bDESIGN\b", path.read_text(encoding="utf-8"))
    ]
    assert not cited, cited


SMALL_TABLE = f"""
{TABLE_BEGIN}
| layer | modules | may import |
| --- | --- | --- |
| core | `optgym`, `optgym.budget`, `optgym.envs` | core |
| problems | `optgym.envs.<p>.*` | core, problems |
| runner | `optgym.bench`, `optgym.helpers.*` | core, problems, runner |
{TABLE_END}
"""


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"optgym/__init__.py": "", "envs/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (tmp_path / "architecture.md").write_text(SMALL_TABLE, encoding="utf-8")
    return tmp_path


def _check_tree(root: Path) -> list[str]:
    dirs = {"optgym": "optgym", "optgym.envs": "envs", "optgym.helpers": "helpers"}
    return check(root, dirs, read_layers(root / "architecture.md"))


CLEAN = {
    "optgym/budget.py": "X = 1\n",
    "optgym/bench.py": "from optgym.budget import X\nimport optgym.envs\n",
    "envs/a/__init__.py": "",
    "envs/a/env.py": "from optgym.budget import X\nfrom optgym.envs.a import helper\n",
    "envs/a/helper.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
    "    from optgym.envs.a.env import Y\n",
    "envs/b/__init__.py": "",
    "helpers/__init__.py": "",
    "helpers/tools.py": "",
}


def test_the_checker_passes_a_tree_that_keeps_the_rule(tmp_path: Path) -> None:
    """Downward imports, a problem's own modules, and a cycle that exists only under
    ``if TYPE_CHECKING:`` are no breach."""
    assert _check_tree(_tree(tmp_path, CLEAN)) == []


def test_the_checker_reports_each_planted_violation(tmp_path: Path) -> None:
    """An upward import, another problem's module, a private name (imported or used as an
    attribute), a missing module, a module without a layer and a cycle through a function's
    import are each reported."""
    planted = {
        **CLEAN,
        # upward: core imports the runner, inside a function (imports in functions count)
        "optgym/budget.py": "def f():\n    from optgym.bench import run\n",
        # a private name of another module, imported and used through the module
        "optgym/bench.py": "from optgym.budget import _secret\nfrom optgym import budget\n"
        "budget._hidden()\ndef run(): pass\n",
        # another problem's module; a module that does not exist
        "envs/b/env.py": "import optgym.envs.a.env\nimport optgym.nothing\n",
        # a cycle: helper -> env (module level) -> helper (in a function)
        "envs/a/helper.py": "import optgym.envs.a.env\n",
        "envs/a/env.py": "def g():\n    from optgym.envs.a import helper\n",
        # a module no layer names
        "optgym/stray.py": "",
    }
    problems = _check_tree(_tree(tmp_path, planted))
    text = "\n".join(problems)
    assert "optgym.budget (core) imports optgym.bench (runner)" in text
    assert "imports the private optgym.budget._secret" in text
    assert "uses the private optgym.budget._hidden" in text
    assert "optgym.envs.b.env imports optgym.envs.a.env, a module of problem 'a'" in text
    assert "imports optgym.nothing, no module" in text
    assert "optgym.stray: in layers none" in text
    assert "import cycle among optgym.envs.a.env, optgym.envs.a.helper" in text
    assert "import cycle among optgym.bench, optgym.budget" in text  # the upward import's
    assert len(problems) == 8, text
