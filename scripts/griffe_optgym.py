"""A griffe extension that lets mkdocstrings read OptGym as it is laid out and written.

* **Layout.** The import package ``optgym`` maps subpackages onto folders at the repository
  root (``optgym.agents`` is ``agents/``: ``PACKAGE_DIRS`` in ``setup.py``). Griffe finds
  only ``optgym/``; this loads each mapped folder and places it under ``optgym``.
* **Docstrings.** The code base writes docstrings in Markdown with two habits from
  reStructuredText: Sphinx roles (``:class:`~optgym.budget.Budget```) become cross-references
  that link where the target is documented and show as code elsewhere, and doctest blocks
  (``>>>`` lines) become ``pycon`` code blocks.

mkdocs.yml names this file under the Python handler's ``extensions``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parent.parent
#: ``:role:`target``` and ``:domain:role:`target```; the target may read ``Title <target>``.
ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(?P<target>[^`]+)`")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def package_dirs(setup_py: Path = ROOT / "setup.py") -> dict[str, str]:
    """``PACKAGE_DIRS`` of ``setup.py`` (subpackage -> folder), read without running it."""
    for node in ast.parse(setup_py.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PACKAGE_DIRS" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"no PACKAGE_DIRS in {setup_py}")


def _resolve(target: str, obj: griffe.Object) -> str:
    """The full path a role's target names, seen from ``obj``: ``.mod`` is a sibling of
    ``obj``'s module, ``optgym.x`` is absolute, another name is looked up in ``obj`` and
    its parents."""
    if target.startswith("."):
        module = obj.module
        package = module.parent if module.parent is not None and not module.is_package else module
        return f"{package.path}{target}"
    head = target.split(".", 1)[0]
    if head == obj.package.name:
        return target
    scope: Any = obj
    while scope is not None:
        if head in scope.members:
            return f"{scope.path}.{target}"
        scope = scope.parent
    return target


def role_ref(match: re.Match[str], obj: griffe.Object) -> str:
    """A Sphinx role as an optional cross-reference (mkdocs-autorefs' ``<autoref>``)."""
    target = match.group("target").strip()
    titled = re.fullmatch(r"(.*?)\s*<(.+)>", target)
    if titled and titled.group(1):
        shown, target = titled.group(1), titled.group(2)
    elif target.startswith("~"):
        target = target[1:]
        shown = target.rsplit(".", 1)[-1]
    else:
        shown = target
    return f'<autoref identifier="{_resolve(target, obj)}" optional><code>{shown}</code></autoref>'


def convert(text: str, obj: griffe.Object) -> str:
    """A docstring's text with roles as cross-references and doctest blocks fenced;
    fenced blocks are left as they are, so converting twice changes nothing."""
    out: list[str] = []
    lines = text.splitlines()
    fence = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if fence or m:
            out.append(line)
            if m and not fence:
                fence = m.group(1)
            elif line.strip().startswith(fence):
                fence = ""
            i += 1
        elif line.lstrip().startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            out += ["", "```pycon", *block, "```", ""]
        else:
            out.append(ROLE.sub(lambda m: role_ref(m, obj), line))
            i += 1
    return "\n".join(out)


class OptGymLayout(griffe.Extension):
    """Mapped subpackages under ``optgym``, and docstrings converted (see the module)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != "optgym":
            return
        for name, folder in package_dirs().items():
            parent, _, child = name.rpartition(".")
            found = pkg.members.get(child)
            if parent != "optgym" or (found is not None and not found.is_alias):
                continue  # the package itself, or found where griffe looks (an installed copy)
            sub = loader.load(ROOT / folder, try_relative_path=True)
            assert isinstance(sub, griffe.Module)
            loader.modules_collection.del_member(sub.name)
            sub.name = child
            pkg.set_member(child, sub)

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        # a mapped folder is converted once placed under optgym, where its paths are right
        if obj.docstring is not None and obj.package.name == "optgym":
            obj.docstring.value = convert(obj.docstring.value, obj)

    def on_module(self, *, mod: griffe.Module, **kwargs: Any) -> None:
        self.on_object(obj=mod)  # the package itself has no on_object (converting is idempotent)
