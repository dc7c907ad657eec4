"""The streaming writer: a result written a block of rows at a time, committed atomically."""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np

from .atomic import atomic_path
from .atomic import discard as _discard
from ..core.errors import InputError

from .h5_chunks import ChunkCompressor
from .common import (H5_SUFFIXES, MAT_V5_LIMIT_BYTES, PathLike, SAVE_SUFFIXES, _fmt_shape, _unknown_suffix)
from .npy import _npy_sidecar
from .writers import (_H5_COMPRESSION, _atomic_envi, _check_extra, _envi_metadata, _envi_names, _h5_chunks,
    _h5_write_meta, _mat73_dataset, _mat73_put, _save_mat, _stamp_mat73, _stem_name, _write_tif,
    _write_wavelength_text)
log = logging.getLogger(__name__)

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
        self._deflate = None            # h5_chunks.ChunkCompressor: the .h5 result's chunks on worker threads
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
                if ChunkCompressor.suits(self._ds):
                    self._deflate = ChunkCompressor(self._ds, _H5_COMPRESSION["compression_opts"])
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
            if self._deflate is not None:
                self._deflate.flush()
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
            if self._deflate is not None:
                self._deflate.write(row_start, block)
            else:
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
            if self._deflate is not None:
                self._deflate.close()
                self._deflate = None
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
        if getattr(self, "_deflate", None) is not None:
            self._deflate.discard()
            self._deflate = None
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

