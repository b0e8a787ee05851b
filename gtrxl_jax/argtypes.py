"""The command-line tools' shared parser and argument types (argparse `type=` functions)."""

import argparse
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, as the tools' other errors are.

    "gtrxl-suite: error: <what> (see gtrxl-suite --help)", exit status 2, where argparse
    would print the whole usage block first.
    """

    def error(self, message: str) -> NoReturn:
        """Print the one-line error and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An int >= 1 (argparse reports anything else as a usage error naming the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def name_list(text: str) -> tuple[str, ...]:
    """Comma-separated names, stripped, empty items dropped: "a, b," -> ("a", "b")."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def int_list(text: str) -> tuple[int, ...]:
    """Comma-separated ints: "0,1,2" -> (0, 1, 2) (anything else is a usage error)."""
    try:
        return tuple(int(item) for item in name_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 0,1,2") from None


def positive_int_list(text: str) -> tuple[int, ...]:
    """Comma-separated ints >= 1: "32,64" -> (32, 64), "" -> () (anything else is a usage error)."""
    values = int_list(text)
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"{text!r} must be comma-separated integers >= 1, "
                                         "e.g. 32,64")
    return values
