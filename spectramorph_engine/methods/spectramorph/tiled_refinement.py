"""The refinement tile by tile: the whole-scene solve of refinement.py, one window at a time.

The refinement's problem couples every pixel to every other (the blur, the VTV, the FFT solves),
but weakly: the prior term (mu ||Delta||^2) and the MSI term pin each pixel, so the influence of
a pixel's data on the solution decays geometrically with distance. A tile solved with a halo of
the scene around it, and kept without the halo, therefore gives the whole-scene solution
wherever the halo is wider than that decay:

- tiles are `tile` x `tile` HR pixels, the halo `halo` HR pixels on each side (both multiples of
  the ratio, so every window starts on an LR pixel and takes exactly the LR-HSI pixels under
  it; clipped at the scene's edge, where the window's border rule is the scene's own);
- the global quantities -- the subspace V, the noise variance, the prior weight mu (from the
  network's LR residual over the whole scene) and the MSI weight -- are computed once for the
  scene (refinement.scene_terms) and given to every tile, so each tile solves the same problem;
- the window's own edges inside the scene are treated as the scene's border (zero padding, or
  HySure's free margin); the error that makes decays into the halo, which is dropped.

Measured (bench/README.md "Tiled refinement"; python -m bench.tiled_refinement halo): with the
scene's terms, an asymmetric 7 x 5 PSF, P = 10 and a flawed network result (a small prior weight,
mu ~ 3e-5; a larger one decays faster) the difference to the whole solve falls by ~10x per
8 HR pixels of halo, from ~20% of the cube's range at no halo to float32 rounding (2-8e-6 of
the range) at 32-64 px: at ratio 4, 3 MSI bands need ~32 (CG) to 48 (ADMM, 100 iterations),
one band (pan) 48-64; at ratio 8 one band 64 (1.2e-5). The ADMM's default ceiling of 200
iterations reaches further: 1.7e-5 at 48, 6.7e-6 at 64. Hence HALO = 64 HR pixels and at
least HALO_LR = 8 LR pixels; for a blur wider than these (kernel side > 12) the halo grows with
it (HALO_PER_KERNEL: an assumption that the decay scales with the blur's reach, not measured).
Conjugate gradients, and the ADMM run a fixed number of iterations, reach that (tests). The
ADMM's default stopping rule is global (relative residuals of the whole problem): a tile stops
by its own residuals, so there the tiled result is close to the whole one, not float-equal.
A real pair's TV solve (HySure's free margin) differs near the scene's edge too: the free
margin wraps around HySure's periodic FFT grid, whose padding (next_fast_len) differs between
a window and the scene, and the whole-scene solution depends on it within ~16 pixels of the
scene's edge (measured up to 2.6e-3 of the range there, below the pair's noise; 32 pixels in,
float rounding). Making the free margin independent of the grid (fixed width, the wrap's
differences left out of the VTV) would remove it, but changes every real-mode result: not done.
"""
from __future__ import annotations

import logging
import time
from typing import Iterator, Optional, Tuple

import numpy as np

from ...core import events as ev
from ...core.memory import release_free_memory
from ...sensors import spatial
from .refinement import Refinement, SceneTerms, TV_TOL, CG_TOL, estimate_record, refine

log = logging.getLogger(__name__)

TILE = 256          # HR pixels per tile side (the window is TILE + 2 halo)
HALO = 64           # HR pixels each side at least: the measured decay (module docstring)
HALO_LR = 8         # and at least this many LR pixels (ratio 8: 64 HR pixels)
HALO_PER_KERNEL = 4     # and at least this many times the blur-and-average kernel's longer side


def aligned(n: int, ratio: int) -> int:
    """`n` rounded up to a multiple of `ratio` (at least one ratio)."""
    return max(int(ratio), -(-int(n) // int(ratio)) * int(ratio))


def default_halo(psf, ratio: int) -> int:
    """The halo (HR pixels, a multiple of the ratio) for this blur and ratio: HALO, HALO_LR LR
    pixels, or HALO_PER_KERNEL kernel sides for a wider blur, whichever is widest."""
    kernel, _ = spatial.decimation_kernel(psf, ratio)
    return aligned(max(HALO, HALO_LR * int(ratio), HALO_PER_KERNEL * max(kernel.shape)), ratio)


def grid_margin(psf, ratio: int) -> Tuple[int, int]:
    """The margin (rows, cols) HySure's grid adds on each side of a frame for this blur."""
    kernel, _ = spatial.decimation_kernel(psf, ratio)
    return kernel.shape[0] // 2 + int(ratio), kernel.shape[1] // 2 + int(ratio)


def tile_for_budget(hr_shape, ratio: int, subspace: int, num_latents: int, tv: bool, margin, halo: int,
                    budget: float) -> Optional[int]:
    """The tile side whose window's solve (memory.estimate_refinement; the window clipped to the
    scene) fits in `budget` bytes with the fewest tiles, the longer side cut into 2, 3, ... equal
    ratio-aligned parts (fewest tiles: least of the work spent twice in the halos); at least
    the ratio and a quarter of the halo (the smallest when none fits); None when no window
    would be smaller than the scene (tiling would save nothing)."""
    from ...core import memory
    H, W = int(hr_shape[0]), int(hr_shape[1])
    c = hr_shape[2] if len(hr_shape) > 2 else 1
    floor = aligned(max(1, halo // 4), ratio)
    if min(H, floor + 2 * halo) * min(W, floor + 2 * halo) >= H * W:
        return None
    parts = 2
    while True:
        tile = aligned(-(-max(H, W) // parts), ratio)
        if tile <= floor:
            return floor
        window = (min(H, tile + 2 * halo), min(W, tile + 2 * halo), c)
        if memory.estimate_refinement(window, subspace, num_latents, tv, margin) <= budget:
            return tile
        parts += 1


def tiles(H: int, W: int, ratio: int, tile: int, halo: int) -> Iterator[Tuple[tuple, tuple]]:
    """((t0, t1, s0, s1), (a0, a1, b0, b1)) per tile in raster order: the tile's rows and
    columns (t, s) and its window's (a, b; the tile plus the halo, clipped to the scene), all
    HR pixels and multiples of the ratio (the last tile ends at the scene's edge)."""
    tile, halo = aligned(tile, ratio), (0 if halo <= 0 else aligned(halo, ratio))
    for t0 in range(0, H, tile):
        t1 = min(H, t0 + tile)
        for s0 in range(0, W, tile):
            s1 = min(W, s0 + tile)
            yield (t0, t1, s0, s1), (max(0, t0 - halo), min(H, t1 + halo), max(0, s0 - halo), min(W, s1 + halo))


def refine_tiled(alle, endmembers, lr_hsi, hr_msi, psf, ratio: int, srf, offset=None, *, terms: SceneTerms,
                 tile: int = TILE, halo: Optional[int] = None, iterations: int = 40, tv_weight: float = 0.0,
                 tv_iterations: int = 100, tv_tol: Optional[float] = TV_TOL, cg_tol: float = CG_TOL,
                 boundary: str = "zero", device="cpu", progress=None, cancel=None,
                 stage: str = "refine") -> Refinement:
    """refinement.refine tile by tile (module docstring): the same arguments, with the scene's
    `terms` (refinement.scene_terms) given. The arrays may be memory maps: only one window of
    each is read at a time. Returns the whole Delta (H x W x P)."""
    t0_all = time.perf_counter()
    r = int(ratio)
    halo = default_halo(psf, r) if halo is None else int(halo)
    H, W = alle.shape[:2]
    if H % r or W % r:
        raise ValueError(f"the HR frame ({H} x {W}) must be a multiple of the ratio {r}")
    P = terms.basis.shape[0]
    delta = np.empty((H, W, P), dtype=np.float32)
    boxes = list(tiles(H, W, r, tile, halo))
    iters = []
    for n, ((t0, t1, s0, s1), (a0, a1, b0, b1)) in enumerate(boxes):
        ev.check_cancel(cancel)
        msi = np.asarray(hr_msi[a0:a1, b0:b1])
        part = refine(np.asarray(alle[a0:a1, b0:b1]), endmembers, np.asarray(lr_hsi[a0 // r:a1 // r, b0 // r:b1 // r]),
                      msi, psf, r, srf, offset, iterations=iterations, tv_weight=tv_weight,
                      tv_iterations=tv_iterations, boundary=boundary, device=device, cancel=cancel,
                      terms=terms, tv_tol=tv_tol, cg_tol=cg_tol)
        delta[t0:t1, s0:s1] = part.delta[t0 - a0:t1 - a0, s0 - b0:s1 - b0]
        iters.append(int(part.info["iterations"]))
        del part, msi
        # the tile's freed buffers back to the system before the next tile allocates its own
        release_free_memory()
        ev.emit(progress, ev.StageProgress(stage, (n + 1) / len(boxes)))
    info = {"subspace_dim": P, "noise_variance": terms.noise_variance, "lr_residual_visible": terms.visible,
            "prior_weight": terms.prior_weight, "trust": terms.trust, "msi_weight": terms.msi_weight,
            "msi_model_error": terms.model_error,
            "tiled": {"tiles": len(boxes), "tile": aligned(tile, r), "halo": 0 if halo <= 0 else aligned(halo, r),
                      "iterations_min_max": [min(iters), max(iters)]},
            "iterations": max(iters), "seconds": time.perf_counter() - t0_all, **estimate_record(terms)}
    if tv_weight > 0:
        info["tv_weight"] = tv_weight * terms.noise_variance
    log.info("refinement in %d tiles of %d px (halo %d px): %d-%d iterations per tile, %.2f s", len(boxes),
             info["tiled"]["tile"], info["tiled"]["halo"], min(iters), max(iters), info["seconds"])
    return Refinement(delta=delta, basis=terms.basis.astype(np.float32), info=info)
