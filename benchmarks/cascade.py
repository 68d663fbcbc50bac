"""The cascade (kws.Detector(confirm=...)) beside the plain operating points: false alarms on
keyword-free audio, keywords found, CPU per second of audio, and the Raspberry Pi estimate.

    python benchmarks/cascade.py [--work /tmp/kws-cascade] [--json docs/cascade.json]
                                 [--listen 0.5x4,...] [--confirm 1x8] [--threshold 0.5]
                                 [--speech STREAM.flac] [--music STREAM.flac]

Everything is made here, seeded, in a few CPU minutes (kept in --work; a re-run reuses it):
  * keywords: `kws data synth` of a small V1-12 stand-in (10 keywords x 50 clips, 40 unknown words
    x 4, seed 21); its testing split (speakers never in the default model's training; 50 keyword
    and 16 unknown-word clips) joined by kws.distill.evaluate.make_stream (0.5-1.5 s gaps) under
    the data set's background noise at -50 dBFS ("quiet") and at a level 10 dB under the median
    keyword clip's power ("10 dB SNR", same clip order);
  * speech and music: the keyword-free streams of `kws data stream` (kws.data.streams): running
    speech (fortunes sentences without the keywords) of the testing split's voices of the default
    engines over backgrounds changing every 20-40 s (quiet, noise, music, babble; 0-20 dB SNR; half
    of the utterances in a simulated room), and music alone (Debian's sonic-pi-samples). Real speech
    recordings are reserved for independent evaluation and are not used.
Every configuration is a real kws.Detector (default model, 200 ms hop, smoothing 3, the model's
calibrated thresholds of each point, or --threshold for all) fed the stream: each listening point alone, the confirm point alone, and the cascade
(listening point confirmed by the confirm point). On the keyword streams a detection is a hit when
kws.distill.evaluate's rule matches it to a keyword clip, anything else a false alarm; on the
keyword-free streams every detection is a false alarm.
CPU: process time of the Detector per second of audio fed in 100 ms chunks (frontend included),
the configurations interleaved round by round, medians; on the keyword-free speech and on dense
keyword audio (the quiet keyword stream: a keyword every ~2.6 s). The Pi estimate combines the
instruction counts of docs/bench.json (`kws bench --pi`) with the measured number of confirm
inferences per hop (benchmarks/pi_estimate.py: cascade_estimate).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
KEYWORDS = "yes,no,up,down,left,right,on,off,stop,go"
SYNTH = ["--per-word", "50", "--unknown-per-word", "4", "--noise-seconds", "30", "--seed", "21"]
SR = 16000


# ----------------------------------------------------------------------------- audio
def synth_data(work: Path) -> Path:
    data = work / "data"
    if not (data / "synth_report.json").exists():
        subprocess.run([sys.executable, "-m", "kws", "data", "synth", "--out", str(data), "--words",
                        KEYWORDS, *SYNTH, "--jobs", "1", "--no-progress"], check=True)
    return data


def keyword_streams(data: Path, model):
    """{"quiet": ..., "snr10": ...}: (stream, events, seconds, noise dBFS) of the testing split."""
    from kws.data.speech_commands import SpeechCommands
    from kws.distill.evaluate import keyword_stream
    labels = list(model.labels)
    clips = SpeechCommands(data, "testing", "v1-12", None, seed=0)
    sr = model.frontend.sample_rate
    return {"quiet": keyword_stream(clips, labels, sr, None, -50.0),
            "snr10": keyword_stream(clips, labels, sr, None, snr_db=10.0)}


def speech_stream(work: Path, minutes: float) -> np.ndarray:
    """kws data stream's keyword-free speech (testing-split voices of the fast engines, changing
    backgrounds), cached in --work."""
    cache = work / f"speech-{minutes:g}min.npy"
    if not cache.exists():
        from kws.data import streams
        from kws.data.voices import group_split, select_voices
        voices = [v for v in select_voices() if group_split(v.group) == "testing"]
        np.save(cache, streams.speech_stream(minutes, voices, KEYWORDS.split(","), seed=21)[0])
    return np.load(cache)


def music_stream(minutes: float) -> np.ndarray | None:
    """kws data stream's music (sonic-pi-samples), or None without the samples."""
    from kws.data import streams
    return streams.music_stream(minutes, seed=21)[0] if streams.MUSIC_DIR.is_dir() else None


# ----------------------------------------------------------------------------- measuring
def detect(model, listen, confirm, threshold, audio):
    """Detections [(label, time_s)] and (inferences, confirm inferences) of one Detector run."""
    from kws.detector import Detector
    det = Detector(model, width=listen.width, blocks=len(listen.blocks), threshold=threshold,
                   confirm=confirm)
    dets = []
    for i in range(0, audio.size, 10 * SR):
        dets += [(d.label, d.time_s) for d in det.feed(audio[i:i + 10 * SR])]
    return dets, det.inferences, det.confirm_inferences


def cpu_per_audio_s(model, configs, audio, rounds: int) -> list[float]:
    """Median CPU seconds per second of audio of each (listen, confirm) Detector, fed 100 ms
    chunks; configurations interleaved round by round (same load for each)."""
    from kws.detector import Detector
    times = [[] for _ in configs]
    for _ in range(rounds):
        for j, (listen, confirm) in enumerate(configs):
            det = Detector(model, width=listen.width, blocks=len(listen.blocks), confirm=confirm)
            det.feed(audio[:SR])                  # warm-up: plans of both points
            det.reset()
            t0 = time.process_time()
            for i in range(0, audio.size, SR // 10):
                det.feed(audio[i:i + SR // 10])
            times[j].append((time.process_time() - t0) / (audio.size / SR))
    return [float(np.median(t)) for t in times]


def pi_counts(arch) -> dict:
    """The Pi counts of docs/bench.json (the shipped model's `kws bench --pi`) per point, if they
    were counted for this architecture (the same binary and float MACs per point); else {}."""
    path = ROOT / "docs" / "bench.json"
    try:
        pi = json.loads(path.read_text())["pi_estimate"]
        counts = {p["point"]: p for p in pi["points"]} if pi.get("status") == "ok" else {}
    except (OSError, KeyError, json.JSONDecodeError):
        return {}
    for op in arch.operating_points:
        c, p = arch.costs(op), counts.get(op.name)
        if p and (p.get("binary_macs"), p.get("float_macs")) != (c["binary_macs"], c["float_macs"]):
            return {}          # another architecture (e.g. --model with a wider hidden layer)
    return counts


def run(args) -> dict:
    from kws.bench import cpu_model
    from kws.detector import resolve_model, resolve_operating_point
    from kws.distill.evaluate import _match, read_negative_stream
    from kws import _kernels
    import pi_estimate
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = resolve_model(args.model)
    arch = model.arch
    confirm = resolve_operating_point(arch, args.confirm)
    listens = ([resolve_operating_point(arch, s) for s in args.listen.split(",")] if args.listen
               else [op for op in arch.operating_points if op != confirm])
    say = lambda s: print(f"# {s}", file=sys.stderr, flush=True)   # noqa: E731
    say("data: kws data synth (small V1-12 stand-in)")
    data = synth_data(work)
    kw = keyword_streams(data, model)
    say(f"synthetic speech: {args.speech or f'{args.speech_minutes:g} min'}")
    free = {"speech": read_negative_stream(args.speech, SR)[0] if args.speech
            else speech_stream(work, args.speech_minutes)}
    music = read_negative_stream(args.music, SR)[0] if args.music else music_stream(args.music_minutes)
    if music is not None:
        free["music"] = music
    streams = {}
    for name, x in free.items():
        streams[name] = {"kind": "keyword-free", "minutes": x.size / SR / 60}
    for name, (x, events, seconds, dbfs) in kw.items():
        streams[f"keywords_{name}"] = {"kind": "keywords", "minutes": seconds / 60,
                                       "keywords": len(events), "noise_dbfs": round(dbfs, 1)}
    configs = [(op, None) for op in listens] + [(confirm, None)] + [(op, confirm) for op in listens]
    rows = []
    for listen, conf in configs:
        name = listen.name if conf is None else f"{listen.name}>{conf.name}"
        say(f"{name}: detections on {len(streams)} streams")
        row = {"config": name, "listen": listen.name, "confirm": None if conf is None else conf.name}
        for s, x in free.items():
            dets, inf, cinf = detect(model, listen, conf, args.threshold, x)
            row[f"false_alarms_{s}"] = len(dets)
            row[f"fa_per_hour_{s}"] = len(dets) / (x.size / SR / 3600)
            row[f"confirm_per_hop_{s}"] = cinf / inf
        for s, (x, events, seconds, _) in kw.items():
            dets, inf, cinf = detect(model, listen, conf, args.threshold, x)
            hits, fas = _match(dets, events)
            row[f"hits_keywords_{s}"] = hits
            row[f"false_alarms_keywords_{s}"] = fas
            row[f"frr_keywords_{s}"] = 1 - hits / len(events)
            row[f"confirm_per_hop_keywords_{s}"] = cinf / inf
        row["false_alarms_keyword_free"] = sum(row[f"false_alarms_{s}"] for s in free)
        rows.append(row)
    # CPU, interleaved: each listening point, the confirm point, each cascade
    say(f"CPU per second of audio ({args.cpu_seconds:g} s x {args.rounds} rounds per configuration)")
    n = int(args.cpu_seconds * SR)
    for key, audio in (("keyword_free", free["speech"][:n]), ("dense_keywords", kw["quiet"][0][:n])):
        cpu = cpu_per_audio_s(model, configs, audio, args.rounds)
        for row, c in zip(rows, cpu):
            row[f"cpu_per_audio_s_{key}"] = c
    by = {r["config"]: r for r in rows}
    counts = pi_counts(arch)
    for r in rows:
        alone = by[r["listen"]]
        for key in ("keyword_free", "dense_keywords"):
            r[f"cpu_vs_listening_point_{key}"] = r[f"cpu_per_audio_s_{key}"] / alone[f"cpu_per_audio_s_{key}"]
        if counts and r["listen"] in counts:
            hop_s = 0.2
            for key, per_hop in (("keyword_free", r.get("confirm_per_hop_speech", 0.0)),
                                 ("dense_keywords", r.get("confirm_per_hop_keywords_quiet", 0.0))):
                est = pi_estimate.cascade_estimate(counts[r["listen"]], counts.get(r["confirm"] or ""),
                                                   per_hop if r["confirm"] else 0.0, hop_s)
                r[f"pi_{key}"] = est
        if r["confirm"]:
            r["fa_ratio_vs_listening_point"] = (r["false_alarms_keyword_free"]
                                                / max(1, alone["false_alarms_keyword_free"]))
    targets = []
    for r in rows:
        if not r["confirm"]:
            continue
        alone = by[r["listen"]]
        fa_all = lambda x: x["false_alarms_keyword_free"] + sum(x[f"false_alarms_keywords_{s}"] for s in kw)  # noqa: E731
        targets.append({
            "config": r["config"],
            "false_alarms": fa_all(r), "listening_point_false_alarms": fa_all(alone),
            "false_alarms_met": fa_all(r) <= fa_all(alone) / 4,
            "hits": {s: [r[f"hits_keywords_{s}"], alone[f"hits_keywords_{s}"]] for s in kw},
            "hits_met": all(r[f"hits_keywords_{s}"] >= alone[f"hits_keywords_{s}"] - len(kw[s][1]) / 30
                            for s in kw),                  # at most 1 in 30 keywords lost
            "cpu_ratio_keyword_free": r["cpu_vs_listening_point_keyword_free"],
            "cpu_met": r["cpu_vs_listening_point_keyword_free"] <= 1.3})
    return {"cpu": cpu_model(), "kernel_isa": _kernels.isa(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg": " ".join(f"{v:.1f}" for v in __import__("os").getloadavg()),
            "command": "python benchmarks/cascade.py " + " ".join(sys.argv[1:]),
            "model": str(getattr(model, "path", None) or "default"), "threshold": args.threshold,
            "streams": streams, "rows": rows, "targets": targets,
            "pi_counts_from": "docs/bench.json (kws bench --pi)" if counts else None}


def print_table(r: dict) -> None:
    s = r["streams"]
    print(f"cascade | CPU: {r['cpu']} (lscpu) | kernel {r['kernel_isa']} | {r['date']} | load {r['loadavg']}")
    print(f"threshold {r['threshold'] or 'calibrated, per point'} | " + " | ".join(
        f"{k}: {v['minutes']:.1f} min" + (f", {v['keywords']} keywords" if "keywords" in v else "")
        for k, v in s.items()))
    free = [k for k, v in s.items() if v["kind"] == "keyword-free"]
    kws_ = [k.split("_", 1)[1] for k, v in s.items() if v["kind"] == "keywords"]
    head = ([f"FA {k}" for k in free] + [f"FA kw {k}" for k in kws_] + [f"hits {k}" for k in kws_]
            + ["CPU % free", "CPU % dense", "x listen free", "x listen dense", "Pi ms/s free"])
    print(f"{'config':>12} " + " ".join(f"{h:>13}" for h in head))
    for x in r["rows"]:
        vals = ([x[f"false_alarms_{k}"] for k in free] + [x[f"false_alarms_keywords_{k}"] for k in kws_]
                + [f"{x[f'hits_keywords_{k}']}/{s['keywords_' + k]['keywords']}" for k in kws_]
                + [f"{100 * x['cpu_per_audio_s_keyword_free']:.3f}", f"{100 * x['cpu_per_audio_s_dense_keywords']:.3f}",
                   f"{x['cpu_vs_listening_point_keyword_free']:.2f}", f"{x['cpu_vs_listening_point_dense_keywords']:.2f}",
                   f"{x['pi_keyword_free']['ms_per_audio_s']:.2f}" if "pi_keyword_free" in x else "-"])
        print(f"{x['config']:>12} " + " ".join(f"{str(v):>13}" for v in vals))
    print("\nTargets (cascade vs its listening point alone): FA <= 1/4, hits >= listening - 1 per 30, CPU <= 1.3x")
    for t in r["targets"]:
        print(f"  {t['config']:>12}: FA {t['false_alarms']} vs {t['listening_point_false_alarms']} "
              f"({'met' if t['false_alarms_met'] else 'NOT met'}); hits "
              + ", ".join(f"{k} {a}/{b}" for k, (a, b) in t["hits"].items())
              + f" ({'met' if t['hits_met'] else 'NOT met'}); CPU {t['cpu_ratio_keyword_free']:.2f}x "
              f"({'met' if t['cpu_met'] else 'NOT met'})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/kws-cascade", help="where the data and renders are kept")
    p.add_argument("--json", default=None, help="write the results here (e.g. docs/cascade.json)")
    p.add_argument("--model", default=None)
    p.add_argument("--listen", default=None, help="listening points (default: every other point)")
    p.add_argument("--confirm", default="1x8")
    p.add_argument("--threshold", type=float, default=None,
                   help="one threshold for every point (default: the model's calibrated thresholds, each point its own)")
    p.add_argument("--speech", default=None, help="keyword-free speech stream file (e.g. `kws data "
                   "stream --kind speech`'s; default: make --speech-minutes of it here)")
    p.add_argument("--music", default=None, help="music stream file (default: --music-minutes made here)")
    p.add_argument("--speech-minutes", type=float, default=10.0)
    p.add_argument("--music-minutes", type=float, default=10.0)
    p.add_argument("--cpu-seconds", type=float, default=60.0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    r = run(args)
    if args.json:
        from kws.fileio import atomic_path
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps(r, indent=1) + "\n")
    print_table(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
