"""What the blur estimate's support costs on a blind-bench case (python -m bench.kernel_support).

Issue 19: on the held-out scene at ratio 8 with one band and the heavy-tailed PSF (49 x 49),
blind HySure stays 0.04 dB ahead of the default, and the default's estimate is cut at
psf_estimation.MAX_RADIUS (33 x 33). This runs the default and HySure on the blind bench's pair
of each seed given the true kernel whole, the true kernel cut to the estimate's widest support
(renormalised), and blind (the engine's estimate): if both methods move alike, the cut is not
what separates them.

    python -m bench.kernel_support --scene holdout --setting moffat-r8c1 --seeds 1,2,3

One process, one torch thread (SPECTRAMORPH_THREADS=1 unless set); PSNR dB as the blind bench.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np


def cut_kernel(kernel: np.ndarray, radius: int) -> np.ndarray:
    """The central (2 radius + 1)^2 taps of `kernel`, renormalised to sum 1."""
    c = kernel.shape[0] // 2
    r = min(radius, c)
    k = kernel[c - r:c + r + 1, c - r:c + r + 1]
    return k / k.sum()


def run_case(scene_name: str, setting_name: str, seed: int) -> dict:
    from spectramorph_engine.sensors.degradation import normalize_percentile
    from . import blind
    from .scenes import scene
    setting = blind.SETTINGS[setting_name]
    raw, wl = scene(scene_name, 128)
    truth0 = normalize_percentile(raw)
    srf = blind.scene_srf(setting, truth0.shape[2], wl)
    truth, hr, lr = blind.make_pair(truth0, setting, srf, seed)
    whole = blind.true_kernel(setting)
    with tempfile.TemporaryDirectory(prefix="kernel-support-") as d:
        return _fuse_each(d, truth, hr, lr, whole, wl, setting, seed)


def _fuse_each(d, truth, hr, lr, whole, wl, setting, seed) -> dict:
    """PSNR of the default and HySure given the whole / cut true kernel and blind."""
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run.pipeline import run_fusion
    from spectramorph_engine.sensors.psf_estimation import MAX_RADIUS
    from . import blind
    paths = {n: os.path.join(d, f"{n}.npy") for n in ("hr", "lr", "whole", "cut")}
    np.save(paths["hr"], hr)
    np.save(paths["lr"], lr)
    np.save(paths["whole"], whole)
    np.save(paths["cut"], cut_kernel(whole, MAX_RADIUS))
    base = dict(synthetic=False, hr_msi_file=paths["hr"], lr_hsi_file=paths["lr"], seed=seed, device="cpu",
                verbose=0, output_dir=os.path.join(d, "out"), log_dir=os.path.join(d, "logs"))
    if wl is not None:
        base["wavelengths"] = [float(v) for v in wl]
    out = {}
    for method in ("default", "hysure"):
        for kernel in ("whole", "cut", "blind"):
            cfg = dict(base)
            if method == "hysure":
                cfg["method"] = "hysure"
            if kernel != "blind":
                cfg.update(provide_psf=True, psf_file=paths[kernel])
            res = run_fusion(FusionConfig(**cfg), write_outputs=False)
            out[f"{method} {kernel}"] = blind._score(truth, res.hr_hsi, setting.ratio)["PSNR"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.kernel_support", description=__doc__.split("\n")[0])
    ap.add_argument("--scene", default="holdout")
    ap.add_argument("--setting", default="moffat-r8c1")
    ap.add_argument("--seeds", default="1,2,3")
    args = ap.parse_args(argv)
    os.environ.setdefault("SPECTRAMORPH_THREADS", "1")
    import logging
    logging.getLogger("spectramorph_engine").setLevel(logging.ERROR)
    from spectramorph_engine.sensors.psf_estimation import MAX_RADIUS
    from .blind import true_kernel, SETTINGS
    n = true_kernel(SETTINGS[args.setting]).shape[0]
    cut = 2 * min(MAX_RADIUS, n // 2) + 1
    print(f"{args.scene} {args.setting}: PSNR dB given the true kernel whole ({n} x {n}), cut to {cut} x {cut}, "
          f"and blind; SPECTRAMORPH_THREADS={os.environ['SPECTRAMORPH_THREADS']}")
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row = run_case(args.scene, args.setting, seed)
        rows.append(row)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print("mean:   " + ", ".join(f"{k} {v:.2f}" for k, v in mean.items()))
    for kernel in ("whole", "cut", "blind"):
        print(f"default - HySure, {kernel}: {mean['default ' + kernel] - mean['hysure ' + kernel]:+.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
