"""High-resolution inference: the trained LEN on every HR-MSI pixel, mixed with the endmembers.

The LEN is per pixel, so processing blocks of rows is exact and bounds memory by the block,
not by the image: a 2048 x 2048 x 200 result can stream straight into a file.
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

from ...core import events as ev

log = logging.getLogger(__name__)


def coarse_prior_blocks(lr_hsi: np.ndarray, prior_downsample: int, cancel=None):
    """The training-time Coarse Spectral Prior as (rows (blocks x C) float32, index (h*w,) int64):
    the LR-HSI block-averaged by `prior_downsample`, one row per block, and each LR pixel's
    block (raster order). Edge blocks that do not fill p x p pixels average the pixels they have.
    Computed a few bands at a time, the cancel token checked between them."""
    a = np.asarray(lr_hsi, dtype=np.float32)
    p = max(1, int(prior_downsample))
    h, w, C = a.shape
    if p == 1:
        return a.reshape(-1, C).copy(), np.arange(h * w, dtype=np.int64)
    rows, cols = np.arange(0, h, p), np.arange(0, w, p)
    counts = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w)))[:, :, None]
    coarse = np.empty((len(rows), len(cols), C), dtype=np.float32)
    for b0 in range(0, C, 16):
        ev.check_cancel(cancel)
        part = a[:, :, b0:b0 + 16].astype(np.float64)
        sums = np.add.reduceat(np.add.reduceat(part, rows, axis=0), cols, axis=1)
        coarse[:, :, b0:b0 + 16] = sums / counts
    index = (np.arange(h)[:, None] // p) * len(cols) + (np.arange(w)[None, :] // p)
    return coarse.reshape(-1, C), index.reshape(-1).astype(np.int64)


def coarse_prior_lr(lr_hsi: np.ndarray, prior_downsample: int) -> np.ndarray:
    """The training-time Coarse Spectral Prior on the LR grid (h x w x C): the LR-HSI
    block-averaged by `prior_downsample` and repeated back onto the LR grid."""
    rows, index = coarse_prior_blocks(lr_hsi, prior_downsample)
    h, w, C = np.shape(lr_hsi)
    return rows[index].reshape(h, w, C)


def default_batch(device, width: int) -> int:
    # 16k pixels x 1024 hidden x 4 bytes = 64 MB of activations per block on CPU.
    return 16384 if torch.device(device).type == "cpu" else 262144



@torch.no_grad()
def infer(model, msi, endmembers, lr_hsi: Optional[np.ndarray] = None, ratio: int = 1,
          batch_size: Optional[int] = None, device="cpu", out_hsi=None, progress=None, cancel=None,
          stage: str = "inference", mix: bool = True, value_range=(0.0, 1.0)):
    """LEN on every pixel of `msi` (H x W x c) -> (hr_hsi H x W x C clipped to `value_range`
    (low, high; None: unbounded), alle H x W x K).

    `lr_hsi` given: the coarse spectral prior (LR-HSI nearest-upsampled by `ratio`) is appended
    to each pixel's input. `out_hsi`: where the result goes instead of a new array, either an
    array-like (numpy memmap, h5py dataset) or an object with `write_rows(row, block)` such as
    io.ResultWriter; it is returned in place of the array. `mix` False: only the latents are
    computed (returns (None, alle)); `mix_latents` makes the cube later (after a refinement).
    """
    device = torch.device(device)
    model.eval()
    E = torch.as_tensor(endmembers, dtype=torch.float32).to(device)
    H, W = msi.shape[:2]
    c = msi.shape[2] if msi.ndim == 3 else 1
    K, C = E.shape
    batch = int(batch_size or default_batch(device, W))
    rows_per_block = max(1, batch // W)
    alle = np.empty((H, W, K), dtype=np.float32)
    if out_hsi is None and mix:
        out_hsi = np.empty((H, W, C), dtype=np.float32)
    writer = getattr(out_hsi, "write_rows", None)
    for r0 in range(0, H, rows_per_block):
        ev.check_cancel(cancel)
        r1 = min(H, r0 + rows_per_block)
        block = np.asarray(msi[r0:r1], dtype=np.float32).reshape(-1, c)
        x = torch.from_numpy(np.ascontiguousarray(block)).to(device)
        if lr_hsi is not None:
            # the prior (LR-HSI nearest-upsampled) repeats each LR pixel over r x r HR pixels:
            # its share of the first layer is computed per LR pixel (model.latents)
            l0, l1 = r0 // ratio, (r1 - 1) // ratio + 1
            w_lr = lr_hsi.shape[1]
            rows_lr = torch.from_numpy(np.ascontiguousarray(
                np.asarray(lr_hsi[l0:l1], dtype=np.float32).reshape(-1, lr_hsi.shape[2]))).to(device)
            index = ((np.arange(r0, r1) // ratio - l0)[:, None] * w_lr
                     + (np.arange(W) // ratio)[None, :]).reshape(-1)
            latent = model.latents(x, rows_lr, torch.from_numpy(index).to(device))
        else:
            latent = model.latents(x)
        alle[r0:r1] = latent.cpu().numpy().reshape(r1 - r0, W, K)
        if not mix:
            ev.emit(progress, ev.StageProgress(stage, r1 / H))
            continue
        hr = (latent @ E).clamp_(min=value_range[0], max=value_range[1])
        hr_block = hr.cpu().numpy().reshape(r1 - r0, W, C)
        ev.check_cancel(cancel)       # writing a block (compressed .h5) takes as long as computing it
        if writer is not None:
            writer(r0, hr_block)
        else:
            out_hsi[r0:r1] = hr_block
        ev.emit(progress, ev.StageProgress(stage, r1 / H))
    return out_hsi, alle


@torch.no_grad()
def mix_latents(latents: np.ndarray, basis: np.ndarray, out_hsi=None, batch_size: Optional[int] = None,
                device="cpu", progress=None, cancel=None, stage: str = "inference", value_range=(0.0, 1.0)):
    """clip(latents @ basis, *value_range) row block by row block: latents H x W x L, basis L x C
    (e.g. the ALLE beside a refinement's correction, and the endmembers above its subspace).
    `out_hsi` as in `infer`; returns it (or a new H x W x C float32 array)."""
    device = torch.device(device)
    H, W, L = latents.shape
    B = torch.as_tensor(np.ascontiguousarray(basis, dtype=np.float32)).to(device)
    C = B.shape[1]
    if out_hsi is None:
        out_hsi = np.empty((H, W, C), dtype=np.float32)
    writer = getattr(out_hsi, "write_rows", None)
    rows_per_block = max(1, int(batch_size or default_batch(device, W)) // W)
    for r0 in range(0, H, rows_per_block):
        ev.check_cancel(cancel)
        r1 = min(H, r0 + rows_per_block)
        x = torch.from_numpy(np.ascontiguousarray(latents[r0:r1].reshape(-1, L), dtype=np.float32)).to(device)
        block = (x @ B).clamp_(min=value_range[0], max=value_range[1]).cpu().numpy().reshape(r1 - r0, W, C)
        if writer is not None:
            writer(r0, block)
        else:
            out_hsi[r0:r1] = block
        ev.emit(progress, ev.StageProgress(stage, r1 / H))
    return out_hsi
