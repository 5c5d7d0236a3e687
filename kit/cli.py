"""The ``kit`` command line: one sub-command per module in :mod:`kit.commands`.

Command modules import only ``argparse`` at the top so that ``kit score`` starts fast;
each imports what it needs inside its ``run`` function.
"""
import argparse
import os
import sys
import traceback
from importlib import import_module

from kit._version import __version__
from kit.errors import UserError
from kit.safetext import printable

COMMANDS = ["prepare", "train", "predict", "score", "leaderboard", "demo", "kaggle", "export", "serve", "participants",
            "submit", "reveal"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    """The full argument parser with every sub-command registered."""
    parser = _Parser(prog="kit", description="Predict molecular similarity from pairs of MS/MS spectra.")
    parser.add_argument("--version", action="version", version=f"specsim-kit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        import_module(f"kit.commands.{name}").add_parser(sub)
    return parser


def main(argv=None):
    """Run the command line; return the exit code (0 ok, 2 user error, 1 internal failure)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_model_options", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return args.run(args) or 0
    except UserError as exc:
        # One line, and nothing a file name or a quoted line could make a terminal run.
        message = printable(" ".join(str(exc).split("\n")).strip())
        print(f"kit {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `kit leaderboard | head` closes stdout early: not a failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:  # noqa: BLE001 - the last resort: say it is our fault, not the user's
        traceback.print_exc()
        print(f"kit {args.command}: internal error (a bug in specsim-kit; please report it)", file=sys.stderr)
        return 1
