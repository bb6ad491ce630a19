"""The ``piade`` command line: :func:`main` dispatches to one function per verb.

:mod:`~piade.cli.main` (entry point and error handling), :mod:`~piade.cli.verbs` (one function per
verb), :mod:`~piade.cli.parsers` (the flags), :mod:`~piade.cli.args` (flags and ``--config`` into
settings and data sets), :mod:`~piade.cli.checks` (checks before any work),
:mod:`~piade.cli.benchmark` (the ``benchmark`` verb's flags).
"""

from piade.cli.main import main

__all__ = ["main"]
