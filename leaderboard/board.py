"""The leaderboard's store: submission files (the source of truth) and an SQLite index built
from them.

The board is a folder (``$OPTGYM_BOARD``, default the ``board/`` folder of this package,
committed with OptGym): ``entries/<task>/<id>/`` holds each verified submission's
``manifest.json``, ``results.jsonl`` and ``verification.json``; ``rounds/`` the hidden
rounds. The index (SQLite, WAL, strict tables, ``PRAGMA user_version`` = schema version)
lives in the cache and is rebuilt from the files whenever it is missing, of another schema,
or older than them; nothing in it is not also in a file.

>>> board = Board()
>>> board.add(Path("my-entry"))          # verify, then file and index it
>>> print(board.table("path-planning"))
>>> board.reverify()                      # entries verified by another OptGym version
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from optgym.datasets.files import write_file
from optgym.leaderboard import board_dir
from optgym.leaderboard.signing import sign, signature_problem, signing_key
from optgym.leaderboard.submission import MANIFEST, RESULTS, VERIFICATION, load_submission
from optgym.leaderboard.verify import (
    DEFAULT_RERUNS,
    Verification,
    read_verification,
    verify_submission,
)

#: The index's schema version (``PRAGMA user_version``).
SCHEMA_VERSION = 1
STATUSES = ("verified", "stale")
#: What the scores and ranks are, said under the terminal table and on the site.
RANKS_NOTE = (
    "score: the task's aggregate (geomean or mean) over benchmarks of each benchmark's mean "
    "over seeds; its 95% interval resamples the benchmarks, then the seeds within each. "
    "test set: benchmarks x seeds. rank: 1 + the entries of its pool that are better on "
    "paired differences, where the 95% bootstrap interval of the difference excludes 0 (the "
    "log-ratio for a geomean; paired per benchmark and seed where both entries ran the same "
    "seeds, else on the per-benchmark means). vs above: that interval for the entry above "
    "minus this one (a ratio for a geomean). A pool is one track and round (a closed round "
    "is never ranked against the open track), one status, and one hardware class where the "
    "task's scores depend on the machine."
)
# the index's files: the database and SQLite's journals
_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")

_SCHEMA = """
CREATE TABLE entries (
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    name TEXT NOT NULL,
    agent TEXT NOT NULL,
    track TEXT NOT NULL CHECK (track IN ('open', 'closed')),
    round TEXT,
    status TEXT NOT NULL CHECK (status IN ('verified', 'stale')),
    stochastic INTEGER NOT NULL CHECK (stochastic IN (0, 1)),
    optgym_version TEXT NOT NULL,
    verified_version TEXT NOT NULL,
    verified_at TEXT NOT NULL,
    verify_seconds REAL NOT NULL,
    hardware_class TEXT,
    calibration REAL,
    authors TEXT NOT NULL,
    code_url TEXT NOT NULL,
    license TEXT NOT NULL,
    problems TEXT NOT NULL
) STRICT;
CREATE TABLE scores (
    entry TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    benchmark TEXT NOT NULL,
    seed INTEGER NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (entry, benchmark, seed)
) STRICT;
CREATE INDEX entries_task ON entries (task);
"""


#: The board OptGym ships (committed, installed with the package).
_SHIPPED_BOARD = Path(__file__).resolve().parent / "board"


class Board:
    """Entries on file under ``root`` and their index in ``db``."""

    def __init__(self, root: str | Path | None = None, db: str | Path | None = None):
        from optgym.datasets.cache import cache_dir

        self.root = Path(root) if root is not None else board_dir()
        if db is None:
            key = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
            db = cache_dir() / "leaderboard" / f"board-{key}.sqlite"
        self.db = Path(db)

    # --- files ---------------------------------------------------------------------------

    def entry_dirs(self) -> Iterator[Path]:
        """Every ``entries/<task>/<id>`` folder, sorted."""
        base = self.root / "entries"
        if base.is_dir():
            for task in sorted(p for p in base.iterdir() if p.is_dir()):
                yield from sorted(p for p in task.iterdir() if p.is_dir())

    def entry_dir(self, entry_id: str) -> Path:
        """The folder of the entry whose id is or starts with ``entry_id`` (8+ hex digits);
        ``ValueError`` when none or several match."""
        if len(entry_id) < 8 or not all(c in "0123456789abcdef" for c in entry_id):
            raise ValueError("an entry id is 8 to 64 lowercase hex digits")
        found = [p for p in self.entry_dirs() if p.name.startswith(entry_id)]
        if len(found) != 1:
            raise ValueError(f"{len(found)} entries have an id starting with {entry_id}")
        return found[0]

    # --- the index -----------------------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """The index, rebuilt first when it is missing, of another schema, out of date, or
        changed by anything but :meth:`rebuild` (its rows carry this installation's tag)."""
        if self._stale_index():
            self.rebuild()
        elif not self._tag_holds():
            import warnings

            warnings.warn(f"the board index {self.db} was changed outside OptGym: rebuilding "
                          "it from the entry files", stacklevel=3)  # fmt: skip
            self.rebuild()
        con = self._open()
        try:
            yield con
            con.commit()
        finally:
            con.close()

    def _open(self) -> sqlite3.Connection:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self._check_db()
        con = sqlite3.connect(self.db)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    def _files_stamp(self) -> str:
        """What the index was built from: every entry's verification record, by mtime."""
        parts = []
        for folder in self.entry_dirs():
            record = folder / VERIFICATION
            stamp = record.stat().st_mtime_ns if record.exists() else 0
            parts.append(f"{folder.name}:{stamp}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def _db_files_plain(self) -> bool:
        """Whether the index and its journal files are regular files or absent (SQLite
        would follow a link planted there, or block on a FIFO)."""
        import stat

        for suffix in _DB_SUFFIXES:
            try:
                mode = Path(f"{self.db}{suffix}").lstat().st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode):
                return False
        return True

    def _check_db(self) -> None:
        if not self._db_files_plain():
            raise ValueError(f"the board index {self.db} (or its journal) is not a regular "
                             "file; remove it: it is rebuilt from the entry files")  # fmt: skip

    def _stale_index(self) -> bool:
        if not self._db_files_plain() or not self.db.exists():
            return True
        try:
            con = sqlite3.connect(self.db)
            try:
                version = con.execute("PRAGMA user_version").fetchone()[0]
                stamp = con.execute("SELECT value FROM meta WHERE key = 'files'").fetchone()
            finally:
                con.close()
        except sqlite3.DatabaseError:
            return True
        return version != SCHEMA_VERSION or stamp is None or stamp[0] != self._files_stamp()

    def _digest(self, con: sqlite3.Connection) -> str:
        """This installation's tag of every row of the index (:mod:`optgym.integrity`)."""
        from optgym import integrity

        rows = {
            "entries": [list(r) for r in con.execute("SELECT * FROM entries ORDER BY id")],
            "scores": [list(r) for r in con.execute(
                "SELECT * FROM scores ORDER BY entry, benchmark, seed")],
            "files": [list(r) for r in con.execute("SELECT * FROM meta WHERE key = 'files'")],
        }  # fmt: skip
        return integrity.tag(json.dumps(rows, sort_keys=True).encode(), "board-index")

    def _tag_holds(self) -> bool:
        try:
            con = sqlite3.connect(self.db)
            try:
                found = con.execute("SELECT value FROM meta WHERE key = 'tag'").fetchone()
                return found is not None and found[0] == self._digest(con)
            finally:
                con.close()
        except sqlite3.DatabaseError:
            return False

    def rebuild(self) -> int:
        """Make the index anew from the files; returns the entries indexed. An entry folder
        whose files do not hold together (id, record) is left out with a warning."""
        import warnings

        for suffix in _DB_SUFFIXES:
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        con = self._open()
        try:
            con.executescript(_SCHEMA)
            con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
            count = 0
            for folder in self.entry_dirs():
                try:
                    self._index(con, folder)
                    count += 1
                except ValueError as e:
                    warnings.warn(f"board entry {folder.name[:16]} left out: {e}", stacklevel=2)
            con.execute("INSERT INTO meta VALUES ('files', ?)", (self._files_stamp(),))
            con.execute("INSERT INTO meta VALUES ('tag', ?)", (self._digest(con),))
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.commit()
        finally:
            con.close()
        return count

    def _index(self, con: sqlite3.Connection, folder: Path) -> None:
        sub = load_submission(folder)
        if sub.id != folder.name:
            raise ValueError("its files do not hash to its folder's name (changed since added)")
        record = read_verification(folder / VERIFICATION)
        why = signature_problem(record.to_dict(), "verification", self.root)
        if why:
            raise ValueError(f"its verification record is not the board's: {why}")
        if record.submission != sub.id or record.task != folder.parent.name:
            raise ValueError("its verification record is for another submission")
        if not record.ok and not (folder / "stale").exists():
            raise ValueError("its verification record refuses it")
        m = sub.manifest
        hardware = m.get("hardware") or {}
        con.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sub.id, m["task"], m["name"], m["agent"], m["track"], m.get("round"),
                "verified" if record.ok else "stale", int(m["stochastic"]),
                m["versions"]["optgym"], str(record.verifier.get("optgym", "")),
                str(record.verifier.get("time", "")), float(record.seconds),
                hardware.get("class"), hardware.get("calibration"), json.dumps(m["authors"]),
                m["code"]["url"], m["license"], json.dumps(record.problems),
            ),
        )  # fmt: skip
        scores = record.scores if record.ok else _scores_of(sub.results)
        con.executemany(
            "INSERT INTO scores VALUES (?, ?, ?, ?)", [(sub.id, b, s, x) for b, s, x in scores]
        )

    # --- adding and re-verifying -----------------------------------------------------------

    def add(
        self, path: str | Path, replayer: Any = None, log: Callable[[str], None] | None = None,
        reruns: int = DEFAULT_RERUNS,
    ) -> tuple[Verification, Path | None]:  # fmt: skip
        """Verify the submission at ``path`` (``reruns`` open-track episodes run again in the
        sandbox) and, when it passes, copy it into the board with its verification record
        signed by the board's verifier key (:mod:`.signing`: made on the board's first
        entry; ``RuntimeError`` when the board's key is another installation's) and index
        it. Returns the verification and the entry's folder (None when refused)."""
        path = Path(path)
        signing_key(self.root)  # only the board's organizer files entries: fail before work
        record = verify_submission(path, replayer, record="-", log=log, reruns=reruns)
        if not record.ok:
            return record, None
        sub = load_submission(path)
        folder = self.root / "entries" / str(record.task) / sub.id
        self._file(folder, sub, record)
        self.rebuild()
        return record, folder

    def _file(self, folder: Path, sub: Any, record: Verification) -> None:
        """Write the entry's files and its signed record into ``folder`` (by new files
        renamed into place: nothing is written through a link)."""
        from optgym.leaderboard.submission import ATTESTATION, CODE, extract_code

        folder.mkdir(parents=True, exist_ok=True)
        manifest = json.dumps(sub.manifest, indent=2, sort_keys=True) + "\n"
        write_file(folder / MANIFEST, manifest.encode())
        write_file(folder / RESULTS, sub.results)
        if sub.code:
            extract_code(sub, folder / CODE)
        if sub.attestation is not None:
            attestation = json.dumps(sub.attestation, indent=1) + "\n"
            write_file(folder / ATTESTATION, attestation.encode())
        self.file_verification(folder, record)

    def file_verification(self, folder: Path, record: Verification) -> None:
        """Sign ``record`` with the board's key and write it beside the entry in ``folder``;
        mark the entry stale when the record refuses it, unmark it when it passes."""
        signed = sign(record.to_dict(), "verification", self.root)
        write_file(folder / VERIFICATION, (json.dumps(signed, indent=1) + "\n").encode())
        if record.ok:
            (folder / "stale").unlink(missing_ok=True)
        else:
            write_file(folder / "stale", b"the entry no longer replays: see its record\n")

    def reverify(
        self,
        everything: bool = False,
        replayer: Any = None,
        log: Callable[[str], None] | None = None,
        reruns: int = DEFAULT_RERUNS,
    ) -> list[tuple[str, Verification]]:
        """Verify again the entries verified by another OptGym version, or whose task's test
        set has changed since (a new dataset version), or every entry with ``everything``,
        and sign their new records. One that no longer passes is marked stale (a ``stale``
        file beside it), not deleted. Returns (entry folder name, new record) pairs;
        ``RuntimeError`` when the board's key is another installation's."""
        signing_key(self.root)
        out = []
        for folder in list(self.entry_dirs()):
            try:
                old = read_verification(folder / VERIFICATION)
            except ValueError:
                old = None
            if not everything and old is not None and not _outdated(old, folder):
                continue
            if log:
                log(f"re-verifying {folder.parent.name}/{folder.name[:16]}")
            record = verify_submission(folder, replayer, record="-", log=log, reruns=reruns)
            if record.submission:
                self.file_verification(folder, record)
            else:  # its files cannot even be read: nothing to sign
                write_file(folder / "stale", b"the entry no longer replays: see its record\n")
            out.append((folder.name, record))
        self.rebuild()
        return out

    # --- reading ---------------------------------------------------------------------------

    def entries(self, task: str | None = None) -> list[dict[str, Any]]:
        """Every indexed entry (of ``task``) with its scores, statistics and rank."""
        from optgym.tasks import all_tasks

        with self.connect() as con:
            con.row_factory = sqlite3.Row
            rows = [dict(r) for r in con.execute("SELECT * FROM entries ORDER BY task, id")]
            scores: dict[str, list[tuple[str, int, float]]] = {}
            for entry, benchmark, seed, score in con.execute("SELECT * FROM scores"):
                scores.setdefault(entry, []).append((benchmark, seed, score))
        tasks = all_tasks()
        out = []
        for name in sorted({r["task"] for r in rows}):
            if task is not None and name != task:
                continue
            group = [r for r in rows if r["task"] == name]
            if name in tasks:
                out.extend(_with_statistics(tasks[name], group, scores))
        return out

    def table(self, task: str | None = None) -> str:
        """The entries as a text table, task by task and pool by pool (:func:`_pool`), best
        first: rank, score, its 95% interval and the test set it was measured on."""
        from optgym.tasks import all_tasks

        entries = self.entries(task)
        if not entries:
            return "no entries" + (f" for task {task}" if task else "")
        tasks = all_tasks()
        lines = []
        for name in dict.fromkeys(e["task"] for e in entries):
            lines.append(f"{name}: {tasks[name].score_name}")
            above = "vs above" + (" (ratio)" if tasks[name].aggregate == "geomean" else "")
            lines.append(
                f"  {'rank':>4}  {'score':>9}  {'95% interval':>21}  {'test set':>8}  "
                f"{above:>21}  entry"
            )
            group = sorted((e for e in entries if e["task"] == name), key=_order)
            for pool in dict.fromkeys(e["pool"] for e in group):
                members = [e for e in group if e["pool"] == pool]
                lines.append(f"  {members[0]['pool_label']}: {_pool_note(members)}")
                for e in members:
                    interval = f"[{e['low']:.4f}, {e['high']:.4f}]"
                    vs = e["vs_above"]
                    vs_above = f"[{vs[0]:.4f}, {vs[1]:.4f}]" if vs else "-"
                    lines.append(
                        f"  {e['rank']:>4}  {e['score']:>9.4f}  {interval:>21}  "
                        f"{e['test_set']:>8}  {vs_above:>21}  {e['name']} ({e['id'][:12]})"
                    )
            lines.append("")
        lines += textwrap.wrap(RANKS_NOTE, 92)
        return "\n".join(lines).rstrip()

    def site_data(self) -> dict[str, Any]:
        """What :func:`optgym.leaderboard.site.build_site` draws: every task, its test set
        and its entries with statistics, badges and the command that replays each."""
        import datetime

        import optgym
        from optgym.tasks import all_tasks, board_benchmarks, hardware_dependent

        entries = self.entries()
        tasks = []
        for task in all_tasks().values():
            own = sorted((e for e in entries if e["task"] == task.name), key=_order)
            tasks.append({
                "name": task.name, "problem": task.problem, "score_name": task.score_name,
                "aggregate": task.aggregate, "budget": str(task.budget),
                "hardware_dependent": hardware_dependent(task),
                "benchmarks": board_benchmarks(task),
                "reference": list(task.reference) if task.reference else None,
                "entries": [self._site_entry(e) for e in own],
                "after_the_fact": self._after_the_fact(task, own),
            })  # fmt: skip
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"generated": now, "optgym_version": optgym.__version__, "ranks": RANKS_NOTE,
                "tasks": tasks}  # fmt: skip

    def _after_the_fact(self, task: Any, entries: list[dict[str, Any]]) -> dict | None:
        """The problem's ``board_table`` over the task's entries' result lines (each line's
        agent set to its entry's name), as ``{"header": [...], "rows": [[...]]}``; None when
        the problem has none, the task has no entries, or a line or the table cannot be
        made (the site then shows no table; the entries were verified when filed)."""
        from optgym.envs import problems

        problem = problems().get(task.problem)
        if problem is None or problem.board_table is None or not entries:
            return None
        rows: list[dict] = []
        names = [e["name"] for e in entries]
        try:
            for e in entries:
                label = e["name"] if names.count(e["name"]) == 1 else f"{e['name']} {e['id'][:8]}"
                raw = (self.entry_dir(e["id"]) / RESULTS).read_bytes()
                for line in raw.splitlines():
                    row = json.loads(line)
                    if isinstance(row, dict):
                        rows.append({**row, "agent": label})
            header, table = problem.board_table(rows)
        except (OSError, ValueError, KeyError, TypeError, IndexError, ZeroDivisionError):
            return None
        return {"header": [str(h) for h in header], "rows": [list(r) for r in table]}

    def replay_command(self, entry_id: str) -> str:
        """The command that verifies an entry of this board again, from any folder: by its
        id, which resolves in the board OptGym ships (or ``--board``, absolute, for another)."""
        board = "" if self.root.resolve() == _SHIPPED_BOARD else f" --board {self.root.resolve()}"
        return f"optgym leaderboard verify --entry {entry_id[:16]}{board}"

    def _site_entry(self, e: dict[str, Any]) -> dict[str, Any]:
        badges = ["replay-verified"] if e["status"] == "verified" else []
        if e["track"] == "closed" and e["status"] == "verified":
            badges.append("rerun-verified")
        rows = [
            {"agent": e["name"], "benchmark": b, "seed": s, "score": x} for b, s, x in e["scores"]
        ]
        return {
            "id": e["id"], "rank": e["rank"], "name": e["name"], "agent": e["agent"],
            "track": e["track"], "round": e["round"], "pool": e["pool"],
            "pool_label": e["pool_label"], "paired_on": e["paired_on"], "status": e["status"],
            "hardware_class": e["hardware_class"], "optgym_version": e["optgym_version"],
            "score": e["score"], "low": e["low"], "high": e["high"], "vs_above": e["vs_above"],
            "episodes": e["episodes"], "benchmarks": e["benchmarks"], "seeds": e["seeds"],
            "test_set": e["test_set"], "badges": badges,
            "replay_command": self.replay_command(e["id"]), "authors": e["authors"],
            "code_url": e["code_url"], "license": e["license"], "verified_at": e["verified_at"],
            "per_benchmark": e["per_benchmark"], "rows": rows,
        }  # fmt: skip


def _outdated(record: Verification, folder: Path) -> bool:
    """Whether an entry's verification predates this OptGym, or its open-track test set is
    no longer the task's (a dataset's version or the task changed)."""
    import optgym
    from optgym.tasks import all_tasks, board_benchmarks

    if record.verifier.get("optgym") != optgym.__version__:
        return True
    task = all_tasks().get(folder.parent.name)
    if task is None:
        return True
    if (folder / "stale").exists() or not record.ok:
        return False  # stale stays stale until verified with everything=True
    manifest = load_submission(folder).manifest
    tested = {b for b, _, _ in record.scores}
    return manifest.get("track") == "open" and tested != set(board_benchmarks(task))


def _track(entry: dict[str, Any]) -> str:
    return entry["track"] + (f"/{entry['round']}" if entry["round"] else "")


def _pool_note(members: list[dict[str, Any]]) -> str:
    """How a pool's entries were compared: on what pairs, or alone."""
    if len(members) < 2:
        return "one entry, ranked alone"
    return f"{len(members)} entries, ranked on paired differences ({members[0]['paired_on']})"


def _scores_of(results: bytes) -> list[tuple[str, int, float]]:
    """(benchmark, seed, score) of the lines of a stale entry that parse and have a score."""
    out = []
    for raw in results.splitlines():
        try:
            row = json.loads(raw)
            out.append((str(row["benchmark"]), int(row["seed"]), float(row["score"])))
        except (ValueError, TypeError, KeyError, RecursionError):
            continue
    return out


def _pool(task: Any, entry: dict[str, Any]) -> tuple[str, str]:
    """The pool an entry is ranked in, as (key, label): entries of the same track and round
    (the same benchmarks), status, and hardware class where the task is ranked within one."""
    from optgym.tasks import hardware_dependent

    if entry["track"] == "closed":
        label = f"closed track, round {entry['round']}" if entry["round"] else "closed track"
    else:
        label = f"{entry['track']} track"
    key = _track(entry)
    if hardware_dependent(task):
        hardware = entry["hardware_class"] or "(no class)"
        label += f", hardware class {hardware}"
        key += f" @ {hardware}"
    if entry["status"] != "verified":
        label += f" ({entry['status']}: not ranked with verified entries)"
        key += f" ({entry['status']})"
    return key, label


def _pool_order(entry: dict[str, Any]) -> tuple:
    """Pools in display order: the open track first, then closed rounds by name, verified
    before stale, hardware classes by name."""
    return (entry["track"] != "open", entry["round"] or "", entry["status"] != "verified",
            entry["hardware_class"] or "")  # fmt: skip


def _order(entry: dict[str, Any]) -> tuple:
    return (*_pool_order(entry), entry["rank"], -entry["score"], entry["id"])


def _paired_on(members: list[dict[str, Any]]) -> str:
    """What a pool's comparisons paired: benchmark and seed where two entries ran the same
    seeds, per-benchmark means where they did not (1 seed against 3)."""
    from optgym.leaderboard.stats import pairing

    found = {pairing(a["scores"], b["scores"]) for i, a in enumerate(members)
             for b in members[i + 1:]}  # fmt: skip
    if not found:
        return "-"
    if found == {"seed"}:
        return "per benchmark and seed"
    if found == {"benchmark"}:
        return "per benchmark, on the means over seeds"
    return "per benchmark and seed where two entries ran the same seeds, else on the means"


def _with_statistics(
    task: Any, group: list[dict[str, Any]], scores: dict[str, list[tuple[str, int, float]]]
) -> list[dict[str, Any]]:
    """The entries of one task with score, interval, test-set size, pool and rank. Ranks
    come from paired differences (:func:`.stats.ranks`) among the entries of one pool
    (:func:`_pool`: a closed round is never ranked against the open track, nor a stale
    entry against verified ones)."""
    from optgym.leaderboard.stats import (
        benchmark_means,
        interval,
        paired_interval,
        ranks,
        score,
        shape,
        shape_label,
    )

    for entry in group:
        own = scores.get(entry["id"], [])
        entry["per_benchmark"] = benchmark_means(own)
        entry["score"] = score(own, task.aggregate)
        entry["low"], entry["high"] = interval(own, task.aggregate)
        entry["episodes"] = len(own)
        entry["benchmarks"] = shape(own)[0]
        entry["seeds"] = len({s for _, s, _ in own})
        entry["test_set"] = shape_label(own)
        entry["pool"], entry["pool_label"] = _pool(task, entry)
        entry["authors"] = json.loads(entry["authors"])
        entry["scores"] = own
    for key in dict.fromkeys(e["pool"] for e in group):
        members = [e for e in group if e["pool"] == key]
        found = ranks([e["scores"] for e in members], task.aggregate)
        paired_on = _paired_on(members)
        for entry, rank in zip(members, found, strict=True):
            entry["rank"] = rank
            entry["paired_on"] = paired_on
        members.sort(key=_order)
        entry_above = None
        for entry in members:  # the paired evidence behind each step down the pool
            entry["vs_above"] = (
                paired_interval(entry_above["scores"], entry["scores"], task.aggregate)
                if entry_above is not None else None
            )  # fmt: skip
            entry_above = entry
    return group


def clear_board(root: Path) -> None:
    """Remove every entry and round under ``root`` (tests and scratch boards)."""
    for name in ("entries", "rounds"):
        shutil.rmtree(root / name, ignore_errors=True)


__all__ = ["Board", "SCHEMA_VERSION", "clear_board"]
