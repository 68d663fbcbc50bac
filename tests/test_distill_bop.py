"""Bop (kws.distill.bop): flip when the gradient EMA agrees in sign with the weight and exceeds tau."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kws.distill.bop import Bop  # noqa: E402


def test_bop_rule_step_by_step():
    rng = np.random.default_rng(0)
    w0 = np.where(rng.random(200) < 0.5, -1.0, 1.0)
    w = torch.nn.Parameter(torch.tensor(w0))
    gamma, tau = 0.3, 0.05
    opt = Bop([w], gamma=gamma, tau=tau)
    m = np.zeros(200)
    ref = w0.copy()
    for _ in range(6):
        g = rng.standard_normal(200) * 0.2
        w.grad = torch.tensor(g)
        opt.step()
        m = (1 - gamma) * m + gamma * g
        flip = ref * m > tau                   # |m| > tau and sign(m) == sign(w)
        ref = np.where(flip, -ref, ref)
        assert opt.last_flips == int(flip.sum())
        np.testing.assert_array_equal(w.detach().numpy(), ref)
        np.testing.assert_allclose(opt.state[w]["m"].numpy(), m, rtol=1e-12)
    assert set(np.unique(w.detach().numpy())) <= {-1.0, 1.0}


def test_bop_learns_a_target_sign_pattern():
    """Toy problem: minimise -w.t over w in {-1,1}^n; Bop must end at w == t."""
    torch.manual_seed(0)
    t = torch.where(torch.rand(64) < 0.5, -1.0, 1.0)
    w = torch.nn.Parameter(torch.where(torch.rand(64) < 0.5, -1.0, 1.0))
    opt = Bop([w])                                  # Larq defaults gamma=1e-4, tau=1e-8
    assert opt.defaults == {"gamma": 1e-4, "tau": 1e-8}
    wrong = int((w != t).sum())
    loss = -(w * t).sum()
    loss.backward()                                 # grad = -t: EMA m = -1e-4 t, |m| > tau
    opt.step()
    assert opt.last_flips == wrong > 0
    assert torch.equal(w.detach(), t)
    for _ in range(3):                              # at the optimum nothing flips any more
        opt.zero_grad()
        (-(w * t).sum()).backward()
        opt.step()
        assert opt.last_flips == 0
    assert torch.equal(w.detach(), t)


def test_bop_small_gradients_below_tau_do_not_flip():
    w = torch.nn.Parameter(torch.ones(8))
    opt = Bop([w], gamma=1e-4, tau=1e-3)
    for _ in range(5):
        w.grad = torch.ones(8)                      # agrees with w, but m stays < tau
        opt.step()
        assert opt.last_flips == 0
    assert torch.equal(w.detach(), torch.ones(8))


def test_bop_rejects_bad_hyperparameters():
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError):
        Bop([w], gamma=0.0)
    with pytest.raises(ValueError):
        Bop([w], tau=-1.0)
