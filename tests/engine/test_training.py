"""LEN training: the fast chunked gradient is the autograd one, schedules, cancel, reproducibility."""
import threading

import numpy as np
import pytest
import torch

from spectramorph_engine.core import events as ev
from spectramorph_engine.core.errors import Cancelled
from spectramorph_engine.methods.spectramorph.model import LatentEstimationNetwork
from spectramorph_engine.methods.spectramorph.training import (FusedLEN, loss_and_grad_autograd, lr_at,
                                                               train_len, training_flops_per_epoch)


def _problem(n=700, c=4, bands=30, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, generator=g), torch.rand(n, bands, generator=g),
            torch.rand(k, bands, generator=g))


@pytest.mark.parametrize("in_features", [4, 34])          # rank-1 path and matmul path (prior)
@pytest.mark.parametrize("chunk", [64, 256, 4096])         # chunks that split the batch unevenly
def test_chunked_gradient_equals_autograd_full_batch(in_features, chunk):
    x, t, e = _problem(c=in_features)
    model = LatentEstimationNetwork(in_features, 64, e.shape[0], seed=3)
    ref_loss = loss_and_grad_autograd(model, x, t, e)
    ref = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    loss = FusedLEN(model, e, chunk=chunk).loss_and_grad(x, t)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)
    for got, want in zip((p.grad for p in model.parameters()), ref):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6 * float(want.abs().max()))


def test_one_cycle_rises_over_30_percent_then_falls_to_final():
    lrs = [lr_at(e, 100, "one_cycle", 1e-3, 1e-2, 1e-6) for e in range(100)]
    assert lrs[0] == pytest.approx(1e-3)
    assert max(lrs) == pytest.approx(1e-2) and int(np.argmax(lrs)) == 30
    assert lrs[-1] == pytest.approx(1e-6)
    assert all(a <= b for a, b in zip(lrs[:30], lrs[1:31]))
    assert all(a >= b for a, b in zip(lrs[30:], lrs[31:]))
    assert {lr_at(e, 10, "flat", 5e-4, 1e-2, 1e-6) for e in range(10)} == {5e-4}


def test_training_fits_a_mixing_problem_and_reports_every_epoch():
    torch.manual_seed(0)
    e = torch.rand(4, 40)
    x = torch.rand(2000, 3)
    true_map = torch.rand(3, 4)
    t = (x @ true_map) @ e
    model = LatentEstimationNetwork(3, 128, 4, seed=0)
    events = []
    hist = train_len(model, x, t, e, epochs=150, init_lr=1e-3, max_lr=1e-2, final_lr=1e-5,
                     progress=events.append)
    epoch_events = [v for v in events if isinstance(v, ev.EpochEnd)]
    assert [v.epoch for v in epoch_events] == list(range(1, 151))
    assert hist.loss[-1] < 0.1 * hist.loss[0]
    assert len(hist.lr) == 150 and hist.lr[-1] == pytest.approx(1e-5)


def test_pixel_batches_train_too_and_are_reproducible():
    x, t, e = _problem(n=900)
    runs = []
    for _ in range(2):
        model = LatentEstimationNetwork(4, 32, e.shape[0], seed=1)
        hist = train_len(model, x, t, e, epochs=20, batch_size=256, seed=7)
        runs.append((hist.loss, model.fc1.weight.detach().clone()))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0][-1] < runs[0][0][0]


def test_cancel_stops_training_promptly():
    x, t, e = _problem(n=5000)
    model = LatentEstimationNetwork(4, 256, e.shape[0], seed=1)
    cancel = threading.Event()
    seen = []

    def progress(event):
        if isinstance(event, ev.EpochEnd):
            seen.append(event.epoch)
            if event.epoch == 3:
                cancel.set()

    with pytest.raises(Cancelled):
        train_len(model, x, t, e, epochs=10_000, progress=progress, cancel=cancel)
    assert seen == [1, 2, 3]


class _RequestAfter(threading.Event):
    """A cancel token the user sets while the engine is in the middle of an epoch: it reads
    as set from its `after`-th check on, and remembers how many checks came after that."""

    def __init__(self, after: int):
        super().__init__()
        self.after, self.checks = after, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks >= self.after


def test_cancel_inside_an_epoch_stops_before_the_epoch_ends():
    # 4000 pixels in chunks of 100: 40 chunks an epoch; the request arrives at the 5th check,
    # i.e. during the first epoch. No epoch may be reported after it, and the engine must
    # stop at its very next check (at most one chunk of work after the request).
    x, t, e = _problem(n=4000)
    model = LatentEstimationNetwork(4, 32, e.shape[0], seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    cancel = _RequestAfter(5)
    seen = []
    with pytest.raises(Cancelled):
        train_len(model, x, t, e, epochs=3, chunk=100, cancel=cancel,
                  progress=lambda v: seen.append(v) if isinstance(v, ev.EpochEnd) else None)
    assert seen == [] and cancel.checks == 5
    # and the cancelled epoch changed nothing: no optimizer step on a partial gradient
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_flop_count_matches_hand_count():
    # 1 pixel, 1 input, 1 hidden, 1 endmember, 1 band: 3 forward products, 4 backward, x2 flops
    assert training_flops_per_epoch(1, 1, 1, 1, 1) == 14


@pytest.mark.parametrize("c", [1, 4, 12])                  # rank-1 and matmul MSI paths
@pytest.mark.parametrize("chunk", [64, 4096])
def test_block_prior_gradient_equals_autograd_on_the_concatenated_input(c, chunk):
    """The coarse prior is fed per block (FusedLEN(prior=...)), yet the gradient must be the
    one of the plain network on [msi, prior[index]] (what the original computes)."""
    from spectramorph_engine.methods.spectramorph.inference import coarse_prior_blocks
    rng = np.random.default_rng(5)
    lr = rng.random((18, 22, 30)).astype(np.float32)          # blocks of 4 that do not tile evenly
    rows, index = coarse_prior_blocks(lr, 4)
    assert rows.shape == (5 * 6, 30) and index.max() == 29
    x = torch.from_numpy(rng.random((18 * 22, c)).astype(np.float32))
    t = torch.from_numpy(lr.reshape(-1, 30))
    e = torch.from_numpy(rng.random((5, 30)).astype(np.float32))
    model = LatentEstimationNetwork(c + 30, 48, 5, seed=2)
    full = torch.cat([x, torch.from_numpy(rows[index])], dim=1)
    ref_loss = loss_and_grad_autograd(model, full, t, e)
    ref = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    fused = FusedLEN(model, e, chunk=chunk, prior=torch.from_numpy(rows))
    loss = fused.loss_and_grad_t(x.t().contiguous(), t.t().contiguous(), torch.from_numpy(index))
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)
    for got, want in zip((p.grad for p in model.parameters()), ref):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6 * float(want.abs().max()))


@pytest.mark.parametrize("batch_size", [None, 100])     # full batch (block-major layout) and shuffled batches
def test_training_with_the_block_prior_matches_the_concatenated_input(batch_size):
    """Same seeds, same batches: training on prior blocks follows training on the full input."""
    from spectramorph_engine.methods.spectramorph.inference import coarse_prior_blocks
    rng = np.random.default_rng(6)
    lr = rng.random((18, 16, 20)).astype(np.float32)          # edge blocks of 2 x 4 pixels too
    rows, index = coarse_prior_blocks(lr, 4)
    x = torch.from_numpy(rng.random((288, 2)).astype(np.float32))
    t = torch.from_numpy(lr.reshape(-1, 20))
    e = torch.from_numpy(rng.random((4, 20)).astype(np.float32))
    a = LatentEstimationNetwork(22, 32, 4, seed=1)
    b = LatentEstimationNetwork(22, 32, 4, seed=1)
    ha = train_len(a, x, t, e, epochs=25, batch_size=batch_size, seed=3, chunk=64,
                   prior=(torch.from_numpy(rows), torch.from_numpy(index)))
    hb = train_len(b, torch.cat([x, torch.from_numpy(rows[index])], 1), t, e, epochs=25, batch_size=batch_size,
                   seed=3, chunk=64)
    assert np.allclose(ha.loss, hb.loss, rtol=1e-4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("foreach", [False, True])
def test_our_adam_takes_torch_adams_steps_exactly(foreach):
    """The training's Adam (no torch._dynamo import: seconds off every process) must be torch's
    update: same parameters, bit for bit on the CPU, over steps with a changing learning rate."""
    from spectramorph_engine.methods.spectramorph.adam import Adam
    ours = LatentEstimationNetwork(5, 16, 4, seed=3)
    theirs = LatentEstimationNetwork(5, 16, 4, seed=3)
    torch.manual_seed(3)
    opt_ours = Adam(ours.parameters(), lr=1e-3)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-3, foreach=foreach)
    x, t = torch.rand(64, 5), torch.rand(64, 4)
    for step in range(60):
        lr = lr_at(step, 60, "one_cycle", 1e-3, 1e-2, 1e-6)
        opt_ours.lr = lr
        for group in opt_theirs.param_groups:
            group["lr"] = lr
        for model in (ours, theirs):
            model.zero_grad()
            (model(x) - t).abs().mean().backward()
        opt_ours.step()
        opt_theirs.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(ours.fc1.weight, LatentEstimationNetwork(5, 16, 4, seed=3).fc1.weight)


def test_training_does_not_import_torch_dynamo(tmp_path):
    """torch.optim.Adam's constructor imports torch._dynamo (~830 modules, 1-1.6 s per process);
    a run's training and the app's warm-up must not."""
    import subprocess
    import sys
    code = ("import sys, torch\n"
            "from spectramorph_engine import warm_up\n"
            "from spectramorph_engine.methods.spectramorph.model import LatentEstimationNetwork\n"
            "from spectramorph_engine.methods.spectramorph.training import train_len\n"
            "warm_up()\n"
            "m = LatentEstimationNetwork(3, 8, 2, seed=0)\n"
            "h = train_len(m, torch.rand(50, 3), torch.rand(50, 6), torch.rand(2, 6), epochs=3)\n"
            "print(len(h.loss), 'torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "False"]
