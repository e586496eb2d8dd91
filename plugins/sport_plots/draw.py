"""``sport draw``: one kept episode of a paths file, as a top-down picture or film (:mod:`sport_core.drawing`).

    sport draw runs/x/sweep/alphas/alpha-1.0.paths.npz --index 12 --out ep12.mp4 --size 320 320 --fps 5

The episode is the ``--episode J``-th of the file (0 when neither is given) or the one whose episode index is
``--index I``. ``--out`` picks the kind by its suffix: ``.png`` a still (the whole path, the final position
coloured by the episode's outcome), ``.mp4`` (H.264, needs the ``video`` extra) or ``.gif`` a film of one
frame per position. The default is ``<paths file stem>-ep<index>.png`` beside the paths file. ``--horizon T``
draws steps 0..T only and judges the outcome by T, as the sweep's figures do at T*.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import numpy as np

from sport_core.errors import SportError

SUFFIXES = (".png", ".mp4", ".gif")


def add_draw_command(subparsers: Any) -> None:
    """Register ``sport draw`` on the CLI's subparsers."""
    draw = subparsers.add_parser(
        "draw",
        help="draw one kept episode of a paths file (png, mp4 or gif)",
        description="Draw an episode of a sport-paths-v1 file top-down: goal and hazards to scale, the agent's "
        "path; a still (.png) or one frame per step (.mp4, .gif).",
    )
    draw.add_argument("paths", metavar="PATHS_FILE", help="an episode paths file (alpha-<a>.paths.npz)")
    which = draw.add_mutually_exclusive_group()
    which.add_argument("--episode", type=int, metavar="J", help="the J-th episode of the file, from 0 (default 0)")
    which.add_argument("--index", type=int, metavar="I", help="the episode whose index is I")
    draw.add_argument("--out", metavar="FILE", help="output .png, .mp4 or .gif (default: beside PATHS_FILE)")
    draw.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), default=[512, 512], help="pixels (512 512)")
    draw.add_argument("--fps", type=float, default=5.0, help="film frames per second (default 5, the env's rate)")
    draw.add_argument("--horizon", type=int, metavar="T", help="draw steps 0..T only; the outcome as of step T")
    draw.set_defaults(func=cmd_draw)


def cmd_draw(args: argparse.Namespace) -> int:
    from PIL import Image

    from sport_core.artifacts import atomic_write_bytes
    from sport_core.drawing import topdown_frames, topdown_image
    from sport_core.paths import read_paths
    from sport_core.video import gif_bytes, write_video

    width, height = args.size
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise SportError(f"sport draw --size W H: each 16..4096 pixels, got {width} {height}")
    if args.fps <= 0:
        raise SportError(f"sport draw --fps must be positive, got {args.fps:g}")
    if args.horizon is not None and args.horizon < 0:
        raise SportError(f"sport draw --horizon must be >= 0, got {args.horizon}")
    source = Path(args.paths)
    if args.out and Path(args.out).suffix.lower() not in SUFFIXES:
        raise SportError(f"sport draw --out {args.out}: unsupported suffix; use {', '.join(SUFFIXES)}")
    paths = read_paths(source)
    j = _position(paths.episodes, args.episode, args.index, source)
    index = int(paths.episodes[j])
    out = Path(args.out) if args.out else source.with_name(f"{_stem(source)}-ep{index}.png")
    xy = paths.xy[j] if args.horizon is None else paths.xy[j][: args.horizon + 1]
    if out.suffix.lower() == ".png":
        image = topdown_image(paths.layout, xy, size=(width, height), outcome=paths.outcome(j, args.horizon))
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        atomic_write_bytes(out, buffer.getvalue())
    elif out.suffix.lower() == ".mp4":
        write_video(out, topdown_frames(paths.layout, xy, size=(width, height)), args.fps)
    else:
        atomic_write_bytes(out, gif_bytes(topdown_frames(paths.layout, xy, size=(width, height)), args.fps))
    print(out)
    return 0


def _position(episodes: np.ndarray, episode: int | None, index: int | None, source: Path) -> int:
    """The position in the file of the episode asked for, or a one-line error naming what the file holds."""
    n = len(episodes)
    held = f"{n} episode{'s' if n != 1 else ''}"
    if index is not None:
        hits = np.flatnonzero(episodes == index)
        if not len(hits):
            shown = ", ".join(str(int(i)) for i in episodes[:10]) + (", ..." if n > 10 else "")
            raise SportError(f"{source} has no episode with index {index}; its {held} have indices {shown}")
        return int(hits[0])
    j = 0 if episode is None else episode
    if not 0 <= j < n:
        raise SportError(f"{source} has {held} (--episode 0..{n - 1}); there is no --episode {j}")
    return j


def _stem(source: Path) -> str:
    name = source.name.removesuffix(".npz")
    return name.removesuffix(".paths") or name
