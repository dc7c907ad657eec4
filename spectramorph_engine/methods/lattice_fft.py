"""Between the half spectrum of a grid image and its values on the LR sample lattice.

HySure's ADMM (hysure_admm.py) reads the blurred image X B only at the LR samples (every r-th
pixel of the frame, from (top, left)) and changes it only there. Holding X B as its half
spectrum, two full-size FFTs per band and iteration become two on 1/r of the rows:

- `samples(z)`: irfft2(z) at the samples. The column inverse FFT evaluated only at rows
  top + r i folds the spectrum's r blocks of Hp / r rows onto one (each weighted by a phase)
  and inverts that, Hp / r long; the row pass then runs on those h rows alone.
- `add_sparse(z, s)`: adds to z the rfft2 of the grid image holding `s` at the samples and 0
  elsewhere. The row FFTs run on the h sample rows; their column FFT is Hp / r long, added
  tiled r times with a phase.

Both need Hp to be a multiple of r; otherwise the column passes run at full length on the
rows at hand (still no full-size row pass). Exact up to float rounding (tests compare them
with irfft2 / rfft2 of the full images).
"""
from __future__ import annotations

import math

import torch


class LatticeFFT:
    def __init__(self, Hp: int, Wp: int, r: int, top: int, left: int, h: int, w: int, device):
        self.Hp, self.Wp, self.r, self.top, self.left, self.h, self.w = Hp, Wp, r, top, left, h, w
        self.Wf = Wp // 2 + 1
        self.cols = slice(left, left + r * (w - 1) + 1, r)
        self.fold = Hp % r == 0
        if self.fold:
            n = Hp // r
            k = torch.arange(Hp, dtype=torch.float64, device=device)
            # inverse: A[k0] = e^{2 pi i k0 top / Hp} sum_j z[k0 + j n] e^{2 pi i j top / r}
            self.block_phase = [complex(math.cos(2 * math.pi * j * top / r), math.sin(2 * math.pi * j * top / r))
                                for j in range(r)]
            self.small_phase = torch.polar(torch.ones(n, dtype=torch.float64, device=device),
                                           2 * math.pi * k[:n] * top / Hp).to(torch.complex64)[:, None]
            # forward: F[k] = e^{-2 pi i k top / Hp} G[k mod n]
            self.full_phase = torch.polar(torch.ones(Hp, dtype=torch.float64, device=device),
                                          -2 * math.pi * k * top / Hp).to(torch.complex64).view(r, n, 1)

    def samples(self, z: torch.Tensor) -> torch.Tensor:
        """h x w: irfft2(z, s=(Hp, Wp)) at the sample positions (z: Hp x Wf complex)."""
        if self.fold:
            n = self.Hp // self.r
            a = z[:n] * self.block_phase[0] if self.block_phase[0] != 1 else z[:n].clone()
            for j in range(1, self.r):
                a.add_(z[j * n:(j + 1) * n], alpha=self.block_phase[j])
            a *= self.small_phase
            rows = torch.fft.ifft(a, dim=0)[:self.h] / self.r
        else:
            rows = torch.fft.ifft(z, dim=0)[self.top:self.top + self.r * (self.h - 1) + 1:self.r]
        return torch.fft.irfft(rows, n=self.Wp, dim=1)[:, self.cols]

    def add_sparse(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """z += rfft2 of the Hp x Wp image holding `s` (h x w) at the samples, 0 elsewhere
        (z: Hp x Wf complex, in place; returned)."""
        rows = torch.zeros((self.h, self.Wp), dtype=s.dtype, device=s.device)
        rows[:, self.cols] = s
        spec = torch.fft.rfft(rows, dim=1)
        if self.fold:
            n = self.Hp // self.r
            g = torch.fft.fft(spec, n=n, dim=0)
            z.view(self.r, n, self.Wf).addcmul_(self.full_phase, g[None])     # tiled r times, phase per row
            return z
        full = torch.zeros((self.Hp, self.Wf), dtype=spec.dtype, device=spec.device)
        full[self.top:self.top + self.r * (self.h - 1) + 1:self.r] = spec
        return z.add_(torch.fft.fft(full, dim=0))
