"""The float network (kws.fsmn.floatnet) and its ONNX export compute the same logits."""

import numpy as np
import pytest

from kws.fsmn.config import ArchConfig
from kws.fsmn.floatnet import FloatFSMN, float_params
from kws.fsmn.model import random_model


def _features(arch, seed=0):
    return (np.random.default_rng(seed).standard_normal((arch.n_frames, arch.n_features)) * 10 - 40
            ).astype(np.float32)


def test_float_params_use_the_models_binary_weights_as_pm1():
    from kws import _kernels as K
    m = random_model()
    op = m.arch.operating_point(0.5, 4)
    p = float_params(m, op)
    bw, hw = m.arch.channels(op.width)
    assert p["stem"].shape == (bw, m.arch.stem_inputs) and p["cls"].shape == (m.arch.n_classes, bw)
    blk = p["blocks"][0]
    assert blk["up"].shape == (hw, bw) and blk["down"].shape == (bw, hw)
    assert blk["taps"].shape == (m.arch.taps, bw)
    b = op.blocks[0]
    np.testing.assert_array_equal(blk["up"], K.unpack(m.tensors[f"block{b}.up"][:hw], bw))
    assert set(np.unique(blk["down"])) == {-1.0, 1.0}


def test_float_network_is_finite_at_every_point():
    m = random_model()
    x = _features(m.arch)
    for op in m.arch.operating_points:
        y = FloatFSMN(m, op).logits(x)
        assert y.shape == (m.arch.n_classes,) and np.isfinite(y).all()


@pytest.mark.parametrize("arch", [ArchConfig(), ArchConfig(n_frames=40, back=1, ahead=3, n_blocks=4, block_sets=((0, 1, 2, 3), (1, 3)),
                                                           widths=(1.0, 0.5), n_classes=5)])
def test_onnx_export_matches_numpy_float_network(arch):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from kws.fsmn.onnx_export import float_onnx, ort_session
    m = random_model(arch, seed=3)
    x = _features(arch, seed=1)
    for op in arch.operating_points:
        proto = float_onnx(m, op)
        assert [i.name for i in proto.graph.input] == ["features"]
        sess = ort_session(m, op, threads=1)
        got = sess.run(None, {"features": x})[0]
        want = FloatFSMN(m, op).logits(x)
        assert got.shape == want.shape == (arch.n_classes,)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))
    assert isinstance(ort.__version__, str)
