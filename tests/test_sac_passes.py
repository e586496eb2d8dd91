"""The fused SAC engine's elementwise passes: the compiled (numba) sweeps compute what the torch operator
sequences compute, for ReLU and tanh, including the gathered-row forms and the gradients written on the way."""

from __future__ import annotations

import pytest
import torch

from sport_sac.passes import PASSES, NumbaPasses, TorchPasses, make_passes, numba_available

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba does not import here")

SHAPES = [(512, 256), (37, 5), (1, 1)]


def _hidden(g, shape, act):
    """An activation's output: ReLU outputs with exact zeros (about half of them), tanh outputs in (−1, 1)."""
    z = torch.randn(shape, generator=g)
    return z.relu() if act == "relu" else torch.tanh(z)


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_top_is_mv_outer_backward_and_sum(act, shape):
    g = torch.Generator().manual_seed(0)
    n, m = shape
    h, dq, w = _hidden(g, shape, act), torch.randn(n, generator=g), torch.randn(m, generator=g)
    out = {}
    for passes in (TorchPasses(act), NumbaPasses(act)):
        gw, gb = torch.full((m,), float("nan")), torch.full((m,), float("nan"))
        out[passes.name] = (passes.top(dq, w, h, gw, gb), gw, gb)
    for ref, new in zip(out["torch"], out["numba"], strict=True):
        _close(new, ref)
    # the definition, spelled out
    derivative = (h > 0).float() if act == "relu" else 1 - h * h
    _close(out["numba"][0], dq[:, None] * w[None, :] * derivative)
    _close(out["numba"][2], out["numba"][0].sum(0))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_backward_sum_works_in_place_and_sums_the_columns(act, shape):
    g = torch.Generator().manual_seed(1)
    h, dz = _hidden(g, shape, act), torch.randn(shape, generator=g)
    results = []
    for passes in (TorchPasses(act), NumbaPasses(act)):
        x, gb = dz.clone(), torch.empty(shape[1])
        assert passes.backward_sum_(x, h, gb) is x
        results.append((x, gb))
    _close(results[1][0], results[0][0])
    _close(results[1][1], results[0][1])
    if act == "relu":  # a mask: exactly the same numbers
        assert torch.equal(results[1][0], results[0][0])


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_the_gathered_forms_use_only_the_given_rows(act):
    g = torch.Generator().manual_seed(2)
    h, w = _hidden(g, (64, 16), act), torch.randn(16, generator=g)
    rows = torch.tensor([5, 0, 63, 5, 17])  # any order, repeats allowed
    dz = torch.randn(5, 16, generator=g)
    ref, new = TorchPasses(act), NumbaPasses(act)
    _close(new.gather_top(w, h, rows), ref.gather_top(w, h, rows))
    x = dz.clone()
    assert new.gather_backward_(x, h, rows) is x
    _close(x, ref.gather_backward_(dz.clone(), h, rows))
    empty = rows[:0]
    assert new.gather_top(w, h, empty).shape == (0, 16)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_nan_and_signed_zeros_go_through_as_in_torch(act):
    """The ReLU mask is ``0 if h ≤ 0 else g``: a NaN output passes its gradient (as ``threshold_backward``), a NaN
    gradient stays NaN where the unit is active; tanh propagates NaN either way."""
    nan = float("nan")
    h = torch.tensor([[nan, 0.0, 0.5, -0.0], [0.25, nan, -0.5, 0.75]])
    dz = torch.tensor([[1.0, 2.0, nan, -0.0], [-0.0, 3.0, 4.0, nan]])
    ref, new = TorchPasses(act), NumbaPasses(act)
    x, y = dz.clone(), dz.clone()
    ref.backward_sum_(x, h, torch.empty(4))
    new.backward_sum_(y, h, torch.empty(4))
    torch.testing.assert_close(y, x, equal_nan=True)
    assert torch.equal(torch.signbit(y), torch.signbit(x))
    rows = torch.tensor([1, 0])
    torch.testing.assert_close(new.gather_top(dz[0], h, rows), ref.gather_top(dz[0], h, rows), equal_nan=True)


def test_auto_takes_numba_and_bad_names_are_one_line_errors():
    assert PASSES == ("auto", "numba", "torch")
    assert make_passes("auto", "relu").name == "numba"
    assert make_passes("torch", "tanh").name == "torch"
    with pytest.raises(ValueError, match="passes must be one of auto, numba, torch, got 'cuda'"):
        make_passes("cuda", "relu")
    with pytest.raises(ValueError, match="activation must be one of relu, tanh, got 'gelu'"):
        make_passes("auto", "gelu")


def test_without_numba_auto_falls_back_to_torch_and_numba_is_refused(monkeypatch):
    import sport_sac.passes as passes

    monkeypatch.setattr(passes, "_KERNELS", {})  # as when numba does not import
    assert make_passes("auto", "relu").name == "torch"
    with pytest.raises(ValueError, match="need numba, which does not work here; use passes = 'torch'"):
        make_passes("numba", "relu")


def test_a_numba_that_fails_to_compile_leaves_auto_on_torch(monkeypatch, caplog):
    import sport_sac.passes as passes

    def broken():
        raise RuntimeError("LLVM ERROR: no target")

    monkeypatch.setattr(passes, "_KERNELS", None)
    monkeypatch.setattr(passes, "_compile", broken)
    assert not passes.numba_available()
    assert make_passes("auto", "tanh").name == "torch"
    assert "could not compile" in caplog.text and "LLVM ERROR" in caplog.text
