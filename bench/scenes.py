"""Benchmark scenes built from real library spectra (USGS 1995 library).

A scene is K library spectra mixed linearly by abundance maps that have both
smooth regions (blurred random fields, softmax-normalised) and sharp ones
(hard-edged rectangles and discs of nearly pure material), times a mild
smooth shading. Spectra are real, so NMF and the SRF see realistic shapes;
abundances are known, so the scene is a fair ground truth.

The abundances (H x W x K, K small) are the only full-size array held; the
cube itself (H x W x C) is produced a block of rows at a time, so a
2048 x 2048 x 200 scene (3.2 GB float32) can be written straight to an .h5
or .npy file, and the HR-MSI / LR-HSI pair of real-world mode can be made
from it without ever holding the cube.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

LIBRARY_FILE = "USGS_1995_Library.mat"
URBAN_FILE = "subimage_Urban_R162.mat"
MISSING = -1e30          # the library marks missing samples with -1.23e34


@dataclass
class Library:
    wavelengths_nm: np.ndarray    # (M,)
    spectra: np.ndarray           # (M, S): one column per material
    names: list


def load_library(path) -> Library:
    """The USGS library with channels holding a missing sample dropped."""
    import scipy.io
    d = scipy.io.loadmat(str(path))
    lib = np.asarray(d["datalib"], dtype=np.float64)
    wl = lib[:, 0] * 1000.0                 # micrometres -> nm
    spectra = lib[:, 3:]
    ok = np.isfinite(wl) & (wl > MISSING) & np.all(np.isfinite(spectra) & (spectra > MISSING), axis=1)
    names = []
    if "names" in d:
        raw = np.asarray(d["names"])
        names = [bytes(raw[i].astype(np.uint8)).decode("latin1").strip() for i in range(3, raw.shape[0])]
    return Library(wl[ok], spectra[ok], names)


def pick_spectra(lib: Library, k: int, seed: int = 0) -> np.ndarray:
    """Indices of k mutually dissimilar spectra: greedy farthest point in spectral angle.

    Random picks from a mineral library are often near-duplicates, which would
    make the endmembers ill-posed and the benchmark about luck; farthest-point
    selection gives materials a real unmixing problem would have.
    """
    s = lib.spectra / np.linalg.norm(lib.spectra, axis=0, keepdims=True)
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(s.shape[1]))]
    best = np.full(s.shape[1], np.inf)
    for _ in range(k - 1):
        cos = np.clip(s[:, chosen[-1]] @ s, -1.0, 1.0)
        best = np.minimum(best, np.arccos(cos))
        best[chosen] = -1.0
        chosen.append(int(np.argmax(best)))
    return np.array(chosen)


def resample(lib: Library, idx, num_bands: int) -> Tuple[np.ndarray, np.ndarray]:
    """(wavelengths (C,), spectra (K, C)) on num_bands evenly spaced over the library's range."""
    wl = np.linspace(lib.wavelengths_nm.min(), lib.wavelengths_nm.max(), num_bands)
    spectra = np.stack([np.interp(wl, lib.wavelengths_nm, lib.spectra[:, i]) for i in idx])
    return wl, spectra


def _smooth_field(shape, cell: int, rng) -> np.ndarray:
    """A random field smooth on the scale of `cell` pixels, about unit variance (float32)."""
    from scipy.ndimage import zoom
    H, W = shape
    gh, gw = H // cell + 3, W // cell + 3
    coarse = rng.standard_normal((gh, gw))
    # cubic interpolation of a coarse grid: cost O(H*W), fine at 2048 x 2048
    fine = zoom(coarse, (H / (gh - 3), W / (gw - 3)), order=3, mode="nearest", grid_mode=True)
    return fine[:H, :W].astype(np.float32)


def abundances(H: int, W: int, k: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(A (H x W x k) summing to 1 per pixel, shading (H x W) in [0.75, 1]), float32."""
    rng = np.random.default_rng(seed)
    cell = max(8, min(H, W) // 12)
    fields = np.stack([_smooth_field((H, W), cell, rng) for _ in range(k)], axis=2)
    fields *= 2.5                                       # sharpens the softmax: mostly 1-3 materials per pixel
    fields -= fields.max(axis=2, keepdims=True)
    np.exp(fields, out=fields)
    fields /= fields.sum(axis=2, keepdims=True)
    A = fields
    # hard-edged patches of nearly pure material: what blurs at low resolution
    # and only the HR-MSI can place sharply
    yy = np.arange(H, dtype=np.float32)[:, None]
    xx = np.arange(W, dtype=np.float32)[None, :]
    for j in range(2 * k):
        mat = j % k
        cy, cx = rng.uniform(0.1, 0.9) * H, rng.uniform(0.1, 0.9) * W
        size = rng.uniform(0.04, 0.12) * min(H, W)
        if j % 2:
            mask = (np.abs(yy - cy) < size) & (np.abs(xx - cx) < size * rng.uniform(0.4, 1.6))
        else:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < size ** 2
        rows, cols = np.nonzero(mask)
        patch = A[rows, cols] * 0.1
        patch[:, mat] += 0.9
        A[rows, cols] = patch
    shade = _smooth_field((H, W), cell * 2, rng)
    shade = 0.75 + 0.25 * (shade - shade.min()) / max(float(np.ptp(shade)), 1e-6)
    return A.astype(np.float32, copy=False), shade.astype(np.float32)


class LibraryScene:
    """A mixed scene: cube = shade * (A @ S), generated in row blocks."""

    def __init__(self, H: int, W: int, num_bands: int = 200, k: int = 6, seed: int = 0,
                 library_path=None):
        from .common import data_dir
        lib = load_library(library_path or data_dir() / LIBRARY_FILE)
        self.material_idx = pick_spectra(lib, k, seed)
        self.materials = [lib.names[i] if i < len(lib.names) else str(i) for i in self.material_idx]
        self.wavelengths, spectra = resample(lib, self.material_idx, num_bands)
        self.spectra = spectra.astype(np.float32)            # K x C
        self.A, self.shade = abundances(H, W, k, seed)
        self.shape = (H, W, num_bands)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Cube rows r0..r1-1 (float32)."""
        block = self.A[r0:r1] @ self.spectra
        block *= self.shade[r0:r1, :, None]
        return block

    def cube(self) -> np.ndarray:
        return self.rows(0, self.shape[0])

    def msi_rows(self, r0: int, r1: int, srf: np.ndarray) -> np.ndarray:
        """The same rows seen through an SRF (c x C): A @ (S @ SRF^T), no C-band cube needed."""
        block = self.A[r0:r1] @ (self.spectra @ srf.T.astype(np.float32))
        block *= self.shade[r0:r1, :, None]
        return block

    def band_mean_square(self, srf: Optional[np.ndarray] = None, samples: int = 65536,
                         seed: int = 0) -> np.ndarray:
        """Mean square per band (of the cube, or of its SRF image) from a pixel sample.

        Sets the noise power per band of SPEC 2 without a pass over the cube.
        """
        H, W = self.shape[:2]
        rng = np.random.default_rng(seed)
        n = min(samples, H * W)
        flat = rng.choice(H * W, size=n, replace=False)
        a = self.A.reshape(-1, self.A.shape[2])[flat]
        s = self.spectra if srf is None else self.spectra @ srf.T.astype(np.float32)
        x = (a @ s) * self.shade.reshape(-1)[flat, None]
        return np.mean(x.astype(np.float64) ** 2, axis=0)


def _block_rows(W: int, C: int, multiple: int = 1, budget_bytes: int = 64 << 20) -> int:
    """Rows per block: about `budget_bytes` of float32 H x W x C rows, a multiple of `multiple`."""
    rows = max(1, budget_bytes // max(1, W * C * 4))
    return max(multiple, rows - rows % multiple)


def _noise_std(ms: np.ndarray, snr_db: Optional[float]) -> Optional[np.ndarray]:
    if snr_db is None:
        return None
    return np.sqrt(ms / 10.0 ** (snr_db / 10.0)).astype(np.float32)


class _ArrayFile:
    """Create an H x W x C float32 array on disk (.npy memmap or .h5 dataset) to fill by rows.

    HDF5 chunks are whole blocks of `chunk_rows` rows, the blocks the writer
    fills, so no write touches a chunk partly (no read-modify-write).
    """

    def __init__(self, path: Path, shape, key: str = "data", chunk_rows: int = 64):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._h5 = None
        if self.path.suffix.lower() == ".npy":
            self.arr = np.lib.format.open_memmap(str(self.path), mode="w+", dtype=np.float32,
                                                 shape=tuple(shape))
        else:
            import h5py
            self._h5 = h5py.File(str(self.path), "w")
            chunks = (max(1, min(shape[0], chunk_rows)),) + tuple(shape[1:])
            self.arr = self._h5.create_dataset(key, shape=tuple(shape), dtype=np.float32, chunks=chunks)

    def close(self):
        if self._h5 is not None:
            self._h5.close()
        else:
            self.arr.flush()
            del self.arr


def write_scene_cube(scene: LibraryScene, path) -> Path:
    """The ground-truth cube written block by block (never held whole)."""
    H, W, C = scene.shape
    step = _block_rows(W, C)
    f = _ArrayFile(Path(path), scene.shape, key="truth", chunk_rows=step)
    for r0 in range(0, H, step):
        r1 = min(H, r0 + step)
        f.arr[r0:r1] = scene.rows(r0, r1)
    f.close()
    return Path(path)


def write_real_pair(scene: LibraryScene, ratio: int, srf: np.ndarray, hr_path, lr_path,
                    snr_msi: Optional[float] = 40.0, snr_hsi: Optional[float] = 35.0,
                    seed: int = 0) -> Tuple[Path, Path]:
    """A real-world-mode input pair on disk, made block by block.

    HR-MSI = scene through `srf` + noise (H x W x c); LR-HSI = the scene
    area-downsampled by `ratio` + noise (H/r x W/r x C). Noise per band as in
    SPEC 2 (power = mean square of the band / 10^(snr/10)), the mean square
    taken from a pixel sample. No blur: the speed benchmark times the method,
    and a PSF would need halo rows between blocks for no change in cost.
    """
    H, W, C = scene.shape
    if H % ratio or W % ratio:
        raise ValueError(f"scene {H}x{W} is not a multiple of ratio {ratio}")
    c = srf.shape[0]
    rng = np.random.default_rng(seed)
    std_msi = _noise_std(scene.band_mean_square(srf), snr_msi)
    # area-downsampling keeps the band means and nearly the mean squares at this shading scale
    std_hsi = _noise_std(scene.band_mean_square(None), snr_hsi)
    step = _block_rows(W, C, multiple=ratio)
    hr = _ArrayFile(Path(hr_path), (H, W, c), key="hr_msi", chunk_rows=step)
    lr = _ArrayFile(Path(lr_path), (H // ratio, W // ratio, C), key="lr_hsi", chunk_rows=step // ratio)
    for r0 in range(0, H, step):
        r1 = min(H, r0 + step)
        block = scene.rows(r0, r1)
        msi = scene.msi_rows(r0, r1, srf)
        if std_msi is not None:
            msi += rng.standard_normal(msi.shape, dtype=np.float32) * std_msi
        hr.arr[r0:r1] = msi
        small = block.reshape((r1 - r0) // ratio, ratio, W // ratio, ratio, C).mean(axis=(1, 3))
        if std_hsi is not None:
            small += rng.standard_normal(small.shape, dtype=np.float32) * std_hsi
        lr.arr[r0 // ratio:r1 // ratio] = small
    hr.close()
    lr.close()
    return Path(hr_path), Path(lr_path)


def mirrored(cube: np.ndarray, side: int) -> np.ndarray:
    """`cube` (H x W x C) reflected past its bottom and right edges (each copy a mirror image of
    its neighbour, so no seam is a jump) to whole copies of at least `side` pixels a side."""
    h, w = cube.shape[:2]
    rows, cols = -(-side // h) * h, -(-side // w) * w
    return np.pad(cube, ((0, rows - h), (0, cols - w), (0, 0)), mode="symmetric")


def urban_cube(path=None) -> np.ndarray:
    """The real HYDICE Urban sub-image (34 x 78 x 162), raw values (the pipeline normalises)."""
    import scipy.io
    from .common import data_dir
    p = Path(path or data_dir() / URBAN_FILE)
    return np.asarray(scipy.io.loadmat(str(p))["im"], dtype=np.float32)




class VariableLibraryScene(LibraryScene):
    """A harder mixed scene for the quality bench's held-out case: more materials than the
    engine's default K, and spectral variability inside each material (a per-pixel brightness
    and a per-pixel spectral tilt, both smooth random fields), so the cube is not exactly
    low-rank and no material has one fixed spectrum. Nothing in the engine was tuned on it."""

    def __init__(self, H: int, W: int, num_bands: int = 200, k: int = 10, seed: int = 11,
                 variability: float = 0.15, tilt: float = 0.1, library_path=None):
        super().__init__(H, W, num_bands, k, seed, library_path)
        rng = np.random.default_rng(seed + 1000)
        cell = max(8, min(H, W) // 10)
        self.gain = np.stack([1.0 + variability * _smooth_field((H, W), cell, rng) for _ in range(k)],
                             axis=2).astype(np.float32)
        self.tilt = np.stack([tilt * _smooth_field((H, W), cell, rng) for _ in range(k)], axis=2).astype(np.float32)
        wl = self.wavelengths
        self.slope = ((wl - wl.mean()) / max(float(np.ptp(wl)), 1e-6)).astype(np.float32)   # -0.5 .. 0.5

    def rows(self, r0: int, r1: int) -> np.ndarray:
        a = self.A[r0:r1] * self.gain[r0:r1]
        block = a @ self.spectra + (a * self.tilt[r0:r1]) @ (self.spectra * self.slope[None, :])
        np.clip(block, 0.0, None, out=block)
        block *= self.shade[r0:r1, :, None]
        return block


# ---------------------------------------------------------------------------------- named scenes

SCENES = ("urban", "usgs-a", "usgs-b", "holdout")
# The real Urban cube mirrored past its edges to at least MIRRORED_SIDE pixels a side (136 x 156):
# its texture and spectra stay real, its content repeats (8 mirrored copies). Only the blind
# bench runs it by default, where Urban itself is too small (ratio 8); any bench takes it by name.
URBAN_MIRRORED = "urban-m"
MIRRORED_SIDE = 128
EXTRA_SCENES = (URBAN_MIRRORED,)


@lru_cache(maxsize=None)
def scene(name: str, size: int = 128):
    """(truth cube, wavelengths nm or None); `size`: the library scenes' side in pixels."""
    if name == "urban":
        return urban_cube(), None
    if name == URBAN_MIRRORED:
        return mirrored(urban_cube(), MIRRORED_SIDE), None
    if name == "usgs-a":
        s = LibraryScene(size, size, 200, k=6, seed=0)
    elif name == "usgs-b":
        s = LibraryScene(size, size, 200, k=8, seed=3)
    elif name == "holdout":
        s = VariableLibraryScene(size, size, 200, k=10, seed=11)
    else:
        raise SystemExit(f"error: unknown scene {name!r}; allowed: {', '.join(SCENES + EXTRA_SCENES)}")
    return s.cube(), s.wavelengths


def fits(name: str, ratio: int, k: int = 7, size: int = 128) -> bool:
    """Whether the scene allows the ratio: at least 4 x 4 LR pixels and K of them."""
    truth, _ = scene(name, size)
    h, w = truth.shape[0] // ratio, truth.shape[1] // ratio
    return h >= 4 and w >= 4 and h * w >= k
