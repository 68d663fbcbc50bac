"""The whole Detector on a Raspberry Pi, Python included: aarch64 instructions per second of audio
of `kws.Detector(width, blocks).feed(...)` in 100 ms blocks (as `kws listen` feeds it), counted
under qemu-aarch64 in the arm64 root file system of scripts/test-arm64.sh (its Python 3.11,
numpy and the aarch64 build of kws._kernels).

    bash scripts/test-arm64.sh                 # once: the root file system and the aarch64 .so
    python benchmarks/pi_detector_count.py [--point 0.5x4] [--seconds 10] [--json]

Two counted runs of the same script (start Python, import kws, load the shipped model, feed a
first second), one feeding `--seconds` more seconds of noise, each after an uncounted run (so that
no run pays for compiling bytecode): the difference / seconds is the cost per
second of audio: frontend and network (the C calls benchmarks/pi_estimate.py counts alone) plus
everything around them (the interpreter, numpy calls, the Detector's bookkeeping). Slow: every
instruction of both runs is traced (about 10-20 minutes each on an x86 server core).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arm64_icount import ROOT, _run, _tools  # noqa: E402
from pi_estimate import CLOCK_HZ, IPC  # noqa: E402

ROOTFS = Path(os.environ.get("KWS_ARM64_PY", Path.home() / ".cache" / "kws-arm64-py"))
FEED = """
import sys, numpy as np, kws
seconds, width, blocks = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
det = kws.Detector(width=width, blocks=blocks)
x = (0.05 * np.random.default_rng(0).standard_normal(int((seconds + 1) * 16000))).astype(np.float32)
det.feed(x[:16000])                     # the first window and the plans: in both runs
for i in range(16000, len(x), 1600):    # 100 ms blocks, as kws listen reads the microphone
    det.feed(x[i:i + 1600])
"""


def count(point: str, seconds: float, cpu: str = "cortex-a53") -> int:
    """Guest instructions of one run of FEED (whole process)."""
    width, _, blocks = point.partition("x")
    py = ROOTFS / "usr" / "bin" / "python3"
    if not py.exists():
        raise RuntimeError(f"no arm64 root file system at {ROOTFS}: run bash scripts/test-arm64.sh first")
    with tempfile.TemporaryDirectory(prefix="kws-pidet-") as tmp:
        script, out = Path(tmp) / "feed.py", Path(tmp) / "count"
        script.write_text(FEED)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ARM64_CPU": cpu}
        cmd = [_tools() / "py.sh", ROOTFS, script, seconds, width, blocks]
        _run(cmd, env=env)      # uncounted: compiles and caches the bytecode of changed modules
        _run(cmd, env={**env, "ARM64_ICOUNT": f"-o {out}"})
        return int(out.read_text().split()[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--point", default="0.5x4")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.seconds <= 600:
        print("pi_detector_count: --seconds must be in [1, 600]", file=sys.stderr)
        return 1
    try:
        base, fed = count(args.point, 0), count(args.point, args.seconds)
    except RuntimeError as e:
        print(f"pi_detector_count: {e}", file=sys.stderr)
        return 1
    per_s = (fed - base) / args.seconds
    r = {"point": args.point, "seconds": args.seconds, "instructions_base": base,
         "instructions_fed": fed, "instructions_per_audio_s": round(per_s),
         "percent_of_a53_core": round(per_s / (IPC * CLOCK_HZ) * 100, 3), "ipc": IPC, "clock_hz": CLOCK_HZ}
    print(json.dumps(r) if args.json else
          f"Detector {args.point}, Python included: {per_s:,.0f} instructions per second of audio = "
          f"{r['percent_of_a53_core']:.2f} % of a Cortex-A53 at {CLOCK_HZ / 1e9:g} GHz (IPC {IPC} assumed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
