"""Point spread functions: the ten built-in shapes, custom kernels from files,
and the numbers the GUI shows about a kernel (radial profile, FWHM).

Every kernel is a float64 (2k+1) x (2k+1) array summing to 1, centred on the
middle pixel. Shapes follow SPEC section 2; where the SPEC leaves a choice open
(airy, hermite, gabor) the docstring of `make_psf` says what we picked.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .catalogue import PSF_TYPES
from ..core.errors import InputError

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

# First zero of the Airy function Ai(-x); SPEC fixes it as the Airy-disk scale.
_AIRY_SCALE = 2.33811
# Gabor carrier wavelength in units of sigma: one period spans 4 sigma, so the
# first dark fringe sits at x = 2 sigma and the kernel still sums well above 0.
_GABOR_PERIOD_SIGMAS = 4.0

__all__ = ["PSF_TYPES", "make_psf", "load_psf", "save_psf", "validate_psf", "psf_fwhm", "radial_profile",
           "kernel_shape"]


# ---------------------------------------------------------------------------
# built-in shapes

def _grid(kernel_size: int) -> Tuple[np.ndarray, np.ndarray]:
    k = int(kernel_size)
    y, x = np.mgrid[-k:k + 1, -k:k + 1].astype(np.float64)
    return x, y


def _shape(psf_type: str, x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    r = np.hypot(x, y)
    if psf_type == "delta":
        out = np.zeros_like(r)
        out[r == 0] = 1.0
        return out
    u = r / sigma
    if psf_type == "gaussian":
        return np.exp(-0.5 * u ** 2)
    if psf_type == "kolmogorov":
        return np.exp(-u ** (5.0 / 3.0))
    if psf_type == "airy":
        from scipy.special import j1
        z = _AIRY_SCALE * u
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.where(z > 0, 2.0 * j1(z) / np.where(z > 0, z, 1.0), 1.0)
        return a ** 2
    if psf_type == "moffat":
        return (1.0 + u ** 2) ** -3.5
    if psf_type == "sinc":
        return np.sinc(u)
    if psf_type == "lorentzian2":
        return 1.0 / (1.0 + u ** 4)
    if psf_type == "hermite":
        # physicists' H1(t) = 2t evaluated on the radius: r >= 0 keeps the
        # kernel non-negative (a ring peaking at r = sigma, zero at the centre);
        # H1 along x would be odd and sum to zero.
        return np.exp(-0.5 * u ** 2) * 2.0 * u
    if psf_type == "parabolic":
        return np.maximum(0.0, 1.0 - u ** 2)
    if psf_type == "gabor":
        carrier = np.cos(2.0 * np.pi * x / (_GABOR_PERIOD_SIGMAS * sigma))
        return np.exp(-0.5 * u ** 2) * carrier
    raise AssertionError(psf_type)  # guarded by make_psf


def make_psf(psf_type: str, sigma: float, kernel_size: int) -> np.ndarray:
    """A built-in PSF on a (2*kernel_size+1)^2 grid, float64, summing to 1.

    r is the distance to the centre pixel in pixels, u = r / sigma:
    gaussian exp(-u^2/2); kolmogorov exp(-u^(5/3)); airy (2 J1(z)/z)^2 with
    z = 2.33811 u and value 1 at the centre (J1 = Bessel function of the first
    kind: the Airy pattern; the SPEC's "K1" would be infinite at the centre);
    moffat (1+u^2)^-3.5; sinc np.sinc(u) = sin(pi u)/(pi u) (negative lobes
    kept); lorentzian2 1/(1+u^4); hermite exp(-u^2/2) * H1(u), H1(t) = 2t, on
    the radius (a non-negative ring, zero at the centre); parabolic
    max(0, 1-u^2); gabor exp(-u^2/2) * cos(2 pi x / (4 sigma)), carrier along
    the column axis x; delta 1 at the centre (sigma ignored).
    """
    if psf_type not in PSF_TYPES:
        raise InputError(f"unknown psf_type {psf_type!r}; allowed: {', '.join(PSF_TYPES)}")
    try:
        k_float = float(kernel_size)
    except (TypeError, ValueError):
        raise InputError(f"kernel_size must be an integer >= 0, got {kernel_size!r}") from None
    if isinstance(kernel_size, bool) or not k_float.is_integer() or k_float < 0:
        raise InputError(f"kernel_size must be an integer >= 0, got {kernel_size!r}")
    k = int(k_float)
    if psf_type != "delta":
        try:
            sigma = float(sigma)
        except (TypeError, ValueError):
            raise InputError(f"sigma of the {psf_type} PSF must be a number > 0, got {sigma!r}") from None
        if not np.isfinite(sigma) or sigma <= 0:
            raise InputError(f"sigma of the {psf_type} PSF must be a finite number > 0, got {sigma}")
    x, y = _grid(k)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        kernel = _shape(psf_type, x, y, sigma if psf_type != "delta" else 1.0)
    total = float(np.sum(kernel))
    scale = float(np.max(np.abs(kernel))) if kernel.size and np.all(np.isfinite(kernel)) else np.nan
    # a sum that is tiny against the peak is a cancellation (hermite 1x1,
    # sinc/gabor on a coarse grid): normalising it would blow the kernel up
    if not np.isfinite(total) or not np.isfinite(scale) or total <= 1e-9 * max(scale, 1e-300):
        raise InputError(f"the {psf_type} PSF with sigma {sigma} and kernel_size {k} does not sum to a "
                         f"positive number (sum {total:.3g}); change sigma or kernel_size")
    return kernel / total


# ---------------------------------------------------------------------------
# validation and files

def validate_psf(kernel, source: str = "the PSF") -> np.ndarray:
    """Check a custom kernel (2-D, square, odd size, finite, positive sum) and
    return it as float64 normalised to sum 1. `source` names it in messages."""
    a = np.asarray(kernel)
    if a.ndim > 2:   # e.g. a TIFF page axis or a MATLAB 1x1xk wrapper
        a = np.squeeze(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
                                 or a.dtype == bool):
        raise InputError(f"{source} must hold real numbers, got dtype {a.dtype}")
    shape = tuple(a.shape)
    if a.ndim != 2:
        raise InputError(f"{source} must be a 2-D kernel, got shape {shape}")
    if shape[0] != shape[1]:
        raise InputError(f"{source} must be square, got shape {shape}")
    if shape[0] % 2 == 0:
        raise InputError(f"{source} must have an odd size (a centre pixel), got shape {shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{source} (shape {shape}) holds NaN or Inf values")
    total = float(a.sum())
    if not np.isfinite(total) or total <= 1e-12 * max(float(np.abs(a).max()), 1e-300):
        raise InputError(f"{source} (shape {shape}) must sum to a positive number, its sum is {total:.3g}")
    return a / total


def load_psf(path: PathLike, key: Optional[str] = None) -> np.ndarray:
    """Read a custom PSF (.mat .npy .npz .txt .csv .h5 .tif), validated and normalised."""
    arr = _read_matrix(path, key=key, what="PSF")
    return validate_psf(arr, f"PSF file '{path}'")


def save_psf(path: PathLike, kernel) -> Path:
    """Write a kernel by suffix (.npy, .mat variable 'psf', .txt/.csv table), validated and
    normalised as `load_psf` returns it, atomically (spectramorph_engine.io.atomic)."""
    from ..io.atomic import atomic_open
    p = Path(path)
    k = validate_psf(kernel, f"the PSF to save as '{p}'")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".mat", ".txt", ".csv"):
        raise InputError(f"cannot save a PSF as '{p}': unknown type '{p.suffix}'; use .npy, .mat, .txt or .csv")
    with atomic_open(p, "wb") as fh:
        if suffix == ".npy":
            np.save(fh, k)
        elif suffix == ".mat":
            import scipy.io
            scipy.io.savemat(fh, {"psf": k})
        else:
            np.savetxt(fh, k, delimiter="," if suffix == ".csv" else " ", fmt="%.17g")
    return p


# Kernel / response files: text tables are read here; containers (.mat, .npy, .npz, .h5,
# .tif) through spectramorph_engine.io, whose readers check every header against the file
# before allocating, so a damaged file ends in InputError whatever it declares.

_TEXT_SUFFIXES = (".txt", ".csv", ".dat", ".tsv")
_SUFFIXES = (".mat", ".npy", ".npz", ".h5", ".hdf5", ".tif", ".tiff") + _TEXT_SUFFIXES


def _read_matrix(path: PathLike, key: Optional[str] = None, what: str = "matrix",
                 preferred: Sequence[str] = ()) -> np.ndarray:
    """The one numeric array in `path` (or the variable `key`).

    With several candidates and no key, a name in `preferred` wins, then the
    only array with two dimensions > 1; otherwise InputError listing them.
    """
    from ..io.arrays import _array_entries, _read_entry      # the readers of matrix files (private helpers)
    from ..io.common import _check_file
    from ..io.text import read_text_table
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _SUFFIXES:
        if not p.exists():
            raise InputError(f"{what} file '{p}' does not exist")
        raise InputError(f"{what} file '{p}' has an unknown type '{p.suffix}'; "
                         f"supported: {', '.join(_SUFFIXES)}")
    p = _check_file(p, what)
    if suffix in _TEXT_SUFFIXES:
        return read_text_table(p, what)     # the one text-table reader (BOM, separators, header)
    layout, entries = _array_entries(p)
    if layout in ("npy", "tif"):
        return np.asarray(_read_entry(p, layout, entries[0][0]))
    name = _pick(p, entries, key, what, preferred)
    return np.asarray(_read_entry(p, layout, name))


def _pick(p: Path, entries: list, key, what: str, preferred) -> str:
    """The name of the array to read among `entries` [(name, shape, dtype)] (headers only)."""
    shapes = {n: tuple(s) for n, s, _ in entries if int(np.prod(s, dtype=object)) > 0}
    if key is not None:
        if key not in shapes:
            raise InputError(f"{what} file '{p}' has no variable '{key}' "
                             f"(it has: {', '.join(shapes) or 'none'})")
        return key
    if not shapes:
        raise InputError(f"{what} file '{p}' holds no numeric array")
    if len(shapes) == 1:
        return next(iter(shapes))
    for name in preferred:
        if name in shapes:
            return name
    matrices = [k for k, s in shapes.items() if sum(d > 1 for d in s) >= 2]
    if len(matrices) == 1:
        return matrices[0]
    listing = ", ".join(f"{k} {s}" for k, s in shapes.items())
    raise InputError(f"{what} file '{p}' holds several arrays ({listing}); say which one (key)")


# ---------------------------------------------------------------------------
# descriptive numbers for the GUI

def radial_profile(kernel) -> Tuple[np.ndarray, np.ndarray]:
    """(radii, values): the kernel's mean at each distinct distance from the
    centre pixel, radii increasing from 0. Exact samples for a radial kernel."""
    a = np.asarray(kernel, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] % 2 == 0:
        raise InputError(f"a PSF kernel must be 2-D, square and odd-sized, got shape {a.shape}")
    k = a.shape[0] // 2
    y, x = np.mgrid[-k:k + 1, -k:k + 1]
    r2 = (x * x + y * y).ravel()   # integer squared radii: exact grouping
    uniq, inverse = np.unique(r2, return_inverse=True)
    sums = np.bincount(inverse, weights=a.ravel())
    counts = np.bincount(inverse)
    return np.sqrt(uniq.astype(np.float64)), sums / counts


def psf_fwhm(kernel) -> float:
    """Full width at half maximum in pixels: twice the radius where the radial
    profile, going outwards from its peak, first falls to half the peak
    (linear interpolation between samples). A delta gives 1 px; a ring
    (hermite) gives the width of its outer edge; inf when the profile never
    falls to half inside the kernel."""
    radii, values = radial_profile(kernel)
    i_peak = int(np.argmax(values))
    half = 0.5 * values[i_peak]
    if half <= 0:
        return float("nan")
    below = np.nonzero(values[i_peak:] <= half)[0]
    if below.size == 0:
        return float("inf")
    j = i_peak + int(below[0])
    r0, r1, v0, v1 = radii[j - 1], radii[j], values[j - 1], values[j]
    r_half = r1 if v0 == v1 else r0 + (v0 - half) / (v0 - v1) * (r1 - r0)
    return float(2.0 * r_half)


def kernel_shape(kernel) -> dict:
    """The kernel's centre and spread from its moments (weights clipped at 0): `centre` (dy, dx)
    in px from the middle pixel, `widths` (major, minor) standard deviations in px and `angle`
    the major axis' angle in degrees, counter-clockwise from the column axis with rows growing
    down as on screen (-90..90). What an estimated kernel shows at a glance: anisotropy, tilt,
    an off-centre blur (a misregistration)."""
    a = np.clip(np.asarray(kernel, dtype=np.float64), 0.0, None)
    if a.ndim != 2 or not a.sum() > 0:
        raise InputError(f"a PSF kernel must be 2-D with a positive sum, got shape {a.shape}")
    a = a / a.sum()
    k0, k1 = a.shape[0] // 2, a.shape[1] // 2
    y, x = np.mgrid[-k0:a.shape[0] - k0, -k1:a.shape[1] - k1].astype(np.float64)
    cy, cx = float((a * y).sum()), float((a * x).sum())
    syy = float((a * (y - cy) ** 2).sum())
    sxx = float((a * (x - cx) ** 2).sum())
    sxy = float((a * (x - cx) * (y - cy)).sum())
    vals, vecs = np.linalg.eigh(np.array([[sxx, sxy], [sxy, syy]]))
    major = vecs[:, 1]
    angle = float(np.degrees(np.arctan2(-major[1], major[0])))     # screen: rows grow downwards
    angle = (angle + 90.0) % 180.0 - 90.0
    return {"centre": (cy, cx), "widths": (float(np.sqrt(max(vals[1], 0.0))), float(np.sqrt(max(vals[0], 0.0)))),
            "angle": angle}
