"""Quality without ground truth (real-world mode, SPEC 3, issue 5).

Three figures say how far a fused HR-HSI can be trusted when no truth exists:

- LR consistency: the result degraded back (blurred with the PSF, area
  downsampled by r) against the LR-HSI it came from. A result that invents
  spatial detail or shifts the scene scores low.
- MSI consistency: the SRF (with its offset, when estimated) applied to the
  result against the HR-MSI. A result that ignores the HR-MSI scores low.
  With a wrong SRF this figure is low even for a good result: it checks the
  pair of (result, SRF) against the camera.
- Reduced resolution (Wald's protocol): both inputs degraded by r, fused,
  and the output scored against the original LR-HSI with every metric.

All PSNRs are means over bands of 10 log10(1 / MSE_band) (data range 1) and
SAMs mean spectral angles in degrees, from `metrics` (reference first).
`bicubic_consistency` gives the same figures for the bicubic baseline, to
show beside the fusion's.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..sensors.degradation import as_cube
from ..core.errors import InputError

# quality_warnings thresholds (dB / degrees). An SRF fit below 25 dB means the
# SRF-made training input differs from the real HR-MSI by more than ~5% RMS:
# on the Urban/IKONOS scenario the preset SRF fits at 10-17 dB and the fusion
# lands far below bicubic, while the estimated SRF fits at 37-42 dB. LR
# consistency: the true HR-HSI reaches ~35 dB against a 35 dB-noise LR-HSI and
# bicubic upsampling ~30 dB; below 25 dB or above 10 degrees SAM the result no
# longer reproduces its own low-resolution input. The MSI figures use the same
# bounds.
DEFAULT_THRESHOLDS = {
    "srf_fit_psnr_db": 25.0,
    "lr_psnr_db": 25.0,
    "lr_sam_deg": 10.0,
    "msi_psnr_db": 25.0,
    "msi_sam_deg": 10.0,
}


def _degrade(cube: np.ndarray, ratio: int, psf, boundary: str = "zero") -> np.ndarray:
    """Blur with `psf` ('same'; None = no blur), then area-downsample by `ratio`: the sensor model
    of sensors/spatial.py. `boundary` "zero": zeros past the frame (a pair simulated from the
    image); "free" (spatial's "edge" rule): the sensor saw past the frame, so the blur sees the
    edge replicated -- with zeros there a real pair's result
    degraded back darkens along the border and every outer LR pixel reads as a misfit."""
    from ..sensors.spatial import SpatialModel
    x = np.asarray(cube, dtype=np.float32)
    if psf is None or np.asarray(psf).size <= 1:
        psf = None                       # a 1 x 1 kernel is no blur here (not a scaling)
    return SpatialModel(psf, int(ratio), "edge" if boundary == "free" else "zero").forward(x)


def _figures(reference: np.ndarray, estimate: np.ndarray, with_sam: bool = True, cancel=None) -> dict:
    from . import metrics
    out = {"PSNR": float(metrics.psnr(reference, estimate, cancel))}
    if with_sam:
        out["SAM"] = float(metrics.sam(reference, estimate, cancel))
    return out


def lr_consistency(result, lr_hsi, ratio: int, psf, cancel=None) -> dict:
    """dict(PSNR, SAM) of the result blurred by `psf` and area-downsampled by `ratio`
    against the LR-HSI. result (H,W,C) with H = ratio*h, W = ratio*w; psf None = no blur."""
    res = as_cube(result, "the result")
    lr = as_cube(lr_hsi, "the LR-HSI")
    r = int(ratio)
    if res.shape != (lr.shape[0] * r, lr.shape[1] * r, lr.shape[2]):
        raise InputError(f"the result {res.shape} is not the LR-HSI {lr.shape} upsampled by {r}")
    return _figures(lr, _degrade(res, r, psf), cancel=cancel)


def msi_consistency(result, hr_msi, srf, offset=None, cancel=None) -> dict:
    """dict(PSNR[, SAM]) of SRF(result) (+ offset per MSI band) against the HR-MSI.
    SAM only when the HR-MSI has 2 bands or more (an angle needs a spectrum)."""
    res = as_cube(result, "the result")
    msi = as_cube(hr_msi, "the HR-MSI")
    srf = np.asarray(srf, dtype=np.float64)
    if srf.ndim != 2 or srf.shape != (msi.shape[2], res.shape[2]):
        raise InputError(f"the SRF is {srf.shape} but the HR-MSI has {msi.shape[2]} bands and the "
                         f"result {res.shape[2]}")
    if res.shape[:2] != msi.shape[:2]:
        raise InputError(f"the result {res.shape} and the HR-MSI {msi.shape} differ in size")
    pred = res.astype(np.float64) @ srf.T
    if offset is not None:
        pred = pred + np.asarray(offset, dtype=np.float64).reshape(1, 1, -1)
    return _figures(msi, pred.astype(np.float32), with_sam=msi.shape[2] >= 2, cancel=cancel)


def crop_to_multiple(cube, ratio: int) -> np.ndarray:
    """The top-left part of `cube` whose rows and columns are multiples of `ratio`."""
    c = as_cube(cube, "the cube")
    r = int(ratio)
    return c[:c.shape[0] - c.shape[0] % r, :c.shape[1] - c.shape[1] % r]


def reduced_resolution_inputs(hr_msi, lr_hsi, ratio: int, psf, cancel=None):
    """Wald's protocol: both inputs degraded by `ratio` with the same PSF.

    Returns (hr_msi_reduced (h', w', c), lr_hsi_reduced (h'/r, w'/r, C), lr_reference
    (h', w', C)). When h or w is not a multiple of r, the LR-HSI is cropped (top-left)
    to the largest multiple, h' = r*floor(h/r), w' likewise, and the HR-MSI to
    r*h' x r*w'; `lr_reference` is that cropped LR-HSI, the truth the reduced fusion
    is scored against (reduced_resolution_score). Refused when h or w < r.
    """
    msi = as_cube(hr_msi, "the HR-MSI")
    lr = as_cube(lr_hsi, "the LR-HSI")
    r = int(ratio)
    h, w = lr.shape[:2]
    if msi.shape[0] != r * h or msi.shape[1] != r * w:
        raise InputError(f"HR-MSI {msi.shape} and LR-HSI {lr.shape} are not {r}x apart")
    if h < r or w < r:
        raise InputError(f"the LR-HSI {lr.shape} is too small for the reduced-resolution check at "
                         f"ratio {r} (needs at least {r} x {r} pixels)")
    lr_ref = crop_to_multiple(lr, r)
    hp, wp = lr_ref.shape[:2]
    msi_c = msi[:hp * r, :wp * r]
    return (_degrade_by_chunks(msi_c, r, psf, cancel), _degrade_by_chunks(lr_ref, r, psf, cancel),
            np.asarray(lr_ref, dtype=np.float32))


def _degrade_by_chunks(cube, ratio: int, psf, cancel=None, bands: int = 16) -> np.ndarray:
    """_degrade a few bands at a time, the cancel token checked between them (a big LR-HSI
    takes seconds)."""
    from ..core import events as ev
    x = np.asarray(cube)
    if x.ndim == 2 or x.shape[2] <= bands:
        ev.check_cancel(cancel)
        return _degrade(x, ratio, psf)
    parts = []
    for b0 in range(0, x.shape[2], bands):
        ev.check_cancel(cancel)
        parts.append(_degrade(x[:, :, b0:b0 + bands], ratio, psf))
    return np.concatenate(parts, axis=2)


def reduced_resolution_score(fused_reduced, lr_hsi, ratio: int, convention: str = "spec", cancel=None) -> dict:
    """metrics.compute_all of the reduced-resolution fusion against the LR-HSI (cropped
    top-left to the fused size when needed, as reduced_resolution_inputs does)."""
    from . import metrics
    fused = as_cube(fused_reduced, "the reduced-resolution result")
    lr = as_cube(lr_hsi, "the LR-HSI")
    if lr.shape[0] < fused.shape[0] or lr.shape[1] < fused.shape[1] or lr.shape[2] != fused.shape[2]:
        raise InputError(f"the reduced-resolution result {fused.shape} does not fit the LR-HSI {lr.shape}")
    ref = lr[:fused.shape[0], :fused.shape[1]]
    return metrics.compute_all(ref, fused, int(ratio), convention=convention, cancel=cancel)


def bicubic_consistency(lr_hsi, hr_msi, srf, ratio: int, psf, offset=None, cancel=None) -> dict:
    """The consistency figures of bicubic upsampling of the LR-HSI (the baseline):
    dict(lr=lr_consistency(...), msi=msi_consistency(...))."""
    from ..sensors.degradation import bicubic_upsample
    up = np.asarray(bicubic_upsample(np.asarray(lr_hsi, dtype=np.float32), int(ratio)), dtype=np.float32)
    return {"lr": lr_consistency(up, lr_hsi, ratio, psf, cancel=cancel),
            "msi": msi_consistency(up, hr_msi, srf, offset=offset, cancel=cancel)}


def _get(fig, key):
    if fig is None:
        return None
    v = fig.get(key) if isinstance(fig, dict) else None
    return None if v is None or not math.isfinite(float(v)) else float(v)


def quality_warnings(srf_fit_psnr: Optional[float], lr_consistency: Optional[dict] = None,
                     msi_consistency: Optional[dict] = None, thresholds: Optional[dict] = None) -> list:
    """Sentences for the user when a figure is below its threshold (DEFAULT_THRESHOLDS,
    overridable key by key). Any argument may be None (not measured)."""
    t = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    out = []
    if srf_fit_psnr is not None and math.isfinite(float(srf_fit_psnr)) \
            and srf_fit_psnr < t["srf_fit_psnr_db"]:
        out.append(f"The SRF explains the HR-MSI poorly (fit {srf_fit_psnr:.1f} dB PSNR, below "
                   f"{t['srf_fit_psnr_db']:g} dB); the result may be a recoloured MSI. Try "
                   f"srf_source: estimate or give a measured SRF file.")
    p, s = _get(lr_consistency, "PSNR"), _get(lr_consistency, "SAM")
    if (p is not None and p < t["lr_psnr_db"]) or (s is not None and s > t["lr_sam_deg"]):
        out.append(f"The result does not reproduce the LR-HSI when degraded back (PSNR "
                   f"{p if p is not None else float('nan'):.1f} dB, SAM "
                   f"{s if s is not None else float('nan'):.1f} deg; expected >= {t['lr_psnr_db']:g} dB "
                   f"and <= {t['lr_sam_deg']:g} deg): its spectra or its blur/ratio may be wrong.")
    p, s = _get(msi_consistency, "PSNR"), _get(msi_consistency, "SAM")
    if (p is not None and p < t["msi_psnr_db"]) or (s is not None and s > t["msi_sam_deg"]):
        sam_txt = f", SAM {s:.1f} deg" if s is not None else ""
        out.append(f"The result seen through the SRF does not match the HR-MSI (PSNR "
                   f"{p if p is not None else float('nan'):.1f} dB{sam_txt}; expected >= "
                   f"{t['msi_psnr_db']:g} dB): the SRF in use may not describe the MSI camera.")
    return out


# ------------------------------------------------------------------ band-chunked figures
STATS_BLOCK_BYTES = 4 << 20     # one band's rows in float64 per step of _PairStats.add


class _PairStats:
    """PSNR (mean of per-band PSNR) and SAM accumulated band chunk by band chunk, equal to
    metrics.psnr / metrics.sam on the whole cubes, without holding either cube whole."""

    def __init__(self, rows: int, cols: int, mask=None, pixel_error: bool = True):
        self.mask = None if mask is None or np.all(mask) else np.asarray(mask, dtype=bool)
        self.band_psnr: list = []
        # per-pixel squared error summed over bands, for pixel_rms (the LR error map); the HR
        # figures need none of it (32 MB at 2048^2)
        self.sq = np.zeros((rows, cols)) if pixel_error else None
        self.dot = np.zeros((rows, cols))
        self.nx = np.zeros((rows, cols))
        self.ny = np.zeros((rows, cols))

    def add(self, reference: np.ndarray, estimate: np.ndarray) -> None:
        """Bands of `reference` and `estimate` (rows x cols x n, any float dtype), in float64 a
        block of rows at a time (whole float64 bands were ~0.2 GB of temporaries at 2048^2)."""
        from .metrics import PSNR_CAP_DB
        rows, cols = reference.shape[:2]
        step = max(1, STATS_BLOCK_BYTES // (8 * cols))
        count = rows * cols if self.mask is None else int(self.mask.sum())
        for b in range(reference.shape[2]):
            total = 0.0
            for i in range(0, rows, step):
                x = np.asarray(reference[i:i + step, :, b], dtype=np.float64)
                y = np.asarray(estimate[i:i + step, :, b], dtype=np.float64)
                d2 = (x - y) ** 2
                if self.sq is not None:
                    self.sq[i:i + step] += d2
                total += float(np.sum(d2 if self.mask is None else d2[self.mask[i:i + step]]))
                self.dot[i:i + step] += x * y
                self.nx[i:i + step] += x * x
                self.ny[i:i + step] += y * y
            mse = total / count if count else float("nan")
            self.band_psnr.append(PSNR_CAP_DB if mse == 0.0 else min(PSNR_CAP_DB, 10.0 * math.log10(1.0 / mse)))

    def pixel_rms(self) -> np.ndarray:
        """rows x cols float32: the RMS error over bands at each pixel (NaN where masked out)."""
        out = np.sqrt(self.sq / max(1, len(self.band_psnr))).astype(np.float32)
        if self.mask is not None:
            out[~self.mask] = np.nan
        return out

    def figures(self, with_sam: bool = True) -> dict:
        out = {"PSNR": float(np.mean(self.band_psnr))}
        if with_sam:
            # a block of rows at a time: whole, its temporaries were ~5 planes (160 MB at 2048^2)
            rows, cols = self.nx.shape
            step = max(1, STATS_BLOCK_BYTES // (8 * cols))
            total, count = 0.0, 0
            for i in range(0, rows, step):
                nx, ny = np.sqrt(self.nx[i:i + step]), np.sqrt(self.ny[i:i + step])
                valid = (nx > 0) & (ny > 0)
                if self.mask is not None:
                    valid &= self.mask[i:i + step]
                cos = self.dot[i:i + step][valid] / (nx[valid] * ny[valid])
                total += float(np.sum(np.arccos(np.clip(cos, -1.0, 1.0))))
                count += cos.size
            out["SAM"] = float(np.degrees(total / count)) if count else float("nan")
        return out


def band_chunk_size(pixels: int, budget_bytes: int = 32 << 20) -> int:
    """Bands per chunk so that one float32 HR chunk stays within `budget_bytes`."""
    return max(1, int(budget_bytes // (4 * max(1, pixels))))


def consistency_from_latent(alle, endmembers, lr_hsi, hr_msi, srf, ratio: int, psf, offset=None,
                            band_chunk: Optional[int] = None, cancel=None, value_range=(0.0, 1.0),
                            lr_valid=None, hr_valid=None, boundary: str = "zero") -> dict:
    """LR and MSI consistency of the result clip(ALLE x E) and of bicubic upsampling, band chunk
    by band chunk: the same figures as lr_consistency / msi_consistency / bicubic_consistency,
    but memory stays a few HR bands, not the whole HR-HSI (a 2048 x 2048 x 200 result is 3.2 GB).

    Returns {"lr_consistency", "msi_consistency", "bicubic": {"lr", "msi"}}.
    """
    from .latent_prediction import predict_from_latents
    alle = np.asarray(alle, dtype=np.float32)
    E = np.asarray(endmembers, dtype=np.float32)
    H, W, K = alle.shape
    C = E.shape[1]
    # both sensors seen through the latent maps (quality/latent_prediction.py); else, when the
    # clip changes too much (or the maps hold NaN), the bands are made a chunk at a time
    latent = predict_from_latents(alle, E, srf, value_range, int(ratio),
                                  lambda cube: _degrade(cube, int(ratio), psf, boundary), cancel=cancel)
    flat = alle.reshape(-1, K)

    def fused_bands(b0, b1):
        return np.clip(flat @ E[:, b0:b1], value_range[0], value_range[1]).reshape(H, W, b1 - b0)

    return consistency_by_bands(fused_bands, (H, W, C), lr_hsi, hr_msi, srf, ratio, psf, offset=offset,
                                band_chunk=band_chunk, cancel=cancel,
                                what=f"latent maps {alle.shape}, endmembers {E.shape}",
                                lr_valid=lr_valid, hr_valid=hr_valid, boundary=boundary, latent=latent)


def consistency_by_bands(fused_bands, shape, lr_hsi, hr_msi, srf, ratio: int, psf, offset=None,
                         band_chunk: Optional[int] = None, cancel=None, what: str = "",
                         lr_valid=None, hr_valid=None, boundary: str = "zero", latent=None) -> dict:
    """The figures of consistency_from_latent for a result of `shape` (H, W, C) that
    `fused_bands(b0, b1)` hands out a band chunk at a time (H x W x (b1 - b0)): from latents,
    or read back from a result streamed to its file. `lr_valid` (h x w) / `hr_valid` (H x W):
    the pixels the LR / MSI figures are taken over (nodata masks; None: all). `boundary`: how
    the LR sensor's blur met the frame (see _degrade), the pair's own rule. `latent`: a
    latent_prediction.LatentPrediction of the result (then `fused_bands` is not called; its
    `msi` is consumed: set to None once scored, so its memory goes)."""
    from ..core import events as ev
    from ..sensors.degradation import bicubic_upsample
    from .bicubic_lr import BicubicDegraded
    lr = as_cube(lr_hsi, "the LR-HSI")
    msi = as_cube(hr_msi, "the HR-MSI")
    r = int(ratio)
    H, W, C = (int(v) for v in shape)
    if lr.shape != (H // r, W // r, C) or H % r or W % r or msi.shape[:2] != (H, W):
        raise InputError(f"{what or f'the result {tuple(shape)}'}, LR-HSI {lr.shape} and "
                         f"HR-MSI {msi.shape} do not fit together at ratio {r}")
    srf = np.asarray(srf, dtype=np.float64)
    if srf.shape != (msi.shape[2], C):
        raise InputError(f"the SRF is {srf.shape} but the HR-MSI has {msi.shape[2]} bands and the "
                         f"result {C}")
    # a chunk is HR bands made (or read) at once; with the latent prediction only LR bands are
    step = int(band_chunk or band_chunk_size(H * W if latent is None else lr.shape[0] * lr.shape[1]))
    lr_stats = {"fusion": _PairStats(*lr.shape[:2], mask=lr_valid),
                "bicubic": _PairStats(*lr.shape[:2], mask=lr_valid)}
    # bicubic upsampling is linear (and not clipped here): its MSI prediction is the upsampled
    # LR-HSI seen through the SRF, c bands upsampled instead of C
    lr_through_srf = through_srf(lr, srf)
    fusion_msi = np.zeros(msi.shape, dtype=np.float64) if latent is None else latent.msi
    # the bicubic baseline degraded back, computed on the LR grid (quality/bicubic_lr.py)
    kernel = None if psf is None else np.asarray(psf)
    bicubic_lr = BicubicDegraded(r, 0 if kernel is None or kernel.size <= 1 else max(kernel.shape) // 2,
                                 lambda cube: _degrade(cube, r, psf, boundary))
    for b0 in range(0, C, step):
        ev.check_cancel(cancel)
        b1 = min(C, b0 + step)
        if latent is not None:
            lr_stats["fusion"].add(lr[:, :, b0:b1], latent.lr(b0, b1))
        else:
            fused = np.asarray(fused_bands(b0, b1), dtype=np.float32)
            if hr_valid is not None:
                fused = np.nan_to_num(fused)        # NaN where the result holds no data
            lr_stats["fusion"].add(lr[:, :, b0:b1], _degrade(fused, r, psf, boundary))
            fusion_msi += (fused.reshape(-1, b1 - b0) @ srf[:, b0:b1].T.astype(np.float32)).reshape(
                H, W, -1)
            del fused
        ev.check_cancel(cancel)
        lr_stats["bicubic"].add(lr[:, :, b0:b1], bicubic_lr(lr[:, :, b0:b1]))
    with_sam = msi.shape[2] >= 2
    out = {}
    offset = None if offset is None else np.asarray(offset, dtype=np.float64).reshape(-1)
    if latent is not None:
        latent.msi = None           # held by fusion_msi alone, so it goes once scored
    for name in ("fusion", "bicubic"):
        ev.check_cancel(cancel)
        stats = _PairStats(H, W, mask=hr_valid, pixel_error=False)
        if name == "fusion":
            # the fusion's prediction is H x W x c float64 (134 MB at 2048^2 x 4): dropped here
            pred, fusion_msi = fusion_msi, None
            if offset is not None:
                pred += offset.reshape(1, 1, -1)
            stats.add(msi, pred)
            del pred
        else:
            # bicubic's a band at a time: the whole upsampled prediction and its product's
            # temporary were 2 x 134 MB at 2048^2 x 4
            for b in range(msi.shape[2]):
                band = bicubic_upsample(lr_through_srf[:, :, b], r)
                if offset is not None:
                    band += offset[b]
                stats.add(msi[:, :, b:b + 1], band[:, :, None])
                del band
        out[name] = {"lr": lr_stats[name].figures(), "msi": stats.figures(with_sam=with_sam)}
    return {"lr_consistency": out["fusion"]["lr"], "msi_consistency": out["fusion"]["msi"],
            "bicubic": out["bicubic"], "_lr_error_map": lr_stats["fusion"].pixel_rms()}


def through_srf(cube, srf, block_bytes: int = 32 << 20) -> np.ndarray:
    """cube (h x w x C) seen through `srf` (c x C), h x w x c float64: the product in float64 a
    block of pixels at a time (the whole LR-HSI in float64 was 420 MB at 512 x 512 x 200)."""
    srf = np.asarray(srf, dtype=np.float64)
    flat = np.asarray(cube).reshape(-1, cube.shape[-1])
    out = np.empty((flat.shape[0], srf.shape[0]), dtype=np.float64)
    step = max(1, block_bytes // (8 * flat.shape[1]))
    for i in range(0, flat.shape[0], step):
        np.matmul(flat[i:i + step].astype(np.float64), srf.T, out=out[i:i + step])
    return out.reshape(*cube.shape[:-1], srf.shape[0])


def pair_misfit(hr_msi, lr_hsi, ratio: int, psf, srf, offset=None, boundary: str = "zero") -> np.ndarray:
    """h x w float32: at each LR pixel, the RMS over MSI bands of the HR-MSI brought to the LR
    grid (blur `psf`, area-downsample) minus the LR-HSI seen through the SRF (+ offset): where
    the two images disagree (moved objects, clouds, shadows between the two acquisitions, a
    misregistration), whatever any result does. `boundary` "free": the blur sees past the
    frame (edges replicated) instead of zeros."""
    msi = as_cube(hr_msi, "the HR-MSI").astype(np.float32, copy=False)
    lr = as_cube(lr_hsi, "the LR-HSI")
    srf = np.asarray(srf, dtype=np.float64)
    msi_lr = _degrade(msi, ratio, psf, boundary)
    pred = through_srf(lr, srf).reshape(-1, srf.shape[0])
    if offset is not None:
        pred += np.asarray(offset, dtype=np.float64).reshape(1, -1)
    diff = msi_lr.reshape(-1, msi.shape[2]).astype(np.float64) - pred
    return np.sqrt(np.mean(diff ** 2, axis=1)).reshape(lr.shape[:2]).astype(np.float32)
