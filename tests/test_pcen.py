"""PCEN of each window (arch input_norm "pcen", kws/fsmn/pcen.py): the C runtime, torch and ONNX
against the float64 definition, the definition against librosa.pcen, level invariance, the model
file, and a Detector whose results do not depend on chunking."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kws
from kws import _kernels as K
from kws.errors import KwsError
from kws.fsmn import pcen as P
from kws.fsmn.config import ArchConfig
from kws.fsmn.model import FORMAT_VERSION, Model, _read_header, load_model, model_from_bytes, random_model
from kws.fsmn.runtime import BinaryFSMN

PCEN_ARCH = ArchConfig(input_norm="pcen")


def _window(t, f, seed=0, mean=-50.0, spread=20.0):
    return np.random.default_rng(seed).normal(mean, spread, (t, f)).clip(-100, 30).astype(np.float32)


def _close(got, want):
    # float32 exp/log chains against float64: ~1e-6 relative, and (q + delta)^r - delta^r loses
    # digits to cancellation when q is small: an absolute term of a few float32 ulps of delta^r
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@st.composite
def params(draw, f):
    col = lambda lo, hi: np.asarray(draw(st.lists(st.floats(lo, hi), min_size=f, max_size=f)))  # noqa: E731
    return np.stack([col(1e-3, 1.0), col(0.0, 1.0), col(0.05, 10.0), col(0.1, 1.0),
                     10.0 ** col(-11, -4)]).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 130), st.integers(1, 45), st.data())
def test_c_equals_the_float64_definition(t, f, data):
    p = data.draw(params(f))
    x = _window(t, f, seed=data.draw(st.integers(0, 2**31)))
    got = K.pcen(x, p)
    assert got.dtype == np.float32 and got.shape == (t, f)
    _close(got, P.reference(x, p))


def test_every_instruction_set_gives_the_same_bits():
    """Own exp and log, no FMA: the AVX-512, AVX2 and baseline (SSE2 / NEON) builds agree bit
    for bit, at band counts that leave partial vectors."""
    before = K.isa()
    try:
        for f in (1, 7, 40, 45):
            x, p = _window(97, f, seed=f), P.default_params(f)
            p[1, ::2] = 0.7                               # alpha 1 (a division) and the log/exp path
            q = P.default_params(f)
            q[3] = 0.25                                   # the general root path
            outs = []
            for isa in K.available():
                K.set_isa(isa)
                outs.append((K.pcen(x, p), K.pcen(x, q)))
            for a, b in outs[1:]:
                np.testing.assert_array_equal(a, outs[0][0])
                np.testing.assert_array_equal(b, outs[0][1])
            _close(outs[0][1], P.reference(x, q))
    finally:
        K.set_isa(before)


def test_definition_is_librosas_pcen_started_at_the_first_frame():
    librosa = pytest.importorskip("librosa")
    import scipy.signal
    x = _window(97, 40, mean=-35, spread=12)
    p = P.default_params(40)
    e = np.exp(x.astype(np.float64) * P.LN10_OVER_10).T                      # mel power [F, T]
    s = P.smoothing_coefficient(0.4, 0.01)
    zi = scipy.signal.lfilter_zi([s], [1, s - 1])[0] * e[:, :1]
    for alpha in (1.0, 0.98):                    # kws's default, librosa's default
        p[1] = alpha
        want = librosa.pcen(e, sr=16000, hop_length=160, time_constant=0.4, gain=alpha, bias=2.0,
                            power=0.5, eps=1e-8, zi=zi).T
        np.testing.assert_allclose(P.reference(x, p), want, rtol=1e-6, atol=1e-7)
    d = P.default_params(40)
    assert abs(d[0, 0] - s) < 1e-8 and np.allclose(d[1:5, 0], [1.0, 2.0, 0.5, 1e-8])


def test_a_quieter_recording_gives_nearly_the_same_features():
    """What PCEN is for: dB features move with the gain; PCEN's not at all with alpha = 1 (the
    default) while the signal stays well above eps, and barely (by g^(1 - alpha)) below 1."""
    x = _window(97, 40, mean=-30, spread=10)
    p = P.default_params(40)
    p[4] = 1e-14
    for gain in (-20.0, 10.0):
        np.testing.assert_allclose(K.pcen(x + np.float32(gain), p), K.pcen(x, p), rtol=1e-4, atol=1e-5)
        assert np.abs(x + np.float32(gain) - x).mean() == pytest.approx(abs(gain), rel=1e-3)
    librosas = P.default_params(40)
    librosas[1] = 0.98
    moved = K.pcen(x - 20, librosas) - K.pcen(x, librosas)
    assert 0 < np.abs(moved).mean() < 0.1 * np.abs(K.pcen(x, librosas)).mean()


def test_each_frame_depends_only_on_the_window_up_to_it():
    x = _window(97, 8, seed=3)
    p = P.default_params(8)
    full = K.pcen(x, p)
    np.testing.assert_array_equal(K.pcen(x[:50], p), full[:50])      # causal within the window
    y = x.copy()
    y[0] += 10                                                      # the start sets the smoother
    assert not np.allclose(K.pcen(y, p)[1:], full[1:])


def test_torch_equals_the_definition():
    torch = pytest.importorskip("torch")
    from kws.distill.modules import pcen_torch
    x = np.stack([_window(97, 40, seed=s) for s in range(3)])
    p = P.default_params(40)
    p[0, ::3] = 0.2                                                 # per-band parameters
    p[3, 1::4] = 0.3
    got = pcen_torch(torch.from_numpy(x), torch.from_numpy(p)).numpy()
    _close(got, P.reference(x, p))
    _close(P.apply(x, p), P.reference(x, p))


def test_bad_calls_are_refused():
    p = P.default_params(4)
    with pytest.raises(ValueError, match="float32"):
        K.pcen(np.zeros((5, 4), np.float64), p)
    with pytest.raises(ValueError, match="frames"):
        K.pcen(np.zeros((0, 4), np.float32), p)
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        K.pcen(np.zeros((5, 4), np.float32), p[:, :3])
    for row, bad in ((0, 0.0), (0, 1.5), (1, -0.1), (2, 0.0), (3, 2.0), (4, 0.0), (4, np.nan)):
        q = p.copy()
        q[row, 1] = bad
        with pytest.raises(KwsError, match="PCEN"):
            P.check_params(q, 4)


def test_model_file_round_trip_and_checks(tmp_path):
    m = random_model(PCEN_ARCH, seed=1)
    path = tmp_path / "pcen.kws"
    m.save(path)
    back = load_model(path)
    assert back.arch.input_norm == "pcen"
    np.testing.assert_array_equal(back.tensors["frontend.pcen"], P.default_params(40))
    x = _window(97, 40)
    op = m.arch.operating_points[0]
    np.testing.assert_array_equal(BinaryFSMN(back).logits(x, op), BinaryFSMN(m).logits(x, op))
    import json
    kws_info = lambda f: json.loads(_read_header(f.read_bytes())["__metadata__"]["kws"])   # noqa: E731
    assert kws_info(path)["format_version"] == FORMAT_VERSION == 4
    plain = tmp_path / "plain.kws"                # without PCEN: format 3, readable by older kws
    random_model(seed=1).save(plain)
    info = kws_info(plain)
    assert info["format_version"] == 3 and "input_norm" not in info["arch"]
    assert load_model(plain).arch.input_norm == "global"
    bad = dict(m.tensors)
    bad["frontend.pcen"] = bad["frontend.pcen"].copy()
    bad["frontend.pcen"][0, 0] = -1.0
    with pytest.raises(KwsError, match="frontend.pcen"):
        Model(arch=m.arch, frontend=m.frontend, labels=m.labels, tensors=bad)
    missing = {k: v for k, v in m.tensors.items() if k != "frontend.pcen"}
    with pytest.raises(KwsError, match="frontend.pcen"):
        Model(arch=m.arch, frontend=m.frontend, labels=m.labels, tensors=missing)
    from kws.frontend import FrontendConfig
    with pytest.raises(KwsError, match="log-mel"):
        Model(arch=m.arch, frontend=FrontendConfig(kind="mfcc"), labels=m.labels, tensors=m.tensors)
    # the shipped default model (v9, session 20) normalises each window with PCEN: format 4;
    # files without PCEN (format 3, every default model up to v4.1) load as before (`plain` above)
    from kws.detector import default_model_path
    assert load_model(default_model_path()).arch.input_norm == "pcen"
    assert kws_info(default_model_path())["format_version"] == 4
    with pytest.raises(KwsError, match="input_norm"):
        ArchConfig(input_norm="cmvn")


def test_network_runs_pcen_then_the_normalisation_in_its_one_c_call():
    """The PCEN model's logits are, bit for bit, those of the same network without PCEN fed the
    PCEN of the window (the network's C path and K.pcen are one function)."""
    m = random_model(PCEN_ARCH, seed=2)
    plain = Model(arch=dataclasses.replace(m.arch, input_norm="global"), frontend=m.frontend,
                  labels=m.labels, tensors={k: v for k, v in m.tensors.items() if k != "frontend.pcen"})
    x = _window(97, 40, seed=5)
    for op in m.arch.operating_points:
        np.testing.assert_array_equal(BinaryFSMN(m).logits(x, op),
                                      BinaryFSMN(plain).logits(K.pcen(x, m.tensors["frontend.pcen"]), op))


@pytest.mark.parametrize("alpha, root", [(1.0, 0.5), (0.98, 0.4)])   # Div/Sqrt or Log/Exp/Pow
def test_onnx_export_matches_the_float_network_with_pcen(alpha, root):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from kws.fsmn.floatnet import FloatFSMN
    from kws.fsmn.onnx_export import ort_session, smoother_matrices
    m = random_model(PCEN_ARCH, seed=3)
    p = m.tensors["frontend.pcen"].copy()
    p[0, ::2] = 0.1                                  # per-band smoothing reaches the matrices
    p[1, 1::2], p[3, 1::2] = alpha, root
    m = Model(arch=m.arch, frontend=m.frontend, labels=m.labels, tensors={**m.tensors, "frontend.pcen": p})
    x = _window(97, 40, seed=4, mean=-40)
    e = np.exp(x.astype(np.float64) * P.LN10_OVER_10)
    m_iir = np.einsum("fij,jf->if", smoother_matrices(p, 97).astype(np.float64), e)
    want_m = e.copy()
    for t in range(1, 97):
        want_m[t] = (1 - p[0].astype(np.float64)) * want_m[t - 1] + p[0].astype(np.float64) * e[t]
    np.testing.assert_allclose(m_iir, want_m, rtol=1e-5)
    for op in m.arch.operating_points[:3]:
        got = ort_session(m, op, threads=1).run(None, {"features": x})[0]
        want = FloatFSMN(m, op).logits(x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(0, 6000), min_size=1, max_size=20))
def test_detector_with_pcen_does_not_depend_on_chunking(tone_bursts, sizes):
    m = random_model(PCEN_ARCH, labels=["yes", "no", "up", "down", "left", "right", "on", "off",
                                        "stop", "go", "_unknown_", "_silence_"], seed=10)
    whole = kws.Detector(m, threshold=0.05)
    want = whole.feed(tone_bursts)
    det = kws.Detector(m, threshold=0.05)
    cuts = np.minimum(np.cumsum([0] + sizes), len(tone_bursts)).tolist() + [len(tone_bursts)]
    got = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        got += det.feed(tone_bursts[a:b])
    assert got == want
    np.testing.assert_array_equal(det.last_scores, whole.last_scores)
    assert whole.inferences > 5
