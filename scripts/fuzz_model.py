"""Fuzz the .kws loader: every mutated file must load or raise KwsError, nothing else.

    python scripts/fuzz_model.py [--n 1000000] [--seed 0]

The test suite runs 10,000 mutations (tests/test_model_file.py); this script runs as many as you
like and prints the first input that raised anything else (saved to fuzz-crash-<i>.kws).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time

import numpy as np


def tiny_model_bytes() -> bytes:
    """A small valid model file (small enough to parse thousands of times a second)."""
    import tempfile
    from pathlib import Path

    from kws.frontend import FrontendConfig
    from kws.fsmn.config import ArchConfig
    from kws.fsmn.model import random_model
    arch = ArchConfig(n_frames=12, n_features=8, backbone=16, hidden=32, n_blocks=2, n_classes=3,
                      widths=(1.0, 0.5), block_sets=((0, 1), (1,)))
    model = random_model(arch, FrontendConfig(n_mels=8, n_mfcc=8), ["yes", "_unknown_", "_silence_"])
    with tempfile.TemporaryDirectory() as d:
        model.save(Path(d) / "m.kws")
        return (Path(d) / "m.kws").read_bytes()


def _header_span(data: bytes) -> int:
    return 8 + min(struct.unpack("<Q", data[:8])[0], len(data) - 8) if len(data) >= 8 else 0


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random structural mutation of a model file."""
    b = bytearray(data)
    kind = int(rng.integers(0, 9))
    hdr = _header_span(data)
    if kind == 0:                                   # flip bits anywhere
        for _ in range(int(rng.integers(1, 8))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:                                 # flip bits in the header
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, max(1, hdr)))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == 2:                                 # truncate
        b = b[: int(rng.integers(0, len(b)))]
    elif kind == 3:                                 # random bytes over a span
        i = int(rng.integers(0, len(b)))
        n = int(rng.integers(1, 64))
        b[i:i + n] = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
    elif kind == 4:                                 # splice: delete or duplicate a span
        i, j = sorted(int(x) for x in rng.integers(0, len(b), size=2))
        b = b[:i] + b[j:] if rng.random() < 0.5 else b[:j] + b[i:j] + b[j:]
    elif kind == 5:                                 # header length field
        b[:8] = struct.pack("<Q", int(rng.choice([0, 1, 7, hdr, hdr + 8, len(b), 2**31, 2**63 - 1])))
    elif kind == 6:                                 # change digits inside the header JSON
        digits = [i for i in range(8, hdr) if 48 <= b[i] <= 57]
        for i in rng.choice(digits, size=min(len(digits), int(rng.integers(1, 4))), replace=False):
            b[int(i)] = int(rng.integers(48, 58))
    elif kind == 7:                                 # edit the kws metadata as JSON
        try:
            n = struct.unpack("<Q", data[:8])[0]
            header = json.loads(data[8:8 + n])
            info = json.loads(header["__metadata__"]["kws"])
            key = str(rng.choice(["arch", "frontend", "labels", "format_version", "provenance"]))
            junk = [None, -1, 0, 1e308, "x", [], {}, [1, 2], {"a": 1}, True, 2**70][int(rng.integers(0, 11))]
            if isinstance(info.get(key), dict) and info[key] and rng.random() < 0.7:
                sub = str(rng.choice(sorted(info[key])))
                info[key][sub] = junk
            else:
                info[key] = junk
            header["__metadata__"]["kws"] = json.dumps(info)
            raw = json.dumps(header).encode()
            b = bytearray(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
        except Exception:
            pass
    else:                                           # change a tensor's dtype/shape in the header
        try:
            n = struct.unpack("<Q", data[:8])[0]
            header = json.loads(data[8:8 + n])
            name = str(rng.choice(sorted(k for k in header if k != "__metadata__")))
            entry = header[name]
            if rng.random() < 0.5:
                entry["dtype"] = str(rng.choice(["F64", "I64", "U8", "F16", "BOOL", "X"]))
            else:
                entry["shape"] = [int(x) for x in rng.integers(0, 40, size=int(rng.integers(0, 4)))]
            raw = json.dumps(header).encode()
            b = bytearray(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
        except Exception:
            pass
    return bytes(b)


def fuzz(good: bytes, n: int, seed: int) -> dict:
    """Load n mutations of `good`: {"ok": loaded, "KwsError": refused}. Anything else raised
    propagates, with the offending input attached as `exc.fuzz_input`."""
    from kws.errors import KwsError
    from kws.fsmn.model import model_from_bytes
    rng = np.random.default_rng(seed)
    counts = {"ok": 0, "KwsError": 0}
    for _ in range(n):
        data = mutate(good, rng)
        try:
            model_from_bytes(data)
            counts["ok"] += 1
        except KwsError:
            counts["KwsError"] += 1
        except BaseException as e:
            e.fuzz_input = data
            raise
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        counts = fuzz(tiny_model_bytes(), args.n, args.seed)
    except BaseException as e:   # noqa: BLE001 - this is what the fuzzer looks for
        with open("fuzz-crash.kws", "wb") as f:
            f.write(e.fuzz_input)
        print(f"FAIL: {type(e).__name__}: {e} (input saved to fuzz-crash.kws)")
        return 1
    print(f"{args.n} mutations in {time.time() - t0:.1f} s: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
