"""kws: keyword spotting with binary neural networks (BiFSMN on bit-packed XOR/popcount kernels)."""

__version__ = "0.1.0"

from kws.errors import KwsError

__all__ = ["KwsError", "__version__"]
