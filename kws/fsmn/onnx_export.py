"""Export the float network (kws.fsmn.floatnet) to ONNX with onnx.helper: no torch, no training code.

The graph is built from the same parameters as the numpy float network (kws.fsmn.floatnet
.float_params: the model file's tensors, binary weights as +-1 float32), in the layout an ONNX
user would write for a 1-D conv net: the stem is Gather (stacking the window frames) + Gemm, then
everything runs as [1, C, T] tensors: the memory convolution is a depthwise Conv (group = C,
kernel back+1+ahead, zero padding back / ahead), the pointwise layers are 1x1 Convs with the
following per-channel scale folded into their weights and the shift into their bias, PReLU where
the float network has one, ReduceMean over time and a MatMul classifier.

    features float32 [n_frames, n_features]  ->  logits float32 [n_classes]

Needs the `onnx` package (the `bench` extra); inference with kws never does.
"""

from __future__ import annotations

import numpy as np

from kws.fsmn.config import OperatingPoint
from kws.fsmn.floatnet import float_params
from kws.fsmn.model import Model
from kws.fsmn.pcen import DB_MIN

OPSET = 17


def smoother_matrices(params: np.ndarray, t: int) -> np.ndarray:
    """float32 [F, t, t]: PCEN's smoother as a matrix per band, M[:, f] = A[f] @ E[:, f]
    (M[0] = E[0], M[i] = (1 - s) M[i-1] + s E[i]: A[f][i, 0] = (1 - s)^i, A[f][i, j] = s (1 - s)^(i-j))."""
    s = params[0].astype(np.float64)[:, None, None]
    i, j = np.arange(t)[:, None], np.arange(t)[None, :]
    a = np.where(j <= i, s * (1 - s) ** np.maximum(i - j, 0), 0.0)
    a[:, :, 0] = (1 - s[:, :, 0]) ** np.arange(t)[None, :]
    return a.astype(np.float32)


def pcen_nodes(x: str, params: np.ndarray, t: int, const, node) -> str:
    """PCEN of the window (kws/fsmn/pcen.py) in ONNX operators; the smoother is a batched MatMul."""
    c = lambda name, v: const("pcen." + name, np.asarray(v, np.float32))      # noqa: E731
    x = node("Max", [x, c("db_min", DB_MIN)], "pcen.floor")
    ln_e = node("Mul", [x, c("ln10_10", np.log(10.0) / 10)], "pcen.ln_e")       # [T, F]
    e = node("Exp", [ln_e], "pcen.e")
    et = node("Transpose", [e], "pcen.e_t", perm=[1, 0])                       # [F, T]
    et = node("Unsqueeze", [et, const("pcen.axes2", np.array([2], np.int64))], "pcen.e_col")
    m = node("MatMul", [c("smoother", smoother_matrices(params, t)), et], "pcen.m_col")   # [F, T, 1]
    m = node("Squeeze", [m, const("pcen.axes2b", np.array([2], np.int64))], "pcen.m_t")
    m = node("Transpose", [m], "pcen.m", perm=[1, 0])                          # [T, F]
    _, alpha, delta, root, eps = params
    m_eps = node("Add", [m, c("eps", eps)], "pcen.m_eps")
    if np.all(alpha == 1):          # the default: a division, as the runtime does (no Log/Exp)
        q = node("Div", [e, m_eps], "pcen.q")
    else:
        lm = node("Log", [m_eps], "pcen.log_m")
        q = node("Exp", [node("Sub", [ln_e, node("Mul", [lm, c("alpha", alpha)], "pcen.a_log_m")],
                              "pcen.ln_q")], "pcen.q")
    q_delta = node("Add", [q, c("delta", delta)], "pcen.q_delta")
    y = node("Sqrt", [q_delta], "pcen.pow") if np.all(root == 0.5) else \
        node("Pow", [q_delta, c("root", root)], "pcen.pow")
    return node("Sub", [y, c("delta_root", delta.astype(np.float64) ** root.astype(np.float64))], "pcen.out")


def float_onnx(model: Model, op: OperatingPoint):
    """onnx.ModelProto of the float network of `model` at `op` (checked with onnx.checker)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    a = model.arch
    P = float_params(model, op)
    bw, hw = a.channels(op.width)
    t = a.stem_frames
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(kind, inputs, name, **attrs):
        nodes.append(helper.make_node(kind, inputs, [name], name=name, **attrs))
        return name

    col = lambda v: np.asarray(v, np.float32).reshape(-1, 1)          # [C] -> [C, 1]: NCT broadcast

    def affine_prelu(x, scale, shift, slope, name):
        y = node("Mul", [x, const(name + ".scale", col(scale))], name + ".mul")
        y = node("Add", [y, const(name + ".shift", col(shift))], name + ".add")
        return node("PRelu", [y, const(name + ".slope", col(slope))], name + ".prelu")

    # (PCEN,) normalise, stack stem windows (frame-major), stem linear
    x = "features"
    if P["pcen"] is not None:
        x = pcen_nodes(x, P["pcen"], a.n_frames, const, node)
    x = node("Sub", [x, const("mean", P["mean"])], "norm.sub")
    x = node("Div", [x, const("std", P["std"])], "norm.div")
    idx = (np.arange(t)[:, None] * a.stem_stride + np.arange(a.stem_kernel)[None, :]).astype(np.int64)
    x = node("Gather", [x, const("stem.frames", idx)], "stem.gather", axis=0)        # [T', k, F]
    x = node("Reshape", [x, const("stem.shape", np.array([t, a.stem_inputs], np.int64))], "stem.flat")
    h = node("Gemm", [const("stem.weight", P["stem"]), x], "stem.gemm", transB=1)    # [B, T']
    h = node("Unsqueeze", [h, const("axes0", np.array([0], np.int64))], "stem.nct")    # [1, B, T']
    h = affine_prelu(h, *P["stem_affine"], "stem")
    for i, blk in enumerate(P["blocks"]):
        p = f"block{i}"
        taps = blk["taps"].T.reshape(bw, 1, a.taps)                                   # [B, 1, L]
        m = node("Conv", [h, const(p + ".mem.w", taps)], p + ".mem", group=bw,
                 kernel_shape=[a.taps], pads=[a.back, a.ahead])
        m = affine_prelu(m, *blk["mem"], p + ".mem")
        h = node("Add", [h, m], p + ".mem.res")
        s, sh, slope = blk["up_affine"]
        z = node("Conv", [h, const(p + ".up.w", (blk["up"] * s[:, None])[:, :, None]),
                          const(p + ".up.b", sh)], p + ".up", kernel_shape=[1])
        z = node("PRelu", [z, const(p + ".up.slope", col(slope))], p + ".up.prelu")
        ds, dsh = blk["down_affine"]
        y = node("Conv", [z, const(p + ".down.w", (blk["down"] * ds[:, None])[:, :, None]),
                          const(p + ".down.b", dsh)], p + ".down", kernel_shape=[1])
        h = node("Add", [h, y], p + ".down.res")
    g = affine_prelu(h, P["head"][0], P["head"][1], np.ones(bw, np.float32), "head")   # slope 1: affine
    g = node("ReduceMean", [g], "head.mean", axes=[2], keepdims=0)                     # [1, B]
    y = node("MatMul", [g, const("classifier.weight_t", P["cls"].T)], "cls.matmul")   # [1, C]
    y = node("Add", [y, const("classifier.bias", P["bias"])], "cls.add")
    node("Reshape", [y, const("out.shape", np.array([a.n_classes], np.int64))], "logits")

    graph = helper.make_graph(
        nodes, f"kws_float_fsmn_{op.name}",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [a.n_frames, a.n_features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [a.n_classes])], inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="kws")
    onnx_model.ir_version = min(onnx_model.ir_version, 8)      # readable by older runtimes too
    onnx.checker.check_model(onnx_model)
    return onnx_model


def ort_session(model: Model, op: OperatingPoint, threads: int = 1):
    """An onnxruntime InferenceSession of the float network, `threads` intra-op threads."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(float_onnx(model, op).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
