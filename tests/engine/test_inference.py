"""Inference: row batches are exact, the prior is appended the same way as in training, output sinks."""
import threading

import numpy as np
import pytest
import torch

from spectramorph_engine.core import events as ev
from spectramorph_engine.core.errors import Cancelled
from spectramorph_engine.methods.spectramorph.inference import coarse_prior_lr, infer
from spectramorph_engine.io import ResultWriter, load_cube
from spectramorph_engine.methods.spectramorph.model import LatentEstimationNetwork


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    msi = rng.random((24, 20, 3), dtype=np.float32)
    lr = rng.random((6, 5, 16), dtype=np.float32)
    e = rng.random((4, 16), dtype=np.float32) / 2
    return msi, lr, e


def _full(model, msi, e, lr=None, ratio=4):
    x = msi.reshape(-1, msi.shape[2])
    if lr is not None:
        up = np.repeat(np.repeat(lr, ratio, 0), ratio, 1)
        x = np.concatenate([x, up.reshape(-1, lr.shape[2])], 1)
    with torch.no_grad():
        latent = model(torch.from_numpy(x))
    hr = np.clip((latent @ torch.from_numpy(e)).numpy(), 0, 1)
    return hr.reshape(msi.shape[0], msi.shape[1], -1), latent.numpy().reshape(msi.shape[0], msi.shape[1], -1)


@pytest.mark.parametrize("batch", [1, 20, 100, 10_000])
def test_batched_inference_equals_full(scene, batch):
    msi, lr, e = scene
    model = LatentEstimationNetwork(3 + 16, 64, 4, seed=0)
    want_hr, want_alle = _full(model, msi, e, lr)
    hr, alle = infer(model, msi, e, lr_hsi=lr, ratio=4, batch_size=batch)
    np.testing.assert_allclose(hr, want_hr, atol=1e-6)
    np.testing.assert_allclose(alle, want_alle, atol=1e-5)
    assert hr.min() >= 0 and hr.max() <= 1


def test_inference_streams_into_a_result_file(scene, tmp_path):
    msi, _, e = scene
    model = LatentEstimationNetwork(3, 32, 4, seed=0)
    want, _ = _full(model, msi, e)
    events = []
    with ResultWriter(tmp_path / "out.h5", (24, 20, 16)) as writer:
        infer(model, msi, e, batch_size=100, out_hsi=writer, progress=events.append)
    np.testing.assert_allclose(load_cube(tmp_path / "out.h5").data, want, atol=1e-6)
    fractions = [v.fraction for v in events if isinstance(v, ev.StageProgress)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancelled_inference_raises(scene):
    msi, _, e = scene
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        infer(LatentEstimationNetwork(3, 8, 4), msi, e, cancel=cancel)


def test_coarse_prior_is_block_mean_repeated():
    lr = np.arange(5 * 6 * 2, dtype=np.float32).reshape(5, 6, 2)
    prior = coarse_prior_lr(lr, 2)
    assert prior.shape == lr.shape
    np.testing.assert_allclose(prior[0, 0], lr[:2, :2].mean(axis=(0, 1)))
    np.testing.assert_allclose(prior[1, 1], lr[:2, :2].mean(axis=(0, 1)))
    np.testing.assert_allclose(prior[4, 5], lr[4:, 4:].mean(axis=(0, 1)))   # partial edge block


def test_prior_inference_equals_the_network_on_the_concatenated_input():
    """infer() feeds the prior per LR pixel (model.forward_with_prior); the result must be the
    network applied to [msi, LR-HSI nearest-upsampled] pixel by pixel, at any batch size."""
    import torch
    from spectramorph_engine.methods.spectramorph.inference import infer
    from spectramorph_engine.methods.spectramorph.model import LatentEstimationNetwork
    rng = np.random.default_rng(3)
    r, C = 4, 12
    lr = rng.random((5, 7, C)).astype(np.float32)
    msi = rng.random((20, 28, 2)).astype(np.float32)
    E = rng.random((3, C)).astype(np.float32)
    model = LatentEstimationNetwork(2 + C, 16, 3, seed=0)
    up = np.repeat(np.repeat(lr, r, 0), r, 1)
    with torch.no_grad():
        want = model(torch.from_numpy(np.concatenate([msi, up], 2).reshape(-1, 2 + C))).numpy().reshape(20, 28, 3)
    for batch in (None, 28, 50):          # whole image, one row, blocks that straddle LR rows
        hr, alle = infer(model, msi, E, lr_hsi=lr, ratio=r, batch_size=batch)
        assert np.allclose(alle, want, atol=1e-5)
        assert np.allclose(hr, np.clip(want @ E, 0, 1), atol=1e-5)


def test_inference_in_cache_sized_steps_equals_the_network(scene, monkeypatch):
    """infer() runs the network a few thousand pixels at a time through reused buffers
    (model.latents; 5x faster at 1024^2 than whole 16k-pixel blocks): the same latents as
    the network on the whole block, with and without the prior, whatever the step."""
    msi, lr, e = scene
    for prior in (False, True):
        model = LatentEstimationNetwork(3 + (16 if prior else 0), 64, 4, seed=1)
        with torch.no_grad():
            model.fc1.bias.uniform_(-0.2, 0.2, generator=torch.Generator().manual_seed(2))
            model.fc2.bias.uniform_(-0.2, 0.2, generator=torch.Generator().manual_seed(3))
        want_hr, want_alle = _full(model, msi, e, lr if prior else None)
        for step in (1, 37, 480, 10_000):        # a pixel, uneven steps, one step per block, more than all
            monkeypatch.setattr(LatentEstimationNetwork, "CPU_STEP", step)
            hr, alle = infer(model, msi, e, lr_hsi=lr if prior else None, ratio=4, batch_size=240)
            np.testing.assert_allclose(alle, want_alle, atol=1e-5, err_msg=f"prior {prior}, step {step}")
            np.testing.assert_allclose(hr, want_hr, atol=1e-6, err_msg=f"prior {prior}, step {step}")
