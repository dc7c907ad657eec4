"""Shared helpers of the benchmarks: fixed-width tables, JSON results, machine facts.

Only the standard library, numpy and psutil: the benchmark must not pull in
anything the engine does not already need.
"""
from __future__ import annotations

import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

# the engine's strict encoder (NaN/Inf -> null), so bench reports and run outputs agree
from spectramorph_engine.core.strict_json import dumps as json_dumps

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"   # ../shared/data from the project root


def data_dir() -> Path:
    """Where the real data files live; SPECTRAMORPH_DATA overrides the project's ../shared/data."""
    return Path(os.environ.get("SPECTRAMORPH_DATA", str(DATA_DIR)))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    try:
        import resource
    except ImportError:            # Windows: the peak working set instead
        import psutil
        return getattr(psutil.Process().memory_info(), "peak_wset", 0) / 2.0 ** 20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


def current_rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2.0 ** 20


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what platform knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_info() -> dict:
    """What a reader needs to set the figures beside their own machine's."""
    import numpy as np
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu_name(), "cores_logical": os.cpu_count(), "cores_usable": usable_cores(),
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
        from spectramorph_engine.core.device import configure_threads
        info["torch_threads"] = configure_threads()      # what the engine will use
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        pass
    try:
        import sklearn
        info["sklearn"] = sklearn.__version__
    except Exception:
        pass
    return info


def resolve_device_or_exit(name: str) -> str:
    """The device name a benchmark will ask the engine for; a missing accelerator stops the
    benchmark with the engine's own message before any work starts."""
    from spectramorph_engine.core.device import describe, resolve_device
    from spectramorph_engine.core.errors import InputError
    try:
        dev = resolve_device(name)
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from None
    return describe(dev)


def sync(device) -> None:
    """Wait for queued GPU work, so wall times are real (no-op on the CPU)."""
    import torch
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps" and hasattr(torch, "mps"):
        torch.mps.synchronize()


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


def write_json(path, payload: dict) -> Path:
    """Write `payload` as JSON (temporary name, then rename: never a half-written file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json_dumps(payload), encoding="utf-8")
    os.replace(tmp, p)
    return p


def default_json(kind: str) -> Path:
    return RESULTS_DIR / f"{kind}_{time.strftime('%Y%m%d-%H%M%S')}.json"


class RssSampler:
    """Resident memory of a process and its children (`pid`; None: this process), sampled every
    `every` s in a thread while the block runs: `samples` [(time.time(), MiB)], `peak_mib`."""

    def __init__(self, pid: Optional[int] = None, every: float = 0.2):
        import threading
        self.pid, self.every, self.samples = pid, every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def peak_mib(self) -> float:
        return max((m for _, m in self.samples), default=0.0)

    def _read(self) -> None:
        import psutil
        try:
            root = psutil.Process(self.pid) if self.pid is not None else psutil.Process()
            rss = sum(p.memory_info().rss for p in [root] + root.children(recursive=True))
        except psutil.Error:
            return
        self.samples.append((time.time(), rss / 2 ** 20))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._read()

    def __enter__(self):
        self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._read()


class Timer:
    """with Timer() as t: ...; t.seconds"""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        return False


def one_thread_worker() -> None:
    """A case's process: one torch thread (figures that do not depend on the core count)."""
    os.environ["SPECTRAMORPH_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)


def run_cases(tasks: list, run_case, jobs: int, done) -> list:
    """run_case(task) for every task -- in `jobs` spawned worker processes (one torch thread each),
    or here when jobs is 1 -- calling done(i, n, case) as each finishes; the cases in finishing order."""
    cases = []
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=one_thread_worker) as pool:
            futures = [pool.submit(run_case, t) for t in tasks]
            for i, f in enumerate(as_completed(futures), 1):
                cases.append(f.result())
                done(i, len(tasks), cases[-1])
    else:
        one_thread_worker()
        for i, t in enumerate(tasks, 1):
            cases.append(run_case(t))
            done(i, len(tasks), cases[-1])
    return cases


def method_overrides(method: str, overrides) -> dict:
    """The `--set KEY=VALUE` pairs a bench method takes: all of them for the default (and the
    blind bench's true-psf run: a candidate default), and for a comparison method only its own
    keys (`hysure_iterations` for hysure, `glp_...` for glp), so that a candidate default never
    changes the bar it is measured against while that bar can still be checked (e.g. HySure run
    to more iterations)."""
    pairs = dict(overrides or {})
    if method in ("default", "true-psf"):
        return pairs
    return {k: v for k, v in pairs.items() if k.startswith(method + "_")}


def tv_choice(method_info) -> dict | None:
    """What refine_tv_select did in a run (method_info.tv_selection), the part a bench case
    keeps; None when the choice was off."""
    tv = (method_info or {}).get("tv_selection")
    return None if not tv else {k: tv.get(k) for k in ("chosen", "configured", "errors", "skipped", "seconds")}
