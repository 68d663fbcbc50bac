"""The training side's signs and PReLU, written for speed (arithmetic passes instead of torch.where),
must equal their definitions exactly: sign(x) = +1 iff x >= 0 (-0.0 included: the kernels' rule),
the clipped straight-through gradient passes g where |x| <= 1 (latent weights clamped to exactly
+-1 must keep learning), PReLU(x) = x if x >= 0 else slope * x per channel (last axis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

from kws.distill.modules import prelu, sign, sign_ste  # noqa: E402

# finite float32 with the edge values drawn often: 0, -0, +-1, the smallest subnormals
EDGES = [0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, np.nextafter(np.float32(1), np.float32(2)), 3.4e38, -3.4e38]
values = st.one_of(st.sampled_from(EDGES), st.floats(-1e6, 1e6, width=32))
arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=7), elements=values)


@settings(max_examples=200, deadline=None)
@given(arrays)
def test_sign_is_plus_one_at_and_above_zero(x):
    t = torch.from_numpy(x)
    want = np.where(x >= 0, 1.0, -1.0).astype(np.float32)
    assert np.array_equal(sign(t).numpy(), want)
    assert sign(t).dtype == torch.float32


@settings(max_examples=200, deadline=None)
@given(arrays)
def test_ste_forward_and_clipped_gradient(x):
    t = torch.from_numpy(x).requires_grad_(True)
    g = torch.from_numpy(np.random.default_rng(0).standard_normal(x.shape).astype(np.float32))
    out = sign_ste(t)
    out.backward(g)
    assert np.array_equal(out.detach().numpy(), np.where(x >= 0, 1.0, -1.0).astype(np.float32))
    assert np.array_equal(t.grad.numpy(), np.where(np.abs(x) <= 1, g.numpy(), 0.0).astype(np.float32))


@settings(max_examples=200, deadline=None)
@given(arrays, st.floats(-2, 2, width=32))
def test_prelu_per_last_axis_channel(x, s0):
    slope = (np.float32(s0) + np.arange(x.shape[-1], dtype=np.float32) / 8).astype(np.float32)
    got = prelu(torch.from_numpy(x), torch.from_numpy(slope)).numpy()
    with np.errstate(over="ignore"):          # 3.4e38 * 2.9 is inf on both sides
        want = np.where(x >= 0, x, x * slope).astype(np.float32)
    assert np.array_equal(got, want)        # value-equal (-0.0 == 0.0), same single multiply


def test_prelu_slope_gets_its_gradient():
    x = torch.tensor([[[-2.0, 3.0], [-1.0, -4.0]]])
    slope = torch.tensor([0.25, 0.5], requires_grad=True)
    prelu(x, slope).sum().backward()
    assert slope.grad.tolist() == [-3.0, -4.0]     # sum of the negative inputs per channel
