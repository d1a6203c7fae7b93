"""Hostile files in the cache and at the paths a command writes: FIFOs, devices, links and
folders planted where OptGym keeps a file, a cached file copied with its tag over another,
and a results path that is a link to someone else's file.

Each case plants the real thing (``os.mkfifo``, ``os.symlink``, a copy) and runs the real
code path (the env, ``optgym bench``, ``optgym validate``): nothing blocks, a planted cache
file is rebuilt with a warning, and a file a link names is never changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import optgym  # noqa: F401  (registers the env ids)
from optgym.budget import Budget
from optgym.cli import main
from optgym.datasets.cache import cache_dir
from optgym.datasets.files import read_limited, read_regular, write_file
from optgym.datasets.passes.generators import CsmithDataset
from optgym.integrity import read_tagged, tag_path, write_tagged
from optgym.state import StateWriter
from optgym.validate import validate_results

SEED_1 = "generator://csmith-v0/1"
SEED_2 = "generator://csmith-v0/2"
BLOCKED_AFTER_S = 60  # far more than any of these takes; a blocked open waits forever


class Blocked(BaseException):
    """Raised by :func:`deadline`; not an ``OSError`` (nor an ``Exception``), so that no
    ``except OSError`` on the way swallows it and blocks again."""


@contextmanager
def deadline(seconds: float = BLOCKED_AFTER_S) -> Iterator[None]:
    """Fail (instead of hanging the test run) when the body blocks longer than ``seconds``:
    a blocked ``open`` of a FIFO is interrupted by the alarm."""

    def expired(signum: int, frame: object) -> None:
        raise Blocked(f"blocked for {seconds} s (on a FIFO?)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_cli(args: list[str], cache: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``optgym ARGS`` in a child process with ``cache`` as its cache; the whole process
    group is killed after ``timeout`` (a blocked worker included)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "optgym.cli", *args],
        env={**os.environ, "OPTGYM_CACHE": str(cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"optgym {' '.join(args)} blocked for {timeout} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    return cache_dir()


def _fresh_csmith(seed: int) -> bytes:
    """The bitcode Csmith gives for ``seed``, made outside any cache."""
    with tempfile.TemporaryDirectory() as tmp:
        return CsmithDataset().generate(seed, Path(tmp))


def _plant_fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    os.mkfifo(path)


# ---- the helpers: read_regular, read_limited, write_file ----------------------------------------


def test_reading_refuses_fifos_devices_links_and_folders_without_blocking(tmp_path: Path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real = tmp_path / "real"
    real.write_bytes(b"bytes")
    link = tmp_path / "link"
    link.symlink_to(real)
    link_to_fifo = tmp_path / "link-to-fifo"
    link_to_fifo.symlink_to(fifo)
    with deadline():
        for path, kind in ((fifo, "FIFO"), (Path("/dev/zero"), "character device"),
                           (tmp_path, "folder")):  # fmt: skip
            for read in (lambda p: read_regular(p, "thing"),
                         lambda p: read_limited(p, "thing", 1 << 20)):  # fmt: skip
                with pytest.raises(ValueError) as caught:
                    read(path)
                assert str(caught.value) == (
                    f"thing {path} is not a regular file (a {kind}); only regular files are read"
                )
        with pytest.raises(ValueError, match=f"thing {link} is a symbolic link, not a regular"):
            read_limited(link, "thing", 100)
        # Followed only when asked, and even then a FIFO behind the link is refused.
        assert read_regular(link, "thing", follow=True) == b"bytes"
        with pytest.raises(ValueError, match="is not a regular file .a FIFO."):
            read_regular(link_to_fifo, "thing", follow=True)
        with pytest.raises(ValueError, match="is 5 bytes; at most 4 allowed"):
            read_regular(real, "thing", 4)


def test_write_file_replaces_a_link_and_never_writes_through_it(tmp_path: Path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n")
    out = tmp_path / "out" / "verification.json"
    out.parent.mkdir()
    out.symlink_to(victim)
    write_file(out, b"{}\n")
    assert victim.read_bytes() == b"do not touch\n"
    assert not out.is_symlink() and out.read_bytes() == b"{}\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    write_file(out, b"[]\n", mode=0o600)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and out.read_bytes() == b"[]\n"
    # A FIFO there is replaced without ever being opened (no reader: an open would block).
    out.unlink()
    os.mkfifo(out)
    with deadline():
        write_file(out, b"{}\n")
    assert stat.S_ISREG(out.lstat().st_mode)
    with pytest.raises(ValueError, match="is a folder; name a file"):
        write_file(tmp_path / "out", b"x")
    assert sorted(p.name for p in out.parent.iterdir()) == ["verification.json"]  # no temp left


# ---- H3: FIFOs in the cache --------------------------------------------------------------------


def test_fifo_at_a_cached_benchmark_is_rebuilt_and_bench_does_not_block(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    path = CsmithDataset().folder() / "1.bc"
    _plant_fifo(path)
    args = ["bench", "pass-ordering", "--agent", "random", "--benchmark", SEED_1,
            "--budget", "calls=3", "--results", str(tmp_path / "r.jsonl"),
            "--plot", str(tmp_path / "p.png"), "--no-progress"]  # fmt: skip
    with deadline(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    messages = [str(w.message) for w in caught]
    assert f"cached benchmark {path} does not match its integrity tag (1.bc is a FIFO, not a " \
        "regular file): rebuilding it" in messages  # fmt: skip
    assert stat.S_ISREG(path.lstat().st_mode)
    assert path.read_bytes() == _fresh_csmith(1)
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["error"] for r in rows] == [None]


def test_fifo_at_the_native_bridge_does_not_block_validate(cache: Path, tmp_path: Path):
    from optgym.envs.passes import native

    results = tmp_path / "r.jsonl"
    bench = ["bench", "pass-ordering", "--agent", "random", "--benchmark", SEED_1,
             "--budget", "calls=3", "--results", str(results), "--plot",
             str(tmp_path / "p.png"), "--no-progress"]  # fmt: skip
    assert run_cli(bench, cache).returncode == 0
    library = native.worker_path()
    built = library.read_bytes()
    _plant_fifo(library)
    run = run_cli(["validate", str(results), "--budget", "calls=3"], cache)
    assert run.returncode == 0, run.stderr
    assert "1 passed, 0 failed" in run.stdout
    assert f"cached native-bridge {library} does not match its integrity tag" in run.stderr
    assert "is a FIFO, not a regular file" in run.stderr and "Traceback" not in run.stderr
    assert stat.S_ISREG(library.lstat().st_mode) and library.read_bytes() == built


def test_fifo_at_debian_bitcode_is_refused_without_blocking(cache: Path):
    from optgym.datasets.passes import debian

    data = b"BC\xc0\xde" + bytes(range(1, 200))
    debian._store("libgsm", data, {"uri": "benchmark://debian-v0/libgsm"})  # as build() does
    path = debian.bitcode_path("libgsm")
    _plant_fifo(path)
    with deadline():
        with pytest.raises(ValueError) as caught:
            debian.DebianDataset().benchmark("benchmark://debian-v0/libgsm")
        assert debian.bitcode_problem("libgsm") is not None
    message = str(caught.value)
    assert f"refusing benchmark://debian-v0/libgsm: bitcode {path} is not a regular file " \
        "(a FIFO)" in message and "optgym datasets build debian-v0" in message  # fmt: skip


def test_planted_files_at_the_measurement_database(cache: Path, tmp_path: Path):
    from optgym.envs.schedule.env import default_cache_path
    from optgym.envs.schedule.measure import MeasurementCache

    path = default_cache_path()
    _plant_fifo(path)
    with deadline(), pytest.warns(UserWarning, match="is a FIFO, not a regular file"):
        db = MeasurementCache(path, host="test-host", threads=1)
    assert len(db) == 0 and stat.S_ISREG(path.lstat().st_mode)
    db.db.close()

    # A link to someone's file (and a link as its journal): removed, the file untouched.
    victim = tmp_path / "victim.sqlite"
    victim.write_bytes(b"not yours\n")
    path.unlink()
    path.symlink_to(victim)
    journal = path.with_name(path.name + "-journal")
    journal.symlink_to(victim)
    with pytest.warns(UserWarning, match="is a symbolic link, not a regular file"):
        db = MeasurementCache(path, host="test-host", threads=1)
    assert len(db) == 0 and not path.is_symlink() and not os.path.lexists(journal)
    db.db.close()
    assert victim.read_bytes() == b"not yours\n"

    # Outside OptGym's cache a path the user named is theirs: refused, never removed.
    outside = tmp_path / "mine.sqlite"
    os.mkfifo(outside)
    with deadline(), pytest.raises(ValueError, match="is a FIFO, not a regular file; name a"):
        MeasurementCache(outside, host="test-host", threads=1)
    assert stat.S_ISFIFO(outside.lstat().st_mode)


# ---- W6: a tag binds the file's identity -------------------------------------------------------


def test_a_benchmark_copied_with_its_tag_over_another_is_rebuilt(cache: Path, tmp_path: Path):
    from optgym.envs.passes.env import PassOrderingEnv

    results = tmp_path / "r.jsonl"
    bench = ["bench", "pass-ordering", "--agent", "random", "--benchmark", SEED_1,
             "--budget", "calls=3", "--results", str(results), "--plot",
             str(tmp_path / "p.png"), "--no-progress", "--executor", "inline"]  # fmt: skip
    assert main(bench) == 0
    env = PassOrderingEnv(reward_space="IrInstructionCount")
    try:
        env.reset(options={"benchmark": SEED_2})
        count_2, sha_2 = env.observation["IrInstructionCount"][0], env.benchmark_sha256
        folder = CsmithDataset().folder()
        for name in ("2.bc", "2.bc.tag"):  # seed 2's program and its genuine tag as seed 1's
            shutil.copyfile(folder / name, folder / name.replace("2", "1"))
        with pytest.warns(UserWarning, match=r"cached benchmark .*/1\.bc does not match its "
                          r"integrity tag \(changed, or not written there"):  # fmt: skip
            env.reset(options={"benchmark": SEED_1})
        fresh = _fresh_csmith(1)
        assert env.benchmark_sha256 == hashlib.sha256(fresh).hexdigest() != sha_2
        assert env.observation["IrInstructionCount"][0] != count_2
        assert (folder / "1.bc").read_bytes() == fresh
    finally:
        env.close()

    # validate replays seed 1's line on seed 1's program, after the same rebuild.
    for name in ("2.bc", "2.bc.tag"):
        shutil.copyfile(folder / name, folder / name.replace("2", "1"))
    with pytest.warns(UserWarning, match="does not match its integrity tag"):
        verdicts = validate_results(results, budget=Budget.parse("calls=3"))
    assert [v for _, v, _ in verdicts] == ["passed"], verdicts
    assert (folder / "1.bc").read_bytes() == fresh


@pytest.mark.parametrize(
    "kind, purpose",
    [
        ("lns-initial/{}.json", "lns-initial"),
        ("models/char-lm-{}.pt", "char-lm weights"),
        ("native/optgym-llvm-worker-{}", "native-bridge"),
        ("datasets/schedule-random-v0/{}.json", "benchmark"),
    ],
)
def test_a_tag_copied_with_its_file_to_another_name_does_not_fit(
    cache: Path, kind: str, purpose: str
):
    a, b = cache / kind.format("a"), cache / kind.format("b")
    write_tagged(a, b"contents of a", purpose)
    write_tagged(b, b"contents of b", purpose)
    assert read_tagged(b, purpose) == b"contents of b"
    shutil.copyfile(a, b)
    shutil.copyfile(tag_path(a), tag_path(b))
    with pytest.warns(UserWarning, match=f"cached {purpose} {b} does not match its integrity"):
        assert read_tagged(b, purpose) is None
    assert read_tagged(a, purpose) == b"contents of a"  # the original still fits its own name


def test_debian_bitcode_copied_with_its_tag_is_refused(cache: Path):
    from optgym.datasets.passes import debian

    for name, body in (("bzip2", b"one"), ("libgsm", b"two")):
        debian._store(name, b"BC\xc0\xde" + body * 50, {"uri": f"benchmark://debian-v0/{name}"})
    src, dst = debian.bitcode_path("bzip2"), debian.bitcode_path("libgsm")
    shutil.copyfile(src, dst)
    shutil.copyfile(tag_path(src), tag_path(dst))
    manifest = json.loads(debian.manifest_path().read_text())  # and the manifest made to agree
    manifest["programs"]["libgsm"]["sha256"] = manifest["programs"]["bzip2"]["sha256"]
    debian.manifest_path().write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=f"refusing .*libgsm: {dst} does not match its integ"):
        debian.DebianDataset().benchmark("benchmark://debian-v0/libgsm")
    assert debian.bitcode_problem("bzip2") is None


# ---- D1: a results path that is a link ---------------------------------------------------------

PLANNING = ["bench", "path-planning", "--agent", "shooting", "--budget", "calls=10",
            "--executor", "inline", "--episodes", "1", "--no-progress"]  # fmt: skip


@pytest.mark.parametrize("victim_exists", [True, False])
def test_bench_never_writes_through_a_linked_results_path(
    tmp_path: Path, capsys: pytest.CaptureFixture, victim_exists: bool
):
    victim = tmp_path / "victim.txt"
    before = b"someone's notes\nthe last line has no newline"
    if victim_exists:
        victim.write_bytes(before)
    results = tmp_path / "R.jsonl"
    results.symlink_to(victim)
    args = [*PLANNING, "--results", str(results), "--plot", str(tmp_path / "p.png")]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert err == (
        f"optgym bench: error: results {results} is a symbolic link; name a regular file\n"
    )
    assert "Traceback" not in out + err
    if victim_exists:
        assert victim.read_bytes() == before
    else:
        assert not os.path.lexists(victim)  # not even created
    assert results.is_symlink()


def test_state_writer_refuses_links_and_fifos_before_touching_them(tmp_path: Path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with deadline():
        with pytest.raises(ValueError, match="is not a regular file .a FIFO, device or folder"):
            StateWriter(fifo)
        link = tmp_path / "link.jsonl"
        link.symlink_to(fifo)
        with pytest.raises(ValueError, match="is a symbolic link; name a regular file"):
            StateWriter(link)
    with StateWriter(tmp_path / "r.jsonl") as writer:  # a plain new file is fine
        writer.write({"a": 1})
    assert (tmp_path / "r.jsonl").read_text() == '{"a": 1}\n'


# ---- validate on a FIFO, a device, a folder -----------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "/dev/null", "folder"])
def test_validate_names_what_is_not_a_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture, kind: str
):
    if kind == "fifo":
        path = tmp_path / "results.jsonl"
        os.mkfifo(path)
    else:
        path = tmp_path if kind == "folder" else Path(kind)
    with deadline():
        assert main(["validate", str(path)]) == 2
        with pytest.raises(ValueError, match="is not a regular file"):
            validate_results(path)
    out, err = capsys.readouterr()
    assert err == (
        f"optgym validate: error: {path} is not a regular file (a FIFO/device/folder); name a "
        "JSON-lines results file\n"
    )
    assert main(["validate", str(tmp_path / "absent.jsonl")]) == 1
    assert "no results file" in capsys.readouterr().err


# ---- a generator's cached files belong to the code that made them --------------------------------


def test_a_changed_generator_never_reuses_its_old_files(cache: Path, tmp_path: Path, monkeypatch):
    """A seeded dataset's files sit in a folder named by its generating code: after the code
    changes (here a module of ``recipe_modules``), the next benchmark is made anew by the new
    code, not read from what the old code cached, and with no warning of tampering."""
    from optgym.datasets.seeded import SeededDataset, source_digest

    module = tmp_path / "toy_recipe.py"
    module.write_text("SCALE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import toy_recipe

    class Toy(SeededDataset):
        name = "toy-v0"
        description = provenance = license = "a test's dataset"
        recipe_modules = ("toy_recipe",)

        def generate(self, seed: int, workdir: Path) -> bytes:
            return str(seed * toy_recipe.SCALE).encode()

    first = Toy().benchmark("generator://toy-v0/7")
    assert first.path.read_bytes() == b"7" and first.path.parent == Toy().folder()
    assert Toy().benchmark("generator://toy-v0/7") == first  # reused while the code holds
    module.write_text("SCALE = 3\n")  # the generator changes
    toy_recipe.SCALE = 3
    source_digest.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = Toy().benchmark("generator://toy-v0/7")
    assert second.path.read_bytes() == b"21" and second.sha256 != first.sha256
    assert second.path.parent != first.path.parent
