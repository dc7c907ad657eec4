"""The sensor model of SPEC 1-2 as array operations: normalisation, blur,
area downsampling, SRF, white Gaussian noise, the synthetic pair, and the
upsampling baselines.

Cubes are rows x cols x bands (a 2-D array is one band where it makes sense).
Big arrays stay float32 and heavy steps run a few bands at a time, so a
1024 x 1024 x 200 cube needs about two extra copies at most.
"""
from __future__ import annotations

import logging
from typing import Optional, Tuple

import numpy as np

from ..core.errors import InputError
from . import spatial as _spatial
from .spatial import bands_view, check_ratio, float_cube

log = logging.getLogger(__name__)

# Bands processed together by the chunked steps: big enough for vectorised
# FFTs, small enough that the temporaries stay a fraction of the cube.
_BAND_CHUNK = _spatial.BAND_CHUNK

__all__ = ["normalize_percentile", "scale_percentile", "blur", "area_downsample", "nearest_upsample", "bicubic_upsample",
           "apply_srf", "add_awgn", "degrade_spatial", "make_synthetic_pair"]


# the argument checks live with the spatial operator (sensors/spatial.py); the old names stay
_float_cube = float_cube
_ratio = check_ratio
_bands_view = bands_view


def as_cube(a, what: str) -> np.ndarray:
    """`a` as rows x cols x bands (a 2-D array is one band); InputError naming `what` otherwise."""
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise InputError(f"{what} must be rows x cols x bands, got shape {a.shape}")
    return a


# ---------------------------------------------------------------------------
# normalisation

def normalize_percentile(cube, low: float = 1, high: float = 99) -> np.ndarray:
    """The cube clipped at its `low` and `high` percentiles (over all values
    of all bands together, so band ratios are kept) and scaled to [0, 1];
    float32, a new array."""
    out, _offset, _span = scale_percentile(cube, low, high, clip=True)
    return out


def scale_percentile(cube, low: float = 1, high: float = 99, clip: bool = False, pixels=None,
                     copy: bool = True):
    """(scaled, offset, span): the cube mapped affinely so that its `low` and `high` percentiles
    (over all values of all bands together, so band ratios are kept) become 0 and 1, float32,
    a new array; `scaled * span + offset` gives the cube back. With `clip`, values beyond those
    percentiles are clipped to [0, 1] (synthetic mode, the paper's convention); without, bright
    pixels stay brighter than 1 (real-world mode, whose result goes back to the input's units).
    `pixels` (rows x cols bool): the percentiles are those of these pixels only (the others hold
    no data). `copy` False: a float32 `cube` is scaled in place and returned."""
    a = np.asarray(cube)
    if a.size == 0:
        raise InputError(f"the cube of shape {a.shape} is empty")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) \
            or np.iscomplexobj(a):
        raise InputError(f"the cube must hold real numbers, got dtype {a.dtype}")
    if not 0 <= low < high <= 100:
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {low} and {high}")
    sample = a if pixels is None or np.all(pixels) else a[np.asarray(pixels, dtype=bool)]
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    del sample
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"the cube of shape {a.shape} holds NaN or Inf values")
    if hi <= lo:
        raise InputError(f"the cube of shape {a.shape} is constant between its {low:g}th and {high:g}th "
                         f"percentiles (value {lo:.6g}): nothing to normalise")
    out = a.astype(np.float32, copy=copy)
    if clip:
        np.clip(out, np.float32(lo), np.float32(hi), out=out)
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    if clip:
        # float32 rounding can step a hair past the ends
        np.clip(out, 0.0, 1.0, out=out)
    return out, lo, hi - lo


# ---------------------------------------------------------------------------
# spatial operations

def blur(cube, psf) -> np.ndarray:
    """Each band convolved with `psf`, 'same' size, zero padding outside the
    image (so borders darken). (H, W) or (H, W, C); float32 for float32 input.
    spatial.blur with the "zero" border rule (FFT convolution, a few bands at a time)."""
    return _spatial.blur(cube, psf, "zero")


def area_downsample(cube, r: int) -> np.ndarray:
    """Mean over non-overlapping r x r blocks. H and W must be multiples of r (spatial.area_downsample)."""
    return _spatial.area_downsample(cube, r)


def nearest_upsample(cube, r: int) -> np.ndarray:
    """Each pixel repeated into an r x r block (the inverse layout of area_downsample)."""
    a = _float_cube(cube)
    r = _ratio(r)
    return np.repeat(np.repeat(a, r, axis=0), r, axis=1)


def _cubic_weights(n_in: int, r: int, a: float) -> Tuple[np.ndarray, np.ndarray]:
    """Source indices (n_out, 4) and Keys cubic weights (n_out, 4) for upsampling
    n_in samples by r with pixel-centre alignment: output pixel i sits at input
    coordinate (i + 0.5) / r - 0.5, as for an area-downsampled image."""
    pos = (np.arange(n_in * r) + 0.5) / r - 0.5
    base = np.floor(pos).astype(np.int64)
    t = pos - base
    idx = base[:, None] + np.arange(-1, 3)[None, :]
    d = np.abs(t[:, None] - np.arange(-1, 3)[None, :])
    w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                 np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))
    # edges: repeat the border sample (what image resizers do)
    return np.clip(idx, 0, n_in - 1), w


def _cubic_matrix(n_in: int, r: int, a: float, dtype):
    """_cubic_weights as a sparse (n_in * r) x n_in matrix (a border sample repeated among the
    taps gets their summed weight)."""
    from scipy import sparse
    idx, weights = _cubic_weights(n_in, r, a)
    rows = np.repeat(np.arange(n_in * r), idx.shape[1])
    m = sparse.csr_matrix((weights.ravel(), (rows, idx.ravel())), shape=(n_in * r, n_in))
    m.sum_duplicates()
    return m.astype(dtype)


def bicubic_upsample(cube, r: int, a: float = -0.5, value_range=None) -> np.ndarray:
    """The bicubic baseline: separable Keys cubic convolution (a = -0.5, as
    MATLAB imresize; torch uses -0.75) with pixel-centre alignment (the
    align_corners=False convention, right for area-downsampled images),
    replicated borders. Reproduces a linear ramp exactly away from the borders.
    float32 for float32 input.

    Not clipped: real-world data (reflectance above 1, radiance, counts; or the
    engine's percentile scale, where bright pixels stay above 1) keep their range.
    `value_range` (low, high), either None for no bound, clips the result: a
    caller whose data are known to lie in a range says so (synthetic scoring
    clips the baseline to [0, 1] as it clips the fused result)."""
    x0 = _float_cube(cube)
    r = _ratio(r)
    x, flat = _bands_view(x0)
    h, w, C = x.shape
    # Each pass is a sparse (4 taps a row) matrix product, columns first on the small image:
    # 5x faster than gathering the taps with fancy indexing (the scores' bicubic baseline
    # upsamples every band of a 2048^2 scene)
    rows_up, cols_up = _cubic_matrix(h, r, a, x.dtype), _cubic_matrix(w, r, a, x.dtype)
    out = np.empty((h * r, w * r, C), dtype=x.dtype)
    for s in range(0, C, _BAND_CHUNK):
        chunk = x[:, :, s:s + _BAND_CHUNK]
        n = chunk.shape[2]
        wide = cols_up @ np.ascontiguousarray(chunk.transpose(1, 0, 2)).reshape(w, h * n)      # (w*r, h*n)
        wide = np.ascontiguousarray(wide.reshape(w * r, h, n).transpose(1, 0, 2)).reshape(h, w * r * n)
        out[:, :, s:s + n] = (rows_up @ wide).reshape(h * r, w * r, n)
    if value_range is not None and (value_range[0] is not None or value_range[1] is not None):
        np.clip(out, value_range[0], value_range[1], out=out)
    return out[:, :, 0] if flat else out


# ---------------------------------------------------------------------------
# spectral operations and noise

def apply_srf(cube, srf) -> np.ndarray:
    """cube @ srf.T: (..., C) with a c x C SRF gives (..., c), in the cube's
    float precision (float32 cubes are not promoted to float64)."""
    a = _float_cube(cube, ndims=(1, 2, 3))
    s = np.asarray(srf, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != a.shape[-1]:
        raise InputError(f"an SRF of shape {s.shape} cannot be applied to a cube of shape {a.shape}: "
                         f"it must be c x {a.shape[-1]}")
    return a @ s.T.astype(a.dtype)


def _band_mean_square(x: np.ndarray) -> np.ndarray:
    """Mean of x^2 per band (last axis), float64, a few rows at a time."""
    x3, _ = _bands_view(x)
    total = np.zeros(x3.shape[2], dtype=np.float64)
    step = max(1, (1 << 22) // max(1, x3.shape[1] * x3.shape[2]))
    for s in range(0, x3.shape[0], step):
        block = x3[s:s + step].astype(np.float64)
        total += np.einsum("ijk,ijk->k", block, block)
    return total / max(1, x3.shape[0] * x3.shape[1])


def add_awgn(cube, snr_db: Optional[float], rng=None) -> np.ndarray:
    """The cube plus white Gaussian noise at `snr_db` dB per band: noise
    variance of band b = mean(band_b^2) / 10^(snr_db / 10). `snr_db` None
    returns an unchanged copy. `rng` is a numpy Generator (or a seed); the
    noise is drawn in one standard_normal call over the whole cube shape, in
    C order. A new array in the cube's float precision."""
    a = _float_cube(cube)
    if snr_db is None:
        return a.copy()
    try:
        snr = float(snr_db)
    except (TypeError, ValueError):
        raise InputError(f"an SNR must be a number of dB or null, got {snr_db!r}") from None
    if not np.isfinite(snr):
        raise InputError(f"an SNR must be a finite number of dB or null, got {snr_db!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    std = np.sqrt(_band_mean_square(a) / 10.0 ** (snr / 10.0))
    noise = gen.standard_normal(size=a.shape, dtype=a.dtype)
    noise *= std.astype(a.dtype) if a.ndim == 3 else a.dtype.type(std[0])
    noise += a
    return noise


def degrade_spatial(cube, psf, r: int) -> np.ndarray:
    """area_downsample(blur(cube, psf), r): spatial.SpatialModel(psf, r, "zero").forward, a few
    bands at a time so the full blurred cube is never held."""
    return _spatial.SpatialModel(psf, r, "zero").forward(cube)


def make_synthetic_pair(truth, psf, srf, ratio: int, snr_spatial: Optional[float],
                        snr_spectral: Optional[float], seed: int
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth_cropped, hr_msi, lr_hsi), all float32, from a ground truth in [0, 1].

    The truth is cropped to the largest multiple of `ratio` in height and width
    (top-left kept). hr_msi = truth @ srf.T + noise at `snr_spectral` dB;
    lr_hsi = area_downsample(blur(truth, psf), ratio) + noise at `snr_spatial`
    dB (None = no noise). One np.random.default_rng(seed) draws the HR-MSI
    noise first, then the LR-HSI noise, so equal seeds give equal pairs.
    """
    t = _float_cube(truth, "the ground truth", ndims=(3,))
    r = _ratio(ratio)
    H, W, C = t.shape
    Hc, Wc = H - H % r, W - W % r
    if Hc == 0 or Wc == 0:
        raise InputError(f"the ground truth of shape {t.shape} is smaller than the ratio {r}")
    if (Hc, Wc) != (H, W):
        log.info("ground truth cropped from %d x %d to %d x %d (multiples of ratio %d)", H, W, Hc, Wc, r)
    t = np.ascontiguousarray(t[:Hc, :Wc], dtype=np.float32)
    s = np.asarray(srf, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != C:
        raise InputError(f"the SRF of shape {s.shape} does not fit the ground truth of shape {truth.shape}: "
                         f"it must be c x {C}")
    rng = np.random.default_rng(seed)
    hr_msi = add_awgn(apply_srf(t, s), snr_spectral, rng)
    lr_hsi = add_awgn(degrade_spatial(t, psf, r), snr_spatial, rng)
    return t, hr_msi.astype(np.float32, copy=False), lr_hsi.astype(np.float32, copy=False)
