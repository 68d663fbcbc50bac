"""Every kernel, on every ISA this CPU offers, bit-exact against a plain numpy reference."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kws import _kernels as K

ISAS = K.available()


@pytest.fixture(params=ISAS)
def isa(request):
    before = K.isa()
    K.set_isa(request.param)
    yield request.param
    K.set_isa(before)


# ------------------------------------------------------------------ numpy reference (no kernels)
def ref_signs(packed, k):
    """uint64 [M, W] -> int64 +-1 [M, k], straight from the documented bit convention."""
    bits = np.unpackbits(np.ascontiguousarray(packed).view(np.uint8), axis=1, bitorder="little")
    return np.where(bits[:, :k] == 1, -1, 1).astype(np.int64)


def ref_pack(signs):
    """+-1 [M, K] -> uint64 [M, ceil(K/64)] with zero padding."""
    m, k = signs.shape
    bits = np.zeros((m, 64 * K.words(k)), np.uint8)
    bits[:, :k] = signs < 0
    return np.packbits(bits, axis=1, bitorder="little").view(np.uint64).reshape(m, K.words(k))


def random_packed(rng, rows, words):
    """Random words everywhere, padding included: kernels must ignore bits beyond k."""
    return rng.integers(0, 2**64, size=(rows, words), dtype=np.uint64, endpoint=False)


shapes = st.tuples(st.integers(1, 9), st.integers(1, 19),
                   st.one_of(st.integers(1, 300), st.integers(1, 4200)),
                   st.integers(0, 2), st.integers(0, 2**32 - 1))


# ------------------------------------------------------------------ packing
@given(st.integers(0, 7), st.integers(0, 200), st.sampled_from(["float32", "float64", "int8"]),
       st.integers(0, 2**32 - 1))
def test_pack_matches_reference(isa, m, k, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)) * 3
    x[rng.random((m, k)) < 0.1] = 0.0           # exact zeros pack as +1
    x = x.astype(dtype)
    signs = np.where(x >= 0, 1, -1)
    p = K.pack(x)
    assert p.dtype == np.uint64 and p.shape == (m, K.words(k))
    np.testing.assert_array_equal(p, ref_pack(signs))
    np.testing.assert_array_equal(K.unpack(p, k), signs.astype(np.int8))


@given(st.integers(0, 7), st.integers(0, 200), st.integers(0, 2**32 - 1))
def test_pack_with_thresholds_matches_reference(isa, m, k, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * 3).astype(np.float32)
    t = (rng.standard_normal(k) * 2).astype(np.float32)
    if m and k:
        x[0, : k // 2] = t[: k // 2]             # equal to the threshold packs as +1
        x[rng.random((m, k)) < 0.05] = np.inf
    np.testing.assert_array_equal(K.pack(x, t), ref_pack(np.where(x >= t, 1, -1)))


def test_pack_threshold_errors():
    x = np.zeros((2, 5), np.float32)
    with pytest.raises(ValueError, match="thresh"):
        K.pack(x, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="thresh"):
        K.pack(x, np.zeros(5, np.float64))
    with pytest.raises(ValueError, match="finite"):
        K.pack(x, np.full(5, np.nan, np.float32))
    with pytest.raises(ValueError, match="float32"):
        K.pack(x.astype(np.float64), np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        K.pack(np.full((1, 5), np.nan, np.float32), np.zeros(5, np.float32))


def test_pack_edge_values(isa):
    x = np.array([[0.0, -0.0, 1e-30, -1e-30, np.inf, -np.inf]], np.float32)
    assert K.unpack(K.pack(x), 6).tolist() == [[1, 1, 1, -1, 1, -1]]
    with pytest.raises(ValueError, match="NaN"):
        K.pack(np.array([[1.0, np.nan]], np.float32))
    for k in (17, 64, 65, 130):               # a NaN in the last, partial vector of a row is counted
        x = np.ones((2, k), np.float32)
        x[1, -1] = np.nan
        with pytest.raises(ValueError, match="1 NaN"):
            K.pack(x, np.zeros(k, np.float32))


# ------------------------------------------------------------------ bgemm and epilogues
@given(shapes)
def test_bgemm_matches_reference(isa, shape):
    m, n, k, extra, seed = shape
    rng = np.random.default_rng(seed)
    a = random_packed(rng, m, K.words(k) + extra)
    w = random_packed(rng, n, K.words(k) + extra)
    expected = ref_signs(a, k) @ ref_signs(w, k).T
    got = K.bgemm(a, w, k)
    assert got.dtype == np.int32 and got.shape == (m, n)
    np.testing.assert_array_equal(got, expected)


@given(shapes)
def test_bgemm_scale_matches_reference(isa, shape):
    m, n, k, extra, seed = shape
    rng = np.random.default_rng(seed)
    a, w = random_packed(rng, m, K.words(k) + extra), random_packed(rng, n, K.words(k) + extra)
    scale = rng.standard_normal(n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    dot = (ref_signs(a, k) @ ref_signs(w, k).T).astype(np.float32)
    got = K.bgemm_scale(a, w, k, scale, bias)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, dot * scale + bias)   # same float32 ops, same rounding


@given(shapes)
def test_bgemm_scale_accumulate_matches_reference(isa, shape):
    """out += dot * scale + bias: the residual add fused into the epilogue, same two roundings
    then one add."""
    m, n, k, extra, seed = shape
    rng = np.random.default_rng(seed)
    a, w = random_packed(rng, m, K.words(k) + extra), random_packed(rng, n, K.words(k) + extra)
    scale = rng.standard_normal(n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    h = (rng.standard_normal((m, n)) * 50).astype(np.float32)
    dot = (ref_signs(a, k) @ ref_signs(w, k).T).astype(np.float32)
    out = h.copy()
    assert K.bgemm_scale(a, w, k, scale, bias, out=out, accumulate=True) is out
    np.testing.assert_array_equal(out, h + (dot * scale + bias))


def test_bgemm_scale_accumulate_needs_out():
    a = np.zeros((2, 1), np.uint64)
    with pytest.raises(ValueError, match="pass out"):
        K.bgemm_scale(a, a, 10, np.ones(2, np.float32), np.ones(2, np.float32), accumulate=True)


@given(shapes)
def test_bgemm_threshold_matches_reference(isa, shape):
    m, n, k, extra, seed = shape
    rng = np.random.default_rng(seed)
    a, w = random_packed(rng, m, K.words(k) + extra), random_packed(rng, n, K.words(k) + extra)
    dot = ref_signs(a, k) @ ref_signs(w, k).T
    thresh = rng.integers(-k - 1, k + 2, size=n).astype(np.int32)
    thresh[: n // 3] = dot[0, : n // 3]            # ties: dot == thresh must count as "above"
    extremes = np.array([np.iinfo(np.int32).min, np.iinfo(np.int32).max, -k - 2, k + 3], np.int32)
    pick = rng.random(n) < 0.1                     # thresholds no dot product reaches
    thresh[pick] = rng.choice(extremes, size=int(pick.sum()))
    flip = rng.integers(0, 2, size=n).astype(np.uint8)
    positive = (dot >= thresh) ^ flip.astype(bool)
    got = K.bgemm_threshold(a, w, k, thresh, flip)
    assert got.shape == (m, K.words(n))
    np.testing.assert_array_equal(got, ref_pack(np.where(positive, 1, -1)))
    np.testing.assert_array_equal(K.bgemm_threshold(a, w, k, thresh, flip.astype(bool)), got)


@given(shapes, st.floats(0.1, 1.0))
def test_width_prefix_views_need_no_copy(isa, shape, frac):
    """A thinner sub-network uses the first n' rows and first k' bits of the same arrays."""
    m, n, k, extra, seed = shape
    rng = np.random.default_rng(seed)
    a, w = random_packed(rng, m, K.words(k) + extra), random_packed(rng, n, K.words(k) + extra)
    n2, k2 = max(1, int(n * frac)), max(1, int(k * frac))
    a_view, w_view = a[:, : K.words(k2)], w[:n2]
    assert np.shares_memory(a_view, a) and np.shares_memory(w_view, w)
    np.testing.assert_array_equal(K.bgemm(a_view, w_view, k2),
                                  ref_signs(a, k2) @ ref_signs(w[:n2], k2).T)


big_shapes = st.tuples(st.integers(1, 40), st.integers(1, 200),
                       st.one_of(st.integers(1, 600), st.integers(900, 2200)),
                       st.integers(0, 2), st.integers(0, 2**32 - 1))


@settings(max_examples=max(10, settings.default.max_examples * 2 // 3))   # larger shapes
@given(big_shapes)
def test_epilogues_on_wide_layers(isa, shape):
    """Several column blocks and row tiles (n > 64, m > 8), depths on both sides of the
    kernels' byte-counter limits, row-stride views: dots, scale and threshold all exact."""
    m, n, k, extra, seed = shape
    rng = np.random.default_rng(seed)
    a = random_packed(rng, m, K.words(k) + extra)[:, : K.words(k) + extra // 2]
    w = random_packed(rng, n, K.words(k) + extra)
    dot = ref_signs(a, k) @ ref_signs(w, k).T
    np.testing.assert_array_equal(K.bgemm(a, w, k), dot)
    scale = rng.standard_normal(n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(K.bgemm_scale(a, w, k, scale, bias),
                                  dot.astype(np.float32) * scale + bias)
    thresh = rng.integers(-k // 8 - 1, k // 8 + 2, size=n).astype(np.int32)
    thresh[: n // 3] = dot[-1, : n // 3]
    flip = rng.integers(0, 2, size=n).astype(np.uint8)
    out = np.full((m, K.words(n)), 2**64 - 1, np.uint64)          # stale bits must be cleared
    K.bgemm_threshold(a, w, k, thresh, flip, out=out)
    np.testing.assert_array_equal(out, ref_pack(np.where((dot >= thresh) ^ flip.astype(bool), 1, -1)))


@pytest.mark.parametrize("k", [1, 63, 64, 65, 255, 256, 257, 511, 4096, 4097, 8191, 65536 + 17])
def test_bgemm_extremes(isa, k):
    """All-equal and all-opposite rows: the largest |dot|, where accumulators overflow first."""
    ones = ref_pack(np.ones((5, k), np.int64))
    minus = ref_pack(-np.ones((9, k), np.int64))
    np.testing.assert_array_equal(K.bgemm(ones, ones, k), np.full((5, 5), k))
    np.testing.assert_array_equal(K.bgemm(ones, minus, k), np.full((5, 9), -k))
    np.testing.assert_array_equal(K.bgemm(minus, minus[:1], k), np.full((9, 1), k))


def test_isas_agree_on_large_layer():
    rng = np.random.default_rng(7)
    a, w = random_packed(rng, 100, 8), random_packed(rng, 512, 8)
    results = {}
    before = K.isa()
    try:
        for name in ISAS:
            K.set_isa(name)
            results[name] = K.bgemm(a, w, 500)
    finally:
        K.set_isa(before)
    for name, r in results.items():
        np.testing.assert_array_equal(r, results["scalar"], err_msg=name)


# ------------------------------------------------------------------ memory convolution
def ref_memconv(h, taps, back, ahead):
    t, c = h.shape
    out = np.zeros((t, c), np.int64)
    for i in range(-back, ahead + 1):
        for f in range(t):
            if 0 <= f + i < t:
                out[f] += h[f + i] * taps[i + back]
    return out


@given(st.integers(1, 40), st.integers(1, 200), st.integers(0, 20), st.integers(0, 20),
       st.integers(0, 2**32 - 1))
def test_bmemconv_matches_reference(t, c, back, ahead, seed):
    rng = np.random.default_rng(seed)
    words = K.words(c) + 1
    h, taps = random_packed(rng, t, words), random_packed(rng, back + 1 + ahead, words)
    got = K.bmemconv(h, taps, c, back, ahead)
    assert got.dtype == np.int8 and got.shape == (t, c)
    np.testing.assert_array_equal(got, ref_memconv(ref_signs(h, c), ref_signs(taps, c), back, ahead))


# ------------------------------------------------------------------ bad input never crashes
def test_bad_arguments_raise_value_error():
    a = K.pack(np.ones((3, 100), np.float32))
    w = K.pack(np.ones((4, 100), np.float32))
    cases = [
        lambda: K.bgemm(a.astype(np.int64), w, 100),               # wrong dtype
        lambda: K.bgemm(a[0], w, 100),                               # wrong rank
        lambda: K.bgemm(a, w, 129),                                  # k beyond the words
        lambda: K.bgemm(a, w, -1),
        lambda: K.bgemm(a, w, 1.5),
        lambda: K.bgemm(a, w, True),
        lambda: K.bgemm(np.asfortranarray(np.zeros((3, 2), np.uint64)), w, 100),  # column-major
        lambda: K.bgemm(a[::-1], w, 100),                            # negative row stride
        lambda: K.bgemm([[1]], w, 1),                                # not an array
        lambda: K.bgemm_scale(a, w, 100, np.ones(3, np.float32), np.ones(4, np.float32)),
        lambda: K.bgemm_scale(a, w, 100, np.ones(4), np.ones(4, np.float32)),      # float64 scale
        lambda: K.bgemm_threshold(a, w, 100, np.ones(4, np.float32), np.zeros(4, np.uint8)),
        lambda: K.bgemm_threshold(a, w, 100, np.ones(4, np.int32), np.zeros(5, np.uint8)),
        lambda: K.pack(np.ones(5, np.float32)),
        lambda: K.pack(np.ones((2, 5), np.int32)),
        lambda: K.pack(np.ones((2, 5), np.complex64)),
        lambda: K.unpack(a, 200),
        lambda: K.bmemconv(a, w, 100, 1, 1),                         # 4 taps rows, 3 expected
        lambda: K.bmemconv(a, w[:3], 100, -1, 3),
        lambda: K.bmemconv(a, np.zeros((200, 2), np.uint64), 100, 100, 99),   # > 127 taps
        lambda: K.set_isa("sse9"),
    ]
    for i, case in enumerate(cases):
        with pytest.raises(ValueError):
            case()
            pytest.fail(f"case {i} did not raise")


def test_preallocated_out_is_filled_and_checked(isa):
    rng = np.random.default_rng(3)
    a, w = random_packed(rng, 5, 3), random_packed(rng, 11, 3)
    out = np.full((5, 11), 77, np.int32)
    assert K.bgemm(a, w, 150, out=out) is out
    np.testing.assert_array_equal(out, ref_signs(a, 150) @ ref_signs(w, 150).T)
    for bad in (np.zeros((5, 11), np.int64), np.zeros((11, 5), np.int32),
                np.zeros((5, 22), np.int32)[:, ::2], [[0] * 11] * 5):
        with pytest.raises(ValueError, match="out must be"):
            K.bgemm(a, w, 150, out=bad)
    scale, bias = np.ones(11, np.float32), np.zeros(11, np.float32)
    f = np.empty((5, 11), np.float32)
    assert K.bgemm_scale(a, w, 150, scale, bias, out=f) is f
    b = np.empty((5, 1), np.uint64)
    assert K.bgemm_threshold(a, w, 150, np.zeros(11, np.int32), np.zeros(11, np.uint8), out=b) is b


def test_empty_and_zero_depth():
    e = np.zeros((0, 2), np.uint64)
    w = K.pack(np.ones((4, 100), np.float32))
    assert K.bgemm(e, w, 100).shape == (0, 4)
    assert K.bgemm(w, e, 100).shape == (4, 0)
    assert K.bgemm(w, w, 0).tolist() == [[0] * 4] * 4
    assert K.bgemm(np.zeros((2, 0), np.uint64), np.zeros((3, 0), np.uint64), 0).shape == (2, 3)
    np.testing.assert_array_equal(
        K.bgemm_scale(w, w, 0, np.ones(4, np.float32), np.arange(4, dtype=np.float32)),
        np.tile(np.arange(4, dtype=np.float32), (4, 1)))
    assert K.pack(np.zeros((0, 5), np.float32)).shape == (0, 1)


def test_readonly_operands_are_accepted():
    w = K.pack(np.ones((4, 100), np.float32))
    w.setflags(write=False)       # e.g. tensors memory-mapped from a model file
    assert K.bgemm(w, w, 100)[0, 0] == 100


# ------------------------------------------------------------------ selection and threading
def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_kws_kernel_env_forces_and_rejects():
    r = run_python("import kws._kernels as K; print(K.info()['isa'])", KWS_KERNEL="scalar")
    assert r.returncode == 0 and r.stdout.strip() == "scalar", r.stderr
    r = run_python("import kws._kernels", KWS_KERNEL="sse9")
    assert r.returncode != 0 and "KWS_KERNEL='sse9' is not a kernel" in r.stderr
    missing = [n for n in K.ISAS if n not in ISAS]
    if missing:
        r = run_python("import kws._kernels", KWS_KERNEL=missing[0])
        assert r.returncode != 0 and "not supported on this CPU" in r.stderr


def test_info_reports_isa_and_why():
    info = K.info()
    assert info["isa"] in info["available"] and "scalar" in info["available"]
    simd = [n for n in info["available"] if n != "scalar"]
    if len(simd) > 1:      # measured: every SIMD kernel timed, the fastest chosen
        assert sorted(info["probe_us"]) == sorted(simd) and all(v > 0 for v in info["probe_us"].values())
        assert info["best"] == min(info["probe_us"], key=info["probe_us"].get)
        assert "measured" in info["reason"] or os.environ.get("KWS_KERNEL")
    else:                  # nothing to choose from: no measurement
        assert info["probe_us"] == {} and info["best"] == (simd or ["scalar"])[0]
    if os.environ.get("KWS_KERNEL"):
        assert "forced" in info["reason"]
    else:
        assert info["isa"] == info["best"]


def test_forced_kernel_says_so():
    r = run_python("import kws._kernels as K, json; print(json.dumps(K.info()))", KWS_KERNEL="scalar")
    assert r.returncode == 0, r.stderr
    info = __import__("json").loads(r.stdout)
    assert info["isa"] == info["forced"] == "scalar" and info["reason"] == "forced by KWS_KERNEL=scalar"


def test_gil_is_released_during_kernels():
    """Another Python thread keeps running while a long kernel call is in flight."""
    rng = np.random.default_rng(1)
    a, w = random_packed(rng, 400, 64), random_packed(rng, 2000, 64)
    start = time.perf_counter()
    K.bgemm(a, w, 64 * 64)
    one_call = time.perf_counter() - start
    ticks, done = [0], threading.Event()

    def count():
        while not done.is_set():
            ticks[0] += 1

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.01)
    before = ticks[0]
    K.bgemm(a, w, 64 * 64)       # one C call; with the GIL held the counter could not move
    moved = ticks[0] - before
    done.set()
    t.join()
    assert one_call < 0.02 or moved > 1000, (one_call, moved)
