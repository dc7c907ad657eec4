"""Which arrays a file holds and which one was meant: `list_arrays` (headers only, every format),
`suggest_array` (the one that best fits the role asked for: most bands for an LR-HSI, fewest
for an HR-MSI), `_array_entries` / `_read_entry` shared with the matrix readers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .common import (CUBE_SUFFIXES, PathLike, _check_file, _is_hdf5, _is_wavelength_name, _kind, _reading,
                     _unknown_suffix)
from .envi import _load_envi, _open_envi
from .h5 import _h5_entries, _h5_guard, _open_h5
from .mat import _mat_v5_entries, _mat_v5_read, _mat_v5_variables
from .npy import _npz_entries, _open_npz, _read_npy
from .tiff import _read_tif


def _array_entries(p: Path) -> tuple:
    """(layout, [(name, shape, dtype)]): the numeric arrays of `p` from headers only, never the
    data. layout is what `_read_entry` needs: mat5, mat73, h5, npz, npy, tif, envi ("" for
    an unknown suffix). Shapes are as the readers return them (MATLAB v7.3 axes reversed)."""
    kind = _kind(p)
    if kind == "mat":
        if _is_hdf5(p):
            with _open_h5(p, "MATLAB v7.3 .mat (HDF5)") as f:
                return "mat73", _h5_entries(f, matlab=True)
        return "mat5", _mat_v5_entries(p)
    if kind == "h5":
        with _open_h5(p, "HDF5") as f:
            return "h5", _h5_entries(f, matlab=False)
    if kind == "npz":
        with _open_npz(p) as z:
            return "npz", _npz_entries(z)
    if kind == "npy":
        shape, dtype = _read_npy(p, header_only=True)
        return "npy", [(p.stem, shape, str(dtype))]
    if kind == "tif":
        _, shape, dtype, _ = _read_tif(p, header_only=True)
        return "tif", [(p.stem, shape, dtype)]
    if kind == "envi":
        img, _ = _open_envi(p)
        return "envi", [(p.stem, (img.nrows, img.ncols, img.nbands), str(np.dtype(img.dtype)))]
    return "", []


def _read_entry(p: Path, layout: str, name: str) -> np.ndarray:
    """The array `name` of a file listed by `_array_entries`, its size checked before reading."""
    if layout == "mat5":
        return _mat_v5_read(p, _mat_v5_variables(p)[name])
    if layout in ("mat73", "h5"):
        label = "MATLAB v7.3 .mat (HDF5)" if layout == "mat73" else "HDF5"
        with _open_h5(p, label) as f:
            with _reading(p, label):
                ds = f[name]
            _h5_guard(p, ds, label)
            with _reading(p, label):
                a = ds[()]
        return np.asarray(a).T if layout == "mat73" else np.asarray(a)
    if layout == "npz":
        with _open_npz(p) as z:
            return z.read(name)
    if layout == "npy":
        return _read_npy(p)
    if layout == "tif":
        return _read_tif(p)[0]
    return _load_envi(p, lazy=False).data


def list_arrays(path: PathLike) -> list:
    """(name, shape, dtype) of every numeric array in `path`, shapes as `load_cube` returns them.

    Wavelength arrays are left out (they are metadata, not cubes). Single-array
    formats (.npy, .tif, ENVI) give one entry named after the file's stem.
    """
    p = _check_file(path)
    layout, entries = _array_entries(p)
    if not layout:
        raise _unknown_suffix(p, CUBE_SUFFIXES, "a cube")
    return [e for e in entries if not _is_wavelength_name(e[0])]


ARRAY_ROLES = ("truth", "hr_msi", "lr_hsi")


def suggest_array(arrays, role: str) -> Optional[str]:
    """The name of the array of `arrays` ((name, shape, dtype) as list_arrays gives them) that
    best fits `role`, or None when no array fits or two fit equally well (the user chooses).

    lr_hsi: a 3-D cube with the most bands, the smaller grid first (an LR-HSI beside its ground
    truth); truth: a 3-D cube with the most bands, the larger grid first; hr_msi: not one of the
    arrays with the most bands (those are hyperspectral), a multi-band image before a 2-D one
    (a mask or a single band beside it), then the fewest bands and the larger grid."""
    if role not in ARRAY_ROLES:
        raise ValueError(f"role must be one of {ARRAY_ROLES}, got {role!r}")

    def bands(shape):
        return 1 if len(shape) == 2 else int(shape[2])

    def pixels(shape):
        return int(shape[0]) * int(shape[1])

    cubes = [(n, tuple(s)) for n, s, _ in arrays if len(s) in (2, 3) and 0 not in tuple(s)]
    if role != "hr_msi":
        cubes = [(n, s) for n, s in cubes if len(s) == 3 and s[2] > 1]
    elif len({bands(s) for _, s in cubes}) > 1:
        most = max(bands(s) for _, s in cubes)
        cubes = [(n, s) for n, s in cubes if bands(s) < most]
    if not cubes:
        return None
    if role == "lr_hsi":
        key = lambda ns: (bands(ns[1]), -pixels(ns[1]))          # noqa: E731
    elif role == "truth":
        key = lambda ns: (bands(ns[1]), pixels(ns[1]))           # noqa: E731
    else:
        key = lambda ns: (len(ns[1]) == 3, -bands(ns[1]), pixels(ns[1]))   # noqa: E731
    ranked = sorted(cubes, key=key, reverse=True)
    if len(ranked) > 1 and key(ranked[0]) == key(ranked[1]):
        return None
    return ranked[0][0]
