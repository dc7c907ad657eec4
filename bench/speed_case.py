"""One speed-benchmark scenario, run in a fresh process (python -m bench.speed_case ...).

A fresh process per scenario makes ru_maxrss (the process's peak resident
memory) that scenario's alone. The parent (bench.speed) builds the input
files, starts this, and reads back the JSON it writes; nothing is printed.

    fusion     the engine's stages on a real-world-mode pair of files: load
               (pipeline.prepare_inputs), NMF, training, inference (pipeline.fuse),
               the result streamed into .h5 / .npy files (io.ResultWriter) while
               inference runs, then the files committed.
    pipeline   the same pair through run_fusion(write_outputs=True), as the CLI
               runs it (one output format), to see what the pipeline itself holds.
    reference  the machine's dense matmul rate on the training's GEMM shapes, and
               the engine's NMF next to scikit-learn's on the scenario's LR-HSI.
    train      training speed alone on given LR shapes: the engine's train_len and
               plain torch autograd full batch, same model, data and epochs.
    input      what opening a full-size cube lazily costs (io.load_cube(lazy=True)).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from .common import current_rss_mb, peak_rss_mb, sync, write_json

FORMAT_SUFFIX = {"h5": ".h5", "numpy": ".npy", "npy": ".npy", "matlab": ".mat"}


class RssSampler:
    """Samples this process's RSS every `interval` s and keeps the maximum per stage.

    ru_maxrss gives only the run's overall peak; the per-stage maxima say
    which stage sets it (what an engine change must fix). Short spikes
    between samples can be missed, so the overall figure stays ru_maxrss.
    """

    def __init__(self, interval: float = 0.05):
        import psutil
        self._proc = psutil.Process()
        self.interval = interval
        self.stage = "setup"
        self.peaks: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self):
        rss = self._proc.memory_info().rss / 2.0 ** 20
        if rss > self.peaks.get(self.stage, 0.0):
            self.peaks[self.stage] = rss

    def set_stage(self, name: str):
        self.sample()          # close the previous stage with a fresh reading
        self.stage = name
        self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()
        return False


def pin_cores(n: int) -> list:
    """Restrict this process to n of its usable cores (Linux), as if the machine had n."""
    import os
    cores = sorted(os.sched_getaffinity(0))
    if n < 1 or n > len(cores):
        raise ValueError(f"--cores {n}: this process may use {len(cores)} cores")
    os.sched_setaffinity(0, cores[:n])
    return cores[:n]


def _gpu_peak_mb(device) -> float | None:
    import torch
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2.0 ** 20
    return None


def _config(args, fmt: str = "numpy", out_dir: str = "out", fixed: bool = True):
    from spectramorph_engine import FusionConfig
    wl = [float(v) for v in np.load(args.wavelengths)] if args.wavelengths else None
    # fixed: every scene times the same stages -- no prior and no auto-selection (it would choose
    # per scene), the refinement as the defaults run it (its own column). Else the CLI's defaults.
    choices = dict(spec_prior=False, auto_select=False) if fixed else {}
    return FusionConfig(synthetic=False, hr_msi_file=args.hr, lr_hsi_file=args.lr,
                        srf_source="preset", training_input="srf", wavelengths=wl,
                        epochs=args.epochs, hidden_size=args.hidden, num_endmembers=args.k,
                        **choices, device=args.device, output_file_type=fmt, output_dir=out_dir,
                        log_dir=str(Path(out_dir) / "logs"), verbose=0)


class TimedSinks:
    """`out_hsi` for inference.infer: hands every block of result rows to several
    io.ResultWriter objects (one per format) and times each one's writes, so the
    inference stage's wall time can be split into computing and writing."""

    def __init__(self, writers: dict):
        self.writers = writers
        self.seconds = {k: 0.0 for k in writers}
        self.stage = None                 # the engine stage writing (the refinement writes when on)
        self.by_stage: dict = {}          # stage -> write seconds, all formats

    def write_rows(self, row_start: int, block) -> None:
        for name, w in self.writers.items():
            t = time.perf_counter()
            w.write_rows(row_start, block)
            dt = time.perf_counter() - t
            self.seconds[name] += dt
            self.by_stage[self.stage] = self.by_stage.get(self.stage, 0.0) + dt

    def abort(self) -> None:
        for w in self.writers.values():
            w.abort()


def _fusion(args) -> dict:
    """load -> NMF -> training -> inference streamed into the result files -> commit."""
    import torch
    from spectramorph_engine.core import events
    from spectramorph_engine.core.device import describe
    from spectramorph_engine.io import ResultWriter
    from spectramorph_engine.run.fuse import fuse_with_method
    from spectramorph_engine.run.prepare import prepare_inputs
    from spectramorph_engine.methods.spectramorph.training import TrainingHistory, training_flops_per_epoch

    formats = [f for f in args.formats.split(",") if f]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = _config(args, out_dir=str(out))
    rss_start = current_rss_mb()              # interpreter + numpy + torch, before any data
    timings: dict = {}
    stage_t0: dict = {}
    with RssSampler() as sampler:
        def progress(e):
            if isinstance(e, events.StageStarted):
                sampler.set_stage(e.stage)
                stage_t0[e.stage] = time.perf_counter()
                if sinks is not None:
                    sinks.stage = e.stage
            elif isinstance(e, events.StageFinished):
                timings[e.stage] = e.seconds

        sinks = None
        sampler.set_stage("load")
        t = time.perf_counter()
        prep = prepare_inputs(config)
        timings["load"] = time.perf_counter() - t
        H, W = prep.hr_msi.shape[:2]
        C = prep.lr_hsi.shape[2]
        writers = {fmt: ResultWriter(out / f"hr_hsi{FORMAT_SUFFIX[fmt]}", (H, W, C),
                                     wavelengths=prep.wavelengths) for fmt in formats}
        sinks = TimedSinks(writers)
        try:
            fused = fuse_with_method(config, prep, progress=progress, out_hsi=sinks if writers else None)
            endmembers, alle, device = fused.endmembers, fused.alle, fused.device
            # the training loop's own time (model set-up excluded), as run.json records it
            history = TrainingHistory(loss=fused.loss_history, lr=fused.lr_history,
                                      seconds=fused.info["training"]["loop_seconds"])
            sampler.set_stage("save")
            save_s = dict(sinks.seconds)          # rows streamed during inference or the refinement
            close_s = {}
            for fmt, w in writers.items():
                t = time.perf_counter()
                if FORMAT_SUFFIX[fmt] != ".npy":     # .npy holds one array only
                    w.set_extra("endmembers", endmembers.astype(np.float32))
                    w.set_extra("abundances", alle)
                w.close()
                close_s[fmt] = time.perf_counter() - t
                save_s[fmt] += close_s[fmt]
        except BaseException:
            sinks.abort()
            raise
        sampler.set_stage("end")
    sizes = {fmt: (out / f"hr_hsi{FORMAT_SUFFIX[fmt]}").stat().st_size / 1e9 for fmt in formats}
    h, w_, _ = prep.lr_hsi.shape
    c = prep.hr_msi.shape[2]
    n = h * w_
    c_in = c + (C if config.use_prior_for(c, prep.ratio) else 0)
    flops = training_flops_per_epoch(n, c_in, config.hidden_size, config.num_endmembers, C)
    eps = history.epochs_per_second
    # compute-only times: the stage's wall time less the file writes made during it (the
    # result's rows are written by inference, or by the refinement when it is on)
    infer_total = timings.get("inference", 0.0)
    streamed = sinks.by_stage.get("inference", 0.0)
    if "refine" in timings:
        timings["refine_compute"] = timings["refine"] - sinks.by_stage.get("refine", 0.0)
    return {
        "hr_shape": list(prep.hr_msi.shape), "lr_shape": list(prep.lr_hsi.shape), "ratio": prep.ratio,
        "lr_pixels": n, "in_features": c_in, "epochs": history.epochs_run, "device": describe(device),
        "timings": timings, "train_loop_s": history.seconds,
        "inference_compute_s": infer_total - streamed, "inference_stage_s": infer_total,
        "save_s": save_s, "save_close_s": close_s, "save_streamed_s": dict(sinks.seconds),
        "result_gbytes": sizes, "epochs_per_s": eps,
        "train_flops_per_epoch": flops, "train_gflops": flops * eps / 1e9 if eps else None,
        "rss_start_mb": rss_start, "peak_rss_mb": peak_rss_mb(), "stage_peak_rss_mb": sampler.peaks,
        "gpu_peak_mb": _gpu_peak_mb(device), "final_loss": history.loss[-1] if history.loss else None,
        "torch_threads": torch.get_num_threads(),
    }


def _pipeline(args) -> dict:
    """run_fusion as the CLI runs it (real-world mode, one output file), for its memory."""
    from spectramorph_engine.core import events
    from spectramorph_engine.run.pipeline import run_fusion
    fmt = args.formats.split(",")[0] or "h5"
    out = Path(args.out)
    config = _config(args, fmt=fmt, out_dir=str(out), fixed=False)
    rss_start = current_rss_mb()
    timings: dict = {}
    with RssSampler() as sampler:
        def progress(e):
            if isinstance(e, events.StageStarted):
                sampler.set_stage(e.stage)
            elif isinstance(e, events.StageFinished):
                timings[e.stage] = timings.get(e.stage, 0.0) + e.seconds

        t = time.perf_counter()
        result = run_fusion(config, progress=progress, write_outputs=True)
        total = time.perf_counter() - t
        sampler.set_stage("end")
    return {"format": fmt, "timings": dict(result.timings), "total_s": total, "device": result.device,
            "epochs": len(result.loss_history), "hr_hsi_type": type(result.hr_hsi).__name__,
            "rss_start_mb": rss_start, "peak_rss_mb": peak_rss_mb(), "stage_peak_rss_mb": sampler.peaks}


# ---------------------------------------------------------------------------- reference

def _time_mm(a, b, device, min_batch_s: float = 0.05, batches: int = 5) -> float:
    """Seconds of one a @ b: the best of `batches` timed batches of back-to-back products,
    each batch long enough (>= min_batch_s) that timer and scheduler noise stay small.
    The output buffer is allocated once (the engine's training reuses its buffers too)."""
    import torch
    out = torch.empty(a.shape[0], b.shape[1], device=a.device, dtype=a.dtype)
    torch.mm(a, b, out=out)                        # warm-up: thread pool, allocator, kernels
    sync(device)
    reps = 1
    while True:                                     # calibrate the batch length
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        sync(device)
        dt = time.perf_counter() - t
        if dt >= min_batch_s or reps >= 1 << 16:
            break
        reps = min(1 << 16, max(reps * 2, int(reps * min_batch_s / max(dt, 1e-9))))
    best = dt / reps
    for _ in range(batches - 1):
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        sync(device)
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def matmul_reference(n: int, c_in: int, hidden: int, k: int, bands: int, device: str,
                     max_rows: int = 65536) -> dict:
    """The machine's dense float32 matmul rate, measured now with torch.mm.

    Two figures: a 2048^3 square product (what the cores can do at best) and
    the GEMMs of one full-batch training epoch on their own shapes (pixels x
    features), each timed alone, total flops over total time. Rows are capped
    at `max_rows` (the rate per row is flat long before that) so the reference
    needs no gigabytes of scratch at 262,144 pixels.
    """
    import torch
    dev = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(dev)

    sq = 2048
    t_sq = _time_mm(rnd(sq, sq), rnd(sq, sq), dev)
    m = min(n, max_rows)
    shapes = [  # (rows, inner, cols) of every GEMM of one epoch (training.training_flops_per_epoch)
        ("X W1^T", m, c_in, hidden), ("Z W2^T", m, hidden, k), ("A E", m, k, bands),
        ("dR E^T", m, bands, k), ("dA W2", m, k, hidden), ("dA^T Z", k, m, hidden),
        ("dZ^T X", hidden, m, c_in)]
    per = []
    total_t = total_f = 0.0
    for name, p, q, r in shapes:
        t = _time_mm(rnd(p, q), rnd(q, r), dev)
        f = 2.0 * p * q * r
        per.append({"gemm": name, "shape": [p, q, r], "seconds": t, "gflops": f / t / 1e9})
        total_t += t
        total_f += f
    return {"square_2048_gflops": 2.0 * sq ** 3 / t_sq / 1e9, "rows_used": m,
            "training_shapes_gflops": total_f / total_t / 1e9, "per_gemm": per,
            "threads": torch.get_num_threads()}


def nmf_compare(x: np.ndarray, k: int, device: str, match_tol: float = 0.02,
                max_match_iter: int = 1280) -> dict:
    """The engine's NMF (its defaults, as extract_endmembers calls it) next to
    scikit-learn's NMF (its defaults: init nndsvda here, coordinate descent,
    max_iter 200, tol 1e-4) on the same matrix; errors are ||X - WH||_F / ||X||_F.
    Then the engine's time to reach scikit-learn's error (+ match_tol)."""
    from spectramorph_engine.methods.spectramorph import unmixing
    from spectramorph_engine.core.device import resolve_device
    dev = resolve_device(device)
    out = {"n": int(x.shape[0]), "bands": int(x.shape[1]), "k": k}
    xn = float(np.linalg.norm(x.astype(np.float64)))
    unmixing.nmf(x[:2048], k, max_iter=2, device=dev)       # warm-up (thread pool, CUDA context)
    sync(dev)
    t = time.perf_counter()
    w, h, info = unmixing.nmf(x, k, device=dev)
    sync(dev)
    out["torch_s"] = time.perf_counter() - t
    out["torch_iter"] = int(info["iterations"])
    out["torch_err"] = float(info["error"]) / xn
    try:
        from sklearn.decomposition import NMF
    except ImportError:
        out["sklearn_note"] = "scikit-learn not installed"
        return out
    import warnings
    model = NMF(n_components=k, init="nndsvda", random_state=0)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # a ConvergenceWarning is a result here, not a failure
        model.fit_transform(x)
    out["sklearn_s"] = time.perf_counter() - t
    out["sklearn_iter"] = int(model.n_iter_)
    out["sklearn_max_iter"] = int(model.max_iter)
    out["sklearn_err"] = float(model.reconstruction_err_) / xn
    # Time-to-accuracy: the engine's NMF with max_iter 10, 20, 40, ... (each a fresh,
    # deterministic run, timed alone) until its error is within `match_tol` of
    # scikit-learn's; the defaults above may run longer than needed to match it.
    goal = out["sklearn_err"] * (1.0 + match_tol)
    out["match_tol"] = match_tol
    m = 10
    while m <= max_match_iter:
        t = time.perf_counter()
        _, _, info = unmixing.nmf(x, k, max_iter=m, device=dev)
        sync(dev)
        dt = time.perf_counter() - t
        err = float(info["error"]) / xn
        if err <= goal:
            out.update(matched_s=dt, matched_iter=int(info["iterations"]), matched_err=err)
            break
        if info["iterations"] < m:          # stopped by its own tolerance: more iterations won't come
            break
        m *= 2
    return out


def _lr_matrix(path) -> np.ndarray:
    """The LR-HSI as the pipeline factorises it: normalised by 1/99 percentiles, clipped to [0,1]."""
    from spectramorph_engine.sensors.degradation import normalize_percentile
    from spectramorph_engine.io import load_cube
    lr = normalize_percentile(np.asarray(load_cube(path).data, dtype=np.float32))
    return np.clip(lr.reshape(-1, lr.shape[2]), 0.0, 1.0)


def _reference(args) -> dict:
    x = _lr_matrix(args.lr)
    n, bands = x.shape
    res = {"matmul": matmul_reference(n, args.msi_bands, args.hidden, args.k, bands, args.device)}
    if not args.no_nmf:
        res["nmf"] = nmf_compare(x, args.k, args.device)
    res["peak_rss_mb"] = peak_rss_mb()
    return res


# ------------------------------------------------------------------------------- training

def _train(args) -> dict:
    """Epochs/s on given LR shapes: the engine's train_len and plain autograd, same everything.

    The LR-HSI is a library scene of rows x cols x bands (normalised as the
    pipeline does), the input its 4-band preset SRF image, E its NMF endmembers.
    Both loops get `warmup` untimed epochs first (thread pool, allocator), then
    `epochs` timed ones; both read the loss back to the host every epoch, as a
    progress bar needs. Nothing is extrapolated.
    """
    import torch
    from spectramorph_engine.sensors.degradation import apply_srf, normalize_percentile
    from spectramorph_engine.core.device import configure_threads, describe, resolve_device
    from spectramorph_engine.methods.spectramorph.model import LatentEstimationNetwork
    from spectramorph_engine.sensors.srf import preset_srf
    from spectramorph_engine.methods.spectramorph.training import lr_at, train_len, training_flops_per_epoch
    from spectramorph_engine.methods.spectramorph.unmixing import extract_endmembers
    from .scenes import LibraryScene

    configure_threads()
    dev = resolve_device(args.device)
    scene = LibraryScene(args.rows, args.cols, args.bands, k=6, seed=0)
    lr = normalize_percentile(scene.cube())
    srf = preset_srf(args.msi_bands, args.bands, wavelengths=scene.wavelengths)
    x_np = apply_srf(lr, srf).reshape(-1, args.msi_bands).astype(np.float32)
    t_np = lr.reshape(-1, args.bands)
    E = torch.from_numpy(extract_endmembers(lr, args.k, device=dev)).to(dev)
    x = torch.from_numpy(np.ascontiguousarray(x_np)).to(dev)
    t = torch.from_numpy(np.ascontiguousarray(t_np)).to(dev)
    n = x.shape[0]
    kw = dict(scheduler="one_cycle", init_lr=1e-3, max_lr=1e-2, final_lr=1e-6)

    def model():
        return LatentEstimationNetwork(args.msi_bands, args.hidden, args.k, seed=0).to(dev)

    # the engine
    train_len(model(), x, t, E, epochs=args.warmup, **kw)
    hist = train_len(model(), x, t, E, epochs=args.epochs, **kw)
    ours = hist.epochs_per_second

    # plain autograd, full batch: what a straightforward torch port would do
    def autograd(epochs):
        m = model()
        opt = torch.optim.Adam(m.parameters(), lr=kw["init_lr"])
        sync(dev)
        t0 = time.perf_counter()
        for epoch in range(epochs):
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch, epochs, kw["scheduler"], kw["init_lr"], kw["max_lr"], kw["final_lr"])
            opt.zero_grad(set_to_none=True)
            loss = torch.mean(torch.abs(m(x) @ E - t))
            loss.backward()
            opt.step()
            float(loss)
        sync(dev)
        return epochs / (time.perf_counter() - t0)

    autograd(args.warmup)
    plain = autograd(args.epochs)
    flops = training_flops_per_epoch(n, args.msi_bands, args.hidden, args.k, args.bands)
    mm = matmul_reference(n, args.msi_bands, args.hidden, args.k, args.bands, args.device)
    return {"lr_pixels": n, "bands": args.bands, "msi_bands": args.msi_bands, "hidden": args.hidden,
            "k": args.k, "epochs": args.epochs, "warmup": args.warmup, "device": describe(dev),
            "epochs_per_s": ours, "autograd_epochs_per_s": plain, "train_flops_per_epoch": flops,
            "train_gflops": flops * ours / 1e9, "autograd_gflops": flops * plain / 1e9,
            "final_loss": hist.loss[-1] if hist.loss else None, "matmul": mm,
            "peak_rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------------------------- input

def _input(args) -> dict:
    """What opening a large input costs: list, lazy open, one band for a preview."""
    from spectramorph_engine.io import list_arrays, load_cube
    res = {"rss_before_mb": current_rss_mb()}   # interpreter + imports: not the file's doing
    t = time.perf_counter()
    entries = list_arrays(args.file)
    res["list_s"] = time.perf_counter() - t
    res["arrays"] = [[n, list(s), str(d)] for n, s, d in entries]
    t = time.perf_counter()
    cube = load_cube(args.file, lazy=True)
    res["lazy_open_s"] = time.perf_counter() - t
    res["data_type"] = type(cube.data).__name__
    res["open_delta_mb"] = current_rss_mb() - res["rss_before_mb"]
    t = time.perf_counter()
    # A copy, so a memory-mapped band is really read from disk. In a pixel-interleaved
    # (rows x cols x bands) file one band touches every page, so mapped file pages may
    # count in RSS: that is the OS page cache, not a copy of the cube.
    band = np.array(cube.data[:, :, cube.data.shape[2] // 2], dtype=np.float32)
    res["one_band_s"] = time.perf_counter() - t
    res["band_shape"] = list(band.shape)
    res["peak_rss_mb"] = peak_rss_mb()
    res["peak_delta_mb"] = res["peak_rss_mb"] - res["rss_before_mb"]
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speed_case")
    sub = p.add_subparsers(dest="what", required=True)
    parsers = []
    for name in ("fusion", "pipeline"):
        f = sub.add_parser(name)
        f.add_argument("--hr", required=True)
        f.add_argument("--lr", required=True)
        f.add_argument("--wavelengths", help=".npy of the HSI band centres in nm")
        f.add_argument("--epochs", type=int, default=20)
        f.add_argument("--hidden", type=int, default=1024)
        f.add_argument("--k", type=int, default=7)
        f.add_argument("--device", default="auto")
        f.add_argument("--formats", default="h5,numpy")
        f.add_argument("--out", required=True)
        parsers.append(f)
    r = sub.add_parser("reference")
    r.add_argument("--lr", required=True)
    r.add_argument("--hidden", type=int, default=1024)
    r.add_argument("--k", type=int, default=7)
    r.add_argument("--msi-bands", type=int, default=4)
    r.add_argument("--device", default="auto")
    r.add_argument("--no-nmf", action="store_true")
    tr = sub.add_parser("train")
    tr.add_argument("--rows", type=int, required=True)
    tr.add_argument("--cols", type=int, required=True)
    tr.add_argument("--bands", type=int, default=198)
    tr.add_argument("--msi-bands", type=int, default=4)
    tr.add_argument("--hidden", type=int, default=1024)
    tr.add_argument("--k", type=int, default=7)
    tr.add_argument("--epochs", type=int, default=30)
    tr.add_argument("--warmup", type=int, default=3)
    tr.add_argument("--device", default="auto")
    i = sub.add_parser("input")
    i.add_argument("--file", required=True)
    for s in parsers + [r, tr, i]:
        s.add_argument("--json", required=True)
    p.add_argument("--cores", type=int, default=None,
                   help="pin this process to its first N usable cores (the engine then uses N threads)")
    args = p.parse_args(argv)
    try:
        if args.cores:
            pin_cores(args.cores)
        if hasattr(args, "device"):
            from spectramorph_engine.core.device import configure_threads, resolve_device
            configure_threads()                               # as the pipeline does
            if args.what in ("reference", "train"):           # these call torch with the name directly
                args.device = str(resolve_device(args.device))
        res = {"fusion": _fusion, "pipeline": _pipeline, "reference": _reference, "train": _train,
               "input": _input}[args.what](args)
        res["ok"] = True
    except BaseException as exc:   # the parent shows the failure in its table instead of stopping
        res = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
               "peak_rss_mb": peak_rss_mb()}
    write_json(args.json, res)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
