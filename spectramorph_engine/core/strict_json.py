"""The one JSON encoder for every file the engine (and the bench) writes.

Python's json writes NaN and Infinity as bare tokens, which are not JSON: strict readers
(browsers, jq, most languages) refuse the whole file. `dumps` maps non-finite floats to
null and numpy values to Python ones, and writes with allow_nan=False, so a value that
slipped through fails loudly here instead of producing a file nobody can read.
"""
from __future__ import annotations

import json
import math
from pathlib import PurePath

import numpy as np

__all__ = ["jsonable", "dumps"]


def jsonable(x):
    """`x` with dicts/lists/tuples walked, numpy arrays and scalars made Python, paths made
    strings and NaN/Inf made None (null)."""
    if isinstance(x, dict):
        return {_key(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, PurePath):
        return str(x)
    return x


def _key(k):
    # json writes str/int/finite float/bool/None keys itself; numpy scalars and the rest become strings
    if isinstance(k, np.generic):
        k = k.item()
    if isinstance(k, float) and not math.isfinite(k):
        return str(k)
    return k if k is None or isinstance(k, (str, int, float, bool)) else str(k)


def dumps(x, indent=2) -> str:
    """Strict JSON text of `x` (see the module docstring)."""
    return json.dumps(jsonable(x), indent=indent, allow_nan=False)
