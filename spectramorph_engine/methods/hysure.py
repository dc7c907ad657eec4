"""HySure: convex subspace-regularised hyperspectral super-resolution.

Reference
---------
M. Simoes, J. Bioucas-Dias, L. B. Almeida, J. Chanussot, "A convex formulation for
hyperspectral image superresolution via subspace-based regularization", IEEE TGRS 53(6),
2015 (arXiv 1411.4005).

What it does
------------
The HR-HSI is written ``Z = E X`` with ``E`` (C x P, orthonormal columns) the P leading left
singular vectors of the LR-HSI pixels (uncentred SVD, as in the paper; P =
``hysure_subspace``), and the coefficients ``X`` (P x pixels) minimise

    1/2 ||Y_h - E X B M||^2 + lambda_m/2 ||Y_m - R E X||^2 + lambda_phi * VTV(X)

with ``B`` the spatial blur, ``M`` the decimation, ``R`` the SRF (``prep.msi_model()``, its
offset subtracted from the HR-MSI first), ``lambda_m = hysure_msi_weight``, ``lambda_phi =
hysure_tv_weight`` and VTV the vector total variation: per pixel the Euclidean norm of the
horizontal and vertical differences of all P coefficient images together, summed over pixels
(edges aligned across bands).

It is solved by ADMM with the paper's splitting ``V1 = X B``, ``V2 = X``, ``V3 = X D_h``,
``V4 = X D_v``: the X-step is one exact FFT division (all four operators are convolutions,
periodic on the computation grid); the V1-step is a per-pixel average at the LR sample
positions, the V2-step a P x P solve per pixel, the (V3, V4)-step the vector soft threshold.
The objective is recorded after every iteration (``loss_history``, ``info["objective"]``).
The refinement (spectramorph/refinement.py) runs the same solver with a prior term, a warm
start and a stopping rule (see `solve`).

Design choices (why)
--------------------
- Forward model = the pipeline's (degradation.degrade_spatial): blur with the PSF ('same',
  centred, zero padding) then r x r block mean. As one convolution plus sampling this is the
  PSF convolved with an r x r box over offsets -(r-1)..0, sampled at HR pixel r*i
  (``_ops.decimation_kernel``); ``FourierGrid.degrade`` reproduces degrade_spatial exactly
  (tested, border pixels included).
- Borders: the image is never treated as periodic (that would wrap the bottom rows' blur onto
  the top ones). It lives inside a larger periodic grid whose margin is at least the blur's
  reach on every side, and only the frame is constrained by the data. In synthetic mode the
  margin is held at zero (the V2-step's prox also sets it to 0): exactly the zero-padded blur
  that made the pair, and the VTV counts only differences inside the frame. In real mode the
  margin is free (Almeida and Figueiredo's "unknown boundary" trick; M and the MSI term live in
  their own V-steps, so it costs nothing): a real sensor saw the scene past the frame. On a
  128 x 128 library scene the zero margin is worth ~2 dB over a free one for a zero-padded pair.
- Initialisation: the LR-HSI's subspace coefficients, cubically interpolated.
- ADMM penalty ``MU`` = 0.01, shared by all four splits so the X-step does not depend on it;
  not a config key (it sets the speed, not the solution). Scanned 0.003..0.1 on library scenes:
  0.01 gets closest to the optimum in 200 iterations (PSNR within ~0.1 dB of 1500 iterations
  there; on the blind bench's pairs 0.1-0.3 dB, hence the stopping rule below);
  its price is ADMM's usual early wobble of the objective (up to ~10 % in the first ~40
  iterations while the dual variables build up), monotone afterwards. Larger values are
  monotone from the start but need 2-4x the iterations.
- Subspace and weights: the config's defaults are the paper's values (P = 10, lambda_m = 1,
  lambda_phi = 1e-3) and sit at or near the best of a one-at-a-time scan on a noisy library
  scene (see the method report). Iterations: not the paper's fixed 200 but until the ADMM has
  converged (`TOL`, at most `hysure_iterations`, 1000): on blind pairs 200 iterations fell
  0.1-0.3 dB short of the solution of the same problem (more at ratio 8 than at 4).
- torch, float32, on the run's device; the objective is summed in float64. The iteration itself
  (hysure_admm.py) holds 5 images of P bands on the FFT grid (X, D2, D3, D4 and X B's half
  spectrum; D1 lives on the LR samples only) and sweeps them once per iteration a block of rows
  at a time, then solves the X-step one band at a time: ~2.5x faster and half the memory of the
  textbook arrangement, same iterates (bench/admm_step.py). Ignores every SpectraMorph training
  setting.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from ..core import events as ev
from ..core.errors import InputError
from . import MethodOutput
from ..sensors import spatial
from .hysure_admm import Admm, vtv_masks, vtv_sum
from ._ops import (CubicUpsampler, Ticker, boundary_for, check_pair, new_output, put_rows, rows_per_block)

log = logging.getLogger(__name__)

NAME = "hysure"
TITLE = "HySure (subspace-regularised convex fusion, vector total variation)"
USES = {
    "psf": "Uses the PSF (given, or the blur fitted on a real pair) in its LR-HSI data term.",
    "srf": "Uses the SRF in use (with the gain and offset fitted on a real pair) in its HR-MSI data term.",
    "ignores": "Ignores all SpectraMorph training settings (endmembers, network, epochs, learning rates, prior); "
               "uses the hysure_* keys instead.",
}

# ADMM penalty: sets the convergence speed only (see the module docstring)
MU = 0.01
# The ADMM stops once its relative residuals (checked every TOL_CHECK_EVERY iterations) are at
# most TOL; `hysure_iterations` is a ceiling. On the blind bench's 128^2 pairs it converges after
# ~850-1000 iterations, and at 1e-4 its PSNR is that of 1000 and 3000 fixed iterations (within
# 0.01 dB); 200 fixed iterations (the paper's) left 0.1-0.3 dB (bench/README.md, "HySure run to
# convergence").
TOL = 1e-4
TOL_CHECK_EVERY = 10
OBJECTIVE_ROWS = 256     # HR rows per block of the objective's sums (a few MB at 2048 wide)


def fuse(config, prep, *, device=None, progress=None, cancel=None, out_hsi=None) -> MethodOutput:
    """HySure fusion of a prepared pair (see the module docstring)."""
    t_start = time.perf_counter()
    ev.check_cancel(cancel)
    msi, lr, r = check_pair(prep)
    H, W, c = msi.shape
    C = lr.shape[2]
    srf, offset = prep.msi_model()
    tick = Ticker(progress)
    tick(0.0, force=True)
    coeff, E, history, info = solve(msi, lr, r, prep.psf, srf, offset, boundary=boundary_for(prep),
                                    subspace=config.hysure_subspace, msi_weight=config.hysure_msi_weight,
                                    tv_weight=config.hysure_tv_weight, iterations=config.hysure_iterations,
                                    device=device, cancel=cancel, tick=tick, tol=TOL, check_every=TOL_CHECK_EVERY)
    # --- the HR-HSI = E X on the original frame, a block of rows at a time
    e32 = E.T.astype(np.float32)                                          # P x C
    target, writer = new_output(out_hsi, (H, W, C))
    step = rows_per_block(W, C)
    for r0 in range(0, H, step):
        ev.check_cancel(cancel)
        r1 = min(H, r0 + step)
        block = coeff[r0:r1] @ e32
        np.clip(block, *prep.value_range, out=block)
        put_rows(target, writer, r0, block)
    tick(1.0, force=True)
    info["seconds"] = round(time.perf_counter() - t_start, 4)
    return MethodOutput(hr_hsi=target, loss_history=list(info["objective"]), info=info, device=info["device"],
                        latents=coeff, basis=e32)


def solve(msi, lr, r, psf, srf, offset, *, boundary="zero", subspace=10, msi_weight=1.0, tv_weight=1e-3,
          iterations=200, device=None, cancel=None, tick=None, basis=None, prior_latents=None,
          prior_mixing=None, prior_weight=0.0, warm_start=False, tol=None, check_every=10,
          record_objective=True, mu=None, lr_weight=None):
    """The HySure ADMM on arrays: returns (X H x W x P float32, E C x P float64, objective history, info).

    msi H x W x c, lr h x w x C, srf c x C with `offset` (c,) subtracted from the MSI first.
    `basis`: the subspace as P x C orthonormal rows (default: the LR-HSI's P = `subspace` leading
    right singular vectors). With `prior_latents` (H x W x K) and `prior_mixing` (K x C) the
    objective gains prior_weight/2 ||X - X0||^2, X0 the prior cube's coefficients in the
    subspace (joined to the MSI term's split; the X-step stays one FFT division): HySure then
    refines a given result instead of starting from nothing (refinement.py).
    With a prior, `warm_start` starts from the exact solution of the problem without the VTV
    on the periodic frame (fourier_solve.py) and the duals that make it a fixed point.
    `tol`: stop once the relative primal residual and the relative change of the split
    variables are both <= tol, checked every `check_every` iterations (None: run all
    `iterations`). `record_objective`: the objective after every iteration (else the first and
    the last only: it costs a few full-size passes each). `mu`: the ADMM penalty (default MU).
    info["iterations"] is the number run, info["stop"] why it stopped. `lr_weight` (h x w, 0..1):
    the weight of each LR pixel in the LR-HSI term (None: all 1); a 0 leaves it out, as if it
    had not been observed (bench.refine_tune --holdout).
    """
    import torch
    from ..core.device import configure_threads
    ev.check_cancel(cancel)
    tick = tick or (lambda *a, **k: None)
    H, W, c = msi.shape
    h, w, C = lr.shape
    if srf.shape != (c, C):
        raise InputError(f"the SRF in use is {srf.shape[0]} x {srf.shape[1]} but the pair has {c} MSI bands "
                         f"and {C} HSI bands")
    dev = torch.device(device or "cpu")
    if dev.type == "cpu":
        configure_threads()             # SPECTRAMORPH_THREADS on shared machines
    iters = int(iterations)
    lam_m = float(msi_weight)
    lam_tv = float(tv_weight)
    use_prior = prior_latents is not None and prior_weight > 0

    # --- subspace from the LR-HSI (uncentred SVD via the C x C Gram matrix)
    Y = np.asarray(lr).reshape(-1, C)
    rows = 1 << 16          # float64 work a block of LR pixels at a time, the cancel token checked between

    def blocks():
        for i0 in range(0, Y.shape[0], rows):
            ev.check_cancel(cancel)
            yield i0, Y[i0:i0 + rows].astype(np.float64)
    if basis is None:
        P = max(1, min(int(subspace), C, Y.shape[0]))
        gram = np.zeros((C, C))
        for _, yb in blocks():
            gram += yb.T @ yb
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1][:P]
        E = evecs[:, order]                                           # C x P, orthonormal
    else:
        E = np.ascontiguousarray(np.asarray(basis, dtype=np.float64).T)
        P = E.shape[1]
    yp = np.empty((Y.shape[0], P))                                    # N x P
    total = 0.0
    for i0, yb in blocks():
        yp[i0:i0 + rows] = yb @ E
        total += float(np.sum(yb * yb))
    inside = float(np.sum(yp * yp))
    kept = inside / max(total, 1e-300)
    resid_const = total - inside                                      # ||(I - EE^T) Y_h||^2
    ev.check_cancel(cancel)
    # --- the periodic computation grid: the frame plus a margin the blur can reach into
    zero_out = boundary == "zero"
    grid = FourierGrid(psf, r, H, W, device=dev)
    Hp, Wp, top, left = grid.Hp, grid.Wp, grid.top, grid.left
    b_hat = grid.b_hat
    fy = torch.arange(Hp, device=dev, dtype=torch.float32)[:, None]
    fx = torch.arange(Wp // 2 + 1, device=dev, dtype=torch.float32)[None, :]
    mu = float(mu or MU)
    # X-step: (X B B^T + X + X Dh Dh^T + X Dv Dv^T) = S1 B^T + S2 + S3 Dh^T + S4 Dv^T, per frequency.
    # The prior is not a split of its own: it joins the MSI term in the V2-step (both are
    # per-pixel quadratics of X), which saves three grid images and a dual step per iteration.
    denom = (b_hat.real ** 2 + b_hat.imag ** 2 + 1.0
             + (2.0 - 2.0 * torch.cos(2.0 * math.pi * fx / Wp))
             + (2.0 - 2.0 * torch.cos(2.0 * math.pi * fy / Hp)))
    b_hat_over = b_hat / denom
    inv_denom = 1.0 / denom
    del fy, fx
    check_every = max(1, int(check_every))
    if tol is not None:
        # Parseval weights of the half spectrum (the rfft's columns 1..Wp/2-1 stand for two):
        # ||K X||^2 = sum k_norm |rfft2(X)|^2 / (Hp Wp), K the stacked split operators
        col = torch.full((1, 1, Wp // 2 + 1), 2.0, device=dev)
        col[..., 0] = 1.0
        if Wp % 2 == 0:
            col[..., -1] = 1.0
        k_norm = denom * col
    else:
        col = None
    del denom
    sy, sx = grid.sample_rows, grid.sample_cols                       # LR sample positions
    fy_, fx_ = grid.frame_rows, grid.frame_cols                       # the original frame
    # the differences the VTV counts: all of them (free margin), or those between two frame
    # pixels (zero margin: a jump from the frame to the zeros outside is no edge of the scene)
    masks = vtv_masks(grid, H, W, zero_out)

    def t(a):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=dev)

    # --- data in the subspace, and the V2 (HR-MSI and prior) step's matrices
    y_lr = t(yp.T.reshape(P, h, w))
    w_lr = None if lr_weight is None else t(np.asarray(lr_weight, dtype=np.float32).reshape(1, h, w))
    RE = np.asarray(srf, dtype=np.float64) @ E                        # c x P
    re_t = t(RE)

    offset32 = np.asarray(offset, dtype=np.float32).reshape(1, 1, c)
    prior_map = None if not use_prior else (np.asarray(prior_mixing, dtype=np.float64) @ E).astype(np.float32)

    def msi_rows(a, b):
        return t((np.asarray(msi[a:b], dtype=np.float32) - offset32).transpose(2, 0, 1))      # c x rows x W

    def prior_rows(a, b):
        # the prior's coefficients, X0 = latents @ (mixing E): never the whole prior cube
        return t((np.asarray(prior_latents[a:b], dtype=np.float32) @ prior_map).transpose(2, 0, 1))

    ym = msi_rows(0, H)
    Q = lam_m * RE.T @ RE                                             # the V2 term's per-pixel quadratic
    v2_rhs = lam_m * torch.einsum("cp,chw->phw", re_t, ym)           # P x H x W: and its linear part
    prior_frame = None
    if use_prior:
        Q = Q + prior_weight * np.eye(P)
        prior_frame = prior_rows(0, H)
        v2_rhs.add_(prior_frame, alpha=prior_weight)
    v2_inv = t(np.linalg.inv(Q + mu * np.eye(P)))
    ev.check_cancel(cancel)

    # --- initial X: the prior's coefficients, the exact solution of the quadratic part on the
    # periodic frame (warm start), or the LR coefficients interpolated; the margin: zeros, or
    # edge values when free
    warm = bool(warm_start) and use_prior
    if warm:
        from .fourier_solve import frame_transfer, solve_periodic, solve_zero_border
        b_frame = torch.as_tensor(frame_transfer(psf, r, H, W), dtype=torch.complex64, device=dev)
        if zero_out:
            X, warm_iters, warm_rel = solve_zero_border(grid, r, y_lr, v2_rhs, Q, b_frame, iterations=10, tol=1e-3,
                                                          cancel=cancel)
        else:           # free margin: the periodic frame is as good a guess of the unseen border as any
            X = solve_periodic(b_frame, r, y_lr, v2_rhs, Q)
            warm_iters, warm_rel = 0, None
        del b_frame
    elif use_prior:
        X = prior_frame.clone()
    else:
        X = t(CubicUpsampler(h, w, r).full(_start_coefficients(yp.reshape(h, w, P), lr_weight)).transpose(2, 0, 1))
    X = torch.nn.functional.pad(X[None], (left, Wp - W - left, top, Hp - H - top),
                                mode="constant" if zero_out else "replicate")[0]
    if not record_objective:     # freed before the ADMM's planes: the objective makes its rows again
        ym = prior_frame = None

    def objective(xb_samples, X, ym, prior_frame) -> float:
        # The HR terms go by blocks of rows, so the objective adds no full-size image to the
        # ADMM's own (it was the refinement's peak); `ym` / `prior_frame` None: their rows are
        # made again from the inputs. A cancel is checked between blocks.
        lr_res = (xb_samples - y_lr) ** 2
        lr_err = float(torch.sum(lr_res if w_lr is None else lr_res * w_lr, dtype=torch.float64))
        msi_err = prior_err = 0.0
        for a in range(0, H, OBJECTIVE_ROWS):
            ev.check_cancel(cancel)
            b = min(H, a + OBJECTIVE_ROWS)
            xs = X[:, top + a:top + b, fx_]
            ys = msi_rows(a, b) if ym is None else ym[:, a:b]
            msi_err += float(torch.sum(torch.einsum("cp,phw->chw", re_t, xs).sub_(ys).square_(), dtype=torch.float64))
            if use_prior:
                x0 = prior_rows(a, b) if prior_frame is None else prior_frame[:, a:b]
                prior_err += float(torch.sum((xs - x0).square_(), dtype=torch.float64))
        tv = vtv_sum(X, *masks, cancel=cancel)
        return 0.5 * (lr_err + resid_const) + 0.5 * lam_m * msi_err + lam_tv * tv + 0.5 * prior_weight * prior_err

    # On a big scene each of these full-size steps takes a second: a cancel is checked between them
    ev.check_cancel(cancel)
    admm = Admm(X, grid=grid, H=H, W=W, y_lr=y_lr, v2_rhs=v2_rhs, v2_inv=v2_inv, mu=mu, thresh=lam_tv / mu,
                masks=masks, inv_denom=inv_denom, b_hat_over=b_hat_over, k_norm=k_norm if tol is not None else None,
                parseval=col, cancel=cancel, lr_weight=w_lr)
    del inv_denom, b_hat_over
    if warm:
        # the duals that make the warm start a fixed point of the quadratic part: D_i = -grad f_i / mu
        # (what the V-steps would give), so ADMM starts at the smooth solution instead of
        # rebuilding its multipliers from zero; the TV's start at zero
        admm.D1.copy_((y_lr - admm.xb_samples()) / mu)
        admm.D2[:, fy_, fx_] = (v2_rhs - torch.einsum("pq,qhw->phw", t(Q), X[:, fy_, fx_])) / mu
        if zero_out:            # the zero margin's multiplier balances B^T D1 there (K^T D = 0)
            d1 = torch.zeros_like(X)
            d1[:, sy, sx] = admm.D1
            bt = torch.fft.irfft2(torch.fft.rfft2(d1) * torch.conj(b_hat), s=(Hp, Wp))
            del d1
            bt[:, fy_, fx_] = 0.0
            admm.D2.sub_(bt)
            del bt
    ev.check_cancel(cancel)
    history = [objective(admm.xb_samples(), X, ym, prior_frame)]
    tick(0.02)
    stop = "iteration limit"
    residuals = None
    it_run = 0
    done = 0.0
    first_residual = None

    for it in range(iters):
        ev.check_cancel(cancel)
        check = tol is not None and (it + 1) % check_every == 0
        # the next iteration checks the change of X against this one's spectra
        keep = tol is not None and (it + 2) % check_every == 0
        sums = admm.step(check=check, keep=keep)
        it_run = it + 1
        if sums is not None and sums[1] is not None:
            # stopping rule (Boyd et al. 2011, 3.3.1, relative form): primal residual ||V - K X||
            # against the larger of ||K X||, ||V||; the change of K X over the last iteration
            # (the dual residual's counterpart) against ||K X||, both from the spectra at hand
            stats, change, size = sums
            residuals = [math.sqrt(stats[0] / max(stats[1], stats[2], 1e-300)),
                         math.sqrt(change / max(size, 1e-300))]
        if record_objective:
            history.append(objective(admm.xb_samples(), X, ym, prior_frame))
        # how far along: the share of the ceiling run or, once residuals are measured, how far
        # they have fallen toward `tol` on a log scale, whichever is further (a run that will
        # stop at 200 of 1000 iterations should not sit at 20% until it jumps to the end)
        done = max(done, (it + 1) / max(1, iters))
        if residuals is not None and check:
            worst = max(max(residuals), 1e-300)
            first_residual = first_residual or worst
            if first_residual > tol:
                done = max(done, min(1.0, math.log(first_residual / worst) / math.log(first_residual / tol)))
        tick(0.02 + 0.93 * done)
        if residuals is not None and check and max(residuals) <= tol:
            stop = f"converged: relative residuals {residuals[0]:.2g}, {residuals[1]:.2g} <= {tol:g}"
            break
    xb_samples = admm.xb_samples()
    del admm
    if not record_objective:
        history.append(objective(xb_samples, X, None, None))
    coeff = X[:, fy_, fx_].permute(1, 2, 0).contiguous().cpu().numpy()     # H x W x P
    del X
    info = {
        "method": NAME,
        "objective": [float(v) for v in history],
        "iterations": it_run,
        "iterations_max": iters,
        "stop": stop,
        "residuals": residuals,
        "warm_start": (None if not warm else
                       f"solution without the VTV ({warm_iters} preconditioned CG iterations, relative residual "
                       f"{warm_rel:.1e})" if warm_rel is not None else "solution without the VTV on the periodic frame"),
        "subspace": P,
        "subspace_energy": kept,
        "tv_weight": lam_tv,
        "msi_weight": lam_m,
        "prior_weight": float(prior_weight) if use_prior else None,
        "mu": mu,
        "grid": [Hp, Wp],
        "device": str(dev),
        "boundary": ("zero outside the frame (the synthetic pair's zero-padded blur)" if zero_out
                     else "free margin outside the frame (unknown boundary)"),
    }
    log.info("HySure: %d x %d x %d, P = %d (%.6f of the LR energy), %d of %d iterations (%s), objective %.6g -> %.6g%s",
             H, W, C, P, kept, it_run, iters, stop, history[0], history[-1],
             f", prior weight {prior_weight:.3g}" if use_prior else "")
    return coeff, E, history, info


def _start_coefficients(coeff, lr_weight=None) -> np.ndarray:
    """The LR coefficients (h x w x P) the start interpolates: with `lr_weight`, each pixel's own
    in proportion to its weight and the rest from the weighted mean of its 3 x 3 neighbours, so
    that a left-out pixel (weight 0) reaches neither the data term nor the start."""
    coeff = np.asarray(coeff, dtype=np.float64)
    if lr_weight is None:
        return coeff.astype(np.float32)
    from scipy.ndimage import uniform_filter
    wt = np.clip(np.asarray(lr_weight, dtype=np.float64).reshape(coeff.shape[:2]), 0.0, 1.0)
    den = uniform_filter(wt, 3, mode="nearest")
    num = uniform_filter(coeff * wt[..., None], (3, 3, 1), mode="nearest")
    fallback = (coeff * wt[..., None]).sum(axis=(0, 1)) / max(wt.sum(), 1e-12)
    near = np.where(den[..., None] > 1e-9, num / np.maximum(den, 1e-12)[..., None], fallback)
    return (wt[..., None] * coeff + (1.0 - wt[..., None]) * near).astype(np.float32)


class FourierGrid:
    """The periodic grid HySure computes on: the H x W frame at (top, left) inside an Hp x Wp
    array whose margin is at least the blur's reach on every side (so the blur never wraps
    the frame onto itself), and the forward operator "blur with the PSF, r x r block mean"
    as one FFT convolution (``b_hat``) followed by sampling every r-th pixel of the frame."""

    def __init__(self, psf, r: int, H: int, W: int, device="cpu"):
        import torch
        from scipy.fft import next_fast_len
        kernel, origin = spatial.decimation_kernel(psf, r)
        ky, kx = kernel.shape[0] - origin[0] - 1, kernel.shape[1] - origin[1] - 1   # the PSF's half sides
        self.r = int(r)
        self.Hp = next_fast_len(H + 2 * ky + r, real=True)
        self.Wp = next_fast_len(W + 2 * kx + r, real=True)
        self.top, self.left = (self.Hp - H) // 2, (self.Wp - W) // 2
        self.frame_rows = slice(self.top, self.top + H)
        self.frame_cols = slice(self.left, self.left + W)
        self.sample_rows = slice(self.top, self.top + H, r)
        self.sample_cols = slice(self.left, self.left + W, r)
        # the transfer function of spatial.py's operator on this grid; the FFT itself stays in
        # torch, on the run's device, where the solver's images live
        kpad = spatial.padded_kernel(psf, r, (self.Hp, self.Wp))           # kernel origin at [0, 0]
        self.b_hat = torch.fft.rfft2(torch.as_tensor(kpad, dtype=torch.float32, device=device))

    def blur_hat(self, x_hat):
        """Spatial image of the blurred grid image whose rfft2 is `x_hat`."""
        import torch
        return torch.fft.irfft2(x_hat * self.b_hat, s=(self.Hp, self.Wp))

    def degrade(self, image):
        """The forward operator on one H x W image with zeros outside the frame (float32
        numpy): equals degradation.degrade_spatial(image, psf, r) up to float rounding."""
        import torch
        x = torch.zeros((self.Hp, self.Wp), dtype=torch.float32, device=self.b_hat.device)
        x[self.frame_rows, self.frame_cols] = torch.as_tensor(np.asarray(image, dtype=np.float32),
                                                              device=x.device)
        y = self.blur_hat(torch.fft.rfft2(x))
        return y[self.sample_rows, self.sample_cols].cpu().numpy()
