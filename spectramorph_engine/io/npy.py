"""NumPy .npy (header checked, read in blocks or memory-mapped; wavelengths from the
`<stem>_wavelengths.txt` sidecar) and .npz (members listed from the zip directory, read with
their sizes checked).
"""
from __future__ import annotations

import logging
from pathlib import Path
import struct
import zipfile

import numpy as np

from ..core.errors import InputError
from ..core.events import check_cancel
from .common import (Cube, _BLOCK_BYTES, _MAX_INFLATE, _MAX_META_ELEMENTS, _NUMERIC_KINDS, _check_declared,
                     _choose, _finish, _fmt_shape, _is_wavelength_name, _numeric_dtype, _reading, _to_nm)

log = logging.getLogger(__name__)


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
