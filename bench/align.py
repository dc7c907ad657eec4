"""python -m bench align: what alignment buys (issue 22 items 1-2).

Pairs made from the real HYDICE Urban cube (34 x 78 x 162) as two instruments would deliver
them, georeferenced (EPSG:32633, HR pixels 10 m) and fused in real-world mode by the default
run (few epochs, to keep it cheap), scored against the ground truth (PSNR over the result's
finite pixels, the result in the truth's units):

- misregistration: ratio 4, nested grids, but the LR-HSI's content displaced by 0.25 / 0.5 LR
  pixel (both axes) from where its georeferencing says -- fused with `align: off` (today: the
  grids nest, nothing is measured) and `align: auto` (measured and corrected);
- off-grid: ratio 3 (10 m / 30 m), the LR grid's origin 13 m east and 7 m south of the HR
  grid's and one LR pixel shorter each way (the user's pair of issue 22), against the same
  scene on nested grids with equal extents; both scored on the off-grid result's footprint.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

HR_PX = 10.0
ORIGIN = (500000.0, 4000400.0)
SIGMA = 1.0            # Gaussian PSF width (HR pixels) on 7 x 7; the SNRs are synthetic mode's defaults
SNR_LR, SNR_HR = 35.0, 40.0


def _geo(pixel, east=0.0, south=0.0):
    from rasterio.crs import CRS
    from spectramorph_engine.io.georef import GeoInfo
    return GeoInfo(CRS.from_epsg(32633).to_wkt(), (pixel, 0.0, ORIGIN[0] + east, 0.0, -pixel, ORIGIN[1] - south),
                   None, "EPSG:32633")


def _pair(ratio: int, seed: int, east_px: float, south_px: float, shrink: int = 0, margin: int = 2):
    """(truth, hr, lr): the HR region truth[margin:, margin:] cut to whole LR pixels; the LR-HSI
    sampling the blurred truth east_px / south_px HR pixels from the HR grid (cubic spline for a
    fraction), `shrink` LR pixels shorter each way."""
    from scipy import ndimage
    from bench.scenes import urban_cube
    from spectramorph_engine.sensors.degradation import (add_awgn, apply_srf, area_downsample, blur,
                                                         normalize_percentile)
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.srf import preset_srf
    full = normalize_percentile(urban_cube()).astype(np.float32)
    H = (full.shape[0] - 2 * margin) // ratio * ratio
    W = (full.shape[1] - 2 * margin) // ratio * ratio
    truth = full[margin:margin + H, margin:margin + W]
    blurred = blur(full, make_psf("gaussian", SIGMA, 7)).astype(np.float32)
    moved = ndimage.shift(blurred, (-south_px, -east_px, 0), order=3, mode="nearest")
    lr = area_downsample(moved[margin:margin + H, margin:margin + W], ratio)
    lr = lr[:lr.shape[0] - shrink, :lr.shape[1] - shrink]
    rng = np.random.default_rng(seed)
    hr = add_awgn(apply_srf(truth, preset_srf(4, truth.shape[2])), SNR_HR, rng).astype(np.float32)
    return truth, hr, add_awgn(lr, SNR_LR, rng).astype(np.float32)


def _fuse(hr, lr, hr_geo, lr_geo, align: str, seed: int, epochs: int):
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run.pipeline import run_fusion
    from spectramorph_engine.run.results import FusionInputs
    cfg = FusionConfig(synthetic=False, epochs=epochs, seed=seed, device="cpu", verbose=0, align=align)
    return run_fusion(cfg, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr, hr_geo=hr_geo, lr_geo=lr_geo),
                      write_outputs=False)


def _psnr(truth, est) -> tuple:
    """(PSNR dB over the finite pixels, their share)."""
    from spectramorph_engine.quality.metrics import psnr
    ok = np.isfinite(est).all(axis=2)
    return float(psnr(truth[ok][:, None, :], np.asarray(est)[ok][:, None, :])), float(ok.mean())


def _window(rec: dict):
    c = rec["hr_crop_px"]
    return slice(c["row"], c["row"] + c["rows"]), slice(c["col"], c["col"] + c["cols"])


def misregistration_case(shift: float, seed: int, align: str, epochs: int) -> dict:
    from spectramorph_engine.run.alignment import align_pair
    r = 4
    truth, hr, lr = _pair(r, seed, -shift * r, shift * r)       # content displaced +shift cols, -shift rows
    res = _fuse(hr, lr, _geo(HR_PX), _geo(r * HR_PX), align, seed, epochs)
    # both settings scored on the ground align: auto keeps (a corrected pair loses its border LR
    # pixels: the uncorrected result is not scored on them either)
    rows, cols = _window(align_pair(hr, "hr", _geo(HR_PX), lr, "lr", _geo(r * HR_PX))[4])
    est = res.hr_hsi if align == "auto" else res.hr_hsi[rows, cols]
    p, share = _psnr(truth[rows, cols], est)
    mis = (res.prepared.alignment or {}).get("misregistration") or {}
    return {"case": "misregistration", "shift_lr_px": shift, "seed": seed, "align": align, "PSNR": p,
            "scored": share, "measured": mis.get("measured_lr_px"), "corrected": mis.get("corrected", False)}


def offgrid_case(seed: int, nested: bool, epochs: int) -> dict:
    r = 3
    if nested:
        truth, hr, lr = _pair(r, seed, 0.0, 0.0)
        lr_geo = _geo(r * HR_PX)
    else:
        truth, hr, lr = _pair(r, seed, 1.3, 0.7, shrink=1)      # 13 m E, 7 m S
        lr_geo = _geo(r * HR_PX, east=13.0, south=7.0)
    res = _fuse(hr, lr, _geo(HR_PX), lr_geo, "auto", seed, epochs)
    # the off-grid result's footprint: HR rows 1.., cols 1.. (the nested grid nearest 1.3 / 0.7)
    rows, cols = slice(1, 1 + (truth.shape[0] // r - 1) * r), slice(1, 1 + (truth.shape[1] // r - 1) * r)
    est = res.hr_hsi if not nested else res.hr_hsi[rows, cols]
    p, share = _psnr(truth[rows, cols], est)
    full = _psnr(truth, res.hr_hsi)[0] if nested else None
    return {"case": "offgrid" if not nested else "nested", "seed": seed, "PSNR": p, "scored": share,
            "PSNR_full": full, "alignment": (res.prepared.alignment or {}).get("summary")}


def render(rows: list) -> str:
    out = ["| pair | LR shift (LR px) | align | seed | measured (LR px) | corrected | PSNR dB | pixels scored |",
           "| --- | ---: | --- | ---: | --- | --- | ---: | ---: |"]
    for r in rows:
        if r["case"] == "misregistration":
            m = "" if r["measured"] is None else f"{r['measured'][0]:+.3f}, {r['measured'][1]:+.3f}"
            out.append(f"| Urban r4 nested | {r['shift_lr_px']:.2f} | {r['align']} | {r['seed']} | {m} | "
                       f"{'yes' if r['corrected'] else 'no'} | {r['PSNR']:.2f} | {100 * r['scored']:.1f}% |")
        else:
            label = "Urban r3 off-grid (13 m E, 7 m S)" if r["case"] == "offgrid" else "Urban r3 nested"
            out.append(f"| {label} | | auto | {r['seed']} | | | {r['PSNR']:.2f} | {100 * r['scored']:.1f}% |")
    summary = ["", "| comparison | mean PSNR dB (seeds) |", "| --- | ---: |"]
    def mean(sel):
        v = [r["PSNR"] for r in rows if sel(r)]
        return (sum(v) / len(v)) if v else float("nan")
    for s in sorted({r["shift_lr_px"] for r in rows if r["case"] == "misregistration"}):
        for a in ("off", "auto"):
            summary.append(f"| shift {s:.2f} LR px, align {a} | "
                           f"{mean(lambda r: r['case'] == 'misregistration' and r['shift_lr_px'] == s and r['align'] == a):.2f} |")
    summary.append(f"| off-grid - nested (same footprint) | "
                   f"{mean(lambda r: r['case'] == 'offgrid') - mean(lambda r: r['case'] == 'nested'):+.2f} |")
    return "\n".join(out + summary)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--shifts", default="0,0.25,0.5", help="LR-HSI displacements (LR pixels) of the ratio-4 pair")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--resampling", default=None, help="the LR-HSI's resampling kernel instead of the engine's "
                                                         "(io/align.py RESAMPLING, default auto): bilinear, cubic, lanczos, ...")
    p.add_argument("--json", default=None, help="JSON lines, appended run by run")


def main(args) -> int:
    os.environ.setdefault("SPECTRAMORPH_THREADS", "1")
    from spectramorph_engine.core.device import configure_threads
    configure_threads()
    from spectramorph_engine.io import align as io_align
    if args.resampling:
        io_align.RESAMPLING = args.resampling
    path = args.json or f"bench/results/align_{time.strftime('%Y%m%d_%H%M%S')}.jsonl"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = [("m", float(s), seed, a) for s in args.shifts.split(",") for seed in seeds for a in ("off", "auto")]
    tasks += [("o", None, seed, nested) for seed in seeds for nested in (True, False)]
    rows = []
    print(f"load average {os.getloadavg()[0]:.2f}; epochs {args.epochs}; resampling {io_align.RESAMPLING}",
          flush=True)
    for kind, shift, seed, opt in tasks:
        t0 = time.perf_counter()
        row = misregistration_case(shift, seed, opt, args.epochs) if kind == "m" else \
            offgrid_case(seed, opt, args.epochs)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "alignment"}), flush=True)
    print(render(rows))
    for r in rows:
        if r.get("alignment"):
            print(f"seed {r['seed']} {r['case']}: {r['alignment']}")
            break
    return 0
