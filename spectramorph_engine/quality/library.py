"""Spectral libraries: reading them, putting them on a cube's bands, and ranking a spectrum
against them by spectral angle. Pure numpy; no Qt.

    lib = load_library("USGS_1995_Library.mat")          # any of the formats below
    on_cube = resample_library(lib, cube_wavelengths_nm)
    for name, index, angle in match_spectrum(pixel_spectrum, on_cube, top=5):
        ...

Formats read by `load_library`
-------------------------------
- MATLAB `.mat` in the USGS layout (`datalib`: one row per channel, column 0 the
  wavelengths, the other columns spectra; `names`: one row of ASCII codes per column).
  Columns whose name says they are not spectra (channel resolution / FWHM, channel
  number) are dropped; without a `names` variable the columns are called
  "spectrum 1", "spectrum 2", ... A different variable is chosen with `key`.
- ENVI spectral library: a `.hdr` whose `file type` is `ENVI Spectral Library` and its
  binary file (`.sli`, or `.spc` / no extension beside the header); either file may be
  given. `spectra names`, `wavelength`, `wavelength units`, `header offset`,
  `byte order`, `data ignore value` and `reflectance scale factor` are honoured.
- CSV (or semicolon / tab separated) text with one header row: the wavelength column is the
  one named `wavelength`, `wavelengths`, `wavelength_nm`, `wavelength_um`, `lambda`, `wl` or
  `nm` (case-insensitive, a unit in brackets allowed), else the first column when its
  values are positive and strictly monotonic; every other column is a spectrum named by
  its header. Empty cells and `nan` are missing samples.

Conventions of the returned `SpectralLibrary`
---------------------------------------------
- wavelengths in nm, strictly increasing (rows are sorted; instruments whose
  spectrometers overlap, such as AVIRIS in the USGS file, list some channels out of order;
  channels at exactly the same wavelength are averaged). Micrometres are converted when the
  file says so (ENVI `wavelength units`, a CSV header such as `wavelength (um)`) or, with
  no unit given, when the largest wavelength is below 30.
- spectra: n_spectra x n_bands float64. Missing samples are NaN: non-finite values, the
  USGS no-data marker (-1.23e34; anything of magnitude >= 1e30 counts) and ENVI's
  `data ignore value`.

Every unreadable or malformed file raises `InputError` with one sentence naming it.
"""
from __future__ import annotations

import csv
import io as _io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..core.errors import InputError
from ..io.common import _check_file

log = logging.getLogger(__name__)

# Magnitude from which a value is a no-data marker (USGS writes -1.23e34).
NO_DATA_MAGNITUDE = 1e30
# A wavelength axis whose largest value is below this is taken to be in micrometres.
MICROMETRE_LIMIT = 30.0
# Header names recognised as the wavelength column of a CSV library.
WAVELENGTH_HEADERS = ("wavelength", "wavelengths", "wavelength_nm", "wavelength_um", "wavelength_µm",
                      "lambda", "wl", "nm", "um", "µm")
# Names of USGS-layout columns that describe the channels rather than hold a spectrum.
_METADATA_COLUMN = re.compile(r"resolution|fwhm|bandwidth|channel number|data value", re.IGNORECASE)
_ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}


@dataclass
class SpectralLibrary:
    """Named reference spectra on one wavelength axis (nm, increasing); NaN = missing sample."""
    names: List[str]
    wavelengths: np.ndarray                  # (bands,) nm, strictly increasing
    spectra: np.ndarray                      # (n, bands) float64
    source: str = ""

    def __len__(self) -> int:
        return len(self.names)

    def spectrum(self, name: str) -> np.ndarray:
        """The spectrum called `name` (the first one if several share it)."""
        try:
            return self.spectra[self.names.index(name)]
        except ValueError:
            raise InputError(f"spectral library '{self.source}' has no spectrum named {name!r}") from None


# ------------------------------------------------------------------------------- loading

def load_library(path, key: Optional[str] = None) -> SpectralLibrary:
    """Read a spectral library (.mat USGS layout, ENVI .sli/.hdr, .csv/.txt/.tsv); see module doc."""
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix in (".hdr", ".sli", ".spc") or (suffix == "" and p.with_suffix(".hdr").is_file()):
        return _load_envi(p)
    p = _check_file(p, "spectral library")
    if suffix == ".mat":
        return _load_mat(p, key)
    if suffix in (".csv", ".txt", ".tsv"):
        return _load_csv(p)
    raise InputError(f"spectral library '{p}' has an unknown format (use .mat, .sli/.hdr or .csv)")


def _finish(names, wavelengths, spectra, source, unit_hint=None) -> SpectralLibrary:
    """Common checks and conventions: units to nm, no-data to NaN, rows sorted by wavelength."""
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    spectra = np.array(spectra, dtype=np.float64, ndmin=2)
    if spectra.shape[1] != wl.size:
        raise InputError(f"spectral library '{source}' has {wl.size} wavelengths but spectra of "
                         f"{spectra.shape[1]} samples")
    if spectra.shape[0] == 0 or wl.size < 2:
        raise InputError(f"spectral library '{source}' holds no spectra (or fewer than 2 wavelengths)")
    if not np.all(np.isfinite(wl)) or np.any(np.abs(wl) >= NO_DATA_MAGNITUDE) or np.any(wl <= 0):
        raise InputError(f"spectral library '{source}' has missing or non-positive wavelengths")
    if unit_hint == "um" or (unit_hint is None and wl.max() < MICROMETRE_LIMIT):
        wl = wl * 1000.0
    spectra[~np.isfinite(spectra) | (np.abs(spectra) >= NO_DATA_MAGNITUDE)] = np.nan
    order = np.argsort(wl, kind="stable")
    wl, spectra = wl[order], spectra[:, order]
    if np.any(np.diff(wl) == 0):
        # Channels at one wavelength: one sample, the mean of what is there.
        uniq, inverse = np.unique(wl, return_inverse=True)
        merged = np.full((spectra.shape[0], uniq.size), np.nan)
        for j in range(uniq.size):
            cols = spectra[:, inverse == j]
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(cols).any(axis=1)
                merged[ok, j] = np.nanmean(cols[ok], axis=1)
        wl, spectra = uniq, merged
    names = [str(n) for n in names]
    if len(names) != spectra.shape[0]:
        raise InputError(f"spectral library '{source}' has {len(names)} names for {spectra.shape[0]} spectra")
    return SpectralLibrary(names=names, wavelengths=wl, spectra=spectra, source=str(source))


def _load_mat(p: Path, key: Optional[str]) -> SpectralLibrary:
    import scipy.io
    try:
        d = scipy.io.loadmat(str(p))
    except NotImplementedError:
        raise InputError(f"spectral library '{p}' is a MATLAB v7.3 file; save it with -v7 "
                         "(or export it as CSV) to use it as a library") from None
    except Exception as exc:      # scipy raises several types for damaged files
        raise InputError(f"spectral library '{p}' is not a readable MATLAB file ({exc})") from None
    arrays = {k: v for k, v in d.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
    if key is None:
        if "datalib" in arrays:
            key = "datalib"
        else:
            numeric = [k for k, v in arrays.items()
                       if v.ndim == 2 and min(v.shape) >= 2 and np.issubdtype(v.dtype, np.floating)]
            if len(numeric) != 1:
                raise InputError(f"spectral library '{p}' holds {len(numeric)} candidate matrices "
                                 f"({', '.join(numeric) or 'none'}); name one with key")
            key = numeric[0]
    if key not in arrays:
        raise InputError(f"spectral library '{p}' has no variable {key!r}")
    table = np.asarray(arrays[key])
    if table.ndim != 2 or table.shape[1] < 2 or not np.issubdtype(table.dtype, np.number):
        raise InputError(f"spectral library '{p}': variable {key!r} is not a numeric matrix with a "
                         "wavelength column and spectrum columns")
    names = None
    raw = arrays.get("names")
    if raw is not None and raw.ndim == 2 and raw.shape[0] == table.shape[1]:
        if np.issubdtype(raw.dtype, np.integer):
            names = [bytes(row.astype(np.uint8)).decode("latin1").replace("\x00", " ").strip() for row in raw]
        elif raw.dtype.kind == "U":
            names = ["".join(row).strip() for row in raw]
    unit_hint = None
    keep = list(range(1, table.shape[1]))
    if names is not None:
        head = names[0].lower()
        if "micron" in head or "micromet" in head:
            unit_hint = "um"
        elif "nanomet" in head or re.search(r"\bnm\b", head):
            unit_hint = "nm"
        keep = [j for j in keep if not _METADATA_COLUMN.search(names[j])]
        names = [names[j] for j in keep]
    else:
        names = [f"spectrum {j}" for j in range(1, len(keep) + 1)]
    return _finish(names, table[:, 0], table[:, keep].T, p, unit_hint)


def _unit_from_text(text: str) -> Optional[str]:
    t = text.strip().lower()
    if not t:
        return None
    if "micro" in t or re.search(r"(^|[^a-z])(um|µm|μm)([^a-z]|$)", t):
        return "um"
    if "nano" in t or re.search(r"(^|[^a-z])nm([^a-z]|$)", t):
        return "nm"
    return None


def _envi_files(p: Path):
    """(header, data file) for an ENVI spectral library given either of them."""
    _check_file(p, "spectral library")
    if p.suffix.lower() == ".hdr":
        header = p
        candidates = [p.with_suffix(s) for s in (".sli", ".SLI", ".spc", "")]
    else:
        header = p.with_suffix(".hdr") if p.suffix else Path(str(p) + ".hdr")
        if not header.is_file() and p.suffix:
            header = Path(str(p) + ".hdr")
        candidates = [p]
    _check_file(header, "spectral library header")
    data = next((c for c in candidates if c.is_file()), None)
    if data is None:
        raise InputError(f"spectral library header '{header}' has no data file beside it (.sli)")
    return header, _check_file(data, "spectral library")


def _load_envi(p: Path) -> SpectralLibrary:
    from spectral.io import envi
    header, data = _envi_files(p)
    try:
        h = envi.read_envi_header(str(header))
    except Exception:
        raise InputError(f"spectral library header '{header}' is not a readable ENVI header") from None
    ftype = str(h.get("file type", "")).strip()
    if ftype.lower() != "envi spectral library":
        raise InputError(f"'{header}' is an ENVI header of file type {ftype or 'unknown'!r}, "
                         "not 'ENVI Spectral Library'")
    try:
        samples, lines = int(h["samples"]), int(h["lines"])
        bands = int(h.get("bands", 1))
        offset = int(h.get("header offset", 0))
        dcode = int(h["data type"])
        big = int(h.get("byte order", 0)) == 1
    except (KeyError, ValueError) as exc:
        raise InputError(f"spectral library header '{header}' lacks or garbles {exc}") from None
    if bands != 1 or samples < 2 or lines < 1 or offset < 0:
        raise InputError(f"spectral library header '{header}' declares samples={samples}, lines={lines}, "
                         f"bands={bands}; a library needs bands = 1, one line per spectrum")
    if dcode not in _ENVI_DTYPES:
        raise InputError(f"spectral library header '{header}' has unsupported data type {dcode}")
    dtype = np.dtype(_ENVI_DTYPES[dcode]).newbyteorder(">" if big else "<")
    need = offset + samples * lines * dtype.itemsize
    size = data.stat().st_size
    if size < need:
        raise InputError(f"spectral library '{data}' is truncated: {size} bytes where the header "
                         f"describes {need}")
    values = np.fromfile(str(data), dtype=dtype, count=samples * lines, offset=offset)
    spectra = values.reshape(lines, samples).astype(np.float64)
    ignore = h.get("data ignore value")
    if ignore is not None:
        try:
            ignore = float(ignore)
        except ValueError:
            ignore = None
        if ignore is not None and np.isfinite(ignore):
            spectra[spectra == ignore] = np.nan
    scale = h.get("reflectance scale factor")
    if scale is not None:
        try:
            scale = float(scale)
        except ValueError:
            scale = None
        if scale and np.isfinite(scale) and scale != 1.0:
            spectra /= scale
    wl = h.get("wavelength")
    if wl is None:
        raise InputError(f"spectral library header '{header}' has no 'wavelength' list")
    try:
        wl = np.array([float(v) for v in (wl if isinstance(wl, list) else [wl])])
    except ValueError:
        raise InputError(f"spectral library header '{header}' has a non-numeric 'wavelength' list") from None
    if wl.size != samples:
        raise InputError(f"spectral library header '{header}' lists {wl.size} wavelengths for "
                         f"{samples} samples per spectrum")
    names = h.get("spectra names")
    if isinstance(names, str):
        names = [names]
    if not names or len(names) != lines:
        names = [f"spectrum {i}" for i in range(1, lines + 1)]
    return _finish([str(n).strip() for n in names], wl, spectra, data,
                   _unit_from_text(str(h.get("wavelength units", ""))))


def _parse_cell(text: str) -> float:
    t = text.strip()
    if t == "" or t.lower() in ("nan", "na", "n/a", "-"):
        return np.nan
    return float(t)


def _is_number(text: str) -> bool:
    try:
        _parse_cell(text)
        return True
    except ValueError:
        return False


def _load_csv(p: Path) -> SpectralLibrary:
    try:
        text = p.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise InputError(f"spectral library '{p}' cannot be read: {exc.strerror or exc}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) < 3:
        raise InputError(f"spectral library '{p}' has no data (a header row and at least two rows "
                         "of wavelengths and values are needed)")
    first = lines[0]
    delim = max((",", ";", "\t"), key=first.count)
    if first.count(delim) == 0:
        delim = None
    rows = ([r for r in csv.reader(_io.StringIO("\n".join(lines)), delimiter=delim)] if delim
            else [ln.split() for ln in lines])
    header = [c.strip() for c in rows[0]]
    if all(_is_number(c) for c in header):
        raise InputError(f"spectral library '{p}' has no header row naming its columns")
    ncol = len(header)
    if ncol < 2:
        raise InputError(f"spectral library '{p}' needs a wavelength column and at least one spectrum column")
    body = rows[1:]
    table = np.full((len(body), ncol), np.nan)
    for i, row in enumerate(body):
        if len(row) > ncol and any(c.strip() for c in row[ncol:]):
            raise InputError(f"spectral library '{p}' line {i + 2} has {len(row)} cells for {ncol} columns")
        for j, cell in enumerate(row[:ncol]):
            try:
                table[i, j] = _parse_cell(cell)
            except ValueError:
                raise InputError(f"spectral library '{p}' line {i + 2} column {header[j]!r} holds "
                                 f"{cell.strip()!r}, not a number") from None

    def base_name(h):
        return re.sub(r"\s*[\(\[].*?[\)\]]\s*", "", h).strip().lower()

    col = next((j for j, h in enumerate(header) if base_name(h) in WAVELENGTH_HEADERS), None)
    if col is None:
        w = table[:, 0]
        d = np.diff(w)
        if np.all(np.isfinite(w)) and np.all(w > 0) and (np.all(d > 0) or np.all(d < 0)):
            col = 0
        else:
            raise InputError(f"spectral library '{p}' has no wavelength column (name one 'wavelength', "
                             "or put increasing wavelengths first)")
    wl = table[:, col]
    if not np.all(np.isfinite(wl)):
        raise InputError(f"spectral library '{p}' has empty or non-numeric cells in its wavelength column")
    others = [j for j in range(ncol) if j != col]
    unit = _unit_from_text(re.sub(r"(?i)^(wavelengths?|lambda|wl)", "", header[col]).replace("_", " "))
    if unit is None and base_name(header[col]) in ("um", "µm"):
        unit = "um"
    if unit is None and base_name(header[col]) == "nm":
        unit = "nm"
    names = [header[j] or f"spectrum {k}" for k, j in enumerate(others, 1)]
    return _finish(names, wl, table[:, others].T, p, unit)


# ----------------------------------------------------------------------------- resampling

def resample_library(lib: SpectralLibrary, wavelengths: Sequence[float]) -> SpectralLibrary:
    """The library on `wavelengths` (nm): linear interpolation between the two library samples
    around each wavelength. NaN where a wavelength lies outside the library's range or where
    either neighbouring sample is missing (a gap is never bridged). Names are kept."""
    target = np.asarray(wavelengths, dtype=np.float64).ravel()
    if target.size == 0 or not np.all(np.isfinite(target)):
        raise InputError("resampling a spectral library needs a non-empty list of finite wavelengths")
    wl = lib.wavelengths
    s = lib.spectra
    i = np.clip(np.searchsorted(wl, target, side="right") - 1, 0, wl.size - 2)
    frac = (target - wl[i]) / (wl[i + 1] - wl[i])
    left, right = s[:, i], s[:, i + 1]
    with np.errstate(invalid="ignore"):
        out = left + frac * (right - left)
    # On a library sample exactly, only that sample matters (its neighbour may be missing).
    out = np.where(frac == 0.0, left, np.where(frac == 1.0, right, out))
    out[:, (target < wl[0]) | (target > wl[-1])] = np.nan
    return SpectralLibrary(names=list(lib.names), wavelengths=target.copy(), spectra=out,
                           source=lib.source)


# ------------------------------------------------------------------------------- matching

def spectral_angles(spectrum, spectra, band_mask=None, min_bands: int = 3) -> np.ndarray:
    """Angle in degrees between `spectrum` (bands,) and each row of `spectra` (n, bands), over the
    bands where both are finite (and `band_mask` is True). NaN for a row with fewer than
    `min_bands` such bands or a zero norm on them."""
    x = np.asarray(spectrum, dtype=np.float64).ravel()
    lib = np.asarray(spectra, dtype=np.float64)
    valid = np.isfinite(lib) & np.isfinite(x)[None, :]
    if band_mask is not None:
        valid &= np.asarray(band_mask, dtype=bool).ravel()[None, :]
    lz = np.where(valid, lib, 0.0)
    xz = np.where(valid, np.where(np.isfinite(x), x, 0.0)[None, :], 0.0)
    dot = np.sum(lz * xz, axis=1)
    nl = np.sqrt(np.sum(lz * lz, axis=1))
    nx = np.sqrt(np.sum(xz * xz, axis=1))
    ok = (valid.sum(axis=1) >= min_bands) & (nl > 0) & (nx > 0)
    angles = np.full(lib.shape[0], np.nan)
    angles[ok] = np.degrees(np.arccos(np.clip(dot[ok] / (nl[ok] * nx[ok]), -1.0, 1.0)))
    return angles


def match_spectrum(spectrum, lib_resampled: SpectralLibrary, top: int = 10, band_mask=None,
                   min_bands: int = 3) -> list:
    """The `top` library entries closest to `spectrum` by spectral angle, best first.

    `spectrum` is one spectrum (bands,) on the library's wavelengths (resample the library
    onto the cube first), or a 2-D array of spectra (pixels x bands, e.g. the pixels of a
    region) whose per-band mean (NaN ignored) is matched. The angle is taken over the bands
    where the spectrum and the entry are both finite and `band_mask` (bands,) is True, so it
    does not depend on the brightness of either. Entries with fewer than `min_bands` common
    bands are left out. Returns a list of (name, index in the library, angle in degrees).
    """
    x = np.asarray(spectrum, dtype=np.float64)
    if x.ndim == 2:
        with np.errstate(invalid="ignore"), _quiet_nanmean():
            x = np.nanmean(x, axis=0)
    if x.ndim != 1:
        raise InputError(f"a spectrum to match must be 1-D (bands) or 2-D (pixels x bands), got shape {x.shape}")
    nb = lib_resampled.spectra.shape[1]
    if x.size != nb:
        raise InputError(f"the spectrum has {x.size} bands but the library is on {nb}; resample the "
                         "library onto the cube's wavelengths first")
    if band_mask is not None and np.asarray(band_mask).size != nb:
        raise InputError(f"the band mask has {np.asarray(band_mask).size} entries for {nb} bands")
    angles = spectral_angles(x, lib_resampled.spectra, band_mask, min_bands)
    idx = np.flatnonzero(np.isfinite(angles))
    idx = idx[np.argsort(angles[idx], kind="stable")][:max(0, int(top))]
    return [(lib_resampled.names[i], int(i), float(angles[i])) for i in idx]


class _quiet_nanmean:
    """Silence numpy's 'Mean of empty slice' warning for all-NaN bands (they stay NaN)."""

    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
