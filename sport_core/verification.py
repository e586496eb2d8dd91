"""Re-checking certificates: ``sport verify`` dispatches on a certificate's ``method`` to the verifier
component registered under that name (hook ``sport_register_verifiers``), so a certifier plugin ships the
check of its own certificates.

A verifier re-derives everything a certificate claims from the files it names; the first difference raises
:class:`VerificationError` naming it (``sport verify`` exits 1), a missing, corrupt or foreign file raises
:class:`~sport_core.errors.ArtifactError` (exit 2). The building blocks here serve any certifier whose
certificate rests on an episode store of the base policy (the built-in ``scenario`` verifiers use them all):

1. :func:`check_base_policy` and :func:`check_episode_store`: the hashes of the weights, the card and the
   store; the store's header (its seed, and the context digest that ties the episodes to these weights, this
   env and this seed: :func:`sport_core.certificates.store_context`); that it holds exactly episodes
   0..N−1; that every record's outcome agrees with its goal and violation steps;
2. :func:`check_env`: where the env's plugin is installed, the recorded env description and scenario are what
   the env's config gives today;
3. :func:`check_numbers`: recomputed numbers against the certificate (integers, strings and booleans exactly,
   floats to 1e-9 relative);
4. :func:`replay_episodes`: re-simulate episodes from the weights and the env; they must reproduce the store.

:func:`verify_store_certificate` does all four in that order; a verifier passes it only how to recompute its
method's numbers from the episode records.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from sport_core.artifacts import sha256_file
from sport_core.certificates import (
    describe_env,
    env_maker_from_certificate,
    guarantee_label,
    read_certificate,
    store_context,
)
from sport_core.errors import ArtifactError, RegistryError
from sport_core.weights import policy_files


class VerificationError(ArtifactError):
    """A certificate does not match the episodes, weights or numbers it claims; the message names the first
    difference."""


@attrs.frozen
class VerificationSummary:
    """What a verifier checked: the certificate, its method and guarantee (:func:`guarantee_label`), the
    number of episodes it rests on (None if it rests on none), how many were re-simulated, whether the env
    description was checked against the installed env plugin, and (B, T*, α*, feasible) per target bound."""

    certificate: str
    method: str
    guarantee: str
    episodes: int | None
    replayed: int
    env_checked: bool
    bounds: tuple[tuple[float, int, float, bool], ...]


def mismatch(cert_path: str | os.PathLike, what: str) -> VerificationError:
    """The error for a certificate that differs from what it claims: ``<path>: <field>: <difference>``."""
    return VerificationError(f"{cert_path}: {what}")


def first_difference(claimed: Any, actual: Any, where: str = "") -> str | None:
    """Where ``claimed`` and ``actual`` first differ (None if they agree), walking ``actual``'s keys: ints,
    bools and strings exactly, floats to 1e-9 relative."""
    if isinstance(actual, dict):
        if not isinstance(claimed, dict):
            return f"{where}: expected a table"
        for key, value in actual.items():
            if key not in claimed:
                return f"{where}.{key}: missing"
            diff = first_difference(claimed[key], value, f"{where}.{key}" if where else key)
            if diff:
                return diff
        return None
    if isinstance(actual, list):
        if not isinstance(claimed, list) or len(claimed) != len(actual):
            n = len(claimed) if isinstance(claimed, list) else "no"
            return f"{where}: certificate has {n} entries, recomputed {len(actual)}"
        for i, (c, a) in enumerate(zip(claimed, actual, strict=True)):
            diff = first_difference(c, a, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(actual, float) and isinstance(claimed, (int, float)) and not isinstance(claimed, bool):
        if math.isclose(claimed, actual, rel_tol=1e-9, abs_tol=0.0):
            return None
    elif type(claimed) is type(actual) and claimed == actual:
        return None
    return f"{where}: certificate says {claimed!r}, recomputed {actual!r}"


def check_numbers(cert_path: str | os.PathLike, cert: Mapping[str, Any], numbers: Mapping[str, Any]) -> None:
    """Every recomputed number must equal the certificate's (:func:`first_difference`)."""
    diff = first_difference(dict(cert), dict(numbers))
    if diff:
        raise mismatch(cert_path, diff)


def resolve_path(cert_path: str | os.PathLike, recorded: str, override: str | os.PathLike | None = None) -> Path:
    """A file the certificate names (relative to its folder), or ``override`` (e.g. after moving files)."""
    if override is not None:
        return Path(override)
    p = Path(str(recorded))
    return p if p.is_absolute() else Path(cert_path).parent / p


def check_base_policy(
    cert_path: str | os.PathLike, cert: Mapping[str, Any], override: str | os.PathLike | None = None
) -> Path:
    """The base policy's weights, checked against the certificate's hashes of weights and card."""
    entry = cert["base_policy"]
    weights, card = policy_files(resolve_path(cert_path, entry.get("weights", ""), override))
    for f, key in ((weights, "weights_sha256"), (card, "card_sha256")):
        if not f.is_file():
            raise ArtifactError(f"base policy file {f} named by {cert_path} does not exist (use --policy PATH)")
        if sha256_file(f) != entry.get(key):
            raise mismatch(cert_path, f"base_policy.{key}: {f} has changed since the certificate was written")
    return weights


def check_episode_store(
    cert_path: str | os.PathLike, cert: Mapping[str, Any], override: str | os.PathLike | None = None
) -> Any:
    """The certificate's episode store (``episode_store``, ``episodes``), read strictly and checked (see the
    module docstring, point 1); returns the :class:`sport_core.episodes.EpisodeFile`."""
    from sport_core.collect import OUTCOMES, outcome_of
    from sport_core.episodes import context_digest, read_episodes

    for key in ("episode_store", "episodes"):
        if key not in cert:
            raise ArtifactError(f"certificate {cert_path} lacks {key} (corrupt or truncated)")
    entry = cert["episode_store"]
    path = resolve_path(cert_path, entry.get("path", ""), override)
    if not path.is_file():
        raise ArtifactError(f"episode store {path} named by {cert_path} does not exist")
    if sha256_file(path) != entry.get("sha256"):
        raise mismatch(cert_path, f"episode_store.sha256: {path} has changed since the certificate was written")
    episodes = read_episodes(path, strict=True)
    if episodes.header.seed != cert["seed"]:
        raise mismatch(
            cert_path,
            f"seed: certificate says {cert['seed']}, the episode store was collected with {episodes.header.seed}",
        )
    context = store_context(cert["base_policy"]["weights_sha256"], cert["env"].get("config", {}), cert["seed"])
    if episodes.header.context != context_digest(context).hex():
        raise mismatch(
            cert_path,
            "episode_store: its episodes were not collected from this policy, env and seed (header context differs)",
        )
    n = len(episodes)
    if n != cert["episodes"]:
        raise mismatch(cert_path, f"episodes: certificate says {cert['episodes']}, the store holds {n}")
    expected = np.arange(n)
    if not np.array_equal(episodes.indices, expected):
        first = int(np.flatnonzero(episodes.indices != expected)[0])
        raise mismatch(
            cert_path, f"episode_store: episode {first} is missing (the store must hold episodes 0..{n - 1})"
        )
    recs = episodes.records
    for i, (o, g, v) in enumerate(
        zip(recs["outcome"].tolist(), recs["goal_step"].tolist(), recs["violation_step"].tolist(), strict=True)
    ):
        if OUTCOMES[o] != outcome_of(g, v):
            raise mismatch(
                cert_path, f"episode {i}: outcome {OUTCOMES[o]!r} contradicts goal step {g}, violation step {v}"
            )
    return episodes


def check_env(cert_path: str | os.PathLike, cert: Mapping[str, Any], registry: Any) -> bool:
    """Whether the env description could be checked (its plugin is installed); a difference between the
    recorded ``env``/``scenario`` and what the env's config gives today is a mismatch."""
    try:
        maker = env_maker_from_certificate(cert, registry)
    except RegistryError:
        return False
    diff = first_difference(cert["env"], describe_env(maker, cert["env"].get("config", {})), "env")
    diff = diff or first_difference(cert["scenario"], maker.scenario, "scenario")
    if diff:
        raise mismatch(cert_path, diff)
    return True


def replay_episodes(
    cert_path: str | os.PathLike, cert: Mapping[str, Any], weights: Path, episodes: Any, count: int, registry: Any
) -> int:
    """Re-simulate ``count`` episodes (evenly spread over 0..N−1) from the weights and the certified env with
    each episode's own seed; each must reproduce its stored outcome, steps, length and return. Returns how
    many were replayed."""
    from sport_core.actors import PolicyActor
    from sport_core.collect import run_episode
    from sport_core.episodes import to_episode_records
    from sport_core.weights import load_policy

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
                        cert_path,
                        f"episode {i}: replay gives {field} {getattr(again, field)!r}, the store has "
                        f"{getattr(was, field)!r} (the store does not come from these weights and env)",
                    )
            if not math.isclose(again.ret, was.ret, rel_tol=1e-6, abs_tol=1e-9):
                raise mismatch(cert_path, f"episode {i}: replay gives return {again.ret!r}, the store has {was.ret!r}")
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()
    return len(picks)


def summarise(
    cert_path: str | os.PathLike, cert: Mapping[str, Any], *, episodes: int | None, replayed: int, env_checked: bool
) -> VerificationSummary:
    """The :class:`VerificationSummary` of a certificate that passed its verifier's checks."""
    return VerificationSummary(
        certificate=str(cert_path),
        method=str(cert["method"]),
        guarantee=guarantee_label(cert),
        episodes=episodes,
        replayed=replayed,
        env_checked=env_checked,
        bounds=tuple((b["bound"], b["T_star"], b["alpha_star"], b["feasible"]) for b in cert["bounds"]),
    )


def verify_store_certificate(
    path: str | os.PathLike,
    cert: Mapping[str, Any],
    recompute: Callable[[Any], Mapping[str, Any]],
    *,
    store: str | os.PathLike | None = None,
    policy: str | os.PathLike | None = None,
    replay: int = 0,
    registry: Any = None,
) -> VerificationSummary:
    """The whole check of a certificate that rests on an episode store of its base policy: the base policy's
    hashes, the env description, the store (point 1 of the module docstring), ``recompute(episodes)`` (the
    method's numbers from the :class:`sport_core.episodes.EpisodeFile`) against the certificate, and ``replay``
    re-simulated episodes. A verifier component's ``verify`` is usually this with its method's ``recompute``."""
    weights = check_base_policy(path, cert, policy)
    env_checked = check_env(path, cert, registry)
    episodes = check_episode_store(path, cert, store)
    check_numbers(path, cert, recompute(episodes))
    replayed = replay_episodes(path, cert, weights, episodes, replay, registry) if replay > 0 else 0
    return summarise(path, cert, episodes=len(episodes), replayed=replayed, env_checked=env_checked)


def verify_certificate(
    path: str | os.PathLike,
    *,
    store: str | os.PathLike | None = None,
    policy: str | os.PathLike | None = None,
    replay: int = 0,
    registry: Any = None,
) -> VerificationSummary:
    """Re-check a certificate with the verifier registered under its ``method`` (see the module docstring).

    ``store`` / ``policy`` override the paths in the certificate (e.g. after moving files); ``replay`` > 0
    asks the verifier to re-simulate that many episodes. ``registry`` defaults to the installed plugins'.
    A method no installed plugin verifies is an :class:`ArtifactError` naming the known ones.
    """
    cert = read_certificate(path)
    if registry is None:
        from sport_core.plugins import load_plugin_manager

        registry = load_plugin_manager().registry
    method = cert["method"]
    try:
        component = registry.get("verifier", method)
    except RegistryError as exc:
        raise ArtifactError(
            f"{path}: no verifier for certification method {method!r} ({exc}); install or enable the plugin "
            "whose certifier wrote it"
        ) from exc
    return component.build().verify(Path(path), cert, store=store, policy=policy, replay=replay, registry=registry)
