"""On aarch64 the NEON (FBCK) kernel must be compiled in and picked by default.

Fails, rather than skips, when an aarch64 build silently falls back to the scalar kernel.
Skipped on other machines (x86-64 has its own ISA checks in test_kernels.py).
Run on an x86-64 host under qemu with scripts/test-arm64.sh.
"""

import os
import platform

import numpy as np
import pytest

from kws import _kernels as K

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("aarch64", "arm64"),
                                reason="aarch64 only (run scripts/test-arm64.sh on x86-64)")


@pytest.mark.skipif(bool(os.environ.get("KWS_KERNEL")), reason="KWS_KERNEL forces an ISA")
def test_neon_is_selected_by_default():
    info = K.info()
    assert "neon" in K.available(), info
    assert info["best"] == "neon", info
    assert info["isa"] == "neon", info


def test_neon_available_and_x86_isas_absent():
    assert "neon" in K.available()
    assert not {"avx2", "avx512"} & set(K.available())


def test_neon_path_runs_and_matches_scalar():
    """Shapes that hit every NEON path: FBCK 16x4 and 8x8 tiles with their n remainders, the
    row kernel (m % 8 rows, n < 8), a masked last chunk, several depth panels (k > 8192)."""
    rng = np.random.default_rng(3)
    before = K.isa()
    try:
        for m, n, k in [(1, 1, 1), (37, 23, 300), (16, 8, 4096), (8, 13, 8193), (24, 7, 17000)]:
            words = K.words(k) + 1
            a = rng.integers(0, 2**64, size=(m, words), dtype=np.uint64, endpoint=False)
            w = rng.integers(0, 2**64, size=(n, words), dtype=np.uint64, endpoint=False)
            K.set_isa("neon")
            got = K.bgemm(a, w, k)
            K.set_isa("scalar")
            np.testing.assert_array_equal(got, K.bgemm(a, w, k), err_msg=f"m={m} n={n} k={k}")
    finally:
        K.set_isa(before)
