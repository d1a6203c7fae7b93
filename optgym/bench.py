"""The runner: agents x benchmarks x seeds as independent episodes, one JSON line each.

An episode makes (or reuses) the task's env, wraps it in the budget wrapper (the env charges
the runner's meter for every unit of work, on forks too, and refuses work past the budget),
lets the agent solve the benchmark, then replays the agent's state in the env and scores the
replay, so every line it writes is what the env reproduces and what the runner counted, not
what the agent claims. Lines are appended and flushed as soon as an episode finishes; a rerun
skips the episodes already in the file and runs again those whose line holds an error (unless
``retry_errors=False``), so a killed run loses at most the episodes that were in flight.

>>> from pathlib import Path
>>> from optgym.budget import Budget
>>> rows = run_bench("pass-ordering", ["oz", "random"], ["generator://csmith-v0/5"], [0],
...                  Budget(calls=30), Path("results/demo.jsonl"))
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from optgym.budget import Budget, BudgetExceeded
from optgym.executors import DEFAULT_TIMEOUT, Limits, check_executor, make_executor
from optgym.problem import Task, check_scores
from optgym.result_line import (
    FINGERPRINT_FIELD,
    MAX_SEED,
    MAX_TEXT,
    ROW_FIELDS,
    TAG_FIELD,
    line_tag,
    schema_problem,
)
from optgym.state import EpisodeState, StateWriter, json_lines
from optgym.tasks import problem_of_task, task_datasets

# One env per (env id, kwargs) per process: starting an env costs a worker process.
_ENVS: dict[str, Any] = {}


# --- episodes --------------------------------------------------------------------------------


def _env_key(task: Any) -> str:
    from optgym.datasets.cache import cache_dir

    # an env keeps paths in the cache it was made with (measurements, incumbents)
    return json.dumps([task.env_id, task.env_kwargs, str(cache_dir())], sort_keys=True)


def task_env(task: Any) -> Any:
    """This process's env for ``task``, made on first use and kept for later episodes."""
    import optgym

    key = _env_key(task)
    if key not in _ENVS:
        # no training step limit: the budget ends a search
        _ENVS[key] = optgym.make(task.env_id, step_limit=False, **task.env_kwargs)
    return _ENVS[key]


def _drop_env(task: Any) -> None:
    """Close and forget this process's env for ``task`` after a failure, to start clean."""
    env = _ENVS.pop(_env_key(task), None)
    if env is not None:
        try:
            env.close()
        except Exception:  # noqa: BLE001  a crashed env may fail to close; it is gone anyway
            pass


def _row(task: str, agent: str, benchmark: str, seed: int, budget: Budget) -> dict[str, Any]:
    """An empty result line for the episode (task, agent, benchmark, seed)."""
    return {
        "task": task, "agent": agent, "benchmark": benchmark, "seed": seed,
        "score": None, "reward": None, "budget": str(budget), "budget_used": {},
        "walltime": None, "state": None, "error": None,
    }  # fmt: skip


def run_episode(task_name: str, agent_spec: str, benchmark: str, seed: int, budget: Budget) -> dict:
    """Run one episode and return its result line as a dict; never raises.

    The agent steps the task's env wrapped in a :class:`~optgym.wrappers.BudgetWrapper`:
    ``budget_used`` is what its meter counted, and an agent that asks for work past the
    budget is stopped (``error`` says "over budget"). The agent's exceptions and backend
    crashes become ``error``; ``score`` is then None. ``walltime`` is the seconds the agent
    spent in ``solve``.
    """

    def prepare(task: Any) -> Solver:
        from optgym.agents import resolve_agent

        spec = resolve_agent(agent_spec)
        spec.check_task(task)
        agent = spec.make()
        return lambda env: agent.solve(env, benchmark, budget, seed).state

    return play_episode(task_name, agent_spec, benchmark, seed, budget, prepare)


def sandboxed_episode(
    task_name: str, agent_spec: str, benchmark: str, seed: int, budget: Any,
    code_dir: str | None = None,
) -> dict:  # fmt: skip
    """One episode whose agent runs in a sandbox (:class:`optgym.sandbox.SandboxedAgent`)
    and sees the env only through a metered proxy to this process's env; the result line,
    as :func:`run_episode` gives it (never raises). Run it as an executor call that
    requires a cgroup: the sandbox is then inside the call's limits."""
    from optgym.sandbox import SandboxedAgent

    agent = SandboxedAgent(agent_spec, benchmark, seed, budget, code_dir)
    try:
        return play_episode(task_name, agent_spec, benchmark, seed, budget, agent.prepare,
                            agent.close)  # fmt: skip
    finally:
        agent.close()


#: What an episode's agent does once the budget's clock runs: solve on the wrapped env and
#: return its state.
Solver = Callable[[Any], EpisodeState]


def play_episode(
    task_name: str, agent_spec: str, benchmark: str, seed: int, budget: Budget,
    prepare: Callable[[Any], Solver], cleanup: Callable[[], None] | None = None,
) -> dict:  # fmt: skip
    """The result line of one episode whose agent ``prepare(task)`` readies (outside the
    budget's clock); the runner's part of :func:`run_episode`, shared with the sandboxed
    episodes of the leaderboard (:func:`sandboxed_episode`). Never raises;
    ``cleanup`` runs once the agent is done."""
    from optgym.tasks import get_task
    from optgym.threads import one_blas_thread
    from optgym.wrappers import BudgetWrapper

    row = _row(task_name, agent_spec, benchmark, seed, budget)
    task = None
    try:
        task = get_task(task_name)
        solve = prepare(task)
        env = task_env(task)
        base = env.unwrapped
        # The clock starts with the env ready at the benchmark: a backend started (each
        # episode has its own process on the local and Ray executors) and the benchmark
        # loaded once, outside the budget, for every agent alike.
        base.reset(seed=seed, options={"benchmark": benchmark})
        base.warm_up()  # the env's own references of the benchmark, outside the budget too
        # The budget wrapper sits right on the env (not on gymnasium's order checks), so an
        # agent may reset env.unwrapped and step the wrapper.
        wrapped = BudgetWrapper(base, budget)
        start = time.monotonic()
        try:
            with one_blas_thread():  # as in the sandbox: the same actions in and out of it
                state = solve(wrapped)
        except BudgetExceeded as e:
            raise BudgetExceeded(f"over budget, the agent was stopped: {e}") from None
        finally:
            row["walltime"] = round(time.monotonic() - start, 4)
            row["budget_used"] = wrapped.meter.used()
            wrapped.detach()
            if cleanup is not None:
                cleanup()
        late = budget.seconds_late(row["budget_used"]["seconds"])
        if late is not None:  # work started in time ran long: validate would refuse the line
            raise BudgetExceeded(
                f"over budget: the episode took {late:.1f} s more than its {budget.seconds:g} "
                "seconds and their grace"
            )
        if not isinstance(state, EpisodeState):
            raise ValueError(f"the agent returned a {type(state).__name__}, not a state")
        row["state"] = state.to_dict()
        row["reward"] = state.reward
        if state.benchmark != benchmark:
            raise ValueError(f"agent returned a state for {state.benchmark}, not {benchmark}")
        if state.config != base.config:
            raise ValueError("agent returned a state made with another env config")
        replayed = base.apply(state)
        if not base.reward_tolerance.matches(state.reward, replayed):
            raise ValueError(
                f"replay does not reproduce the agent's reward: claimed {state.reward!r}, "
                f"replay gave {replayed!r} (tolerance: {base.reward_tolerance})"
            )
        # a measured reward is written as measured again, apart from the agent's search
        state = base.restate(state)
        row["state"] = state.to_dict()
        row["reward"] = state.reward
        score = float(task.score(env))
        if not math.isfinite(score):
            raise ValueError(f"score is not finite: {score!r}")
        row["score"] = score
    except Exception as e:  # noqa: BLE001  any failure is this episode's, never the run's
        row["score"] = None
        row["error"] = error_text(e)
        if task is not None and not isinstance(e, (BudgetExceeded, ValueError)):
            _drop_env(task)  # a crash may leave the env broken: the next episode starts clean
    return row


def error_text(error: BaseException) -> str:
    """An episode's error as its line holds it: the type and message, without what a
    terminal would act on (escape sequences, bidirectional overrides), at most
    :data:`~optgym.result_line.MAX_TEXT` characters."""
    from optgym.text import plain

    return plain(f"{type(error).__name__}: {error}")[:MAX_TEXT]


# --- benchmarks ------------------------------------------------------------------------------


def _resolve_dataset(registry: Any, name: str) -> str:
    """A dataset URI from a URI or a bare ``name-vN``; ValueError listing the known ones."""
    known = [d.uri for d in registry]
    if "://" not in name:
        matches = [d.uri for d in registry if d.name == name]
        if not matches:
            raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(known)}")
        return matches[0]
    try:
        registry.dataset(name)
    except ValueError:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(known)}") from None
    return name


#: The most benchmarks ``benchmark_uris`` (``--episodes``) takes from one dataset.
MAX_EPISODES = 1_000_000


def benchmark_uris(
    task: str, datasets: list[str] | None = None, split: str | None = "test", episodes: int = 10
) -> list[str]:
    """The first ``episodes`` benchmark URIs of each dataset's ``split``.

    ``datasets`` are dataset URIs (``generator://csmith-v0``) or names (``csmith-v0``); a
    benchmark URI (``generator://csmith-v0/5``) stands for itself. Default: the task's
    datasets, each with its own split when ``split`` is None. A dataset with fewer benchmarks
    than ``episodes`` gives what it has. ``ValueError`` names a bad task, dataset or split, or
    a dataset that must be built first.
    """
    from optgym.datasets.dataset import SPLITS
    from optgym.datasets.uri import BenchmarkUri
    from optgym.tasks import get_task

    spec = get_task(task)
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if not 1 <= episodes <= MAX_EPISODES:
        raise ValueError(f"episodes must be an integer in [1, {MAX_EPISODES}], got {episodes!r}")
    registry = task_datasets(spec)
    if datasets:
        pairs = [(name, split or "test") for name in datasets]
    else:
        pairs = [(uri, split or own) for uri, own in spec.datasets]
    uris: list[str] = []
    for name, which in pairs:
        if "://" in name and BenchmarkUri.parse(name).path:
            registry.benchmark(name)  # ValueError for unknown datasets or bad names
            uris.append(name)
            continue
        dataset = registry.dataset(_resolve_dataset(registry, name))
        taken = dataset.take(which, episodes)
        if not dataset.infinite:
            for uri in taken:  # stored datasets: check they are built before the run starts
                try:
                    dataset.benchmark(uri)
                except FileNotFoundError as e:
                    raise ValueError(str(e)) from None
        uris.extend(taken)
    return list(dict.fromkeys(uris))


# --- the results file ------------------------------------------------------------------------


def _row_key(row: dict) -> tuple[str, str, str, int]:
    return (row["task"], row["agent"], row["benchmark"], row["seed"])


def latest_rows(rows: Iterable[dict]) -> list[dict]:
    """One line per episode: the last one written (a rerun of an errored episode appends a
    new line after the old), in the order episodes first appear."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        key = _row_key(row)
        latest.pop(key, None)  # keep the order of the newest line
        latest[key] = row
    return list(latest.values())


def repair_results(path: Path) -> None:
    """Make ``path`` end at a complete line: a last line cut mid-write is removed."""
    if not path.exists():
        return
    with path.open("rb+") as f:
        f.seek(0, 2)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # Read back from the end to the last newline: the tail is the cut line.
        block, pos, tail = 65536, size, b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
            cut = tail.rfind(b"\n")
            if cut >= 0:
                keep = pos + cut + 1
                break
        else:
            keep = 0
        fragment = tail[tail.rfind(b"\n") + 1 :]
        try:
            row = json.loads(fragment)
            complete = isinstance(row, dict) and all(k in row for k in ROW_FIELDS)
        except ValueError:
            complete = False
        if complete:  # killed between the line and its newline: keep the line
            f.seek(size)
            f.write(b"\n")
            return
        warnings.warn(
            f"{path}: removed a result line cut mid-write ({len(fragment)} bytes); "
            "its episode will run again",
            stacklevel=3,
        )
        f.truncate(keep)


def read_results(path: Path, warn: bool = True) -> list[dict]:
    """The well-formed result lines of ``path``; malformed ones are skipped with a warning."""
    rows: list[dict] = []
    if not path.exists():
        return rows
    for lineno, row, error in json_lines(path):
        try:
            if error:
                raise ValueError(error)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            why = schema_problem(row)
            if why:
                raise ValueError(why)
        except (ValueError, TypeError) as e:
            if warn:
                warnings.warn(f"{path}:{lineno}: malformed result line ignored ({e})", stacklevel=2)
            continue
        rows.append(row)
    return rows


# --- executors -------------------------------------------------------------------------------

Job = tuple[str, str, str, int, Budget]  # run_episode's arguments


def _failed_row(job: Job, error: BaseException) -> dict:
    """The line of an episode whose process ended without one (crash, timeout, memory)."""
    row = _row(*job)
    row["error"] = error_text(error)
    return row


def _take_row(job: Job, future: Any) -> dict:
    """The line an episode's call answered, taken only as a well-formed line of this very
    episode, run with this budget (the call ran the agent); else an error line."""
    try:
        row = future.result()
    except Exception as e:  # noqa: BLE001  CallFailed, or the call could not be sent
        return _failed_row(job, e)
    why = schema_problem(row) or (
        None if _row_key(row) == job[:4] and row["budget"] == str(job[4])
        and TAG_FIELD not in row and FINGERPRINT_FIELD not in row
        else "it is the line of another episode, or carries a tag or a fingerprint"
    )  # fmt: skip
    if why:
        return _failed_row(job, ValueError(f"the episode's process sent back a bad line: {why}"))
    return row


def check_row(row: dict) -> str | None:
    """Why the finished line ``row`` does not replay as it claims, or None: the checks of
    ``optgym validate`` (fields, budget, replayed reward, work, versions, extras, score), in
    this process, which runs no agent. Its benchmark, the one the runner ran, may be a
    ``file://`` one."""
    from optgym.validate import replay_problem

    return replay_problem(row, allowed_files=(row["benchmark"],))


def episode_rows(
    jobs: list[Job], executor: Any, episode: Callable[..., dict] = run_episode,
    check: Callable[[dict], str | None] | None = check_row,
) -> Iterator[dict]:  # fmt: skip
    """The line of every job, run by ``episode`` (:func:`run_episode`, or the sandboxed
    one) on ``executor`` (an :mod:`optgym.executors` executor), as episodes finish. An
    episode whose process dies, runs past its timeout or memory limit, or whose Ray worker
    died past its retries gets a line with ``error``; each job gives exactly one line.

    The runner tags only what it checked: a finished line is first replayed by ``check``
    (:func:`check_row`) in a call of its own, a process that runs no agent, and one that
    does not replay (an answer an agent forged on its episode's pipe, say) becomes an error
    line. ``check=None`` where the episode's own process is trusted (a sandboxed agent's
    harness replays its state outside the sandbox)."""
    from concurrent.futures import FIRST_COMPLETED
    from concurrent.futures import wait as wait_futures

    todo = deque(jobs)
    pending: dict[Any, tuple[Job, dict | None]] = {}
    while todo or pending:
        while todo and len(pending) < executor.capacity:
            job = todo.popleft()
            pending[executor.submit(episode, *job)] = (job, None)
        done, _ = wait_futures(pending, return_when=FIRST_COMPLETED)
        for future in done:
            job, row = pending.pop(future)
            if row is None:  # an episode finished
                row = _take_row(job, future)
                if row["error"] is None and check is not None:
                    pending[executor.submit(check, row)] = (job, row)
                    continue
                yield row
                continue
            try:  # its line's check finished
                why = future.result()
            except Exception as e:  # noqa: BLE001  the check's own process failed
                why = f"its replay could not run ({error_text(e)})"
            if why is not None and not isinstance(why, str):
                why = "its check sent back something that is not a verdict"
            if why is None:
                yield row
            else:
                refused = ValueError(f"the runner's replay refused the episode's line: {why}")
                yield {**_failed_row(job, refused), "walltime": row["walltime"]}


# --- the run ---------------------------------------------------------------------------------


class Tally:
    """The running aggregate of each agent's scores over the latest line of each episode,
    kept in O(1) per line (a results file of a million lines is summed once, not once per
    line). As :func:`optgym.problem.aggregate`, a geomean over a score <= 0 is a
    ``ValueError`` naming the line."""

    def __init__(self, agents: list[str], how: str = "geomean"):
        check_scores((), how)  # ValueError for an unknown aggregate
        self.agents, self.how = agents, how
        # agent -> [count, sum (of logs for the geomean)]
        self._sums: dict[str, list[float]] = {a: [0, 0.0] for a in agents}

    def _change(self, row: dict, sign: int) -> None:
        score, sums = row.get("score"), self._sums.get(row["agent"])
        if score is None or sums is None:
            return
        if sign > 0:  # the aggregate's own check: a geomean over a score <= 0 is an error
            where = f"the line of {row['agent']} on {row.get('benchmark')} (seed {row.get('seed')})"
            check_scores((score,), self.how, (where,))
        sums[0] += sign
        sums[1] += sign * (math.log(score) if self.how == "geomean" else score)

    def replace(self, old: dict | None, new: dict) -> None:
        """Count ``new`` in place of ``old`` (the episode's previous line, or None)."""
        if old is not None:
            self._change(old, -1)
        self._change(new, +1)

    def value(self, agent: str) -> float:
        """The agent's aggregate (:func:`optgym.problem.aggregate`); nan without scores."""
        count, total = self._sums[agent]
        if count == 0:
            return float("nan")
        mean = total / count
        return math.exp(mean) if self.how == "geomean" else mean

    def text(self) -> str:
        """``agent=value`` for each agent with scores: the progress bar's postfix."""
        return " ".join(
            f"{a}={self.value(a):.4f}" for a in self.agents if self._sums[a][0]
        )


class Collector:
    """What the runner does with each finished line: tag it, append it to the results file,
    keep the latest line of each episode and the running aggregates, and show them on the
    progress bar. A line for an episode already written in this run is dropped (a Ray task
    retried after its worker died comes back once more at most)."""

    def __init__(
        self, writer: StateWriter, old: list[dict], agents: list[str], how: str,
        bar: Any = None, on_row: Callable[[dict], None] | None = None,
        fingerprints: dict[str, dict[str, str]] | None = None,
    ):  # fmt: skip
        self.writer, self.bar, self.on_row = writer, bar, on_row
        self.fingerprints = fingerprints or {}
        self.latest: dict[tuple, dict] = {}
        self.tally = Tally(agents, how)
        self.written: set[tuple] = set()
        for row in old:
            self._keep(row)
        if bar is not None:
            bar.set_postfix_str(self.tally.text())

    def _keep(self, row: dict) -> None:
        key = _row_key(row)
        previous = self.latest.pop(key, None)  # the newest line goes last, as latest_rows
        self.latest[key] = row
        self.tally.replace(previous, row)

    def add(self, row: dict) -> bool:
        """Write ``row`` (False when its episode was written already in this run)."""
        key = _row_key(row)
        if key in self.written:
            return False
        self.written.add(key)
        if row["agent"] in self.fingerprints:  # what the result depends on: this run's
            row[FINGERPRINT_FIELD] = self.fingerprints[row["agent"]]
        row[TAG_FIELD] = line_tag(row)
        self.writer.write(row)
        self._keep(row)
        if self.on_row is not None:
            self.on_row(row)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self.tally.text())
        return True

    def rows(self) -> list[dict]:
        """The latest line of every episode, in the order episodes first appeared."""
        return list(self.latest.values())


def _check_inputs(
    task: str, agents: list[str], seeds: list[int], workers: int, executor: str,
    address: str | None = None, budget: Budget | None = None,
) -> tuple[Any, list[str]]:  # fmt: skip
    """The task and the agents' canonical specs; ``ValueError`` for a bad task, an unknown or
    incompatible agent (its problems, the env methods it requires, the budget units it
    needs), an agent that cannot be made (a model file missing or of another kind), a bad
    seed, worker count or executor, before anything runs."""
    from optgym.agents import AGENTS, check_fit, resolve_agent
    from optgym.tasks import env_entry, get_task

    spec = get_task(task)
    if not agents:
        raise ValueError(f"no agent given; allowed: {', '.join(AGENTS)}")
    env_class = env_entry(spec).env_class()
    canonical = []
    for name in agents:
        agent = resolve_agent(name)
        agent.check_task(spec)
        check_fit(agent.entry.agent_class(), budget, env_class)
        # what its settings name (a model file, a folder) must load here first, and a model
        # must be one of the task's env
        check_fit(agent.make(), budget, env_class)
        canonical.append(agent.canonical)
    _check_seeds(seeds, workers, executor, address)
    return spec, list(dict.fromkeys(canonical))


def _check_seeds(seeds: list[int], workers: int, executor: str, address: str | None) -> None:
    """``ValueError`` for a bad seed, worker count or executor."""
    if not seeds:
        raise ValueError("no seed given; e.g. seeds=[0]")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
            raise ValueError(f"bad seed {seed!r}; seeds are integers in [0, 2**63)")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer of at least 1, got {workers!r}")
    check_executor(executor, address)


def check_benchmarks(task: Task, uris: list[str]) -> None:
    """The task's problem's ``check_benchmark`` on each URI (e.g. a map with no path);
    ``ValueError`` names the first benchmark no episode can run on, and why."""
    check = problem_of_task(task).check_benchmark
    if check is None:
        return
    registry = task_datasets(task)
    for uri in dict.fromkeys(uris):
        try:
            check(registry.benchmark(uri))
        except ValueError as e:
            raise ValueError(f"{uri}: {e}") from None


def run_bench(
    task: str,
    agents: list[str],
    benchmarks: list[str],
    seeds: list[int],
    budget: Budget,
    results: Path,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    progress: bool = True,
    on_row: Callable[[dict], None] | None = None,
    retry_errors: bool = True,
    isolate: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    memory_mb: float | None = None,
    sandbox: bool = False,
    code_dir: str | Path | None = None,
    fresh: bool = False,
) -> list[dict]:
    """Run every (agent, benchmark, seed) not yet in ``results`` and append its line.

    ``agents`` are agent specs (``greedy``, ``cem:population=50``, ``mymod:MyAgent``); lines
    record their canonical form. Episodes run on an executor (:mod:`optgym.executors`):

    * ``"local"``: each episode in its own process group, ``workers`` at a time, ended after
      ``timeout`` seconds or past ``memory_mb`` MiB of resident memory (None: the problem's
      limit, four times its memory request; 0: no limit);
    * ``"ray"``: each episode a Ray task on the cluster at ``address`` (a new local cluster
      when None), asking for the problem's resources, run the same way in a child process;
    * ``"inline"``: in this process, one at a time (no limits).

    Lines are written to ``results`` as episodes finish, one per episode: the runner keeps
    the (task, agent, benchmark, seed) of every line it wrote, so an episode that comes back
    twice (a retried Ray task) is written once. Episodes whose last line holds an error run
    again unless ``retry_errors`` is false. ``on_row`` is called with each new line once it
    is written. ``isolate`` cuts every episode's process off the network
    (:mod:`optgym.isolation`). ``sandbox`` runs every agent in the sandbox
    (:func:`sandboxed_episode`: its own namespaces and cgroup, the env behind
    a metered proxy, the task's CPU-time cap, ``code_dir`` the submission's code) and never
    imports it here: ``agents`` are then taken as the canonical specs the sandbox gave
    (:func:`optgym.sandbox.describe_agent`). Returns the latest line of every episode of
    ``task`` in ``results``, old and new. ``ValueError`` names a bad task, agent (unknown,
    or not for this task), seed, worker count, executor or limit, or a benchmark no episode
    can run on (:func:`check_benchmarks`), before anything runs.

    A rerun resumes: the episodes already in ``results`` are not run again, and it says
    how many. It refuses, before anything runs, to mix into a file whose episodes were run
    with another budget, agent code, model or OptGym version (:mod:`optgym.fingerprint`);
    ``fresh`` moves the file aside (``<results>.previous``) and starts anew.
    """
    if sandbox:
        from optgym.sandbox import require
        from optgym.tasks import get_task

        require()
        spec = get_task(task)
        _check_seeds(seeds, workers, executor, address)
        agents = list(dict.fromkeys(agents))
    else:
        spec, agents = _check_inputs(task, agents, seeds, workers, executor, address, budget)
    if not benchmarks:
        raise ValueError("no benchmark given; see benchmark_uris()")
    check_benchmarks(spec, benchmarks)
    episode: Callable[..., dict] = run_episode
    if executor == "inline":
        if isolate or sandbox:
            raise ValueError("isolated and sandboxed episodes need their own process: use "
                             "the local or ray executor, not inline")  # fmt: skip
        if timeout not in (None, DEFAULT_TIMEOUT) or memory_mb:
            raise ValueError("the inline executor runs episodes in this process: it cannot "
                             "enforce a timeout or a memory limit; use the local executor")
        limits = Limits()
    else:
        from optgym.isolation import no_network

        if memory_mb is None:
            memory_mb = problem_of_task(spec).resources.limit_mb
        limits = Limits(timeout, memory_mb or None, no_network if isolate else None)
        if sandbox:
            from functools import partial

            from optgym.sandbox import MAX_PIDS

            code = str(Path(code_dir).resolve()) if code_dir is not None else None
            episode = partial(sandboxed_episode, code_dir=code)
            limits = Limits(timeout, memory_mb or None, limits.initializer,
                            cpu_seconds=spec.cpu_seconds, pids=MAX_PIDS,
                            require_cgroup=True)  # fmt: skip
    from optgym import fingerprint
    from optgym.agents import resolve_agent

    results = Path(results)
    if results.exists() and not results.is_file():
        raise ValueError(f"results {results} is not a regular file; name a JSON-lines file")
    # what changes an agent's result besides its line's key (sandboxed agents are not
    # imported here: their runs start afresh files of their own)
    if sandbox:
        prints = dict.fromkeys(agents, fingerprint.code_fingerprint(code_dir))
    else:
        prints = {a: fingerprint.agent_fingerprint(resolve_agent(a)) for a in agents}
    if fresh:
        moved = fingerprint.move_aside(results)
        if moved is not None and progress:
            print(f"moved the earlier results to {moved}", file=sys.stderr)
    results.parent.mkdir(parents=True, exist_ok=True)
    with StateWriter(results) as writer:
        repair_results(results)
        old = latest_rows(r for r in read_results(results) if r["task"] == task)
        fingerprint.check_mix(results, old, prints, budget)
        done = {_row_key(r) for r in old if not (retry_errors and r.get("error"))}
        episodes = [(a, b, s) for a in agents for b in benchmarks for s in seeds]
        jobs: list[Job] = [
            (task, a, b, s, budget) for a, b, s in episodes if (task, a, b, s) not in done
        ]
        kept = len(episodes) - len(jobs)
        if kept:  # said even without a progress bar: a skipped episode is never silent
            print(f"{results}: {kept} of {len(episodes)} episodes are there already (the same "
                  "budget, agents, code, models and OptGym version): not run again",
                  file=sys.stderr)  # fmt: skip
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=len(episodes), initial=len(episodes) - len(jobs), desc=task,
                unit="episode", file=sys.stderr, dynamic_ncols=True,
            )  # fmt: skip
        collector = Collector(writer, old, agents, spec.aggregate, bar, on_row, prints)
        try:
            if jobs:
                preload_task(spec.name)
                resources = problem_of_task(spec).resources
                with make_executor(executor, workers, limits, address, resources) as pool:
                    # a sandbox's harness replays its lines; an inline agent runs in this
                    # very process, where no check could stand apart from it
                    check = None if sandbox or executor == "inline" else check_row
                    for row in episode_rows(jobs, pool, episode, check):
                        collector.add(row)
        finally:
            if bar is not None:
                bar.close()
    return collector.rows()


def preload_task(task: str) -> None:
    """Have the local executor's fork server import the task's env module, so that its
    episodes do not each import it (:func:`optgym.executors.preload`)."""
    from optgym.executors import preload
    from optgym.tasks import env_entry, get_task

    preload([env_entry(get_task(task)).entry_point.partition(":")[0]])

