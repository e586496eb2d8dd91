"""Headless rendering: find an OpenGL backend that MuJoCo can render with on this machine, once per process tree.

MuJoCo renders offscreen through one of three backends, chosen by ``MUJOCO_GL`` before its GL modules are
imported: ``egl`` (a GPU's EGL, or Mesa's), ``osmesa`` (Mesa's software-only library) or ``glfw`` (needs a
display). Which one works depends on the machine: on a 2-core cloud VM without a GPU, ``MUJOCO_GL=egl`` can
fail while ``EGL_PLATFORM=surfaceless`` (Mesa's surfaceless platform, software rasteriser) works, and
OSMesa is often not installed. So :func:`ensure_gl_backend` tries each candidate of :data:`CANDIDATES` in a
short subprocess (a failed GL initialisation can leave a process unusable) that renders one small frame,
and sets the environment variables of the first that works in this process; worker processes started
later inherit them (and ``SPORT_GL_BACKEND``, so they do not probe again).

* A ``MUJOCO_GL`` set by the user is respected: only that backend is tried (with the user's other GL
  variables), and its failure is the error.
* ``SPORT_GL_BACKENDS=egl-surfaceless,osmesa`` restricts the candidates, in that order.
* When none works, :class:`sport_core.errors.SportError` says, in one line, what each candidate answered and
  what to install (or to film with ``video.source = "topdown"``, which needs no OpenGL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from sport_core.errors import SportError

#: Backends in the order they are tried: (name, environment variables).
CANDIDATES: dict[str, dict[str, str]] = {
    "egl": {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"},
    "egl-surfaceless": {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "EGL_PLATFORM": "surfaceless"},
    "osmesa": {"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"},
    "glfw": {"MUJOCO_GL": "glfw"},
}
GL_VARIABLES = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "EGL_PLATFORM")

# Renders one 32 x 32 frame of a one-sphere model and checks it is not blank.
_PROBE = """
import mujoco, numpy as np
model = mujoco.MjModel.from_xml_string(
    '<mujoco><visual><global offwidth="32" offheight="32"/></visual><worldbody>'
    '<light pos="0 0 3"/><geom type="sphere" size="0.5" rgba="1 0 0 1"/></worldbody></mujoco>')
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
renderer = mujoco.Renderer(model, 32, 32)
renderer.update_scene(data)
pixels = renderer.render()
assert pixels.shape == (32, 32, 3) and pixels.any(), "rendered a blank frame"
print("sport-gl-ok")
"""

_LOCK = threading.Lock()
INSTALL_HINT = (
    "install Mesa's EGL (Debian/Ubuntu: apt install libegl1 libgl1-mesa-dri) or OSMesa (libosmesa6), or film "
    'with video.source = "topdown", which needs no OpenGL'
)


def probe(variables: dict[str, str], timeout: float = 60.0) -> str | None:
    """Render one frame in a subprocess with ``variables`` set; None if it worked, else why not (one line)."""
    env = {k: v for k, v in os.environ.items() if k not in GL_VARIABLES}
    env.update(variables)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return f"no frame within {timeout:g} s"
    if done.returncode == 0 and "sport-gl-ok" in done.stdout:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    reason = lines[-1] if lines else f"exit status {done.returncode}"
    return reason if len(reason) <= 160 else reason[:157] + "..."


def ensure_gl_backend() -> str:
    """Pick (once) and set the OpenGL backend MuJoCo renders with; returns its name (see the module docstring)."""
    chosen = os.environ.get("SPORT_GL_BACKEND")
    if chosen:
        return chosen
    with _LOCK:
        if os.environ.get("SPORT_GL_BACKEND"):
            return os.environ["SPORT_GL_BACKEND"]
        user = os.environ.get("MUJOCO_GL")
        if user:
            variables = {k: os.environ[k] for k in GL_VARIABLES if k in os.environ}
            failure = probe(variables)
            if failure is not None:
                raise SportError(
                    f"MuJoCo cannot render with MUJOCO_GL={user} here ({failure}); unset MUJOCO_GL to let sport "
                    f"pick a backend, or {INSTALL_HINT}"
                )
            os.environ["SPORT_GL_BACKEND"] = user
            return user
        names = [n.strip() for n in os.environ.get("SPORT_GL_BACKENDS", ",".join(CANDIDATES)).split(",") if n.strip()]
        unknown = [n for n in names if n not in CANDIDATES]
        if unknown:
            raise SportError(f"SPORT_GL_BACKENDS names unknown backends {unknown}; known: {', '.join(CANDIDATES)}")
        failures = []
        for name in names:
            failure = probe(CANDIDATES[name])
            if failure is None:
                os.environ.update(CANDIDATES[name])
                os.environ["SPORT_GL_BACKEND"] = name
                return name
            failures.append(f"{name}: {failure}")
        raise SportError(f"no OpenGL backend can render MuJoCo here (tried {'; '.join(failures)}); {INSTALL_HINT}")
