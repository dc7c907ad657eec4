"""Quality bench: is the default better than the original method, the classical methods and
bicubic, on scenes it was not tuned on? (python -m bench quality, issues 8 and 9)

Every case runs, on the same synthetic pair (SPEC 2), side by side:
  default   the engine's defaults (auto_select, spec_prior auto, refinement, ...);
  original  the original implementation reproduced: plain NMF run to convergence
            (nndsvda start, up to 5000 iterations, tol 1e-4 as scikit-learn), no
            minimum-volume step, no prior, no refinement, no auto-selection;
  glp       GLP-HS hypersharpening (method: glp), given the true PSF;
  hysure    HySure (method: hysure), given the true PSF and SRF;
  bicubic   the LR-HSI upsampled.
All through run_fusion(write_outputs=False), as a user's run; PSNR / SAM / ERGAS / SSIM in the
SPEC 5 convention against the ground truth.

Scenes (ground truths): `urban` (the real HYDICE cube, 34x78x162, wavelengths unknown),
`usgs-a` / `usgs-b` (mixtures of 6 and 8 USGS-library spectra, 128x128x200, true wavelengths),
and `holdout`, built so that nothing in the engine was tuned on it: 10 materials (more than
K = 7) with per-pixel spectral variability, PSF widths 0.68x the others', the measured
IKONOS responses (not the presets) at 1/3/4 bands and presets widened (fwhm_factor 2.5) at
8/16, and 30 dB noise on both images. Settings: the paper's grid (ratios 4, 8, 16 at 4 bands;
1, 3, 4, 8, 16 bands at ratio 8) where the scene allows it, three PSF shapes (gaussian,
moffat, kolmogorov, sigma 3.4 on a 15x15 grid), seeds 1-3 (noise and network start).

Cases run in worker processes (--jobs), each with one torch thread (SPECTRAMORPH_THREADS=1),
so figures do not depend on the machine's core count.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

from .common import RESULTS_DIR, default_json, machine_info, method_overrides, run_cases, table, tv_choice, write_json
from .scenes import EXTRA_SCENES, SCENES, fits, scene  # noqa: F401  (the benches' scenes, by name)

METHODS = ("default", "original", "glp", "hysure")
ORIGINAL = {"endmember_method": "nmf", "nmf_max_iter": 5000, "nmf_tol": 1e-4, "spec_prior": False,
            "refine": False, "auto_select": False}
PSFS = ("gaussian", "moffat", "kolmogorov")
SIGMA = 3.4
HOLDOUT_SIGMA_SCALE = 0.68
GRID = ((4, 4), (8, 4), (16, 4), (8, 1), (8, 3), (8, 8), (8, 16))
QUICK = {"scenes": ("urban", "usgs-a", "holdout"), "psfs": ("gaussian",), "grid": ((4, 4), (8, 1)),
         "seeds": (1,)}
IKONOS_COLUMNS = {1: [1], 3: [2, 3, 4], 4: [2, 3, 4, 5]}      # pan | B G R | B G R NIR


def case_config(name: str, psf: str, ratio: int, bands: int, seed: int, workdir: str, epochs=None) -> dict:
    """The config keys of one case (besides the method's own)."""
    d = {"psf_type": psf, "sigma": SIGMA, "downsample_ratio": ratio, "num_msi_bands": bands, "seed": seed,
         "device": "cpu", "verbose": 0}
    if epochs:
        d["epochs"] = epochs
    if name == "holdout":
        d.update(sigma=round(SIGMA * HOLDOUT_SIGMA_SCALE, 3), snr_spatial=30.0, snr_spectral=30.0)
        if bands in IKONOS_COLUMNS:
            d.update(provide_srf=True, srf_file=_ikonos_table(bands, workdir))
        else:
            d.update(fwhm_factor=2.5)
    return d


def _ikonos_table(bands: int, workdir: str) -> str:
    """The measured IKONOS responses of `bands` bands as a wavelength + responses table."""
    import numpy as np
    import scipy.io
    from .common import data_dir
    path = os.path.join(workdir, f"ikonos_{bands}.npy")
    if not os.path.exists(path):
        t = np.asarray(scipy.io.loadmat(str(data_dir() / "Ikonos_spec_resp.mat"))["ikonos_sp"], dtype=np.float64)
        np.save(path, t[:, [0] + IKONOS_COLUMNS[bands]])
    return path


# ---------------------------------------------------------------------------------- one case

def run_case(task: dict) -> dict:
    """All methods on one (scene, psf, ratio, bands, seed); runs in a worker process."""
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run.results import FusionInputs
    from spectramorph_engine.run.pipeline import run_fusion
    truth, wl = scene(task["scene"], task.get("size", 128))
    base = case_config(task["scene"], task["psf"], task["ratio"], task["bands"], task["seed"], task["workdir"],
                       task.get("epochs"))
    out = {k: task[k] for k in ("scene", "psf", "ratio", "bands", "seed")}
    out["methods"] = {}
    for method in task["methods"]:
        changes = dict(base)
        changes.update(method_overrides(method, task.get("overrides")))   # --set: a candidate default, or the bar's own keys
        if method == "original":
            changes.update(ORIGINAL)
        elif method in ("glp", "hysure"):
            changes["method"] = method
        t0 = time.perf_counter()
        try:
            res = run_fusion(FusionConfig(**changes), inputs=FusionInputs(truth=truth, wavelengths=wl),
                             write_outputs=False)
        except Exception as exc:        # a failed method is a cell in the table, not the end of the bench
            out["methods"][method] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        t = res.timings
        fuse_s = sum(v for k, v in t.items() if k not in ("load", "metrics", "save"))
        row = {k: float(res.metrics[k]) for k in ("PSNR", "SAM", "ERGAS", "SSIM")}
        row.update(time_s=fuse_s, wall_s=time.perf_counter() - t0, timings=dict(t))
        if method == "default":
            row["info"] = {k: v for k, v in res.method_info.items() if k in ("prior", "num_endmembers",
                                                                              "endmember_method", "refined")}
            if tv_choice(res.method_info):
                row["tv_selection"] = tv_choice(res.method_info)
            if res.selection:
                row["selection"] = {"chosen": res.selection.get("chosen"), "skipped": res.selection.get("skipped"),
                                    "seconds": res.selection.get("seconds"),
                                    "candidates": res.selection.get("candidates")}
        out["methods"][method] = row
        if "bicubic" not in out["methods"]:
            out["methods"]["bicubic"] = {k: float(res.bicubic_metrics[k]) for k in ("PSNR", "SAM", "ERGAS", "SSIM")}
            out["methods"]["bicubic"]["time_s"] = 0.0
    if task.get("selection_check") and out["methods"].get("default", {}).get("selection", {}).get("candidates"):
        # every candidate at full resolution against the truth: did the reduced check pick the best?
        cands = out["methods"]["default"]["selection"]["candidates"]
        truth_psnr = {}
        for cand in cands:
            cfg = FusionConfig(**{**base, **cand["changes"], "auto_select": False})
            res = run_fusion(cfg, inputs=FusionInputs(truth=truth, wavelengths=wl), write_outputs=False)
            truth_psnr[cand["label"]] = float(res.metrics["PSNR"])
        out["selection_check"] = truth_psnr
    return out


# ---------------------------------------------------------------------------------- the run

def _tasks(args, workdir: str) -> list:
    tasks = []
    for name in args.scenes:
        for psf in args.psfs:
            for ratio, bands in args.grid:
                if not fits(name, ratio, size=args.size):
                    continue
                for seed in args.seeds:
                    tasks.append({"scene": name, "psf": psf, "ratio": ratio, "bands": bands, "seed": seed,
                                  "size": args.size,
                                  "methods": args.methods, "workdir": workdir, "epochs": args.epochs,
                                  "selection_check": args.selection_check, "overrides": args.overrides})
    return tasks


def run(args) -> dict:
    os.environ["SPECTRAMORPH_THREADS"] = "1"
    t_all = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="sm-bench-quality-")
    tasks = _tasks(args, workdir)
    report = {"kind": "quality", "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "grid": {"scenes": list(args.scenes), "psfs": list(args.psfs), "settings": [list(g) for g in args.grid],
                       "library_size": args.size,
                       "seeds": list(args.seeds), "methods": list(args.methods)},
              "epochs": args.epochs or "default", "jobs": args.jobs, "threads_per_job": 1, "quick": args.quick,
              "default_overrides": args.overrides,
              # the subcommand stays in: `python -m bench --jobs 2` is no command (it printed so until 2026-12-07)
              "command": ("python -m bench " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["quality"]
                          else "python -m bench quality (API)"),
              "cases": []}
    if not args.quiet:
        print(f"[bench] {len(tasks)} cases on {args.jobs} worker(s), one torch thread each", file=sys.stderr)
    report["cases"] = run_cases(tasks, run_case, args.jobs, lambda i, n, case: _progress(args, i, n, case))
    report["total_s"] = time.perf_counter() - t_all
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return report


def _progress(args, i, n, case):
    if args.quiet:
        return
    m = case["methods"]
    cells = " ".join(f"{k} {m[k]['PSNR']:.2f}" for k in ("default", "original", "glp", "hysure", "bicubic")
                     if k in m and "PSNR" in m[k])
    print(f"[bench {time.strftime('%H:%M:%S')}] {i}/{n} {case['scene']} {case['psf']} r{case['ratio']} "
          f"c{case['bands']} s{case['seed']}: {cells}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- tables

def _stats(values):
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return mean, sd


def _groups(report) -> dict:
    groups = {}
    for c in report["cases"]:
        groups.setdefault((c["scene"], c["psf"], c["ratio"], c["bands"]), []).append(c)
    order = {s: i for i, s in enumerate(SCENES)}
    porder = {p: i for i, p in enumerate(PSFS)}
    return dict(sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), porder.get(kv[0][1], 9),
                                                       kv[0][2], kv[0][3])))


def _metric(c, method, key):
    m = c["methods"].get(method, {})
    return m.get(key)


def summary_rows(report, key="PSNR") -> list:
    """Per setting: mean +- sd over seeds of each method, and the paired default - original."""
    rows = []
    methods = [m for m in ("default", "original", "glp", "hysure", "bicubic")
               if any(m in c["methods"] for c in report["cases"])]
    for (scene_, psf, r, c), cases in _groups(report).items():
        row = [scene_, psf, r, c, len(cases)]
        for m in methods:
            mean, sd = _stats([_metric(x, m, key) for x in cases])
            row.append(None if mean is None else f"{mean:.2f}±{sd:.2f}")
        diffs = [(_metric(x, "default", key) - _metric(x, "original", key)) for x in cases
                 if _metric(x, "default", key) is not None and _metric(x, "original", key) is not None]
        mean, sd = _stats(diffs)
        row.append(None if mean is None else f"{mean:+.2f}±{sd:.2f}")
        rows.append(row)
    return methods, rows


def check_rows(report) -> list:
    """The issue's bars, per setting (paired means over seeds, PSNR)."""
    rows = []
    for (scene_, psf, r, c), cases in _groups(report).items():
        d = _stats([_metric(x, "default", "PSNR") for x in cases])[0]
        if d is None:
            continue
        o = _stats([_metric(x, "original", "PSNR") for x in cases])[0]
        g = _stats([_metric(x, "glp", "PSNR") for x in cases])[0]
        hy = _stats([_metric(x, "hysure", "PSNR") for x in cases])[0]
        b = _stats([_metric(x, "bicubic", "PSNR") for x in cases])[0]
        best_classical = max([v for v in (g, hy) if v is not None], default=None)
        ok_orig = None if o is None else (d - o >= (2.5 if c == 1 else -0.1))
        ok_class = None if best_classical is None else d >= best_classical
        rows.append([scene_, psf, r, c, d - o if o is not None else None,
                     d - best_classical if best_classical is not None else None, d - b if b is not None else None,
                     "yes" if ok_orig else ("NO" if ok_orig is not None else "-"),
                     "yes" if ok_class else ("NO" if ok_class is not None else "-")])
    return rows


def pooled_rows(report) -> tuple:
    """Per (scene, ratio, bands), the PSF shapes and seeds pooled (README's quality table): each
    method's mean "PSNR / SAM", the paired default - original (mean +- sd) and the default's mean
    less the better classical method's."""
    methods = [m for m in ("default", "original", "glp", "hysure", "bicubic")
               if any(m in c["methods"] for c in report["cases"])]
    pooled = {}
    for (scene_, _psf, r, c), cases in _groups(report).items():
        pooled.setdefault((scene_, r, c), []).extend(cases)
    rows = []
    for (scene_, r, c), cases in pooled.items():
        means = {m: (_stats([_metric(x, m, "PSNR") for x in cases])[0], _stats([_metric(x, m, "SAM") for x in cases])[0])
                 for m in methods}
        row = [scene_, r, c, len(cases)] + [None if means[m][0] is None else f"{means[m][0]:.2f} / {means[m][1]:.2f}"
                                             for m in methods]
        diffs = [_metric(x, "default", "PSNR") - _metric(x, "original", "PSNR") for x in cases
                 if _metric(x, "default", "PSNR") is not None and _metric(x, "original", "PSNR") is not None]
        mean, sd = _stats(diffs)
        row.append(None if mean is None else f"{mean:+.2f} ± {sd:.2f}")
        classical = [means[m][0] for m in ("glp", "hysure") if m in means and means[m][0] is not None]
        d = means.get("default", (None,))[0]
        row.append(None if d is None or not classical else f"{d - max(classical):+.2f}")
        rows.append(row)
    return methods, rows


def time_rows(report) -> list:
    rows = []
    for (scene_, psf, r, c), cases in _groups(report).items():
        row = [scene_, psf, r, c]
        for m in ("default", "original", "glp", "hysure"):
            row.append(_stats([_metric(x, m, "time_s") for x in cases])[0])
        sel = [x["methods"]["default"].get("selection", {}) for x in cases if "default" in x["methods"]]
        row.append(_stats([s.get("seconds") for s in sel if s])[0])
        row.append(", ".join(sorted({str(s.get("chosen")) for s in sel if s and not s.get("skipped")})) or "skipped")
        rows.append(row)
    return rows


def selection_rows(report) -> list:
    rows = []
    for c in report["cases"]:
        chk = c.get("selection_check")
        if not chk:
            continue
        sel = c["methods"]["default"]["selection"]
        best = max(chk, key=chk.get)
        chosen = sel["chosen"]
        reduced = {x["label"]: x["PSNR"] for x in sel["candidates"]}
        rows.append([c["scene"], c["psf"], c["ratio"], c["bands"], c["seed"], chosen, best,
                     chk[best] - chk.get(chosen, float("nan")), "hit" if chk.get(chosen, -1) >= chk[best] - 0.1 else "miss",
                     " ".join(f"{k}:{reduced[k]:.1f}/{chk[k]:.1f}" for k in chk)])
    return rows


def render(report: dict) -> str:
    m = report["machine"]
    g = report["grid"]
    parts = [f"Quality bench{' (QUICK subset)' if report.get('quick') else ''}: {len(report['cases'])} cases, "
             f"{report.get('total_s', 0) / 60:.1f} min on {report['jobs']} worker process(es) x 1 torch thread; "
             f"{m.get('cpu')}, torch {m.get('torch')}",
             f"Reproduce: {report['command']}",
             f"Scenes {', '.join(g['scenes'])} (library scenes {g.get('library_size', 128)} px); PSFs {', '.join(g['psfs'])} (sigma {SIGMA}, holdout x"
             f"{HOLDOUT_SIGMA_SCALE}); (ratio, bands) {g['settings']}; seeds {g['seeds']}; epochs "
             f"{report['epochs']}. PSNR dB (mean over bands), SAM deg, SPEC 5 convention, mean±sd over seeds."]
    methods, rows = summary_rows(report, "PSNR")
    parts.append(table(["scene", "psf", "r", "c", "n"] + methods + ["default-original"], rows,
                       ["", "", "d", "d", "d"] + [""] * (len(methods) + 1), title="\n[1] PSNR (dB)"))
    methods, rows = summary_rows(report, "SAM")
    parts.append(table(["scene", "psf", "r", "c", "n"] + methods + ["default-original"], rows,
                       ["", "", "d", "d", "d"] + [""] * (len(methods) + 1), title="\n[2] SAM (degrees)"))
    parts.append(table(["scene", "psf", "r", "c", "def-orig", "def-best classical", "def-bicubic", ">= original",
                        ">= classical"], check_rows(report), ["", "", "d", "d", "+.2f", "+.2f", "+.2f", "", ""],
                       title="\n[3] Bars (paired means, PSNR dB): default >= original - 0.1 (>= original + 2.5 at 1 "
                             "band), default >= GLP-HS and HySure"))
    methods, rows = pooled_rows(report)
    parts.append(table(["scene", "r", "c", "n"] + methods + ["default - original", "default - best classical"], rows,
                       ["", "d", "d", "d"] + [""] * (len(methods) + 2),
                       title="\n[3p] PSNR dB / SAM deg per setting, the PSF shapes and seeds pooled (means; "
                             "default - original paired): README's table"))
    parts.append(table(["scene", "psf", "r", "c", "default s", "original s", "glp s", "hysure s", "select s",
                        "selection chose"], time_rows(report),
                       ["", "", "d", "d", ".1f", ".1f", ".2f", ".1f", ".1f", ""],
                       title="\n[4] Fusion time per method (s, mean; default includes its auto-selection), "
                             "one thread"))
    sel = selection_rows(report)
    if sel:
        hits = sum(1 for r in sel if r[8] == "hit")
        parts.append(table(["scene", "psf", "r", "c", "seed", "chosen", "best vs truth", "regret dB", "", "reduced/truth"],
                           sel, ["", "", "d", "d", "d", "", "", ".2f", "", ""],
                           title=f"\n[5] Auto-selection vs the truth: {hits}/{len(sel)} hits (chosen within 0.1 dB "
                                 f"of the best candidate at full resolution)"))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- CLI

def _ints(text: str) -> list:
    return [int(v) for v in text.split(",") if v.strip()]


def _pairs(text: str) -> list:
    out = []
    for item in text.split(","):
        r, c = item.split("x")
        out.append((int(r), int(c)))
    return out


def _setting(text: str) -> tuple:
    import yaml
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--set wants KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="subset that runs in minutes: scenes urban, usgs-a, holdout; gaussian PSF; (r4, 4 bands) "
                        "and (r8, 1 band); seed 1 (--blind: usgs-a, holdout; aniso-r4c4, misreg-r4c4; seed 1)")
    p.add_argument("--scenes", default=None, help=f"comma list from {', '.join(SCENES + EXTRA_SCENES)}")
    p.add_argument("--psfs", default=None, help=f"comma list from {', '.join(PSFS)}")
    p.add_argument("--grid", type=_pairs, default=None,
                   help="(ratio x bands) list, e.g. 4x4,8x1 (default: 4x4,8x4,16x4,8x1,8x3,8x8,8x16)")
    p.add_argument("--seeds", type=_ints, default=None, help="default 1,2,3")
    p.add_argument("--methods", default=None, help="comma list from default, original, glp, hysure (--blind: "
                                                   "default, glp, hysure, true-psf); default all")
    p.add_argument("--epochs", type=int, default=None, help="override the epochs (default: the engine's)")
    p.add_argument("--set", dest="overrides", action="append", type=_setting, default=[], metavar="KEY=VALUE",
                   help="a config key for the 'default' method (a candidate default; repeatable, YAML value); "
                        "glp_* / hysure_* keys reach those methods too (the bar's own settings)")
    p.add_argument("--size", type=int, default=128, help="side of the library scenes in pixels (default 128)")
    p.add_argument("--selection-check", action="store_true",
                   help="also run every auto-selection candidate at full resolution (hit rate; slow)")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                   help="worker processes (one torch thread each)")
    p.add_argument("--json", help=f"result file (default {RESULTS_DIR}/quality_<time>.json)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--blind", action="store_true",
                   help="the blind bench (bench/blind.py): real-world mode, sensors the engine is not told")
    from . import blind
    blind.add_arguments(p)


def _resolve(args) -> None:
    if (getattr(args, "settings", None) or getattr(args, "given_srf", False) or getattr(args, "joint_rounds", None)
            or getattr(args, "tv_choice_iterations", None)):
        raise SystemExit("error: --settings, --given-srf, --joint-rounds and --tv-choice-iterations are the blind "
                         "bench's (--blind); "
                         "synthetic mode is told the true sensors already")
    q = QUICK if args.quick else {}
    args.scenes = [s.strip() for s in args.scenes.split(",")] if args.scenes else list(q.get("scenes", SCENES))
    args.psfs = [s.strip() for s in args.psfs.split(",")] if args.psfs else list(q.get("psfs", PSFS))
    args.grid = args.grid or list(q.get("grid", GRID))
    args.seeds = args.seeds or list(q.get("seeds", (1, 2, 3)))
    args.methods = [m.strip() for m in (args.methods or ",".join(METHODS)).split(",") if m.strip()]
    bad = [m for m in args.methods if m not in METHODS]
    if bad:
        raise SystemExit(f"error: unknown method(s) {bad}; allowed: {', '.join(METHODS)}")
    bad = [s for s in args.scenes if s not in SCENES + EXTRA_SCENES]
    if bad:
        raise SystemExit(f"error: unknown scene(s) {bad}; allowed: {', '.join(SCENES + EXTRA_SCENES)}")


def main(args) -> int:
    if getattr(args, "blind", False):
        from . import blind
        return blind.main(args)
    _resolve(args)
    report = run(args)
    text = render(report)
    print(text)
    path = write_json(args.json or default_json("quality"), {**report, "table": text})
    print(f"\nJSON: {path}")
    return 0
