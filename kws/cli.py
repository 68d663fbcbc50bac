"""The `kws` command line: one parser, one subcommand module per job.

Each subcommand lives beside the code it drives and exposes `register(subparsers)`, which adds its
parser and sets `func(args) -> int`. Registration must stay cheap (no torch / heavy imports at module
top) so that `kws --help` is instant; heavy imports happen inside `func`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# kws's float layers are tiny: a multi-threaded BLAS only adds threads that spin between the
# inferences (measured: 65 % of a core busy-waiting in `kws listen`).  Set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import kws
from kws.errors import KwsError

# module path of every subcommand group, in the order `kws --help` lists them
SUBCOMMAND_MODULES = [
    "kws.listen",          # listen, devices
    "kws.data.cli",        # data synth / data info
    "kws.distill.cli",     # train, eval, export, calibrate, mine
    "kws.bench",           # bench
    "kws.serve",           # serve (Wyoming protocol)
]

# the docs/ page that explains each subcommand, named at the end of its --help (and of its
# sub-subcommands': kws data synth); tests/test_docs.py checks every registered one has an existing page
DOCS_PAGES = {
    "listen": "microphone.md",
    "devices": "microphone.md",
    "data": "data.md",
    "train": "training.md",
    "eval": "training.md",
    "calibrate": "training.md",
    "mine": "training.md",
    "export": "training.md",
    "bench": "performance.md",
    "serve": "serve.md",
}


def _point_to_docs(parser: argparse.ArgumentParser, page: str) -> None:
    # a pip-installed user has no docs/ folder: name the repository it lives in
    parser.epilog = f"Documentation: docs/{page} in the kws repository."
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _point_to_docs(child, page)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too (argparse prints the whole usage first); subcommand parsers
    inherit the class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kws",
        description="Keyword spotting with binary neural networks (BiFSMN).",
    )
    parser.add_argument("--version", action="version", version=f"kws {kws.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:      # a real missing dependency inside the module: surface it
                raise
            continue                # subcommand not built yet in this checkout
        module.register(sub)
    pages: dict[str, list[str]] = {}
    for name, subparser in sub.choices.items():
        if name in DOCS_PAGES:
            _point_to_docs(subparser, DOCS_PAGES[name])
            pages.setdefault(DOCS_PAGES[name], []).append(name)
    parser.epilog = ("Documentation: README.md and docs/ in the kws repository: "
                     + "; ".join(f"{', '.join(names)}: docs/{page}" for page, names in pages.items())
                     + ".")
    return parser


def add_detector_options(p: argparse.ArgumentParser) -> None:
    """The options every subcommand that runs a kws.Detector takes: model, operating point,
    thresholds (listen, serve)."""
    from kws.thresholds import DEFAULT_THRESHOLD
    p.add_argument("--model", default=None, help="a .kws model (default: the shipped model)")
    p.add_argument("--width", type=float, default=1.0, help="operating point width: 1.0, 0.5, 0.25")
    p.add_argument("--blocks", type=int, default=None, help="operating point depth: 8, 4, 2 blocks")
    p.add_argument("--threshold", default=None,
                   help="smoothed posterior to fire, (0-1]: one value (0.6) or per keyword "
                        f"(yes=0.7,no=0.8; others keep {DEFAULT_THRESHOLD})")


class CliError(Exception):
    """An error with its own exit code (e.g. 2 for a missing audio device)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as e:
        print(f"kws: error: {e}", file=sys.stderr)
        return e.code
    except (KwsError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        print(f"kws: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kws: interrupted", file=sys.stderr)
        return 130
