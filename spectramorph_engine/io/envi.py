"""ENVI: a `.hdr` header with its data file (or the data file with the header beside it),
through `spectral.envi`; wavelengths and map information from the header.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..core.errors import InputError
from .common import (Cube, ENVI_DATA_SUFFIXES, _check_file, _declared_bytes, _finish, _numeric_dtype,
                     _read_blocks, _reading, _to_nm)


def _envi_pair(p: Path) -> tuple:
    """(header, data file) of an ENVI image given either of them."""
    if p.suffix.lower() == ".hdr":
        base = p.with_suffix("")
        for cand in [base] + [base.with_name(base.name + e) for s in ENVI_DATA_SUFFIXES
                              for e in (s, s.upper())]:
            if cand.is_file():
                return p, cand
        raise InputError(f"ENVI header '{p}' has no data file beside it "
                         f"(looked for {base.name} with {', '.join(ENVI_DATA_SUFFIXES)} or no extension)")
    for hdr in (p.with_suffix(".hdr"), p.with_suffix(".HDR"), p.with_name(p.name + ".hdr")):
        if hdr.is_file():
            return hdr, p
    raise InputError(f"ENVI data file '{p}' has no header '{p.with_suffix('.hdr').name}' beside it")


def _open_envi(p: Path):
    import spectral.io.envi as envi
    hdr, data_file = _envi_pair(p)
    _check_file(hdr)
    _check_file(data_file)
    with _reading(hdr, "ENVI"):   # spectral raises its own Envi* exceptions, ValueError, KeyError...
        img = envi.open(str(hdr), str(data_file))
        dims = (int(img.nrows), int(img.ncols), int(img.nbands))
        dtype = _numeric_dtype(hdr, "ENVI", img.dtype)
        offset = int(img.offset)
    if min(dims) < 1 or offset < 0:
        raise InputError(f"'{hdr}' cannot be read as ENVI: it declares {dims[0]} lines, {dims[1]} samples, "
                         f"{dims[2]} bands and header offset {offset}")
    need = offset + _declared_bytes(hdr, "ENVI", dims, dtype)
    have = data_file.stat().st_size
    if have < need:
        raise InputError(f"'{data_file}' cannot be read as ENVI: data file is truncated "
                         f"({have} of {need} bytes)")
    return img, hdr


def _envi_wavelengths(img) -> Optional[np.ndarray]:
    centers = getattr(img.bands, "centers", None)
    if not centers:
        return None
    return _to_nm(centers, getattr(img.bands, "band_unit", None))


def _load_envi(p: Path, lazy: bool, cancel=None) -> Cube:
    img, hdr = _open_envi(p)
    with _reading(p, "ENVI"):
        # BIP view: a memmap whose axes already read rows x cols x bands, whatever the interleave.
        data = img.open_memmap(interleave="bip")
        if not lazy:
            data = _read_blocks(data, tuple(data.shape), cancel, p=p)
        wl = _envi_wavelengths(img)
        from .georef import envi_geo
        geo = envi_geo(img.metadata)
    cube = _finish(p, data, None, wl, lazy=lazy, cancel=cancel)
    cube.geo = geo
    return cube
