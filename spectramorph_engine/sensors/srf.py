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
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..io.atomic import atomic_open
from ..core.errors import InputError
from .psf import _read_matrix

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

# band count -> [(centre, lower edge, upper edge)] in nm (SPEC 2)
_WV3_SWIR = [(1210, 1184, 1235), (1572, 1546, 1598), (1661, 1636, 1686), (1730, 1702, 1759),
             (2164, 2137, 2191), (2203, 2174, 2232), (2260, 2228, 2292), (2329, 2285, 2373)]
SRF_PRESETS: Dict[int, List[Tuple[float, float, float]]] = {
    1: [(729, 409, 1048)],
    3: [(480, 421, 539), (552, 480, 624), (666, 602, 729)],
    4: [(480, 421, 539), (552, 480, 624), (666, 602, 729), (803, 713, 893)],
    8: [(427, 396, 458), (478, 442, 515), (546, 506, 586), (608, 584, 632),
        (659, 624, 694), (724, 699, 749), (833, 765, 901), (949, 856, 1043)],
    16: [(426, 397, 454), (481, 445, 517), (547, 507, 586), (605, 580, 629),
         (661, 626, 696), (724, 698, 749), (832, 765, 899), (948, 857, 1039)] + _WV3_SWIR,
}
SRF_PRESET_NAMES: Dict[int, str] = {
    1: "IKONOS panchromatic", 3: "IKONOS RGB", 4: "IKONOS B, G, R, NIR",
    8: "WorldView-2", 16: "WorldView-3 (VNIR + SWIR)",
}

# Named cameras: bands as (name, centre nm, FWHM nm), each modelled as a Gaussian of that
# FWHM on the cube's true wavelengths. Figures from the operators' published band tables
# (centre and width, or band edges, whose midpoint and width are used); `source` names them.
# A measured response table (srf_file) is always more exact than these.
@dataclass(frozen=True)
class Camera:
    name: str
    label: str
    bands: Tuple[Tuple[str, float, float], ...]
    source: str

    @property
    def band_names(self) -> List[str]:
        return [b[0] for b in self.bands]


def _edges(*bands) -> Tuple[Tuple[str, float, float], ...]:
    """(name, lower edge, upper edge) -> (name, centre, width)."""
    return tuple((n, (lo + hi) / 2.0, float(hi - lo)) for n, lo, hi in bands)


_S2_10M = (("B2", 492.4, 66.0), ("B3", 559.8, 36.0), ("B4", 664.6, 31.0), ("B8", 832.8, 106.0))
_S2_20M = (("B5", 704.1, 15.0), ("B6", 740.5, 15.0), ("B7", 782.8, 20.0), ("B8A", 864.7, 21.0),
           ("B11", 1613.7, 91.0), ("B12", 2202.4, 175.0))
_WV_VNIR = _edges(("coastal", 400, 450), ("blue", 450, 510), ("green", 510, 580), ("yellow", 585, 625),
                  ("red", 630, 690), ("red edge", 705, 745), ("NIR1", 770, 895), ("NIR2", 860, 1040))
_WV3_SWIR_BANDS = _edges(("SWIR1", 1195, 1225), ("SWIR2", 1550, 1590), ("SWIR3", 1640, 1680),
                         ("SWIR4", 1710, 1750), ("SWIR5", 2145, 2185), ("SWIR6", 2185, 2225),
                         ("SWIR7", 2235, 2285), ("SWIR8", 2295, 2365))
_S2_SOURCE = "ESA Sentinel-2 User Handbook, Sentinel-2A MSI central wavelength and bandwidth"
_OLI_SOURCE = "USGS Landsat 8-9 OLI/TIRS band designations (band edges)"
_WV_SOURCE = "DigitalGlobe (Maxar) WorldView-2 / WorldView-3 datasheets (band edges)"
CAMERAS: Dict[str, Camera] = {c.name: c for c in (
    Camera("sentinel2_10m", "Sentinel-2 MSI, 10 m bands (B2, B3, B4, B8)", _S2_10M, _S2_SOURCE),
    Camera("sentinel2_10m_20m", "Sentinel-2 MSI, 10 m + 20 m bands",
           tuple(sorted(_S2_10M + _S2_20M, key=lambda b: b[1])), _S2_SOURCE),
    Camera("landsat8_oli", "Landsat 8/9 OLI, multispectral bands 1-7", _edges(
        ("B1 coastal", 433, 453), ("B2 blue", 450, 515), ("B3 green", 525, 600), ("B4 red", 630, 680),
        ("B5 NIR", 845, 885), ("B6 SWIR1", 1560, 1660), ("B7 SWIR2", 2100, 2300)), _OLI_SOURCE),
    Camera("landsat8_pan", "Landsat 8/9 OLI, panchromatic band 8", _edges(("B8 pan", 500, 680)), _OLI_SOURCE),
    Camera("worldview2", "WorldView-2, 8 multispectral bands", _WV_VNIR, _WV_SOURCE),
    Camera("worldview2_pan", "WorldView-2, panchromatic", _edges(("pan", 450, 800)), _WV_SOURCE),
    Camera("worldview3", "WorldView-3, 8 VNIR + 8 SWIR bands", _WV_VNIR + _WV3_SWIR_BANDS, _WV_SOURCE),
    Camera("ikonos", "IKONOS, 4 multispectral bands", _edges(
        ("blue", 445, 516), ("green", 506, 595), ("red", 632, 698), ("NIR", 757, 853)),
        "GeoEye IKONOS specifications (band edges)"),
    Camera("ikonos_pan", "IKONOS, panchromatic", _edges(("pan", 526, 929)),
           "GeoEye IKONOS specifications (band edges)"),
    Camera("superdove", "PlanetScope SuperDove (PSB.SD), 8 bands", _edges(
        ("coastal blue", 431, 452), ("blue", 465, 515), ("green I", 513, 549), ("green", 547, 583),
        ("yellow", 600, 620), ("red", 650, 680), ("red edge", 697, 713), ("NIR", 845, 885)),
        "Planet imagery product specifications, PlanetScope SuperDove band edges"),
    Camera("rgb", "Generic RGB camera (Bayer colour filters, approximate)",
           (("blue", 460.0, 90.0), ("green", 540.0, 80.0), ("red", 610.0, 80.0)),
           "typical consumer colour-filter peaks and widths; no specific camera: measure yours for "
           "exact work"),
)}
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
