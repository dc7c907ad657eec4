"""The VTV weight chosen from left-out MSI bands (`refine_tv_select`, run/tv_selection.py): what a
pair loses with a band, which weight a flat and a textured scene get, and what a run records."""
import numpy as np
import pytest

from spectramorph_engine import FusionConfig, FusionInputs, run_fusion
from spectramorph_engine.core import events as ev
from spectramorph_engine.run import tv_selection
from spectramorph_engine.run.prepare import prepare_inputs
from spectramorph_engine.sensors import spatial
from spectramorph_engine.sensors.degradation import add_awgn

from blocky_scene import blocky_scene

R = 4


def _srf(bands, C):
    """`bands` Gaussian responses spread over C channels, rows summing to 1."""
    x = np.arange(C)
    rows = np.stack([np.exp(-0.5 * ((x - m) / (C / (2.5 * bands))) ** 2)
                     for m in np.linspace(0.15 * C, 0.85 * C, bands)])
    return rows / rows.sum(axis=1, keepdims=True)


def _pair(truth, bands=4, seed=0, snr=30.0):
    """(hr_msi, lr_hsi) of a real pair made from `truth`: the SRF above, a Gaussian blur of
    sigma 1.5 HR px and area downsampling by R, `snr` dB of noise on both."""
    rng = np.random.default_rng(seed)
    hr = add_awgn((truth @ _srf(bands, truth.shape[2]).T).astype(np.float32), snr, rng)
    g = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    lr = add_awgn(spatial.area_downsample(spatial.blur(truth, kernel, "symmetric"), R).astype(np.float32), snr, rng)
    return hr, lr


def _config(**changes):
    base = dict(synthetic=False, seed=1, device="cpu", verbose=0, auto_select=False, epochs=300,
                num_endmembers=4, refine_iterations=60)
    base.update(changes)
    return FusionConfig(**base)


def _textured(H=64, W=64, C=40, K=4, seed=0):
    """The blocky scene's materials mixed anew at every pixel: detail everywhere."""
    _, _, E = blocky_scene(H, W, C, K, seed)
    A = np.random.default_rng(seed + 7).random((H, W, K)) ** 3
    A /= A.sum(axis=2, keepdims=True)
    return (A @ E).astype(np.float32)


def test_a_pair_without_a_band_loses_the_band_its_srf_row_and_its_fit():
    truth, _, _ = blocky_scene()
    hr, lr = _pair(truth, bands=3)
    prep = prepare_inputs(_config(), FusionInputs(hr_msi=hr, lr_hsi=lr))
    assert prep.srf_estimate is not None            # a real pair: the SRF is fitted
    cut = tv_selection.without_band(prep, 1)
    np.testing.assert_array_equal(cut.hr_msi, prep.hr_msi[..., [0, 2]])
    srf, offset = prep.msi_model()
    cut_srf, cut_offset = cut.msi_model()
    np.testing.assert_array_equal(cut_srf, srf[[0, 2]])
    np.testing.assert_array_equal(cut_offset, offset[[0, 2]])
    per_band = prep.srf_fit["psnr_per_band"]
    assert cut.srf_fit["psnr_per_band"] == [per_band[0], per_band[2]]
    np.testing.assert_array_equal(cut.lr_hsi, prep.lr_hsi)


@pytest.mark.parametrize("scene", ["flat", "textured"])
def test_the_chosen_weight_suits_the_scene_better_than_the_default(scene):
    """Blocky abundances (flat regions, sharp edges) keep a VTV of 10 or more; the same materials
    mixed anew at every pixel get a weaker one -- and against the truth the result is then
    better than with the default 10 by more than 1 dB."""
    from spectramorph_engine.quality import metrics
    truth = blocky_scene()[0] if scene == "flat" else _textured()
    hr, lr = _pair(truth)
    config = _config()
    prep = prepare_inputs(config, FusionInputs(hr_msi=hr, lr_hsi=lr))
    record = tv_selection.choose_tv_weight(config, prep)
    assert record["skipped"] is None and record["bands"] == 4
    # the walk from 10 tried a run of neighbouring candidates and chose the least error of them
    tried = sorted(float(w) for w in record["errors"])
    candidates = tv_selection.candidate_weights(10.0)
    first = candidates.index(tried[0])
    assert 10.0 in tried and tried == candidates[first:first + len(tried)]
    assert record["chosen"] in (10.0, min(tried, key=lambda w: record["errors"][f"{w:g}"]))
    if scene == "flat":
        assert record["chosen"] >= 10, record
        return
    assert record["chosen"] < 10, record

    def psnr(weight):
        res = run_fusion(config.replace(refine_tv_weight=weight, refine_tv_select=False),
                         inputs=FusionInputs(hr_msi=hr, lr_hsi=lr),
                         write_outputs=False)
        return float(metrics.psnr(np.clip(truth, 0, 1), np.clip(np.asarray(res.hr_hsi), 0, 1)))
    assert psnr(record["chosen"]) > psnr(10.0) + 1.0


def test_a_blind_run_chooses_by_default_uses_and_records_the_chosen_weight():
    """On by default: a pair whose SRF the engine estimates runs at the weight chosen, records
    it, and its reduced-resolution check (made before the choice) reads that weight's result."""
    from spectramorph_engine.run import fuse
    assert FusionConfig().refine_tv_select is True
    hr, lr = _pair(_textured())
    said = []
    result = run_fusion(_config(), inputs=FusionInputs(hr_msi=hr, lr_hsi=lr),
                        write_outputs=False, progress=lambda e: said.append(e))
    record = result.method_info["tv_selection"]
    chosen = record["chosen"]
    assert chosen != 10.0 and "tv" in result.timings
    assert result.config_used.refine_tv_weight == chosen and not result.config_used.refine_tv_select
    again = fuse.fuse_reduced(result.config_used, result.prepared).report
    assert result.consistency["reduced_resolution"]["fusion"] == pytest.approx(again["fusion"], rel=1e-4)
    refinement = result.method_info["refinement"]
    # the refinement ran at the chosen weight (its info holds it times the noise variance)
    assert refinement["tv_weight"] == pytest.approx(chosen * refinement["noise_variance"], rel=1e-6)
    assert any(isinstance(e, ev.Message) and e.text.startswith("VTV weight") for e in said)


@pytest.mark.parametrize("best", [0, 1, 2, 3, 4])
def test_the_walk_finds_the_least_error_of_a_unimodal_curve_trying_fewer_weights(best):
    """From the configured weight (10, index 3 of 1, 2.5, 5, 10, 20) towards the falling error,
    stopping where it rises or the candidates end: each candidate the best once, never more
    than four of the five tried."""
    weights = [1.0, 2.5, 5.0, 10.0, 20.0]
    asked = []

    def error_of(w):
        asked.append(w)
        return (weights.index(w) - best) ** 2 + 1.0
    errors = tv_selection.downhill(weights, 3, error_of)
    assert min(errors, key=errors.get) == weights[best]
    assert len(asked) == len(set(asked)) == len(errors)     # no weight refined twice
    assert len(asked) == {0: 4, 1: 4, 2: 3, 3: 3, 4: 3}[best]


def test_one_msi_band_keeps_the_configured_weight_and_says_why():
    truth, _, _ = blocky_scene()
    hr, lr = _pair(truth, bands=1)
    config = _config(refine_tv_weight=7.0)
    record = tv_selection.choose_tv_weight(config, prepare_inputs(config, FusionInputs(hr_msi=hr, lr_hsi=lr)))
    assert record["chosen"] == 7.0 and "one MSI band" in record["skipped"]
    assert "as configured" in tv_selection.summary(record)


def test_a_given_srf_keeps_the_configured_weight_and_says_why(tmp_path):
    """With the exact SRF (here a file) the left-out bands misled the choice on the bench: it is
    not made, and the record says why."""
    truth, _, _ = blocky_scene()
    hr, lr = _pair(_textured())
    path = tmp_path / "srf.npy"
    np.save(path, _srf(4, truth.shape[2]))
    config = _config(provide_srf=True, srf_file=str(path))
    prep = prepare_inputs(config, FusionInputs(hr_msi=hr, lr_hsi=lr))
    record = tv_selection.choose_tv_weight(config, prep)
    assert record["chosen"] == 10.0 and "SRF is given" in record["skipped"]


def test_a_camera_the_srf_cannot_explain_keeps_the_configured_weight_and_says_why(library_truth):
    """A camera with gamma 1/2.2 on a USGS-library mixture: the linear SRF leaves a misfit far
    above the noise, which the left-out bands' prediction (through the SRF) would score instead
    of the VTV: no choice."""
    truth, _ = library_truth(64, 100)
    truth = truth.astype(np.float32)
    hr, lr = _pair(truth)
    hr = np.clip(hr, 0.0, None) ** (1.0 / 2.2)
    config = _config()
    prep = prepare_inputs(config, FusionInputs(hr_msi=hr.astype(np.float32), lr_hsi=lr))
    assert tv_selection.srf_misfit(prep) > tv_selection.MAX_SRF_MISFIT
    record = tv_selection.choose_tv_weight(config, prep)
    assert record["chosen"] == 10.0 and "explains the pair poorly" in record["skipped"]
    # the linear camera of the same scene is explained to its noise
    plain = prepare_inputs(config, FusionInputs(hr_msi=_pair(truth)[0], lr_hsi=lr))
    assert tv_selection.srf_misfit(plain) < tv_selection.MAX_SRF_MISFIT


def test_at_most_four_bands_are_left_out_first_and_last_among_them():
    assert tv_selection.bands_left_out(3) == [0, 1, 2]
    assert tv_selection.bands_left_out(4) == [0, 1, 2, 3]
    assert tv_selection.bands_left_out(8) == [0, 2, 5, 7]
    assert tv_selection.bands_left_out(13) == [0, 4, 8, 12]


def test_tiled_mode_turns_the_choice_off_and_says_so():
    """Tiled runs fuse chunk by chunk with the scene's settings fixed first: the choice (a fusion
    of a crop of the whole pair) is not made there, and the run's notes say the configured
    weight runs."""
    from spectramorph_engine.scale.tiled import NOT_DONE, check_config, tiled_notes
    config = _config(hr_msi_file="a.npy", lr_hsi_file="b.npy", refine_tv_select=True)
    assert check_config(config).refine_tv_select is False
    assert any("refine_tv_select: false" in note for note in tiled_notes(config))
    assert any("refine_tv_select" in item for item in NOT_DONE)


def test_stop_during_the_choice_ends_the_run_at_once_and_writes_nothing(tmp_path):
    """The choice trains and refines several times: Stop pressed while it runs ends the run
    within a second, and no output appears."""
    import threading
    import time
    from spectramorph_engine import Cancelled
    hr, lr = _pair(_textured())
    cancel, asked = threading.Event(), []

    def progress(event):
        if isinstance(event, ev.StageProgress) and event.stage == "tv" and not asked:
            asked.append(time.perf_counter())       # a network of the choice is trained: stop now
            cancel.set()
    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        run_fusion(_config(output_dir=str(out), log_dir=str(tmp_path / "logs")), progress=progress, cancel=cancel,
                   inputs=FusionInputs(hr_msi=hr, lr_hsi=lr))
    assert asked and time.perf_counter() - asked[0] < 1.0
    assert not out.exists() or not any(out.iterdir())


def test_of_weights_within_the_margin_of_the_least_error_the_nearest_the_configured_wins():
    """Ties flip on noise: the held-out scene's aniso-r8c3 pair of seed 1 on the blind bench read
    2.5 and 5 within 0.1% of each other, and 2.5 lost 0.8 dB to 5 against the truth. So the
    weight nearest the configured one among those within MARGIN of the least error is chosen."""
    near = tv_selection.nearest_tie
    assert near({1.0: 904.2, 2.5: 854.3, 5.0: 854.9, 10.0: 929.4}, 10.0) == 5.0
    assert near({5.0: 99.0, 10.0: 100.0, 20.0: 101.0}, 10.0) == 10.0           # the configured one ties
    assert near({2.5: 97.0, 5.0: 98.5, 10.0: 100.0}, 10.0) == 5.0             # a slow fall: the first tie
    assert near({1.0: 50.0, 2.5: 80.0, 5.0: 90.0, 10.0: 100.0}, 10.0) == 1.0  # a clear winner far away
    assert near({5.0: 99.0, 10.0: 103.0, 20.0: 99.5}, 10.0) == 5.0            # two as near: the lower error


def test_a_zero_tv_weight_is_kept_without_a_choice():
    hr, lr = _pair(_textured())
    config = _config(refine_tv_weight=0.0)
    record = tv_selection.choose_tv_weight(config, prepare_inputs(config, FusionInputs(hr_msi=hr, lr_hsi=lr)))
    assert record["chosen"] == 0.0 and "refine_tv_weight is 0" in record["skipped"]
