"""Raspberry Pi estimate: instructions of one whole inference per operating point on aarch64
(qemu-aarch64 -cpu cortex-a53), turned into a latency for a Cortex-A53 at 1.2 GHz (Pi 3B/3B+).

    python benchmarks/pi_estimate.py [--json] [--points 1x8,0.5x4] [--ipc 1.0]

How: benchmarks/arm64/runtime_main.c calls kws_fsmn_forward, the one C call of
BinaryFSMN.logits (normalise the frames, the stem matmul over windows read in place, the blocks with the NEON
kernels, pooled head, classifier: kws/csrc/fsmn.c), on random weights of the model's shapes; it
is cross-compiled with the project's kws/csrc/*.c (same flags as setup.py on aarch64) and counted
with ../shared/tools/arm64/icount.sh: whole program with 1 inference minus with 0 (set-up
cancels), and inside popcnt_neon (the binary GEMM micro-kernel) and stem_matmul alone.  Counts are exact and identical for every -cpu;
cycles are not: latency = instructions / (IPC x 1.2 GHz) with a STATED IPC (default 1.0: the A53
is an in-order dual-issue core, but its NEON unit is 64 bits wide, so the 128-bit EOR/CNT/UADALP
of the FBCK loop and the FMLAs issue about once per cycle, and the scalar epilogues and packing
loops are load/branch bound; 0.7-1.3 is given as the band).  Not included: the Python glue around
the C calls (numpy normalisation is counted here in C; the interpreter's per-call overhead is not),
and cache misses (1x8 holds 66 KB of packed weights and a 61 KB float stem: they fit the Pi 3's
512 KB L2, not its L1 data cache).  The stem and the memory taps use fused multiply-adds (FMLA: one
NEON instruction per 4 MACs; exact for the +-1 taps, kws/csrc/fsmn_float.h).

The frontend (benchmarks/arm64/frontend_main.c: kws_frontend_run of kws/csrc/frontend.c with the
model's FFT size and mel bands, 20 frames per call as the Detector feeds it, libm's log
included) is counted the same way, per frame; with it, the Detector's Pi time per second of
audio = 100 frames + one window every 200 ms.

Check against the paper: BiFSMN reports on a Raspberry Pi 3B+ (Cortex-A53, 1.2 GHz) speed-ups
over full precision of 10.9x (8 blocks), 15.5x (4 blocks) and 22.3x (2 blocks), i.e. the 4- and
2-block networks run 1.42x and 2.05x faster than the 8-block one.  Instruction counts give the
same ratios at full width independently of the IPC assumption; both are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arm64_icount import CC, CFLAGS, ROOT, _ensure_toolchain, _run, _tools, icount  # noqa: E402

DRIVER = ROOT / "benchmarks" / "arm64" / "runtime_main.c"
CSRC = ("pack", "bgemm_scalar", "bgemm_avx2", "bgemm_avx512", "bgemm_neon", "dispatch", "memconv", "fsmn")
CLOCK_HZ = 1.2e9          # Raspberry Pi 3B / 3B+ Cortex-A53 (3B+: 1.4 GHz boost; 1.2 GHz is the paper's)
IPC = 1.0
IPC_BAND = (0.7, 1.3)
PAPER_SPEEDUP_VS_FP = {8: 10.9, 4: 15.5, 2: 22.3}   # BiFSMN, Pi 3B+, by number of blocks


def build_runtime(out_dir) -> Path:
    binary = Path(out_dir) / "runtime_main"
    _run([CC, *CFLAGS, "-I", ROOT / "kws" / "csrc", DRIVER,
          *[ROOT / "kws" / "csrc" / f"{n}.c" for n in CSRC], "-o", binary])
    return binary


FRONTEND_DRIVER = ROOT / "benchmarks" / "arm64" / "frontend_main.c"
FRONTEND_FRAMES = 20      # one Detector hop of 200 ms at the 10 ms frame hop


def build_frontend(out_dir) -> Path:
    binary = Path(out_dir) / "frontend_main"
    _run([CC, *CFLAGS, "-I", ROOT / "kws" / "csrc", FRONTEND_DRIVER, ROOT / "kws" / "csrc" / "frontend.c",
          "-lm", "-o", binary])
    return binary


def count_frontend(binary, model, cpu="cortex-a53", tools=None, ipc=IPC, clock_hz=CLOCK_HZ) -> dict:
    """Instructions per frame of the frontend of `model` (its config and mel bands), as the
    Detector runs it (FRONTEND_FRAMES frames per call), and its Pi time per second of audio."""
    from kws.frontend import _Plan
    from kws.fsmn.model import frontend_matrices
    c = model.frontend
    plan = _Plan(c, frontend_matrices(model))
    bands = [f"{f}:{n}" for f, n in zip(plan.band_first, plan.band_len)]
    args = lambda frames: [c.n_fft, c.hop_length, c.n_features, frames, *bands]  # noqa: E731
    n = icount(binary, args(FRONTEND_FRAMES), None, cpu, tools, twice=False)
    zero = icount(binary, args(0), None, cpu, tools, twice=False)
    per_frame = (n - zero) / FRONTEND_FRAMES
    frames_per_s = c.sample_rate / c.hop_length
    return {"config": c.to_dict(), "instructions_per_frame": round(per_frame),
            "frames_per_audio_s": frames_per_s,
            "ms_per_audio_s": round(per_frame * frames_per_s / (ipc * clock_hz) * 1e3, 3)}


def driver_args(arch, op, reps: int) -> list:
    bw, hw = arch.channels(op.width)
    return [arch.n_frames, arch.n_features, arch.stem_kernel, arch.stem_stride, arch.backbone,
            arch.hidden, arch.back, arch.ahead, len(op.blocks), bw, hw, arch.n_classes, reps, arch.up_planes,
            int(arch.input_norm == "pcen")]


def count_point(binary, arch, op, cpu="cortex-a53", tools=None, ipc=IPC, clock_hz=CLOCK_HZ) -> dict:
    """Instruction counts of one inference at `op` and the latency estimate."""
    one = icount(binary, driver_args(arch, op, 1), None, cpu, tools, twice=False)
    zero = icount(binary, driver_args(arch, op, 0), None, cpu, tools, twice=False)
    kernel = icount(binary, driver_args(arch, op, 1), "popcnt_neon", cpu, tools, twice=False)
    stem = icount(binary, driver_args(arch, op, 1), "stem_matmul_base", cpu, tools, twice=False)
    pcen = (icount(binary, driver_args(arch, op, 1), "pcen_bands_base", cpu, tools, twice=False)
            if arch.input_norm == "pcen" else 0)
    total = one - zero
    costs = arch.costs(op)
    gemm_macs = len(op.blocks) * arch.stem_frames * (arch.up_planes + 1) * (arch.channels(op.width)[0] * arch.channels(op.width)[1])
    return {"point": op.name, "width": op.width, "blocks": len(op.blocks),
            "instructions": total, "kernel_instructions": kernel, "stem_instructions": stem,
            "pcen_instructions": pcen, "other_instructions": total - kernel - stem - pcen,
            "binary_macs": costs["binary_macs"], "float_macs": costs["float_macs"],
            "kernel_instr_per_128_macs": round(kernel / (gemm_macs / 128), 3),
            "latency_ms": round(total / (ipc * clock_hz) * 1e3, 3),
            "latency_ms_band": [round(total / (hi * clock_hz) * 1e3, 3) for hi in IPC_BAND[::-1]]}


def pi_estimate(arch=None, points=None, cpu="cortex-a53", ipc=IPC, clock_hz=CLOCK_HZ, progress=None,
                model=None) -> dict:
    """Counts and latency estimates for the operating points named in `points` (default: all) of
    `arch` (default: `model`'s, else the shipped model's architecture, else the default one), and
    the frontend of `model` (default: the shipped model; none without a model file) with the
    Detector's total per second of audio."""
    from kws.detector import DEFAULT_MODEL, HOP_MS
    from kws.fsmn.config import ArchConfig
    from kws.fsmn.model import load_model
    if model is None and DEFAULT_MODEL.is_file():
        model = load_model(DEFAULT_MODEL)
    arch = arch or (model.arch if model else ArchConfig())
    ops = [op for op in arch.operating_points if not points or op.name in points]
    if points and len(ops) != len(set(points)):
        raise ValueError(f"unknown operating point in {points}: {[o.name for o in arch.operating_points]}")
    tools = _tools()
    _ensure_toolchain(tools)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kws-pi-") as tmp:
        binary = build_runtime(tmp)
        for op in ops:
            if progress:
                progress(f"counting {op.name} under qemu-aarch64 -cpu {cpu}")
            rows.append(count_point(binary, arch, op, cpu, tools, ipc, clock_hz))
        frontend = None
        if model is not None:
            if progress:
                progress(f"counting the frontend under qemu-aarch64 -cpu {cpu}")
            frontend = count_frontend(build_frontend(tmp), model, cpu, tools, ipc, clock_hz)
    detector = []
    if frontend is not None:   # the Detector's work per second of audio: every frame, 5 windows
        for r in rows:
            per_s = (r["instructions"] * 1000 / HOP_MS
                     + frontend["instructions_per_frame"] * frontend["frames_per_audio_s"])
            detector.append({"point": r["point"], "hop_ms": HOP_MS, "instructions_per_audio_s": round(per_s),
                             "ms_per_audio_s": round(per_s / (ipc * clock_hz) * 1e3, 3),
                             "percent_of_one_core": round(per_s / (ipc * clock_hz) * 100, 3)})
    by = {(r["width"], r["blocks"]): r for r in rows}
    check = []
    for nb, speedup in PAPER_SPEEDUP_VS_FP.items():
        full, this = by.get((1.0, max(PAPER_SPEEDUP_VS_FP))), by.get((1.0, nb))
        if full and this and nb != max(PAPER_SPEEDUP_VS_FP):
            check.append({"blocks": nb, "paper_speedup_vs_8_blocks": round(speedup / PAPER_SPEEDUP_VS_FP[8], 2),
                          "estimated_speedup_vs_8_blocks": round(full["instructions"] / this["instructions"], 2)})
    return {"target": f"Cortex-A53 @ {clock_hz / 1e9:g} GHz (Raspberry Pi 3B/3B+)",
            "counted_on": f"qemu-aarch64 -cpu {cpu}", "ipc": ipc, "ipc_band": list(IPC_BAND),
            "clock_hz": clock_hz, "points": rows, "paper_check": check,
            "frontend": frontend, "detector": detector}


def cascade_estimate(listen: dict, confirm: dict | None, confirm_per_hop: float, hop_s: float = 0.2,
                     ipc: float = IPC, clock_hz: float = CLOCK_HZ) -> dict:
    """Pi time per second of audio of a Detector cascade (kws.Detector(confirm=...)): the listening
    point every hop plus the confirm point `confirm_per_hop` times per hop on average (measured:
    Detector.confirm_inferences / Detector.inferences on the audio in question). `listen` and
    `confirm` are rows of pi_estimate()["points"]; confirm None = the listening point alone."""
    per_hop = listen["instructions"] + (confirm["instructions"] * confirm_per_hop if confirm else 0.0)
    per_s = per_hop / hop_s
    return {"listen": listen["point"], "confirm": confirm["point"] if confirm else None,
            "confirm_per_hop": confirm_per_hop, "hop_s": hop_s,
            "instructions_per_audio_s": round(per_s),
            "ms_per_audio_s": round(per_s / (ipc * clock_hz) * 1e3, 3),
            "ms_per_audio_s_band": [round(per_s / (hi * clock_hz) * 1e3, 3) for hi in IPC_BAND[::-1]]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true")
    p.add_argument("--points", default=None, help="comma-separated operating points (default: all)")
    p.add_argument("--ipc", type=float, default=IPC)
    p.add_argument("--cpu", default="cortex-a53")
    args = p.parse_args(argv)
    points = args.points.split(",") if args.points else None
    try:
        r = pi_estimate(points=points, cpu=args.cpu, ipc=args.ipc,
                        progress=None if args.json else lambda s: print(f"# {s}", file=sys.stderr))
    except (RuntimeError, ValueError) as e:
        print(f"pi_estimate: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"# {r['target']}; instructions counted on {r['counted_on']}; IPC {r['ipc']} assumed "
          f"(band {r['ipc_band'][0]}-{r['ipc_band'][1]})")
    print(f"{'point':>7} {'instr':>10} {'kernel':>9} {'stem':>8} {'other':>9} {'k/128MAC':>8} {'est ms':>7} {'band ms':>13}")
    for x in r["points"]:
        print(f"{x['point']:>7} {x['instructions']:>10,} {x['kernel_instructions']:>9,} {x['stem_instructions']:>8,} "
              f"{x['other_instructions']:>9,} {x['kernel_instr_per_128_macs']:>8.2f} {x['latency_ms']:>7.2f} "
              f"{x['latency_ms_band'][0]:>6.2f}-{x['latency_ms_band'][1]:<6.2f}")
    fe = r["frontend"]
    if fe:
        print(f"# frontend (shipped model's config): {fe['instructions_per_frame']:,} instructions per frame, "
              f"{fe['ms_per_audio_s']:.2f} ms per second of audio")
    for d in r["detector"]:
        print(f"# Detector {d['point']} (frontend + a window every {d['hop_ms']:g} ms): "
              f"{d['ms_per_audio_s']:.2f} ms per second of audio = {d['percent_of_one_core']:.2f} % of a core")
    for c in r["paper_check"]:
        print(f"# {c['blocks']} blocks vs 8 (width 1): estimated {c['estimated_speedup_vs_8_blocks']}x faster, "
              f"paper (Pi 3B+) {c['paper_speedup_vs_8_blocks']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
