"""The lean Adam step (``sport_sac.optim.adam_step``) is ``optimizer.step()`` bit for bit, with or without the
private fused kernel, and ``nonfinite``'s fast paths say what its general path says."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import sport_sac.optim as optim
from sport_core.finite import nonfinite
from sport_sac.critics import TwinCritic


def _pair(seed: int = 0, **adam) -> tuple[list, list, torch.optim.Adam, torch.optim.Adam]:
    torch.manual_seed(seed)
    a = TwinCritic(5, 2, (16, 16))
    b = TwinCritic(5, 2, (16, 16))
    b.load_state_dict(a.state_dict())
    return (
        list(a.parameters()),
        list(b.parameters()),
        torch.optim.Adam(a.parameters(), **adam),
        torch.optim.Adam(b.parameters(), **adam),
    )


def _step_both(pa, pb, oa, ob, steps: int = 6) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for x, y in zip(pa, pb, strict=True):
            grad = torch.randn(x.shape, generator=g)
            x.grad, y.grad = grad.clone(), grad.clone()
        oa.step()
        optim.adam_step(ob)


def _assert_same(pa, pb, oa, ob) -> None:
    for x, y in zip(pa, pb, strict=True):
        assert torch.equal(x, y)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i, state in sa["state"].items():
        for key, value in state.items():
            assert torch.equal(value, sb["state"][i][key]), key


@pytest.mark.parametrize("adam", [{"lr": 1e-3, "fused": True}, {"lr": 3e-4, "betas": (0.8, 0.95), "fused": True}])
def test_adam_step_equals_the_optimizers_own_step_bit_for_bit(adam):
    pa, pb, oa, ob = _pair(**adam)
    _step_both(pa, pb, oa, ob)
    _assert_same(pa, pb, oa, ob)
    assert float(ob.state[pb[0]]["step"]) == 6.0


def test_adam_step_continues_a_loaded_state_exactly():
    pa, pb, oa, ob = _pair(lr=1e-3, fused=True)
    _step_both(pa, pb, oa, ob, steps=3)
    ob.load_state_dict(copy.deepcopy(oa.state_dict()))  # new state tensors: adam_step must use them, not stale ones
    _step_both(pa, pb, oa, ob, steps=3)
    _assert_same(pa, pb, oa, ob)


@pytest.mark.parametrize(
    "adam",
    [
        {"lr": 1e-3},  # not fused
        {"lr": 1e-3, "fused": True, "amsgrad": True},
        {"lr": 1e-3, "fused": True, "weight_decay": 0.01},
        {"lr": 1e-3, "fused": True, "maximize": True},
    ],
)
def test_adam_step_leaves_other_adams_to_their_own_step(adam, monkeypatch):
    pa, pb, oa, ob = _pair(**adam)
    calls = []
    monkeypatch.setattr(optim, "_FUSED", lambda *a, **k: calls.append(1))
    _step_both(pa, pb, oa, ob)
    assert not calls
    _assert_same(pa, pb, oa, ob)


def test_without_the_private_kernel_adam_step_is_the_optimizers_step(monkeypatch):
    monkeypatch.setattr(optim, "_FUSED", None)
    pa, pb, oa, ob = _pair(lr=1e-3, fused=True)
    _step_both(pa, pb, oa, ob)
    _assert_same(pa, pb, oa, ob)


def test_the_fast_path_calls_the_fused_kernel_once_per_step(monkeypatch):
    pa, pb, oa, ob = _pair(lr=1e-3, fused=True)
    calls = []
    real = optim._FUSED
    monkeypatch.setattr(optim, "_FUSED", lambda *a, **k: (calls.append(1), real(*a, **k)))
    _step_both(pa, pb, oa, ob, steps=4)
    assert len(calls) == 3  # the first step creates the state through step()
    _assert_same(pa, pb, oa, ob)


@pytest.mark.parametrize(
    "value, expected",
    [
        (0.5, None),
        (3, None),
        (math.nan, "nan"),
        (-math.inf, "-inf"),
        (np.float32(np.inf), "inf"),
        (np.array([1.0, 2.0], dtype=np.float32), None),
        (np.array([1.0, -np.inf]), "-inf"),
        (np.array([1, 2]), None),
        (torch.tensor([0.0, math.nan]), "nan"),
        (torch.ones(3), None),
    ],
)
def test_nonfinite_names_the_first_bad_element_on_every_path(value, expected):
    assert nonfinite(value) == expected
