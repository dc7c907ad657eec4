"""Observation-consistency refinement: the step after inference that makes the fused cube
agree with both images it came from.

SpectraMorph's network maps each HR-MSI pixel to a spectrum on its own; nothing forces the
result, blurred and downsampled, to give back the LR-HSI, or seen through the SRF to give
back the HR-MSI. This step finds the correction that does, as a maximum-a-posteriori
estimate with the network's result as the prior mean:

    Z = Z0 + Delta V          V: the P leading right singular vectors of the LR-HSI (P x C)

    minimise  1/(2 s_h^2) ||D(Z) - Y_h||^2  +  w_m/(2 s_h^2) ||Z R^T + o - Y_m||^2
              + 1/(2 s_d^2) ||Delta||^2

D = blur with the PSF ('same', zero padding) then area-downsample by r (the sensor model of
degradation.degrade_spatial), R and o the SRF and per-band offset in use, s_h^2 the LR-HSI's
noise variance (estimated from the cube: see `noise_variance`), w_m the MSI weight relative
to it (1: the same noise per value in both images), and s_d^2 the expected size of the
correction: `trust` times the part of the network's error that the LR-HSI can see (its LR
residual in the subspace, less the noise). A network result that already reproduces the
LR-HSI to its noise level gets almost no correction; a poor one (1-band MSI) gets a large
one. Keeping Delta in the LR-HSI's leading subspace keeps the noise of the other C - P
dimensions out.

Measured (issue 8 notes, bench/README.md): on Urban and library scenes at ratio 4 this adds
2-6 dB PSNR to the network's result at 1 to 8 MSI bands; `trust` 4-16 and w_m 0.3-3 all sit
within ~0.5 dB of the best; plain back-projection of the LR residual (no subspace, no MSI
term, no prior) is what lost dB at 4 bands. The normal equations are solved by conjugate
gradients on P-channel images (torch, any device); the HR cube itself is never formed: Z0 is
the network's latents times the endmembers, so memory is (K + 5 P) HR planes.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ...core import events as ev
from ...sensors import spatial

log = logging.getLogger(__name__)

NOISE_SAMPLE_PIXELS = 20000     # LR pixels used to estimate the noise (a strided sample)
# The TV refinement's ADMM stops by relative residuals checked every TV_CHECK_EVERY iterations
# (`tv_iterations` is a ceiling). TV_WARM_START (the exact solution without the VTV as the
# start, hysure.solve) is off: it reaches a far lower objective (usgs-a 128^2, ratio 8, 1 band:
# 4.29 against 6.03 after 200 iterations) but 3 dB less PSNR: the weights of this problem
# were tuned on the cold 200-iteration ADMM, whose early stop regularises. Retune before use.
TV_TOL = 5e-5
TV_CHECK_EVERY = 10
TV_WARM_START = False


@dataclass
class Refinement:
    """Delta (H x W x P) and basis V (P x C): the refined cube is latents @ E + delta @ V."""
    delta: np.ndarray
    basis: np.ndarray
    info: dict = field(default_factory=dict)


def subspace_basis(lr_hsi: np.ndarray, dim: int) -> np.ndarray:
    """The `dim` leading right singular vectors of the LR-HSI's pixels (dim x C, float64,
    orthonormal rows), from the C x C Gram matrix of a pixel sample."""
    x = np.asarray(lr_hsi).reshape(-1, lr_hsi.shape[-1])
    x = x[::max(1, -(-x.shape[0] // (2 * NOISE_SAMPLE_PIXELS)))].astype(np.float64)   # sample, then convert
    evals, evecs = np.linalg.eigh(x.T @ x)
    return np.ascontiguousarray(evecs[:, ::-1][:, :dim].T)


def noise_variance(lr_hsi: np.ndarray, rank: Optional[int] = None) -> float:
    """Noise variance per value of the LR-HSI, from its spectral redundancy: the energy outside
    the `rank` leading principal components, divided by its degrees of freedom
    (N - rank - 1)(C - rank). Exact for white noise on a signal of rank <= `rank`; a richer
    scene reads a little high, which only makes the refinement more cautious.
    Default rank: min(20, N/8, C/8)."""
    x = np.asarray(lr_hsi).reshape(-1, lr_hsi.shape[-1])
    step = max(1, -(-x.shape[0] // NOISE_SAMPLE_PIXELS))
    x = x[::step].astype(np.float64)
    n, c = x.shape
    rank = int(rank or max(1, min(20, n // 8, c // 8)))
    if n - rank - 1 <= 0 or c - rank <= 0:
        return float(np.var(x)) * 1e-3 + 1e-12
    x = x - x.mean(axis=0)
    evals = np.clip(np.linalg.eigvalsh(x.T @ x), 0.0, None)[::-1]
    return max(float(evals[rank:].sum()) / ((n - rank - 1) * (c - rank)), 1e-12)


class _SpatialModel:
    """D (blur then r x r block mean) and its adjoint on (channels, H, W) tensors: the operator of
    sensors/spatial.py with its "zero" border rule, kernels oriented by spatial.torch_kernels.
    It stays a torch copy on purpose: the conjugate-gradient solve runs on the run's device on
    P-channel images, where a numpy round trip per iteration would cost more than the solve.
    (The CG normal equations take no border rule; with TV the solve goes to HySure's grid,
    which carries `boundary`.)"""

    def __init__(self, psf, ratio: int, device, dtype=torch.float32):
        self.r = int(ratio)
        fwd, adj = spatial.torch_kernels(psf)
        if fwd is None:
            self.kernel = self.kernel_adj = None      # no blur (a delta PSF): D is the block mean alone
        else:
            # conv2d correlates: the flipped kernel convolves, the kernel itself is the adjoint
            self.kernel = torch.as_tensor(fwd, dtype=dtype, device=device)[None, None]
            self.kernel_adj = torch.as_tensor(adj, dtype=dtype, device=device)[None, None]
            self.pad = (fwd.shape[0] // 2, fwd.shape[1] // 2)

    def _conv(self, x, kernel):
        if kernel is None:
            return x
        return F.conv2d(x[:, None], kernel, padding=self.pad)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self._conv(x, self.kernel)[:, None], self.r)[:, 0]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        up = y.repeat_interleave(self.r, dim=1).repeat_interleave(self.r, dim=2) / (self.r * self.r)
        return self._conv(up, self.kernel_adj)


def refine(alle: np.ndarray, endmembers: np.ndarray, lr_hsi: np.ndarray, hr_msi: np.ndarray, psf,
           ratio: int, srf: np.ndarray, offset=None, *, subspace_dim: int = 7, trust: float = 8.0,
           msi_weight: float = 1.0, iterations: int = 40, tv_weight: float = 0.0, tv_iterations: int = 100,
           boundary: str = "zero", device="cpu", progress=None, cancel=None,
           stage: str = "refine", msi_model_mse=None) -> Refinement:
    """The correction Delta of the module docstring for the result alle @ endmembers.

    alle H x W x K, endmembers K x C, lr_hsi h x w x C, hr_msi H x W x c, srf c x C, offset (c,).
    `tv_weight` > 0 adds HySure's vector total variation of the refined cube's subspace
    coefficients to the objective (solved by HySure's ADMM with the network's result as a fifth,
    quadratic term, `tv_iterations` iterations from the network's coefficients; `boundary` as
    there); 0 keeps the quadratic problem, solved by conjugate gradients.
    `msi_model_mse` (c,): how far the pair's HR-MSI on the LR grid is from the LR-HSI seen through
    `srf` (the SRF fit's mean squared residual per band, real pairs): what exceeds the two
    images' noise there is model error -- a camera the linear SRF cannot describe (gamma) -- and
    counts as MSI noise: the MSI weight becomes msi_weight * s_h^2 / (s_h^2 + that error).
    Measured on the blind bench's gamma-1/2.2 pairs: a lower MSI weight gains 1-1.6 dB there.
    """
    t0 = time.perf_counter()
    dev = torch.device(device)
    H, W, K = alle.shape
    h, w, C = lr_hsi.shape
    c = hr_msi.shape[2] if hr_msi.ndim == 3 else 1
    P = int(max(1, min(subspace_dim, C, h * w)))
    V64 = subspace_basis(lr_hsi, P)
    ev.check_cancel(cancel)
    sigma2 = noise_variance(lr_hsi)
    ev.check_cancel(cancel)
    R = np.asarray(srf, dtype=np.float64).reshape(c, C)
    off = np.zeros(c) if offset is None else np.asarray(offset, dtype=np.float64).reshape(c)
    model_error = 0.0
    if msi_model_mse is not None:
        # the fit residual an exact linear model would leave: the LR-HSI's noise through each SRF
        # row, and the MSI's (the same per value, by the weight-1 convention) averaged over r x r
        expected = sigma2 * (np.sum(R * R, axis=1) + 1.0 / (ratio * ratio))
        model_error = float(np.mean(np.maximum(0.0, np.asarray(msi_model_mse, dtype=np.float64).reshape(c)
                                                 - expected)))
        msi_weight = msi_weight * sigma2 / (sigma2 + model_error)
    E64 = np.asarray(endmembers, dtype=np.float64)
    f32 = dict(dtype=torch.float32, device=dev)
    model = _SpatialModel(psf, ratio, dev)
    ev.emit(progress, ev.StageProgress(stage, 0.0))
    with torch.no_grad():
        A = torch.as_tensor(np.ascontiguousarray(alle.transpose(2, 0, 1)), **f32)        # K x H x W
        # LR residual of the network's result, in the subspace (P x h x w)
        lr_fit = torch.einsum("khw,kc->chw", model.forward(A), torch.as_tensor(E64, **f32))
        ev.check_cancel(cancel)
        res_h = torch.as_tensor(np.ascontiguousarray(np.asarray(lr_hsi, dtype=np.float32).transpose(2, 0, 1)),
                                **f32) - lr_fit
        Vt = torch.as_tensor(V64, **f32)                                                   # P x C
        res_h = torch.einsum("chw,pc->phw", res_h, Vt)
        del lr_fit
        visible = float(res_h.square().mean()) - sigma2
        ev.check_cancel(cancel)
        # MSI residual (c x H x W), a block of rows at a time (a big scene takes seconds)
        msi = np.asarray(hr_msi, dtype=np.float32).reshape(H, W, c)
        # a copy: it is updated in place below (for one band the transpose would be a view of the HR-MSI)
        res_m = torch.tensor(msi.transpose(2, 0, 1), **f32)
        ER = torch.as_tensor(E64 @ R.T, **f32)
        off_t = torch.as_tensor(off, **f32)[:, None, None]
        for r0 in range(0, H, 256):
            ev.check_cancel(cancel)
            res_m[:, r0:r0 + 256] -= torch.einsum("khw,kc->chw", A[:, r0:r0 + 256], ER) + off_t
        del A
        RV = torch.as_tensor(R @ V64.T, **f32)                                             # c x P
        G = torch.as_tensor(msi_weight * (V64 @ R.T @ R @ V64.T), **f32)                   # P x P
        # Normalised by the noise: data weight 1, prior weight mu = s_h^2 / s_d^2.
        spread = max(visible, 1e-6 * sigma2)
        mu = sigma2 / (trust * spread)
        if tv_weight > 0:
            del res_h, res_m
            # the TV weight is relative to the noise variance: data terms and TV keep their
            # balance at any noise level (a fixed weight over-smooths clean pairs, under-smooths
            # noisy ones: measured 30 dB vs 35 dB scenes, issue 8 notes)
            ref = _refine_tv(alle, endmembers, lr_hsi, hr_msi, psf, ratio, R, off, V64, mu, sigma2, visible,
                             trust=trust, msi_weight=msi_weight, tv_weight=tv_weight * sigma2,
                             iterations=tv_iterations,
                             boundary=boundary, device=dev, progress=progress, cancel=cancel, stage=stage, t0=t0)
            ref.info["msi_model_error"] = model_error
            return ref
        b = model.adjoint(res_h) + msi_weight * torch.einsum("chw,cp->phw", res_m, RV)
        del res_h, res_m

        def normal_op(d):
            return model.adjoint(model.forward(d)) + torch.einsum("phw,pq->qhw", d, G) + mu * d

        x = torch.zeros_like(b)
        r = b.clone()
        p = r.clone()
        rs = float(r.square().sum())
        rs0 = rs
        it = 0
        for it in range(1, int(iterations) + 1):
            ev.check_cancel(cancel)
            ap = normal_op(p)
            alpha = rs / max(float((p * ap).sum()), 1e-300)
            x.add_(p, alpha=alpha)
            r.sub_(ap, alpha=alpha)
            rs_new = float(r.square().sum())
            ev.emit(progress, ev.StageProgress(stage, it / iterations))
            if rs_new <= 1e-12 * rs0:
                break
            p.mul_(rs_new / rs).add_(r)
            rs = rs_new
        delta = x.permute(1, 2, 0).contiguous().cpu().numpy()
    info = {"subspace_dim": P, "noise_variance": sigma2, "lr_residual_visible": visible,
            "prior_weight": mu, "trust": trust, "msi_weight": msi_weight, "msi_model_error": model_error,
            "iterations": it, "relative_residual": math.sqrt(rs_new / rs0) if rs0 > 0 else 0.0,
            "seconds": time.perf_counter() - t0}
    log.info("refinement: P %d, noise var %.3g, visible error var %.3g, prior weight %.3g, %d CG "
             "iterations, %.2f s", P, sigma2, visible, mu, it, info["seconds"])
    return Refinement(delta=delta, basis=V64.astype(np.float32), info=info)


def _refine_tv(alle, endmembers, lr_hsi, hr_msi, psf, ratio, R, offset, V64, mu, sigma2, visible, *, trust,
               msi_weight, tv_weight, iterations, boundary, device, progress, cancel, stage, t0) -> Refinement:
    """The refinement with HySure's vector TV: methods.hysure.solve with the network's result
    as the prior (weight mu), in the same subspace; Delta = X - X0."""
    from ..hysure import solve

    def tick(fraction, force=False):
        ev.emit(progress, ev.StageProgress(stage, float(fraction)))

    H, W, _ = alle.shape
    msi = np.asarray(hr_msi, dtype=np.float32).reshape(H, W, -1)
    coeff, E, history, hinfo = solve(msi, np.asarray(lr_hsi, dtype=np.float32), ratio, psf, R, offset,
                                     boundary=boundary, msi_weight=msi_weight, tv_weight=tv_weight,
                                     iterations=iterations, device=device, cancel=cancel, tick=tick,
                                     basis=V64, prior_latents=alle, prior_mixing=endmembers, prior_weight=mu,
                                     warm_start=TV_WARM_START, tol=TV_TOL, check_every=TV_CHECK_EVERY,
                                     record_objective=False)
    x0 = np.asarray(alle, dtype=np.float32) @ (np.asarray(endmembers, dtype=np.float64) @ E).astype(np.float32)
    delta = coeff - x0
    info = {"subspace_dim": V64.shape[0], "noise_variance": sigma2, "lr_residual_visible": visible,
            "prior_weight": mu, "trust": trust, "msi_weight": msi_weight, "tv_weight": tv_weight,
            "iterations": hinfo["iterations"], "iterations_max": iterations, "stop": hinfo["stop"],
            "residuals": hinfo["residuals"], "start": hinfo["warm_start"],
            "solver": "ADMM (HySure with the network's result as prior)",
            "objective_first_last": [history[0], history[-1]], "seconds": time.perf_counter() - t0}
    log.info("refinement with VTV %.3g: P %d, noise var %.3g, visible error var %.3g, prior weight %.3g, "
             "%d of %d ADMM iterations (%s), %.2f s", tv_weight, V64.shape[0], sigma2, visible, mu,
             hinfo["iterations"], iterations, hinfo["stop"], info["seconds"])
    return Refinement(delta=delta.astype(np.float32), basis=V64.astype(np.float32), info=info)
