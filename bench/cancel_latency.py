"""How long a cancel takes to stop a run, per stage (python -m bench cancel).

The engine promises `Cancelled` within a second of the request at any stage.
This measures it, never asserts it: a real-world pair (USGS-library scene,
the speed benchmark's generator, .h5 files) runs through `run_fusion` as the
CLI runs it, with the coarse spectral prior on and the SRF estimated from the
pair; for each stage the cancel token is set `--delay` seconds after the
stage starts, and the time from that moment to `Cancelled` is the latency.
Each stage gets a fresh run from the start (a cancelled run cannot go on).
The table also says which stage was running when the request came (a short
stage can end before the delay) and whether the output folder was left
exactly as it was before the run.

    python -m bench cancel                      # 2048 x 2048 x 200, ratio 4
    python -m bench cancel --size 1024 --stages nmf,train --delay 0.3,2
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .common import default_json, machine_info, table, write_json

STAGES = ("load", "select", "tv", "nmf", "train", "inference", "refine", "metrics", "save")


def _make_pair(size: int, bands: int, ratio: int, folder: Path) -> dict:
    from spectramorph_engine.sensors.srf import preset_srf
    from .scenes import LibraryScene, write_real_pair
    scene = LibraryScene(size, size, bands, k=6, seed=0)
    srf = preset_srf(4, bands, wavelengths=scene.wavelengths)
    folder.mkdir(parents=True, exist_ok=True)
    hr, lr = folder / "hr_msi.h5", folder / "lr_hsi.h5"
    t0 = time.perf_counter()
    write_real_pair(scene, ratio, srf, hr, lr, seed=0)
    wl = folder / "wavelengths.npy"
    np.save(wl, scene.wavelengths)
    return {"hr": str(hr), "lr": str(lr), "wl": str(wl), "gen_s": time.perf_counter() - t0}


def _listing(folder: Path) -> dict:
    """name -> bytes of every file in `folder` (hidden temporaries included)."""
    if not folder.exists():
        return {}
    return {p.name: p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.iterdir())}


def measure(config, stage: str, delay: float, out: Path, timeout: float) -> dict:
    """One run cancelled `delay` s into `stage`: latency and what was left in `out`."""
    from spectramorph_engine import Cancelled
    from spectramorph_engine.core import events
    from spectramorph_engine.run.pipeline import run_fusion
    before = _listing(out)
    cancel = threading.Event()
    started: dict = {}
    running = []            # stages started and not finished, innermost last
    box: dict = {}

    def progress(event):
        if isinstance(event, events.StageStarted):
            started.setdefault(event.stage, time.perf_counter())
            running.append(event.stage)
        elif isinstance(event, events.StageFinished) and event.stage in running:
            running.remove(event.stage)

    def work():
        try:
            run_fusion(config, progress=progress, cancel=cancel)
            box["outcome"] = "finished"
        except Cancelled:
            box["outcome"] = "Cancelled"
        except BaseException as exc:  # noqa: BLE001 - reported in the table
            box["outcome"] = f"{type(exc).__name__}: {exc}"[:120]
        box["t_end"] = time.perf_counter()

    t_run = time.perf_counter()
    worker = threading.Thread(target=work, name="bench-cancel", daemon=True)
    worker.start()
    while stage not in started and worker.is_alive() and time.perf_counter() - t_run < timeout:
        time.sleep(0.005)
    row = {"stage": stage, "delay_s": delay}
    if stage not in started:
        worker.join(timeout)
        row.update(outcome=box.get("outcome", "timeout"), note=f"stage '{stage}' never started")
        return row
    wake = started[stage] + delay
    while worker.is_alive() and time.perf_counter() < wake:
        time.sleep(0.002)
    t_req = time.perf_counter()
    at = running[-1] if running else "(between stages)"
    cancel.set()
    worker.join(timeout)
    if worker.is_alive():
        row.update(outcome="still running", latency_s=None, at=at)
        return row
    row.update(outcome=box.get("outcome"), at=at, latency_s=box["t_end"] - t_req,
               run_s=box["t_end"] - t_run, outputs_kept=_listing(out) == before)
    if box.get("outcome") == "finished":
        row["note"] = "the run ended before the request"
    return row


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=2048, help="HR side in pixels (default 2048)")
    p.add_argument("--ratio", type=int, default=4)
    p.add_argument("--bands", type=int, default=200)
    p.add_argument("--epochs", type=int, default=4, help="training epochs of each run (default 4)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated: " + ", ".join(STAGES))
    p.add_argument("--delay", default="0.5", help="seconds into the stage, comma-separated for several")
    p.add_argument("--no-prior", action="store_true", help="coarse spectral prior off (default on)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any other config key, as the CLI's --set (repeatable)")
    p.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    p.add_argument("--workdir", default=None)
    p.add_argument("--json", default=None)


def main(args) -> int:
    import logging
    from spectramorph_engine import FusionConfig
    logging.getLogger("spectramorph_engine").setLevel(logging.WARNING)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    delays = [float(d) for d in args.delay.split(",")]
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="spectramorph-cancel-"))
    if args.workdir and (work / "pair" / "pair.json").is_file():      # the same scene as last time
        pair = json.loads((work / "pair" / "pair.json").read_text())
    else:
        print(f"making the {args.size} x {args.size} x {args.bands} scene (ratio {args.ratio}) in {work} ...",
              flush=True)
        pair = _make_pair(args.size, args.bands, args.ratio, work / "pair")
        (work / "pair" / "pair.json").write_text(json.dumps(pair))
    out = work / "out"
    config = FusionConfig(synthetic=False, hr_msi_file=pair["hr"], lr_hsi_file=pair["lr"], wavelengths=pair["wl"],
                          spec_prior=not args.no_prior, epochs=args.epochs, output_file_type="h5",
                          output_dir=str(out), log_dir=str(work / "logs"), verbose=0)
    from spectramorph_engine.run.config import apply_overrides
    config = apply_overrides(config, args.overrides)
    # a previous result in the output folder: a cancelled run must leave it exactly as it was
    from spectramorph_engine.io import atomic_write_text
    atomic_write_text(out / "run.json", json.dumps({"previous": "run"}))
    rows = []
    for stage in stages:
        for delay in delays:
            print(f"  cancel {delay:g} s into '{stage}' ...", flush=True)
            row = measure(config, stage, delay, out, args.timeout)
            rows.append(row)
            print(f"    -> {row}", flush=True)
    title = (f"Cancel latency: {args.size} x {args.size} x {args.bands}, ratio {args.ratio}, prior "
             f"{'off' if args.no_prior else 'on'}, SRF estimated, {args.epochs} epochs, .h5 result"
             f"{', ' + ', '.join(args.overrides) if args.overrides else ''} (promise: < 1 s; measured, not asserted)")
    print()
    print(table(["stage", "delay s", "running at request", "latency s", "outcome", "outputs kept", "note"],
                [[r["stage"], r["delay_s"], r.get("at", "-"), r.get("latency_s"), r.get("outcome"),
                  {True: "yes", False: "NO"}.get(r.get("outputs_kept"), "-"), r.get("note", "")] for r in rows],
                specs=["", ".2g", "", ".3f", "", "", ""], title=title))
    path = write_json(args.json or default_json("cancel"), {"machine": machine_info(), "args": vars(args),
                                                            "pair_gen_s": pair["gen_s"], "rows": rows})
    print(f"\nJSON: {path}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.cancel_latency")
    add_arguments(ap)
    raise SystemExit(main(ap.parse_args()))
