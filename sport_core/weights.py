"""Policy weights in safetensors plus a JSON model card: save, load, and refuse anything foreign.

A saved policy is two files side by side: ``<name>.safetensors`` (the state dict) and ``<name>.json``
(the model card: the policy component and its config, obs/action dims, action scale and bias, the
weights' SHA-256 and the sport version). Loading rebuilds the module through the registry from the card,
checks the hash and loads the tensors; no pickle is ever involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from sport_core.artifacts import atomic_write_bytes, atomic_write_json, read_json, sha256_bytes
from sport_core.config import structure, unstructure
from sport_core.errors import ArtifactError

CARD_FORMAT = "sport-policy-v1"


@attrs.frozen
class ModelCard:
    """Everything needed to rebuild a policy module before its weights are loaded."""

    policy: str
    config: dict
    obs_dim: int
    act_dim: int
    action_scale: tuple[float, ...]
    action_bias: tuple[float, ...]
    weights_sha256: str = ""
    extra: dict = attrs.Factory(dict)
    format: str = CARD_FORMAT


def policy_files(path: str | Path) -> tuple[Path, Path]:
    """(weights, model card) of a saved policy named by either file, or by their common stem."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_policy(path: str | Path, module: torch.nn.Module, card: ModelCard) -> Path:
    """Write ``module``'s state dict and ``card`` atomically; returns the ``.safetensors`` path.

    The card gets the weights' SHA-256. Tensors are made contiguous CPU copies (safetensors requires it).
    """
    weights_path, card_path = policy_files(path)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    blob = st_save(state, metadata={"format": CARD_FORMAT})
    atomic_write_bytes(weights_path, blob)
    atomic_write_json(card_path, unstructure(attrs.evolve(card, weights_sha256=sha256_bytes(blob))))
    return weights_path


def load_card(path: str | Path, made_by: str | None = None) -> ModelCard:
    """Read and validate a model card (``path`` may name the card or the weights)."""
    _, card_path = policy_files(path)
    data = read_json(card_path, what="model card", made_by=made_by)
    if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
        raise ArtifactError(f"model card {card_path} is not a {CARD_FORMAT} card (foreign or corrupt file)")
    try:
        return structure(ModelCard, data, path=str(card_path))
    except Exception as exc:
        raise ArtifactError(f"model card {card_path} is invalid: {exc}") from exc


def load_state(path: str | Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Load a safetensors state dict, refusing a missing, altered or non-safetensors file."""
    weights_path, _ = policy_files(path)
    if not weights_path.is_file():
        raise ArtifactError(f"weights {weights_path} do not exist")
    blob = weights_path.read_bytes()
    if expected_sha256 and sha256_bytes(blob) != expected_sha256:
        raise ArtifactError(f"weights {weights_path} do not match the SHA-256 in their model card (altered file)")
    try:
        return st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"weights {weights_path} are not a safetensors file ({exc})") from exc


def load_policy(path: str | Path, registry: Any, made_by: str | None = None) -> torch.nn.Module:
    """Rebuild a policy from its card through the registry's ``policy`` components and load its weights."""
    card = load_card(path, made_by=made_by)
    component = registry.get("policy", card.policy)
    config = structure(component.config_cls, card.config, path="model card config")
    module = component.build(config)(card.obs_dim, card.act_dim, card.action_scale, card.action_bias)
    state = load_state(path, expected_sha256=card.weights_sha256)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ArtifactError(f"weights {policy_files(path)[0]} do not fit the architecture in the card: {exc}") from exc
    module.eval()
    return module
