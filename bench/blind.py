"""Blind quality bench: real-world mode on synthetic pairs whose sensors the engine is NOT told
(python -m bench quality --blind; issue 19, item 3; SPEC 11).

Each case builds a truth cube (the quality bench's scenes: urban, usgs-a, usgs-b, holdout,
normalised to [0, 1] by their 1st/99th percentiles as SPEC 2 does), degrades it with a TRUE PSF
and SRF, writes the pair as .npy files and runs them through run_fusion in real-world mode
(synthetic: false) exactly as a user's blind run: no psf_file, no srf_file; the HSI's
wavelengths are given where the scene has them (usgs-*, holdout), not for Urban.

The pair (all settings: 30 dB noise on both images, SPEC 2's noise power, HR-MSI noise drawn
first from numpy.random.default_rng(seed)):
  HR-MSI = truth x SRF^T [then gamma x^(1/2.2) in the gamma setting] + noise;
  LR-HSI = truth [shifted, misregistration setting] convolved with the true kernel (the image
           mirrored past the frame, like a sensor that saw beyond it: spatial.blur "symmetric"),
           area-downsampled by r, + noise.
PSFs are outside the engine's isotropic-Gaussian family (sizes in HR pixels, scaled by r/4):
  aniso      rotated anisotropic Gaussian, sigma 2.6 x 1.3, angle 30 deg;
  moffat     heavy-tailed (1 + (rho/1.2)^2)^-1.5, truncated at 3r;
  offcentre  Gaussian sigma 1.6 centred at (+0.4, -0.3) HR px (not scaled);
  misreg     Gaussian sigma 1.6, and the LR image made from the truth shifted by (r/4, r/4) HR
             px (0.25 LR px; scipy.ndimage.shift, cubic, mirrored border): its true kernel is
             the Gaussian centred at (r/4, r/4);
  gauss      centred Gaussian sigma 1.7 (off the engine's width grid), for the gamma setting.
SRFs: the measured IKONOS responses (pan | B G R | B G R NIR) on the scene's wavelengths (Urban:
taken as evenly spread over 400..2500 nm, as bench/real_camera does), or the 8-band preset
widened (fwhm_factor 2.5).

Methods: default (engine defaults, blind), glp / hysure (method: glp / hysure, blind), true-psf
(the default given the true kernel: provide_psf, psf_file .npy), bicubic (the LR-HSI upsampled).
Results come back in the LR-HSI's units (output_scale input), i.e. the truth's; every method
and bicubic are clipped to [0, 1] (where the truth lies) and scored with the engine's SPEC 5
metrics (PSNR mean over bands, SAM degrees).

PSF error: the kernel a run used (`result.psf` where the engine has it, else
`result.prepared.psf`) against the true one: relative L2 of the kernels padded to a common odd
size (`kernel_error`), and of the kernels convolved with an r x r box (`transfer_error`): what
area downsampling can tell apart.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from .common import default_json, machine_info, method_overrides, run_cases, table, tv_choice, write_json

METHODS = ("default", "glp", "hysure", "true-psf")
SNR_DB = 30.0
_BENCH_SNR = object()      # make_pair's default: SNR_DB as it is at the call
GAMMA = 1.0 / 2.2
WIDE_FWHM_FACTOR = 2.5
IKONOS_COLUMNS = {1: [1], 3: [2, 3, 4], 4: [2, 3, 4, 5]}      # pan | B G R | B G R NIR


@dataclass(frozen=True)
class Setting:
    name: str
    psf: str                  # aniso | moffat | offcentre | misreg | gauss
    ratio: int
    bands: int
    srf: str = "ikonos"       # ikonos (measured) | wide (preset, fwhm_factor 2.5)
    gamma: bool = False       # camera gamma 1/2.2 on the HR-MSI


SETTINGS = {s.name: s for s in (
    Setting("aniso-r4c4", "aniso", 4, 4),
    Setting("moffat-r4c4", "moffat", 4, 4),
    Setting("offcentre-r4c4", "offcentre", 4, 4),
    Setting("misreg-r4c4", "misreg", 4, 4),
    Setting("gamma-r4c4", "gauss", 4, 4, gamma=True),
    Setting("wide-r4c8", "aniso", 4, 8, srf="wide"),
    Setting("aniso-r8c3", "aniso", 8, 3),
    Setting("moffat-r8c1", "moffat", 8, 1),
    Setting("misreg-r8c3", "misreg", 8, 3),
)}
QUICK = {"scenes": ("usgs-a", "holdout"), "settings": ("aniso-r4c4", "misreg-r4c4"), "seeds": (1,)}


# ---------------------------------------------------------------------------------- kernels

def sampled_gaussian(sigma_y: float, sigma_x: float, angle_deg: float = 0.0, centre=(0.0, 0.0),
                     half: Optional[int] = None) -> np.ndarray:
    """A (rotated, possibly off-centre) Gaussian sampled on a (2*half+1)^2 grid, sum 1. Row axis
    first: `centre` (dy, dx) in pixels from the grid's centre; `angle_deg` turns the sigma_x axis
    towards +y."""
    dy, dx = centre
    if half is None:
        half = int(math.ceil(3.5 * max(sigma_y, sigma_x) + max(abs(dy), abs(dx))))
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    y, x = y - dy, x - dx
    a = math.radians(angle_deg)
    u = x * math.cos(a) + y * math.sin(a)
    v = -x * math.sin(a) + y * math.cos(a)
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return k / k.sum()


def moffat(alpha: float, beta: float, half: int) -> np.ndarray:
    """(1 + (rho / alpha)^2)^-beta on a (2*half+1)^2 grid, sum 1 (truncated there)."""
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    k = (1.0 + (x * x + y * y) / alpha ** 2) ** (-beta)
    return k / k.sum()


def true_kernel(setting: Setting) -> np.ndarray:
    """The PSF the LR-HSI is made with, including the misregistration's shift (HR pixels)."""
    s = setting.ratio / 4.0
    if setting.psf == "aniso":
        return sampled_gaussian(1.3 * s, 2.6 * s, 30.0)
    if setting.psf == "moffat":
        return moffat(1.2 * s, 1.5, 3 * setting.ratio)
    if setting.psf == "offcentre":
        return sampled_gaussian(1.6 * s, 1.6 * s, centre=(0.4, -0.3))
    if setting.psf == "misreg":
        return sampled_gaussian(1.6 * s, 1.6 * s, centre=misregistration(setting))
    if setting.psf == "gauss":
        return sampled_gaussian(1.7 * s, 1.7 * s)
    raise ValueError(f"unknown PSF {setting.psf!r}")


def misregistration(setting: Setting):
    """(dy, dx) HR pixels the LR-HSI's truth is shifted by: 0.25 LR px in each axis, or none."""
    return (setting.ratio / 4.0, setting.ratio / 4.0) if setting.psf == "misreg" else (0.0, 0.0)


def pad_kernel(k, size: int) -> np.ndarray:
    """An odd-sided kernel zero-padded (centred) to size x size (size odd, >= its sides)."""
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0 or size % 2 == 0 or size < max(k.shape):
        raise ValueError(f"cannot pad a kernel of shape {k.shape} to {size} x {size}")
    py, px = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
    return np.pad(k, ((py, py), (px, px)))


def _common(k_est, k_true):
    n = max(max(np.shape(k_est)), max(np.shape(k_true)))
    n += 1 - n % 2
    return pad_kernel(k_est, n), pad_kernel(k_true, n)


def kernel_error(k_est, k_true) -> float:
    """||k_est - k_true|| / ||k_true|| (Frobenius), both centred and zero-padded to a common odd
    size. Neither is renormalised: pass kernels that sum to 1."""
    a, b = _common(k_est, k_true)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def box_transfer(k, ratio: int) -> np.ndarray:
    """The kernel convolved (full) with an r x r box of 1/r^2: the blur an LR pixel sees."""
    from scipy.signal import convolve2d
    return convolve2d(np.asarray(k, dtype=np.float64), np.full((ratio, ratio), 1.0 / ratio ** 2), mode="full")


def transfer_error(k_est, k_true, ratio: int) -> float:
    """Relative L2 error of the effective LR transfer: kernel_error's, after both kernels (padded
    to a common odd size first, so they stay aligned) are convolved with an r x r box. A shift
    of one HR pixel of a delta gives sqrt(2 / r)."""
    a, b = _common(k_est, k_true)
    ta, tb = box_transfer(a, ratio), box_transfer(b, ratio)
    return float(np.linalg.norm(ta - tb) / np.linalg.norm(tb))


# ---------------------------------------------------------------------------------- the pair

def scene_srf(setting: Setting, num_bands: int, wavelengths) -> np.ndarray:
    """The true SRF (c x C, rows sum 1) on the scene's wavelengths."""
    from spectramorph_engine.sensors.scenarios import evenly_spaced_wavelengths, ikonos_srf, IKONOS_BANDS
    from .common import data_dir
    wl = evenly_spaced_wavelengths(num_bands) if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    if setting.srf == "wide":
        from spectramorph_engine.sensors.srf import preset_srf
        return np.asarray(preset_srf(setting.bands, num_bands, WIDE_FWHM_FACTOR, wavelengths=wl), dtype=np.float64)
    names = [IKONOS_BANDS[i - 1] for i in IKONOS_COLUMNS[setting.bands]]
    return ikonos_srf(data_dir() / "Ikonos_spec_resp.mat", wl, bands=tuple(names))


def make_pair(truth: np.ndarray, setting: Setting, srf: np.ndarray, seed: int, snr_db=_BENCH_SNR):
    """(truth cropped to multiples of r, hr_msi, lr_hsi) float32, as the module doc says; `snr_db`
    the noise on both images in dB (default SNR_DB, read at the call; None: no noise), or a pair
    (HR-MSI dB, LR-HSI dB)."""
    if snr_db is _BENCH_SNR:
        snr_db = SNR_DB
    msi_db, lr_db = snr_db if isinstance(snr_db, (tuple, list)) else (snr_db, snr_db)
    from scipy import ndimage
    from spectramorph_engine.sensors import spatial
    from spectramorph_engine.sensors.degradation import add_awgn, apply_srf
    r = setting.ratio
    H, W = truth.shape[0] - truth.shape[0] % r, truth.shape[1] - truth.shape[1] % r
    t = np.ascontiguousarray(truth[:H, :W], dtype=np.float32)
    rng = np.random.default_rng(seed)
    msi = np.asarray(apply_srf(t, srf), dtype=np.float64)
    if setting.gamma:
        msi = np.clip(msi, 0.0, None) ** GAMMA
    hr_msi = add_awgn(msi.astype(np.float32), msi_db, rng)
    shift = misregistration(setting)
    src = t
    kernel = true_kernel(setting)
    if any(shift):      # the truth itself moved; the blur then centred (same as the shifted kernel)
        src = ndimage.shift(t, (shift[0], shift[1], 0.0), order=3, mode="mirror").astype(np.float32)
        kernel = sampled_gaussian(1.6 * r / 4.0, 1.6 * r / 4.0)
    lr = spatial.area_downsample(spatial.blur(src, kernel, "symmetric"), r)
    lr_hsi = add_awgn(np.asarray(lr, dtype=np.float32), lr_db, rng)
    return t, np.asarray(hr_msi, dtype=np.float32), lr_hsi.astype(np.float32)


# ---------------------------------------------------------------------------------- one case

def _used_psf(res):
    """The kernel a run used: FusionResult.psf where the engine has it, else the prepared one."""
    k = getattr(res, "psf", None)
    if k is None and getattr(res, "prepared", None) is not None:
        k = res.prepared.psf
    return None if k is None else np.asarray(k, dtype=np.float64)


def _score(truth, est, ratio) -> dict:
    from spectramorph_engine.quality import metrics
    e = np.clip(np.asarray(est, dtype=np.float32), 0.0, 1.0)
    return {"PSNR": float(metrics.psnr(truth, e)), "SAM": float(metrics.sam(truth, e)),
            "ERGAS": float(metrics.ergas(truth, e, ratio))}


def run_case(task: dict) -> dict:
    """Every method on one (scene, setting, seed), blind, through files; runs in a worker."""
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run.pipeline import run_fusion
    from spectramorph_engine.sensors.degradation import bicubic_upsample, normalize_percentile
    from .scenes import scene
    setting = SETTINGS[task["setting"]]
    raw, wl = scene(task["scene"], task.get("size", 128))
    truth0 = normalize_percentile(raw)
    srf = scene_srf(setting, truth0.shape[2], wl)
    truth, hr_msi, lr_hsi = make_pair(truth0, setting, srf, task["seed"])
    k_true = true_kernel(setting)
    d = tempfile.mkdtemp(prefix=f"case-{task['scene']}-{setting.name}-s{task['seed']}-", dir=task["workdir"])
    hr_path, lr_path, psf_path = (os.path.join(d, n) for n in ("hr_msi.npy", "lr_hsi.npy", "true_psf.npy"))
    np.save(hr_path, hr_msi)
    np.save(lr_path, lr_hsi)
    np.save(psf_path, k_true)
    base = {"synthetic": False, "hr_msi_file": hr_path, "lr_hsi_file": lr_path, "seed": task["seed"],
            "device": "cpu", "verbose": 0, "output_dir": os.path.join(d, "out"), "log_dir": os.path.join(d, "logs")}
    if wl is not None:
        base["wavelengths"] = [float(v) for v in wl]
    if task.get("epochs"):
        base["epochs"] = task["epochs"]
    if task.get("joint_rounds"):  # rounds of the SRF/kernel alternation (the engine's constant, in this worker)
        from spectramorph_engine.sensors import psf_estimation
        psf_estimation.JOINT_ROUNDS = int(task["joint_rounds"])
    if task.get("tv_choice_iterations"):  # the VTV weight's choice's ADMM iterations (engine constant, this worker)
        from spectramorph_engine.run import tv_selection
        tv_selection.ITERATIONS = int(task["tv_choice_iterations"])
    if task.get("given_srf"):     # the engine told the true SRF (a measured response file), the blur still blind
        srf_path = os.path.join(d, "true_srf.npy")
        np.save(srf_path, np.asarray(srf, dtype=np.float32))
        base.update(srf_source="file", srf_file=srf_path)
    out = {"scene": task["scene"], "setting": setting.name, "seed": task["seed"], "ratio": setting.ratio,
           "bands": setting.bands, "shape": list(truth.shape), "true_psf_shape": list(k_true.shape), "methods": {}}
    out["methods"]["bicubic"] = {**_score(truth, bicubic_upsample(lr_hsi, setting.ratio), setting.ratio),
                                 "time_s": 0.0}
    for method in task["methods"]:
        changes = dict(base)
        changes.update(method_overrides(method, task.get("overrides")))   # --set: a candidate default, or the bar's own keys
        if method in ("glp", "hysure"):
            changes["method"] = method
        elif method == "true-psf":
            changes.update(provide_psf=True, psf_file=psf_path)
        t0 = time.perf_counter()
        try:
            res = run_fusion(FusionConfig(**changes), write_outputs=False)
        except Exception as exc:        # a failed method is a cell in the table, not the end of the bench
            out["methods"][method] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        t = res.timings
        row = _score(truth, res.hr_hsi, setting.ratio)
        row.update(time_s=sum(v for k, v in t.items() if k not in ("load", "metrics", "save")),
                   wall_s=time.perf_counter() - t0, timings=dict(t))
        k = _used_psf(res)
        if k is not None:
            row.update(psf_shape=list(k.shape), psf_error=kernel_error(k, k_true),
                       transfer_error=transfer_error(k, k_true, setting.ratio))
        prep = res.prepared
        row.update(psf_sigma=prep.psf_fitted_sigma, psf_note=prep.psf_note, srf_note=prep.srf_note,
                   training_input=prep.training_input)
        rr = ((res.consistency or {}).get("reduced_resolution") or {}).get("fusion")
        if rr:      # what Wald's check says of this method: could it choose the method? (issue 19 item 2)
            row["reduced_psnr"] = float(rr["PSNR"])
        if method == "default" and res.selection:
            row["selection"] = {"chosen": res.selection.get("chosen"), "skipped": res.selection.get("skipped")}
        if tv_choice(res.method_info):      # refine_tv_select: the weight chosen, and the errors behind it
            row["tv_selection"] = tv_choice(res.method_info)
        out["methods"][method] = row
    return out


# ---------------------------------------------------------------------------------- the run

def fits(name: str, ratio: int, size: int = 128) -> bool:
    """Whether real-world mode can run the scene at the ratio: the quality bench's rule, and at
    least r x r LR pixels (the engine's reduced-resolution check refuses fewer: Urban at r8)."""
    from .scenes import URBAN_MIRRORED, fits as synthetic_fits, scene
    truth, _ = scene(name, size)
    ok = synthetic_fits(name, ratio, size=size) and min(truth.shape[0], truth.shape[1]) // ratio >= ratio
    # the mirrored Urban only where Urban itself is too small: elsewhere it would repeat its rows
    return ok and not (name == URBAN_MIRRORED and fits("urban", ratio, size))


def _tasks(args, workdir: str) -> list:
    tasks = []
    for name in args.scenes:
        for sname in args.settings:
            if not fits(name, SETTINGS[sname].ratio, size=args.size):
                continue
            for seed in args.seeds:
                tasks.append({"scene": name, "setting": sname, "seed": seed, "size": args.size,
                              "methods": args.methods, "workdir": workdir, "epochs": args.epochs,
                              "overrides": dict(getattr(args, "overrides", []) or []),
                              "given_srf": bool(getattr(args, "given_srf", False)),
                              "joint_rounds": getattr(args, "joint_rounds", None),
                              "tv_choice_iterations": getattr(args, "tv_choice_iterations", None)})
    return tasks


def run(args) -> dict:
    os.environ["SPECTRAMORPH_THREADS"] = "1"
    t_all = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="sm-bench-blind-")
    tasks = _tasks(args, workdir)
    report = {"kind": "quality-blind", "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "grid": {"scenes": list(args.scenes), "settings": [asdict(SETTINGS[s]) for s in args.settings],
                       "library_size": args.size, "seeds": list(args.seeds), "methods": list(args.methods),
                       "snr_db": SNR_DB, "given_srf": bool(getattr(args, "given_srf", False)),
                       "joint_rounds": getattr(args, "joint_rounds", None),
                       "tv_choice_iterations": getattr(args, "tv_choice_iterations", None)},
              "epochs": args.epochs or "default", "jobs": args.jobs, "threads_per_job": 1, "quick": args.quick,
              "default_overrides": dict(getattr(args, "overrides", []) or []),
              "command": "python -m bench " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["quality"]
              else "python -m bench quality --blind (API)", "cases": []}
    if not args.quiet:
        print(f"[bench] blind: {len(tasks)} cases on {args.jobs} worker(s), one torch thread each", file=sys.stderr)
    report["cases"] = run_cases(tasks, run_case, args.jobs, lambda i, n, case: _progress(args, i, n, case))
    report["total_s"] = time.perf_counter() - t_all
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return report


def _progress(args, i, n, case):
    if args.quiet:
        return
    m = case["methods"]
    cells = " ".join(f"{k} {m[k]['PSNR']:.2f}" for k in ("default", "glp", "hysure", "true-psf", "bicubic")
                     if k in m and "PSNR" in m[k])
    print(f"[bench {time.strftime('%H:%M:%S')}] {i}/{n} {case['scene']} {case['setting']} s{case['seed']}: {cells}",
          file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- tables

def _stats(values):
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return mean, sd


def _groups(report) -> dict:
    from .scenes import SCENES
    groups = {}
    for c in report["cases"]:
        groups.setdefault((c["scene"], c["setting"]), []).append(c)
    so = {s: i for i, s in enumerate(SCENES)}
    st = {s: i for i, s in enumerate(SETTINGS)}
    return dict(sorted(groups.items(), key=lambda kv: (so.get(kv[0][0], 99), st.get(kv[0][1], 99))))


def _m(case, method, key):
    return case["methods"].get(method, {}).get(key)


def _paired(cases, a, b, key="PSNR"):
    """Paired differences a - b over the cases (seeds) where both ran."""
    return [_m(x, a, key) - _m(x, b, key) for x in cases if _m(x, a, key) is not None and _m(x, b, key) is not None]


def _best_classical(case, key="PSNR"):
    vals = [_m(case, m, key) for m in ("glp", "hysure") if _m(case, m, key) is not None]
    return (max(vals) if key == "PSNR" else min(vals)) if vals else None


def _methods_present(report):
    return [m for m in ("default", "glp", "hysure", "bicubic", "true-psf")
            if any(m in c["methods"] for c in report["cases"])]


def summary_rows(report, key="PSNR"):
    """Per (scene, setting): mean±sd over seeds of each method, and the paired default - best
    blind classical (GLP-HS or HySure, the better per seed)."""
    methods = _methods_present(report)
    rows = []
    for (scene_, setting), cases in _groups(report).items():
        row = [scene_, setting, len(cases)]
        for m in methods:
            mean, sd = _stats([_m(x, m, key) for x in cases])
            row.append(None if mean is None else f"{mean:.2f}±{sd:.2f}")
        diffs = [_m(x, "default", key) - _best_classical(x, key) for x in cases
                 if _m(x, "default", key) is not None and _best_classical(x, key) is not None]
        mean, sd = _stats(diffs)
        row.append(None if mean is None else f"{mean:+.2f}±{sd:.2f}")
        rows.append(row)
    return methods, rows


def check_rows(report) -> list:
    """Per (scene, setting), PSNR paired means over seeds: default - HySure, default - GLP-HS,
    the check default >= both, and what the true PSF adds (true-psf - default)."""
    rows = []
    for (scene_, setting), cases in _groups(report).items():
        dh = _stats(_paired(cases, "default", "hysure"))[0]
        dg = _stats(_paired(cases, "default", "glp"))[0]
        tp = _stats(_paired(cases, "true-psf", "default"))[0]
        db = _stats(_paired(cases, "default", "bicubic"))[0]
        ok = None if dh is None or dg is None else (dh >= 0 and dg >= 0)
        rows.append([scene_, setting, len(cases), dh, dg, db, tp, "-" if ok is None else ("yes" if ok else "NO")])
    return rows


def psf_rows(report) -> list:
    """Per (scene, setting): the fitted blur width and the PSF errors of the default's kernel (and
    of the true-psf run's, a check: ~0), means over seeds."""
    rows = []
    for (scene_, setting), cases in _groups(report).items():
        shapes = sorted({"x".join(map(str, _m(x, "default", "psf_shape") or [])) for x in cases} - {""})
        rows.append([scene_, setting, "x".join(map(str, cases[0].get("true_psf_shape", []))), ",".join(shapes) or "-",
                     _stats([_m(x, "default", "psf_sigma") for x in cases])[0],
                     _stats([_m(x, "default", "psf_error") for x in cases])[0],
                     _stats([_m(x, "default", "transfer_error") for x in cases])[0],
                     _stats([_m(x, "true-psf", "transfer_error") for x in cases])[0]])
    return rows


def time_rows(report) -> list:
    rows = []
    for (scene_, setting), cases in _groups(report).items():
        load = [(_m(x, "default", "timings") or {}).get("load") for x in cases]
        rows.append([scene_, setting] + [_stats([_m(x, m, "time_s") for x in cases])[0]
                                         for m in ("default", "glp", "hysure", "true-psf")] + [_stats(load)[0]])
    return rows


CHOICE_METHODS = ("default", "glp", "hysure")
CHOICE_MARGIN_DB = 0.3      # as auto-selection: another method must beat the default by this much


def choice_rows(report) -> list:
    """Could Wald's reduced-resolution check choose the method? Per (scene, setting): each
    method's reduced-check PSNR (mean over seeds), how often the check's pick (the default
    unless another method beats it there by CHOICE_MARGIN_DB) is the method best against the
    truth, and the mean PSNR lost by the pick (regret, dB)."""
    rows = []
    for (scene_, setting), cases in _groups(report).items():
        hits, regret, n = 0, [], 0
        for x in cases:
            rr = {m: _m(x, m, "reduced_psnr") for m in CHOICE_METHODS}
            truth = {m: _m(x, m, "PSNR") for m in CHOICE_METHODS}
            if any(v is None for v in rr.values()) or any(v is None for v in truth.values()):
                continue
            other = max(("glp", "hysure"), key=lambda m: rr[m])
            pick = other if rr[other] >= rr["default"] + CHOICE_MARGIN_DB else "default"
            best = max(CHOICE_METHODS, key=lambda m: truth[m])
            n += 1
            hits += pick == best
            regret.append(truth[best] - truth[pick])
        rows.append([scene_, setting] + [_stats([_m(x, m, "reduced_psnr") for x in cases])[0] for m in CHOICE_METHODS]
                    + [f"{hits}/{n}", float(np.mean(regret)) if regret else float("nan")])
    return rows


def error_lines(report) -> list:
    return [f"  {c['scene']} {c['setting']} s{c['seed']} {m}: {v['error']}" for c in report["cases"]
            for m, v in c["methods"].items() if "error" in v]


def render(report: dict) -> str:
    m, g = report["machine"], report["grid"]
    names = [s["name"] for s in g["settings"]]
    parts = [f"Blind quality bench{' (QUICK subset)' if report.get('quick') else ''}: {len(report['cases'])} cases, "
             f"{report.get('total_s', 0) / 60:.1f} min on {report['jobs']} worker process(es) x 1 torch thread; "
             f"{m.get('cpu')}, torch {m.get('torch')}; {report.get('started', '')}",
             f"Reproduce: {report['command']}",
             f"Scenes {', '.join(g['scenes'])} (library scenes {g.get('library_size', 128)} px); settings "
             f"{', '.join(names)}; seeds {g['seeds']}; epochs {report['epochs']}; {g['snr_db']:g} dB noise on both "
             f"images. Real-world mode, no PSF/SRF given (true-psf: the true kernel given). PSNR dB (mean over "
             f"bands), SAM deg, SPEC 5, results clipped to [0, 1]; mean±sd over seeds."]
    methods, rows = summary_rows(report, "PSNR")
    parts.append(table(["scene", "setting", "n"] + methods + ["default-best blind classical"], rows,
                       ["", "", "d"] + [""] * (len(methods) + 1), title="\n[1] PSNR (dB)"))
    methods, rows = summary_rows(report, "SAM")
    parts.append(table(["scene", "setting", "n"] + methods + ["default-best blind classical"], rows,
                       ["", "", "d"] + [""] * (len(methods) + 1), title="\n[2] SAM (degrees; lower is better)"))
    parts.append(table(["scene", "setting", "n", "def-HySure", "def-GLP-HS", "def-bicubic", "true-psf - def",
                        ">= HySure & GLP-HS"], check_rows(report), ["", "", "d", "+.2f", "+.2f", "+.2f", "+.2f", ""],
                       title="\n[3] Check (paired PSNR means over seeds, dB): default >= blind HySure and blind "
                             "GLP-HS; what the true PSF would add"))
    parts.append(table(["scene", "setting", "true k", "used k", "fitted sigma", "kernel err", "transfer err",
                        "true-psf transfer err"], psf_rows(report), ["", "", "", "", ".2f", ".3f", ".3f", ".3f"],
                       title="\n[4] PSF estimation (default run; relative L2, means over seeds): kernels padded to a "
                             "common size; transfer = kernel * r x r box"))
    parts.append(table(["scene", "setting", "default s", "glp s", "hysure s", "true-psf s", "default load s"],
                       time_rows(report), ["", "", ".1f", ".2f", ".1f", ".1f", ".1f"],
                       title="\n[5] Fusion time per method (s, mean; one torch thread; excludes load and scores); "
                             "load: reading the pair and fitting its SRF and blur"))
    parts.append(table(["scene", "setting", "RR default", "RR glp", "RR hysure", "pick = best", "regret dB"],
                       choice_rows(report), ["", "", ".2f", ".2f", ".2f", "", ".2f"],
                       title="\n[6] Method choice by the reduced-resolution check (Wald; PSNR against the LR-HSI, "
                             f"mean over seeds): the pick is the default unless another method beats it by "
                             f"{CHOICE_MARGIN_DB} dB there"))
    errs = error_lines(report)
    if errs:
        parts.append("\nFAILED runs:\n" + "\n".join(errs))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- CLI

def add_arguments(p) -> None:
    """The blind bench's own option (the others are the quality bench's: --quick, --scenes,
    --seeds, --methods, --epochs, --size, --jobs, --json, --quiet)."""
    p.add_argument("--settings", default=None,
                   help=f"blind bench (--blind): comma list from {', '.join(SETTINGS)} (default: all)")
    p.add_argument("--given-srf", action="store_true",
                   help="blind bench (--blind): tell every method the true SRF as a file (the blur stays blind)")
    p.add_argument("--tv-choice-iterations", type=int, default=None,
                   help="blind bench (--blind): ADMM iterations of the VTV weight's choice instead of the run's "
                        "(tv_selection.ITERATIONS): a candidate for its cost")
    p.add_argument("--joint-rounds", type=int, default=None,
                   help="blind bench (--blind): rounds of the SRF / blur-kernel alternation instead of the engine's "
                        "(psf_estimation.JOINT_ROUNDS): a candidate default")


def resolve(args) -> None:
    from .scenes import EXTRA_SCENES, SCENES
    if getattr(args, "psfs", None) or getattr(args, "grid", None) or getattr(args, "selection_check", False):
        raise SystemExit("error: --psfs, --grid and --selection-check are the synthetic bench's; the blind bench "
                         "takes --settings")
    q = QUICK if args.quick else {}
    args.scenes = ([s.strip() for s in args.scenes.split(",")] if args.scenes else
                   list(q.get("scenes", SCENES + EXTRA_SCENES)))
    args.settings = [s.strip() for s in args.settings.split(",")] if args.settings else list(q.get("settings",
                                                                                                     SETTINGS))
    args.seeds = args.seeds or list(q.get("seeds", (1, 2, 3)))
    args.methods = [m.strip() for m in (args.methods or ",".join(METHODS)).split(",") if m.strip()]
    for what, got, allowed in (("method", args.methods, METHODS), ("scene", args.scenes, SCENES + EXTRA_SCENES),
                               ("setting", args.settings, tuple(SETTINGS))):
        bad = [v for v in got if v not in allowed]
        if bad:
            raise SystemExit(f"error: unknown {what}(s) {bad}; allowed: {', '.join(allowed)}")


def main(args) -> int:
    resolve(args)
    report = run(args)
    text = render(report)
    print(text)
    path = write_json(args.json or default_json("quality_blind"), {**report, "table": text})
    print(f"\nJSON: {path}")
    return 0
