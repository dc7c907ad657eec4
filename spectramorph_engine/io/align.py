"""Bringing a georeferenced pair onto nested grids (issue 22): the geometry and the resampling.

Two instruments rarely deliver nested grids: the LR-HSI's origin falls between HR pixels, the
footprints differ, the CRSs may too. `plan_alignment` reads both `GeoInfo`s and says what to do:
the integer ratio (from the pixel sizes), the HR-MSI's window (whole LR pixels of the overlap;
the HR-MSI is only cropped, never resampled, so the result's pixels are the user's map pixels)
and the LR grid nested in it. `crop_hr` and `lr_on_grid` apply the plan; the LR-HSI is warped
with rasterio (GDAL) only when its pixels do not already fall on the nested grid.

The nested grid's phase (which HR pixel boundaries the LR pixels start on) is the one nearest
the LR file's own grid, so the LR-HSI moves by at most half an HR pixel: a sub-pixel shift, made
by Lanczos or cubic interpolation (`resampling_for`), which keeps the sensor's integration (its
pixel size is not changed unless the sizes differ by a few per cent, below). A misregistration
measured on the pair is corrected by planning again with the LR-HSI's georeferencing moved
(run/alignment.py): its whole HR pixels move the HR-MSI's crop, only the rest is resampled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import InputError
from .georef import GeoInfo, _same_crs, describe_extent

__all__ = ["GridPlan", "plan_alignment", "crop_hr", "lr_on_grid", "resampling_for", "RATIO_TOLERANCE"]

# The LR pixel may be up to this far (relative, per axis) from ratio x the HR pixel: it is then
# resampled to exactly ratio x (a small resize, e.g. after a change of CRS). Further off, the
# pair is not a whole-number ratio apart and resampling the LR-HSI would invent or average away
# what its sensor integrated: refused, for the user to decide.
RATIO_TOLERANCE = 0.05
# Below this (LR pixels, metres relative) a grid is taken as already nested: cropped, not warped.
NESTED_EPS = 1e-3
# The kernel that resamples the LR-HSI ("auto": by the move, below; or a GDAL name). The LR-HSI
# is sampled coarsely (aliased): a small move by a smooth kernel takes away its finest detail,
# which the fusion then reads as a blur mismatch, so small moves use Lanczos (windowed sinc);
# a move near half a pixel, or a change of CRS (every fraction at once), rings with Lanczos
# and uses cubic. Measured by `python -m bench align` (Urban, bench/README.md "Alignment"):
# a 0.1 LR pixel move costs 0.66 dB with lanczos, 1.19 with cubic, 3.3 with bilinear; moving
# the LR-HSI by about half a pixel, lanczos came out 3.3 dB under cubic.
RESAMPLING = "auto"
LANCZOS_MAX_LR_PX = 0.2          # auto: Lanczos for moves up to this far from the LR file's pixels


def resampling_for(plan: "GridPlan") -> str:
    """The GDAL kernel that moves the LR-HSI onto the plan's nested grid."""
    if RESAMPLING != "auto":
        return RESAMPLING
    if plan.crs_change is not None or max(map(abs, plan.size_change)) > NESTED_EPS:
        return "cubic"
    return "lanczos" if max(map(abs, plan.shift_lr_px)) <= LANCZOS_MAX_LR_PX else "cubic"
# A coordinate system for pairs whose files name none (same ground, same unknown CRS): GDAL needs
# one to warp; identical on both sides, it only carries the affine maps.
_LOCAL_WKT = 'LOCAL_CS["unnamed",UNIT["metre",1]]'


@dataclass(frozen=True)
class GridPlan:
    ratio: int
    hr_window: Tuple[int, int, int, int]      # (row0, col0, rows, cols) of the HR-MSI kept
    lr_shape: Tuple[int, int]                 # rows, cols of the nested LR grid
    lr_transform: Tuple[float, ...]           # its affine, in the HR-MSI's CRS
    lr_window: Tuple[int, int, int, int]      # (row0, col0, rows, cols): LR-file pixels it covers
    shift_lr_px: Tuple[float, float]          # nested grid vs the LR file's (cols, rows), LR pixels
    shift_m: Tuple[float, float]              # the same in map units (east, north)
    size_change: Tuple[float, float]          # LR pixel size: nested / file's - 1 (x, y)
    crs_change: Optional[str]                 # "EPSG:4326 -> EPSG:32633" when reprojected
    warp: bool                                # False: the LR grid is nested already (cropped only)
    hr_geo: GeoInfo                           # the cropped HR-MSI's georeferencing
    lr_geo: GeoInfo                           # the nested LR grid's (nodata NaN)


def _affine(t):
    from rasterio.transform import Affine
    return Affine(*t)


def _crs(geo: GeoInfo, other: GeoInfo):
    from rasterio.crs import CRS
    return CRS.from_wkt(geo.crs or other.crs or _LOCAL_WKT)


def _apply(t, cols, rows):
    a, b, c, d, e, f = t
    cols, rows = np.asarray(cols, float), np.asarray(rows, float)
    return a * cols + b * rows + c, d * cols + e * rows + f


def _invert(t):
    return tuple(~_affine(t))[:6]


def _pixels_in(src: GeoInfo, dst: GeoInfo, cols, rows):
    """Pixel coordinates (cols, rows) of image `src` -> pixel coordinates of image `dst` (through
    map coordinates, reprojected when the CRSs differ)."""
    xs, ys = _apply(src.transform, cols, rows)
    if src.crs and dst.crs and not _same_crs(src.crs, dst.crs):
        from rasterio.warp import transform
        xs, ys = transform(_crs(src, dst), _crs(dst, src), list(np.ravel(xs)), list(np.ravel(ys)))
    u, v = _apply(_invert(dst.transform), xs, ys)
    return np.asarray(u, float), np.asarray(v, float)


def _outline(h: int, w: int, n: int = 33):
    """Points along the edges of an h x w pixel grid (corners included): its footprint, densified
    so that a change of CRS bends it faithfully."""
    t = np.linspace(0.0, 1.0, n)
    cols = np.concatenate([t * w, np.full(n, float(w)), t[::-1] * w, np.zeros(n)])
    rows = np.concatenate([np.zeros(n), t * h, np.full(n, float(h)), t[::-1] * h])
    return cols, rows


def plan_alignment(hr_geo: GeoInfo, hr_shape, hr_what: str, lr_geo: GeoInfo, lr_shape, lr_what: str) -> GridPlan:
    """The nested grids of a georeferenced pair (see the module doc). InputError (one sentence,
    naming both files) when the pixel sizes are not a whole number (>= 2) apart within
    RATIO_TOLERANCE, or when the footprints share less than 2 x 2 LR pixels."""
    H, W = int(hr_shape[0]), int(hr_shape[1])
    h, w = int(lr_shape[0]), int(lr_shape[1])
    # The LR pixel's size in HR pixels, at the LR image's centre (where a CRS change distorts least)
    u, v = _pixels_in(lr_geo, hr_geo, [w / 2, w / 2 + 1, w / 2], [h / 2, h / 2, h / 2 + 1])
    ratio_x, ratio_y = math.hypot(u[1] - u[0], v[1] - v[0]), math.hypot(u[2] - u[0], v[2] - v[0])
    r = int(round((ratio_x + ratio_y) / 2))
    hx, hy = hr_geo.pixel_size()
    lx, ly = lr_geo.pixel_size()
    if r < 2 or abs(ratio_x - r) > RATIO_TOLERANCE * r or abs(ratio_y - r) > RATIO_TOLERANCE * r:
        raise InputError(f"{lr_what} has {lx:.6g} x {ly:.6g} pixels and {hr_what} {hx:.6g} x {hy:.6g} "
                         f"({ratio_x:.3g} x {ratio_y:.3g} HR pixels per LR pixel): the LR pixel must be a whole "
                         f"number (>= 2) of HR pixels, to within {100 * RATIO_TOLERANCE:.0f}%")
    # Phase of the nested grid: the HR pixel boundary nearest the LR file's origin
    ou, ov = _pixels_in(lr_geo, hr_geo, [0.0], [0.0])
    pc, pr = int(round(ou[0])) % r, int(round(ov[0])) % r
    cu, cv = _pixels_in(lr_geo, hr_geo, *_outline(h, w))
    tol = 0.5          # HR pixels: an LR pixel may reach this far past the footprint (rounding the phase)

    def span(lo, hi, size, phase):
        first = phase + r * math.ceil((max(lo - tol, 0.0) - phase) / r - 1e-9)
        last = phase + r * math.floor((min(hi + tol, float(size)) - phase) / r + 1e-9)
        return first, max(0, (last - first) // r)
    c0, nw = span(cu.min(), cu.max(), W, pc)
    r0, nh = span(cv.min(), cv.max(), H, pr)
    if nw < 2 or nh < 2:
        raise InputError(f"{hr_what} and {lr_what} share less than 2 x 2 LR pixels of ground: {hr_what} covers "
                         f"{describe_extent(hr_geo, hr_shape)}, {lr_what} covers {describe_extent(lr_geo, lr_shape)}")
    from rasterio.transform import Affine
    hr_t = _affine(hr_geo.transform) @ Affine.translation(c0, r0)
    lr_t = hr_t @ Affine.scale(r)
    # Where the nested grid's origin falls in the LR file's pixels: its fraction is the shift
    j, i = _pixels_in(hr_geo, lr_geo, [c0, c0 + r * nw], [r0, r0 + r * nh])
    fj, fi = float(j[0] - round(j[0])), float(i[0] - round(i[0]))
    la, lb, _lc, ld, le, _lf = lr_geo.transform
    shift_m = (la * fj + lb * fi, ld * fj + le * fi)
    size_change = (r / ratio_x - 1.0, r / ratio_y - 1.0)
    crs_change = None
    if hr_geo.crs and lr_geo.crs and not _same_crs(hr_geo.crs, lr_geo.crs):
        crs_change = f"{lr_geo.crs_name or 'the LR-HSI CRS'} -> {hr_geo.crs_name or 'the HR-MSI CRS'}"
    rotated = abs(lb) + abs(ld) > NESTED_EPS * (abs(la) + abs(le)) or \
        abs(hr_geo.transform[1]) + abs(hr_geo.transform[3]) > NESTED_EPS * (abs(hr_geo.transform[0]) + abs(hr_geo.transform[4]))
    warp = (crs_change is not None or rotated or max(abs(fj), abs(fi)) > NESTED_EPS
            or max(map(abs, size_change)) > NESTED_EPS)
    # the LR file's pixels the nested grid covers (its outline there, within the file; a whole
    # pixel block when the grids differ only by a sub-pixel move)
    oj, oi = _pixels_in(hr_geo, lr_geo, *(np.asarray(v) * r + off for v, off in
                                              zip(_outline(nh, nw), (c0, r0))))
    i0, j0 = max(0, int(math.floor(oi.min() + 0.5))), max(0, int(math.floor(oj.min() + 0.5)))
    i1, j1 = min(h, int(math.floor(oi.max() + 0.5))), min(w, int(math.floor(oj.max() + 0.5)))
    lr_window = (i0, j0, max(0, i1 - i0), max(0, j1 - j0))
    return GridPlan(ratio=r, hr_window=(r0, c0, nh * r, nw * r), lr_shape=(nh, nw), lr_transform=tuple(lr_t)[:6],
                    lr_window=lr_window, shift_lr_px=(fj, fi), shift_m=shift_m, size_change=size_change,
                    crs_change=crs_change, warp=warp,
                    hr_geo=GeoInfo(hr_geo.crs, tuple(hr_t)[:6], hr_geo.nodata, hr_geo.crs_name),
                    lr_geo=GeoInfo(hr_geo.crs, tuple(lr_t)[:6], float("nan"), hr_geo.crs_name))


def crop_hr(hr, plan: GridPlan):
    """The HR-MSI's window of the plan (a view of `hr`)."""
    r0, c0, nh, nw = plan.hr_window
    return hr[r0:r0 + nh, c0:c0 + nw]


def lr_on_grid(lr, lr_geo: GeoInfo, hr_geo: GeoInfo, plan: GridPlan, nodata: Optional[float] = None) -> np.ndarray:
    """The LR-HSI (h x w x C) on the plan's nested grid, float32: cropped when the grids nest
    already, else warped (`resampling_for`) with rasterio. Nested pixels outside the LR-HSI's
    footprint, and those made of its nodata pixels (`nodata`, or NaN), are NaN."""
    nh, nw = plan.lr_shape
    if not plan.warp:
        i0, j0, _, _ = plan.lr_window
        return np.asarray(lr[i0:i0 + nh, j0:j0 + nw], dtype=np.float32)
    import warnings
    from rasterio.warp import Resampling, reproject
    src = np.ascontiguousarray(np.moveaxis(np.asarray(lr, dtype=np.float32), 2, 0))
    dst = np.full((src.shape[0], nh, nw), np.nan, dtype=np.float32)
    src_nodata = float(nodata) if nodata is not None and np.isfinite(nodata) else np.nan
    if not np.isnan(src_nodata) and np.isnan(src).any():
        src = np.where(np.isnan(src), np.float32(src_nodata), src)   # one nodata value for GDAL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # NotGeoreferencedWarning for local CRSs
        reproject(src, dst, src_transform=_affine(lr_geo.transform), src_crs=_crs(lr_geo, hr_geo),
                  dst_transform=_affine(plan.lr_transform),
                  dst_crs=_crs(hr_geo, lr_geo), src_nodata=src_nodata, dst_nodata=np.nan,
                  resampling=getattr(Resampling, resampling_for(plan)),
                  num_threads=1)
    return np.ascontiguousarray(np.moveaxis(dst, 0, 2))
