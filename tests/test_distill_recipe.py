"""Training options for thin operating points and robustness: in-place distillation (--inplace-kd),
the central point's loss weight (--center-weight), SpecAugment masks (--spec-masks)."""

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from conftest import toy_train_args  # noqa: E402
from kws.cli import main  # noqa: E402
from kws.distill.hed import logit_kd  # noqa: E402
from kws.distill.modules import FSMN  # noqa: E402
from kws.distill.specaug import Masked, spec_keep, spec_masks  # noqa: E402
from kws.distill.train import Trainer, TrainOptions, _Dist, _Objective  # noqa: E402
from kws.errors import KwsError  # noqa: E402


def _opts(data, tmp_path, **kw):
    return TrainOptions(data=str(data), task="custom", words="yes,no", out=str(tmp_path / "m.kws"),
                        epochs=1, batch_size=8, backbone=64, hidden=64, n_blocks=8, progress=False,
                        **kw)


def test_spec_masks_fill_bands_within_limits():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 98, 40)
    fill = torch.full((40,), 7.0)
    y = spec_masks(x, fill, masks=2, generator=g)
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.equal(x, spec_masks(x, fill, 0))
    m = y != x                                   # masked cells hold the fill, the others are intact
    assert torch.all(y[m] == 7.0) and torch.equal(y[~m], x[~m])
    t_hit, f_hit = m.all(2), m.all(1)             # whole frames (time masks), whole features
    assert t_hit.sum(1).max() <= 2 * 9 and f_hit.sum(1).max() <= 2 * 6
    assert (t_hit.sum(1) > 0).float().mean() > 0.7 and (f_hit.sum(1) > 0).float().mean() > 0.7
    # every masked cell is in a masked frame or a masked feature (bands, not scattered cells)
    assert torch.equal(m, t_hit[:, :, None] | f_hit[:, None, :])
    same = spec_masks(x, fill, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(y, same)
    with pytest.raises(KwsError, match="expected features"):
        spec_masks(x[0], fill, 2)


def test_pcen_networks_take_the_masks_after_their_normalisation(toy_data, tmp_path):
    """A PCEN network gets Masked(x, keep): the masked cells are 0 (the mean) after PCEN and the
    normalisation, the others as without masks; the draws are spec_masks' own."""
    import dataclasses
    x = torch.randn(4, 97, 40) * 15 - 50
    keep = spec_keep(x.shape, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(spec_masks(x, torch.zeros(40), 2, generator=torch.Generator().manual_seed(3)) == x,
                       keep | (x == 0))
    tr = Trainer(_opts(toy_data, tmp_path), _Dist())
    net = FSMN(dataclasses.replace(tr.arch, input_norm="pcen"), binary=False)
    net.set_normalisation(torch.full((40,), 0.3), torch.full((40,), 0.5))
    plain, masked = net.stem_input(x), net.stem_input(Masked(x, keep))
    k = net.arch.stem_kernel
    cells = keep.unfold(1, k, net.arch.stem_stride).transpose(2, 3).reshape(plain.shape)
    assert torch.equal(masked[cells], plain[cells]) and torch.all(masked[~cells] == 0) and (~cells).any()
    logits, _ = net(Masked(x, keep))                    # the whole forward takes it
    assert logits.shape == (4, tr.arch.n_classes) and torch.isfinite(logits).all()


def test_inplace_kd_adds_the_widest_points_soft_labels_to_the_others(toy_data, tmp_path):
    tr = Trainer(_opts(toy_data, tmp_path, hed_weight=0.0), _Dist())
    torch.manual_seed(0)
    net = FSMN(tr.arch, binary=True)
    x = torch.randn(6, tr.arch.n_frames, tr.arch.n_features)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    plan = tr.plan("student", net, 0, 3)
    base, _ = _Objective(net, "student", tr.o, None)(x, y, plan)
    tr.o.inplace_kd = 0.5
    with_kd, _ = _Objective(net, "student", tr.o, None)(x, y, plan)
    logits = [net(x, op)[0] for op, _ in plan]
    expect = float(sum(w * 0.5 * logit_kd(lg, logits[0], tr.o.kd_temperature)
                       for (op, w), lg in zip(plan[1:], logits[1:])).detach())
    assert float((with_kd - base).detach()) == pytest.approx(expect, rel=2e-3)   # float32 sums
    assert expect > 0
    ce = sum(w * F.cross_entropy(lg, y) for (op, w), lg in zip(plan, logits))
    assert float(base.detach()) == pytest.approx(float(ce.detach()), rel=1e-5)


def test_center_weight_reaches_the_plan(toy_data, tmp_path):
    tr = Trainer(_opts(toy_data, tmp_path, student_plan="center", center_weight=2.5), _Dist())
    net = FSMN(tr.arch, binary=True)
    center = tr.arch.operating_point(0.5, 4)
    for step in range(5):
        plan = tr.plan("student", net, 0, step)
        assert [w for op, w in plan if op == center] == [2.5]
        assert all(w == 1.0 for op, w in plan if op != center)


@pytest.mark.parametrize("extra, message", [
    (["--inplace-kd", "-1"], "--inplace-kd and --spec-masks must be >= 0"),
    (["--spec-masks", "-2"], "--inplace-kd and --spec-masks must be >= 0"),
    (["--center-weight", "0"], "--center-weight > 0"),
    (["--center-weight", "2"], "--center-weight needs --student-plan center"),
    (["--boost-words", "cat", "--boost-factor", "0"], "--boost-factor must be a whole number in [1, 100]"),
    (["--boost-words", "yes"], "unknown_boost: yes not an _unknown_ word folder"),
])
def test_bad_recipe_options(toy_data, tmp_path, capsys, extra, message):
    assert main(toy_train_args(toy_data, tmp_path / "m.kws", *extra, epochs=1)) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_run_with_every_option_trains_and_records_them(toy_data, tmp_path):
    from kws.fsmn.model import load_model
    out = tmp_path / "m.kws"
    assert main(toy_train_args(toy_data, out, "--inplace-kd", "1", "--spec-masks", "2",
                               "--student-plan", "center", "--center-weight", "2",
                               "--boost-words", "cat", "--boost-factor", "3", epochs=1)) == 0
    prov = load_model(out).provenance
    assert (prov["inplace_kd"], prov["spec_masks"], prov["center_weight"]) == (1.0, 2, 2.0)
    assert (prov["boost_words"], prov["boost_factor"]) == (["cat"], 3)


def test_boost_words_reach_the_training_clips_only(toy_data, tmp_path):
    tr = Trainer(_opts(toy_data, tmp_path, boost_words=("cat",), boost_factor=3), _Dist())
    plain = Trainer(_opts(toy_data, tmp_path), _Dist())
    cats = lambda clips: sum(1 for p, _ in clips._unknown_pool if p.startswith("cat/"))  # noqa: E731
    assert cats(tr.train_clips) == 3 * cats(plain.train_clips) > 0
    assert cats(tr.plain_train) == cats(tr.train_clips)
    assert cats(tr.val_clips) == cats(plain.val_clips)           # validation keeps its balance


def _with_manifest(toy_data, tmp_path):
    """A copy of toy_data with a manifest.csv naming every clip's engine: cat clips and the `no`
    clips of even speakers are Kokoro (neural), the rest espeak-ng (formant)."""
    import csv
    import shutil
    import zlib
    root = tmp_path / "data"
    shutil.copytree(toy_data, root)
    rows = []
    for p in sorted(root.glob("*/*.wav")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith("_"):
            continue
        neural = rel.startswith("cat/") or (rel.startswith("no/") and zlib.crc32(rel.encode()) % 2 == 0)
        rows.append({"path": rel, "word": rel.split("/")[0], "engine": "kokoro" if neural else "espeak-ng"})
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "word", "engine"])
        w.writeheader()
        w.writerows(rows)
    return root, {r["path"] for r in rows if r["engine"] == "kokoro"}


def test_exclude_families_leaves_a_family_out_of_training_and_validation(toy_data, tmp_path):
    from kws.data.speech_commands import SpeechCommands
    root, neural = _with_manifest(toy_data, tmp_path)
    for split in ("training", "validation"):
        full = {rel for rel, _ in SpeechCommands(root, split, "custom", "yes,no").items if rel}
        kept = {rel for rel, _ in SpeechCommands(root, split, "custom", "yes,no",
                                                  exclude_families=("neural",)).items if rel}
        assert kept == full - neural and (full & neural)
    tr = Trainer(_opts(root, tmp_path, exclude_families=("neural",)), _Dist())
    for clips in (tr.train_clips, tr.plain_train, tr.val_clips):
        assert not {rel for rel, _ in clips.items if rel} & neural
    with pytest.raises(KwsError, match="unknown voice family"):
        SpeechCommands(root, "training", "custom", "yes,no", exclude_families=("robots",))
    with pytest.raises(KwsError, match="no manifest.csv"):
        SpeechCommands(toy_data, "training", "custom", "yes,no", exclude_families=("neural",))
