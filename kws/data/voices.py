"""The voices `kws data synth` may use: the whole allowed training list, and one speaker id per voice.

THE VOICE RULE (../shared/recipes/speech-data.md): only the voices listed here may be used for
training or tuning (validation, early stopping, thresholds, hyper-parameters). Other voices of the
same engines (flite `slt`, `awb_time`, RHVoice `slt`, other espeak-ng languages, ...) and all real
recordings are reserved for independent evaluation, so `select_voices` refuses them by name.

840 engine/voice pairs: espeak-ng formant voices = 8 English accents x (plain + 100 variants);
MBROLA (20, via espeak-ng); flite (4); festival (2); pico (1); RHVoice (5). Plus 405 Kokoro-82M
neural voices (allowed since 2026-12-06): its 5 style packs and 400 seeded mixes of them
(`mix+000`..`mix+399`, kws.data.kokoro), each mix one speaker of its own. `restricted` marks the
22 whose licence forbids use in a sold product without permission (MBROLA, RHVoice evgeniy-eng and
lyubov): `--no-restricted` drops them.

Speaker ids: 8 hex digits per engine/voice/variant. Splits follow the Speech Commands rule on the
speaker id (kws.data.layout.which_set) *and* keep voices that sound like one person together: every
voice has a `group` (an espeak-ng variant across all accents, e.g. `en-us+m3` ~ `en+m3`; flite kal /
kal16 / festival kal_diphone = one donor; flite awb ~ RHVoice alan). Groups get their split by a
stratified hash draw: within each stratum (formant groups, licence-free donors, restricted donors)
the groups are ordered by SHA-1 of their name and the first 10 % go to validation, the next 10 % to
testing (at least one each for a stratum of 5 or more groups), so every split has human donors even
with `--no-restricted`. Each voice's id is then the first `sha1("kws-synth:<key>:<k>")[:8]`
(k = 0, 1, ...) whose own Speech Commands split equals its group's: lists made from the ids by the
standard rule are speaker-disjoint at the group level too.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import itertools
from dataclasses import dataclass

from kws.data.kokoro import N_MIXES as KOKORO_MIXES, PACKS as KOKORO_PACKS
from kws.data.layout import split_of_speaker
from kws.errors import KwsError

ENGINES = ("espeak-ng", "mbrola", "flite", "festival", "pico", "rhvoice", "kokoro")
# what `kws data synth` uses without --engines: all of them. With the families taking turns
# (kws.data.synth.make_plan) a third of every word's clips is neural (405 Kokoro voices), a third
# human donors and a third formant: natural-sounding voices are two thirds, over 430 voices.
DEFAULT_ENGINES = ENGINES

ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-us-nyc")
ESPEAK_VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Demonic", "Denis", "Diogo",
    "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike",
    "Nguyen", "RicishayMax", "RicishayMax2", "RicishayMax3", "Storm", "Tweaky", "UniRobot", "adam",
    "anika", "anikaRobot", "announcer", "antonio", "aunty", "belinda", "benjamin", "boris",
    "caleb", "croak", "david", "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5", "fast",
    "grandma", "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "linda", "m1", "m2", "m3", "m4",
    "m5", "m6", "m7", "m8", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul",
    "pedro", "quincy", "rob", "robert", "robosoft", "robosoft2", "robosoft3", "robosoft4",
    "robosoft5", "robosoft6", "robosoft7", "robosoft8", "sandro", "shelby", "steph", "steph2",
    "steph3", "travis", "victor", "whisper", "whisperf", "zac")
MBROLA_VOICES = ("mb-us1", "mb-us2", "mb-us3", "mb-en1", "mb-de1-en", "mb-de2-en", "mb-de3-en",
                 "mb-de4-en", "mb-de5-en", "mb-de6-en", "mb-fr1-en", "mb-fr4-en", "mb-nl2-en",
                 "mb-sw1-en", "mb-sw2-en", "mb-af1-en", "mb-pl1-en", "mb-hu1-en", "mb-gr2-en",
                 "mb-ro1-en")
FLITE_VOICES = ("kal", "kal16", "awb", "rms")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone")
PICO_VOICES = ("en-GB",)
RHVOICE_VOICES = ("alan", "bdl", "clb", "evgeniy-eng", "lyubov")
RESTRICTED_RHVOICE = ("evgeniy-eng", "lyubov")
# voices believed to be one human speaker (see the recipe's donor table)
SAME_DONOR = {("flite", "kal"): "kal", ("flite", "kal16"): "kal", ("festival", "kal_diphone"): "kal",
              ("flite", "awb"): "awb", ("rhvoice", "alan"): "awb"}


def engine_family(engine: str) -> str:
    """"formant" (espeak-ng formant synthesis), "neural" (Kokoro) or "donor" (a recorded human
    voice behind the engine: diphone, unit selection, HMM)."""
    return {"espeak-ng": "formant", "kokoro": "neural"}.get(engine, "donor")


@dataclass(frozen=True)
class Voice:
    """One allowed engine/voice/variant (a "speaker" of the synthetic data set)."""

    engine: str         # one of ENGINES
    voice: str          # engine voice name: en-us, mb-us1, kal16, kal_diphone, en-GB, bdl
    variant: str = ""   # espeak-ng variant (m3, f1, klatt, ...), Kokoro mix number (007), or ""

    @property
    def name(self) -> str:
        """Voice name as given to the engine: `en-us+m3`, `mb-us1`, `kal16`."""
        return f"{self.voice}+{self.variant}" if self.variant else self.voice

    @property
    def key(self) -> str:
        """Unique `engine:name`, e.g. `espeak-ng:en-us+m3`, `rhvoice:bdl`."""
        return f"{self.engine}:{self.name}"

    @property
    def family(self) -> str:
        return engine_family(self.engine)

    @property
    def restricted(self) -> bool:
        """True when the licence forbids use in a sold product without the owner's permission."""
        return self.engine == "mbrola" or (self.engine == "rhvoice"
                                           and self.voice in RESTRICTED_RHVOICE)

    @property
    def group(self) -> str:
        """Voices of one group sound like one speaker and always share a split."""
        if self.engine == "espeak-ng":
            return f"formant:{self.variant or 'plain'}"
        if self.engine == "kokoro":
            return f"neural:{self.name}"
        return f"donor:{SAME_DONOR.get((self.engine, self.voice), self.engine + '/' + self.voice)}"

    @property
    def speaker_id(self) -> str:
        """8 hex digits, unique per voice (see the module doc)."""
        return _speaker_ids()[self.key]


@functools.lru_cache(maxsize=1)
def all_voices() -> tuple[Voice, ...]:
    """The complete allowed list (840 voices), in a fixed order."""
    vs = [Voice("espeak-ng", a, v) for a in ESPEAK_ACCENTS for v in ("",) + ESPEAK_VARIANTS]
    vs += [Voice("mbrola", v) for v in MBROLA_VOICES]
    vs += [Voice("flite", v) for v in FLITE_VOICES]
    vs += [Voice("festival", v) for v in FESTIVAL_VOICES]
    vs += [Voice("pico", v) for v in PICO_VOICES]
    vs += [Voice("rhvoice", v) for v in RHVOICE_VOICES]
    # appended last: the speaker ids of the voices above do not change (see _speaker_ids)
    vs += [Voice("kokoro", v) for v in KOKORO_PACKS]
    vs += [Voice("kokoro", "mix", f"{i:03d}") for i in range(KOKORO_MIXES)]
    return tuple(vs)


@functools.lru_cache(maxsize=1)
def _speaker_ids() -> dict[str, str]:
    ids: dict[str, str] = {}
    used: set[str] = set()
    for v in all_voices():
        target = group_split(v.group)
        for k in itertools.count():
            sid = hashlib.sha1(f"kws-synth:{v.key}:{k}".encode()).hexdigest()[:8]
            if sid not in used and split_of_speaker(sid) == target:
                break
        ids[v.key] = sid
        used.add(sid)
    return ids


def group_split(group: str) -> str:
    """Split ("training" / "validation" / "testing") of a voice group (see the module doc)."""
    return _group_splits()[group]


@functools.lru_cache(maxsize=1)
def _group_splits() -> dict[str, str]:
    strata: dict[str, set[str]] = {}
    for v in all_voices():
        stratum = v.family if v.family != "donor" else f"donor-{v.restricted}"
        strata.setdefault(stratum, set()).add(v.group)
    out = {}
    for groups in strata.values():
        order = sorted(groups, key=lambda g: hashlib.sha1(f"kws-synth-group:{g}".encode()).hexdigest())
        k = max(1, round(0.1 * len(order))) if len(order) >= 5 else 0
        for i, g in enumerate(order):
            out[g] = "validation" if i < k else "testing" if i < 2 * k else "training"
    return out


def find_voice(key: str) -> Voice | None:
    """The allowed voice with this `engine:name` key, or None."""
    return {v.key: v for v in all_voices()}.get(key)


def select_voices(engines: list[str] | None = None, patterns: list[str] | None = None,
                  restricted: bool = True) -> list[Voice]:
    """Allowed voices of the given engines, optionally filtered by name patterns.

    Args:
        engines: subset of ENGINES (None = DEFAULT_ENGINES: all).
        patterns: `engine:name` or `name`, shell wildcards allowed (`espeak-ng:en-us+m*`, `bdl`).
            A name that is not on the allowed list is refused (KwsError): see THE VOICE RULE.
        restricted: False drops the licence-restricted voices.
    """
    engines = list(DEFAULT_ENGINES) if not engines else list(engines)
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        raise KwsError(f"unknown engine(s) {', '.join(bad)}; choose from {', '.join(ENGINES)}")
    pool = [v for v in all_voices() if v.engine in engines and (restricted or not v.restricted)]
    if patterns:
        chosen: dict[str, Voice] = {}
        allowed = all_voices()
        for pat in patterns:
            pat = pat.strip()
            if not pat:
                continue
            eng, _, name = pat.rpartition(":")

            def match(v: Voice) -> bool:
                return (not eng or fnmatch.fnmatchcase(v.engine, eng)) and \
                    fnmatch.fnmatchcase(v.name, name)
            if not any(match(v) for v in allowed):
                raise KwsError(
                    f"voice {pat!r} is not on the allowed training list (only the voices of "
                    "../shared/recipes/speech-data.md may be used for training or tuning; others "
                    "are reserved for evaluation)")
            hits = [v for v in pool if match(v)]
            if not hits:
                raise KwsError(f"voice {pat!r} is excluded by --engines / --no-restricted")
            chosen.update((v.key, v) for v in hits)
        pool = [v for v in pool if v.key in chosen]
    if not pool:
        raise KwsError("no voice left after --engines / --voices / --no-restricted")
    return pool
