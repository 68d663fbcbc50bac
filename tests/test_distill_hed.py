"""HED loss (kws.distill.hed) against hand computations on tiny maps."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kws.distill.hed import HED_WEIGHT, attention_loss, haar_high, hed_loss, hed_target  # noqa: E402


def haar2d_high_by_hand(x: np.ndarray) -> np.ndarray:
    """One-level orthonormal 2-D Haar DWT with zero padding, LL band zeroed, inverse, cropped."""
    t, c = x.shape
    p = np.zeros((t + t % 2, c + c % 2))
    p[:t, :c] = x
    a, b = p[0::2, 0::2], p[0::2, 1::2]
    d, e = p[1::2, 0::2], p[1::2, 1::2]
    lh = (a - b + d - e) / 2          # the three detail bands
    hl = (a + b - d - e) / 2
    hh = (a - b - d + e) / 2
    ll = np.zeros_like(a)             # dropped low-low band
    out = np.empty_like(p)            # inverse transform
    out[0::2, 0::2] = (ll + lh + hl + hh) / 2
    out[0::2, 1::2] = (ll - lh + hl - hh) / 2
    out[1::2, 0::2] = (ll + lh - hl - hh) / 2
    out[1::2, 1::2] = (ll - lh - hl + hh) / 2
    return out[:t, :c]


def test_haar_high_is_x_minus_block_mean():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert haar_high(x).tolist() == [[[-1.5, -0.5], [0.5, 1.5]]]


@pytest.mark.parametrize("shape", [(4, 6), (3, 5), (1, 1), (6, 3)])
def test_haar_high_matches_wavelet_by_hand(shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((2,) + shape)
    got = haar_high(torch.from_numpy(x)).numpy()
    for n in range(2):
        np.testing.assert_allclose(got[n], haar2d_high_by_hand(x[n]), rtol=0, atol=1e-12)


def test_attention_loss_and_target_by_hand():
    s = np.array([[[1.0, -2.0], [0.5, 3.0]]])
    t = np.array([[[2.0, 1.0], [-1.0, 0.0]]])
    # teacher target: hf/std(hf) + t/std(t), unbiased std over the whole tensor
    hf = t - t.mean()                                     # one 2x2 block: its mean is the LL part
    tgt = hf / hf.std(ddof=1) + t / t.std(ddof=1)
    got_t = hed_target(torch.from_numpy(t)).numpy()
    np.testing.assert_allclose(got_t, tgt, rtol=1e-12)
    qs, qt = s ** 2, tgt ** 2
    want = np.sqrt(((qs / np.sqrt((qs ** 2).sum()) - qt / np.sqrt((qt ** 2).sum())) ** 2).sum())
    got = attention_loss(torch.from_numpy(s), torch.from_numpy(tgt)).item()
    assert got == pytest.approx(want, rel=1e-12)
    # explicit numbers: s^2 = [1, 4, .25, 9], |s^2| = sqrt(98.0625)
    assert np.allclose(qs.ravel() / np.sqrt(98.0625), [0.10098, 0.40393, 0.02525, 0.90884], atol=1e-5)
    # summed over blocks
    total = hed_loss([torch.from_numpy(s), torch.from_numpy(s)],
                     [torch.from_numpy(tgt), torch.from_numpy(tgt)]).item()
    assert total == pytest.approx(2 * want, rel=1e-12)
    assert HED_WEIGHT == 0.01


def test_attention_loss_scale_invariant_and_zero_on_equal_maps():
    rng = np.random.default_rng(0)
    s = torch.from_numpy(rng.standard_normal((3, 4, 6)))
    assert attention_loss(s, 5 * s).item() == pytest.approx(0.0, abs=1e-12)
    assert attention_loss(s, -s).item() == pytest.approx(0.0, abs=1e-12)
    assert 0 < attention_loss(s, torch.from_numpy(rng.standard_normal((3, 4, 6)))).item() <= 2
