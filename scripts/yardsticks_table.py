"""The README's default-model table: models side by side on the yardsticks of issue #16/#17.

    python scripts/yardsticks_table.py --model v2=docs/default-model/yardsticks-v2/eval_ \\
        --model v3=docs/default-model/ [--points 1x8,0.5x4] > table.md

Each `--model NAME=PREFIX` reads PREFIX + `clean.json` (a `kws eval --json` with
`--negative-stream` speech and music streams), `babble10.json` and `music10.json` (`kws eval
--stream-noise FILE --stream-snr 10`); scripts/train-default.sh writes them. Every figure is at the
model's shipped thresholds (what `kws.Detector()` does): accuracy by voice family on the testing
split, false alarms per hour of each negative stream, and the keyword stream's FRR in babble and in
music at 10 dB SNR; and, when PREFIX + `quiet20.json` exists (`kws eval --no-stream --gain -20`),
the accuracy with every testing clip 20 dB quieter (a far or quiet talker).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FAMILIES = (("formant", "formant"), ("donor", "human donor"), ("neural", "Kokoro neural"))


def _load(prefix: str, name: str) -> dict | None:
    p = Path(prefix + name)
    return json.loads(p.read_text()) if p.is_file() else None


def rows(name: str, prefix: str, points: list[str], quiet_column: bool = False) -> list[list[str]]:
    clean = _load(prefix, "clean.json")
    if clean is None:
        raise SystemExit(f"{prefix}clean.json not found")
    noisy = {k: _load(prefix, f"{k}10.json") for k in ("babble", "music")}
    fam = clean.get("accuracy_by_source", {}).get("family", {})
    neg = clean.get("negative_streams", {})
    out = []
    for op in points:
        row = [name, op]
        row += [f"{100 * fam[f]['accuracy'][op]:.1f} %" if f in fam else "" for f, _ in FAMILIES]
        for kind in ("speech", "music"):
            hit = [v[op] for k, v in neg.items() if kind in Path(k).name and op in v]
            row.append(f"{hit[0]['fa_per_hour']:.1f} ({hit[0]['false_alarms']} in "
                       f"{60 * hit[0]['hours']:.0f} min)" if hit else "")
        for kind in ("babble", "music"):
            s = (noisy[kind] or {}).get("streaming", {}).get(op)
            row.append(f"{100 * s['default_thresholds']['frr']:.1f} %" if s else "")
        if quiet_column:
            quiet = _load(prefix, "quiet20.json")
            row.append(f"{100 * quiet['accuracy'][op]:.1f} %" if quiet and op in quiet["accuracy"] else "")
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="NAME=PREFIX (repeatable)")
    ap.add_argument("--points", default="1x8,0.5x4")
    a = ap.parse_args()
    points = [p.strip() for p in a.points.split(",") if p.strip()]
    specs = [spec.partition("=")[::2] for spec in a.model]
    quiet = any(Path(prefix + "quiet20.json").is_file() for _, prefix in specs)
    head = ["model", "point"] + [f"accuracy, {lab} voices" for _, lab in FAMILIES] + \
        ["false alarms/h, running speech", "false alarms/h, music",
         "FRR, babble 10 dB", "FRR, music 10 dB"] + (["accuracy, 20 dB quieter"] if quiet else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, prefix in specs:
        lines += ["| " + " | ".join(r) + " |" for r in rows(name, prefix, points, quiet)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
