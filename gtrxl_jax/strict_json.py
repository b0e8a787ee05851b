"""Values made strict JSON: every NaN or infinity becomes null (JSON has neither)."""

import math
from typing import Any


def strict_json(value: Any) -> Any:
    """The same nested value (dicts, lists, tuples as lists) with non-finite floats as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    return value
