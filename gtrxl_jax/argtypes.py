"""Argument types shared by the command-line tools (argparse `type=` functions)."""

import argparse


def positive_int(text: str) -> int:
    """An int >= 1 (argparse reports anything else as a usage error naming the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
