"""Readers: cubes of seven formats (MATLAB v5/v7.3, HDF5, npy/npz, (Geo)TIFF, ENVI), small
matrices and wavelength lists; the rules are in the package docstring."""
from __future__ import annotations

import logging
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np


from ..core.errors import InputError
from ..core.events import check_cancel

from .common import (CUBE_SUFFIXES, Cube, ENVI_DATA_SUFFIXES, MATRIX_SUFFIXES, PathLike, TransposedDataset,
    WAVELENGTH_NAMES, WAVELENGTH_SUFFIXES, _BLOCK_BYTES, _MATLAB_CLASSES, _MAX_INFLATE, _MAX_META_ELEMENTS,
    _NUMERIC_KINDS, _check_declared, _check_file, _choose, _declared_bytes, _finish, _fmt_shape, _is_hdf5,
    _is_wavelength_name, _kind, _numeric_dtype, _read_blocks, _reading, _short, _to_nm, _unknown_suffix,
    TRUNCATED)
log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- MATLAB
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


# ----------------------------------------------------------------------------- numpy
def _npy_sidecar(p: Path) -> Path:
    return p.with_name(p.stem + "_wavelengths.txt")


_NPY_LABEL = "NumPy .npy"
_NPZ_LABEL = "NumPy .npz"
_MAX_NPY_HEADER = 1 << 16


def _npy_header(fh, p: Path, label: str, available: int) -> tuple:
    """(shape, dtype, fortran_order, header bytes) of the .npy stream `fh`, positioned at its
    start; `available` is the number of bytes the stream holds. The header length and the
    data it declares are checked against `available` before numpy parses or reads anything
    (numpy itself reads a header of any declared length, and allocates a declared shape)."""
    head = fh.read(12)
    if len(head) < 10 or head[:6] != b"\x93NUMPY":
        raise InputError(f"'{p}' cannot be read as {label}: not a .npy array (no NUMPY signature)")
    major = head[6]
    if major == 1:
        hlen, start = struct.unpack("<H", head[8:10])[0], 10
    elif major in (2, 3) and len(head) == 12:
        hlen, start = struct.unpack("<I", head[8:12])[0], 12
    else:
        raise InputError(f"'{p}' cannot be read as {label}: unknown .npy format version {major}.{head[7]}")
    if hlen > _MAX_NPY_HEADER or start + hlen > available:
        raise InputError(f"'{p}' cannot be read as {label}: its header declares {hlen} bytes, more than the "
                         f"file holds or a header needs (damaged)")
    raw = head + fh.read(max(0, start + hlen - len(head)))
    if len(raw) < start + hlen:
        raise InputError(f"'{p}' cannot be read as {label}: the file ends inside its header (truncated)")
    import io as _stdio
    with _reading(p, label):
        buf = _stdio.BytesIO(raw[8:])
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        else:
            # version 3 differs from 2 only by a utf-8 header (non-ASCII field names)
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
    dtype = _numeric_dtype(p, label, dtype)
    _check_declared(p, label, shape, dtype, available - start - hlen)
    return tuple(int(x) for x in shape), dtype, bool(fortran), start + hlen


def _read_exactly(fh, arr: np.ndarray, p: Path, label: str, cancel=None) -> None:
    view = memoryview(arr.reshape(-1).view(np.uint8))
    got = 0
    while got < len(view):
        check_cancel(cancel)
        n = fh.readinto(view[got:got + _BLOCK_BYTES])
        if not n:
            raise InputError(f"'{p}' cannot be read as {label}: the data ends after {got} of "
                             f"{len(view)} bytes (truncated)")
        got += n


def _read_npy(p: Path, lazy: bool = False, header_only: bool = False, cancel=None):
    """The array of a .npy file (a read-only memmap when lazy), size checked first;
    with header_only, (shape, dtype) without reading the data."""
    size = p.stat().st_size
    with open(p, "rb") as fh:
        shape, dtype, fortran, offset = _npy_header(fh, p, _NPY_LABEL, size)
        if header_only:
            return shape, dtype
        order = "F" if fortran else "C"
        if lazy:
            with _reading(p, _NPY_LABEL):
                return np.memmap(str(p), dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
        from ..core.memory import require
        count = int(np.prod(shape, dtype=np.int64))
        # the array, and its float32 copy when the cube needs converting
        require(count * (dtype.itemsize + (4 if dtype != np.float32 else 0)),
                f"loading '{p}' ({_fmt_shape(shape)} {dtype.name})", "crop it, or save it as float32")
        arr = np.empty(shape, dtype=dtype, order=order)
        _read_exactly(fh, arr.T if fortran else arr, p, _NPY_LABEL, cancel)   # .T: the C-ordered view
        return arr


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


class _Npz:
    """A .npz archive opened for hostile input: members are .npy arrays, each read only after
    its zip entry and its .npy header agree with the bytes the archive holds for it."""

    def __init__(self, p: Path):
        self.p = p
        self.size = p.stat().st_size
        with _reading(p, _NPZ_LABEL):
            self.z = zipfile.ZipFile(str(p))
            infos = self.z.infolist()
        self.members = {}
        for info in infos:
            if info.filename.endswith(".npy") and not info.is_dir():
                self.members[info.filename[:-4]] = info

    def close(self) -> None:
        self.z.close()

    def __enter__(self) -> "_Npz":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def files(self) -> list:
        return list(self.members)

    def _open(self, name: str):
        info = self.members[name]
        p = self.p
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InputError(f"'{p}' cannot be read as {_NPZ_LABEL}: member '{name}' uses an unsupported "
                             f"compression (method {info.compress_type})")
        if info.compress_size > self.size or (info.compress_type == zipfile.ZIP_STORED
                                              and info.file_size != info.compress_size) \
                or info.file_size > info.compress_size * _MAX_INFLATE:
            raise InputError(f"'{p}' cannot be read as {_NPZ_LABEL}: member '{name}' declares sizes the "
                             f"archive cannot hold (damaged)")
        with _reading(p, _NPZ_LABEL):
            return self.z.open(info), info.file_size

    def header(self, name: str) -> tuple:
        fh, available = self._open(name)
        with fh, _reading(self.p, _NPZ_LABEL):
            shape, dtype, _, _ = _npy_header(fh, self.p, _NPZ_LABEL, available)
        return shape, dtype

    def read(self, name: str) -> np.ndarray:
        fh, available = self._open(name)
        with fh, _reading(self.p, _NPZ_LABEL):
            shape, dtype, fortran, _ = _npy_header(fh, self.p, _NPZ_LABEL, available)
            arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
            _read_exactly(fh, arr.T if fortran else arr, self.p, _NPZ_LABEL)
            fh.read(1)      # past the end: zipfile checks the member's CRC here
        return arr


def _npz_entries(z: _Npz) -> list:
    out = []
    for name in z.files:
        try:
            shape, dtype = z.header(name)
        except InputError:
            if len(z.files) == 1:
                raise
            log.warning("'%s': member '%s' is unreadable, skipped", z.p, name)
            continue
        if dtype.kind in _NUMERIC_KINDS:
            out.append((name, shape, str(dtype)))
    return out


def _open_npz(p: Path) -> _Npz:
    return _Npz(p)


def _load_npz(p: Path, key) -> Cube:
    with _open_npz(p) as z:
        entries = _npz_entries(z)
        name = _choose(p, entries, key)
        data = z.read(name)
        wl_name = next((n for n, s, _ in entries if _is_wavelength_name(n) and n != name
                        and int(np.prod(s)) <= _MAX_META_ELEMENTS), None)
        wl = _to_nm(z.read(wl_name)) if wl_name else None
    return _finish(p, data, name, wl, lazy=False)


# ----------------------------------------------------------------------------- TIFF
def _band_first(shape) -> bool:
    """The TIFF axis rule: first axis smallest, <= 512, both others larger."""
    return len(shape) == 3 and shape[0] <= 512 and shape[0] < shape[1] and shape[0] < shape[2]


def _tif_guard(p: Path, series) -> None:
    """Refuse a TIFF whose pages declare more pixels than their strips / tiles can hold:
    tifffile allocates the whole declared array before it reads a byte."""
    size = p.stat().st_size
    dtype = _numeric_dtype(p, "TIFF", series.dtype)
    stored, compressed = 0, False
    for page in series.pages:
        if page is None:
            continue
        # a TiffFrame (a light page of a uniform series) keeps its compression on its keyframe
        compression = getattr(page, "compression", None)
        if compression is None:
            compression = page.keyframe.compression
        compressed = compressed or int(compression) != 1
        for off, n in zip(page.dataoffsets, page.databytecounts):
            if off < 0 or n < 0 or off + n > size:
                raise InputError(f"'{p}' cannot be read as TIFF: image data at byte {off} ({n} bytes) lies "
                                 f"beyond the end of the file ({size} bytes; truncated or damaged)")
            stored += n
    _check_declared(p, "TIFF", series.shape, dtype, min(stored, size), compressed=compressed)


def _read_tif(p: Path, header_only: bool = False):
    import tifffile
    with _reading(p, "TIFF"):   # tifffile raises TiffFileError, ValueError, struct.error...
        with tifffile.TiffFile(str(p)) as tf:
            if not tf.series:
                raise InputError(f"'{p}' cannot be read as TIFF: it holds no image")
            series = tf.series[0]
            axes, shape, dtype = series.axes, tuple(series.shape), str(series.dtype)
            _tif_guard(p, series)
            data = None if header_only else series.asarray()
            # tifffile's "shaped" JSON description is where save_cube puts the wavelengths.
            meta = (tf.shaped_metadata or ({},))[0] if tf.is_shaped else {}
            if not isinstance(meta, dict):
                meta = {}
    if data is not None:
        data = np.squeeze(data) if data.ndim > 3 else data
        shape = tuple(data.shape)
    else:
        shape = tuple(s for s in shape if s != 1) if len(shape) > 3 else shape
    contiguous = axes.endswith("S")
    if len(shape) == 3 and not contiguous and _band_first(shape):
        shape = (shape[1], shape[2], shape[0])
        if data is not None:
            data = np.ascontiguousarray(np.moveaxis(data, 0, -1))
    wl = next((meta[k] for k in WAVELENGTH_NAMES if k in meta), None)
    wl = _to_nm(wl, meta.get("wavelength_units")) if wl is not None else None
    return data, shape, dtype, wl


class WindowedRaster:
    """Lazy rows x cols x bands view of a GeoTIFF read through rasterio windows: indexing
    reads only the rows and columns asked for (`shape`, `dtype`, `ndim`, ints and slices of
    step 1 on the first two axes, anything on the band axis, `np.asarray`)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.shape = (dataset.height, dataset.width, dataset.count)
        self.dtype = np.dtype(dataset.dtypes[0])
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        from rasterio.windows import Window
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        spans, squeeze = [], []
        for axis, k in enumerate(key[:2]):
            n = self.shape[axis]
            if isinstance(k, (int, np.integer)):
                k = int(k) + n if k < 0 else int(k)
                if not 0 <= k < n:
                    raise IndexError(f"index {k} out of range for axis {axis} of size {n}")
                spans.append((k, k + 1))
                squeeze.append(axis)
            elif isinstance(k, slice) and k.step in (None, 1):
                start, stop, _ = k.indices(n)
                spans.append((start, max(start, stop)))
            else:
                raise TypeError("a windowed GeoTIFF takes ints and unit-step slices on rows and columns")
        (r0, r1), (c0, c1) = spans
        block = self.dataset.read(window=Window(c0, r0, c1 - c0, r1 - r0))       # bands x rows x cols
        out = np.moveaxis(block, 0, 2)[:, :, key[2]]
        for axis in reversed(squeeze):
            out = np.take(out, 0, axis=axis)
        return out

    def __array__(self, dtype=None, copy=None):
        a = np.moveaxis(self.dataset.read(), 0, 2)
        return a if dtype is None else a.astype(dtype, copy=False)

    def close(self) -> None:
        self.dataset.close()


def _load_tif_lazy(p: Path, cancel=None) -> Cube:
    """A (Geo)TIFF opened for windowed reading (rasterio), like .h5 and .npy with lazy=True."""
    import warnings
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from .georef import read_tiff_meta
    _read_tif(p, header_only=True)      # the header checked against the file before anything is read
    with _reading(p, "TIFF"), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        ds = rasterio.open(str(p))
        if len(set(ds.dtypes)) != 1:
            ds.close()
            raise InputError(f"'{p}' mixes band types {sorted(set(ds.dtypes))}: one type is needed")
    view = WindowedRaster(ds)
    geo, wl = read_tiff_meta(p, dataset=ds)
    with _reading(p, "TIFF"):     # the NaN check reads a few rows
        cube = _finish(p, view, None, wl, lazy=True, handle=view, cancel=cancel)
    cube.geo = geo
    return cube


def _load_tif(p: Path) -> Cube:
    from .georef import read_tiff_meta
    data, _, _, wl = _read_tif(p)
    geo, band_wl = read_tiff_meta(p)          # one more opening, for what tifffile does not read
    cube = _finish(p, data, None, band_wl if wl is None else wl, lazy=False)
    cube.geo = geo
    return cube


# ----------------------------------------------------------------------------- ENVI
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


# ----------------------------------------------------------------------------- public readers
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


def _load_any(path: PathLike, key: Optional[str], lazy: bool, cancel) -> Cube:
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


# Text tables (PSF kernels, SRF response tables, wavelength lists): the one reader for them all
# (io.load_matrix / load_wavelengths and the PSF / SRF file loaders in psf.py).
TEXT_COMMENT_PREFIXES = ("#", "%", ";")


def _decode_text(p: Path, label: str) -> str:
    """A text file's characters: UTF-8 with or without a byte-order mark, UTF-16 with one (Excel's
    "Unicode text"), else Latin-1 (a header such as 'Wellenlänge' saved by an older tool; the
    numbers are ASCII in every one of them). Binary bytes (NUL) are refused."""
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{label} cannot be read: {exc.strerror or exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"{label} cannot be read as UTF-16 text: {_short(exc)}") from None
    if b"\x00" in raw:
        raise InputError(f"{label} cannot be read as text: it holds binary bytes (NUL)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_text_table(path: PathLike, what: str = "") -> np.ndarray:
    """The numbers of a .txt/.csv/.tsv/.dat table as a 2-D float64 array (rows x columns).

    Separators: comma, semicolon (a decimal comma is then allowed: '0,5' is 0.5), tab or
    spaces, taken from the first data row. Blank lines and lines starting with '#', '%' or
    ';' are skipped; one header line (column names) before the numbers is allowed; a trailing
    separator at the end of a row is allowed. A byte-order mark is not part of the first value.
    `what` ("PSF", "SRF") names the file in the messages (InputError, one line).
    """
    p = Path(path)
    label = f"{what} file '{p}'" if what else f"'{p}'"
    lines = [ln.strip() for ln in _decode_text(p, label).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(TEXT_COMMENT_PREFIXES)]

    def loose(line):         # only to tell a header from numbers, whatever the separator
        try:
            [float(t) for t in re.split(r"[,;\s]+", line) if t]
            return True
        except ValueError:
            return False

    if lines and not loose(lines[0]):
        lines = lines[1:]            # a header row such as "wavelength_nm,band1"
    if not lines:
        raise InputError(f"{label} holds no numbers")
    first = lines[0]
    sep = ";" if ";" in first else ("," if "," in first else None)

    def values(line):
        cells = [c.strip() for c in line.split(sep)] if sep else line.split()
        if cells and cells[-1] == "":
            cells.pop()                  # "1,2," as spreadsheets export it
        if sep == ";":
            cells = [c.replace(",", ".") for c in cells]
        return [float(c) for c in cells]     # an empty cell inside a row is a missing value: refused

    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(values(line))
        except ValueError:
            raise InputError(f"{label} has a non-numeric or empty value on data line {i + 1}: "
                             f"{line[:60]!r}") from None
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(f"{label} has rows of different lengths ({', '.join(map(str, sorted(widths)))} values)")
    if 0 in widths:
        raise InputError(f"{label} holds no numbers")
    return np.asarray(rows, dtype=np.float64)



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


