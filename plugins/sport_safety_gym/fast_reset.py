"""A reset that keeps the compiled MuJoCo model, bit-for-bit identical to safety-gymnasium's own.

The stock ``Builder.reset`` samples a layout, writes it into an MJCF document and compiles a brand-new
model (``MjModel.from_xml_string``, ≈ 1 s) although only poses changed. :func:`fast_reset` replays the same
reset with the model compiled once:

1. the same random draws in the same order (layout rejection sampling, agent heading, one rotation per
   object, via the task's own methods), so the generator state, layouts and later draws stay in sync;
2. the new poses written into the model exactly as the compiler would have (see :func:`write_poses`);
3. ``mj_setConst`` for the constants the compiler derives from body poses, ``mj_resetData``, ``mj_forward``;
4. the rest of the stock reset unchanged (goal re-draw, cost check, observation).

Observations come only from MuJoCo data, so observations, rewards, costs, flags and endings are identical to
the stock reset (checked in ``tests/test_safety_gym_fast_reset.py``: every array of the model, and rollouts,
with max abs difference 0.0). The model is recompiled, exactly as the stock reset does, the first time and
whenever the model's *structure* changes (a different number, size or kind of object, floor or robot), and
always for tasks with free bodies or mocaps, whose start state this module does not rewrite.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import mujoco
import numpy as np

_POSE_KEYS = ("pos", "rot")


def _frozen(value: Any) -> Any:
    """A hashable, comparable copy of a world-config value."""
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple, np.ndarray)):
        return (*(_frozen(v) for v in np.asarray(value, dtype=object).ravel().tolist()), np.shape(value))
    return value


def structure_key(world_config: dict) -> tuple | None:
    """What the compiled model depends on apart from poses; ``None`` if poses alone cannot be rewritten."""
    if world_config.get("free_geoms") or world_config.get("mocaps"):
        return None
    skip = {"agent_xy", "agent_rot", "geoms"}
    rest = {k: v for k, v in world_config.items() if k not in skip}
    geoms = {
        name: {k: v for k, v in geom.items() if k not in _POSE_KEYS} for name, geom in world_config["geoms"].items()
    }
    if any(geom.get("type") == "mesh" for geom in geoms.values()):
        return None  # mesh geoms are placed with Euler angles; not handled here
    return _frozen({"rest": rest, "geoms": geoms})


def _normalised(vec: list[float]) -> list[float]:
    """The compiler's vector normalisation: divide by the square root of the sequential sum of squares.

    (``mju_normalize4`` scales differently and is 1 ulp off in ~20% of cases; rollouts then diverge.)
    """
    total = 0.0
    for v in vec:
        total += v * v
    norm = float(np.sqrt(total))
    return [v / norm for v in vec]


def z_rotation_quat(theta: float) -> list[float]:
    """The body quaternion the compiler stores for safety-gymnasium's ``rot2quat(theta)`` attribute."""
    return _normalised([float(np.cos(theta / 2)), 0.0, 0.0, float(np.sin(theta / 2))])


def xyaxes_quat(axes: list[float]) -> list[float]:
    """The quaternion the compiler stores for an ``xyaxes`` attribute (Gram-Schmidt, frame → quat, normalise)."""
    x = _normalised(axes[:3])
    y = axes[3:]
    d = x[0] * y[0] + x[1] * y[1] + x[2] * y[2]
    y = _normalised([y[0] - x[0] * d, y[1] - x[1] * d, y[2] - x[2] * d])
    z = _normalised([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]])
    m = (x, y, z)  # m[column][row]
    if m[0][0] + m[1][1] + m[2][2] > 0:
        w = 0.5 * float(np.sqrt(1 + m[0][0] + m[1][1] + m[2][2]))
        q = [w, 0.25 * (m[1][2] - m[2][1]) / w, 0.25 * (m[2][0] - m[0][2]) / w, 0.25 * (m[0][1] - m[1][0]) / w]
    elif m[0][0] > m[1][1] and m[0][0] > m[2][2]:
        s = 0.5 * float(np.sqrt(1 + m[0][0] - m[1][1] - m[2][2]))
        q = [0.25 * (m[1][2] - m[2][1]) / s, s, 0.25 * (m[1][0] + m[0][1]) / s, 0.25 * (m[2][0] + m[0][2]) / s]
    elif m[1][1] > m[2][2]:
        s = 0.5 * float(np.sqrt(1 - m[0][0] + m[1][1] - m[2][2]))
        q = [0.25 * (m[2][0] - m[0][2]) / s, 0.25 * (m[1][0] + m[0][1]) / s, s, 0.25 * (m[2][1] + m[1][2]) / s]
    else:
        s = 0.5 * float(np.sqrt(1 - m[0][0] - m[1][1] + m[2][2]))
        q = [0.25 * (m[0][1] - m[1][0]) / s, 0.25 * (m[2][0] + m[0][2]) / s, 0.25 * (m[2][1] + m[1][2]) / s, s]
    # normalised once when converting the frame and once more when the camera is compiled
    return _normalised(_normalised(q))


def _set_body_pose(model: Any, name: str, pos: np.ndarray, quat: list[float]) -> None:
    body = model.body(name)
    body.pos[: len(pos)] = pos
    body.quat[:] = quat
    if model.body_mass[body.id] == 0:
        # a massless body's inertial frame is compiled as the body frame itself
        body.ipos[:] = body.pos
        body.iquat[:] = body.quat


def write_poses(model: Any, world_config: dict) -> None:
    """Write the agent and geom poses of ``world_config`` into ``model`` as ``World.build`` + compile would.

    Numbers reach the compiler as ``str(float64)``, which round-trips exactly, so positions are copied as
    they are; quaternions are normalised the compiler's way. The agent's start pose lives in its body
    (qpos stays 0), as in the XML. The "track" camera's pose depends on the agent heading.
    """
    theta = world_config["agent_rot"]
    _set_body_pose(model, "agent", np.asarray(world_config["agent_xy"], dtype=np.float64), z_rotation_quat(theta))
    for name, geom in world_config["geoms"].items():
        _set_body_pose(model, name, np.asarray(geom["pos"], dtype=np.float64), z_rotation_quat(geom["rot"]))
    try:
        camera = model.camera("track")
    except KeyError:
        return
    # the same expressions as safety_gymnasium.world.World.build
    phi = theta + np.pi
    camera.pos[:] = [0 * np.cos(phi) + (-2) * np.sin(phi), 0 * (-np.sin(phi)) + (-2) * np.cos(phi), 2.0]
    camera.quat[:] = xyaxes_quat(
        [float(np.cos(phi)), float(-np.sin(phi)), 0.0, float(np.sin(phi)), float(np.cos(phi)), 1.0]
    )


class FastReset:
    """Replaces ``Builder.reset`` for one builder; call :meth:`reset` with the same arguments.

    ``compiles`` counts the model compilations (1 after the first reset while the structure stays the same).
    """

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.compiles = 0
        self._structure: tuple | None = None

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        """Exactly ``Builder.reset(seed=seed)``, without recompiling the model when poses alone changed."""
        builder, task = self.builder, self.builder.task
        if not task.mechanism_conf.randomize_layout:
            assert seed is None, "Cannot set seed if randomize_layout=False"
            builder.set_seed(0)
        elif seed is not None:
            builder.set_seed(seed)
        builder.terminated = False
        builder.truncated = False
        builder.steps = 0

        self._build_world(task)
        task.world_info.reset_layout = deepcopy(task.world_info.layout)

        task.update_world()
        task.specific_reset()
        task.agent.reset()
        cost = builder._cost()
        assert cost["cost_sum"] == 0, f"World has starting cost! {cost}"
        builder.first_reset = False
        return task.obs(), {}

    def _build_world(self, task: Any) -> None:
        """``Underlying._build`` with the compile replaced by :func:`write_poses` when the structure is unchanged."""
        if task.placements_conf.placements is None:
            task._build_placements_dict()
            task.random_generator.set_placements_info(
                task.placements_conf.placements, task.placements_conf.extents, task.placements_conf.margin
            )
        task.world_info.layout = task.random_generator.build_layout()
        config = task._build_world_config(task.world_info.layout)  # draws the heading and rotations
        task.world_info.world_config_dict = config
        structure = structure_key(config)
        if task.world is not None and structure is not None and structure == self._structure:
            # (World.parse is skipped: the world's copy of the config is read only by the next compile,
            # which parses the then-current config itself)
            model, data = task.model, task.data
            write_poses(model, config)
            mujoco.mj_resetData(model, data)
            mujoco.mj_setConst(model, data)  # pose-dependent constants (invweight0, cam_*0, stat, ...)
            mujoco.mj_resetData(model, data)
            mujoco.mj_forward(model, data)
            return
        # First build or a new structure: compile, exactly as the stock reset.
        from safety_gymnasium.world import World

        if task.world is None:
            task.world = World(task.agent, task._obstacles, config)
            task.world.reset()
            task.world.build()
        else:
            task.world.reset(build=False)
            task.world.rebuild(config, state=False)
            if task.viewer:
                task._update_viewer(task.model, task.data)
        self.compiles += 1
        self._structure = structure
