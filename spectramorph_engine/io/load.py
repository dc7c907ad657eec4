"""The public readers: `load_cube` (a cube of any format, by suffix), `load_matrix` (a small 2-D
array: PSF, SRF) and `load_wavelengths` (a sidecar list of band wavelengths).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.errors import InputError
from .arrays import _array_entries, _read_entry
from .common import (CUBE_SUFFIXES, Cube, MATRIX_SUFFIXES, PathLike, WAVELENGTH_SUFFIXES, _NUMERIC_KINDS,
                     _check_file, _choose, _finish, _fmt_shape, _kind, _reading, _to_nm, _unknown_suffix)
from .envi import _load_envi
from .h5 import _load_hdf5
from .mat import _load_mat
from .product import product_kind
from .npy import _NPY_LABEL, _load_npz, _npy_sidecar, _read_npy
from .text import read_text_table
from .tiff import _load_tif, _load_tif_lazy

log = logging.getLogger(__name__)


def load_cube(path: PathLike, key: Optional[str] = None, lazy: bool = False, cancel=None,
              allow_invalid: bool = False) -> Cube:
    """Read a rows x cols x bands cube (or a 2-D band) and its wavelengths; see the module doc.
    `cancel`: a threading.Event checked between the blocks of an eager load (Cancelled).
    NaN or Inf values are refused (InputError) unless `allow_invalid` (real-world pairs mask
    them as nodata; `Cube.nonfinite` says how many)."""
    cube = _load_any(path, key, lazy, cancel)
    if cube.nonfinite and not allow_invalid:
        cube.close()
        raise InputError(cube.nonfinite[1])
    return cube


def _load_npy(p: Path, lazy: bool, cancel=None) -> Cube:
    data = _read_npy(p, lazy=lazy, cancel=cancel)
    wl = None
    side = _npy_sidecar(p)
    if side.is_file():
        try:
            wl = load_wavelengths(side)
        except InputError as exc:
            log.warning("ignoring %s: %s", side, exc)
    with _reading(p, _NPY_LABEL):    # a lazy map reads its sample rows here
        return _finish(p, data, None, wl, lazy=lazy, cancel=cancel)


def _load_any(path: PathLike, key: Optional[str], lazy: bool, cancel) -> Cube:
    product = product_kind(path)       # a satellite product: a folder, or a file by its name
    if product:
        if key is not None:
            log.info("'%s' is a product read whole: key '%s' not used", path, key)
        if product == "sentinel2":
            from .sentinel2 import load_sentinel2
            return load_sentinel2(path, lazy, cancel)
        from .enmap import load_enmap
        return load_enmap(path, lazy, cancel)
    p = _check_file(path)
    kind = _kind(p)
    if not kind:
        raise _unknown_suffix(p, CUBE_SUFFIXES, "a cube")
    if key is not None and kind in ("npy", "tif", "envi"):
        log.info("'%s' holds a single array: key '%s' not used", p, key)
        key = None
    if kind == "mat":
        return _load_mat(p, key, lazy, cancel)
    if kind == "h5":
        return _load_hdf5(p, key, lazy, matlab=False, cancel=cancel)
    if kind == "npy":
        return _load_npy(p, lazy, cancel)
    if kind == "npz":
        return _load_npz(p, key)
    if kind == "tif":
        if lazy:
            return _load_tif_lazy(p, cancel)
        return _load_tif(p)
    return _load_envi(p, lazy, cancel)


def load_matrix(path: PathLike, key: Optional[str] = None) -> np.ndarray:
    """A small 2-D float64 array (PSF, SRF) from .mat, .npy, .npz, .txt/.csv, .h5 or .tif.

    A 1-D vector comes back as one row (1 x n); NaN/Inf and more than two
    dimensions are refused.
    """
    p = _check_file(path)
    s = p.suffix.lower()
    if s in (".txt", ".csv"):
        a = read_text_table(p)
        key = None
    elif s in MATRIX_SUFFIXES:
        layout, entries = _array_entries(p)
        if layout in ("npy", "tif"):
            key = None
            a = _read_entry(p, layout, entries[0][0])
        else:
            key = _choose(p, entries, key, "datasets" if layout == "h5" else "arrays")
            a = _read_entry(p, layout, key)
    else:
        raise _unknown_suffix(p, MATRIX_SUFFIXES, "a matrix")
    what = f"'{p}'" + (f" variable '{key}'" if key else "")
    a = np.asarray(a)
    if a.dtype.kind not in _NUMERIC_KINDS:
        raise InputError(f"{what} is not a real numeric array (type {a.dtype})")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InputError(f"{what} has shape {_fmt_shape(a.shape)}: a 2-D matrix is needed")
    if a.size == 0:
        raise InputError(f"{what} is empty (shape {_fmt_shape(a.shape)})")
    a = a.astype(np.float64)
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise InputError(f"{what} holds {bad} NaN or Inf values")
    return a


def load_wavelengths(path: PathLike) -> np.ndarray:
    """Band wavelengths in nm (float64, 1-D) from a one-column (or one-row) .txt/.csv or a .npy.

    A header line is allowed; micrometre values (all < 10) are converted to nm.
    """
    p = _check_file(path)
    s = p.suffix.lower()
    if s not in WAVELENGTH_SUFFIXES:
        raise _unknown_suffix(p, WAVELENGTH_SUFFIXES, "a wavelength list")
    a = load_matrix(p)
    if min(a.shape) != 1:
        raise InputError(f"'{p}' has shape {_fmt_shape(a.shape)}: a single column of wavelengths is needed")
    wl = _to_nm(a.ravel())
    if np.any(wl <= 0):
        raise InputError(f"'{p}' holds wavelengths <= 0")
    return wl
