"""Self-supervised training of the LEN at low resolution (MAE of ALLE x E against the LR-HSI, Adam).

The gradient is computed by hand, chunk by chunk of pixels, rather than by autograd on the
full batch: the N x hidden activations of a full batch do not fit in cache, which makes every
epoch memory-bound, and the skinny matmuls (c -> 1024 -> K) waste most of the machine. Chunks
of a few hundred pixels keep the activations in cache, buffers are allocated once, and the sum
over chunks is exactly the full-batch gradient (tests compare it with autograd).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ...core import events as ev
from .adam import Adam

log = logging.getLogger(__name__)

SCHEDULERS = ("one_cycle", "flat")
WARMUP_FRACTION = 0.3


@dataclass
class TrainingHistory:
    loss: list = field(default_factory=list)   # mean absolute error per epoch
    lr: list = field(default_factory=list)     # learning rate used in each epoch
    seconds: float = 0.0
    epochs_planned: int = 0                    # the epochs asked for
    stopped_early: bool = False                # the finish token ended training before them

    @property
    def epochs_run(self) -> int:
        return len(self.loss)

    @property
    def epochs_per_second(self) -> float:
        return self.epochs_run / self.seconds if self.seconds > 0 else 0.0


def lr_at(epoch: int, epochs: int, scheduler: str, init_lr: float, max_lr: float, final_lr: float) -> float:
    """Learning rate of `epoch` (0-based): one_cycle rises linearly init -> max over the first 30%
    of the epochs, then falls linearly to final_lr at the last epoch; flat keeps init_lr."""
    if scheduler == "flat":
        return float(init_lr)
    if scheduler != "one_cycle":
        raise ValueError(f"unknown scheduler '{scheduler}'; allowed: {', '.join(SCHEDULERS)}")
    warm = max(1, int(round(WARMUP_FRACTION * epochs)))
    if epoch < warm:
        return float(init_lr + (max_lr - init_lr) * epoch / warm)
    tail = max(1, epochs - 1 - warm)
    return float(max_lr + (final_lr - max_lr) * min(1.0, (epoch - warm) / tail))


def training_flops_per_epoch(num_pixels: int, in_features: int, hidden: int, num_endmembers: int,
                             num_bands: int) -> float:
    """Floating-point operations of one full-batch epoch (forward + backward matmuls)."""
    n, c, h, k, b = num_pixels, in_features, hidden, num_endmembers, num_bands
    forward = 2 * n * (c * h + h * k + k * b)
    backward = 2 * n * (b * k + k * h + k * h + h * c)   # dY, dW2, dA, dW1
    return float(forward + backward)


def default_chunk(device) -> int:
    # 512 pixels x 1024 hidden x 4 bytes = 2 MB per activation buffer: stays in L2/L3 on CPUs.
    # GPUs want the opposite: big launches.
    return 512 if torch.device(device).type == "cpu" else 65536


class _FinishNow(Exception):
    """Raised inside an epoch when the finish token is set: the epoch's partial gradient is
    dropped and the model stays as the last complete step left it."""


def _is_set(token) -> bool:
    return token is not None and token.is_set()


class FusedLEN:
    """Loss and exact gradient of the LEN + linear mixing + MAE, in chunks, with reused buffers.

    Works in the transposed layout (features x pixels): measured here, the skinny matmuls
    (4 -> 1024 -> 7) run 2-4x faster that way round than pixels x features.
    """

    def __init__(self, model, endmembers: torch.Tensor, chunk: Optional[int] = None, cancel=None,
                 prior: Optional[torch.Tensor] = None):
        """`prior`: the coarse spectral prior as its distinct rows (blocks x P); the network's
        input is then [msi, prior[index]] (index given per call), and the prior's part of the
        first layer is computed once per block, not once per pixel (see loss_and_grad_t)."""
        self.model = model
        # checked between chunks: one epoch on a 2048^2 scene with the prior takes seconds
        self.cancel = cancel
        # train_len sets this once an epoch is complete: a finish request then ends the epoch
        # in progress at its next chunk (raising _FinishNow) instead of waiting for its end
        self.finish = None
        p = model.fc1.weight
        self.chunk = int(chunk or default_chunk(p.device))
        hidden = model.fc1.out_features
        k = model.fc2.out_features
        dev, dt = p.device, p.dtype
        self.E = endmembers.to(dev, dt).contiguous()
        self.Et = self.E.t().contiguous()
        bands = self.E.shape[1]
        self.ZT = torch.empty(hidden, self.chunk, device=dev, dtype=dt)
        self.dZT = torch.empty(hidden, self.chunk, device=dev, dtype=dt)
        self.YT = torch.empty(k, self.chunk, device=dev, dtype=dt)
        self.RT = torch.empty(bands, self.chunk, device=dev, dtype=dt)
        self.dYT = torch.empty(k, self.chunk, device=dev, dtype=dt)
        self.W2t = torch.empty(hidden, k, device=dev, dtype=dt)
        self.tmp_h = torch.empty(hidden, 1, device=dev, dtype=dt)
        self.tmp_k = torch.empty(k, 1, device=dev, dtype=dt)
        self.loss_sum = torch.zeros((), device=dev, dtype=dt)
        self.prior = None if prior is None else prior.to(dev, dt).contiguous()
        if self.prior is not None:
            blocks = self.prior.shape[0]
            self.Q = torch.empty(hidden, blocks, device=dev, dtype=dt)       # W1_prior @ prior^T
            self.gQ = torch.empty(hidden, blocks, device=dev, dtype=dt)
            self.QZ = torch.empty(hidden, self.chunk, device=dev, dtype=dt)
        for prm in model.parameters():
            if prm.grad is None:
                prm.grad = torch.zeros_like(prm)

    @torch.no_grad()
    def loss_and_grad_t(self, xT: torch.Tensor, tT: torch.Tensor,
                        prior_index: Optional[torch.Tensor] = None, layout=None) -> torch.Tensor:
        """Set .grad of the model's parameters to d(MAE)/d(param) over all columns (pixels) of
        xT (features x N) against tT (bands x N); return the MAE as a 0-d tensor.

        With a prior, column i's input is [xT[:, i], prior[prior_index[i]]]: the coarse
        spectral prior is constant over blocks of pixels, so W1_prior @ prior is computed per
        block (hidden x blocks) and gathered, and its gradient summed per block before one
        product with the prior -- the exact full-input gradient at a fraction of its cost
        (the prior has C inputs, the MSI c). `layout` (from `block_major_order`): the first
        `full_pixels` columns are whole blocks of `block` pixels each, in the order of the
        prior rows `full_ids`; there the gather and the per-block sums are a broadcast add and
        a reshaped sum (a fraction of an indexed gather / scatter's cost)."""
        m = self.model
        W1, b1, W2, b2 = m.fc1.weight, m.fc1.bias, m.fc2.weight, m.fc2.bias
        gW1, gW2 = W1.grad, W2.grad
        gb1, gb2 = b1.grad.view(-1, 1), b2.grad.view(-1, 1)
        for g in (gW1, gb1, gW2, gb2):
            g.zero_()
        self.loss_sum.zero_()
        b1c, b2c = b1.view(-1, 1), b2.view(-1, 1)
        self.W2t.copy_(W2.t())
        n_total = xT.shape[1]
        scale = 1.0 / (n_total * tT.shape[0])
        cm = xT.shape[0]                            # MSI inputs (the prior's come after them)
        W1m, gW1m = W1[:, :cm], gW1[:, :cm]
        full, block, Qf, gQf = 0, 1, None, None
        if self.prior is not None:
            torch.mm(W1[:, cm:], self.prior.t(), out=self.Q)
            self.gQ.zero_()
            if layout is not None:
                full, block, full_ids = layout
                Qf = self.Q.index_select(1, full_ids)            # once per call, hidden x full blocks
                gQf = torch.zeros_like(Qf)
        small_input = cm <= 8
        for start, stop in _segments(n_total, self.chunk, full, block):
            ev.check_cancel(self.cancel)
            if _is_set(self.finish):
                raise _FinishNow()
            n = stop - start
            in_full = start < full
            xc, tc = xT[:, start:stop], tT[:, start:stop]
            ZT, dZT, YT, RT, dYT = self.ZT[:, :n], self.dZT[:, :n], self.YT[:, :n], self.RT[:, :n], self.dYT[:, :n]
            if small_input:    # a few rank-1 updates beat a k=4 matmul
                ZT.copy_(b1c.expand(-1, n))
                for j in range(xc.shape[0]):
                    ZT.addcmul_(W1m[:, j:j + 1], xc[j:j + 1])
            else:
                torch.addmm(b1c, W1m, xc, out=ZT)
            if in_full:         # whole blocks: each block's prior column added to its pixels
                b0, b1_ = start // block, stop // block
                ZT.view(ZT.shape[0], b1_ - b0, block).add_(Qf[:, b0:b1_].unsqueeze(2))
            elif self.prior is not None:
                pidx = prior_index[start:stop]
                ZT.add_(torch.index_select(self.Q, 1, pidx, out=self.QZ[:, :n]))
            ZT.clamp_min_(0.0)                      # ZT now holds the ReLU activations
            torch.addmm(b2c, W2, ZT, out=YT)
            torch.mm(self.Et, YT, out=RT)
            RT.sub_(tc)
            self.loss_sum.add_(RT.abs().sum())
            RT.sign_().mul_(scale)                  # dLoss/dR
            torch.mm(self.E, RT, out=dYT)
            gW2.addmm_(dYT, ZT.t())
            gb2.add_(torch.sum(dYT, 1, keepdim=True, out=self.tmp_k))
            torch.mm(self.W2t, dYT, out=dZT)        # dLoss/dA
            torch.ops.aten.threshold_backward.grad_input(dZT, ZT, 0.0, grad_input=dZT)
            gW1m.addmm_(dZT, xc.t())
            gb1.add_(torch.sum(dZT, 1, keepdim=True, out=self.tmp_h))
            if in_full:
                gQf[:, b0:b1_].add_(dZT.view(dZT.shape[0], b1_ - b0, block).sum(dim=2))
            elif self.prior is not None:
                self.gQ.index_add_(1, pidx, dZT)
        if self.prior is not None:
            if gQf is not None:
                self.gQ.index_add_(1, full_ids, gQf)
            torch.mm(self.gQ, self.prior, out=gW1[:, cm:])
        return self.loss_sum * scale

    def loss_and_grad(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Same on pixels x features arrays (transposes; train_len transposes once instead)."""
        return self.loss_and_grad_t(x.t().contiguous(), target.t().contiguous())


def _segments(n_total: int, chunk: int, full: int, block: int):
    """(start, stop) of the chunks: whole blocks first (chunks a multiple of `block` pixels,
    never straddling `full`), then the rest in chunks of `chunk`."""
    step = max(block, (chunk // block) * block)
    for start in range(0, full, step):
        yield start, min(start + step, full)
    for start in range(full, n_total, chunk):
        yield start, min(start + chunk, n_total)


def block_major_order(index: torch.Tensor):
    """(order, layout) for a full-batch epoch with a block prior: the pixels of whole blocks
    (the most common block size) first, grouped block by block, then the rest; layout =
    (pixels in whole blocks, block size, their blocks' prior rows). The MAE and its gradient
    do not depend on the pixel order."""
    counts = torch.bincount(index)
    block = int(counts.max())
    whole = counts == block
    key = torch.where(whole[index], index, index + counts.numel())
    order = torch.sort(key, stable=True).indices
    full_ids = torch.nonzero(whole).flatten()
    return order, (int(whole[index].sum()), block, full_ids)


def spread_sample(positions: np.ndarray, height: int, width: int, cap: Optional[int], seed: int):
    """Indices (sorted) into `positions` (raster indices on the height x width LR grid of the
    training pixels) of a sample of exactly `cap` of them spread over the image, or None when
    there are no more than `cap` (train on all).

    Stratified: the grid is cut into about `cap` square cells, the pixels sorted cell by cell
    (cells in serpentine order, a random order inside each), then every (n / cap)-th taken from
    a random start -- so each cell gives its share (about one pixel) and every area of the
    image is represented, where a plain random draw leaves holes and clumps. Deterministic for
    a seed. The pixels' coarse prior rows stay the whole image's (fit_network gathers them)."""
    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    n = positions.size
    if cap is None or n <= int(cap):
        return None
    cap = int(cap)
    rng = np.random.default_rng([int(seed), 20])       # its own stream: not the network's start
    side = max(1.0, float(np.sqrt(height * width / cap)))
    rows, cols = positions // width, positions % width
    cr, cc = (rows / side).astype(np.int64), (cols / side).astype(np.int64)
    ncols = int(np.ceil(width / side)) + 1
    cc = np.where(cr % 2 == 1, ncols - 1 - cc, cc)     # serpentine: consecutive cells are neighbours
    order = np.lexsort((rng.random(n), cr * ncols + cc))
    step = n / cap
    picks = np.floor(rng.random() * step + step * np.arange(cap)).astype(np.int64)
    return np.sort(order[np.minimum(picks, n - 1)])


def loss_and_grad_autograd(model, x, target, endmembers) -> torch.Tensor:
    """Reference: plain autograd on the full batch (used by tests to check FusedLEN)."""
    model.zero_grad(set_to_none=True)
    loss = torch.mean(torch.abs(model(x) @ endmembers - target))
    loss.backward()
    return loss.detach()


def train_len(model, inputs: torch.Tensor, targets: torch.Tensor, endmembers: torch.Tensor, *,
              epochs: int, scheduler: str = "one_cycle", init_lr: float = 1e-3, max_lr: float = 1e-2,
              final_lr: float = 1e-6, batch_size: Optional[int] = None, seed: int = 0,
              chunk: Optional[int] = None, progress=None, cancel=None, prior=None,
              finish=None) -> TrainingHistory:
    """Train `model` in place; emits EpochEnd per epoch and stops at the cancel token (Cancelled).
    `prior`: (blocks x P rows, index (N,) of each pixel's row), the coarse spectral prior
    appended to each pixel's input (see FusedLEN).

    `finish` (a threading.Event): when set, training ends early and returns normally with the
    model as trained so far -- checked between epochs, and between chunks / batches inside an
    epoch (a full-batch epoch in progress is dropped: its gradient was never applied). At
    least one epoch always completes, so a token set before training starts gives a model
    trained for one epoch. The history then has fewer entries than `epochs` and
    `stopped_early` set."""
    n = inputs.shape[0]
    prior_rows, prior_index = (None, None) if prior is None else prior
    if prior_index is not None:
        prior_index = torch.as_tensor(prior_index, dtype=torch.long, device=inputs.device)
    fused = FusedLEN(model, endmembers, chunk=chunk, cancel=cancel, prior=prior_rows)
    batch = n if not batch_size or batch_size >= n else int(batch_size)
    layout = None
    if prior_index is not None and batch == n:      # full batch: whole prior blocks contiguous
        order, layout = block_major_order(prior_index)
        inputs, targets, prior_index = inputs[order], targets[order], prior_index[order]
        layout = (layout[0], layout[1], layout[2].to(inputs.device))
        ev.check_cancel(cancel)         # reordering a big scene's pixels takes a moment
    xT, tT = inputs.t().contiguous(), targets.t().contiguous()   # transposed once, see FusedLEN
    optimizer = Adam(model.parameters(), lr=init_lr)
    history = TrainingHistory(epochs_planned=int(epochs))
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    t0 = time.perf_counter()
    for epoch in range(epochs):
        ev.check_cancel(cancel)
        if epoch > 0 and _is_set(finish):
            history.stopped_early = True
            break
        lr = lr_at(epoch, epochs, scheduler, init_lr, max_lr, final_lr)
        optimizer.lr = lr
        try:
            if batch == n:
                loss = fused.loss_and_grad_t(xT, tT, prior_index, layout)
                optimizer.step()
            else:
                order = torch.randperm(n, generator=gen).to(inputs.device)
                loss = torch.zeros((), device=inputs.device)
                for start in range(0, n, batch):
                    ev.check_cancel(cancel)
                    if epoch > 0 and _is_set(finish):
                        # the steps of this partial epoch stay applied; it is not counted
                        raise _FinishNow()
                    idx = order[start:start + batch]
                    part = fused.loss_and_grad_t(xT[:, idx], tT[:, idx],
                                                 None if prior_index is None else prior_index[idx])
                    optimizer.step()
                    loss += part * (idx.numel() / n)
        except _FinishNow:
            history.stopped_early = True
            break
        loss_value = float(loss)                  # the one host sync per epoch (progress needs it)
        history.loss.append(loss_value)
        history.lr.append(lr)
        ev.emit(progress, ev.EpochEnd(epoch=epoch + 1, epochs=epochs, loss=loss_value, lr=lr))
        fused.finish = finish               # from now on a request may end an epoch half-way
    history.seconds = time.perf_counter() - t0
    if history.stopped_early:
        log.info("training stopped early at epoch %d of %d (finish requested): the run goes on with the "
                 "model as trained so far", history.epochs_run, epochs)
    log.info("trained %d epochs on %d LR pixels in %.2f s (%.1f epochs/s), final loss %.5g",
             history.epochs_run, n, history.seconds, history.epochs_per_second,
             history.loss[-1] if history.loss else float("nan"))
    return history
