"""Agents by name, as plug-ins, with typed settings.

An agent spec is what ``--agent`` takes:

* ``NAME``: a registered agent (the problems' own, then the ``optgym.agents`` entry points);
* ``NAME:key=value,key=value``: the same with settings;
* ``package.module:Class`` or ``package.module:Class:key=value,...``: any agent class that
  can be imported (a file ``mymod.py`` in the working directory is ``mymod:MyAgent``).

A setting's type comes from the class's constructor annotations (``int``, ``float``,
``bool``, ``str``, ``Path``, ``X | None``, ``Literal[...]``, lists and tuples of those,
comma-separated); its help from the attribute docstring under the dataclass field.

>>> spec = resolve_agent("cem:population=50")
>>> spec.canonical
'cem:population=50'
>>> agent = spec.make()
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from optgym.problem import Task, load_object

_MISSING = inspect.Parameter.empty
_SETTING_SPLIT = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")
_TRUE = {"true", "1", "yes", "on"}
# the end of a sentence: a full stop and a capital, not after an abbreviation ("et al.")
_SENTENCE_END = re.compile(
    r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)(?<!\bcf)(?<!\bFig)\.\s+(?=[A-Z(])"
)
_FALSE = {"false", "0", "no", "off"}


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting of an agent class: its name, type, default and help."""

    name: str
    annotation: Any
    default: Any
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def type_name(self) -> str:
        return _type_name(self.annotation)

    def parse(self, text: str) -> Any:
        """The value of ``text`` for this setting; ``ValueError`` naming the setting, the
        value and the type it needs."""
        try:
            return _parse(text.strip(), self.annotation)
        except ValueError as e:
            raise ValueError(
                f"setting {self.name}={text!r}: {e} (expected {self.type_name})"
            ) from None


def _type_name(annotation: Any) -> str:
    if annotation is _MISSING or annotation is Any:
        return "str"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _parse(text: str, annotation: Any) -> Any:
    if annotation is _MISSING or annotation is Any or annotation is str:
        return text
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        if type(None) in members and text.lower() in ("none", "null", ""):
            return None
        errors = []
        for member in members:
            if member is type(None):
                continue
            try:
                return _parse(text, member)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError("; ".join(errors) or "no type fits")
    if origin is Literal:
        choices = typing.get_args(annotation)
        for choice in choices:
            if str(choice) == text:
                return choice
        raise ValueError(f"not one of {', '.join(map(str, choices))}")
    if origin in (list, tuple, Sequence, typing.Sequence) or annotation in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis] or [str]
        items = [_parse(item.strip(), args[0]) for item in text.split(",") if item.strip()]
        return tuple(items) if origin is tuple else items
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("not a boolean (true or false)")
    if annotation is int:
        try:
            return int(text, 10)
        except ValueError:
            raise ValueError("not an integer") from None
    if annotation is float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        if value != value:
            raise ValueError("NaN is not a setting")
        return value
    if annotation is Path:
        return Path(text)
    raise ValueError(f"a {_type_name(annotation)} cannot be given on the command line")


def _attribute_docs(cls: type) -> dict[str, str]:
    """``name -> docstring`` of the string literals right after annotated class attributes
    (the dataclass-field docstrings cleanrl and tyro read), for ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def agent_settings(cls: type) -> list[Setting]:
    """The settings of an agent class: its constructor's keyword arguments, typed."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001  unresolvable annotations: settings are strings
        hints = {}
    docs = _attribute_docs(cls)
    out = []
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        out.append(Setting(name, hints.get(name, _MISSING), param.default, docs.get(name, "")))
    return out


def parse_settings(text: str) -> dict[str, str]:
    """``"a=1,b=x,y"`` -> ``{"a": "1", "b": "x,y"}`` (a comma starts a new setting only
    before ``key=``); ``ValueError`` for an item that is not ``key=value``."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in _SETTING_SPLIT.split(text))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"bad setting {item!r}; expected key=value, e.g. 'population=50'")
        if key in out:
            raise ValueError(f"setting {key!r} is given twice")
        out[key] = value.strip()
    return out


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentEntry:
    """A registered agent: its class (``module:Class``), preset settings, description,
    where it comes from (``problem pass-ordering`` or ``entry point``) and, for a problem's
    own agent, what its record says it works on (the problem, or the env ids its record
    restricts it to; empty for a plug-in, whose class declares its ``problems``)."""

    name: str
    target: str
    presets: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    works_on: tuple[str, ...] = ()

    def agent_class(self) -> type:
        """The agent class (imports its module); ``ValueError`` if it cannot."""
        cls = load_object(self.target)
        if not inspect.isclass(cls):
            raise ValueError(f"{self.target} is not a class")
        return cls

    def summary(self) -> str:
        """The description, or the first line of the class docstring."""
        if self.description:
            return self.description
        cls = self.agent_class()
        doc = cls.__doc__ or ""
        if doc.startswith(f"{cls.__name__}("):  # dataclass's made-up docstring: no description
            return "-"
        doc = " ".join((inspect.getdoc(cls) or "").split("\n\n", 1)[0].split())
        return _SENTENCE_END.split(doc, maxsplit=1)[0].rstrip(".")  # the first sentence


def _split_target(target: str) -> tuple[str, dict[str, str]]:
    """``"module:Class:k=v"`` -> (``"module:Class"``, settings)."""
    module, _, rest = target.partition(":")
    cls, _, settings = rest.partition(":")
    return f"{module}:{cls}", parse_settings(settings)


@cache
def registry() -> dict[str, AgentEntry]:
    """Every registered agent by name: each problem's, then the ``optgym.agents`` entry
    points. ``ValueError`` when two share a name."""
    from optgym.envs import problems

    out: dict[str, AgentEntry] = {}

    def add(entry: AgentEntry) -> None:
        if entry.name in out:
            raise ValueError(
                f"agent name {entry.name!r} is registered twice ({out[entry.name].source}, "
                f"{entry.source})"
            )
        out[entry.name] = entry

    for problem in problems().values():
        for name, record in problem.agents.items():
            cls_target, presets = _split_target(record.target)
            works_on = tuple(record.envs) or (problem.name,)
            source = f"problem {problem.name}"
            add(AgentEntry(name, cls_target, presets, record.description, source, works_on))
    for ep in entry_points(group="optgym.agents"):
        cls_target, presets = _split_target(ep.value)
        add(AgentEntry(ep.name, cls_target, presets, "", f"entry point ({ep.value})"))
    return out


@dataclass(frozen=True)
class AgentSpec:
    """A resolved ``--agent`` value: the class to make and its typed settings."""

    canonical: str  # what result lines record: the name (or module:Class) and settings
    entry: AgentEntry
    settings: dict[str, Any]

    def make(self) -> Any:
        """A new agent; ``ValueError`` from the class's own checks of its settings."""
        cls = self.entry.agent_class()
        try:
            return cls(**self.settings)
        except TypeError as e:
            raise ValueError(f"cannot make agent {self.canonical!r}: {e}") from None

    def problems(self) -> tuple[str, ...]:
        """What the agent works on (problem names or env ids; ``"*"``: any): a problem's
        own agent, what its record says; a plug-in, what its class declares
        (:func:`declared_problems`)."""
        if self.entry.works_on:
            return self.entry.works_on
        return declared_problems(self.entry.agent_class())

    @property
    def stochastic(self) -> bool:
        """Whether the agent's result may depend on its seed: true unless its class says
        ``stochastic = False``."""
        return getattr(self.entry.agent_class(), "stochastic", True) is not False

    def check_task(self, task: Task) -> None:
        """``ValueError`` unless the agent works on ``task``'s problem or env."""
        check_problems(self.canonical, self.problems(), task)


def record_fit(cls: type) -> tuple[list[str], tuple[str, ...]]:
    """The names the problems' records give ``cls`` and what its entries work on together
    (problem names or env ids). A class no record lists takes what its nearest listed base
    works on, and no name; ``([], ())`` where no record lists it nor a base."""
    for klass in cls.__mro__:
        target = f"{klass.__module__}:{klass.__qualname__}"
        entries = [e for e in registry().values() if e.works_on and e.target == target]
        if entries:
            works_on = tuple(dict.fromkeys(p for e in entries for p in e.works_on))
            return [e.name for e in entries] if klass is cls else [], works_on
    return [], ()


def declared_problems(agent: Any) -> tuple[str, ...]:
    """What an agent (an instance or its class) works on (problem names or env ids;
    ``"*"``: any): its ``problems`` attribute where it has one (a plug-in's class says it;
    an instance may narrow it, as a trained model to its env), else what the problems'
    records say of its class (:func:`record_fit`). ``ValueError`` when neither says."""
    declared = getattr(agent, "problems", None)
    if isinstance(declared, str):
        declared = (declared,)
    if declared is None:
        declared = record_fit(agent if isinstance(agent, type) else type(agent))[1]
    if not declared or not all(isinstance(p, str) for p in declared):
        cls = agent if isinstance(agent, type) else type(agent)
        raise ValueError(
            f"agent class {cls.__module__}:{cls.__qualname__} declares no problems: give it "
            "a class attribute problems = ('path-planning', ...) (problem names or env ids)"
        )
    return tuple(declared)


def check_problems(agent: str, works_on: Sequence[str], task: Task) -> None:
    """``ValueError`` unless an agent (``agent``, its spec) that declares it works on
    ``works_on`` (problem names or env ids; ``"*"``: any) works on ``task``."""
    if "*" in works_on:  # any problem (a trained model checks its env when it runs)
        return
    if task.problem not in works_on and task.env_id not in works_on:
        shown = ", ".join(map(str, list(works_on)[:8])) or "nothing"
        raise ValueError(
            f"agent {agent!r} works on {shown}, not on task {task.name!r} (problem "
            f"{task.problem}, env {task.env_id})"
        )


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_setting_text(v) for v in value)
    return str(value)


def _canonical(head: str, settings: dict[str, Any]) -> str:
    if not settings:
        return head
    return head + ":" + ",".join(f"{k}={_setting_text(v)}" for k, v in sorted(settings.items()))


def _did_you_mean(name: str, known: Any) -> str:
    """`` (did you mean 'cem'?)`` for a name close to a known one, else ""."""
    import difflib

    close = difflib.get_close_matches(name.lower(), list(known), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def resolve_agent(spec: str) -> AgentSpec:
    """Resolve an ``--agent`` value (see the module docstring); ``ValueError`` naming what is
    wrong: an unknown name (with the names there are), a class that cannot be imported, an
    unknown setting (with the settings there are) or a bad value."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"an agent spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    known = registry()
    head, _, rest = spec.partition(":")
    if head in known:
        entry = known[head]
        given = parse_settings(rest)
    elif ":" in spec:
        cls_name, _, settings = rest.partition(":")
        if not cls_name.isidentifier():
            raise ValueError(
                f"unknown agent {head!r}{_did_you_mean(head, known)} (or bad plug-in "
                f"{spec!r}); allowed: {', '.join(known)}, or package.module:Class[:key=value,...]"
            )
        head = f"{head}:{cls_name}"
        entry = AgentEntry(head, head, {}, "", "plug-in")
        given = parse_settings(settings)
    else:
        raise ValueError(
            f"unknown agent {spec!r}{_did_you_mean(spec, known)}; allowed: {', '.join(known)}, "
            "or package.module:Class[:key=value,...]"
        )
    cls = entry.agent_class()
    settings = {s.name: s for s in agent_settings(cls)}
    raw = {**entry.presets, **given}
    typed: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in settings:
            allowed = ", ".join(settings) or "none"
            raise ValueError(f"agent {head!r} has no setting {key!r}; its settings: {allowed}")
        typed[key] = settings[key].parse(text)
    missing = [s.name for s in settings.values() if s.required and s.name not in typed]
    if missing:
        raise ValueError(f"agent {head!r} needs the settings {', '.join(missing)}")
    canonical = _canonical(head, {k: typed[k] for k in given})
    return AgentSpec(canonical, entry, typed)


_PLUGIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def check_recorded_agent(spec: str, task: Task) -> str | None:
    """Why an agent spec read from a results file is wrong for ``task``, or None; imports
    nothing a file names. A registered name (with settings) is resolved and checked against
    the task; a ``module:Class`` plug-in is checked for its form only, neither looked up
    nor imported (a results file must not run code, nor probe what is installed): the
    replay checks its state, and the leaderboard runs its shipped code in the sandbox."""
    if not isinstance(spec, str) or not spec.strip():
        return "the agent must be a non-empty string"
    head = spec.partition(":")[0]
    if head in registry():
        try:
            resolve_agent(spec).check_task(task)
        except ValueError as e:
            return str(e)
        return None
    plugin, _, settings = spec.rpartition(":") if spec.count(":") >= 2 else (spec, "", "")
    if not _PLUGIN.fullmatch(plugin):
        return "unknown agent: not a registered name nor package.module:Class"
    try:
        parse_settings(settings)
    except ValueError as e:
        return str(e)
    return None


def make_agent(spec: str, **settings: Any) -> Any:
    """An agent from a spec, with ``settings`` (Python values) on top of the spec's own."""
    resolved = resolve_agent(spec)
    if settings:
        resolved = AgentSpec(resolved.canonical, resolved.entry, {**resolved.settings, **settings})
    return resolved.make()


def agents_for(task_or_problem: str) -> list[str]:
    """Names of the registered agents that work on a problem (or env id)."""
    out = []
    for name in registry():
        spec = resolve_agent(name)
        if task_or_problem in spec.problems():
            out.append(name)
    return out
