"""Adam for the LEN's training: the update of torch.optim.Adam (its defaults: no weight decay,
no AMSGrad), with the same operations in the same order, so the iterates are torch's.

Why not torch.optim.Adam itself: its constructor imports torch._dynamo (~830 modules), 1-1.6 s
of every process that trains -- each CLI run, each Dask worker, the app's start -- for an
update of a few lines. tests/engine/test_training.py holds the two equal step for step.
"""
from __future__ import annotations

import torch


class Adam:
    """Adam over `params` (tensors whose .grad the caller sets); `lr` may change between steps."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr = float(lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        # bias corrections in double precision on the host, as torch computes them
        step_size = (self.lr / (1 - b1 ** self.steps)) * -1
        correction2_sqrt = (1 - b2 ** self.steps) ** 0.5
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            g = p.grad
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = v.sqrt().div_(correction2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=step_size)
