"""Running the offline TTS engines: one `Renderer` per worker thread turns (voice, text, rate, pitch)
into float32 mono 16 kHz audio, or raises `RenderError(reason)`.

Engines (see ../shared/recipes/speech-data.md): espeak-ng (`-s` words/min for rate), MBROLA through
espeak-ng, flite (`duration_stretch`), festival (one persistent `festival --pipe` per renderer,
`Duration_Stretch`), pico (`pico2wave`, rate by sox `tempo`), RHVoice (`RHVoice-test -r` percent).
Kokoro (kws.data.kokoro: ONNX Runtime, one session per renderer, `speed` for rate).
Pitch: sox `pitch` (cents = 100 x semitones) for every engine. sox also converts to 16 kHz mono
float (`-R`: repeatable, no dither). No gain is applied here: the loudness check needs raw levels.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from kws.data.voices import Voice
from kws.errors import KwsError

SAMPLE_RATE = 16000
TIMEOUT_S = 120
INSTALL_HINT = ("install the TTS engines with `scripts/install-tts.sh` from a kws checkout (it runs "
                "../shared/tools/speech-data/install-tts.sh; Debian, root or sudo)")
PACKAGES = {"espeak-ng": "espeak-ng", "mbrola": "mbrola + mbrola-<voice> (contrib/non-free)",
            "flite": "flite", "festival": "festival festvox-kallpc16k festvox-kdlpc16k",
            "pico": "libttspico-utils (non-free)", "rhvoice": "rhvoice rhvoice-english (non-free)",
            "kokoro": "espeak-ng (its phonemizer)", "sox": "sox"}
BINARIES = {"espeak-ng": ["espeak-ng"], "mbrola": ["espeak-ng", "mbrola"], "flite": ["flite"],
            "festival": ["festival"], "pico": ["pico2wave"], "rhvoice": ["RHVoice-test"],
            "kokoro": ["espeak-ng"]}


class RenderError(Exception):
    """A render that produced no usable audio; `reason` is a short tag (engine-error, ...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------- availability
@functools.lru_cache(maxsize=1)
def _espeak_data() -> Path | None:
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Data at:\s*(\S+)", out)
    return Path(m.group(1)) if m else None


@functools.lru_cache(maxsize=1)
def _flite_voices() -> frozenset[str]:
    try:
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(out.split(":", 1)[-1].split())


def _voice_installed(v: Voice) -> bool:
    if v.engine == "espeak-ng":
        data = _espeak_data()
        return data is None or not v.variant or (data / "voices" / "!v" / v.variant).is_file()
    if v.engine == "mbrola":
        code = v.voice.split("-")[1]                       # mb-de1-en -> de1
        return any((Path(d) / code / code).is_file()
                   for d in ("/usr/share/mbrola", "/usr/local/share/mbrola", "/usr/lib/mbrola"))
    if v.engine == "flite":
        return v.voice in _flite_voices()
    if v.engine == "festival":
        return any(Path(d, v.voice).is_dir() for d in ("/usr/share/festival/voices/english",
                                                       "/usr/local/share/festival/voices/english"))
    if v.engine == "pico":
        return any(Path(d).glob(f"{v.voice}_*.bin") for d in ("/usr/share/pico/lang",
                                                              "/usr/local/share/pico/lang"))
    if v.engine == "rhvoice":
        return any(Path(d, v.voice).is_dir() for d in ("/usr/share/RHVoice/voices",
                                                       "/usr/local/share/RHVoice/voices"))
    return False


def check_engines(voices: list[Voice]) -> None:
    """Raise KwsError (naming the install command) if an engine or voice needed is missing."""
    problems = []
    if shutil.which("sox") is None:
        problems.append("sox (package sox) is not installed")
    for eng in sorted({v.engine for v in voices}):
        missing = [b for b in BINARIES[eng] if shutil.which(b) is None]
        if missing:
            problems.append(f"engine {eng}: {', '.join(missing)} not found "
                            f"(package {PACKAGES[eng]})")
            continue
        if eng == "kokoro":
            from kws.data import kokoro
            if kokoro.missing_packages():
                problems.append(f"engine kokoro: Python package(s) {', '.join(kokoro.missing_packages())} "
                                f"not installed ({kokoro.INSTALL_HINT})")
            continue
        absent = [v.name for v in voices if v.engine == eng and not _voice_installed(v)]
        if absent:
            shown = ", ".join(absent[:6]) + (" ..." if len(absent) > 6 else "")
            problems.append(f"engine {eng}: {len(absent)} voice(s) not installed: {shown} "
                            f"(package {PACKAGES[eng]})")
    if problems:
        raise KwsError("; ".join(problems) + f". To fix: {INSTALL_HINT}, or leave the engine out "
                       "with --engines")


# ---------------------------------------------------------------------------- rendering
def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RenderError("engine-error", f"{cmd[0]} timed out") from None
    except OSError as e:
        raise RenderError("engine-error", f"{cmd[0]}: {e}") from None


class Renderer:
    """Renders text with one voice at a time; not thread-safe: use one per thread (`for_thread`)."""

    _local = threading.local()
    _all: list["Renderer"] = []
    _all_lock = threading.Lock()

    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="kws-tts-"))
        self._festival: subprocess.Popen | None = None
        self._kokoro = None                  # kws.data.kokoro.KokoroVoice, made on first use
        self._n = 0

    @classmethod
    def for_thread(cls) -> "Renderer":
        r = getattr(cls._local, "renderer", None)
        if r is None:
            r = cls._local.renderer = cls()
            with cls._all_lock:
                cls._all.append(r)
        return r

    @classmethod
    def close_all(cls) -> None:
        with cls._all_lock:
            rs, cls._all = cls._all, []
        for r in rs:
            r.close()
        cls._local = threading.local()

    def close(self) -> None:
        if self._festival is not None:
            try:
                self._festival.stdin.close()
                self._festival.wait(timeout=10)
            except (OSError, subprocess.SubprocessError):
                self._festival.kill()
            self._festival = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- raw engine output ------------------------------------------------------------
    def render_raw(self, voice: Voice, text: str, rate: float = 1.0) -> tuple[Path, bool]:
        """Run the engine; returns (path of its WAV at the native rate, whether `rate` was applied).

        Raises RenderError("engine-error" | "missing-phoneme").
        """
        self._n += 1
        out = self.tmp / f"raw{self._n % 4}.wav"
        out.unlink(missing_ok=True)
        e, applied = voice.engine, True
        if e in ("espeak-ng", "mbrola"):
            name = voice.name if e == "espeak-ng" else voice.voice
            # MBROLA at espeak-ng's default amplitude 100 saturates some voices (mb-fr4-en):
            # amplitude 70 keeps them clean and leaves the level far above the silence threshold
            amp = ["-a", "70"] if e == "mbrola" else []
            p = _run(["espeak-ng", "-v", name, *amp, "-s", str(int(round(175 * rate))),
                      "-w", str(out), "--", text])
            if e == "mbrola" and "unknown, replaced" in p.stderr:
                raise RenderError("missing-phoneme", p.stderr.strip().splitlines()[0])
        elif e == "flite":
            p = _run(["flite", "-voice", voice.voice, "--setf", f"duration_stretch={1 / rate:.4f}",
                      "-t", text, "-o", str(out)])
        elif e == "pico":
            p = _run(["pico2wave", "-l", voice.voice, "-w", str(out), text])
            applied = rate == 1.0
        elif e == "rhvoice":
            p = _run(["RHVoice-test", "-p", voice.voice, "-r", str(int(round(100 * rate))),
                      "-o", str(out)], stdin=text + "\n")
        elif e == "festival":
            self._festival_say(voice.voice, text, rate, out)
            p = None
        elif e == "kokoro":
            self._kokoro_say(voice.name, text, rate, out)
            p = None
        else:
            raise RenderError("engine-error", f"unknown engine {e}")
        if p is not None and p.returncode != 0:
            raise RenderError("engine-error", f"{e} exit {p.returncode}: {p.stderr.strip()[:200]}")
        if not out.is_file() or out.stat().st_size <= 44:
            raise RenderError("engine-error", f"{e} wrote no audio")
        return out, applied

    def _kokoro_say(self, name: str, text: str, rate: float, out: Path) -> None:
        import soundfile as sf
        from kws.data import kokoro
        try:
            if self._kokoro is None:
                self._kokoro = kokoro.KokoroVoice()
            audio = self._kokoro.render(name, text, speed=rate)
        except KwsError as e:
            raise RenderError("engine-error", str(e)) from None
        sf.write(str(out), audio, kokoro.SAMPLE_RATE, subtype="FLOAT")

    def _festival_say(self, name: str, text: str, rate: float, out: Path) -> None:
        if self._festival is None or self._festival.poll() is not None:
            try:
                self._festival = subprocess.Popen(
                    ["stdbuf", "-oL", "festival", "--pipe"] if shutil.which("stdbuf")
                    else ["festival", "--pipe"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True, bufsize=1)
            except OSError as e:
                raise RenderError("engine-error", f"festival: {e}") from None
        tag = f"KWSDONE{self._n}"
        safe = text.replace("\\", " ").replace('"', " ")
        cmd = (f"(voice_{name})(Parameter.set 'Duration_Stretch {1 / rate:.4f})"
               f'(utt.save.wave (utt.synth (Utterance Text "{safe}")) "{out}" (quote riff))'
               f'(format t "{tag}\\n")\n')
        lines = []
        try:
            self._festival.stdin.write(cmd)
            self._festival.stdin.flush()
            while True:
                line = self._festival.stdout.readline()
                if not line:
                    raise RenderError("engine-error", "festival exited: " + " ".join(lines)[:200])
                if line.startswith(tag):
                    break
                lines.append(line.strip())
        except OSError as e:
            self._festival = None
            raise RenderError("engine-error", f"festival: {e}") from None
        errors = [ln for ln in lines if "error" in ln.lower()]
        if errors:
            raise RenderError("engine-error", "festival: " + errors[0][:200])

    # -- to 16 kHz float ----------------------------------------------------------------
    def render(self, voice: Voice, text: str, rate: float = 1.0, pitch_semitones: float = 0.0
               ) -> tuple[np.ndarray, float]:
        """Render and convert to float32 mono 16 kHz (no gain).

        Returns (audio [samples], fraction of raw samples at full scale (clipping measure)).
        Raises RenderError.
        """
        import soundfile as sf

        raw, applied = self.render_raw(voice, text, rate)
        try:
            data, sr = sf.read(str(raw), dtype="float32", always_2d=True)
        except Exception as e:               # noqa: BLE001
            raise RenderError("engine-error", f"unreadable engine output: {e}") from None
        if data.size == 0:
            raise RenderError("engine-error", "empty engine output")
        clipped = float(np.mean(np.abs(data) >= 32767 / 32768))
        effects = []
        if not applied and abs(rate - 1.0) > 1e-6:
            effects += ["tempo", "-s", f"{rate:.4f}"]
        if abs(pitch_semitones) > 1e-6:
            effects += ["pitch", f"{100 * pitch_semitones:.1f}"]
        if not effects:
            x = data.mean(axis=1)
            if sr != SAMPLE_RATE:
                import soxr
                x = soxr.resample(x, sr, SAMPLE_RATE, quality="HQ")
            return np.ascontiguousarray(x, dtype=np.float32), clipped
        try:
            p = subprocess.run(["sox", "-R", "-q", "-V1", str(raw), "-t", "raw", "-e",
                                "floating-point", "-b", "32", "-L", "-c", "1", "-r",
                                str(SAMPLE_RATE), "-", *effects],
                               capture_output=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as e:
            raise RenderError("engine-error", f"sox: {e}") from None
        if p.returncode != 0:
            raise RenderError("engine-error", f"sox exit {p.returncode}: "
                              f"{p.stderr.decode(errors='replace')[:200]}")
        x = np.frombuffer(p.stdout, dtype="<f4").astype(np.float32)
        if x.size == 0:
            raise RenderError("engine-error", "sox produced no audio")
        return x, clipped


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
