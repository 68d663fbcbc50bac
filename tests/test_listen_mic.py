"""End to end through a microphone: `kws listen --json` hears synthesized keywords played into a
virtual PulseAudio microphone (../shared/tools/virtual-mic, see ../shared/recipes/virtual-mic.md).

* test_mic_path_carries_played_audio: kws.listen's own microphone plumbing (sounddevice import
  with the ALSA plugin release, device pick, 16 kHz 100 ms-block InputStream, capture timestamps)
  records what is played, sample for sample (correlation, level) and on time (wall clock). Needs
  no model.
* test_default_model_on_file[1x8 | 0.5x4]: the shipped model finds the keyword sequence in the WAV
  file (`kws listen --file`): the offline path, so a failure says "model" rather than "mic".
* One `kws listen --json` run per operating point (1x8, `--width 0.5 --blocks 4`; the shipped
  default model, no --model) on the virtual mic: the keyword sequence is played, then a stream of
  noise. Checked on that run:
  - test_listen_runs_in_real_time: it starts, prints its "listening" line, exits 0 with its summary
    on SIGTERM, prints each detection within 3 s of its audio, and `time_s` / `wall_time` agree with
    a stream that started between the launch and the "listening" line;
  - test_listen_no_detection_in_noise: nothing fires during the noise;
  - test_listen_peak_rss: peak RSS <= 60 MB (also prints the CPU share; pytest -s / -rA);
  - test_listen_detects_keywords: each keyword detected once, with the right label, at the right
    time (`wall_time` and `time_s` within [onset + 0.1 s, offset + 1.5 s] of when it was played),
    nothing else.

The keywords are rendered here by kws's own synthesis code (kws.data) with voices from the allowed
list only (kws.data.voices refuses others): a few fixed engine/voice pairs at rate 1, pitch 0.
The default model is required: a missing kws/models/default.kws fails these tests, never skips.
Known shortcomings of a shipped model at one operating point are listed in SHORTCOMINGS, keyed by
the model file's SHA-256: for that file and point only the keyword checks are strict xfails (they
fail as XPASS once the model passes them); every other model and point must pass them. A shortcoming
that shows in some microphone runs only (INTERMITTENT) is a non-strict xfail of the microphone
keyword check for that file and point; the file test stays strict. A miss at a few of the file
test's 20 hop phases only (AT_SOME_PHASES) is a strict xfail of the file test, which tries them all,
and a non-strict one of the microphone test, whose phase is whatever the sound server gives.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
VMIC = ROOT.parent / "shared" / "tools" / "virtual-mic"
DEFAULT_MODEL = ROOT / "kws" / "models" / "default.kws"
RATE = 16000

# (keyword, allowed voice): one engine each; rate 1, pitch 0, -22 dBFS speech
UTTERANCES = [("yes", "pico:en-GB"), ("no", "flite:kal16"), ("stop", "rhvoice:bdl"),
              ("go", "espeak-ng:en-us")]
LEAD_S, GAP_S = 1.0, 2.5               # silence before the first clip / after each 1 s clip
NOISES = ["white_noise", "pink_noise", "brown_noise", "fan", "running_tap", "hum_50hz"]
NOISE_EACH_S, NOISE_DBFS = 2.5, -30.0
# detection (window end) within [onset + 0.1, offset + 1.5]: after at least 100 ms of the word (a
# short word like "go" is recognised ~170 ms into it, measured), at most 1.5 s after it ended
EARLY_S, LATE_S = 0.1, 1.5
RSS_LIMIT_MB = 60.0
POINTS = {"1x8": [], "0.5x4": ["--width", "0.5", "--blocks", "4"]}
SHORTCOMINGS: dict = {
    # "<sha256 of kws/models/default.kws>": {"<point>": "what it misses, when measured, issue"}
    # (default model v1 had an entry for 0.5x4; v2 to v4.1 passed every check at both points)
}
AT_SOME_PHASES: dict = {
    # "<sha256>": {"<point>": "..."}: misses at a few of the file test's hop phases only
    # default model v9 at 0.5x4 (thresholds yes 0.94, no 0.50): at one of the file test's 20 hop
    # phases (lead 0.07 s) pico's 'yes' peaks at 0.940 and flite's 'no' at 0.493, just under; found
    # at the other 19 phases and in the microphone runs (2026-12-07, session 20).  Issue #17.
    "cdf4563a8f550510d6a8eeeaabd984ef7d41e3c878f7b3dc1e8daf811c154c62": {
        "0.5x4": "v9 at 0.5x4 misses pico's 'yes' and flite's 'no' at 1 of 20 hop phases of the file (#17)"},
}
INTERMITTENT: dict = {
    # default model v2: the flite 'no' is its weakest keyword at 0.5x4 (best score 0.64 over the
    # file's hop phases); through the virtual microphone the check failed in 3 of 8 runs on
    # 2026-11-23 (the two with output: 'no' heard as 'go', score 0.51), while the file at 80 hop
    # phases x 3 gains and resampled from 48 / 44.1 kHz never did. 0.5x4 is 7.8 points under the teacher: issue #7.
    "95f98f5dc0059eb2b6cc39d4f678af2b6256dca386ab39c642bf6b086fb19167": {
        "0.5x4": "v2 at 0.5x4 reads flite's 'no' as 'go' in some microphone runs (3 of 8) (#7)"},
    # default model v3 at 0.5x4 (cascade: 1x8 confirms): flite's 'no' scores 0.47-0.55 against its
    # calibrated threshold 0.46 in the file resampled to 48 kHz at 10 hop phases (`kws listen
    # --file`), found at all 20 phases of the 16 kHz file; through the virtual microphone it was
    # missed in 3 of 5 runs on 2026-12-06 (Intel Xeon; the same outputs from the session-9 and
    # session-10 runtimes, checked detection by detection).  Issue #17.
    "065e3261a8344be9b1a76528a7781eac30ed928ff8b310d7ff41c4843d63cc27": {
        "0.5x4": "v3 at 0.5x4 misses flite's 'no' (score ~0.5, threshold 0.46) in some microphone runs (#17)"},
    # default model v4 at 0.5x4 (threshold of 'go' 0.94): through the virtual microphone it missed the
    # espeak-ng 'go' in 1 of 3 runs on 2026-12-06, the one run with two `kws eval` processes busy on
    # both cores; the file test and the two runs on a quiet machine found it.  Issue #17.
    "2d1e62f657b0862ff090edea48b1808415868160a469891f6c076e87c4a3d374": {
        "0.5x4": "v4 at 0.5x4 missed espeak-ng's 'go' in 1 of 3 microphone runs, on a loaded machine (#17)"},
}

pytestmark = pytest.mark.mic


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def mic_env(tmp_path_factory):
    """A private virtual microphone for this session; yields the environment to run audio programs in."""
    if not (VMIC / "start.sh").is_file():
        pytest.fail(f"virtual microphone tools not found at {VMIC} (../shared beside the checkout)")
    d = tmp_path_factory.mktemp("vmic")
    env = dict(os.environ, VMIC_DIR=str(d), PYTHONUNBUFFERED="1")
    r = subprocess.run(["bash", str(VMIC / "start.sh")], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=900)
    if r.returncode:
        pytest.fail("virtual mic did not start:\n" + r.stderr)
    for line in r.stdout.splitlines():                 # export KEY=VALUE
        key, val = shlex.split(line)[1].split("=", 1)
        env[key] = val
    yield env
    subprocess.run(["bash", str(VMIC / "stop.sh")], env=env, stdin=subprocess.DEVNULL,
                   capture_output=True)


@pytest.fixture(scope="session")
def default_model():
    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"the shipped default model {DEFAULT_MODEL} is missing; these tests run "
                    "`kws listen` with it (no --model)")
    return DEFAULT_MODEL


def xfail_if_known(request, point: str, mic: bool = False) -> None:
    """Strict xfail of a keyword check the shipped model is known to fail at `point`; on the
    microphone (mic=True) also a non-strict xfail of a known intermittent miss (module doc)."""
    if not DEFAULT_MODEL.is_file():
        return
    sha = hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()
    if point in SHORTCOMINGS.get(sha, {}):
        request.applymarker(pytest.mark.xfail(strict=True, reason=SHORTCOMINGS[sha][point]))
    elif point in AT_SOME_PHASES.get(sha, {}):
        request.applymarker(pytest.mark.xfail(strict=not mic, reason=AT_SOME_PHASES[sha][point]))
    elif mic and point in INTERMITTENT.get(sha, {}):
        request.applymarker(pytest.mark.xfail(strict=False, reason=INTERMITTENT[sha][point]))


def synth_clip(word: str, voice_key: str) -> np.ndarray:
    """1 s float32 clip of `word` by an allowed voice, speech centred, -22 dBFS."""
    from kws.data.clip import check_loudness, finish
    from kws.data.engines import Renderer, check_engines
    from kws.data.tasks import word_text
    from kws.data.voices import select_voices
    (voice,) = select_voices(patterns=[voice_key])      # refuses voices not on the allowed list
    check_engines([voice])
    try:
        x, clipped = Renderer.for_thread().render(voice, word_text(word))
    finally:
        Renderer.close_all()
    span0, span1, db = check_loudness(x, clipped)
    pcm, _ = finish(x, (span0, span1), db, -22.0, 0.0, 45.0, np.random.default_rng(0))
    return pcm.astype(np.float32) / 32768.0


def speech_span(clip: np.ndarray) -> tuple[float, float]:
    """Onset and offset (s) of the active speech in a clip (the synthesis's own loudness rule)."""
    from kws.data.clip import check_loudness
    s0, s1, _ = check_loudness(clip)
    return s0 / RATE, s1 / RATE


@pytest.fixture(scope="module")
def keyword_sequence(tmp_path_factory):
    """WAV: LEAD_S of faint noise, then each keyword clip followed by GAP_S; and the expected
    [(label, onset_s, offset_s)] relative to the start of the file."""
    rng = np.random.default_rng(1)
    parts, expected, t = [np.zeros(int(LEAD_S * RATE), np.float32)], [], LEAD_S
    for word, voice in UTTERANCES:
        clip = synth_clip(word, voice)
        on, off = speech_span(clip)
        expected.append((word, t + on, t + off))
        parts += [clip, np.zeros(int(GAP_S * RATE), np.float32)]
        t += (len(clip) + int(GAP_S * RATE)) / RATE
    x = np.concatenate(parts)
    x += (10 ** (-70 / 20) * rng.standard_normal(len(x))).astype(np.float32)   # a quiet room
    path = tmp_path_factory.mktemp("seq") / "keywords.wav"
    sf.write(path, x, RATE, subtype="PCM_16")
    return path, expected


@pytest.fixture(scope="module")
def noise_stream(tmp_path_factory):
    """WAV: the synthetic noises of kws data synth (no speech), NOISE_EACH_S each, at NOISE_DBFS RMS."""
    from kws.data.noise import make_noise
    rng = np.random.default_rng(2)
    gain = 10 ** ((NOISE_DBFS + 20.0) / 20)             # make_noise normalises to -20 dBFS
    x = np.concatenate([gain * make_noise(n, rng, NOISE_EACH_S) for n in NOISES]).astype(np.float32)
    path = tmp_path_factory.mktemp("noise") / "noise.wav"
    sf.write(path, x, RATE, subtype="PCM_16")
    return path, len(x) / RATE


# ---------------------------------------------------------------------------------------- helpers
class Proc:
    """A subprocess whose stdout / stderr lines are collected with their arrival (Unix) time."""

    def __init__(self, cmd, env):
        self.t_launch = time.time()
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1, cwd=ROOT)
        self.out: list[tuple[float, str]] = []
        self.err: list[tuple[float, str]] = []
        self._err_q: queue.Queue = queue.Queue()
        self._threads = [threading.Thread(target=self._pump, args=(self.p.stdout, self.out, None), daemon=True),
                         threading.Thread(target=self._pump, args=(self.p.stderr, self.err, self._err_q),
                                          daemon=True)]
        for th in self._threads:
            th.start()

    @staticmethod
    def _pump(stream, into, q):
        for line in stream:
            item = (time.time(), line.rstrip("\n"))
            into.append(item)
            if q is not None:
                q.put(item)
        if q is not None:
            q.put(None)

    def wait_stderr(self, text: str, timeout: float) -> tuple[float, str]:
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                item = self._err_q.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                break
            if text in item[1]:
                return item
        raise AssertionError(f"no {text!r} on stderr within {timeout} s (exit code "
                             f"{self.p.poll()}); stderr: {[l for _, l in self.err]}")

    def cpu_seconds(self) -> float:
        f = Path(f"/proc/{self.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.p.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM in /proc/PID/status")

    def stop(self, timeout: float = 20) -> int:
        if self.p.poll() is None:
            self.p.terminate()
        try:
            code = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            code = self.p.wait()
        for th in self._threads:
            th.join(5)
        return code


def play(env, wav) -> float:
    """Play a WAV into the virtual mic (blocking, real time); returns the Unix time of the launch."""
    t = time.time()
    r = subprocess.run(["bash", str(VMIC / "play.sh"), str(wav)], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"play.sh failed: {r.stderr}"
    return t


def kws_cmd(*args):
    return [sys.executable, "-m", "kws", *map(str, args)]


def check_detections(dets, expected, t_ref, key):
    """dets: JSON detections; expected [(label, on, off)] relative to t_ref on the `key` clock
    (time_s or wall_time). Every expected keyword found once in its window, nothing else.
    Messages give times relative to t_ref (the start of the played file)."""
    missing, used = [], set()
    for label, on, off in expected:
        lo, hi = t_ref + on + EARLY_S, t_ref + off + LATE_S
        hits = [i for i, d in enumerate(dets) if lo <= d[key] <= hi]
        good = [i for i in hits if dets[i]["label"] == label]
        if len(good) != 1:
            missing.append(f"{label} in [{lo - t_ref:.2f}, {hi - t_ref:.2f}] s: got "
                           f"{[(dets[i]['label'], round(dets[i][key] - t_ref, 2)) for i in hits]}")
        used.update(good)       # a wrong label inside a keyword's window is unexpected too
    extra = [(d["label"], round(d[key] - t_ref, 2), d["score"]) for i, d in enumerate(dets)
             if i not in used]
    assert not missing and not extra, (
        f"on the {key} clock, relative to the start of playback: missed/wrong {missing}; "
        f"unexpected {extra}; all {[(d['label'], round(d[key] - t_ref, 2)) for d in dets]}")


# ---------------------------------------------------------------------------------------- tests
RECORDER = r"""
import sys, time, queue, numpy as np
from kws import listen
seconds, out = float(sys.argv[1]), sys.argv[2]
sd = listen.import_sounddevice()              # as `kws listen` does: ALSA plugins released
device = listen.pick_device(sd, None)
q = queue.Queue()
def cb(indata, frames, time_info, status):
    q.put((indata[:, 0].copy(), time.time() - listen.capture_delay(time_info, frames, 16000),
           bool(status.input_overflow)))
stream, rate = listen.open_stream(sd, device, cb)
blocks = []
with stream:
    blocks.append(q.get(timeout=10))
    print("recording", rate, flush=True)
    while len(blocks) * len(blocks[0][0]) < seconds * rate:
        blocks.append(q.get(timeout=10))
np.savez(out, audio=np.concatenate([b[0] for b in blocks]), t_capture=np.array([b[1] for b in blocks]),
         n=np.array([len(b[0]) for b in blocks]), overflow=np.array([b[2] for b in blocks]), rate=rate)
"""


def test_mic_path_carries_played_audio(mic_env, keyword_sequence, tmp_path):
    wav, _ = keyword_sequence
    played, _ = sf.read(wav, dtype="float32")
    secs = len(played) / RATE + 3.0
    out = tmp_path / "rec.npz"
    rec = Proc([sys.executable, "-c", RECORDER, str(secs), str(out)], mic_env)
    try:
        deadline = time.monotonic() + 60
        while not any("recording" in l for _, l in rec.out):
            assert rec.p.poll() is None, f"recorder failed: {[l for _, l in rec.err]}"
            assert time.monotonic() < deadline, "recorder did not start"
            time.sleep(0.05)
        time.sleep(0.5)
        t_play = play(mic_env, wav)
        assert rec.p.wait(secs + 60) == 0, [l for _, l in rec.err]
    finally:
        rec.stop()
    r = np.load(out)
    assert int(r["rate"]) == RATE and not r["overflow"].any()
    heard = r["audio"].astype(np.float64)
    x = played.astype(np.float64)
    # where the played file sits in the recording: FFT cross-correlation
    n = 1 << int(np.ceil(np.log2(len(heard) + len(x))))
    corr = np.fft.irfft(np.fft.rfft(heard, n) * np.conj(np.fft.rfft(x, n)), n)[:len(heard) - len(x) + 1]
    lag = int(np.argmax(corr))
    seg = heard[lag:lag + len(x)]
    ncc = float(seg @ x / (np.linalg.norm(seg) * np.linalg.norm(x)))
    level = float(np.linalg.norm(seg) / np.linalg.norm(x))
    # wall clock of the recording's sample `lag`, from the capture timestamps of kws.listen
    starts = np.concatenate([[0], np.cumsum(r["n"])[:-1]])
    origin = r["t_capture"] - starts / RATE                  # Unix time of sample 0, per block
    t_heard = float(np.median(origin)) + lag / RATE
    print(f"\nmic path: correlation {ncc:.3f}, level x{level:.3f}, heard {1000 * (t_heard - t_play):.0f} ms "
          f"after play.sh was launched, sample-0 clock spread {1000 * np.ptp(origin):.1f} ms")
    assert ncc >= 0.95 and 0.9 <= level <= 1.1
    assert 0.0 <= t_heard - t_play <= 0.5
    assert np.ptp(origin) < 0.1          # capture timestamps consistent with the sample count


# the file is also read shifted by these leads: the mic starts the sequence at an arbitrary phase of
# the 200 ms hop, and a keyword's tail can look like another one at some phases only (with a 1 s
# refractory period, default model v2 heard "up" 1.0 s after "stop" at leads of 30-40 ms)
FILE_LEADS_S = tuple(i / 100 for i in range(20))


@pytest.mark.parametrize("point", POINTS.values(), ids=POINTS.keys())
def test_default_model_on_file(default_model, keyword_sequence, point, request, tmp_path):
    wav, expected = keyword_sequence
    x, rate = sf.read(wav, dtype="int16")
    xfail_if_known(request, request.node.callspec.id)
    for lead in FILE_LEADS_S:
        path = tmp_path / f"lead{lead}.wav"
        sf.write(path, np.concatenate([np.zeros(int(lead * rate), np.int16), x]), rate, subtype="PCM_16")
        r = subprocess.run(kws_cmd("listen", "--file", path, "--json", *point), capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=300, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        dets = [json.loads(l) for l in r.stdout.splitlines()]
        print(f"\nkws listen --file (lead {lead} s) {' '.join(point)}: "
              f"{[(d['label'], d['time_s'], d['score']) for d in dets]}")
        check_detections(dets, expected, lead, "time_s")


@pytest.fixture(scope="module", params=POINTS.values(), ids=POINTS.keys())
def mic_run(request, mic_env, default_model, keyword_sequence, noise_stream):
    """One `kws listen --json [point]` on the virtual mic: the keyword sequence, then the noise."""
    point = request.param
    wav, expected = keyword_sequence
    noise_wav, noise_s = noise_stream
    cli = Proc(kws_cmd("listen", "--json", *point), mic_env)
    try:
        t_ready, _ = cli.wait_stderr("listening", timeout=120)
        cpu0, w0 = cli.cpu_seconds(), time.monotonic()
        time.sleep(0.5)
        t_play = play(mic_env, wav)
        time.sleep(LATE_S)                                   # the last keyword's detection
        t_noise = play(mic_env, noise_wav)
        time.sleep(LATE_S)
        secs = time.monotonic() - w0
        cpu = 100 * (cli.cpu_seconds() - cpu0) / secs
        peak = cli.peak_rss_mb()
    finally:
        t_stop = time.time()
        code = cli.stop()
    dets = []
    for t_recv, line in cli.out:
        d = json.loads(line)
        d["t_recv"] = t_recv
        dets.append(d)
    name = " ".join(point) or "(default 1x8)"
    print(f"\nkws listen {name}: peak RSS {peak:.1f} MB, CPU {cpu:.2f} % of a core over "
          f"{secs:.0f} s; detections {[(d['label'], d['time_s'], d['score']) for d in dets]}")
    return dict(point=point, code=code, err=[l for _, l in cli.err], dets=dets, expected=expected,
                t_launch=cli.t_launch, t_ready=t_ready, t_play=t_play, t_noise=t_noise, t_stop=t_stop,
                noise_s=noise_s, peak=peak, cpu=cpu)


def test_listen_runs_in_real_time(mic_run):
    r = mic_run
    assert r["code"] == 0, r["err"]
    summary = [l for l in r["err"] if l.startswith("kws: listened ")]
    assert summary, r["err"]
    heard = float(summary[0].split()[2])            # "kws: listened 34.2 s: ..."
    assert heard >= r["t_stop"] - r["t_ready"] - 1.0, (summary, r["t_stop"] - r["t_ready"])
    width, blocks = (0.5, 4) if r["point"] else (1.0, 8)
    for d in r["dets"]:
        assert {"label", "score", "time_s", "wall_time", "width", "blocks"} <= set(d)
        assert (d["width"], d["blocks"]) == (width, blocks)
        assert d["t_recv"] - d["wall_time"] < 3.0, f"detection printed late (not real time): {d}"
    # time_s counts from the stream's first sample: after the launch, before the "listening" line
    origins = [d["wall_time"] - d["time_s"] for d in r["dets"]]
    assert all(r["t_launch"] <= o <= r["t_ready"] + 0.05 for o in origins), \
        (r["t_launch"], origins, r["t_ready"])
    assert not origins or np.ptp(origins) < 0.1


def test_listen_no_detection_in_noise(mic_run):
    r = mic_run
    in_noise = [(d["label"], round(d["wall_time"] - r["t_noise"], 2), d["score"]) for d in r["dets"]
                if d["wall_time"] > r["t_noise"] + EARLY_S]
    assert not in_noise, f"detections in {r['noise_s']:.0f} s of noise (s after it began): {in_noise}"


def test_listen_peak_rss(mic_run):
    assert mic_run["peak"] <= RSS_LIMIT_MB, \
        f"peak RSS {mic_run['peak']:.1f} MB > {RSS_LIMIT_MB} MB (CPU {mic_run['cpu']:.2f} %)"


def test_listen_detects_keywords(mic_run, request):
    r = mic_run
    assert r["code"] == 0, r["err"]
    xfail_if_known(request, request.node.callspec.id, mic=True)
    check_detections(r["dets"], r["expected"], r["t_play"], "wall_time")
    origin = r["dets"][0]["wall_time"] - r["dets"][0]["time_s"] if r["dets"] else r["t_ready"]
    check_detections(r["dets"], r["expected"], r["t_play"] - origin, "time_s")
