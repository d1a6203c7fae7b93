"""Ranks that tell entries apart, and hardware classes that hold: what a user sees running
two real path-planning entries, reading the board OptGym ships, building its site, replaying
an entry from anywhere, and calibrating a loaded machine.

- Entries of one pool rank on paired differences over the test set (benchmark by benchmark,
  seed by seed where both ran the same seeds), so an entry that wins on every benchmark
  ranks above one whose marginal interval overlaps its own.
- A closed round is a pool of its own; the terminal table and the site say each pool.
- One number per entry on a page: the table's score is the one the plots draw.
- The site's replay command works from any folder.
- ``optgym calibrate`` refuses a machine whose runs spread or that others keep busy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optgym.cli import main
from optgym.leaderboard import hardware
from optgym.leaderboard.board import Board
from optgym.leaderboard.run import run_entry
from optgym.leaderboard.stats import paired_interval, pairing, ranks, score, shape_label

TASK = "path-planning"


@pytest.fixture(scope="module")
def two_entries(tmp_path_factory: pytest.TempPathFactory) -> Board:
    """A board holding two real open-track path-planning entries, MPPI and random shooting
    (3 seeds on each of the 3 benchmarks, about 0.3 s an episode), added as a user adds them
    (verified by replay)."""
    base = tmp_path_factory.mktemp("ranks")
    board = Board(base / "board", base / "index.sqlite")
    for agent in ("mppi", "shooting"):
        out = run_entry(TASK, agent, base / agent, authors=["Test Author"], progress=False)
        record, folder = board.add(out, reruns=0)
        assert record.ok and folder is not None, record.problems
    return board


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Board:
    """The board OptGym ships, indexed into a scratch database (its files only read)."""
    return Board(db=tmp_path_factory.mktemp("shipped") / "index.sqlite")


def _named(entries: list[dict[str, Any]], agent: str, track: str = "open") -> dict[str, Any]:
    (found,) = [e for e in entries if e["agent"] == agent and e["track"] == track]
    return found


def test_paired_differences_rank_what_overlapping_intervals_cannot(two_entries: Board) -> None:
    entries = two_entries.entries(TASK)
    mppi, shooting = _named(entries, "mppi"), _named(entries, "shooting")
    # Their marginal intervals overlap (how hard each benchmark is spreads both)...
    assert mppi["low"] < shooting["high"] and shooting["low"] < mppi["high"]
    # ...but MPPI does better benchmark by benchmark, seed by seed.
    assert pairing(mppi["scores"], shooting["scores"]) == "seed"
    low, high = paired_interval(mppi["scores"], shooting["scores"], "mean")
    assert 0 < low <= high
    assert (mppi["rank"], shooting["rank"]) == (1, 2)
    assert shooting["vs_above"] == (low, high)
    assert mppi["test_set"] == shooting["test_set"] == "3x3"
    # the same ranks whichever order the entries come in
    assert ranks([shooting["scores"], mppi["scores"]], "mean") == [2, 1]
    table = two_entries.table(TASK)
    assert "open track: 2 entries, ranked on paired differences (per benchmark and seed)" in table
    rows = [line.split() for line in table.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [(r[0], r[4], r[-2]) for r in rows] == [("1", "3x3", "mppi"), ("2", "3x3", "shooting")]
    assert f"[{low:.4f}, {high:.4f}]" in table


def test_a_closed_round_is_ranked_in_its_own_pool(shipped: Board) -> None:
    """The shipped path-planning board: CMA-ES and CEM on the open track, CEM on the hidden
    round 2026-11 (other maps): the closed entry is ranked only among its round's entries,
    and the table and the site show it under its own heading."""
    entries = shipped.entries(TASK)
    closed = _named(entries, "cem", "closed")
    open_ = [e for e in entries if e["track"] == "open"]
    assert closed["rank"] == 1 and closed["pool_label"] == "closed track, round 2026-11"
    assert {e["pool"] for e in open_} == {"open"} and closed["pool"] != "open"
    assert set(closed["per_benchmark"]).isdisjoint(open_[0]["per_benchmark"])
    assert closed["test_set"] == "2x3" and closed["vs_above"] is None
    table = shipped.table(TASK)
    heading = table.index("closed track, round 2026-11: one entry, ranked alone")
    assert all(table.index(e["id"][:12]) < heading < table.index(closed["id"][:12])
               for e in open_)  # fmt: skip
    site = next(t for t in shipped.site_data()["tasks"] if t["name"] == TASK)
    assert [e["pool"] for e in site["entries"]] == ["open", "open", closed["pool"]]


def test_deterministic_and_stochastic_entries_pair_on_benchmark_means(shipped: Board) -> None:
    """Pass ordering: -Oz and -O3 are deterministic (1 seed), random search stochastic (3
    seeds): pairs with random search compare per-benchmark means, and the table says so."""
    entries = shipped.entries("pass-ordering")
    oz, o3, search = (_named(entries, agent) for agent in ("oz", "o3", "random"))
    assert pairing(oz["scores"], o3["scores"]) == "seed"
    assert pairing(oz["scores"], search["scores"]) == "benchmark"
    assert (oz["test_set"], search["test_set"]) == ("4x1", "4x3")
    assert oz["rank"] == search["rank"] == 1 and o3["rank"] == 3  # both beat -O3
    assert "where two entries ran the same seeds, else on the means" in shipped.table(
        "pass-ordering"
    )


def test_table_site_and_plots_show_one_score(
    shipped: Board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random search's geomean over all 12 lines (0.8710) is not its score (0.8819, the
    geomean over benchmarks of each one's mean): the table, the site's table and both plots
    show the score and nothing else."""
    import matplotlib.axes

    from optgym.leaderboard.site import build_site
    from optgym.problem import aggregate

    entries = shipped.entries("pass-ordering")
    search = _named(entries, "random")
    over_lines = aggregate([x for _, _, x in search["scores"]], "geomean")
    assert round(search["score"], 4) == 0.8819 and round(over_lines, 4) == 0.8710
    assert search["score"] == score(search["scores"], "geomean")
    assert "0.8819" in shipped.table("pass-ordering") and "0.8710" not in shipped.table()

    drawn: dict[str, list[Any]] = {"bars": [], "points": []}
    barh, scatter = matplotlib.axes.Axes.barh, matplotlib.axes.Axes.scatter

    def spy_barh(self: Any, y: Any, width: Any, *args: Any, **kwargs: Any) -> Any:
        drawn["bars"].append(list(width))
        return barh(self, y, width, *args, **kwargs)

    def spy_scatter(self: Any, x: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
        drawn["points"].append((kwargs.get("marker"), kwargs.get("label"), list(y)))
        return scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "barh", spy_barh)
    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", spy_scatter)
    data = shipped.site_data()
    data["tasks"] = [t for t in data["tasks"] if t["name"] == "pass-ordering"]
    (task,) = data["tasks"]
    paths = build_site(data, tmp_path)
    by_name = {e["name"]: e for e in entries}
    assert drawn["bars"] == [[by_name[e["name"]]["score"] for e in task["entries"]]]
    means = [ys for marker, label, ys in drawn["points"] if marker == "D"]
    assert means == [list(by_name[e["name"]]["per_benchmark"].values()) for e in task["entries"]]
    assert aggregate(means[[e["agent"] for e in task["entries"]].index("random")], "geomean") \
        == pytest.approx(search["score"])  # fmt: skip
    page = next(p for p in paths if p.name.startswith("task-")).read_text()
    assert page.count(">0.8819<") == 1 and "0.8710" not in page and "0.871<" not in page
    assert "4x3" in page and "ranked among" in page


def test_the_replay_command_works_from_any_folder(
    shipped: Board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The site's command names the entry by its id, which resolves in the board OptGym
    ships: run from an unrelated folder it replays, and leaves the signed record alone."""
    monkeypatch.delenv("OPTGYM_BOARD", raising=False)
    site = next(t for t in shipped.site_data()["tasks"] if t["name"] == TASK)
    cmaes = _named(site["entries"], "cmaes")
    command = cmaes["replay_command"]
    assert command == f"optgym leaderboard verify --entry {cmaes['id'][:16]}"
    record = shipped.entry_dir(cmaes["id"]) / "verification.json"
    before = record.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main([*command.split()[1:], "--reruns", "0"]) == 0
    assert "VERIFIED" in capsys.readouterr().out
    assert record.read_bytes() == before and not list(tmp_path.iterdir())
    assert main(["leaderboard", "verify", "--entry", "0123456789abcdef"]) == 1
    assert "0 entries have an id starting with 0123456789abcdef" in capsys.readouterr().err
    assert main(["leaderboard", "verify"]) == 1
    assert "--entry ID" in capsys.readouterr().err


def test_committed_calibrations_still_index_and_rank(shipped: Board) -> None:
    """Records calibrated before the spread rule keep their class: LNS and schedule entries
    are ranked within it, never classified again."""
    for task in ("lns-auction", "schedule-search"):
        entries = shipped.entries(task)
        for entry in entries:
            folder = shipped.entry_dir(entry["id"])
            manifest = json.loads((folder / "manifest.json").read_text())
            assert entry["hardware_class"] == manifest["hardware"]["class"]
            assert entry["hardware_class"] in entry["pool_label"] and entry["rank"] >= 1


# --- calibration ----------------------------------------------------------------------------


def _workload(monkeypatch: pytest.MonkeyPatch, seconds: list[float], busy: float = 0.0) -> None:
    """The reference workload reports ``seconds`` run after run (the first is the warm-up;
    each run sleeps 5 ms), while other processes keep ``busy`` of the machine's cores busy."""
    import time

    runs = iter(seconds)

    def workload() -> float:
        time.sleep(0.005)
        return next(runs)

    monkeypatch.setattr(hardware, "reference_workload", workload)
    cores = hardware.fingerprint()["cores"]

    def busy_seconds() -> tuple[float, float]:
        return time.perf_counter() * cores * busy, 0.0

    monkeypatch.setattr(hardware, "busy_seconds", busy_seconds)


def test_a_steady_machine_is_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs within a few percent (one hiccup does not move the median): classified."""
    _workload(monkeypatch, [0.3, 0.050, 0.051, 0.049, 0.050, 0.09, 0.052, 0.050, 0.049, 0.051])
    record = hardware.calibrate()
    assert set(record) == {"class", "calibration", "fingerprint"}
    assert record["calibration"] == 2.0 and record["class"].endswith("/speed+1")


def test_a_machine_whose_runs_spread_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The user's session: speeds of 0.62 to 1.61 within a minute. Refused, saying how much
    they spread and what to do; nothing printed as a class."""
    seconds = [0.1, 0.161, 0.105, 0.067, 0.062, 0.069, 0.16, 0.1, 0.07, 0.12]
    _workload(monkeypatch, seconds)
    with pytest.raises(hardware.LoadedMachineError) as refused:
        hardware.calibrate()
    message = str(refused.value)
    for needle in ("this machine is loaded", "spread", "over 9 runs", "at most 10%",
                   "idle machine", "--repeats 18"):  # fmt: skip
        assert needle in message, message
    _workload(monkeypatch, seconds[:6])
    assert main(["calibrate", "--repeats", "5"]) == 1
    out = capsys.readouterr()
    assert "spread" in out.err and "hardware class" not in out.out


def test_a_steadily_loaded_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run equally slow while others keep the cores busy: no spread shows it, the
    machine's own accounting does."""
    _workload(monkeypatch, [0.3] * 10, busy=0.6)
    with pytest.raises(hardware.LoadedMachineError, match="other processes kept 60% of its"):
        hardware.calibrate()
    with pytest.raises(ValueError, match="at least 5"):
        hardware.calibrate(repeats=3)


def test_shape_label() -> None:
    lines = [("a", 0, 1.0), ("a", 1, 1.0), ("b", 0, 1.0)]
    assert shape_label(lines) == "2x1-2" and shape_label([]) == "0x0"
