"""Certificates: the versioned format every certifier writes and every evaluator reads.

A certificate (``certificate.json``) bounds a base policy's failure probability by each horizon T,
``epsilon[T-1]``, on one scenario distribution, and derives for target bounds B the horizon T* and ratio bound
α* such that every policy within α* of the base (π ≤ α*·π_base everywhere) fails by T* with probability at
most α*^T*·ε(T*) = B. Its fields are fixed by the JSON Schema ``sport_core/schemas/certificate-v2.schema.json``
(:func:`certificate_schema`); the required ones are what evaluators read. ``guarantee.kind`` says what ε is
(``frequentist``, ``bayesian`` or ``exact``), and evaluators print it next to every bound they derive, so a
Bayesian credible bound is never shown as a confidence bound.

A certifier builds the common fields with :func:`new_certificate`, adds its own and writes with
:func:`write_certificate` (which refuses anything the schema does not accept); readers use
:func:`read_certificate`, which also reads version 1 (the scenario certificates written before version 2) by
upgrading them in memory. ``sport verify`` re-checks a certificate with the verifier component registered
under its ``method`` (:mod:`sport_core.verification`).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from sport_core.artifacts import atomic_write_json, read_json, relative_path, sha256_file
from sport_core.errors import ArtifactError
from sport_core.provenance import now_utc, package_versions
from sport_core.weights import policy_files

CERTIFICATE_FORMAT = "sport-certificate-v2"
LEGACY_FORMAT = "sport-certificate-v1"
_SCHEMAS = {CERTIFICATE_FORMAT: "certificate-v2.schema.json", LEGACY_FORMAT: "certificate-v1.schema.json"}

#: ``guarantee.kind`` values and how evaluators name the bound α^T·ε(T) derived from each.
GUARANTEE_KINDS: dict[str, str] = {
    "frequentist": "frequentist bound (confidence over the certification episodes)",
    "bayesian": "Bayesian credible bound (posterior probability under the stated prior; not a confidence bound)",
    "exact": "exact failure probability",
}

FAILURE_DEFINITION = (
    "an episode fails by horizon T unless it reached the goal at a step <= T with no hazard violation at or "
    "before that step (a goal and a violation in the same step count as a failure)"
)


@functools.cache
def certificate_schema(fmt: str = CERTIFICATE_FORMAT) -> dict[str, Any]:
    """The JSON Schema of certificate format ``fmt`` (``sport-certificate-v2`` or the read-only ``-v1``)."""
    name = _SCHEMAS[fmt]
    return json.loads(resources.files("sport_core.schemas").joinpath(name).read_text(encoding="utf-8"))


def _where(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_certificate(data: Any, path: str | os.PathLike) -> dict[str, Any]:
    """``data`` checked against its format's schema (and ``len(epsilon) == t_max``), version 1 upgraded to
    version 2; anything else is a one-line :class:`ArtifactError` naming the field."""
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt not in _SCHEMAS:
        raise ArtifactError(
            f"{path} is not a sport certificate (format {fmt!r}; readable: {', '.join(_SCHEMAS)}) — foreign or "
            "corrupt file"
        )
    validator = jsonschema.Draft202012Validator(certificate_schema(fmt))
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = _where(error)
        if error.validator == "required":
            missing = re.match(r"'(.+?)' is a required property", error.message)
            name = missing.group(1) if missing else error.message
            raise ArtifactError(f"certificate {path} lacks {f'{where}.' if where else ''}{name} (corrupt or truncated)")
        message = error.message if len(error.message) <= 100 else error.message[:97] + "..."
        raise ArtifactError(
            f"certificate {path}: field {where or '(top)'} is malformed: {message} (corrupt or foreign file)"
        )
    for field in ("epsilon", "failures"):
        if field in data and len(data[field]) != data["t_max"]:
            raise ArtifactError(
                f"certificate {path}: field {field} is malformed: {len(data[field])} entries for t_max "
                f"{data['t_max']} (corrupt or foreign file)"
            )
    return _upgrade_v1(data) if fmt == LEGACY_FORMAT else data


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 (scenario) certificate in version-2 shape: its guarantee was Clopper-Pearson, at β per
    horizon or β / t_max for all horizons at once."""
    simultaneous = bool(data["bonferroni"])
    beta = float(data["beta"])
    return {
        **data,
        "guarantee": {
            "kind": "frequentist",
            "level": 1.0 - (beta / data["t_max"] if simultaneous else beta),
            "simultaneous": simultaneous,
            "description": "Clopper-Pearson upper limit",
        },
        "statement": data.get("statement", ""),
    }


def read_certificate(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a certificate (:func:`check_certificate`); a missing, corrupt or foreign file is a
    one-line :class:`ArtifactError`."""
    data = read_json(path, what="certificate", made_by='a certifier stage (e.g. certifier = "scenario")')
    return check_certificate(data, path)


def write_certificate(path: str | os.PathLike, certificate: Mapping[str, Any]) -> Path:
    """Check ``certificate`` against the version-2 schema, then write it atomically; returns the path. A
    certificate the schema refuses is never written (the error names the field)."""
    data = dict(certificate)
    if data.get("format") != CERTIFICATE_FORMAT:
        raise ArtifactError(
            f"refusing to write {path}: format must be {CERTIFICATE_FORMAT!r}, got {data.get('format')!r}"
        )
    check_certificate(json.loads(json.dumps(data)), path)
    return atomic_write_json(path, data)


def guarantee_label(certificate: Mapping[str, Any]) -> str:
    """The guarantee in a few words, for tables and logs: ``frequentist (Clopper-Pearson upper limit, level
    1 - 1e-07, each horizon)`` or ``bayesian (Beta(1, 1) prior, …); not a confidence bound``."""
    g = certificate.get("guarantee", {})
    if not g:
        return "unspecified (the certificate states no guarantee)"
    kind = g.get("kind", "unspecified")
    level = float(g.get("level", float("nan")))
    parts = [g.get("description", ""), f"level 1 - {1 - level:.3g}" if kind != "exact" else ""]
    parts.append("all horizons at once" if g.get("simultaneous") else "each horizon")
    if g.get("prior"):
        parts.insert(0, f"{g['prior']} prior")
    text = f"{kind} ({', '.join(p for p in parts if p)})"
    return text + ("; not a confidence bound" if kind == "bayesian" else "")


# -- what certifiers record ----------------------------------------------------------------------------------


def store_context(weights_sha256: str, env_table: Mapping[str, Any], seed: int) -> str:
    """The context text of a certification's episode store: what the episodes are episodes *of* (its digest
    is in the store's header, see :mod:`sport_core.episodes`)."""
    return json.dumps({"policy_sha256": weights_sha256, "env": dict(env_table), "seed": int(seed)}, sort_keys=True)


def describe_policy(path: str | os.PathLike, cert_dir: Path) -> dict[str, Any]:
    """A saved policy as results record it: weight and card paths (relative to ``cert_dir``) and hashes."""
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
    """An episode store as results record it: path (relative to ``cert_dir``), SHA-256, size and format."""
    from sport_core.episodes import HEADER_SIZE, RECORD_SIZE, VERSION

    p = Path(path)
    return {
        "path": relative_path(p, cert_dir),
        "sha256": sha256_file(p),
        "bytes": p.stat().st_size,
        "format": f"SPORTEPS v{VERSION}: {HEADER_SIZE}-byte header, {RECORD_SIZE}-byte records "
        "(sport_core.episodes.RECORD_DTYPE)",
    }


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


def new_certificate(
    ctx: Any,
    *,
    method: str,
    guarantee: Mapping[str, Any],
    statement: str,
    weights: str | os.PathLike,
    numbers: Mapping[str, Any],
    policy_role: str = "policy",
) -> dict[str, Any]:
    """The fields every certificate has, for a certifier stage that certified ``weights`` (its input
    ``policy_role``) on ``ctx.env``: format, method, guarantee, statement, failure definition, scenario, env,
    seed, base policy, then ``numbers`` (at least ``beta``, ``t_max``, ``epsilon`` and ``bounds``, e.g. from
    :func:`sport_core.bounds.ratio_bounds`), the stage, the time and the versions. Add method-specific fields
    to the result and write it with :func:`write_certificate`."""
    env_table = ctx.env_ref.to_table()
    return {
        "format": CERTIFICATE_FORMAT,
        "method": method,
        "guarantee": dict(guarantee),
        "statement": statement,
        "failure_definition": FAILURE_DEFINITION,
        "scenario": ctx.env.scenario,
        "env": describe_env(ctx.env, env_table),
        "seed": ctx.seed,
        "base_policy": {**describe_policy(weights, ctx.stage_dir), "stage": ctx.input_ref(policy_role)},
        **numbers,
        "stage": ctx.name,
        "created": now_utc(),
        "versions": package_versions(ctx.pm),
    }
