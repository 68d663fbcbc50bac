"""Synthetic `_background_noise_` files: white, pink, brown, mains hum, fan, running tap, clinks,
babble. Each is float32 16 kHz mono, `seconds` long, RMS -20 dBFS (peak <= 0.99), and fully
determined by the rng it is given. Babble mixes 6 TTS talkers (`babble(talkers, rng)`, the speech
rendered by the caller with training-split voices, from text that avoids the keywords).
"""

from __future__ import annotations

import math

import numpy as np

from kws.data.clip import colored_noise

SAMPLE_RATE = 16000
TARGET_DBFS = -20.0
NOISE_NAMES = ("white_noise", "pink_noise", "brown_noise", "hum_50hz", "hum_60hz", "fan",
               "running_tap", "clinks", "babble")
DESCRIPTIONS = {
    "white_noise": "Gaussian white noise",
    "pink_noise": "1/f (pink) noise",
    "brown_noise": "1/f^2 (brown) noise, flat below 20 Hz",
    "hum_50hz": "50 Hz mains hum: 8 harmonics, slow wobble, faint pink noise",
    "hum_60hz": "60 Hz mains hum: 8 harmonics, slow wobble, faint pink noise",
    "fan": "fan: low-passed brown/pink noise, blade-pass tone with harmonics, slow modulation",
    "running_tap": "running water: band-passed noise with a fast random envelope and bubble chirps",
    "clinks": "dishes: sparse inharmonic decaying partials over a faint noise floor",
    "babble": "6 overlapping TTS talkers (training-split voices, text without the keywords)",
}

# babble text: everyday words (keywords and their folder words are removed by the caller)
BABBLE_WORDS = (
    "the a and of to in is it that was for with as his they be at one have this from or had by "
    "word but what some we can out other were all there when your how said an each she which do "
    "their time if will way about many then them write would like so these her long make thing see "
    "him two has look more day could come did number sound most people my over know water than "
    "call first who may been now find any new work part take get place made live where after back "
    "little only round man year came show every good me give our under name very through just form "
    "sentence great think say help low line differ turn cause much mean before move right boy old "
    "too same tell does set three want air well also play small end put home read hand port large "
    "spell add even land here must big high such follow act why ask men change went light kind "
    "need house picture try us again animal point mother world near build self earth father head "
    "stand own page should country found answer school grow study still learn plant cover food sun "
    "four between state keep eye never last let thought city tree cross farm hard start might story "
    "saw far sea draw left late run while press close night real life few north open seem together "
    "next white children begin got walk example ease paper group always music those both mark often "
    "letter until mile river car feet care second book carry took science eat room friend began "
    "idea fish mountain once base hear horse cut sure watch colour face wood main enough plain girl "
    "usual young ready above ever red list though feel talk bird soon body dog family direct pose "
    "leave song measure door product black short numeral class wind question happen complete ship "
    "area half rock order fire south problem piece told knew pass since top whole king space heard "
    "best hour better true during hundred five remember step early hold west ground interest reach "
    "fast verb sing listen six table travel less morning ten simple several vowel toward war lay "
    "against pattern slow center love person money serve appear road map rain rule govern pull "
    "cold notice voice unit power town fine certain fly fall lead cry dark machine note wait plan "
    "figure star box noun field rest correct able pound done beauty drive stood contain front teach "
    "week final gave green quick develop ocean warm free minute strong special mind behind clear "
    "tail produce fact street inch multiply nothing course stay wheel full force blue object decide "
    "surface deep moon island foot system busy test record boat common gold possible plane stead "
    "dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring "
    "distant fill east paint language among").split()


def _normalize(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64) - float(np.mean(x))
    x *= 10.0 ** (TARGET_DBFS / 20.0) / (np.sqrt(np.mean(x ** 2)) + 1e-20)
    peak = float(np.abs(x).max())
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32)


def _lowpass(x: np.ndarray, cutoff_hz: float, order: float = 4.0) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE)
    spec /= np.sqrt(1.0 + (f / cutoff_hz) ** (2 * order))
    return np.fft.irfft(spec, x.size)


def _bandpass(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE)
    spec *= 1.0 / np.sqrt(1.0 + (lo / np.maximum(f, 1.0)) ** 4) / np.sqrt(1.0 + (f / hi) ** 4)
    return np.fft.irfft(spec, x.size)


def _envelope(rng: np.random.Generator, n: int, rate_hz: float) -> np.ndarray:
    """Smooth random envelope in [0, 1] varying at about `rate_hz`."""
    e = _lowpass(rng.standard_normal(n), rate_hz, 2.0)
    e = (e - e.min()) / (np.ptp(e) + 1e-20)
    return e


def make_noise(name: str, rng: np.random.Generator, seconds: float = 60.0) -> np.ndarray:
    """One synthetic noise (any NOISE_NAMES entry but "babble"): float32 [seconds * 16000]."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    if name in ("white_noise", "pink_noise", "brown_noise"):
        x = colored_noise(rng, n, {"white_noise": 0, "pink_noise": 1, "brown_noise": 2}[name])
    elif name in ("hum_50hz", "hum_60hz"):
        f0 = 50.0 if name == "hum_50hz" else 60.0
        f0 *= 1.0 + rng.uniform(-0.002, 0.002)
        x = np.zeros(n)
        for k in range(1, 9):
            a = rng.uniform(0.3, 1.0) / k ** 1.2 * (1.5 if k in (1, 3) else 1.0)
            x += a * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
        x *= 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
        x = _normalize(x) + 0.03 * colored_noise(rng, n, 1)
    elif name == "fan":
        body = _lowpass(0.6 * colored_noise(rng, n, 2) + 0.4 * colored_noise(rng, n, 1), 1500.0)
        body /= np.sqrt(np.mean(body ** 2)) + 1e-20
        fb = rng.uniform(80.0, 140.0)
        tone = sum(np.sin(2 * np.pi * k * fb * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
        x = (body + 0.25 * tone) * (1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t))
    elif name == "running_tap":
        water = _bandpass(colored_noise(rng, n, 0.5), 400.0, 7000.0)
        water /= np.sqrt(np.mean(water ** 2)) + 1e-20
        x = water * (0.5 + 0.5 * _envelope(rng, n, 20.0))
        for _ in range(int(60 * seconds)):                # bubbles: short rising chirps
            start = int(rng.integers(0, n - 800))
            dur = int(rng.integers(80, 640))
            tt = np.arange(dur) / SAMPLE_RATE
            f = rng.uniform(500.0, 2500.0) * (1.0 + 8.0 * tt)
            x[start:start + dur] += rng.uniform(0.3, 1.5) * np.sin(2 * np.pi * np.cumsum(f) /
                                                                    SAMPLE_RATE) * np.exp(-tt / 0.006)
    elif name == "clinks":
        x = 0.05 * colored_noise(rng, n, 1)
        for _ in range(int(1.5 * seconds)):
            start = int(rng.integers(0, n - 4000))
            dur = int(rng.integers(1600, 4000))
            tt = np.arange(dur) / SAMPLE_RATE
            ev = np.zeros(dur)
            base = rng.uniform(1500.0, 4000.0)
            for ratio in (1.0, rng.uniform(1.4, 1.9), rng.uniform(2.3, 3.1)):
                ev += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * base * ratio * tt
                                                     + rng.uniform(0, 2 * np.pi))
            x[start:start + dur] += rng.uniform(0.5, 4.0) * ev * np.exp(-tt / rng.uniform(0.02, 0.12))
    else:
        raise ValueError(f"unknown noise {name!r}")
    return _normalize(x)


def tones(rng: np.random.Generator, seconds: float = 60.0) -> np.ndarray:
    """Sustained harmonic tones with no words in them, float32 [seconds * 16000] at TARGET_DBFS:
    one after another, often overlapping, 0.3-4 s each: f0 60-900 Hz (log-uniform), steady, gliding
    up to an octave or with vibrato (3-8 Hz, 0.1-1 semitone), 1-15 harmonics with a random spectral
    tilt (below 7.8 kHz), random attack and decay, -10-0 dB each. What a held note, a drone, a hum
    or a rubbed glass has in common with a vowel: every default model up to v3 fired on such tones
    (v3 at 0.5x4: 69 times in `kws data stream --kind tones --minutes 30 --seed 5`), and real
    music is full of them."""
    n = int(seconds * SAMPLE_RATE)
    out, pos = np.zeros(n), 0
    while pos < n:
        m = int(rng.uniform(0.3, 4.0) * SAMPLE_RATE)
        t = np.arange(m) / SAMPLE_RATE
        f0 = math.exp(rng.uniform(math.log(60.0), math.log(900.0)))
        shape = int(rng.integers(3))
        if shape == 0:
            semis = np.zeros(m)
        elif shape == 1:
            semis = np.linspace(0.0, rng.uniform(-12.0, 12.0), m)
        else:
            semis = rng.uniform(0.1, 1.0) * np.sin(2 * np.pi * rng.uniform(3.0, 8.0) * t + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(f0 * 2.0 ** (semis / 12.0)) / SAMPLE_RATE
        top = f0 * 2.0 ** (semis.max() / 12.0)
        tilt, x = rng.uniform(0.0, 2.0), np.zeros(m)
        for k in range(1, int(rng.integers(1, 16)) + 1):
            if k * top > 7800.0:
                break
            x += k ** -tilt * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
        attack = min(m // 2, int(rng.uniform(0.005, 0.3) * SAMPLE_RATE))
        decay = min(m // 2, int(rng.uniform(0.02, 1.0) * SAMPLE_RATE))
        x[:attack] *= np.linspace(0.0, 1.0, attack)
        x[m - decay:] *= np.linspace(1.0, 0.0, decay) ** rng.uniform(1.0, 3.0)
        x *= 10.0 ** (rng.uniform(-10.0, 0.0) / 20.0) / (np.sqrt(np.mean(x ** 2)) + 1e-20)
        end = min(n, pos + m)
        out[pos:end] += x[:end - pos]
        pos += int(m * rng.uniform(0.3, 1.1))
    return _normalize(out)


def babble_text(rng: np.random.Generator, exclude: set[str], words: int = 220) -> str:
    """Random everyday sentences (about `words` words) without any word in `exclude`."""
    vocab = [w for w in BABBLE_WORDS if w not in exclude]
    out, left = [], words
    while left > 0:
        k = int(rng.integers(5, 13))
        out.append(" ".join(rng.choice(vocab, size=k)) + ".")
        left -= k
    return " ".join(out)


def babble(talkers: list[np.ndarray], rng: np.random.Generator, seconds: float = 60.0
           ) -> np.ndarray:
    """Mix talkers (float32 16 kHz speech, any lengths) into `seconds` of babble, float32.

    Each talker is looped to length with a random circular offset and set to equal RMS.
    """
    n = int(seconds * SAMPLE_RATE)
    mix = np.zeros(n)
    for x in talkers:
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            continue
        x = np.tile(x, int(np.ceil(n / x.size)) + 1)
        off = int(rng.integers(0, x.size - n + 1))
        seg = x[off:off + n]
        mix += seg / (np.sqrt(np.mean(seg ** 2)) + 1e-20)
    mix += 0.01 * colored_noise(rng, n, 1)
    return _normalize(mix)
