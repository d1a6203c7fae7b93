"""Train stable-baselines3 (and sb3-contrib) policies on any OptGym env or task.

``optgym train ENV_OR_TASK --algo ppo|maskable-ppo|dqn|a2c`` and :func:`train` read the
env's hyperparameter file, shipped in its problem package as
``envs/<problem>/hyperparams/<EnvName-vN>.yml`` (as the RL Zoo ships one per env). A file
holds:

* ``env_kwargs``: the env's settings while it trains;
* ``wrappers``: a list of ``{Name: {setting: value}}`` from :data:`WRAPPERS`, applied in
  order around the env (graph padding, fixed-size scores, a per-step time cap, ...);
* ``benchmarks``: where each reset draws its benchmark from, a list of
  ``{dataset: URI, split: train|validation, count: N}`` (the first ``N`` of the split);
  training never touches a test split. Given a task instead of an env id, the task's own
  datasets are used, with their train split;
* ``n_envs``: sub-envs of the vector env (each with its own benchmark sampler and seed);
* one section per algorithm (``ppo``, ``a2c``, ``dqn``, ``maskable-ppo``): ``policy``,
  ``n_timesteps`` (the default length of a run) and the algorithm's keyword arguments.
  A string ``"package.module:Name"`` under ``policy`` or as a ``*_class``/``activation_fn``
  value names a class (a GNN features extractor, a policy).

A run writes into ``out``: ``model.zip`` (the SB3 model), ``train.json`` (the resolved
settings, the benchmarks, the seed, what the run took and its episode rewards),
``checkpoints/`` and ``tensorboard/``. ``--agent sb3:path=OUT`` benchmarks the model like
any agent (:class:`optgym.agents.sb3.Sb3Agent`).

>>> run = train("optgym/PathPlanning2DClosedLoop-v0", algo="ppo", steps=256, out="runs/nav")
>>> run.model_path
PosixPath('runs/nav/model.zip')
"""

from __future__ import annotations

import importlib.resources
import inspect
import json
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import FlattenObservation, TimeLimit

from optgym.wrappers import FixedScores, NamedObservation, PaddedGraph, StepTimeCap

#: ``--algo`` name -> (module, class).
ALGOS: dict[str, tuple[str, str]] = {
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "dqn": ("stable_baselines3", "DQN"),
    "maskable-ppo": ("sb3_contrib", "MaskablePPO"),
}

#: Hyperparameter-file keys that are not an algorithm section.
_TOP_KEYS = ("env_kwargs", "wrappers", "benchmarks", "n_envs")
_TRAIN_SPLITS = ("train", "validation")
MODEL_FILE = "model.zip"
CONFIG_FILE = "train.json"


#: The wrappers a hyperparameter file may name, by name.
WRAPPERS: dict[str, Callable[..., gym.Env]] = {
    "PaddedGraph": PaddedGraph,
    "FixedScores": FixedScores,
    "StepTimeCap": StepTimeCap,
    "NamedObservation": NamedObservation,
    "TimeLimit": TimeLimit,
    "FlattenObservation": FlattenObservation,
}

#: Wrappers a trained policy needs when it acts on another env (not the training episode's
#: length nor its time cap: the runner's budget rules those).
ADAPTERS = ("PaddedGraph", "FixedScores", "NamedObservation", "FlattenObservation")


@dataclass
class TrainConfig:
    """A resolved training set-up: what :func:`train` runs and ``train.json`` records."""

    env_id: str
    algo: str
    hyperparams: dict[str, Any]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    wrappers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    benchmarks: list[str] = field(default_factory=list)
    n_envs: int = 1
    source: str = ""  # the hyperparameter file

    def to_json(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "algo": self.algo,
            "hyperparams": self.hyperparams,
            "env_kwargs": self.env_kwargs,
            "wrappers": [[name, kwargs] for name, kwargs in self.wrappers],
            "benchmarks": self.benchmarks,
            "n_envs": self.n_envs,
            "source": _shipped_name(self.source),
        }


def _shipped_name(path: str) -> str:
    """A hyperparameter file shipped in OptGym as ``optgym/<path in the package>`` (no
    machine's folders in a record); any other file as given."""
    import optgym

    root = Path(optgym.__file__).resolve().parent.parent
    try:
        relative = Path(path).resolve().relative_to(root)
    except ValueError:
        return path
    parts = relative.parts
    return "optgym/" + "/".join(parts[1:] if parts[0] == "optgym" else parts)


@dataclass
class TrainRun:
    """What a finished :func:`train` call gives: the saved model and how training went."""

    model_path: Path
    config_path: Path
    steps: int
    seconds: float
    episodes: int
    mean_episode_reward: float | None


# --- hyperparameter files ---------------------------------------------------------------------


def _env_entry(env_id: str) -> Any:
    """The registration record (``optgym.problem.EnvEntry``) of ``env_id``."""
    from optgym.envs import problem_of_env

    return next(e for e in problem_of_env(env_id).envs if e.id == env_id)


def hyperparams_path(env_id: str) -> Path:
    """The hyperparameter file shipped for ``env_id`` (``ValueError`` for unknown ids or an
    env that ships none)."""
    entry = _env_entry(env_id)
    package = entry.entry_point.split(":")[0].rsplit(".", 1)[0]
    name = env_id.split("/")[-1] + ".yml"
    path = Path(str(importlib.resources.files(package).joinpath("hyperparams", name)))
    if not path.is_file():
        raise ValueError(f"{env_id} ships no hyperparameter file ({package}/hyperparams/{name})")
    return path


def read_hyperparams(path: str | Path) -> dict[str, Any]:
    """A hyperparameter file as a dict; ``ValueError`` naming the file and what is wrong
    (never its contents)."""
    import yaml

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ValueError(f"cannot read hyperparameter file {path}: {e.strerror}") from None
    if size > 1 << 20:
        raise ValueError(f"hyperparameter file {path} is {size} bytes; at most 1 MiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read hyperparameter file {path}: {type(e).__name__}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"hyperparameter file {path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ValueError(f"hyperparameter file {path} must hold a mapping of settings")
    return data


def _check_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a mapping of names to values")
    return dict(value)


def _parse_wrappers(value: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"wrappers in {where} must be a list of {{Name: {{settings}}}}")
    out = []
    for item in value:
        if isinstance(item, str):
            name, kwargs = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            name, kwargs = next(iter(item.items()))
            kwargs = _check_mapping(kwargs, f"the settings of wrapper {name!r} in {where}")
        else:
            raise ValueError(f"each wrapper in {where} is a name or {{Name: {{settings}}}}")
        if name not in WRAPPERS:
            raise ValueError(f"unknown wrapper {name!r} in {where}; allowed: {', '.join(WRAPPERS)}")
        out.append((name, kwargs))
    return out


def _benchmark_uris(
    env_id: str, specs: Any, where: str, splits: Sequence[str] = _TRAIN_SPLITS
) -> list[str]:
    """The benchmark URIs of ``specs`` (``{dataset, split, count}`` mappings)."""
    from optgym.envs import problem_of_env

    if not isinstance(specs, list) or not specs:
        raise ValueError(f"benchmarks in {where} must be a non-empty list")
    registry = None
    uris: list[str] = []
    for spec in specs:
        spec = _check_mapping(spec, f"a benchmarks entry in {where}")
        unknown = set(spec) - {"dataset", "split", "count"}
        if unknown or "dataset" not in spec:
            raise ValueError(
                f"a benchmarks entry in {where} has keys dataset, split (train or "
                f"validation) and count; got {', '.join(sorted(spec))}"
            )
        split, count = spec.get("split", "train"), spec.get("count", 100)
        if split not in splits:
            raise ValueError(
                f"training draws from the {' or '.join(splits)} split, never {split!r} ({where})"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer in {where}, got {count!r}")
        if registry is None:
            from optgym.datasets.dataset import DatasetRegistry

            registry = DatasetRegistry(problem_of_env(env_id).datasets())
        dataset = registry.dataset(str(spec["dataset"]))
        taken = dataset.take(split, count)
        if not taken:
            raise ValueError(f"dataset {dataset.uri} has no {split} benchmarks ({where})")
        uris.extend(taken)
    return uris


def resolve(
    target: str,
    algo: str = "ppo",
    hyperparams: str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    n_envs: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """The training set-up for ``target`` (an env id or a task name) and ``algo``, from the
    env's hyperparameter file (or ``hyperparams``), with ``env_kwargs``, ``n_envs`` and the
    algorithm's ``overrides`` (``{"n_epochs": 1}``) over the file's. ``ValueError`` names
    what is wrong and what is allowed."""
    import optgym
    from optgym.leaderboard.tasks import all_tasks

    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; allowed: {', '.join(ALGOS)}")
    tasks = all_tasks()
    task = tasks.get(target)
    if task is None and target not in optgym.ENV_IDS:
        raise ValueError(
            f"{target!r} is neither an env id nor a task; env ids: {', '.join(optgym.ENV_IDS)}; "
            f"tasks: {', '.join(tasks)}"
        )
    env_id = task.env_id if task is not None else target
    path = Path(hyperparams) if hyperparams is not None else hyperparams_path(env_id)
    data = read_hyperparams(path)
    where = str(path)
    unknown = set(data) - set(_TOP_KEYS) - set(ALGOS)
    if unknown:
        allowed = ", ".join((*_TOP_KEYS, *ALGOS))
        names = ", ".join(sorted(unknown))
        raise ValueError(f"unknown keys in {where}: {names}; allowed: {allowed}")
    if algo not in data:
        have = ", ".join(a for a in ALGOS if a in data) or "none"
        raise ValueError(f"{where} has no {algo!r} section for {env_id}; it has: {have}")
    section = _check_mapping(data[algo], f"the {algo} section of {where}")
    section.update(overrides or {})
    section = check_algo_settings(
        algo, section, lambda key: "from --set" if key in (overrides or {}) else f"in {where}"
    )
    kwargs = {**_check_mapping(data.get("env_kwargs"), f"env_kwargs in {where}")}
    if task is not None:
        kwargs = {**task.env_kwargs, **kwargs}
    kwargs.update(env_kwargs or {})
    check_env_kwargs(
        env_id,
        kwargs,
        lambda key: "from --env-kwargs" if key in (env_kwargs or {}) else f"in {where}",
    )
    wrappers = _parse_wrappers(data.get("wrappers"), where)
    envs = n_envs if n_envs is not None else data.get("n_envs", 1)
    if isinstance(envs, bool) or not isinstance(envs, int) or not 1 <= envs <= 64:
        raise ValueError(f"n_envs must be an integer in [1, 64], got {envs!r}")
    benchmarks: list[str] = []
    if task is not None:  # the task's datasets, their train splits (where they have one)
        count = 100
        for spec in data.get("benchmarks") or []:
            if isinstance(spec, dict) and isinstance(spec.get("count"), int):
                count = spec["count"]
                break
        for uri, _ in task.datasets:
            spec = {"dataset": uri, "split": "train", "count": count}
            try:
                benchmarks += _benchmark_uris(env_id, [spec], f"task {task.name}")
            except ValueError as e:
                if "has no train benchmarks" not in str(e):
                    raise
    if not benchmarks:  # an env id, or a task whose datasets have no train split
        benchmarks = _benchmark_uris(env_id, data.get("benchmarks"), where)
    return TrainConfig(
        env_id=env_id,
        algo=algo,
        hyperparams=section,
        env_kwargs=kwargs,
        wrappers=wrappers,
        benchmarks=benchmarks,
        n_envs=envs,
        source=where,
    )


def _classes(value: Any, key: str = "") -> Any:
    """``"package.module:Name"`` strings under class-valued keys, resolved to objects."""
    from optgym.problem import load_object

    if isinstance(value, dict):
        return {k: _classes(v, k) for k, v in value.items()}
    if (
        isinstance(value, str)
        and ":" in value
        and (key == "policy" or key.endswith("_class") or key == "activation_fn")
    ):
        return load_object(value)
    return value


# --- checking settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingRange:
    """The values one numeric SB3 keyword argument may take."""

    integer: bool  # an int (never a bool); else any finite number
    low: float
    high: float = math.inf
    low_open: bool = False  # ``low`` itself is refused
    none: bool = False  # ``None`` is allowed (the feature is off)
    schedule: bool = False  # a callable (a schedule of the progress left) is allowed too
    why: str = ""  # what a special value means

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is one of this setting's values."""
        if value is None:
            return self.none
        if callable(value) and not isinstance(value, type):
            return self.schedule
        if isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float)):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def text(self) -> str:
        """What the setting takes, e.g. ``"a number in [0, 1]"``."""
        kind = "an integer" if self.integer else "a number"
        low, high = _number_text(self.low), _number_text(self.high)
        if self.high == math.inf:
            bound = f"> {low}" if self.low_open else f">= {low}"
        else:
            bound = f"in {'(' if self.low_open else '['}{low}, {high}]"
        schedule = " or a schedule (a callable)" if self.schedule else ""
        none = " or None" if self.none else ""
        return f"{kind} {bound}{schedule}{none}{self.why}"


def _number_text(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return str(int(x)) if x == int(x) else str(x)


#: The numeric SB3 / sb3-contrib keyword arguments (and ``n_timesteps``) and their values, as
#: SB3's documentation gives them: a value outside them fails deep inside ``learn`` (an
#: ``UnboundLocalError`` for ``n_epochs=-1``) or silently trains nothing.
SETTING_RANGES: dict[str, SettingRange] = {
    "n_timesteps": SettingRange(True, 1),
    "n_steps": SettingRange(True, 1),
    "batch_size": SettingRange(True, 1),
    "n_epochs": SettingRange(True, 1),
    "buffer_size": SettingRange(True, 1),
    "learning_starts": SettingRange(True, 0),
    "train_freq": SettingRange(True, 1, why=", or [N, 'step' or 'episode']"),
    "gradient_steps": SettingRange(True, -1, why=" (-1: as many as the rollout's env steps)"),
    "target_update_interval": SettingRange(True, 1),
    "sde_sample_freq": SettingRange(True, -1, why=" (-1: once per rollout)"),
    "stats_window_size": SettingRange(True, 1),
    "learning_rate": SettingRange(False, 0, low_open=True, schedule=True),
    "gamma": SettingRange(False, 0, 1),
    "gae_lambda": SettingRange(False, 0, 1),
    "clip_range": SettingRange(False, 0, low_open=True, schedule=True),
    "clip_range_vf": SettingRange(False, 0, low_open=True, none=True, schedule=True),
    "target_kl": SettingRange(False, 0, low_open=True, none=True),
    "ent_coef": SettingRange(False, 0),
    "vf_coef": SettingRange(False, 0),
    "max_grad_norm": SettingRange(False, 0, low_open=True),
    "rms_prop_eps": SettingRange(False, 0, low_open=True),
    "tau": SettingRange(False, 0, 1),
    "exploration_fraction": SettingRange(False, 0, 1),
    "exploration_initial_eps": SettingRange(False, 0, 1),
    "exploration_final_eps": SettingRange(False, 0, 1),
}
_BOOL_SETTINGS = ("normalize_advantage", "use_sde", "use_rms_prop", "optimize_memory_usage")
_MAPPING_SETTINGS = ("policy_kwargs", "rollout_buffer_kwargs", "replay_buffer_kwargs")
#: Keyword arguments :func:`train` gives the algorithm itself, and where they come from.
_RESERVED = {
    "env": "the env id or task", "seed": "--seed", "verbose": "optgym train",
    "tensorboard_log": "--no-tensorboard and --out", "_init_setup_model": "optgym train",
}  # fmt: skip
_NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def _value_text(value: Any) -> str:
    """``repr(value)``, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _policy_class(algo_cls: Any, policy: Any) -> Any:
    """The policy class ``policy`` names for ``algo_cls`` (an alias or a loaded class), or
    None when it names none."""
    if isinstance(policy, type):
        return policy
    if isinstance(policy, str) and policy in getattr(algo_cls, "policy_aliases", {}):
        return algo_cls.policy_aliases[policy]
    return None


def _check_net_arch(value: Any, origin: str) -> None:
    def layers(v: Any) -> bool:
        return isinstance(v, list) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in v
        )

    if layers(value) or (
        isinstance(value, dict)
        and set(value) <= {"pi", "vf", "qf"}
        and all(map(layers, value.values()))
    ):
        return
    raise ValueError(
        f"policy_kwargs net_arch must be a list of layer sizes (integers >= 1) or "
        f"{{pi: [...], vf: [...]}}, got {_value_text(value)} ({origin})"
    )


def check_algo_settings(
    algo: str, settings: Mapping[str, Any], origin: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """``settings`` (an algorithm section: ``policy``, ``n_timesteps`` and the algorithm's
    keyword arguments) checked before anything runs, as a new dict (``train_freq`` given as a
    list becomes the tuple SB3 wants). ``ValueError`` names the setting, its value, what it
    may be and ``origin(name)`` (e.g. ``"from --set"``): an unknown or reserved name, a
    number out of its :data:`SETTING_RANGES` range, a policy or ``policy_kwargs`` the
    algorithm does not take."""
    where = origin or (lambda key: f"{algo} setting")
    cls = algo_class(algo)
    params = inspect.signature(cls.__init__).parameters
    allowed = sorted({"policy", "n_timesteps", *params} - {"self", *_RESERVED})
    out = dict(settings)
    for key, value in settings.items():
        if key in _RESERVED:
            raise ValueError(
                f"{key} is set by {_RESERVED[key]}, not as an algorithm setting ({where(key)})"
            )
        if key not in allowed:
            raise ValueError(
                f"cannot make {cls.__name__} with the unknown setting {key!r} ({where(key)}); "
                f"allowed: {', '.join(allowed)}"
            )
        if key == "train_freq" and isinstance(value, (list, tuple)):
            if (
                len(value) != 2
                or not SettingRange(True, 1).allows(value[0])
                or value[1] not in ("step", "episode")
            ):
                raise ValueError(
                    f"train_freq must be {SETTING_RANGES[key].text()}, got "
                    f"{_value_text(value)} ({where(key)})"
                )
            out[key] = (value[0], value[1])
        elif key in SETTING_RANGES and not SETTING_RANGES[key].allows(value):
            hint = ""
            if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
                hint = " (a string: YAML reads 1e-3 as text, write 1.0e-3)"
            raise ValueError(
                f"{key} must be {SETTING_RANGES[key].text()}, got {_value_text(value)}{hint} "
                f"({where(key)})"
            )
        elif key in _BOOL_SETTINGS and not isinstance(value, bool):
            raise ValueError(
                f"{key} must be true or false, got {_value_text(value)} ({where(key)})"
            )
        elif key in _MAPPING_SETTINGS and value is not None:
            _check_mapping(value, f"{key} ({where(key)})")
        elif key == "device" and value != "auto":
            import torch

            try:
                torch.device(value)
            except (RuntimeError, TypeError):
                raise ValueError(
                    f"device must be a torch device such as cpu, cuda or auto, got "
                    f"{_value_text(value)} ({where(key)})"
                ) from None
    policy = settings.get("policy", "MlpPolicy")
    aliases = sorted(getattr(cls, "policy_aliases", {}))
    if not isinstance(policy, type) and not (
        isinstance(policy, str) and (policy in aliases or ":" in policy)
    ):
        raise ValueError(
            f"unknown policy {_value_text(policy)} for {cls.__name__} ({where('policy')}); "
            f"allowed: {', '.join(aliases)} or a class as 'package.module:Name'"
        )
    try:
        resolved = _classes(out)
    except ValueError as e:
        raise ValueError(f"{e} ({where('policy')})") from None
    policy_kwargs = resolved.get("policy_kwargs") or {}
    if "net_arch" in policy_kwargs:
        _check_net_arch(policy_kwargs["net_arch"], where("policy_kwargs"))
    policy_cls = _policy_class(cls, resolved.get("policy", "MlpPolicy"))
    if policy_cls is not None:
        accepted = inspect.signature(policy_cls.__init__).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
            own = {"self", "observation_space", "action_space", "lr_schedule"}
            names = sorted(set(accepted) - own)
            unknown = sorted(set(policy_kwargs) - set(names))
            if unknown:
                raise ValueError(
                    f"unknown policy_kwargs {', '.join(unknown)} for {policy_cls.__name__} "
                    f"({where('policy_kwargs')}); allowed: {', '.join(names)}"
                )
    return out


def check_env_kwargs(
    env_id: str, kwargs: Mapping[str, Any], origin: Callable[[str], str] | None = None
) -> None:
    """``ValueError`` unless the env class of ``env_id`` takes every name in ``kwargs`` (the
    allowed names listed) and accepts their values: the env is made once with them, without
    a reset, and closed. ``origin(name)`` says where a name came from."""
    where = origin or (lambda key: "env setting")
    cls = _env_entry(env_id).env_class()
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed = [
            n for n, p in params.items()
            if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL
        ]  # fmt: skip
        unknown = [k for k in kwargs if k not in allowed]
        if unknown:
            raise ValueError(
                f"unknown env setting(s) {', '.join(map(repr, unknown))} for {env_id} "
                f"({where(unknown[0])}); allowed: {', '.join(allowed)}"
            )
    try:
        env = cls(**kwargs)
    except (TypeError, ValueError) as e:
        given = ", ".join(f"{k}={_value_text(v)}" for k, v in kwargs.items()) or "none"
        raise ValueError(f"{env_id} refuses its env settings ({given}): {e}") from None
    env.close()


def check_threads(threads: Any) -> int:
    """``threads`` as torch's thread count for a training run: ``ValueError`` unless an
    integer in [1, ``os.cpu_count()``]."""
    most = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= most:
        raise ValueError(
            f"threads must be an integer in [1, {most}] (this machine's CPUs), got "
            f"{_value_text(threads)}"
        )
    return threads


def _refusal(e: BaseException) -> str:
    """What SB3 said when it refused a setting; an ``assert`` without a message gives its
    source line, which names the setting."""
    text = str(e).strip()
    if not text and isinstance(e, AssertionError):
        frames = traceback.extract_tb(e.__traceback__)
        text = (frames[-1].line or "") if frames else ""
    return text or type(e).__name__


# --- envs -------------------------------------------------------------------------------------


def apply_wrappers(
    env: gym.Env, wrappers: Sequence[tuple[str, Mapping[str, Any]]], only: Sequence[str] = ()
) -> gym.Env:
    """``env`` inside the named wrappers, in order (only those in ``only`` when given)."""
    table = WRAPPERS
    for name, kwargs in wrappers:
        if only and name not in only:
            continue
        if name == "TimeLimit":
            env = table[name](env, **{"max_episode_steps": 1000, **kwargs})
        else:
            env = table[name](env, **kwargs)
    return env


def make_env(config: TrainConfig, seed: int = 0, rank: int = 0) -> gym.Env:
    """One training env: the id (with its registered step limit) made with the config's
    settings, drawing a benchmark per reset (seed ``seed * 1000 + rank``), inside the
    config's wrappers and SB3's ``Monitor``."""
    from stable_baselines3.common.monitor import Monitor

    import optgym
    from optgym.wrappers import BenchmarkSampler

    env = optgym.make(config.env_id, **config.env_kwargs)
    env = BenchmarkSampler(env, config.benchmarks, seed=seed * 1000 + rank)
    return Monitor(apply_wrappers(env, config.wrappers))


def make_vec_env(config: TrainConfig, seed: int = 0) -> Any:
    """The config's ``n_envs`` sub-envs in an SB3 ``DummyVecEnv``, each with its own
    benchmark sampler and seed (so sub-envs train on different benchmarks)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    return DummyVecEnv(
        [lambda rank=rank: make_env(config, seed, rank) for rank in range(config.n_envs)]
    )


# --- training ---------------------------------------------------------------------------------


def _progress_callback(total: int) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    class Progress(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, unit="step", desc="train", dynamic_ncols=True)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return Progress()


def algo_class(algo: str) -> Any:
    """The SB3 algorithm class of ``--algo`` ``algo``."""
    import importlib

    module, name = ALGOS[algo]
    return getattr(importlib.import_module(module), name)


def train(
    target: str,
    algo: str = "ppo",
    steps: int | None = None,
    out: str | Path = "runs/model",
    seed: int = 0,
    n_envs: int | None = None,
    hyperparams: str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    checkpoint_every: int | None = None,
    tensorboard: bool = True,
    progress: bool = True,
    threads: int = 1,
) -> TrainRun:
    """Train ``algo`` on ``target`` (an env id or a task) for ``steps`` env steps (default:
    the file's ``n_timesteps``) and save the model, its settings and logs into ``out``.

    ``checkpoint_every`` saves a checkpoint every that many steps (default: a tenth of the
    run, at least 2048; 0: none). A run shorter than one rollout of an on-policy algorithm shrinks
    the rollout (``n_steps``) to fit; ``train.json`` records the settings used.
    ``threads`` is torch's thread count while training (1 by default: the env's backends
    want the other cores, and a fixed count keeps runs repeatable).
    ``ValueError`` for a bad target, algorithm, file, setting or thread count, before
    anything runs (:func:`check_algo_settings`, :func:`check_env_kwargs`).
    """
    check_threads(threads)
    config = resolve(target, algo, hyperparams, env_kwargs, n_envs, overrides)
    params = dict(config.hyperparams)
    policy = params.pop("policy", "MlpPolicy")
    default_steps = params.pop("n_timesteps", 10_000)
    steps = default_steps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if algo != "dqn" and "n_steps" in params:
        # a run shorter than one rollout is one rollout of its own length
        rollout = params["n_steps"] * config.n_envs
        if steps < rollout:
            params["n_steps"] = max(steps // config.n_envs, 1)
            rollout = params["n_steps"] * config.n_envs
            if "batch_size" in params:
                params["batch_size"] = max(min(params["batch_size"], rollout), 2)
    out = Path(out)
    cls = algo_class(algo)
    from stable_baselines3.common.callbacks import CheckpointCallback

    from optgym.threads import torch_threads

    try:
        vec = make_vec_env(config, seed)
    except (TypeError, ValueError) as e:  # a wrapper's settings (the env's were checked)
        cause = e.__cause__ if type(e.__cause__) is type(e) else e  # gymnasium re-raises
        raise ValueError(f"cannot make the training env {config.env_id}: {cause}") from None
    # Torch's thread count is fixed from the first weights on: the orthogonal initialization
    # (a QR decomposition) rounds differently on another count, and the default count differs
    # between machines and executors (a Ray worker has one thread).
    with torch_threads(threads):
        try:
            try:
                model = cls(
                    _classes(policy, "policy"),
                    vec,
                    seed=seed,
                    verbose=0,
                    tensorboard_log=str(out / "tensorboard") if tensorboard else None,
                    **_classes(params),
                )
            except (TypeError, ValueError, AssertionError, RuntimeError, MemoryError) as e:
                said = _refusal(e)
                given = ", ".join(sorted(overrides or {}))
                named = any(key in said for key in (*params, "policy"))
                tail = f" (settings from --set: {given})" if given and not named else ""
                raise ValueError(
                    f"cannot make {cls.__name__} for {config.env_id} from {config.source}: "
                    f"{type(e).__name__}: {said}{tail}"
                ) from None
            out.mkdir(parents=True, exist_ok=True)  # nothing is written for a refused setting
            every = max(steps // 10, 2048) if checkpoint_every is None else checkpoint_every
            callbacks: list[Any] = []
            if every > 0:
                callbacks.append(
                    CheckpointCallback(
                        max(every // config.n_envs, 1),
                        str(out / "checkpoints"),
                        name_prefix="model",
                    )
                )
            if progress:
                callbacks.append(_progress_callback(steps))
            start = time.monotonic()
            model.learn(total_timesteps=steps, callback=callbacks, tb_log_name=algo)
            seconds = time.monotonic() - start
            rewards = [float(ep["r"]) for ep in model.ep_info_buffer]
            model.tensorboard_log = None  # no folder of this machine in the saved model
            model.save(out / MODEL_FILE)
        finally:
            vec.close()
    import optgym

    mean = sum(rewards) / len(rewards) if rewards else None
    config.hyperparams = {"policy": policy, "n_timesteps": default_steps, **params}
    record = {
        **config.to_json(),
        "seed": seed,
        "threads": threads,
        "steps": int(model.num_timesteps),
        "seconds": round(seconds, 3),
        "episodes_recent": len(rewards),
        "mean_episode_reward_recent": mean,
        "optgym": optgym.__version__,
    }
    config_path = out / CONFIG_FILE
    config_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return TrainRun(
        model_path=out / MODEL_FILE,
        config_path=config_path,
        steps=int(model.num_timesteps),
        seconds=seconds,
        episodes=len(rewards),
        mean_episode_reward=mean if mean is None or math.isfinite(mean) else None,
    )


def train_seeds(
    target: str,
    seeds: Sequence[int],
    out: str | Path = "runs/model",
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    timeout: float | None = None,
    memory_mb: float | None = None,
    progress: bool = True,
    **settings: Any,
) -> dict[int, TrainRun | str]:
    """Train ``target`` once per seed, each run in its own process (:mod:`optgym.executors`:
    ``workers`` at a time on this machine, or one Ray task per seed on the cluster at
    ``address``), into ``out/seed-<seed>``; ``settings`` are :func:`train`'s (``algo``,
    ``steps``, ...). A seed whose folder already holds a finished run (``train.json``) is
    not trained again. Each run uses one torch thread. Returns, per seed, its
    :class:`TrainRun`, or the error that ended it (one failed seed ends no other).
    ``ValueError`` for bad settings, before anything runs."""
    from optgym.envs import problem_of_env
    from optgym.executors import Limits, check_executor, make_executor, stream

    check_executor(executor, address)

    if not seeds:
        raise ValueError("no seed given; e.g. seeds=[0, 1, 2]")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"bad seed {seed!r}; training seeds are integers in [0, 2**32)")
    if len(set(seeds)) != len(seeds):
        raise ValueError("a seed is given twice")
    unknown = set(settings) - _SEED_SETTINGS
    if unknown:
        raise ValueError(
            f"unknown training setting(s) {', '.join(sorted(unknown))}; allowed: "
            f"{', '.join(sorted(_SEED_SETTINGS))}"
        )
    config = resolve(
        target, settings.get("algo", "ppo"), settings.get("hyperparams"),
        settings.get("env_kwargs"), settings.get("n_envs"), settings.get("overrides"),
    )  # fmt: skip
    out = Path(out)
    results: dict[int, TrainRun | str] = {}
    jobs = []
    for seed in seeds:
        folder = out / f"seed-{seed}"
        finished = _finished_run(folder, config)
        if finished is not None:
            results[seed] = finished
        else:
            jobs.append((target, seed, folder, settings))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(seeds), initial=len(seeds) - len(jobs), desc=f"train {config.env_id}",
                   unit="seed", file=sys.stderr, dynamic_ncols=True)  # fmt: skip
    try:
        if jobs:
            resources = problem_of_env(config.env_id).resources
            limits = Limits(timeout or None, memory_mb or None)
            limits = limits if executor != "inline" else Limits()
            with make_executor(executor, workers, limits, address, resources) as pool:
                for job, future in stream(pool, _train_one, jobs):
                    try:
                        record = future.result()
                        results[job[1]] = TrainRun(**{
                            **record, "model_path": Path(record["model_path"]),
                            "config_path": Path(record["config_path"]),
                        })  # fmt: skip
                    except Exception as e:  # noqa: BLE001  one seed's failure is its own
                        results[job[1]] = f"{type(e).__name__}: {e}"
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {seed: results[seed] for seed in seeds}


_SEED_SETTINGS = {
    "algo", "steps", "n_envs", "hyperparams", "env_kwargs", "overrides", "checkpoint_every",
    "tensorboard",
}  # fmt: skip


def _train_one(target: str, seed: int, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """One seed's run, as JSON (what an executor's call sends back)."""
    run = train(target, seed=seed, out=out, progress=False, threads=1, **settings)
    return {**vars(run), "model_path": str(run.model_path), "config_path": str(run.config_path)}


def _finished_run(folder: Path, config: TrainConfig) -> TrainRun | None:
    """The run already in ``folder`` (its train.json and model), or None; ``ValueError``
    when it trained another env or algorithm than ``config``."""
    try:
        record = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not (folder / MODEL_FILE).is_file():
        return None
    if (record.get("env_id"), record.get("algo")) != (config.env_id, config.algo):
        raise ValueError(
            f"{folder} holds a finished run of another env or algorithm; "
            "choose another output folder"
        )
    mean = record.get("mean_episode_reward_recent")
    try:
        return TrainRun(
            model_path=folder / MODEL_FILE,
            config_path=folder / CONFIG_FILE,
            steps=int(record["steps"]),
            seconds=float(record["seconds"]),
            episodes=int(record["episodes_recent"]),
            mean_episode_reward=float(mean) if isinstance(mean, (int, float)) else None,
        )
    except (KeyError, TypeError, ValueError):
        return None


# --- trained policies -------------------------------------------------------------------------


@dataclass
class TrainedPolicy:
    """A saved model and the settings it was trained with (``train.json``)."""

    model: Any
    config: dict[str, Any]

    @property
    def env_id(self) -> str:
        return str(self.config["env_id"])

    def adapt(self, env: gym.Env) -> gym.Env:
        """``env`` (made with any settings, e.g. a task's) as the policy saw its training
        env: the training observation space, then the graph and action adapters."""
        wrappers = [(str(n), dict(k)) for n, k in self.config.get("wrappers", [])]
        trained_obs = self.config.get("env_kwargs", {}).get("observation_space")
        current = env.unwrapped.config.get("observation_space")
        if trained_obs is not None and trained_obs != current:
            wrappers.insert(0, ("NamedObservation", {"name": trained_obs}))
        return apply_wrappers(env, wrappers, only=ADAPTERS)

    def probabilities(self, obs: Any) -> Any:
        """The policy's action probabilities for one observation, as a NumPy vector, where
        its action space is ``Discrete`` and the policy has a distribution (not DQN); else
        None."""
        from gymnasium import spaces

        policy = self.model.policy
        if not isinstance(self.model.action_space, spaces.Discrete):
            return None
        if not hasattr(policy, "get_distribution"):
            return None
        import torch

        with torch.no_grad():
            tensor, _ = policy.obs_to_tensor(obs)
            probs = policy.get_distribution(tensor).distribution.probs
        return probs[0].cpu().numpy().astype(float)

    def act(self, obs: Any, deterministic: bool = True, mask: Any = None) -> Any:
        """The policy's action for one observation."""
        if mask is not None:
            action, _ = self.model.predict(obs, deterministic=deterministic, action_masks=mask)
        else:
            action, _ = self.model.predict(obs, deterministic=deterministic)
        return action


def load_policy(path: str | Path) -> TrainedPolicy:
    """The model saved by :func:`train` in ``path`` (its folder or its ``model.zip``);
    ``ValueError`` naming what is missing or unreadable. An SB3 model file holds pickled
    objects: load only models you trust (as with any pickle)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    model_file = folder / MODEL_FILE if path.is_dir() else path
    config_file = folder / CONFIG_FILE
    for needed in (model_file, config_file):
        if not needed.is_file():
            raise ValueError(f"no trained model at {path}: {needed.name} is missing")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{config_file} is not a JSON training record") from None
    if not isinstance(config, dict) or config.get("algo") not in ALGOS or "env_id" not in config:
        raise ValueError(f"{config_file} is not a training record of optgym train")
    import optgym

    if config["env_id"] not in optgym.ENV_IDS:
        raise ValueError(f"{config_file} names an env id OptGym does not have")
    config["env_kwargs"] = _check_mapping(config.get("env_kwargs"), f"env_kwargs in {config_file}")
    wrappers = config.get("wrappers") or []
    if not isinstance(wrappers, list) or not all(
        isinstance(w, list) and len(w) == 2 for w in wrappers
    ):
        raise ValueError(f"wrappers in {config_file} must be a list of [name, settings] pairs")
    config["wrappers"] = [
        [name, kwargs]
        for name, kwargs in _parse_wrappers([{n: k} for n, k in wrappers], str(config_file))
    ]
    try:
        model = algo_class(config["algo"]).load(str(model_file), device="cpu")
    except Exception as e:  # noqa: BLE001  a corrupt zip or another library's file
        raise ValueError(
            f"cannot load {model_file} as a {config['algo']} model ({type(e).__name__})"
        ) from None
    return TrainedPolicy(model, config)


__all__ = [
    "ADAPTERS",
    "ALGOS",
    "WRAPPERS",
    "SETTING_RANGES",
    "SettingRange",
    "TrainConfig",
    "TrainRun",
    "TrainedPolicy",
    "apply_wrappers",
    "check_algo_settings",
    "check_env_kwargs",
    "check_threads",
    "hyperparams_path",
    "load_policy",
    "make_env",
    "make_vec_env",
    "read_hyperparams",
    "resolve",
    "train_seeds",
    "train",
]
