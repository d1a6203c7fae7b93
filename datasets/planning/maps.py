"""2D navigation maps as pure data, and their two file formats.

A :class:`NavMap` is a square world ``[0, size]^2`` with axis-aligned rectangular walls
(a wall of zero width or height is a line segment), a start point, one to
:data:`MAX_GOALS` goals (a disk with a payoff), the longest move the robot may make in
one step (``move_bound``) and the number of moves of an episode (``horizon``). The world's
border is a wall too. Construction validates everything and raises ``ValueError`` naming
the problem (a start or goal inside a wall, no goal, a bad number).

JSON format (``.json``; the canonical form is :meth:`NavMap.to_json`)::

    {
      "format": "optgym-nav2d-v0",            (optional)
      "name": "bug-trap",                     (optional; default: the file's stem)
      "size": 10.0,                           world side W: the world is [0, W]^2
      "start": [2.0, 5.0],                    strictly inside the world, outside every wall
      "goals": [{"position": [8.0, 5.0],      centre, outside every wall
                 "radius": 0.5,               (optional, default 0.5)
                 "payoff": 1.0}],             (optional, default 1.0) reward scale
      "walls": [[x0, y0, x1, y1], ...],       rectangles with x0 <= x1 and y0 <= y1
      "move_bound": 0.5,                      (optional, default 0.5) longest move per step
      "horizon": 100                          (optional, default 100) moves per episode
    }

Text grid format (``.txt``): one line per row of 1 x 1 cells, top row first, with ``#`` a
wall cell, ``.`` a free cell, ``S`` the start (exactly one) and ``G`` a goal (one or more;
payoff 1, radius 0.5), at cell centres. Every row has the same length; blank lines at the
end are ignored. The world side is the larger of the row count and the row length; cells
beyond a non-square grid are walls. Row ``r`` (from the top) of ``n`` rows covers
``y`` in ``[n - 1 - r, n - r]``; column ``c`` covers ``x`` in ``[c, c + 1]``. A grid map
has ``move_bound`` 0.5 and ``horizon`` 100.

Limits (checked before or while parsing, each with a ``ValueError`` naming the field and the
limit, never echoing the file's contents): a file of at most :data:`MAX_FILE_BYTES`; JSON
nested at most :data:`MAX_JSON_DEPTH` deep (the format needs 4); a world side in
[:data:`MIN_SIZE`, :data:`MAX_SIZE`]; at most :data:`MAX_WALLS` walls (a grid's ``#``
cells count as the rectangles they merge into) with coordinates in ``[-size, 2 size]``;
grids at most :data:`MAX_GRID_SIDE` cells a side; finite numbers everywhere; the start
strictly inside the world and outside every wall; 1 to :data:`MAX_GOALS` goals inside the
world and outside every wall, radius in (0, size], payoff in (0, :data:`MAX_PAYOFF`];
``move_bound`` in (0, size]; ``horizon`` an integer in [1, :data:`MAX_HORIZON`]; a name of
at most :data:`MAX_NAME_CHARS` characters. Reset and one step on the largest map allowed
take well under 2 s (``tests/test_hostile_planning.py`` measures it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optgym.datasets.dataset import Benchmark
from optgym.datasets.files import check_json_depth, read_limited

FORMAT = "optgym-nav2d-v0"
MAX_GOALS = 4
MAX_HORIZON = 1_000
MAX_FILE_BYTES = 2**20  # a map with MAX_WALLS walls is about 100 KB of JSON
MAX_JSON_DEPTH = 8
MIN_SIZE = 1.0
MAX_SIZE = 100_000.0
MAX_WALLS = 1_000
MAX_GRID_SIDE = 256
MAX_PAYOFF = 1e6
MAX_NAME_CHARS = 200
DEFAULT_RADIUS = 0.5
DEFAULT_MOVE_BOUND = 0.5
DEFAULT_HORIZON = 100
GRID_CHARS = ("#", ".", "S", "G")

Wall = tuple[float, float, float, float]


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an integer beyond float's range
        raise ValueError(f"{what} must be a finite number; it is too large") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got NaN or inf")
    return value


def _point(what: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        got = f"{len(value)} items" if isinstance(value, (list, tuple)) else type(value).__name__
        raise ValueError(f"{what} must be a pair [x, y], got {got}")
    return (_number(f"{what} x", value[0]), _number(f"{what} y", value[1]))


def _show(p: tuple[float, float]) -> str:
    """A validated point (finite floats) for an error message."""
    return f"[{p[0]!r}, {p[1]!r}]"


def _in_wall(point: tuple[float, float], wall: Wall) -> bool:
    """Whether ``point`` lies in the closed rectangle ``wall``."""
    x, y = point
    return wall[0] <= x <= wall[2] and wall[1] <= y <= wall[3]


@dataclass(frozen=True)
class Goal:
    """A goal disk: centre ``(x, y)``, ``radius`` and the ``payoff`` that scales its reward."""

    x: float
    y: float
    radius: float = DEFAULT_RADIUS
    payoff: float = 1.0

    @property
    def position(self) -> tuple[float, float]:
        return (self.x, self.y)


@dataclass(frozen=True)
class NavMap:
    """A validated navigation map (see the module docstring for the meaning of each field)."""

    name: str
    size: float
    walls: tuple[Wall, ...]
    start: tuple[float, float]
    goals: tuple[Goal, ...]
    move_bound: float = DEFAULT_MOVE_BOUND
    horizon: int = DEFAULT_HORIZON

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or len(self.name) > MAX_NAME_CHARS:
            raise ValueError(f"map name must be a string of at most {MAX_NAME_CHARS} characters")
        size = _number("map size", self.size)
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(
                f"map size (the world side) must be in [{MIN_SIZE:g}, {MAX_SIZE:g}], got {size:g}"
            )
        if not isinstance(self.walls, (list, tuple)):
            raise ValueError(f"'walls' must be a list, got {type(self.walls).__name__}")
        if len(self.walls) > MAX_WALLS:
            raise ValueError(
                f"the map has {len(self.walls)} walls (a grid's '#' cells count as the "
                f"rectangles they merge into); at most {MAX_WALLS} allowed"
            )
        walls = []
        for i, wall in enumerate(self.walls):
            if not isinstance(wall, (list, tuple)) or len(wall) != 4:
                raise ValueError(f"wall {i} must be [x0, y0, x1, y1] (four numbers)")
            x0, y0, x1, y1 = (_number(f"wall {i} coordinate", v) for v in wall)
            if x0 > x1 or y0 > y1:
                raise ValueError(f"wall {i} needs x0 <= x1 and y0 <= y1")
            if min(x0, y0) < -size or max(x1, y1) > 2 * size:
                raise ValueError(
                    f"wall {i} reaches too far outside the world; coordinates must be in "
                    f"[-size, 2 size] = [{-size:g}, {2 * size:g}]"
                )
            walls.append((x0, y0, x1, y1))
        object.__setattr__(self, "walls", tuple(walls))
        object.__setattr__(self, "size", size)
        start = _point("start", self.start)
        object.__setattr__(self, "start", start)
        if not (0 < start[0] < size and 0 < start[1] < size):
            raise ValueError(f"start {_show(start)} is outside the world (0, {size:g})^2")
        for i, wall in enumerate(self.walls):
            if _in_wall(start, wall):
                raise ValueError(f"start {_show(start)} is inside wall {i}")
        if not isinstance(self.goals, (list, tuple)):
            raise ValueError(f"'goals' must be a list, got {type(self.goals).__name__}")
        object.__setattr__(self, "goals", tuple(self.goals))
        if not self.goals:
            raise ValueError(f"the map has no goal; it needs 1 to {MAX_GOALS}")
        if len(self.goals) > MAX_GOALS:
            raise ValueError(f"the map has {len(self.goals)} goals; at most {MAX_GOALS} allowed")
        for g, goal in enumerate(self.goals):
            if not isinstance(goal, Goal):
                raise ValueError(f"goal {g} must be a Goal, got {type(goal).__name__}")
            centre = _point(f"goal {g} position", goal.position)
            if not (0 <= centre[0] <= size and 0 <= centre[1] <= size):
                raise ValueError(f"goal {g} {_show(centre)} is outside the world [0, {size:g}]^2")
            radius = _number(f"goal {g} radius", goal.radius)
            if not 0 < radius <= size:
                raise ValueError(f"goal {g} radius must be in (0, size] = (0, {size:g}]")
            payoff = _number(f"goal {g} payoff", goal.payoff)
            if not 0 < payoff <= MAX_PAYOFF:
                raise ValueError(f"goal {g} payoff must be in (0, {MAX_PAYOFF:g}]")
            for i, wall in enumerate(self.walls):
                if _in_wall(centre, wall):
                    raise ValueError(f"goal {g} {_show(centre)} is inside wall {i}")
            if math.hypot(start[0] - centre[0], start[1] - centre[1]) <= radius:
                raise ValueError(f"start {_show(start)} is already inside goal {g}")
        bound = _number("move_bound", self.move_bound)
        if not 0 < bound <= size:
            raise ValueError(
                f"move_bound must be positive and at most the world side: (0, {size:g}]"
            )
        object.__setattr__(self, "move_bound", bound)
        h = self.horizon
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= MAX_HORIZON:
            got = h if isinstance(h, int) and not isinstance(h, bool) else type(h).__name__
            raise ValueError(f"horizon must be an integer in [1, {MAX_HORIZON}], got {got}")

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "size": self.size,
            "start": list(self.start),
            "goals": [
                {"position": [g.x, g.y], "radius": g.radius, "payoff": g.payoff} for g in self.goals
            ],
            "walls": [list(w) for w in self.walls],
            "move_bound": self.move_bound,
            "horizon": self.horizon,
        }

    def to_json(self) -> str:
        """Canonical JSON: the same map gives the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: Any, name: str = "map") -> NavMap:
        """A map from the JSON format's dict; ``ValueError`` naming a missing or bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"a map must be a JSON object, got {type(data).__name__}")
        allowed = ("format", "name", "size", "start", "goals", "walls", "move_bound", "horizon")
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise ValueError(
                f"unknown map fields ({_field_names(unknown)}); allowed: {', '.join(allowed)}"
            )
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"unknown map 'format'; expected {FORMAT!r}")
        missing = [k for k in ("size", "start", "goals") if k not in data]
        if missing:
            what = "no goal" if missing == ["goals"] else f"missing fields {missing}"
            raise ValueError(f"the map has {what}; required: size, start, goals")
        goals_data = data["goals"]
        if not isinstance(goals_data, list):
            raise ValueError(f"'goals' must be a list, got {type(goals_data).__name__}")
        if len(goals_data) > MAX_GOALS:
            raise ValueError(f"the map has {len(goals_data)} goals; at most {MAX_GOALS} allowed")
        goals = []
        for g, item in enumerate(goals_data):
            if not isinstance(item, dict) or "position" not in item:
                raise ValueError(f"goal {g} must be an object with a 'position'")
            extra = [k for k in item if k not in ("position", "radius", "payoff")]
            if extra:
                raise ValueError(
                    f"goal {g} has unknown fields ({_field_names(extra)}); allowed: position, "
                    "radius, payoff"
                )
            x, y = _point(f"goal {g} position", item["position"])
            goals.append(
                Goal(
                    x,
                    y,
                    _number(f"goal {g} radius", item.get("radius", DEFAULT_RADIUS)),
                    _number(f"goal {g} payoff", item.get("payoff", 1.0)),
                )
            )
        walls = data.get("walls", [])
        if not isinstance(walls, list):
            raise ValueError(f"'walls' must be a list, got {type(walls).__name__}")
        label = data.get("name", name)
        if not isinstance(label, str):
            raise ValueError(f"map 'name' must be a string, got {type(label).__name__}")
        return cls(
            name=label,
            size=data["size"],
            walls=tuple(tuple(w) if isinstance(w, list) else w for w in walls),
            start=data["start"],
            goals=tuple(goals),
            move_bound=data.get("move_bound", DEFAULT_MOVE_BOUND),
            horizon=data.get("horizon", DEFAULT_HORIZON),
        )

    @classmethod
    def from_json(cls, text: str | bytes, name: str = "map") -> NavMap:
        """A map from JSON text, within :data:`MAX_FILE_BYTES` and :data:`MAX_JSON_DEPTH`
        (both checked before parsing); ``ValueError`` naming the field at fault."""
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(
                f"map {name!r} is {len(data)} bytes of JSON; at most {MAX_FILE_BYTES} allowed"
            )
        check_json_depth(data, f"map {name!r} (the format needs 4)", MAX_JSON_DEPTH)
        try:
            parsed = json.loads(data)
        except UnicodeDecodeError:
            raise ValueError(f"map {name!r} is not valid JSON: not UTF-8 text") from None
        except json.JSONDecodeError as e:  # e.msg names the syntax error, not the text
            raise ValueError(
                f"map {name!r} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
            ) from None
        except (ValueError, RecursionError):  # e.g. an integer of thousands of digits
            raise ValueError(
                f"map {name!r} is not valid JSON (a number or nesting too large)"
            ) from None
        return cls.from_dict(parsed, name)


def _field_names(keys: list[Any]) -> str:
    """Unknown field names for an error: names that look like names, else a count."""
    shown = [repr(k) for k in keys if isinstance(k, str) and len(k) <= 40 and k.isidentifier()]
    if len(shown) < len(keys):
        shown.append(f"{len(keys) - len(shown)} with odd names")
    return ", ".join(shown[:10])


def grid_walls(rows: list[str], size: int) -> list[Wall]:
    """The ``#`` cells of a grid (plus the area beyond a non-square grid) as few
    rectangles: runs of wall cells in a row, merged down while the next row repeats them."""
    n = len(rows)
    walls: list[Wall] = []
    open_runs: dict[tuple[int, int], int] = {}  # (c0, c1) -> first row of the rectangle

    def close(run: tuple[int, int], first: int, last: int) -> None:
        walls.append((float(run[0]), float(n - 1 - last), float(run[1]), float(n - first)))

    for r, row in enumerate(rows):
        runs, c = set(), 0
        while c < len(row):
            if row[c] == "#":
                c0 = c
                while c < len(row) and row[c] == "#":
                    c += 1
                runs.add((c0, c))
            else:
                c += 1
        for run in [k for k in open_runs if k not in runs]:
            close(run, open_runs.pop(run), r - 1)
        for run in sorted(runs - set(open_runs)):
            open_runs[run] = r
    for run, first in sorted(open_runs.items()):
        close(run, first, n - 1)
    width = len(rows[0])
    if width < size:  # a tall grid: wall off the right
        walls.append((float(width), 0.0, float(size), float(size)))
    if n < size:  # a wide grid: wall off the top
        walls.append((0.0, float(n), float(size), float(size)))
    return walls


def parse_grid(text: str, name: str = "grid") -> NavMap:
    """A map from the text grid format; ``ValueError`` naming the row and column at fault
    (at most :data:`MAX_GRID_SIDE` cells a side, checked before the cells are read)."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"grid map {name!r} is empty")
    if len(lines) > MAX_GRID_SIDE:
        raise ValueError(
            f"grid map {name!r} has {len(lines)} rows; at most {MAX_GRID_SIDE} allowed"
        )
    width = len(lines[0])
    n = len(lines)
    for r, row in enumerate(lines):
        if len(row) != width:
            raise ValueError(
                f"grid map {name!r} is ragged: row {r + 1} has {len(row)} cells, row 1 has {width}"
            )
    if width > MAX_GRID_SIDE:
        raise ValueError(f"grid map {name!r} has {width} columns; at most {MAX_GRID_SIDE} allowed")
    start: tuple[float, float] | None = None
    goals: list[Goal] = []
    for r, row in enumerate(lines):
        for c, ch in enumerate(row):
            if ch not in GRID_CHARS:
                raise ValueError(
                    f"grid map {name!r}: unknown character at row {r + 1}, column {c + 1}; "
                    f"allowed: {', '.join(repr(x) for x in GRID_CHARS)}"
                )
            centre = (c + 0.5, n - r - 0.5)
            if ch == "S":
                if start is not None:
                    raise ValueError(
                        f"grid map {name!r} has more than one start 'S' (again at row {r + 1}, "
                        f"column {c + 1})"
                    )
                start = centre
            elif ch == "G":
                if len(goals) == MAX_GOALS:
                    raise ValueError(
                        f"grid map {name!r} has more than {MAX_GOALS} goals 'G' (again at row "
                        f"{r + 1}, column {c + 1}); at most {MAX_GOALS} allowed"
                    )
                goals.append(Goal(*centre))
    if start is None:
        raise ValueError(f"grid map {name!r} has no start 'S'")
    if not goals:
        raise ValueError(f"grid map {name!r} has no goal 'G'")
    size = max(n, width)
    return NavMap(name, float(size), tuple(grid_walls(lines, size)), start, tuple(goals))


def read_map_bytes(source: Benchmark | str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a map file (a benchmark's, checked against its sha256, or a path), its
    size checked before it is read."""
    return read_limited(source, "map file", limit)


def map_from_bytes(data: bytes, path: Path) -> NavMap:
    """The map of a file's bytes: the text grid format for ``.txt``, JSON otherwise."""
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"map file {path} is {len(data)} bytes; at most {MAX_FILE_BYTES} allowed")
    if path.suffix.lower() == ".txt":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"grid map {path} is not UTF-8 text") from None
        return parse_grid(text, path.stem)
    return NavMap.from_json(data, path.stem)


def load_map(path: str | Path) -> NavMap:
    """Read a map file (at most :data:`MAX_FILE_BYTES`): the text grid format for ``.txt``,
    JSON otherwise."""
    path = Path(path)
    return map_from_bytes(read_map_bytes(path), path)
