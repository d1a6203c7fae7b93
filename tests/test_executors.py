"""The executors (optgym.executors): each call in its own process group, with a timeout, a
memory limit and a group kill; one crashing call never breaks the others; nothing outlives
the process that submitted it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optgym import cgroups
from optgym.executors import (
    CallFailed,
    InlineExecutor,
    Limits,
    LocalExecutor,
    make_executor,
    run_in_child,
    stream,
)


def _abort() -> None:
    os.abort()  # a native crash: SIGABRT, no Python exception


def _fail() -> None:
    raise ValueError("the call's own error")


def _nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _backend_then_sleep(pid_file: str, seconds: float) -> None:
    """Start a 'backend' (a sleep) the way envs start theirs, note its pid, then hang."""
    backend = subprocess.Popen(["sleep", "300"])
    Path(pid_file).write_text(f"{os.getpid()} {backend.pid}")
    time.sleep(seconds)


def _hog(mb: int) -> int:
    block = bytearray(mb * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(30)
    return len(block)


def _environ(name: str) -> str | None:
    return os.environ.get(name)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


def _wait_gone(pids: list[int], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _pids(pid_file: Path, seconds: float = 30.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text().strip():
            return [int(p) for p in pid_file.read_text().split()]
        time.sleep(0.05)
    raise AssertionError("the call never started")


def test_results_exceptions_and_crashes_each_stay_with_their_call():
    with LocalExecutor(workers=2) as ex:
        futures = [ex.submit(pow, 2, 10), ex.submit(_abort), ex.submit(_fail), ex.submit(pow, 3, 3)]
        assert futures[0].result() == 1024
        with pytest.raises(CallFailed, match="killed by SIGABRT"):
            futures[1].result()
        with pytest.raises(ValueError, match="the call's own error"):
            futures[2].result()
        assert futures[3].result() == 27  # the crash broke nothing
        assert ex.submit(pow, 2, 3).result() == 8


def test_timeout_kills_the_whole_group(tmp_path: Path):
    pid_file = tmp_path / "pids"
    with LocalExecutor(limits=Limits(timeout=2)) as ex:
        future = ex.submit(_backend_then_sleep, str(pid_file), 60)
        leader, backend = _pids(pid_file)
        with pytest.raises(CallFailed, match=r"timed out after 2 s"):
            future.result(timeout=30)
    assert _wait_gone([leader, backend])


#: The memory limit's message: the kernel's kill under a cgroup, the sampled use without one.
MEMORY_LIMIT_200 = r"(used \d+ MiB, over|reached) the per-call memory limit of 200 MiB"


def test_memory_limit_ends_the_call():
    with LocalExecutor(limits=Limits(memory_mb=200)) as ex:
        future = ex.submit(_hog, 400)
        with pytest.raises(CallFailed, match=MEMORY_LIMIT_200):
            future.result(timeout=60)
        assert future.peak_mb >= 190


def test_backends_left_behind_are_killed_when_the_call_returns(tmp_path: Path):
    pid_file = tmp_path / "pids"
    assert run_in_child(_backend_then_sleep, str(pid_file), 0) is None
    assert _wait_gone(_pids(pid_file))


def test_calls_see_the_environment_and_folder_of_the_submitter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("OPTGYM_EXECUTOR_TEST", "set after the fork server started")
    assert run_in_child(_environ, "OPTGYM_EXECUTOR_TEST") == "set after the fork server started"
    monkeypatch.chdir(tmp_path)
    assert run_in_child(os.getcwd) == str(tmp_path)


SUBMITTER = """
import sys, time
from test_executors import _backend_then_sleep
from optgym.executors import LocalExecutor
if __name__ == "__main__":
    with LocalExecutor() as ex:
        ex.submit(_backend_then_sleep, sys.argv[1], 300)
        time.sleep(300)
"""


def test_calls_die_with_the_process_that_submitted_them(tmp_path: Path):
    """A killed runner (or a Ray worker that dies) leaves no episode or backend running."""
    script = tmp_path / "submitter.py"
    script.write_text(SUBMITTER)
    pid_file = tmp_path / "pids"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    submitter = subprocess.Popen([sys.executable, str(script), str(pid_file)], env=env)
    try:
        leader, backend = _pids(pid_file, 60)
        submitter.send_signal(signal.SIGKILL)
        submitter.wait(10)
        assert _wait_gone([leader, backend]), "the episode outlived its submitter"
    finally:
        submitter.kill()


def test_shutdown_on_an_error_cancels_queued_calls_and_kills_running_ones(tmp_path: Path):
    pid_file = tmp_path / "pids"
    with pytest.raises(KeyboardInterrupt):
        with LocalExecutor(workers=1) as ex:
            running = ex.submit(_backend_then_sleep, str(pid_file), 300)
            queued = ex.submit(pow, 2, 2)
            pids = _pids(pid_file)
            raise KeyboardInterrupt
    assert queued.cancelled()
    with pytest.raises(CallFailed, match="shut down"):
        running.result(timeout=10)
    assert _wait_gone(pids)


def test_stream_yields_as_calls_finish_within_capacity():
    with LocalExecutor(workers=2) as ex:
        order = [job for job, _ in stream(ex, _nap, [(1.5,), (0.1,), (0.2,)])]
    assert order[0] == (0.1,) and set(order) == {(1.5,), (0.1,), (0.2,)}
    with InlineExecutor() as ex:
        assert [f.result() for _, f in stream(ex, pow, [(2, 1), (2, 2)])] == [2, 4]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        LocalExecutor(workers=0)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        Limits(timeout=-1)
    with pytest.raises(ValueError, match="memory_mb must be a positive number of MiB"):
        Limits(memory_mb=0)
    with pytest.raises(ValueError, match="unknown executor 'dask'; allowed: local, inline, ray"):
        make_executor("dask")
    with pytest.raises(ValueError, match="inline executor .* cannot enforce a timeout"):
        make_executor("inline", limits=Limits(timeout=5))


def test_bad_ray_addresses_are_named_before_anything_runs(tmp_path: Path):
    from optgym.cli import main
    from optgym.executors import check_address, check_executor

    for address in ("nonsense", "host:99999", "host:", "a/b:1"):
        with pytest.raises(ValueError, match=f"bad Ray address '{address}': expected HOST:PORT"):
            check_address(address)
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RuntimeError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        check_address(f"127.0.0.1:{port}")  # at once, where Ray itself retries for minutes
    with pytest.raises(ValueError, match="an address is for the ray executor, not 'local'"):
        check_executor("local", "127.0.0.1:6379")
    results = tmp_path / "r.jsonl"
    argv = ["bench", "pass-ordering", "--agent", "oz", "--results", str(results),
            "--no-progress", "--executor", "ray", "--address", f"127.0.0.1:{port}"]  # fmt: skip
    assert main(argv) == 2
    assert not results.exists()


def _not_json() -> object:
    return object()


def _long_text(n: int) -> str:
    return "x" * n


def test_answers_come_back_as_json_never_unpickled(monkeypatch: pytest.MonkeyPatch):
    import pickle

    from optgym import executors

    assert executors._decode(b'{"ok": [1, 2.5, "a", null]}') == (True, [1, 2.5, "a", None])
    ok, error = executors._decode(b'{"raised": ["ValueError", "bad value"]}')
    assert not ok and type(error) is ValueError and str(error) == "bad value"
    for payload in (
        pickle.dumps(("ok", 1)),  # what a call's process could send to run code in ours
        b'{"ok": 1, "more": 2}', b'{"raised": ["ValueError"]}', b"[" * 100000, b"\xff\xfe",
    ):  # fmt: skip
        ok, error = executors._decode(payload)
        assert not ok and isinstance(error, CallFailed) and "not an answer" in str(error)
    ok, error = executors._decode(b'{"raised": ["SystemExit", "3"]}')  # not an Exception
    assert isinstance(error, CallFailed) and str(error) == "SystemExit: 3"
    with pytest.raises(CallFailed, match="the call's value is not JSON"):
        run_in_child(_not_json)
    monkeypatch.setattr(executors, "MAX_ANSWER_BYTES", 2**20)
    with pytest.raises(CallFailed, match="the call's answer is over 1 MiB"):
        run_in_child(_long_text, 2 * 2**20)


def _escape_and_hog(pid_file: str, mb: int) -> None:
    """What a hostile agent tries: a child in a new session (out of the call's process
    group) that holds ``mb`` MiB, then the call returns."""
    child = subprocess.Popen(
        [sys.executable, "-c", f"b = bytearray({mb} * 2**20); b[::4096] = b'x' * len(b[::4096])"
         "; import time; time.sleep(300)"],
        start_new_session=True,
    )  # fmt: skip
    Path(pid_file).write_text(f"{os.getpid()} {child.pid}")
    time.sleep(3)


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _forks(count: int) -> int:
    children = [subprocess.Popen(["sleep", "30"]) for _ in range(count)]
    return len(children)


def test_a_child_in_a_new_session_cannot_escape_its_call(tmp_path: Path):
    """S5: a setsid child neither outlives its call nor holds memory past the limit (the
    call's cgroup: the set-up runs as root, which may make them)."""
    assert cgroups.unavailable() is None, cgroups.unavailable()
    pid_file = tmp_path / "pids"
    with LocalExecutor(limits=Limits(memory_mb=300)) as ex:
        future = ex.submit(_escape_and_hog, str(pid_file), 600)
        leader, child = _pids(pid_file)
        with pytest.raises(CallFailed, match="reached the per-call memory limit of 300 MiB"):
            future.result(timeout=60)
    assert _wait_gone([leader, child]), "a child in another session outlived its call"
    pid_file.unlink()
    assert run_in_child(_escape_and_hog, str(pid_file), 10) is None  # within its limits
    assert _wait_gone(_pids(pid_file)), "a child in another session outlived its call"


def test_tiny_limits_are_enforced_not_ignored():
    """W8: a 1 MiB memory limit and a 1 ms timeout end the call; so do CPU and pid caps."""
    assert cgroups.unavailable() is None, cgroups.unavailable()
    start = time.monotonic()
    with pytest.raises(CallFailed, match=r"timed out after 0.001 s"):
        run_in_child(_nap, 5, limits=Limits(timeout=0.001))
    assert time.monotonic() - start < 3
    with pytest.raises(CallFailed, match="reached the per-call memory limit of 1 MiB"):
        run_in_child(_hog, 50, limits=Limits(memory_mb=1))
    with pytest.raises(CallFailed, match=r"s of CPU time, over the per-call CPU limit of 0.5 s"):
        run_in_child(_spin, 10, limits=Limits(cpu_seconds=0.5))
    with pytest.raises(BlockingIOError):  # fork refused: the pid cap holds
        run_in_child(_forks, 50, limits=Limits(pids=20))


def test_a_required_cgroup_is_refused_clearly_where_there_is_none(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cgroups, "unavailable", lambda: "no cgroups in this test")
    with pytest.raises(CallFailed, match="needs a cgroup and cannot have one: no cgroups"):
        run_in_child(pow, 2, 2, limits=Limits(require_cgroup=True))
    assert run_in_child(pow, 2, 2) == 4  # without the requirement: process groups
