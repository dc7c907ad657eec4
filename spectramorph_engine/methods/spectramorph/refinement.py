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
# conjugate gradients stop at this relative residual ||b - A x|| / ||b|| (float32 reaches it)
CG_TOL = 1e-6


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


@dataclass
class SceneTerms:
    """The refinement's global quantities: computed once from the whole scene, so that a tile
    (tiled_refinement.py) solves the same problem as the whole-scene solve restricted to it."""
    basis: np.ndarray              # V, P x C float64, orthonormal rows
    noise_variance: float          # s_h^2
    visible: float                 # the network's LR residual in the subspace, less the noise
    prior_weight: float            # mu = s_h^2 / s_d^2
    msi_weight: float              # w_m after the model error
    model_error: float
    trust: float
    subspace_estimate: Optional[dict] = None    # how P was estimated from the LR-HSI (None: P was given)


def estimate_record(terms: "SceneTerms") -> dict:
    """The refinement info's record of an estimated P ({} when P was given)."""
    return {} if terms.subspace_estimate is None else {"subspace_estimate": dict(terms.subspace_estimate)}


def lr_residual_window(alle, endmembers, lr_own, psf, ratio: int, basis, top: int = 0, left: int = 0, *,
                       device="cpu") -> float:
    """sum over the LR pixels `lr_own` of ||V (Y_h - D(alle @ endmembers))||^2, where `alle` is an
    HR window reaching `top` rows and `left` columns (multiples of the ratio) before those
    pixels' own HR pixels and at least the blur's reach past them on every side inside the
    scene, so that no LR pixel of `lr_own` sees the window's edge (only the scene's)."""
    dev = torch.device(device)
    f32 = dict(dtype=torch.float32, device=dev)
    r = int(ratio)
    h, w = lr_own.shape[:2]
    model = _SpatialModel(psf, r, dev)
    E = torch.as_tensor(np.asarray(endmembers, dtype=np.float64), **f32)
    Vt = torch.as_tensor(np.asarray(basis, dtype=np.float64), **f32)
    with torch.no_grad():
        A = torch.as_tensor(np.ascontiguousarray(np.asarray(alle, dtype=np.float32).transpose(2, 0, 1)), **f32)
        fit = model.forward(A)[:, top // r:top // r + h, left // r:left // r + w]
        fit = torch.einsum("khw,kc->chw", fit, E)
        y = torch.as_tensor(np.ascontiguousarray(np.asarray(lr_own, dtype=np.float32).transpose(2, 0, 1)), **f32)
        res = torch.einsum("chw,pc->phw", y - fit, Vt)
        return float(torch.sum(res * res, dtype=torch.float64))


def blur_reach(psf, ratio: int) -> int:
    """HR pixels (a multiple of the ratio) past an LR pixel's own block that its blur reads."""
    k = spatial.check_psf(psf)
    return -(-(max(k.shape) // 2) // int(ratio)) * int(ratio)


def lr_residual_sum(alle, endmembers, lr_hsi, psf, ratio: int, basis, *, device="cpu", cancel=None,
                    rows: int = 64) -> float:
    """lr_residual_window over the whole scene, `rows` LR rows at a time (each block degraded
    with the HR rows the blur reaches past it, so the sum equals the whole image's), never the
    whole K x H x W stack at once."""
    r = int(ratio)
    H, h = alle.shape[0], lr_hsi.shape[0]
    over = blur_reach(psf, r)
    total = 0.0
    for i0 in range(0, h, rows):
        ev.check_cancel(cancel)
        i1 = min(h, i0 + rows)
        a0, a1 = max(0, i0 * r - over), min(H, i1 * r + over)
        total += lr_residual_window(alle[a0:a1], endmembers, lr_hsi[i0:i1], psf, r, basis, top=i0 * r - a0,
                                    device=device)
    return total


def with_lr_residual(terms: "SceneTerms", lr_residual: float, lr_values: int) -> "SceneTerms":
    """`terms` with the network's visible error and the prior weight from lr_residual_sum's total
    over `lr_values` (P x LR pixels) values."""
    import dataclasses
    sigma2 = terms.noise_variance
    visible = float(lr_residual) / max(1, int(lr_values)) - sigma2
    # Normalised by the noise: data weight 1, prior weight mu = s_h^2 / s_d^2.
    spread = max(visible, 1e-6 * sigma2)
    return dataclasses.replace(terms, visible=visible, prior_weight=sigma2 / (terms.trust * spread))


def msi_model_error(sigma2: float, srf, ratio: int, msi_model_mse) -> float:
    """What the SRF fit's residual per band (`msi_model_mse`) exceeds the noise by, averaged over
    the bands: the fit residual an exact linear model would leave is the LR-HSI's noise through
    each SRF row plus the MSI's (the same per value, by the weight-1 convention) averaged over
    r x r."""
    R = np.asarray(srf, dtype=np.float64)
    expected = sigma2 * (np.sum(R * R, axis=1) + 1.0 / (ratio * ratio))
    return float(np.mean(np.maximum(0.0, np.asarray(msi_model_mse, dtype=np.float64).reshape(-1) - expected)))


def scene_terms(alle, endmembers, lr_hsi, psf, ratio: int, srf, *, subspace_dim: int = 7, trust: float = 8.0,
                msi_weight: float = 1.0, msi_model_mse=None, device="cpu", cancel=None,
                lr_residual: Optional[float] = None, subspace_estimate: Optional[dict] = None) -> SceneTerms:
    """The global quantities of the module docstring's problem (see `refine`). `lr_residual`: the
    sum `lr_residual_sum` gives, when the caller has it; `alle` None and no `lr_residual`: the
    terms without the visible error and prior weight (NaN), which the Dask run adds once its
    chunks have summed the residual (with_lr_residual). `subspace_estimate`: how `subspace_dim` was
    estimated, kept for the run's record."""
    h, w, C = lr_hsi.shape
    R = np.asarray(srf, dtype=np.float64).reshape(-1, C)
    P = int(max(1, min(subspace_dim, C, h * w)))
    V64 = subspace_basis(lr_hsi, P)
    ev.check_cancel(cancel)
    sigma2 = noise_variance(lr_hsi)
    ev.check_cancel(cancel)
    model_error = 0.0
    if msi_model_mse is not None:
        model_error = msi_model_error(sigma2, R, ratio, msi_model_mse)
        msi_weight = msi_weight * sigma2 / (sigma2 + model_error)
    terms = SceneTerms(basis=V64, noise_variance=sigma2, visible=float("nan"), prior_weight=float("nan"),
                       msi_weight=msi_weight, model_error=model_error, trust=trust,
                       subspace_estimate=subspace_estimate)
    if alle is None and lr_residual is None:
        return terms            # the caller adds the network's residual later (with_lr_residual)
    if lr_residual is None:
        lr_residual = lr_residual_sum(alle, endmembers, lr_hsi, psf, ratio, V64, device=device, cancel=cancel)
    return with_lr_residual(terms, lr_residual, P * h * w)


def refine(alle: np.ndarray, endmembers: np.ndarray, lr_hsi: np.ndarray, hr_msi: np.ndarray, psf,
           ratio: int, srf: np.ndarray, offset=None, *, subspace_dim: int = 7, trust: float = 8.0,
           msi_weight: float = 1.0, iterations: int = 40, tv_weight: float = 0.0, tv_iterations: int = 100,
           boundary: str = "zero", device="cpu", progress=None, cancel=None,
           stage: str = "refine", msi_model_mse=None, terms: Optional[SceneTerms] = None,
           tv_tol: Optional[float] = TV_TOL, cg_tol: float = CG_TOL,
           subspace_estimate: Optional[dict] = None, lr_weight=None) -> Refinement:
    """The correction Delta of the module docstring for the result alle @ endmembers.

    alle H x W x K, endmembers K x C, lr_hsi h x w x C, hr_msi H x W x c, srf c x C, offset (c,).
    `tv_weight` > 0 adds HySure's vector total variation of the refined cube's subspace
    coefficients to the objective (solved by HySure's ADMM with the network's result as a fifth,
    quadratic term, `tv_iterations` iterations from the network's coefficients, stopping once its
    relative residuals reach `tv_tol` (None: all of them); `boundary` as there); 0 keeps the
    quadratic problem, solved by conjugate gradients (at most `iterations`, to a relative
    residual `cg_tol`).
    `msi_model_mse` (c,): how far the pair's HR-MSI on the LR grid is from the LR-HSI seen through
    `srf` (the SRF fit's mean squared residual per band, real pairs): what exceeds the two
    images' noise there is model error -- a camera the linear SRF cannot describe (gamma) -- and
    counts as MSI noise: the MSI weight becomes msi_weight * s_h^2 / (s_h^2 + that error).
    Measured on the blind bench's gamma-1/2.2 pairs: a lower MSI weight gains 1-1.6 dB there.
    `terms`: the global quantities (`scene_terms`) when these arrays are a window of a bigger
    scene (tiled_refinement.py); then subspace_dim, trust, msi_weight, msi_model_mse and
    subspace_estimate (scene_terms') are not used. `lr_weight` (h x w; TV only): the LR-HSI
    term's weight per LR pixel, 0 leaving a pixel out (hysure.solve; bench.refine_tune --holdout).
    """
    t0 = time.perf_counter()
    dev = torch.device(device)
    H, W, K = alle.shape
    h, w, C = lr_hsi.shape
    c = hr_msi.shape[2] if hr_msi.ndim == 3 else 1
    if terms is None:
        terms = scene_terms(alle, endmembers, lr_hsi, psf, ratio, srf, subspace_dim=subspace_dim, trust=trust,
                            msi_weight=msi_weight, msi_model_mse=msi_model_mse, device=dev, cancel=cancel,
                            subspace_estimate=subspace_estimate)
    V64, sigma2, visible, mu = terms.basis, terms.noise_variance, terms.visible, terms.prior_weight
    msi_weight, model_error, trust = terms.msi_weight, terms.model_error, terms.trust
    P = V64.shape[0]
    R = np.asarray(srf, dtype=np.float64).reshape(c, C)
    off = np.zeros(c) if offset is None else np.asarray(offset, dtype=np.float64).reshape(c)
    E64 = np.asarray(endmembers, dtype=np.float64)
    f32 = dict(dtype=torch.float32, device=dev)
    model = _SpatialModel(psf, ratio, dev)
    ev.emit(progress, ev.StageProgress(stage, 0.0))
    if tv_weight > 0:
        # the TV weight is relative to the noise variance: data terms and TV keep their
        # balance at any noise level (a fixed weight over-smooths clean pairs, under-smooths
        # noisy ones: measured 30 dB vs 35 dB scenes, issue 8 notes)
        ref = _refine_tv(alle, endmembers, lr_hsi, hr_msi, psf, ratio, R, off, V64, mu, sigma2, visible,
                         trust=trust, msi_weight=msi_weight, tv_weight=tv_weight * sigma2,
                         iterations=tv_iterations, tol=tv_tol, lr_weight=lr_weight,
                         boundary=boundary, device=dev, progress=progress, cancel=cancel, stage=stage, t0=t0)
        ref.info.update(msi_model_error=model_error, **estimate_record(terms))
        return ref
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
        b = model.adjoint(res_h) + msi_weight * torch.einsum("chw,cp->phw", res_m, RV)
        del res_h, res_m

        def normal_op(d):
            return model.adjoint(model.forward(d)) + torch.einsum("phw,pq->qhw", d, G) + mu * d

        x = torch.zeros_like(b)
        r = b.clone()
        p = r.clone()
        rs = float(torch.sum(r * r, dtype=torch.float64))
        rs0 = rs
        rs_new = rs
        it = 0
        for it in range(1, int(iterations) + 1):
            ev.check_cancel(cancel)
            ap = normal_op(p)
            alpha = rs / max(float(torch.sum(p * ap, dtype=torch.float64)), 1e-300)
            x.add_(p, alpha=alpha)
            r.sub_(ap, alpha=alpha)
            rs_new = float(torch.sum(r * r, dtype=torch.float64))
            ev.emit(progress, ev.StageProgress(stage, it / iterations))
            if rs_new <= cg_tol * cg_tol * rs0:
                break
            p.mul_(rs_new / rs).add_(r)
            rs = rs_new
        delta = x.permute(1, 2, 0).contiguous().cpu().numpy()
    info = {"subspace_dim": P, "noise_variance": sigma2, "lr_residual_visible": visible,
            "prior_weight": mu, "trust": trust, "msi_weight": msi_weight, "msi_model_error": model_error,
            "iterations": it, "relative_residual": math.sqrt(rs_new / rs0) if rs0 > 0 else 0.0,
            "seconds": time.perf_counter() - t0, **estimate_record(terms)}
    log.info("refinement: P %d, noise var %.3g, visible error var %.3g, prior weight %.3g, %d CG "
             "iterations, %.2f s", P, sigma2, visible, mu, it, info["seconds"])
    return Refinement(delta=delta, basis=V64.astype(np.float32), info=info)


def _refine_tv(alle, endmembers, lr_hsi, hr_msi, psf, ratio, R, offset, V64, mu, sigma2, visible, *, trust,
               msi_weight, tv_weight, iterations, tol, boundary, device, progress, cancel, stage, t0,
               lr_weight=None) -> Refinement:
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
                                     warm_start=TV_WARM_START, tol=tol, check_every=TV_CHECK_EVERY,
                                     record_objective=False, lr_weight=lr_weight)
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
