"""kws.frontend: parity with librosa, streaming == batch bit for bit, input and config validation.

Parity is measured as ``max|ours - librosa| / max|librosa|`` over the whole [frames, features]
array, on the dB values for log-mel and on the coefficients for MFCC; it must be <= 1e-4
(measured: ~1e-7).  Streaming vs batch uses ``np.array_equal`` -- no tolerance at all.
"""

import doctest
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kws.frontend as fe_mod
from kws.errors import KwsError
from kws.frontend import Frontend, FrontendConfig, features

librosa = pytest.importorskip("librosa")

PARITY_RTOL = 1e-4

# Configs for parity and streaming: both kinds, FFT sizes power-of-two, even and odd, window
# shorter than the FFT (odd and even difference), hop > n_fft, other rates and band counts.
CONFIGS = {
    "default": FrontendConfig(),
    "mfcc": FrontendConfig(kind="mfcc"),
    "mfcc13_fft400": FrontendConfig(kind="mfcc", n_fft=400, n_mfcc=13),
    "mel64_fft1024": FrontendConfig(n_fft=1024, win_length=640, hop_length=320, n_mels=64,
                                    fmin=0.0, fmax=8000.0),
    "sr8k_odd": FrontendConfig(sample_rate=8000, n_fft=255, win_length=201, hop_length=80,
                               n_mels=24, fmax=4000.0, kind="mfcc", n_mfcc=20),
    "hop_gt_fft": FrontendConfig(n_fft=256, win_length=256, hop_length=300, n_mels=32),
    "mel80": FrontendConfig(n_fft=512, win_length=512, hop_length=128, n_mels=80, fmin=60.0),
}


# ---------------------------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------------------------

def noise(n, seed=0, scale=0.3):
    return (scale * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def speech_like(n, sr=16000, seed=0):
    """Voiced syllables (gliding f0, harmonics shaped by moving formants, 4 Hz syllable
    envelope), fricative noise bursts, exact-zero pauses and a quiet tail: a wide dynamic
    range, as real speech has."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = 120 + 40 * np.sin(2 * np.pi * 1.3 * t) + 20 * rng.standard_normal() * t
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formants = [(700 + 200 * np.sin(2 * np.pi * 0.7 * t), 120), (1200 + 400 * np.sin(2 * np.pi * 0.5 * t), 150),
                (2500 + 0 * t, 200)]
    voiced = np.zeros(n)
    for k in range(1, int(min(sr / 2, 8000) // 100)):
        fk = k * f0
        amp = sum(np.exp(-0.5 * ((fk - fc) / bw) ** 2) for fc, bw in formants) + 0.01
        amp = np.where(fk < sr / 2, amp, 0.0)
        voiced += amp * np.sin(k * phase)
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    y = 0.1 * voiced * env
    fric = np.diff(rng.standard_normal(n + 1)) * (np.sin(2 * np.pi * 4 * t + 2) > 0.8)
    y += 0.05 * fric
    y[n // 3: n // 3 + n // 10] = 0.0                              # digital silence
    y[-n // 8:] *= 1e-4                                             # very quiet tail
    return (y / max(1.0, np.abs(y).max())).astype(np.float32)


def librosa_features(y, c: FrontendConfig):
    S = librosa.feature.melspectrogram(y=y, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
                                       win_length=c.win_length, center=False, power=2.0,
                                       n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax)
    L = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)
    if c.kind == "mfcc":
        L = librosa.feature.mfcc(S=L, n_mfcc=c.n_mfcc, dct_type=2, norm="ortho")
    return L.T  # [frames, features]


def rel_err(ours, ref):
    """max |ours - ref| / max |ref| over the whole array."""
    return float(np.abs(ours.astype(np.float64) - ref).max() / np.abs(ref).max())


# ---------------------------------------------------------------------------------------------
# (a) parity with librosa
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("signal", ["noise", "speech"])
def test_parity_with_librosa(name, signal):
    c = CONFIGS[name]
    n = int(1.3 * c.sample_rate)
    y = noise(n, seed=1) if signal == "noise" else speech_like(n, sr=c.sample_rate, seed=2)
    ours = features(y, c)
    ref = librosa_features(y, c)
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (c.frames(n), c.n_features)
    err = rel_err(ours, ref)
    assert err <= PARITY_RTOL, f"{name}/{signal}: relative error {err:.3g}"


@pytest.mark.parametrize("kind", ["logmel", "mfcc"])
def test_parity_float64_and_int16_input(kind):
    c = FrontendConfig(kind=kind)
    y64 = speech_like(20000, seed=5).astype(np.float64) * 0.9
    assert rel_err(features(y64, c), librosa_features(y64, c)) <= PARITY_RTOL
    y16 = np.round(y64 * 32767).astype(np.int16)
    ref = librosa_features(y16.astype(np.float32) / 32768, c)
    assert rel_err(features(y16, c), ref) <= PARITY_RTOL


def test_matrices_are_librosas():
    c = CONFIGS["mfcc13_fft400"]
    p = fe_mod._plan(c)
    np.testing.assert_array_equal(
        p.mel_matrix, librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax))
    win = librosa.util.pad_center(librosa.filters.get_window("hann", c.win_length, fftbins=True), size=c.n_fft)
    np.testing.assert_array_equal(p.window, win)
    import scipy.fft
    x = np.random.default_rng(0).standard_normal((c.n_mels, 5))
    np.testing.assert_allclose(p.dct_matrix @ x, scipy.fft.dct(x, type=2, norm="ortho", axis=0)[: c.n_mfcc],
                               rtol=1e-12, atol=1e-12)
    # the bands handed to the C core reproduce the dense matrix exactly
    dense = np.zeros((c.n_mels, c.n_fft // 2 + 1))
    starts = np.concatenate([[0], np.cumsum(p.band_len)])
    for b in range(c.n_mels):
        dense[b, p.band_first[b]:p.band_first[b] + p.band_len[b]] = p.band_weight[starts[b]:starts[b + 1]]
    np.testing.assert_array_equal(dense, p.mel_matrix.astype(np.float64))


# ---------------------------------------------------------------------------------------------
# the C core against a float64 numpy reference (np.fft.rfft, dense matrices)
# ---------------------------------------------------------------------------------------------

def core_reference(x, offset, hop, n_frames, n_fft, window, first, length, weight, dct):
    n_bins = n_fft // 2 + 1
    mel = np.zeros((len(first), n_bins))
    starts = np.concatenate([[0], np.cumsum(length)])
    for b in range(len(first)):
        mel[b, first[b]:first[b] + length[b]] = weight[starts[b]:starts[b + 1]]
    idx = offset + hop * np.arange(n_frames)[:, None] + np.arange(n_fft)[None, :]
    power = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
    db = 10 * np.log10(np.maximum(power @ mel.T, fe_mod.AMIN))
    return db if dct is None else db @ dct.T


@settings(deadline=None)
@given(n_fft=st.one_of(st.sampled_from([8, 16, 64, 256, 512, 1024, 2048]), st.integers(8, 1500)),
       n_mels=st.integers(1, 48), n_frames=st.integers(1, 5), hop=st.integers(1, 700),
       offset=st.integers(0, 9), mfcc=st.booleans(), scale=st.sampled_from([0.0, 1e-6, 0.3, 1e4]),
       seed=st.integers(0, 2**32 - 1))
def test_core_matches_numpy_rfft_reference(n_fft, n_mels, n_frames, hop, offset, mfcc, scale, seed):
    """Every FFT size (power of two: real FFT; others: Bluestein), bands of any width including
    empty ones, one frame or several, silence and loud input."""
    rng = np.random.default_rng(seed)
    n_bins = n_fft // 2 + 1
    first = rng.integers(0, n_bins, n_mels).astype(np.int32)
    length = rng.integers(0, n_bins - first + 1).astype(np.int32)
    weight = rng.uniform(0, 1, int(length.sum()))
    window = rng.uniform(0, 1, n_fft)
    dct = rng.standard_normal((rng.integers(1, n_mels + 1), n_mels)) if mfcc else None
    x = scale * rng.standard_normal(offset + (n_frames - 1) * hop + n_fft + rng.integers(0, 3))
    core = fe_mod._kernels.FrontendCore(n_fft, window, first, length, weight, dct)
    out = np.full((n_frames, n_mels if dct is None else dct.shape[0]), np.nan, np.float32)
    core.run(x, offset, hop, n_frames, out)
    ref = core_reference(x, offset, hop, n_frames, n_fft, window, first, length, weight, dct)
    # float64 inside, one float32 rounding at the end: within a float32 ulp or so of the reference
    tol = 1e-6 * (1.0 if dct is None else np.abs(dct).sum(axis=1).max()) * max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(out, ref, rtol=3e-7, atol=tol)


def test_core_rejects_bad_arguments():
    K = fe_mod._kernels
    w, f, l, bw = np.ones(16), np.array([0, 2], np.int32), np.array([2, 3], np.int32), np.ones(5)
    for args, msg in [((4, np.ones(4), f, l, bw), "n_fft must be in"),
                      ((16, np.ones(15), f, l, bw), "window must be float64 of shape"),
                      ((16, w.astype(np.float32), f, l, bw), "window must be float64"),
                      ((16, w, np.array([0, 7], np.int32), l, bw), "within the 9 FFT bins"),
                      ((16, w, f, np.array([2, -1], np.int32), bw), "within the 9 FFT bins"),
                      ((16, w, f, l, np.ones(4)), "band_weight must be float64 of shape (5,)"),
                      ((16, w, f, l[:1], bw), "same non-zero length"),
                      ((16, w, f, l, bw, np.ones((3, 3))), "dct must be float64 [n_out, 2]")]:
        with pytest.raises(ValueError, match=re.escape(msg)):
            K.FrontendCore(*args)
    core = K.FrontendCore(16, w, f, l, bw)
    x = np.zeros(40)
    with pytest.raises(ValueError, match="need 42 samples, got 40"):
        core.run(x, 2, 8, 4, np.empty((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"out must be float32 \[>= 4, 2\]"):
        core.run(x, 0, 8, 4, np.empty((3, 2), np.float32))
    with pytest.raises(ValueError):
        core.run(x.astype(np.float32), 0, 8, 4, np.empty((4, 2), np.float32))
    with pytest.raises(ValueError, match="hop must be > 0"):
        core.run(x, 0, 0, 1, np.empty((1, 2), np.float32))


def test_short_clips():
    for c in (FrontendConfig(), FrontendConfig(kind="mfcc", n_mfcc=13)):
        for n in (0, 1, c.n_fft - 1):
            out = features(np.zeros(n, np.float32), c)
            assert out.shape == (0, c.n_features) and out.dtype == np.float32
        y = noise(c.n_fft, seed=3)
        out = features(y, c)
        assert out.shape == (1, c.n_features)
        assert rel_err(out, librosa_features(y, c)) <= PARITY_RTOL


def test_silence_is_floor():
    out = features(np.zeros(4000, np.float32))
    assert np.all(out == np.float32(-100.0))  # 10*log10(amin), no top_db


def test_frames_count():
    c = FrontendConfig()
    assert [c.frames(n) for n in (0, 511, 512, 671, 672, 16000)] == [0, 0, 1, 1, 2, 97]
    for n in range(0, 3000, 37):
        assert features(np.zeros(n), c).shape[0] == c.frames(n)
    with pytest.raises(ValueError):
        c.frames(-1)


# ---------------------------------------------------------------------------------------------
# (b) streaming is bit-identical to batch
# ---------------------------------------------------------------------------------------------

def stream(c, y, cuts):
    fe = Frontend(c)
    outs = [fe.process(ch) for ch in np.split(y, cuts)]
    for o in outs:
        assert o.dtype == np.float32 and o.ndim == 2 and o.shape[1] == c.n_features
    return fe, np.concatenate(outs)


@settings(deadline=None)
@given(name=st.sampled_from(sorted(CONFIGS)),
       n=st.integers(0, 6000),
       dtype=st.sampled_from(["float32", "float64", "int16"]),
       seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_streaming_bit_identical_hypothesis(name, n, dtype, seed, data):
    c = CONFIGS[name]
    y = speech_like(n, sr=c.sample_rate, seed=seed % 1000) if n else np.zeros(0, np.float32)
    y = y + noise(n, seed=seed, scale=0.01)
    y = (np.round(y * 32000).astype(np.int16) if dtype == "int16" else y.astype(dtype))
    batch = features(y, c)
    # cut points: sorted, duplicates give 0-length chunks, neighbours 1-sample chunks
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=40), label="cuts"))
    fe, streamed = stream(c, y, cuts)
    assert np.array_equal(streamed, batch)
    assert fe.samples_seen == n and fe.frames_emitted == batch.shape[0] == c.frames(n)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_streaming_many_random_partitions(name):
    c = CONFIGS[name]
    rng = np.random.default_rng(7)
    y = speech_like(int(0.7 * c.sample_rate), sr=c.sample_rate, seed=3)
    batch = features(y, c)
    for trial in range(40):
        k = rng.integers(1, 200)
        if trial % 4 == 0:  # chunk sizes from a heavy-tailed mix incl. 0 and 1
            sizes = rng.choice([0, 1, 2, 3, c.hop_length, c.n_fft, 7 * c.hop_length + 1], size=k)
            cuts = np.cumsum(sizes)
            cuts = cuts[cuts <= len(y)]
        else:
            cuts = np.sort(rng.integers(0, len(y) + 1, size=k))
        _, streamed = stream(c, y, cuts)
        assert np.array_equal(streamed, batch), f"trial {trial}"


@pytest.mark.parametrize("kind", ["logmel", "mfcc"])
def test_sample_by_sample(kind):
    c = FrontendConfig(kind=kind)
    y = speech_like(8000, seed=11)
    fe = Frontend(c)
    rows = [fe.process(y[i:i + 1]) for i in range(len(y))]
    assert sum(r.shape[0] for r in rows) == c.frames(len(y))
    # frame i arrives with sample i*hop + n_fft - 1, not earlier
    got = [i for i, r in enumerate(rows) for _ in range(r.shape[0])]
    assert got == [i * c.hop_length + c.n_fft - 1 for i in range(c.frames(len(y)))]
    assert np.array_equal(np.concatenate(rows), features(y, c))


def test_each_frame_alone_equals_its_batch_row():
    """Row independence directly: a frame computed on its own is the same bits as in a batch."""
    for c in (FrontendConfig(), FrontendConfig(kind="mfcc", n_fft=400)):
        y = noise(c.n_fft + 100 * c.hop_length, seed=4) + speech_like(c.n_fft + 100 * c.hop_length, seed=4)
        batch = features(y, c)
        assert batch.shape[0] == 101
        for i in range(batch.shape[0]):
            one = features(y[i * c.hop_length: i * c.hop_length + c.n_fft], c)
            assert np.array_equal(one[0], batch[i]), i


def test_long_chunk_then_small_and_reset():
    c = FrontendConfig(kind="mfcc")
    y = speech_like(48000, seed=9)
    batch = features(y, c)
    fe = Frontend(c)
    a = fe.process(y[:40000])          # big chunk: buffer grows, then shrinks back
    b = [fe.process(y[i:i + 10]) for i in range(40000, 48000, 10)]
    assert np.array_equal(np.concatenate([a] + b), batch)
    assert fe._buf.shape[0] == fe._cap
    fe.reset()
    assert fe.samples_seen == 0 and fe.frames_emitted == 0
    assert np.array_equal(fe.process(y), batch)


def test_empty_chunks_and_counters():
    c = FrontendConfig()
    fe = Frontend(c)
    for _ in range(3):
        out = fe.process(np.zeros(0, np.float32))
        assert out.shape == (0, 40) and out.dtype == np.float32
    out = fe.process(np.zeros(511))
    assert out.shape == (0, 40) and fe.samples_seen == 511 and fe.frames_emitted == 0
    out = fe.process([0.0])  # lists are accepted too
    assert out.shape == (1, 40) and fe.frames_emitted == 1
    assert fe.config is c


# ---------------------------------------------------------------------------------------------
# (c) bad input
# ---------------------------------------------------------------------------------------------

BAD_AUDIO = [
    (np.zeros((100, 2), np.float32), "mix down"),
    (np.zeros((2, 100), np.float32), "mix down"),
    (np.zeros((1, 2, 3)), "1-D"),
    (np.float32(0.5), "1-D"),
    (np.array([0.0, np.nan, 0.0], np.float32), "NaN"),
    (np.array([0.0, 0.0, np.inf]), "NaN or infinite"),
    (np.array([-np.inf]), "infinite"),
    (np.array([0.0, 1e300]), "magnitude"),
    (np.zeros(10, np.complex64), "complex"),
    (np.zeros(10, object), "numeric"),
    (np.array(["a", "b"]), "numeric"),
    ("hello", "numeric"),
    (b"\x00\x01", "numeric"),
    (None, "numeric"),
    (np.zeros(10, bool), "numeric"),
    (np.zeros(10, np.int32), "int16"),
    (np.zeros(10, np.uint8), "int16"),
    ([[1.0, 2.0], [3.0]], "1-D numeric array"),
]


@pytest.mark.parametrize("audio,msg", BAD_AUDIO, ids=[m + str(i) for i, (_, m) in enumerate(BAD_AUDIO)])
def test_bad_audio_raises_valueerror(audio, msg):
    with pytest.raises(ValueError, match=msg):
        features(audio)
    fe = Frontend()
    fe.process(np.zeros(300, np.float32))
    with pytest.raises(ValueError, match=msg):
        fe.process(audio)
    assert fe.samples_seen == 300  # a refused chunk leaves the stream unchanged ...
    y = noise(700, seed=1)
    assert np.array_equal(fe.process(y), features(np.concatenate([np.zeros(300, np.float32), y])))


def test_nan_position_is_reported():
    y = np.zeros(1000, np.float32)
    y[123] = np.nan
    with pytest.raises(ValueError, match="sample 123"):
        features(y)


def test_accepted_dtypes():
    y = noise(3000, seed=2)
    ref = features(y)
    assert np.array_equal(features(y.astype(np.float64)), ref)
    assert np.array_equal(features(list(y.astype(float))), ref)
    assert np.array_equal(features(y[::-1].copy()[::-1]), ref)        # negative stride
    assert np.array_equal(features(y.astype(">f4")), ref)              # big-endian
    h = y.astype(np.float16)
    assert np.array_equal(features(h), features(h.astype(np.float32)))
    i = (y * 20000).astype(np.int16)
    assert np.array_equal(features(i), features(i.astype(np.float32) / np.float32(32768)))


def test_config_type_errors():
    with pytest.raises(TypeError):
        features(np.zeros(1000), config={"kind": "mfcc"})
    with pytest.raises(TypeError):
        Frontend("mfcc")


# ---------------------------------------------------------------------------------------------
# FrontendConfig
# ---------------------------------------------------------------------------------------------

def test_config_defaults_and_roundtrip():
    c = FrontendConfig()
    assert (c.sample_rate, c.n_fft, c.win_length, c.hop_length, c.n_mels, c.n_mfcc, c.fmin, c.fmax, c.kind) == \
        (16000, 512, 400, 160, 40, 40, 20.0, 7600.0, "logmel")
    assert c.n_features == 40 and FrontendConfig(kind="mfcc", n_mfcc=13).n_features == 13
    for cfg in CONFIGS.values():
        d = cfg.to_dict()
        assert FrontendConfig.from_dict(json.loads(json.dumps(d))) == cfg
        assert hash(FrontendConfig.from_dict(d)) == hash(cfg)
    assert FrontendConfig.from_dict({}) == c
    assert FrontendConfig(fmin=20) == c and isinstance(FrontendConfig(fmin=20).fmin, float)
    assert FrontendConfig(n_fft=np.int64(512)) == c and type(FrontendConfig(n_fft=np.int64(512)).n_fft) is int
    with pytest.raises(Exception):
        c.n_fft = 1024  # frozen


BAD_DICTS = [
    {"n_fft": 512.0}, {"n_fft": "512"}, {"n_fft": True}, {"n_fft": None}, {"n_fft": [512]},
    {"n_fft": -512}, {"n_fft": 0}, {"n_fft": 10**30}, {"hop_length": 0}, {"win_length": 1024},
    {"sample_rate": 0}, {"sample_rate": 10**9}, {"n_mels": 0}, {"n_mels": 300},
    {"kind": "MFCC"}, {"kind": 1}, {"kind": None}, {"kind": "mfcc", "n_mfcc": 41},
    {"fmin": -1.0}, {"fmin": float("nan")}, {"fmax": float("inf")}, {"fmax": 9000.0},
    {"fmin": 8000.0, "fmax": 7600.0}, {"fmin": "20"}, {"fmax": False},
    {"nfft": 512}, {"n_fft": 512, "extra": 1}, {1: 2}, {None: 1},
    [], "n_fft=512", None, 42, [("n_fft", 512)],
]


@pytest.mark.parametrize("d", BAD_DICTS, ids=[repr(d)[:40] for d in BAD_DICTS])
def test_from_dict_rejects_garbage(d):
    with pytest.raises(KwsError) as ei:
        FrontendConfig.from_dict(d)
    assert isinstance(ei.value, ValueError) and str(ei.value)


def test_direct_construction_validates():
    for kw in ({"n_fft": 100, "win_length": 400}, {"fmax": 8001.0}, {"kind": "spectrogram"},
               {"n_mels": 20, "n_mfcc": 30, "kind": "mfcc"}, {"hop_length": 0}):
        with pytest.raises(KwsError):
            FrontendConfig(**kw)
    FrontendConfig(n_mels=20, n_mfcc=30)  # n_mfcc is ignored for log-mel


def test_empty_mel_bands_refused():
    c = FrontendConfig(n_fft=64, win_length=64, hop_length=32, n_mels=30)
    with pytest.raises(KwsError, match="empty band"):
        Frontend(c)
    with pytest.raises(KwsError, match="empty band"):
        features(np.zeros(1000), c)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)
field_names = st.sampled_from([f for f in FrontendConfig().to_dict()] + ["", "N_FFT", "n_fft "])


@settings(deadline=None)
@given(st.dictionaries(field_names, json_values | st.integers(-10, 70000) | st.sampled_from(["logmel", "mfcc"]),
                       max_size=9) | json_values)
def test_from_dict_fuzz_only_kwserror(d):
    try:
        c = FrontendConfig.from_dict(d)
    except KwsError as e:
        assert str(e)
        return
    assert FrontendConfig.from_dict(c.to_dict()) == c
    assert c.n_features >= 1 and c.frames(c.n_fft) == 1


# ---------------------------------------------------------------------------------------------
# module hygiene
# ---------------------------------------------------------------------------------------------

def test_librosa_not_imported_by_module_import():
    code = "import sys, kws.frontend; assert 'librosa' not in sys.modules, 'librosa imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plan_is_cached_and_readonly():
    c = FrontendConfig(kind="mfcc", n_mfcc=13)
    assert fe_mod._plan(c) is fe_mod._plan(FrontendConfig.from_dict(c.to_dict()))
    p = fe_mod._plan(c)
    with pytest.raises(ValueError):
        p.window[0] = 1.0


def test_docstring_examples():
    res = doctest.testmod(fe_mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted >= 10
