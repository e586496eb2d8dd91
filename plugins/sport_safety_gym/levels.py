"""The reach-avoid task family: curriculum levels, timings, termination modes and their gymnasium ids.

Pure data (no safety-gymnasium import), so configs can be validated without the MuJoCo stack.

Geometry (one hazard per level, Point robot; rectangles are (xmin, ymin, xmax, ymax)). An object's centre is
drawn uniformly from its rectangle shrunk by its own keepout and rejected if closer than the sum of the
two keepouts to an object already placed (stock safety-gymnasium placement)::

    agent: rect (-1, -1, 1, 0), keepout 0.4            goal: radius 0.3, keepout 0.305
    level  hazard radius  hazard rect          hazard keepout  goal rect
    1      0.3            (-1.5, 0, 1.5, 1.5)  0.3             (-1, 0, 1, 1)
    2      0.3            (-1, 0, 1, 1.5)      0.3             (-1, 0.5, 1, 1.5)
    3      0.3            (-1, 0, 1, 1.5)      0.3             (-1, 1, 1, 2)
    4      0.4            (-1, 0, 1, 1.5)      0.2             (-1, 1, 1, 2)
    5      0.5            (-1, 0, 1, 1.5)      0.2             (-1, 1.5, 1, 2.5)

Ids (the reference's naming)::

    SafetyPointReachAvoid{timing}{mode}{level}-v0
    timing: ""        50 Hz (10 physics steps of 0.002 s per action), 1000 steps per episode
            "LowFreq" 5 Hz (100 physics steps per action), 100 steps per episode  (the paper's)
    mode:   "Curriculum"          the episode ends on goal, violation or timeout
            "ResetGoalCurriculum" the episode ends on goal or timeout only; violations are flagged and the
                                  episode continues (the unsafe task policy's training env)

so ``SafetyPointReachAvoidLowFreqCurriculum5-v0`` is the paper's certification env and
``SafetyPointReachAvoidLowFreqResetGoalCurriculum5-v0`` its continue-on-violation variant.
"""

from __future__ import annotations

import re

import attrs

AGENT_RECT = (-1.0, -1.0, 1.0, 0.0)
AGENT_KEEPOUT = 0.4
GOAL_RADIUS = 0.3
GOAL_KEEPOUT = 0.305
PHYSICS_TIMESTEP = 0.002
LIDAR_BINS = 16
LIDAR_EXP_GAIN = 0.5  # bin reading exp(-0.5 · distance)


@attrs.frozen
class Geometry:
    """Hazard and goal placement of one curriculum level."""

    hazard_radius: float
    hazard_rect: tuple[float, float, float, float]
    hazard_keepout: float
    goal_rect: tuple[float, float, float, float]


GEOMETRY: dict[int, Geometry] = {
    1: Geometry(0.3, (-1.5, 0.0, 1.5, 1.5), 0.3, (-1.0, 0.0, 1.0, 1.0)),
    2: Geometry(0.3, (-1.0, 0.0, 1.0, 1.5), 0.3, (-1.0, 0.5, 1.0, 1.5)),
    3: Geometry(0.3, (-1.0, 0.0, 1.0, 1.5), 0.3, (-1.0, 1.0, 1.0, 2.0)),
    4: Geometry(0.4, (-1.0, 0.0, 1.0, 1.5), 0.2, (-1.0, 1.0, 1.0, 2.0)),
    5: Geometry(0.5, (-1.0, 0.0, 1.0, 1.5), 0.2, (-1.0, 1.5, 1.0, 2.5)),
}

TIMINGS = {"": (10, 1000), "LowFreq": (100, 100)}  # physics steps per action, steps per episode
MODES = {"Curriculum": True, "ResetGoalCurriculum": False}  # mode -> episode ends on a violation

_ID = re.compile(r"^SafetyPointReachAvoid(LowFreq|)(Curriculum|ResetGoalCurriculum)([1-5])-v0$")


@attrs.frozen
class Level:
    """Everything an env id fixes: geometry, timing and termination mode."""

    env_id: str
    level: int
    frameskip: int
    max_steps: int
    terminate_on_violation: bool

    @property
    def geometry(self) -> Geometry:
        return GEOMETRY[self.level]

    @property
    def control_dt(self) -> float:
        """Simulated seconds per env step (0.2 s at 5 Hz, 0.02 s at 50 Hz)."""
        return self.frameskip * PHYSICS_TIMESTEP

    @property
    def task_class_name(self) -> str:
        """The name safety-gymnasium derives from the id (``...Curriculum5-v0`` -> ``...CurriculumLevel5``)."""
        timing, mode, level = _ID.match(self.env_id).groups()
        return f"ReachAvoid{timing}{mode}Level{level}"


def env_ids() -> list[str]:
    """Every id of the family (20: 2 timings × 2 modes × 5 levels)."""
    return [
        f"SafetyPointReachAvoid{timing}{mode}{level}-v0" for timing in TIMINGS for mode in MODES for level in GEOMETRY
    ]


def parse_env_id(env_id: str) -> Level:
    """The :class:`Level` of ``env_id``; a ValueError naming the known forms otherwise."""
    match = _ID.match(env_id)
    if match is None:
        raise ValueError(
            f"unknown safety-gym env id {env_id!r}; expected SafetyPointReachAvoid[LowFreq]"
            "{Curriculum|ResetGoalCurriculum}{1..5}-v0, e.g. SafetyPointReachAvoidLowFreqCurriculum5-v0"
        )
    timing, mode, level = match.groups()
    frameskip, max_steps = TIMINGS[timing]
    return Level(env_id, int(level), frameskip, max_steps, MODES[mode])
