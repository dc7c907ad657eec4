"""The whole default CLI run on a big real-world pair, stage by stage (python -m bench default-run).

Issue 20 asks for the real-world default run (.h5 in, .h5 out) at 1024^2 and 2048^2 in bounded
time and memory. This writes the app bench's pair (the USGS-library scene of seed 0, `--bands`
bands, ratio 4, 4-band preset SRF; bench/cancel_latency._make_pair) and runs `spectramorph run`
on it in its own process with a config holding only the two files, their wavelengths and
`output_file_type: h5` -- every other setting at its default (auto-selection, refinement,
estimated SRF and blur). It prints the wall time, the process's peak resident memory and the
stage times of run.json.

    SPECTRAMORPH_THREADS=2 python -m bench default-run --size 400,1024,2048
    python -m bench default-run --size 1024 --threads 1
    python -m bench default-run --size 400,1024 --no-auto-select    # what the selection itself costs
    python -m bench default-run --size 400,1024 --synthetic         # synthetic mode (a truth cube; no check)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import RssSampler, default_json, machine_info, table, tv_choice, write_json

# issue 20: seconds, MiB. 400: the original template's 400 x 400 x 198 scene took 626 s in the
# original implementation; the issue asks for >= 12x (not this scene: the app bench's at 400^2)
TARGETS = {400: (626.0 / 12, None), 1024: (60.0, None), 2048: (240.0, 1536.0)}


def _sizes(text: str) -> list:
    return [int(v) for v in str(text).split(",") if v.strip()]


def add_arguments(p) -> None:
    p.add_argument("--size", type=_sizes, default=[2048], help="HR side(s) in pixels, comma list (default 2048)")
    p.add_argument("--bands", type=int, default=200)
    p.add_argument("--threads", type=int, default=None,
                   help="SPECTRAMORPH_THREADS of the run (default: the environment's, else the engine's)")
    p.add_argument("--workdir", default=None, help="folder for the pairs and the outputs (default: a temp folder)")
    p.add_argument("--no-auto-select", action="store_true",
                   help="auto_select: false (what the run costs without the selection; the reduced-resolution "
                        "check then fuses the reduced pair itself)")
    p.add_argument("--synthetic", action="store_true",
                   help="synthetic mode instead: the same library scene saved as the truth cube (.npy), the pair "
                        "made by the engine (ratio 4, 4-band preset SRF, Gaussian PSF sigma 1 px, kernel_size 3)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config key for the run, as the CLI's --set (repeatable): what a candidate default costs")
    p.add_argument("--json", default=None)


def _truth_cube(size: int, bands: int, folder: Path) -> dict:
    """The app bench's scene (seed 0) as a truth cube for synthetic mode."""
    import numpy as np
    from .scenes import LibraryScene
    scene = LibraryScene(size, size, bands, k=6, seed=0)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "truth.npy", scene.cube().astype(np.float32))
    np.save(folder / "wavelengths.npy", scene.wavelengths)
    return {"truth": str(folder / "truth.npy"), "wl": str(folder / "wavelengths.npy")}


def run_one(size: int, bands: int, work: Path, env: dict, auto_select: bool = True, synthetic: bool = False,
            overrides=()) -> dict:
    """One default CLI run on the app bench's pair (or, `synthetic`, its truth cube) of this
    size: wall time, peak memory (the whole run and by stage), run.json's stage times."""
    import yaml
    from .cancel_latency import _make_pair
    out = work / "out"
    if synthetic:
        cube = _truth_cube(size, bands, work / "truth")
        config = {"synthetic": True, "mat_file": cube["truth"], "wavelengths": cube["wl"], "downsample_ratio": 4,
                  "num_msi_bands": 4, "sigma": 1.0, "kernel_size": 3,
                  "output_file_type": "h5", "output_dir": str(out), "log_dir": str(out)}
    else:
        pair = _make_pair(size, bands, 4, work / "pair")
        config = {"synthetic": False, "hr_msi_file": pair["hr"], "lr_hsi_file": pair["lr"],
                  "wavelengths": pair["wl"], "output_file_type": "h5", "output_dir": str(out), "log_dir": str(out)}
    if not auto_select:
        config["auto_select"] = False
    config_path = work / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    probe = ("import resource, subprocess, sys, json; "
             "r = subprocess.run([sys.executable, '-m', 'spectramorph_engine', 'run', '--config', sys.argv[1], '--quiet'] "
             "+ sys.argv[2:]); "
             "print(json.dumps({'rc': r.returncode, "
             "'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")
    t0 = time.perf_counter()
    extra = [a for kv in overrides for a in ("--set", kv)]
    proc = subprocess.Popen([sys.executable, "-c", probe, str(config_path)] + extra, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with RssSampler(proc.pid) as sampler:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    child = json.loads(stdout.strip().splitlines()[-1])
    if child["rc"] != 0:
        raise SystemExit(f"the run at {size}^2 failed ({child['rc']}):\n{stderr[-3000:]}")
    run = json.loads((out / "run.json").read_text())
    stages = run["timings_s"]
    return {"size": size, "bands": bands, "wall_s": wall, "peak_rss_mb": child["peak_rss_mb"], "stages_s": stages,
            "peak_rss_mb_by_stage": _peaks_by_stage(sampler.samples, out / "spectramorph.log", stages),
            "auto_select": (run.get("auto_select") or {}).get("summary"),
            "tv_selection": tv_choice(run.get("method_info"))}


def main(args) -> int:
    root = Path(args.workdir or tempfile.mkdtemp(prefix="sm-bench-default-"))
    env = dict(os.environ)
    if args.threads is not None:
        env["SPECTRAMORPH_THREADS"] = str(args.threads)
    threads = env.get("SPECTRAMORPH_THREADS", "engine default")
    runs = [run_one(size, args.bands, root / str(size), env, not args.no_auto_select, args.synthetic, args.overrides)
            for size in args.size]
    stage_names = list(dict.fromkeys(k for r in runs for k in r["stages_s"]))
    print(f"{args.bands} bands, ratio 4, {'synthetic mode, ' if args.synthetic else ''}every setting at its default"
          f"{' but auto_select: false' if args.no_auto_select else ''}"
          f"{''.join(' --set ' + kv for kv in args.overrides)}, .h5 in and out; SPECTRAMORPH_THREADS={threads}")
    rows = []
    for r in runs:
        seconds, mib = TARGETS.get(r["size"], (None, None))
        verdict = []
        if seconds is not None:
            verdict.append(f"<= {seconds:.0f} s {'MET' if r['wall_s'] <= seconds else 'NOT MET'}")
        if mib is not None:
            verdict.append(f"<= {mib:.0f} MiB {'MET' if r['peak_rss_mb'] <= mib else 'NOT MET'}")
        select = r["stages_s"].get("select")
        # issue 20: auto-selection under 15% of the run (the reduced-resolution check it builds
        # on is its own stage, `check`, which a run without the selection has too)
        share = "-" if select is None else f"{100 * select / r['wall_s']:.0f}%"
        rows.append([f"{r['size']}^2", f"{r['wall_s']:.0f}", f"{r['peak_rss_mb']:.0f}"]
                    + [f"{r['stages_s'].get(k, 0.0):.1f}" for k in stage_names]
                    + [share, "; ".join(verdict) or "-"])
    print(table(["size", "wall s", "peak MiB"] + stage_names + ["select share", "issue 20's targets"], rows))
    for r in runs:
        tv = r.get("tv_selection")
        if tv:      # refine_tv_select (--set refine_tv_select=true): what it chose, and its seconds
            print(f"{r['size']}^2 VTV weight {tv['chosen']:g} (configured {tv['configured']:g}"
                  f"{'; ' + tv['skipped'] if tv.get('skipped') else ''}), choice {tv.get('seconds') or 0:.1f} s")
        if r["peak_rss_mb_by_stage"]:
            print(f"{r['size']}^2 peak resident memory by stage, MiB (sampled every 0.2 s; stage bounds from the "
                  f"log and run.json): " + ", ".join(f"{k} {v:.0f}" if v == v else f"{k} -" for k, v in r["peak_rss_mb_by_stage"].items()))
    write_json(args.json or default_json("default_run"),
               {"machine": machine_info(), "args": vars(args), "threads": threads, "runs": runs})
    return 0


def _peaks_by_stage(samples, log_path: Path, stages: dict) -> dict:
    """The samples' peak within each stage. The load stage ends where the run logs the pair's
    shapes ("HR-MSI (...), LR-HSI (...)"); the later stages follow in run.json's order and
    durations (stages of the run's thread only, so approximate by the sampling interval)."""
    import datetime
    end_of_load = None
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            if "spectramorph_engine.run.pipeline: HR-MSI (" in line:
                stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                end_of_load = stamp.timestamp()
                break
    if end_of_load is None or not samples:
        return {}
    bounds, t = {"load": (samples[0][0], end_of_load)}, end_of_load
    for name, seconds in stages.items():
        if name != "load":
            bounds[name] = (t, t + seconds)
            t += seconds
    return {name: max((m for ts, m in samples if a <= ts < b), default=float("nan"))
            for name, (a, b) in bounds.items()}
