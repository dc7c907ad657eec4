"""HDF5 (.h5, .hdf5, .he5, and MATLAB v7.3 underneath): datasets listed and guarded against
their headers, wavelengths from attributes or a sibling dataset, a nodata attribute read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..core.errors import InputError
from .common import (Cube, TRUNCATED, TransposedDataset, WAVELENGTH_NAMES, _MATLAB_CLASSES,
                     _MAX_META_ELEMENTS, _NUMERIC_KINDS, _check_declared, _choose, _finish, _numeric_dtype,
                     _read_blocks, _reading, _to_nm)


def _h5_entries(f, matlab: bool) -> list:
    """(path, shape, dtype) of the numeric datasets of an open h5py file, groups walked."""
    import h5py
    out = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        if isinstance(name, bytes):     # h5py gives bytes for a name that is not UTF-8
            name = name.decode("utf-8", "replace")
        if matlab:
            if name.startswith("#"):          # '#refs#', '#subsystem#': MATLAB internals
                return
            cls = obj.attrs.get("MATLAB_class")
            cls = cls.decode() if isinstance(cls, bytes) else cls
            if cls is not None and cls not in _MATLAB_CLASSES:
                return                         # char, cell, struct fields, function handles
            if obj.attrs.get("MATLAB_empty"):
                return
        if obj.dtype.kind not in _NUMERIC_KINDS or obj.shape is None:
            return
        shape = tuple(reversed(obj.shape)) if matlab else tuple(obj.shape)
        out.append((name, shape, str(obj.dtype)))

    with _reading(Path(f.filename), "HDF5"):
        f.visititems(visit)
    return out


def _open_h5(p: Path, label: str):
    import h5py
    with _reading(p, label):
        return h5py.File(str(p), "r")


def _h5_guard(p: Path, ds, label: str) -> None:
    """Refuse a dataset whose declared size the file cannot hold, before anything is read.

    HDF5 happily returns fill values for chunks that were never written, so a damaged
    header declaring 10^12 elements would read as a giant array of zeros: the stored bytes
    (and for compressed data the chunk count) must account for the declared shape. Data in
    external files or virtual datasets (which point at other files) is refused outright.
    """
    import h5py
    with _reading(p, label):
        dtype = _numeric_dtype(p, label, ds.dtype)
        shape = tuple(ds.shape or ())
        dcpl = ds.id.get_create_plist()
        layout = dcpl.get_layout()
        if layout == h5py.h5d.VIRTUAL or dcpl.get_external_count() > 0:
            raise InputError(f"'{p}' cannot be read as {label}: dataset '{ds.name}' keeps its data in "
                             f"other files (external or virtual storage)")
        stored = min(int(ds.id.get_storage_size()), p.stat().st_size)
        filtered = dcpl.get_nfilters() > 0
        need = _check_declared(p, label, shape, dtype, stored, compressed=filtered)
        if layout == h5py.h5d.CONTIGUOUS and need:
            offset = ds.id.get_offset()
            if offset is None or offset + need > p.stat().st_size:
                raise InputError(f"'{p}' cannot be read as {label}: dataset '{ds.name}' lies beyond the "
                                 f"end of the file (truncated or corrupted)")
        if layout == h5py.h5d.CHUNKED and filtered and need:
            chunks = ds.chunks or shape
            expected = 1
            for n, c in zip(shape, chunks):
                expected *= -(-n // max(1, c))
            if ds.id.get_num_chunks() < expected:
                raise InputError(f"'{p}' cannot be read as {label}: {TRUNCATED} (dataset '{ds.name}' holds "
                                 f"{ds.id.get_num_chunks()} of its {expected} chunks)")


def _h5_wavelengths(f, ds, name: str, matlab: bool):
    p = Path(f.filename)
    with _reading(p, "HDF5"):
        return _h5_wavelengths_unchecked(f, ds, name, p)


def _text_attr(value) -> Optional[str]:
    value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return value if isinstance(value, str) else None


def _h5_wavelengths_unchecked(f, ds, name: str, p: Path):
    import h5py
    for obj in (ds, f):
        for attr in WAVELENGTH_NAMES:
            if attr in obj.attrs:
                units = obj.attrs.get("wavelength_units", obj.attrs.get("wavelength units"))
                values = np.asarray(obj.attrs[attr])
                if values.dtype.kind not in _NUMERIC_KINDS or values.size > _MAX_META_ELEMENTS:
                    return None
                return _to_nm(values, _text_attr(units))
    parent = name.rsplit("/", 1)[0] if "/" in name else ""
    for group in dict.fromkeys((parent, "")):
        g = f[group] if group else f
        if not isinstance(g, h5py.Group):
            continue
        for n in WAVELENGTH_NAMES:
            w = g.get(n)
            if isinstance(w, h5py.Dataset) and w.dtype.kind in _NUMERIC_KINDS and w.size <= _MAX_META_ELEMENTS:
                _h5_guard(p, w, "HDF5")
                return _to_nm(w[()], _text_attr(w.attrs.get("units")))
    return None


def _load_hdf5(p: Path, key, lazy: bool, matlab: bool, cancel=None) -> Cube:
    label = "MATLAB v7.3 .mat (HDF5)" if matlab else "HDF5"
    f = _open_h5(p, label)
    try:
        entries = _h5_entries(f, matlab)
        name = _choose(p, entries, key, "datasets" if not matlab else "arrays")
        with _reading(p, label):
            ds = f[name]
        _h5_guard(p, ds, label)
        wl = _h5_wavelengths(f, ds, name, matlab)
        nodata = _h5_nodata(p, ds, name)
        if lazy:
            data = TransposedDataset(ds) if matlab else ds
            with _reading(p, label):     # the NaN check reads a few rows
                return _with_nodata(_finish(p, data, name, wl, lazy=True, handle=f), nodata)
        shape = tuple(reversed(ds.shape)) if matlab else tuple(ds.shape)
        with _reading(p, label):
            if ds.dtype.kind in _NUMERIC_KINDS and len(shape) in (2, 3) and 0 not in shape:
                arr = _read_blocks(ds, shape, cancel, matlab=matlab, p=p)
            else:            # _finish names what is wrong with it
                arr = ds[()].T if matlab else ds[()]
        f.close()
        return _with_nodata(_finish(p, arr, name, wl, lazy=False, cancel=cancel), nodata)
    except BaseException:
        f.close()
        raise


def _h5_nodata(p: Path, ds, name: str) -> Optional[float]:
    """A nodata value declared on an HDF5 dataset ('nodata', '_FillValue', 'missing_value'):
    one number (or the same number repeated, one per band). Anything else is an InputError
    naming the file, the dataset and the attribute: a nodata value lost in silence would make
    nodata pixels data."""
    for attr in ("nodata", "_FillValue", "missing_value", "no_data_value"):
        if attr in ds.attrs:
            raw = ds.attrs[attr]
            try:
                value = np.asarray(_text_attr(raw) if isinstance(raw, (bytes, str)) else raw,
                                   dtype=np.float64).ravel()
            except (TypeError, ValueError):
                value = None
            if value is None or value.size == 0 or not (np.all(value == value[0]) or np.all(np.isnan(value))):
                raise InputError(f"'{p}': the nodata attribute '{attr}' of dataset '{name}' holds "
                                 f"{str(raw)[:40]!r}, not one number; fix or remove it")
            return float(value[0])
    return None


def _with_nodata(cube: Cube, nodata: Optional[float]) -> Cube:
    if nodata is not None:
        from .georef import GeoInfo
        cube.geo = GeoInfo(None, None, nodata)
    return cube
