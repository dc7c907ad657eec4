"""Small numpy helpers for showing cubes and spectra (used by the desktop app).

Nothing here changes the science: these functions pick bands for a colour
composite, compute display levels (a percentile stretch), and read a list of
band wavelengths typed by a user. No Qt, no torch.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np

from ..core.errors import InputError

# Display targets for a natural-colour composite (nm): red, green, blue.
RGB_TARGETS_NM = (640.0, 550.0, 460.0)


def default_rgb_bands(num_bands: int, wavelengths: Optional[Sequence[float]] = None) -> tuple:
    """(r, g, b) band indices: nearest 640/550/460 nm when the wavelengths cover the visible,
    else spread along the cube (55%, 30%, 8% of the bands). One or two bands: (0, 0, 0)."""
    num_bands = int(num_bands)
    if num_bands < 3:
        return (0, 0, 0)
    if wavelengths is not None and len(wavelengths) == num_bands:
        wl = np.asarray(wavelengths, dtype=float)
        if wl.min() <= 500 and wl.max() >= 600:
            return tuple(int(np.argmin(np.abs(wl - t))) for t in RGB_TARGETS_NM)
    return (int(num_bands * 0.55), int(num_bands * 0.3), int(num_bands * 0.08))


def composite(cube: np.ndarray, bands: Sequence[int]) -> np.ndarray:
    """Three bands of an H x W x C cube stacked as H x W x 3 (a one-band cube: H x W grey).
    Band indices are clipped into range."""
    cube = np.asarray(cube)
    if cube.ndim == 2:
        return cube
    c = cube.shape[2]
    if c == 1:
        return cube[:, :, 0]
    idx = [min(max(int(b), 0), c - 1) for b in bands]
    return np.ascontiguousarray(cube[:, :, idx])


def msi_display_bands(srf: np.ndarray, hsi_bands: Sequence[int]) -> list:
    """For each HSI band of a composite, the MSI band whose response is largest there
    (so an HR-MSI preview uses the colours of the LR-HSI composite). srf is c x C."""
    srf = np.asarray(srf)
    if srf.ndim != 2 or srf.shape[0] < 3:
        return [0] * len(hsi_bands)
    last = srf.shape[1] - 1
    return [int(np.argmax(srf[:, min(max(int(b), 0), last)])) for b in hsi_bands]


def msi_band_centres(srf: np.ndarray, wavelengths: Optional[Sequence[float]] = None,
                     located: Optional[Sequence[float]] = None) -> np.ndarray:
    """Centre of each MSI band (c,): the centres an SRF estimate located (`located`, already in
    nm when the wavelengths are known) when given, else the response-weighted mean position of
    each SRF row (c x C). In nm when `wavelengths` (C,) are given, else in HSI band numbers
    (0-based)."""
    srf = np.asarray(srf, dtype=np.float64)
    if located is not None and len(located) == srf.shape[0]:
        return np.asarray(located, dtype=np.float64)
    axis = (np.asarray(wavelengths, dtype=np.float64) if wavelengths is not None
            and len(wavelengths) == srf.shape[1] else np.arange(srf.shape[1], dtype=np.float64))
    weights = np.clip(srf, 0.0, None)
    total = weights.sum(axis=1)
    centres = np.where(total > 0, (weights @ axis) / np.where(total > 0, total, 1.0), np.nan)
    # a row without response keeps its place in the file's band order
    order = np.arange(srf.shape[0], dtype=np.float64)
    return np.where(np.isfinite(centres), centres, axis[0] + order * 1e-9)


VISIBLE_MAX_NM = 700.0


def msi_rgb_bands(centres: Sequence[float], in_nm: bool) -> list:
    """(r, g, b) MSI band indices for a preview of the HR-MSI in its own colours, from its band
    centres (msi_band_centres): three different bands whenever it has three or more. With the
    centres in nm and at least three visible bands, the ones nearest 640 / 550 / 460 nm; else
    the three shortest, the longest of them as red. Fewer than three bands: grey (0, 0, 0)."""
    c = np.asarray(centres, dtype=np.float64)
    if c.size < 3:
        return [0, 0, 0]
    order = [int(k) for k in np.argsort(c, kind="stable")]
    visible = [k for k in order if c[k] <= VISIBLE_MAX_NM] if in_nm else []
    if len(visible) >= 3:
        chosen: list = []
        for target in RGB_TARGETS_NM:
            k = min((k for k in visible if k not in chosen), key=lambda k: abs(c[k] - target))
            chosen.append(k)
        return chosen
    return [order[2], order[1], order[0]]


def display_levels(image: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Display levels of a percentile stretch: (2,) [lo, hi] for an H x W image, (n, 2) one
    row per channel for H x W x n. hi > lo always (a flat channel gets lo + 1e-6)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
        flat = True
    else:
        flat = False
    out = np.zeros((a.shape[2], 2))
    for i in range(a.shape[2]):
        ch = a[:, :, i]
        ch = ch[np.isfinite(ch)]
        if ch.size == 0:
            out[i] = (0.0, 1.0)
            continue
        lo, hi = np.percentile(ch, [low, high])
        if not hi > lo:
            hi = lo + 1e-6
        out[i] = (lo, hi)
    return out[0] if flat else out


def shared_range(arrays) -> tuple:
    """(min, max) over several arrays, for one colour scale shared by all (max > min)."""
    lo = min(float(np.nanmin(a)) for a in arrays)      # NaN: pixels without data
    hi = max(float(np.nanmax(a)) for a in arrays)
    if not hi > lo:
        hi = lo + 1e-6
    return lo, hi


_RANGE = re.compile(r"^\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*(?:\.\.|:)\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*$")


def parse_wavelengths(text: str, num_bands: int) -> np.ndarray:
    """Band centres in nm from text a user typed or pasted.

    Accepts numbers separated by commas, semicolons, spaces, tabs or new lines
    (a pasted column or row), or a range `first..last` (also `first:last`) that
    spreads `num_bands` centres evenly. Values all below 10 are read as
    micrometres and converted to nm. Refused, with a sentence saying why: no
    number, a word that is not a number, a count different from `num_bands`,
    values <= 0, and values that do not increase from band to band.
    """
    num_bands = int(num_bands)
    text = (text or "").strip()
    if not text:
        raise InputError("no wavelengths given: type one value per band (nm), or first..last")
    m = _RANGE.match(text)
    if m:
        first, last = float(m.group(1)), float(m.group(2))
        if num_bands < 2:
            raise InputError("a range first..last needs a cube with at least 2 bands")
        wl = np.linspace(first, last, num_bands)
    else:
        parts = [p for p in re.split(r"[,;\s]+", text) if p]
        try:
            wl = np.array([float(p) for p in parts], dtype=np.float64)
        except ValueError:
            bad = next(p for p in parts if not _is_number(p))
            raise InputError(f"'{bad}' is not a number: give one wavelength per band in nm") from None
    if not np.all(np.isfinite(wl)):
        raise InputError("the wavelengths hold values that are not finite numbers")
    if wl.size != num_bands:
        raise InputError(f"{wl.size} wavelength{'s' if wl.size != 1 else ''} given but the hyperspectral "
                         f"cube has {num_bands} bands: give one value per band")
    if np.any(wl <= 0):
        raise InputError("wavelengths must be > 0 nm")
    if wl.size > 1 and not np.all(np.diff(wl) > 0):
        i = int(np.argmax(~(np.diff(wl) > 0)))
        raise InputError(f"wavelengths must increase from band to band: band {i + 1} is {wl[i]:g} and "
                         f"band {i + 2} is {wl[i + 1]:g}")
    if wl.max() < 10:   # micrometres
        wl = wl * 1000.0
    return wl


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_wavelengths(wavelengths) -> str:
    """The list as a user would type it back: '400, 417.6, ...' (6 significant digits)."""
    if wavelengths is None:
        return ""
    return ", ".join(f"{float(v):.6g}" for v in np.asarray(wavelengths).ravel())
