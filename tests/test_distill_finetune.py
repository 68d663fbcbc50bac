"""Fine-tuning options of `kws train`: --init-student (start from an earlier student), --init-teacher
(train an earlier teacher further),
--student-plan center (the central operating point in every batch), --noise-prob / --noise-snr."""

import pytest

torch = pytest.importorskip("torch")

from kws.cli import main  # noqa: E402
from conftest import toy_train_args  # noqa: E402
from kws.distill.train import Trainer, TrainOptions, _Dist  # noqa: E402

LR = 1e-3                      # Adam's default, what toy_train_args trains with


def _args(data, out, *extra):
    return toy_train_args(data, out, *extra, epochs=1)


@pytest.fixture(scope="module")
def first_run(toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("first") / "m.kws"
    assert main(_args(toy_data, out)) == 0
    return out.with_name("m.work")


def test_center_plan_trains_the_central_point_in_every_batch(toy_data, tmp_path):
    opts = TrainOptions(data=str(toy_data), task="custom", words="yes,no", out=str(tmp_path / "m.kws"),
                        epochs=1, batch_size=8, backbone=64, hidden=64, n_blocks=8,
                        student_plan="center", progress=False)
    tr = Trainer(opts, _Dist())
    from kws.distill.modules import FSMN
    net = FSMN(tr.arch, binary=True)
    center = tr.arch.operating_point(0.5, 4)
    seen = set()
    for step in range(40):
        plan = [op for op, _ in tr.plan("student", net, 0, step)]
        assert len(plan) == len(set(plan)) == 4
        assert plan[0] == tr.arch.operating_point(1.0, 8) and plan[-1] == tr.arch.operating_point(0.25, 2)
        assert plan[2] == center
        seen.add(plan[1])
        assert plan == [op for op, _ in tr.plan("student", net, 0, step)]      # seeded
    assert center not in seen and len(seen) == 6          # the other 6 middle points, at random


def test_init_student_starts_from_the_earlier_students_weights(toy_data, first_run, tmp_path):
    prev = torch.load(first_run / "student.pt", weights_only=True)["model"]
    out = tmp_path / "ft.kws"
    rc = main(_args(toy_data, out, "--teacher", str(first_run / "student.pt"), "--init-student",
                    str(first_run / "student.pt"), "--noise-prob", "1", "--noise-snr", "0,20",
                    "--student-plan", "center", "--stop-after", "1"))
    assert rc == 3
    ck = torch.load(out.with_name("ft.work") / "student.pt", weights_only=True)
    assert ck["step"] == 1
    moved = 0
    for k, v in ck["model"].items():
        if k.split(".")[0] in ("mem", "up", "down", "stem_weight", "cls_weight"):
            d = (v.float() - prev[k].float()).abs().max().item()
            assert d <= 1.5 * LR, (k, d)       # one Adam step from the earlier student, not a restart
            moved += d > 0
    assert moved > 0
    # and the fine-tuned run finishes and exports a model
    assert main(_args(toy_data, out, "--teacher", str(first_run / "student.pt"), "--init-student",
                      str(first_run / "student.pt"), "--noise-prob", "1", "--noise-snr", "0,20",
                      "--student-plan", "center", "--resume")) == 0
    assert out.exists()


def test_init_teacher_trains_the_earlier_teacher_further(toy_data, first_run, tmp_path):
    prev = torch.load(first_run / "teacher.pt", weights_only=True)["model"]
    out = tmp_path / "t.kws"
    # from the teacher a student.pt embeds (the same weights as teacher.pt)
    assert main(_args(toy_data, out, "--init-teacher", str(first_run / "student.pt"),
                      "--stop-after", "1")) == 3
    ck = torch.load(out.with_name("t.work") / "teacher.pt", weights_only=True)
    assert ck["step"] == 1
    moved = 0
    for k, v in ck["model"].items():
        d = (v.float() - prev[k].float()).abs().max().item()
        if k.endswith(("feat_mean", "feat_std")):
            assert d == 0, k                    # the earlier teacher's normalisation is kept
        elif "weight" in k and "bn" not in k:
            assert d <= 1.5 * LR, (k, d)        # one Adam step from the earlier teacher, not a restart
            moved += d > 0
    assert moved > 0
    # the run goes on to fine-tune an earlier student from the further-trained teacher
    assert main(_args(toy_data, out, "--init-teacher", str(first_run / "student.pt"), "--init-student",
                      str(first_run / "student.pt"), "--resume")) == 0
    from kws.fsmn.model import load_model
    prov = load_model(out).provenance
    assert prov["init_teacher"] == prov["init_student"] == str(first_run / "student.pt")


def test_epochs_0_trains_the_teacher_only_for_a_student_to_be_distilled_from(toy_data, first_run, tmp_path,
                                                                             capsys):
    """train-default.sh's TEACHER_MORE_EPOCHS: an earlier teacher trained further on its own, then a
    student distilled from that teacher in a run of its own."""
    prev = torch.load(first_run / "teacher.pt", weights_only=True)["model"]
    out = tmp_path / "t.kws"
    assert main(_args(toy_data, out, "--epochs", "0", "--teacher-epochs", "1",
                      "--init-teacher", str(first_run / "teacher.pt"))) == 0
    teacher = out.with_name("t.work") / "teacher.pt"
    assert f"teacher: {teacher}" in capsys.readouterr().out
    assert not out.exists() and not (out.with_name("t.work") / "student.pt").exists()
    ck = torch.load(teacher, weights_only=True)
    assert ck["phase"] == "teacher" and ck["epoch"] == 1
    assert any((v.float() - prev[k].float()).abs().max().item() > 0 for k, v in ck["model"].items())
    student = tmp_path / "s.kws"
    assert main(_args(toy_data, student, "--teacher", str(teacher))) == 0 and student.exists()


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "0", "--teacher", "X"], "--epochs 0 trains the teacher only"),
    (["--epochs", "-1"], "--epochs must be at least 0"),
    (["--init-student", "X"], "--init-student needs --teacher"),
    (["--init-teacher", "X", "--teacher", "Y"], "give one of them"),
    (["--noise-snr", "5"], "--noise-snr must be LO,HI"),
    (["--noise-snr", "20,0"], "LO must not exceed HI"),
    (["--noise-prob", "1.5"], "--noise-prob must be in [0, 1]"),
])
def test_bad_fine_tuning_options(toy_data, tmp_path, capsys, extra, message):
    assert main(_args(toy_data, tmp_path / "m.kws", *extra)) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_init_student_refuses_a_teacher_checkpoint(toy_data, first_run, tmp_path, capsys):
    t = str(first_run / "teacher.pt")
    assert main(_args(toy_data, tmp_path / "m.kws", "--teacher", t, "--init-student", t)) == 1
    assert "is not a student checkpoint of this architecture" in capsys.readouterr().err


def test_init_teacher_refuses_another_architecture(toy_data, first_run, tmp_path, capsys):
    assert main(_args(toy_data, tmp_path / "m.kws", "--init-teacher", str(first_run / "teacher.pt"),
                      "--hidden", "32")) == 1
    assert "--init-teacher" in (err := capsys.readouterr().err) and "its hidden is" in err


def test_noise_snr_reaches_the_augmentation(toy_data, tmp_path):
    opts = TrainOptions(data=str(toy_data), task="custom", words="yes,no", out=str(tmp_path / "m.kws"),
                        epochs=1, batch_size=8, noise_prob=1.0, noise_snr=(0.0, 0.0), progress=False)
    aug = Trainer(opts, _Dist()).train_clips.augment
    assert aug.p_noise == 1.0 and aug.snr_db == (0.0, 0.0)     # the SNR rule itself: test_augment.py


def test_per_epoch_validation_uses_calibrated_bn_statistics(first_run):
    # the toy_data split is smaller than both calibration sizes, so the per-epoch probe (10 batches) and
    # the final calibration (40) see the same batches: the last epoch's figures must be the final ones
    import json
    hist = json.loads((first_run / "history.json").read_text())
    assert hist["student"][-1]["val_acc"] == hist["student_calibrated"]["val_acc"]


def test_bn_calibration_batches_go_through_the_training_augmentation(toy_data, tmp_path):
    opts = TrainOptions(data=str(toy_data), task="custom", words="yes,no", out=str(tmp_path / "m.kws"),
                        epochs=1, batch_size=8, noise_prob=1.0, noise_snr=(0.0, 0.0), progress=False)
    tr = Trainer(opts, _Dist())
    clean = tr.training_batches(2)
    aug = tr.training_batches(2, augmented=True)
    assert len(clean) == len(aug) == 2
    for c, a in zip(clean, aug):
        assert not torch.equal(c, a)                       # noisy (0 dB) features, not the clean ones
    again = tr.training_batches(2, augmented=True)
    assert all(torch.equal(a, b) for a, b in zip(aug, again))      # one fixed draw
    tr.train_clips.set_epoch(3)
    tr.training_batches(1, augmented=True)
    assert tr.train_clips.epoch == 3                        # the training data's draw is untouched


def test_a_checkpoint_calibrated_on_clean_clips_is_recalibrated(toy_data, first_run, tmp_path, capsys):
    import shutil
    from kws.distill.train import load_checkpoint, save_checkpoint
    work = tmp_path / "m.work"
    shutil.copytree(first_run, work)
    ck = load_checkpoint(work / "student.pt")
    assert ck["bn_calibrated"]["data"] == "augmented training clips"
    ck["bn_calibrated"] = {"val_acc": {}, "batches": 40, "seconds": 1.0}     # an older record
    save_checkpoint(work / "student.pt", ck)
    assert main(_args(toy_data, tmp_path / "m.kws", "--resume")) == 0
    assert "student after BN calibration" in capsys.readouterr().err
    assert load_checkpoint(work / "student.pt")["bn_calibrated"]["data"] == "augmented training clips"
    assert (tmp_path / "m.kws").exists()


def test_denormal_weights_are_exported_as_zero(first_run, monkeypatch):
    """Training runs with denormals flushed (fast: they take a slow path in every operation), so it
    reads a weight of -1e-40 as 0, sign +1; the export must see +0 too, not the -1 numpy would
    give. And the flag is off again after `run`."""
    import kws.distill.train as T
    from kws.distill.train import flush_denormals_, load_checkpoint, net_from_checkpoint
    net, _ = net_from_checkpoint(load_checkpoint(first_run / "student.pt"))
    w = next(p for p in net.parameters() if p.dim() == 2)
    with torch.no_grad():
        w[0, :3] = torch.tensor([-1e-40, 1e-41, -0.5])
    assert flush_denormals_(net) >= 2
    assert w[0, 0].item() == 0.0 and not torch.signbit(w[0, 0]) and w[0, 1].item() == 0.0
    assert w[0, 2].item() == -0.5
    seen = []

    class Probe:                      # stands in for the Trainer: what does a run see?
        def __init__(self, opts, env):
            pass

        def run(self):
            seen.append((torch.tensor(1e-40) * 1).item())
            return {}
    monkeypatch.setattr(T, "Trainer", Probe)
    T.run(TrainOptions(data="unused", out="unused.kws", progress=False))
    assert seen == [0.0]                                     # flushed during the run
    assert (torch.tensor(1e-40) * 1).item() != 0.0          # and not after it
