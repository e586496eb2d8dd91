"""The ``safety-gym`` env component: its config, its picklable env maker, and :func:`make`."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from sport_safety_gym.levels import AGENT_RECT, GEOMETRY, parse_env_id

#: The paper's fixed certification layout (level 5): layout seed 0 of the stock placement rules reproduces
#: it exactly (``tests/test_safety_gym_env.py`` checks poses and first observation to 1e-9).
PAPER_LAYOUT_SEED = 0
PAPER_LAYOUT = {
    "agent_xy": (0.0585762047, -0.4569621267),
    "agent_heading": 2.749441536,
    "hazard_xy": (-0.1221523211, 0.9104835244),
    "hazard_radius": 0.5,
    "goal_xy": (-0.1620162888, 2.1137727649),
    "goal_radius": 0.3,
}

#: Reward settings: safety-gymnasium's native reward, and the base policy's sparse reach-avoid reward.
NATIVE_REWARD = {"dense_reward": True, "goal_reward": 1.0, "violation_reward": 0.0}
BASE_REWARD = {"dense_reward": False, "goal_reward": 1.0, "violation_reward": -0.25}


def _check_id(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    parse_env_id(value)


@attrs.frozen
class SafetyGymConfig:
    """Config of the ``safety-gym`` env: a reach-avoid task on the real safety-gymnasium Point robot.

    ``id``: a gymnasium id of :mod:`sport_safety_gym.levels` (level 1–5; ``LowFreq`` = 5 Hz / 100 steps;
    ``ResetGoalCurriculum`` = violations do not end the episode).
    ``layout``: ``"random"`` draws layouts with the level's placement rules (a new one at every reset, or
    always the one of ``layout_seed`` when that is set); ``"paper"`` is the paper's fixed certification
    layout (level-5 ids only; the same as ``layout_seed = 0``).
    ``dense_reward``, ``goal_reward``, ``violation_reward``: reward = dense × progress + goal_reward on the
    goal step + violation_reward on each violating step (native: true/1.0/0.0; base policy: false/1.0/−0.25).
    ``fast_reset``: keep the compiled MuJoCo model across resets (bit-for-bit the stock reset, ≈ 2000×
    faster); false uses safety-gymnasium's own reset. ``fast_step``: run each step's physics in one MuJoCo
    call (bit-for-bit the stock loop, ≈ 20% faster steps); false uses safety-gymnasium's own step.
    """

    id: str = attrs.field(default="SafetyPointReachAvoidLowFreqCurriculum5-v0", validator=_check_id)
    layout: Literal["random", "paper"] = attrs.field(
        default="random", validator=attrs.validators.in_(("random", "paper"))
    )
    layout_seed: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(0)))
    dense_reward: bool = True
    goal_reward: float = 1.0
    violation_reward: float = 0.0
    fast_reset: bool = True
    fast_step: bool = True

    def __attrs_post_init__(self) -> None:
        if self.layout == "paper":
            if parse_env_id(self.id).level != 5:
                raise ValueError(
                    f"layout 'paper' is the level-5 layout; env id {self.id!r} is level {parse_env_id(self.id).level}"
                )
            if self.layout_seed not in (None, PAPER_LAYOUT_SEED):
                raise ValueError(
                    f"layout 'paper' is layout seed {PAPER_LAYOUT_SEED}; got layout_seed="
                    f"{self.layout_seed} as well (set one of them)"
                )

    @property
    def effective_layout_seed(self) -> int | None:
        """The seed of the fixed layout, or None for a fresh layout at every reset."""
        return PAPER_LAYOUT_SEED if self.layout == "paper" else self.layout_seed


@attrs.frozen
class SafetyGymMaker:
    """Picklable env maker for ``safety-gym`` (:class:`sport_core.protocols.EnvMaker`)."""

    config: SafetyGymConfig = attrs.field(factory=SafetyGymConfig)

    @property
    def env_id(self) -> str:
        return self.config.id

    @property
    def fixed_layout(self) -> bool:
        return self.config.effective_layout_seed is not None

    @property
    def scenario(self) -> str:
        """The distribution of initial conditions, in words (written into certificates)."""
        level = parse_env_id(self.config.id)
        geometry = GEOMETRY[level.level]
        where = (
            f"agent start in {list(AGENT_RECT)}, hazard (radius {geometry.hazard_radius}) in "
            f"{list(geometry.hazard_rect)}, goal (radius 0.3) in {list(geometry.goal_rect)}"
        )
        if self.config.layout == "paper":
            p = PAPER_LAYOUT
            return (
                f"{self.config.id}, the paper's fixed layout (layout seed {PAPER_LAYOUT_SEED}): agent starts at "
                f"({p['agent_xy'][0]:.6f}, {p['agent_xy'][1]:.6f}) heading {p['agent_heading']:.6f} rad, at rest; "
                f"hazard centre ({p['hazard_xy'][0]:.6f}, {p['hazard_xy'][1]:.6f}) radius 0.5; goal centre "
                f"({p['goal_xy'][0]:.6f}, {p['goal_xy'][1]:.6f}) radius 0.3. Every episode starts from this same "
                "state; all randomness comes from the policy's action sampling."
            )
        if self.fixed_layout:
            return (
                f"{self.config.id}, a fixed layout: the one safety-gymnasium's placement rules draw from layout "
                f"seed {self.config.layout_seed} ({where}; heading uniform in [0, 2π)). Every episode starts "
                "from this same state; all randomness comes from the policy's action sampling."
            )
        return (
            f"{self.config.id}, random layouts: at every reset a new layout is drawn by safety-gymnasium's "
            f"placement rules from the episode's env seed ({where}, with keepout rejection; heading uniform in "
            "[0, 2π)); the agent starts at rest."
        )

    def make(
        self, render_mode: str | None = None, width: int = 256, height: int = 256, camera: str | None = None
    ) -> Any:
        """A fresh :class:`sport_safety_gym.env.ReachAvoidEnv` (≈ 1 s for the first reset's compile).

        With ``render_mode="rgb_array"``, ``render()`` gives ``height`` × ``width`` frames from MuJoCo camera
        ``camera`` (default ``fixedfar``, the oblique overview; also ``fixednear``, ``track``, ``vision``),
        rendered headless through the OpenGL backend :func:`sport_safety_gym.rendering.ensure_gl_backend`
        picks (a one-line error if none works)."""
        from sport_safety_gym.env import ReachAvoidEnv

        if render_mode is not None:
            from sport_safety_gym.rendering import ensure_gl_backend

            ensure_gl_backend()
        c = self.config
        return ReachAvoidEnv(
            c.id,
            layout_seed=c.effective_layout_seed,
            goal_reward=c.goal_reward,
            violation_reward=c.violation_reward,
            dense_reward=c.dense_reward,
            fast_reset=c.fast_reset,
            fast_step=c.fast_step,
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name=camera if camera is not None or render_mode is None else "fixedfar",
        )


def make(
    env_id: str,
    layout_seed: int | None = None,
    render_mode: str | None = None,
    *,
    width: int = 256,
    height: int = 256,
    camera: str | None = None,
    **options: Any,
) -> Any:
    """A reach-avoid gymnasium env (5-tuple API): ``make("SafetyPointReachAvoidLowFreqCurriculum5-v0")``;
    ``render_mode``, ``width``, ``height`` and ``camera`` as in :meth:`SafetyGymMaker.make`.

    ``options`` are the other fields of :class:`SafetyGymConfig` (``layout``, ``dense_reward``,
    ``goal_reward``, ``violation_reward``, ``fast_reset``, ``fast_step``); an unknown one is a TypeError naming it.
    """
    maker = SafetyGymMaker(SafetyGymConfig(id=env_id, layout_seed=layout_seed, **options))
    return maker.make(render_mode, width=width, height=height, camera=camera)
