"""What the app's comparison and region-of-interest views compute: per-pixel error maps,
per-band scores, region statistics, region masks, band choice by wavelength and display
levels. Pure numpy; no Qt.

Cubes are rows x cols x bands and may be anything indexable by row slices -- a numpy
array, a read-only `np.memmap`, an `h5py.Dataset` -- so a 2048 x 2048 x 200 result opened
memory-mapped is never read whole: work goes by blocks of pixel rows (`block_rows`; by
default as many rows as make about 8 MB of float64 per cube), all arithmetic in float64,
and the optional cancel token (a `threading.Event`) is checked between blocks.

Conventions shared with `metrics`: SAM in degrees, a pixel where either spectrum has zero
norm has no angle (NaN in the map, skipped by `metrics.sam`), so the NaN-ignoring mean of
the SAM map is `metrics.sam`; PSNR per band is 10 log10(peak^2 / MSE_b) with peak 1 and
a 100 dB cap, so the mean of `per_band_scores(...)["psnr"]` is `metrics.psnr`. Pixels
holding NaN (no data) are NaN in the maps and left out of scores and statistics.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

from ..core import events as ev
from ..core.errors import InputError
from .metrics import PSNR_CAP_DB

# Default block: about this many bytes of float64 per cube. Small blocks are faster here:
# buffers this size are reused by the allocator instead of being page-faulted in afresh.
BLOCK_BYTES = 8 * 2 ** 20
# Pixels percentile_levels looks at, at most, per channel.
LEVEL_SAMPLE = 262_144


def _shape3(cube, what="cube") -> tuple:
    shape = tuple(getattr(cube, "shape", ()))
    if len(shape) != 3 or min(shape) == 0:
        raise InputError(f"the {what} must be rows x cols x bands, got shape {shape}")
    return shape


def _rows_per_block(shape, block_rows) -> int:
    if block_rows is not None:
        if int(block_rows) < 1:
            raise InputError(f"block_rows must be at least 1, got {block_rows}")
        return int(block_rows)
    return max(1, BLOCK_BYTES // (shape[1] * shape[2] * 8))


def _read(cube, r0, r1, c0=None, c1=None) -> np.ndarray:
    from ..io.common import release_pages
    block = cube[r0:r1] if c0 is None else cube[r0:r1, c0:c1]
    out = np.array(block, dtype=np.float64)
    release_pages(cube)          # a memory-mapped cube does not stay resident block after block
    return out


# ------------------------------------------------------------------------------ error maps

def pixel_error_maps(result, reference, block_rows: Optional[int] = None,
                     cancel=None) -> Tuple[np.ndarray, np.ndarray]:
    """(rmse_map, sam_map), both H x W float64.

    rmse_map[i, j] = sqrt(mean over bands of (result - reference)^2); sam_map[i, j] is the
    angle in degrees between the two spectra (cosine clipped to [-1, 1]). NaN where either
    pixel holds a NaN, and in the SAM map where either spectrum is all zero (no angle). The
    argument order does not change either map.
    """
    shape = _shape3(result, "result")
    if tuple(reference.shape) != shape:
        raise InputError(f"result shape {shape} and reference shape {tuple(reference.shape)} differ")
    h, w, c = shape
    step = _rows_per_block(shape, block_rows)
    rmse_map = np.empty((h, w))
    sam_map = np.empty((h, w))
    for r0 in range(0, h, step):
        ev.check_cancel(cancel)
        r1 = min(h, r0 + step)
        a = _read(result, r0, r1)
        b = _read(reference, r0, r1)
        dot = np.einsum("ijk,ijk->ij", a, b)
        na = np.sqrt(np.einsum("ijk,ijk->ij", a, a))
        nb = np.sqrt(np.einsum("ijk,ijk->ij", b, b))
        if a.flags.owndata and a.flags.writeable:
            d = np.subtract(a, b, out=a)       # a is our own copy: reuse it
        else:
            d = a - b
        rmse_map[r0:r1] = np.sqrt(np.einsum("ijk,ijk->ij", d, d) / c)
        den = na * nb
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.clip(dot / den, -1.0, 1.0)
        angle = np.degrees(np.arccos(cos))
        angle[~(den > 0)] = np.nan          # zero spectra and NaN pixels
        sam_map[r0:r1] = angle
    return rmse_map, sam_map


def difference_map(a, b, kind: str = "rmse", block_rows: Optional[int] = None,
                   cancel=None) -> np.ndarray:
    """One H x W map comparing two cubes (e.g. two results): per-pixel RMSE over bands
    (`kind="rmse"`) or spectral angle in degrees (`kind="sam"`); see `pixel_error_maps`."""
    if kind not in ("rmse", "sam"):
        raise InputError(f"unknown difference map kind {kind!r}; allowed: rmse, sam")
    rmse_map, sam_map = pixel_error_maps(a, b, block_rows=block_rows, cancel=cancel)
    return rmse_map if kind == "rmse" else sam_map


def per_band_scores(result, reference, data_range: Optional[float] = None,
                    block_rows: Optional[int] = None, cancel=None) -> dict:
    """Scores of each band: dict of (bands,) float64 arrays

    - "psnr": 10 log10(peak^2 / MSE_b) in dB, peak = `data_range` (None: 1, as metrics.psnr
      for data in [0, 1]); capped at 100 dB (a perfect band scores 100, as in metrics);
    - "rmse": sqrt(MSE_b); "mae": mean |result - reference|;
    - "bias": mean (result - reference) (positive: the result is too bright in that band);
    - "count": the pixels used (both values finite).

    A band without a pixel where both are finite scores NaN. With no NaN in either cube
    and data_range None, mean(scores["psnr"]) == metrics.psnr(reference, result).
    """
    shape = _shape3(result, "result")
    if tuple(reference.shape) != shape:
        raise InputError(f"result shape {shape} and reference shape {tuple(reference.shape)} differ")
    peak = 1.0 if data_range is None else float(data_range)
    if not (peak > 0 and math.isfinite(peak)):
        raise InputError(f"data_range must be a positive number, got {data_range!r}")
    h, w, c = shape
    step = _rows_per_block(shape, block_rows)
    sq = np.zeros(c)
    ab = np.zeros(c)
    sd = np.zeros(c)
    n = np.zeros(c)
    for r0 in range(0, h, step):
        ev.check_cancel(cancel)
        r1 = min(h, r0 + step)
        d = (_read(result, r0, r1) - _read(reference, r0, r1)).reshape(-1, c)
        ok = np.isfinite(d)
        d = np.where(ok, d, 0.0)
        sq += np.einsum("ij,ij->j", d, d)
        ab += np.abs(d).sum(axis=0)
        sd += d.sum(axis=0)
        n += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = sq / n
        psnr = np.where(mse > 0, 10.0 * np.log10(peak * peak / mse), PSNR_CAP_DB)
    psnr = np.minimum(psnr, PSNR_CAP_DB)
    empty = n == 0
    out = {"psnr": psnr, "rmse": np.sqrt(mse), "mae": ab / np.maximum(n, 1),
           "bias": sd / np.maximum(n, 1), "count": n.astype(np.int64)}
    for k in ("psnr", "rmse", "mae", "bias"):
        out[k] = out[k].astype(np.float64)
        out[k][empty] = np.nan
    return out


# --------------------------------------------------------------------------- regions

def rectangle_mask(shape, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
    """Boolean H x W mask of rows r0..r1-1 and cols c0..c1-1 (numpy slice convention; the
    corners may come in either order and are clipped to the image). `shape` is (H, W, ...)."""
    h, w = int(shape[0]), int(shape[1])
    ra, rb = sorted((int(r0), int(r1)))
    ca, cb = sorted((int(c0), int(c1)))
    mask = np.zeros((h, w), dtype=bool)
    mask[max(ra, 0):max(min(rb, h), 0), max(ca, 0):max(min(cb, w), 0)] = True
    return mask


def polygon_mask(shape, vertices_rowcol, offset: float = 0.5) -> np.ndarray:
    """Boolean H x W mask of the pixels whose centre lies inside the polygon.

    `vertices_rowcol` is (n, 2) of (row, col) in image coordinates where pixel (i, j) covers
    [i, i+1) x [j, j+1) -- pyqtgraph's ImageItem convention -- so its centre is
    (i + offset, j + offset) with offset 0.5. Pass offset=0 for coordinates where pixel
    centres sit on integers (matplotlib's imshow). A centre exactly on an edge may fall
    either way. Only the polygon's bounding box is tested.
    """
    from matplotlib.path import Path as MplPath
    h, w = int(shape[0]), int(shape[1])
    v = np.asarray(vertices_rowcol, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 3 or not np.all(np.isfinite(v)):
        raise InputError(f"a polygon needs at least 3 finite (row, col) vertices, got shape {v.shape}")
    mask = np.zeros((h, w), dtype=bool)
    ra = max(0, int(math.floor(v[:, 0].min() - offset)))
    rb = min(h, int(math.ceil(v[:, 0].max() - offset)) + 1)
    ca = max(0, int(math.floor(v[:, 1].min() - offset)))
    cb = min(w, int(math.ceil(v[:, 1].max() - offset)) + 1)
    if ra >= rb or ca >= cb:
        return mask
    rr, cc = np.mgrid[ra:rb, ca:cb]
    centres = np.column_stack([rr.ravel() + offset, cc.ravel() + offset])
    inside = MplPath(v).contains_points(centres)
    mask[ra:rb, ca:cb] = inside.reshape(rb - ra, cb - ca)
    return mask


def _roi_box(shape, mask_or_index):
    """(r0, r1, c0, c1, box mask) for a boolean H x W mask or a (rows, cols) pair of index arrays."""
    h, w = shape[0], shape[1]
    if isinstance(mask_or_index, tuple) and len(mask_or_index) == 2:
        rows = np.asarray(mask_or_index[0], dtype=np.int64).ravel()
        cols = np.asarray(mask_or_index[1], dtype=np.int64).ravel()
        if rows.size != cols.size:
            raise InputError(f"ROI index arrays differ in length ({rows.size} rows, {cols.size} cols)")
        if rows.size and (rows.min() < 0 or rows.max() >= h or cols.min() < 0 or cols.max() >= w):
            raise InputError(f"ROI indices fall outside the {h} x {w} image")
        if rows.size == 0:
            return 0, 0, 0, 0, np.zeros((0, 0), dtype=bool)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        box = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        box[rows - r0, cols - c0] = True
        return int(r0), int(r1), int(c0), int(c1), box
    mask = np.asarray(mask_or_index)
    if mask.dtype != bool or mask.shape != (h, w):
        raise InputError(f"an ROI mask must be a boolean {h} x {w} array, got {mask.dtype} {mask.shape}")
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0, 0, 0, 0, np.zeros((0, 0), dtype=bool)
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return int(r0), int(r1), int(c0), int(c1), mask[r0:r1, c0:c1]


def roi_statistics(cube, mask_or_index, cancel=None,
                   block_rows: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, int]:
    """(mean spectrum, std spectrum, n_pixels) of a region of `cube` (H x W x C).

    The region is a boolean H x W mask or a (rows, cols) pair of index arrays (a pixel
    listed twice counts once). Only the region's bounding box is read, by row blocks.
    Per band, the mean and the population standard deviation (ddof 0, as np.std) are taken
    over the region's pixels that are finite in that band; n_pixels counts the region's
    pixels with at least one finite band (pixels without data are ignored). Bands with no
    finite value are NaN; an empty region gives NaN spectra and 0.
    """
    shape = _shape3(cube)
    c = shape[2]
    r0, r1, c0, c1, box = _roi_box(shape, mask_or_index)
    n = np.zeros(c)
    mean = np.zeros(c)
    m2 = np.zeros(c)
    n_pixels = 0
    step = _rows_per_block((r1 - r0, max(c1 - c0, 1), c), block_rows)
    for a in range(r0, r1, step):
        ev.check_cancel(cancel)
        b = min(r1, a + step)
        sel = box[a - r0:b - r0]
        if not sel.any():
            continue
        px = _read(cube, a, b, c0, c1)[sel]               # (m, C)
        ok = np.isfinite(px)
        n_pixels += int(ok.any(axis=1).sum())
        # Combine this block's count / mean / sum of squared deviations with the running
        # ones (Chan et al.), per band, so large regions keep float64 accuracy.
        nb = ok.sum(axis=0).astype(np.float64)
        pz = np.where(ok, px, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mb = np.where(nb > 0, pz.sum(axis=0) / nb, 0.0)
        m2b = np.sum(np.where(ok, px - mb, 0.0) ** 2, axis=0)
        tot = n + nb
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mb - mean
            mean = np.where(tot > 0, mean + delta * nb / tot, 0.0)
            m2 = np.where(tot > 0, m2 + m2b + delta * delta * n * nb / tot, 0.0)
        n = tot
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(m2 / n)
    mean = np.where(n > 0, mean, np.nan)
    std = np.where(n > 0, std, np.nan)
    return mean, std, n_pixels


# --------------------------------------------------------------------- bands and display

def band_image(cube, band_index: int) -> np.ndarray:
    """Band `band_index` of an H x W x C cube as an H x W float32 array (negative indices
    count from the end, as in numpy)."""
    h, w, c = _shape3(cube)
    b = int(band_index)
    if not -c <= b < c:
        raise InputError(f"band {band_index} does not exist; the cube has {c} bands (0..{c - 1})")
    return np.ascontiguousarray(cube[:, :, b % c], dtype=np.float32)


def nearest_band(wavelengths: Sequence[float], nm: float) -> int:
    """Index of the band whose wavelength is nearest to `nm`.

    Refused (InputError) when `nm` lies outside the cube's range by more than half the
    spacing of the outermost bands: a band there would not show that wavelength.
    """
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    if wl.size == 0 or not np.all(np.isfinite(wl)):
        raise InputError("the cube has no band wavelengths to choose a band by wavelength")
    target = float(nm)
    lo, hi = wl.min(), wl.max()
    order = np.sort(wl)
    slack_lo = 0.5 * (order[1] - order[0]) if wl.size > 1 else 0.0
    slack_hi = 0.5 * (order[-1] - order[-2]) if wl.size > 1 else 0.0
    if not (lo - slack_lo <= target <= hi + slack_hi):
        raise InputError(f"{target:g} nm is outside the cube's wavelength range ({lo:g}-{hi:g} nm)")
    return int(np.argmin(np.abs(wl - target)))


def rgb_by_wavelength(wavelengths: Sequence[float],
                      targets_nm: Sequence[float] = (650.0, 550.0, 450.0)) -> tuple:
    """Band indices nearest to each target wavelength (default red, green, blue); a target
    outside the cube's range is refused with an InputError (see `nearest_band`)."""
    return tuple(nearest_band(wavelengths, t) for t in targets_nm)


def percentile_levels(image, low: float = 1.0, high: float = 99.0, mask=None,
                      sample: int = LEVEL_SAMPLE):
    """Display levels (lo, hi): the `low` and `high` percentiles of an H x W image (floats)
    or of each channel of an H x W x n image ((n,) arrays), ignoring NaN / inf and, when
    `mask` (boolean H x W) is given, the pixels outside it.

    With more than `sample` candidate pixels a regular subsample is used: every k-th one
    in row-major order, k = ceil(count / sample), starting at k // 2 -- deterministic, and
    spread over the whole image. A channel with no finite value gets (0, 1); a flat one
    (hi <= lo) gets hi = lo + 1e-6, so levels are always usable.
    """
    if not (0 <= low < high <= 100):
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise InputError(f"display levels need an H x W or H x W x n image, got shape {img.shape}")
    flat = img.reshape(img.shape[0] * img.shape[1], -1)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != img.shape[:2]:
            raise InputError(f"the mask is {m.shape}, the image {img.shape[:2]}")
        flat = flat[m.ravel()]
    count = flat.shape[0]
    if sample and count > sample:
        k = -(-count // int(sample))
        flat = flat[k // 2::k]
    flat = flat.astype(np.float64)
    los, his = [], []
    for ch in range(flat.shape[1]):
        v = flat[:, ch]
        v = v[np.isfinite(v)]
        if v.size == 0:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = (float(x) for x in np.percentile(v, [low, high]))
            if hi <= lo:
                hi = lo + 1e-6
        los.append(lo)
        his.append(hi)
    if img.ndim == 2:
        return los[0], his[0]
    return np.array(los), np.array(his)
