"""Augment: determinism, neutral settings, each transform's effect, batch shapes, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from kws.data.augment import Augment
from kws.errors import KwsError

SR = 16000


def speech_like(seed=0):
    r = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    env = np.exp(-((t - 0.5) / 0.15) ** 2)
    return (0.3 * env * np.sin(2 * np.pi * 300 * t) + 0.01 * r.standard_normal(SR)).astype(np.float32)


@pytest.fixture
def noise():
    r = np.random.default_rng(1)
    return [(0.1 * r.standard_normal(5 * SR)).astype(np.float32),
            (0.1 * np.sin(2 * np.pi * 50 * np.arange(3 * SR) / SR)).astype(np.float32)]


def test_same_seed_same_output(noise):
    x = speech_like()
    a = Augment(noise, p_noise=0.8, pitch_semitones=None)
    y1 = a(x, np.random.default_rng(7))
    y2 = a(x, np.random.default_rng(7))
    np.testing.assert_array_equal(y1, y2)
    # the object's own generator: same seed, same sequence of outputs
    b, c = Augment(noise, seed=3), Augment(noise, seed=3)
    for _ in range(3):
        np.testing.assert_array_equal(b(x), c(x))


def test_different_seed_different_output(noise):
    x = speech_like()
    a = Augment(noise)
    outs = [a(x, np.random.default_rng(s)) for s in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not np.array_equal(outs[i], outs[j])


def test_shape_dtype_range(noise):
    x = speech_like()
    a = Augment(noise, p_noise=1.0, noise_scale=(0.5, 0.9), volume=(2.0, 3.0))
    y = a(x, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32 and np.abs(y).max() <= 1.0
    batch = np.stack([speech_like(s) for s in range(8)]).astype(np.float64)
    yb = a(batch, np.random.default_rng(0))
    assert yb.shape == (8, SR) and yb.dtype == np.float32
    assert not np.array_equal(yb[0], yb[1])
    with pytest.raises(KwsError):
        a(np.zeros((2, 2, SR)))


def test_neutral_settings_are_identity(noise):
    x = speech_like()
    a = Augment(noise, p_noise=0.0, volume=1.0, speed=1.0, shift_s=0.0)
    np.testing.assert_allclose(a(x, np.random.default_rng(0)), x, atol=1e-7)


def test_shift_moves_by_whole_samples():
    x = speech_like()
    a = Augment(None, volume=1.0, speed=1.0, shift_s=0.05)
    y = a(x, np.random.default_rng(4))
    lags = [k for k in range(-800, 801) if np.allclose(np.roll(x, k)[900:-900], y[900:-900],
                                                         atol=1e-6)]
    assert len(lags) == 1 and lags[0] != 0
    k = lags[0]
    assert np.all(y[:k] == 0) if k > 0 else np.all(y[k:] == 0)        # zeros fill in


def test_speed_changes_duration_around_centre():
    x = np.zeros(SR, np.float32)
    x[SR // 2 - 2000:SR // 2 + 2000] = 0.5                                # 0.25 s block, centred
    fast = Augment(None, volume=1.0, speed=(1.25, 1.25), shift_s=0.0)(x, np.random.default_rng(0))
    slow = Augment(None, volume=1.0, speed=(0.8, 0.8), shift_s=0.0)(x, np.random.default_rng(0))
    assert abs(np.count_nonzero(fast > 0.25) - 4000 / 1.25) <= 2
    assert abs(np.count_nonzero(slow > 0.25) - 4000 / 0.8) <= 2
    for y in (fast, slow):                                                # centre stays put
        on = np.flatnonzero(y > 0.25)
        assert abs((on[0] + on[-1]) / 2 - (SR - 1) / 2) <= 1.5


def test_volume_range():
    x = speech_like()
    a = Augment(None, volume=(0.7, 1.1), speed=1.0, shift_s=0.0)
    for s in range(20):
        g = np.abs(a(x, np.random.default_rng(s))).max() / np.abs(x).max()
        assert 0.7 - 1e-4 <= g <= 1.1 + 1e-4


def test_noise_probability_and_snr(noise):
    x = speech_like()
    none = Augment(noise, p_noise=0.0, volume=1.0, speed=1.0, shift_s=0.0)
    np.testing.assert_array_equal(none(x, np.random.default_rng(0)), x)
    always = Augment(noise, p_noise=1.0, volume=1.0, speed=1.0, shift_s=0.0, snr_db=(10, 10))
    y = always(x, np.random.default_rng(0))
    n = y - x
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(n.astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 0.05
    # p_noise is a probability per clip
    batch = np.repeat(x[None], 200, axis=0)
    half = Augment(noise, p_noise=0.5, volume=1.0, speed=1.0, shift_s=0.0, noise_scale=(0.1, 0.3))
    hit = np.any(half(batch, np.random.default_rng(0)) != batch, axis=1).mean()
    assert 0.4 < hit < 0.6


def test_noise_from_folder(tmp_path, noise):
    for i, n in enumerate(noise):
        sf.write(tmp_path / f"n{i}.wav", n, SR, subtype="FLOAT")
    a = Augment(tmp_path, p_noise=1.0)
    assert len(a.noise) == 2
    with pytest.raises(KwsError, match="does not exist"):
        Augment(tmp_path / "missing")


def test_optional_pitch_keeps_length():
    x = speech_like()
    a = Augment(None, volume=1.0, speed=1.0, shift_s=0.0, pitch_semitones=(2, 2))
    y = a(x, np.random.default_rng(0))
    assert y.shape == x.shape and not np.allclose(y, x)


@pytest.mark.parametrize("semitones", [-12, -3, 2.5, 12])
def test_pitch_shift_frequency_and_length(semitones):
    from kws.data.augment import pitch_shift
    t = np.arange(SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = pitch_shift(x, semitones)
    assert y.shape == x.shape and y.dtype == np.float32
    spec = np.abs(np.fft.rfft(y[2000:-2000], SR))
    assert abs(np.argmax(spec) - 440 * 2 ** (semitones / 12)) <= 1.5
    assert 0.25 < np.sqrt(np.mean(y[2000:-2000] ** 2)) < 0.4      # level roughly kept
    np.testing.assert_array_equal(pitch_shift(x, 0.0), x)
    assert pitch_shift(x[:100], 3).shape == (100,)


@pytest.mark.parametrize("kw", [dict(p_noise=1.5), dict(volume=(1.2, 0.8)), dict(speed=(0, 1)),
                                dict(shift_s=-1), dict(noise_scale=(-1, 0))])
def test_bad_arguments(kw):
    with pytest.raises(KwsError):
        Augment(None, **kw)
