"""GLP-HS (methods/glp.py) on pairs made from real library spectra."""
import threading

import numpy as np
import pytest

from spectramorph_engine.core import events as ev
from spectramorph_engine.quality import metrics
from spectramorph_engine.run.config import FusionConfig
from spectramorph_engine.sensors.degradation import bicubic_upsample, make_synthetic_pair
from spectramorph_engine.core.errors import Cancelled
from spectramorph_engine.methods import MethodOutput, get_method
from spectramorph_engine.run.results import PreparedInputs
from spectramorph_engine.sensors.psf import make_psf
from spectramorph_engine.sensors.srf import preset_srf

glp = get_method("glp")
CONFIG = FusionConfig(method="glp")
RATIO = 4


def _pair(truth, srf, psf, mode="synthetic"):
    truth, msi, lr = make_synthetic_pair(truth, psf, srf, RATIO, None, None, seed=0)
    return PreparedInputs(mode=mode, hr_msi=msi, lr_hsi=lr, srf=srf, ratio=RATIO, psf=psf, truth=truth)


@pytest.fixture(scope="module")
def scene(library_truth):
    """128 x 128 x 100 library scene with the default PSF (Gaussian sigma 3.4, 15 x 15)."""
    return library_truth(128, 100)


@pytest.fixture(scope="module")
def pair4(scene):
    truth, wl = scene
    return _pair(truth, preset_srf(4, truth.shape[2], wavelengths=wl), make_psf("gaussian", 3.4, 7))


def test_interface():
    assert glp.NAME == "glp" and glp.TITLE
    assert set(glp.USES) >= {"psf", "srf", "ignores"}
    assert "SRF" in glp.USES["srf"]


def test_recovers_noise_free_library_scene(pair4):
    out = glp.fuse(CONFIG, pair4, device="cpu")
    assert isinstance(out, MethodOutput)
    est = out.hr_hsi
    assert est.shape == pair4.truth.shape and est.dtype == np.float32
    assert est.min() >= 0.0 and est.max() <= 1.0
    fused = metrics.psnr(pair4.truth, est)
    bicubic = metrics.psnr(pair4.truth, bicubic_upsample(pair4.lr_hsi, RATIO))
    assert fused >= 35.0, fused
    assert fused > bicubic + 10.0, (fused, bicubic)
    assert metrics.sam(pair4.truth, est) < metrics.sam(pair4.truth, bicubic_upsample(pair4.lr_hsi, RATIO))
    # a least-squares synthetic band makes the regression gain close to 1
    assert 0.9 < out.info["gain_median"] < 1.1


def test_msi_that_is_one_truth_band_gives_that_band_back(scene):
    """c = 1 and the SRF picks band j: the LR band is exactly the low-passed MSI, so the
    regression is (1, 0), the gain 1 and band j = U(LR_j) + (MSI - U(D(MSI))) = truth_j."""
    truth, _ = scene
    truth = truth[:64, :64]
    j = 37
    srf = np.zeros((1, truth.shape[2]))
    srf[0, j] = 1.0
    prep = _pair(truth, srf, make_psf("gaussian", 2.0, 4))
    assert np.array_equal(prep.hr_msi[:, :, 0], prep.truth[:, :, j])
    band = glp.fuse(CONFIG, prep, device="cpu").hr_hsi[:, :, j]
    np.testing.assert_allclose(band, prep.truth[:, :, j], atol=1e-5)
    bicubic_err = np.abs(bicubic_upsample(prep.lr_hsi, RATIO)[:, :, j] - prep.truth[:, :, j]).max()
    assert bicubic_err > 0.05          # the band really needed the detail


def test_single_band_pan_beats_bicubic(scene):
    truth, wl = scene
    prep = _pair(truth[:64, :64], preset_srf(1, truth.shape[2], wavelengths=wl), make_psf("gaussian", 2.0, 4))
    est = glp.fuse(CONFIG, prep, device="cpu").hr_hsi
    assert metrics.psnr(prep.truth, est) > metrics.psnr(prep.truth, bicubic_upsample(prep.lr_hsi, RATIO)) + 2.0


def test_real_mode_mirrors_the_border(pair4):
    from dataclasses import replace
    out = glp.fuse(CONFIG, replace(pair4, mode="real", truth=None), device="cpu")
    assert out.info["boundary"] == "symmetric"
    assert np.isfinite(out.hr_hsi).all()


def test_progress_and_cancel(pair4):
    seen = []
    glp.fuse(CONFIG, pair4, device="cpu", progress=seen.append)
    fractions = [e.fraction for e in seen if isinstance(e, ev.StageProgress) and e.stage == "fuse"]
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)

    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        glp.fuse(CONFIG, pair4, device="cpu", cancel=stop)

    stop = threading.Event()

    def cancel_once_started(event):        # the user presses Cancel while it runs
        if isinstance(event, ev.StageProgress):
            stop.set()

    with pytest.raises(Cancelled):
        glp.fuse(CONFIG, pair4, device="cpu", progress=cancel_once_started, cancel=stop)


class _RowWriter:
    def __init__(self, shape):
        self.array = np.full(shape, np.nan, dtype=np.float32)

    def write_rows(self, row, block):
        self.array[row:row + block.shape[0]] = block


def test_out_hsi_equals_in_memory_result(pair4):
    ref = glp.fuse(CONFIG, pair4, device="cpu").hr_hsi
    target = np.zeros(ref.shape, dtype=np.float32)
    out = glp.fuse(CONFIG, pair4, device="cpu", out_hsi=target)
    assert out.hr_hsi is target
    np.testing.assert_array_equal(target, ref)
    writer = _RowWriter(ref.shape)
    assert glp.fuse(CONFIG, pair4, device="cpu", out_hsi=writer).hr_hsi is writer
    np.testing.assert_array_equal(writer.array, ref)
