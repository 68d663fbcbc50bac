"""The kernel runtime against a plain numpy reference of the same math (+-1 values, no packing),
for every operating point of random models of several shapes."""

import numpy as np
import pytest

from kws import _kernels as K
from kws.frontend import FrontendConfig
from kws.fsmn.config import ArchConfig, OperatingPoint
from kws.fsmn.model import random_model
from kws.fsmn.runtime import BinaryFSMN

ARCHS = [
    ArchConfig(),                                                      # the default shape
    ArchConfig(memory_input="binary"),
    ArchConfig(n_frames=30, n_features=13, stem_kernel=4, stem_stride=3, backbone=40, hidden=72,
               n_blocks=4, back=1, ahead=3, n_classes=5, widths=(1.0, 0.5, 0.25),
               block_sets=((0, 1, 2, 3), (1, 3), (3,)), memory_input="binary"),
    ArchConfig(n_frames=20, n_features=8, stem_kernel=1, stem_stride=1, backbone=200, hidden=136,
               n_blocks=3, back=0, ahead=0, n_classes=3, widths=(1.0, 0.5), block_sets=((0, 1, 2), (2,))),
    # 5 float memory taps (the one-pass memory block) on widths that are not a multiple of its
    # channel blocks, packed signs over two words
    ArchConfig(n_frames=24, n_features=10, stem_kernel=2, stem_stride=2, backbone=100, hidden=70,
               n_blocks=3, back=1, ahead=3, n_classes=4, widths=(1.0, 0.5), block_sets=((0, 1, 2), (1,))),
    # 3 float memory taps: the two-pass memory convolution, on 88 channels (one 4-vector block,
    # single vectors and a scalar tail on every vector width)
    ArchConfig(n_frames=22, n_features=9, stem_kernel=3, stem_stride=2, backbone=88, hidden=64,
               n_blocks=2, back=1, ahead=1, n_classes=3, widths=(1.0,), block_sets=((0, 1),)),
    # several sign planes of h into the up projection: the default shape with 2 (width 0.25: 32
    # channels, padding inside each plane's word), 3 planes over two words per plane (100 channels,
    # one-pass memory block), 2 planes after the two-pass binary memory (88 and 44 channels)
    ArchConfig(up_planes=2),
    ArchConfig(n_frames=24, n_features=10, stem_kernel=2, stem_stride=2, backbone=100, hidden=70,
               n_blocks=3, back=1, ahead=3, n_classes=4, widths=(1.0, 0.5), block_sets=((0, 1, 2), (1,)),
               up_planes=3),
    ArchConfig(n_frames=22, n_features=9, stem_kernel=3, stem_stride=2, backbone=88, hidden=64,
               n_blocks=2, back=1, ahead=1, n_classes=3, widths=(1.0, 0.5), block_sets=((0, 1),),
               memory_input="binary", up_planes=2),
]


def frontend_for(arch):
    return FrontendConfig(n_mels=arch.n_features, n_mfcc=arch.n_features)


def signs(packed, k):
    return K.unpack(packed, k).astype(np.int64)


def ordered_matmul(a, b):
    """a [m, k] @ b [k, n] in float32, each output summed in index order from 0 with separate
    multiply and add roundings: the order kws/csrc/fsmn.c fixes for the classifier (BLAS blocks
    and fuses it differently)."""
    out = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for i in range(a.shape[1]):
        out = out + a[:, i:i + 1] * b[i]
    return out


def stem_rows(model, x):
    a, t = model.arch, model.tensors
    x = (x - t["frontend.mean"]) / t["frontend.std"]
    return np.array([np.concatenate([x[i * a.stem_stride + j] for j in range(a.stem_kernel)])
                     for i in range(a.stem_frames)], np.float32)


def reference_stem(model, x, op):
    """The stem's output h [T', Bw] with the matmul summed exactly (float64), then rounded."""
    t, p = model.tensors, model.op_tensors(op)
    bw = model.arch.channels(op.width)[0]
    h = (stem_rows(model, x).astype(np.float64) @ t["stem.weight"][:bw].T.astype(np.float64)).astype(np.float32)
    h = h * p["stem.scale"] + p["stem.shift"]
    return np.where(h < 0, h * p["stem.prelu"], h).astype(np.float32)


def reference_logits(model, h, op):
    """The network of kws/fsmn/config.py after the stem, from the stem's output h, written out with
    +-1 integer arrays. The float steps are the same IEEE operations in the same order as the
    runtime, so that the integer steps, which depend on signs of float values, can be compared
    exactly. (The stem's matmul uses fused multiply-adds where the CPU has them, so its rounding
    depends on the CPU, like BLAS's: reference_stem checks it to float tolerance.)"""
    a, t = model.arch, model.tensors
    p = model.op_tensors(op)
    bw, hw = a.channels(op.width)
    trace = []
    for b in op.blocks:
        taps = signs(t[f"block{b}.mem"], bw)                      # [L, Bw]
        T = len(h)
        if a.memory_input == "float":       # float h, +-1 taps, summed past -> future
            m = np.zeros_like(h)
            for i in range(-a.back, a.ahead + 1):
                for f in range(T):
                    v = h[f + i] if 0 <= f + i < T else np.zeros_like(h[0])
                    m[f] = m[f] + v * taps[i + a.back].astype(np.float32)
        else:
            s = np.where(h >= p[f"block{b}.mem_in_thresh"], 1, -1)
            m = np.zeros_like(s)
            for i in range(-a.back, a.ahead + 1):
                for f in range(T):
                    if 0 <= f + i < T:
                        m[f] += s[f + i] * taps[i + a.back]
        u = m.astype(np.float32) * p[f"block{b}.mem_scale"] + p[f"block{b}.mem_shift"]
        u = np.where(u < 0, u * p[f"block{b}.mem_prelu"], u).astype(np.float32)
        h = h + u
        planes = p[f"block{b}.up_in_thresh"].reshape(-1, bw)   # [P, Bw]: h in P + 1 levels
        q = sum(np.where(h >= thresh, 1, -1) for thresh in planes)
        z = q @ signs(t[f"block{b}.up"], bw)[:hw].T
        hidden = np.where((z >= p[f"block{b}.up_thresh"]) ^ (p[f"block{b}.up_flip"] == 1), 1, -1)
        y = hidden @ signs(t[f"block{b}.down"], hw)[:bw].T         # [T', Bw] integers
        h = h + (y.astype(np.float32) * p[f"block{b}.down_scale"] + p[f"block{b}.down_shift"])
        trace.append(h)
    g = np.zeros(bw, np.float32)
    for row in h * p["head.scale"] + p["head.shift"]:          # time order, float32
        g = g + row
    g = g / np.float32(len(h))
    return ordered_matmul(t["classifier.weight"][:, :bw], g[:, None])[:, 0] + p["classifier.bias"], trace


@pytest.fixture(params=K.available())
def isa(request):
    """Every instruction set this CPU runs: the binary kernels and the float kernels with them."""
    before = K.isa()
    K.set_isa(request.param)
    yield request.param
    K.set_isa(before)


@pytest.mark.parametrize("arch_i", range(len(ARCHS)))
@pytest.mark.parametrize("seed", [0, 1])
def test_runtime_matches_reference_for_every_operating_point(isa, arch_i, seed):
    arch = ARCHS[arch_i]
    model = random_model(arch, frontend_for(arch), seed=seed)
    net = BinaryFSMN(model)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((arch.n_frames, arch.n_features)) * 10 - 40).astype(np.float32)
    for op in arch.operating_points:
        bw, hw = arch.channels(op.width)
        trace = []
        got = net.logits(x, op, trace=trace)
        stem = net.plan(op).net.trace(x)[1][0]
        np.testing.assert_allclose(stem, reference_stem(model, x, op), rtol=1e-5, atol=1e-5)
        want, ref_trace = reference_logits(model, stem, op)
        assert len(trace) == len(ref_trace) == len(op.blocks)
        for b, (h, ref) in enumerate(zip(trace, ref_trace)):
            # same IEEE float ops in the same order around exact integer parts: bit-identical
            np.testing.assert_array_equal(h, ref, err_msg=f"{op.name} block {op.blocks[b]}")
        np.testing.assert_array_equal(got, want, err_msg=op.name)
        np.testing.assert_array_equal(net.logits(x, op), got)          # with or without trace


@pytest.mark.parametrize("arch_i", range(len(ARCHS)))
def test_fused_network_matches_the_numpy_stem_and_classifier(arch_i):
    """Against the runtime before the fused call (stem and classifier through numpy's BLAS, blocks
    in a BlockStack): the stem output within float rounding of BLAS's order; from the same stem
    output the blocks are bit-identical and the logits within rounding of the classifier's sum."""
    arch = ARCHS[arch_i]
    model = random_model(arch, frontend_for(arch), seed=5)
    t = model.tensors
    net = BinaryFSMN(model)
    x = (np.random.default_rng(5).standard_normal((arch.n_frames, arch.n_features)) * 10 - 40).astype(np.float32)
    for op in arch.operating_points:
        pl = net.plan(op)
        p = model.op_tensors(op)
        logits, h = pl.net.trace(x)
        stem = stem_rows(model, x) @ np.ascontiguousarray(t["stem.weight"][:pl.bw].T)
        stem = stem * p["stem.scale"] + p["stem.shift"]
        stem = np.where(stem < 0, stem * p["stem.prelu"], stem).astype(np.float32)
        np.testing.assert_allclose(h[0], stem, rtol=1e-5, atol=1e-5, err_msg=op.name)
        blocks_only = K.BlockStack(pl.blocks, arch.stem_frames, pl.bw, pl.hw, arch.back, arch.ahead,
                                   head=(p["head.scale"], p["head.shift"]))
        g = blocks_only.run(h[0].copy())
        np.testing.assert_allclose(logits, t["classifier.weight"][:, :pl.bw] @ g + p["classifier.bias"],
                                   rtol=1e-5, atol=1e-5, err_msg=op.name)


def test_operating_points_share_weights_and_differ():
    model = random_model(seed=3)
    net = BinaryFSMN(model)
    x = np.random.default_rng(3).standard_normal((97, 40)).astype(np.float32) * 10 - 40
    outs = {op.name: net.logits(x, op) for op in model.arch.operating_points}
    assert len(outs) == 9 and len({v.tobytes() for v in outs.values()}) == 9
    plan = net.plan(model.arch.operating_point(0.5, 4))
    assert np.shares_memory(plan.blocks[0]["up"], model.tensors["block1.up"])   # a view
    with pytest.raises(ValueError, match="h must be"):
        plan.body.run(np.zeros((48, 128), np.float32))
    assert plan.blocks[0]["up"].shape[0] == 128


def test_runtime_rejects_bad_features_and_points():
    model = random_model()
    net = BinaryFSMN(model)
    with pytest.raises(ValueError, match="features must be"):
        net.logits(np.zeros((50, 40), np.float32), model.arch.operating_points[0])
    with pytest.raises(ValueError, match="not in this model"):
        net.logits(np.zeros((97, 40), np.float32), OperatingPoint(0.75, (0, 1)))
    with pytest.raises(ValueError, match="width"):
        model.arch.operating_point(0.3, None)
    with pytest.raises(ValueError, match="blocks"):
        model.arch.operating_point(1.0, 3)


def test_scores_are_probabilities():
    model = random_model()
    net = BinaryFSMN(model)
    s = net.scores(np.zeros((97, 40), np.float32), model.arch.operating_point(0.25, 2))
    assert s.shape == (12,) and abs(float(s.sum()) - 1) < 1e-5 and (s >= 0).all()


def test_block_stack_needs_exactly_one_memory_input():
    model = random_model(ArchConfig(memory_input="binary"), seed=0)
    net = BinaryFSMN(model)
    op = model.arch.operating_points[0]
    blk = dict(net.plan(op).blocks[0])
    args = (model.arch.stem_frames, 128, 256, 2, 2)
    both = dict(blk, mem_taps=np.ones((5, 128), np.float32))
    neither = {k: v for k, v in blk.items() if k != "mem_in_thresh"}
    for bad in (both, neither):
        with pytest.raises(ValueError, match="exactly one of mem_taps"):
            K.BlockStack([bad], *args)
    not_pm1 = dict(neither, mem_taps=np.full((5, 128), 0.5, np.float32))
    with pytest.raises(ValueError, match="mem_taps must be"):
        K.BlockStack([not_pm1], *args)


def test_concurrent_calls_on_one_network_agree_with_serial_calls():
    """The network reuses one scratch buffer per operating point; a call made while another
    thread's call is in flight (GIL released) must use its own memory, not corrupt that one."""
    import threading
    model = random_model(seed=4)
    net = BinaryFSMN(model)
    op = model.arch.operating_point(1.0, 8)
    rng = np.random.default_rng(4)
    xs = [(rng.standard_normal((97, 40)) * 10 - 40).astype(np.float32) for _ in range(8)]
    want = [net.logits(x, op) for x in xs]
    got = [[None] * len(xs) for _ in range(4)]

    def work(t):
        for _ in range(25):
            for i, x in enumerate(xs):
                got[t][i] = net.logits(x, op)
                np.testing.assert_array_equal(got[t][i], want[i])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in range(4):
        for i in range(len(xs)):
            np.testing.assert_array_equal(got[t][i], want[i])
