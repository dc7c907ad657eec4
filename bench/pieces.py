"""The pieces of a big default run measured alone (issue 20): `python -m bench.pieces MODE`.

    python -m bench.pieces h5-write        # a streamed .h5 result: h5py, zlib on threads, the fastest deflate
    python -m bench.pieces h5-save         # save_cube's .h5 of a 400 x 400 x 200 cube: h5py against worker threads
    python -m bench.pieces deflate         # MB/s and ratio of zlib and ISA-L on one shuffled chunk
    python -m bench.pieces scores-memory --pair P [--psf-sigma 1]   # peak memory of the scores
    python -m bench.pieces admm-threads    # an ADMM iteration with its blocked pass on 1 and on 2 threads
    python -m bench.pieces sensors --pair P   # the misregistration measurement and the whole sensor fit
    python -m bench.pieces hysure --pair P    # method: hysure on a default-run pair, run to convergence and 200 iterations
    python -m bench.pieces inference       # the network on 1M pixels: 16k-pixel blocks against cache-sized steps
    python -m bench.pieces minvol          # minimum-volume endmembers of a 64 x 64 x 200 mixture, K 7 and 9
    python -m bench.pieces score-chunks    # score_cubes at the engine's band chunks and others

All on synthetic data of seed 0 (mixtures of 7 smooth spectra, small noise) unless --pair names
the folder of a `bench default-run` pair; torch threads as given by --threads (default 2).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np

from .common import RssSampler


def _cube(rows: int, cols: int, bands: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wl = np.linspace(0, 1, bands)
    E = np.stack([0.2 + 0.6 * np.exp(-0.5 * ((wl - m) / 0.15) ** 2) for m in rng.uniform(0, 1, 7)])
    A = rng.random((rows, cols, 7))
    return (A @ E + rng.normal(0, 0.003, (rows, cols, bands))).astype(np.float32)


def h5_write(args) -> None:
    """The same 512 x 1024 x 200 result (blocks of 16 rows) through ResultWriter three ways."""
    import tempfile
    import zlib
    from pathlib import Path
    from spectramorph_engine import io
    from spectramorph_engine.io import h5_chunks
    block = _cube(16, 1024, 200)
    rows = 512
    ways = {"h5py (one thread)": None, "zlib on worker threads": lambda: zlib.compress,
            "fastest deflate on worker threads": h5_chunks.fastest_compress}
    real_suits, real_fastest = h5_chunks.ChunkCompressor.suits, h5_chunks.fastest_compress
    folder = Path(tempfile.mkdtemp(prefix="sm-bench-h5-"))
    for name, compress in ways.items():
        try:
            if compress is None:
                h5_chunks.ChunkCompressor.suits = staticmethod(lambda ds: False)
            else:
                h5_chunks.fastest_compress = compress
            t0 = time.perf_counter()
            with io.ResultWriter(folder / "r.h5", (rows, 1024, 200)) as w:
                for r0 in range(0, rows, 16):
                    w.write_rows(r0, block)
            seconds = time.perf_counter() - t0
        finally:
            h5_chunks.ChunkCompressor.suits, h5_chunks.fastest_compress = real_suits, real_fastest
        print(f"{name}: {rows * 1024 * 200 * 4 / 1e6:.0f} MB in {seconds:.2f} s, "
              f"file {(folder / 'r.h5').stat().st_size / 1e6:.0f} MB")


def h5_save(args) -> None:
    """save_cube's .h5 of a 400 x 400 x 200 cube (a result too small to stream), three calls each
    through h5py alone (every chunk deflated on the calling thread) and with the chunks deflated
    on worker threads (the engine's way)."""
    import tempfile
    from pathlib import Path
    from spectramorph_engine import io
    from spectramorph_engine.io import h5_chunks
    cube = _cube(400, 400, 200)
    real_suits = h5_chunks.ChunkCompressor.suits
    with tempfile.TemporaryDirectory(prefix="sm-bench-h5save-") as d:
        path = Path(d) / "r.h5"
        for name, suits in (("h5py (one thread)", staticmethod(lambda ds: False)), ("worker threads", None)):
            times = []
            try:
                if suits is not None:
                    h5_chunks.ChunkCompressor.suits = suits
                for _ in range(3):
                    t0 = time.perf_counter()
                    io.save_cube(path, cube)
                    times.append(time.perf_counter() - t0)
            finally:
                h5_chunks.ChunkCompressor.suits = real_suits
            print(f"{name}: {cube.nbytes / 1e6:.0f} MB in " + " ".join(f"{t:.2f}" for t in times)
                  + f" s, file {path.stat().st_size / 1e6:.1f} MB")


def deflate(args) -> None:
    """One 4 MB chunk of 5 rows x 1024 x 200, shuffled as HDF5 does, deflated at level 1."""
    import zlib
    from spectramorph_engine.io.h5_chunks import fastest_compress
    chunk = _cube(5, 1024, 200)
    raw = np.ascontiguousarray(chunk).reshape(-1).view(np.uint8).reshape(-1, 4).T.tobytes()
    for name, compress in (("zlib", zlib.compress), ("fastest installed", fastest_compress())):
        t0 = time.perf_counter()
        for _ in range(5):
            out = compress(raw, 1)
        seconds = (time.perf_counter() - t0) / 5
        assert zlib.decompress(out) == raw
        print(f"{name} ({compress.__module__}): {len(raw) / seconds / 1e6:.0f} MB/s, ratio {len(raw) / len(out):.2f}")


def scores_memory(args) -> None:
    """The scores of a streamed result on a default-run pair: consistency_from_latent with
    K + P = 14 latent maps (random, seed 0) and the pair's misfit map, each measured alone."""
    import gc
    from spectramorph_engine import FusionConfig, prepare_inputs
    from spectramorph_engine.quality import consistency as cons
    from spectramorph_engine.run.pipeline import warm_up
    if not args.pair:
        raise SystemExit("--pair: the pair folder of a `python -m bench default-run` (e.g. <workdir>/2048/pair)")
    warm_up()
    d = args.pair.rstrip("/") + "/"
    prep = prepare_inputs(FusionConfig(synthetic=False, hr_msi_file=d + "hr_msi.h5", lr_hsi_file=d + "lr_hsi.h5",
                                       wavelengths=d + "wavelengths.npy"))
    if args.psf_sigma:         # the pair's own estimate is no blur (1 x 1): a blurring sensor instead
        import dataclasses
        from spectramorph_engine.sensors.psf import make_psf
        prep = dataclasses.replace(prep, psf=make_psf("gaussian", args.psf_sigma, 2 * int(3 * args.psf_sigma) + 1))
    srf, offset = prep.msi_model()
    H, W, _ = prep.hr_msi.shape
    rng = np.random.default_rng(0)
    maps = rng.random((H, W, 14), dtype=np.float32) * 0.1
    basis = rng.random((14, prep.lr_hsi.shape[2])).astype(np.float32) * 0.5
    for name, run in (("consistency_from_latent", lambda: cons.consistency_from_latent(
                            maps, basis, prep.lr_hsi, prep.hr_msi, srf, prep.ratio, prep.psf, offset=offset,
                            value_range=prep.value_range, boundary="free")),
                      ("pair_misfit", lambda: cons.pair_misfit(prep.hr_msi, prep.lr_hsi, prep.ratio, prep.psf, srf,
                                                               offset, boundary="free"))):
        gc.collect()
        t0 = time.perf_counter()
        with RssSampler(every=0.02) as peak:
            run()
        print(f"{name}: + {peak.peak_mib - peak.samples[0][1]:.0f} MiB over its inputs, "
              f"{time.perf_counter() - t0:.1f} s")


def admm_threads(args) -> None:
    """Seconds per ADMM iteration (bench.admm_step's problem, free margin) with the blocked
    pass on one thread (hysure_admm._one_thread, the engine's choice) and on all of them."""
    from . import admm_step as A
    from spectramorph_engine.methods import hysure, hysure_admm
    A.set_threads(args.threads)
    p = A.problem(args.size)
    real = hysure_admm._one_thread
    best = {}
    try:
        for _ in range(2):
            for name in ("one thread", "all threads"):
                hysure_admm._one_thread = real if name == "one thread" else (lambda dev: contextlib.nullcontext())
                best[name] = min(best.get(name, np.inf), A.per_iteration(hysure.solve, p, "free", 8))
    finally:
        hysure_admm._one_thread = real
    print(f"{args.size}^2, {args.threads} torch threads, s per iteration: "
          + ", ".join(f"blocked pass on {k} {v:.3f}" for k, v in best.items()))


def sensors(args) -> None:
    """Seconds of coregistration.estimate_displacement (the pair, and its LR-HSI shifted by
    (0.3, -0.45) LR px, cubic) and of psf_estimation.estimate_sensors on a default-run pair,
    three calls each; run it from each tree to compare two commits."""
    from scipy import ndimage
    from spectramorph_engine.io import load_cube
    from spectramorph_engine.sensors import coregistration, psf_estimation
    if not args.pair:
        raise SystemExit("--pair: the pair folder of a `python -m bench default-run` (e.g. <workdir>/1024/pair)")
    d = args.pair.rstrip("/") + "/"
    hr, lr = np.asarray(load_cube(d + "hr_msi.h5").data), np.asarray(load_cube(d + "lr_hsi.h5").data)
    wl = np.load(d + "wavelengths.npy")
    shifted = ndimage.shift(lr, (0.3, -0.45, 0), order=3, mode="mirror")

    def timed(call):
        times, out = [], None
        for _ in range(3):
            t0 = time.perf_counter()
            out = call()
            times.append(time.perf_counter() - t0)
        return out, " ".join(f"{t:.2f}" for t in times)

    for name, cube in (("aligned", lr), ("shifted (0.3, -0.45) LR px", shifted)):
        est, times = timed(lambda: coregistration.estimate_displacement(hr, cube, 4))
        print(f"estimate_displacement, {name}: {np.round(est.displacement, 6)} (cols, rows LR px), "
              f"fit gain {est.fit_gain:.6f}; s: {times}")
    _est, times = timed(lambda: psf_estimation.estimate_sensors(hr, lr, 4, wavelengths=wl))
    print(f"estimate_sensors: s: {times}")


def inference(args) -> None:
    """The network on 1M pixels (4 inputs, 1024 hidden, 7 out): whole blocks of 16,384 pixels
    through forward() (before the 11th session) against the engine's cache-sized steps."""
    import torch
    from spectramorph_engine.methods.spectramorph.model import LatentEstimationNetwork
    model = LatentEstimationNetwork(4, 1024, 7, seed=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.fc1.bias.uniform_(-0.1, 0.1, generator=gen)
        model.fc2.bias.uniform_(-0.1, 0.1, generator=gen)
    x = torch.rand(1 << 20, 4, generator=gen)

    def blocks():
        with torch.no_grad():
            return torch.cat([model(x[s:s + 16384]) for s in range(0, x.shape[0], 16384)])

    def steps():
        return torch.cat([model.latents(x[s:s + 16384]) for s in range(0, x.shape[0], 16384)])
    for rep in range(2):
        t0 = time.perf_counter()
        a = blocks()
        t1 = time.perf_counter()
        b = steps()
        t2 = time.perf_counter()
        print(f"1M pixels: forward on 16k blocks {t1 - t0:.2f} s, latents in steps of "
              f"{LatentEstimationNetwork.CPU_STEP} {t2 - t1:.2f} s; equal: {torch.equal(a, b)}")


def minvol(args) -> None:
    """Minimum-volume endmembers of a 64 x 64 x 200 mixture (the size of a big scene's reduced
    pair in auto-selection and the check), K 7 and 9, three calls each."""
    from spectramorph_engine.methods.spectramorph.unmixing import extract_endmembers
    cube = np.clip(_cube(64, 64, 200), 0, None)
    for k in (7, 9):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            extract_endmembers(cube, k, method="minvol")
            times.append(round(time.perf_counter() - t0, 2))
        print(f"K {k}: s per call {times}")


def score_chunks(args) -> None:
    """score_cubes of two estimates against a truth at the engine's band chunks and others."""
    from spectramorph_engine.quality import scores
    rng = np.random.default_rng(0)
    for side, bands in ((256, 200), (400, 104), (1024, 40)):
        x = rng.random((side, side, bands), dtype=np.float32)
        ests = [x + s * rng.standard_normal(x.shape, dtype=np.float32) for s in (0.01, 0.02)]
        engine = scores.chunk_bands(side * side)
        for chunk in dict.fromkeys((engine, scores.chunk_bands(side * side, 2 * scores._CHUNK_BYTES) // 2 * 2,
                                    max(1, engine // 2), 2 * engine)):
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                scores.score_cubes(x, ests, 4, chunk=chunk)
                times.append(round(time.perf_counter() - t0, 2))
            tag = " (the engine's)" if chunk == engine else ""
            print(f"{side} x {side} x {bands}: {chunk} bands a chunk{tag}: s {times}")


def hysure(args) -> None:
    """`method: hysure` on a default-run pair as the CLI runs it (real-world mode, sensors
    estimated, no files written): at the default (until converged, at most hysure_iterations)
    and at 200 iterations (the paper's count). Iterations run, why it stopped, the fusion's
    seconds, and the LR consistency PSNR (the pair has no truth)."""
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run.pipeline import run_fusion
    if not args.pair:
        raise SystemExit("--pair: the pair folder of a `python -m bench default-run` (e.g. <workdir>/1024/pair)")
    d = args.pair.rstrip("/") + "/"
    base = FusionConfig(synthetic=False, method="hysure", hr_msi_file=d + "hr_msi.h5", lr_hsi_file=d + "lr_hsi.h5",
                        wavelengths=d + "wavelengths.npy", verbose=0)
    for label, cfg in (("default", base), ("200 iterations", base.replace(hysure_iterations=200))):
        res = run_fusion(cfg, write_outputs=False)
        info = res.method_info
        lr_psnr = ((res.consistency or {}).get("lr_consistency") or {}).get("PSNR")
        print(f"{label}: {info['iterations']} of {info['iterations_max']} iterations ({info['stop']}), "
              f"fuse {res.timings.get('fuse', float('nan')):.1f} s, LR consistency PSNR "
              f"{'-' if lr_psnr is None else f'{lr_psnr:.2f}'} dB", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pieces", description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("h5-write", "h5-save", "deflate", "scores-memory", "admm-threads", "sensors",
                                     "hysure", "inference", "minvol", "score-chunks"))
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--size", type=int, default=1024, help="admm-threads: the scene's side")
    ap.add_argument("--pair", default=None, help="scores-memory, sensors, hysure: a default-run pair folder")
    ap.add_argument("--psf-sigma", type=float, default=None,
                    help="scores-memory: a Gaussian PSF of this sigma (px) instead of the pair's estimate")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    {"h5-write": h5_write, "h5-save": h5_save, "deflate": deflate, "scores-memory": scores_memory,
     "admm-threads": admm_threads, "sensors": sensors, "hysure": hysure, "inference": inference, "minvol": minvol,
     "score-chunks": score_chunks}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
