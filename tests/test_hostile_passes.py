"""Hostile input to the LLVM pass-ordering env: files that are not programs, a planted native
bridge, replaced cached bitcode, a killed worker, and actions of the wrong kind.

Every case uses the real worker and the real libLLVM-19; each checks a clear error (naming the
file or value and what is allowed, never quoting the file) and that the env stays usable.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import optgym  # noqa: F401  (registers the env ids)
from optgym.envs.passes import actions as pass_actions
from optgym.envs.passes import native
from optgym.envs.passes.env import PassOrderingEnv

SMALL = "generator://csmith-v0/5"
MEDIUM = "generator://csmith-v0/6"
SECRET = "SECRETcanary7f3a9"

# A tiny program of a few instructions, as IR text: needs no generator and no cache.
PROGRAM = """\
define i32 @add(i32 %a, i32 %b) {
entry:
  %p = alloca i32
  store i32 %a, ptr %p
  %x = load i32, ptr %p
  %s = add i32 %x, %b
  ret i32 %s
}
"""


@pytest.fixture(scope="module")
def env():
    e = gym.make("optgym/PassOrdering-v0")
    yield e.unwrapped
    e.close()


def _assert_usable(env: PassOrderingEnv) -> None:
    env.reset(options={"benchmark": SMALL})
    obs, reward, terminated, truncated, info = env.step(env.action_index("-mem2reg"))
    assert "error" not in info and not truncated and reward > 0


def _lines_of(data: bytes) -> list[str]:
    """The pieces of a file that a leaking message would show: its lines and NUL-separated
    entries of 8 characters or more."""
    parts = re.split(rb"[\n\0]", data)
    return [p.decode(errors="replace") for p in parts if len(p.strip()) >= 8]


# ---- 1. no echo of file contents -------------------------------------------------------------


def _secret_files(tmp_path: Path) -> list[Path]:
    shadow = tmp_path / "shadow"
    shadow.write_text(f"root:$6${SECRET}$xyz:19000:0:99999:7:::\ndaemon:*:19000::::::\n")
    ir_like = tmp_path / "almost.ll"  # parses up to a use of an undefined value named SECRET
    ir_like.write_text(f"define i32 @f() {{\n  ret i32 %{SECRET}\n}}\n")
    typed = tmp_path / "typed.ll"
    typed.write_text(f"define i64 @f() {{\n  %{SECRET} = add i32 1, 2\n  ret i64 %{SECRET}\n}}\n")
    bitcode = tmp_path / "fake.bc"  # a bitcode header, then text
    bitcode.write_bytes(b"BC\xc0\xde" + (SECRET + "\n").encode() * 20)
    files = [shadow, ir_like, typed, bitcode, Path("/proc/self/environ"), Path("/etc/passwd")]
    if os.access("/etc/shadow", os.R_OK):
        files.append(Path("/etc/shadow"))
    return files


def test_error_names_the_file_and_never_its_contents(env, tmp_path, capfd):
    for path in _secret_files(tmp_path):
        data = path.read_bytes()
        with pytest.raises(ValueError) as caught:
            env.reset(options={"benchmark": f"file://{path}"})
        message = str(caught.value)
        assert f"cannot load benchmark file://{path}" in message
        assert re.search(r"is not (valid )?LLVM bitcode|is neither LLVM bitcode", message)
        assert SECRET not in message
        for piece in _lines_of(data):
            assert piece not in message, (path, piece)
    out, err = capfd.readouterr()
    assert SECRET not in out and SECRET not in err
    _assert_usable(env)


def test_parse_error_gives_the_position(env, tmp_path):
    path = tmp_path / "shadow"
    path.write_text(f"root:{SECRET}:0:0\n")
    with pytest.raises(ValueError, match=r"parse failed at line 1, column 1: expected top-level"):
        env.reset(options={"benchmark": f"file://{path}"})
    path.write_text(f"define i32 @f() {{\n  ret i32 %{SECRET}\n}}\n")
    with pytest.raises(ValueError, match=r"parse failed at line 2, column 11: use of undefined"):
        env.reset(options={"benchmark": f"file://{path}"})


LOOP = f"""\
define i32 @{SECRET}_loop(i32 %n) {{
entry:
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %next, %loop ]
  %next = add i32 %i, 1
  %c = icmp slt i32 %next, %n
  br i1 %c, label %loop, label %exit
exit:
  ret i32 %next
}}
"""


def test_worker_log_is_not_relayed_with_program_contents(env, tmp_path, monkeypatch):
    # The pipeline first prints the module (a function named SECRET) to the worker's stderr,
    # then stops LLVM with a fatal error: the crash message keeps the fatal error's line and
    # drops the printed program.
    program = tmp_path / "secret.ll"
    program.write_text(LOOP)
    env.reset(options={"benchmark": f"file://{program}"})
    session = env._session
    broken = list(pass_actions.PIPELINES)
    broken[0] = "print,function(loop(licm))"
    monkeypatch.setattr(pass_actions, "PIPELINES", tuple(broken))
    obs, reward, terminated, truncated, info = env.step(0)
    session.log.seek(0)
    assert SECRET.encode() in session.log.read()  # the worker did print it
    assert truncated and "LICM requires MemorySSA" in info["error"]
    assert SECRET not in info["error"] and "define" not in info["error"]
    monkeypatch.undo()
    _assert_usable(env)


# ---- 2. the native bridge is trusted only when it is ours -------------------------------------

PLANTED_C = r"""
#include <stdio.h>
int main(void) {
  FILE *f = fopen("%s", "w");
  if (f) { fputs("ran", f); fclose(f); }
  return 0;
}
"""


def _planted_program(tmp_path: Path, marker: Path) -> bytes:
    src = tmp_path / "planted.c"
    src.write_text(PLANTED_C % marker)
    out = tmp_path / "planted"
    subprocess.run(["cc", str(src), "-o", str(out)], check=True)
    return out.read_bytes()


def _episode_on_program(tmp_path: Path) -> float:
    program = tmp_path / "add.ll"
    program.write_text(PROGRAM)
    e = PassOrderingEnv(reward_space="IrInstructionCount")
    try:
        e.reset(options={"benchmark": f"file://{program}"})
        obs, reward, terminated, truncated, info = e.step(e.action_index("-mem2reg"))
        assert "error" not in info
        return reward
    finally:
        e.close()


def test_planted_native_worker_is_never_run(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "marker"
    planted = _planted_program(tmp_path, marker)
    target = native._target()
    assert target.parent.stat().st_mode & 0o777 == 0o700

    # A program planted under the worker's name with no tag: rebuilt, never run.
    target.write_bytes(planted)
    with pytest.warns(UserWarning, match="native-bridge .* does not match its integrity tag"):
        assert _episode_on_program(tmp_path) == 3  # alloca, store and load go
    assert not marker.exists()
    built = target.read_bytes()
    assert built != planted
    tag = target.with_name(target.name + ".tag")
    assert tag.is_file()

    # The built worker overwritten with other bytes, its tag kept: rebuilt again.
    target.write_bytes(planted)
    with pytest.warns(UserWarning, match="does not match its integrity tag"):
        assert _episode_on_program(tmp_path) == 3
    assert not marker.exists() and target.read_bytes() == built

    # A forged tag (the plain sha256 of the planted bytes) does not help either.
    target.write_bytes(planted)
    tag.write_text(hashlib.sha256(planted).hexdigest())
    with pytest.warns(UserWarning, match="does not match its integrity tag"):
        assert _episode_on_program(tmp_path) == 3
    assert not marker.exists() and target.read_bytes() == built

    # Ours, untouched: used as is (no warning, no rebuild).
    mtime = target.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _episode_on_program(tmp_path) == 3
    assert target.stat().st_mtime_ns == mtime


def test_native_worker_runs_from_the_bytes_it_checked(env):
    # Started from a sealed in-memory copy of the checked bytes, never from the cache file
    # (which could be swapped between the check and the start).
    env.reset()
    exe = os.readlink(f"/proc/{env._session.pid}/exe")
    assert exe.startswith("/memfd:optgym-llvm-worker"), exe
    assert str(native.private_dir()) not in exe


def test_native_bridge_folder_must_be_private(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "native"
    folder.mkdir(parents=True)
    folder.chmod(0o777)  # as an older OptGym left it, or someone opened it up
    assert native.private_dir() == folder
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.rmdir()
    (tmp_path / "elsewhere").mkdir()
    folder.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(native.LlvmNotFoundError, match="must be a folder .not a link. owned by"):
        native.private_dir()


# ---- 3. cached Debian bitcode is checked -------------------------------------------------------


def test_replaced_debian_bitcode_is_refused(env, tmp_path, monkeypatch):
    from optgym.datasets.passes import debian

    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "add.ll"
    source.write_text(PROGRAM)
    good = tmp_path / "add.bc"
    subprocess.run(["llvm-as-19", str(source), "-o", str(good)], check=True)
    data = good.read_bytes()
    debian._store("libgsm", data, {"uri": "benchmark://debian-v0/libgsm"})  # as build() does
    uri = "benchmark://debian-v0/libgsm"
    path = debian.bitcode_path("libgsm")
    ds = debian.DebianDataset()
    assert ds.benchmark(uri).sha256 == hashlib.sha256(data).hexdigest()
    env.reset(options={"benchmark": uri})

    # Another valid program in its place: refused, naming the file and the way back.
    other = tmp_path / "other.bc"
    source.write_text(PROGRAM.replace("add i32", "sub i32"))
    subprocess.run(["llvm-as-19", str(source), "-o", str(other)], check=True)
    shutil.copyfile(other, path)
    with pytest.raises(ValueError) as caught:
        env.reset(options={"benchmark": uri})
    message = str(caught.value)
    assert f"refusing {uri}: {path} does not have the sha256" in message
    assert "run `optgym datasets build debian-v0` to rebuild it" in message

    # ... and with the manifest edited to match: the tag still tells.
    manifest = json.loads(debian.manifest_path().read_text())
    manifest["programs"]["libgsm"]["sha256"] = hashlib.sha256(other.read_bytes()).hexdigest()
    debian.manifest_path().write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"does not match its integrity tag .*optgym datasets"):
        ds.benchmark(uri)

    # Empty and all-zero files in its place: refused too.
    for junk in (b"", bytes(len(data))):
        path.write_bytes(junk)
        with pytest.raises(ValueError, match=f"refusing {uri}: {re.escape(str(path))}"):
            ds.benchmark(uri)

    # Bitcode built by an older OptGym (no tag) is refused until `build` checks it against
    # its manifest and tags it, offline and without rebuilding.
    debian._store("libgsm", data, {"uri": uri})
    path.with_name(path.name + ".tag").unlink()
    with pytest.raises(ValueError, match="has no integrity tag .*optgym datasets build"):
        ds.benchmark(uri)
    mtime = path.stat().st_mtime_ns
    assert debian.build(["libgsm"], progress=False) == [path]
    assert path.stat().st_mtime_ns == mtime
    assert ds.benchmark(uri).path == path
    _assert_usable(env)


# ---- 4. empty, all-zero and other non-programs -------------------------------------------------


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"is empty \(0 bytes\)"),
        (bytes(4096), r"holds a NUL byte at offset 0 \(all its bytes are zero\)"),
        (b"BC\xc0\xde" + bytes(64), r"as LLVM bitcode: .* is not valid LLVM bitcode \("),
        (b"\xde\xc0\x17\x0b" + bytes(64), r"is not valid LLVM bitcode"),
        (b"; only a comment\n\n", r"holds no instructions \(an empty module"),
        (b"declare i32 @puts(ptr)\n", r"holds no instructions"),
        (b"\x7fELF\x02\x01\x01" + bytes(64), r"holds a NUL byte at offset 7"),
    ],
)
def test_empty_and_non_program_files_are_refused(env, tmp_path, content, match):
    path = tmp_path / "x.bc"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        env.reset(options={"benchmark": f"file://{path}"})
    _assert_usable(env)


def test_oversized_program_is_refused_before_it_is_read(env, tmp_path, monkeypatch):
    path = tmp_path / "big.ll"
    path.write_text(PROGRAM * 4)
    monkeypatch.setattr(env, "max_program_bytes", len(PROGRAM))
    with pytest.raises(ValueError, match=rf"{path} holds {4 * len(PROGRAM)} bytes, more than"):
        env.reset(options={"benchmark": f"file://{path}"})
    monkeypatch.undo()
    _assert_usable(env)


# ---- 5. crash containment -------------------------------------------------------------------


def test_sigkill_mid_episode_ends_it_and_the_next_reset_works(env):
    env.reset(options={"benchmark": MEDIUM})
    env.step(env.action_index("-mem2reg"))
    pid = env._session.pid
    os.kill(pid, signal.SIGKILL)
    obs, reward, terminated, truncated, info = env.step(env.action_index("-gvn"))
    assert truncated and reward == 0.0
    assert info["error"].startswith("BackendCrash: the LLVM worker died during 'run'")
    assert "killed by SIGKILL" in info["error"]
    with pytest.raises(RuntimeError, match="episode ended with an error"):
        env.step(0)
    env.reset()
    assert env._session.pid != pid
    assert env.step(env.action_index("-mem2reg"))[1] > 0


def test_sigkill_between_episodes_is_recovered_at_reset(env):
    env.reset(options={"benchmark": SMALL})
    pid = env._session.pid
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):  # until it is gone (or a zombie its parent has yet to wait for)
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z":
            break
        time.sleep(0.05)
    _assert_usable(env)


def test_llvm_crash_during_reset_leaves_the_env_usable(env, tmp_path, monkeypatch):
    from optgym.envs.passes.spaces import REFERENCES

    # The -Oz reference of a new program stops LLVM with a fatal error (on two workers).
    program = tmp_path / "loop.ll"
    program.write_text(LOOP.replace(SECRET, "crash"))
    monkeypatch.setitem(REFERENCES, "Oz", "function(loop(licm))")
    with pytest.raises(RuntimeError, match="LLVM worker died during 'reference'.*LICM requires"):
        env.reset(options={"benchmark": f"file://{program}"})
    monkeypatch.undo()
    _assert_usable(env)


def test_failed_reset_leaves_the_env_usable(env, tmp_path):
    env.reset(options={"benchmark": SMALL})
    bad = tmp_path / "bad.ll"
    bad.write_text("this is not a program\n")
    for uri in (f"file://{bad}", "generator://csmith-v0/x", f"file://{tmp_path}"):
        with pytest.raises(ValueError):
            env.reset(options={"benchmark": uri})
        with pytest.raises(RuntimeError, match="reset"):
            env.step(0)  # no half-loaded episode to step
    _assert_usable(env)


# ---- 6. actions of the wrong kind ------------------------------------------------------------

RANGE = r"(\[0, 124\)|0 <= action < 124)"


@pytest.mark.parametrize(
    "action, kind",
    [
        ("abc", "a str of length 3"),
        ("3", "a str of length 1"),
        (1.5, "the float 1.5"),
        (float("nan"), "the float nan"),
        (float("inf"), "the float inf"),
        (np.float64(2.0), "the float64 2.0"),
        (True, "the bool True"),
        (np.bool_(False), "the bool False"),
        (None, "None"),
        ([3, 1.5], "the float 1.5"),  # a pass sequence is checked pass by pass
        ([3, 124], "action 124 is out of range"),
        (np.array([1, 2]), r"a numpy array of shape \(2,\)"),
        (np.array([[3]]), r"a numpy array of shape \(1, 1\)"),
        (np.array(1.5), r"a numpy array of shape \(\) and dtype float64"),
        (-1, "action -1 is out of range"),
        (124, "action 124 is out of range"),
        (2**70, "action of 71 bits is out of range"),
        (np.int64(-5), "action -5 is out of range"),
        (-(10**400), "action of 1329 bits is out of range"),
        ("x" * 10**6, r"a str of length 1000000: 'x{40}'\.\.\.$"),
    ],
)
def test_bad_action_names_its_kind_and_the_range(env, action, kind):
    env.reset(options={"benchmark": SMALL})
    with pytest.raises(ValueError, match=RANGE) as caught:
        env.step(action)
    message = str(caught.value)
    assert re.search(kind, message), message
    assert "could not convert" not in message
    assert env.state.actions == []  # nothing ran: no 1.5 -> 1


def test_unknown_flag_names_are_shown_short(env):
    with pytest.raises(ValueError, match=r"unknown pass flag 'yyyy.*\.\.\. \(100000 characters\)"):
        env.action_index("y" * 100_000)
    with pytest.raises(ValueError, match="a pass flag is a string, got a int; allowed: -add-"):
        env.action_index(3)


def test_integer_actions_of_any_integer_kind_work(env):
    env.reset(options={"benchmark": SMALL})
    for action in (3, np.int64(3), np.uint8(3), np.array(3)):
        assert "error" not in env.step(action)[4]
    assert len(env.state.actions) == 4


def test_worker_starts_from_a_private_copy_where_memory_files_cannot_run(monkeypatch, tmp_path):
    # Where in-memory files may not be executed (vm.memfd_noexec), the checked bytes run from
    # a copy in a fresh owner-only folder, removed as soon as the worker runs.
    monkeypatch.setattr(native, "_sealed_copy", lambda data: None)
    monkeypatch.setattr(native.tempfile, "tempdir", str(tmp_path))
    assert _episode_on_program(tmp_path) == 3
    assert not list(tmp_path.glob("optgym-llvm-worker-*"))
