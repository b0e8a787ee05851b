"""Files written whole: a kill mid-write leaves the old file, never half of the new one."""

import os
from pathlib import Path


def write_text_whole(path: str | Path, text: str) -> None:
    """Write `text` to a sibling file, then rename it over `path` (atomic on POSIX)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
