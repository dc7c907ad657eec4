"""Quality without ground truth: consistency figures, Wald's protocol, warnings."""
from pathlib import Path

import numpy as np
import pytest

from spectramorph_engine.quality import consistency as cons
from spectramorph_engine.core.errors import InputError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
URBAN = DATA / "subimage_Urban_R162.mat"
needs_urban = pytest.mark.skipif(not (URBAN.exists() and (DATA / "Ikonos_spec_resp.mat").exists()),
                                 reason="../shared/data (Urban cube, IKONOS responses) not present")


def _gauss_psf(sigma=1.0, k=3):
    y, x = np.mgrid[-k:k + 1, -k:k + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return g / g.sum()


@pytest.fixture(scope="module")
def scene():
    """A smooth 48 x 48 x 30 scene of 4 materials, its SRF, PSF and noisy inputs (35/40 dB)."""
    from spectramorph_engine.sensors.degradation import add_awgn, apply_srf, area_downsample, blur
    rng = np.random.default_rng(0)
    H = W = 48
    C = 30
    idx = np.arange(C)
    spectra = np.stack([0.2 + 0.6 * np.exp(-0.5 * ((idx - c) / 6.0) ** 2) for c in (3, 12, 20, 27)])
    yy, xx = np.mgrid[0:H, 0:W] / H
    ab = np.stack([np.sin(3 * xx) ** 2, np.cos(2 * yy) ** 2, (xx * yy), (xx > 0.5) * 0.8], axis=-1)
    ab /= ab.sum(axis=-1, keepdims=True)
    truth = (ab @ spectra).astype(np.float32)
    srf = np.stack([np.exp(-0.5 * ((idx - c) / 3.0) ** 2) for c in (6, 15, 24)])
    srf /= srf.sum(axis=1, keepdims=True)
    psf = _gauss_psf()
    r = 2
    hr_msi = np.asarray(add_awgn(np.asarray(apply_srf(truth, srf), np.float32), 40.0, rng), np.float32)
    lr_hsi = np.asarray(add_awgn(np.asarray(area_downsample(blur(truth, psf), r), np.float32), 35.0, rng),
                        np.float32)
    return dict(truth=truth, srf=srf, psf=psf, ratio=r, hr_msi=hr_msi, lr_hsi=lr_hsi)


def test_truth_is_consistent_with_its_own_inputs(scene):
    s = scene
    lr = cons.lr_consistency(s["truth"], s["lr_hsi"], s["ratio"], s["psf"])
    msi = cons.msi_consistency(s["truth"], s["hr_msi"], s["srf"])
    assert set(lr) == {"PSNR", "SAM"} and set(msi) == {"PSNR", "SAM"}
    assert lr["PSNR"] > 35.0 and lr["SAM"] < 2.0, lr        # only the 35 dB noise remains
    assert msi["PSNR"] > 40.0 and msi["SAM"] < 1.0, msi


def test_bad_results_score_clearly_lower(scene):
    s = scene
    good = cons.lr_consistency(s["truth"], s["lr_hsi"], s["ratio"], s["psf"])
    good_msi = cons.msi_consistency(s["truth"], s["hr_msi"], s["srf"])
    shifted = np.roll(s["truth"], (3, 3), axis=(0, 1))
    scrambled = s["truth"][:, :, np.random.default_rng(1).permutation(s["truth"].shape[2])]
    for bad in (shifted, scrambled):
        lr = cons.lr_consistency(bad, s["lr_hsi"], s["ratio"], s["psf"])
        msi = cons.msi_consistency(bad, s["hr_msi"], s["srf"])
        assert lr["PSNR"] < good["PSNR"] - 8.0 and msi["PSNR"] < good_msi["PSNR"] - 8.0, (lr, msi)
    lr_scr = cons.lr_consistency(scrambled, s["lr_hsi"], s["ratio"], s["psf"])
    assert lr_scr["SAM"] > 5 * good["SAM"]


def test_msi_consistency_single_band_and_offset(scene):
    s = scene
    pan = s["hr_msi"][:, :, :1] * 2.0 + 0.1
    srf1 = s["srf"][:1] * 2.0
    out = cons.msi_consistency(s["truth"], pan, srf1, offset=[0.1])
    assert set(out) == {"PSNR"} and out["PSNR"] > 35.0
    assert cons.msi_consistency(s["truth"], pan, srf1)["PSNR"] < out["PSNR"] - 10


def test_bicubic_consistency_is_reported_beside(scene):
    s = scene
    b = cons.bicubic_consistency(s["lr_hsi"], s["hr_msi"], s["srf"], s["ratio"], s["psf"])
    assert set(b) == {"lr", "msi"} and set(b["lr"]) == {"PSNR", "SAM"}
    truth_lr = cons.lr_consistency(s["truth"], s["lr_hsi"], s["ratio"], s["psf"])
    assert b["lr"]["PSNR"] < truth_lr["PSNR"]          # bicubic does not invert the blur


def test_reduced_resolution_inputs_shapes_and_crop():
    psf = _gauss_psf()
    hr = np.random.default_rng(0).random((34, 78, 4)).astype(np.float32)
    lr = np.random.default_rng(1).random((17, 39, 20)).astype(np.float32)
    hr_red, lr_red, lr_ref = cons.reduced_resolution_inputs(hr, lr, 2, psf)
    assert hr_red.shape == (16, 38, 4)           # 17 x 39 cropped to 16 x 38
    assert lr_red.shape == (8, 19, 20)
    assert lr_ref.shape == (16, 38, 20) and np.array_equal(lr_ref, lr[:16, :38])
    hr_red, lr_red, lr_ref = cons.reduced_resolution_inputs(np.zeros((64, 48, 3)), np.zeros((16, 12, 9)), 4, psf)
    assert hr_red.shape == (16, 12, 3) and lr_red.shape == (4, 3, 9) and lr_ref.shape == (16, 12, 9)
    with pytest.raises(InputError, match="not 2x apart"):
        cons.reduced_resolution_inputs(hr[:33], lr, 2, psf)
    with pytest.raises(InputError, match="too small"):
        cons.reduced_resolution_inputs(np.zeros((12, 12, 3)), np.zeros((3, 3, 9)), 4, psf)


def test_reduced_resolution_score(scene):
    s = scene
    hr_red, lr_red, lr_ref = cons.reduced_resolution_inputs(s["hr_msi"], s["lr_hsi"], s["ratio"], s["psf"])
    perfect = cons.reduced_resolution_score(lr_ref, s["lr_hsi"], s["ratio"])
    assert {"PSNR", "SAM", "RMSE"} <= set(perfect) and perfect["RMSE"] == pytest.approx(0.0, abs=1e-7)
    from spectramorph_engine.sensors.degradation import bicubic_upsample
    upsampled = bicubic_upsample(lr_red, s["ratio"])
    bic = cons.reduced_resolution_score(upsampled, s["lr_hsi"], s["ratio"])
    # scored against the original LR-HSI (cropped to the reduced grid), every SPEC metric
    from spectramorph_engine.quality import metrics
    assert bic == pytest.approx(metrics.compute_all(lr_ref, upsampled, s["ratio"]), rel=1e-9)
    # bicubic cannot undo the 2x blur + downsampling: about 27 dB here (seeded scene), far from
    # the perfect score and from the 35 dB noise floor of the LR-HSI
    assert 26.0 < bic["PSNR"] < 28.0 and 1.0 < bic["SAM"] < 1.8


def test_quality_warnings_wording_and_thresholds():
    w = cons.quality_warnings(11.2, {"PSNR": 40.0, "SAM": 1.0}, {"PSNR": 40.0, "SAM": 1.0})
    assert len(w) == 1 and "11.2 dB" in w[0] and "srf_source: estimate" in w[0]
    assert cons.quality_warnings(38.0, {"PSNR": 40.0, "SAM": 1.0}, {"PSNR": 40.0}) == []
    w = cons.quality_warnings(None, {"PSNR": 22.0, "SAM": 3.0}, {"PSNR": 40.0, "SAM": 12.0})
    assert len(w) == 2 and "LR-HSI" in w[0] and "HR-MSI" in w[1]
    assert cons.quality_warnings(20.0, thresholds={"srf_fit_psnr_db": 15.0}) == []
    assert cons.quality_warnings(None, None, None) == []


@needs_urban
def test_warnings_fire_for_the_preset_on_the_real_camera_not_for_the_estimate():
    from spectramorph_engine.sensors import srf_estimation as se
    from spectramorph_engine.sensors import srf_fit as sf
    from spectramorph_engine.sensors.degradation import normalize_percentile
    from spectramorph_engine.sensors.scenarios import real_camera_scenario
    from spectramorph_engine.sensors.srf import preset_srf
    sc = real_camera_scenario(URBAN)
    hr, lr = normalize_percentile(sc["hr_msi"]), normalize_percentile(sc["lr_hsi"])
    preset = sf.preset_fit(hr, lr, 2, preset_srf(4, 162))
    est = se.estimate_srf(hr, lr, 2)
    assert any("SRF explains the HR-MSI poorly" in m for m in cons.quality_warnings(preset["psnr"]))
    assert cons.quality_warnings(est.psnr) == []
    # the true HR-HSI against the scenario's own (raw-scale) inputs
    truth = sc["truth"]
    assert cons.lr_consistency(truth, sc["lr_hsi"], 2, sc["psf"])["PSNR"] > 35.0
    raw_est = se.estimate_srf(sc["hr_msi"], sc["lr_hsi"], 2)
    assert np.allclose(raw_est.psf, sc["psf"], atol=1e-6)       # the blur found is the one used
    good = cons.msi_consistency(truth, sc["hr_msi"], raw_est.srf, offset=raw_est.offset)
    linear = cons.msi_consistency(truth, sc["hr_msi"], sc["true_srf"])   # ignores the gamma
    assert good["PSNR"] > 35.0 and linear["PSNR"] < good["PSNR"] - 15.0, (good, linear)


@pytest.mark.parametrize("block_rows", [None, 5])
def test_band_chunked_figures_equal_whole_cube_figures(block_rows, monkeypatch):
    """consistency_from_latent (used for results too big to hold) = the whole-cube functions;
    also when its statistics and SAM go a few rows at a time (5 of 24, the last block short)."""
    from spectramorph_engine.quality import consistency
    from spectramorph_engine.quality.consistency import (bicubic_consistency, consistency_from_latent,
                                                         lr_consistency, msi_consistency)
    if block_rows:
        monkeypatch.setattr(consistency, "STATS_BLOCK_BYTES", 8 * 16 * block_rows)
    from spectramorph_engine.sensors.psf import make_psf
    rng = np.random.default_rng(1)
    alle = rng.random((24, 16, 3), dtype=np.float32)
    E = rng.random((3, 11), dtype=np.float32) * 0.6
    result = np.clip(alle @ E, 0, 1)
    lr = rng.random((6, 4, 11), dtype=np.float32)
    msi = rng.random((24, 16, 2), dtype=np.float32)
    srf = rng.random((2, 11))
    srf /= srf.sum(1, keepdims=True)
    psf = make_psf("gaussian", 1.0, 2)
    offset = np.array([0.01, -0.02])
    got = consistency_from_latent(alle, E, lr, msi, srf, 4, psf, offset=offset, band_chunk=4)
    want_lr = lr_consistency(result, lr, 4, psf)
    want_msi = msi_consistency(result, msi, srf, offset=offset)
    want_bic = bicubic_consistency(lr, msi, srf, 4, psf, offset=offset)
    for key in ("PSNR", "SAM"):
        assert got["lr_consistency"][key] == pytest.approx(want_lr[key], rel=1e-5)
        assert got["msi_consistency"][key] == pytest.approx(want_msi[key], rel=1e-5)
        assert got["bicubic"]["lr"][key] == pytest.approx(want_bic["lr"][key], rel=1e-5)
        assert got["bicubic"]["msi"][key] == pytest.approx(want_bic["msi"][key], rel=1e-5)


def test_a_real_pairs_result_is_degraded_back_as_the_pair_was_made():
    """A real sensor sees past the frame: its LR-HSI has no dark border. Degraded back with zeros
    past the frame, a good result darkened along the border and every outer LR pixel of the
    misfit map read ~30x the interior; the LR consistency read 30 dB for a 53 dB result."""
    from spectramorph_engine import FusionConfig, run_fusion
    from spectramorph_engine.sensors.degradation import area_downsample, blur
    from spectramorph_engine.run.demo import demo_scene
    from spectramorph_engine.run.pipeline import FusionInputs
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.srf import preset_srf
    truth, wl = demo_scene(size=64, num_bands=40, seed=1)
    psf = make_psf("gaussian", 1.5, 7)
    p = psf.shape[0] // 2
    seen = np.asarray(blur(np.pad(truth, ((p, p), (p, p), (0, 0)), mode="edge"), psf))[p:-p, p:-p]
    lr = area_downsample(seen, 4).astype(np.float32)
    srf = preset_srf(4, 40, wavelengths=wl)
    hr = (truth.reshape(-1, 40) @ srf.T).reshape(64, 64, 4).astype(np.float32)
    cfg = FusionConfig(synthetic=False, method="glp", wavelengths=[float(v) for v in wl], auto_select=False)
    res = run_fusion(cfg, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr), write_outputs=False)
    assert res.prepared.boundary == "free"
    misfit = res.misfit[..., 1]
    ring = np.concatenate([misfit[0], misfit[-1], misfit[1:-1, 0], misfit[1:-1, -1]])
    assert np.nanmean(ring) < 2 * np.nanmean(misfit[1:-1, 1:-1])
    assert res.consistency["lr_consistency"]["PSNR"] > 40


@pytest.mark.parametrize("boundary, clipped_limit", [("zero", 1.0), ("free", 1.0), ("free", 0.0)])
def test_degrading_the_latents_once_gives_the_figures_of_degrading_every_band(boundary, clipped_limit,
                                                                               monkeypatch):
    """consistency_from_latent sees the result through the K latent maps (both sensors are
    linear) and adds the clip's changes, kept sparse: figures and LR error map equal those of
    making, blurring and projecting each clipped band, with some bands clipped and some not;
    and the same when the clip changes too much and the bands are made after all."""
    from spectramorph_engine.quality import latent_prediction
    from spectramorph_engine.quality.consistency import consistency_by_bands, consistency_from_latent
    monkeypatch.setattr(latent_prediction, "MAX_CLIPPED_FRACTION", clipped_limit)
    # blocks of 5 rows (the last one short) and the 3 maps blurred 2 + 1: the pieces must join
    monkeypatch.setattr(latent_prediction, "ROW_BLOCK_BYTES", 4 * 24 * 13 * 5)
    monkeypatch.setattr(latent_prediction, "MAPS_PER_BLUR", 2)
    made = []
    monkeypatch.setattr(latent_prediction, "LatentPrediction",
                        lambda *a, cls=latent_prediction.LatentPrediction: made.append(cls(*a)) or made[-1])
    from spectramorph_engine.sensors.psf import make_psf
    rng = np.random.default_rng(4)
    alle = rng.random((32, 24, 3), dtype=np.float32)
    E = rng.random((3, 13), dtype=np.float32) * 0.7
    E[:, 5:9] *= 0.4                   # these bands never reach the clip at 1
    assert (alle @ E)[..., 5:9].max() < 1 < (alle @ E)[..., :5].max()
    lr = rng.random((8, 6, 13), dtype=np.float32)
    msi = rng.random((32, 24, 2), dtype=np.float32)
    srf = rng.random((2, 13))
    srf /= srf.sum(1, keepdims=True)
    psf = np.asarray(make_psf("gaussian", 1.3, 3))
    psf = np.roll(psf, 1, axis=1)      # off-centre: a kernel flipped by mistake would show
    fused = np.clip(alle @ E, 0.0, 1.0)
    kw = dict(offset=np.array([0.01, -0.02]), band_chunk=3, boundary=boundary)
    got = consistency_from_latent(alle, E, lr, msi, srf, 4, psf, value_range=(0.0, 1.0), **kw)
    want = consistency_by_bands(lambda b0, b1: fused[:, :, b0:b1], fused.shape, lr, msi, srf, 4, psf, **kw)
    for part in ("lr_consistency", "msi_consistency"):
        for key in ("PSNR", "SAM"):
            assert got[part][key] == pytest.approx(want[part][key], rel=1e-6)
    np.testing.assert_allclose(got["_lr_error_map"], want["_lr_error_map"], rtol=1e-5, atol=1e-7)
    assert len(made) == (clipped_limit > 0)
    if made:                       # the clipped values were kept, and only those
        assert made[0].values.size == int(np.count_nonzero(fused != alle @ E))


@pytest.mark.parametrize("r, ksize, boundary, shape", [(4, 7, "zero", (40, 36)), (4, 33, "free", (44, 52)),
                                                        (2, 9, "free", (30, 31)), (3, 1, "zero", (33, 36)),
                                                        (8, 17, "zero", (40, 40)), (4, 5, "free", (9, 40))])
def test_the_bicubic_baseline_degraded_on_the_lr_grid_equals_the_literal_chain(r, ksize, boundary, shape):
    """quality/bicubic_lr: bicubic upsampling, blur and block mean run as one LR-grid convolution
    inside and as the chain itself on border strips: the same LR cube as upsampling every band,
    blurring it and downsampling it (off-centre kernels, both border rules, several ratios, an
    image thinner than its border strips)."""
    from spectramorph_engine.quality.bicubic_lr import BicubicDegraded
    from spectramorph_engine.quality.consistency import _degrade
    from spectramorph_engine.sensors.degradation import bicubic_upsample
    rng = np.random.default_rng(ksize)
    y, x = np.mgrid[:ksize, :ksize] - ksize // 2
    psf = np.exp(-((y - 0.8) ** 2 / 6.0 + (x + 0.5) ** 2 / 3.0)) * (1 + 0.2 * rng.random((ksize, ksize)))
    psf /= psf.sum()
    lr = rng.random((*shape, 5), dtype=np.float32)

    def degrade(cube):
        return _degrade(cube, r, psf, boundary)
    want = degrade(bicubic_upsample(lr, r))
    got = BicubicDegraded(r, ksize // 2, degrade)(lr)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6)
