"""Reading cubes and small matrices, writing results atomically.

Readers
-------
`load_cube(path, key=None, lazy=False) -> Cube` reads a rows x cols x bands
cube (or a 2-D single band) from:

- `.mat` MATLAB v5/v7 (scipy.io) and v7.3 (HDF5, via h5py). MATLAB writes
  v7.3 arrays column-major, so h5py sees the axes reversed; they are
  reversed back, and a MATLAB H x W x C comes back H x W x C.
- `.h5` / `.hdf5` / `.he5`: any dataset, groups walked; a key may be a path
  such as "group/cube". Arrays are taken as stored (no transposition).
- `.npy`, `.npz`.
- `.tif` / `.tiff` (tifffile). Axis rule: when the file stores samples
  contiguously per pixel (planar configuration "contig", tifffile axes
  ending in "S") the array already is H x W x C and is kept. Otherwise a
  3-D stack (several pages, or planar "separate") is band-first, C x H x W,
  and is transposed to H x W x C when its first axis is clearly the band
  axis: the smallest of the three and <= 512, with both others larger. A
  stack failing that test (e.g. 200 pages of 100 x 100) is returned as
  stored; write such cubes contiguous (as `save_cube` does) to be safe.
- ENVI: a `.hdr` header with its data file (`.img`, `.dat`, `.raw`, ... or
  no extension), or the data file itself with the header beside it, via
  `spectral.envi.open`. The header's 'reflectance scale factor' and
  'data ignore value' are not applied (the pipeline normalises anyway).
  TIFF wavelengths are read from tifffile's JSON description when present.

Several arrays and no `key` is refused with a list of the candidates
(`list_arrays` gives the same list to the GUI's picker); an array named
`wavelength`, `wavelengths` or `wl` is never a candidate: it is read as the
cube's band wavelengths instead.

Wavelengths (float64, nm, or None) come from, in order: the HDF5 attributes
'wavelength' / 'wavelengths' / 'wl' of the dataset then of the file; a
wavelength array beside the cube (.mat, .h5, .npz); the ENVI header's
'wavelength'; for `.npy`, the sidecar `<stem>_wavelengths.txt` that
`save_cube` writes. Values are converted from micrometres to nm when the
header's 'wavelength units' says micrometres or, with no unit given, when
all values are < 10. A list whose length differs from the band count is
ignored (logged), never guessed at.

Eager loads return float32 numpy arrays (integer and float64 input is
converted) and refuse NaN/Inf, counting them. `lazy=True` returns, without
reading the data: an `h5py.Dataset` (.h5), a read-only `np.memmap` (.npy,
ENVI), or for v7.3 .mat a `TransposedDataset` view; the dtype is the
file's. The file must stay open while the data is used: the `Cube` holds
the h5py file and `Cube.close()` (or `with load_cube(...) as cube:`)
releases it. For lazy data the NaN/Inf check looks at a sample of up to 16
rows spread over the cube only. Formats that cannot be read lazily
(.mat v5, .npz, .tif) are loaded whole even when `lazy=True`.

`load_matrix` reads small 2-D things (PSF, SRF) and always returns a 2-D
float64 array (a 1-D vector becomes one row). `load_wavelengths` reads a
sidecar list of band wavelengths.

Writers
-------
Everything is written under a temporary name in the target folder and
renamed over the target only once complete (`atomic_path`, from
spectramorph_engine.atomic), so a failed or cancelled write leaves neither a
partial file nor a damaged old one.

`save_cube(path, data, wavelengths=None, extra=None)` by suffix:
- `.npy`: the cube; `.npy` cannot carry metadata, so the wavelengths go to
  a sidecar `<stem>_wavelengths.txt` (one value per line, nm) that
  `load_cube` picks up again; a stale sidecar is removed when saving
  without wavelengths. `extra` arrays cannot be stored and are dropped
  (logged).
- `.mat`: variable named by the file's stem (`hr_hsi.mat` -> `hr_hsi`),
  plus `wavelengths` (1 x C) and the `extra` arrays. MATLAB v5 holds at
  most 2 GB per variable: when any array is larger the file is written as
  v7.3 (HDF5 with MATLAB's 512-byte header, axes transposed the MATLAB
  way), which MATLAB and `load_cube` read, but scipy.io.loadmat does not.
- `.h5` / `.hdf5`: dataset named by the stem, gzip (level 1) + shuffle,
  chunked by whole pixel rows (~4 MB chunks); wavelengths as the dataset's
  attribute 'wavelengths' and as a dataset 'wavelengths'; `extra` arrays as
  datasets. gzip rather than lzf so that any HDF5 reader (MATLAB, IDL,
  h5py without plugins) opens the file.
- `.tif` / `.tiff`: H x W x C, planar configuration contig (BigTIFF when
  needed); wavelengths in tifffile's JSON image description ('wavelength',
  nm), which `load_cube` reads back (other TIFF readers ignore it).
- `.hdr` / `.img`: ENVI, BIP interleave, header 'wavelength' and
  'wavelength units = Nanometers'. The data file is renamed into place
  before the header, so a header never describes a missing data file.

`ResultWriter` streams a result by blocks of pixel rows so that a
2048 x 2048 x 200 float32 result (3.2 GB) is written with memory bounded by
the block: .h5 (chunked dataset written block by block), .npy and ENVI
(raw writes at the block's offset into the preallocated temporary file; a
memmap is offered through `ResultWriter.array` only when asked for), .mat
(v5 cannot stream: the result is buffered in memory and saved at the end;
results above 2 GB are streamed into a v7.3 file instead) and .tif
(buffered).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Union

import numpy as np

# One atomic writer for every file of the project; atomic_path & co. are re-exported from here
# because callers have always found them in io.
from .atomic import atomic_path, atomic_write_bytes, atomic_write_text  # noqa: F401
from .atomic import commit as _commit, discard as _discard
from .errors import Cancelled, InputError
from .events import check_cancel

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

MAT_SUFFIXES = (".mat",)
H5_SUFFIXES = (".h5", ".hdf5", ".he5")
TIF_SUFFIXES = (".tif", ".tiff")
ENVI_DATA_SUFFIXES = (".img", ".dat", ".raw", ".bin")
ENVI_SUFFIXES = (".hdr",) + ENVI_DATA_SUFFIXES
CUBE_SUFFIXES = MAT_SUFFIXES + H5_SUFFIXES + (".npy", ".npz") + TIF_SUFFIXES + ENVI_SUFFIXES
MATRIX_SUFFIXES = MAT_SUFFIXES + H5_SUFFIXES + (".npy", ".npz", ".txt", ".csv") + TIF_SUFFIXES
WAVELENGTH_SUFFIXES = (".txt", ".csv", ".npy")
SAVE_SUFFIXES = (".npy", ".mat") + H5_SUFFIXES + TIF_SUFFIXES + (".hdr", ".img")

WAVELENGTH_NAMES = ("wavelength", "wavelengths", "wl")
# MATLAB v5 stores sizes in 32 bits and MATLAB itself refuses variables over 2 GB in v5/v7.
MAT_V5_LIMIT_BYTES = 2**31 - 1
_MATLAB_CLASSES = {"double": "float64", "single": "float32", "int8": "int8", "uint8": "uint8",
                   "int16": "int16", "uint16": "uint16", "int32": "int32", "uint32": "uint32",
                   "int64": "int64", "uint64": "uint64", "logical": "bool"}
_NUMERIC_KINDS = "biuf"


# ----------------------------------------------------------------------------- the cube
@dataclass
class Cube:
    """A loaded array with its band wavelengths (nm) and where it came from.

    `data` is a float32 ndarray, or with `lazy=True` an h5py dataset /
    np.memmap / TransposedDataset that reads from the still-open file:
    call `close()` (or use the cube as a context manager) when done.
    """
    data: Any
    wavelengths: Optional[np.ndarray] = None
    source: Optional[str] = None
    key: Optional[str] = None
    _handle: Any = field(default=None, repr=False, compare=False)
    geo: Any = None           # georef.GeoInfo (GeoTIFF, ENVI map info, an HDF5 nodata attribute), or None
    nonfinite: Any = None     # (count, sentence) when the data hold NaN or Inf (load_cube(allow_invalid=True))

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    def close(self) -> None:
        """Release the open file behind lazy data (no-op for in-memory data)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "Cube":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TransposedDataset:
    """Lazy view of an HDF5 dataset with its axes reversed (MATLAB v7.3 layout).

    Supports `shape`, `dtype`, `ndim`, basic indexing (ints and slices) and
    `np.asarray`; only the indexed part is read from the file.
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self.shape = tuple(reversed(dataset.shape))
        self.dtype = dataset.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        part = self.dataset[tuple(reversed(key))]
        # The dataset returns its own (reversed) axis order; reversing again restores ours.
        return np.asarray(part).T

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self.dataset[()]).T
        return a if dtype is None else a.astype(dtype, copy=False)


# ----------------------------------------------------------------------------- helpers
def _short(exc: BaseException) -> str:
    """A one-line reason from a library exception (h5py and scipy messages can be long)."""
    text = str(exc).strip() or type(exc).__name__
    text = text.splitlines()[0]
    inner = re.search(r"\(([^()]*)\)\s*$", text)
    if "Unable to" in text and inner:   # h5py: "Unable to open file (truncated file: ...)"
        text = inner.group(1)
    return text if len(text) <= 160 else text[:157] + "..."


def _fmt_shape(shape) -> str:
    return "x".join(str(int(s)) for s in shape) if len(shape) else "scalar"


def _check_file(path: PathLike, what: str = "") -> Path:
    """The path of a readable, non-empty regular file, or InputError saying what is wrong.

    `what` ("PSF", "SRF", ...) prefixes the messages. Readability is tried by
    opening the file (os.access answers "yes" to root for any file).
    """
    label = f"{what} file" if what else "file"
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{label} '{p}' does not exist") from None
    except OSError as exc:    # a symlink loop, a name too long, a folder we may not enter
        raise InputError(f"{label} '{p}' cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{label} '{p}' is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        # a FIFO or a device would block or never end
        raise InputError(f"{label} '{p}' is not a regular file")
    if st.st_size == 0:
        raise InputError(f"{label} '{p}' is empty")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{label} '{p}' cannot be read: {exc.strerror or exc}") from None
    return p


# ----------------------------------------------------------------------------- hostile files
# Every reader below checks what a file's header declares against the bytes the file holds
# before it allocates anything, and turns whatever a parser library raises on a damaged file
# into the one-line InputError. Deflate (zlib, gzip, zip) expands at most 1032-fold, so a
# compressed array declaring more than this times its compressed bytes is a damaged header.
_MAX_INFLATE = 1100
# Small arrays read whole while looking for metadata (wavelength lists); a bigger one is no list.
_MAX_META_ELEMENTS = 1 << 20


@contextlib.contextmanager
def _reading(p: Path, label: str) -> Iterator[None]:
    """Turn a parser's exception on a damaged file into InputError naming the file and format.

    InputError passes through; MemoryError too (the size checks are meant to make it
    impossible, and hiding one would hide a missing check). Everything a third-party parser
    can raise on bad bytes (ValueError, OSError, KeyError, struct.error, zlib.error,
    RecursionError, ...) is a property of the file, not a bug of ours.
    """
    try:
        yield
    except (InputError, MemoryError, Cancelled):     # a cancel is the user's, not the file's
        raise
    except Exception as exc:
        raise InputError(f"'{p}' cannot be read as {label}: {_short(exc)}") from None


def _declared_bytes(p: Path, label: str, shape, dtype) -> int:
    """Bytes an array of `shape` x `dtype` needs; InputError for negative dimensions."""
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise InputError(f"'{p}' cannot be read as {label}: its header declares a negative size "
                         f"({', '.join(map(str, shape))})")
    n = 1
    for s in shape:
        n *= s
    return n * max(1, np.dtype(dtype).itemsize)


def _check_declared(p: Path, label: str, shape, dtype, stored: int, compressed: bool = False) -> int:
    """Refuse an array whose declared size cannot come from `stored` bytes of the file."""
    need = _declared_bytes(p, label, shape, dtype)
    limit = stored * _MAX_INFLATE if compressed else stored
    if need > limit:
        what = f"{_fmt_shape(shape)} {np.dtype(dtype).name}"
        held = f"{stored} compressed bytes" if compressed else f"only {stored} bytes"
        raise InputError(f"'{p}' cannot be read as {label}: its header declares a {what} array "
                         f"({need} bytes) but the file holds {held} for it (truncated or damaged)")
    return need


def _numeric_dtype(p: Path, label: str, dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except Exception as exc:
        raise InputError(f"'{p}' cannot be read as {label}: unknown data type ({_short(exc)})") from None
    if dt.kind not in _NUMERIC_KINDS + "c" or dt.fields is not None or dt.shape != () or dt.itemsize == 0:
        raise InputError(f"'{p}' cannot be read as {label}: its data type {dt} is not numeric")
    return dt


def _unknown_suffix(p: Path, allowed: Sequence[str], what: str) -> InputError:
    return InputError(f"'{p}' has an unknown file type '{p.suffix or '(none)'}' for {what}; "
                      f"supported: {', '.join(allowed)}")


def _is_wavelength_name(name: str) -> bool:
    return name.rsplit("/", 1)[-1].lower() in WAVELENGTH_NAMES


def _to_nm(values, units: Optional[str] = None) -> np.ndarray:
    wl = np.asarray(values, dtype=np.float64).ravel()
    u = (units or "").strip().lower()
    if u in ("micrometers", "micrometres", "micrometer", "micrometre", "microns", "micron", "um",
             "µm", "μm"):
        return wl * 1000.0
    if u in ("millimeters", "millimetres", "mm"):
        return wl * 1e6
    if u in ("nanometers", "nanometres", "nanometer", "nanometre", "nm"):
        return wl
    # No (known) unit: hyperspectral sensors span ~350-2500 nm, i.e. 0.35-2.5 um; < 10 means um.
    if wl.size and np.all(np.isfinite(wl)) and np.nanmax(np.abs(wl)) < 10:
        return wl * 1000.0
    return wl


def _match_wavelengths(wl, shape, source: str) -> Optional[np.ndarray]:
    """Keep `wl` only if it has one value per band of an array of `shape`."""
    if wl is None:
        return None
    wl = np.asarray(wl, dtype=np.float64).ravel()
    bands = shape[2] if len(shape) == 3 else 1
    if wl.size != bands or not np.all(np.isfinite(wl)):
        log.warning("ignoring wavelengths from %s: %d values for %d bands", source, wl.size, bands)
        return None
    return wl


# Eager loads read, convert and check big cubes in blocks of about this many bytes, so memory
# stays bounded and a cancel request is seen between blocks (a fraction of a second apart).
_BLOCK_BYTES = 64 << 20


def _row_step(shape, itemsize: int) -> int:
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    return max(1, _BLOCK_BYTES // row_bytes)


def _count_nonfinite(a, lazy: bool, cancel=None) -> int:
    """NaN/Inf count; in row blocks so a big cube needs no full-size boolean mask."""
    if np.dtype(a.dtype).kind != "f":
        return 0
    n = a.shape[0]
    if lazy:
        rows = np.unique(np.linspace(0, n - 1, num=min(n, 16)).round().astype(int))
        return int(sum(np.count_nonzero(~np.isfinite(np.asarray(a[int(r)]))) for r in rows))
    step = _row_step(a.shape, a.dtype.itemsize)
    total = 0
    for i in range(0, n, step):
        check_cancel(cancel)
        total += int(np.count_nonzero(~np.isfinite(a[i:i + step])))
    return total


def _read_blocks(src, shape, cancel=None, matlab: bool = False, p: Optional[Path] = None) -> np.ndarray:
    """A float32 copy of the array-like `src` (h5py dataset, memmap) read block by block,
    with the cancel token checked between blocks. `matlab`: `src` is an HDF5 dataset in
    MATLAB's reversed axis order; it is read along its first axis (our last) and transposed.
    Refused before allocating when the copy cannot fit in memory (memory.require)."""
    from .memory import require
    require(4 * int(np.prod(shape, dtype=np.int64)), f"loading '{p or 'the cube'}' ({_fmt_shape(shape)})",
            "open it lazily, or crop it")
    out = np.empty(shape, dtype=np.float32)
    if matlab:
        n = src.shape[0]
        step = _row_step(src.shape, 4)
        for b0 in range(0, n, step):
            check_cancel(cancel)
            out[..., b0:b0 + step] = np.asarray(src[b0:b0 + step]).T
        return out
    step = _row_step(shape, 4)
    for r0 in range(0, shape[0], step):
        check_cancel(cancel)
        out[r0:r0 + step] = src[r0:r0 + step]
    return out


def _finish(p: Path, data, key, wavelengths, lazy: bool, handle=None, cancel=None) -> Cube:
    """Common checks and conversion for every reader."""
    what = f"'{p}'" + (f" variable '{key}'" if key else "")
    dtype = np.dtype(data.dtype)
    shape = tuple(data.shape)
    try:
        if dtype.kind == "c":
            raise InputError(f"{what} is complex ({dtype}); a real-valued cube is needed")
        if dtype.kind not in _NUMERIC_KINDS:
            raise InputError(f"{what} is not a numeric array (type {dtype})")
        if len(shape) not in (2, 3):
            raise InputError(f"{what} has shape {_fmt_shape(shape)}: a 3-D rows x cols x bands cube "
                             f"(or a 2-D single band) is needed")
        if 0 in shape:
            raise InputError(f"{what} is empty (shape {_fmt_shape(shape)})")
        if not lazy:
            if dtype.kind in "iub" or dtype != np.float32:
                if dtype.kind in "iub":
                    log.info("%s: integer data (%s) converted to float32", what, dtype)
                data = np.asarray(data, dtype=np.float32)
            else:
                data = np.asarray(data)
        bad = _count_nonfinite(data, lazy, cancel)
    except BaseException:
        if handle is not None:
            handle.close()
        raise
    wl = _match_wavelengths(wavelengths, shape, str(p))
    cube = Cube(data=data, wavelengths=wl, source=str(p), key=key, _handle=handle)
    if bad:
        extra = " in a sample of rows" if lazy else ""
        cube.nonfinite = (bad, f"{what} holds {bad} NaN or Inf values{extra}")
    return cube


def _choose(p: Path, entries: list, key: Optional[str], what: str = "arrays") -> str:
    """Pick the array named `key`, or the single candidate; refuse with the list otherwise."""
    names = [e[0] for e in entries]
    if key is not None:
        if key in names:
            return key
        stripped = key.strip("/")
        if stripped in names:
            return stripped
        listing = ", ".join(names) if names else "none"
        raise InputError(f"'{p}' has no array '{key}'; arrays there: {listing}")
    candidates = [e for e in entries if not _is_wavelength_name(e[0])]
    if not candidates:
        raise InputError(f"'{p}' holds no numeric array")
    if len(candidates) > 1:
        # Prefer 2-D/3-D arrays: a 1-D band list or a scalar beside the cube is not ambiguous.
        shaped = [e for e in candidates if len(e[1]) in (2, 3)]
        if len(shaped) == 1:
            return shaped[0][0]
        listing = ", ".join(f"{n}: {_fmt_shape(s)}" for n, s, _ in (shaped or candidates))
        raise InputError(f"'{p}' holds several {what} ({listing}); choose one with mat_key")
    return candidates[0][0]


# ----------------------------------------------------------------------------- format detection
def _kind(p: Path) -> str:
    s = p.suffix.lower()
    if s in MAT_SUFFIXES:
        return "mat"
    if s in H5_SUFFIXES:
        return "h5"
    if s == ".npy":
        return "npy"
    if s == ".npz":
        return "npz"
    if s in TIF_SUFFIXES:
        return "tif"
    if s in ENVI_SUFFIXES:
        return "envi"
    return ""


def _is_hdf5(p: Path) -> bool:
    import h5py
    try:
        return bool(h5py.is_hdf5(str(p)))
    except OSError:
        return False


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
        if len(head) < 128 or 0 in head[:4] or head[126:128] not in (b"IM", b"MI"):
            raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: not a MATLAB v5 or v7.3 file")
        e = "<" if head[126:128] == b"IM" else ">"
        if struct.unpack(e + "H", head[124:126])[0] != 0x0100:
            raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: unknown MAT-file version")
        pos = 128
        while pos + 8 <= size:
            fh.seek(pos)
            mtype, nbytes = struct.unpack(e + "II", fh.read(8))
            if nbytes == 0 or pos + 8 + nbytes > size:
                raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: a variable at byte {pos} declares "
                                 f"{nbytes} bytes but the file ends {size - pos - 8} bytes later (truncated?)")
            if mtype == 15:       # miCOMPRESSED: the variable's header starts the zlib stream
                prefix = zlib.decompressobj().decompress(fh.read(min(nbytes, 1 << 16)), 4096)
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
    return out


def _mat_tag(p: Path, b: bytes, off: int, e: str) -> tuple:
    """(type, nbytes, data start, next element) of the data element at `off` of `b`."""
    if off + 8 > len(b):
        raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: a variable's header is damaged")
    t, n = struct.unpack_from(e + "II", b, off)
    if t >> 16:                                  # small element: type and size share 4 bytes
        return t & 0xFFFF, t >> 16, off + 4, off + 8
    return t, n, off + 8, off + 8 + n + (-n % 8)


def _mat_v5_header(p: Path, b: bytes, e: str) -> Optional[_MatVar]:
    """Name, type and dims of the miMATRIX element at the start of `b`; None when the
    variable is not a numeric or logical array."""
    bad = InputError(f"'{p}' cannot be read as {_MAT_LABEL}: a variable's header is damaged")
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
            head = z.decompress(raw, 8)
            if len(head) < 8:
                raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: variable '{var.name}' is damaged")
            total = struct.unpack(e + "I", head[4:8])[0] + 8
            if total <= 8 or total > var.nbytes * _MAX_INFLATE:
                raise InputError(f"'{p}' cannot be read as {_MAT_LABEL}: variable '{var.name}' declares more "
                                 f"data than its compressed bytes can hold (damaged)")
            body = head + z.decompress(z.unconsumed_tail, total - 8)
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
                             f"(truncated or damaged)")
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
                                 f"end of the file (truncated or damaged)")
        if layout == h5py.h5d.CHUNKED and filtered and need:
            chunks = ds.chunks or shape
            expected = 1
            for n, c in zip(shape, chunks):
                expected *= -(-n // max(1, c))
            if ds.id.get_num_chunks() < expected:
                raise InputError(f"'{p}' cannot be read as {label}: dataset '{ds.name}' holds "
                                 f"{ds.id.get_num_chunks()} of its {expected} chunks (incomplete or damaged)")


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
        nodata = _h5_nodata(ds)
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


def _h5_nodata(ds) -> Optional[float]:
    """A nodata value declared on an HDF5 dataset ('nodata', '_FillValue', 'missing_value')."""
    for name in ("nodata", "_FillValue", "missing_value", "no_data_value"):
        if name in ds.attrs:
            try:
                value = np.asarray(ds.attrs[name], dtype=np.float64).ravel()
            except (TypeError, ValueError):
                continue
            if value.size == 1:
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
        from .memory import require
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
    from .georef import read_tiff_band_wavelengths, read_tiff_geo
    with _reading(p, "TIFF"), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        ds = rasterio.open(str(p))
        if len(set(ds.dtypes)) != 1:
            ds.close()
            raise InputError(f"'{p}' mixes band types {sorted(set(ds.dtypes))}: one type is needed")
    view = WindowedRaster(ds)
    wl = read_tiff_band_wavelengths(p)
    with _reading(p, "TIFF"):     # the NaN check reads a few rows
        cube = _finish(p, view, None, wl, lazy=True, handle=view, cancel=cancel)
    cube.geo = read_tiff_geo(p)
    return cube


def _load_tif(p: Path) -> Cube:
    from .georef import read_tiff_band_wavelengths, read_tiff_geo
    data, _, _, wl = _read_tif(p)
    if wl is None:
        wl = read_tiff_band_wavelengths(p)
    cube = _finish(p, data, None, wl, lazy=False)
    cube.geo = read_tiff_geo(p)
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


def _read_text_table(p: Path) -> np.ndarray:
    """Numbers from a .txt/.csv: comma, semicolon, tab or space separated; one header line allowed."""
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"'{p}' cannot be read as text: {_short(exc)}") from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("#", "%", ";"))]
    if not lines:
        raise InputError(f"file '{p}' holds no numbers")

    def split(line):
        return [t for t in re.split(r"[,;\t ]+", line) if t]

    def numeric(line):
        try:
            [float(t) for t in split(line)]
            return True
        except ValueError:
            return False

    if not numeric(lines[0]):
        lines = lines[1:]            # a header row such as "wavelength_nm"
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append([float(t) for t in split(line)])
        except ValueError:
            raise InputError(f"'{p}' has a non-numeric value on data line {i + 1}: {line[:60]!r}") from None
    if not rows:
        raise InputError(f"file '{p}' holds no numbers")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(f"'{p}' has rows of different lengths ({', '.join(map(str, sorted(widths)))} values)")
    return np.asarray(rows, dtype=np.float64)


def load_matrix(path: PathLike, key: Optional[str] = None) -> np.ndarray:
    """A small 2-D float64 array (PSF, SRF) from .mat, .npy, .npz, .txt/.csv, .h5 or .tif.

    A 1-D vector comes back as one row (1 x n); NaN/Inf and more than two
    dimensions are refused.
    """
    p = _check_file(path)
    s = p.suffix.lower()
    if s in (".txt", ".csv"):
        a = _read_text_table(p)
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
                ds = f.create_dataset(name, data=arr, chunks=_h5_chunks(arr.shape, arr.dtype.itemsize),
                                      **_H5_COMPRESSION)
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


# ----------------------------------------------------------------------------- streaming
class ResultWriter:
    """Write an H x W x C result block by block of pixel rows, committed atomically.

        with ResultWriter("out/hr_hsi.h5", (H, W, C), wavelengths=wl) as w:
            for r0 in range(0, H, 64):
                w.write_rows(r0, block)          # block: rows x W x C
            w.set_extra("abundances", alle)      # optional, before the end
        # committed here; an exception inside the block leaves nothing behind

    Rows may come in any order; `close()` refuses to commit while rows are
    missing (unless `array` was used to fill the result directly).
    """

    def __init__(self, path: PathLike, shape, wavelengths=None, extra: Optional[dict] = None,
                 dtype=np.float32):
        self.path = Path(path).expanduser()
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise InputError(f"cannot write a result of shape {_fmt_shape(self.shape)}: H x W x C needed")
        self.dtype = np.dtype(dtype)
        s = self.path.suffix.lower()
        if s not in SAVE_SUFFIXES:
            raise _unknown_suffix(self.path, SAVE_SUFFIXES, "saving a cube")
        self.wavelengths = None
        if wavelengths is not None:
            self.wavelengths = np.asarray(wavelengths, dtype=np.float64).ravel()
            if self.wavelengths.size != self.shape[2]:
                raise InputError(f"{self.wavelengths.size} wavelengths given for a cube of "
                                 f"{self.shape[2]} bands")
        self.extra = _check_extra(extra)
        self._done = np.zeros(self.shape[0], dtype=bool)
        self._value_map = None
        self._array = None
        self._array_used = False
        self._closed = False
        self._commit_ok = False
        self._fd = None
        self._h5 = None
        self._stack = contextlib.ExitStack()
        self._name = _stem_name(self.path)
        nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        if s == ".npy" or s in (".hdr", ".img"):
            self._backend = "raw"
        elif s in H5_SUFFIXES:
            self._backend = "h5"
        elif s == ".mat" and nbytes > MAT_V5_LIMIT_BYTES:
            self._backend = "mat73"
        else:
            self._backend = "buffer"       # .mat v5 and .tif: in memory, saved at close
        try:
            self._open()
        except BaseException:
            self._closed = True
            self._release()
            self._stack.close()
            raise

    # -- backends ---------------------------------------------------------
    def _temp(self, target: Path) -> Path:
        """Enter an atomic_path for `target`; committed when the stack unwinds cleanly."""
        return self._stack.enter_context(_Committing(self, atomic_path(target)))

    def _open(self) -> None:
        H, W, C = self.shape
        s = self.path.suffix.lower()
        if self._backend == "raw" and s == ".npy":
            self._tmp = self._temp(self.path)
            mm = np.lib.format.open_memmap(str(self._tmp), mode="w+", dtype=self.dtype, shape=self.shape)
            self._offset = int(mm.offset)
            del mm                          # only the header and the file size are needed
            self._raw_file = self._tmp
        elif self._backend == "raw":
            import spectral.io.envi as envi
            tmp_hdr, tmp_img = self._stack.enter_context(_Committing(self, _atomic_envi(self.path)))
            img = envi.create_image(str(tmp_hdr), _envi_metadata(self.wavelengths), shape=self.shape,
                                    dtype=self.dtype, interleave="bip", ext=tmp_img.suffix, force=True)
            del img
            self._offset = 0
            self._raw_file = tmp_img
        elif self._backend in ("h5", "mat73"):
            import h5py
            self._tmp = self._temp(self.path)
            matlab = self._backend == "mat73"
            # A chunk cache that holds a few chunks, so blocks not aligned to chunks stay cheap.
            f = h5py.File(str(self._tmp), "w", userblock_size=512 if matlab else 0,
                          rdcc_nbytes=64 << 20)
            self._h5 = f
            if matlab:
                chunks = tuple(reversed(_h5_chunks(self.shape, self.dtype.itemsize)))
                self._ds = _mat73_dataset(f, self._name, self.shape, self.dtype, chunks=chunks)
            else:
                self._ds = f.create_dataset(self._name, shape=self.shape, dtype=self.dtype,
                                            chunks=_h5_chunks(self.shape, self.dtype.itemsize),
                                            **_H5_COMPRESSION)
        else:
            self._tmp = self._temp(self.path)
            self._array = np.zeros(self.shape, dtype=self.dtype)
        if self._backend == "raw":
            self._fd = os.open(str(self._raw_file), os.O_WRONLY)

    @property
    def array(self):
        """The writable backing store: a memmap (.npy, ENVI) or ndarray (.mat v5, .tif); None for HDF5."""
        if self._backend == "raw" and self._array is None:
            self._array = np.memmap(str(self._raw_file), dtype=self.dtype, mode="r+",
                                    offset=self._offset, shape=self.shape)
        self._array_used = self._array is not None
        return self._array

    def set_extra(self, name: str, data) -> None:
        """Add an array (endmembers, abundances) stored with the result where the format allows."""
        self.extra.update(_check_extra({name: data}))

    def set_value_map(self, scale: float, offset: float, nan_mask=None) -> None:
        """Rows written from now on are stored as block * scale + offset (a result going back
        to its input's units on its way to the file), and NaN where `nan_mask` (H x W bool) is
        set (pixels without data)."""
        self._value_map = (float(scale), float(offset))
        self._nan_mask = None if nan_mask is None else np.asarray(nan_mask, dtype=bool)

    def read_bands(self, b0: int, b1: int, unmapped: bool = False) -> np.ndarray:
        """Bands b0 .. b1 - 1 of what was written so far (H x W x (b1 - b0)); `unmapped`: before
        the value map of set_value_map (the writer's caller's own scale)."""
        if self._closed:
            raise RuntimeError("ResultWriter is closed")
        if self._backend == "raw":
            mm = np.memmap(str(self._raw_file), dtype=self.dtype, mode="r", offset=self._offset, shape=self.shape)
            out = np.array(mm[:, :, b0:b1])
            del mm
        elif self._backend == "h5":
            out = np.asarray(self._ds[:, :, b0:b1])
        elif self._backend == "mat73":
            out = np.asarray(self._ds[b0:b1]).T       # stored transposed (MATLAB's column order)
        else:
            out = np.array(self._array[:, :, b0:b1])
        if unmapped and self._value_map is not None:
            scale, offset = self._value_map
            out = (out - self.dtype.type(offset)) / self.dtype.type(scale)
        return out.astype(self.dtype, copy=False)

    def write_rows(self, row_start: int, block) -> None:
        """Write `block` (n x W x C) at rows row_start .. row_start + n - 1."""
        if self._closed:
            raise RuntimeError("ResultWriter is closed")
        block = np.asarray(block, dtype=self.dtype)
        if self._value_map is not None:
            scale, offset = self._value_map
            block = block * self.dtype.type(scale) + self.dtype.type(offset)
            if self._nan_mask is not None and block.ndim == 3:
                block[self._nan_mask[row_start:row_start + block.shape[0]]] = np.nan
        H, W, C = self.shape
        n = block.shape[0] if block.ndim == 3 else -1
        if block.ndim != 3 or block.shape[1:] != (W, C) or not 0 <= row_start <= H - n:
            raise ValueError(f"block of shape {_fmt_shape(block.shape)} at row {row_start} does not fit "
                             f"a result of shape {_fmt_shape(self.shape)}")
        r1 = row_start + n
        if self._backend == "raw":
            buf = np.ascontiguousarray(block)
            pos = self._offset + row_start * W * C * self.dtype.itemsize
            view = memoryview(buf).cast("B")
            while view:
                written = os.pwrite(self._fd, view, pos)
                view, pos = view[written:], pos + written
        elif self._backend == "h5":
            self._ds[row_start:r1] = block
        elif self._backend == "mat73":
            self._ds[:, :, row_start:r1] = block.T
        else:
            self._array[row_start:r1] = block
        self._done[row_start:r1] = True

    # -- ending -------------------------------------------------------------
    def _finalise(self) -> None:
        """Complete the temporary file(s) before they are renamed into place."""
        if self._backend == "raw":
            if self._array is not None:
                self._array.flush()
                self._array = None
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            if self.path.suffix.lower() == ".npy" and self.extra:
                log.warning("'%s': .npy holds one array; extra arrays %s not saved", self.path,
                            sorted(self.extra))
        elif self._backend == "h5":
            _h5_write_meta(self._h5, self._ds, self.wavelengths, self.extra)
            self._h5.close()
        elif self._backend == "mat73":
            if self.wavelengths is not None:
                _mat73_put(self._h5, "wavelengths", self.wavelengths[None, :])
            for k, v in self.extra.items():
                if k not in self._h5:
                    _mat73_put(self._h5, k, v)
            self._h5.close()
            _stamp_mat73(self._tmp)
        elif self.path.suffix.lower() == ".mat":
            variables = {self._name: self._array}
            if self.wavelengths is not None:
                variables["wavelengths"] = self.wavelengths[None, :]
            for k, v in self.extra.items():
                variables.setdefault(k, v)
            _save_mat(self._tmp, variables)
        else:
            _write_tif(self._tmp, self._array, self.wavelengths)

    def _release(self) -> None:
        """Close open handles without committing (so temporary files can be removed)."""
        if getattr(self, "_fd", None) is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if getattr(self, "_h5", None) is not None:
            with contextlib.suppress(Exception):
                self._h5.close()
        self._array = None

    def close(self) -> Path:
        """Finish and commit atomically; refuses while rows are missing."""
        if self._closed:
            return self.path
        if not self._array_used and not self._done.all():
            missing = int((~self._done).sum())
            self.abort()
            raise ValueError(f"ResultWriter for '{self.path}': {missing} of {self.shape[0]} rows "
                             f"never written; nothing saved")
        try:
            self._finalise()
            self._commit_ok = True
            self._stack.close()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self.path.suffix.lower() == ".npy":
            side = _npy_sidecar(self.path)
            if self.wavelengths is not None:
                _write_wavelength_text(side, self.wavelengths)
            elif side.exists():
                _discard(side)
        return _envi_names(self.path)[0] if self.path.suffix.lower() in (".hdr", ".img") else self.path

    def abort(self) -> None:
        """Drop everything written so far; the target stays as it was."""
        if self._closed:
            return
        self._closed = True
        self._release()
        self._commit_ok = False
        self._stack.close()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self):
        # A writer dropped without close() must not leave its temporary file behind.
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.abort()


class _Committing:
    """Wrap an atomic context manager so the ExitStack commits only when the writer says so."""

    def __init__(self, writer: ResultWriter, cm):
        self.writer, self.cm = writer, cm

    def __enter__(self):
        return self.cm.__enter__()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and not self.writer._commit_ok:
            err = RuntimeError("result writing aborted")
            with contextlib.suppress(RuntimeError):
                self.cm.__exit__(RuntimeError, err, None)   # removes the temporary file(s)
            return False
        return self.cm.__exit__(exc_type, exc, tb)
