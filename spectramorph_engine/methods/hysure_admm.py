"""One iteration of HySure's ADMM (hysure.solve), arranged for time and memory (issue 20).

The iterates are those of the textbook form in hysure.py's docstring (same operations in the
same float32 order, up to the summation order of a few reductions and the rounding of the
FFTs of X B); what changes is where the numbers live and how often memory is swept:

- V1 (the LR-HSI term) only differs from ``X B - D1`` at the LR sample positions: there the
  dual D1 stays exactly 0 and ``X B`` unchanged, so D1 is held on the h x w samples and the
  step touches 1/r^2 of the grid.
- So ``X B`` is only ever read and changed at the samples: it is held as its half spectrum,
  evaluated at the samples and given the V1 step's change there through FFTs on 1/r of the
  rows (lattice_fft.py) instead of a full-size inverse and forward FFT per band.
- The (V3, V4) and V2 steps and the X-step's right-hand side ``D_h^T (V3 + D3) + D_v^T (V4 +
  D4) + (V2 + D2)`` are one pass over the grid, a block of rows at a time: the differences
  ``X D_h``, ``X D_v`` are formed per block from X and never stored, and the right-hand side
  is written over X as soon as a block's rows are no longer read. A block stays in cache
  across its ~20 elementwise operations; the full-size images held are X, D2, D3, D4 and the
  spectrum of X B.
- The X-step's FFT division runs one subspace channel at a time: the half spectra are one
  channel's (a few MiB) instead of P channels', and a single-image FFT is faster here than
  the batched one (measured: bench/admm_step.py, bench/README.md).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from ..core import events as ev

# bytes of one P-channel block of rows: small enough to stay in a core's cache across the
# block's steps, big enough that the per-operation overhead of torch stays small
BLOCK_BYTES = 1 << 19


@contextmanager
def _one_thread(device):
    """The blocked pass is thousands of small operations: with more torch threads each is an
    OpenMP region whose barrier waits for a busy core. Measured on the shared 2-core machine
    (1024^2): 16 s per pass with 2 threads against 0.1 s with one; the FFTs keep the threads."""
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _sumsq(a) -> float:
    """sum(a^2) in float64; a full-size image a band at a time (its float64 sum would otherwise
    hold a squared and a float64 copy of the whole image: 3 images more at the peak)."""
    if a.numel() > 1 << 20:
        return sum(_sumsq(band) for band in a)
    return float(torch.sum(a * a, dtype=torch.float64))


def _span(i0: int, i1: int, r0: int, r1: int):
    """Grid rows [r0, r1) inside the block of rows [i0, i1), as a block-local slice (None: none)."""
    a, b = max(i0, r0), min(i1, r1)
    return slice(a - i0, b - i0) if a < b else None


class Rect:
    """Where a difference counts in the VTV with a zero margin: grid rows [r0, r1), columns [c0, c1)."""

    def __init__(self, r0, r1, c0, c1):
        self.r0, self.r1, self.c0, self.c1 = r0, r1, c0, c1

    def zero_outside(self, t, i0: int, i1: int) -> None:
        """Set t (1 x rows x Wp, the block [i0, i1)) to 0 outside the rectangle."""
        rows = _span(i0, i1, self.r0, self.r1)
        if rows is None:
            t.zero_()
            return
        t[:, :rows.start] = 0.0
        t[:, rows.stop:] = 0.0
        t[..., :self.c0] = 0.0
        t[..., self.c1:] = 0.0


def vtv_masks(grid, H: int, W: int, zero_out: bool):
    """(horizontal, vertical) Rects of the differences the VTV counts: None when all count (free
    margin); with a zero margin those between two frame pixels (a jump from the frame to the
    zeros outside is no edge of the scene)."""
    if not zero_out:
        return None, None
    t, l = grid.top, grid.left
    return Rect(t, t + H, l, l + W - 1), Rect(t, t + H - 1, l, l + W)


def block_rows(P: int, Wp: int) -> int:
    return max(1, BLOCK_BYTES // (4 * P * Wp))


def _differences(X, i0, i1, nxt):
    """X D_h and X D_v (periodic) on the rows [i0, i1); `nxt` is row i1 (mod Hp) of X."""
    xb = X[:, i0:i1]
    a = torch.empty_like(xb)
    torch.sub(xb[..., 1:], xb[..., :-1], out=a[..., :-1])
    torch.sub(xb[..., 0], xb[..., -1], out=a[..., -1])
    b = torch.empty_like(xb)
    torch.sub(xb[:, 1:], xb[:, :-1], out=b[:, :-1])
    torch.sub(nxt, xb[:, -1], out=b[:, -1])
    return a, b


def _band_sum(t):
    """Sum over the P bands of a P x rows x Wp block (1 x rows x Wp): as a product with a row of
    ones, ~2x faster than torch.sum over the leading dimension here."""
    P = t.shape[0]
    ones = torch.ones((1, P), dtype=t.dtype, device=t.device)
    return torch.mm(ones, t.view(P, -1)).view((1,) + t.shape[1:])


def _norm(a, b, i0, i1, mask_h, mask_v):
    """Per pixel the Euclidean norm of both differences over the P bands (1 x rows x Wp)."""
    if mask_h is None:
        return torch.sqrt(_band_sum((a * a).addcmul_(b, b)))
    sh = _band_sum(a * a)
    sv = _band_sum(b * b)
    mask_h.zero_outside(sh, i0, i1)
    mask_v.zero_outside(sv, i0, i1)
    return torch.sqrt(sh.add_(sv))


def vtv_sum(X, mask_h=None, mask_v=None, cancel=None) -> float:
    """The VTV of X (the objective's term), a block of rows at a time, summed in float64."""
    P, Hp, Wp = X.shape
    step = block_rows(P, Wp)
    total = 0.0
    for i0 in range(0, Hp, step):
        ev.check_cancel(cancel)
        i1 = min(Hp, i0 + step)
        a, b = _differences(X, i0, i1, X[:, i1 % Hp])
        total += float(torch.sum(_norm(a, b, i0, i1, mask_h, mask_v), dtype=torch.float64))
    return total


class Admm:
    """The ADMM's state (X, the spectrum of X B, the duals) and its iteration, in place.

    X: P x Hp x Wp float32 on the grid (taken over, modified in place). y_lr: P x h x w
    (the LR data at the sample positions sy, sx); v2_rhs P x H x W and v2_inv P x P: the V2
    step's linear part and inverse (hysure.solve); `parseval` the half spectrum's column
    weights (1, 2, ..., 2, 1) when the stopping rule is on. Call `step` once per iteration;
    `xb_samples()` is X B at the samples."""

    def __init__(self, X, *, grid, H, W, y_lr, v2_rhs, v2_inv, mu, thresh, masks, inv_denom, b_hat_over,
                 k_norm=None, parseval=None, cancel=None, lr_weight=None):
        from .lattice_fft import LatticeFFT
        self.X = X
        P, Hp, Wp = X.shape
        self.P, self.Hp, self.Wp, self.H, self.W = P, Hp, Wp, H, W
        self.top, self.left = grid.top, grid.left
        self.b_hat = grid.b_hat
        self.y_lr, self.v2_rhs, self.v2_inv = y_lr, v2_rhs, v2_inv
        # 1 x h x w weights of the LR samples (None: all 1); 0 leaves a sample out of the data
        # term, as if it were not observed (bench.refine_tune --holdout predicts it)
        self.lr_weight = lr_weight
        self.mu, self.thresh = float(mu), float(thresh)
        self.mask_h, self.mask_v = masks
        self.zero_out = self.mask_h is not None
        self.inv_denom = inv_denom
        self.b_hat_over_c = b_hat_over.conj().resolve_conj()
        self.k_norm, self.parseval = k_norm, parseval
        self.cancel = cancel
        h, w = y_lr.shape[1:]
        self.lattice = LatticeFFT(Hp, Wp, grid.r, grid.top, grid.left, h, w, X.device)
        self.xb_hat = torch.empty((P, Hp, Wp // 2 + 1), dtype=torch.complex64, device=X.device)
        for p in range(P):
            torch.mul(torch.fft.rfft2(X[p]), self.b_hat, out=self.xb_hat[p])
        self.change = None          # the V1 step's change of X B at the samples, for the X-step
        # D1 on the samples only (module docstring); D2-D4 on the grid
        self.D1 = torch.zeros_like(y_lr)
        self.D2, self.D3, self.D4 = (torch.zeros_like(X) for _ in range(3))
        # a GPU gains nothing from cache-sized blocks, and each block costs kernel launches
        self.rows = block_rows(P, Wp) if X.device.type == "cpu" else Hp
        self._prev_hat = None

    def xb_samples(self):
        """X B at the LR sample positions (P x h x w)."""
        return torch.stack([self.lattice.samples(self.xb_hat[p]) for p in range(self.P)])

    def _xb_sumsq(self) -> float:
        """||X B||^2 over the grid, from its half spectrum (Parseval), in float64."""
        total = 0.0
        for z in self.xb_hat:
            total += float(torch.sum(self.parseval * (z.real ** 2 + z.imag ** 2), dtype=torch.float64))
        return total / (self.Hp * self.Wp)

    # --- V1: the LR-HSI term at the sample positions
    def _v1(self, stats):
        xs = self.xb_samples()
        t = xs - self.D1                                       # V1 before the prox (= XB - D1)
        if self.lr_weight is None:
            vs = (self.y_lr + self.mu * t) / (1.0 + self.mu)
        else:
            vs = (self.lr_weight * self.y_lr + self.mu * t) / (self.lr_weight + self.mu)
        if stats is not None:      # V1 = XB away from the samples: only they enter the residual
            full = self._xb_sumsq()
            stats[0] += _sumsq(vs - xs)
            stats[1] += full
            stats[2] += full - _sumsq(xs) + _sumsq(vs)
        torch.sub(vs, t, out=self.D1)                           # D1 - (XB - V1)
        # the X-step takes X B with V1 + D1 at the samples: X B plus this change there
        self.change = vs.add_(self.D1).sub_(xs)

    # --- V3, V4 (vector soft threshold), V2 (MSI and prior), and the X-step's right-hand side
    def _vtv_block(self, i0, i1, nxt, stats):
        """(V3 + D3, V4 + D4) on the rows [i0, i1), the duals D3, D4 updated there."""
        dh, dv = _differences(self.X, i0, i1, nxt)
        if stats is not None:
            stats[1] += _sumsq(dh) + _sumsq(dv)
            dh0, dv0 = dh.clone(), dv.clone()
        d3, d4 = self.D3[:, i0:i1], self.D4[:, i0:i1]
        a, b = dh.sub_(d3), dv.sub_(d4)
        n = _norm(a, b, i0, i1, self.mask_h, self.mask_v)
        shrink = torch.clamp(1.0 - self.thresh / torch.clamp(n, min=1e-12), min=0.0)
        if self.mask_h is None:
            fh = fv = shrink
        else:                       # differences the VTV does not count pass unchanged (factor 1)
            fh, fv = shrink - 1.0, shrink - 1.0
            self.mask_h.zero_outside(fh, i0, i1)
            self.mask_v.zero_outside(fv, i0, i1)
            fh += 1.0
            fv += 1.0
        out = []
        for x, f, d, x0 in ((a, fh, d3, dh0 if stats is not None else None),
                            (b, fv, d4, dv0 if stats is not None else None)):
            v = x * f
            if stats is not None:
                stats[0] += _sumsq(v - x0)
                stats[2] += _sumsq(v)
            torch.sub(v, x, out=d)          # D - (X D - V) with X D - D = x
            out.append(v.add_(d))
        return out

    def _v2_block(self, i0, i1, stats):
        X, D2 = self.X[:, i0:i1], self.D2[:, i0:i1]
        if stats is not None:
            whole = _sumsq(X)
            stats[1] += whole
        rows = _span(i0, i1, self.top, self.top + self.H)
        cols = slice(self.left, self.left + self.W)
        inside = 0.0
        if rows is not None:
            xf, df = X[:, rows, cols], D2[:, rows, cols]
            r0 = i0 + rows.start - self.top
            x0 = xf.clone() if stats is not None else None
            v = xf.sub_(df)                                      # V2 before the prox (= X - D2)
            t = v * self.mu
            t += self.v2_rhs[:, r0:r0 + v.shape[1]]
            inner = torch.mm(self.v2_inv, t.view(self.P, -1)).view_as(t)
            if stats is not None:
                inside = _sumsq(x0)
                stats[0] += _sumsq(inner - x0)
                stats[2] += _sumsq(inner)
            torch.sub(inner, v, out=df)
            torch.add(inner, df, out=xf)                         # X's buffer: V2 + D2
        # the margin: free, V2 = X - D2 with D2 = 0 there (nothing changes); zero, V2 = 0
        if stats is not None:
            stats[0 if self.zero_out else 2] += whole - inside
        if self.zero_out:
            pieces = ([(slice(None), slice(None))] if rows is None else
                      [(slice(0, rows.start), slice(None)), (slice(rows.stop, None), slice(None)),
                       (rows, slice(0, self.left)), (rows, slice(self.left + self.W, None))])
            for r, c in pieces:
                xm, dm = X[:, r, c], D2[:, r, c]
                dm.sub_(xm)
                xm.copy_(dm)

    def _local(self, stats):
        """Everything before the FFTs, one pass over the grid; leaves the X-step's right-hand
        side in X's buffer."""
        X, Hp = self.X, self.Hp
        row0 = X[:, 0].clone()              # the last block's vertical differences read it
        prev = None                         # the row above the block, of V4 + D4
        head = None                         # row 0's right-hand side waits for the last row
        for i0 in range(0, Hp, self.rows):
            ev.check_cancel(self.cancel)
            i1 = min(Hp, i0 + self.rows)
            a, b = self._vtv_block(i0, i1, X[:, i1] if i1 < Hp else row0, stats)
            self._v2_block(i0, i1, stats)
            # D_h^T a + D_v^T b (adjoints of the forward differences: a[j-1] - a[j])
            h = torch.empty_like(a)
            torch.sub(a[..., :-1], a[..., 1:], out=h[..., 1:])
            torch.sub(a[..., -1], a[..., 0], out=h[..., 0])
            v = torch.empty_like(b)
            torch.sub(b[:, :-1], b[:, 1:], out=v[:, 1:])
            if prev is None:
                head = (h[:, 0].clone(), b[:, 0].clone())
                h, v, start = h[:, 1:], v[:, 1:], i0 + 1
            else:
                torch.sub(prev, b[:, 0], out=v[:, 0])
                start = i0
            h += v
            X[:, start:i1] += h
            prev = b[:, -1]
        h0, b0 = head
        h0 += prev - b0
        X[:, 0] += h0

    # --- X: the exact solve per frequency, one channel at a time
    def _x_step(self, check: bool, keep: bool):
        """X and the spectrum of X B from the right-hand side in X and X B with V1 + D1 at the
        samples. `check`: returns the change and size of K X (Parseval, against the spectra kept
        by the last call with `keep`)."""
        change = size = 0.0
        prev = self._prev_hat if check else None
        if check and prev is None:
            change = size = None            # nothing kept to compare with
        kept = None
        s = (self.Hp, self.Wp)
        for p in range(self.P):
            ev.check_cancel(self.cancel)
            x_hat = torch.fft.rfft2(self.X[p])
            x_hat *= self.inv_denom
            x_hat.addcmul_(self.lattice.add_sparse(self.xb_hat[p], self.change[p]), self.b_hat_over_c)
            if prev is not None:
                d = prev[p] - x_hat
                change += float(torch.sum(self.k_norm * (d.real ** 2 + d.imag ** 2), dtype=torch.float64))
                size += float(torch.sum(self.k_norm * (x_hat.real ** 2 + x_hat.imag ** 2), dtype=torch.float64))
                del d
            if keep:
                if kept is None:
                    kept = torch.empty((self.P,) + x_hat.shape, dtype=x_hat.dtype, device=x_hat.device)
                kept[p] = x_hat
            self.X[p] = torch.fft.irfft2(x_hat, s=s)
            torch.mul(x_hat, self.b_hat, out=self.xb_hat[p])
        self._prev_hat = kept
        return change, size

    def step(self, check: bool = False, keep: bool = False):
        """One iteration. `check`: returns the stopping rule's sums ([||V - K X||^2, ||K X||^2,
        ||V||^2], change, size) of this iteration, else None. `keep`: keep this iteration's
        spectra for the next iteration's check."""
        stats = [0.0, 0.0, 0.0] if check else None
        self._v1(stats)
        ev.check_cancel(self.cancel)
        with _one_thread(self.X.device):
            self._local(stats)
        change, size = self._x_step(check, keep)
        if not check:
            return None
        return stats, change, size
