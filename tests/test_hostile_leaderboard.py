"""The leaderboard under attack: verification that cannot be steered (open-track lies caught
by reruns in the sandbox, a closed track only the verifier's rerun gives, records the board
ranks only when its verifier signed them, an index that cannot be injected into), nothing
written through a link, nothing imported from the working folder, no file oracle."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from optgym.cli import main
from optgym.leaderboard.board import Board
from optgym.leaderboard.rounds import make_round, rerun, reveal
from optgym.leaderboard.run import run_entry
from optgym.leaderboard.signing import PUBLIC_KEY, sign
from optgym.leaderboard.submission import RESULTS, load_submission, write_submission
from optgym.leaderboard.verify import verify_submission
from optgym.sandbox import unavailable
from optgym.tamper import budget_relabelled, cherry_picked, relabelled

TASK = "path-planning"


def _needs_sandbox(test: Any) -> Any:
    """A test of the sandbox's checks: where the sandbox cannot run, it fails saying why."""

    def run(*args: Any, **kwargs: Any) -> Any:
        why = unavailable()
        assert why is None, f"the sandbox cannot run here: {why}"
        return test(*args, **kwargs)

    return functools.wraps(test)(run)


needs_sandbox = _needs_sandbox


@pytest.fixture(scope="module")
def mppi_entry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mppi") / "entry"
    run_entry(TASK, "mppi", out, authors=["Test Author"], license="MIT", progress=False)
    return out


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Board:
    monkeypatch.setenv("OPTGYM_BOARD", str(tmp_path / "board"))
    return Board(tmp_path / "board", tmp_path / "index.sqlite")


def _rows(entry: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (entry / RESULTS).read_text().splitlines()]


def _lie(entry: Path, folder: Path, manifest: dict, rows: list[dict]) -> Path:
    results = b"".join(json.dumps({k: v for k, v in r.items() if k != "tag"}).encode() + b"\n"
                       for r in rows)  # fmt: skip
    return write_submission(folder, manifest, results)


# --- W5: open-track lies that every line's replay accepts -----------------------------------


@needs_sandbox
def test_open_track_lies_are_caught_by_reruns(mppi_entry: Path, tmp_path: Path) -> None:
    """mppi's lines relabelled as cem, the best seed copied over the others, a run with three
    times the budget labelled with the task's: every line replays, and the reruns refuse."""
    sub = load_submission(mppi_entry)
    rows = _rows(mppi_entry)
    assert verify_submission(mppi_entry, record="-", reruns=3).ok
    lies = {
        "relabel": relabelled(sub.manifest, rows, "cem"),
        "cherry-pick": cherry_picked(sub.manifest, rows),
        "budget": budget_relabelled(sub.manifest, rows, _task(), 3, tmp_path),
    }
    for what, (manifest, lines) in lies.items():
        entry = _lie(mppi_entry, tmp_path / what, manifest, lines)
        replayed = verify_submission(entry, record="-", reruns=0)
        assert replayed.ok, (what, replayed.problems)  # the replay alone cannot tell
        record = verify_submission(entry, record="-", reruns=len(lines))
        assert not record.ok, what
        assert "run again in the sandbox from the submission's code" in record.problems[0]


def _task() -> Any:
    from optgym.tasks import get_task

    return get_task(TASK)


@needs_sandbox
def test_tamper_tells_a_submission_its_lies(mppi_entry: Path, capsys: Any) -> None:
    """``python -m optgym.tamper --submission``: the relabel, seed cherry-pick and budget-label
    lies, each refused."""
    from optgym.tamper import main as tamper_main

    argv = ["--submission", str(mppi_entry), "--relabel-as", "cem", "--budget-factor", "3"]
    assert tamper_main(argv) == 0
    out = capsys.readouterr().out
    assert "genuine_submission_verified: True" in out
    assert "submission_lies_refused: 3/3 (target: all)" in out
    for what in ("relabelled as cem", "best seed copied", "run with 3x the budget"):
        assert f"refused: {what}" in out


@needs_sandbox
def test_a_false_determinism_claim_by_a_plugin_is_refused(tmp_path: Path) -> None:
    """A plug-in named json:JSONDecoder, declared deterministic with one seed: its class is
    asked in the sandbox (it is no agent), never believed."""
    entry = tmp_path / "entry"
    run_entry(TASK, "cem", entry, progress=False)
    manifest = json.loads((entry / "manifest.json").read_text())
    rows = [dict(r, agent="json:JSONDecoder") for r in _rows(entry)]
    manifest.update(agent="json:JSONDecoder", stochastic=False)
    _lie(entry, tmp_path / "lie", manifest, rows)
    record = verify_submission(tmp_path / "lie", record="-")
    assert not record.ok
    assert "plug-in whose module 'json' the submission does not ship" in record.problems[0]
    code = tmp_path / "code"
    (code / "json").mkdir(parents=True)
    (code / "json" / "__init__.py").write_text("class JSONDecoder:\n    pass\n")
    manifest["code_files"] = {}
    folder = tmp_path / "shipped"
    from optgym.leaderboard.submission import code_hashes, read_code

    manifest["code_files"] = code_hashes(read_code(code))
    write_submission(folder, manifest, (tmp_path / "lie" / RESULTS).read_bytes(), code=code)
    record = verify_submission(folder, record="-")
    assert not record.ok and "does not resolve in the sandbox" in " ".join(record.problems)


def test_shipped_code_must_match_its_hashes(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "mine.py").write_text("X = 1\n")
    entry = tmp_path / "entry"
    run_entry(TASK, "cem", entry, progress=False, code=code)
    assert load_submission(entry).code == {"mine.py": b"X = 1\n"}
    (entry / "code" / "mine.py").write_text("X = 2\n")
    (entry / "code" / "extra.py").write_text("")
    record = verify_submission(entry, record="-", reruns=0)
    assert not record.ok
    assert "1 code files do not match their sha256" in " ".join(record.problems)
    assert "1 code files are not in the manifest's code_files" in " ".join(record.problems)
    os.symlink("/etc/passwd", entry / "code" / "link.py")
    with pytest.raises(ValueError, match="holds a link or special file"):
        load_submission(entry)
    with pytest.raises(ValueError, match="is a plug-in: give the folder of its code"):
        run_entry(TASK, "mymod:Agent", tmp_path / "x", seeds=[0], progress=False)


# --- W3, W7: the board ranks what its verifier signed ---------------------------------------


def test_the_board_ranks_only_signed_records(
    mppi_entry: Path, board: Board, tmp_path: Path
) -> None:
    """W3: a planted entry with {"ok": true}, or signed by another key, is left out; W7: a
    row injected into the index is dropped when the index is read."""
    record, folder = board.add(mppi_entry, reruns=0)
    assert record.ok and (board.root / PUBLIC_KEY).exists()
    assert [e["id"] for e in board.entries(TASK)] == [folder.name]
    saved = json.loads((folder / "verification.json").read_text())
    assert set(saved["signature"]) == {"key", "ed25519"}

    # a planted entry: genuine files under a fake score, its record unsigned
    sub = load_submission(mppi_entry)
    rows = _rows(mppi_entry)
    for row in rows:
        row["score"] = 9.0
    planted = board.root / "entries" / TASK / "planted"
    write_submission(planted, sub.manifest, b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    planted_id = load_submission(planted).id
    planted = planted.rename(planted.with_name(planted_id))
    fake = {**saved, "submission": planted_id, "scores": [[b, s, 9.0] for b, s, _ in
                                                           saved["scores"]]}  # fmt: skip
    fake.pop("signature")
    (planted / "verification.json").write_text(json.dumps({**fake, "ok": True}))
    with pytest.warns(UserWarning, match="carries no signature of the board's verifier"):
        board.rebuild()
    assert [e["id"] for e in board.entries(TASK)] == [folder.name]
    # signed, but by another board's key
    other = tmp_path / "other-board"
    other.mkdir()
    (planted / "verification.json").write_text(json.dumps(sign(fake, "verification", other)))
    with pytest.warns(UserWarning, match="signed by another key"):
        board.rebuild()
    assert [e["id"] for e in board.entries(TASK)] == [folder.name]
    # a signed record edited afterwards
    edited = {**saved, "scores": [[b, s, 9.0] for b, s, _ in saved["scores"]]}
    (folder / "verification.json").write_text(json.dumps(edited))
    with pytest.warns(UserWarning, match="does not match it"):
        board.rebuild()
    assert board.entries(TASK) == []
    (folder / "verification.json").write_text(json.dumps(saved))
    board.rebuild()

    # W7: a row injected into the index (write access to the cache) never shows
    con = sqlite3.connect(board.db)
    con.execute("INSERT INTO entries SELECT 'injected', task, 'injected', agent, track, round, "
                "status, stochastic, optgym_version, verified_version, verified_at, "
                "verify_seconds, hardware_class, calibration, authors, code_url, license, "
                "problems FROM entries")  # fmt: skip
    con.commit()
    con.close()
    with pytest.warns(UserWarning, match="changed outside OptGym"):
        assert [e["id"] for e in board.entries(TASK)] == [folder.name]


def test_only_the_boards_organizer_files_entries(
    mppi_entry: Path, board: Board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board.add(mppi_entry, reruns=0)
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "another-installation"))
    with pytest.raises(RuntimeError, match="only the board's organizer files and re-verifies"):
        board.add(mppi_entry, reruns=0)
    assert main(["leaderboard", "add", str(mppi_entry), "--reruns", "0",
                 "--board", str(board.root)]) == 1  # fmt: skip


def test_a_new_organizer_retires_the_key_and_old_records_still_check(
    mppi_entry: Path, board: Board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine without the key's private half retires it: what it signed still ranks,
    what the new key signs ranks, and a malformed or overlong key file is refused."""
    from optgym.leaderboard.signing import MAX_RETIRED, new_key, public_keys, signature_problem

    _, first = board.add(mppi_entry, reruns=0)
    old_id = json.loads((board.root / PUBLIC_KEY).read_text())["id"]
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "new-machine"))
    with pytest.raises(RuntimeError, match="retires the key first"):
        board.add(mppi_entry, reruns=0)
    new_id = new_key(board.root)
    assert new_id != old_id and len(public_keys(board.root)) == 2
    saved = json.loads((first / "verification.json").read_text())
    assert signature_problem(saved, "verification", board.root) is None  # the retired key's
    board.rebuild()  # the retired key's record still ranks
    assert [e["id"] for e in board.entries(TASK)] == [first.name]
    # what this machine files from now on is signed by the new key
    signed = sign({k: v for k, v in saved.items() if k != "signature"}, "verification",
                  board.root)  # fmt: skip
    assert signed["signature"]["key"] == new_id
    assert signature_problem(signed, "verification", board.root) is None
    (first / "verification.json").write_text(json.dumps(signed))
    board.rebuild()
    assert [e["id"] for e in board.entries(TASK)] == [first.name]
    # a key file that lists a key under another id, or too many retired keys: refused
    key_file = board.root / PUBLIC_KEY
    good = json.loads(key_file.read_text())
    bad = {**good, "retired": [{**good["retired"][0], "id": "0" * 16}]}
    key_file.write_text(json.dumps(bad))
    assert "another key id" in str(signature_problem(signed, "verification", board.root))
    bad = {**good, "retired": good["retired"] * (MAX_RETIRED + 1)}
    key_file.write_text(json.dumps(bad))
    assert "retired keys; allowed" in str(signature_problem(signed, "verification", board.root))


def test_the_replayer_keeps_each_replays_reward_for_the_second_replay(mppi_entry: Path) -> None:
    """Verification's second replay must give back what the first replay gave on this machine
    (not the line's own float, which another machine may round otherwise within the task's
    tolerance): the replayer keeps each replay's reward, by task, state and budget use."""
    from optgym.validate import Replayer, validate_results

    rows = _rows(mppi_entry)
    with Replayer() as replayer:
        verdicts = validate_results(mppi_entry / RESULTS, accept_untagged=True,
                                    replayer=replayer)  # fmt: skip
        assert [v for _, v, _ in verdicts] == ["passed"] * len(rows)
        for row in rows:  # an exact env: what the replay gave is the line's reward
            assert replayer.replayed_reward(row["task"], row) == row["reward"]
        other = {**rows[0], "budget_used": {**rows[0]["budget_used"], "calls": 1}}
        assert replayer.replayed_reward(rows[0]["task"], other) is None  # never replayed


# --- W4: the closed track is the verifier's -----------------------------------------------


@needs_sandbox
def test_the_closed_track_cannot_be_claimed(
    board: Board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the reveal, a self-run entry that says track closed is refused; the verifier's
    own rerun carries an attestation, which no edit of its lines survives."""
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    make_round(TASK, "r1", size=1, seeds=3)
    genuine = rerun("cem", TASK, "r1", tmp_path / "closed", progress=False)
    assert verify_submission(genuine, record="-").ok
    reveal(TASK, "r1")
    # a self-run entry on the revealed round, claiming the closed track
    from optgym.bench import run_bench
    from optgym.leaderboard.rounds import round_content

    content = round_content(_task(), "r1")
    claimed = tmp_path / "claimed"
    claimed.mkdir()
    run_bench(TASK, ["cem"], content["benchmarks"], content["seeds"], _task().budget,
              claimed / RESULTS, progress=False)  # fmt: skip
    manifest = json.loads((genuine / "manifest.json").read_text())
    write_submission(claimed, manifest, (claimed / RESULTS).read_bytes())
    record = verify_submission(claimed, record="-")
    assert not record.ok
    assert "closed-track entries are made by optgym leaderboard rerun only" in record.problems[0]
    # the genuine attestation copied beside other lines does not fit them
    shutil.copy(genuine / "attestation.json", claimed / "attestation.json")
    assert "attests another submission" in verify_submission(claimed, record="-").problems[0]
    record, folder = board.add(genuine)
    assert record.ok and (folder / "attestation.json").exists()
    (entry,) = board.entries(TASK)
    assert entry["track"] == "closed"


# --- S1: nothing submitted runs in the verifier's process -----------------------------------


@needs_sandbox
def test_rerun_never_imports_the_plugin_here(tmp_path: Path, monkeypatch: Any) -> None:
    """A plug-in whose module-level code calls a loopback listener: the listener never hears
    from it, neither when rerun describes it nor when it runs."""
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPTGYM_BOARD", str(tmp_path / "board"))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    code = tmp_path / "code"
    code.mkdir()
    (code / "caller.py").write_text(textwrap.dedent(f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {server.getsockname()[1]}), timeout=1)
        except OSError:
            pass
        from optgym.agents.planning.search import CrossEntropyMethod as Agent
    """))
    make_round(TASK, "r2", size=1, seeds=3)
    try:
        out = rerun("caller:Agent", TASK, "r2", tmp_path / "out", code=code, progress=False)
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    assert all(r["error"] is None for r in _rows(out))
    assert "caller" not in __import__("sys").modules


def test_validate_and_verify_import_nothing_from_the_working_folder(
    mppi_entry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3: a queue.py in the submission folder (the working folder) never runs."""
    entry = tmp_path / "entry"
    shutil.copytree(mppi_entry, entry)
    marker = tmp_path / "ran"
    (entry / "queue.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (entry / "json.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.chdir(entry)
    assert main(["leaderboard", "verify", ".", "--reruns", "0", "--record", "-"]) == 0
    assert main(["validate", RESULTS, "--accept-untagged"]) == 0
    assert not marker.exists()


# --- S4, S6: no write-through, no oracle ----------------------------------------------------


def test_verify_and_reverify_never_write_through_links(
    mppi_entry: Path, board: Board, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    entry = tmp_path / "entry"
    shutil.copytree(mppi_entry, entry)
    (entry / "verification.json").unlink(missing_ok=True)
    os.symlink(victim, entry / "verification.json")
    assert verify_submission(entry, reruns=0).ok
    assert victim.read_text() == "precious\n" and not (entry / "verification.json").is_symlink()
    _, folder = board.add(mppi_entry, reruns=0)
    for name in ("verification.json", "stale"):
        (folder / name).unlink(missing_ok=True)
        os.symlink(victim, folder / name)
    board.reverify(everything=True, reruns=0)
    assert victim.read_text() == "precious\n"
    assert not (folder / "verification.json").is_symlink()


def test_validate_is_no_file_oracle(mppi_entry: Path, tmp_path: Path, capsys: Any) -> None:
    """S6: a line naming a local file as its benchmark tells nothing of it: not whether it
    exists, not its hash or size."""
    secret = tmp_path / "secret.txt"
    secret.write_text("organizer only")
    row = _rows(mppi_entry)[0]
    outputs = []
    for target in (secret, tmp_path / "missing.txt"):
        uri = f"file://{target}"
        lie = {**row, "benchmark": uri, "state": {**row["state"], "benchmark": uri}}
        path = tmp_path / "lie.jsonl"
        path.write_text(json.dumps(lie) + "\n")
        assert main(["validate", str(path), "--split", "any", "--accept-untagged"]) == 1
        out = capsys.readouterr().out
        assert "not named on the command line" in out
        outputs.append(out.replace(str(target), "<path>"))
    assert outputs[0] == outputs[1]  # the same answer for a file there and one not there
    import hashlib

    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in outputs[0]


def test_a_round_needs_enough_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTGYM_BOARD", str(tmp_path / "board"))
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"seeds in \[3, 20\]"):
        make_round(TASK, "r1", seeds=1)
