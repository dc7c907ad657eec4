"""The Latent Estimation Network (LEN): a per-pixel MLP from MSI values to abundance-like latents."""
from __future__ import annotations

import math

import torch
from torch import nn


class LatentEstimationNetwork(nn.Module):
    """Linear(in, hidden) -> ReLU -> Linear(hidden, K), linear output (ALLE; no softmax).

    Weights start Glorot-uniform and biases at zero, as Keras Dense layers do in the
    original implementation; `seed` makes the start reproducible without touching
    torch's global generator.
    """

    def __init__(self, in_features: int, hidden_size: int, num_endmembers: int, seed: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_size)
        self.fc2 = nn.Linear(hidden_size, num_endmembers)
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        with torch.no_grad():
            for layer in (self.fc1, self.fc2):
                fan_out, fan_in = layer.weight.shape
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) * (2 * bound) - bound)
                layer.bias.zero_()

    @property
    def in_features(self) -> int:
        return self.fc1.in_features

    @property
    def num_endmembers(self) -> int:
        return self.fc2.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))

    def forward_with_prior(self, x_msi: torch.Tensor, prior_rows: torch.Tensor,
                           index: torch.Tensor) -> torch.Tensor:
        """forward([x_msi, prior_rows[index]]) without building the concatenated input: the
        prior's share of the first layer is computed once per distinct prior row (the coarse
        prior is constant over blocks of pixels), then gathered."""
        c = x_msi.shape[1]
        w = self.fc1.weight
        hidden = torch.addmm(self.fc1.bias, x_msi, w[:, :c].t())
        hidden += (prior_rows @ w[:, c:].t())[index]
        return self.fc2(torch.relu_(hidden))

    # pixels per step of `latents` on the CPU: their hidden activations (2048 x 1024 float32,
    # 8 MB) stay in cache between the two layers; whole blocks of 16k pixels (64 MB) went to
    # memory and back three times (bench/README, 11th session: "... inference in cache-sized
    # steps", 5x at 1M pixels)
    CPU_STEP = 2048

    @torch.no_grad()
    def latents(self, x: torch.Tensor, prior_rows: torch.Tensor = None, index: torch.Tensor = None,
                step: int = None) -> torch.Tensor:
        """forward(x) (or forward_with_prior(x, prior_rows, index)), the same values bit for
        bit, `step` pixels at a time through buffers made once (default: CPU_STEP on the CPU,
        all pixels at once elsewhere)."""
        n, c = x.shape
        if step is None:
            step = self.CPU_STEP if x.device.type == "cpu" else n
        step = max(1, min(int(step), n))
        w1, b1 = self.fc1.weight, self.fc1.bias
        w1_msi_t, w2_t = w1[:, :c].t(), self.fc2.weight.t()
        share = None if prior_rows is None else prior_rows @ w1[:, c:].t()    # once per prior row
        out = torch.empty((n, self.num_endmembers), dtype=x.dtype, device=x.device)
        hidden_buf = torch.empty((step, w1.shape[0]), dtype=x.dtype, device=x.device)
        gathered = None if share is None else torch.empty_like(hidden_buf)
        for s in range(0, n, step):
            e = min(n, s + step)
            hidden = hidden_buf[:e - s]
            torch.addmm(b1, x[s:e], w1_msi_t, out=hidden)
            if share is not None:
                hidden += torch.index_select(share, 0, index[s:e], out=gathered[:e - s])
            hidden.relu_()
            torch.addmm(self.fc2.bias, hidden, w2_t, out=out[s:e])
        return out
