"""A policy set: one saved policy per ratio bound α, made by one stage (e.g. Projected PPO's α sweep).

The set is a folder with ``policies.json`` and, per α, ``alpha-<α>/policy.safetensors`` + ``policy.json``
(the model card). The index (format ``sport-policy-set-v1``) lists, per α, the policy's path relative to
the index, its SHA-256 and a free ``extra`` table (e.g. the training-time episode outcomes). A consumer
(the ``projected-sweep`` evaluator) takes each α's policy as the task policy for that α. Paths stay
relative, so a set can be moved or committed as a whole.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import attrs

from sport_core.artifacts import atomic_write_json, read_json, sha256_file
from sport_core.errors import ArtifactError

POLICY_SET_FORMAT = "sport-policy-set-v1"
INDEX = "policies.json"


def alpha_tag(alpha: float) -> str:
    """The file stem of an α: ``alpha-1.05`` (``repr`` round-trips, so distinct α never share files)."""
    return f"alpha-{float(alpha)!r}"


@attrs.frozen
class SetEntry:
    """One α of a set: the policy's weights (absolute path once read), their SHA-256, and ``extra``."""

    alpha: float
    weights: Path
    sha256: str
    extra: dict = attrs.Factory(dict)


def write_policy_set(folder: str | os.PathLike, entries: list[SetEntry], meta: dict[str, Any]) -> Path:
    """Write ``folder/policies.json`` for ``entries`` (weights inside ``folder``); returns the index path."""
    folder = Path(folder)
    rows = []
    for e in sorted(entries, key=lambda e: e.alpha):
        try:
            rel = Path(e.weights).resolve().relative_to(folder.resolve())
        except ValueError as exc:
            raise ArtifactError(f"policy set {folder}: {e.weights} is not inside the set's folder") from exc
        rows.append({"alpha": float(e.alpha), "weights": rel.as_posix(), "sha256": e.sha256, "extra": e.extra})
    return atomic_write_json(folder / INDEX, {"format": POLICY_SET_FORMAT, **meta, "policies": rows})


def is_policy_set(path: str | os.PathLike) -> bool:
    """True if ``path`` is a policy-set index or a folder holding one."""
    p = Path(path)
    return (p.is_dir() and (p / INDEX).is_file()) or (p.is_file() and p.name == INDEX)


def read_policy_set(path: str | os.PathLike, made_by: str | None = None) -> dict[float, SetEntry]:
    """The entries of a set (``path``: the folder or its ``policies.json``), checking every weight's hash."""
    p = Path(path)
    index = p / INDEX if p.is_dir() else p
    data = read_json(index, what="policy set", made_by=made_by)
    if not isinstance(data, dict) or data.get("format") != POLICY_SET_FORMAT:
        raise ArtifactError(f"{index} is not a {POLICY_SET_FORMAT} index (foreign or corrupt file)")
    out: dict[float, SetEntry] = {}
    for row in data.get("policies", []):
        try:
            alpha, rel, digest = float(row["alpha"]), str(row["weights"]), str(row["sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"policy set {index}: malformed entry {row!r}") from exc
        if not (math.isfinite(alpha) and alpha >= 1.0) or alpha in out:
            raise ArtifactError(f"policy set {index}: bad or repeated alpha {row.get('alpha')!r}")
        weights = (index.parent / rel).resolve()
        if not weights.is_file() or sha256_file(weights) != digest:
            raise ArtifactError(f"policy set {index}: the policy for alpha {alpha:g} ({weights}) is missing or altered")
        out[alpha] = SetEntry(alpha, weights, digest, dict(row.get("extra") or {}))
    if not out:
        raise ArtifactError(f"policy set {index} lists no policies")
    return out
