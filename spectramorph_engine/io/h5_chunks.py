"""A streamed HDF5 result compressed on worker threads (ResultWriter's .h5 backend).

The result's dataset is chunked by whole pixel rows with HDF5's shuffle + deflate (level 1).
Written through h5py, every chunk is compressed on the calling thread, one after the other:
at 2048 x 2048 x 200 that was ~1 minute of a run (zlib at ~60 MB/s). Here each complete chunk
is shuffled and deflated on a small thread pool (the compressors release the GIL) while the
caller computes the next rows, and the compressed bytes go into the file with H5Dwrite_chunk
(h5py's `write_direct_chunk`). The deflate is ISA-L's (the `isal` package) where installed:
~10x zlib's speed at level 1 on these chunks for a 3% larger file (`python -m bench.pieces
deflate`: 513 against 49 MB/s on one core, ratio 1.49 against 1.54). Its output
is a standard zlib stream, so HDF5's deflate filter -- any HDF5 reader -- inflates it; with
zlib the stored bytes are exactly those HDF5's own filters write (HDF5's shuffle byte order,
a partial last chunk padded with the fill value 0; tests compare them byte for byte).

Rows arrive in order, in blocks of any height: a chunk is compressed once all its rows are
in. Anything else -- a block that does not continue the last one, a read of what was written
so far -- is served by h5py itself after the pending chunks are written.
"""
from __future__ import annotations

import os
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MAX_WORKERS = 4


def fastest_compress():
    """zlib.compress's signature, by the fastest deflate installed (ISA-L's, else zlib's)."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib.compress
    return isal_zlib.compress


def shuffled_deflate(chunk: np.ndarray, level: int, compress=zlib.compress) -> bytes:
    """HDF5's shuffle filter (byte k of every element together, k = 0 .. itemsize - 1) then
    its deflate filter (a zlib stream, made by `compress`)."""
    size = chunk.dtype.itemsize
    planes = np.ascontiguousarray(chunk).reshape(-1).view(np.uint8).reshape(-1, size).T
    return compress(planes.tobytes(), level)


class ChunkCompressor:
    """Feeds row blocks of `ds` (chunks of whole rows, shuffle + gzip) to worker threads."""

    def __init__(self, ds, level: int, workers: int = 0, compress=None):
        self.ds = ds
        self.level = int(level)
        self.compress = compress or fastest_compress()
        self.rows = int(ds.chunks[0])
        self.height = int(ds.shape[0])
        workers = workers or min(MAX_WORKERS, os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="h5-deflate")
        self.max_pending = 2 * workers          # compressed chunks waiting: a few MB each
        self.pending = deque()                  # (first row, future) in row order
        self.buffer = None                      # rows of the chunk being filled
        self.start = 0                          # its first row
        self.filled = 0                         # rows of it filled
        self.direct = True                      # False once rows came out of order

    @staticmethod
    def suits(ds) -> bool:
        """Whether `ds` has the layout this writes: whole-row chunks, shuffle then gzip only."""
        chunks = ds.chunks
        return (chunks is not None and tuple(chunks[1:]) == tuple(ds.shape[1:]) and ds.compression == "gzip"
                and ds.shuffle and not ds.fletcher32 and ds.scaleoffset is None and ds.fillvalue == 0)

    def write(self, r0: int, block: np.ndarray) -> None:
        if not self.direct or r0 != self.start + self.filled:
            self._leave(r0, block)
            return
        at = 0
        while at < block.shape[0]:
            if self.buffer is None:
                self.buffer = np.zeros((self.rows,) + block.shape[1:], dtype=block.dtype)
            take = min(self.rows - self.filled, block.shape[0] - at)
            self.buffer[self.filled:self.filled + take] = block[at:at + take]
            self.filled += take
            at += take
            if self.filled == self.rows or self.start + self.filled == self.height:
                self._submit()

    def _submit(self) -> None:
        chunk, first = self.buffer, self.start
        self.pending.append((first, self.pool.submit(shuffled_deflate, chunk, self.level, self.compress)))
        self.buffer, self.start, self.filled = None, first + self.rows, 0
        while len(self.pending) > self.max_pending or (self.pending and self.pending[0][1].done()):
            self._store_oldest()

    def _store_oldest(self) -> None:
        first, future = self.pending.popleft()
        offset = (first,) + (0,) * (len(self.ds.shape) - 1)
        self.ds.id.write_direct_chunk(offset, future.result(), 0)

    def _leave(self, r0: int, block: np.ndarray) -> None:
        """Rows out of order: everything so far to the file, then h5py writes from now on."""
        self.flush()
        self.direct = False
        self.ds[r0:r0 + block.shape[0]] = block

    def flush(self) -> None:
        """Every row received is in the file (a partial chunk through h5py; it is written whole
        again, directly, once complete)."""
        while self.pending:
            self._store_oldest()
        if self.buffer is not None and self.filled:
            self.ds[self.start:self.start + self.filled] = self.buffer[:self.filled]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def discard(self) -> None:
        self.pending.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)
