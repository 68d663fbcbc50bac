"""Export parity: a tiny student trained a few steps, exported, run on the kernel runtime, must give
the torch eval-mode scores for EVERY operating point on real clips (audio through kws.frontend).

Tolerance: logits within 1e-4 absolute (observed ~1e-7; the only float differences are the
summation order of the stem matmul, the time mean and the classifier), argmax identical; the sign
of the residual stream after every block identical bit for bit (packed), the packed weights and the
integer thresholds identical to the torch model's signs. A clip that does not match that closely
is excused only if torch took a sign of a value within 1e-4 of zero somewhere in it (the runtime's
stem matmul rounds differently and may take the other sign there); such clips must stay rare
(<= 10 %; observed: none) and still need the same argmax.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kws import _kernels as K  # noqa: E402
from kws.distill.modules import sign  # noqa: E402
from kws.distill.train import TrainOptions, load_checkpoint, net_from_checkpoint, run  # noqa: E402
from kws.frontend import features  # noqa: E402
from kws.fsmn.model import load_model, op_prefix  # noqa: E402
from kws.fsmn.runtime import BinaryFSMN  # noqa: E402

WORDS = ["yes", "no"]
ARCH = dict(backbone=64, hidden=64, n_blocks=4)


def _dataset(root):
    """A tiny synthesized set when the TTS engine is there (kws data synth), else toy tone words."""
    if shutil.which("espeak-ng") and shutil.which("sox"):
        from kws.cli import main
        rc = main(["data", "synth", "--out", str(root), "--words", ",".join(WORDS),
                   "--unknown-words", "cat,dog", "--per-word", "12", "--unknown-per-word", "6",
                   "--engines", "espeak-ng", "--noise-seconds", "5", "--seed", "0", "--no-progress"])
        if rc == 0:
            return root, "synth"
        shutil.rmtree(root, ignore_errors=True)
    from kws.distill.toydata import make_toy_dataset
    return make_toy_dataset(root, WORDS + ["cat", "dog"], per_word=12), "toy"


@pytest.fixture(scope="module", params=[("float", 1, "global"), ("binary", 1, "global"),
                                        ("float", 2, "global"), ("float", 1, "pcen")],
                ids=["float", "binary", "float-2planes", "pcen"])
def trained(tmp_path_factory, request):
    """memory_input float (the default) and binary: both runtime paths against torch; two
    sign planes of h into the up projection (h in three levels); and PCEN of each window before
    the normalisation (torch's against the C runtime's), its smoothing and delta learnt by the
    teacher (--pcen-learn: the student and the model file take the teacher's)."""
    memory_input, up_planes, input_norm = request.param
    base = tmp_path_factory.mktemp("distill")
    data, kind = _dataset(base / "data")
    out = base / "model.kws"
    summary = run(TrainOptions(data=str(data), task="custom", words=WORDS, out=str(out), epochs=1,
                               teacher_epochs=1, batch_size=8, seed=1, progress=False, threads=1,
                               workdir=str(base / "work"), memory_input=memory_input, up_planes=up_planes,
                               input_norm=input_norm, pcen_learn=input_norm == "pcen", **ARCH))
    return dict(data=data, kind=kind, out=out, work=base / "work", summary=summary)


def _clips(data):
    from kws.data.speech_commands import SpeechCommands
    out = []
    for split in ("testing", "validation", "training"):
        sc = SpeechCommands(data, split, "custom", WORDS)
        out += [features(sc[i][0]) for i in range(len(sc))]
    return np.stack(out)


def _same_signs(a, b, away_from_zero: float) -> bool:
    """K.pack's signs of the [T, B] maps a and b agree wherever b is not within `away_from_zero` of 0."""
    far = np.abs(b) > away_from_zero
    signs = lambda h: K.unpack(K.pack(h), h.shape[-1])          # noqa: E731
    return np.array_equal(signs(a)[far], signs(b)[far])


def test_runtime_matches_torch_eval_on_every_operating_point(trained):
    model = load_model(trained["out"])
    assert ("frontend.pcen" in model.tensors) == (model.arch.input_norm == "pcen")
    if model.arch.input_norm == "pcen":          # learnt by the teacher, taken by student and file
        from kws.fsmn.pcen import default_params
        teacher, _ = net_from_checkpoint(load_checkpoint(trained["work"] / "teacher.pt"))
        learnt = teacher.pcen_params().detach().numpy()
        np.testing.assert_array_equal(model.tensors["frontend.pcen"], learnt)
        moved = np.abs(learnt - default_params(model.arch.n_features)) > 1e-6
        assert moved[0].any() and moved[2].any() and not moved[[1, 3, 4]].any()
    net, _ = net_from_checkpoint(load_checkpoint(trained["work"] / "student.pt"))
    net.eval()
    rt = BinaryFSMN(model)
    x = _clips(trained["data"])
    assert len(x) >= 8
    ops = model.arch.operating_points
    assert len(ops) == 9
    mismatched = 0
    for op in ops:
        probe = {}
        lt, maps = net.forward_folded(torch.from_numpy(x), op, probe)
        lt = lt.numpy()
        for i in range(len(x)):
            trace = []
            lr = rt.logits(x[i], op, trace=trace)
            assert np.argmax(lr) == np.argmax(lt[i]), (op.name, i)
            assert len(trace) == len(op.blocks)
            # h equal within rounding, and its signs (what K.pack gives the next block) equal
            # wherever h is not within that rounding of zero
            exact = np.allclose(lr, lt[i], rtol=0, atol=1e-4) and all(
                np.allclose(h_rt, h_t[i].numpy(), rtol=1e-5, atol=1e-5)
                and _same_signs(h_rt, h_t[i].numpy(), away_from_zero=1e-5)
                for h_rt, h_t in zip(trace, maps))
            if not exact:
                # only excusable where torch took a sign of a value within rounding of zero
                assert probe["margin"][i] < 1e-4, (op.name, i, np.abs(lr - lt[i]).max())
                mismatched += 1
    assert mismatched <= 0.1 * len(x) * len(ops)


def test_packed_weights_and_thresholds_are_exact(trained):
    model = load_model(trained["out"])
    net, _ = net_from_checkpoint(load_checkpoint(trained["work"] / "student.pt"))
    net.eval()
    a = model.arch
    t = model.tensors
    for b in range(a.n_blocks):
        for name, w, k in (("mem", net.mem[b], a.backbone), ("up", net.up[b], a.backbone),
                           ("down", net.down[b], a.hidden)):
            want = sign(w.detach()).numpy().astype(np.int8)
            np.testing.assert_array_equal(K.unpack(t[f"block{b}.{name}"], k), want)
    for op in a.operating_points:
        p = op_prefix(op)
        bw, _ = a.channels(op.width)
        folded = net.folded(op)
        k = bw * a.up_planes                  # the dot product's range
        z = torch.arange(-k, k + 1, dtype=torch.float32)[:, None]
        for blk in op.blocks:
            # the student's own float32 expression, evaluated by torch on every possible dot product
            v = z * folded[f"block{blk}.up_scale"]
            v = v + folded[f"block{blk}.up_shift"]
            want = (v >= 0).numpy()
            th, fl = t[f"{p}block{blk}.up_thresh"], t[f"{p}block{blk}.up_flip"].astype(bool)
            got = (z.numpy().astype(np.int64) >= th[None, :]) ^ fl[None, :]
            np.testing.assert_array_equal(got, want)
        for k, v in folded.items():
            if ".up_" not in k:
                np.testing.assert_array_equal(t[p + k], v.numpy(), err_msg=k)
    np.testing.assert_array_equal(t["frontend.mean"], net.feat_mean.numpy())
    np.testing.assert_array_equal(t["frontend.std"], net.feat_std.numpy())


def test_eval_json_and_detector_end_to_end(trained):
    from kws.cli import main
    # kws eval --json in a subprocess: the documented command, one JSON object on stdout
    r = subprocess.run([sys.executable, "-m", "kws", "eval", "--model", str(trained["out"]),
                        "--data", str(trained["data"]), "--json", "--teacher",
                        str(trained["work"] / "teacher.pt"), "--stream-clips", "20"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    names = [op.name for op in load_model(trained["out"]).arch.operating_points]
    assert list(res["accuracy"]) == names == ["1x4", "1x2", "1x1", "0.5x4", "0.5x2", "0.5x1",
                                              "0.25x4", "0.25x2", "0.25x1"]
    assert all(0 <= v <= 1 for v in res["accuracy"].values())
    assert 0 <= res["teacher_accuracy"] <= 1
    t = res["teacher_streaming"]            # the float teacher on the same stream
    assert 0 <= t["frr"] <= 1 and t["keyword_clips"] == res["streaming"]["1x4"]["keyword_clips"]
    conf = np.array(res["confusion"]["1x4"])
    assert conf.shape == (4, 4) and conf.sum() == res["n"]
    c = res["classes"]["1x4"]               # the accuracy's parts, from the same confusion matrix
    assert c["keyword_recall"] == pytest.approx(np.trace(conf[:2, :2]) / conf[:2].sum())
    assert c["unknown_called_keyword"] == pytest.approx(conf[2, :2].sum() / conf[2].sum())
    assert c["unknown_share"] == pytest.approx(conf[2].sum() / res["n"])
    if trained["kind"] == "synth":          # manifest.csv: accuracy per voice source
        by = res["accuracy_by_source"]
        assert set(by["engine"]) <= {"espeak-ng", "_silence_"} and "formant" in by["family"]
        for kind in ("engine", "family"):
            assert sum(g["n"] for g in by[kind].values()) == res["n"]
            for op, a in res["accuracy"].items():   # the sources' accuracies average to the total
                assert sum(g["n"] * g["accuracy"][op] for g in by[kind].values()) / res["n"] == pytest.approx(a)
    unk = res["unknown_words"]              # every _unknown_ clip once, under its word
    assert sum(g["n"] for g in unk.values()) == conf[res["labels"].index("_unknown_")].sum()
    s = res["streaming"]["1x4"]
    assert 0 <= s["frr"] <= 1 and s["keyword_clips"] > 0 and s["stream_hours"] > 0
    if s["fa_per_hour"] == s["fa_per_hour"]:        # a threshold met the target (not NaN)
        # the replayed trigger rule agrees with the Detector run at the chosen threshold
        assert s["detector_check"]["frr"] == pytest.approx(s["frr"])
        assert s["detector_check"]["fa_per_hour"] == pytest.approx(s["fa_per_hour"])
    # the keyword stream over another background (music from kws data stream) at 10 dB SNR
    from kws.data.speech_commands import SpeechCommands
    from kws.data.streams import music_stream, write_stream
    from kws.distill.evaluate import evaluate, keyword_dbfs
    music = trained["work"].parent / "music.flac"
    write_stream(music, *music_stream(0.3, seed=1))
    r2 = evaluate(str(trained["out"]), trained["data"], stream_clips=20, stream_noise=music, stream_snr=10.0)
    clips = SpeechCommands(trained["data"], "testing", "custom", WORDS)
    b = r2["stream_background"]
    assert b["source"] == str(music) and b["snr_db"] == 10.0
    assert b["noise_dbfs"] == pytest.approx(keyword_dbfs(clips, r2["labels"]) - 10.0)
    d = r2["streaming"]["1x4"]["default_thresholds"]
    assert 0 <= d["frr"] <= 1 and d["hits"] + round(d["frr"] * r2["streaming"]["1x4"]["keyword_clips"]) \
        == r2["streaming"]["1x4"]["keyword_clips"]
    # the exported model streams through the Detector at every width/blocks setting
    from kws.detector import Detector
    det = Detector(str(trained["out"]), threshold=0.3)
    audio = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.05
    for w, nb in ((1.0, 4), (0.5, 2), (0.25, 1)):
        det.width, det.blocks = w, nb
        out = det.feed(audio)
        assert all(d.label in WORDS for d in out)
    assert det.inferences > 0
    # kws export from the checkpoint reproduces the trained model file exactly
    again = trained["out"].with_name("again.kws")
    assert main(["export", "--checkpoint", str(trained["work"] / "student.pt"), "--out", str(again)]) == 0
    m1, m2 = load_model(trained["out"]), load_model(again)
    assert m1.tensors.keys() == m2.tensors.keys()
    for k in m1.tensors:
        np.testing.assert_array_equal(m1.tensors[k], m2.tensors[k], err_msg=k)


def test_eval_robustness_conditions_and_plot(trained, tmp_path):
    png = tmp_path / "acc.png"
    r = subprocess.run([sys.executable, "-m", "kws", "eval", "--model", str(trained["out"]),
                        "--data", str(trained["data"]), "--json", "--no-stream", "--snr", "0",
                        "--resample", "8000", "--gain", "-20", "--plot", str(png)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["perturbation"] == {"snr_db": 0.0, "resample_hz": 8000, "gain_db": -20.0}
    assert len(res["accuracy"]) == 9 and "streaming" not in res
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, "-m", "kws", "eval", "--model", str(trained["out"]),
                          "--data", str(trained["data"]), "--resample", "44100"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "resample" in bad.stderr and "Traceback" not in bad.stderr


def test_window_trace_equals_the_detectors_trace(trained):
    """The teacher's streaming FRR scores the windows the Detector classifies: with the binary
    runtime as the classifier, window_trace (whole-stream frontend, a window per hop, smoothing)
    must reproduce the Detector's recorded posteriors and times -- the teacher and the student
    are compared on the same hops."""
    from kws.data.speech_commands import SpeechCommands
    from kws.detector import Detector
    from kws.distill.evaluate import detector_trace, make_stream, window_trace
    from kws.fsmn.runtime import softmax
    model = load_model(trained["out"])
    clips = SpeechCommands(trained["data"], "testing", "custom", WORDS)
    stream, _, _ = make_stream(clips, list(model.labels), clips.noise, max_clips=6)
    net = BinaryFSMN(model)
    for width, blocks, smoothing in ((1.0, 4, 2), (0.5, 2, 3)):
        det = Detector(model, width=width, blocks=blocks, threshold=1.0, smoothing=smoothing)
        want_s, want_t = detector_trace(det, stream)
        op = det.operating_point
        got_s, got_t = window_trace(model, stream, lambda x: softmax(np.stack([net.logits(f, op)
                                                                               for f in x])),
                                    smoothing=smoothing)
        assert got_s.shape == want_s.shape and len(want_t) > 10
        np.testing.assert_array_equal(got_t, want_t)
        np.testing.assert_allclose(got_s, want_s, rtol=0, atol=1e-6)


def test_eval_refuses_a_bad_teacher_before_the_work(trained, tmp_path):
    """--teacher is checked up front (one line, non-zero exit, no traceback): not a checkpoint,
    missing, or a teacher of other labels than the model."""
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    cases = [(str(trained["out"]), str(junk), "not a readable kws training checkpoint"),
             (str(trained["out"]), str(tmp_path / "missing.pt"), "checkpoint not found"),
             ("default", str(trained["work"] / "teacher.pt"), "other labels than the model")]
    for model, teacher, message in cases:
        r = subprocess.run([sys.executable, "-m", "kws", "eval", "--model", model, "--data",
                            str(trained["data"]), "--teacher", teacher],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and message in r.stderr, (teacher, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == "", r.stderr


def test_student_ablation_runs_its_variants_on_a_trained_teacher(trained, capsys):
    """benchmarks/student_ablation.py on this run's teacher: one row per variant, the teacher's sizes,
    the plane count it was asked for, accuracies in [0, 1]; a malformed variant is a one-line error."""
    from kws.bench import ROOT
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import student_ablation as sa
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    sa.main(["--teacher", str(trained["work"] / "teacher.pt"), "--data", str(trained["data"]), "--steps", "3",
             "--train-clips", "60", "--val-clips", "16", "--variants", "float/mean/1,float/mean/2", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [(r["memory_input"], r["up_planes"]) for r in rows] == [("float", 1), ("float", 2)]
    for r in rows:
        assert 0 <= r["val_acc"] <= 1 and 0 <= r["train_acc_last50"] <= 1 and r["steps"] == 3
        assert 0 <= r.get("unknown_as_other", 0) <= 1
    with pytest.raises(SystemExit, match="MEMORY/THRESHOLDS/PLANES"):
        sa.parse_variants("float/mean")
