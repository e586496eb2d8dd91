"""Certificates: their format, ``sport verify``, and checking a policy against one.

A certificate (``certificate.json``, written by a certifier stage) is self-contained and re-checkable: it
names its episode store and the base policy's weights (paths relative to the certificate, with SHA-256
hashes) and holds every number derived from them. :func:`verify_certificate` re-derives all of it:

1. the episode store's and the weights' hashes;
2. the store's header (run seed, and the context digest that ties the episodes to these weights, this env
   and this seed: :func:`store_context`), that it holds exactly episodes 0..N−1, and that each record's
   outcome agrees with its goal and violation steps (:func:`sport_core.collect.outcome_of`);
3. k(T), ε(T), T* and α* for every bound (:func:`sport_core.bounds.scenario_certificate`), compared with
   the certificate (integers exactly, floats to 1e-9 relative);
4. optionally (``--replay K``) K episodes re-simulated from the weights and the env, which must reproduce
   their stored records.

The first difference raises :class:`VerificationError` naming it (``sport verify`` exits with 1); a
missing, corrupt or foreign file raises :class:`ArtifactError` (exit 2). Both are one line.

:func:`evaluate_policy_records` compares a task policy's episodes with a certificate: at the horizon T*,
its empirical failure rate and Clopper–Pearson limits next to the prior bound min(1, α^T*·ε(T*)).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sport_core import __version__
from sport_core.artifacts import read_json, sha256_file
from sport_core.bounds import (
    epsilon_lower,
    epsilon_upper,
    failures_by_horizon,
    scenario_certificate,
    success_steps,
)
from sport_core.errors import ArtifactError

CERTIFICATE_FORMAT = "sport-certificate-v1"
EVALUATION_FORMAT = "sport-certified-evaluation-v1"
METHODS = ("scenario", "scenario-uniform")
FAILURE_DEFINITION = (
    "an episode fails by horizon T unless it reached the goal at a step <= T with no hazard violation at or "
    "before that step (a goal and a violation in the same step count as a failure)"
)
_REQUIRED = (
    "format",
    "method",
    "seed",
    "env",
    "scenario",
    "base_policy",
    "episode_store",
    "episodes",
    "beta",
    "bonferroni",
    "t_max",
    "failures",
    "epsilon",
    "bounds",
)


class VerificationError(ArtifactError):
    """A certificate does not match the episodes, weights or numbers it claims; the message names the first
    difference."""


# -- building blocks shared by certifiers and the checks ---------------------------------------------------


def store_context(weights_sha256: str, env_table: Mapping[str, Any], seed: int) -> str:
    """The context text of a certification's episode store: what the episodes are episodes *of*."""
    return json.dumps({"policy_sha256": weights_sha256, "env": dict(env_table), "seed": int(seed)}, sort_keys=True)


def policy_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, model card) of a saved policy named by either file (see :mod:`sport_core.weights`)."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def relative_path(target: str | os.PathLike, start: str | os.PathLike) -> str:
    """``target`` relative to the folder ``start`` (POSIX separators), so that results can be moved whole."""
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def input_ref(ctx: Any, role: str) -> str:
    """How a stage's recipe named input ``role``: ``"base"`` (a stage) or ``"file <path>"`` with the path
    relative to the stage folder, as results record it (so that a run folder can be moved whole)."""
    ref = ctx.input_refs[role]
    if ref.startswith("file "):
        return "file " + relative_path(ref[5:], ctx.stage_dir)
    return ref


def describe_policy(path: str | os.PathLike, cert_dir: Path) -> dict[str, Any]:
    """The certificate's ``base_policy`` entry: weight and card paths (relative to ``cert_dir``) and hashes."""
    weights, card = policy_files(path)
    for f in (weights, card):
        if not f.is_file():
            raise ArtifactError(f"policy file {f} does not exist")
    card_data = read_json(card, what="model card")
    return {
        "weights": relative_path(weights, cert_dir),
        "weights_sha256": sha256_file(weights),
        "card": relative_path(card, cert_dir),
        "card_sha256": sha256_file(card),
        "policy": card_data.get("policy") if isinstance(card_data, dict) else None,
    }


def describe_store(path: str | os.PathLike, cert_dir: Path) -> dict[str, Any]:
    """The certificate's ``episode_store`` entry: path (relative to ``cert_dir``), SHA-256 and size."""
    from sport_core.episodes import HEADER_SIZE, RECORD_SIZE, VERSION

    p = Path(path)
    return {
        "path": relative_path(p, cert_dir),
        "sha256": sha256_file(p),
        "bytes": p.stat().st_size,
        "format": f"SPORTEPS v{VERSION}: {HEADER_SIZE}-byte header, {RECORD_SIZE}-byte records "
        "(sport_core.episodes.RECORD_DTYPE)",
    }


def package_versions(pm: Any = None) -> dict[str, Any]:
    """Versions of Python, sport, numpy, scipy and torch (and of every loaded plugin, given a plugin manager)."""
    import scipy
    import torch

    out: dict[str, Any] = {
        "python": platform.python_version(),
        "sport": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
    }
    if pm is not None:
        out["plugins"] = {name: info.version for name, info in sorted(pm.infos.items())}
    return out


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def guarantee_text(simultaneous: bool) -> str:
    """The certificate's statement in words (``simultaneous``: the Bonferroni variant)."""
    horizons = (
        "for all horizons T <= t_max at once (each bound at beta / t_max: a union bound, so T may be "
        "chosen after seeing the data)"
        if simultaneous
        else "for each horizon T fixed in advance"
    )
    return (
        f"With confidence at least 1 - beta over the N base-policy episodes, {horizons}, the base policy fails by "
        "T with probability at most epsilon[T-1] on the scenario distribution stated in 'scenario'; every policy "
        "pi with pi(a|s) <= alpha * pi_base(a|s) for all states and actions (alpha >= 1) then fails by T with "
        "probability at most min(1, alpha^T * epsilon[T-1]). For each target bound B, alpha_star is the largest "
        "alpha that keeps this at or below B, reached at horizon T_star."
    )


def policy_input(ctx: Any, role: str = "policy") -> Path:
    """The saved policy a stage gets as input ``role``: the producing stage's ``policy`` artifact when it made
    several, else its only one (or the one the recipe pins with ``"stage:artifact"``)."""
    outputs = ctx.inputs.get(role, {})
    pinned = ":" in ctx.stage.inputs.get(role, "")
    return ctx.input(role, "policy" if "policy" in outputs and not pinned else None)


def certified_base_input(ctx: Any, cert: Mapping[str, Any], role: str = "base") -> Path:
    """The weights a stage gets as input ``role``, refused unless they are the certificate's base policy
    (the bound α^T·ε(T) holds only for policies within α of the certified base)."""
    from sport_core.errors import RecipeError

    weights, _ = policy_files(policy_input(ctx, role))
    certified = cert["base_policy"].get("weights_sha256")
    actual = sha256_file(weights)
    if actual != certified:
        raise RecipeError(
            f"stages.{ctx.name}.inputs.{role}: {weights} is not the certificate's base policy (SHA-256 "
            f"{actual[:12]}…, certified {str(certified)[:12]}…); the bound holds only for "
            "projections onto the certified base"
        )
    return weights


def read_certificate(path: str | os.PathLike) -> dict[str, Any]:
    """Read a certificate, refusing a missing, corrupt or foreign file (:class:`ArtifactError`)."""
    data = read_json(path, what="certificate", made_by='a certifier stage (e.g. certifier = "scenario")')
    if not isinstance(data, dict) or data.get("format") != CERTIFICATE_FORMAT:
        raise ArtifactError(f"{path} is not a {CERTIFICATE_FORMAT} certificate (foreign or corrupt file)")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ArtifactError(f"certificate {path} lacks {', '.join(missing)} (corrupt or truncated)")
    _check_types(data, Path(path))
    return data


def _check_types(cert: dict[str, Any], path: Path) -> None:
    """Refuse a certificate whose fields cannot even be recomputed (wrong types), with a one-line error."""

    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    def is_num(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    checks = {
        "seed": is_int(cert["seed"]) and cert["seed"] >= 0,
        "episodes": is_int(cert["episodes"]) and cert["episodes"] >= 1,
        "t_max": is_int(cert["t_max"])
        and cert["t_max"] >= 1
        and isinstance(cert["failures"], list)
        and len(cert["failures"]) == cert["t_max"],
        "beta": is_num(cert["beta"]) and 0 < cert["beta"] < 1,
        "bonferroni": isinstance(cert["bonferroni"], bool),
        "failures": isinstance(cert["failures"], list),
        "epsilon": isinstance(cert["epsilon"], list),
        "bounds": isinstance(cert["bounds"], list)
        and all(isinstance(b, dict) and is_num(b.get("bound")) and 0 < b["bound"] <= 1 for b in cert["bounds"]),
        "env": isinstance(cert["env"], dict) and isinstance(cert["env"].get("config", {}), dict),
        "base_policy": isinstance(cert["base_policy"], dict),
        "episode_store": isinstance(cert["episode_store"], dict),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise ArtifactError(f"certificate {path}: field {bad[0]} is malformed (corrupt or foreign file)")


def layout_seed_of(env_maker: Any, env_table: Mapping[str, Any]) -> Any:
    """The fixed layout's seed (or name), as the env maker or its config states it (None if neither does)."""
    for source in (env_maker, getattr(env_maker, "config", None)):
        for name in ("layout_seed", "layout"):
            value = getattr(source, name, None)
            if value is not None:
                return value
    return env_table.get("layout_seed", env_table.get("layout"))


def describe_env(env_maker: Any, env_table: Mapping[str, Any]) -> dict[str, Any]:
    """The certificate's ``env`` entry: id, layout seed, whether the layout is fixed, and the config table."""
    return {
        "id": env_maker.env_id,
        "layout_seed": layout_seed_of(env_maker, env_table),
        "fixed_layout": bool(env_maker.fixed_layout),
        "config": dict(env_table),
    }


def env_maker_from_certificate(cert: Mapping[str, Any], registry: Any) -> Any:
    """Rebuild the certified env's maker from the certificate's ``env.config`` table through the registry."""
    from sport_core.config import structure

    table = dict(cert["env"].get("config", {}))
    kind = table.pop("kind", None)
    if not isinstance(kind, str):
        raise ArtifactError("the certificate's env.config names no env kind (corrupt certificate)")
    component = registry.get("env", kind)
    return component.build(structure(component.config_cls, table, "certificate env.config"))


# -- verification -------------------------------------------------------------------------------------------


def _first_difference(claimed: Any, actual: Any, where: str) -> str | None:
    """Where ``claimed`` and ``actual`` first differ (None if they agree): ints, bools and strings exactly,
    floats to 1e-9 relative."""
    if isinstance(actual, dict):
        if not isinstance(claimed, dict):
            return f"{where}: expected a table"
        for key, value in actual.items():
            if key not in claimed:
                return f"{where}.{key}: missing"
            diff = _first_difference(claimed[key], value, f"{where}.{key}" if where else key)
            if diff:
                return diff
        return None
    if isinstance(actual, list):
        if not isinstance(claimed, list) or len(claimed) != len(actual):
            n = len(claimed) if isinstance(claimed, list) else "no"
            return f"{where}: certificate has {n} entries, recomputed {len(actual)}"
        for i, (c, a) in enumerate(zip(claimed, actual, strict=True)):
            diff = _first_difference(c, a, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(actual, float) and isinstance(claimed, (int, float)) and not isinstance(claimed, bool):
        if math.isclose(claimed, actual, rel_tol=1e-9, abs_tol=0.0):
            return None
    elif type(claimed) is type(actual) and claimed == actual:
        return None
    return f"{where}: certificate says {claimed!r}, recomputed {actual!r}"


def _resolve(cert_dir: Path, rel: str, override: str | os.PathLike | None) -> Path:
    if override is not None:
        return Path(override)
    p = Path(str(rel))
    return p if p.is_absolute() else cert_dir / p


def verify_certificate(
    path: str | os.PathLike,
    *,
    store: str | os.PathLike | None = None,
    policy: str | os.PathLike | None = None,
    replay: int = 0,
    registry: Any = None,
) -> dict[str, Any]:
    """Re-check a certificate (see the module docstring); returns a short summary if everything matches.

    ``store`` / ``policy`` override the paths in the certificate (e.g. after moving files); ``replay`` > 0
    re-simulates that many episodes (evenly spread over 0..N−1), which needs ``registry`` (or loads the
    installed plugins) to rebuild the env and the policy.
    """
    from sport_core.collect import OUTCOMES, outcome_of
    from sport_core.episodes import context_digest, read_episodes

    cert_path = Path(path)
    cert = read_certificate(cert_path)
    cert_dir = cert_path.parent

    def mismatch(what: str) -> VerificationError:
        return VerificationError(f"{cert_path}: {what}")

    if cert["method"] not in METHODS:
        raise mismatch(f"method: unknown certification method {cert['method']!r} (known: {', '.join(METHODS)})")
    if cert["method"] == "scenario-uniform" and cert["bonferroni"] is not True:
        raise mismatch("bonferroni: a scenario-uniform certificate must hold for all horizons at once (true)")

    # 1. hashes
    store_entry, policy_entry = cert["episode_store"], cert["base_policy"]
    store_path = _resolve(cert_dir, store_entry.get("path", ""), store)
    if not store_path.is_file():
        raise ArtifactError(f"episode store {store_path} named by {cert_path} does not exist")
    if sha256_file(store_path) != store_entry.get("sha256"):
        raise mismatch(f"episode_store.sha256: {store_path} has changed since the certificate was written")
    weights, card = policy_files(_resolve(cert_dir, policy_entry.get("weights", ""), policy))
    for f, key in ((weights, "weights_sha256"), (card, "card_sha256")):
        if not f.is_file():
            raise ArtifactError(f"base policy file {f} named by {cert_path} does not exist (use --policy PATH)")
        if sha256_file(f) != policy_entry.get(key):
            raise mismatch(f"base_policy.{key}: {f} has changed since the certificate was written")

    # The env's description, where its plugin is installed: the same config must describe the same scenario.
    env_checked = False
    if registry is not None:
        from sport_core.errors import RegistryError

        try:
            maker = env_maker_from_certificate(cert, registry)
        except RegistryError:
            maker = None
        if maker is not None:
            diff = _first_difference(cert["env"], describe_env(maker, cert["env"].get("config", {})), "env")
            diff = diff or _first_difference(cert["scenario"], maker.scenario, "scenario")
            if diff:
                raise mismatch(diff)
            env_checked = True

    # 2. the store itself
    episodes = read_episodes(store_path, strict=True)
    if episodes.header.seed != cert["seed"]:
        raise mismatch(
            f"seed: certificate says {cert['seed']}, the episode store was collected with {episodes.header.seed}"
        )
    context = store_context(policy_entry["weights_sha256"], cert["env"].get("config", {}), cert["seed"])
    if episodes.header.context != context_digest(context).hex():
        raise mismatch(
            "episode_store: its episodes were not collected from this policy, env and seed (header context differs)"
        )
    n = len(episodes)
    if n != cert["episodes"]:
        raise mismatch(f"episodes: certificate says {cert['episodes']}, the store holds {n}")
    expected = np.arange(n)
    if not np.array_equal(episodes.indices, expected):
        first = int(np.flatnonzero(episodes.indices != expected)[0])
        raise mismatch(f"episode_store: episode {first} is missing (the store must hold episodes 0..{n - 1})")
    recs = episodes.records
    for i, (o, g, v) in enumerate(
        zip(recs["outcome"].tolist(), recs["goal_step"].tolist(), recs["violation_step"].tolist(), strict=True)
    ):
        if OUTCOMES[o] != outcome_of(g, v):
            raise mismatch(f"episode {i}: outcome {OUTCOMES[o]!r} contradicts goal step {g}, violation step {v}")

    # 3. every number
    numbers = scenario_certificate(
        failures_by_horizon(recs, int(cert["t_max"])),
        n,
        float(cert["beta"]),
        [b.get("bound") for b in cert["bounds"]],
        bool(cert["bonferroni"]),
    )
    diff = _first_difference(cert, numbers, "")
    if diff:
        raise mismatch(diff)

    # 4. re-simulation
    replayed = 0
    if replay > 0:
        replayed = _replay(cert, weights, episodes, replay, registry, mismatch)
    summary = {
        "certificate": str(cert_path),
        "method": cert["method"],
        "episodes": n,
        "replayed": replayed,
        "env_checked": env_checked,
        "bounds": [(b["bound"], b["T_star"], b["alpha_star"], b["feasible"]) for b in numbers["bounds"]],
    }
    return summary


def _replay(cert: dict, weights: Path, episodes: Any, count: int, registry: Any, mismatch: Any) -> int:
    from sport_core.actors import PolicyActor
    from sport_core.collect import run_episode
    from sport_core.episodes import to_episode_records
    from sport_core.weights import load_policy

    if registry is None:
        from sport_core.plugins import load_plugin_manager

        registry = load_plugin_manager().registry
    env = env_maker_from_certificate(cert, registry).make()
    actor = PolicyActor(load_policy(weights, registry))
    n = len(episodes)
    picks = sorted({int(i) for i in np.linspace(0, n - 1, min(count, n)).round()})
    try:
        for i in picks:
            again = run_episode(actor, env, cert["seed"], i)
            was = to_episode_records(episodes.records[i : i + 1], episodes.header.seed)[0]  # sorted: row i is episode i
            for field in ("outcome", "goal_step", "violation_step", "length"):
                if getattr(again, field) != getattr(was, field):
                    raise mismatch(
                        f"episode {i}: replay gives {field} {getattr(again, field)!r}, the store has "
                        f"{getattr(was, field)!r} (the store does not come from these weights and env)"
                    )
            if not math.isclose(again.ret, was.ret, rel_tol=1e-6, abs_tol=1e-9):
                raise mismatch(f"episode {i}: replay gives return {again.ret!r}, the store has {was.ret!r}")
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()
    return len(picks)


# -- evaluating a task policy against a certificate ------------------------------------------------------------


def certificate_horizon(
    cert: Mapping[str, Any], bound: float | None = None, horizon: int | None = None
) -> tuple[int, float]:
    """(T, B) to evaluate at: ``horizon`` if given, else T* of ``bound`` (default: the largest certified B)."""
    rows = cert["bounds"]
    if horizon is not None:
        if not 1 <= horizon <= cert["t_max"]:
            raise ValueError(f"horizon {horizon} is outside the certified 1..{cert['t_max']}")
        return int(horizon), float(bound) if bound is not None else math.nan
    if not rows:
        raise ValueError("the certificate lists no target bounds; give a horizon")
    if bound is None:
        row = max(rows, key=lambda r: r["bound"])
    else:
        matches = [r for r in rows if math.isclose(r["bound"], bound, rel_tol=1e-12)]
        if not matches:
            known = ", ".join(str(r["bound"]) for r in rows)
            raise ValueError(f"bound {bound} is not in the certificate (certified bounds: {known})")
        row = matches[0]
    return int(row["T_star"]), float(row["bound"])


def stage_certificate(
    ctx: Any, bound: float | None = None, horizon: int | None = None
) -> tuple[Path, dict[str, Any], int, float]:
    """(path, certificate, T, B) of a stage's ``certificate`` input, T and B as :func:`certificate_horizon`
    gives them; a bound or horizon the certificate does not have is a recipe error naming the stage."""
    from sport_core.errors import RecipeError

    path = ctx.input("certificate", "certificate")
    cert = read_certificate(path)
    try:
        horizon, bound = certificate_horizon(cert, bound, horizon)
    except ValueError as exc:
        raise RecipeError(f"stages.{ctx.name}.config: {exc}") from exc
    return Path(path), cert, horizon, bound


def evaluate_policy_records(
    cert: Mapping[str, Any],
    runs: Mapping[float, Any],
    *,
    bound: float | None = None,
    horizon: int | None = None,
) -> dict[str, Any]:
    """Compare episodes of task policies with a certificate, one row per α.

    ``runs`` maps each ratio bound α (≥ 1) the policy is claimed to satisfy to its episodes (anything
    :func:`sport_core.bounds.failures_by_horizon` accepts). At T (:func:`certificate_horizon`), each row holds
    the failures k_t of N_t episodes, the empirical rate k_t/N_t, the Clopper–Pearson upper and lower limits
    at the certificate's β, the prior bound min(1, α^T·ε(T)), whether the data contradict it (lower limit
    above the prior bound), and the mean/std length of the episodes that succeeded by T.
    """
    T, B = certificate_horizon(cert, bound, horizon)
    beta = float(cert["beta"])
    eps_T = float(cert["epsilon"][T - 1])
    rows = []
    for alpha in sorted(runs):
        records = runs[alpha]
        steps = success_steps(records)
        n_t = int(steps.size)
        if n_t == 0:
            raise ValueError(f"alpha {alpha}: no episodes to evaluate")
        k_t = int(failures_by_horizon(records, T)[T - 1])
        lengths = steps[(steps > 0) & (steps <= T)].astype(np.float64)
        if alpha < 1:
            raise ValueError(f"the ratio bound alpha must be at least 1, got {alpha}")
        prior = float(np.exp(min(0.0, T * math.log(alpha) + math.log(eps_T))))  # min(1, α^T ε(T))
        lower = float(epsilon_lower(k_t, n_t, beta))
        rows.append(
            {
                "alpha": float(alpha),
                "episodes": n_t,
                "failures": k_t,
                "failure_rate": k_t / n_t,
                "cp_upper": float(epsilon_upper(k_t, n_t, beta)),
                "cp_lower": lower,
                "prior_bound": prior,
                "contradicts_prior": lower > prior,
                "success_length_mean": float(lengths.mean()) if lengths.size else None,
                "success_length_std": float(lengths.std()) if lengths.size else None,
            }
        )
    return {
        "format": EVALUATION_FORMAT,
        "horizon": T,
        "bound": None if math.isnan(B) else B,
        "beta": beta,
        "epsilon_base": eps_T,
        "failure_definition": FAILURE_DEFINITION,
        "rows": rows,
    }


# -- the `sport verify` command -----------------------------------------------------------------------------


def _cmd_verify(args: argparse.Namespace) -> int:
    import sys

    from sport_core.errors import SportError
    from sport_core.plugins import load_plugin_manager

    try:
        registry = load_plugin_manager().registry
    except SportError as exc:
        if args.replay:
            raise
        print(f"sport verify: note: plugins did not load ({exc}); the env description is not checked", file=sys.stderr)
        registry = None
    try:
        summary = verify_certificate(
            args.certificate, store=args.store, policy=args.policy, replay=args.replay, registry=registry
        )
    except VerificationError as exc:
        print(f"sport verify: MISMATCH: {exc}", file=sys.stderr)
        return 1
    reachable = [f"B={b:g}: T*={t}, alpha*={a:.6g}" for b, t, a, ok in summary["bounds"] if ok]
    unreachable = [f"{b:g}" for b, _, _, ok in summary["bounds"] if not ok]
    if unreachable:
        reachable.append(f"B={', '.join(unreachable)}: not reachable (epsilon > B at every T)")
    extra = f", {summary['replayed']} episodes replayed" if summary["replayed"] else ""
    extra += "" if summary["env_checked"] else ", env description not checked (its plugin is not installed)"
    print(
        f"{summary['certificate']}: OK ({summary['method']}, {summary['episodes']} episodes{extra}; "
        f"{'; '.join(reachable)})"
    )
    return 0


def add_verify_command(sub: argparse._SubParsersAction) -> None:
    """Add ``sport verify CERTIFICATE [--store PATH] [--policy PATH] [--replay K]`` to the CLI."""
    p = sub.add_parser(
        "verify",
        help="re-check a certificate against its episodes and weights",
        description="Recompute every number of a certificate from its episode store and check the hashes of the "
        "store and the base policy's weights. Exit status 0: all match; 1: a mismatch (named); "
        "2: a missing, corrupt or foreign file.",
    )
    p.add_argument("certificate", help="certificate.json")
    p.add_argument("--store", help="the episode store, if it moved (default: the path in the certificate)")
    p.add_argument("--policy", help="the base policy's weights, if they moved (default: the path in the certificate)")
    p.add_argument(
        "--replay",
        type=int,
        default=0,
        metavar="K",
        help="also re-simulate K episodes and compare them with the store (needs the env's plugin)",
    )
    p.set_defaults(func=_cmd_verify)
