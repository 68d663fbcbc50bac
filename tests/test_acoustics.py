"""`kws train --acoustics realistic` (kws.data.acoustics): rooms keep the onset and the level,
backgrounds reach the drawn SNR, channel effects band-limit and keep length, the same rng gives
the same bytes, the sonic-pi samples split into disjoint training / evaluation parts (the test
streams use only the latter), bad options are one-line errors, and a tiny training run works.
Needs sonic-pi-samples (scripts/install-tts.sh) and pyroomacoustics (the [train] extra)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pyroomacoustics")

from kws.data import acoustics as A  # noqa: E402
from kws.data.acoustics import Acoustics, WindowBank, channel, reverberate  # noqa: E402
from kws.data.augment import Augment  # noqa: E402
from kws.data.streams import MUSIC_DIR, sample_split  # noqa: E402
from kws.errors import KwsError  # noqa: E402

SR = 16000
needs_samples = pytest.mark.skipif(not MUSIC_DIR.is_dir(), reason="needs sonic-pi-samples")


def burst(start=0.4, length=0.3, level=0.1, seed=0) -> np.ndarray:
    """Silence with a noisy 400 Hz burst from `start` s (a stand-in for a keyword)."""
    r = np.random.default_rng(seed)
    x = np.zeros(SR, np.float32)
    t = np.arange(int(length * SR)) / SR
    s = int(start * SR)
    x[s:s + t.size] = level * (np.sin(2 * np.pi * 400 * t) + 0.3 * r.standard_normal(t.size))
    return x


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The toy data set with a `_speech_` folder of 20 clips (training split: no list names them)."""
    from kws.distill.toydata import make_toy_dataset, toy_clip
    root = make_toy_dataset(tmp_path_factory.mktemp("acoustics") / "data", ["yes", "no", "cat", "dog"],
                            per_word=12, seed=2)
    (root / "_speech_").mkdir()
    rng = np.random.default_rng(5)
    for i in range(20):
        sf.write(root / "_speech_" / f"talker{i}_nohash_0.wav", toy_clip(["cat", "dog"][i % 2], rng), SR,
                 subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def acoustics(data):
    if not MUSIC_DIR.is_dir():
        pytest.skip("needs sonic-pi-samples")
    return Acoustics.for_data(data, seed=0, n_rirs=12)


def only(ac, kinds=None, **p):
    """A copy of `ac` with the given probabilities (others 0) and background kinds."""
    probs = dict(p_reverb=0.0, p_background=0.0, p_channel=0.0)
    probs.update(p)
    banks = {k: b for k, b in ac.banks.items() if kinds is None or k in kinds}
    talkers = ac.talkers if kinds is None or "babble" in kinds else None
    return Acoustics(ac.rirs, banks, talkers, **probs)


# ---------------------------------------------------------------------------- determinism, shapes
def test_same_rng_same_bytes_and_the_banks_come_from_the_seed(acoustics, data):
    aug = Augment(None, acoustics=acoustics)
    every = Augment(None, acoustics=only(acoustics, p_reverb=1.0, p_background=1.0, p_channel=1.0))
    x = burst()
    for a in (aug, every):
        for s in range(8):
            y1, y2 = a(x, np.random.default_rng([3, 0, s, 1])), a(x, np.random.default_rng([3, 0, s, 1]))
            assert y1.tobytes() == y2.tobytes()
        assert len({a(x, np.random.default_rng(s)).tobytes() for s in range(6)}) == 6
    y1 = aug(x, np.random.default_rng([3, 0, 7, 1]))
    again = Acoustics.for_data(data, seed=0, n_rirs=12)
    assert again.kinds == acoustics.kinds == ["noise", "ambient", "music", "babble"]
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(again.rirs, acoustics.rirs))
    for k in ("noise", "ambient", "music"):
        assert np.array_equal(again.banks[k].audio, acoustics.banks[k].audio)
    assert np.array_equal(again.talkers, acoustics.talkers)
    y3 = Augment(None, acoustics=again)(x, np.random.default_rng([3, 0, 7, 1]))
    assert y3.tobytes() == y1.tobytes()
    other = Acoustics.for_data(data, seed=1, n_rirs=12)
    assert not np.array_equal(other.banks["music"].audio, acoustics.banks["music"].audio)


def test_shapes_and_dtypes(acoustics):
    ac = only(acoustics, p_reverb=1.0, p_background=1.0, p_channel=1.0)
    x = burst()
    y = ac(x, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    batch = np.stack([burst(seed=s) for s in range(5)]).astype(np.float64)
    yb = Augment(None, acoustics=ac)(batch, np.random.default_rng(0))
    assert yb.shape == (5, SR) and yb.dtype == np.float32 and np.abs(yb).max() <= 1.0
    assert not np.array_equal(yb[0], yb[1])
    with pytest.raises(KwsError, match=r"expected \[N\] or \[B, N\]"):
        ac(np.zeros((2, 2, SR)), np.random.default_rng(0))


def test_the_draws_follow_the_documented_ranges(acoustics):
    ac = Acoustics(acoustics.rirs, acoustics.banks, acoustics.talkers, p_reverb=0.3, p_background=0.6,
                   snr_db=(2.0, 9.0), p_channel=0.5)
    d = ac.draw(np.random.default_rng(0), 4000)

    def spans(v, lo, hi, slack):
        return lo <= v.min() <= lo + slack and hi - slack <= v.max() <= hi

    assert abs(d["reverb"].mean() - 0.3) < 0.03 and abs(d["background"].mean() - 0.6) < 0.03
    assert abs(d["channel"].mean() - 0.5) < 0.03
    assert set(d["room"]) == set(range(len(ac.rirs))) and set(d["kind"]) == set(range(4))
    assert spans(d["snr_db"], 2.0, 9.0, 0.05) and spans(d["quiet_dbfs"], -45.0, -20.0, 0.1)
    assert set(d["n_talkers"]) == set(range(3, 9)) and spans(d["talker_db"], -6.0, 6.0, 0.05)
    assert set(d["talker"].ravel()) == set(range(len(ac.talkers)))
    assert spans(d["high_hz"], 50, 400, 2) and spans(d["low_hz"], 3000, 7600, 10)
    assert set(d["n_peaks"]) == {1, 2} and spans(d["peak_hz"], 200, 6000, 10)
    assert spans(d["peak_db"], -9, 9, 0.05) and spans(d["peak_q"], 0.5, 3, 0.01)
    assert spans(d["gain_db"], -6, 6, 0.05)
    assert abs((d["clip_fraction"] > 0).mean() - 0.5) < 0.03 and spans(d["clip_fraction"], 0, 0.02, 1e-4)


def test_probabilities_are_per_clip(acoustics):
    ac = only(acoustics, p_background=0.5)
    x = np.repeat(burst()[None], 200, axis=0)
    hit = np.any(ac(x, np.random.default_rng(0)) != x, axis=1).mean()
    assert 0.4 < hit < 0.6
    np.testing.assert_array_equal(only(acoustics)(x, np.random.default_rng(0)), x)


# ---------------------------------------------------------------------------- backgrounds
@pytest.mark.parametrize("kind", ["noise", "ambient", "music", "babble"])
def test_background_reaches_the_drawn_snr(acoustics, kind):
    x = burst(level=0.05)
    ps = np.mean(x.astype(np.float64) ** 2)

    def snr(ac, seed):
        n = ac(x, np.random.default_rng(seed)).astype(np.float64) - x
        return 10 * np.log10(ps / np.mean(n ** 2))

    fixed = only(acoustics, [kind], p_background=1.0)
    fixed.snr_db = (7.0, 7.0)
    assert all(abs(snr(fixed, s) - 7.0) < 0.01 for s in range(10))
    drawn = [snr(only(acoustics, [kind], p_background=1.0), s) for s in range(40)]
    assert all(-0.01 <= v <= 20.01 for v in drawn)
    assert min(drawn) < 5 and max(drawn) > 15                   # drawn over the range, not fixed


def test_silent_clips_get_the_background_at_a_low_level(acoustics):
    y = only(acoustics, ["music"], p_background=1.0)(np.zeros(SR, np.float32), np.random.default_rng(0))
    dbfs = 10 * np.log10(np.mean(y.astype(np.float64) ** 2))
    assert -45.01 <= dbfs <= -19.99


def test_babble_sums_the_drawn_talkers_at_their_levels():
    talkers = np.zeros((8, SR), np.float32)
    for k in range(8):                             # talker k: a tone at its own frequency, unit RMS
        talkers[k] = np.sqrt(2) * np.sin(2 * np.pi * (300 + 100 * k) * np.arange(SR) / SR)
    ac = Acoustics(talkers=talkers, p_background=1.0)
    assert ac.kinds == ["babble"]
    d = ac.draw(np.random.default_rng(0), 20)
    for r in range(20):
        k = d["n_talkers"][r]
        w = ac.background("babble", d["where"][r], k, d["talker"][r], d["talker_db"][r], SR)
        amplitude = np.abs(np.fft.rfft(w)) / (SR / 2) / np.sqrt(2)
        for t in range(8):                         # each tone: the summed gains of its picks
            expected = sum(10 ** (d["talker_db"][r][j] / 20) for j in range(k) if d["talker"][r][j] == t)
            assert amplitude[300 + 100 * t] == pytest.approx(expected, abs=1e-6)


def test_babble_falls_back_to_the_babble_noise_file(tmp_path):
    if not MUSIC_DIR.is_dir():
        pytest.skip("needs sonic-pi-samples")
    (tmp_path / "_background_noise_").mkdir()
    b = (0.1 * np.random.default_rng(0).standard_normal(3 * SR)).astype(np.float32)
    sf.write(tmp_path / "_background_noise_" / "babble.wav", b, SR, subtype="FLOAT")
    ac = Acoustics.for_data(tmp_path, seed=0, kinds=["babble"], n_rirs=0)
    assert ac.kinds == ["babble"] and len(ac.talkers) == 0 and "babble.wav" in ac.describe()["backgrounds"]["babble"]
    (tmp_path / "_background_noise_" / "babble.wav").unlink()
    assert Acoustics.for_data(tmp_path, seed=0, kinds=["babble"], n_rirs=0).kinds == []


def test_babble_uses_only_the_training_split_of_speech(tmp_path):
    root = tmp_path
    (root / "_speech_").mkdir()
    for i in range(6):
        sf.write(root / "_speech_" / f"v{i}_nohash_0.wav", np.full(SR, 0.1 * (i + 1), np.float32), SR,
                 subtype="FLOAT")
    (root / "validation_list.txt").write_text("_speech_/v0_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("_speech_/v1_nohash_0.wav\n_speech_/v2_nohash_0.wav\n")
    clips, n = A.speech_clips(root, seed=0)
    assert n == 3 and clips.shape == (3, SR)
    np.testing.assert_allclose(np.sqrt(np.mean(clips.astype(np.float64) ** 2, axis=1)), 1.0, rtol=1e-5)


def test_window_bank_skips_silence_and_recording_boundaries():
    loud = np.ones(3 * SR, np.float32) * 0.1
    quiet = np.zeros(2 * SR, np.float32)
    quiet[SR // 2:SR // 2 + 100] = 0.5                       # a click: only windows holding it count
    bank = WindowBank([loud, quiet])
    assert bank.starts.min() == 0 and bank.starts.max() <= 3 * SR + SR // 2
    for u in np.linspace(0, 0.999, 50):
        w = bank.window(u)
        assert w.size == SR and np.mean(w.astype(np.float64) ** 2) >= 1e-6
    # no window spans the end of the first recording and the start of the second
    assert not np.any((bank.starts > 2 * SR) & (bank.starts < 3 * SR))


# ---------------------------------------------------------------------------- rooms
def test_reverb_keeps_the_onset_and_the_rms(acoustics):
    x = burst(start=0.4)

    def onset(v):                      # the first 5 ms frame with 1 % of the loudest frame's energy
        e = np.sum(v.astype(np.float64).reshape(-1, 80) ** 2, axis=1)
        return int(np.flatnonzero(e > 0.01 * e.max())[0]) * 80

    start = onset(x)
    assert start == 6400
    for h, direct in acoustics.rirs:
        y = reverberate(x, h, direct)
        assert y.shape == x.shape and y.dtype == np.float32
        assert abs(onset(y) - start) <= 80                          # within one frame: the direct path
        np.testing.assert_allclose(np.sqrt(np.mean(y.astype(np.float64) ** 2)),
                                   np.sqrt(np.mean(x.astype(np.float64) ** 2)), rtol=1e-4)
        tail = slice(int(0.72 * SR), int(0.8 * SR))                  # after the burst: reverberation
        assert np.abs(y[tail]).max() > 1e-4 and np.abs(x[tail]).max() == 0


def test_the_direct_path_is_where_the_geometry_puts_it():
    from kws.data.streams import random_rir
    rng = np.random.default_rng(0)
    for _ in range(12):
        h, info = random_rir(rng, rt60=A.RT60, max_order=A.MAX_ORDER)
        d = info["direct"]
        a = np.abs(h)
        assert d >= 40 and a[d - 1:d + 2].max() >= 0.5 * a.max()     # a strong arrival at `direct`
        assert a[:d - 45].max(initial=0) < 0.25 * a[d - 1:d + 2].max()  # and nothing strong earlier


def test_the_rooms_vary(acoustics):
    from kws.data.streams import random_rir
    rng = np.random.default_rng(0)
    infos = [random_rir(rng, rt60=A.RT60, max_order=A.MAX_ORDER)[1] for _ in range(12)]
    rt = [i["rt60_s"] for i in infos]
    assert min(rt) >= 0.15 and max(rt) <= 0.9 and max(rt) - min(rt) > 0.3
    assert len({tuple(i["room_m"]) for i in infos}) == 12
    assert len({h.size for h, _ in acoustics.rirs}) > 6


# ---------------------------------------------------------------------------- channel
def test_channel_band_limits_and_keeps_length():
    r = np.random.default_rng(0)
    x = (0.05 * r.standard_normal(SR)).astype(np.float32)
    y = channel(x, 400.0, 3000.0, [], 0.0, 0.0)

    def band_db(v, lo, hi):
        s = np.abs(np.fft.rfft(v.astype(np.float64))) ** 2
        return 10 * np.log10(s[lo:hi].mean())

    assert y.shape == x.shape and y.dtype == np.float32
    mid = band_db(y, 900, 1100) - band_db(x, 900, 1100)
    assert abs(mid) < 1.0                                           # the pass band is kept
    assert band_db(y, 40, 120) - band_db(x, 40, 120) < mid - 12     # below the high-pass
    assert band_db(y, 6000, 7000) - band_db(x, 6000, 7000) < mid - 20   # above the low-pass
    boosted = channel(x, 50.0, 7600.0, [(1000.0, 9.0, 1.0)], 0.0, 0.0)
    assert band_db(boosted, 950, 1050) - band_db(x, 950, 1050) > 7  # the peaking filter
    louder = channel(x, 50.0, 7600.0, [], 6.0, 0.0)
    ratio = np.sqrt(np.mean(louder.astype(np.float64) ** 2) / np.mean(channel(x, 50.0, 7600.0, [], 0.0, 0.0) ** 2))
    assert abs(20 * np.log10(ratio) - 6.0) < 0.01                   # the gain
    clipped = channel(x, 50.0, 7600.0, [], 0.0, 0.02)
    top = np.abs(clipped).max()
    assert 0.015 <= np.mean(np.abs(clipped) >= top - 1e-7) <= 0.025  # ~2 % of samples at the limit


def test_channel_effects_stay_finite_for_any_draw(acoustics):
    ac = only(acoustics, p_channel=1.0)
    for s in range(30):
        x = burst(level=float(np.random.default_rng(s).uniform(0.01, 0.9)), seed=s)
        y = ac(x, np.random.default_rng(s))
        assert y.shape == x.shape and np.isfinite(y).all() and not np.array_equal(y, x)


# ---------------------------------------------------------------------------- sample split
NAMES = ["ambi_choir", "ambi_dark_woosh", "ambi_drone", "ambi_glass_hum", "ambi_glass_rub",
         "ambi_haunted_hum", "ambi_lunar_land", "ambi_piano", "ambi_sauna", "ambi_soft_buzz",
         "ambi_swoosh", "bass_dnb_f", "bass_drop_c", "bass_hard_c", "bass_hit_c", "bass_thick_c",
         "bass_trance_c", "bass_voxy_c", "bass_voxy_hit_c", "bass_woodsy_c", "guit_e_fifths",
         "guit_e_slide", "guit_em9", "guit_harmonics", "loop_3d_printer", "loop_amen", "loop_amen_full",
         "loop_breakbeat", "loop_compus", "loop_drone_g_97", "loop_electric", "loop_garzul",
         "loop_industrial", "loop_mehackit1", "loop_mehackit2", "loop_mika", "loop_perc1", "loop_perc2",
         "loop_safari", "loop_tabla", "loop_weirdo", "misc_burp", "misc_cineboom", "misc_crow",
         "vinyl_backspin", "vinyl_hiss", "vinyl_rewind", "vinyl_scratch", "bd_808", "drum_roll"]


def test_sample_split_is_disjoint_stable_and_covers_every_kind():
    s = sample_split(NAMES)
    assert s == sample_split(reversed(NAMES)) == sample_split(iter(sorted(NAMES)))   # order-free
    # the split of sonic-pi-samples 4.x's names, pinned: a change would mix test and training
    assert s["evaluation"] == {
        "loops": ["loop_3d_printer", "loop_amen", "loop_breakbeat", "loop_perc1", "loop_weirdo"],
        "tonal": ["bass_trance_c", "bass_voxy_hit_c", "guit_em9", "guit_harmonics"],
        "ambient": ["ambi_drone", "ambi_glass_rub", "ambi_sauna", "misc_burp", "vinyl_backspin"]}
    for kind in ("loops", "tonal", "ambient"):
        tr, ev = set(s["training"][kind]), set(s["evaluation"][kind])
        assert tr and ev and not tr & ev
        assert 0.2 <= len(ev) / (len(tr) + len(ev)) <= 0.4
    every = {n for part in s.values() for names in part.values() for n in names}
    assert "bd_808" not in every and "drum_roll" not in every
    # one name more moves no other kind's names
    more = sample_split(NAMES + ["loop_new"])
    assert more["evaluation"]["tonal"] == s["evaluation"]["tonal"]
    assert more["evaluation"]["ambient"] == s["evaluation"]["ambient"]
    assert sample_split(["loop_a"]) == {"training": {"loops": ["loop_a"], "tonal": [], "ambient": []},
                                        "evaluation": {"loops": [], "tonal": [], "ambient": []}}


@needs_samples
def test_streams_use_the_evaluation_samples_and_training_the_rest(acoustics):
    from kws.data.streams import music_samples, music_stream
    s = sample_split(p.stem for p in MUSIC_DIR.glob("*.flac"))
    evaluation = {n for names in s["evaluation"].values() for n in names}
    training = {n for names in s["training"].values() for n in names}
    loops, tonal = music_samples()
    assert loops and tonal and {n for _, n in loops + tonal} <= evaluation
    _, rows = music_stream(0.5, seed=4)
    used = {n for r in rows for n in r["name"].split("+")}
    assert used and used <= evaluation
    bg = acoustics.describe()["backgrounds"]
    assert bg["music"] and bg["ambient"] and set(bg["music"]) | set(bg["ambient"]) <= training


def test_varispeed_moves_pitch_and_length_together():
    from kws.data.streams import varispeed
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    for semitones, hz in ((12, 880), (-12, 220), (7, 440 * 2 ** (7 / 12))):
        y = varispeed(x, semitones)
        assert y.dtype == np.float32 and abs(y.size - SR * 2 ** (-semitones / 12)) <= 2
        spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
        assert abs(np.argmax(spectrum) * SR / y.size - hz) < 3
    assert varispeed(x, 0).tobytes() == x.tobytes()


@needs_samples
def test_repitched_banks_are_longer_varied_seeded_and_from_training_samples(data):
    from kws.data.streams import music, music_samples
    plain = Acoustics.for_data(data, seed=3, kinds=["music", "ambient"], n_rirs=0)
    more = Acoustics.for_data(data, seed=3, kinds=["music", "ambient"], n_rirs=0, bank_seconds=480, repitch=4)
    again = Acoustics.for_data(data, seed=3, kinds=["music", "ambient"], n_rirs=0, bank_seconds=480, repitch=4)
    assert more.banks["music"].audio.size == 2 * plain.banks["music"].audio.size == 480 * SR
    assert more.banks["music"].audio.tobytes() == again.banks["music"].audio.tobytes()
    assert more.describe()["backgrounds"] == plain.describe()["backgrounds"]   # training samples only
    assert (more.describe()["bank_seconds"], more.describe()["repitch_semitones"]) == (480, 4)
    # the test streams' recipe is unchanged by the option: repitch 0 draws nothing more
    s = music_samples()
    a, na = music(16, np.random.default_rng(1), s)
    b, nb = music(16, np.random.default_rng(1), s, 0.0)
    assert a.tobytes() == b.tobytes() and na == nb
    c, nc = music(16, np.random.default_rng(1), s, 4.0)
    assert nc[0] == na[0] and c.tobytes() != a.tobytes()
    with pytest.raises(KwsError, match="repitch in"):
        Acoustics.for_data(data, kinds=["music"], n_rirs=0, repitch=13)
    with pytest.raises(KwsError, match="seconds must be in"):
        Acoustics.for_data(data, kinds=["music"], n_rirs=0, bank_seconds=0)


def test_tones_are_harmonic_band_limited_seeded_and_at_the_noise_level():
    from kws.data.noise import TARGET_DBFS, tones
    x = tones(np.random.default_rng(4), 20.0)
    assert x.dtype == np.float32 and x.shape == (20 * SR,) and np.all(np.isfinite(x))
    # at the noise files' level, unless the peak limit (0.99) had to bring it down
    db, peak = 10 * np.log10(np.mean(x.astype(np.float64) ** 2)), float(np.abs(x).max())
    assert db <= TARGET_DBFS + 0.01 and (db > TARGET_DBFS - 0.1 or abs(peak - 0.99) < 1e-3)
    assert x.tobytes() == tones(np.random.default_rng(4), 20.0).tobytes()
    assert x.tobytes() != tones(np.random.default_rng(5), 20.0).tobytes()
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    assert spectrum[f > 7900].sum() < 1e-4 * spectrum.sum()          # no harmonic above 7.8 kHz
    # tonal, not noise: most of the energy sits in few spectral lines
    top = np.sort(spectrum)[::-1]
    assert top[: spectrum.size // 100].sum() > 0.8 * spectrum.sum()


def test_tones_are_a_background_kind_only_when_asked_for(data):
    plain = Acoustics.for_data(data, seed=0, kinds=["noise"], n_rirs=0)
    assert "tones" not in plain.kinds and "tones" not in A.DEFAULT_KINDS
    ac = Acoustics.for_data(data, seed=0, kinds=["noise", "tones"], n_rirs=0, bank_seconds=30)
    assert ac.kinds == ["noise", "tones"] and ac.banks["tones"].audio.size == 30 * SR
    assert "tones" in ac.describe()["backgrounds"]
    # `_silence_` items are tones too (kinds other than babble, drawn uniformly)
    seen = set()
    for s in range(20):
        r = np.random.default_rng(s)
        kind, where = ac.kinds[int(r.integers(0, 2))], r.random()
        w, ref = ac.silence(np.random.default_rng(s)).astype(np.float64), ac.banks[kind].window(where)
        assert np.allclose(w / np.sqrt(np.mean(w ** 2)), ref / np.sqrt(np.mean(ref.astype(np.float64) ** 2)),
                           atol=1e-4)
        seen.add(kind)
    assert seen == {"noise", "tones"}


# ---------------------------------------------------------------------------- bad options
@pytest.mark.parametrize("kw, message", [
    (dict(snr_db=(20, 0)), "bad SNR range"),
    (dict(snr_db=(0, float("nan"))), "bad SNR range"),
    (dict(p_channel=1.5), "channel probability must be in"),
])
def test_bad_acoustics_arguments(kw, message):
    with pytest.raises(KwsError, match=message):
        Acoustics(**kw)


def test_missing_sonic_pi_samples_is_a_clear_error(data, tmp_path, monkeypatch):
    import kws.data.streams as streams
    monkeypatch.setattr(streams, "MUSIC_DIR", tmp_path / "no-samples")
    with pytest.raises(KwsError, match=r"sonic-pi-samples .*--backgrounds noise,babble"):
        Acoustics.for_data(data, kinds=["noise", "music"], n_rirs=0)
    assert Acoustics.for_data(data, kinds=["noise", "babble"], n_rirs=0).kinds == ["noise", "babble"]


def test_bad_for_data_arguments(data, tmp_path):
    with pytest.raises(KwsError, match="unknown background kind"):
        Acoustics.for_data(data, kinds=["noise", "rain"], n_rirs=0)
    with pytest.raises(KwsError, match="n_rirs must be"):
        Acoustics.for_data(data, kinds=["noise"], n_rirs=-1)
    with pytest.raises(KwsError, match="does not exist"):
        Acoustics.for_data(tmp_path / "missing", kinds=["noise"], n_rirs=0)


# ---------------------------------------------------------------------------- kws train
@pytest.fixture(scope="module")
def realistic_run(data, tmp_path_factory):
    pytest.importorskip("torch")
    if not MUSIC_DIR.is_dir():
        pytest.skip("needs sonic-pi-samples")
    from conftest import toy_train_args
    from kws.cli import main
    out = tmp_path_factory.mktemp("run") / "m.kws"
    assert main(toy_train_args(data, out, "--acoustics", "realistic", "--reverb-prob", "0.7", epochs=1)) == 0
    return out


def test_kws_train_with_realistic_acoustics(realistic_run):
    from kws.fsmn.model import load_model
    p = load_model(realistic_run).provenance
    assert p["acoustics"] == "realistic" and p["noise_prob"] == 0.8 and p["noise_snr"] == [0.0, 20.0]
    r = p["realistic_acoustics"]
    assert r["reverb_prob"] == 0.7 and r["channel_prob"] == 0.5 and r["rooms"] == 300
    assert (r["bank_seconds"], r["repitch_semitones"]) == (240, 0)
    assert set(r["backgrounds"]) == {"noise", "ambient", "music", "babble"}
    assert r["backgrounds"]["babble"].startswith("20 of 20 training clips")
    hist = json.loads(realistic_run.with_name("m.work").joinpath("history.json").read_text())
    assert np.isfinite(hist["student"][-1]["train_loss"])


def test_basic_is_the_default_and_unchanged(data, tmp_path):
    pytest.importorskip("torch")
    from kws.distill.train import Trainer, TrainOptions, _Dist
    tr = Trainer(TrainOptions(data=str(data), task="custom", words="yes,no", out=str(tmp_path / "m.kws"),
                              batch_size=8, progress=False), _Dist())
    aug = tr.train_clips.augment
    assert tr.acoustics is None and aug.acoustics is None
    assert (aug.p_noise, aug.snr_db, aug.noise_scale, len(aug.noise)) == (0.3, None, (0.0, 0.3), 2)
    x = burst()
    reference = Augment(data / "_background_noise_", seed=0)
    assert aug(x, np.random.default_rng(9)).tobytes() == reference(x, np.random.default_rng(9)).tobytes()


@pytest.mark.parametrize("extra, message", [
    (["--reverb-prob", "0.5"], "--reverb-prob: only with --acoustics realistic"),
    (["--backgrounds", "music"], "--backgrounds: only with --acoustics realistic"),
    (["--music-repitch", "3"], "--music-repitch: only with --acoustics realistic"),
    (["--acoustics", "realistic", "--music-repitch", "20"], "repitch in [0, 12] semitones"),
    (["--acoustics", "realistic", "--no-augment"], "drop --no-augment"),
    (["--acoustics", "realistic", "--channel-prob", "2"], "--channel-prob must be in [0, 1]"),
    (["--acoustics", "realistic", "--backgrounds", "music,rain"], "unknown background kind(s) rain"),
    (["--acoustics", "realistic", "--backgrounds", ""], "unknown background kind(s) (none given)"),
])
def test_bad_train_options(data, tmp_path, capsys, extra, message):
    pytest.importorskip("torch")
    from conftest import toy_train_args
    from kws.cli import main
    assert main(toy_train_args(data, tmp_path / "m.kws", *extra)) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_silence_items_are_music_ambient_or_noise_alone(acoustics, data, tmp_path):
    """Realistic training makes `_silence_` items of the music, ambient and noise banks (never
    babble) at -45..-15 dBFS, seeded; the trainer's training split uses them."""
    pytest.importorskip("torch")
    seen = set()
    for s in range(60):
        w = acoustics.silence(np.random.default_rng(s))
        assert w.dtype == np.float32 and w.shape == (SR,)
        dbfs = 10 * np.log10(np.mean(w.astype(np.float64) ** 2))
        assert A.SILENCE_DBFS[0] - 0.01 <= dbfs <= A.SILENCE_DBFS[1] + 0.01
        assert w.tobytes() == acoustics.silence(np.random.default_rng(s)).tobytes()
        for kind in ("noise", "ambient", "music", "babble"):
            r = np.random.default_rng(s)
            k, where = int(r.integers(0, 3)), r.random()
            if ["noise", "ambient", "music"][k] == kind:
                seen.add(kind)
                assert np.allclose(w / np.sqrt(np.mean(w.astype(np.float64) ** 2)),
                                   acoustics.background(kind, where, 0, (), (), SR)
                                   / np.sqrt(np.mean(acoustics.background(kind, where, 0, (), (), SR) ** 2)),
                                   atol=1e-4)
    assert seen == {"noise", "ambient", "music"}
    assert not np.any(only(acoustics, ["babble"]).silence(np.random.default_rng(0)))
    from kws.distill.train import Trainer, TrainOptions, _Dist
    tr = Trainer(TrainOptions(data=str(data), task="custom", words="yes,no", out=str(tmp_path / "m.kws"),
                              batch_size=8, progress=False, acoustics="realistic"), _Dist())
    clips = tr.train_clips
    j = next(i for i, (rel, lab) in enumerate(clips.items) if rel is None)
    clips.augment, clips.epoch = None, 2
    x, label = clips[j]
    assert clips.labels[label] == "_silence_"
    want = tr.acoustics.silence(np.random.default_rng([clips.seed, 2, j, 0]))
    assert x.tobytes() == want.tobytes()
