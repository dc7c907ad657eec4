"""High-resolution inference: the trained LEN on every HR-MSI pixel, mixed with the endmembers.

The LEN is per pixel, so processing blocks of rows is exact and bounds memory by the block,
not by the image: a 2048 x 2048 x 200 result can stream straight into a file.
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

from . import events as ev

log = logging.getLogger(__name__)


def coarse_prior_lr(lr_hsi: np.ndarray, prior_downsample: int) -> np.ndarray:
    """The training-time Coarse Spectral Prior: LR-HSI block-averaged by `prior_downsample`
    and repeated back onto the LR grid. Edge blocks that do not fill p x p pixels average
    the pixels they have."""
    a = np.asarray(lr_hsi, dtype=np.float32)
    p = int(prior_downsample)
    if p <= 1:
        return a.copy()
    h, w = a.shape[:2]
    rows, cols = np.arange(0, h, p), np.arange(0, w, p)
    sums = np.add.reduceat(np.add.reduceat(a.astype(np.float64), rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w)))[:, :, None]
    coarse = (sums / counts).astype(np.float32)
    return coarse[np.arange(h) // p][:, np.arange(w) // p]


def default_batch(device, width: int) -> int:
    # 16k pixels x 1024 hidden x 4 bytes = 64 MB of activations per block on CPU.
    return 16384 if torch.device(device).type == "cpu" else 262144


def _prior_rows(lr_hsi: np.ndarray, r0: int, r1: int, width: int, ratio: int) -> np.ndarray:
    """Nearest-upsampled LR-HSI for HR rows r0..r1-1 (never builds the whole HR prior)."""
    return np.asarray(lr_hsi[np.arange(r0, r1) // ratio][:, np.arange(width) // ratio], dtype=np.float32)


@torch.no_grad()
def infer(model, msi, endmembers, lr_hsi: Optional[np.ndarray] = None, ratio: int = 1,
          batch_size: Optional[int] = None, device="cpu", out_hsi=None, progress=None, cancel=None,
          stage: str = "inference"):
    """LEN on every pixel of `msi` (H x W x c) -> (hr_hsi H x W x C clipped to [0,1], alle H x W x K).

    `lr_hsi` given: the coarse spectral prior (LR-HSI nearest-upsampled by `ratio`) is appended
    to each pixel's input. `out_hsi`: where the result goes instead of a new array, either an
    array-like (numpy memmap, h5py dataset) or an object with `write_rows(row, block)` such as
    io.ResultWriter; it is returned in place of the array.
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
    if out_hsi is None:
        out_hsi = np.empty((H, W, C), dtype=np.float32)
    writer = getattr(out_hsi, "write_rows", None)
    for r0 in range(0, H, rows_per_block):
        ev.check_cancel(cancel)
        r1 = min(H, r0 + rows_per_block)
        block = np.asarray(msi[r0:r1], dtype=np.float32).reshape(-1, c)
        if lr_hsi is not None:
            prior = _prior_rows(lr_hsi, r0, r1, W, ratio).reshape(-1, lr_hsi.shape[2])
            block = np.concatenate([block, prior], axis=1)
        x = torch.from_numpy(np.ascontiguousarray(block)).to(device)
        latent = model(x)
        hr = (latent @ E).clamp_(0.0, 1.0)
        alle[r0:r1] = latent.cpu().numpy().reshape(r1 - r0, W, K)
        hr_block = hr.cpu().numpy().reshape(r1 - r0, W, C)
        if writer is not None:
            writer(r0, hr_block)
        else:
            out_hsi[r0:r1] = hr_block
        ev.emit(progress, ev.StageProgress(stage, r1 / H))
    return out_hsi, alle
