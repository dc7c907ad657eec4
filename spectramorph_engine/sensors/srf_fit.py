"""How well a given SRF explains the pair, and what follows from it (real-world mode): `preset_fit`
(a preset, camera or file SRF scored on the pair, blur scanned as in `srf_estimation`),
`fit_gain_offset` (a file SRF's per-band gain and offset), `choose_training_input` (the
estimated SRF or the HR-MSI brought to the LR grid), `blur_verdict` (is the fitted blur
identified) and `poor_srf_warning` (the sentence when a fit is below `POOR_SRF_FIT_DB`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.events import check_cancel
from .srf_estimation import (BLUR_IDENTIFIED_MARGIN, BLUR_TRUSTED_MIN_R2, DEFAULT_PSF_SIGMAS,
                             MAX_ESTIMATION_LR_SIDE, SrfEstimate, _check_pair, _fit_stats, _interior,
                             _margin, _restrict, _to_lr_grid, _usable, central_crop, msi_to_lr_grid)


def _srf_fit_pixels(hr_msi, lr_hsi, ratio: int, srf, psf_sigma, psf_sigmas, valid=None, kernel=None):
    """Shared set-up of fits of a given SRF to a pair: SRF(LR-HSI) on the interior LR pixels
    (n x c, float64), and, lazily per candidate blur width (just `psf_sigma` when given),
    (sigma, the HR-MSI brought to the LR grid on the same pixels). `kernel`: a blur kernel
    (HR pixels) instead of the Gaussians -- the one candidate, its sigma None. `valid`: h x w
    bool of the LR pixels with data (nodata masks)."""
    hr, lr, ratio = _check_pair(hr_msi, lr_hsi, ratio)
    if valid is None:
        hr, lr = central_crop(hr, lr, ratio, MAX_ESTIMATION_LR_SIDE)   # bounded memory, ample pixels
    else:
        hr, lr, valid = central_crop(hr, lr, ratio, MAX_ESTIMATION_LR_SIDE, np.asarray(valid, dtype=bool))
    srf = np.asarray(srf, dtype=np.float64)
    h, w, C = lr.shape
    c = hr.shape[2]
    if srf.shape != (c, C):
        raise InputError(f"the SRF is {srf.shape} but the pair needs {c} x {C}")
    sigmas = [float(psf_sigma)] if psf_sigma is not None else sorted({float(s) for s in psf_sigmas})
    if kernel is not None:
        kernel = np.asarray(kernel, dtype=np.float32)
        # the margins below are 3 sigma: a kernel's reach is its half size
        sigmas = [max(kernel.shape) // 2 / 3.0]
    m = _margin(max(sigmas), ratio, h, w)
    usable = _usable(valid, max(sigmas), ratio)
    sel = slice(None) if usable is None else _restrict(
        np.pad(np.ones((h - 2 * m, w - 2 * m), dtype=bool), m), usable)[m:h - m, m:w - m].reshape(-1)
    pred = _interior(lr.astype(np.float64) @ srf.T, m).reshape(-1, c)[sel]
    if kernel is not None:
        return pred, iter([(None, _interior(_to_lr_grid(hr, ratio, 0.0, kernel), m).reshape(-1, c)[sel])])
    candidates = ((sg, _interior(msi_to_lr_grid(hr, ratio, sg).astype(np.float64), m).reshape(-1, c)[sel])
                  for sg in sigmas)
    return pred, candidates


def preset_fit(hr_msi, lr_hsi, ratio: int, srf, psf_sigma: Optional[float] = None,
               psf_sigmas: Sequence[float] = DEFAULT_PSF_SIGMAS, offset=None, cancel=None, valid=None,
               kernel=None) -> dict:
    """How well a given SRF (e.g. the preset) explains the pair, used as is (no gain or
    offset: exactly what the network would be trained on; pass `offset` for an estimate).

    Compares SRF(LR-HSI) with the HR-MSI brought to the LR grid (blur `psf_sigma`, or the
    candidate in `psf_sigmas` that fits best, or the blur `kernel` when given) on the interior
    LR pixels. Returns dict(psnr (mean over bands, dB), psnr_per_band, r2_per_band, psf_sigma
    (None with a kernel)).
    """
    pred, candidates = _srf_fit_pixels(hr_msi, lr_hsi, ratio, srf, psf_sigma, psf_sigmas, valid, kernel)
    c = pred.shape[1]
    if offset is not None:
        pred = pred + np.asarray(offset, dtype=np.float64).reshape(1, -1)
    best = None
    for sg, Y in candidates:
        check_cancel(cancel)
        mse = float(np.mean((pred - Y) ** 2))
        if best is None or mse < best[0]:
            best = (mse, sg, Y)
    _, sg, Y = best
    stats = [_fit_stats(Y[:, k], pred[:, k]) for k in range(c)]
    per_psnr = [float(p) for p, _ in stats]
    return {"psnr": float(np.mean(per_psnr)), "psnr_per_band": per_psnr,
            "r2_per_band": [float(r) for _, r in stats], "psf_sigma": sg}


def choose_training_input(hr_msi, lr_hsi, ratio: int, est: SrfEstimate):
    """Pick the network's training input for `training_input: auto` -> ("srf" | "msi_lr", reason).

    The two inputs fail in different ways. "msi_lr" (the real HR-MSI brought to the LR
    grid with the estimated blur) is by construction the right camera, gamma and all,
    but it is co-registered with the LR-HSI target only when the blur is right. "srf"
    (the estimated SRF applied to the LR-HSI, plus its offset) is co-registered with
    the target whatever the blur, but only as right as the linear SRF fit.
    So "msi_lr" when the blur is trustworthy, by either sign:
      - the blur + SRF model explains every MSI band (R^2 >= BLUR_TRUSTED_MIN_R2): a
        wrong blur leaves spatial residuals that no SRF can absorb; or
      - the best sigma is an interior minimum of the held-out error (not the largest
        candidate) beating every other width by >= BLUR_IDENTIFIED_MARGIN (a strongly
        non-linear camera can spoil R^2 while the blur is still clearly found);
    otherwise "srf".

    Measured with the SPEC network (2500 epochs, scratch re-implementation) on the
    Urban/IKONOS scenarios, inputs normalised as real-world mode does, PSNR/SAM vs
    truth (after undoing the LR-HSI normalisation); chosen one first:
      real camera (gamma), sigma 1 found, R2 >= 0.982:  msi_lr 29.1/4.4, srf 28.0/5.3
      linear camera (oracle), sigma 1, R2 >= 0.988:     msi_lr 29.5/4.0, srf 27.7/5.0
      true blur 2.5, candidates <= 1 (R2 0.89, edge):   srf 26.2/5.2, msi_lr 25.1/4.9
      true blur 2.5, candidates <= 3 (R2 0.986, edge):  msi_lr 26.6/5.2, srf 25.9/6.2
    (bicubic 24.1/4.4; 20.7/6.1 with the wide blur). The rule picks the better PSNR in
    all four. `hr_msi`, `lr_hsi` and `ratio` are accepted for callers; the rule reads
    `est` only (blur_verdict).
    """
    trusted, why = blur_verdict(est)
    if trusted:
        return "msi_lr", f"{why}: training on the HR-MSI brought to the LR grid, which needs no SRF"
    return "srf", f"{why}: training on the estimated SRF, which does not depend on the blur"


def blur_verdict(est: SrfEstimate):
    """(trusted, why): whether the blur fitted on the pair can be trusted to bring the HR-MSI to
    the LR grid -- the rule of choose_training_input, shared with the advice of
    poor_srf_warning so that the two never disagree."""
    scores = dict(est.sigma_scores or {})
    sigma = float(est.psf_sigma)
    worst_r2 = float(np.min(est.r2))
    fit = f"SRF fit {float(np.min(est.psnr_db)):.1f} dB, R2 {worst_r2:.3f} on the worst band"
    if est.kernel is not None and est.psf_estimate is None:
        return True, f"the blur is the kernel given (psf_file; {fit})"
    blur = est.blur_label() if est.kernel is not None else f"blur sigma {sigma:g} px"
    if worst_r2 >= BLUR_TRUSTED_MIN_R2:
        return True, f"{blur} and SRF explain the HR-MSI well ({fit})"
    margin, at_edge = 0.0, True
    if len(scores) >= 2:
        best = scores.get(sigma, min(scores.values()))
        others = [v for s_, v in scores.items() if s_ != sigma]
        at_edge = sigma >= max(scores)
        margin = min(others) / best - 1.0 if best > 0 else float("inf")
    if not at_edge and margin >= BLUR_IDENTIFIED_MARGIN:
        return True, (f"the blur is clearly identified (sigma {sigma:g} px fits {100 * margin:.0f}% "
                      f"better than any other width; {fit})")
    why = ("the best blur width is the largest one tried" if at_edge
           else f"no blur width fits clearly best (margin {100 * margin:.0f}%)")
    return False, f"the blur is uncertain ({why}; {fit})"


# An SRF whose fit explains the HR-MSI less well than this (PSNR, dB) makes a network trained
# on it ("srf" training input) see other inputs at training than at inference.
POOR_SRF_FIT_DB = 25.0


def poor_srf_warning(fit_psnr: float, source: str, training_input_setting: str, blur=None,
                     psf_given: bool = False) -> str:
    """The warning for an SRF that explains the HR-MSI poorly while the network trains on it
    (training input "srf"), with advice that agrees with choose_training_input and names only
    settings not already in use.

    `source`: the SRF in use ("estimate", "preset", "camera" or "file"); `training_input_setting`:
    the config's value ("auto" or "srf"); `blur`: blur_verdict's (trusted, why) for the blur
    fitted on this pair (None when none was fitted); `psf_given`: a PSF file sets the blur."""
    what = {"estimate": "estimated from the pair", "preset": "a preset", "camera": "the named camera's",
            "file": "the SRF file's"}.get(source, source)
    text = (f"The SRF explains the HR-MSI poorly (fit {fit_psnr:.1f} dB PSNR; the SRF in use is {what}) and the "
            f"network trains on it: the result may be a recoloured HR-MSI.")
    tips = []
    if source != "estimate":
        tips.append("srf_source: estimate (an SRF fitted on this pair)")
    trusted, why = blur if blur is not None else (None, "")
    if psf_given:
        tips.append("training_input: msi_lr (the PSF file gives the blur it needs, and it needs no SRF)")
    elif trusted:
        # the rule of training_input: auto trusts this blur: training on the HR-MSI itself needs no SRF
        tips.append(f"training_input: msi_lr ({why}; it trains on the HR-MSI brought to the LR grid, "
                    f"which needs no SRF)")
    else:
        if trusted is False:
            chosen = source == "estimate" and training_input_setting == "auto"
            text += (f" Training on the HR-MSI itself (training_input: msi_lr) "
                     f"{'was not chosen' if chosen else 'is no safer here'}: {why}.")
        tips.append("a PSF file (psf_file, provide_psf: true) if you know the blur between the images, "
                    "then training_input: msi_lr")
    if source != "file":
        tips.append("a measured SRF file (srf_file)")
        if source != "camera":
            tips.append("msi_camera when the camera is a named one (spectramorph cameras)")
    else:
        tips.append("check that the SRF file describes this camera")
    return text + " Try " + "; or ".join(tips) + "."


def fit_gain_offset(hr_msi, lr_hsi, ratio: int, srf, psf_sigma: Optional[float] = None,
                    psf_sigmas: Sequence[float] = DEFAULT_PSF_SIGMAS, cancel=None, valid=None):
    """Per-band gain and offset that best map SRF(LR-HSI) onto the HR-MSI brought to the LR grid.

    A measured SRF gives the shape of each band's response, but the two images are
    normalised independently (1/99 percentiles) and real cameras add their own gain and
    dark level, so SRF(LR-HSI) and the HR-MSI differ by an affine map per band. Two
    numbers per band, fitted by least squares on thousands of pixels, remove that without
    touching the SRF's shape. Returns (gain (c,), offset (c,), psf_sigma).
    """
    pred, candidates = _srf_fit_pixels(hr_msi, lr_hsi, ratio, srf, psf_sigma, psf_sigmas, valid)
    best = None
    for sg, Y in candidates:
        check_cancel(cancel)
        gain, offset, sse = _gain_offset(pred, Y)
        if best is None or sse < best[0]:
            best = (sse, gain, offset, sg)
    _, gain, offset, sg = best
    return gain, offset, sg


def gain_offset_through(hr_msi, lr_hsi, ratio: int, srf, kernel, valid=None) -> tuple:
    """fit_gain_offset through one blur `kernel` (HR pixels; off-centre for a misregistered
    pair): (gain (c,), offset (c,), mean squared misfit per value on the interior LR pixels)."""
    pred, candidates = _srf_fit_pixels(hr_msi, lr_hsi, ratio, srf, None, (), valid, kernel)
    _, Y = next(candidates)
    gain, offset, sse = _gain_offset(pred, Y)
    return gain, offset, sse / max(Y.size, 1)


def _gain_offset(pred, Y) -> tuple:
    """Per band, the gain and offset mapping pred onto Y by least squares (a negative gain is
    not a camera: then gain 1 and the mean difference): (gain, offset, summed squared misfit)."""
    c = pred.shape[1]
    gain, offset, sse = np.ones(c), np.zeros(c), 0.0
    for k in range(c):
        A = np.stack([pred[:, k], np.ones(len(pred))], axis=1)
        (g, o), *_ = np.linalg.lstsq(A, Y[:, k], rcond=None)
        gain[k], offset[k] = (g, o) if g > 0 else (1.0, float(np.mean(Y[:, k] - pred[:, k])))
        sse += float(np.sum((A @ [gain[k], offset[k]] - Y[:, k]) ** 2))
    return gain, offset, sse
