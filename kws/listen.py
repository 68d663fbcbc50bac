"""`kws listen` (microphone or files in, detections out) and `kws devices`.

The audio callback only copies blocks into a queue; the network runs in the main thread, so a
slow inference never blocks PortAudio (an overflow is counted and reported, never fatal).

Microphone mode prints its "kws: listening on ..." line on stderr once the first block of audio has
arrived (audio played before that is not heard). With --json each detection also carries
`wall_time`: the Unix time at which the end of the window that fired was captured (`time_s` on the
wall clock, from PortAudio's capture timestamps), so other programs can line detections up with
their own clocks.

Memory: PortAudio opens every PCM the ALSA configuration defines when sounddevice is imported, and
ALSA keeps those plugin modules loaded (the a52 plugin alone maps libavcodec and its codec
libraries). sounddevice is therefore imported before numpy and the model, and ALSA's global
configuration is freed right after (what PortAudio's own Pa_Terminate does), which unloads them:
peak RSS of `kws listen` 62 -> 51 MB measured on Debian 12 (README, "Microphone").
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import sys
import time

from kws.cli import CliError, add_detector_options

SAMPLE_RATE = 16000
AUTO_CONFIRM_HELP = "every point but the widest confirms with the widest (e.g. 0.5x4 with 1x8)"


class Stop(Exception):
    """SIGTERM: stop listening like Ctrl-C does (summary line, exit code 0)."""


def _on_sigterm(signum, frame):
    raise Stop()


def register(sub) -> None:
    p = sub.add_parser("listen", help="detect keywords on the microphone (or in audio files)",
                       description="Listen to the microphone (or --file) and print one line per "
                                   "detected keyword.")
    add_detector_options(p)
    p.add_argument("--keywords", default=None, help="comma-separated subset of the model's keywords")
    p.add_argument("--device", default=None, help="input device index or (part of its) name")
    p.add_argument("--file", nargs="+", metavar="AUDIO", help="WAV/FLAC files instead of a microphone")
    p.add_argument("--json", action="store_true", help="one JSON object per detection")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--hop-ms", type=float, default=None,
                   help="how often the network runs, ms (default: the Detector's, kws.detector.HOP_MS)")
    p.add_argument("--confirm", default="auto", metavar="POINT",
                   help="cascade: report a detection only if this operating point (e.g. 1x8) agrees, "
                        "re-scoring the same audio; 'none': off; 'auto' (default): "
                        + AUTO_CONFIRM_HELP)
    p.set_defaults(func=cmd_listen)
    d = sub.add_parser("devices", help="list audio input devices",
                       description="List audio input devices (index, name, default rate).")
    d.set_defaults(func=cmd_devices)


# ---------------------------------------------------------------------------------------- output
class Printer:
    def __init__(self, as_json: bool, extra: dict):
        self.as_json, self.extra, self.count = as_json, extra, 0
        self.status_shown = False

    def detection(self, d, **more) -> None:
        self.clear_status()
        self.count += 1
        confirm = {} if d.confirmed_by is None else {"confirmed_by": d.confirmed_by,
                                                     "confirm_score": round(d.confirm_score, 4)}
        if self.as_json:
            print(json.dumps({"label": d.label, "score": round(d.score, 4), "time_s": d.time_s,
                              **self.extra, **confirm, **more}), flush=True)
        else:
            where = f"{more['file']}  " if "file" in more else ""
            also = f"  ({d.confirmed_by}: {d.confirm_score:.2f})" if confirm else ""
            print(f"{where}{d.time_s:8.2f}s  {d.label:<12} {d.score:.2f}{also}", flush=True)

    def status(self, text: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\r" + text[:120].ljust(80))
            sys.stderr.flush()
            self.status_shown = True

    def clear_status(self) -> None:
        if self.status_shown:
            sys.stderr.write("\r" + " " * 80 + "\r")
            self.status_shown = False


def make_detector(args):
    from kws.detector import HOP_MS, Detector, resolve_model
    model = resolve_model(args.model)
    listen = model.arch.operating_point(args.width, args.blocks)
    return Detector(model, width=args.width, blocks=args.blocks, threshold=args.threshold,
                    keywords=args.keywords, hop_ms=HOP_MS if args.hop_ms is None else args.hop_ms,
                    confirm=confirm_point(args.confirm, model.arch, listen))


def confirm_point(spec: str, arch, listen):
    """--confirm: None (no cascade) or the confirm point. 'auto' (AUTO_CONFIRM_HELP) was decided
    from the measurements in docs/cascade.md."""
    spec = spec.strip().lower()
    if spec == "none":
        return None
    if spec == "auto":
        widest = arch.operating_points[0]
        return None if listen == widest else widest
    return spec


def confirmed_by(det) -> str:
    return "" if det.confirm is None else f" confirmed by {det.confirm.name}"


# ---------------------------------------------------------------------------------------- files
def read_audio(path: str):
    import soundfile as sf
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise CliError(f"cannot read {path}: {e}") from None
    if audio.shape[1] > 1:
        print(f"kws: {path}: {audio.shape[1]} channels mixed down to mono", file=sys.stderr)
    return audio.mean(axis=1, dtype="float32") if audio.shape[1] > 1 else audio[:, 0], rate


def listen_files(args, det, out: Printer) -> int:
    chunk_s = 0.1
    for path in args.file:
        audio, rate = read_audio(path)
        det.reset()
        step = max(1, int(rate * chunk_s))
        end = len(audio) if args.duration is None else min(len(audio), int(args.duration * rate))
        for i in range(0, end, step):
            for d in det.feed(audio[i:min(i + step, end)], sample_rate=rate):
                out.detection(d, file=path)
    print(f"kws: {len(args.file)} file(s), {out.count} detection(s), operating point "
          f"{det.operating_point.name}{confirmed_by(det)}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------- microphone
BLOCK_S = 0.1          # audio callback period: fewer wake-ups than 20 ms blocks, < one 200 ms hop
FIRST_BLOCK_WAIT_S = 3.0


def import_sounddevice():
    try:
        import sounddevice as sd
    except OSError as e:   # PortAudio missing
        raise CliError(f"no audio input: {e} (install PortAudio: apt install libportaudio2)", 2) from None
    release_alsa_plugins()
    return sd


def release_alsa_plugins() -> bool:
    """Unload the ALSA plugin modules PortAudio's device scan loaded (see the module doc).

    Frees ALSA's global configuration (public `snd_config_update_free_global`, also called by
    Pa_Terminate); ALSA then closes its cached plugin modules, and the next `snd_pcm_open` reads
    the configuration again and loads only the plugin it needs. Only when libasound is already
    loaded (Linux, PortAudio with ALSA) and no stream is open. Returns True if it was called.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        lib = ctypes.CDLL("libasound.so.2", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        return lib.snd_config_update_free_global() == 0
    except (OSError, AttributeError):
        return False


def input_devices(sd) -> list[dict]:
    try:
        return [dict(d, index=i) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]
    except sd.PortAudioError as e:
        raise CliError(f"cannot list audio devices: {e}", 2) from None


def device_list_text(devices) -> str:
    return ", ".join(f"{d['index']}: {d['name']}" for d in devices) or "none"


def pick_device(sd, spec):
    devices = input_devices(sd)
    if not devices:
        raise CliError("no audio input device found (is a microphone connected? is PulseAudio "
                       "running?); use --file to run on audio files", 2)
    if spec is None:
        return None
    if spec.strip().lstrip("-").isdigit():
        idx = int(spec)
        if any(d["index"] == idx for d in devices):
            return idx
    else:
        hits = [d for d in devices if spec.lower() in d["name"].lower()]
        if hits:
            return hits[0]["index"]
    raise CliError(f"no input device {spec!r}; available inputs: {device_list_text(devices)}", 2)


def open_stream(sd, device, callback):
    """An InputStream at 16 kHz, or at the device's own rate when it cannot do 16 kHz."""
    rate = SAMPLE_RATE
    try:
        sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=rate)
    except Exception:   # sounddevice raises PortAudioError or ValueError here
        info = sd.query_devices(device, "input")
        rate = int(info["default_samplerate"])
    try:
        stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=device,
                                blocksize=int(rate * BLOCK_S), callback=callback)
    except (sd.PortAudioError, ValueError) as e:
        raise CliError(f"cannot open input device {device if device is not None else '(default)'}: {e}; "
                       f"available inputs: {device_list_text(input_devices(sd))}", 2) from None
    return stream, rate


def capture_delay(time_info, frames: int, rate: int) -> float:
    """Seconds between the capture of a callback's first sample and now: PortAudio's
    currentTime - inputBufferAdcTime when it reports them, else the block's own length."""
    try:
        d = time_info.currentTime - time_info.inputBufferAdcTime
    except Exception:   # noqa: BLE001 - any host API oddity: fall back
        d = math.nan
    return d if 0.0 <= d < 2.0 else frames / rate


def listen_microphone(args, det, out: Printer, sd) -> int:
    import numpy as np
    device = pick_device(sd, args.device)
    blocks: queue.Queue = queue.Queue()
    overflows = [0]
    rate_box = [SAMPLE_RATE]

    def callback(indata, frames, time_info, status):
        if status.input_overflow:
            overflows[0] += 1
        # Unix time at which this block's first sample was captured
        t_capture = time.time() - capture_delay(time_info, frames, rate_box[0])
        blocks.put((indata[:, 0].copy(), t_capture))

    stream, rate = open_stream(sd, device, callback)
    rate_box[0] = rate
    name = sd.query_devices(stream.device, "input")["name"]
    show_status = sys.stderr.isatty()
    heard = 0
    level = 0.0
    first = None
    t_start, cpu_start = time.monotonic(), time.process_time()
    with stream:
        try:
            try:                      # "listening" only once audio flows
                first = blocks.get(timeout=FIRST_BLOCK_WAIT_S)
            except queue.Empty:
                print(f"kws: warning: no audio from '{name}' after {FIRST_BLOCK_WAIT_S:g} s",
                      file=sys.stderr, flush=True)
            t_start = time.monotonic()
            cpu_start, wall_last, cpu_last = time.process_time(), t_start, time.process_time()
            print(f"kws: listening on '{name}' at {rate} Hz, operating point "
                  f"{det.operating_point.name}{confirmed_by(det)}, keywords {','.join(det.keywords)} (Ctrl-C to stop)",
                  file=sys.stderr, flush=True)
            while True:
                if args.duration is not None and time.monotonic() - t_start >= args.duration:
                    break
                if first is not None:
                    (block, t_capture), first = first, None
                else:
                    try:
                        block, t_capture = blocks.get(timeout=0.1)
                    except queue.Empty:
                        continue
                start_s = heard / rate            # stream time of this block's first sample
                heard += len(block)
                for d in det.feed(block, sample_rate=rate):
                    out.detection(d, wall_time=round(t_capture + (d.time_s - start_s), 3))
                if show_status:
                    level = max(level * 0.9, float(np.abs(block).max(initial=0.0)))
                    now = time.monotonic()
                    if now - wall_last >= 0.25:
                        cpu = 100 * (time.process_time() - cpu_last) / (now - wall_last)
                        wall_last, cpu_last = now, time.process_time()
                        meter = "#" * int(20 * min(1.0, level * 4))
                        out.status(f"[{meter:<20}] {heard / rate:7.1f}s  CPU {cpu:4.1f}%  "
                                   f"detections {out.count}  overflows {overflows[0]}")
        except (KeyboardInterrupt, Stop):
            pass
    out.clear_status()
    secs = heard / rate
    cpu = 100 * (time.process_time() - cpu_start) / max(1e-9, time.monotonic() - t_start)
    print(f"kws: listened {secs:.1f} s: {out.count} detection(s), {overflows[0]} input overflow(s), "
          f"CPU {cpu:.1f}% of a core", file=sys.stderr, flush=True)
    return 0


def cmd_listen(args) -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started with SIGINT ignored
    try:
        return _listen(args)
    except (KeyboardInterrupt, Stop):      # before the stream was open
        print("kws: stopped before listening started", file=sys.stderr)
        return 0


def _listen(args) -> int:
    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be positive seconds")
    # microphone: PortAudio first, while the process is small (peak RSS; see the module doc)
    sd = None if args.file else import_sounddevice()
    det = make_detector(args)
    out = Printer(args.json, {"width": det.width, "blocks": det.blocks})
    if args.file:
        return listen_files(args, det, out)
    return listen_microphone(args, det, out, sd)


def cmd_devices(args) -> int:
    sd = import_sounddevice()
    devices = input_devices(sd)
    if not devices:
        print("no audio input devices found")
        return 2
    try:
        default_in = sd.default.device[0]
    except Exception:
        default_in = None
    for d in devices:
        mark = "*" if d["index"] == default_in else " "
        print(f"{mark} {d['index']:>3}  {d['name']}  ({int(d['default_samplerate'])} Hz, "
              f"{d['max_input_channels']} ch)")
    return 0
