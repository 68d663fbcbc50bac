"""What the training augmentation costs per batch: basic vs `--acoustics realistic`, stage by stage.

One thread, a batch of 128 one-second clips augmented one clip at a time with its own rng (as
kws.data.speech_commands does in training), CPU seconds per batch (median over --rounds rounds,
variants interleaved so they share the machine's load). Stages are timed alone at probability 1
and reported as the increase over speed / shift / volume alone; the features of the same 128
clips (kws.frontend, what every training batch also pays) are the in-run reference.

    python benchmarks/augment_cost.py [--data DIR] [--rounds 9]

Without --data it builds a small tone-word folder (kws.distill.toydata) with a `_speech_` folder
of 300 clips for babble, in a temporary directory. Needs sonic-pi-samples and pyroomacoustics.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_model, ensure_single_thread_env  # noqa: E402

ensure_single_thread_env()

import numpy as np  # noqa: E402

BATCH = 128


def toy_folder(root: Path) -> Path:
    import soundfile as sf
    from kws.distill.toydata import make_toy_dataset, toy_clip
    make_toy_dataset(root, ["yes", "no", "cat", "dog"], per_word=40, seed=0, noise_seconds=30)
    (root / "_speech_").mkdir()
    rng = np.random.default_rng(1)
    for i in range(300):
        sf.write(root / "_speech_" / f"t{i:03d}_nohash_0.wav", toy_clip(["cat", "dog", "bird"][i % 3], rng),
                 16000, subtype="PCM_16")
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="a Speech Commands-layout folder (default: a generated toy one)")
    ap.add_argument("--rounds", type=int, default=9)
    a = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from kws.data.acoustics import Acoustics
    from kws.data.augment import Augment
    from kws.data.speech_commands import SpeechCommands
    from kws.frontend import FrontendConfig, features

    tmp = tempfile.TemporaryDirectory()
    data = Path(a.data) if a.data else toy_folder(Path(tmp.name) / "data")
    with threadpool_limits(1):
        plain = SpeechCommands(data, "training", task="custom", words="yes,no")
        clips = [plain[i % len(plain)][0] for i in range(BATCH)]
        t0 = time.process_time()
        ac = Acoustics.for_data(data, seed=0)
        setup = time.process_time() - t0

        def only(**p):
            probs = dict(p_reverb=0.0, p_background=0.0, p_channel=0.0)
            probs.update(p)
            return Augment(None, acoustics=Acoustics(ac.rirs, ac.banks, ac.talkers, **probs))

        def kind(k):
            aug = only(p_background=1.0)
            aug.acoustics.kinds = [k]
            return aug

        noise = data / "_background_noise_"
        variants = {
            "basic (default: noise in 30 %, scale U(0, 0.3))": Augment(noise),
            "basic, noise in 80 % at 0-20 dB (default model v2's)": Augment(noise, p_noise=0.8, snr_db=(0, 20)),
            "speed / shift / volume only": Augment(None),
            "realistic (default: room 50 %, background 80 %, channel 50 %)": Augment(None, acoustics=ac),
            "  room alone (every clip)": only(p_reverb=1.0),
            "  background alone (every clip, kinds mixed)": only(p_background=1.0),
            **{f"    {k} (every clip)": kind(k) for k in ac.kinds},
            "  channel alone (every clip)": only(p_channel=1.0),
        }
        cfg = FrontendConfig()
        fns = [lambda aug=aug: [aug(x, np.random.default_rng([0, i, 1])) for i, x in enumerate(clips)]
               for aug in variants.values()]
        fns.append(lambda: [features(x, cfg) for x in clips])
        times = np.zeros((len(fns), a.rounds))
        for f in fns:                                   # warm-up
            f()
        for r in range(a.rounds):
            for j, f in enumerate(fns):
                t0 = time.process_time()
                f()
                times[j, r] = time.process_time() - t0
    ms = np.median(times, axis=1) * 1e3
    names = list(variants) + ["features of the batch (log-mel, reference)"]
    base, plain_ms = ms[0], ms[2]
    print(f"augment_cost | CPU: {cpu_model()} | 1 thread | batch {BATCH} x 1 s "
          f"| median of {a.rounds} rounds | data {'toy' if not a.data else data}")
    print(f"setup of --acoustics realistic (rooms, banks, babble clips): {setup:.1f} s CPU "
          f"({len(ac.rirs)} rooms; backgrounds: {', '.join(ac.kinds)})")
    print(f"{'variant':<64} {'ms/batch':>9} {'x basic':>8} {'+ over speed/shift/volume':>26}")
    for name, m in zip(names, ms):
        extra = f"{m - plain_ms:+.0f} ms" if name.startswith(" ") else ""
        print(f"{name:<64} {m:9.1f} {m / base:8.2f} {extra:>26}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
