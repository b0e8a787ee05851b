import json
import math

from gtrxl_jax.strict_json import strict_json


def test_every_non_finite_float_at_any_depth_becomes_null():
    value = {"loss": math.nan, "eval": {"greedy": {"success": math.inf, "episodes": 3}},
             "curve": [1.0, -math.inf, (math.nan, 2)], "name": "run"}
    assert strict_json(value) == {"loss": None, "eval": {"greedy": {"success": None,
                                                                     "episodes": 3}},
                                  "curve": [1.0, None, [None, 2]], "name": "run"}
    json.dumps(strict_json(value), allow_nan=False)  # raises on any NaN or infinity left
