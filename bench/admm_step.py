"""One ADMM iteration of the TV refinement (issue 20): `python -m bench.admm_step --size 1024 --threads 1`.

The problem is the default run's: a synthetic scene (blocky abundances of 4 library-like
spectra, 40 bands, 4 MSI bands, ratio 4, the default 7 x 7 Gaussian PSF of sigma 3.4, 35/40 dB
noise), a flawed network result as the prior, P = 10, the TV weight 10 x the noise variance,
methods.hysure.solve called as refinement._refine_tv calls it. Built from the abundances
alone (the HR cube is never formed), so 2048^2 fits in a few GiB.

time     seconds per iteration (median of the iterations of one solve, from its progress
         ticks: the setup is left out), the baseline and this tree interleaved in one
         process (A B A B ...; the minimum over repeats is shown: the cores are shared).
memory   peak resident memory of the iterations (VmHWM reset when the loop starts), each
         solver in its own child process; the default stopping rule on (its check keeps
         one more set of spectra every 10th iteration).
whole    the whole TV refinement (refinement.refine, the default settings: at most 200
         iterations, stopping rule), the baseline's solve and this tree's, one after the other.
profile  torch.profiler's self CPU time per op over a few iterations (where the time goes).
check    the baseline against this tree: max |diff| / range of the coefficients and the
         iteration counts, both boundaries, with and without the prior, tol None, default and 1e-3.

The baseline is hysure.py as of a git revision (`--baseline`, default main), loaded as a
module beside the current one, so both run on the same problem in the same process.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import table

ROOT = Path(__file__).resolve().parents[1]
HYSURE = "spectramorph_engine/methods/hysure.py"
HYSURE_ADMM = "spectramorph_engine/methods/hysure_admm.py"
BOUNDARIES = {"free": "symmetric", "zero": "zero"}     # what boundary_for gives a real / synthetic pair


def problem(size: int, ratio: int = 4, bands: int = 4, seed: int = 0) -> dict:
    """solve()'s arguments for the refinement of an N x N scene (module docstring)."""
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.spatial import SpatialModel
    from spectramorph_engine.methods.spectramorph.refinement import scene_terms
    rng = np.random.default_rng(seed)
    C, K = 40, 4
    wl = np.linspace(0, 1, C)
    E = np.stack([0.2 + 0.6 * np.exp(-0.5 * ((wl - m) / 0.15) ** 2) for m in rng.uniform(0, 1, K)])
    A = rng.random((size // 8, size // 8, K)).astype(np.float32) ** 3
    A = np.repeat(np.repeat(A, 8, 0), 8, 1)
    A /= A.sum(axis=2, keepdims=True)
    psf = make_psf("gaussian", 3.4, 7)
    edges = np.linspace(0, C, bands + 1).astype(int)
    srf = np.zeros((bands, C))
    for i in range(bands):
        srf[i, edges[i]:edges[i + 1]] = 1.0 / (edges[i + 1] - edges[i])
    # linear in the abundances: degrade / project those, then mix (no HR cube)
    lr = SpatialModel(psf, ratio, "zero").forward(A) @ E.astype(np.float32)
    msi = A @ (E @ srf.T).astype(np.float32)
    lr += rng.normal(0, float(np.sqrt(np.mean(lr ** 2))) * 10 ** (-35 / 20), lr.shape).astype(np.float32)
    msi += rng.normal(0, float(np.sqrt(np.mean(msi ** 2))) * 10 ** (-40 / 20), msi.shape).astype(np.float32)
    err = np.repeat(np.repeat(rng.normal(0, 0.15, (size // 16, size // 16, K)), 16, 0), 16, 1)
    alle = (A + err).astype(np.float32)
    terms = scene_terms(alle, E, lr, psf, ratio, srf, subspace_dim=10)
    return dict(msi=msi, lr=lr, r=ratio, psf=psf, srf=srf, offset=np.zeros(bands), basis=terms.basis,
                alle=alle, E=E.astype(np.float32), mu=terms.prior_weight, tv=10.0 * terms.noise_variance)


def _sibling(rev: str, path: str, name: str, replace=()):
    """The module at `path` as of git revision `rev`, as a sibling of the current one."""
    src = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    for old, new in replace:
        src = src.replace(old, new)
    import spectramorph_engine.methods as pkg
    spec = importlib.util.spec_from_loader(f"{pkg.__name__}.{name}", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = pkg.__name__
    sys.modules[spec.name] = mod
    exec(compile(src, f"{rev}:{path}", "exec"), mod.__dict__)
    return mod


def load_baseline(rev: str):
    """hysure.py at git revision `rev`, as a sibling module (its relative imports resolve),
    with the ADMM iteration (hysure_admm.py) of the same revision where it has one."""
    replace = ()
    has_admm = subprocess.run(["git", "cat-file", "-e", f"{rev}:{HYSURE_ADMM}"], cwd=ROOT).returncode == 0
    if has_admm:
        _sibling(rev, HYSURE_ADMM, "_hysure_admm_baseline")
        replace = (("from .hysure_admm import", "from ._hysure_admm_baseline import"),)
    return _sibling(rev, HYSURE, "_hysure_baseline", replace)


def solvers(rev: str) -> dict:
    from spectramorph_engine.methods import hysure
    return {"baseline": load_baseline(rev).solve, "this tree": hysure.solve}


def run(solve, p: dict, boundary: str, iterations: int, *, prior=True, tol=None, on_tick=None):
    """solve() as _refine_tv calls it (with `prior`) or as plain HySure (without)."""
    kw = dict(boundary=BOUNDARIES[boundary], iterations=iterations, tol=tol, check_every=10,
              record_objective=False, tick=on_tick)
    if prior:
        kw.update(msi_weight=1.0, tv_weight=p["tv"], basis=p["basis"], prior_latents=p["alle"],
                  prior_mixing=p["E"], prior_weight=p["mu"], warm_start=False)
    else:
        kw.update(subspace=10, msi_weight=1.0, tv_weight=p["tv"])
    return solve(p["msi"], p["lr"], p["r"], p["psf"], p["srf"], p["offset"], **kw)


def per_iteration(solve, p, boundary, iterations) -> float:
    """Median seconds between consecutive progress ticks (one per iteration)."""
    stamps = []
    run(solve, p, boundary, iterations, on_tick=lambda *a, **k: stamps.append(time.perf_counter()))
    return statistics.median(np.diff(stamps[1:]))      # stamps[0]: the tick before the loop


def set_threads(n: int) -> None:
    import os
    import torch
    os.environ["SPECTRAMORPH_THREADS"] = str(n)        # configure_threads (inside solve) reads it
    torch.set_num_threads(n)


def setup(args):
    """Every command's start: the thread count, then the problem of the requested size."""
    set_threads(args.threads)
    return problem(args.size)


def time_cmd(args) -> None:
    p = setup(args)
    fns = solvers(args.baseline)
    rows = []
    for boundary in args.boundary:
        best = {k: float("inf") for k in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():        # interleaved: A B A B ...
                best[name] = min(best[name], per_iteration(fn, p, boundary, args.iterations))
        rows.append([boundary, args.threads, best["baseline"], best["this tree"],
                     best["baseline"] / best["this tree"]])
        print(rows[-1], flush=True)
    print(f"\n{args.size} x {args.size}, P 10, ratio 4; s per ADMM iteration (min over {args.repeats} "
          f"interleaved repeats of the median of {args.iterations} iterations); baseline {args.baseline}")
    print(table(["boundary", "threads", "baseline s", "this tree s", "speed-up"], rows,
                ["s", "d", ".3f", ".3f", ".2f"]))


def _vm(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return float(line.split()[1]) / 1024.0
    return float("nan")


def child_cmd(args) -> None:
    """One solve in this process: peak RSS of its loop (VmHWM reset at the first tick), MiB."""
    p = setup(args)
    fn = solvers(args.baseline)[args.which]
    marks = {}

    def on_tick(fraction, **_):
        if not marks:
            marks["start"] = _vm("VmRSS")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")                  # resets VmHWM to the current RSS
    before = _vm("VmRSS")
    from spectramorph_engine.methods.spectramorph.refinement import TV_TOL
    run(fn, p, args.boundary[0], args.iterations, tol=TV_TOL, on_tick=on_tick)
    print(json.dumps({"before": before, "loop_start": marks["start"], "loop_peak": _vm("VmHWM")}))


def memory_cmd(args) -> None:
    rows = []
    for boundary in args.boundary:
        for which in ("baseline", "this tree"):
            cmd = [sys.executable, "-m", "bench.admm_step", "--child", which, "--size", str(args.size),
                   "--threads", str(args.threads), "--iterations", str(args.iterations), "--boundary", boundary,
                   "--baseline", args.baseline]
            out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
            m = json.loads(out.splitlines()[-1])
            rows.append([boundary, which, m["before"], m["loop_start"], m["loop_peak"],
                         m["loop_peak"] - m["before"]])
            print(rows[-1], flush=True)
    print(f"\n{args.size} x {args.size}, P 10; RSS in MiB, {args.iterations} iterations, each in its own process")
    print(table(["boundary", "solver", "before solve", "loop start", "loop peak", "peak - before"], rows,
                ["s", "s", ".0f", ".0f", ".0f", ".0f"]))


def profile_cmd(args) -> None:
    import torch
    p = setup(args)
    for name, fn in solvers(args.baseline).items():
        for boundary in args.boundary:
            run(fn, p, boundary, 2)                                   # warm up
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                run(fn, p, boundary, args.iterations)
            print(f"\n{name}, {boundary} boundary, {args.iterations} iterations (setup included)")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def whole_cmd(args) -> None:
    from spectramorph_engine.methods import hysure
    from spectramorph_engine.methods.spectramorph.refinement import refine
    p = setup(args)
    rows, cubes = [], {}
    current = hysure.solve
    try:
        for name, fn in solvers(args.baseline).items():
            hysure.solve = fn                   # what _refine_tv imports when it runs
            for boundary in args.boundary:
                t0 = time.perf_counter()
                ref = refine(p["alle"], p["E"], p["lr"], p["msi"], p["psf"], p["r"], p["srf"], subspace_dim=10,
                             tv_weight=10.0, tv_iterations=200, boundary=BOUNDARIES[boundary])
                dt = time.perf_counter() - t0
                cubes[name, boundary] = ref.delta @ ref.basis
                rows.append([boundary, name, ref.info["iterations"], dt, dt / ref.info["iterations"]])
                print(rows[-1], flush=True)
    finally:
        hysure.solve = current
    for row in rows:
        a, b = cubes["baseline", row[0]], cubes["this tree", row[0]]
        row.append("-" if row[1] == "baseline" else f"{float(np.abs(a - b).max()) / float(a.max() - a.min()):.1e}")
    print(f"\n{args.size} x {args.size}, whole TV refinement (defaults), {args.threads} thread(s)")
    print(table(["boundary", "solver", "iterations", "s", "s / iteration", "max diff / range of Delta"],
                rows, ["s", "s", "d", ".1f", ".3f", "s"]))


def check_cmd(args) -> None:
    from spectramorph_engine.methods.spectramorph.refinement import TV_TOL
    p = setup(args)
    fns = solvers(args.baseline)
    rows = []
    for boundary in args.boundary:
        for prior in (True, False):
            for tol in (None, TV_TOL, 1e-3):      # 1e-3: one that stops early
                out = {k: run(fn, p, boundary, args.iterations, prior=prior, tol=tol) for k, fn in fns.items()}
                a, b = out["baseline"], out["this tree"]
                scale = float(a[0].max() - a[0].min())
                ra, rb = a[3]["residuals"], b[3]["residuals"]
                rows.append([boundary, "yes" if prior else "no", str(tol),
                             float(np.abs(a[0] - b[0]).max()) / scale,
                             f"{a[3]['iterations']} / {b[3]['iterations']}",
                             abs(a[2][-1] - b[2][-1]) / abs(a[2][-1]),
                             "-" if ra is None else f"{max(abs(x - y) / x for x, y in zip(ra, rb)):.1e}"])
                print(rows[-1], flush=True)
    print(f"\n{args.size} x {args.size}, at most {args.iterations} iterations; baseline {args.baseline}")
    print(table(["boundary", "prior", "tol", "max |diff| / range", "iterations (baseline / new)",
                 "objective rel. diff", "residuals rel. diff"], rows, ["s", "s", "s", ".1e", "s", ".1e", "s"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.admm_step", description=__doc__.split("\n")[0])
    ap.add_argument("mode", nargs="?", default="time", choices=("time", "memory", "profile", "check", "whole"))
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=None, help="per solve (default: time 6, memory 10, "
                                                                  "profile 3, check 60)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--boundary", nargs="+", default=["free", "zero"], choices=sorted(BOUNDARIES))
    ap.add_argument("--baseline", default="main", help="git revision of hysure.py to compare against")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.iterations = args.iterations or {"time": 6, "memory": 10, "profile": 3, "check": 60,
                                               "whole": 200}[args.mode]
    if args.child:
        args.which = args.child
        child_cmd(args)
        return 0
    {"time": time_cmd, "memory": memory_cmd, "profile": profile_cmd, "check": check_cmd,
     "whole": whole_cmd}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
