"""The ``medseg`` command line: the same MedSegCore logic the Slicer modules use.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args)``.
A driver: may import every other folder, including the ``mrml`` adapter (segmentations are written
through slicer-core); nothing imports ``cli`` but ``__main__`` and the console script.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import MedSegError
from ..image.atomic import Terminated, install_signal_cleanup

SUBCOMMANDS = ["info", "threshold", "evaluate", "predict", "train", "demo", "models"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced, as in tests)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (the full usage is one ``--help`` away); subcommands inherit it."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _one_line(text: str) -> str:
    """A multi-line message (e.g. a model card's list of problems) joined into one line."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return lines[0] + " " + "; ".join(lines[1:])


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="medseg",
        description="MedSeg: medical image segmentation with Slicer's segmentation files. "
                    "Threshold, deep-learning prediction and evaluation from the command line.",
        epilog="Run 'medseg SUBCOMMAND --help' for the options of each subcommand.")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug messages")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(__name__):
                continue          # subcommand not part of this version
            raise
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``medseg`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logger = logging.getLogger("medseg")
    logger.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("medseg: %(message)s"))
        logger.addHandler(handler)
    install_signal_cleanup()            # SIGTERM removes temporary files as SIGINT does
    try:
        return int(args.func(args) or 0)
    except MedSegError as exc:
        print(f"medseg {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"medseg {args.command}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"medseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"medseg {args.command}: error: not enough memory for this input", file=sys.stderr)
        return 2
    except OSError as exc:              # a file problem no check above foresaw: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"medseg {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
