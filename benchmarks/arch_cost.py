"""What a bigger student would cost: the Detector's CPU per second of audio for candidate
architectures, as ratios to the shipped model's architecture measured in the same rounds, and
against openWakeWord (issue #18's budget: the Detector at 1x8 at most 1/15 of its CPU).

    python benchmarks/arch_cost.py --arch 128x512x8,192x512x8,128x512x8p2 [--pi] [--json F]

An architecture is BACKBONExHIDDENxBLOCKS[pPLANES] (the residual stream width, the binary pointwise
width, the number of blocks, and optionally the sign planes of the residual stream into the up
projection (ArchConfig.up_planes, default 1); everything else as the shipped model). Models have random weights: the
cost of a binary network does not depend on its values. Rounds interleave the architectures
(the machine's drift hits all alike); each figure is the median over rounds. --pi adds
aarch64 instruction counts under qemu (Cortex-A53, independent of machine load) and the
Raspberry Pi 3 estimate of benchmarks/pi_estimate.py. Each architecture is measured at its full
point (width 1, every block: 1x8) and its central one (width 0.5, half the blocks: 0.5x4).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_single_thread_env  # noqa: E402

ensure_single_thread_env()

from kws.bench import bench_openwakeword, detector_cpu, environment, load_bench_model, pin  # noqa: E402
from kws.errors import KwsError  # noqa: E402
from kws.fsmn.config import ArchConfig, default_block_sets  # noqa: E402
from kws.fsmn.model import random_model  # noqa: E402

POINTS = ("full", "central")     # width 1 with every block; width 0.5 with half of them (1x8, 0.5x4)


def point(arch: ArchConfig, which: str):
    return arch.operating_point(1.0, arch.n_blocks) if which == "full" else \
        arch.operating_point(0.5, max(1, arch.n_blocks // 2))


def arch_name(a: ArchConfig) -> str:
    return f"{a.backbone}x{a.hidden}x{a.n_blocks}" + (f"p{a.up_planes}" if a.up_planes > 1 else "")


def parse_arch(text: str, base: ArchConfig) -> ArchConfig:
    """'192x512x8' -> base with backbone 192, hidden 512, 8 blocks (and that depth's block sets);
    '128x512x8p2': and 2 sign planes into the up projection."""
    try:
        shape, _, planes = text.lower().partition("p")
        b, h, n = (int(v) for v in shape.split("x"))
        p = int(planes) if planes else 1
    except ValueError:
        raise SystemExit(f"error: --arch {text!r}: expected BACKBONExHIDDENxBLOCKS[pPLANES], e.g. 192x512x8 "
                         f"or 128x512x8p2") from None
    try:
        return dataclasses.replace(base, backbone=b, hidden=h, n_blocks=n, block_sets=default_block_sets(n),
                                   up_planes=p)
    except (ValueError, KwsError) as e:
        raise SystemExit(f"error: --arch {text!r}: {e}") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="128x512x8,160x512x8,192x512x8,128x768x8,128x512x8p2,128x512x8p3",
                    help="comma-separated BACKBONExHIDDENxBLOCKS[pPLANES]; the shipped model's goes first "
                         "as the baseline")
    ap.add_argument("--seconds", type=float, default=20.0, help="audio seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", choices=("auto", "none"), default="auto", help="openWakeWord as the yardstick")
    ap.add_argument("--pi", action="store_true", help="also count aarch64 instructions under qemu (minutes)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    pin(1)
    shipped, desc, _ = load_bench_model(None)
    base = shipped.arch
    names = [arch_name(base)]
    names += [a for a in args.arch.split(",") if a and a != names[0]]
    models = {n: random_model(parse_arch(n, base), frontend=shipped.frontend, labels=shipped.labels)
              for n in names}
    env = environment()
    print(f"# CPU: {env['cpu']} | kernel: {env['kernel_isa']} | baseline {names[0]} ({desc}) | "
          f"median of {args.rounds} rounds of {args.seconds:g} s", flush=True)
    cpu = {(n, p): [] for n in names for p in POINTS}
    for _ in range(args.rounds):
        for n, m in models.items():
            for p in POINTS:
                cpu[(n, p)].append(detector_cpu(m, point(m.arch, p), args.seconds))
    med = {k: statistics.median(v) for k, v in cpu.items()}
    oww = bench_openwakeword(models[names[0]], point(base, "full"),
                             1, args.seconds, args.peers == "auto", lambda s: None)
    oww_cpu = min((r["cpu_per_audio_s"] for r in oww.get("runs", []) if "cpu_per_audio_s" in r), default=None)
    # the baseline's Detector, measured beside openWakeWord: scale the others by their same-round ratios
    base_oww = oww.get("kws_detector_cpu_per_audio_s")
    rows = []
    for n in names:
        a = models[n].arch
        row = {"arch": n, "backbone": a.backbone, "hidden": a.hidden, "blocks": a.n_blocks, "up_planes": a.up_planes}
        for p in POINTS:
            op = point(a, p)
            row[p] = {"point": op.name, "binary_macs": a.costs(op)["binary_macs"], "cpu_per_audio_s": med[(n, p)],
                      "x_baseline": med[(n, p)] / med[(names[0], p)]}
        if oww_cpu and base_oww:
            row["oww_over_detector_full"] = oww_cpu / (base_oww * row["full"]["x_baseline"])
        rows.append(row)
    if args.pi:
        from pi_estimate import pi_estimate
        for row in rows:
            m = models[row["arch"]]
            est = pi_estimate(arch=m.arch, points=[row[p]["point"] for p in POINTS], model=m)
            ms = {d["point"]: d["ms_per_audio_s"] for d in est["detector"]}
            for p in POINTS:
                row[p]["pi3_ms_per_audio_s"] = ms[row[p]["point"]]
    print(f"{'arch':>13} {'point':>6} {'bin MMACs':>9} {'CPU %':>7} {'x base':>7} {'oww/x':>6} {'Pi3 ms/s':>8}")
    for row in rows:
        for p in POINTS:
            r = row[p]
            o = row.get("oww_over_detector_full") if p == "full" else None
            print(f"{row['arch']:>13} {r['point']:>6} {r['binary_macs'] / 1e6:9.2f} {100 * r['cpu_per_audio_s']:7.3f} "
                  f"{r['x_baseline']:7.2f} {'' if o is None else f'{o:6.1f}':>6} "
                  f"{r.get('pi3_ms_per_audio_s', ''):>8}")
    if oww_cpu is None:
        print(f"# openWakeWord: {oww.get('status')}")
    if args.json:
        out = {"environment": env, "baseline": names[0], "seconds": args.seconds, "rounds": args.rounds,
               "openwakeword_cpu_per_audio_s": oww_cpu, "rows": rows}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
