"""The Ray executor on a real Ray cluster that the tests start on this machine (`ray start
--head --node-ip-address 127.0.0.1`, two CPUs, token authentication): the runner, a
hidden-round rerun and training on several seeds give what the local executor gives, and a
Ray worker killed in the middle of an episode loses no line and duplicates none.

The Ray side runs through the ``optgym`` command in a process of its own, as a user runs it:
Ray reads its authentication settings once per process, and a test process stays free of a
Ray connection."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from optgym.budget import Budget
from optgym.cli import main
from optgym.result_line import untimed
from optgym.validate import PASSED, validate_results

TASK = "pass-ordering"
URIS = ["generator://csmith-v0/5", "generator://csmith-v0/13", "generator://llvm-stress-v0/3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    address: str
    env: dict[str, str]  # the environment of a process that talks to the cluster
    crash_log: Path  # where ray_plugins.Crasher notes each start

    def optgym(self, *args: str, timeout: float = 600, status: int = 0, **extra: str) -> str:
        """Run ``optgym ARGS --address ADDRESS`` against the cluster; its output (it must
        exit with ``status``)."""
        done = subprocess.run(
            [str(Path(sys.executable).with_name("optgym")), *args, "--address", self.address],
            env={**self.env, **extra}, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == status, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    def popen(self, *args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("optgym")), *args, "--address", self.address],
            env={**self.env, **extra}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A one-node Ray cluster with two CPUs, stopped (every process of it) at the end."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="optgym-ray-", dir="/tmp")  # short: Ray's socket paths
    ray_cli = Path(sys.executable).with_name("ray")
    command = [
        str(ray_cli), "start", "--head", "--block", f"--port={port}",
        "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={temp}", "--object-store-memory=150000000",
    ]  # fmt: skip
    # Token authentication, with a token of this cluster's own: the cluster and this driver
    # read it from the file the environment names (never the user's ~/.ray).
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    # the workers import the test agents of ray_plugins.py, and note crashes here
    auth["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    auth["OPTGYM_CRASH_LOG"] = str(Path(temp) / "crashes")
    log = open(Path(temp) / "start.log", "w+")  # noqa: SIM115  closed below
    head = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **auth},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in Path(log.name).read_text():
            assert head.poll() is None, "ray start failed:\n" + Path(log.name).read_text()[-2000:]
            assert time.monotonic() < deadline, "ray start took over 120 s"
            time.sleep(0.2)
        yield Cluster(f"127.0.0.1:{port}", {**os.environ, **auth}, Path(temp) / "crashes")
    finally:
        head.send_signal(signal.SIGTERM)  # --block: stops every process of the cluster
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _untimed(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(untimed(r), sort_keys=True) for r in rows)


def test_ray_and_local_executors_write_the_same_lines(cluster: Cluster, tmp_path: Path):
    common = [
        "bench", TASK, "--agent", "oz", "--agent", "random", "--seeds", "0-1",
        "--budget", "calls=20", "--no-progress", "--plot", str(tmp_path / "plot.png"),
        *(a for uri in URIS[:2] for a in ("--benchmark", uri)),
    ]  # fmt: skip
    on_ray, local = tmp_path / "ray.jsonl", tmp_path / "local.jsonl"
    cluster.optgym(*common, "--results", str(on_ray), "--executor", "ray")
    assert main([*common, "--results", str(local), "--workers", "2"]) == 0
    assert len(_lines(on_ray)) == 8 and all(r["error"] is None for r in _lines(on_ray))
    assert _untimed(_lines(on_ray)) == _untimed(_lines(local))
    assert all(v == PASSED for _, v, _ in validate_results(on_ray, Budget(calls=20)))
    # a rerun finds every episode done and writes nothing
    cluster.optgym(*common, "--results", str(on_ray), "--executor", "ray")
    assert len(_lines(on_ray)) == 8


def test_a_native_crash_on_ray_is_its_episode_s_line_and_is_not_retried(
    cluster: Cluster, tmp_path: Path
):
    results = tmp_path / "r.jsonl"
    cluster.optgym(
        "bench", TASK, "--agent", "ray_plugins:Crasher", "--agent", "oz", "--benchmark",
        URIS[0], "--results", str(results), "--executor", "ray", "--no-progress",
        "--plot", str(tmp_path / "plot.png"), status=1,  # an episode ended in an error
    )  # fmt: skip
    rows = {r["agent"]: r for r in _lines(results)}
    assert len(_lines(results)) == 2
    assert "killed by SIGABRT" in rows["ray_plugins:Crasher"]["error"]
    assert rows["oz"]["score"] == 1.0  # the crash ended only its own episode
    assert cluster.crash_log.read_text().splitlines() == [f"{URIS[0]} 0"]  # started once


def _task_processes() -> dict[int, str]:
    """Ray workers running one of our calls now: pid -> process title."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                title = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if title.startswith("ray::_ray_call"):
                found[int(name)] = title
    return found


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_ray_worker_loses_and_duplicates_nothing(cluster: Cluster, tmp_path: Path):
    results = tmp_path / "r.jsonl"
    # calls=600: episodes of a few seconds, so that the kill lands in the middle of one
    run = cluster.popen(
        "bench", TASK, "--agent", "random", "--seeds", "0,1", "--budget", "calls=600",
        "--results", str(results), "--executor", "ray", "--no-progress",
        "--plot", str(tmp_path / "plot.png"), *(a for uri in URIS for a in ("--benchmark", uri)),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        victim, backends, before = None, set(), ""
        while victim is None and run.poll() is None and time.monotonic() < deadline:
            written = results.read_text() if results.exists() else ""
            for pid in _task_processes() if written.count("\n") >= 1 else ():
                below = _descendants(pid)
                if any(_is_llvm_worker(p) for p in below):  # in the middle of an episode
                    victim, backends, before = pid, below, written
                    os.kill(pid, signal.SIGKILL)
                    break
            time.sleep(0.1)
        output = run.communicate(timeout=600)[0].decode(errors="replace")
    finally:
        run.kill()
    assert victim is not None, "no Ray worker was caught in the middle of an episode"
    assert run.returncode == 0, output[-3000:]
    assert results.read_text().startswith(before)  # lines finished before the kill are kept
    rows = _lines(results)
    keys = [(r["agent"], r["benchmark"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)) == 6  # every episode once: none lost, none twice
    assert all(r["error"] is None for r in rows), [r["error"] for r in rows]
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in backends) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in backends), "the episode's processes outlived their worker"


def _is_llvm_worker(pid: int) -> bool:
    try:
        return b"optgym-llvm-worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_hidden_round_rerun_on_ray(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from optgym.leaderboard.rounds import make_round, secret_path

    board = str(tmp_path / "board")
    monkeypatch.setenv("OPTGYM_BOARD", board)
    name = f"ray-{os.getpid()}-{time.time_ns()}"  # the secret sits in this user's cache
    make_round(TASK, name, size=1, seeds=3)  # oz is deterministic: it runs seed 1 only
    try:
        out = tmp_path / "closed"
        printed = cluster.optgym(
            "leaderboard", "rerun", "oz", "--task", TASK, "--round", name, "--out", str(out),
            "--executor", "ray", "--no-progress", OPTGYM_BOARD=board,
        )  # fmt: skip
    finally:
        secret_path(TASK, name).unlink(missing_ok=True)
    rows = _lines(out / "results.jsonl")
    assert len(rows) == 2 and all(r["error"] is None and r["score"] == 1.0 for r in rows)
    assert "VERIFIED" in printed and "2/2 lines replayed" in printed, printed


def test_training_seeds_on_ray_match_local(cluster: Cluster, tmp_path: Path):
    from optgym.train import train_seeds

    env = "optgym/PathPlanning2DClosedLoop-v0"
    printed = cluster.optgym(
        "train", env, "--algo", "ppo", "--steps", "256", "--seeds", "0,1", "--executor", "ray",
        "--out", str(tmp_path / "ray"), "--no-tensorboard", "--checkpoint-every", "0",
        "--no-progress",
    )  # fmt: skip
    assert "seed-0/model.zip" in printed and "seed-1/model.zip" in printed
    local = train_seeds(env, [1], tmp_path / "local", algo="ppo", steps=256, tensorboard=False,
                        checkpoint_every=0, progress=False)  # fmt: skip
    weights = [
        zipfile.ZipFile(path).read("policy.pth")
        for path in (tmp_path / "ray/seed-1/model.zip", local[1].model_path)
    ]
    assert weights[0] == weights[1]  # the same seed trains the same policy anywhere
    other = zipfile.ZipFile(tmp_path / "ray/seed-0/model.zip").read("policy.pth")
    assert other != weights[0]


_SHUTDOWN = """
import json, sys, time
from optgym.executors import RayExecutor
out = {}
for wait in (False, True):
    executor = RayExecutor(sys.argv[1])
    call = executor.submit(time.sleep, 3.0)
    time.sleep(0.5)  # the task is under way
    start = time.monotonic()
    executor.shutdown(wait=wait)
    out[str(wait)] = [time.monotonic() - start, call.done()]
    call.result(timeout=60)
print(json.dumps(out))
"""


def test_ray_shutdown_waits_only_when_asked(cluster: Cluster):
    done = subprocess.run(
        [sys.executable, "-c", _SHUTDOWN, cluster.address], env=cluster.env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    seconds, settled = result["False"]
    assert seconds < 1.0 and not settled  # returns at once, the call still running
    seconds, settled = result["True"]
    assert seconds > 1.0 and settled  # returns once the call has settled
