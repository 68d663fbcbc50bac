"""The .kws model file: a safetensors file (never a pickle) with JSON metadata.

Layout (B = backbone, H = hidden, C = classes, F = features, L = memory taps, Bw/Hw = channels at
an operating point's width; packed = uint64 rows in the kernels' bit convention, see
kws/csrc/kernels.h):

    frontend.mean, frontend.std          float32 [F]       feature normalisation
    frontend.pcen                        float32 [5, F]    (arch input_norm "pcen", format 4) PCEN
                                         parameters per band: smooth, alpha, delta, root, eps
                                         (kws/fsmn/pcen.py)
    frontend.window, frontend.mel[, frontend.dct]   the front-end's librosa matrices
                                         (kws.frontend.librosa_matrices: inference needs no librosa)
    stem.weight                          float32 [B, stem_kernel*F]
    block{b}.mem                         packed  [L, words(B)]   memory taps, past -> future
    block{b}.up                          packed  [H, words(B)]
    block{b}.down                        packed  [B, words(H)]
    classifier.weight                    float32 [C, B]
  per operating point, prefix "op/<width>/<blocks joined by ->/" (e.g. "op/0.5/1-3-5-7/"):
    stem.scale, stem.shift, stem.prelu   float32 [Bw]
    block{b}.up_in_thresh [, .mem_in_thresh]     float32 [Bw]   thresholds of the signs of h taken
                                         before the up projection / (arch memory_input "binary")
                                         the memory conv (format 2; format-1 files, all binary
                                         memory, load with zeros: plain sign); float32
                                         [P, Bw] for arch up_planes P > 1 (format 3): the
                                         thresholds of each sign plane of h
    block{b}.mem_scale, .mem_shift, .mem_prelu   float32 [Bw]   (b in the point's block set)
    block{b}.up_thresh  int32 [Hw], block{b}.up_flip uint8 [Hw]  (BN + scale + sign folded)
    block{b}.down_scale, .down_shift     float32 [Bw]
    head.scale, head.shift               float32 [Bw]
    classifier.bias                      float32 [C]

Metadata: safetensors "__metadata__" = {"kws": JSON} with format "kws-model", format_version,
frontend (kws.frontend.FrontendConfig), labels, arch (ArchConfig: widths and block sets),
provenance (free-form: how it was trained), and optionally thresholds ({keyword label: firing
threshold in (0, 1]}, calibrated for the model: kws.Detector's default; files without it load
as before and the Detector uses kws.thresholds.DEFAULT_THRESHOLD) and point_thresholds ({operating
point name "0.5x4": {label: threshold}}, `kws calibrate`: thinner points score differently, so each
gets its own; they override `thresholds` at that point).  Loading validates all of it and every tensor's
dtype and shape, and raises KwsError for anything else.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kws.errors import KwsError
from kws.fileio import atomic_path
from kws.fsmn.config import ArchConfig, OperatingPoint

FORMAT = "kws-model"
FORMAT_VERSION = 4      # 2 added the per-channel sign thresholds (mem_in_thresh, up_in_thresh),
                        # 3 the arch's up_planes (several sign planes of h into the up projection),
                        # 4 the arch's input_norm (PCEN of each window: frontend.pcen)
MAX_FILE_BYTES = 512 * 1024 * 1024
NON_KEYWORDS = ("_unknown_", "_silence_")     # labels a model scores but never reports
MAX_HEADER_BYTES = 16 * 1024 * 1024

_DTYPES = {"float64": np.float64, "float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint64": np.uint64}


def words(k: int) -> int:
    return (int(k) + 63) // 64


def op_prefix(op: OperatingPoint) -> str:
    return f"op/{op.width:g}/{'-'.join(map(str, op.blocks))}/"


def expected_tensors(arch: ArchConfig, frontend=None) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every tensor a model of this architecture (and front-end config, if given) must hold:
    name -> (dtype name, shape)."""
    B, H, F, C, L = arch.backbone, arch.hidden, arch.n_features, arch.n_classes, arch.taps
    spec = {
        "frontend.mean": ("float32", (F,)),
        "frontend.std": ("float32", (F,)),
        "stem.weight": ("float32", (B, arch.stem_inputs)),
        "classifier.weight": ("float32", (C, B)),
    }
    for b in range(arch.n_blocks):
        spec[f"block{b}.mem"] = ("uint64", (L, words(B)))
        spec[f"block{b}.up"] = ("uint64", (H, words(B)))
        spec[f"block{b}.down"] = ("uint64", (B, words(H)))
    for op in arch.operating_points:
        p = op_prefix(op)
        bw, hw = arch.channels(op.width)
        for name in ("stem.scale", "stem.shift", "stem.prelu", "head.scale", "head.shift"):
            spec[p + name] = ("float32", (bw,))
        spec[p + "classifier.bias"] = ("float32", (C,))
        for b in op.blocks:
            # (this order is random_model's draw order: tests pin random models' behaviour)
            for name in ("up_in_thresh", "mem_scale", "mem_shift", "mem_prelu", "down_scale",
                         "down_shift") + (("mem_in_thresh",) if arch.memory_input == "binary" else ()):
                spec[f"{p}block{b}.{name}"] = ("float32", (bw,))
            if arch.up_planes > 1:
                spec[f"{p}block{b}.up_in_thresh"] = ("float32", (arch.up_planes, bw))
            spec[f"{p}block{b}.up_thresh"] = ("int32", (hw,))
            spec[f"{p}block{b}.up_flip"] = ("uint8", (hw,))
    if arch.input_norm == "pcen":
        spec["frontend.pcen"] = ("float32", (5, F))
    if frontend is not None:
        from kws.frontend import matrix_shapes
        for name, dt_shape in matrix_shapes(frontend).items():
            spec[f"frontend.{name}"] = dt_shape
    return spec


def frontend_matrices(model: "Model") -> dict[str, np.ndarray]:
    """The front-end matrices stored in a model, keyed as kws.frontend expects them."""
    return {k[len("frontend."):]: v for k, v in model.tensors.items()
            if k in ("frontend.window", "frontend.mel", "frontend.dct")}


@dataclass
class Model:
    """A loaded (or freshly exported) binary FSMN: tensors + what is needed to run them."""

    arch: ArchConfig
    frontend: "object"                      # kws.frontend.FrontendConfig
    labels: list[str]
    tensors: dict[str, np.ndarray]
    provenance: dict = field(default_factory=dict)
    path: str | None = None
    thresholds: dict | None = None          # {keyword label: threshold}: the Detector's default
    point_thresholds: dict | None = None    # {point name: {keyword label: threshold}}: overrides

    def __post_init__(self):
        if self.path is None:   # built in memory (export, tests): add the librosa matrices
            from kws.frontend import FrontendConfig, librosa_matrices
            if isinstance(self.frontend, FrontendConfig) and "frontend.mel" not in self.tensors:
                self.tensors = {**self.tensors, **{f"frontend.{k}": v for k, v in
                                                   librosa_matrices(self.frontend).items()}}
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        from kws.frontend import FrontendConfig
        if not isinstance(self.arch, ArchConfig):
            raise KwsError("model: arch must be an ArchConfig")
        if not isinstance(self.frontend, FrontendConfig):
            raise KwsError("model: frontend must be a kws.frontend.FrontendConfig")
        if self.frontend.n_features != self.arch.n_features:
            raise KwsError(f"model: frontend gives {self.frontend.n_features} features per frame "
                           f"but the network expects {self.arch.n_features}")
        if self.arch.input_norm == "pcen" and self.frontend.kind != "logmel":
            raise KwsError("model: PCEN (arch input_norm 'pcen') needs log-mel features")
        if (not isinstance(self.labels, list) or len(self.labels) != self.arch.n_classes
                or not all(isinstance(s, str) and 0 < len(s) <= 100 for s in self.labels)
                or len(set(self.labels)) != len(self.labels)):
            raise KwsError(f"model: labels must be {self.arch.n_classes} distinct non-empty strings")
        spec = expected_tensors(self.arch, self.frontend)
        missing = sorted(set(spec) - set(self.tensors))
        if missing:
            raise KwsError(f"model: {len(missing)} tensor(s) missing, e.g. {missing[0]!r}")
        extra = sorted(set(self.tensors) - set(spec))
        if extra:
            raise KwsError(f"model: unexpected tensor {extra[0]!r} for this architecture")
        for name, (dtype, shape) in spec.items():
            t = self.tensors[name]
            if not isinstance(t, np.ndarray) or t.dtype != _DTYPES[dtype] or t.shape != shape:
                got = f"{t.dtype} {t.shape}" if isinstance(t, np.ndarray) else type(t).__name__
                raise KwsError(f"model: tensor {name!r} must be {dtype} {shape}, got {got}")
            if t.dtype.kind == "f" and not np.isfinite(t).all():
                raise KwsError(f"model: tensor {name!r} holds NaN or infinite values")
        if self.thresholds is not None:
            self.thresholds = self._checked_thresholds(self.thresholds, "thresholds")
        if self.point_thresholds is not None:
            names = [op.name for op in self.arch.operating_points]
            if not isinstance(self.point_thresholds, dict) or not all(p in names for p in self.point_thresholds):
                raise KwsError(f"model: point_thresholds must map operating points ({', '.join(names)}) "
                               f"to thresholds, got {self.point_thresholds!r:.200}")
            self.point_thresholds = {p: self._checked_thresholds(t, f"point_thresholds[{p}]")
                                     for p, t in self.point_thresholds.items()}
        if (self.tensors["frontend.std"] <= 0).any():
            raise KwsError("model: frontend.std must be positive")
        if "frontend.pcen" in self.tensors:
            from kws.fsmn.pcen import check_params
            try:
                check_params(self.tensors["frontend.pcen"], self.arch.n_features)
            except KwsError as e:
                raise KwsError(f"model: frontend.pcen: {e}") from None
        if (self.tensors["frontend.mel"] < 0).any() or not (self.tensors["frontend.mel"] > 0).any(axis=1).all():
            raise KwsError("model: frontend.mel must be non-negative with no empty band")

    def _checked_thresholds(self, value, what: str) -> dict:
        from kws.thresholds import check_threshold
        keywords = [l for l in self.labels if l not in NON_KEYWORDS]
        if not isinstance(value, dict) or not all(k in keywords for k in value):
            raise KwsError(f"model: {what} must map keyword labels ({', '.join(keywords)}) "
                           f"to values in (0, 1], got {value!r:.200}")
        try:
            return {k: check_threshold(v, f"threshold of {k!r}") for k, v in value.items()}
        except ValueError as e:
            raise KwsError(f"model: {what}: {e}") from None

    def thresholds_for(self, op: OperatingPoint) -> dict:
        """The calibrated {label: threshold} at an operating point (point_thresholds over
        thresholds); {} when the model has none."""
        return {**(self.thresholds or {}), **(self.point_thresholds or {}).get(op.name, {})}

    @property
    def operating_points(self) -> list[OperatingPoint]:
        return self.arch.operating_points

    def op_tensors(self, op: OperatingPoint) -> dict[str, np.ndarray]:
        """The per-operating-point tensors, without the prefix."""
        p = op_prefix(op)
        return {k[len(p):]: v for k, v in self.tensors.items() if k.startswith(p)}

    # ------------------------------------------------------------------ file I/O
    def metadata(self) -> dict:
        import kws
        # the lowest version that holds the file: models without PCEN stay readable by kws that
        # predates format 4
        version = FORMAT_VERSION if self.arch.input_norm == "pcen" else 3
        meta = {"format": FORMAT, "format_version": version, "kws_version": kws.__version__,
                "frontend": self.frontend.to_dict(), "labels": list(self.labels),
                "arch": self.arch.to_dict(), "provenance": self.provenance}
        if self.thresholds is not None:
            meta["thresholds"] = dict(self.thresholds)
        if self.point_thresholds is not None:
            meta["point_thresholds"] = {p: dict(t) for p, t in self.point_thresholds.items()}
        return meta

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (temp file + rename): a crash never leaves half a model behind."""
        from safetensors.numpy import save_file
        self.validate()
        tensors = {k: np.ascontiguousarray(v) for k, v in self.tensors.items()}
        with atomic_path(path) as tmp:
            save_file(tensors, tmp, metadata={"kws": json.dumps(self.metadata())})


def _read_header(data: bytes) -> dict:
    """The safetensors JSON header, checked before the library sees the file."""
    if len(data) < 8:
        raise KwsError("not a kws model: file shorter than a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise KwsError("not a kws model: safetensors header length is larger than the file "
                       "(truncated or corrupt)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise KwsError(f"corrupt model header: {type(e).__name__}") from None
    if not isinstance(header, dict):
        raise KwsError("corrupt model header: not a JSON object")
    return header


def model_from_bytes(data: bytes, source: str = "<bytes>") -> Model:
    """Parse and validate a .kws file's bytes. Raises KwsError for anything that is not a valid
    model of a supported version (truncated, corrupted, hostile, wrong version, wrong tensors)."""
    from kws.frontend import FrontendConfig
    header = _read_header(data)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get("kws"), str):
        raise KwsError(f"{source}: safetensors file without kws metadata (not a kws model)")
    try:
        info = json.loads(meta["kws"])
    except (json.JSONDecodeError, RecursionError):
        raise KwsError(f"{source}: kws metadata is not valid JSON") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise KwsError(f"{source}: not a kws model (format {info.get('format') if isinstance(info, dict) else None!r})")
    version = info.get("format_version")
    if version not in (1, 2, 3, FORMAT_VERSION):
        raise KwsError(f"{source}: model format version {version!r} is not supported by this kws "
                       f"(supports 1 to {FORMAT_VERSION}); upgrade kws or re-export the model")
    arch = ArchConfig.from_dict(info.get("arch"))
    frontend = FrontendConfig.from_dict(info.get("frontend"))
    labels = info.get("labels")
    provenance = info.get("provenance", {})
    if not isinstance(provenance, dict):
        raise KwsError(f"{source}: provenance must be a JSON object")
    # cheap structural checks on the header before any tensor is materialised
    spec = expected_tensors(arch, frontend)
    names = {k for k in header if k != "__metadata__"}
    added = {k: spec[k] for k in spec if k.endswith("_in_thresh")} if version == 1 else {}
    names |= set(added)         # format 1 predates the sign thresholds: they are zero
    if names != set(spec):
        missing, extra = sorted(set(spec) - names), sorted(names - set(spec))
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {extra[0]!r}"
        raise KwsError(f"{source}: {what}")
    try:
        from safetensors.numpy import load
    except ImportError as e:  # a broken install, not a broken file: say so
        raise KwsError(f"{source}: cannot read model files without the safetensors package "
                       f"({e}); pip install 'safetensors>=0.4'") from None
    try:
        tensors = load(data)
    except Exception as e:   # the Rust parser's SafetensorError and friends: corrupt file
        raise KwsError(f"{source}: corrupt tensor data ({type(e).__name__}: {str(e)[:200]})") from None
    for name, (dtype, shape) in added.items():
        tensors[name] = np.zeros(shape, _DTYPES[dtype])
    model = Model(arch=arch, frontend=frontend, labels=labels, tensors=tensors,
                  provenance=provenance, path=source, thresholds=info.get("thresholds"),
                  point_thresholds=info.get("point_thresholds"))
    return model


def load_model(path: str | os.PathLike) -> Model:
    """Load and validate a .kws model file.

    Example:
        >>> import kws
        >>> model = kws.load_model("model.kws")                          # doctest: +SKIP
        >>> [op.name for op in model.operating_points]                   # doctest: +SKIP
        ['1x8', '1x4', '1x2', '0.5x8', ...]
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.is_dir():
        raise KwsError(f"model path is a folder, not a .kws file: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise KwsError(f"{path}: {size} bytes is too large for a kws model")
    return model_from_bytes(path.read_bytes(), str(path))


def random_model(arch: ArchConfig | None = None, frontend=None, labels=None, seed: int = 0) -> Model:
    """A model with random but well-scaled parameters (tests, benchmarks; not for detection)."""
    from kws.frontend import FrontendConfig
    arch = arch or ArchConfig()
    frontend = frontend or FrontendConfig()
    labels = labels or [f"class{i}" for i in range(arch.n_classes)]
    rng = np.random.default_rng(seed)
    spec = expected_tensors(arch)         # the frontend matrices are added by Model
    t = {}
    for name, (dtype, shape) in spec.items():
        leaf = name.rsplit(".", 1)[-1]
        if dtype == "uint64":
            t[name] = rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)
        elif leaf == "up_thresh":
            k = arch.backbone * arch.up_planes   # thresholds near the centre of the dot product's range
            t[name] = rng.integers(-max(1, int(k ** 0.5)), max(1, int(k ** 0.5)) + 1, size=shape).astype(np.int32)
        elif leaf == "up_flip":
            t[name] = (rng.random(shape) < 0.2).astype(np.uint8)
        elif name == "frontend.pcen":
            from kws.fsmn.pcen import default_params
            t[name] = default_params(arch.n_features)
        elif leaf == "std":       # features in dB, or PCEN's (~0-5)
            t[name] = (rng.uniform(5, 15, shape) if arch.input_norm == "global"
                       else rng.uniform(0.2, 1, shape)).astype(np.float32)
        elif leaf == "mean":
            t[name] = (rng.uniform(-60, -20, shape) if arch.input_norm == "global"
                       else rng.uniform(0, 1, shape)).astype(np.float32)
        elif leaf in ("prelu", "mem_prelu"):
            t[name] = rng.uniform(0.05, 0.3, shape).astype(np.float32)
        elif leaf in ("mem_scale", "down_scale"):
            fan_in = arch.taps if leaf == "mem_scale" else arch.hidden
            t[name] = (rng.uniform(0.5, 1.5, shape) / fan_in ** 0.5).astype(np.float32)
        elif name == "stem.weight":
            t[name] = (rng.standard_normal(shape) / arch.stem_inputs ** 0.5).astype(np.float32)
        elif name == "classifier.weight":
            t[name] = (rng.standard_normal(shape) / arch.backbone ** 0.5).astype(np.float32)
        elif leaf in ("scale",):
            t[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif leaf == "up_in_thresh" and len(shape) == 2:   # sign planes: increasing per channel
            t[name] = np.sort(0.1 * rng.standard_normal(shape), axis=0).astype(np.float32)
        else:   # shifts and biases
            t[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    return Model(arch=arch, frontend=frontend, labels=list(labels), tensors=t,
                 provenance={"random": True, "seed": seed})
