"""Train stable-baselines3 (and sb3-contrib) policies on any OptGym env or task.

``optgym train ENV_OR_TASK --algo ppo|maskable-ppo|dqn|a2c|sac|td3`` and :func:`train` read
the env's hyperparameter file, shipped in its problem package as
``envs/<problem>/hyperparams/<EnvName-vN>.yml`` (as the RL Zoo ships one per env). A file
holds:

* ``env_kwargs``: the env's settings while it trains;
* ``wrappers``: a list of ``{Name: {setting: value}}``, applied in order around the env
  (graph padding, fixed-size scores, a per-step time cap, ...): ``Name`` is one of
  :data:`WRAPPERS` or, as the RL Zoo's ``env_wrapper``, any gymnasium ``Wrapper`` class by
  its import path, ``"package.module:Class"``. Every wrapper is resolved and checked
  (importable, a ``Wrapper`` class, taking its settings) when the file is read, before any
  training starts;
* ``benchmarks``: where each reset draws its benchmark from, a list of
  ``{dataset: URI, split: train|validation, count: N}`` (the first ``N`` of the split);
  training never touches a test split. Given a task instead of an env id, the task's own
  datasets are used, with their train split;
* ``n_envs``: sub-envs of the vector env (each with its own benchmark sampler and seed);
* one section per algorithm (``ppo``, ``a2c``, ``dqn``, ``maskable-ppo``, ``sac``,
  ``td3``): ``policy``, ``n_timesteps`` (the default length of a run) and the algorithm's
  keyword arguments. A string ``"package.module:Name"`` under ``policy`` or as a
  ``*_class``/``activation_fn`` value names a class (a GNN features extractor, a policy);
  ``action_noise: {type: normal, sigma: 0.1}`` is SB3's Gaussian (or
  ``ornstein-uhlenbeck``) action noise. An algorithm the file has no section for is
  refused, naming the ones it has.

A run trains exactly the steps asked for (:func:`plan_steps` says when it cannot: a vector
env steps all its sub-envs at once) and writes into ``out``: ``model.zip`` (the SB3 model),
``train.json`` (the resolved settings, the benchmarks, the seed, what the run took, its
episode rewards and evaluations), ``best_model.zip`` (the model at its best evaluation on
validation benchmarks), ``checkpoints/`` and ``tensorboard/``. A run never writes into a
folder that holds another run's files: it takes the first free ``out_2``, ``out_3``, ...
instead, as the RL Zoo numbers its run folders (:func:`run_folder`); ``--seeds`` keeps one
folder per seed, ``out/seed-N``, and a rerun skips the seeds that finished. A run can
continue a saved one (``continue_from``, the RL Zoo's ``-i``), and :func:`optimize` tunes a
few hyperparameters with Optuna into a file ``--hyperparams`` takes. ``--agent sb3:path=OUT``
benchmarks the model like any agent (:class:`optgym.agents.sb3.Sb3Agent`;
``model=best``: ``best_model.zip``).

>>> run = train("optgym/PathPlanning2DClosedLoop-v0", algo="ppo", steps=256, out="runs/nav")
>>> run.model_path
PosixPath('runs/nav/model.zip')
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import inspect
import itertools
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
    "sac": ("stable_baselines3", "SAC"),
    "td3": ("stable_baselines3", "TD3"),
}
#: The algorithms that learn from whole rollouts of ``n_steps`` per sub-env.
ON_POLICY = ("ppo", "a2c", "maskable-ppo")

#: Hyperparameter-file keys that are not an algorithm section.
_TOP_KEYS = ("env_kwargs", "wrappers", "benchmarks", "n_envs")
_TRAIN_SPLITS = ("train", "validation")
MODEL_FILE = "model.zip"
CONFIG_FILE = "train.json"
#: The model at its best evaluation on validation benchmarks, beside ``model.zip``.
BEST_MODEL_FILE = "best_model.zip"
#: What :func:`optimize` writes: the best trial's settings as a hyperparameter file, and
#: every trial.
BEST_HYPERPARAMS_FILE = "best_hyperparams.yml"
TRIALS_FILE = "trials.csv"
#: The files and folders of a run (or a tuning study): a folder holding one is taken.
RUN_FILES = (
    MODEL_FILE, CONFIG_FILE, BEST_MODEL_FILE, "checkpoints", "tensorboard",
    BEST_HYPERPARAMS_FILE, TRIALS_FILE,
)  # fmt: skip
#: Evaluation episodes (one per validation benchmark) at most.
MAX_EVAL_EPISODES = 1000


#: The wrappers a hyperparameter file may name, by name.
WRAPPERS: dict[str, Callable[..., gym.Env]] = {
    "PaddedGraph": PaddedGraph,
    "FixedScores": FixedScores,
    "StepTimeCap": StepTimeCap,
    "NamedObservation": NamedObservation,
    "TimeLimit": TimeLimit,
    "FlattenObservation": FlattenObservation,
}

#: Settings a wrapper of :data:`WRAPPERS` gets unless the file gives them.
_WRAPPER_DEFAULTS: dict[str, dict[str, Any]] = {"TimeLimit": {"max_episode_steps": 1000}}

#: Wrappers a trained policy needs when it acts on another env (not the training episode's
#: length nor its time cap: the runner's budget rules those). A wrapper named by its import
#: path is always one: it may change what the policy sees or does.
ADAPTERS = ("PaddedGraph", "FixedScores", "NamedObservation", "FlattenObservation")


def wrapper_class(name: str, where: str = "the wrappers") -> type[gym.Wrapper]:
    """The wrapper class ``name`` names: one of :data:`WRAPPERS`, or a gymnasium ``Wrapper``
    subclass by its import path ``"package.module:Class"``; ``ValueError`` (one line,
    naming ``where``) when it is neither."""
    from optgym.problem import load_object

    if name in WRAPPERS:
        return WRAPPERS[name]  # type: ignore[return-value]
    if ":" not in name:
        allowed = ", ".join(WRAPPERS)
        raise ValueError(
            f"unknown wrapper {name!r} in {where}; allowed: {allowed}, or a gymnasium Wrapper "
            "class as 'package.module:Class'"
        )
    try:
        cls = load_object(name)
    except ValueError as e:
        raise ValueError(f"wrapper {name!r} in {where}: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, gym.Wrapper)):
        raise ValueError(f"wrapper {name!r} in {where} is not a gymnasium Wrapper class")
    return cls


def check_wrapper(name: str, kwargs: Mapping[str, Any], where: str = "the wrappers") -> None:
    """``ValueError`` (one line) unless ``name`` is a wrapper (:func:`wrapper_class`) whose
    constructor takes ``(env, **kwargs)``: every required setting given, none unknown."""
    cls = wrapper_class(name, where)
    settings = {**_WRAPPER_DEFAULTS.get(name, {}), **kwargs}
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):  # a constructor Python cannot describe: tried when made
        return
    try:
        signature.bind(None, None, **settings)  # self, env
    except TypeError as e:
        raise ValueError(f"wrapper {name!r} in {where} does not take its settings: {e}") from None


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
    steps: int  # env steps this run trained
    seconds: float
    episodes: int
    mean_episode_reward: float | None
    total_steps: int = 0  # the model's steps in all (more than ``steps`` when continued)
    best_model_path: Path | None = None  # best_model.zip, when the run evaluated
    best_mean_reward: float | None = None  # its mean reward on the validation benchmarks


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
        if not isinstance(name, str):
            raise ValueError(f"a wrapper's name in {where} must be a string, got {name!r}")
        check_wrapper(name, kwargs, where)
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
    from optgym.tasks import all_tasks

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
        raise ValueError(
            f"unknown algorithm {algo!r}; allowed: {have} ({where} has no {algo!r} section "
            f"for {env_id}; it has: {have})"
        )
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
    "policy_delay": SettingRange(True, 1),
    "target_policy_noise": SettingRange(False, 0),
    "target_noise_clip": SettingRange(False, 0),
}
_BOOL_SETTINGS = (
    "normalize_advantage", "use_sde", "use_rms_prop", "optimize_memory_usage",
    "use_sde_at_warmup",
)  # fmt: skip
#: ``action_noise: {type: ..., sigma: ...}``: the SB3 noise class of each type.
ACTION_NOISES = {
    "normal": "NormalActionNoise",
    "ornstein-uhlenbeck": "OrnsteinUhlenbeckActionNoise",
}
#: SAC learns its entropy coefficient with ``auto`` (or ``auto_0.1``: from 0.1).
_AUTO_ENT_COEF = re.compile(r"auto(_[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)?")
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
        elif key == "ent_coef" and algo == "sac" and isinstance(value, str):
            if not _AUTO_ENT_COEF.fullmatch(value):
                raise ValueError(
                    f"ent_coef must be {SETTING_RANGES[key].text()}, or auto or auto_X (SAC "
                    f"learns it, from X), got {_value_text(value)} ({where(key)})"
                )
        elif key == "action_noise":
            _check_action_noise(value, where(key))
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


def _check_action_noise(value: Any, origin: str) -> None:
    """``ValueError`` unless ``value`` is None, an SB3 ``ActionNoise`` or
    ``{type: normal|ornstein-uhlenbeck, sigma: a number >= 0}``."""
    if value is None:
        return
    if isinstance(value, dict) and set(value) == {"type", "sigma"}:
        if value["type"] in ACTION_NOISES and SettingRange(False, 0).allows(value["sigma"]):
            return
    from stable_baselines3.common.noise import ActionNoise

    if not isinstance(value, ActionNoise):
        raise ValueError(
            f"action_noise must be {{type: {' or '.join(ACTION_NOISES)}, sigma: a number "
            f">= 0}} or None, got {_value_text(value)} ({origin})"
        )


def _algo_kwargs(params: Mapping[str, Any], action_space: Any) -> dict[str, Any]:
    """``params`` as the algorithm's keyword arguments: classes loaded, an
    ``action_noise`` mapping made into SB3's noise for ``action_space``."""
    import numpy as np
    from stable_baselines3.common import noise

    kwargs = _classes(dict(params))
    spec = kwargs.get("action_noise")
    if isinstance(spec, dict):
        size = int(np.prod(action_space.shape))
        cls = getattr(noise, ACTION_NOISES[spec["type"]])
        kwargs["action_noise"] = cls(np.zeros(size), float(spec["sigma"]) * np.ones(size))
    return kwargs


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
    """``env`` inside the named wrappers (short names or import paths), in order; with
    ``only``, the short names in it and every wrapper named by its import path."""
    for name, kwargs in wrappers:
        if only and name in WRAPPERS and name not in only:
            continue
        env = wrapper_class(name)(env, **{**_WRAPPER_DEFAULTS.get(name, {}), **kwargs})
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


# --- steps and run folders ----------------------------------------------------------------


@dataclass(frozen=True)
class StepPlan:
    """How a run of ``asked`` env steps trains: the steps it takes and its rollouts."""

    asked: int
    """the env steps asked for"""
    steps: int
    """the env steps the run trains: ``asked``, or the most below it the algorithm can take"""
    n_steps: int | None
    """on-policy: env steps per sub-env in a rollout (a run shorter than one rollout is one
    rollout of its own length); None for off-policy algorithms"""
    tail_n_steps: int = 0
    """on-policy: env steps per sub-env of a last, shorter rollout, when ``steps`` is not a
    whole number of rollouts (0: none)"""
    note: str = ""
    """why ``steps`` is below ``asked`` (empty when it is not)"""


def plan_steps(config: TrainConfig, steps: int | None = None) -> StepPlan:
    """How a run of ``steps`` env steps (default: the file's ``n_timesteps``) of ``config``
    trains. It takes exactly ``steps``, never more: an on-policy algorithm learns from whole
    rollouts of ``n_steps`` per sub-env and then from one shorter rollout of the steps
    left. A vector env steps its ``n_envs`` sub-envs at once, so the steps come down to a
    multiple of ``n_envs``, and a last rollout of a single step (too short to normalize an
    advantage over) is left out; ``note`` then says so. ``ValueError`` for a step count that
    is not an integer >= ``n_envs``."""
    params = config.hyperparams
    asked = params.get("n_timesteps", 10_000) if steps is None else steps
    if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
        raise ValueError(f"steps must be a positive integer, got {_value_text(asked)}")
    n_envs = config.n_envs
    if asked < n_envs:
        raise ValueError(
            f"steps must be at least n_envs ({n_envs}): the sub-envs step together; ask for "
            f"more steps or fewer sub-envs (--n-envs), got {asked}"
        )
    taken = asked - asked % n_envs
    why = f"the {n_envs} sub-envs step together" if taken < asked else ""
    if config.algo not in ON_POLICY:
        return StepPlan(asked, taken, None, 0, _step_note(asked, taken, why))
    n_steps = params.get("n_steps")
    if n_steps is None:
        n_steps = inspect.signature(algo_class(config.algo).__init__).parameters["n_steps"].default
    rollout = n_steps * n_envs
    if taken <= rollout:  # a run shorter than one rollout is one rollout of its own length
        return StepPlan(asked, taken, taken // n_envs, 0, _step_note(asked, taken, why))
    tail = taken % rollout
    if tail == 1:
        taken, tail = taken - 1, 0
        why = "a last rollout of one step is too short to learn from"
    return StepPlan(asked, taken, n_steps, tail // n_envs, _step_note(asked, taken, why))


def _step_note(asked: int, taken: int, why: str) -> str:
    return f"trains {taken} of the {asked} steps asked: {why}" if taken < asked else ""


def run_folder(out: str | Path) -> Path:
    """Where a run asked to write into ``out`` writes: ``out`` itself, unless it holds a
    run's files (:data:`RUN_FILES`: a model, a ``train.json``, checkpoints, ...); then the
    first of ``out_2``, ``out_3``, ... that holds none. A run never overwrites another's
    model nor mixes its checkpoints with another's (the RL Zoo numbers its run folders
    the same way)."""
    out = Path(out)

    def taken(folder: Path) -> bool:
        return any((folder / name).exists() for name in RUN_FILES)

    number = 2
    folder = out
    while taken(folder):
        folder = out.with_name(f"{out.name}_{number}")
        number += 1
    return folder


# --- evaluation -------------------------------------------------------------------------------


def validation_benchmarks(config: TrainConfig, count: int) -> list[str]:
    """``count`` benchmarks of the validation splits of the datasets ``config`` trains on,
    taken in turn from each dataset (its first ones): what a run evaluates on and
    :func:`optimize` scores trials on. ``ValueError`` when those datasets have no
    validation benchmark."""
    from optgym.datasets.dataset import DatasetRegistry
    from optgym.datasets.uri import BenchmarkUri
    from optgym.envs import problem_of_env

    registry = DatasetRegistry(problem_of_env(config.env_id).datasets())
    datasets = list(dict.fromkeys(BenchmarkUri.parse(u).dataset_uri for u in config.benchmarks))
    splits = [registry.dataset(uri).take("validation", count) for uri in datasets]
    uris = [u for row in itertools.zip_longest(*splits) for u in row if u is not None]
    if not uris:
        raise ValueError(
            f"the datasets {config.env_id} trains on ({', '.join(datasets)}) have no "
            "validation benchmarks to evaluate on; give --eval-every 0"
        )
    return uris[:count]


def make_eval_env(config: TrainConfig) -> gym.Env:
    """An env to evaluate a policy of ``config`` in: the id (with its registered step
    limit) made with the config's settings, inside its wrappers, no benchmark sampler."""
    import optgym

    return apply_wrappers(optgym.make(config.env_id, **config.env_kwargs), config.wrappers)


def evaluate_model(
    model: Any, env: gym.Env, benchmarks: Sequence[str], seed: int = 0, masked: bool = False
) -> list[float]:
    """The reward of one episode of ``model``'s deterministic policy on each benchmark, in
    ``env`` (:func:`make_eval_env`), each reset with ``seed`` so that evaluations compare.
    ``masked``: the policy takes the env's action masks (MaskablePPO)."""
    rewards = []
    for uri in benchmarks:
        obs, _ = env.reset(seed=seed, options={"benchmark": uri})
        total = 0.0
        while True:
            if masked:
                mask = env.unwrapped.action_masks()
                action, _ = model.predict(obs, deterministic=True, action_masks=mask)
            else:
                action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        rewards.append(total)
    return rewards


@dataclass
class _Evaluation:
    """Evaluations during a run: every ``every`` steps, the policy on the validation
    benchmarks; the best model so far saved to ``best_path``."""

    env: gym.Env
    benchmarks: list[str]
    every: int
    seed: int
    masked: bool
    best_path: Path
    results: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None

    def due(self, done: int) -> bool:
        """Whether the run, ``done`` steps in, has passed its next evaluation."""
        return done >= (len(self.results) + 1) * self.every

    def run(self, model: Any, done: int, logger: Any) -> None:
        rewards = evaluate_model(model, self.env, self.benchmarks, self.seed, self.masked)
        mean = sum(rewards) / len(rewards)
        result = {
            "steps": done, "num_timesteps": int(model.num_timesteps),
            "mean_reward": mean, "rewards": rewards,
        }  # fmt: skip
        self.results.append(result)
        if math.isfinite(mean) and (self.best is None or mean > self.best["mean_reward"]):
            self.best = {k: result[k] for k in ("steps", "num_timesteps", "mean_reward")}
            log_dir, model.tensorboard_log = model.tensorboard_log, None  # no machine's folder
            try:
                model.save(self.best_path)
            finally:
                model.tensorboard_log = log_dir
        logger.record("eval/mean_reward", mean)
        if self.best is not None:
            logger.record("eval/best_mean_reward", self.best["mean_reward"])
        logger.dump(model.num_timesteps)

    def to_json(self) -> dict[str, Any]:
        return {
            "every": self.every, "benchmarks": self.benchmarks, "seed": self.seed,
            "results": self.results, "best": self.best,
        }  # fmt: skip


def _watch(total: int, progress: bool, stop: bool, evaluation: _Evaluation | None) -> Any:
    """The run's callback: it counts steps from the run's first (a continued model starts
    at its own count), shows a progress bar of exactly ``total`` steps, evaluates when due
    and, with ``stop`` (off-policy, whose loop could end a rollout past the total), ends
    the run at ``total`` (the steps of a rollout cut short are not learned from). It
    lasts across the ``learn`` calls of one run; ``close()`` closes its bar."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Watch(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.start: int | None = None
            self.bar: Any = None

        def _on_training_start(self) -> None:
            if self.start is None:
                self.start = int(self.model.num_timesteps)
                if progress:
                    from tqdm import tqdm

                    self.bar = tqdm(total=total, unit="step", desc="train", dynamic_ncols=True)

        def _on_step(self) -> bool:
            done = int(self.model.num_timesteps) - (self.start or 0)
            if self.bar is not None:
                self.bar.update(min(done, total) - self.bar.n)
            if evaluation is not None and evaluation.due(done):
                evaluation.run(self.model, done, self.logger)
            if stop and done >= total:  # unless the rollout ends here anyway (then it learns)
                return self._rollout_ends()
            return True

        def _rollout_ends(self) -> bool:
            from stable_baselines3.common.type_aliases import TrainFrequencyUnit

            freq = self.model.train_freq
            collected = self.locals.get("num_collected_steps", 0)
            return freq.unit == TrainFrequencyUnit.STEP and collected >= freq.frequency

        def close(self) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return Watch()


# --- training ---------------------------------------------------------------------------------


def algo_class(algo: str) -> Any:
    """The SB3 algorithm class of ``--algo`` ``algo``."""
    import importlib

    module, name = ALGOS[algo]
    return getattr(importlib.import_module(module), name)


def _learn(model: Any, plan: StepPlan, callbacks: list[Any], algo: str, fresh: bool) -> None:
    """``plan.steps`` more steps of ``model``: the whole rollouts, then (on-policy) one
    shorter rollout of the steps left, with a rollout buffer of its length; ``fresh``:
    the model's step count starts at 0."""
    tail = plan.tail_n_steps * model.n_envs
    model.learn(plan.steps - tail, callback=callbacks, tb_log_name=algo,
                reset_num_timesteps=fresh)  # fmt: skip
    if not tail:
        return
    kept = model.n_steps, model.rollout_buffer, getattr(model, "batch_size", None)
    model.n_steps = plan.tail_n_steps
    model.rollout_buffer = type(kept[1])(
        plan.tail_n_steps, model.observation_space, model.action_space, device=model.device,
        gamma=model.gamma, gae_lambda=model.gae_lambda, n_envs=model.n_envs,
        **(model.rollout_buffer_kwargs or {}),
    )  # fmt: skip
    if kept[2] is not None:  # no mini-batch of one sample (an advantage needs two)
        batch = min(kept[2], tail)
        model.batch_size = tail if tail % batch == 1 else batch
    try:
        model.learn(tail, callback=callbacks, tb_log_name=algo, reset_num_timesteps=False)
    finally:
        model.n_steps, model.rollout_buffer = kept[0], kept[1]
        if kept[2] is not None:
            model.batch_size = kept[2]


def _prior_run(path: str | Path, config: TrainConfig) -> tuple[Path, dict[str, Any]]:
    """The model file and ``train.json`` record of the run at ``path`` (its folder, or a
    model file in it such as ``best_model.zip``) that a run continues; ``ValueError``
    unless it trained ``config``'s env id with its algorithm."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"cannot continue from {path}: no such run folder or model file")
    folder = path if path.is_dir() else path.parent
    model_file = folder / MODEL_FILE if path.is_dir() else path
    for needed in (model_file, folder / CONFIG_FILE):
        if not needed.is_file():
            raise ValueError(f"cannot continue from {path}: {needed.name} is missing")
    try:
        record = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"cannot continue from {path}: its {CONFIG_FILE} is not JSON") from None
    if not isinstance(record, dict):
        raise ValueError(f"cannot continue from {path}: its {CONFIG_FILE} is not a record")
    trained = (record.get("algo"), record.get("env_id"))
    if trained != (config.algo, config.env_id):
        raise ValueError(
            f"cannot continue from {path}: it trained {trained[0]} on {trained[1]}, not "
            f"{config.algo} on {config.env_id}"
        )
    return model_file, record


def _make_model(
    config: TrainConfig, policy: Any, params: dict[str, Any], vec: Any, seed: int,
    log_dir: str | None, overrides: Mapping[str, Any] | None, prior: Path | None = None,
) -> Any:  # fmt: skip
    """A new model of ``config`` on ``vec``, or the model saved at ``prior`` with the
    section's settings over its own (its network is its own: ``policy`` and
    ``policy_kwargs`` are not changed); ``ValueError`` saying what the algorithm refused."""
    cls = algo_class(config.algo)
    try:
        if prior is None:
            kwargs = _algo_kwargs(params, vec.action_space)
            policy = _classes(policy, "policy")
            return cls(policy, vec, seed=seed, verbose=0, tensorboard_log=log_dir, **kwargs)
        kwargs = {k: v for k, v in params.items() if k not in ("policy_kwargs", "device")}
        kwargs = _algo_kwargs(kwargs, vec.action_space)
        if "stats_window_size" in kwargs:  # SB3 keeps it under another name
            kwargs["_stats_window_size"] = kwargs.pop("stats_window_size")
        return cls.load(str(prior), env=vec, device=params.get("device", "auto"), seed=seed,
                        verbose=0, tensorboard_log=log_dir, **kwargs)  # fmt: skip
    except (TypeError, ValueError, AssertionError, RuntimeError, MemoryError) as e:
        said = _refusal(e)
        if prior is not None:
            raise ValueError(
                f"cannot continue {cls.__name__} from {prior} on {config.env_id}: "
                f"{type(e).__name__}: {said}"
            ) from None
        given = ", ".join(sorted(overrides or {}))
        named = any(key in said for key in (*params, "policy"))
        tail = f" (settings from --set: {given})" if given and not named else ""
        raise ValueError(
            f"cannot make {cls.__name__} for {config.env_id} from {config.source}: "
            f"{type(e).__name__}: {said}{tail}"
        ) from None
    except Exception as e:  # noqa: BLE001  a corrupt zip or another library's file
        if prior is None:
            raise
        raise ValueError(
            f"cannot load {prior} as a {config.algo} model ({type(e).__name__})"
        ) from None


def _check_count(value: Any, name: str, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {bound}, got {_value_text(value)}")
    return value


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
    eval_every: int | None = None,
    eval_episodes: int = 5,
    continue_from: str | Path | None = None,
    numbered: bool = True,
) -> TrainRun:
    """Train ``algo`` on ``target`` (an env id or a task) for ``steps`` env steps (default:
    the file's ``n_timesteps``) and save the model, its settings and logs into ``out``.

    The run takes exactly ``steps``, never more (:func:`plan_steps`: with ``n_envs``
    sub-envs, the multiple of ``n_envs`` at or below it). A run shorter than one rollout of
    an on-policy algorithm shrinks the rollout (``n_steps``) to fit; ``train.json`` records
    the settings used.

    ``out`` holding another run's files, the run writes into the first free ``out_2``,
    ``out_3``, ... (:func:`run_folder`; ``numbered=False``: into ``out`` all the same,
    over its files, as :func:`train_seeds` does for a seed whose run did not finish); the
    returned paths say where.

    ``checkpoint_every`` saves a checkpoint every that many steps (default: a tenth of the
    run, at least 2048; 0: none). ``eval_every`` evaluates the deterministic policy every
    that many steps (default: a tenth of the run, at least 2048; 0: never) on
    ``eval_episodes`` validation benchmarks of the training datasets, one episode each
    (:func:`validation_benchmarks`), logs the mean reward (TensorBoard's
    ``eval/mean_reward`` and ``train.json``'s ``evaluation``) and saves the best model so
    far as ``best_model.zip``.

    ``continue_from`` (a run folder, or a model file in one) trains the model saved there
    ``steps`` more steps (the RL Zoo's ``-i``): its ``train.json`` must name the same env id
    and algorithm; the section's settings and ``--set`` apply over the model's, its network
    stays; its step count goes on (``TrainRun.total_steps``).

    ``threads`` is torch's thread count while training (1 by default: the env's backends
    want the other cores, and a fixed count keeps runs repeatable).
    ``ValueError`` for a bad target, algorithm, file, setting or count, before anything is
    written (:func:`check_algo_settings`, :func:`check_env_kwargs`).
    """
    check_threads(threads)
    config = resolve(target, algo, hyperparams, env_kwargs, n_envs, overrides)
    plan = plan_steps(config, steps)
    params = dict(config.hyperparams)
    policy = params.pop("policy", "MlpPolicy")
    default_steps = params.pop("n_timesteps", 10_000)
    if plan.n_steps is not None and plan.n_steps != params.get("n_steps"):
        params["n_steps"] = plan.n_steps  # the class's default, or a rollout of the run's length
        if "batch_size" in params:
            rollout = plan.n_steps * config.n_envs
            params["batch_size"] = max(min(params["batch_size"], rollout), 2)
    every = _check_count(eval_every, "eval_every", 0) if eval_every is not None else None
    every = max(plan.steps // 10, 2048) if every is None else every
    _check_count(eval_episodes, "eval_episodes", 1, MAX_EVAL_EPISODES)
    prior = _prior_run(continue_from, config) if continue_from is not None else None
    benchmarks = validation_benchmarks(config, eval_episodes) if 0 < every <= plan.steps else []
    out = run_folder(out) if numbered else Path(out)
    from stable_baselines3.common.callbacks import CheckpointCallback

    from optgym.threads import torch_threads

    vec = eval_env = None
    try:
        vec = make_vec_env(config, seed)
        eval_env = make_eval_env(config) if benchmarks else None
    except (TypeError, ValueError) as e:  # a wrapper's settings (the env's were checked)
        if vec is not None:
            vec.close()
        cause = e.__cause__ if type(e.__cause__) is type(e) else e  # gymnasium re-raises
        raise ValueError(f"cannot make the training env {config.env_id}: {cause}") from None
    watch = None
    # Torch's thread count is fixed from the first weights on: the orthogonal initialization
    # (a QR decomposition) rounds differently on another count, and the default count differs
    # between machines and executors (a Ray worker has one thread).
    with torch_threads(threads):
        try:
            log_dir = str(out / "tensorboard") if tensorboard else None
            model = _make_model(config, policy, params, vec, seed, log_dir, overrides,
                                prior[0] if prior else None)  # fmt: skip
            start_steps = int(model.num_timesteps) if prior else 0
            out.mkdir(parents=True, exist_ok=True)  # nothing is written for a refused setting
            saves = max(plan.steps // 10, 2048) if checkpoint_every is None else checkpoint_every
            callbacks: list[Any] = []
            if saves > 0:
                callbacks.append(
                    CheckpointCallback(
                        max(saves // config.n_envs, 1),
                        str(out / "checkpoints"),
                        name_prefix="model",
                    )
                )
            evaluation = None
            if eval_env is not None:
                evaluation = _Evaluation(eval_env, benchmarks, every, seed,
                                         algo == "maskable-ppo", out / BEST_MODEL_FILE)  # fmt: skip
            watch = _watch(plan.steps, progress, algo not in ON_POLICY, evaluation)
            callbacks.append(watch)
            start = time.monotonic()
            _learn(model, plan, callbacks, algo, fresh=prior is None)
            seconds = time.monotonic() - start
            rewards = [float(ep["r"]) for ep in model.ep_info_buffer]
            model.tensorboard_log = None  # no folder of this machine in the saved model
            model.save(out / MODEL_FILE)
        finally:
            if watch is not None:
                watch.close()
            vec.close()
            if eval_env is not None:
                eval_env.close()
    import optgym

    mean = sum(rewards) / len(rewards) if rewards else None
    config.hyperparams = {"policy": policy, "n_timesteps": default_steps, **params}
    trained = int(model.num_timesteps) - start_steps
    record = {
        **config.to_json(),
        "seed": seed,
        "threads": threads,
        "steps": trained,
        "steps_asked": plan.asked,
        "num_timesteps": int(model.num_timesteps),
        "seconds": round(seconds, 3),
        "episodes_recent": len(rewards),
        "mean_episode_reward_recent": mean,
        "evaluation": evaluation.to_json() if evaluation is not None else None,
        "continued_from": (
            {"path": str(continue_from), "num_timesteps": start_steps} if prior else None
        ),
        "optgym": optgym.__version__,
    }
    config_path = out / CONFIG_FILE
    config_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    best = evaluation.best if evaluation is not None else None
    return TrainRun(
        model_path=out / MODEL_FILE,
        config_path=config_path,
        steps=trained,
        seconds=seconds,
        episodes=len(rewards),
        mean_episode_reward=mean if mean is None or math.isfinite(mean) else None,
        total_steps=int(model.num_timesteps),
        best_model_path=out / BEST_MODEL_FILE if best is not None else None,
        best_mean_reward=best["mean_reward"] if best is not None else None,
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
    not trained again (and a seed whose run did not finish trains again in its folder: seed
    folders are not numbered, as :func:`train`'s ``out`` is). Each run uses one torch
    thread. Returns, per seed, its
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
                        results[job[1]] = _run_from_json(future.result())
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
    "tensorboard", "eval_every", "eval_episodes",
}  # fmt: skip
_RUN_PATHS = ("model_path", "config_path", "best_model_path")


def _train_one(target: str, seed: int, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """One seed's run, as JSON (what an executor's call sends back)."""
    run = train(target, seed=seed, out=out, progress=False, threads=1, numbered=False,
                **settings)  # fmt: skip
    record = vars(run)
    return {k: str(v) if k in _RUN_PATHS and v is not None else v for k, v in record.items()}


def _run_from_json(record: dict[str, Any]) -> TrainRun:
    return TrainRun(**{
        k: Path(v) if k in _RUN_PATHS and v is not None else v for k, v in record.items()
    })  # fmt: skip


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
    best = (record.get("evaluation") or {}).get("best") or {}
    best_mean = best.get("mean_reward") if isinstance(best, dict) else None
    has_best = (folder / BEST_MODEL_FILE).is_file()
    try:
        return TrainRun(
            model_path=folder / MODEL_FILE,
            config_path=folder / CONFIG_FILE,
            steps=int(record["steps"]),
            seconds=float(record["seconds"]),
            episodes=int(record["episodes_recent"]),
            mean_episode_reward=float(mean) if isinstance(mean, (int, float)) else None,
            total_steps=int(record.get("num_timesteps", record["steps"])),
            best_model_path=folder / BEST_MODEL_FILE if has_best else None,
            best_mean_reward=float(best_mean) if isinstance(best_mean, (int, float)) else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


# --- tuning -----------------------------------------------------------------------------------

# PPO's search space (and MaskablePPO's: PPO with action masks)
_PPO_SPACE: dict[str, Any] = {
    "learning_rate": ("log", 1e-5, 1e-2),
    "n_steps": [64, 128, 256, 512, 1024, 2048],
    "gamma": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999],
    "ent_coef": ("log", 1e-8, 0.1),
}
# SAC's and TD3's: the off-policy actor-critics for continuous actions
_ACTOR_CRITIC_SPACE: dict[str, Any] = {
    "learning_rate": ("log", 1e-5, 1e-2),
    "gamma": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999],
    "tau": [0.005, 0.01, 0.02, 0.05],
    "batch_size": [64, 128, 256],
}
#: What :func:`optimize` samples, per algorithm: ``("log", low, high)`` a log-uniform
#: number, ``("float", low, high)`` a uniform one, a list: one of its values. A rollout
#: length (``n_steps``) longer than a trial is left out of that study's choices, and
#: ``batch_size`` comes down to the rollout where it is larger.
SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "ppo": dict(_PPO_SPACE),
    "maskable-ppo": dict(_PPO_SPACE),
    "a2c": {
        "learning_rate": ("log", 1e-5, 1e-2),
        "n_steps": [5, 8, 16, 32, 64, 128],
        "gamma": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999],
        "ent_coef": ("log", 1e-8, 0.1),
    },
    "dqn": {
        "learning_rate": ("log", 1e-5, 1e-2),
        "gamma": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999],
        "exploration_fraction": ("float", 0.05, 0.5),
        "target_update_interval": [100, 500, 1000, 5000],
    },
    "sac": dict(_ACTOR_CRITIC_SPACE),
    "td3": dict(_ACTOR_CRITIC_SPACE),
}
#: Trials of one study at most.
MAX_TRIALS = 10_000


@dataclass
class TuneResult:
    """What :func:`optimize` gives: the best trial and the files the study wrote."""

    hyperparams_path: Path  # best_hyperparams.yml, a file --hyperparams takes
    trials_path: Path  # trials.csv: every trial, its settings and its score
    best_trial: int
    best_value: float  # the best trial's mean reward on the validation benchmarks
    best_params: dict[str, Any]  # the settings it sampled
    trials: list[dict[str, Any]]  # per trial: trial, state, value, seconds, steps, params


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise RuntimeError(
            "tuning needs optuna, which is not installed: pip install 'optgym[tune]' (or "
            "pip install optuna)"
        ) from None
    return optuna


def _sample(trial: Any, config: TrainConfig, steps: int) -> dict[str, Any]:
    """One trial's settings from ``config.algo``'s :data:`SEARCH_SPACES`."""
    section = config.hyperparams
    sampled: dict[str, Any] = {}
    for name, spec in SEARCH_SPACES[config.algo].items():
        if isinstance(spec, list):
            choices = spec
            if name == "n_steps":  # a rollout longer than the trial would be cut short
                choices = [n for n in spec if n * config.n_envs <= steps] or [min(spec)]
            sampled[name] = trial.suggest_categorical(name, choices)
        else:
            kind, low, high = spec
            sampled[name] = trial.suggest_float(name, low, high, log=kind == "log")
    rollout = sampled.get("n_steps", 0) * config.n_envs
    if rollout and section.get("batch_size", 0) > rollout:
        sampled["batch_size"] = max(rollout, 2)
    return sampled


def _run_trial(
    config: TrainConfig, sampled: dict[str, Any], steps: int, seed: int, threads: int,
    benchmarks: list[str],
) -> tuple[float, int]:  # fmt: skip
    """Train ``config`` with ``sampled`` over its settings for ``steps`` steps, in memory;
    its mean reward on ``benchmarks`` and the steps it trained."""
    from optgym.threads import torch_threads

    section = check_algo_settings(config.algo, {**config.hyperparams, **sampled})
    trial_config = dataclasses.replace(config, hyperparams=section)
    plan = plan_steps(trial_config, steps)
    params = dict(section)
    policy = params.pop("policy", "MlpPolicy")
    params.pop("n_timesteps", None)
    if plan.n_steps is not None:
        params["n_steps"] = plan.n_steps
    vec = make_vec_env(trial_config, seed)
    env = make_eval_env(trial_config)
    try:
        with torch_threads(threads):
            model = _make_model(trial_config, policy, params, vec, seed, None, sampled)
            stop = _watch(plan.steps, False, config.algo not in ON_POLICY, None)
            _learn(model, plan, [stop], config.algo, fresh=True)
            rewards = evaluate_model(model, env, benchmarks, seed, config.algo == "maskable-ppo")
    finally:
        vec.close()
        env.close()
    return sum(rewards) / len(rewards), int(model.num_timesteps)


def optimize(
    target: str,
    algo: str = "ppo",
    trials: int = 10,
    steps_per_trial: int | None = None,
    out: str | Path = "runs/tune",
    seed: int = 0,
    n_envs: int | None = None,
    hyperparams: str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    eval_episodes: int = 5,
    threads: int = 1,
    progress: bool = True,
    numbered: bool = True,
) -> TuneResult:
    """Tune ``algo`` on ``target`` with Optuna (the RL Zoo's ``--optimize``): ``trials``
    trials, each sampling the settings of :data:`SEARCH_SPACES` (TPE, seeded by ``seed``,
    so the same call gives the same trials), training ``steps_per_trial`` steps (default:
    a tenth of the file's ``n_timesteps``) on the train benchmarks with seed ``seed``,
    and scored by its deterministic policy's mean reward on ``eval_episodes`` validation
    benchmarks (:func:`validation_benchmarks`). Trials keep no model.

    Writes into ``out`` (numbered as :func:`train`'s, :func:`run_folder`):
    ``best_hyperparams.yml``, the hyperparameter file (the env's, or ``hyperparams``)
    with the best trial's settings (and ``env_kwargs``, ``n_envs``, ``overrides``) in its
    ``algo`` section, which ``--hyperparams`` takes; and ``trials.csv``, every trial.
    A trial that fails (a setting SB3 refuses) is recorded and the study goes on;
    ``ValueError`` when none completes, or for bad settings before anything runs;
    ``RuntimeError`` when optuna is not installed (``pip install 'optgym[tune]'``)."""
    optuna = _import_optuna()
    check_threads(threads)
    _check_count(trials, "trials", 1, MAX_TRIALS)
    _check_count(eval_episodes, "eval_episodes", 1, MAX_EVAL_EPISODES)
    config = resolve(target, algo, hyperparams, env_kwargs, n_envs, overrides)
    if steps_per_trial is None:
        steps_per_trial = max(config.hyperparams.get("n_timesteps", 10_000) // 10, config.n_envs)
    plan_steps(config, steps_per_trial)  # the step count, checked
    benchmarks = validation_benchmarks(config, eval_episodes)
    out = run_folder(out) if numbered else Path(out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    errors: list[str] = []

    def objective(trial: Any) -> float:
        sampled = _sample(trial, config, steps_per_trial)
        start = time.monotonic()
        try:
            value, steps = _run_trial(config, sampled, steps_per_trial, seed, threads, benchmarks)
        except ValueError as e:
            errors.append(str(e))
            raise
        finally:
            trial.set_user_attr("seconds", round(time.monotonic() - start, 3))
        trial.set_user_attr("steps", steps)
        return value

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=trials, unit="trial", desc=f"tune {config.env_id}", dynamic_ncols=True)
    try:
        study.optimize(
            objective,
            n_trials=trials,
            catch=(ValueError,),
            callbacks=[lambda study, trial: bar.update(1)] if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        first = errors[0] if errors else "no value"
        raise ValueError(f"every one of the {trials} trials failed; the first: {first}")
    best = study.best_trial
    rows = [
        {
            "trial": t.number, "state": t.state.name.lower(), "value": t.value,
            "seconds": t.user_attrs.get("seconds"), "steps": t.user_attrs.get("steps"),
            **t.params,
        }
        for t in study.trials
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    trials_path = out / TRIALS_FILE
    _write_trials(trials_path, rows)
    params = dict(best.params)
    rollout = params.get("n_steps", 0) * config.n_envs
    if rollout and config.hyperparams.get("batch_size", 0) > rollout:
        params["batch_size"] = max(rollout, 2)
    header = (
        f"Tuned by optgym train {config.env_id} --algo {algo} --optimize: the best of "
        f"{trials} trials (seed {seed}, {steps_per_trial} steps each): trial {best.number}, "
        f"mean reward {best.value:.6g} on {len(benchmarks)} validation benchmarks."
    )
    hyperparams_path = out / BEST_HYPERPARAMS_FILE
    _write_best_hyperparams(hyperparams_path, config, env_kwargs, overrides, params, header)
    return TuneResult(hyperparams_path, trials_path, best.number, float(best.value), params, rows)


def _write_trials(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    names = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)


def _write_best_hyperparams(
    path: Path, config: TrainConfig, env_kwargs: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None, params: Mapping[str, Any], header: str,
) -> None:  # fmt: skip
    """The file ``config`` was read from, with ``params`` (and the caller's env settings,
    sub-envs and ``overrides``) in its algorithm section, the other sections left out."""
    import textwrap

    import yaml

    data = read_hyperparams(config.source)
    tuned: dict[str, Any] = {}
    for key in _TOP_KEYS:
        if key in data:
            tuned[key] = data[key]
    if env_kwargs:
        tuned["env_kwargs"] = {**(data.get("env_kwargs") or {}), **env_kwargs}
    tuned["n_envs"] = config.n_envs
    tuned[config.algo] = {**data[config.algo], **(overrides or {}), **params}
    comment = "".join(f"# {line}\n" for line in textwrap.wrap(header, 88))
    path.write_text(comment + yaml.safe_dump(tuned, sort_keys=False), encoding="utf-8")


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


def load_policy(path: str | Path, best: bool = False) -> TrainedPolicy:
    """The model saved by :func:`train` in ``path`` (its folder or a model file in it);
    ``best``: the folder's ``best_model.zip`` (the best evaluation on validation
    benchmarks) instead of its ``model.zip``. ``ValueError`` naming what is missing or
    unreadable. An SB3 model file holds pickled objects: load only models you trust (as
    with any pickle)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    model_file = folder / MODEL_FILE if path.is_dir() else path
    if best:
        model_file = folder / BEST_MODEL_FILE
    config_file = folder / CONFIG_FILE
    for needed in (model_file, config_file):
        if not needed.is_file():
            why = (
                " (the run did not evaluate: see --eval-every)"
                if needed.name == BEST_MODEL_FILE
                else ""
            )
            raise ValueError(f"no trained model at {path}: {needed.name} is missing{why}")
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
    "ACTION_NOISES",
    "ADAPTERS",
    "ALGOS",
    "ON_POLICY",
    "RUN_FILES",
    "SEARCH_SPACES",
    "WRAPPERS",
    "check_wrapper",
    "wrapper_class",
    "SETTING_RANGES",
    "SettingRange",
    "StepPlan",
    "TrainConfig",
    "TrainRun",
    "TrainedPolicy",
    "TuneResult",
    "apply_wrappers",
    "check_algo_settings",
    "check_env_kwargs",
    "check_threads",
    "evaluate_model",
    "hyperparams_path",
    "load_policy",
    "make_env",
    "make_eval_env",
    "make_vec_env",
    "optimize",
    "plan_steps",
    "read_hyperparams",
    "resolve",
    "run_folder",
    "train_seeds",
    "train",
    "validation_benchmarks",
]
