"""Spectral response functions: the c x C matrix mapping HSI bands to MSI bands.

Presets are Gaussian bands of real sensors (IKONOS, WorldView-2/3; SPEC 2),
placed on the cube's true band wavelengths when known, else on the original
implementation's evenly spread axis. Custom SRFs come from files: a c x C
matrix (or its transpose) or a measured response table (wavelength column +
one column per band) resampled onto the HSI wavelengths. Every SRF returned
here is float64 with rows summing to 1. Wavelengths are in nm throughout.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from ..io.atomic import atomic_open
from ..core.errors import InputError
from .catalogue import CAMERAS, SRF_PRESET_NAMES, SRF_PRESETS, Camera  # noqa: F401  (srf.CAMERAS, ... as before)
from .psf import _read_matrix

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

_FWHM_TO_STD = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))

# Plausible wavelength axes: nm, or micrometres (converted to nm).
_NM_RANGE = (200.0, 3500.0)
_UM_RANGE = (0.2, 3.5)
# A preset band whose Gaussian stays below this on every HSI wavelength has,
# in effect, no response there (the nearest sample is > 3.7 std away).
_NO_RESPONSE = 1e-3

__all__ = ["SRF_PRESETS", "SRF_PRESET_NAMES", "CAMERAS", "Camera", "get_camera", "camera_srf",
           "preset_wavelengths", "preset_srf", "load_srf",
           "load_srf_table", "resample_response_table", "normalize_srf_rows", "save_srf"]


# ---------------------------------------------------------------------------
# helpers

def _preset(num_msi_bands) -> List[Tuple[float, float, float]]:
    try:
        return SRF_PRESETS[int(num_msi_bands)]
    except (KeyError, TypeError, ValueError):
        raise InputError(f"no SRF preset for {num_msi_bands} MSI bands (presets: "
                         f"{', '.join(map(str, SRF_PRESETS))}); give an SRF file instead") from None


def _band_count(num_hsi_bands) -> int:
    try:
        n = int(num_hsi_bands)
    except (TypeError, ValueError):
        raise InputError(f"the number of HSI bands must be an integer >= 1, got {num_hsi_bands!r}") from None
    if n != num_hsi_bands or n < 1:
        raise InputError(f"the number of HSI bands must be an integer >= 1, got {num_hsi_bands!r}")
    return n


def _hsi_wavelengths_nm(wavelengths, num_hsi_bands: int) -> np.ndarray:
    """The HSI band wavelengths as float64 nm; micrometre axes are converted."""
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    if wl.size != num_hsi_bands:
        raise InputError(f"{wl.size} wavelengths given for {num_hsi_bands} HSI bands")
    if not np.all(np.isfinite(wl)):
        raise InputError("the HSI wavelengths hold NaN or Inf values")
    if wl.size and 0 < wl.min() and wl.max() <= _UM_RANGE[1]:
        log.info("HSI wavelengths %.3g..%.3g read as micrometres, converted to nm", wl.min(), wl.max())
        wl = wl * 1000.0
    return wl


def _wavelength_axis(values) -> Optional[np.ndarray]:
    """`values` in nm if they look like a measured wavelength axis (strictly
    monotonic, >= 3 samples, within the nm or micrometre range), else None."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 3 or not np.all(np.isfinite(v)):
        return None
    d = np.diff(v)
    if not (np.all(d > 0) or np.all(d < 0)):
        return None
    lo, hi = float(v.min()), float(v.max())
    if _NM_RANGE[0] <= lo and hi <= _NM_RANGE[1]:
        return v
    if _UM_RANGE[0] <= lo and hi <= _UM_RANGE[1]:
        return v * 1000.0
    return None


def _table_parts(arr: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(wavelengths nm, responses bands x n) if `arr` is a response table with
    the wavelengths in its first column (or, transposed, its first row)."""
    if arr.ndim != 2:
        return None
    if arr.shape[1] >= 2:
        wl = _wavelength_axis(arr[:, 0])
        if wl is not None:
            return wl, arr[:, 1:].T
    if arr.shape[0] >= 2:
        wl = _wavelength_axis(arr[0, :])
        if wl is not None:
            return wl, arr[1:, :]
    return None


# ---------------------------------------------------------------------------
# presets

def preset_wavelengths(num_msi_bands: int, num_hsi_bands: int) -> np.ndarray:
    """The original implementation's assumed HSI axis: C wavelengths spread
    evenly from the preset's lowest lower edge to its highest upper edge (nm)."""
    bands = _preset(num_msi_bands)
    n = _band_count(num_hsi_bands)
    lo = min(b[1] for b in bands)
    hi = max(b[2] for b in bands)
    return np.linspace(float(lo), float(hi), n)


def preset_srf(num_msi_bands: int, num_hsi_bands: int, fwhm_factor: float = 4.2,
               wavelengths=None) -> np.ndarray:
    """The c x C preset SRF: band i is a Gaussian centred on its centre with
    standard deviation (upper - lower) / fwhm_factor, evaluated at the HSI band
    wavelengths (`wavelengths` in nm when known, else `preset_wavelengths`),
    rows normalised to sum 1."""
    bands = _preset(num_msi_bands)
    n = _band_count(num_hsi_bands)
    try:
        factor = float(fwhm_factor)
    except (TypeError, ValueError):
        raise InputError(f"fwhm_factor must be a number > 0, got {fwhm_factor!r}") from None
    if not np.isfinite(factor) or factor <= 0:
        raise InputError(f"fwhm_factor must be a number > 0, got {fwhm_factor!r}")
    if wavelengths is None:
        wl = preset_wavelengths(num_msi_bands, n)
    else:
        wl = _hsi_wavelengths_nm(wavelengths, n)
    centre = np.array([b[0] for b in bands], dtype=np.float64)[:, None]
    std = np.array([(b[2] - b[1]) / factor for b in bands], dtype=np.float64)[:, None]
    srf = np.exp(-0.5 * ((wl[None, :] - centre) / std) ** 2)
    span = f"{wl.min():g}..{wl.max():g} nm"
    for i, row in enumerate(srf):
        c0 = float(centre[i, 0])
        if row.max() < _NO_RESPONSE:
            nearest = float(np.min(np.abs(wl - c0)))
            raise InputError(f"the {c0:g} nm band of the {len(bands)}-band preset has no response on the "
                             f"HSI wavelengths {span} (nearest is {nearest:.3g} nm away); "
                             f"use another preset or an SRF file")
        if not wl.min() <= c0 <= wl.max():
            log.warning("the %g nm band of the %d-band preset lies outside the HSI wavelengths %s: "
                        "only its tail is used", c0, len(bands), span)
    return srf / srf.sum(axis=1, keepdims=True)


def get_camera(name) -> Camera:
    """The named camera, or InputError listing the names."""
    try:
        return CAMERAS[str(name)]
    except KeyError:
        raise InputError(f"unknown camera {name!r} (msi_camera); known: {', '.join(CAMERAS)}") from None


def camera_srf(name: str, num_hsi_bands: int, wavelengths) -> np.ndarray:
    """The c x C SRF of a named camera on the cube's true wavelengths (nm): band i is a Gaussian
    with the published centre and FWHM, rows normalised to sum 1. A camera needs the
    wavelengths (band edges mean nothing on an unknown axis); a band the cube does not cover
    is refused by name."""
    cam = get_camera(name)
    n = _band_count(num_hsi_bands)
    if wavelengths is None:
        raise InputError(f"msi_camera '{cam.name}' needs the hyperspectral cube's wavelengths (config key "
                         f"'wavelengths', or a file that carries them)")
    wl = _hsi_wavelengths_nm(wavelengths, n)
    centre = np.array([b[1] for b in cam.bands], dtype=np.float64)[:, None]
    std = np.array([b[2] for b in cam.bands], dtype=np.float64)[:, None] * _FWHM_TO_STD
    srf = np.exp(-0.5 * ((wl[None, :] - centre) / std) ** 2)
    span = f"{wl.min():g}..{wl.max():g} nm"
    for (band, c0, _w), row in zip(cam.bands, srf):
        if row.max() < _NO_RESPONSE:
            raise InputError(f"band {band} ({c0:g} nm) of msi_camera '{cam.name}' has no response on the "
                             f"cube's wavelengths {span}: the cube does not cover it; choose a camera whose "
                             f"bands it covers, or an SRF file")
    return srf / srf.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# custom SRFs

def normalize_srf_rows(srf, source: str = "the SRF") -> np.ndarray:
    """`srf` (c x C, or a single band as a vector) as float64 with rows summing
    to 1. Refuses NaN/Inf, clearly negative values and rows without response;
    tiny negatives (numerical noise, below 1e-6 of the largest value) become 0."""
    a = np.asarray(srf)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) \
            or np.iscomplexobj(a):
        raise InputError(f"{source} must hold real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.size == 0:
        raise InputError(f"{source} must be a 2-D matrix (MSI bands x HSI bands), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{source} (shape {a.shape}) holds NaN or Inf values")
    scale = float(np.abs(a).max())
    if scale == 0:
        raise InputError(f"{source} (shape {a.shape}) is all zeros")
    neg = a < -1e-6 * scale
    if np.any(neg):
        i = int(np.nonzero(neg.any(axis=1))[0][0])
        raise InputError(f"{source} row {i + 1} of {a.shape[0]} has negative values "
                         f"(min {a[i].min():.3g}); a spectral response is >= 0")
    a = np.clip(a, 0.0, None)
    sums = a.sum(axis=1)
    zero = sums <= 1e-12 * scale
    if np.any(zero):
        i = int(np.nonzero(zero)[0][0])
        raise InputError(f"{source} row {i + 1} of {a.shape[0]} has no response (all zeros)")
    return a / sums[:, None]


def resample_response_table(table_wl, responses=None, hsi_wavelengths=None) -> np.ndarray:
    """Measured responses (bands x n, sampled at `table_wl` nm) linearly
    interpolated onto `hsi_wavelengths` (nm): bands x C float64, clipped at 0,
    zero outside the measured range, not normalised.

    Also callable as `resample_response_table(table, hsi_wavelengths)` with a
    table n x (1 + bands) holding the wavelengths in column 0.
    """
    if hsi_wavelengths is None:
        table = np.asarray(table_wl, dtype=np.float64)
        if responses is None or table.ndim != 2 or table.shape[1] < 2:
            raise InputError(f"a response table must be n x (1 + bands) with wavelengths in column 0, "
                             f"got shape {table.shape}")
        table_wl, responses, hsi_wavelengths = table[:, 0], table[:, 1:].T, responses
    wl = np.asarray(table_wl, dtype=np.float64).ravel()
    resp = np.asarray(responses, dtype=np.float64)
    if resp.ndim == 1:
        resp = resp[None, :]
    if resp.ndim != 2:
        raise InputError(f"responses must be bands x samples, got shape {resp.shape}")
    if resp.shape[1] != wl.size and resp.shape[0] == wl.size:
        resp = resp.T
    if resp.shape[1] != wl.size:
        raise InputError(f"responses of shape {resp.shape} do not match {wl.size} table wavelengths")
    axis = _wavelength_axis(wl)
    if axis is None:
        raise InputError(f"the table wavelengths ({wl.size} values) must be strictly monotonic, in nm "
                         f"({_NM_RANGE[0]:g}..{_NM_RANGE[1]:g}) or micrometres")
    if axis[0] > axis[-1]:   # np.interp needs an increasing axis
        axis, resp = axis[::-1], resp[:, ::-1]
    target = np.asarray(hsi_wavelengths, dtype=np.float64).ravel()
    if not np.all(np.isfinite(resp)) or not np.all(np.isfinite(target)):
        raise InputError("the response table or the HSI wavelengths hold NaN or Inf values")
    if target.size and 0 < target.min() and target.max() <= _UM_RANGE[1]:
        target = target * 1000.0
    out = np.stack([np.interp(target, axis, row, left=0.0, right=0.0) for row in resp])
    # measured curves carry small negative noise; a response cannot be < 0
    return np.clip(out, 0.0, None)


def load_srf_table(path: PathLike, key: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """A measured response table from a file: (wavelengths nm (n,), responses
    bands x n). Wavelengths in micrometres are converted; a decreasing axis is
    flipped."""
    arr = np.asarray(_read_matrix(path, key=key, what="SRF"), dtype=np.float64)
    parts = _table_parts(arr)
    if parts is None:
        raise InputError(f"SRF file '{path}' (shape {arr.shape}) is not a response table: its first column "
                         f"must be increasing wavelengths in nm or micrometres, one column per band after it")
    wl, resp = parts
    if wl[0] > wl[-1]:
        wl, resp = wl[::-1], resp[:, ::-1]
    if not np.all(np.isfinite(resp)):
        raise InputError(f"SRF file '{path}' (shape {arr.shape}) holds NaN or Inf responses")
    return wl.copy(), np.ascontiguousarray(resp)


def load_srf(path: PathLike, num_hsi_bands: int, wavelengths=None, key: Optional[str] = None) -> np.ndarray:
    """A custom SRF from a file as c x C float64, rows summing to 1.

    The file holds either a c x C matrix or its transpose (when c == C, rows
    are taken as MSI bands), or a measured response table (wavelength column +
    one column per band), which is resampled onto `wavelengths` (nm, needed).
    """
    n = _band_count(num_hsi_bands)
    source = f"SRF file '{path}'"
    arr = np.asarray(_read_matrix(path, key=key, what="SRF", preferred=("srf", "SRF", "R")))
    if arr.ndim > 2:
        arr = np.squeeze(arr)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputError(f"{source} must hold a 2-D matrix, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise InputError(f"{source} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    parts = _table_parts(arr)
    if parts is not None:
        table_wl, responses = parts
        if wavelengths is None:
            raise InputError(f"{source} is a measured response table ({responses.shape[0]} bands over "
                             f"{table_wl.min():g}..{table_wl.max():g} nm); resampling it needs the HSI "
                             f"band wavelengths (config key 'wavelengths')")
        hsi_wl = _hsi_wavelengths_nm(wavelengths, n)
        srf = resample_response_table(table_wl, responses, hsi_wl)
        empty = srf.sum(axis=1) <= 0
        if np.any(empty):
            j = int(np.nonzero(empty)[0][0])
            raise InputError(f"{source}: band {j + 1} of the table (column {j + 2}) has no response on the "
                             f"HSI wavelengths {hsi_wl.min():g}..{hsi_wl.max():g} nm")
        log.info("%s: response table of %d bands resampled onto %d HSI wavelengths",
                 source, srf.shape[0], n)
        return normalize_srf_rows(srf, source)
    if arr.shape[1] == n:
        if arr.shape[0] == n:
            log.info("%s is %d x %d: rows taken as MSI bands", source, n, n)
        srf = arr
    elif arr.shape[0] == n:
        srf = arr.T
    else:
        raise InputError(f"{source} has shape {arr.shape}; expected c x {n} (MSI bands x HSI bands), "
                         f"{n} x c, or a response table (wavelength column + one column per band)")
    return normalize_srf_rows(srf, source)


def save_srf(path: PathLike, srf, wavelengths=None) -> None:
    """Write an SRF by suffix: .mat (variables 'srf' c x C and 'wavelengths'),
    .npy (the c x C matrix), .csv/.txt (a table: wavelength_nm column + one
    column per band when `wavelengths` are given, else c rows x C columns).
    Written to a temporary name first (spectramorph_engine.io.atomic), so a failure leaves no
    partial file; the file gets the user's usual permissions."""
    p = Path(path)
    a = np.asarray(srf, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or not np.all(np.isfinite(a)):
        raise InputError(f"cannot save an SRF of shape {a.shape} with non-finite values to '{p}'"
                         if a.ndim == 2 else f"cannot save an SRF of shape {a.shape} to '{p}': need c x C")
    wl = None
    if wavelengths is not None:
        wl = np.asarray(wavelengths, dtype=np.float64).ravel()
        if wl.size != a.shape[1]:
            raise InputError(f"cannot save an SRF of shape {a.shape} to '{p}' with {wl.size} wavelengths")
    suffix = p.suffix.lower()
    if suffix not in (".mat", ".npy", ".csv", ".txt"):
        raise InputError(f"cannot save an SRF as '{p}': unknown type '{p.suffix}'; use .mat, .npy or .csv")

    def write(f):
        if suffix == ".mat":
            import scipy.io
            data = {"srf": a}
            if wl is not None:
                data["wavelengths"] = wl[None, :]
            scipy.io.savemat(f, data)
        elif suffix == ".npy":
            np.save(f, a)
        else:
            delim = "," if suffix == ".csv" else "\t"
            if wl is not None:
                header = delim.join(["wavelength_nm"] + [f"band_{i + 1}" for i in range(a.shape[0])])
                np.savetxt(f, np.column_stack([wl, a.T]), delimiter=delim, header=header,
                           comments="", fmt="%.17g")
            else:
                np.savetxt(f, a, delimiter=delim, fmt="%.17g",
                           header=f"SRF {a.shape[0]} MSI bands x {a.shape[1]} HSI bands")

    with atomic_open(p, "wb") as f:
        write(f)
