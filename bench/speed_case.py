"""One speed-benchmark scenario, run in a fresh process (python -m bench.speed_case ...).

A fresh process per scenario makes ru_maxrss (the process's peak resident
memory) that scenario's alone. The parent (bench.speed) builds the input
files, starts this, and reads back the JSON it writes; nothing is printed.

    python -m bench.speed_case fusion --hr HR.h5 --lr LR.h5 --ratio 4 --epochs 50 \
        --device cpu --formats h5,numpy --out DIR --json OUT.json
    python -m bench.speed_case reference --lr LR.h5 --hidden 1024 --k 7 --msi-bands 4 --json OUT.json
    python -m bench.speed_case input --file CUBE.h5 --json OUT.json
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from .common import current_rss_mb, peak_rss_mb, write_json


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


def training_flops_per_epoch(n: int, c_in: int, hidden: int, k: int, bands: int) -> float:
    """Floating-point operations of one full-batch training epoch (GEMMs only).

    The engine's own count is used when it has one. Otherwise: forward
    X(n,c_in)W1 -> Z(n,hidden) W2 -> A(n,k) E -> (n,bands) is
    2n(c_in*hidden + hidden*k + k*bands); backward needs dA = dR E^T
    (2n k bands), dW2 = Z^T dA and dZ = dA W2^T (2 x 2n hidden k), dW1 = X^T dZ
    (2n c_in hidden); no gradient for the input or the fixed endmembers.
    Element-wise work (ReLU, |.|, Adam) is left out: it is not matmul work.
    """
    try:
        from spectramorph_engine.training import training_flops_per_epoch as engine_count
        return float(engine_count(n, c_in, hidden, k, bands))
    except (ImportError, AttributeError, TypeError):
        pass
    fwd = 2.0 * n * (c_in * hidden + hidden * k + k * bands)
    bwd = 2.0 * n * (k * bands + 2 * hidden * k + c_in * hidden)
    return fwd + bwd


def _fusion(args) -> dict:
    from spectramorph_engine import FusionConfig, events
    from spectramorph_engine.pipeline import run_fusion, write_result

    formats = [f for f in args.formats.split(",") if f]
    out = Path(args.out)
    wl = [float(v) for v in np.load(args.wavelengths)] if args.wavelengths else None
    config = FusionConfig(synthetic=False, hr_msi_file=args.hr, lr_hsi_file=args.lr,
                          srf_source="preset", training_input="srf", wavelengths=wl,
                          epochs=args.epochs, hidden_size=args.hidden, num_endmembers=args.k,
                          device=args.device, output_file_type=formats[0] if formats else "numpy",
                          output_dir=str(out / formats[0]) if formats else str(out / "none"),
                          log_dir=str(out / "logs"), verbose=0)
    epochs_seen = [0]
    with RssSampler() as sampler:
        def progress(e):
            if isinstance(e, events.StageStarted):
                sampler.set_stage(e.stage)
            elif isinstance(e, events.EpochEnd):
                epochs_seen[0] += 1

        t0 = time.perf_counter()
        result = run_fusion(config, progress=progress, write_outputs=bool(formats))
        total = time.perf_counter() - t0
        save_times = {}
        if formats:
            save_times[formats[0]] = result.timings.get("save")
        for fmt in formats[1:]:
            sampler.set_stage(f"save_{fmt}")
            t1 = time.perf_counter()
            write_result(config.replace(output_file_type=fmt, output_dir=str(out / fmt)), result)
            save_times[fmt] = time.perf_counter() - t1
        sampler.set_stage("end")
    prep = result.prepared
    h, w, C = prep.lr_hsi.shape
    c = prep.hr_msi.shape[2]
    n = h * w
    train_s = result.timings.get("train")
    epochs = epochs_seen[0] or len(result.loss_history)
    c_in = c + (C if config.use_prior else 0)
    flops = training_flops_per_epoch(n, c_in, config.hidden_size, config.num_endmembers, C)
    return {
        "hr_shape": list(prep.hr_msi.shape), "lr_shape": list(prep.lr_hsi.shape), "ratio": prep.ratio,
        "lr_pixels": n, "epochs": epochs, "device": result.device,
        "timings": dict(result.timings), "save_times": save_times, "total_s": total,
        "epochs_per_s": epochs / train_s if train_s else None,
        "train_flops_per_epoch": flops,
        "train_gflops": flops * epochs / train_s / 1e9 if train_s else None,
        "peak_rss_mb": peak_rss_mb(), "stage_peak_rss_mb": sampler.peaks,
        "final_loss": result.final_loss,
        "hr_hsi_type": type(result.hr_hsi).__name__,
        "output_files": dict(result.output_files),
    }


def _time_mm(a, b, device, repeats: int = 3) -> float:
    """Best-of-`repeats` seconds of a @ b (synchronised on a GPU)."""
    import torch
    best = float("inf")
    a @ b                                 # warm-up: thread pool, allocator
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_reference(n: int, c_in: int, hidden: int, k: int, bands: int, device: str,
                     max_rows: int = 65536) -> dict:
    """The machine's dense float32 matmul rate: 2048^3 and the training's own GEMM shapes.

    Rows are capped at `max_rows` (the rate per row is flat well below that)
    so the reference does not need gigabytes of scratch at 262,144 pixels.
    """
    import torch
    dev = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(dev)

    sq = 2048
    t_sq = _time_mm(rnd(sq, sq), rnd(sq, sq), dev)
    m = min(n, max_rows)
    shapes = [  # (rows, inner, cols) of every GEMM of one epoch
        ("X W1", m, c_in, hidden), ("Z W2", m, hidden, k), ("A E", m, k, bands),
        ("dR E^T", m, bands, k), ("dA W2^T", m, k, hidden), ("Z^T dA", hidden, m, k),
        ("X^T dZ", c_in, m, hidden)]
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


def _nmf_compare(x: np.ndarray, k: int, device: str) -> dict:
    """The engine's NMF next to scikit-learn's on the same matrix: time and relative error."""
    import inspect
    from spectramorph_engine import unmixing
    out = {"n": int(x.shape[0]), "bands": int(x.shape[1]), "k": k}
    kwargs = {}
    params = inspect.signature(unmixing.nmf).parameters
    if "device" in params:
        kwargs["device"] = device
    if "seed" in params:
        kwargs["seed"] = 0
    xn = float(np.linalg.norm(x))
    t = time.perf_counter()
    w, h = unmixing.nmf(x, k, **kwargs)
    out["torch_s"] = time.perf_counter() - t
    w, h = np.asarray(w, dtype=np.float64), np.asarray(h, dtype=np.float64)
    out["torch_err"] = float(np.linalg.norm(x - w @ h) / xn)
    try:
        from sklearn.decomposition import NMF
    except ImportError:
        out["sklearn_err"] = None
        out["sklearn_note"] = "scikit-learn not installed"
        return out
    import warnings
    model = NMF(n_components=k, init="nndsvda", random_state=0)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # a ConvergenceWarning is a result here, not a failure
        w2 = model.fit_transform(x)
    out["sklearn_s"] = time.perf_counter() - t
    out["sklearn_iter"] = int(model.n_iter_)
    out["sklearn_err"] = float(np.linalg.norm(x - w2 @ model.components_) / xn)
    return out


def _reference(args) -> dict:
    from spectramorph_engine.degradation import normalize_percentile
    from spectramorph_engine.io import load_cube
    lr = normalize_percentile(np.asarray(load_cube(args.lr).data, dtype=np.float32))
    h, w, C = lr.shape
    # the matrix the pipeline factorises: LR pixels x bands, clipped to [0, 1] (SPEC 1.1)
    x = np.clip(lr.reshape(-1, C), 0.0, 1.0).astype(np.float32)
    del lr
    res = {"matmul": matmul_reference(h * w, args.msi_bands, args.hidden, args.k, C, args.device)}
    if not args.no_nmf:
        res["nmf"] = _nmf_compare(x, args.k, args.device)
    res["peak_rss_mb"] = peak_rss_mb()
    return res


def _input(args) -> dict:
    """What opening a large input costs: lazy open, list, one band for a preview."""
    from spectramorph_engine.io import list_arrays, load_cube
    res = {"rss_before_mb": current_rss_mb()}   # interpreter + imports: not the file's doing
    t = time.perf_counter()
    entries = list_arrays(args.file)
    res["list_s"] = time.perf_counter() - t
    res["arrays"] = [[n, list(s), str(d)] for n, s, d in entries]
    res["rss_after_list_mb"] = current_rss_mb()
    t = time.perf_counter()
    cube = load_cube(args.file, lazy=True)
    res["lazy_open_s"] = time.perf_counter() - t
    res["data_type"] = type(cube.data).__name__
    res["open_delta_mb"] = current_rss_mb() - res["rss_before_mb"]
    t = time.perf_counter()
    # A copy, so a memory-mapped band is really read from disk. In a pixel-interleaved
    # (rows x cols x bands) file one band touches every page, so the band read may
    # count mapped file pages in RSS: that is the OS page cache, not a copy of the cube.
    band = np.array(cube.data[:, :, cube.data.shape[2] // 2], dtype=np.float32)
    res["one_band_s"] = time.perf_counter() - t
    res["band_shape"] = list(band.shape)
    res["peak_rss_mb"] = peak_rss_mb()
    res["peak_delta_mb"] = res["peak_rss_mb"] - res["rss_before_mb"]
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speed_case")
    sub = p.add_subparsers(dest="what", required=True)
    f = sub.add_parser("fusion")
    f.add_argument("--hr", required=True)
    f.add_argument("--lr", required=True)
    f.add_argument("--wavelengths", help=".npy of the HSI band centres in nm")
    f.add_argument("--epochs", type=int, default=50)
    f.add_argument("--hidden", type=int, default=1024)
    f.add_argument("--k", type=int, default=7)
    f.add_argument("--device", default="cpu")
    f.add_argument("--formats", default="h5,numpy")
    f.add_argument("--out", required=True)
    r = sub.add_parser("reference")
    r.add_argument("--lr", required=True)
    r.add_argument("--hidden", type=int, default=1024)
    r.add_argument("--k", type=int, default=7)
    r.add_argument("--msi-bands", type=int, default=4)
    r.add_argument("--device", default="cpu")
    r.add_argument("--no-nmf", action="store_true")
    i = sub.add_parser("input")
    i.add_argument("--file", required=True)
    for s in (f, r, i):
        s.add_argument("--json", required=True)
    args = p.parse_args(argv)
    try:
        res = {"fusion": _fusion, "reference": _reference, "input": _input}[args.what](args)
        res["ok"] = True
    except Exception as exc:   # the parent shows the failure in its table instead of stopping
        res = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
               "peak_rss_mb": peak_rss_mb()}
    write_json(args.json, res)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
