"""Top-down drawings of episodes (``sport_core.drawing``) and the ``sport draw`` command.

The drawings are checked where it matters to a reader: the goal and hazard discs are where the layout says,
to scale and in their colours; the final dot tells the outcome; a film has one frame per position, from a
camera that never moves; a wide image keeps metres square.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from sport_core import drawing
from sport_core.cli import main
from sport_core.drawing import arena_extent, draw_layout, pixel_of, topdown_frames, topdown_image
from sport_core.paths import EpisodePath, Layout, write_paths
from sport_core.tracking import EpisodeRecord

# Goal and hazard centres are off whole metres, so that no grid line crosses the pixels checked.
LAYOUT = Layout(goal=(1.3, 0.7, 0.3), hazards=((-0.4, -0.3, 0.4),))
EXTENT = (-2.0, 2.0, -2.0, 2.0)
SIZE = (200, 200)  # 50 px a metre
PATH = np.array([[-1.6, 1.4], [-1.2, 1.5], [-0.6, 1.5], [0.0, 1.4], [0.6, 1.2], [1.0, 1.05], [1.3, 0.7]])


def at(image: np.ndarray, xy, extent=EXTENT, size=SIZE) -> np.ndarray:
    """The colour of the pixel under world point ``xy`` (metres)."""
    col, row = pixel_of(extent, size, np.asarray(xy, dtype=float))
    return image[int(row), int(col)].astype(int)


def is_green(rgb):
    r, g, b = np.moveaxis(np.asarray(rgb, dtype=int), -1, 0)
    return (g > r + 60) & (g > b + 60)


def is_blue(rgb):
    r, g, b = np.moveaxis(np.asarray(rgb, dtype=int), -1, 0)
    return (b > r + 30) & (b > g + 30)


def test_the_goal_and_the_hazard_are_drawn_to_scale_where_the_layout_puts_them():
    image = topdown_image(LAYOUT, PATH[:3], size=SIZE, extent=EXTENT)
    assert image.shape == (200, 200, 3) and image.dtype == np.uint8
    gx, gy, gr = LAYOUT.goal
    hx, hy, hr = LAYOUT.hazards[0]
    assert is_green(at(image, (gx, gy))) and is_green(at(image, (gx, gy - 0.8 * gr)))
    assert is_blue(at(image, (hx, hy))) and is_blue(at(image, (hx + 0.8 * hr, hy)))
    # just outside the discs: bare floor
    assert tuple(at(image, (gx, gy - 1.3 * gr))) == drawing.FLOOR
    assert tuple(at(image, (hx + 1.3 * hr, hy))) == drawing.FLOOR


def test_y_is_up_in_metres():
    col, row = pixel_of(EXTENT, SIZE, np.array([[0.0, 0.0], [1.0, 1.0]])).T
    assert (col[0], row[0]) == (100, 100)
    assert (col[1] - col[0], row[1] - row[0]) == (50, -50)  # 50 px a metre; row 0 is the top


@pytest.mark.parametrize(("outcome", "colour"), [("violation", drawing.VIOLATION), ("goal", drawing.REACHED)])
def test_the_final_dot_shows_the_outcome(outcome, colour):
    end = np.array([[-1.5, -1.5], [-1.0, -1.5]])  # ends on bare floor, away from both discs
    image = topdown_image(LAYOUT, end, size=SIZE, extent=EXTENT, outcome=outcome)
    assert np.abs(at(image, end[-1]) - colour).max() <= 12


def test_without_an_outcome_the_dot_is_coloured_by_where_the_agent_stands():
    hazard, goal, floor = LAYOUT.hazards[0][:2], LAYOUT.goal[:2], (-1.5, -1.5)
    for where, colour in ((hazard, drawing.VIOLATION), (goal, drawing.REACHED), (floor, drawing.AGENT)):
        image = topdown_image(LAYOUT, np.array([where]), size=SIZE, extent=EXTENT)
        assert np.abs(at(image, where) - colour).max() <= 12


def test_a_film_has_one_frame_per_position_and_a_camera_that_does_not_move():
    frames = topdown_frames(LAYOUT, PATH, size=SIZE, extent=EXTENT)
    assert frames.shape == (len(PATH), 200, 200, 3) and frames.dtype == np.uint8
    px = pixel_of(EXTENT, SIZE, PATH)
    rows, cols = np.mgrid[0:200, 0:200] + 0.5

    def near(points, radius):
        """Pixels within ``radius`` of any of ``points`` (pixel units)."""
        return np.any([(cols - c) ** 2 + (rows - r) ** 2 <= radius**2 for c, r in points], axis=0)

    reach = 8  # pixels: the agent's dot with its rim, and the start marker, at 200 px
    for t in range(1, len(PATH)):
        changed = (frames[t] != frames[t - 1]).any(axis=-1)
        # the agent moved: its new place changed, and nothing changed away from the step it took
        assert changed[near([px[t]], 3)].all()
        assert not changed[~near(np.linspace(px[t - 1], px[t], 20), reach)].any()
        colour = drawing.REACHED if t == len(PATH) - 1 else drawing.AGENT  # the last position is in the goal
        assert np.abs(at(frames[t], PATH[t]) - colour).max() <= 12
    # away from the path every frame is the layout alone, as a still with no path draws it
    background = topdown_image(LAYOUT, np.zeros((0, 2)), size=SIZE, extent=EXTENT)
    far = ~near(np.concatenate([np.linspace(a, b, 20) for a, b in itertools.pairwise(px)]), reach)
    assert far.mean() > 0.7
    assert (frames[:, far] == background[far]).all()


def test_the_last_frame_shows_the_whole_path():
    frames = topdown_frames(LAYOUT, PATH, size=SIZE, extent=EXTENT)
    mid = (PATH[2] + PATH[3]) / 2  # a point of the path, long after the agent has left it
    assert (at(frames[-1], mid) < 150).all() and tuple(at(frames[0], mid)) == drawing.FLOOR


def test_the_default_extent_frames_the_whole_episode_the_same_for_every_frame():
    extent = arena_extent(LAYOUT, PATH)
    # x: from the path's start (-1.6) to the goal's right edge (1.6), plus the margin; y: as wide, centred
    # between the hazard's bottom edge (-0.7) and the path's top (1.5)
    assert extent == pytest.approx((-1.85, 1.85, 0.4 - 1.85, 0.4 + 1.85))
    frames = topdown_frames(LAYOUT, PATH, size=SIZE)
    np.testing.assert_array_equal(frames, topdown_frames(LAYOUT, PATH, size=SIZE, extent=extent))


def test_a_wide_image_keeps_metres_square_and_pads_the_sides():
    layout = Layout(goal=(0.0, 0.0, 0.5))
    image = topdown_image(layout, np.zeros((0, 2)), size=(300, 150), extent=(-1, 1, -1, 1), grid=False)
    assert image.shape == (150, 300, 3)
    rows, cols = np.nonzero(is_green(image))
    # 75 px a metre (the height decides): the 1 m disc is 75 px across both ways, centred
    assert cols.max() - cols.min() + 1 == pytest.approx(75, abs=2)
    assert rows.max() - rows.min() + 1 == pytest.approx(75, abs=2)
    assert (cols.min() + cols.max()) / 2 == pytest.approx(149.5, abs=1)
    assert (image[:, :60] == drawing.FLOOR).all()  # the padding is floor


def test_no_layout_draws_the_path_alone_and_one_position_is_enough():
    image = topdown_image(None, np.array([[0.3, -0.2]]), size=(64, 48))
    assert image.shape == (48, 64, 3)
    frames = topdown_frames(None, np.array([[0.3, -0.2]]), size=(64, 48))
    assert frames.shape == (1, 48, 64, 3)
    np.testing.assert_array_equal(frames[0], topdown_image(None, np.array([[0.3, -0.2]]), size=(64, 48)))
    assert arena_extent(None, [[0.3, -0.2]]) == pytest.approx((-0.2, 0.8, -0.7, 0.3))  # at least 1 m a side
    frames = topdown_frames(None, PATH, size=(64, 64))
    assert not (is_green(frames) | is_blue(frames)).any()


def test_bad_positions_are_refused():
    with pytest.raises(ValueError, match="n >= 1"):
        topdown_frames(LAYOUT, np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        topdown_image(LAYOUT, np.zeros(3))


def test_draw_layout_puts_the_discs_on_matplotlib_axes_to_scale():
    ax = Figure().subplots()
    draw_layout(ax, LAYOUT)
    assert ax.get_aspect() == 1.0
    assert len(ax.patches) == 4  # hazard and goal, each a fill and an outline
    assert [(p.center, p.radius) for p in ax.patches[::2]] == [((-0.4, -0.3), 0.4), ((1.3, 0.7), 0.3)]
    draw_layout(ax, None)
    assert len(ax.patches) == 4


# -- sport draw ----------------------------------------------------------------------------------------------


@pytest.fixture
def paths_file(tmp_path):
    """A paths file as a sweep writes it: two episodes (indices 3 and 7) over LAYOUT."""
    kept = [
        EpisodePath(EpisodeRecord(3, 0, "goal", 6, -1, 6, 1.0), PATH.astype(np.float32), None, LAYOUT),
        EpisodePath(EpisodeRecord(7, 0, "violation", -1, 2, 4, 0.0), PATH[:5][::-1].astype(np.float32), None, LAYOUT),
    ]
    return write_paths(tmp_path / "alphas" / "alpha-1.5.paths.npz", kept)


def test_sport_draw_writes_a_still_beside_the_paths_file(paths_file, capsys):
    assert main(["draw", str(paths_file), "--size", "120", "80"]) == 0
    out = paths_file.with_name("alpha-1.5-ep3.png")
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (120, 80)


def test_sport_draw_films_an_episode_one_frame_per_position(paths_file, tmp_path):
    pytest.importorskip("av")
    from sport_core.video import read_video

    out = tmp_path / "ep7.mp4"
    assert main(["draw", str(paths_file), "--index", "7", "--out", str(out), "--size", "64", "48", "--fps", "5"]) == 0
    frames, fps = read_video(out)
    assert frames.shape == (5, 48, 64, 3) and fps == 5


def test_sport_draw_makes_gifs_and_stops_at_the_horizon(paths_file, tmp_path):
    out = tmp_path / "ep3.gif"
    assert main(["draw", str(paths_file), "--episode", "0", "--horizon", "2", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 3  # positions after reset, step 1 and step 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--episode", "2"], "has 2 episodes (--episode 0..1); there is no --episode 2"),
        (["--index", "4"], "has no episode with index 4; its 2 episodes have indices 3, 7"),
        (["--out", "x.jpg"], "unsupported suffix; use .png, .mp4, .gif"),
    ],
)
def test_sport_draw_errors_are_one_line(paths_file, capsys, args, message):
    assert main(["draw", str(paths_file), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_sport_draw_refuses_a_file_that_is_not_a_paths_file(tmp_path, capsys):
    bogus = tmp_path / "alpha-1.0.paths.npz"
    bogus.write_bytes(b"not a zip")
    assert main(["draw", str(bogus)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main(["draw", str(tmp_path / "missing.paths.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
