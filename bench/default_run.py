"""The whole default CLI run on a big real-world pair, stage by stage (python -m bench default-run).

Issue 20 asks for the real-world default run (.h5 in, .h5 out) at 1024^2 and 2048^2 in bounded
time and memory. This writes the app bench's pair (the USGS-library scene of seed 0, `--bands`
bands, ratio 4, 4-band preset SRF; bench/cancel_latency._make_pair) and runs `spectramorph run`
on it in its own process with a config holding only the two files, their wavelengths and
`output_file_type: h5` -- every other setting at its default (auto-selection, refinement,
estimated SRF and blur). It prints the wall time, the process's peak resident memory and the
stage times of run.json.

    SPECTRAMORPH_THREADS=2 python -m bench default-run --size 2048
    python -m bench default-run --size 1024 --threads 1
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import default_json, machine_info, table, write_json

TARGETS = {1024: (60.0, None), 2048: (240.0, 1536.0)}      # issue 20: seconds, MiB


def add_arguments(p) -> None:
    p.add_argument("--size", type=int, default=2048, help="HR side (pixels)")
    p.add_argument("--bands", type=int, default=200)
    p.add_argument("--threads", type=int, default=None,
                   help="SPECTRAMORPH_THREADS of the run (default: the environment's, else the engine's)")
    p.add_argument("--workdir", default=None, help="folder for the pair and the outputs (default: a temp folder)")
    p.add_argument("--json", default=None)


def main(args) -> int:
    import yaml
    from .cancel_latency import _make_pair
    work = Path(args.workdir or tempfile.mkdtemp(prefix="sm-bench-default-"))
    pair = _make_pair(args.size, args.bands, 4, work / "pair")
    out = work / "out"
    config = {"synthetic": False, "hr_msi_file": pair["hr"], "lr_hsi_file": pair["lr"], "wavelengths": pair["wl"],
              "output_file_type": "h5", "output_dir": str(out), "log_dir": str(out)}
    config_path = work / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = dict(os.environ)
    if args.threads is not None:
        env["SPECTRAMORPH_THREADS"] = str(args.threads)
    probe = ("import resource, subprocess, sys, json; "
             "r = subprocess.run([sys.executable, '-m', 'spectramorph_engine', 'run', '--config', sys.argv[1], '--quiet']); "
             "print(json.dumps({'rc': r.returncode, "
             "'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")
    t0 = time.perf_counter()
    with _RssSampler() as sampler:
        proc = subprocess.Popen([sys.executable, "-c", probe, str(config_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler.watch(proc.pid)
        stdout, stderr = proc.communicate()
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    wall = time.perf_counter() - t0
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    if child["rc"] != 0:
        raise SystemExit(f"the run failed ({child['rc']}):\n{proc.stderr[-3000:]}")
    run = json.loads((out / "run.json").read_text())
    stages = run["timings_s"]
    threads = env.get("SPECTRAMORPH_THREADS", "engine default")
    print(f"{args.size} x {args.size} x {args.bands}, ratio 4, every setting at its default, .h5 in and out; "
          f"SPECTRAMORPH_THREADS={threads}")
    print(table(["wall s", "peak MiB"] + list(stages), [[f"{wall:.0f}", f"{child['peak_rss_mb']:.0f}"]
                                                         + [f"{v:.1f}" for v in stages.values()]]))
    by_stage = _peaks_by_stage(sampler.samples, out / "spectramorph.log", stages)
    if by_stage:
        print("peak resident memory by stage, MiB (sampled every 0.2 s; stage bounds from the log and run.json): "
              + ", ".join(f"{k} {v:.0f}" for k, v in by_stage.items()))
    seconds, mib = TARGETS.get(args.size, (None, None))
    if seconds is not None:
        verdict = [f"<= {seconds:.0f} s {'MET' if wall <= seconds else 'NOT MET'}"]
        if mib is not None:
            verdict.append(f"<= {mib:.0f} MiB {'MET' if child['peak_rss_mb'] <= mib else 'NOT MET'}")
        print("issue 20's targets: " + "; ".join(verdict))
    write_json(args.json or default_json("default_run"),
               {"machine": machine_info(), "args": vars(args), "threads": threads, "wall_s": wall,
                "peak_rss_mb": child["peak_rss_mb"], "stages_s": stages, "peak_rss_mb_by_stage": by_stage,
                "auto_select": run.get("auto_select", {}).get("summary")})
    return 0


class _RssSampler:
    """Resident memory of a process and its children, every 0.2 s: [(time.time(), MiB)]."""

    def __init__(self):
        import threading
        self.samples, self.pid = [], None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int) -> None:
        self.pid = pid

    def _run(self) -> None:
        import psutil
        while not self._stop.wait(0.2):
            if self.pid is None:
                continue
            try:
                root = psutil.Process(self.pid)
                procs = [root] + root.children(recursive=True)
                rss = sum(p.memory_info().rss for p in procs)
            except psutil.Error:
                continue
            self.samples.append((time.time(), rss / 2 ** 20))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


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
