"""argparse types shared by the commands: a bad value is argparse's one-line error and exit 2.

Examples
--------
>>> positive_int("3")
3
>>> port("8000")
8000
"""
from __future__ import annotations

import argparse
from collections.abc import Callable


def number(kind: type, least: float, what: str) -> Callable[[str], float]:
    """An argparse type: a ``kind`` number of at least ``least``; ``what`` says the range in the error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value >= least:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


positive_int = number(int, 1, "at least 1")


def port(text: str) -> int:
    """argparse type: a TCP port, 0 (a free one) to 65535."""
    value = number(int, 0, "0 to 65535")(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {text}")
    return value
