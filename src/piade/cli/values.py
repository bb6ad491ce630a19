"""Parsers of single flag values (``type=`` functions of argparse): each turns the text of one flag
into a value or raises ``argparse.ArgumentTypeError`` with the range it accepts."""

from __future__ import annotations

import argparse


def weights(value: str | None) -> str | None:
    """``none`` → None (random initialisation); anything else as given."""
    return None if value is None or value.lower() == "none" else value


def auto_or_number(value: str | float | None) -> float | None:
    """``auto`` → None (the setting's default, e.g. ModelConfig.squash_a); else a number."""
    if value is None or str(value).lower() == "auto":
        return None
    try:
        return float(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {value!r}") from error


def positive_int(value: str, *, most: int | None = None) -> int:
    """An integer >= 1 (and <= ``most``), e.g. a batch size."""
    wanted = "a whole number >= 1" + ("" if most is None else f" and <= {most}")
    try:
        number = int(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {value!r}") from error
    if number < 1 or (most is not None and number > most):
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {value!r}")
    return number


def positive_number(value: str, *, most: float) -> float:
    """A finite number > 0 and <= ``most``, e.g. a size limit in MB."""
    return number_between(value, low=0, high=most, low_open=True)


def number_between(value: str, *, low: float, high: float, low_open: bool = False) -> float:
    """A number from ``low`` (excluded when ``low_open``) to ``high``; NaN and inf are refused."""
    wanted = f"a number {'>' if low_open else '>='} {low:g} and <= {high:g}"
    try:
        number = float(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {value!r}") from error
    if not (number > low if low_open else number >= low) or not number <= high:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {value!r}")
    return number


def port_number(value: str) -> int:
    """A TCP port, 1 to 65535 (0, "any free port", would leave the client guessing)."""
    return positive_int(value, most=65535)


def check_batch_size(value: str) -> int:
    """``--check-batch-size``: 1 to 256 images (the export's example batch)."""
    return positive_int(value, most=256)


PRECISE_BN = {"auto": None, "on": True, "off": False}


def precise_bn(value: str | bool | None) -> bool | None:
    """``auto`` → None, ``on`` → True, ``off`` → False (TrainConfig.precise_bn); a saved value
    (None, True, False) as it is."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return PRECISE_BN[str(value).lower()]
    except KeyError as error:
        raise argparse.ArgumentTypeError(f"expected auto, on or off, got {value!r}") from error
