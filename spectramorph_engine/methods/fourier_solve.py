"""Closed-form solve of the quadratic fusion problem on a periodic frame (no TV).

On an H x W frame taken as periodic (H = r h, W = r w), the normal equations of

    1/2 ||S B X - Y||^2 + 1/2 <X, Q X> - <X, F>

(B the decimation kernel's convolution, S sampling every r-th pixel from [0, 0], X and F
P-channel images, Q a symmetric positive definite P x P matrix acting per pixel) are

    B^T S^T S B X + Q X = B^T S^T Y + F.

Q's eigenvectors decouple the channels (B and S act on every channel alike), leaving one
scalar q per channel. In the Fourier domain S^T S averages each frequency with its r^2
aliases k + (a h, b w), so the operator is block diagonal over those alias groups, each
block q I + conj(b) b^T / r^2: a rank-one update of a diagonal, inverted exactly by
Sherman-Morrison (Wei, Dobigeon, Tourneret 2015 use the same structure). Cost: one FFT pair
per channel, no iteration.

HySure's own grid is not periodic (zero or free margin around the frame). With the zero
margin of a synthetic pair the border matters (a wide PSF on a 128 x 128 scene reaches a
third of the rows): `solve_zero_border` solves that problem exactly by conjugate gradients
preconditioned with the periodic inverse, which differs from it only near the border, so a
few iterations do. HySure's ADMM starts from the result (refinement.py).
"""
from __future__ import annotations

import numpy as np

from ..sensors import spatial


def frame_transfer(psf, r: int, H: int, W: int) -> np.ndarray:
    """np.fft.fft2 of the decimation kernel (spatial.decimation_kernel) wrapped onto a periodic
    H x W grid, origin at [0, 0] (complex128, H x W). Wrapping (not truncating) keeps a kernel
    larger than the frame correct."""
    kernel, (oy, ox) = spatial.decimation_kernel(psf, r)
    kpad = np.zeros((H, W))
    a = (np.arange(kernel.shape[0]) - oy) % H
    b = (np.arange(kernel.shape[1]) - ox) % W
    np.add.at(kpad, (a[:, None], b[None, :]), kernel)
    return np.fft.fft2(kpad)


def _grouped(a, r: int):
    """View a (..., H, W) spectrum as (..., r, h, r, w): axis -4 / -2 index the aliases."""
    H, W = a.shape[-2:]
    return a.reshape(*a.shape[:-2], r, H // r, r, W // r)


def solve_periodic(b_hat, r: int, y_lr, rhs, Q: np.ndarray):
    """X (P x H x W, real, rhs's dtype and device) solving B^T S^T S B X + Q X = B^T S^T y_lr + rhs
    on the periodic frame (y_lr None: no LR term in the right-hand side).

    b_hat: torch complex H x W (frame_transfer), y_lr: P x h x w, rhs: P x H x W torch tensors;
    Q: P x P symmetric positive definite (numpy). Channel by channel in Q's eigenbasis, so the
    working memory is a few complex H x W images, not P of them."""
    import torch
    P, H, W = rhs.shape
    evals, evecs = np.linalg.eigh(np.asarray(Q, dtype=np.float64))
    if evals[0] <= 0:
        raise ValueError("the quadratic term Q must be positive definite")
    U = torch.as_tensor(evecs, dtype=rhs.dtype, device=rhs.device)            # columns: eigenvectors
    g = _grouped(b_hat, r)
    g_conj = torch.conj(g)
    power = torch.sum(g.real ** 2 + g.imag ** 2, dim=(0, 2), keepdim=True)    # sum |b|^2 over each group
    out = torch.zeros_like(rhs)
    for p in range(P):
        q = float(evals[p])
        f = torch.einsum("c,chw->hw", U[:, p], rhs)
        # spectrum of the right-hand side: F + B^T S^T y, S^T y's spectrum being y's tiled r x r
        R = _grouped(torch.fft.fft2(f), r)
        if y_lr is not None:
            R += g_conj * torch.fft.fft2(torch.einsum("c,chw->hw", U[:, p], y_lr))[None, :, None, :]
        del f
        s = torch.sum(g * R, dim=(0, 2), keepdim=True)
        R -= g_conj * (s / (r * r * q + power))
        R /= q
        x = torch.fft.ifft2(R.reshape(H, W)).real
        out.add_(U[:, p, None, None] * x[None])
    return out


def apply_periodic(b_hat, r: int, x, Q: np.ndarray):
    """B^T S^T S B x + Q x on the periodic frame (torch, P x H x W): the operator solve_periodic
    inverts, for checks."""
    import torch
    bx = torch.fft.ifft2(torch.fft.fft2(x) * b_hat).real
    sampled = torch.zeros_like(bx)
    sampled[:, ::r, ::r] = bx[:, ::r, ::r]
    back = torch.fft.ifft2(torch.fft.fft2(sampled) * torch.conj(b_hat)).real
    return back + torch.einsum("pq,qhw->phw", torch.as_tensor(Q, dtype=x.dtype, device=x.device), x)


def solve_zero_border(grid, r: int, y_lr, rhs, Q: np.ndarray, b_frame, *, iterations: int = 20,
                      tol: float = 1e-4, cancel=None):
    """(X P x H x W, iterations run, relative residual): the solution of
    Z^T B^T S^T S B Z X + Q X = Z^T B^T S^T y_lr + rhs, Z the zero padding of the frame into
    HySure's grid (`grid`: hysure.FourierGrid, whose blur is the zero-border operator exactly).
    Conjugate gradients preconditioned by solve_periodic (b_frame: frame_transfer on the frame)."""
    import torch
    from ..core import events as ev
    P, H, W = rhs.shape
    fr, fc = grid.frame_rows, grid.frame_cols
    sy = slice(0, H, r)
    sx = slice(0, W, r)
    qt = torch.as_tensor(Q, dtype=rhs.dtype, device=rhs.device)

    def data_normal(x, y=None):
        # Z^T B^T S^T (S B Z x - y): zero pad, blur, sample; back again
        g = torch.zeros((P, grid.Hp, grid.Wp), dtype=x.dtype, device=x.device)
        g[:, fr, fc] = x
        bx = torch.fft.irfft2(torch.fft.rfft2(g) * grid.b_hat, s=(grid.Hp, grid.Wp))[:, fr, fc][:, sy, sx]
        if y is not None:
            bx = bx - y
        g.zero_()
        g[:, fr, fc][:, sy, sx] = bx
        return torch.fft.irfft2(torch.fft.rfft2(g) * torch.conj(grid.b_hat), s=(grid.Hp, grid.Wp))[:, fr, fc]

    x = solve_periodic(b_frame, r, y_lr, rhs, Q)
    res = rhs - data_normal(x, y_lr) - torch.einsum("pq,qhw->phw", qt, x)       # b - A x
    b_norm = float(torch.linalg.vector_norm(rhs - data_normal(torch.zeros_like(x), y_lr))) or 1.0
    z = solve_periodic(b_frame, r, None, res, Q)
    p = z.clone()
    rz = float(torch.sum(res * z, dtype=torch.float64))
    rel = float(torch.linalg.vector_norm(res)) / b_norm
    it = 0
    while it < iterations and rel > tol:
        ev.check_cancel(cancel)
        ap = data_normal(p) + torch.einsum("pq,qhw->phw", qt, p)
        alpha = rz / max(float(torch.sum(p * ap, dtype=torch.float64)), 1e-300)
        x.add_(p, alpha=alpha)
        res.sub_(ap, alpha=alpha)
        del ap
        it += 1
        rel = float(torch.linalg.vector_norm(res)) / b_norm
        z = solve_periodic(b_frame, r, None, res, Q)
        rz_new = float(torch.sum(res * z, dtype=torch.float64))
        p.mul_(rz_new / max(rz, 1e-300)).add_(z)
        rz = rz_new
        del z
    return x, it, rel
