"""The errors piade raises at its boundaries.

Every message names the file, flag or value at fault, what was expected, and how to fix it. The
command-line interface prints ``str(error)`` as one line and exits non-zero.
"""

from __future__ import annotations


class PiadeError(Exception):
    """Base class of every error piade raises on purpose (bad input, missing files, bad settings)."""


class ConfigError(PiadeError, ValueError):
    """A setting is invalid (unknown key, wrong type, out of range)."""


class WeightsError(PiadeError, FileNotFoundError):
    """Pretrained weights could not be found, read, or matched to the network."""


class DataWarning(UserWarning):
    """Issued for every file skipped with ``on_error="skip"`` (and for a data set read with less
    than it could hold, e.g. an MVTec category without masks); ``piade`` prints each as one line."""


class DataError(PiadeError, ValueError):
    """A data set is missing, laid out wrongly, or holds an unreadable file."""


def printable(text: str) -> str:
    """``text`` with undecodable file-name bytes shown as ``\\xNN``, safe to print or write as UTF-8.

    On Linux a file name that is not UTF-8 reaches Python with lone surrogates, which cannot be
    written to a UTF-8 stream or file; this turns them back into readable escapes.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
