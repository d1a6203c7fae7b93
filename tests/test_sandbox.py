"""The sandbox for submitted code (optgym.sandbox): a hostile agent in a leaderboard episode
gets none of the key, the secrets, the board, the network, a process that outlives its
episode, memory past its limit or an env of its own; its episode ends with a clear error,
and an honest agent scores in the sandbox exactly what it scores outside."""

from __future__ import annotations

import os
import socket
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import pytest

from optgym import sandbox
from optgym.bench import run_bench, run_episode
from optgym.budget import Budget
from optgym.datasets.cache import cache_dir
from optgym.leaderboard import board_dir
from optgym.tasks import get_task


@pytest.fixture(autouse=True, scope="module")
def _sandbox_runs_here() -> None:
    """The sandbox is a feature, not an option: where it cannot run (no bubblewrap, user
    namespaces or cgroups: run the set-up as root) these tests fail, saying why."""
    why = sandbox.unavailable()
    assert why is None, f"the sandbox cannot run here: {why}"

TASK = "path-planning"
MAP = "benchmark://nav2d-v0/open"
SLEEP = "987.654"  # what the escaping child sleeps: found in /proc if it survived

ATTACKER = textwrap.dedent(f'''
    """A hostile plug-in: each setting tries one attack, then solves honestly with CEM.
    Every attack that works raises an error that says ATTACK."""

    import os
    import socket
    import subprocess
    import sys

    from optgym.agents import make_agent


    class Attacker:
        problems = ("path-planning",)
        stochastic = False

        def __init__(self, attack: str = "none", target: str = "", port: int = 0):
            self.attack, self.target, self.port = attack, target, port

        def solve(self, env, benchmark, budget, seed=None):
            if self.attack == "read":
                for path in self.target.split(";"):
                    try:
                        with open(path, "rb") as f:
                            f.read(1)
                    except OSError:
                        continue
                    raise RuntimeError(f"ATTACK read {{path}}")
            elif self.attack == "write":
                for path in self.target.split(";"):
                    try:
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        with open(path, "w") as f:
                            f.write("planted")
                    except OSError:
                        pass
            elif self.attack == "network":
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                except OSError:
                    pass
                else:
                    raise RuntimeError("ATTACK reached the host's loopback server")
            elif self.attack == "setsid":
                subprocess.Popen([sys.executable, "-c", "import time; time.sleep({SLEEP})"],
                                 start_new_session=True)
            elif self.attack == "memory":
                block = bytearray(3 * 2**30)
                block[:: 4096] = b"x" * len(block[:: 4096])
            elif self.attack == "make":
                try:
                    import numpy as np
                    import optgym

                    own = optgym.make("optgym/PathPlanning2D-v0")
                    own.reset(options={{"benchmark": benchmark}})
                    own.unwrapped.evaluate_batch(np.zeros((40000, own.action_space.shape[0])))
                except Exception:
                    pass
                else:
                    raise RuntimeError("ATTACK evaluated 40000 plans off the meter")
            elif self.attack == "spin":
                while True:
                    pass
            elif self.attack == "processes":  # the harness, the runner: not even in /proc
                for pid in filter(str.isdigit, os.listdir("/proc")):
                    try:
                        with open(f"/proc/{{pid}}/cmdline", "rb") as f:
                            seen = f.read()
                    except OSError:
                        continue
                    if b"multiprocessing" in seen or b"pytest\\x00" in seen:
                        raise RuntimeError("ATTACK saw a process outside the sandbox")
            elif self.attack == "print":
                print("\\x1b[2J\\x1b]0;owned\\x07visible\\u202etext", flush=True)
            return make_agent("cem").solve(env, benchmark, budget, seed)
''')


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "attacks.py").write_text(ATTACKER)
    return folder


def _run(code: Path, tmp_path: Path, *settings: str, **kwargs) -> list[dict]:
    agents = [f"attacks:Attacker:{s}" for s in settings]
    results = tmp_path / f"results-{len(list(tmp_path.iterdir()))}.jsonl"
    rows = run_bench(TASK, agents, [MAP], [0], Budget(calls=2000), results, progress=False,
                     sandbox=True, code_dir=code, **kwargs)  # fmt: skip
    return sorted(rows, key=lambda r: agents.index(r["agent"]))


def _survivors() -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            if SLEEP.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                found.append(int(name))
        except (OSError, ValueError):
            continue
    return found


def test_an_honest_agent_scores_the_same_in_the_sandbox(code: Path, tmp_path: Path):
    inside = _run(code, tmp_path, "attack=none")[0]
    outside = run_episode(TASK, "cem", MAP, 0, Budget(calls=2000))
    assert inside["error"] is None, inside["error"]
    assert inside["state"]["actions"] == outside["state"]["actions"]
    assert inside["score"] == outside["score"] and inside["budget_used"]["calls"] == 2000


def test_the_sandbox_computes_with_this_process_blas_kernels() -> None:
    """OpenBLAS picks its kernels by the CPU and the environment: in the sandbox's cleared
    environment it would detect anew (SkylakeX where this host pins Haswell), and a matrix
    product would round otherwise, so that a deterministic agent (MPPI's weighted mean)
    gives other actions there than here."""
    import subprocess
    import sys

    import numpy as np

    code = ("import numpy as np; r = np.random.default_rng(0); w = r.random(100); "
            "p = r.random((100, 200)); print((w @ p).tobytes().hex())")  # fmt: skip
    r = np.random.default_rng(0)
    w, p = r.random(100), r.random((100, 200))
    inside = subprocess.run(sandbox.bwrap_command([sys.executable, "-c", code]),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert inside.returncode == 0, inside.stderr[-500:]
    assert inside.stdout.strip() == (w @ p).tobytes().hex()


def test_cmaes_gives_the_same_actions_in_and_out_of_the_sandbox() -> None:
    """CMA-ES's eigendecompositions round otherwise on two BLAS threads than on the sandbox's
    one: the runner's episodes run on one, so that a rerun in the sandbox gives the line back
    (before, a genuine CMA-ES entry was refused)."""
    from optgym.bench import sandboxed_episode

    agent, uri = "cmaes:popsize=10,sigma0=1.0", "generator://nav2d-spiral-v0/1"
    inside = sandboxed_episode("path-planning-hard", agent, uri, 0, Budget(calls=300))
    outside = run_episode("path-planning-hard", agent, uri, 0, Budget(calls=300))
    assert inside["error"] is None and outside["error"] is None, inside["error"]
    assert inside["state"]["actions"] == outside["state"]["actions"]


def test_a_hostile_agent_gets_none_of_what_it_tries(code: Path, tmp_path: Path):
    """S2, W1, S5: the key, the round secrets, a mode-600 file and /etc/shadow cannot be read;
    the board and the cache cannot be written; the host's loopback cannot be reached; no
    unmetered env can be made; no process outside is seen; a child in a new session dies
    with its episode."""
    secret = tmp_path / "secret.txt"
    secret.write_text("organizer only")
    secret.chmod(0o600)
    key = cache_dir() / "integrity.key"
    rounds = cache_dir() / "rounds"
    rounds.mkdir(exist_ok=True)
    reads = ";".join(map(str, [key, rounds / "x.secret.json", secret, "/etc/shadow"]))
    planted = [board_dir() / "entries" / "planted", cache_dir() / "planted"]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    try:
        rows = _run(
            code, tmp_path, f"attack=read,target={reads}",
            f"attack=write,target={';'.join(map(str, planted))}",
            f"attack=network,port={server.getsockname()[1]}", "attack=make", "attack=setsid",
            "attack=processes",
        )  # fmt: skip
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected
    finally:
        server.close()
    for row in rows:
        assert row["error"] is None, row["error"]  # every attack failed, then CEM solved
        assert row["score"] > 0.5
    assert not any(p.exists() for p in planted)
    time.sleep(0.5)
    assert _survivors() == [], "a child in a new session outlived its sandboxed episode"


def test_memory_cpu_and_crashes_end_only_their_episode(
    code: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Past its memory limit or the task's CPU-time cap, a sandboxed episode ends with an
    error line saying which; the episode beside it is scored."""
    import dataclasses

    from optgym import tasks

    task = dataclasses.replace(get_task(TASK), cpu_seconds=12.0)
    monkeypatch.setattr(tasks, "get_task", lambda name: task)
    rows = _run(code, tmp_path, "attack=memory", "attack=spin", "attack=none",
                memory_mb=1500, workers=1)  # fmt: skip
    memory, spin, honest = rows
    assert "reached the per-call memory limit of 1500 MiB" in memory["error"]
    assert "over the per-call CPU limit of 12 s" in spin["error"]
    assert honest["error"] is None and honest["score"] > 0.5


def test_the_agent_is_imported_only_in_the_sandbox(code: Path, tmp_path: Path):
    """S1: describing and running a plug-in never imports it here."""
    import sys

    (code / "loud.py").write_text(
        "import pathlib\npathlib.Path('/tmp/optgym-imported').write_text('x')\n"
        "from attacks import Attacker\n"
    )
    marker = Path("/tmp/optgym-imported")
    marker.unlink(missing_ok=True)
    assert sandbox.describe_agent("loud:Attacker", code)["stochastic"] is False
    rows = run_bench(TASK, ["loud:Attacker"], [MAP], [0], Budget(calls=50),
                     tmp_path / "r.jsonl", progress=False, sandbox=True, code_dir=code)
    assert rows[0]["error"] is None
    assert "loud" not in sys.modules and not marker.exists()
    with pytest.raises(ValueError, match="does not resolve in the sandbox"):
        sandbox.describe_agent("missing:Agent", code)


def test_agent_output_reaches_the_terminal_filtered(
    code: Path, capfd: pytest.CaptureFixture[str]
):
    """The agent's output loses its escape sequences and bidirectional overrides."""
    from optgym.bench import sandboxed_episode

    row = sandboxed_episode(TASK, "attacks:Attacker:attack=print", MAP, 0, Budget(calls=50),
                            code_dir=str(code))  # fmt: skip
    assert row["error"] is None
    err = capfd.readouterr().err
    assert "visibletext" in err.replace("[2J]0;owned", "")
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err


def test_the_sandbox_refuses_clearly_where_it_cannot_run(monkeypatch: pytest.MonkeyPatch):
    from optgym import cgroups

    monkeypatch.setattr(cgroups, "unavailable", lambda: "no cgroups in this test")
    with pytest.raises(RuntimeError, match="runs only in the sandbox, and it cannot run here"):
        sandbox.require()


def test_the_proxy_keeps_the_agent_on_its_episode(code: Path, tmp_path: Path):
    """Through the proxy, an agent can neither write a file from the harness nor move its
    env to another benchmark (a set ``benchmark`` would be read by the next reset)."""
    from optgym.env_proxy import EnvServer
    from optgym.wrappers import BudgetWrapper

    env = gym.make("optgym/PathPlanning2D-v0")
    base = env.unwrapped
    base.reset(options={"benchmark": MAP})
    server = EnvServer(BudgetWrapper(base, Budget(calls=10)), MAP)
    unwrapped = server.serve({"op": "get", "ref": 0, "name": "unwrapped"})[1]
    ref = server.ref(unwrapped).id
    reply = server.serve({"op": "set", "ref": ref, "name": "benchmark",
                          "value": "benchmark://nav2d-v0/maze"})  # fmt: skip
    assert reply[:2] == ("raised", "ValueError") and "stays on its episode's" in reply[2]
    assert server.serve({"op": "set", "ref": ref, "name": "benchmark", "value": MAP})[0] == "ok"
    reply = server.serve({"op": "call", "ref": ref, "name": "reset",
                          "kwargs": {"options": {"benchmark": "benchmark://nav2d-v0/maze"}}})
    assert reply[:2] == ("raised", "ValueError")
    for name in ("write_bitcode", "attach_meter", "validate", "close", "_spend"):
        reply = server.serve({"op": "get", "ref": ref, "name": name})
        assert reply[:2] == ("raised", "AttributeError"), name
    env.close()


def test_the_proxy_computes_a_named_observation_in_the_harness():
    """``env.observation`` crosses the wall as a reference: ``observation[name]`` is an item
    request the harness computes (it was sent by value, and then failed on a private name)."""
    from optgym.env_proxy import EnvServer
    from optgym.wrappers import BudgetWrapper

    env = gym.make("optgym/PathPlanning2D-v0")
    base = env.unwrapped
    base.reset(options={"benchmark": MAP})
    server = EnvServer(BudgetWrapper(base, Budget(calls=10)), MAP)
    unwrapped = server.serve({"op": "get", "ref": 0, "name": "unwrapped"})[1]
    view = server.serve({"op": "get", "ref": server.ref(unwrapped).id, "name": "observation"})
    assert view[0] == "ok" and server.ref(view[1]) is not None  # sent as a reference
    name = next(iter(base.observation))
    reply = server.serve({"op": "item", "ref": server.ref(view[1]).id, "key": name})
    import numpy as np

    assert reply[0] == "ok" and np.array_equal(reply[1], base.observation[name])
    env.close()
