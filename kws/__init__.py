"""kws: keyword spotting with binary neural networks (BiFSMN on bit-packed XOR/popcount kernels).

    >>> import kws
    >>> det = kws.Detector(width=0.5, blocks=4)          # doctest: +SKIP
    >>> for d in det.feed(audio_chunk):                  # doctest: +SKIP
    ...     print(d.time_s, d.label, d.score)
"""

__version__ = "0.1.0"

from kws.errors import KwsError


def __getattr__(name):
    # Lazy: `import kws` (and `kws --help`) stays fast; numpy/kernels load on first use.
    if name in ("Detector", "Detection"):
        from kws import detector
        return getattr(detector, name)
    if name in ("load_model", "Model"):
        from kws.fsmn import model
        return getattr(model, name)
    raise AttributeError(f"module 'kws' has no attribute {name!r}")


__all__ = ["Detector", "Detection", "KwsError", "Model", "load_model", "__version__"]
