"""LLVM pass ordering: pick optimization passes one at a time to shrink a program."""

from __future__ import annotations

import functools
import math
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from optgym.datasets.dataset import Benchmark
from optgym.env import NamedSpace, OptGymEnv, StepResult
from optgym.envs.passes import PROBLEM, diagnostics
from optgym.envs.passes import actions as pass_actions
from optgym.envs.passes.backend import BackendCrash, BackendError, LlvmSession
from optgym.envs.passes.spaces import OBSERVATION_SPACES, REFERENCES, REWARD_SPACES

ENV_ID = "optgym/PassOrdering-v0"
BITCODE_MAGIC = diagnostics.BITCODE_MAGIC

# (benchmark sha256, reference, cost) -> cost; references are deterministic per benchmark.
_REFERENCE_CACHE: dict[tuple[str, str, str], int] = {}


def _describe(value: Any) -> str:
    """A short description of a bad action: its kind, and its value when that is short."""
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} and dtype {value.dtype}"
    kind = type(value).__name__
    if isinstance(value, (bool, np.bool_)):
        return f"the bool {bool(value)}"
    if isinstance(value, (float, np.floating)):
        return f"the {kind} {float(value)!r}"
    if isinstance(value, (str, bytes)):
        shown = repr(value) if len(value) <= 40 else repr(value[:40]) + "..."
        return f"a {kind} of length {len(value)}: {shown}"
    if value is None:
        return "None"
    return f"a {kind}"


#: Seconds before the end of a seconds budget's grace at which a running pass is killed.
KILL_MARGIN = 0.5
#: The most passes one pass-sequence action (one compilation) may hold.
MAX_SEQUENCE = 1000
#: Seconds one LLVM call (a step's pass, each pass of a pass sequence, a tried action) may
#: take while the attached budget names no seconds: a pass that runs away on a program
#: (minutes on csmith-v0/35) ends that episode, not the agent's run
#: (``PassOrderingEnv.call_seconds``).
CALL_SECONDS = 20.0


def cost_reduction_reward(before: int, after: int, norm: int) -> float:
    """The reward for a module going from cost ``before`` to cost ``after`` (instruction
    counts or ``.text`` bytes): the reduction divided by ``norm`` (the reduction of the
    reward's reference, at least 1, or 1 for a raw reduction), in one correctly rounded
    division of exact integers. The env's every reward comes from here: a step's (from its
    cost before and after) and the episode's (from the initial cost and the cost now)."""
    return (before - after) / norm


class PassOrderingEnv(OptGymEnv[Any, np.int64]):
    """
    ## Description

    Phase ordering for LLVM 19, after CompilerGym's ``llvm-v0``: each step runs one
    optimization pass on a program's LLVM IR, and the reward tracks how much smaller the
    program got, usually relative to what LLVM's own ``-Oz`` pipeline achieves. The passes
    run in a worker process (a small C++ program on LLVM's pass builder, which it keeps
    across steps), about 0.1 ms each on small programs; a crash in LLVM ends the episode
    with ``info["error"]``, never the caller.
    As in CompilerGym, ``env.unwrapped.commandline()`` gives the episode as an ``opt-19
    -passes='...'`` command that reproduces the module from the benchmark's file,
    ``env.unwrapped.write_bitcode(path)`` writes the module as it is now, and
    ``env.unwrapped.multistep(actions)`` takes several passes in one call.
    ``env.unwrapped.fork()`` forks the worker, so the copy holds the very same module in
    memory (LLVM's CloneModule would reorder use-lists).

    ## Action Space

    ``Discrete(124)``: CompilerGym's 124 pass flags, in its order
    (``optgym.envs.passes.actions.FLAGS``). A few flags no longer exist in LLVM 19 and run a
    documented substitute (``actions.SUBSTITUTIONS``); ``-barrier`` and ``-loop-reroll`` are
    no-ops. ``step`` also takes a pass sequence, a list of 1 to ``MAX_SEQUENCE`` (1000)
    actions: the passes run one after the other exactly as that many steps would (the same
    module, the same reward in sum), but as one step and one compilation, as one ``opt`` run
    of a pipeline is in the Coreset-NVP paper's budget; the state records the list as one
    action and replays it the same way. ``try_actions`` takes single passes only.

    ## Observation Space

    Chosen at ``make`` time with ``observation_space=``: ``Autophase`` (56 integer features,
    default), ``InstCount`` (70 counts), ``Ir`` (IR text), ``Programl`` (a torch-geometric
    ``Data`` program graph: instruction, variable and constant nodes; control, data and call
    edges), ``IrInstructionCount``, ``ObjectTextSizeBytes`` and their ``Oz``/``O3``/``O0``
    reference values. Every space is also computed on request, whatever the env was made
    with: ``env.unwrapped.observation["Ir"]`` (``env.unwrapped.observation.spaces`` maps the
    names to their spaces).

    ## Rewards

    Chosen with ``reward_space=``: ``IrInstructionCountOz`` (default: instruction-count
    reduction divided by the reduction ``-Oz`` achieves, so an episode that matches ``-Oz``
    sums to 1.0), ``IrInstructionCountO3``, ``IrInstructionCount`` (raw reduction),
    ``ObjectTextSizeBytes`` and ``ObjectTextSizeOz``/``ObjectTextSizeO3`` (``.text`` bytes
    of the object code, emitted in-process at llc's default -O2).

    A step's reward is its own reduction, ``(cost before - cost after) / norm``: the same
    pass on the same module earns the same float wherever it runs. The episode's reward
    (``env.unwrapped.episode_reward``, ``state.reward``, what ``apply`` and ``validate``
    give) is not the float sum of its steps but ``(initial cost - cost now) / norm``, one
    division of exact integers: an episode that ends at ``-Oz``'s count has exactly 1.0,
    and two episodes that end at the same count have the same reward whatever their path
    (forks, a reference step, a replay). Summed by hand, step rewards can differ from it in
    the last bits (``cost_reduction_reward`` computes both).

    ## Starting State

    The unoptimized program named by ``reset(options={"benchmark": uri})``: a
    ``generator://csmith-v0/<seed>`` or ``generator://llvm-stress-v0/<seed>`` program, a
    built ``benchmark://debian-v0/<package>`` program, or ``file:///path/to/x.bc``. Without
    options the last benchmark is kept (or the one set with ``env.unwrapped.benchmark =
    uri``, checked at once); the first reset takes ``generator://csmith-v0/0``. The datasets
    are ``env.unwrapped.datasets``, indexed by name or URI
    (``env.unwrapped.datasets["csmith-v0"].benchmark_uris("test")``).
    A file that is not LLVM bitcode or IR text, holds no instructions, or is larger than
    ``max_program_bytes`` is refused with a ``ValueError`` that names the file and what is
    wrong (the position of a parse error), never its contents; the env stays usable.

    ## Episode End

    Never terminates: stop when you like (register a ``max_episode_steps``, or wrap with
    ``optgym.wrappers.BudgetWrapper``). An LLVM crash truncates the episode and puts the
    message in ``info["error"]``; the next reset starts a new worker. Under a budget with
    seconds (``BudgetWrapper``), a step still running half a second before the seconds and
    their grace run out is killed the same way. Under a budget that names no seconds (calls
    or steps only), an LLVM call (a pass, each pass of a sequence, a tried action) that
    runs past ``env.call_seconds`` (``CALL_SECONDS``, 20 s; settable) is killed the same
    way, so every agent keeps its time: a runaway pass ends that episode, and the agent
    goes on from its best state. Every ``info`` counts the step's ``compilations`` (the
    work unit: one per pass, pass sequence or reference pipeline run).

    ## Arguments

    ``observation_space`` and ``reward_space`` (names above), ``benchmark`` (the URI of the
    first reset), ``timeout`` (seconds a single LLVM call may take before the worker is
    killed), ``render_mode`` (``"ansi"``: ``render()`` returns the episode's ``opt-19``
    command line and the module's cost under the reward: instruction count or ``.text``
    bytes).

    ## Version History

    * v0: LLVM 19.1, CompilerGym's 124 flags, csmith-v0, llvm-stress-v0, debian-v0.

    ## Example

    >>> import gymnasium as gym, optgym
    >>> env = gym.make("optgym/PassOrdering-v0", observation_space="Autophase",
    ...                reward_space="IrInstructionCountOz")
    >>> obs, info = env.reset(options={"benchmark": "generator://csmith-v0/1"})
    >>> obs, reward, terminated, truncated, info = env.step(env.unwrapped.action_index("-sroa"))
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    record = PROBLEM
    env_id = ENV_ID
    default_benchmark = "generator://csmith-v0/0"
    work_unit = "compilations"
    reward_spaces = tuple(REWARD_SPACES)
    observation_spaces = tuple(OBSERVATION_SPACES)
    references = tuple(REFERENCES)
    # The largest program a benchmark file may hold (the largest real one, lua, is 0.9 MB).
    max_program_bytes = 256 * 2**20

    def __init__(
        self,
        observation_space: str = "Autophase",
        reward_space: str = "IrInstructionCountOz",
        benchmark: str | None = None,
        timeout: float = 600.0,
        render_mode: str | None = None,
    ):
        super().__init__(benchmark=benchmark, reward_space=reward_space, render_mode=render_mode)
        self.observation_space_name = observation_space
        self.observation_space = self._named_space(observation_space).space
        self.action_space = spaces.Discrete(len(pass_actions.FLAGS))
        self.reward_range = (-np.inf, np.inf)
        self.timeout = timeout
        self.call_seconds = CALL_SECONDS
        self._reward = REWARD_SPACES[reward_space]
        self._session: LlvmSession | None = None  # the episode's worker
        self._zygote: LlvmSession | None = None  # the worker each episode's is forked from
        self._llvm_version: str | None = None
        # The episode's costs (exact integers), from which every reward is computed.
        self._cost_init = self._cost_prev = 0
        self._norm = 1
        # What the worker computes after each step: the observation and the reward's cost.
        self._step_names = self._worker_names((observation_space,)) + (self._reward.cost,)

    @staticmethod
    def action_index(flag: str) -> int:
        """Action number of a CompilerGym flag such as ``-sroa``."""
        return pass_actions.action_index(flag)

    @property
    def action_names(self) -> tuple[str, ...]:
        return pass_actions.FLAGS

    def set_step_timeout(self, seconds: float) -> None:
        """Kill a single LLVM call after ``seconds`` (the ``timeout`` setting), from the next
        call on: the step ends the episode with ``info["error"]`` (``StepTimeCap``)."""
        self.timeout = float(seconds)
        for session in (self._session, self._zygote):
            if session is not None:
                session.timeout = self.timeout

    # ---- worker plumbing ------------------------------------------------------------------
    def _fresh_worker(self) -> LlvmSession:
        """A worker for a new episode: a ``fork()`` of the env's first worker, which never
        holds a program, so that every episode starts from the same process state whatever
        ran before it (LLVM has bugs whose outcome depends on the heap: a replay in a fresh
        process then does what the episode did)."""
        if self._zygote is None or self._zygote.closed:
            self._zygote = LlvmSession.start(timeout=self.timeout)
        try:
            session = self._zygote.fork()
        except BackendCrash:  # the first worker was killed: start it again, once
            self._zygote.kill()
            self._zygote = LlvmSession.start(timeout=self.timeout)
            session = self._zygote.fork()
        session.timeout = self.timeout
        return session

    def _worker_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(OBSERVATION_SPACES[n][1] for n in names))

    def _convert(self, name: str, raw: dict[str, Any]) -> Any:
        _, key, ref = OBSERVATION_SPACES[name]
        if ref is not None:
            return np.array([self._reference_cost(ref, key)], dtype=np.int64)
        value = raw[key]
        if key in ("IrInstructionCount", "ObjectTextSizeBytes"):
            return np.array([value], dtype=np.int64)
        if key == "Programl":
            from optgym.envs.passes.programl import to_data

            return to_data(*value)
        return value

    def _observe(self, name: str) -> Any:
        """The observation ``name`` of the module as it is now (``env.observation[name]``)."""
        if self._benchmark is None or self._session is None:
            raise RuntimeError("the LLVM worker is gone (the episode crashed); call reset()")
        want = (name,) if OBSERVATION_SPACES[name][2] is None else ()
        raw = self._session.observe(self._worker_names(want)) if want else {}
        return self._convert(name, raw)

    def _named_observations(self) -> dict[str, NamedSpace]:
        return {
            name: NamedSpace(space, functools.partial(self._observe, name))
            for name, (space, _, _) in OBSERVATION_SPACES.items()
        }

    def _reference_cost(self, reference: str, cost: str) -> int:
        assert self._session is not None
        key = (self.benchmark_sha256, reference, cost)
        if key not in _REFERENCE_CACHE:
            pipeline = REFERENCES[reference] or "function(no-op-function)"
            raw = self._session.reference(pipeline, (cost,))
            _REFERENCE_CACHE[key] = int(raw[cost])
        return _REFERENCE_CACHE[key]

    def _load(self, benchmark: Benchmark) -> None:
        size = benchmark.path.stat().st_size
        if size > self.max_program_bytes:
            raise ValueError(
                f"cannot load benchmark {benchmark.uri}: {benchmark.path} holds {size} bytes, "
                f"more than the {self.max_program_bytes} a program may have"
            )
        data = benchmark.read_bytes()
        is_text = not diagnostics.is_bitcode(data)
        kind = "textual LLVM IR" if is_text else "LLVM bitcode"
        # Messages name the file and what is wrong, never its bytes (it may be any file).
        problem = diagnostics.content_problem(data)
        if problem is None:
            session = self._fresh_worker()
            session.data = data  # so that a crash log is checked against it too
            try:
                if session.load(data, is_text) == 0:  # a comment-only file parses as empty
                    problem = (
                        "holds no instructions (an empty module, or declarations only): "
                        "nothing to optimize, and its score would be 0"
                    )
            except BackendError as e:  # LLVM's message quotes the input: only what is safe
                what = "LLVM bitcode or IR text" if is_text else "valid LLVM bitcode"
                problem = f"is not {what} ({diagnostics.parse_failure(str(e), data)})"
            except BackendCrash:
                session.kill()
                raise
            if problem is None:  # the new episode's worker replaces the last one's
                if self._session is not None:
                    self._session.kill()
                self._session = session
            else:  # the last episode's worker stays, with its program
                session.kill()
        if problem is not None:
            raise ValueError(
                f"cannot load benchmark {benchmark.uri} as {kind}: {benchmark.path} {problem}"
            )

    # ---- hooks of OptGymEnv ---------------------------------------------------------------
    def _reset(self, benchmark: Benchmark) -> tuple[Any, dict[str, Any]]:
        try:
            return self._start(benchmark)
        except BackendCrash:
            # A worker killed between episodes or during this reset: one more try on a new
            # worker. A crash again (LLVM fails on this program) ends the reset; the env
            # then starts yet another worker for the next reset.
            self._on_crash()
            try:
                return self._start(benchmark)
            except BackendCrash:
                self._on_crash()
                raise

    def _start(self, benchmark: Benchmark) -> tuple[Any, dict[str, Any]]:
        self._cost_init = self._cost_prev = 0  # no reward left from the last episode
        self._load(benchmark)
        assert self._session is not None
        cost = self._reward.cost
        names = (self.observation_space_name,)
        raw = self._session.observe(self._worker_names(names) + (cost,))
        self._norm = 1
        if self._reward.reference:
            ref = self._reference_cost(self._reward.reference, cost)
            self._norm = max(int(raw[cost]) - ref, 1)
        self._cost_init = self._cost_prev = int(raw[cost])
        return self._convert(self.observation_space_name, raw), {}

    def _book_cost(self, cost: int) -> float:
        """Record ``cost``, the module's cost after a step; the step's reward."""
        reward = cost_reduction_reward(self._cost_prev, cost, self._norm)
        self._cost_prev = cost
        return reward

    def _run_pipeline(self, *pipelines: str) -> StepResult:
        """Run ``pipelines`` one after the other, each afresh as a step runs, as one
        compilation; the observation and the cost after the last."""
        if self._session is None:
            raise BackendCrash("the LLVM worker is gone; call reset()")
        cost = self._reward.cost
        names = self._step_names
        self._spend(1)
        # A pass sequence can take tens of seconds: one that would outlast the budget's
        # seconds (and their grace) is killed before, ending the episode, not the budget
        # (KILL_MARGIN leaves time for the kill and for the agent to return).
        limit = self._call_limit()
        try:
            for i, pipeline in enumerate(pipelines):
                left = self.meter.seconds_left() if self.meter is not None else None
                if left is not None:
                    self._session.timeout = max(0.0, min(self.timeout, left - KILL_MARGIN))
                elif limit is not None:  # each pass of a sequence has the cap
                    self._session.timeout = limit
                last = i == len(pipelines) - 1
                raw = self._session.run(pipeline, names if last else (cost,))
        except BackendError as e:  # a failed pipeline leaves a module we cannot trust
            raise BackendCrash(f"BackendError: {e}") from None
        except BackendCrash as e:
            if limit is not None and "timed out" in str(e):
                raise BackendCrash(f"{e} {self._cap_note(limit)}") from None
            raise
        finally:
            if self._session is not None:
                self._session.timeout = self.timeout
        reward = self._book_cost(int(raw[cost]))
        return self._convert(self.observation_space_name, raw), reward, False, False, {}

    def _call_limit(self) -> float | None:
        """The per-call cap (``call_seconds``) where an attached budget names no seconds and
        it is below the env's ``timeout``; None otherwise."""
        meter = self.meter
        if meter is None or meter.budget.seconds is not None:
            return None
        return min(self.timeout, float(self.call_seconds))

    @staticmethod
    def _cap_note(limit: float) -> str:
        return (
            f"(the per-call cap: {limit:g} s an LLVM call while the budget names no "
            "seconds; PassOrderingEnv.call_seconds)"
        )

    def _check_action(self, action: Any) -> int | tuple[int, ...]:
        n = self.action_space.n
        if isinstance(action, (list, tuple)):  # a pass sequence: one compilation
            if not 1 <= len(action) <= MAX_SEQUENCE:
                raise ValueError(
                    f"a pass sequence must hold 1 to {MAX_SEQUENCE} passes, got {len(action)}"
                )
            if any(isinstance(a, (list, tuple)) for a in action):
                raise ValueError("a pass sequence holds passes (integers), not sequences")
            return tuple(self._check_action(a) for a in action)  # type: ignore[misc]
        if type(action) is int and 0 <= action < n:  # the common case, checked first
            return action
        allowed = f"an integer in [0, {n}) (one of the {n} pass flags, see action_index())"
        if isinstance(action, np.ndarray):  # a 0-d integer array is what a policy often gives
            if action.shape != () or action.dtype.kind not in "iu":
                raise ValueError(f"action must be {allowed}, got {_describe(action)}")
            action = action.item()
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            # Never int(1.5) == 1 or float("abc"): a wrong type is an error, not a pass.
            raise ValueError(f"action must be {allowed}, got {_describe(action)}")
        if not 0 <= int(action) < n:
            value = int(action)
            shown = value if abs(value) < 10**18 else f"of {value.bit_length()} bits"
            raise ValueError(
                f"action {shown} is out of range; allowed: 0 <= action < {n} (the {n} pass flags)"
            )
        return int(action)

    def try_actions(self, actions: Sequence[Any], seconds: float | None = None) -> np.ndarray:
        """The reward each of ``actions`` would earn as the next step, without taking any:
        the worker runs each on a ``fork()`` of itself (the module as it is now, which stays
        as it is), all in one request, so trying every action from a state costs one round
        trip instead of a fork and a step per action. Each tried action counts as one
        compilation against an attached budget (``BudgetExceeded``, with nothing run, when
        the budget has no room for all of them) and in ``episode_work``; no step is taken
        or recorded. An entry is NaN where LLVM refused or crashed on that action (only its
        copy ends), or where its copy had not finished when the budget's seconds (less half
        a second) or the env's ``timeout`` ran out: those copies are killed, the rest are
        not started, and the episode goes on; ``seconds`` sets a shorter limit of the
        caller's (at 0 or less nothing runs and nothing is counted). A bad action raises
        ``ValueError`` as ``step`` does; ``RuntimeError`` when the episode is over or the
        worker is gone (a crash in the worker itself ends the episode as in ``step``)."""
        self._need_episode("try_actions()")
        if isinstance(actions, (str, bytes)) or not isinstance(actions, Sequence):
            raise ValueError(
                f"try_actions takes a sequence of actions (a list), got {type(actions).__name__}"
            )
        checked = [self._check_action(a) for a in actions]
        if any(isinstance(a, tuple) for a in checked):
            raise ValueError("try_actions tries single passes (integers), not pass sequences")
        if self._session is None:
            raise RuntimeError("the LLVM worker is gone (the episode crashed); call reset()")
        # The copies stop at the budget's seconds (less KILL_MARGIN), at the env's timeout
        # or at the caller's limit; the worker then answers with what finished.
        if seconds is not None and (
            isinstance(seconds, (bool, np.bool_))
            or not isinstance(seconds, (int, float, np.integer, np.floating))
            or math.isnan(seconds)
        ):
            raise ValueError(
                f"seconds must be a number of seconds (or None), got {_describe(seconds)}"
            )
        limit = self.timeout if seconds is None else min(self.timeout, float(seconds))
        cap = self._call_limit()
        if cap is not None:
            limit = min(limit, cap)
        left = self.meter.seconds_left() if self.meter is not None else None
        if left is not None:
            limit = min(limit, left - KILL_MARGIN)
        if not checked or not limit > 0:
            return np.full(len(checked), np.nan)
        self._spend(len(checked))
        cost = self._reward.cost
        pipelines = [pass_actions.PIPELINES[a] for a in checked]
        try:
            results = self._session.try_each(pipelines, (cost,), limit)
        except BackendCrash as e:
            self._error = f"{type(e).__name__}: {e}"
            self._on_crash()
            raise RuntimeError(f"the episode ended with an error ({self._error})") from None
        return np.array(
            [
                cost_reduction_reward(self._cost_prev, int(r[cost]), self._norm)
                if isinstance(r, dict)
                else np.nan
                for r in results
            ]
        )

    def _step(self, action: int | tuple[int, ...]) -> StepResult:
        if isinstance(action, tuple):
            result = self._run_pipeline(*(pass_actions.PIPELINES[a] for a in action))
            result[4]["action"] = " ".join(pass_actions.FLAGS[a] for a in action)
            return result
        result = self._run_pipeline(pass_actions.PIPELINES[action])
        result[4]["action"] = pass_actions.FLAGS[action]
        return result

    def _reference_step(self, name: str) -> StepResult:
        return self._run_pipeline(REFERENCES[name])

    def _exact_episode_reward(self) -> float:
        return cost_reduction_reward(self._cost_init, self._cost_prev, self._norm)

    def _on_crash(self) -> None:
        if self._session is not None:
            self._session.kill()
            self._session = None

    def _versions(self) -> dict[str, str]:
        session = self._session or self._zygote
        if self._llvm_version is None and session is not None:
            self._llvm_version = session.version()
        return {"llvm": self._llvm_version or ""}

    def _fork_into(self, new: OptGymEnv) -> None:
        if self._session is None:
            raise RuntimeError("the LLVM worker is gone (the episode crashed); call reset()")
        new._session = self._session.fork()
        new._zygote = None  # a fork that resets starts a first worker of its own

    # ---- gymnasium API --------------------------------------------------------------------
    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return f"{self.commandline()}\n# {self._reward.cost}: {self._cost_prev}"

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    # ---- CompilerGym-style extras ------------------------------------------------------------
    def commandline(
        self, input: str = "input.bc", output: str = "output.bc", opt: str = "opt-19"
    ) -> str:
        """The episode so far (its reference, then its actions) as an ``opt`` command that
        LLVM 19 accepts: ``opt-19 -passes='function(sroa),invalidate<all>,...' input.bc -o
        output.bc``, shell-quoted. Run on the benchmark's file, it gives the module the env
        holds (the same instruction count in 50 of 50 sampled random csmith-v0 and
        llvm-stress-v0 episodes, and 7 of 8 on debian-v0): each step is one adaptor of its
        own and ``invalidate<all>,invalidate<globals-aa>`` drops every analysis between
        steps, as the env runs each step afresh (``actions.opt_pipeline``). One ``opt``
        process still keeps some state from step to step that the env does not: on lua5.4
        an episode whose ``-hotcoldsplit`` is followed, 21 steps later, by ``-inline`` ends
        128 instructions apart; splitting the command into two ``opt`` runs after
        ``-hotcoldsplit`` gives the env's count.
        Flags LLVM 19 renamed or removed run the substitutes the env runs
        (``actions.SUBSTITUTIONS``); ``-barrier`` and ``-loop-reroll`` are no-ops and left
        out. ``input``, ``output`` and ``opt`` (the ``opt`` binary) name what the command
        uses.

        CompilerGym's legacy form (``opt -sroa -gvn input.bc -o output.bc``, which LLVM 19's
        ``opt`` refuses) is what its state CSV holds: ``compilergym_csv.commandline``.
        """
        steps = [REFERENCES[self._reference]] if self._reference is not None else []
        steps += [pass_actions.PIPELINES[a] for a in pass_actions.flatten(self._actions)]
        pipeline = pass_actions.opt_pipeline(steps)
        return " ".join(
            [shlex.quote(opt), "-passes=" + shlex.quote(pipeline), shlex.quote(input), "-o",
             shlex.quote(output)]
        )  # fmt: skip

    def write_bitcode(self, path: str | os.PathLike[str]) -> Path:
        """Write the module as it is now (after the episode's steps) to ``path`` as LLVM
        bitcode, as CompilerGym's ``env.write_bitcode``; the path written. The file is
        written anew and renamed into place (a link at ``path`` is replaced, never followed).

        LLVM's C API writes no use-list order: a module read back from this file may list
        the users of a value in another order than the env's, which a few passes notice (a
        count can differ by a few instructions after many steps). For an exact replay run
        :meth:`commandline` on the benchmark's own file. ``RuntimeError`` before ``reset()``,
        after ``close()`` or when the worker is gone (a crashed episode).
        """
        from optgym.datasets.files import write_file

        self._need_open("write_bitcode()")
        self._need_reset("write_bitcode()")
        if self._session is None:
            raise RuntimeError("the LLVM worker is gone (the episode crashed); call reset()")
        data = self._session.observe(("Bitcode",))["Bitcode"]
        target = Path(path).expanduser()
        write_file(target, data)
        return target

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
