"""`kws data synth`, `stream`, `confusable` and `info` (registration is cheap; the work is imported
in `func`)."""

from __future__ import annotations

import argparse

from kws.data.tasks import KEYWORDS_12


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="make or inspect Speech Commands-layout data sets",
                              description="Make (synth) or inspect (info) Speech Commands-layout "
                                          "data sets.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = sub.add_parser(
        "synth", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="synthesize a Speech Commands-style data set offline (TTS + noise)",
        description="Render keywords and unknown words with every allowed offline TTS voice "
                    "(espeak-ng, MBROLA, flite, festival, pico, RHVoice, Kokoro neural voices) and "
                    "windows of keyword-free running speech into the Speech Commands "
                    "layout, split by speaker. Engines: scripts/install-tts.sh. Rerun the same "
                    "command to resume.")
    s.add_argument("--out", required=True, help="output folder (new, empty, or a previous run's)")
    s.add_argument("--words", default=",".join(KEYWORDS_12),
                   help="comma-separated keywords; phrases allowed ('hey kiwi' -> hey_kiwi/)")
    s.add_argument("--unknown-words", default=None,
                   help="comma-separated words for _unknown_, or 'none' (default: the Speech "
                        "Commands non-keyword words + 15 everyday words, minus the keywords)")
    s.add_argument("--per-word", type=int, default=2000, help="clips per keyword")
    s.add_argument("--unknown-per-word", type=int, default=None,
                   help="clips per unknown word (default: enough for _unknown_ = 60%% of clips)")
    s.add_argument("--engines", default=None,
                   help="comma-separated subset of espeak-ng,mbrola,flite,festival,pico,rhvoice,"
                        "kokoro (default: all)")
    s.add_argument("--voices", default=None,
                   help="comma-separated voice names or patterns, 'engine:name' or 'name' "
                        "(e.g. 'espeak-ng:en-us+m*,rhvoice:bdl'); only allowed voices")
    s.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    s.add_argument("--jobs", type=int, default=0, help="parallel renders (0: number of CPUs)")
    s.add_argument("--silence-clips", type=int, default=0,
                   help="also write N 1 s noise clips to _silence_/")
    s.add_argument("--confusable", type=int, default=8,
                   help="with the default --unknown-words, also this many words per keyword that "
                        "sound like it (`kws data confusable`; 0: none)")
    s.add_argument("--speech-clips", type=int, default=None,
                   help="1 s windows of keyword-free running speech to write to _speech_/ (counted "
                        "as _unknown_; default: 15%% of the word clips; 0: none)")
    s.add_argument("--no-restricted", action="store_true",
                   help="drop licence-restricted voices (MBROLA, RHVoice evgeniy-eng/lyubov) for "
                        "a model that ships in a sold product")
    s.add_argument("--noise-seconds", type=float, default=60.0,
                   help="length of each _background_noise_ file in seconds")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=_synth)

    t = sub.add_parser(
        "stream", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="write a long keyword-free test stream (speech over noise/music/babble, or music)",
        description="Write a keyword-free stream for `kws eval --negative-stream`: running speech "
                    "of the testing split's voices over backgrounds that change every 20-40 s "
                    "(quiet, noise, music, babble; 0-20 dB SNR; half the utterances in a simulated "
                    "room), or music alone; plus FILE.csv saying what is where.")
    t.add_argument("--out", required=True, help="the stream file (.wav or .flac, 16 kHz)")
    t.add_argument("--kind", choices=("speech", "music", "babble", "tones"), default="speech",
                   help="speech over changing backgrounds; music alone; babble alone (backgrounds "
                        "for `kws eval --stream-noise`); synthetic harmonic tones alone (negatives "
                        "for `kws calibrate`: the same generator as `kws train --backgrounds ...,tones`, "
                        "so not a yardstick once trained on)")
    t.add_argument("--minutes", type=float, default=60.0, help="length of the stream")
    t.add_argument("--words", default=",".join(KEYWORDS_12),
                   help="keywords no sentence may contain (the model's)")
    t.add_argument("--engines", default=None,
                   help="voices of these engines (of --split only; default: all)")
    t.add_argument("--split", choices=("testing", "validation", "training"), default="testing",
                   help="testing: the testing split's voices with the evaluation part of the samples "
                        "and sentences (yardsticks); validation: the validation split's voices with "
                        "the training part (for tuning thresholds, `kws calibrate`); training: the "
                        "training split's voices with the training part (to train on: `kws mine`)")
    t.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    t.set_defaults(func=_stream)

    c = sub.add_parser(
        "confusable", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="list the common English words that sound like each keyword (negatives to train on)",
        description="For each keyword or phrase, the common English words that sound most like it "
                    "or like part of it (rhymes, shared onsets, fragments, near misses), by a "
                    "weighted phoneme distance over espeak-ng pronunciations of the words of "
                    "Debian's fortunes and wamerican (scripts/install-tts.sh).")
    c.add_argument("--words", default=",".join(KEYWORDS_12),
                   help="comma-separated keywords; phrases allowed ('hey kiwi')")
    c.add_argument("--per-word", type=int, default=8, help="confusable words per keyword")
    c.add_argument("--exclude", default=None, help="comma-separated words never to list")
    c.add_argument("--homophones", action="store_true",
                   help="also list words that sound exactly like a keyword (know for no)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")
    c.set_defaults(func=_confusable)

    i = sub.add_parser("info", help="count clips per word and split of a data set folder",
                       description="Count the clips of a Speech Commands-layout folder per word "
                                   "and split (from the list files, or the hash rule).")
    i.add_argument("dir", help="data set folder")
    i.set_defaults(func=_info)


def _split_list(v: str | None) -> list[str] | None:
    if v is None:
        return None
    return [x.strip() for x in v.split(",") if x.strip()]


def _synth(args) -> int:
    from pathlib import Path

    from kws.data.synth import SynthOptions, synthesize

    unknown = args.unknown_words
    if unknown is not None and unknown.strip().lower() in ("none", ""):
        unknown = []
    opts = SynthOptions(out=Path(args.out), words=args.words, unknown_words=unknown,
                        per_word=args.per_word, unknown_per_word=args.unknown_per_word,
                        engines=_split_list(args.engines), voices=_split_list(args.voices),
                        seed=args.seed, jobs=args.jobs, silence_clips=args.silence_clips,
                        speech_clips=args.speech_clips, confusable=args.confusable, restricted=not args.no_restricted, noise_seconds=args.noise_seconds,
                        progress=not args.no_progress)
    synthesize(opts)
    return 0


def _stream(args) -> int:
    import sys
    import time
    from pathlib import Path

    from kws.data import streams
    from kws.data.engines import check_engines
    from kws.data.voices import group_split, select_voices
    from kws.errors import KwsError

    out = Path(args.out)
    if out.suffix.lower() not in (".wav", ".flac"):
        raise KwsError(f"{out}: the stream file must end in .wav or .flac")
    if not 0 < args.minutes <= 24 * 60:
        raise KwsError(f"--minutes must be in (0, 1440], got {args.minutes:g}")
    t0 = time.time()
    part = "evaluation" if args.split == "testing" else "training"
    if args.kind == "music":
        audio, rows = streams.music_stream(args.minutes, args.seed, part)
    elif args.kind == "tones":
        audio, rows = streams.tones_stream(args.minutes, args.seed)
    else:
        voices = [v for v in select_voices(_split_list(args.engines)) if group_split(v.group) == args.split]
        if not voices:
            raise KwsError(f"no {args.split}-split voice among the selected engines")
        check_engines(voices)
        words = _split_list(args.words) or []
        log = lambda m: print(m, file=sys.stderr)   # noqa: E731
        if args.kind == "babble":
            audio, rows = streams.babble_stream(args.minutes, voices, words, args.seed, log=log)
        else:
            audio, rows = streams.speech_stream(args.minutes, voices, words, args.seed, log=log, part=part)
    streams.write_stream(out, audio, rows)
    print(f"kws data stream: {out} ({len(audio) / 16000 / 60:.1f} min, {args.kind}, "
          f"{len(rows)} rows in {out}.csv) in {time.time() - t0:.0f} s")
    return 0


def _confusable(args) -> int:
    import json
    import sys
    import time
    from dataclasses import asdict

    from kws.data.confusable import confusable_words

    t0 = time.time()
    result = confusable_words(_split_list(args.words) or [], args.per_word,
                              set(_split_list(args.exclude) or []), homophones=args.homophones)
    if args.json:
        print(json.dumps({k: [asdict(c) for c in v] for k, v in result.items()}, ensure_ascii=False,
                         indent=1))
    else:
        rows = [(k, c.word, c.phonemes, f"{c.distance:g}",
                 c.kind + (f" ({c.target})" if c.target != k else ""))     # a phrase's word
                for k, v in result.items() for c in v]
        head = ("keyword", "word", "phonemes", "distance", "kind")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            print("  ".join(f"{x:<{w}}" for x, w in zip(r, widths)).rstrip())
    print(f"kws data confusable: {len(result)} keyword(s) in {time.time() - t0:.1f} s",
          file=sys.stderr)
    return 0


def _info(args) -> int:
    import json
    from collections import Counter
    from pathlib import Path

    from kws.data.layout import SPLITS
    from kws.data.speech_commands import SplitAssigner, _is_wav, word_folders
    from kws.data.tasks import BACKGROUND_NOISE, SILENCE
    from kws.errors import KwsError

    root = Path(args.dir)
    if not root.is_dir():
        raise KwsError(f"data folder {root} does not exist")
    folders = word_folders(root)
    sil = root / SILENCE
    if sil.is_dir():
        folders[SILENCE] = sorted(f"{SILENCE}/{f.name}" for f in sil.iterdir() if _is_wav(f))
    if not folders:
        raise KwsError(f"no word folders with .wav files in {root}")
    assign = SplitAssigner(root)
    if assign.missing:
        print(f"note: no {' / '.join(assign.missing)}: split by the hash rule")
    width = max(10, *(len(w) for w in folders))
    print(f"{'word':<{width}} " + " ".join(f"{s:>10}" for s in SPLITS) + f" {'total':>10}")
    totals = Counter()
    for word, files in folders.items():
        c = Counter(assign(f) for f in files)
        totals.update(c)
        print(f"{word:<{width}} " + " ".join(f"{c[s]:>10}" for s in SPLITS) + f" {len(files):>10}")
    print(f"{'all':<{width}} " + " ".join(f"{totals[s]:>10}" for s in SPLITS)
          + f" {sum(totals.values()):>10}")
    noise = root / BACKGROUND_NOISE
    names = sorted(f.stem for f in noise.iterdir() if _is_wav(f)) if noise.is_dir() else []
    print(f"{BACKGROUND_NOISE}: {len(names)} file(s)" + (f": {', '.join(names)}" if names else ""))
    rep = root / "synth_report.json"
    if rep.is_file():
        r = json.loads(rep.read_text())
        print(f"synthesized: {r['voices']['distinct_used']} distinct voices; rejection rate per "
              "engine: " + ", ".join(f"{e} {100 * d['rate']:.2f} %"
                                     for e, d in r["rejections"].items()))
    return 0
