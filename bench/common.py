"""Shared helpers of the benchmarks: fixed-width tables, JSON results, machine facts.

Only the standard library, numpy and psutil: the benchmark must not pull in
anything the engine does not already need.
"""
from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"   # ../shared/data from the project root


def data_dir() -> Path:
    """Where the real data files live; SPECTRAMORPH_DATA overrides the project's ../shared/data."""
    return Path(os.environ.get("SPECTRAMORPH_DATA", str(DATA_DIR)))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


def current_rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2.0 ** 20


def machine_info() -> dict:
    """What a reader needs to set the figures beside their own machine's."""
    import numpy as np
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cores_logical": os.cpu_count(),
            "numpy": np.__version__}
    try:
        import psutil
        info["cores_physical"] = psutil.cpu_count(logical=False)
        info["memory_gb"] = round(psutil.virtual_memory().total / 2.0 ** 30, 1)
        # The load average tells whether a figure was taken on a quiet machine.
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    except Exception:   # psutil missing or no loadavg (Windows): the facts are optional
        pass
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        pass
    return info


def fmt(value, spec: str = ".4g") -> str:
    """One table cell: numbers formatted, None / NaN as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isinf(value):
            return "inf"
        return format(value, spec)
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence], specs: Optional[Sequence[str]] = None,
          title: Optional[str] = None) -> str:
    """A plain fixed-width table (right-aligned numbers, left-aligned text)."""
    rows = [list(r) for r in rows]
    specs = list(specs) if specs else [".4g"] * len(headers)
    cells = [[fmt(v, specs[i] if i < len(specs) else ".4g") for i, v in enumerate(r)] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r[i], (int, float)) or r[i] is None for r in rows) if rows else False
               for i in range(len(headers))]

    def line(vals):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(headers))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _jsonable(x):
    import numpy as np
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path, payload: dict) -> Path:
    """Write `payload` as JSON (temporary name, then rename: never a half-written file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(payload), indent=2), encoding="utf-8")
    os.replace(tmp, p)
    return p


def default_json(kind: str) -> Path:
    return RESULTS_DIR / f"{kind}_{time.strftime('%Y%m%d-%H%M%S')}.json"


class Timer:
    """with Timer() as t: ...; t.seconds"""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        return False
