"""Refinement settings on trained networks (issue 20 item 2): one training per blind case, then
every refinement variant on that same network's result, scored against the truth.

    python -m bench.refine_tune --scenes usgs-a,holdout --settings aniso-r4c4,moffat-r8c1 --seeds 1,2
    python -m bench.refine_tune --auto --scenes usgs-a --seeds 1,2     # the estimated subspace
    python -m bench.refine_tune --tv --scenes usgs-a,usgs-b,holdout --settings aniso-r8c3,moffat-r8c1,misreg-r8c3
    python -m bench.refine_tune --converge --scenes usgs-a,usgs-b,holdout --settings aniso-r8c3,moffat-r8c1,misreg-r8c3
    python -m bench.refine_tune --holdout --scenes usgs-a,usgs-b,holdout --settings aniso-r8c3,moffat-r8c1,misreg-r8c3
    python -m bench.refine_tune --r2r --scenes urban,usgs-a,usgs-b,holdout --settings aniso-r4c4,moffat-r4c4 --seeds 1,2
    python -m bench.refine_tune --start --scenes urban-m,holdout --settings moffat-r8c1,aniso-r8c3 --seeds 1,2
    python -m bench.refine_tune --oracle-tv --scenes urban-m,usgs-a --settings aniso-r8c3,moffat-r8c1 --seeds 1,2
    python -m bench.refine_tune --msi-weight --snr 40,30 --scenes urban-m,holdout --settings aniso-r8c3 --seeds 1

A variant is (name, start, trust, tv weight, iteration ceiling[, subspace[, signal-over-noise
threshold[, prior mean[, MSI weight]]]]) -- the tv weight a number, or "oracle:k" / "ml:k:n" (ORACLE_VARIANTS),
the prior mean "network", "glp" or "bicubic" (START_VARIANTS). Start "cold" is today's ADMM
from the network's coefficients; "warm" starts from the exact solution without the VTV
(refinement.TV_WARM_START); subspace None is the estimate
(sensors/subspace.py), the threshold its SIGNAL_OVER_NOISE. Prints PSNR, the P used, iterations
and seconds per variant, the paired difference to the variant named "default", and a table of
the paired means per (scene, setting).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200),
    ("cold-120", "cold", 8.0, 10.0, 120),
    ("warm-t1-tv40", "warm", 1.0, 40.0, 60),
    ("warm-t1-tv80", "warm", 1.0, 80.0, 60),
    ("warm-t1-tv160", "warm", 1.0, 160.0, 60),
    ("warm-t2-tv80", "warm", 2.0, 80.0, 60),
    ("warm-t2-tv160", "warm", 2.0, 160.0, 60),
    ("warm-t4-tv160", "warm", 4.0, 160.0, 60),
]
# --subspace: P 10 (the default before the estimate) against other fixed subspaces (the cost of
# an iteration is linear in P)
SUBSPACE_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, 10),
    ("P5", "cold", 8.0, 10.0, 200, 5),
    ("P7", "cold", 8.0, 10.0, 200, 7),
    ("P8", "cold", 8.0, 10.0, 200, 8),
    ("P12", "cold", 8.0, 10.0, 200, 12),
    ("P15", "cold", 8.0, 10.0, 200, 15),
]
# --tv (issue 19, 12th session): the VTV weight (in units of the LR-HSI's noise variance), the
# iteration ceiling and the trust. At ratio 8 the ADMM stops at its 200-iteration ceiling, not by
# its tolerance; at ratio 4 most runs on these 128^2 scenes do too. "no-prior": trust so high that
# the network's result is only the ADMM's start.
TV_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, None),
    ("tv5", "cold", 8.0, 5.0, 200, None),
    ("tv2.5", "cold", 8.0, 2.5, 200, None),
    ("it400", "cold", 8.0, 10.0, 400, None),
    ("tv7-it400", "cold", 8.0, 7.0, 400, None),
    ("tv5-it400", "cold", 8.0, 5.0, 400, None),
    ("tv4-it400", "cold", 8.0, 4.0, 400, None),
    ("tv2.5-it400", "cold", 8.0, 2.5, 400, None),
    ("tv5-it600", "cold", 8.0, 5.0, 600, None),
    ("tv5-it400-t16", "cold", 16.0, 5.0, 400, None),
    ("t4", "cold", 4.0, 10.0, 200, None),
    ("t32", "cold", 32.0, 10.0, 200, None),
    ("no-prior", "cold", 1e9, 10.0, 200, None),      # prior weight ~0: HySure's problem at the default's VTV
    # (14th session) weaker still, for the real cube's texture (urban at ratio 4, urban-m at 8)
    ("tv1-it400", "cold", 8.0, 1.0, 400, None),
    ("no-tv", "cold", 8.0, 0.0, 200, None),          # the quadratic refinement (conjugate gradients)
]
# --converge: today's weights run further (HySure's own ADMM gains 0.2-0.3 dB at ratio 8 from
# 200 to 1000 iterations on the blind bench: does the refinement's?); the stopping rule still
# applies, so a ceiling is reached only where the ADMM has not converged
CONVERGE_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, None),
    ("it1000", "cold", 8.0, 10.0, 1000, None),
    ("t4-it1000", "cold", 4.0, 10.0, 1000, None),
    ("t16-it1000", "cold", 16.0, 10.0, 1000, None),
    ("tv7-it1000", "cold", 8.0, 7.0, 1000, None),
    ("no-prior-it1000", "cold", 1e9, 10.0, 1000, None),
]
# --holdout: can the pair itself choose the refinement's weights? Each variant is run twice:
# on the whole pair (its PSNR against the truth) and with a quarter of the LR pixels left out of
# the LR-HSI term (random, fixed per case): how well its result, degraded, predicts those pixels.
HOLDOUT_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, None),
    ("t4", "cold", 4.0, 10.0, 200, None),
    ("t16", "cold", 16.0, 10.0, 200, None),
    ("tv5-it400", "cold", 8.0, 5.0, 400, None),
    ("no-prior-it1000", "cold", 1e9, 10.0, 1000, None),
    ("no-prior-tv4-it1000", "cold", 1e9, 4.0, 1000, None),
]
HOLDOUT_SHARE = 0.25
# --r2r (14th session): can the HR-MSI choose the VTV weight? Recorrupted-to-recorrupted
# (Pang et al. 2021): the refinement run on y1 = MSI + a z and its result, seen through the SRF,
# scored against y2 = MSI - z / a (z drawn at the MSI's noise level) estimates, up to a constant,
# its HR error in the MSI's spectral directions -- on the pixels it was given, unlike a left-out
# pixel. The bench gives the MSI's true noise level (30 dB of each band's power); an engine
# version would have to estimate it. The LR-pixel hold-out is scored beside it.
R2R_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, None),
    ("tv1-it400", "cold", 8.0, 1.0, 400, None),
    ("tv2.5-it400", "cold", 8.0, 2.5, 400, None),
    ("tv5-it400", "cold", 8.0, 5.0, 400, None),
    ("tv20-it400", "cold", 8.0, 20.0, 400, None),
]
# --start (15th session; issue 19 item 2, "a start from a classical result"): the refinement's
# prior mean (its Z0) taken from GLP-HS's result or the bicubic LR-HSI instead of the network's,
# each with today's weights and with VTV 2.5. At ratio 8 / 1 band the network's own result is
# below bicubic on the held-out scene (15.7 dB) and GLP-HS leads on the real cube's texture.
START_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, None, None, "network"),
    ("glp", "cold", 8.0, 10.0, 200, None, None, "glp"),
    ("bicubic", "cold", 8.0, 10.0, 200, None, None, "bicubic"),
    ("tv2.5", "cold", 8.0, 2.5, 200, None, None, "network"),
    ("glp-tv2.5", "cold", 8.0, 2.5, 200, None, None, "glp"),
    ("glp-t32", "cold", 32.0, 10.0, 200, None, None, "glp"),
]
# --oracle-tv (15th session): is a VTV weight scaled to the scene's own gradients a rule? For a
# vector-Laplace prior on the per-pixel gradient (2P values), the MAP weight in noise-variance
# units is 2P / b, b the true cube's mean per-pixel VTV norm in the refinement's subspace; here b
# is read from the truth ("oracle:k": k times that weight). Only if an oracle k passes is an
# estimate of b from the pair worth making.
ORACLE_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, None),
    ("tv2.5", "cold", 8.0, 2.5, 200, None),
    ("tv5", "cold", 8.0, 5.0, 200, None),
    ("tv20", "cold", 8.0, 20.0, 200, None),
    ("oracle0.25", "cold", 8.0, "oracle:0.25", 200, None),
    ("oracle0.5", "cold", 8.0, "oracle:0.5", 200, None),
    ("oracle0.8", "cold", 8.0, "oracle:0.8", 200, None),
    # the same weight from the pair: refine, read b from the result, set the weight, refine again
    # ("ml:k:n": n passes from today's 10), the fixed point of the joint MAP estimate of the
    # cube and the prior's scale
    ("ml0.25x2", "cold", 8.0, "ml:0.25:2", 200, None),
    ("ml0.5x2", "cold", 8.0, "ml:0.5:2", 200, None),
    ("ml0.5x4", "cold", 8.0, "ml:0.5:4", 200, None),
]
# --msi-weight (15th session; issue 19 item 2, "the refinement's weights from the noise of both
# images"): the refinement weighs the HR-MSI as if its noise per value were the LR-HSI's
# (refine_msi_weight 1). Where the MSI is cleaner (--snr 40,30: ten times less noise variance
# per value) the MAP weight is about 10. The variant's trailing field is refine_msi_weight.
MSI_WEIGHT_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, None, None, "network", 1.0),
    ("wm3", "cold", 8.0, 10.0, 200, None, None, "network", 3.0),
    ("wm10", "cold", 8.0, 10.0, 200, None, None, "network", 10.0),
    ("wm0.3", "cold", 8.0, 10.0, 200, None, None, "network", 0.3),
]
# --band-holdout (15th session): can a left-out MSI band choose the VTV weight? For each MSI
# band in turn: a network trained and a refinement run without it (the pair's other bands, their
# SRF rows), the result seen through that band's SRF row and scored against the band itself on
# the HR grid -- the HR detail in a direction the run was not given, which is what the VTV
# decides on real texture. The band's own noise adds the same to every variant. Needs 2+ bands.
BAND_HOLDOUT_VARIANTS = R2R_VARIANTS      # VTV 1, 2.5, 5, 10 (today), 20
R2R_ALPHA = 0.5
R2R_DRAWS = 2
# --auto: P estimated from the LR-HSI (refine_subspace null, today's default; sensors/subspace.py)
# with the threshold on signal over noise power (HySime's 1, and 2), against P 10 (the default
# before it, named "default" here as the baseline) and the scenes' best fixed P
AUTO_VARIANTS = [
    ("default", "cold", 8.0, 10.0, 200, 10),
    ("auto", "cold", 8.0, 10.0, 200, None, 1.0),
    ("auto-x2", "cold", 8.0, 10.0, 200, None, 2.0),
    ("P7", "cold", 8.0, 10.0, 200, 7),
    ("P12", "cold", 8.0, 10.0, 200, 12),
]


def left_out_pixels(prep, seed) -> np.ndarray:
    """HOLDOUT_SHARE of the LR pixels, at random (fixed per seed)."""
    h, w = prep.lr_hsi.shape[:2]
    return np.random.default_rng(1000 + seed).random((h, w)) < HOLDOUT_SHARE


def holdout_network(cfg, prep, left_out):
    """(prep without the left-out LR pixels, maps, endmembers): NMF and training without them
    (the pair's `lr_valid`, as for LR pixels without data). The sensors stay those fitted on the
    whole pair."""
    import dataclasses
    from spectramorph_engine.methods import spectramorph as sm
    from spectramorph_engine.run.prepare import NodataMasks
    H, W = prep.hr_msi.shape[:2]
    none_hr = np.zeros((H, W), dtype=bool)
    cut = dataclasses.replace(prep, masks=NodataMasks(hr_bad=none_hr, lr_bad=np.zeros_like(left_out),
                                                      lr_out=left_out.copy(), hr_out=none_hr))
    out = sm.fuse(cfg.replace(refine=False), cut, device="cpu")
    return cut, out.alle, out.endmembers


def holdout_error(v, prep, alle, E, left_out) -> float:
    """Mean squared error (per value, the LR-HSI's units of the engine) with which the variant's
    result, made without the `left_out` LR pixels (a network trained without them, a refinement
    whose LR-HSI term leaves them out), predicts them through the sensor model."""
    from spectramorph_engine.methods.spectramorph import msi_model_mse, refinement_settings, subspace_choice
    from spectramorph_engine.methods.spectramorph.refinement import refine
    from spectramorph_engine.sensors.degradation import degrade_spatial
    srf, offset = prep.msi_model()
    P, record = subspace_choice(v, prep)
    ref = refine(alle, E, prep.lr_hsi, prep.hr_msi, prep.psf, prep.ratio, srf, offset,
                 msi_model_mse=msi_model_mse(prep), subspace_dim=P, trust=v.refine_trust,
                 msi_weight=v.refine_msi_weight, subspace_estimate=record,
                 lr_weight=(~left_out).astype(np.float32), **refinement_settings(v, prep, "cpu"))
    cube = alle @ E + ref.delta @ ref.basis
    predicted = degrade_spatial(cube.astype(np.float32), prep.psf, prep.ratio)
    diff = (predicted - prep.lr_hsi)[left_out]
    return float(np.mean(diff.astype(np.float64) ** 2))


def r2r_error(v, prep, alle, E, seed, snr_db) -> float:
    """Mean over R2R_DRAWS of ||SRF(refined on MSI + a z) - (MSI - z / a)||^2 per value (the
    engine's MSI units); z per band at the level `snr_db` gives that band's mean square."""
    import dataclasses
    from spectramorph_engine.methods import spectramorph as sm
    R, off = prep.msi_model()
    msi = np.asarray(prep.hr_msi, dtype=np.float64)
    H, W = msi.shape[:2]
    msi = msi.reshape(H, W, -1)
    sigma = np.sqrt(np.mean(msi ** 2, axis=(0, 1)) / 10.0 ** (snr_db / 10.0))
    rng = np.random.default_rng(500 + seed)
    total = 0.0
    for _ in range(R2R_DRAWS):
        z = rng.standard_normal(msi.shape) * sigma
        y1 = (msi + R2R_ALPHA * z).astype(np.float32).reshape(prep.hr_msi.shape)
        ref = sm.refine_result(v, dataclasses.replace(prep, hr_msi=y1), alle, E, device="cpu")
        cube = alle @ E + ref.delta @ ref.basis
        seen = cube.reshape(-1, cube.shape[2]) @ np.asarray(R, dtype=np.float64).T
        if off is not None:
            seen = seen + np.asarray(off, dtype=np.float64).reshape(1, -1)
        total += float(np.mean((seen - (msi - z / R2R_ALPHA).reshape(seen.shape)) ** 2))
    return total / R2R_DRAWS


def mean_vtv_norm(X) -> float:
    """Mean over pixels of the per-pixel Euclidean norm of both forward differences over the bands
    of X (H x W x P): the refinement's VTV per pixel."""
    gh = np.diff(X, axis=1)[:-1]
    gv = np.diff(X, axis=0)[:, :-1]
    return float(np.mean(np.sqrt(np.sum(gh * gh + gv * gv, axis=2))))


def oracle_tv_weight(cfg, prep, truth_units) -> float:
    """2P / b (module comment at ORACLE_VARIANTS) from the truth in the engine's units."""
    from spectramorph_engine.methods.spectramorph import subspace_choice
    from spectramorph_engine.methods.spectramorph.refinement import subspace_basis
    P, _ = subspace_choice(cfg, prep)
    V = subspace_basis(prep.lr_hsi, P)
    return 2.0 * P / mean_vtv_norm(np.asarray(truth_units, dtype=np.float64) @ V.T)


def ml_tv_weight(cfg, prep, z0, basis, k: float, passes: int, start: float = 10.0) -> float:
    """The VTV weight after `passes` rounds of: refine at the weight, then weight = k 2P / b of
    the result (b: its mean per-pixel VTV norm in the refinement's subspace)."""
    from spectramorph_engine.methods import spectramorph as sm
    w = float(start)
    for _ in range(passes):
        ref = sm.refine_result(cfg.replace(refine_tv_weight=w), prep, z0, basis, device="cpu")
        V = np.asarray(ref.basis, dtype=np.float64)
        w = k * 2.0 * V.shape[0] / mean_vtv_norm((z0 @ basis + ref.delta @ ref.basis) @ V.T)
    return w


def band_holdout_errors(cfg, prep, variants_cfg) -> dict:
    """{variant name: mean over the MSI bands of the HR mean squared error with which the
    variant's result, made without that band, predicts it through its SRF row}."""
    from spectramorph_engine.methods import spectramorph as sm
    from spectramorph_engine.run.tv_selection import without_band
    R, off = prep.msi_model()
    msi = np.asarray(prep.hr_msi, dtype=np.float64)
    c = msi.shape[2]
    errors = {name: 0.0 for name, _ in variants_cfg}
    for j in range(c):
        cut = without_band(prep, j)
        net = sm.fuse(cfg.replace(refine=False), cut, device="cpu")
        for name, v in variants_cfg:
            ref = sm.refine_result(v, cut, net.alle, net.endmembers, device="cpu")
            cube = net.alle @ net.endmembers + ref.delta @ ref.basis
            seen = cube.reshape(-1, cube.shape[2]).astype(np.float64) @ R[j] + off[j]
            errors[name] += float(np.mean((seen - msi[..., j].reshape(-1)) ** 2)) / c
    return errors


def classical_means(cfg, prep) -> dict:
    """{"glp": (cube, I), "bicubic": (cube, I)}: GLP-HS's result (the blur fitted on the pair) and
    the cubic-upsampled LR-HSI on the HR grid, in the engine's units, as (latents, basis) pairs
    the refinement takes in place of the network's (latents @ basis = the cube)."""
    from spectramorph_engine.methods import glp
    from spectramorph_engine.methods._ops import CubicUpsampler
    H, W = prep.hr_msi.shape[:2]
    h, w, C = prep.lr_hsi.shape
    eye = np.eye(C, dtype=np.float32)
    g = np.asarray(glp.fuse(cfg.replace(method="glp"), prep).hr_hsi, dtype=np.float32)
    b = CubicUpsampler(h, w, prep.ratio).rows(np.asarray(prep.lr_hsi, dtype=np.float32), 0, H)
    return {"glp": (g, eye), "bicubic": (np.ascontiguousarray(b[:, :W]), eye)}


def run_case(scene_name, setting_name, seed, variants, epochs=None, holdout=False, r2r=False, snr_db=None,
             band_holdout=False):
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.core.device import configure_threads
    from spectramorph_engine.methods import spectramorph as sm
    from spectramorph_engine.methods.spectramorph import refinement
    from spectramorph_engine.run.prepare import prepare_inputs
    from spectramorph_engine.run.results import FusionInputs
    from spectramorph_engine.sensors import subspace
    from spectramorph_engine.sensors.degradation import normalize_percentile
    from . import blind
    from .blind import SETTINGS, make_pair, scene_srf, _score
    from .scenes import scene
    configure_threads()
    snr_db = blind.SNR_DB if snr_db is None else snr_db
    setting = SETTINGS[setting_name]
    raw, wl = scene(scene_name, 128)
    truth0 = normalize_percentile(raw)
    srf = scene_srf(setting, truth0.shape[2], wl)
    truth, hr_msi, lr_hsi = make_pair(truth0, setting, srf, seed, snr_db)
    base = dict(synthetic=False, seed=seed, device="cpu", verbose=0, auto_select=False)
    if wl is not None:
        base["wavelengths"] = [float(v) for v in wl]
    if epochs:
        base["epochs"] = epochs
    cfg = FusionConfig(**base)
    prep = prepare_inputs(cfg, FusionInputs(hr_msi=hr_msi, lr_hsi=lr_hsi))
    t0 = time.perf_counter()
    out = sm.fuse(cfg.replace(refine=False), prep, device="cpu")
    train_s = time.perf_counter() - t0
    alle, E = out.alle, out.endmembers
    lo, hi = prep.value_range
    offset, span = prep.lr_units

    def score(cube):
        c = np.clip(cube, lo, hi if hi is not None else np.inf)
        return _score(truth, c * span + offset, setting.ratio)

    rows = {"network": {**score(alle @ E), "iterations": 0, "seconds": 0.0}}
    means = {"network": (alle, E)}
    if any(len(v) > 7 and v[7] != "network" for v in variants):
        means.update(classical_means(cfg, prep))
        for k in ("glp", "bicubic"):
            rows[k + " alone"] = {**score(means[k][0]), "iterations": 0, "seconds": 0.0}
    if holdout:
        left_out = left_out_pixels(prep, seed)
        cut, alle_cv, E_cv = holdout_network(cfg, prep, left_out)
    for name, start, trust, tv, iters, *rest in variants:
        refinement.TV_WARM_START = start == "warm"
        threshold = subspace.SIGNAL_OVER_NOISE
        if len(rest) > 1 and rest[1] is not None:
            subspace.SIGNAL_OVER_NOISE = rest[1]
        z0, basis = means[rest[2] if len(rest) > 2 else "network"]
        if isinstance(tv, str) and tv.startswith("ml:"):
            tv = ml_tv_weight(cfg.replace(refine_trust=trust, refine_iterations=iters,
                                          refine_subspace=rest[0] if rest else None), prep, z0, basis,
                              float(tv.split(":")[1]), int(tv.split(":")[2]))
        elif isinstance(tv, str):
            tv = float(tv.split(":")[1]) * oracle_tv_weight(cfg.replace(refine_subspace=rest[0] if rest else None),
                                                             prep, (truth - offset) / span)
        v = cfg.replace(refine_trust=trust, refine_tv_weight=tv, refine_iterations=iters,
                        refine_subspace=rest[0] if rest else None,
                        refine_msi_weight=rest[3] if len(rest) > 3 else cfg.refine_msi_weight)
        t1 = time.perf_counter()
        ref = sm.refine_result(v, prep, z0, basis, device="cpu")
        sec = time.perf_counter() - t1
        subspace.SIGNAL_OVER_NOISE = threshold
        estimate = ref.info.get("subspace_estimate") or {}
        cube = z0 @ basis + ref.delta @ ref.basis
        rows[name] = {**score(cube), "iterations": ref.info.get("iterations"), "seconds": sec, "tv": float(tv),
                      "b": mean_vtv_norm(cube @ np.asarray(ref.basis, dtype=np.float64).T),
                      "b_truth": mean_vtv_norm(((truth - offset) / span) @ np.asarray(ref.basis, dtype=np.float64).T),
                      "P": int(ref.basis.shape[0]), "signal_dim": estimate.get("signal_dim")}
        if holdout:
            rows[name]["holdout_mse"] = holdout_error(v, cut, alle_cv, E_cv, left_out)
        if r2r:
            rows[name]["r2r_mse"] = r2r_error(v, prep, alle, E, seed,
                                              snr_db[0] if isinstance(snr_db, tuple) else snr_db)
    refinement.TV_WARM_START = False
    if band_holdout and prep.hr_msi.shape[2] > 1:
        made = [(name, cfg.replace(refine_trust=trust, refine_tv_weight=tv, refine_iterations=iters))
                for name, start, trust, tv, iters, *rest in variants]
        for name, err in band_holdout_errors(cfg, prep, made).items():
            rows[name]["band_mse"] = err
    return {"scene": scene_name, "setting": setting_name, "seed": seed, "train_s": train_s, "rows": rows}


def holdout_table(results, names, key="holdout_mse", what="left-out LR pixels", margin=0.0) -> str:
    """Per case: the variant that scores best by `key` (the left-out LR pixels, or R2R on the
    MSI), its PSNR against today's and against the best variant's (the regret of choosing so).
    `margin`: the best must score that fraction below "default" to replace it (the engine's
    rule for the left-out MSI bands, tv_selection.MARGIN)."""
    lines = [f"\n| scene | setting | seed | picked by {what} | picked - default dB | best - picked dB |",
             "| --- | --- | ---: | --- | ---: | ---: |"]
    gains, regrets = [], []
    for r in results:
        rows = {n: r["rows"][n] for n in names}
        pick = min(rows, key=lambda n: rows[n][key])
        if rows[pick][key] >= (1.0 - margin) * rows["default"][key]:
            pick = "default"
        best = max(v["PSNR"] for v in rows.values())
        gains.append(rows[pick]["PSNR"] - rows["default"]["PSNR"])
        regrets.append(best - rows[pick]["PSNR"])
        lines.append(f"| {r['scene']} | {r['setting']} | {r['seed']} | {pick} | {gains[-1]:+.2f} | {regrets[-1]:.2f} |")
    lines.append(f"\nmean picked - default {np.mean(gains):+.3f} dB (worst {min(gains):+.2f}); "
                 f"mean regret {np.mean(regrets):.3f} dB")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--scenes", default="usgs-a,holdout")
    p.add_argument("--settings", default="aniso-r4c4,gamma-r4c4,moffat-r8c1,misreg-r8c3,wide-r4c8")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--subspace", action="store_true", help="compare subspace sizes instead (SUBSPACE_VARIANTS)")
    p.add_argument("--auto", action="store_true", help="the estimated subspace instead (AUTO_VARIANTS)")
    p.add_argument("--tv", action="store_true", help="VTV weights and iteration ceilings instead (TV_VARIANTS)")
    p.add_argument("--holdout", action="store_true",
                   help="also each variant's prediction of a quarter of the LR pixels left out (HOLDOUT_VARIANTS)")
    p.add_argument("--converge", action="store_true",
                   help="today's weights to 1000 iterations instead (CONVERGE_VARIANTS)")
    p.add_argument("--snr", default=None,
                   help="noise on both images of the blind pair, dB (default the blind bench's 30), or "
                        "MSI,HSI (e.g. 40,30)")
    p.add_argument("--band-holdout", action="store_true",
                   help="VTV weights chosen by a left-out MSI band (BAND_HOLDOUT_VARIANTS; 2+ MSI bands)")
    p.add_argument("--msi-weight", action="store_true",
                   help="the refinement's MSI weight instead (MSI_WEIGHT_VARIANTS)")
    p.add_argument("--oracle-tv", action="store_true",
                   help="VTV weights scaled to the true cube's gradients (ORACLE_VARIANTS)")
    p.add_argument("--start", action="store_true",
                   help="the refinement's prior mean from GLP-HS or bicubic instead of the network (START_VARIANTS)")
    p.add_argument("--r2r", action="store_true",
                   help="VTV weights chosen by R2R on the HR-MSI and by left-out LR pixels (R2R_VARIANTS)")
    a = p.parse_args(argv)
    if a.snr is not None:
        a.snr = tuple(float(x) for x in a.snr.split(",")) if "," in a.snr else float(a.snr)
    a.holdout = a.holdout or a.r2r
    chosen = [v for flag, v in ((a.band_holdout, BAND_HOLDOUT_VARIANTS), (a.msi_weight, MSI_WEIGHT_VARIANTS),
                                (a.oracle_tv, ORACLE_VARIANTS), (a.start, START_VARIANTS), (a.r2r, R2R_VARIANTS),
                                (a.holdout, HOLDOUT_VARIANTS), (a.converge, CONVERGE_VARIANTS),
                                (a.tv, TV_VARIANTS),
                                (a.auto, AUTO_VARIANTS), (a.subspace, SUBSPACE_VARIANTS)) if flag]
    variants = chosen[0] if chosen else VARIANTS
    results = []
    for sc in a.scenes.split(","):
        for st in a.settings.split(","):
            for seed in (int(s) for s in a.seeds.split(",")):
                r = run_case(sc, st, seed, variants, a.epochs, holdout=a.holdout, r2r=a.r2r, snr_db=a.snr,
                             band_holdout=a.band_holdout)
                results.append(r)
                base = r["rows"]["default"]["PSNR"]
                cells = []
                for k, v in r["rows"].items():
                    diff = "" if k in ("default", "network") else " (%+.2f)" % (v["PSNR"] - base)
                    chosen = " P%d" % v["P"] if "P" in v else ""
                    held = " ho %.4g" % (v["holdout_mse"] * 1e4) if "holdout_mse" in v else ""
                    held += " r2r %.4g" % (v["r2r_mse"] * 1e4) if "r2r_mse" in v else ""
                    held += " band %.4g" % (v["band_mse"] * 1e4) if "band_mse" in v else ""
                    held += " tv %.3g" % v["tv"] if isinstance(tv_of(k, variants), str) else ""
                    cells.append("%s %.2f%s%s %sit %.1fs%s" % (k, v["PSNR"], diff, chosen, v["iterations"], v["seconds"],
                                                              held))
                print("%-8s %-13s s%d train %.0fs | " % (sc, st, seed, r["train_s"]) + " | ".join(cells), flush=True)
                if a.json:
                    with open(a.json, "w") as fh:
                        json.dump(results, fh)
    names = [v[0] for v in variants]
    print("\nvariant          mean dB vs default   worst   mean s   mean iterations")
    for n in names:
        d = [r["rows"][n]["PSNR"] - r["rows"]["default"]["PSNR"] for r in results]
        s = [r["rows"][n]["seconds"] for r in results]
        it = [r["rows"][n]["iterations"] or 0 for r in results]
        print(f"{n:16s} {np.mean(d):+8.3f}            {min(d):+6.2f}  {np.mean(s):7.2f}  {np.mean(it):6.0f}")
    print(paired_table(results, names))
    if a.holdout:
        print(holdout_table(results, names))
    if a.r2r:
        print(holdout_table(results, names, "r2r_mse", "R2R on the HR-MSI"))
    if a.band_holdout:
        from spectramorph_engine.run.tv_selection import MARGIN
        print(holdout_table([r for r in results if "band_mse" in r["rows"]["default"]], names, "band_mse",
                            "a left-out MSI band", margin=MARGIN))
    return 0


def tv_of(name, variants):
    """The VTV entry of variant `name` (a string for the oracle's)."""
    return next((v[3] for v in variants if v[0] == name), None)


def paired_table(results, names) -> str:
    """Mean over seeds of each variant's PSNR minus the default's per (scene, setting), with the
    P each variant used (a range where the seeds differ), as a Markdown table; the default's
    own PSNR first. Also reads a --json file: python -c "import json, bench.refine_tune as t;
    print(t.paired_table(json.load(open('out.json')), ['default', 'auto']))"."""
    groups = {}
    for r in results:
        groups.setdefault((r["scene"], r["setting"]), []).append(r["rows"])
    head = "| scene | setting | default dB (P) | " + " | ".join(n for n in names if n != "default") + " |"
    lines = [head, "|" + " --- |" * 2 + " ---: |" * len(names)]
    for (scene, setting), rows in groups.items():
        cells = []
        for n in names:
            ps = sorted({row[n].get("P") for row in rows if row[n].get("P") is not None})
            used = "" if not ps else " P%d" % ps[0] if len(ps) == 1 else " P%d-%d" % (ps[0], ps[-1])
            if n == "default":
                cells.append("%.2f%s" % (np.mean([row[n]["PSNR"] for row in rows]), used))
            else:
                cells.append("%+.2f%s" % (np.mean([row[n]["PSNR"] - row["default"]["PSNR"] for row in rows]), used))
        lines.append(f"| {scene} | {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
