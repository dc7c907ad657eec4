"""Writers: whole cubes to .npy, .mat (v5 or v7.3), .h5, (Geo)TIFF and ENVI, each committed
atomically."""
from __future__ import annotations

import contextlib
import logging
import re
import time
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .atomic import atomic_path, atomic_write_text
from .atomic import commit as _commit, discard as _discard
from ..core.errors import InputError

from .common import (H5_SUFFIXES, MAT_V5_LIMIT_BYTES, PathLike, SAVE_SUFFIXES, TIF_SUFFIXES,
    _MATLAB_CLASSES, _fmt_shape, _unknown_suffix)
from .npy import _npy_sidecar
log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- writers
def _validated(data, wavelengths) -> tuple:
    arr = np.asarray(data)
    if arr.ndim not in (2, 3):
        raise InputError(f"cannot save an array of shape {_fmt_shape(arr.shape)}: 2-D or 3-D needed")
    wl = None
    if wavelengths is not None:
        wl = np.asarray(wavelengths, dtype=np.float64).ravel()
        bands = arr.shape[2] if arr.ndim == 3 else 1
        if wl.size != bands:
            raise InputError(f"{wl.size} wavelengths given for a cube of {bands} bands")
    return arr, wl


def _stem_name(p: Path) -> str:
    """The variable / dataset name for a file: its stem, made a valid MATLAB identifier."""
    name = re.sub(r"\W", "_", p.stem)
    if not name or not name[0].isalpha():
        name = "x" + name
    return name[:63]


def _write_wavelength_text(path: Path, wl: np.ndarray) -> None:
    atomic_write_text(path, "wavelength_nm\n" + "".join(f"{v:.6g}\n" for v in wl))


def _mat_header_73() -> bytes:
    """MATLAB's 512-byte userblock for a v7.3 file: text, subsystem offset, version 0x0200, 'IM'."""
    text = ("MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: "
            f"{time.strftime('%a %b %d %H:%M:%S %Y')} HDF5 schema 1.00 .").encode("ascii")
    head = text.ljust(116, b" ")[:116] + b"\x00" * 8 + b"\x00\x02" + b"IM"
    return head.ljust(512, b"\x00")


def _matlab_class(dtype) -> bytes:
    inv = {v: k for k, v in _MATLAB_CLASSES.items()}
    return inv.get(np.dtype(dtype).name, "double").encode("ascii")


def _mat73_dataset(f, name: str, shape, dtype, **kw):
    """Create `name` in MATLAB layout: h5py shape is the MATLAB shape reversed."""
    mshape = tuple(shape) if len(shape) >= 2 else (1, int(np.prod(shape)))
    ds = f.create_dataset(name, shape=tuple(reversed(mshape)), dtype=dtype, **kw)
    ds.attrs.create("MATLAB_class", np.bytes_(_matlab_class(dtype)))
    return ds


def _mat73_put(f, name: str, arr) -> None:
    arr = np.asarray(arr)
    if arr.ndim < 2:
        arr = arr.reshape(1, -1)   # MATLAB has no 1-D arrays: a row vector, as scipy's savemat
    ds = _mat73_dataset(f, name, arr.shape, arr.dtype)
    ds[...] = arr.T


def _stamp_mat73(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.write(_mat_header_73())


def _save_mat(tmp: Path, variables: dict) -> None:
    import scipy.io
    big = any(np.asarray(v).nbytes > MAT_V5_LIMIT_BYTES for v in variables.values())
    if not big:
        scipy.io.savemat(str(tmp), variables, do_compression=False, oned_as="row")
        return
    import h5py
    log.info("writing '%s' as MATLAB v7.3: an array exceeds v5's 2 GB limit", tmp)
    with h5py.File(str(tmp), "w", userblock_size=512) as f:
        for name, arr in variables.items():
            _mat73_put(f, name, arr)
    _stamp_mat73(tmp)


def _h5_chunks(shape, itemsize: int) -> tuple:
    """Chunks of whole pixel rows, about 4 MB each (one row if a row is bigger)."""
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    rows = int(max(1, min(shape[0], (4 << 20) // row_bytes)))
    return (rows,) + tuple(int(s) for s in shape[1:])


_H5_COMPRESSION = dict(compression="gzip", compression_opts=1, shuffle=True)


def _h5_put(f, name: str, arr) -> None:
    arr = np.asarray(arr)
    kw = dict(_H5_COMPRESSION, chunks=_h5_chunks(arr.shape, arr.dtype.itemsize)) if arr.ndim >= 2 else {}
    f.create_dataset(name, data=arr, **kw)


def _h5_fill(ds, arr) -> None:
    """ds[...] = arr, its chunks deflated on worker threads (h5_chunks): h5py deflates them one
    after another on the calling thread (`python -m bench.pieces h5-save`: ~8x on 2 cores)."""
    from .h5_chunks import ChunkCompressor
    if arr.ndim < 2 or not ChunkCompressor.suits(ds):
        ds[...] = arr
        return
    deflate = ChunkCompressor(ds, _H5_COMPRESSION["compression_opts"])
    try:
        deflate.write(0, arr)
    except BaseException:
        deflate.discard()
        raise
    deflate.close()


def _h5_write_meta(f, ds, wl, extra) -> None:
    if wl is not None:
        ds.attrs["wavelengths"] = wl
        ds.attrs["wavelength_units"] = "nm"
        if "wavelengths" not in f:
            f.create_dataset("wavelengths", data=wl).attrs["units"] = "nm"
    for k, v in (extra or {}).items():
        _h5_put(f, k, v)


def _write_tif(path: Path, arr, wl) -> None:
    import tifffile
    meta = {} if wl is None else {"wavelength": [float(v) for v in wl], "wavelength_units": "nm"}
    tifffile.imwrite(str(path), arr, photometric="minisblack", planarconfig="contig",
                     bigtiff=arr.nbytes > 2**31, metadata=meta)


def _envi_metadata(wl, geo=None) -> dict:
    from .georef import envi_map_info
    meta = {"description": "SpectraMorph Studio result", **envi_map_info(geo)}
    if wl is not None:
        meta["wavelength"] = [f"{v:.6g}" for v in wl]
        meta["wavelength units"] = "Nanometers"
    return meta


def _envi_names(path: Path) -> tuple:
    """(header, data file) to write for a target named .hdr or .img."""
    if path.suffix.lower() == ".hdr":
        return path, path.with_suffix(".img")
    return path.with_suffix(".hdr"), path


@contextlib.contextmanager
def _atomic_envi(path: Path) -> Iterator[tuple]:
    """Temporary (header, data) pair; committed data first, then header."""
    hdr, img = _envi_names(path)
    with atomic_path(hdr) as tmp_hdr:
        tmp_img = tmp_hdr.with_suffix(img.suffix)
        try:
            yield tmp_hdr, tmp_img
            _commit(tmp_img, img)
        except BaseException:
            _discard(tmp_img)
            raise


def _check_extra(extra) -> dict:
    out = {}
    for k, v in (extra or {}).items():
        if not re.fullmatch(r"[A-Za-z]\w{0,62}", str(k)):
            raise InputError(f"extra array name {k!r} is not a valid variable name")
        out[str(k)] = np.asarray(v)
    return out


def save_cube(path: PathLike, data, wavelengths=None, extra: Optional[dict] = None,
              name: Optional[str] = None, geo=None, geotiff: bool = False) -> Path:
    """Write a cube by the suffix of `path` (see the module doc); returns the path written.
    `name`: the variable / dataset name in .mat and .h5 (default: the file's stem).
    `geo` (georef.GeoInfo): the grid's CRS and transform, written to a .tif (as a GeoTIFF) and
    an ENVI header (map info). `geotiff`: a .tif is written by rasterio as a tiled GeoTIFF with
    NaN nodata and wavelengths in its band descriptions even without `geo`."""
    p = Path(path).expanduser()
    s = p.suffix.lower()
    if s not in SAVE_SUFFIXES:
        raise _unknown_suffix(p, SAVE_SUFFIXES, "saving a cube")
    arr, wl = _validated(data, wavelengths)
    extra = _check_extra(extra)
    if name is not None and not re.fullmatch(r"[A-Za-z]\w{0,62}", name):
        raise InputError(f"{name!r} is not a valid variable name for '{p}'")
    name = name or _stem_name(p)
    if s == ".npy":
        if extra:
            log.warning("'%s': .npy holds one array; extra arrays %s not saved", p, sorted(extra))
        with atomic_path(p) as tmp:
            np.save(str(tmp), arr)
        side = _npy_sidecar(p)
        if wl is not None:
            _write_wavelength_text(side, wl)
        elif side.exists():
            _discard(side)   # it described the array just replaced
    elif s == ".mat":
        variables = {name: arr}
        if wl is not None:
            variables["wavelengths"] = wl[None, :]
        for k, v in extra.items():
            variables.setdefault(k, v)
        with atomic_path(p) as tmp:
            _save_mat(tmp, variables)
    elif s in H5_SUFFIXES:
        import h5py
        with atomic_path(p) as tmp:
            with h5py.File(str(tmp), "w") as f:
                ds = f.create_dataset(name, shape=arr.shape, dtype=arr.dtype,
                                      chunks=_h5_chunks(arr.shape, arr.dtype.itemsize), **_H5_COMPRESSION)
                _h5_fill(ds, arr)
                _h5_write_meta(f, ds, wl, extra)
    elif s in TIF_SUFFIXES:
        with atomic_path(p) as tmp:
            if geotiff or geo is not None:
                from .georef import write_geotiff
                write_geotiff(tmp, arr, geo, wl)
            else:
                _write_tif(tmp, arr, wl)
    else:
        import spectral.io.envi as envi
        with _atomic_envi(p) as (tmp_hdr, tmp_img):
            envi.save_image(str(tmp_hdr), arr, ext=tmp_img.suffix, interleave="bip", force=True,
                            metadata=_envi_metadata(wl, geo))
        p = _envi_names(p)[0]
    return p


