"""The refinement tile by tile (issue 20 item 3): `python -m bench.tiled_refinement halo|memory|tiles`.

halo    the tiled refinement against the whole-scene one as the halo grows: a synthetic scene
        (blocky abundances of 4 smooth spectra, 40 bands), an asymmetric 7 x 5 PSF, ratio 4 or 8,
        1 or 3 MSI bands, a flawed network result; conjugate gradients (no TV) and the ADMM (TV)
        run a fixed number of iterations. Max abs difference over the cube / its range.
memory  time and peak resident memory of the whole-scene and the tiled refinement (default TV
        path, each in its own process) on an N x N scene of the same kind.
tiles   `run --tiles` (Dask, 2 workers) against the whole-scene run on the real-camera scenario
        (Urban, IKONOS + gamma, ratio 2) mirrored to N x N: PSNR / SAM against the truth.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import data_dir, table


def scene(size: int, ratio: int = 4, bands: int = 3, seed: int = 0):
    """(truth, msi, lr, psf, srf, alle, endmembers) of the module docstring's synthetic scene."""
    from spectramorph_engine.sensors import degradation
    rng = np.random.default_rng(seed)
    C, K = 40, 4
    wl = np.linspace(0, 1, C)
    E = np.stack([0.2 + 0.6 * np.exp(-0.5 * ((wl - m) / 0.15) ** 2) for m in rng.uniform(0, 1, K)])
    A = rng.random((size // 8, size // 8, K)) ** 3
    A = np.repeat(np.repeat(A, 8, 0), 8, 1)
    A /= A.sum(axis=2, keepdims=True)
    truth = (A @ E).astype(np.float32)
    psf = rng.random((7, 5)) * np.outer(np.hanning(9)[1:-1], np.hanning(7)[1:-1])
    psf /= psf.sum()
    edges = np.linspace(0, C, bands + 1).astype(int)
    srf = np.zeros((bands, C))
    for i in range(bands):
        srf[i, edges[i]:edges[i + 1]] = 1.0 / (edges[i + 1] - edges[i])
    truth, msi, lr = degradation.make_synthetic_pair(truth, psf, srf, ratio, 40.0, 45.0, seed=1)
    error = np.repeat(np.repeat(rng.normal(0, 0.15, (size // 16, size // 16, K)), 16, 0), 16, 1)
    return truth, msi, lr, psf, srf, (A + error).astype(np.float32), E.astype(np.float32)


def halo(args) -> None:
    from spectramorph_engine.methods.spectramorph.refinement import refine, scene_terms
    from spectramorph_engine.methods.spectramorph.tiled_refinement import refine_tiled
    rows = []
    for ratio, bands in ((4, 3), (4, 1), (8, 1)):
        if args.cases and f"r{ratio}c{bands}" not in args.cases:
            continue
        truth, msi, lr, psf, srf, alle, E = scene(args.size, ratio, bands)
        scale = float(truth.max() - truth.min())
        terms = scene_terms(alle, E, lr, psf, ratio, srf, subspace_dim=10)
        for tv, kw in ((0.0, dict(iterations=300, cg_tol=3e-7)),
                       (10.0, dict(tv_iterations=args.tv_iterations, tv_tol=None))):
            whole = refine(alle, E, lr, msi, psf, ratio, srf, subspace_dim=10, tv_weight=tv, **kw)
            zw = whole.delta @ whole.basis
            diffs = []
            for h in args.halos:
                t = refine_tiled(alle, E, lr, msi, psf, ratio, srf, terms=terms, tile=args.tile, halo=h * ratio // 4,
                                 tv_weight=tv, **kw)
                diffs.append(float(np.abs(t.delta @ t.basis - zw).max()) / scale)
            rows.append([f"r{ratio} c{bands}", "ADMM (TV)" if tv else "CG", f"{terms.prior_weight:.1e}"]
                        + [f"{d:.1e}" for d in diffs])
            print(rows[-1], flush=True)
    print(f"\n{args.size} x {args.size} scene, tiles of {args.tile}, ADMM {args.tv_iterations} iterations; halo in "
          f"HR px at r4 (x2 at r8); max |tiled - whole| / range")
    print(table(["case", "solver", "mu"] + [f"halo {h}" for h in args.halos], rows))


def _one(args) -> None:
    """A child process: one refinement, prints seconds and peak RSS (MiB) as JSON."""
    from spectramorph_engine.methods.spectramorph.refinement import refine, scene_terms
    from spectramorph_engine.methods.spectramorph.tiled_refinement import refine_tiled
    truth, msi, lr, psf, srf, alle, E = scene(args.size)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if args.tile:
        terms = scene_terms(alle, E, lr, psf, 4, srf, subspace_dim=10)
        ref = refine_tiled(alle, E, lr, msi, psf, 4, srf, terms=terms, tile=args.tile, tv_weight=10.0,
                           tv_iterations=200)
    else:
        ref = refine(alle, E, lr, msi, psf, 4, srf, subspace_dim=10, tv_weight=10.0, tv_iterations=200)
    dt = time.perf_counter() - t0
    np.save(args.out, ref.delta @ ref.basis)
    print(json.dumps({"seconds": dt, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "before_mb": base, "iterations": ref.info["iterations"],
                      "tiled": ref.info.get("tiled"), "range": float(truth.max() - truth.min())}))


def memory(args) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cubes = {}
        for tile in [0] + list(args.tiles):
            out = Path(tmp) / f"{tile}.npy"
            cmd = [sys.executable, "-m", "bench.tiled_refinement", "_one", "--size", str(args.size),
                   "--tile", str(tile), "--out", str(out)]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            cubes[tile] = np.load(out)
            diff = float(np.abs(cubes[tile] - cubes[0]).max()) / r["range"]
            rows.append(["whole" if not tile else f"tiles of {tile} ({r['tiled']['tiles']}, halo {r['tiled']['halo']})",
                         f"{r['seconds']:.1f}", f"{r['peak_mb'] - r['before_mb']:.0f}", f"{r['peak_mb']:.0f}",
                         str(r["iterations"] if not tile else r["tiled"]["iterations_min_max"]), f"{diff:.1e}"])
            print(rows[-1], flush=True)
    print(f"\n{args.size} x {args.size} x 40, ratio 4, P 10, TV (ADMM, stopping rule, at most 200 iterations)")
    print(table(["refinement", "s", "peak - before, MiB", "peak RSS, MiB", "iterations", "max diff / range"], rows))


def tiles(args) -> None:
    from spectramorph_engine.quality import metrics
    from spectramorph_engine.run.config import FusionConfig
    from spectramorph_engine.run.pipeline import run_fusion
    from spectramorph_engine.scale.batch import local_cluster
    from spectramorph_engine.scale.tiled import run_tiled
    from spectramorph_engine.sensors.scenarios import (CAMERA_GAMMA, SNR_HSI_DB, SNR_MSI_DB, build_pair,
                                                       gaussian_psf, ikonos_srf, load_truth,
                                                       evenly_spaced_wavelengths, IKONOS_FILE)
    urban = data_dir() / "subimage_Urban_R162.mat"
    truth = load_truth(urban)
    n = args.size
    truth = np.pad(truth, ((0, max(0, n - truth.shape[0])), (0, max(0, n - truth.shape[1])), (0, 0)),
                   mode="symmetric")[:n, :n]
    srf = ikonos_srf(urban.with_name(IKONOS_FILE), evenly_spaced_wavelengths(truth.shape[2]))
    hr, lr = build_pair(truth, srf, gaussian_psf(), 2, SNR_MSI_DB, SNR_HSI_DB, seed=0, gamma=CAMERA_GAMMA)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "hr.npy", hr)
        np.save(tmp / "lr.npy", lr)
        base = FusionConfig().replace(synthetic=False, hr_msi_file=str(tmp / "hr.npy"), lr_hsi_file=str(tmp / "lr.npy"),
                                      num_bands_msi_non_synthetic=4, log_dir=str(tmp / "logs"), device="cpu",
                                      **({"epochs": args.epochs} if args.epochs else {}))

        def score(label, cube, secs, refined):
            rows.append([label, metrics.psnr(truth, cube), metrics.sam(truth, cube), refined, secs])
            print(rows[-1], flush=True)
        for label, changes in (("whole-scene default", {}), ("whole-scene, auto_select: false",
                                                                {"auto_select": False})):
            t0 = time.perf_counter()
            res = run_fusion(base.replace(output_dir=str(tmp / label.replace(" ", "_")), **changes))
            score(label, np.load(res.output_files["hr_hsi"]), time.perf_counter() - t0, res.method_info["refined"])
        import zarr
        cluster = local_cluster(2, 1)
        from dask.distributed import Client
        client = Client(cluster)
        try:
            for label, changes in (("run --tiles (2 workers)", {}), ("run --tiles, refine: false", {"refine": False})):
                t0 = time.perf_counter()
                out_dir = tmp / label.replace(" ", "_")
                run_tiled(base.replace(output_dir=str(out_dir), **changes), client, chunk=args.chunk, threads=1)
                run = json.loads((out_dir / "run.json").read_text())
                score(f"{label}, chunks of {args.chunk}", zarr.open_array(str(out_dir / "hr_hsi.zarr"), mode="r")[:],
                      time.perf_counter() - t0, run["method_info"]["refined"])
        finally:
            client.close()
            cluster.close()
    print(f"\nreal-camera scenario, Urban mirrored to {n} x {n}, ratio 2; epochs {args.epochs or 'default'}")
    print(table(["run", "PSNR dB", "SAM deg", "refined", "s"], rows))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tiled_refinement", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="which", required=True)
    a = sub.add_parser("halo")
    a.add_argument("--size", type=int, default=192)
    a.add_argument("--tile", type=int, default=64)
    a.add_argument("--halos", type=int, nargs="+", default=[0, 16, 32, 48, 64])
    a.add_argument("--tv-iterations", type=int, default=100, help="the ADMM's fixed iteration count")
    a.add_argument("--cases", nargs="*", default=None, help="e.g. r4c3 r4c1 r8c1 (default: all)")
    m = sub.add_parser("memory")
    m.add_argument("--size", type=int, default=512)
    m.add_argument("--tiles", type=int, nargs="+", default=[256, 128])
    o = sub.add_parser("_one")
    o.add_argument("--size", type=int, required=True)
    o.add_argument("--tile", type=int, default=0)
    o.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("tiles")
    t.add_argument("--size", type=int, default=400)
    t.add_argument("--chunk", type=int, default=200)
    t.add_argument("--epochs", type=int, default=None)
    args = p.parse_args(argv)
    {"halo": halo, "memory": memory, "_one": _one, "tiles": tiles}[args.which](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
