"""MATLAB .mat files: v5/v7 read here, header by header (scipy allocates what a damaged header
declares, and some damaged files crash it), v7.3 through the HDF5 reader with MATLAB's axes
reversed back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import struct
from typing import Dict, Optional
import zlib

import numpy as np

from ..core.errors import InputError
from ..core.events import check_cancel
from .common import (Cube, TRUNCATED, _MAX_INFLATE, _MAX_META_ELEMENTS, _choose, _finish, _fmt_shape,
                     _is_hdf5, _is_wavelength_name, _reading, _to_nm)
from .h5 import _load_hdf5


# MAT v5 is read here rather than by scipy.io: scipy allocates what a variable's header
# declares before it notices the data is not there, and some damaged files crash it
# (a segmentation fault, not an exception). Only what a cube needs is read: numeric and
# logical arrays, plain or compressed; other variables (text, cells, structs, sparse
# matrices, objects) are listed by nobody and never read. MAT v4 files are refused.
_MI_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MX_DTYPES = {6: "float64", 7: "float32", 8: "int8", 9: "uint8", 10: "int16", 11: "uint16",
              12: "int32", 13: "uint32", 14: "int64", 15: "uint64"}
_MAT_LABEL = "MATLAB .mat"


@dataclass
class _MatVar:
    name: str
    dtype: str              # numpy dtype of the array (bool for logical)
    dims: tuple
    pos: int                # byte offset of the element's tag
    nbytes: int             # bytes after the tag
    compressed: bool
    complex: bool
    endian: str = "<"


def _mat_v5_variables(p: Path) -> Dict[str, _MatVar]:
    """The numeric variables of a MAT v5 file, from their headers only (name -> _MatVar)."""
    size = p.stat().st_size
    out: Dict[str, _MatVar] = {}
    with open(p, "rb") as fh, _reading(p, _MAT_LABEL):
        head = fh.read(128)
        if len(head) < 128 and head.startswith(b"MATLAB"):
            raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (it ends inside its "
                             f"128-byte header, after {len(head)} bytes)")
        if len(head) < 128 or 0 in head[:4] or head[126:128] not in (b"IM", b"MI"):
            raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: not a MATLAB v5 or v7.3 file")
        e = "<" if head[126:128] == b"IM" else ">"
        version = struct.unpack(e + "H", head[124:126])[0]
        if version == 0x0200:     # a v7.3 header without the HDF5 file that should follow it
            raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (a MATLAB v7.3 header "
                             f"without the HDF5 data that follows it; {size} bytes)")
        if version != 0x0100:
            raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: unknown MAT-file version")
        pos = 128
        while pos + 8 <= size:
            fh.seek(pos)
            mtype, nbytes = struct.unpack(e + "II", fh.read(8))
            if nbytes == 0 or pos + 8 + nbytes > size:
                raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (a variable at byte {pos} "
                                 f"declares {nbytes} bytes but the file ends {size - pos - 8} bytes later)")
            if mtype == 15:       # miCOMPRESSED: the variable's header starts the zlib stream
                try:
                    prefix = zlib.decompressobj().decompress(fh.read(min(nbytes, 1 << 16)), 4096)
                except zlib.error as exc:
                    raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (the compressed "
                                     f"variable at byte {pos} does not decompress: {exc})") from None
            elif mtype == 14:     # miMATRIX
                fh.seek(pos)
                prefix = fh.read(min(nbytes + 8, 4096 + 8))
            else:
                raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: unexpected element type {mtype} "
                                 f"at byte {pos}")
            var = _mat_v5_header(p, prefix, e)
            if var is not None:
                var.pos, var.nbytes, var.compressed, var.endian = pos, nbytes, mtype == 15, e
                out[var.name] = var
            pos += 8 + nbytes
        if pos < size:     # elements follow each other to the end: a few bytes left are a cut tag
            raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (it ends {size - pos} bytes "
                             f"into the tag of a variable at byte {pos})")
    return out


def _mat_tag(p: Path, b: bytes, off: int, e: str) -> tuple:
    """(type, nbytes, data start, next element) of the data element at `off` of `b`."""
    if off + 8 > len(b):
        raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (a variable's header is cut short)")
    t, n = struct.unpack_from(e + "II", b, off)
    if t >> 16:                                  # small element: type and size share 4 bytes
        return t & 0xFFFF, t >> 16, off + 4, off + 8
    return t, n, off + 8, off + 8 + n + (-n % 8)


def _mat_v5_header(p: Path, b: bytes, e: str) -> Optional[_MatVar]:
    """Name, type and dims of the miMATRIX element at the start of `b`; None when the
    variable is not a numeric or logical array."""
    bad = InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (a variable's header is damaged)")
    t, _, _, _ = _mat_tag(p, b, 0, e)
    if t != 14:
        raise bad
    t, n, start, nxt = _mat_tag(p, b, 8, e)      # array flags
    if t != 6 or n != 8 or start + 8 > len(b):
        raise bad
    flags = struct.unpack_from(e + "I", b, start)[0]
    cls = flags & 0xFF
    t, n, start, nxt = _mat_tag(p, b, nxt, e)    # dimensions
    if t != 5 or n % 4 or not 1 <= n // 4 <= 32 or start + n > len(b):
        raise bad
    dims = struct.unpack_from(e + f"{n // 4}i", b, start)
    t, n, start, nxt = _mat_tag(p, b, nxt, e)    # name
    if t != 1 or start + n > len(b):
        raise bad
    name = b[start:start + n].decode("latin1")
    if cls not in _MX_DTYPES:
        return None
    dtype = "bool" if flags & 0x200 and cls == 9 else _MX_DTYPES[cls]
    return _MatVar(name, dtype, tuple(int(d) for d in dims), 0, 0, False, bool(flags & 0x800))


def _mat_v5_read(p: Path, var: _MatVar) -> np.ndarray:
    """The array of one variable, its data checked against its dims before anything is
    allocated: prod(dims) values of the stored type, inside the variable's element."""
    if any(d < 0 for d in var.dims):
        raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: variable '{var.name}' declares a negative "
                         f"size ({', '.join(map(str, var.dims))})")
    e = var.endian
    with open(p, "rb") as fh, _reading(p, _MAT_LABEL):
        fh.seek(var.pos + 8)
        raw = fh.read(var.nbytes)
        if var.compressed:
            z = zlib.decompressobj()
            try:
                head = z.decompress(raw, 8)
                if len(head) < 8:
                    raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (variable "
                                     f"'{var.name}' is cut short)")
                total = struct.unpack(e + "I", head[4:8])[0] + 8
                if total <= 8 or total > var.nbytes * _MAX_INFLATE:
                    raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (variable "
                                     f"'{var.name}' declares more data than its compressed bytes can hold)")
                body = head + z.decompress(z.unconsumed_tail, total - 8)
            except zlib.error as exc:
                raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: {TRUNCATED} (the compressed data of "
                                 f"variable '{var.name}' does not decompress: {exc})") from None
        else:
            body = struct.pack(e + "II", 14, var.nbytes) + raw
    count = 1
    for d in var.dims:
        count *= d
    _, _, _, nxt = _mat_tag(p, body, 8, e)          # flags
    for _ in range(2):                              # dims, name
        _, _, _, nxt = _mat_tag(p, body, nxt, e)
    parts = []
    for _ in range(2 if var.complex else 1):        # real part, then imaginary part
        t, n, start, nxt = _mat_tag(p, body, nxt, e)
        mi = _MI_DTYPES.get(t)
        width = np.dtype(mi).itemsize if mi else 0
        if not width or n % width or n // width != count or start + n > len(body):
            raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: variable '{var.name}' declares "
                             f"{_fmt_shape(var.dims)} values but its data does not hold them "
                             f"(truncated or corrupted)")
        parts.append(np.frombuffer(body, dtype=e + mi, count=count, offset=start))
    if var.complex:
        a = parts[0].astype(np.complex128) + 1j * parts[1]
    else:
        a = parts[0].astype(var.dtype)
    return a.reshape(var.dims, order="F")


def _mat_v5_entries(p: Path) -> list:
    return [(v.name, v.dims, v.dtype) for v in _mat_v5_variables(p).values()]


def _load_mat(p: Path, key, lazy: bool, cancel=None) -> Cube:
    if _is_hdf5(p):
        return _load_hdf5(p, key, lazy, matlab=True, cancel=cancel)
    check_cancel(cancel)        # a v5 variable is read in one piece: checked before and after
    variables = _mat_v5_variables(p)
    entries = [(v.name, v.dims, v.dtype) for v in variables.values()]
    name = _choose(p, entries, key)
    wl_name = next((n for n in sorted(variables) if _is_wavelength_name(n) and n != name
                    and int(np.prod(variables[n].dims, dtype=object)) <= _MAX_META_ELEMENTS), None)
    wl = _to_nm(_mat_v5_read(p, variables[wl_name])) if wl_name else None
    data = _mat_v5_read(p, variables[name])
    check_cancel(cancel)
    return _finish(p, data, name, wl, lazy=False)
