"""The leaderboard: a submission is run, verified by replay, filed and ranked; tampered,
incomplete or unsafe submissions are refused with a reason; hidden rounds run without
network and replay after the reveal; the committed board re-verifies."""

from __future__ import annotations

import io
import json
import shutil
import socket
import sqlite3
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from optgym.cli import main
from optgym.leaderboard import submission as submission_module
from optgym.leaderboard.board import Board
from optgym.leaderboard.hardware import calibrate, hardware_class
from optgym.leaderboard.rounds import make_round, rerun, reveal, round_dir, secret_path
from optgym.leaderboard.run import run_entry
from optgym.leaderboard.signing import sign
from optgym.leaderboard.stats import bootstrap_interval, ranks
from optgym.leaderboard.submission import (
    MANIFEST,
    RESULTS,
    load_submission,
    manifest_problems,
    submission_id,
)
from optgym.leaderboard.verify import verify_submission
from optgym.tasks import board_benchmarks, get_task

TASK = "path-planning"


@pytest.fixture(scope="module")
def cem_entry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real open-track submission: CEM (3 seeds) on the path-planning test set."""
    out = tmp_path_factory.mktemp("cem") / "entry"
    run_entry(TASK, "cem", out, authors=["Test Author"], license="MIT", progress=False)
    return out


def _copy(entry: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(entry, out)
    (out / "verification.json").unlink(missing_ok=True)
    return out


def _rows(entry: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (entry / RESULTS).read_text().splitlines()]


def _write_rows(entry: Path, rows: list[dict[str, Any]]) -> None:
    (entry / RESULTS).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _manifest(entry: Path) -> dict[str, Any]:
    return json.loads((entry / MANIFEST).read_text())


def _write_manifest(entry: Path, manifest: dict[str, Any]) -> None:
    (entry / MANIFEST).write_text(json.dumps(manifest))


def _refused(entry: Path, *needles: str) -> str:
    record = verify_submission(entry, record="-")
    assert not record.ok
    text = " | ".join(record.problems)
    for needle in needles:
        assert needle in text, text
    return text


# --- a submission and its verification ---------------------------------------------------


def test_real_entry_verifies_and_writes_its_record(cem_entry: Path) -> None:
    record = verify_submission(cem_entry)
    assert record.ok, record.problems
    assert record.lines == record.passed == 9  # 3 maps x 3 seeds
    assert record.second_replays == 9
    assert record.task == TASK and len(record.submission) == 64
    saved = json.loads((cem_entry / "verification.json").read_text())
    assert saved["ok"] is True and saved["verifier"]["optgym"]
    assert {b for b, _, _ in record.scores} == set(board_benchmarks(get_task(TASK)))


def test_id_ignores_order_and_tags_but_not_content(cem_entry: Path) -> None:
    sub = load_submission(cem_entry)
    rows = _rows(cem_entry)
    shuffled = b"".join(
        json.dumps({k: v for k, v in r.items() if k != "tag"}).encode() + b"\n"
        for r in reversed(rows)
    )
    assert submission_id(sub.manifest, shuffled) == sub.id
    rows[0]["score"] += 1e-9
    changed = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    assert submission_id(sub.manifest, changed) != sub.id
    assert submission_id({**sub.manifest, "name": "x"}, sub.results) != sub.id


@pytest.mark.parametrize(
    ("field", "edit", "needle"),
    [
        ("score", lambda r: r.__setitem__("score", r["score"] + 0.01), "claimed score"),
        ("reward", lambda r: r.__setitem__("reward", r["reward"] + 0.5), "reward"),
        ("actions", lambda r: r["state"]["actions"][0].__setitem__(0, -0.9), "replay"),
        ("budget", lambda r: r.__setitem__("budget", "calls=3000"), "budget"),
        ("agent", lambda r: r.__setitem__("agent", "cmaes"), "another agent"),
        ("task", lambda r: r.__setitem__("task", "path-planning-closed-loop"), "another task"),
        ("version", lambda r: r["state"]["versions"].__setitem__("optgym", "0.0.1"), "version"),
        ("error", lambda r: r.__setitem__("error", "boom"), "error"),
    ],
)
def test_a_tampered_line_is_refused(
    cem_entry: Path, tmp_path: Path, field: str, edit: Any, needle: str
) -> None:
    entry = _copy(cem_entry, tmp_path)
    rows = _rows(entry)
    assert rows[0]["benchmark"].endswith("/open")  # a map where every move counts
    edit(rows[0])
    _write_rows(entry, rows)
    _refused(entry, needle)
    # the command line never prints success after an error
    assert main(["leaderboard", "verify", str(entry), "--record", "-"]) == 1


def test_missing_and_foreign_benchmarks_are_refused(cem_entry: Path, tmp_path: Path) -> None:
    entry = _copy(cem_entry, tmp_path)
    rows = _rows(entry)
    _write_rows(entry, [r for r in rows if not r["benchmark"].endswith("/wall")])
    _refused(entry, "have no line", "benchmark://nav2d-v0/wall")
    extra = dict(rows[0], benchmark="benchmark://nav2d-v0/maze")
    _write_rows(entry, [*rows, extra])
    _refused(entry, "not in the test set")


def test_too_few_seeds_and_a_false_determinism_claim(cem_entry: Path, tmp_path: Path) -> None:
    entry = _copy(cem_entry, tmp_path)
    rows = _rows(entry)
    _write_rows(entry, [r for r in rows if r["seed"] < 2])
    _refused(entry, "at least 3 seeds")
    _write_rows(entry, rows)
    _write_manifest(entry, {**_manifest(entry), "stochastic": False})
    _refused(entry, "not stochastic")
    _write_rows(entry, [*rows, rows[0]])
    _write_manifest(entry, {**_manifest(entry), "stochastic": True})
    _refused(entry, "two lines with one seed")


def test_dataset_versions_must_match_the_lines(cem_entry: Path, tmp_path: Path) -> None:
    entry = _copy(cem_entry, tmp_path)
    manifest = _manifest(entry)
    assert manifest["versions"]["datasets"] == ["benchmark://nav2d-v0"]
    newer = {**manifest["versions"], "datasets": ["benchmark://nav2d-v1"]}
    _write_manifest(entry, {**manifest, "versions": newer})
    _refused(entry, "dataset (or dataset version) the manifest does not list", "no line uses")


def test_training_on_test_benchmarks_is_refused(cem_entry: Path, tmp_path: Path) -> None:
    entry = _copy(cem_entry, tmp_path)
    manifest = _manifest(entry)
    _write_manifest(
        entry, {**manifest, "training_data": [{"benchmark": "benchmark://nav2d-v0/open"}]}
    )
    _refused(entry, "test benchmark")
    bad_split = [{"dataset": "generator://nav2d-random-v0", "split": "test"}]
    _write_manifest(entry, {**manifest, "training_data": bad_split})
    _refused(entry, "never test")
    fine = [{"dataset": "generator://nav2d-random-v0", "split": "train"}]
    _write_manifest(entry, {**manifest, "training_data": fine})
    assert verify_submission(entry, record="-").ok


def test_a_train_split_benchmark_is_refused(cem_entry: Path, tmp_path: Path) -> None:
    """A real line on a train-split map added to a complete entry: refused twice over (not
    in the test set; validate refuses its split)."""
    from optgym.bench import run_bench

    entry = _copy(cem_entry, tmp_path)
    train = "generator://nav2d-random-v0/2000"
    extra = run_bench(TASK, ["cem"], [train], [0], get_task(TASK).budget,
                      tmp_path / "train.jsonl", progress=False)  # fmt: skip
    assert extra[0]["error"] is None
    _write_rows(entry, [*_rows(entry), extra[0]])
    _refused(entry, "not in the test set")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("schema_version", 2),
        ("task", ""),
        ("name", "x" * 81),
        ("name", "tab\there"),
        ("stochastic", "yes"),
        ("authors", []),
        ("code", {"url": "javascript:alert(1)", "commit": ""}),
        ("code", {"url": "", "commit": "not-hex"}),
        ("training_data", [{"dataset": "generator://nav2d-random-v0"}]),
        ("versions", {"optgym": "0.1.0", "extra": "1"}),
        ("versions", {"optgym": "0.1.0", "datasets": ["nav2d"]}),
        ("license", "<b>MIT</b>"),
        ("track", "private"),
        ("round", "r1"),  # an open-track entry names no round
        ("hardware", {"class": "x"}),
        ("weights_sha256", "abc"),
        ("surprise", 1),
    ],
)
def test_a_malformed_manifest_is_refused(
    cem_entry: Path, tmp_path: Path, key: str, value: Any
) -> None:
    entry = _copy(cem_entry, tmp_path)
    _write_manifest(entry, {**_manifest(entry), key: value})
    text = _refused(entry, "manifest")
    assert key in text or "round" in text
    assert "alert" not in text and "<b>" not in text  # never echoes a value


def test_manifest_problems_name_missing_fields() -> None:
    assert manifest_problems([]) == ["the manifest must be a JSON object"]
    problems = manifest_problems({"task": "path-planning"})
    assert "manifest lacks" in problems[0] and "authors" in problems[0]


# --- unsafe submission files ---------------------------------------------------------------


def _tar(path: Path, members: list[tuple[str, bytes | None, bytes]]) -> Path:
    """A tar.gz of (name, data or None for a symlink, link target)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data, target in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, target.decode()
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def test_archives_load_and_unsafe_ones_are_refused(cem_entry: Path, tmp_path: Path) -> None:
    manifest, results = (cem_entry / MANIFEST).read_bytes(), (cem_entry / RESULTS).read_bytes()
    good = _tar(tmp_path / "good.tar.gz", [("e/manifest.json", manifest, b""),
                                           ("e/results.jsonl", results, b"")])  # fmt: skip
    assert load_submission(good).id == load_submission(cem_entry).id
    with zipfile.ZipFile(tmp_path / "good.zip", "w") as z:
        z.writestr("manifest.json", manifest)
        z.writestr("results.jsonl", results)
    assert load_submission(tmp_path / "good.zip").id == load_submission(cem_entry).id
    record = verify_submission(good)
    assert record.ok and (tmp_path / "good.tar.gz.verification.json").exists()

    cases = {
        "dotdot.tar.gz": ([("../manifest.json", manifest, b"")], "'..'"),
        "abs.tar.gz": ([("/etc/manifest.json", manifest, b"")], "absolute"),
        "link.tar.gz": ([("manifest.json", None, b"/etc/passwd")], "link"),
        "twice.tar.gz": (
            [("manifest.json", manifest, b""), ("x/manifest.json", manifest, b"")],
            "twice",
        ),  # fmt: skip
        "nomanifest.tar.gz": ([("results.jsonl", results, b"")], "no manifest.json"),
    }
    for name, (members, needle) in cases.items():
        with pytest.raises(ValueError, match=needle):
            load_submission(_tar(tmp_path / name, members))
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match="not a readable tar or zip"):
        load_submission(tmp_path / "junk.tar.gz")
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(ValueError, match="not an archive"):
        load_submission(tmp_path / "plain.txt")
    with pytest.raises(ValueError, match="no submission"):
        load_submission(tmp_path / "absent")


def test_oversized_members_and_links_in_folders(
    cem_entry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submission_module, "MAX_RESULTS_BYTES", 1000)
    results = (cem_entry / RESULTS).read_bytes()
    assert len(results) > 1000
    big = _tar(tmp_path / "big.tar.gz", [("manifest.json", b"{}", b""),
                                         ("results.jsonl", results, b"")])  # fmt: skip
    with pytest.raises(ValueError, match="over 1000 bytes"):
        load_submission(big)
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / MANIFEST).symlink_to(cem_entry / MANIFEST)
    shutil.copy(cem_entry / RESULTS, folder / RESULTS)
    with pytest.raises(ValueError, match="is a link"):
        load_submission(folder)


def test_garbage_results_are_refused_without_echo(cem_entry: Path, tmp_path: Path) -> None:
    entry = _copy(cem_entry, tmp_path)
    (entry / RESULTS).write_bytes(b"SECRET-CONTENT\n\xff\xfe\n[" * 3 + b"\n")
    text = _refused(entry, "not JSON")
    assert "SECRET" not in text
    (entry / MANIFEST).write_bytes(b"[" * 60000)
    _refused(entry, "nests")
    (entry / MANIFEST).write_bytes(b"[" * 100000)
    _refused(entry, "at most 65536")


# --- the store ---------------------------------------------------------------------------


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Board:
    monkeypatch.setenv("OPTGYM_BOARD", str(tmp_path / "board"))
    return Board(tmp_path / "board", tmp_path / "index.sqlite")


def test_board_adds_ranks_and_rebuilds_from_files(cem_entry: Path, board: Board) -> None:
    record, folder = board.add(cem_entry)
    assert record.ok and folder is not None and folder.name == record.submission
    entries = board.entries(TASK)
    assert len(entries) == 1 and entries[0]["rank"] == 1 and entries[0]["episodes"] == 9
    entry = entries[0]
    assert entry["low"] <= entry["score"] <= entry["high"]
    assert "cem" in board.table(TASK)
    con = sqlite3.connect(board.db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):  # strict tables: a text score is refused
        con.execute("INSERT INTO scores VALUES (?, 'b', 0, 'high')", (entry["id"],))
    con.close()
    board.db.unlink()  # the files are the source of truth
    assert board.entries(TASK)[0]["score"] == entry["score"]
    # a file changed on disk no longer hashes to its folder: left out, with a warning
    (folder / RESULTS).write_bytes((folder / RESULTS).read_bytes().replace(b"0.9", b"0.8", 1))
    with pytest.warns(UserWarning, match="do not hash"):
        assert board.rebuild() == 0


def test_a_refused_submission_is_not_added(cem_entry: Path, board: Board, tmp_path: Path) -> None:
    entry = _copy(cem_entry, tmp_path)
    rows = _rows(entry)
    rows[0]["score"] = 5.0
    _write_rows(entry, rows)
    record, folder = board.add(entry)
    assert not record.ok and folder is None and board.entries() == []


def test_reverify_marks_stale_without_deleting(cem_entry: Path, board: Board) -> None:
    """An entry made by an older OptGym whose lines no longer replay (their versions differ)
    becomes stale on reverify, and stays on file and on the board."""
    old = load_submission(cem_entry)
    rows = [json.loads(line) for line in old.results.splitlines()]
    for row in rows:
        row["state"]["versions"]["optgym"] = "0.0.9"
    results = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    manifest = {**old.manifest, "versions": {**old.manifest["versions"], "optgym": "0.0.9"}}
    new_id = submission_id(manifest, results)
    folder = board.root / "entries" / TASK / new_id
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (folder / RESULTS).write_bytes(results)
    record = verify_submission(cem_entry, record="-").to_dict()
    record.update(submission=new_id, verifier={**record["verifier"], "optgym": "0.0.9"})
    signed = sign(record, "verification", board.root)  # as the organizer filed it then
    (folder / "verification.json").write_text(json.dumps(signed))
    assert [e["status"] for e in board.entries(TASK)] == ["verified"]
    results_of = board.reverify()
    assert len(results_of) == 1 and not results_of[0][1].ok
    assert "versions differ" in " ".join(results_of[0][1].problems)
    assert [e["status"] for e in board.entries(TASK)] == ["stale"]
    assert (folder / RESULTS).exists() and (folder / "stale").exists()


def test_reverify_when_the_test_set_changes(
    cem_entry: Path, board: Board, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new dataset version changes a task's test set: its entries are verified again on
    reverify (and, no longer covering it, become stale); an unchanged board is left alone."""
    import optgym.tasks as tasks_module

    board.add(cem_entry)
    assert board.reverify() == []
    moved = [*board_benchmarks(get_task(TASK)), "benchmark://nav2d-v0/maze"]
    monkeypatch.setattr(tasks_module, "board_benchmarks", lambda task: moved)
    ((name, record),) = board.reverify()
    assert not record.ok and "have no line" in " ".join(record.problems)
    assert [e["status"] for e in board.entries(TASK)] == ["stale"]


def test_run_from_the_command_line(
    cem_entry: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "entry"
    shutil.copytree(cem_entry, out)  # the run resumes: its episodes are all there
    args = ["leaderboard", "run", TASK, "--agent", "cem", "--out", str(out), "--no-progress",
            "--author", "A. Author", "--trained-on", "generator://nav2d-random-v0:train",
            "--trained-on", "generator://nav2d-random-v0/2001"]  # fmt: skip
    assert main(args) == 0
    assert _manifest(out)["training_data"] == [
        {"dataset": "generator://nav2d-random-v0", "split": "train"},
        {"benchmark": "generator://nav2d-random-v0/2001"},
    ]
    assert main(["leaderboard", "verify", str(out), "--record", "-"]) == 0
    assert "VERIFIED" in capsys.readouterr().out
    assert main([*args[:-4], "--trained-on", "nav2d:train"]) == 1
    assert "--trained-on takes" in capsys.readouterr().err


def test_show_and_build_from_the_command_line(
    cem_entry: Path, board: Board, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["leaderboard", "add", str(cem_entry)]) == 0
    assert main(["leaderboard", "show", TASK]) == 0
    assert "cem" in capsys.readouterr().out
    assert main(["leaderboard", "show", "no-such-task"]) == 1
    assert "unknown task" in capsys.readouterr().err
    assert main(["leaderboard", "build", "--out", str(tmp_path / "site")]) == 0
    page = next((tmp_path / "site").glob("task-path-planning-" + "[0-9a-f]" * 12 + ".html"))
    page = page.read_text()
    assert page.count("<tr") - page.count("<thead") >= 1


# --- statistics and hardware ------------------------------------------------------------------


def test_bootstrap_is_seeded_and_overlapping_entries_share_a_rank() -> None:
    values = [1.02, 0.97, 1.10, 1.05]
    assert bootstrap_interval(values, "geomean") == bootstrap_interval(values, "geomean")
    low, high = bootstrap_interval(values, "geomean")
    assert 0.97 <= low < high <= 1.10
    # a and b trade wins benchmark by benchmark: they share a rank; c loses everywhere
    a = [("b1", 0, 1.1), ("b2", 0, 0.9), ("b3", 0, 1.3)]
    b = [("b1", 0, 1.0), ("b2", 0, 1.0), ("b3", 0, 1.2)]
    c = [("b1", 0, 0.6), ("b2", 0, 0.5), ("b3", 0, 0.8)]
    assert ranks([a, b, c], "geomean") == [1, 1, 3]


def test_calibration_record(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """A steady workload (the reference machine's seconds every run) on an idle machine:
    speed 1.0, the record a manifest holds; fewer than 5 runs are refused."""
    from optgym.leaderboard import hardware

    monkeypatch.setattr(hardware, "reference_workload", lambda: hardware.REFERENCE_SECONDS)
    monkeypatch.setattr(hardware, "busy_seconds", lambda: None)
    record = calibrate(repeats=5)
    assert record["calibration"] == 1.0 and set(record) == {"class", "calibration", "fingerprint"}
    assert record["class"] == hardware_class(record["fingerprint"], record["calibration"])
    assert record["class"].endswith("/speed+0")
    assert main(["calibrate", "--json", "--repeats", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"]["cores"] >= 1
    with pytest.raises(ValueError, match="at least 5"):
        calibrate(repeats=1)


def test_hardware_dependent_tasks_need_a_calibration(tmp_path: Path) -> None:
    """A seconds-budget task's manifest without a hardware record is refused before any
    replay."""
    from optgym.leaderboard.verify import check_submission

    task = get_task("lns-set-cover")
    manifest = {
        "schema_version": 1, "task": task.name, "name": "x", "agent": "scip",
        "stochastic": False, "authors": ["a"], "code": {"url": "", "commit": ""},
        "training_data": [], "license": "MIT",
        "versions": {"optgym": "0.1.0", "datasets": ["generator://set-cover-s-v0"]},
        "track": "open",
    }  # fmt: skip
    row = {"task": task.name, "agent": "scip", "benchmark": board_benchmarks(task)[0],
           "seed": 0, "error": None, "state": {"versions": {"optgym": "0.1.0"}}}  # fmt: skip
    sub = submission_module.Submission(manifest, json.dumps(row).encode() + b"\n", tmp_path)
    record = check_submission(sub)
    assert not record.ok and any("hardware class" in p for p in record.problems)


# --- hidden rounds (the closed track) ---------------------------------------------------


NETWORK_PROBE = """
import socket

from optgym.agents import make_agent


class NetworkProbe:
    \"\"\"CEM that fails its episode when a socket reaches the test's loopback server.\"\"\"

    problems = ("optgym/PathPlanning2D-v0",)

    def __init__(self, port: int = 0):
        self.port = port

    def solve(self, env, benchmark, budget, seed=None):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
        except OSError:
            return make_agent("cem").solve(env, benchmark, budget, seed)
        raise RuntimeError("the episode reached the network")
"""


def test_hidden_round_runs_offline_and_replays_after_reveal(
    board: Board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))  # the organizer's secrets
    record = make_round(TASK, "r1", size=1, seeds=3)
    assert len(record["commitment"]) == 64
    public = (round_dir(TASK, "r1") / "round.json").read_text()
    secret = json.loads(secret_path(TASK, "r1").read_text())
    assert str(secret["seeds"][0]) not in public  # nothing of the secret is published
    hidden = secret["benchmarks"]
    assert len(hidden) == 1 and hidden[0] not in board_benchmarks(get_task(TASK))
    with pytest.raises(ValueError, match="exists already"):
        make_round(TASK, "r1")

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(NETWORK_PROBE)
    try:
        agent = f"probe:NetworkProbe:port={server.getsockname()[1]}"
        out = rerun(agent, TASK, "r1", tmp_path / "closed", code=code, progress=False)
        rows = _rows(out)
        assert len(rows) == 3 and all(r["error"] is None for r in rows), rows[0]["error"]
        assert (out / "code" / "probe.py").read_text() == NETWORK_PROBE  # what was run
        # the same agent, run outside the sandbox, reaches the server
        from optgym.bench import run_bench

        monkeypatch.syspath_prepend(str(code))
        plain = run_bench(TASK, [agent], hidden, [0], get_task(TASK).budget,
                          tmp_path / "plain.jsonl", progress=False)  # fmt: skip
        assert "reached the network" in plain[0]["error"]
    finally:
        server.close()
    assert _manifest(out)["track"] == "closed" and _manifest(out)["round"] == "r1"
    assert verify_submission(out, record="-").ok  # the organizer holds the secret

    # anyone else cannot check it before the reveal...
    held = tmp_path / "held.json"
    shutil.move(secret_path(TASK, "r1"), held)
    _refused(out, "not revealed yet")
    shutil.move(held, secret_path(TASK, "r1"))
    path = reveal(TASK, "r1")
    shutil.move(secret_path(TASK, "r1"), held)
    # ...and can after it
    assert verify_submission(out, record="-").ok
    # a reveal that does not match the commitment is refused
    forged = json.loads(path.read_text())
    forged["seeds"][0] += 1
    path.write_text(json.dumps(forged))
    _refused(out, "does not match its published commitment")


# --- every field of a line, tampered ------------------------------------------------------


def test_every_field_of_a_line_tampered(cem_entry: Path, tmp_path: Path) -> None:
    """Tamper each field of the first line (a sample of the fuzzer's changes): verify
    refuses it, or the change is one the replay cannot tell from the genuine line (a time,
    a budget counter, the seed, an action that replays to the same reward), and then the
    entry's id differs and the scores the board ranks are the genuine ones."""
    from optgym.tamper import tamperings

    genuine = verify_submission(cem_entry, record="-")
    rows = _rows(cem_entry)
    changes = list(tamperings(rows[0]))
    refused = passed = 0
    for what, tampered in changes[:: max(1, len(changes) // 40)]:
        entry = _copy(cem_entry, tmp_path / str(refused + passed))
        _write_rows(entry, [tampered, *rows[1:]])
        record = verify_submission(entry, record="-", reruns=1)
        if not record.ok:
            refused += 1
            continue
        passed += 1
        assert record.submission != genuine.submission, what
        scores = sorted((b, x) for b, _, x in record.scores)
        assert scores == sorted((b, x) for b, _, x in genuine.scores), what
    assert refused >= 30 and refused > 3 * passed, (refused, passed)
