"""Ending training early with the model as trained so far (the app's Stop > Finish): the run
goes on through inference, refinement, scoring and writing, and says where training stopped."""
import json
import logging
import threading

import pytest
import torch

from spectramorph_engine import FusionConfig, FusionInputs, run_fusion
from spectramorph_engine.core import events
from spectramorph_engine.methods.spectramorph.model import LatentEstimationNetwork
from spectramorph_engine.methods.spectramorph.training import train_len


def _problem(n=2000, c=3, bands=30, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, generator=g), torch.rand(n, bands, generator=g),
            torch.rand(k, bands, generator=g))


def _finish_at(epoch: int, token: threading.Event):
    """A progress callback that sets `token` when epoch `epoch` has been reported."""
    seen = []

    def progress(event):
        if isinstance(event, events.EpochEnd):
            seen.append(event.epoch)
            if event.epoch == epoch:
                token.set()
    return progress, seen


@pytest.mark.parametrize("batch_size", [None, 500])
def test_training_ends_at_the_next_check_and_keeps_what_it_learnt(batch_size):
    x, t, e = _problem()
    model = LatentEstimationNetwork(3, 32, e.shape[0], seed=0)
    finish = threading.Event()
    progress, seen = _finish_at(4, finish)
    hist = train_len(model, x, t, e, epochs=1000, batch_size=batch_size, progress=progress, finish=finish)
    assert hist.stopped_early and hist.epochs_planned == 1000
    assert hist.epochs_run == 4 and seen == [1, 2, 3, 4]
    assert len(hist.lr) == 4
    assert hist.loss[-1] < hist.loss[0]          # the model was trained, not reset


def test_a_token_set_before_training_still_trains_one_epoch():
    x, t, e = _problem()
    model = LatentEstimationNetwork(3, 32, e.shape[0], seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    finish = threading.Event()
    finish.set()
    hist = train_len(model, x, t, e, epochs=50, finish=finish)
    assert hist.stopped_early and hist.epochs_run == 1
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_token_never_set_changes_nothing():
    x, t, e = _problem()
    runs = []
    for finish in (None, threading.Event()):
        model = LatentEstimationNetwork(3, 32, e.shape[0], seed=0)
        hist = train_len(model, x, t, e, epochs=12, finish=finish)
        runs.append(hist.loss)
        assert not hist.stopped_early and hist.epochs_run == 12
    assert runs[0] == runs[1]


def test_finish_during_training_gives_a_whole_run_with_outputs(tmp_path, caplog):
    from spectramorph_engine.run.demo import demo_scene
    truth, wl = demo_scene(size=32, num_bands=30)
    cfg = FusionConfig(epochs=400, hidden_size=32, num_endmembers=4, device="cpu", auto_select=False,
                       output_dir=str(tmp_path / "out"), log_dir=str(tmp_path / "logs"))
    finish = threading.Event()
    progress, seen = _finish_at(7, finish)
    stages = []
    with caplog.at_level(logging.INFO, logger="spectramorph_engine"):
        result = run_fusion(cfg, progress=lambda ev: (progress(ev), stages.append(ev)),
                            inputs=FusionInputs(truth=truth, wavelengths=wl), finish_training=finish)
    assert result.training_stopped == {"epoch": 7, "epochs": 400}
    assert len(result.loss_history) == 7 and seen == list(range(1, 8))
    training = dict(result.method_info["training"])
    assert training.pop("loop_seconds") > 0
    assert training == {"epochs": 400, "epochs_run": 7, "stopped_early": True, "pixels": 64,
                        "pixels_available": 64, "max_training_pixels": cfg.max_training_pixels}
    # every stage after training ran: inference, refinement, scores, outputs
    started = [ev.stage for ev in stages if isinstance(ev, events.StageStarted)]
    assert {"inference", "refine", "metrics", "save"} <= set(started)
    assert result.hr_hsi.shape == truth.shape and result.metrics["PSNR"] > 0
    out = tmp_path / "out"
    assert (out / "hr_hsi.npy").exists() and (out / "metrics.json").exists()
    run = json.loads((out / "run.json").read_text())
    assert run["training_stopped_early"] == {"epoch": 7, "epochs": 400}
    assert "training stopped early at epoch 7 of 400" in caplog.text
    # the user is told too (the app's status bar, the CLI's log)
    assert any(isinstance(ev, events.Message) and "stopped early at epoch 7 of 400" in ev.text for ev in stages)


def test_a_run_without_the_request_records_no_early_stop(tmp_path):
    from spectramorph_engine.run.demo import demo_scene
    truth, wl = demo_scene(size=32, num_bands=30)
    cfg = FusionConfig(epochs=5, hidden_size=16, num_endmembers=4, device="cpu", auto_select=False,
                       output_dir=str(tmp_path / "out"), log_dir=str(tmp_path / "logs"))
    result = run_fusion(cfg, inputs=FusionInputs(truth=truth, wavelengths=wl), finish_training=threading.Event())
    assert result.training_stopped is None and len(result.loss_history) == 5
    assert json.loads((tmp_path / "out" / "run.json").read_text())["training_stopped_early"] is None


def test_real_pair_reduced_resolution_check_uses_the_epochs_run(check_epochs):
    """In real-world mode the reduced-resolution check trains a second network, a fifth as long
    as the run's: with training ended before that it is made again with as many epochs as the
    result's network had, not the configured ones."""
    from spectramorph_engine.run.demo import demo_scene
    from spectramorph_engine.sensors.degradation import make_synthetic_pair
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.srf import preset_srf
    truth, _ = demo_scene(size=64, num_bands=30, seed=3)
    _, hr, lr = make_synthetic_pair(truth, make_psf("gaussian", 1.0, 2), preset_srf(3, 30), 4, 40, 35, 3)
    cfg = FusionConfig(synthetic=False, epochs=5000, hidden_size=16, num_endmembers=3, device="cpu",
                       auto_select=False)
    finish = threading.Event()
    progress, _ = _finish_at(3, finish)
    result = run_fusion(cfg, progress=progress, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr), write_outputs=False,
                        finish_training=finish)
    assert result.training_stopped == {"epoch": 3, "epochs": 5000}
    # the check before the run trained a fifth of the 5000 epochs; the result's network had 3
    assert check_epochs == [1000, 3] and result.consistency["reduced_resolution"]["epochs"] == 3
    assert result.consistency["reduced_resolution"]["fusion"]["PSNR"] > 0
