"""What every reader and writer shares: the Cube, suffixes and limits, the checks that keep
hostile files out, format detection."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

# One atomic writer for every file of the project; atomic_path & co. are re-exported from here
# because callers have always found them in io.

from ..core.errors import Cancelled, InputError
from ..core.events import check_cancel

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
    # From a satellite product's metadata (enmap, sentinel2), else None: the bands' FWHM in nm
    # (kept for the record: the SRF models place the MSI's bands on the HSI's centres only) and
    # the named camera (sensors.catalogue) that took an MSI product, for msi_camera.
    fwhm: Optional[np.ndarray] = None
    camera: Optional[str] = None

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
def three_axes(key) -> tuple:
    """An index of a rows x cols x bands lazy array as a 3-tuple (missing axes: whole)."""
    key = key if isinstance(key, tuple) else (key,)
    return key + (slice(None),) * (3 - len(key))


def release_pages(array) -> None:
    """Drop the pages a read-only memory map has touched from this process's resident memory
    (they stay in the OS page cache, so reading them again is fast). A pass over a memory-mapped
    3 GB result otherwise leaves all 3 GB counted as the process's memory. No-op for anything
    that is not a np.memmap (or on systems without madvise)."""
    import mmap
    mm = getattr(array, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    with contextlib.suppress(OSError, ValueError):
        mm.madvise(mmap.MADV_DONTNEED)


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
        reason = _hdf5_damage(exc) if "HDF5" in label else None
        raise InputError(f"'{p}' cannot be read as {label}: {reason or _short(exc)}") from None


TRUNCATED = "the file is truncated or corrupted"
# What the HDF5 library says when a file's bytes are missing or garbled (its own words are
# for HDF5 developers: "truncated file: eof = ..., sblock->base_addr = ...", "bad object
# header version number", "filter returned failure during read", ...).
_HDF5_DAMAGE_WORDS = ("truncated file", "bad object header", "filter returned failure", "file read failed",
                      "addr overflow", "can't read data", "can't synchronously read", "bad symbol table",
                      "bad heap", "wrong b-tree signature", "incorrect metadata checksum", "bad version number",
                      "unable to load", "could not read", "corrupt")


def _hdf5_damage(exc: BaseException) -> Optional[str]:
    """The user's sentence for an HDF5 library error that means missing or garbled bytes, else None."""
    text = str(exc)
    m = re.search(r"truncated file: eof = (\d+),.*stored_eof = (\d+)", text)
    if m:
        return f"{TRUNCATED} (it ends at byte {m.group(1)} but its header says {m.group(2)})"
    low = text.lower()
    if any(word in low for word in _HDF5_DAMAGE_WORDS):
        return f"{TRUNCATED} ({_short(exc)})"
    return None


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
                         f"({need} bytes) but the file holds {held} for it (truncated or corrupted)")
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
    from ..core.memory import require
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


