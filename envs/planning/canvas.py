"""Pictures of a navigation map as RGB arrays, drawn with NumPy alone (no figure library).

Walls are dark grey, goals green (paler for a smaller payoff), the start blue, sampled end
points orange and paths red (the best one) or grey (others). The picture is square with
``y`` upwards.
"""

from __future__ import annotations

import math

import numpy as np

from optgym.datasets.planning import NavMap

BACKGROUND = (250, 250, 250)
WALL = (60, 60, 60)
GOAL = (60, 170, 80)
PALE_GOAL = (190, 235, 195)
START = (40, 90, 220)
END_POINT = (245, 150, 40)
BEST_PATH = (220, 30, 30)
OTHER_PATH = (150, 150, 150)


class Canvas:
    """A ``pixels`` x ``pixels`` RGB picture of the world ``[0, size]^2``."""

    def __init__(self, size: float, pixels: int = 400):
        self.size = size
        self.pixels = pixels
        self.scale = pixels / size
        self.image = np.empty((pixels, pixels, 3), dtype=np.uint8)
        self.image[:] = BACKGROUND

    def to_pixels(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) float pixel coordinates of world points (..., 2)."""
        xy = np.asarray(xy, dtype=np.float64)
        return (self.size - xy[..., 1]) * self.scale, xy[..., 0] * self.scale

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: tuple) -> None:
        """Fill a world rectangle; a zero-width one is still a pixel wide."""
        p = self.pixels
        c0 = min(max(math.floor(x0 * self.scale), 0), p - 1)
        c1 = min(max(math.ceil(x1 * self.scale), c0 + 1), p)
        r0 = min(max(math.floor((self.size - y1) * self.scale), 0), p - 1)
        r1 = min(max(math.ceil((self.size - y0) * self.scale), r0 + 1), p)
        self.image[r0:r1, c0:c1] = color

    def disk(self, x: float, y: float, radius_px: float, color: tuple) -> None:
        row, col = self.to_pixels(np.array([x, y]))
        r = max(radius_px, 1.0)
        lo_r, hi_r = max(int(row - r), 0), min(int(row + r) + 2, self.pixels)
        lo_c, hi_c = max(int(col - r), 0), min(int(col + r) + 2, self.pixels)
        if lo_r >= hi_r or lo_c >= hi_c:
            return
        rr, cc = np.mgrid[lo_r:hi_r, lo_c:hi_c]
        mask = (rr + 0.5 - row) ** 2 + (cc + 0.5 - col) ** 2 <= r * r
        self.image[lo_r:hi_r, lo_c:hi_c][mask] = color

    def points(self, xy: np.ndarray, color: tuple, half: int = 1) -> None:
        """Small squares (side ``2 * half + 1`` pixels) at world points (N, 2)."""
        if len(xy) == 0:
            return
        row, col = self.to_pixels(xy)
        row, col = row.astype(np.intp), col.astype(np.intp)
        last = self.pixels - 1
        for dr in range(-half, half + 1):
            for dc in range(-half, half + 1):
                self.image[np.clip(row + dr, 0, last), np.clip(col + dc, 0, last)] = color

    def polyline(self, xy: np.ndarray, color: tuple, half: int = 1) -> None:
        """A path through world points (N, 2), sampled every half pixel."""
        xy = np.asarray(xy, dtype=np.float64)
        if len(xy) < 2:
            self.points(xy, color, half)
            return
        a, b = xy[:-1], xy[1:]
        steps = np.maximum(np.ceil(np.hypot(*(b - a).T) * self.scale * 2), 1).astype(np.intp)
        seg = np.repeat(np.arange(len(a)), steps + 1)
        offsets = np.arange(len(seg)) - np.repeat(np.cumsum(steps + 1) - (steps + 1), steps + 1)
        frac = (offsets / np.repeat(steps, steps + 1))[:, None]
        self.points(a[seg] + (b[seg] - a[seg]) * frac, color, half)


def draw_map(
    nav: NavMap,
    best_path: np.ndarray | None = None,
    end_points: np.ndarray | None = None,
    other_paths: list[np.ndarray] | tuple = (),
    pixels: int = 400,
) -> np.ndarray:
    """An RGB picture (pixels, pixels, 3) of ``nav`` with sampled end points, other paths
    and the best path, in that order (the best on top)."""
    canvas = Canvas(nav.size, pixels)
    top = max(g.payoff for g in nav.goals)
    for g in nav.goals:
        w = g.payoff / top  # a goal that pays less is paler
        color = tuple(int(w * c + (1 - w) * p) for c, p in zip(GOAL, PALE_GOAL, strict=True))
        canvas.disk(g.x, g.y, g.radius * canvas.scale, color)
    for x0, y0, x1, y1 in nav.walls:
        canvas.rect(x0, y0, x1, y1, WALL)
    if end_points is not None and len(end_points):
        canvas.points(np.asarray(end_points), END_POINT, half=1)
    for path in other_paths:
        canvas.polyline(path, OTHER_PATH, half=0)
    if best_path is not None and len(best_path):
        canvas.polyline(best_path, BEST_PATH, half=1)
    canvas.disk(nav.start[0], nav.start[1], max(3.0, 0.15 * canvas.scale), START)
    return canvas.image
