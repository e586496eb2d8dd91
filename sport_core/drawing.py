"""Top-down drawings of reach-avoid episodes: the layout and the agent's path, with Pillow, no OpenGL.

World coordinates are metres with y up (as the env reports ``agent_pos``, ``goal_pos`` and ``hazard_pos``);
images are uint8 RGB arrays (H, W, 3) with row 0 at the top. An ``extent`` (xmin, xmax, ymin, ymax) is the
part of the floor an image shows; it is scaled uniformly (one pixel size in x and y, discs stay round) and
centred, the spare pixels on the long side padded with more floor, never stretched.

What a drawing shows, back to front:

* a light grey floor (:data:`FLOOR`) with a faint line every metre (:data:`GRID`; ``grid=False`` drops it);
* each hazard disc to scale, translucent blue-purple (:data:`HAZARD`, as safety-gymnasium colours hazards);
* the goal disc to scale, green (:data:`GOAL`);
* the start (the first position) as a hollow triangle, the path as a dark grey polyline (:data:`PATH`);
* the agent as a dot with a white rim: red (:data:`VIOLATION`) inside a hazard disc or after an episode
  that ended in violation, green (:data:`REACHED`) inside the goal or after one that reached it, otherwise
  near-black (:data:`AGENT`).

Shapes are drawn at :data:`SUPERSAMPLE` times the size and box-filtered down (antialiasing). Films
(:func:`topdown_frames`) draw the background once and add one path segment per frame at that resolution,
so a frame costs the same at step 10 as at step 1000 (well under 1 ms at 256×256).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from sport_core.paths import Layout

Extent = tuple[float, float, float, float]
RGB = tuple[int, int, int]

FLOOR: RGB = (236, 236, 231)
GRID: RGB = (216, 216, 210)
HAZARD: tuple[int, int, int, int] = (96, 72, 222, 110)  # RGBA: blended over the floor
HAZARD_EDGE: RGB = (72, 52, 190)
GOAL: tuple[int, int, int, int] = (34, 184, 60, 180)
GOAL_EDGE: RGB = (18, 128, 38)
PATH: RGB = (70, 70, 70)
START: RGB = (20, 20, 20)
AGENT: RGB = (20, 20, 20)
VIOLATION: RGB = (222, 32, 32)
REACHED: RGB = (0, 140, 30)
RIM: RGB = (255, 255, 255)
SUPERSAMPLE = 3

#: matplotlib colours of :func:`draw_layout` (the same palette as the images).
MPL_HAZARD = tuple(c / 255 for c in HAZARD_EDGE)
MPL_GOAL = tuple(c / 255 for c in GOAL_EDGE)


def arena_extent(layout: Layout | None, xy: Any, margin: float = 0.25) -> Extent:
    """A square (xmin, xmax, ymin, ymax), in metres, holding every layout disc and every (finite) position of
    ``xy`` ((n, 2); may be empty) with ``margin`` metres to spare, centred on them; at least 1 m a side."""
    lows, highs = [], []
    points = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points):
        lows.append(points.min(axis=0))
        highs.append(points.max(axis=0))
    for x, y, r in _discs(layout):
        lows.append(np.array([x - r, y - r]))
        highs.append(np.array([x + r, y + r]))
    if not lows:
        return (-0.5, 0.5, -0.5, 0.5)
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    centre = (low + high) / 2
    half = max(float(np.max(high - low)) / 2 + margin, 0.5)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def pixel_of(extent: Extent, size: Sequence[int], xy: Any) -> np.ndarray:
    """Where world points ``xy`` ((..., 2), metres) fall in an image of ``size`` [width, height] showing
    ``extent``: (column, row) in continuous pixel units (pixel (i, j) covers [i, i+1) × [j, j+1))."""
    xmin, xmax, ymin, ymax = _check_extent(extent)
    width, height = _check_size(size)
    scale = min(width / (xmax - xmin), height / (ymax - ymin))  # pixels per metre
    xy = np.asarray(xy, dtype=np.float64)
    col = width / 2 + (xy[..., 0] - (xmin + xmax) / 2) * scale
    row = height / 2 - (xy[..., 1] - (ymin + ymax) / 2) * scale
    return np.stack([col, row], axis=-1)


def topdown_image(
    layout: Layout | None,
    xy: Any,
    *,
    size: Sequence[int] = (256, 256),
    extent: Extent | None = None,
    outcome: str | None = None,
    grid: bool = True,
) -> np.ndarray:
    """The whole episode in one picture, uint8 (H, W, 3) for ``size`` = [width, height]: the layout (None:
    floor only), the path ``xy`` ((n, 2) positions in metres, the first one after reset; n = 0 draws the
    layout alone), the start and the final position as a dot coloured by ``outcome`` (``"violation"``: red,
    ``"goal"``: green, anything else: near-black; None: by where the agent stands, see the module doc).
    ``extent`` defaults to :func:`arena_extent` of the layout and the path."""
    points = _check_xy(xy, allow_empty=True)
    scene = _Scene(layout, points, size, extent, grid)
    if len(points) > 1:
        scene.draw.line([tuple(p) for p in scene.px], fill=PATH, width=scene.line_width, joint="curve")
    if len(points):
        scene.dot(scene.draw, scene.px[-1], _outcome_color(outcome) or scene.color_at(points[-1]))
    return np.asarray(scene.hi.reduce(SUPERSAMPLE))


def topdown_frames(
    layout: Layout | None,
    xy: Any,
    *,
    size: Sequence[int] = (256, 256),
    extent: Extent | None = None,
    grid: bool = True,
) -> np.ndarray:
    """A film of the episode, uint8 (T, H, W, 3) with T = len(xy) (n ≥ 1 positions, metres): frame t shows the
    layout, the start, the path from xy[0] to xy[t] and the agent at xy[t] (red inside a hazard, green inside
    the goal, else near-black). Every frame shows the same ``extent`` (default: :func:`arena_extent` of the
    layout and the whole path), so the camera never moves and pixels away from the agent never change."""
    points = _check_xy(xy, allow_empty=False)
    scene = _Scene(layout, points, size, extent, grid)
    k = SUPERSAMPLE
    trail = np.array(scene.hi.reduce(k))  # background and path so far, at the output size
    frames = np.empty((len(points), *trail.shape), dtype=np.uint8)
    half = scene.line_width / 2
    for t in range(len(points)):
        if t:
            a, b = scene.px[t - 1], scene.px[t]
            scene.draw.line([tuple(a), tuple(b)], fill=PATH, width=scene.line_width)
            scene.draw.ellipse([b[0] - half, b[1] - half, b[0] + half, b[1] + half], fill=PATH)  # round joint
            box = scene.box(np.minimum(a, b) - half - 1, np.maximum(a, b) + half + 1)
            if box is not None:
                x0, y0, x1, y1 = box
                trail[y0 // k : y1 // k, x0 // k : x1 // k] = np.asarray(scene.hi.crop(box).reduce(k))
        frames[t] = trail
        # the agent is drawn on a copy of the region it covers, so that the trail never keeps it
        p, r = scene.px[t], scene.dot_radius + scene.rim + 1
        box = scene.box(p - r, p + r)
        if box is not None:
            x0, y0, x1, y1 = box
            patch = scene.hi.crop(box)
            scene.dot(ImageDraw.Draw(patch), p - (x0, y0), scene.color_at(points[t]))
            frames[t, y0 // k : y1 // k, x0 // k : x1 // k] = np.asarray(patch.reduce(k))
    return frames


def draw_layout(
    ax: Any,
    layout: Layout | None,
    *,
    hazard_color: Any = MPL_HAZARD,
    goal_color: Any = MPL_GOAL,
    alpha: float = 0.25,
    linewidth: float = 1.0,
) -> None:
    """Draw ``layout``'s discs to scale on matplotlib axes ``ax`` (data units = metres, equal aspect): each
    hazard and the goal as a translucent fill (``alpha``) and an opaque outline, two patches a disc.
    ``None`` draws nothing (the aspect is still made equal)."""
    from matplotlib.patches import Circle

    ax.set_aspect("equal")
    if layout is None:
        return
    discs = [(h, hazard_color) for h in layout.hazards]
    if layout.goal is not None:
        discs.append((layout.goal, goal_color))
    for (x, y, r), color in discs:
        ax.add_patch(Circle((x, y), r, color=color, alpha=alpha, linewidth=0))
        ax.add_patch(Circle((x, y), r, fill=False, color=color, linewidth=linewidth))


# -- internals ----------------------------------------------------------------------------------------------


def _discs(layout: Layout | None) -> list[tuple[float, float, float]]:
    if layout is None:
        return []
    return list(layout.hazards) + ([layout.goal] if layout.goal is not None else [])


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    width, height = (int(v) for v in size)
    if width < 1 or height < 1 or (width, height) != tuple(size):
        raise ValueError(f"size must be [width, height] in whole pixels, each at least 1; got {list(size)}")
    return width, height


def _check_extent(extent: Extent) -> Extent:
    xmin, xmax, ymin, ymax = (float(v) for v in extent)
    if not (xmax > xmin and ymax > ymin) or not all(map(math.isfinite, (xmin, xmax, ymin, ymax))):
        raise ValueError(f"extent must be finite (xmin, xmax, ymin, ymax) with xmax > xmin, ymax > ymin; got {extent}")
    return xmin, xmax, ymin, ymax


def _check_xy(xy: Any, allow_empty: bool) -> np.ndarray:
    points = np.asarray(xy, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or (len(points) == 0 and not allow_empty):
        raise ValueError(f"positions must be an array (n, 2) of x, y in metres, n >= 1; got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("positions must be finite")
    return points


def _outcome_color(outcome: str | None) -> RGB | None:
    if outcome is None:
        return None
    return {"violation": VIOLATION, "goal": REACHED}.get(outcome, AGENT)


class _Scene:
    """The background of one drawing at :data:`SUPERSAMPLE` × the size, with its world → pixel map."""

    def __init__(self, layout: Layout | None, points: np.ndarray, size: Sequence[int], extent: Any, grid: bool):
        width, height = _check_size(size)
        extent = _check_extent(extent if extent is not None else arena_extent(layout, points))
        k = SUPERSAMPLE
        self.layout = layout
        self.size = (width * k, height * k)
        self.scale = min(width / (extent[1] - extent[0]), height / (extent[3] - extent[2])) * k  # px per metre
        self.centre = ((extent[0] + extent[1]) / 2, (extent[2] + extent[3]) / 2)
        short = min(width, height)
        self.line_width = max(k, round(short / 160 * k))
        self.dot_radius = max(2.5, short / 60) * k
        self.rim = max(1, round(short / 256)) * k / 2
        self.hi = Image.new("RGB", self.size, FLOOR)
        self.draw = ImageDraw.Draw(self.hi, "RGBA")
        if grid:
            self._grid()
        for disc in layout.hazards if layout is not None else ():
            self._disc(disc, HAZARD, HAZARD_EDGE)
        if layout is not None and layout.goal is not None:
            self._disc(layout.goal, GOAL, GOAL_EDGE)
        self.px = self.to_px(points)
        if len(points):
            self._start(self.px[0])

    def to_px(self, xy: np.ndarray) -> np.ndarray:
        """World points (..., 2) → hi-res (column, row): :func:`pixel_of` × :data:`SUPERSAMPLE`."""
        col = self.size[0] / 2 + (xy[..., 0] - self.centre[0]) * self.scale
        row = self.size[1] / 2 - (xy[..., 1] - self.centre[1]) * self.scale
        return np.stack([col, row], axis=-1)

    def _grid(self) -> None:
        # a line at every whole metre the image shows, padding included
        half_w, half_h = self.size[0] / 2 / self.scale, self.size[1] / 2 / self.scale
        cx, cy = self.centre
        for x in range(math.ceil(cx - half_w), math.floor(cx + half_w) + 1):
            col = self.size[0] / 2 + (x - cx) * self.scale
            self.draw.line([(col, 0), (col, self.size[1])], fill=GRID, width=SUPERSAMPLE)
        for y in range(math.ceil(cy - half_h), math.floor(cy + half_h) + 1):
            row = self.size[1] / 2 - (y - cy) * self.scale
            self.draw.line([(0, row), (self.size[0], row)], fill=GRID, width=SUPERSAMPLE)

    def _disc(self, disc: tuple[float, float, float], fill: Any, edge: RGB) -> None:
        (cx, cy), r = self.to_px(np.array(disc[:2], dtype=np.float64)), disc[2] * self.scale
        self.draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=edge, width=SUPERSAMPLE)

    def _start(self, p: np.ndarray) -> None:
        r = self.dot_radius * 1.3
        corners = [(p[0], p[1] - r), (p[0] - r * 0.87, p[1] + r / 2), (p[0] + r * 0.87, p[1] + r / 2)]
        self.draw.polygon(corners, outline=START, width=max(1, self.line_width * 2 // 3))

    def color_at(self, point: np.ndarray) -> RGB:
        """The agent's colour where it stands: red in a hazard, green in the goal, else near-black."""
        if self.layout is None:
            return AGENT
        if any(math.hypot(point[0] - x, point[1] - y) <= r for x, y, r in self.layout.hazards):
            return VIOLATION
        goal = self.layout.goal
        if goal is not None and math.hypot(point[0] - goal[0], point[1] - goal[1]) <= goal[2]:
            return REACHED
        return AGENT

    def dot(self, draw: ImageDraw.ImageDraw, p: np.ndarray, color: RGB) -> None:
        r = self.dot_radius + self.rim
        draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=RIM)
        r = self.dot_radius
        draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=color)

    def box(self, low: np.ndarray, high: np.ndarray) -> tuple[int, int, int, int] | None:
        """The hi-res box covering [low, high], widened to whole output pixels and clipped to the image."""
        k = SUPERSAMPLE
        x0, y0 = (max(0, math.floor(v / k) * k) for v in low)
        x1 = min(self.size[0], math.ceil(high[0] / k) * k)
        y1 = min(self.size[1], math.ceil(high[1] / k) * k)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None
