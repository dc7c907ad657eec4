"""Reading cubes and small matrices, writing results atomically (a package, one module per
format: `mat`, `h5`, `npy` (.npy and .npz), `tiff`, `envi`, `text` (text tables), `enmap` and
`sentinel2` (satellite products, with what they share in `product`); `common` holds
the Cube, suffixes and the checks against hostile files, `arrays` which arrays a file holds and
which one was meant, `load` the public readers, `writers` whole-cube writers, `streaming` the
ResultWriter, `georef` map coordinates and nodata, `align` a georeferenced pair brought onto
nested grids, `atomic` the one writer of every file, `outputs` a run's staged outputs; every
public name is imported from `spectramorph_engine.io`).
Imports `core` only.

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

- Satellite products (`product_kind` tells them by their names): an EnMAP L2A product (its
  folder, `*-METADATA.XML` or `*-SPECTRAL_IMAGE.TIF`) and a Sentinel-2 L2A SAFE (its folder or
  `MTD_MSIL2A.xml`; the 10 m bands B2, B3, B4, B8). Values come back scaled as the metadata
  says (reflectance), nodata counts as NaN, with the wavelengths, `Cube.fwhm`, the map
  coordinates and, for Sentinel-2, `Cube.camera`; lazy loads read rasterio windows.

Several arrays and no `key` is refused with a list of the candidates
(`list_arrays` gives the same list to the GUI's picker, and `suggest_array` the one that
best fits the image asked for: most bands for an LR-HSI, fewest for an HR-MSI); an array named
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
spectramorph_engine.io.atomic), so a failed or cancelled write leaves neither a
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
  h5py without plugins) opens the file. A streamed result (ResultWriter)
  deflates its chunks on worker threads, by ISA-L where installed (a standard
  zlib stream, ~10x faster; h5_chunks.py).
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
from .atomic import atomic_path, atomic_write_bytes, atomic_write_text  # noqa: F401
from .common import (CUBE_SUFFIXES, ENVI_DATA_SUFFIXES, ENVI_SUFFIXES, H5_SUFFIXES, MAT_SUFFIXES,
                     MAT_V5_LIMIT_BYTES, MATRIX_SUFFIXES, SAVE_SUFFIXES, TIF_SUFFIXES, WAVELENGTH_NAMES,
                     WAVELENGTH_SUFFIXES, Cube, PathLike, TransposedDataset, _check_file)
from .arrays import list_arrays, suggest_array  # noqa: F401
from .load import load_cube, load_matrix, load_wavelengths  # noqa: F401
from .streaming import ResultWriter  # noqa: F401
from .tiff import WindowedRaster  # noqa: F401
from .writers import save_cube  # noqa: F401
