"""The ``piade`` command line: ``main(argv) -> exit code``; each verb parses, calls the library, reports.

Before any data is read, every verb checks its ``--device`` and that its ``--out`` can be written.
Errors piade raises on purpose (:class:`piade.errors.PiadeError`) and operating-system errors (a
full disk, a folder without write permission) print as one line on stderr with exit code 2;
``--debug`` shows the full traceback instead. Skipped files (``--on-error skip``) are reported as
one ``piade VERB: warning: ...`` line each.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from piade.cli import args as cli_args
from piade.cli.checks import describe_os_error, preflight, runs_onnx
from piade.cli.verbs import HANDLERS
from piade.errors import PiadeError, printable

if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # StreamHandler is subscriptable at run time only from Python 3.11
    _StreamHandler = logging.StreamHandler

log = logging.getLogger("piade")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` when None); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,  # other libraries: warnings only
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[CurrentStderrHandler()],
        force=True,  # replace the handlers of an earlier call (in-process runs, tests)
    )
    logging.getLogger("piade").setLevel(logging.DEBUG if debug else logging.INFO)
    verb = next((a for a in argv if a in HANDLERS), "piade")
    try:
        with warnings.catch_warnings():
            _report_data_warnings(verb)
            args = cli_args.parse_args(argv)
            args.argv = argv
            preflight(args)
            if not runs_onnx(args):  # ONNX Runtime has its own allocator, and no torch is needed
                from piade.runtime import keep_freed_memory  # torch: not needed before this

                keep_freed_memory()  # CPU speed: see piade.runtime
            return HANDLERS[args.verb](args)
    except PiadeError as error:
        if debug:
            raise
        _error(verb, str(error))
        return 2
    except OSError as error:
        if debug:
            raise
        _error(verb, describe_os_error(error))
        return 2
    except KeyboardInterrupt:
        print(f"piade {verb}: interrupted", file=sys.stderr)
        return 130


class CurrentStderrHandler(_StreamHandler):
    """Writes each record to ``sys.stderr`` as it is when the record is emitted, so a program (or a
    test) that swaps ``sys.stderr`` between in-process runs never logs into a stale stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """The stream is always the current ``sys.stderr``; assignments are ignored."""


def _error(verb: str, message: str) -> None:
    """Print ``message`` as exactly one line (a library's message may hold line breaks)."""
    line = " ".join(printable(message).split())
    print(f"piade {verb}: error: {line}", file=sys.stderr)


def _report_data_warnings(verb: str) -> None:
    """Show each skipped file (a :class:`piade.data.DataWarning`) as one line on stderr, and
    silence Pillow's warnings: piade refuses oversized images itself (one error line naming the
    file), and damaged metadata either decodes or gives that error."""
    from PIL import Image

    from piade.errors import DataWarning

    default = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, DataWarning):
            print(f"piade {verb}: warning: {printable(str(message))}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    warnings.simplefilter("always", DataWarning)
    warnings.showwarning = show
