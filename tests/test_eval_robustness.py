"""kws eval's robustness conditions (--snr, --resample, --gain) do what they say, on the signal itself."""

import numpy as np
import pytest

from kws.distill.evaluate import Perturbation
from kws.errors import KwsError

SR = 16000


def _tone(freq, seconds=1.0, amp=0.3):
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0, -5.0])
def test_noise_is_added_at_the_requested_snr(snr):
    rng = np.random.default_rng(0)
    bank = [rng.standard_normal(SR * 3).astype(np.float32) * 0.05]
    clip = _tone(440, amp=0.05)  # quiet: no clipping even at -5 dB
    p = Perturbation(snr=snr, noise=bank, seed=1)
    noisy = p(clip, 7)
    noise = noisy.astype(np.float64) - clip
    measured = 10 * np.log10(np.mean(clip.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert abs(measured - snr) < 0.05
    # seeded per clip index: same index same noise, another index another slice
    assert np.array_equal(p(clip, 7), noisy)
    assert not np.array_equal(p(clip, 8), noisy)


def test_silent_clip_gets_noise_at_minus_35_dbfs():
    p = Perturbation(snr=10.0, noise=None, seed=0)
    out = p(np.zeros(SR, np.float32), 0)
    assert abs(10 * np.log10(np.mean(out.astype(np.float64) ** 2)) + 35) < 0.1


def test_resample_to_8k_removes_the_upper_band_and_keeps_the_lower():
    p = Perturbation(resample=8000)
    low, high = _tone(1000), _tone(6000)
    out_low, out_high = p(low, 0), p(high, 0)
    assert out_low.shape == low.shape and out_low.dtype == np.float32
    mid = slice(2000, -2000)
    assert np.sqrt(np.mean(out_high[mid] ** 2)) < 1e-3 * np.sqrt(np.mean(high[mid] ** 2))
    assert np.allclose(out_low[mid], low[mid], atol=2e-3)


def test_gain_scales_clip_and_noise_together_and_clips_at_full_scale():
    rng = np.random.default_rng(0)
    bank = [rng.standard_normal(SR * 3).astype(np.float32) * 0.05]
    clip = _tone(440, amp=0.05)
    noisy = Perturbation(snr=10.0, noise=bank, seed=1)(clip, 3)
    quiet = Perturbation(snr=10.0, noise=bank, seed=1, gain=-30.0)(clip, 3)
    assert np.allclose(quiet, noisy * 10 ** (-30 / 20), rtol=1e-5, atol=1e-9)
    hot = Perturbation(gain=30.0)(clip, 0)          # 0.05 * 31.6 = 1.58: clipped
    assert hot.dtype == np.float32 and np.abs(hot).max() == 1.0
    assert Perturbation(gain=0.0).describe()["gain_db"] == 0.0 and Perturbation(gain=0.0)


def test_bad_settings_are_refused():
    with pytest.raises(KwsError, match="snr"):
        Perturbation(snr=float("nan"))
    with pytest.raises(KwsError, match="resample"):
        Perturbation(resample=16000)
    for bad in (float("nan"), float("inf"), -120.0, 80.0):
        with pytest.raises(KwsError, match="gain"):
            Perturbation(gain=bad)
    assert not Perturbation()
