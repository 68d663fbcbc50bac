"""`kws bench`: kws measured side by side with what a user would pick instead, in the same run.

    kws bench [--model PATH] [--json] [--plot out.png] [--threads 1] [--accuracy eval.json]
              [--runs 200] [--quick] [--peers auto|none] [--pi]

For every operating point of the model (the shipped default, else a random model of the default
architecture: latency does not depend on the weights):
  * per-inference latency of the binary runtime (kws.fsmn.runtime.BinaryFSMN) and of the same
    network in float (kws.fsmn.floatnet: numpy; and ONNX Runtime when installed, exported with
    onnx.helper by kws.fsmn.onnx_export), timed call by call in alternation; medians of >= 200 runs
    after warm-up; the binary network's effective GMAC/s;
  * CPU time of the streaming Detector per second of audio (time.process_time);
  * the binary GEMMs of one block (pack -> up projection with threshold -> down projection with
    scale, the real shapes) against Larq Compute Engine's bconv2d on the same shapes (with and
    without its indirect bgemm kernel), interleaved round by round with LCE running in its own
    venv (benchmarks/peers/lce_runner.py);
  * openWakeWord's CPU per second of audio with its bundled models, in its own venv
    (benchmarks/peers/openwakeword_runner.py), against the kws Detector measured in the same run;
  * with --pi: the Raspberry Pi (Cortex-A53, 1.2 GHz) estimate of benchmarks/pi_estimate.py.
Ratios are reported, not only times.  The process (and the peers it starts) is pinned to
`--threads` CPUs; BLAS, ONNX Runtime and LCE get that many threads (kws itself uses one).

Peers are never kws dependencies: `bash benchmarks/peers/setup.sh` installs them into
~/.cache/kws-peers (KWS_PEERS_DIR); absent ones are reported as not installed with that command.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]          # the source checkout (benchmarks/ lives there)
PEERS_SRC = ROOT / "benchmarks" / "peers"
SETUP_CMD = "bash benchmarks/peers/setup.sh"
TARGETS = {"ort": 10.0, "lce": 1.5, "openwakeword": 10.0}   # kws bench's first issue (ratios)
# issue #18 (x86 speed): ONNX Runtime / kws per operating point, openWakeWord / kws Detector
TARGETS_18 = {"ort": {"1x8": 8.0, "0.5x4": 6.0}, "openwakeword": 15.0}
OWW_MODELS = "hey_jarvis"                           # one bundled wake word: the usual set-up


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="measure every operating point against float and peer systems",
        description="Latency per inference and CPU per second of audio for every operating point, "
                    "beside the same network in float (numpy, ONNX Runtime) and peer systems "
                    "(Larq Compute Engine, openWakeWord) when installed; ratios in the same run.")
    p.add_argument("--model", default=None, help="a .kws model (default: the shipped model, else a "
                                                 "random model of the default architecture)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="PNG", help="write latency vs accuracy (or vs MACs) with the peers")
    p.add_argument("--threads", type=int, default=1, help="CPUs to pin to and threads for BLAS, "
                                                          "ONNX Runtime and LCE (default 1)")
    p.add_argument("--accuracy", metavar="JSON", help="`kws eval --json` output of the same model "
                                                      "(accuracy per operating point, for the plot/table)")
    p.add_argument("--runs", type=int, default=None, help="timed runs per measurement (default 200, "
                                                          "--quick 20)")
    p.add_argument("--points", default=None, help="comma-separated operating points (default: all)")
    p.add_argument("--seconds", type=float, default=None,
                   help="audio seconds for the CPU-per-second measurements (default 30, --quick 2)")
    p.add_argument("--quick", action="store_true", help="few runs, two operating points, no peer "
                                                        "venvs unless --peers auto (a smoke test)")
    p.add_argument("--peers", choices=("auto", "none"), default=None,
                   help="run the installed peers (default: auto, none with --quick)")
    p.add_argument("--pi", action="store_true", help="also count aarch64 instructions under qemu "
                                                     "for the Raspberry Pi estimate (minutes)")
    p.set_defaults(func=cmd_bench)


# ----------------------------------------------------------------------------- environment
def cpu_model() -> str:
    """`lscpu`'s model name with its family and model (what every figure is printed beside): the
    name alone is ambiguous ("AMD EPYC" is Zen 3 at family 25 model 1 and Zen 4 at model 17)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    f = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in out.splitlines() if ":" in ln)}
    if "Model name" not in f:
        return platform.processor() or platform.machine()
    if "CPU family" not in f or "Model" not in f:
        return f["Model name"]
    return f"{f['Model name']} (family {f['CPU family']}, model {f['Model']})"


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"threads={i.get('num_threads')}" for i in infos) or "none found"


def environment() -> dict:
    import numpy as np
    from kws import _kernels
    return {"cpu": cpu_model(), "machine": platform.machine(), "kernel_isa": _kernels.isa(),
            "kernels_available": _kernels.available(), "blas": blas_info(),
            "python": platform.python_version(), "numpy": np.__version__}


def pin(threads: int) -> list[int]:
    """Pin this process (and the children it starts) to `threads` CPUs; returns them."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    chosen = cpus[-threads:] if threads < len(cpus) else cpus
    os.sched_setaffinity(0, chosen)
    return chosen


# ----------------------------------------------------------------------------- timing
def interleaved_times(fns, runs: int, warmup: int = 20) -> list:
    """Wall seconds of each fn over `runs` rounds, calls alternating fn0, fn1, ... within a
    round so that every fn sees the same load on a shared machine (ratios stay fair)."""
    import numpy as np
    for _ in range(warmup):
        for f in fns:
            f()
    times = np.empty((len(fns), runs))
    clock = time.perf_counter
    for i in range(runs):
        for j, f in enumerate(fns):
            t0 = clock()
            f()
            times[j, i] = clock() - t0
    return list(times)


def median_ms(fn, runs: int = 200, warmup: int = 20) -> float:
    """Median wall time of fn() in milliseconds over `runs` calls after `warmup` calls."""
    import numpy as np
    return float(np.median(interleaved_times([fn], runs, warmup)[0]) * 1e3)


def detector_cpu(model, op, seconds: float = 20.0, chunk: int = 1600) -> float:
    """CPU seconds the Detector spends per second of audio at `op` (default hop), fed `chunk`-sample
    blocks of seeded noise; includes the frontend. x100 = % of one core."""
    return detector_run(model, op, noise_audio(seconds))[0]


def noise_audio(seconds: float, sr: int = 16000):
    """Seeded noise at -26 dBFS: keyword-free audio."""
    import numpy as np
    return (0.05 * np.random.default_rng(0).standard_normal(int(seconds * sr))).astype(np.float32)


def keyword_audio(seconds: float, sr: int = 16000):
    """Dense keyword audio: examples/audio/keywords.flac (5 keywords in 10.8 s) repeated to
    `seconds`; None outside a source checkout."""
    import numpy as np
    path = ROOT / "examples" / "audio" / "keywords.flac"
    if not path.exists():
        return None
    import soundfile as sf
    x, rate = sf.read(path, dtype="float32")
    if rate != sr:
        raise ValueError(f"{path}: expected {sr} Hz, got {rate}")
    return np.tile(x, -(-int(seconds * sr) // len(x)))[:int(seconds * sr)]


def detector_run(model, op, audio, chunk: int = 1600, confirm=None) -> tuple[float, float]:
    """(CPU seconds per second of audio, confirm-point inferences per hop) of a Detector at `op`
    (default hop and threshold; `confirm`: a cascade) fed `audio` in `chunk`-sample blocks;
    includes the frontend."""
    from kws.detector import Detector
    det = Detector(model, width=op.width, blocks=len(op.blocks), confirm=confirm)
    sr = det.sample_rate
    det.feed(audio[:sr])                       # warm-up: first window, plans
    if confirm is not None:                    # and the confirm point's plan
        det.net.scores(det._window, det.confirm)
    det.reset()
    t0 = time.process_time()
    for i in range(0, len(audio), chunk):
        det.feed(audio[i:i + chunk])
    return (time.process_time() - t0) / (len(audio) / sr), det.confirm_inferences / max(1, det.inferences)


def bench_cascade(model, ops, seconds, say, rounds: int = 3) -> dict:
    """CPU per second of audio of every cascade (each point of `ops` but the widest listens, the
    widest confirms) beside its listening point alone, on keyword-free noise and on dense keyword
    audio; the two alternate round by round (medians), so the ratio is a same-run ratio."""
    import numpy as np
    confirm = model.arch.operating_points[0]
    audios = {"keyword_free": noise_audio(seconds), "dense_keywords": keyword_audio(seconds)}
    rows = []
    for op in ops:
        if op == confirm:
            continue
        say(f"cascade {op.name}>{confirm.name}: Detector CPU per second of audio ({seconds:g} s)")
        row = {"point": f"{op.name}>{confirm.name}", "listen": op.name, "confirm": confirm.name}
        for key, audio in audios.items():
            if audio is None:
                row[f"cpu_per_audio_s_{key}"] = row[f"listening_point_cpu_{key}"] = None
                row[f"cpu_ratio_{key}"] = row[f"confirm_per_hop_{key}"] = None
                continue
            got = [(detector_run(model, op, audio)[0], detector_run(model, op, audio, confirm=confirm))
                   for _ in range(rounds)]
            alone = float(np.median([a for a, _ in got]))
            both = float(np.median([c for _, (c, _) in got]))
            row[f"cpu_per_audio_s_{key}"], row[f"listening_point_cpu_{key}"] = both, alone
            row[f"cpu_ratio_{key}"] = both / alone
            row[f"confirm_per_hop_{key}"] = got[0][1][1]
        rows.append(row)
    return {"confirm": confirm.name, "keyword_free_audio": "seeded noise at -26 dBFS",
            "dense_keywords_audio": ("examples/audio/keywords.flac repeated (5 keywords per 10.8 s)"
                                     if audios["dense_keywords"] is not None else
                                     "n/a (examples/audio/keywords.flac is in the source checkout)"),
            "rows": rows}


def pi_cascade(pi_r: dict, cascade: dict) -> list[dict]:
    """The Pi estimate of each cascade from the instruction counts and the measured confirm rate."""
    script = ROOT / "benchmarks" / "pi_estimate.py"
    if pi_r.get("status") != "ok" or not script.exists():
        return []
    sys.path.insert(0, str(script.parent))
    try:
        import pi_estimate
    finally:
        sys.path.remove(str(script.parent))
    counts = {p["point"]: p for p in pi_r["points"]}
    out = []
    for row in cascade["rows"]:
        if row["listen"] in counts and row["confirm"] in counts:
            for key in ("keyword_free", "dense_keywords"):
                if row[f"confirm_per_hop_{key}"] is not None:
                    out.append({"point": row["point"], "audio": key, **pi_estimate.cascade_estimate(
                        counts[row["listen"]], counts[row["confirm"]], row[f"confirm_per_hop_{key}"])})
    return out


# ----------------------------------------------------------------------------- the model
def load_bench_model(path):
    """(model, description, is_random): --model, else the shipped default, else a random model of
    the default architecture."""
    from kws.detector import DEFAULT_MODEL
    from kws.fsmn.model import load_model, random_model
    if path:
        return load_model(path), str(path), False
    if DEFAULT_MODEL.exists():
        return load_model(DEFAULT_MODEL), f"default ({DEFAULT_MODEL.name})", False
    labels = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]
    return random_model(labels=labels), "random weights, default architecture (no default model installed)", True


def load_accuracy(path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"--accuracy {path}: cannot read a JSON object ({e})") from None
    acc = data.get("accuracy") if isinstance(data, dict) else None
    if not isinstance(acc, dict) or not all(isinstance(v, (int, float)) for v in acc.values()):
        raise ValueError(f"--accuracy {path}: expected `kws eval --json` output with "
                         f"\"accuracy\": {{\"1x8\": 0.93, ...}}")
    out = {"accuracy": {k: float(v) for k, v in acc.items()}}
    if isinstance(data.get("teacher_accuracy"), (int, float)):
        out["teacher_accuracy"] = float(data["teacher_accuracy"])
    return out


# ----------------------------------------------------------------------------- peers
def peers_dir() -> Path:
    return Path(os.environ.get("KWS_PEERS_DIR") or Path.home() / ".cache" / "kws-peers")


def peer_python(name: str):
    """The peer venv's python if benchmarks/peers/setup.sh finished installing it, else None."""
    venv = peers_dir() / name
    py = venv / "bin" / "python"
    return py if py.exists() and (venv / ".kws-peer-reqs").exists() else None


def peer_status(name: str, runner: str):
    """(python, runner path, None) when runnable, else (None, None, status text)."""
    script = PEERS_SRC / runner
    if not script.exists():
        return None, None, (f"runner not found ({script}): run kws bench from a kws source checkout, "
                            f"after `{SETUP_CMD} {name}`")
    py = peer_python(name)
    if py is None:
        return None, None, f"not installed: run `{SETUP_CMD} {name}`"
    return py, script, None


def _peer_env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    return env


def _tail(path, n=3) -> str:
    try:
        lines = [l for l in Path(path).read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-400:]


class LcePeer:
    """Larq Compute Engine runner in its venv, answering timing requests over a pipe."""

    def __init__(self, py, script, pairs, threads: int, timeout: float = 600):
        self.err = tempfile.NamedTemporaryFile("w+", prefix="kws-lce-", suffix=".log", delete=False)
        spec = ",".join(f"{m}:{b}:{h}" for m, b, h in pairs)
        self.proc = subprocess.Popen([str(py), str(script), "--pairs", spec, "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, env=_peer_env(threads), cwd=str(script.parent))
        self.info = self._read(timeout)
        if not self.info.get("ready"):
            raise RuntimeError(f"LCE runner did not start: {self.info}")

    def _read(self, timeout: float = 300) -> dict:
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            why = _tail(self.err.name)
            self.close()
            raise RuntimeError(f"LCE runner exited or hung: {why}")
        return json.loads(line)

    def times(self, pair: int, indirect: bool, runs: int):
        import numpy as np
        self.proc.stdin.write(json.dumps({"pair": pair, "indirect": indirect, "runs": runs}) + "\n")
        self.proc.stdin.flush()
        return np.asarray(self._read()["times_s"])

    def close(self) -> None:
        """Stop the runner and drop its log (idempotent)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if not self.err.closed:
            self.err.close()
            os.unlink(self.err.name)


def run_json(cmd, threads: int, timeout: float = 900) -> dict:
    """Run a peer runner to completion; its last stdout line is JSON."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       env=_peer_env(threads), cwd=str(Path(cmd[1]).parent))
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode != 0 or not lines:
        tail = " | ".join([l for l in r.stderr.splitlines() if l.strip()][-3:])[-400:]
        raise RuntimeError(f"exit {r.returncode}: {tail}")
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- measurements
def bench_points(model, ops, runs, warmup, threads, seconds, say) -> tuple[list[dict], dict]:
    """Binary runtime vs float numpy (vs float ONNX Runtime) per operating point, interleaved."""
    import numpy as np
    from threadpoolctl import threadpool_limits
    from kws.fsmn.floatnet import FloatFSMN
    from kws.fsmn.runtime import BinaryFSMN
    a = model.arch
    net = BinaryFSMN(model)
    x = (np.random.default_rng(1).standard_normal((a.n_frames, a.n_features)) * 10 - 40).astype(np.float32)
    try:
        import onnx  # noqa: F401  (the export needs it)
        import onnxruntime as ort
        from kws.fsmn.onnx_export import ort_session
        ort_info = {"status": "ok", "version": ort.__version__, "threads": threads}
    except ImportError as e:
        ort_session, ort_info = None, {"status": f"not installed ({e.name}): pip install 'kws[bench]'"}
    rows = []
    for op in ops:
        say(f"{op.name}: binary vs float, {runs} runs each")
        flt = FloatFSMN(model, op)
        fns = [lambda: net.logits(x, op), lambda: flt.logits(x)]
        if ort_session is not None:
            sess = ort_session(model, op, threads)
            feed = {"features": x}
            fns.append(lambda: sess.run(None, feed))
        with threadpool_limits(limits=threads, user_api="blas"):
            t = interleaved_times(fns, runs, warmup)
        med = [float(np.median(v) * 1e3) for v in t]
        c = a.costs(op)
        row = {"point": op.name, "width": op.width, "blocks": len(op.blocks),
               "binary_ms": med[0], "float_numpy_ms": med[1],
               "float_ort_ms": med[2] if len(med) > 2 else None,
               "numpy_over_binary": med[1] / med[0],
               "ort_over_binary": med[2] / med[0] if len(med) > 2 else None,
               "binary_macs": c["binary_macs"], "float_macs": c["float_macs"],
               "binary_gmacs": c["binary_macs"] / med[0] / 1e6}
        say(f"{op.name}: Detector CPU per second of audio ({seconds:g} s)")
        row["detector_cpu_per_audio_s"] = detector_cpu(model, op, seconds)
        rows.append(row)
    return rows, ort_info


def block_pairs(arch) -> list[tuple[float, int, int, int]]:
    """(width, M frames, B, H) of one block's pointwise pair at every width."""
    return [(w, arch.stem_frames, *arch.channels(w)) for w in sorted(arch.widths, reverse=True)]


def bench_gemm(arch, runs, warmup, threads, peers_on, say) -> tuple[list[dict], dict]:
    """kws pack -> bgemm_threshold -> bgemm_scale per width, against LCE (indirect / direct bgemm)
    on the same shapes, interleaved in rounds (LCE answers from its own venv)."""
    import numpy as np
    from kws import _kernels as K
    pairs = block_pairs(arch)
    rng = np.random.default_rng(2)
    kws_fns = []
    for _, m, b, h in pairs:
        x = rng.standard_normal((m, b)).astype(np.float32)
        up, down = K.pack(rng.standard_normal((h, b))), K.pack(rng.standard_normal((b, h)))
        th = rng.integers(-8, 9, h).astype(np.int32)
        fl = (rng.random(h) < 0.2).astype(np.uint8)
        sc, sh = rng.uniform(0.5, 1.5, b).astype(np.float32), rng.normal(0, 0.1, b).astype(np.float32)
        z, y = np.empty((m, K.words(h)), np.uint64), np.empty((m, b), np.float32)

        def fn(x=x, up=up, down=down, th=th, fl=fl, sc=sc, sh=sh, z=z, y=y, b=b, h=h):
            K.bgemm_threshold(K.pack(x), up, b, th, fl, out=z)
            K.bgemm_scale(z, down, h, sc, sh, out=y)
        kws_fns.append(fn)

    lce, info = None, {"status": "skipped (--peers none)"}
    if peers_on:
        py, script, status = peer_status("lce", "lce_runner.py")
        if status:
            info = {"status": status}
        else:
            say("LCE: building and converting the block pairs in its venv")
            try:
                lce = LcePeer(py, script, [(m, b, h) for _, m, b, h in pairs], threads)
                info = {"status": "ok", **{k: lce.info[k] for k in ("tensorflow", "larq", "lce", "threads")},
                        "converted": lce.info["pairs"]}
            except (RuntimeError, OSError, json.JSONDecodeError) as e:
                info = {"status": f"failed: {e}"}
    rounds = max(1, runs // 50)
    per = -(-runs // rounds)
    rows = []
    try:
        for i, (w, m, b, h) in enumerate(pairs):
            say(f"binary GEMM pair {m}x{b}->{h}->{b}: kws" + (" vs LCE, interleaved" if lce else ""))
            for _ in range(warmup):
                kws_fns[i]()
            got = {"kws": [], "lce_indirect": [], "lce_direct": []}
            for _ in range(rounds):
                got["kws"].append(interleaved_times([kws_fns[i]], per, warmup=0)[0])
                if lce is not None:
                    got["lce_indirect"].append(lce.times(i, True, per))
                    got["lce_direct"].append(lce.times(i, False, per))
            macs = 2 * m * b * h
            row = {"width": w, "shape": f"{m}x{b}->{h}->{b}", "m": m, "b": b, "h": h, "binary_macs": macs}
            for k, v in got.items():
                if v:
                    us = float(np.median(np.concatenate(v)) * 1e6)
                    row[f"{k}_us"], row[f"{k}_gmacs"] = us, macs / us / 1e3
                else:
                    row[f"{k}_us"] = row[f"{k}_gmacs"] = None
            if lce is not None:
                row["kws_over_lce_indirect"] = row["kws_gmacs"] / row["lce_indirect_gmacs"]
                row["kws_over_lce_direct"] = row["kws_gmacs"] / row["lce_direct_gmacs"]
            rows.append(row)
    except (RuntimeError, OSError, json.JSONDecodeError) as e:
        info = {"status": f"failed during timing: {e}"}
        for row in rows:
            row.pop("kws_over_lce_indirect", None)
    finally:
        if lce is not None:
            lce.close()
    return rows, info


def bench_openwakeword(model, op, threads, seconds, peers_on, say) -> dict:
    """openWakeWord's CPU per second of audio (tflite and onnx back-ends, bundled models) and the
    kws Detector's at `op`, measured right before and after it."""
    if not peers_on:
        return {"status": "skipped (--peers none)"}
    py, script, status = peer_status("openwakeword", "openwakeword_runner.py")
    if status:
        return {"status": status}
    before = detector_cpu(model, op, seconds)
    out = {"status": "ok", "models": OWW_MODELS.split(","), "runs": []}
    for fw in ("tflite", "onnx"):
        say(f"openWakeWord ({fw}, {OWW_MODELS}): {seconds:g} s of audio in 80 ms chunks")
        try:
            out["runs"].append(run_json([py, script, "--seconds", seconds, "--framework", fw,
                                         "--models", OWW_MODELS, "--threads", threads], threads))
        except (RuntimeError, subprocess.SubprocessError, json.JSONDecodeError) as e:
            out["runs"].append({"framework": fw, "status": f"failed: {e}"})
    after = detector_cpu(model, op, seconds)
    out["kws_point"] = op.name
    out["kws_detector_cpu_per_audio_s"] = (before + after) / 2
    for r in out["runs"]:
        if "cpu_per_audio_s" in r:
            r["over_kws"] = r["cpu_per_audio_s"] / out["kws_detector_cpu_per_audio_s"]
    if not any("cpu_per_audio_s" in r for r in out["runs"]):
        out["status"] = "failed: " + "; ".join(r.get("status", "") for r in out["runs"])
    return out


def run_pi(model, ops, say) -> dict:
    script = ROOT / "benchmarks" / "pi_estimate.py"
    if not script.exists():
        return {"status": f"not available: {script} is part of the kws source checkout"}
    sys.path.insert(0, str(script.parent))
    try:
        import pi_estimate
        r = pi_estimate.pi_estimate(model.arch, [op.name for op in ops], progress=say, model=model)
    except (RuntimeError, ValueError, OSError) as e:
        return {"status": f"failed: {e}"}
    finally:
        sys.path.remove(str(script.parent))
    return {"status": "ok", **r}


def targets(points, gemm, oww) -> list[dict]:
    out = []
    full = points[0] if points else None
    if full and full.get("ort_over_binary"):
        v = full["ort_over_binary"]
        out.append({"name": f"kws {full['point']} vs the same network in float on ONNX Runtime",
                    "ratio": v, "target": TARGETS["ort"], "met": v >= TARGETS["ort"]})
    lce = [g["kws_over_lce_indirect"] for g in gemm if g.get("kws_over_lce_indirect")]
    if lce:
        v = lce[0]
        out.append({"name": f"kws binary GEMM throughput vs LCE indirect bgemm ({gemm[0]['shape']})",
                    "ratio": v, "target": TARGETS["lce"], "met": v >= TARGETS["lce"]})
    runs = [r for r in oww.get("runs", []) if "over_kws" in r]
    if runs:
        v = min(r["over_kws"] for r in runs)
        name = (f"openWakeWord CPU per second of audio vs kws Detector {oww['kws_point']} "
                f"(the cheaper openWakeWord back-end)")
        for prefix, t in (("", TARGETS["openwakeword"]), ("issue #18: ", TARGETS_18["openwakeword"])):
            out.append({"name": prefix + name, "ratio": v, "target": t, "met": v >= t})
    for p in points:
        t = TARGETS_18["ort"].get(p["point"])
        if t and p.get("ort_over_binary"):
            v = p["ort_over_binary"]
            out.append({"name": f"issue #18: kws {p['point']} vs the same network in float on ONNX Runtime",
                        "ratio": v, "target": t, "met": v >= t})
    return out


# ----------------------------------------------------------------------------- output
def _f(v, fmt) -> str:
    return "-" if v is None else format(v, fmt)


def _x(v, fmt=".1f") -> str:
    return "-" if v is None else format(v, fmt) + "x"


def _pc(v):
    return None if v is None else 100 * v


def print_report(r: dict) -> None:
    e = r["environment"]
    print(f"kws bench | CPU: {e['cpu']} (lscpu) | kernel {e['kernel_isa']} | {e['threads']} thread(s), "
          f"pinned to CPU {','.join(map(str, e['pinned_cpus'])) or '?'} | {e['date']} | load {e['loadavg']}")
    print(f"model: {r['model']['name']} | median of {r['settings']['runs']} runs after "
          f"{r['settings']['warmup']} warm-up, calls interleaved | BLAS: {e['blas']}")
    acc = r.get("accuracy") or {}
    print("\nPer inference (one 1 s window); 'x' = how many times kws is faster; CPU = Detector per "
          "second of audio (% of one core)")
    print(f"{'point':>7} {'kws ms':>8} {'numpy ms':>9} {'ORT ms':>8} {'numpy/kws':>9} {'ORT/kws':>8} "
          f"{'GMAC/s':>7} {'CPU %':>6} {'accuracy':>8}")
    for p in r["points"]:
        a = acc.get("accuracy", {}).get(p["point"])
        print(f"{p['point']:>7} {p['binary_ms']:>8.3f} {p['float_numpy_ms']:>9.3f} {_f(p['float_ort_ms'], '8.3f'):>8} "
              f"{_x(p['numpy_over_binary']):>9} {_x(p['ort_over_binary']):>8} "
              f"{p['binary_gmacs']:>7.0f} {100 * p['detector_cpu_per_audio_s']:>6.2f} "
              f"{'n/a' if a is None else f'{100 * a:.2f}%':>8}")
    c = r["cascade"]
    print(f"\nCascade: each point listens, {c['confirm']} confirms (kws.Detector(confirm=...)); "
          f"Detector CPU per second of audio, % of one core; x = vs the listening point alone, same run")
    print(f"  keyword-free: {c['keyword_free_audio']}; dense keywords: {c['dense_keywords_audio']}")
    print(f"{'cascade':>12} {'free %':>7} {'alone %':>7} {'x':>6} {'dense %':>7} {'alone %':>7} {'x':>6} "
          f"{'confirms/hop free, dense':>25}")
    for x in c["rows"]:
        print(f"{x['point']:>12} {_f(_pc(x['cpu_per_audio_s_keyword_free']), '7.3f'):>7} "
              f"{_f(_pc(x['listening_point_cpu_keyword_free']), '7.3f'):>7} {_x(x['cpu_ratio_keyword_free'], '.2f'):>6} "
              f"{_f(_pc(x['cpu_per_audio_s_dense_keywords']), '7.3f'):>7} "
              f"{_f(_pc(x['listening_point_cpu_dense_keywords']), '7.3f'):>7} {_x(x['cpu_ratio_dense_keywords'], '.2f'):>6} "
              f"{_f(x['confirm_per_hop_keyword_free'], '.3f'):>12}, {_f(x['confirm_per_hop_dense_keywords'], '.3f')}")
    for x in c.get("pi_estimate") or []:
        print(f"  Pi estimate {x['point']} ({x['audio']}): {x['ms_per_audio_s']:.2f} ms per second of audio "
              f"({x['ms_per_audio_s_band'][0]:.2f}-{x['ms_per_audio_s_band'][1]:.2f})")
    print(f"ONNX Runtime: {r['peers']['onnxruntime']['status']}"
          + (f" ({r['peers']['onnxruntime']['version']})" if r['peers']['onnxruntime'].get('version') else ""))
    lce = r["peers"]["lce"]
    print("\nBinary GEMMs of one block (pack, up + threshold, down + scale), median us and GMAC/s; "
          f"LCE: {lce['status']}" + (f" (larq-compute-engine {lce['lce']}, tensorflow {lce['tensorflow']})"
                                      if lce.get("lce") else ""))
    print(f"{'width':>5} {'shape':>18} {'kws us':>8} {'GMAC/s':>7} {'LCE ind us':>10} {'GMAC/s':>7} "
          f"{'LCE dir us':>10} {'GMAC/s':>7} {'kws/ind':>7} {'kws/dir':>7}")
    for g in r["gemm"]:
        print(f"{g['width']:>5g} {g['shape']:>18} {g['kws_us']:>8.1f} {g['kws_gmacs']:>7.0f} "
              f"{_f(g['lce_indirect_us'], '10.1f'):>10} {_f(g['lce_indirect_gmacs'], '7.0f'):>7} "
              f"{_f(g['lce_direct_us'], '10.1f'):>10} {_f(g['lce_direct_gmacs'], '7.0f'):>7} "
              f"{_x(g.get('kws_over_lce_indirect'), '.2f'):>7} {_x(g.get('kws_over_lce_direct'), '.2f'):>7}")
    oww = r["peers"]["openwakeword"]
    print(f"\nCPU per second of audio, streaming; openWakeWord: {oww['status']}")
    if oww.get("runs"):
        print(f"  kws Detector {oww['kws_point']} (hop 200 ms)       {100 * oww['kws_detector_cpu_per_audio_s']:6.2f} % of a core")
        for x in oww["runs"]:
            if "cpu_per_audio_s" in x:
                print(f"  openWakeWord {x['openwakeword']} {x['framework']:<6} ({','.join(x['models'])}) "
                      f"{100 * x['cpu_per_audio_s']:6.2f} %   = {x['over_kws']:.1f}x kws")
            else:
                print(f"  openWakeWord {x['framework']}: {x['status']}")
    pi = r.get("pi_estimate") or {}
    print(f"\nRaspberry Pi estimate: {pi.get('status')}")
    if pi.get("status") == "ok":
        print(f"  {pi['target']}, IPC {pi['ipc']} assumed (band {pi['ipc_band'][0]}-{pi['ipc_band'][1]}), "
              f"instructions counted on {pi['counted_on']}")
        for x in pi["points"]:
            print(f"  {x['point']:>7} {x['instructions']:>10,} instructions -> {x['latency_ms']:.2f} ms "
                  f"({x['latency_ms_band'][0]:.2f}-{x['latency_ms_band'][1]:.2f})")
        if pi.get("frontend"):
            print(f"  frontend {pi['frontend']['instructions_per_frame']:,} instructions per frame -> "
                  f"{pi['frontend']['ms_per_audio_s']:.2f} ms per second of audio")
        for d in pi.get("detector", []):
            print(f"  Detector {d['point']:>7}: {d['ms_per_audio_s']:.2f} ms per second of audio "
                  f"({d['percent_of_one_core']:.2f} % of a core)")
        for c in pi["paper_check"]:
            print(f"  {c['blocks']} vs 8 blocks: estimated {c['estimated_speedup_vs_8_blocks']}x faster, "
                  f"BiFSMN paper (Pi 3B+) {c['paper_speedup_vs_8_blocks']}x")
    if r["targets"]:
        print("\nTargets:")
        for t in r["targets"]:
            print(f"  {t['name']}: {t['ratio']:.2f}x (target >= {t['target']:g}x) "
                  f"{'met' if t['met'] else 'NOT met'}")
    if r["notices"]:
        print()
        for n in r["notices"]:
            print(f"note: {n}")


def plot(r: dict, path) -> None:
    """PNG: latency vs accuracy (or vs binary MACs) per operating point with the float network and
    the peers on the same axes; CPU per second of audio; GEMM throughput against LCE."""
    import numpy as np
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker  # noqa: F401
    except ModuleNotFoundError:
        raise ValueError("--plot needs matplotlib: pip install 'kws[bench]'") from None
    from kws.fileio import atomic_path
    pts = r["points"]
    acc = (r.get("accuracy") or {}).get("accuracy") or {}
    have_acc = all(p["point"] in acc for p in pts)
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.8), dpi=100,
                                       gridspec_kw={"width_ratios": [1.5, 1, 1]})
    yv = (lambda p: 100 * acc[p["point"]]) if have_acc else (lambda p: p["binary_macs"] / 1e6)
    widths = sorted({p["width"] for p in pts}, reverse=True)
    for k, w in enumerate(widths):
        ps = [p for p in pts if p["width"] == w]
        ax.plot([p["binary_ms"] for p in ps], [yv(p) for p in ps], "o-", color=f"C{k}",
                label=f"kws binary, width {w:g}")
        for p in ps:
            ax.annotate(p["point"], (p["binary_ms"], yv(p)), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if not have_acc:           # the float network has the same shape: same MACs
            ax.plot([p["float_numpy_ms"] for p in ps], [yv(p) for p in ps], "s--", color=f"C{k}",
                    mfc="none", alpha=0.7, label=f"same network, float numpy, width {w:g}")
            if all(p["float_ort_ms"] for p in ps):
                ax.plot([p["float_ort_ms"] for p in ps], [yv(p) for p in ps], "^:", color=f"C{k}",
                        mfc="none", alpha=0.7, label=f"same network, float ONNX Runtime, width {w:g}")
    full = pts[0]
    if have_acc:                   # float network: the teacher's accuracy, when evaluated
        ta = (r.get("accuracy") or {}).get("teacher_accuracy")
        for key, lab, mk in (("float_numpy_ms", "float numpy", "s"), ("float_ort_ms", "float ONNX Runtime", "^")):
            if full.get(key):
                if ta is not None:
                    ax.plot(full[key], 100 * ta, mk, color="k", mfc="none", label=f"{full['point']} in {lab} (teacher accuracy)")
                else:
                    ax.axvline(full[key], color="k", linestyle="--" if mk == "s" else ":", linewidth=0.8,
                               label=f"{full['point']} in {lab} ({full[key]:.2f} ms)")
    oww = [x for x in r["peers"]["openwakeword"].get("runs", []) if "chunk_ms_median" in x]
    for x in oww:
        ax.axvline(x["chunk_ms_median"], color="C3", linestyle="-." if x["framework"] == "tflite" else ":",
                   linewidth=1, label=f"openWakeWord {x['framework']}: one 80 ms step ({x['chunk_ms_median']:.2f} ms)")
    ax.set_xscale("log")
    if not have_acc:
        ax.set_yscale("log")
    ax.set_xlabel(f"latency per inference, ms (log; {r['environment']['threads']} thread(s))")
    ax.set_ylabel("accuracy, %" if have_acc else "binary MACs per inference, millions (log)")
    ax.set_title("latency vs " + ("accuracy" if have_acc else "cost (no accuracy JSON given)"), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, loc="best")
    # CPU per second of audio
    names = [f"kws {p['point']}" for p in pts]
    vals = [100 * p["detector_cpu_per_audio_s"] for p in pts]
    colours = ["C0"] * len(pts)
    for x in oww:
        names.append(f"openWakeWord {x['framework']}")
        vals.append(100 * x["cpu_per_audio_s"])
        colours.append("C3")
    ax2.barh(names, vals, color=colours)
    for i, v in enumerate(vals):
        ax2.annotate(f"{v:.2f} %", (v, i), textcoords="offset points", xytext=(3, -3), fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlim(min(vals) / 1.5, max(vals) * 4)
    ax2.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax2.invert_yaxis()
    ax2.set_xlabel("% of one core per second of audio (log)")
    ax2.set_title("streaming CPU: kws Detector (hop 200 ms)\nvs openWakeWord (80 ms steps)", fontsize=10)
    ax2.tick_params(axis="y", labelsize=7)
    ax2.grid(True, axis="x", which="both", alpha=0.3)
    # GEMM throughput
    g = r["gemm"]
    xs = np.arange(len(g))
    bars = [("kws", "kws_gmacs", "C0")]
    if any(x.get("lce_indirect_gmacs") for x in g):
        bars += [("LCE indirect bgemm", "lce_indirect_gmacs", "C1"), ("LCE bgemm", "lce_direct_gmacs", "C2")]
    for i, (lab, key, col) in enumerate(bars):
        ax3.bar(xs + (i - (len(bars) - 1) / 2) * 0.8 / len(bars), [x.get(key) or 0 for x in g],
                0.8 / len(bars), label=lab, color=col)
    for i, (lab, key, col) in enumerate(bars):
        for j, x in enumerate(g):
            if x.get(key):
                ax3.annotate(f"{x[key]:.0f}", (j + (i - (len(bars) - 1) / 2) * 0.8 / len(bars), x[key]),
                             ha="center", textcoords="offset points", xytext=(0, 2), fontsize=6)
    ax3.set_xticks(xs, [f"w {x['width']:g}\n{x['shape']}" for x in g], fontsize=7)
    ax3.set_ylabel("binary GMAC/s (block's two GEMMs)")
    ax3.set_title("binary GEMM throughput, same shapes", fontsize=10)
    ax3.legend(fontsize=7)
    ax3.grid(True, axis="y", alpha=0.3)
    e = r["environment"]
    fig.suptitle(f"kws bench: {e['cpu']}, {e['threads']} thread(s), {e['date']}; model: {r['model']['name']}",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# ----------------------------------------------------------------------------- command
def run_bench(model_path=None, threads=1, runs=200, warmup=20, points=None, seconds=30.0,
              peers=True, pi=False, accuracy=None, quick=False, say=lambda s: None) -> dict:
    """Everything `kws bench` measures, as one JSON-ready dict."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {threads!r}")
    if runs < 1 or seconds <= 0:
        raise ValueError("--runs and --seconds must be positive")
    model, name, is_random = load_bench_model(model_path)
    ops = model.arch.operating_points
    if points:
        names = [s.strip() for s in points.split(",") if s.strip()]
        bad = [n for n in names if n not in {op.name for op in ops}]
        if bad:
            raise ValueError(f"--points {','.join(bad)}: this model has {', '.join(op.name for op in ops)}")
        ops = [op for op in ops if op.name in names]
    elif quick:
        ops = [ops[0], ops[-1]]
    notices = []
    if is_random:
        notices.append("no default model is installed (kws/models/default.kws): timing a random model "
                       "of the default architecture (latency does not depend on the weights); "
                       "accuracy n/a")
    acc = load_accuracy(accuracy) if accuracy else None
    if acc and is_random:
        notices.append("--accuracy given for a random model: accuracies belong to another model")
    pinned = pin(threads)                  # after every argument is checked
    env = environment()
    env.update(threads=threads, pinned_cpus=pinned, loadavg=" ".join(f"{v:.1f}" for v in os.getloadavg()),
               date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    pts, ort_info = bench_points(model, ops, runs, warmup, threads, seconds, say)
    cascade = bench_cascade(model, ops, seconds, say)
    gemm, lce_info = bench_gemm(model.arch, runs, warmup, threads, peers, say)
    default_op = model.arch.operating_point()
    oww = bench_openwakeword(model, default_op, threads, seconds, peers, say)
    pi_r = run_pi(model, ops, say) if pi else {
        "status": "not run (add --pi: aarch64 instruction counts under qemu, a few minutes; "
                  "needs the source checkout and ../shared/tools/arm64)"}
    cascade["pi_estimate"] = pi_cascade(pi_r, cascade)
    return {"environment": env,
            "model": {"name": name, "random": is_random, "points": [op.name for op in model.arch.operating_points]},
            "settings": {"runs": runs, "warmup": warmup, "seconds": seconds, "quick": quick, "peers": peers},
            "accuracy": acc, "points": pts, "cascade": cascade, "gemm": gemm,
            "peers": {"onnxruntime": ort_info, "lce": lce_info, "openwakeword": oww},
            "pi_estimate": pi_r, "targets": targets(pts, gemm, oww), "notices": notices}


def cmd_bench(args) -> int:
    quick = args.quick
    if args.plot:                          # fail before minutes of measuring, not after
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise ValueError("--plot needs matplotlib: pip install 'kws[bench]'") from None
    runs = args.runs if args.runs is not None else (20 if quick else 200)
    peers = (args.peers or ("none" if quick else "auto")) == "auto"
    seconds = args.seconds if args.seconds is not None else (2.0 if quick else 30.0)
    say = (lambda s: None) if args.json or not sys.stderr.isatty() else (
        lambda s: print(f"\r\033[K# {s}", end="", file=sys.stderr, flush=True))
    try:
        r = run_bench(args.model, args.threads, runs, 5 if quick else 20, args.points, seconds,
                      peers, args.pi, args.accuracy, quick, say)
    finally:
        if sys.stderr.isatty() and not args.json:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.plot:
        plot(r, args.plot)
    if args.json:
        print(json.dumps(r))
    else:
        print_report(r)
        if args.plot:
            print(f"\nplot: {args.plot}")
    return 0
