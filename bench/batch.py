"""Batch fusion on Dask (issue 13): scenes per hour against the number of workers, and the
tiled run's peak memory per worker on a big scene.

    python -m bench batch [--scenes 6] [--size 64] [--bands 60] [--epochs 300] [--workers 1,2]
                          [--tiled-size 2048] [--tiled-bands 200] [--tiled-epochs 10] [--chunk 512]
                          [--no-tiled] [--workdir DIR] [--json PATH]

Throughput: N real pairs (USGS-library scenes, seeds 0..N-1, 4-band HR-MSI, ratio 4, .npy)
fused by `batch.run_batch` on a LocalCluster of 1, 2, ... worker processes with one torch
thread each (the workers are warmed up first: torch imported, its optimizer stepped, so the
figures time the scenes, not the imports; the cluster's start is reported beside), and the
same scenes one after another in this process with one thread (torch and BLAS), for reference. The default
config with `auto_select: false` and the epochs / hidden size given (refinement on).

Tiled: one big pair (--tiled-size^2 HR, 4 bands; LR ratio 4 with --tiled-bands bands) fused
by `tiled.run_tiled` on 2 workers into a zarr store; each worker's resident memory is sampled
every 0.2 s (psutil) and its peak reported for the training task and for the chunked
inference, beside the size of the whole result cube that no worker holds.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .common import default_json, machine_info, table, write_json

RATIO = 4
MSI_BANDS = 4


def _ints(text: str) -> list:
    return [int(v) for v in text.split(",") if v.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenes", type=int, default=6, help="small scenes in the throughput batch (default 6)")
    p.add_argument("--size", type=int, default=64, help="HR side of a small scene in pixels (default 64)")
    p.add_argument("--bands", type=int, default=60, help="HSI bands of a small scene (default 60)")
    p.add_argument("--epochs", type=int, default=300, help="training epochs of a small scene (default 300)")
    p.add_argument("--hidden", type=int, default=256, help="hidden size (default 256)")
    p.add_argument("--workers", type=_ints, default=[1, 2], help="worker counts to compare (default 1,2)")
    p.add_argument("--tiled-size", type=int, default=2048, help="HR side of the tiled scene (default 2048)")
    p.add_argument("--tiled-bands", type=int, default=200, help="HSI bands of the tiled scene (default 200)")
    p.add_argument("--tiled-epochs", type=int, default=10, help="training epochs of the tiled scene (default 10)")
    p.add_argument("--tiled-hidden", type=int, default=1024, help="hidden size of the tiled scene (default 1024)")
    p.add_argument("--chunk", type=int, default=512, help="tiled chunk side in HR pixels (default 512)")
    p.add_argument("--no-tiled", action="store_true", help="skip the tiled run")
    p.add_argument("--workdir", default=None, help="folder for the scenes and outputs (default: a temporary one)")
    p.add_argument("--json", default=None, help="where the JSON report goes (default bench/results/)")


def _pair(folder: Path, size: int, bands: int, seed: int) -> tuple:
    from spectramorph_engine.sensors.srf import preset_srf
    from .scenes import LibraryScene, write_real_pair
    scene = LibraryScene(size, size, bands, k=6, seed=seed)
    srf = preset_srf(MSI_BANDS, bands, wavelengths=scene.wavelengths)
    folder.mkdir(parents=True, exist_ok=True)
    hr, lr = folder / "hr_msi.npy", folder / "lr_hsi.npy"
    write_real_pair(scene, RATIO, srf, hr, lr, seed=seed)
    np.save(folder / "wavelengths.npy", scene.wavelengths)
    return hr, lr, folder / "wavelengths.npy"


def _warm() -> int:
    """Run on each worker: the imports and torch's first optimizer step a first scene would pay."""
    from spectramorph_engine.quality import figures  # noqa: F401 (imported to warm it)
    from spectramorph_engine.run import pipeline  # noqa: F401
    pipeline.warm_up()
    return os.getpid()


def _cluster(n: int):
    from dask.distributed import Client
    from spectramorph_engine.scale.batch import local_cluster
    t0 = time.perf_counter()
    cluster = local_cluster(n, 1)
    client = Client(cluster)
    client.wait_for_workers(n)
    pids = client.run(_warm)
    return client, cluster, pids, time.perf_counter() - t0


class _MemorySampler:
    """Peak resident memory of a set of processes, sampled in a thread, with a phase label."""

    def __init__(self, pids: dict, every: float = 0.2):
        import psutil
        self.procs = {w: psutil.Process(p) for w, p in pids.items()}
        self.peak: dict = {}
        self.phase = "start"
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for w, proc in self.procs.items():
                try:
                    rss = proc.memory_info().rss
                except Exception:       # noqa: BLE001 -- a worker gone
                    continue
                key = (w, self.phase)
                self.peak[key] = max(self.peak.get(key, 0), rss)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run(args) -> dict:
    from spectramorph_engine.scale import batch
    from spectramorph_engine.run.config import FusionConfig
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="spectramorph-bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    report = {"kind": "batch", "machine": machine_info(), "args": vars(args), "throughput": [], "tiled": None,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    pairs = [_pair(work / "scenes" / f"s{i}", args.size, args.bands, seed=i) for i in range(args.scenes)]
    base = dict(synthetic=False, epochs=args.epochs, hidden_size=args.hidden, auto_select=False, device="cpu")

    def scenes(tag):
        out = []
        for i, (hr, lr, wl) in enumerate(pairs):
            cfg = FusionConfig(**base, hr_msi_file=str(hr), lr_hsi_file=str(lr), wavelengths=str(wl),
                               output_dir=str(work / tag / f"s{i}"), log_dir=str(work / tag / "logs" / f"s{i}"))
            out.append(batch.Scene(f"s{i}", i + 1, cfg))
        return out

    # in this process, one scene after another, one thread (after a warm-up)
    os.environ["SPECTRAMORPH_THREADS"] = "1"
    _warm()
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):      # numpy / scipy's BLAS too, as Dask's workers have it
        t0 = time.perf_counter()
        rows = batch.run_batch(scenes("inproc"), None, threads=None, resume=False)
        dt = time.perf_counter() - t0
    report["throughput"].append({"engine": "in-process (no Dask)", "workers": 1, "seconds": dt,
                                 "scenes_per_hour": 3600 * len(rows) / dt, "start_s": 0.0,
                                 "ok": sum(r["status"] == "ok" for r in rows)})
    print(f"in-process: {len(rows)} scenes in {dt:.1f} s", flush=True)
    for n in args.workers:
        client, cluster, _pids, start = _cluster(n)
        try:
            t0 = time.perf_counter()
            rows = batch.run_batch(scenes(f"w{n}"), client, threads=1, resume=False)
            dt = time.perf_counter() - t0
        finally:
            client.close()
            cluster.close()
        report["throughput"].append({"engine": "Dask LocalCluster", "workers": n, "seconds": dt,
                                     "scenes_per_hour": 3600 * len(rows) / dt, "start_s": start,
                                     "ok": sum(r["status"] == "ok" for r in rows)})
        print(f"{n} worker(s): {len(rows)} scenes in {dt:.1f} s (cluster start {start:.1f} s)", flush=True)
    shutil.rmtree(work / "inproc", ignore_errors=True)
    if not args.no_tiled:
        report["tiled"] = _tiled(args, work)
    return report


def _tiled(args, work: Path) -> dict:
    from spectramorph_engine.run.config import FusionConfig
    from spectramorph_engine.scale.tiled import run_tiled
    size, bands = args.tiled_size, args.tiled_bands
    t0 = time.perf_counter()
    hr, lr, wl = _pair(work / "big", size, bands, seed=0)
    gen = time.perf_counter() - t0
    print(f"tiled scene {size} x {size} written in {gen:.1f} s", flush=True)
    cfg = FusionConfig(synthetic=False, hr_msi_file=str(hr), lr_hsi_file=str(lr), wavelengths=str(wl),
                       epochs=args.tiled_epochs, hidden_size=args.tiled_hidden, auto_select=False, refine=False,
                       device="cpu", output_dir=str(work / "big" / "out"), log_dir=str(work / "big" / "logs"))
    client, cluster, pids, start = _cluster(2)
    try:
        with _MemorySampler(pids) as sampler:
            base = {w: sampler.procs[w].memory_info().rss for w in pids}
            t0 = time.perf_counter()

            def phase(name):
                sampler.phase = name
            out = run_tiled(cfg, client, chunk=args.chunk, threads=1, on_phase=phase)
            dt = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()
    store = Path(out["output_files"]["hr_hsi"])
    on_disk = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    workers = []
    for w in pids:
        workers.append({"worker": w, "idle_mb": base[w] / 2 ** 20,
                        "train_peak_mb": sampler.peak.get((w, "train"), 0) / 2 ** 20,
                        "inference_peak_mb": sampler.peak.get((w, "inference"), 0) / 2 ** 20})
    result = {"size": size, "bands": bands, "ratio": RATIO, "epochs": args.tiled_epochs,
              "hidden": args.tiled_hidden, "chunk": out.get("chunks") and args.chunk, "chunks": out["chunks"],
              "seconds": dt, "timings": out["timings"], "workers": workers, "cluster_start_s": start,
              "cube_mb": size * size * bands * 4 / 2 ** 20, "store_mb": on_disk / 2 ** 20, "gen_s": gen}
    shutil.rmtree(work / "big", ignore_errors=True)
    print(f"tiled: {out['chunks']} chunks in {dt:.1f} s", flush=True)
    return result


def render(report: dict) -> str:
    a = report["args"]
    rows = [[t["engine"], t["workers"], t["seconds"], t["scenes_per_hour"], t["start_s"], t["ok"]]
            for t in report["throughput"]]
    out = [table(["engine", "workers", "batch s", "scenes/hour", "start s", "ok"], rows,
                 [".4g", "d", ".1f", ".0f", ".1f", "d"],
                 title=f"{a['scenes']} scenes {a['size']}x{a['size']} HR / {a['bands']} bands / ratio {RATIO}, "
                       f"{a['epochs']} epochs, hidden {a['hidden']}, refinement on, 1 torch thread per worker, "
                       f"seeds 0..{a['scenes'] - 1}")]
    t = report.get("tiled")
    if t:
        rows = [[w["worker"].rsplit(":", 1)[-1], w["idle_mb"], w["train_peak_mb"], w["inference_peak_mb"]]
                for w in t["workers"]]
        out.append("")
        out.append(table(["worker (port)", "idle MiB", "peak MiB, training phase", "peak MiB, chunked inference"],
                         rows, [".4g", ".0f", ".0f", ".0f"],
                         title=f"tiled {t['size']}x{t['size']} HR, {t['bands']} bands, ratio {t['ratio']}, "
                               f"{t['epochs']} epochs, hidden {t['hidden']}, chunk {a['chunk']} ({t['chunks']} "
                               f"chunks), 2 workers x 1 thread: {t['seconds']:.0f} s; whole cube "
                               f"{t['cube_mb']:.0f} MiB, zarr on disk {t['store_mb']:.0f} MiB"))
        out.append("stage times: " + ", ".join(f"{k} {v:.1f}s" for k, v in t["timings"].items()))
    return "\n".join(out)


def main(args) -> int:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        print("bench batch needs Dask: pip install '.[dask]'")
        return 2
    report = run(args)
    path = write_json(args.json or default_json("batch"), report)
    print(render(report))
    print(f"report: {path}")
    return 0
