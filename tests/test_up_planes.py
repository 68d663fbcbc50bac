"""Several sign planes of the residual stream into the up projection (ArchConfig.up_planes): the
architecture's checks and costs, the model file, and the torch student's quantiser. The runtime's
arithmetic is checked against numpy in test_runtime.py and against torch in test_distill_parity.py."""

import numpy as np
import pytest

from kws.errors import KwsError
from kws.fsmn.config import ArchConfig
from kws.fsmn.model import expected_tensors, load_model, random_model


@pytest.mark.parametrize("bad", [0, 4, True, 2.0, "2"])
def test_arch_refuses_a_bad_plane_count(bad):
    with pytest.raises(KwsError, match="up_planes must be 1, 2 or 3"):
        ArchConfig(up_planes=bad)


def test_costs_grow_by_one_up_gemm_per_plane():
    one, two = ArchConfig(), ArchConfig(up_planes=2)
    op = one.operating_points[0]
    assert two.costs(op)["binary_macs"] == one.costs(op)["binary_macs"] * 3 // 2
    assert two.costs(op)["float_macs"] == one.costs(op)["float_macs"]


def test_model_file_round_trip_and_shapes(tmp_path):
    arch = ArchConfig(up_planes=3)
    spec = expected_tensors(arch)
    assert spec["op/0.5/1-3-5-7/block1.up_in_thresh"] == ("float32", (3, 64))
    assert expected_tensors(ArchConfig())["op/0.5/1-3-5-7/block1.up_in_thresh"] == ("float32", (64,))
    m = random_model(arch)
    m.save(tmp_path / "m.kws")
    back = load_model(tmp_path / "m.kws")
    assert back.arch.up_planes == 3
    for k, v in m.tensors.items():
        np.testing.assert_array_equal(back.tensors[k], v, err_msg=k)


def test_a_single_plane_threshold_in_a_planes_file_is_refused():
    m = random_model(ArchConfig(up_planes=2))
    t = dict(m.tensors)
    t["op/1/0-1-2-3-4-5-6-7/block0.up_in_thresh"] = np.zeros(128, np.float32)
    with pytest.raises(KwsError, match=r"up_in_thresh' must be float32 \(2, 128\)"):
        type(m)(arch=m.arch, frontend=m.frontend, labels=m.labels, tensors=t)


def test_torch_planes_start_at_quantiles_and_all_learn():
    torch = pytest.importorskip("torch")
    from kws.distill.modules import FSMN, init_sign_thresholds_, teacher_arch
    arch = ArchConfig(n_frames=30, n_features=8, backbone=32, hidden=48, n_blocks=2,
                      block_sets=((0, 1),), widths=(1.0, 0.5), up_planes=2)
    assert teacher_arch(arch).up_planes == 1         # the float teacher takes no signs
    torch.manual_seed(0)
    net = FSMN(arch, binary=True)
    x = torch.randn(64, 30, 8)
    init_sign_thresholds_(net, x)
    op = arch.operating_points[0]
    thr = net.op_params(op).blocks["0"].up_in_thresh
    assert thr.shape == (2, 32) and (thr[0] < thr[1]).all()
    # the levels of the first block's input: about a third of the values each at the start
    seen = {}
    hook = net._up_input

    def record(h, t):
        q = hook(h, t)
        seen.setdefault("q", q.detach())
        return q
    net._up_input = record
    net.train()
    logits, _ = net(x, op)
    q = seen["q"]
    assert set(q.unique().tolist()) == {-2.0, 0.0, 2.0}
    for level in (-2.0, 0.0, 2.0):
        assert 0.2 < (q == level).float().mean().item() < 0.47
    logits.sum().backward()
    g = thr.grad
    assert g is not None and (g[0] != 0).any() and (g[1] != 0).any()
