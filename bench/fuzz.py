"""Hostile files against every loader (python -m bench fuzz).

Each format starts from a few valid seed files written here (small, random
data so that compression cannot legitimately multiply their size), then
feeds its loaders mutated copies:

* truncated at a random byte (0 bytes included), bits flipped (mostly in the
  first kilobyte, where the headers are), random bytes inserted or deleted,
  a block zeroed;
* structurally absurd headers written on purpose: dimensions of 10^12 or
  -3, byte counts past the end of the file, unknown data types, header
  offsets beyond the file (per format: the .npy header dict, the MATLAB v5
  dims, the HDF5 dataspace, the TIFF tags, the ENVI header keys, the zip
  directory of .npz, absurd YAML/JSON values);
* special paths: a 0-byte file, a folder named like the file, a file the
  user cannot read (tested as user 'nobody' when run as root, since root
  reads anything), a FIFO, a dangling symlink and a symlink loop.

Every case must end either in a valid array (a mutation of the data part
gives a different, still valid, file) or in the one-line `InputError`, within
`TIME_LIMIT_S`, with a peak of traced allocations (numpy and Python, via
tracemalloc) at most `MEMORY_FACTOR` x the file's size + `MEMORY_SLACK`.
Anything else (another exception, a timeout, a multi-line message, too much
memory) is counted as a failure and listed.

    python -m bench fuzz                     # 2000 cases per format
    python -m bench fuzz --cases 200 --formats npy,h5 --seed 3

The engine's tests run a small sample of the same cases
(tests/engine/test_hostile_files.py).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from .fuzz_cases import ABSURD_INTS, FORMATS, Case, cases, make_seeds  # noqa: F401 (ABSURD_INTS: for the tests)

TIME_LIMIT_S = 5.0
MEMORY_FACTOR = 8
MEMORY_SLACK = 32 << 20     # library start-up buffers, parsers' tables, tracemalloc's own


@dataclass
class Outcome:
    kind: str            # "ok", "InputError", or what went wrong: an exception name, "timeout", "memory", ...
    seconds: float
    peak_bytes: int
    size: int
    message: str = ""
    trace: str = ""

    @property
    def good(self) -> bool:
        return self.kind in ("ok", "InputError")


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so no loader's `except Exception` swallows it."""


def _call(entry: str, path: Path):
    from spectramorph_engine.run import config
    from spectramorph_engine import io as sio
    from spectramorph_engine.sensors import psf, srf
    if entry == "load_cube":
        c = sio.load_cube(path)
        assert c.data.ndim in (2, 3) and c.data.dtype == np.float32 and np.isfinite(c.data).all()
        return
    if entry == "load_cube_lazy":
        with sio.load_cube(path, lazy=True) as c:
            assert c.data.ndim in (2, 3)
            np.asarray(c.data[0])
        return
    if entry == "list_arrays":
        assert isinstance(sio.list_arrays(path), list)
        return
    if entry == "load_srf":
        s = srf.load_srf(path, 7, wavelengths=np.linspace(420.0, 980.0, 7))
        assert s.shape[1] == 7 and np.isfinite(s).all()
        return
    if entry == "load_srf_table":
        srf.load_srf_table(path)
        return
    if entry == "load_psf":
        k = psf.load_psf(path)
        assert k.ndim == 2 and np.isfinite(k).all()
        return
    if entry == "load_wavelengths":
        w = sio.load_wavelengths(path)
        assert w.ndim == 1 and np.isfinite(w).all()
        return
    if entry == "load_config":
        config.load_config(path)
        return
    raise ValueError(f"unknown entry {entry}")


def _classify(exc: Optional[BaseException]) -> tuple:
    from spectramorph_engine.core.errors import InputError
    if exc is None:
        return "ok", ""
    if isinstance(exc, InputError):
        msg = str(exc)
        if not msg.strip() or "\n" in msg:
            return "multi-line message", msg
        return "InputError", msg
    if isinstance(exc, _Timeout):
        return "timeout", ""
    if isinstance(exc, AssertionError):
        return "invalid result", repr(exc)
    return type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else ""


def _materialise(case: Case, folder: Path) -> Path:
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    target = folder / case.target
    sp = case.special
    if sp == "empty":
        target.write_bytes(b"")
    elif sp == "folder":
        target.unlink()
        target.mkdir()
        (target / "inside.bin").write_bytes(b"x")
    elif sp == "unreadable":
        os.chmod(target, 0)
    elif sp == "fifo":
        target.unlink()
        os.mkfifo(target)
    elif sp == "dangling_link":
        target.unlink()
        os.symlink(folder / "missing-target", target)
    elif sp == "link_loop":
        target.unlink()
        os.symlink(target, target)
    return target


def _run_in_child_as_nobody(case: Case, target: Path) -> Outcome:
    """Root reads any file, so an unreadable file is only unreadable to another user: fork,
    become 'nobody', load, report the outcome through a pipe."""
    os.chmod(target.parent, 0o755)
    r, w = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:   # child
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            try:
                _call(case.entry, target)
                exc = None
            except BaseException as e:   # noqa: BLE001 - classified below
                exc = e
            kind, msg = _classify(exc)
            os.write(w, json.dumps([kind, msg]).encode()[:60000])
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + TIME_LIMIT_S
    while True:
        import select
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            return Outcome("timeout", time.perf_counter() - t0, 0, 0)
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        kind, msg = json.loads(b"".join(chunks) or b'["child died", ""]')
    except ValueError:
        kind, msg = "child died", ""
    return Outcome(kind, time.perf_counter() - t0, 0, 0, msg)


def run_case(case: Case, workdir: Path) -> Outcome:
    """Write the case's files in a fresh folder under `workdir`, call its loader, classify."""
    folder = Path(tempfile.mkdtemp(dir=workdir))
    try:
        target = _materialise(case, folder)
        size = sum(len(v) for v in case.files.values()) if case.special is None else 0
        if case.special == "unreadable" and os.geteuid() == 0 and hasattr(os, "fork"):
            return _run_in_child_as_nobody(case, target)
        started = tracemalloc.is_tracing()
        if not started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        old = signal.signal(signal.SIGALRM, _raise_timeout) if _main_thread() else None
        if old is not None:
            signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
        t0 = time.perf_counter()
        exc = None
        try:
            _call(case.entry, target)
        except BaseException as e:   # noqa: BLE001 - every outcome is classified
            if isinstance(e, KeyboardInterrupt):
                raise
            exc = e
        finally:
            seconds = time.perf_counter() - t0
            if old is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
            peak = tracemalloc.get_traced_memory()[1] - base
            if not started:
                tracemalloc.stop()
        kind, msg = _classify(exc)
        trace = ""
        if kind not in ("ok", "InputError", "timeout"):
            import traceback
            trace = "".join(traceback.format_exception(exc)[-4:])
        if kind in ("ok", "InputError"):
            if peak > MEMORY_FACTOR * max(size, 1) + MEMORY_SLACK:
                kind = "memory"
                msg = f"peak {peak / 2**20:.1f} MiB for a {size} B file; " + msg
            elif seconds > TIME_LIMIT_S:
                kind = "timeout"
        return Outcome(kind, seconds, peak, size, msg, trace)
    finally:
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o700)
        shutil.rmtree(folder, ignore_errors=True)


def _raise_timeout(signum, frame):
    raise _Timeout()


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


# ----------------------------------------------------------------------------- the table


def fuzz(formats, n: int, seed: int, workdir: Path, on_failure=None) -> dict:
    seeds = make_seeds()
    summary = {}
    for fmt in formats:
        rng = random.Random(f"{seed}-{fmt}")
        counts: Dict[str, int] = {}
        failures = []
        worst_s, worst_peak = 0.0, 0
        t0 = time.perf_counter()
        for case in cases(fmt, n, rng, seeds):
            out = run_case(case, workdir)
            counts[out.kind] = counts.get(out.kind, 0) + 1
            worst_s = max(worst_s, out.seconds)
            worst_peak = max(worst_peak, out.peak_bytes)
            if not out.good:
                failures.append({"case": case.label, "entry": case.entry, "outcome": out.kind,
                                 "message": out.message})
                if on_failure:
                    on_failure(case, out)
        summary[fmt] = {"cases": n, "counts": counts, "failures": failures, "max_seconds": worst_s,
                        "max_peak_mib": worst_peak / 2**20, "wall_s": time.perf_counter() - t0}
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=2000, help="cases per format (default 2000)")
    p.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of: " + ", ".join(FORMATS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the summary here (default bench/results/fuzz_<time>.json)")
    p.add_argument("--verbose", action="store_true", help="print every failing case as it happens")


def main(args) -> int:
    from .common import default_json, machine_info, table, write_json
    import logging
    # ignored-wavelength warnings and tifffile's notes on damaged tags would bury the table
    import warnings
    import spectral  # noqa: F401 - it sets its logger's level on import; ours must come after
    for name in ("spectramorph_engine", "tifffile", "tifffile.tifffile", "spectral"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise SystemExit(f"error: unknown format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="spectramorph-fuzz-") as d:
        def show(case, out):
            if args.verbose:
                print(f"  {case.fmt:11s} {case.label:32s} {case.entry:16s} -> {out.kind}: {out.message[:120]}",
                      flush=True)
                if out.trace:
                    print("    " + out.trace.replace("\n", "\n    "), flush=True)
        summary = fuzz(formats, args.cases, args.seed, Path(d), on_failure=show)
    rows = []
    for fmt, s in summary.items():
        c = s["counts"]
        other = sum(v for k, v in c.items() if k not in ("ok", "InputError"))
        rows.append([fmt, s["cases"], c.get("ok", 0), c.get("InputError", 0), other, s["max_seconds"],
                     s["max_peak_mib"], s["wall_s"]])
    print(table(["format", "cases", "loaded", "InputError", "other", "max s", "max peak MiB", "wall s"], rows,
                specs=["", "d", "d", "d", "d", ".2f", ".1f", ".0f"],
                title=f"Hostile files: {args.cases} cases per format, seed {args.seed} "
                      f"(limits: {TIME_LIMIT_S:g} s, peak <= {MEMORY_FACTOR} x size + {MEMORY_SLACK >> 20} MiB)"))
    bad = {fmt: s["failures"] for fmt, s in summary.items() if s["failures"]}
    for fmt, fails in bad.items():
        kinds: Dict[str, int] = {}
        for f in fails:
            kinds[f["outcome"]] = kinds.get(f["outcome"], 0) + 1
        print(f"\n{fmt}: " + ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())))
        for f in fails[:5]:
            print(f"  {f['case']} [{f['entry']}] -> {f['outcome']}: {f['message'][:150]}")
    path = write_json(args.json or default_json("fuzz"), {"machine": machine_info(), "summary": summary,
                                                          "seed": args.seed})
    print(f"\nJSON: {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz")
    add_arguments(ap)
    sys.exit(main(ap.parse_args()))
