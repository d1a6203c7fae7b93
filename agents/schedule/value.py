"""The greedy / beam-search agent of ``ScheduleSearch-v0`` and ``-v1`` guided by a learned
value function (after Steiner et al., "Value learning for throughput optimization of deep
neural networks", MLSys 2021).

The network is :class:`optgym.envs.schedule.model.ValueNet`: it maps an observation (a
partial or complete schedule) to the predicted log speedup over naive of the best
completion of that schedule.

The agent is a learned one: ``ValueFunctionAgent.train(env, benchmarks, budget)`` measures
schedules of the given train pipelines through the given env (its budget meter counts the
measurements; in ``cache`` mode they go to the env's SQLite cache, so a rerun reuses them)
and fits the network, ``save``/``load`` keep it, and ``--agent value:path=FILE`` benchmarks
it. ``optgym train`` does both, data collection and training; the shipped weights
(``optgym/agents/weights/schedule_value.pt``) are made with the settings' defaults
(:data:`optgym.envs.schedule.model.MAKE_COMMAND`)::

    optgym train value --task schedule-search --dataset generator://halide-random-v0 \
        --episodes 100 --budget measurements=540 --out agents/weights/schedule_value.pt

that is 45 train pipelines of ``generator://halide-random-v0`` (the first with at most 16
stages, from seed 2000) x (naive anchor + 10 random schedules), about 20 minutes on 2 cores
(1-3 s a measurement, mostly the JIT compile), then about half a minute of training (20
epochs, a round of value iteration, 5 more). Only train-split pipelines are used.

On ``ScheduleSearch-v1`` (the agent ``value-v1``: beam 4, the best-predicted schedules
measured while the budget lasts) the value function is learned by value iteration as in the
paper: V0 from the random schedules, then ``search_rounds`` rounds (V1, V2) each of which
searches every train pipeline with the current network, measures its best-predicted
schedules and fits a new network to all the data so far. Its shipped weights
(``optgym/agents/weights/schedule_value_v1.pt``) are made by
``MAKE_COMMANDS["optgym/ScheduleSearch-v1"]`` of :mod:`optgym.envs.schedule.model`.
Weights remember the env they were trained on; the other env refuses them. ``value-v1-climb``
uses the same weights, measures only its 8 best-predicted schedules and spends the rest of
the measurements on hill climbing from the best measured one, each measurement the
best-predicted of 32 one-component changes of it (``climb_after``, ``mutations``).

The module holds the agent; :mod:`optgym.agents.schedule.value_data` collects the measured
schedules (:func:`~optgym.agents.schedule.value_data.collect`, into a data file) and
:mod:`optgym.agents.schedule.value_training` fits the network to them
(:func:`~optgym.agents.schedule.value_training.train`): the same as ``optgym train`` from
Python, in two steps, through a data file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, reading_weights, solved
from optgym.agents.schedule.local import changed_action
from optgym.agents.schedule.value_data import (
    ALL_DEFAULTS,
    action_key,
    as_arrays,
    collect_episode,
    space_of,
    stage_shape,
    summarize,
)
from optgym.agents.schedule.value_training import fit
from optgym.budget import Budget, BudgetExceeded
from optgym.envs.schedule import ENV_ID
from optgym.envs.schedule import actions as actions_v0
from optgym.envs.schedule.actions import ROOT, VECTOR_WIDTHS
from optgym.envs.schedule.model import (
    MAKE_COMMAND,
    MAKE_COMMANDS,
    CostModel,
    default_weights_path,
    load_cost_model,
)

# --------------------------------------------------------------------------- the agent

_SHIPPED: dict[str, CostModel] = {}  # the shipped weights, read once per process


def _shipped_model(env_id: str) -> CostModel:
    path = str(default_weights_path(env_id))
    if path not in _SHIPPED:
        _SHIPPED[path] = _read(path, env_id)
    return _SHIPPED[path]


def _read(path: str | Path, env_id: str = ENV_ID) -> CostModel:
    """The weights file ``path``; a missing or malformed one is one ``ValueError`` line."""
    with reading_weights(path, "schedule value", MAKE_COMMANDS.get(env_id, MAKE_COMMAND)):
        return load_cost_model(path, env_id)


def _structured(masks: list[np.ndarray], space: Any) -> list[np.ndarray]:
    """A few hand-made choices: every legal compute location with nothing else, and a
    vectorized tile (16 x 4, vectors of 8, as far as legal) computed at root."""
    names = [name for name, _ in space.COMPONENTS]
    out = []
    for c in np.flatnonzero(masks[0]):
        a = np.zeros(len(space.NVEC), np.int64)
        a[0] = c
        out.append(a)
    a = np.zeros(len(space.NVEC), np.int64)
    a[0] = ROOT
    wanted = (
        ("split_x", space.SPLITS.index(16)),
        ("split_y", space.SPLITS.index(4)),
        ("vectorize", VECTOR_WIDTHS.index(8)),
    )
    for name, want in wanted:
        comp = names.index(name)
        legal = np.flatnonzero(masks[comp])
        a[comp] = legal[legal <= want].max()
    out.append(a)
    return out


def _stage_key(space: Any, action: np.ndarray, shape: tuple[int, ...]) -> Any:
    """What a stage action does, for deduplicating candidates (v0: canonically; v1: its
    decoded schedule)."""
    if space is actions_v0:
        return action_key(action, shape)
    return space.decode(action, shape)


@dataclass
class ValueFunctionAgent:
    """Greedy (``beam=1``) or beam search over stages guided by the learned value function.

    At each stage, for each of the ``beam`` partial schedules kept: the naive choice, a few
    structured ones and up to ``candidates`` sampled legal actions, deduplicated by what
    they do (seeded); each is scored by the model on its ``peek`` observation and the best
    ``beam`` (schedule, action) pairs go on (stepped on ``fork()``s; nothing is measured).
    At the last stage the complete schedules (with ``samples`` > 0, together with that many
    complete schedules drawn from the same proposal and scored by the model; on the test
    pipelines this did not beat the plain search: geomean 0.99x random search with 512,
    1.04x without, within the timing noise) are ranked by prediction and the best are
    measured, best-predicted first: ``measure_top`` of them (``None``: as many as the calls
    budget allows, 1 without one), while the budget has room (the first one always: the
    env refuses it when the budget is spent). With ``climb_after`` set, at most that many
    are, and the rest of the measurements climb from the best measured schedule (see the
    setting). Returns the best measured schedule.

    A learned agent: ``train`` measures schedules of train pipelines through the env and
    fits the value network; ``save`` and ``load`` (or the ``path`` setting) keep it."""

    #: What ``optgym train`` adds to the task's env config for training: the Adams2019
    #: baseline in ``info`` (minutes of autoscheduling per random pipeline) is not needed,
    #: and a random schedule that runs for minutes (v1 can say many) is cut off at 30 s
    #: (the episode fails and is left out) rather than the env's default 300 s.
    train_env_kwargs: ClassVar[dict[str, Any]] = {"baseline_info": False, "timeout_s": 30.0}

    path: Path | None = None
    """weights file to load (``save`` writes one); None: the shipped weights"""
    candidates: int = 128
    """sampled actions scored per stage and kept schedule (besides the structured ones)"""
    beam: int = 1
    """partial schedules kept per stage (1: greedy)"""
    measure_top: int | None = 1
    """best-predicted complete schedules to measure; None: as many as the calls budget"""
    samples: int = 0
    """extra complete schedules drawn from the proposal and ranked by the model"""
    epochs: int = ALL_DEFAULTS["epochs"]
    """train: epochs of fitting on the Monte Carlo targets"""
    vi_epochs: int = ALL_DEFAULTS["vi_epochs"]
    """train: epochs after the round of value iteration (0: no value iteration)"""
    schedules: int = ALL_DEFAULTS["schedules"]
    """train: random schedules measured per pipeline (after its naive anchor), at most"""
    max_stages: int | None = ALL_DEFAULTS["max_stages"]
    """train: pipelines with more stages are passed over (None: none)"""
    pipelines: int | None = ALL_DEFAULTS["pipelines"]
    """train: at most this many pipelines, the first of the benchmarks with at most
    max_stages stages (None: all of them)"""
    search_rounds: int = 0
    """train: rounds of value iteration on search data (V1, V2, ...): each searches every
    train pipeline with the current network, measures its ``search_top`` best-predicted
    schedules and fits a new network to all the data so far"""
    search_top: int = 2
    """train: schedules measured per pipeline and search round"""
    climb_after: int | None = None
    """None: measure best-predicted schedules only; k: measure the ``k`` best-predicted,
    then spend the rest of the measurements on hill climbing from the best measured one,
    each measurement the best-predicted of ``mutations`` one-component changes of it"""
    mutations: int = 32
    """changes of the best measured schedule drawn (proposal prior) and scored by the model
    per hill-climbing measurement"""

    _model: CostModel | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("candidates", "beam"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pipelines is not None and self.pipelines < 1:
            raise ValueError(f"pipelines must be >= 1 or None, got {self.pipelines}")
        if self.measure_top is not None and self.measure_top < 1:
            raise ValueError(f"measure_top must be >= 1 or None, got {self.measure_top}")
        if self.search_top < 1:
            raise ValueError(f"search_top must be >= 1, got {self.search_top}")
        if self.climb_after is not None and self.climb_after < 1:
            raise ValueError(f"climb_after must be >= 1 or None, got {self.climb_after}")
        if self.mutations < 1:
            raise ValueError(f"mutations must be >= 1, got {self.mutations}")
        for name in ("samples", "epochs", "vi_epochs", "schedules", "search_rounds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_stages is not None and self.max_stages < 1:
            raise ValueError(f"max_stages must be >= 1 or None, got {self.max_stages}")
        if self.path is not None:
            self.load(self.path)

    @property
    def model(self) -> CostModel:
        """The value network in use: trained or loaded, else the shipped weights of
        ``ScheduleSearch-v0``."""
        if self._model is None:
            self._model = _shipped_model(ENV_ID)
        return self._model

    def model_for(self, env_id: str) -> CostModel:
        """The value network to search ``env_id`` with: trained or loaded (refused when it
        was trained on the other env: the two action spaces give different
        observations), else the shipped weights of ``env_id``."""
        if self._model is None:
            self._model = _shipped_model(env_id)
        made_for = str(self._model.meta.get("env_id", ENV_ID))
        if made_for != env_id:
            where = f" ({self.path})" if self.path is not None else ""
            raise ValueError(
                f"the value network{where} was trained on {made_for}, not {env_id}: use "
                f"weights trained on {env_id} (optgym train with a task on {env_id})"
            )
        return self._model

    # ---- a learned agent ------------------------------------------------------------------
    def load(self, path: str | Path) -> None:
        """Use the weights in ``path`` (a file ``save``, ``optgym train value`` or
        :func:`train` wrote)."""
        self._model = _read(path)
        self.path = Path(path)

    def save(self, path: str | Path) -> None:
        """Write the value network to ``path`` in the format ``load`` reads."""
        self.model.save(path)

    def train(
        self,
        env: gym.Env,
        benchmarks: list[str],
        budget: Budget,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Measure schedules of ``benchmarks`` (train-split pipelines) with ``env`` (in
        ``measure`` or ``cache`` mode; its budget meter counts every measurement) and fit
        the value network to them: what ``optgym train value`` runs.

        Round-robin over the pipelines (the first ``pipelines`` of those with at most
        ``max_stages`` stages): first
        each one's naive anchor, then up to ``schedules`` random schedules each (prior and
        uniform draws), until the budget has no room for another episode; then ``epochs``
        epochs, a round of value iteration and ``vi_epochs`` more (pipelines held out for a
        validation loss only when there are 10 or more). Then ``search_rounds`` rounds of
        value iteration on search data, while the budget lasts: per pipeline, the beam
        search with the current network and a measurement of its ``search_top``
        best-predicted schedules not in the data yet, then a new network fitted to all the
        data the same way. Train on an env made with
        ``train_env_kwargs`` on top of the task's (``optgym train`` does): the Adams2019
        baseline of ``baseline_info`` is only info and takes minutes per random pipeline.
        Returns figures: ``pipelines``,
        ``episodes``, ``errors``, ``measurements``, ``samples`` (training states),
        ``epochs``, ``final_loss`` (the last epoch's weighted squared error, in log
        speedup squared), ``val_loss`` and ``seconds`` (wall time)."""
        from tqdm import tqdm

        start = time.perf_counter()
        base = env.unwrapped
        if getattr(base, "mode", None) not in ("measure", "cache"):
            raise ValueError(
                f"training needs measured rewards: an env in mode 'measure' or 'cache', not "
                f"{getattr(base, 'mode', None)!r}"
            )
        if not benchmarks:
            raise ValueError("train needs at least one benchmark (train-split pipelines)")
        for uri in benchmarks:
            if base.datasets.dataset(uri).split_of(uri) == "test":
                raise ValueError(f"{uri} is in the test split; train on train-split pipelines")
        rng = np.random.default_rng(seed)
        episodes: list[dict[str, Any]] = []
        errors: list[str] = []
        stages: dict[str, int] = {}
        for uri in dict.fromkeys(benchmarks):
            if self.pipelines is not None and len(stages) >= self.pipelines:
                break
            base.reset(options={"benchmark": uri})  # free: no measurement
            if self.max_stages is None or len(base.stage_names) <= self.max_stages:
                stages[uri] = len(base.stage_names)
        if not stages:
            raise ValueError(
                f"none of the {len(benchmarks)} benchmarks has at most {self.max_stages} stages"
            )
        kept: list[str] = []  # pipelines whose naive anchor was measured

        def rounds() -> Iterator[tuple[int, str]]:
            for k in range(self.schedules + 1):
                yield from ((k, uri) for uri in (list(stages) if k == 0 else list(kept)))

        with metered(env, budget, self) as meter:
            calls0 = meter.calls
            bar = tqdm(desc="collect", unit="schedule", disable=not progress)
            try:
                for k, uri in rounds():
                    if not meter.calls_left(steps=stages[uri]) > 0:
                        break
                    try:
                        episode, error = collect_episode(base, uri, k, rng)
                    except BudgetExceeded:  # the seconds ran out during the episode
                        break
                    bar.update(1)
                    if error is not None:
                        errors.append(error)
                        continue
                    if k == 0:  # a pipeline whose naive choice fails is passed over
                        kept.append(uri)
                    assert episode is not None
                    episodes.append(dict(episode, pipeline=kept.index(uri)))
            finally:
                bar.close()
            summary = summarize(
                kept, episodes, errors, seed, None, self.max_stages, env_id=base.env_id
            )
            model, history = self._fit(kept, episodes, summary, seed, progress)
            for r in range(self.search_rounds):
                added = self._search_round(base, meter, kept, stages, model, rng, episodes,
                                           errors, progress, r)  # fmt: skip
                if not added:
                    break
                summary = summarize(
                    kept, episodes, errors, seed, None, self.max_stages, env_id=base.env_id
                )
                summary["search_rounds"] = r + 1
                model, history = self._fit(kept, episodes, summary, seed, progress)
            measurements = meter.calls - calls0
        model.meta["data"]["measurements"] = measurements
        self._model = model
        return {
            "pipelines": len(kept),
            "episodes": len(episodes),
            "errors": len(errors),
            "measurements": measurements,
            "samples": int(model.meta["states"]),
            "epochs": len(history["train_loss"]),
            "final_loss": float(history["train_loss"][-1]),
            "val_loss": float(history["val_loss"][-1]),
            "seconds": time.perf_counter() - start,
        }

    def _fit(
        self,
        kept: list[str],
        episodes: list[dict[str, Any]],
        summary: dict[str, Any],
        seed: int,
        progress: bool,
    ) -> tuple[CostModel, dict[str, Any]]:
        """A new network fitted to every episode so far (``epochs``, a round of bootstrapped
        value iteration and ``vi_epochs`` more)."""
        data = {**as_arrays(kept, episodes, summary), "summary": summary}
        return fit(
            data, self.epochs, seed, vi_rounds=1 if self.vi_epochs else 0,
            vi_epochs=self.vi_epochs, val_fraction=0.1 if len(kept) >= 10 else 0.0,
            progress=progress,
        )  # fmt: skip

    def _search_round(
        self,
        base: Any,
        meter: Any,
        kept: list[str],
        stages: dict[str, int],
        model: CostModel,
        rng: np.random.Generator,
        episodes: list[dict[str, Any]],
        errors: list[str],
        progress: bool,
        r: int,
    ) -> int:
        """One round of value iteration on search data: per train pipeline, the beam search
        with ``model`` and a measurement of its ``search_top`` best-predicted schedules (not
        measured before), appended to ``episodes``; returns how many were measured."""
        from tqdm import tqdm

        measured = {
            (e["pipeline"], e["actions"].tobytes()) for e in episodes
        }  # the schedules the data already holds
        added = 0
        for p, uri in enumerate(tqdm(kept, desc=f"search round {r + 1}", unit="pipeline",
                                     disable=not progress)):  # fmt: skip
            base.reset(options={"benchmark": uri})
            taken = 0
            for _, parent, a in self._search(base, model, rng):
                if taken >= self.search_top or not meter.calls_left(steps=stages[uri]) > 0:
                    break
                planned = [*(np.asarray(x, np.int64) for x in parent.state.actions), a]
                if (p, np.stack(planned).tobytes()) in measured:
                    continue
                try:
                    episode, error = collect_episode(base, uri, -1, rng, planned=planned)
                except BudgetExceeded:
                    return added
                taken += 1
                if error is not None:
                    errors.append(error)
                    continue
                assert episode is not None
                episodes.append(dict(episode, pipeline=p))
                measured.add((p, episode["actions"].tobytes()))
                added += 1
        return added

    # ---- search ---------------------------------------------------------------------------
    def _candidates(
        self, masks: list[np.ndarray], shape: tuple[int, ...], space: Any, rng: np.random.Generator
    ) -> list[np.ndarray]:
        seen: set[Any] = set()
        out: list[np.ndarray] = []

        def add(a: np.ndarray) -> None:
            key = _stage_key(space, a, shape)
            if key not in seen:
                seen.add(key)
                out.append(a)

        for a in _structured(masks, space):
            add(a)
        want, tries = len(out) + self.candidates, 0
        while len(out) < want and tries < 4 * self.candidates:
            add(space.prior_action(masks, rng) if tries % 4 else space.sample_action(masks, rng))
            tries += 1
        return out

    def _rollouts(
        self, root: Any, n: int, model: CostModel, space: Any, rng: np.random.Generator
    ) -> list[tuple[float, Any, np.ndarray]]:
        """``samples`` complete schedules drawn from the proposal (prior and uniform, as the
        candidates), scored by the model on their complete observation (nothing measured)."""
        parents, actions, obs = [], [], []
        for k in range(self.samples):
            f = root.fork()
            draw = space.prior_action if k % 4 else space.sample_action
            for _ in range(n - 1):
                f.step(draw(f.masks(), rng))
            a = draw(f.masks(), rng)
            parents.append(f)
            actions.append(a)
            obs.append(f.peek(a))
        if not obs:
            return []
        scores = model.predict(np.stack(obs))
        return [(float(v), f, a) for v, f, a in zip(scores, parents, actions, strict=True)]

    @staticmethod
    def _ranked(finals: list[tuple[float, Any, np.ndarray]]) -> list:
        """Complete schedules best-predicted first, each distinct schedule once."""
        seen: set[tuple] = set()
        out = []
        for score, parent, a in sorted(finals, key=lambda x: -x[0]):
            key = (tuple(map(tuple, parent.state.actions)), tuple(int(v) for v in a))
            if key not in seen:
                seen.add(key)
                out.append((score, parent, a))
        return out

    def _search(
        self, base: Any, model: CostModel, rng: np.random.Generator
    ) -> list[tuple[float, Any, np.ndarray]]:
        """The beam search from ``base``'s reset state: complete schedules as (predicted
        reward, the fork holding all but the last stage, the last stage's action),
        best-predicted first (nothing measured)."""
        space = space_of(base)
        n = len(base.stage_names)
        root = base.fork()
        beams = [base.fork()]
        finals: list[tuple[float, Any, np.ndarray]] = []
        for t in range(n):
            shape = stage_shape(base, t)
            pairs: list[tuple[int, np.ndarray]] = []
            obs: list[np.ndarray] = []
            for bi, b in enumerate(beams):
                for a in self._candidates(b.masks(), shape, space, rng):
                    pairs.append((bi, a))
                    obs.append(b.peek(a))
            scores = model.predict(np.stack(obs))
            order = np.argsort(-scores, kind="stable")
            if t + 1 < n:
                kept = []
                for i in order[: self.beam]:
                    bi, a = pairs[i]
                    f = beams[bi].fork()
                    f.step(a)
                    kept.append(f)
                beams = kept
            else:
                finals = [(float(scores[i]), beams[pairs[i][0]], pairs[i][1]) for i in order]
        return self._ranked(finals + self._rollouts(root, n, model, space, rng))

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        model = self.model_for(base.env_id)
        rng = np.random.default_rng(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            root = base.fork()
            finals = self._search(base, model, rng)
            limit = self.measure_top if self.measure_top is not None else (budget.calls or 1)
            if budget.calls is not None:
                limit = min(limit, budget.calls)
            first = limit if self.climb_after is None else min(limit, self.climb_after)
            best, errors, measured = None, [], 0
            seen: set[tuple] = set()  # the schedules measured, by what each stage does
            for _, parent, a in finals:
                # the first measurement is the env's to refuse (one late start is in grace)
                if measured >= max(1, first) or (measured and meter.room() == 0):
                    break
                f = parent.fork()
                seen.add(self._key(base, [*parent.state.actions, a]))
                info = f.step(a)[4]
                measured += 1
                if "error" in info:
                    errors.append(info["error"])
                    continue
                state = f.state
                if best is None or state.reward > best.reward:
                    best = state
            if best is None:
                raise RuntimeError(
                    f"none of the {measured} best-predicted schedules of {benchmark} could be "
                    f"measured: {errors[-1] if errors else 'no candidate'}"
                )
            if self.climb_after is not None:
                best = self._climb(base, root, model, best, seen, limit - measured, meter, rng)
            return solved(env, meter, best)

    @staticmethod
    def _key(base: Any, actions: list[np.ndarray]) -> tuple:
        """A complete schedule by what each of its stage actions does."""
        space = space_of(base)
        return tuple(
            _stage_key(space, np.asarray(a), stage_shape(base, t)) for t, a in enumerate(actions)
        )

    def _climb(
        self,
        base: Any,
        root: Any,
        model: CostModel,
        best: Any,
        seen: set[tuple],
        left: int,
        meter: Any,
        rng: np.random.Generator,
    ) -> Any:
        """Hill climbing from the measured state ``best`` for at most ``left`` more
        measurements (while the budget has room): each draws ``mutations`` changes of one
        component of one stage of the best schedule (later stages' components that become
        illegal drawn again), measures the best-predicted one not measured yet and keeps it
        when it is faster. Returns the best measured state."""
        current = [np.asarray(a, np.int64) for a in best.actions]
        dry = 0  # draws in a row that gave no new schedule
        try:
            prefixes = self._prefixes(root, current) if meter.room() > 0 else []
            while left > 0 and meter.room() > 0 and dry < 4:
                changes = self._changes(base, prefixes, current, seen, rng)
                if not changes:
                    dry += 1
                    continue
                dry = 0
                scores = model.predict(np.stack([obs for _, _, _, obs in changes]))
                fork, actions, key, _ = changes[int(np.argmax(scores))]
                if meter.room() == 0:  # scoring took the last of the seconds
                    break
                seen.add(key)
                info = fork.step(actions[-1])[4]
                left -= 1
                if "error" not in info and fork.state.reward > best.reward:
                    best, current = fork.state, actions
                    prefixes = self._prefixes(root, current)
        except BudgetExceeded:  # the seconds ran out while changes were scored
            pass
        return best

    def _changes(
        self,
        base: Any,
        prefixes: list[Any],
        current: list[np.ndarray],
        seen: set[tuple],
        rng: np.random.Generator,
    ) -> list[tuple[Any, list[np.ndarray], tuple, np.ndarray]]:
        """``mutations`` draws of a one-component change of ``current`` (the rest of the
        schedule kept where still legal), those not in ``seen`` and distinct: each as (the
        fork holding all but its last stage, its actions, its key, its last observation)."""
        space = space_of(base)
        n = len(current)
        out: list[tuple[Any, list[np.ndarray], tuple, np.ndarray]] = []
        keys: set[tuple] = set()
        for _ in range(self.mutations):
            k, j = int(rng.integers(n)), int(rng.integers(len(space.COMPONENTS)))
            f = prefixes[k].fork()
            acts = current[:k]
            for t in range(k, n):
                acts.append(changed_action(f.masks(), current[t], space.PRIOR, rng,
                                           j if t == k else None))  # fmt: skip
                if t + 1 < n:
                    f.step(acts[-1])
            key = self._key(base, acts)
            if key not in seen and key not in keys:
                keys.add(key)
                out.append((f, acts, key, f.peek(acts[-1])))
        return out

    @staticmethod
    def _prefixes(root: Any, actions: list[np.ndarray]) -> list[Any]:
        """Forks of ``root`` after the first 0, 1, ..., n - 1 of ``actions``."""
        out = [root.fork()]
        for a in actions[:-1]:
            f = out[-1].fork()
            f.step(a)
            out.append(f)
        return out


__all__ = [
    "ValueFunctionAgent",
]
