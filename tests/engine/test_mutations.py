"""Mutations a review found unseen by the other tests (issue 17 item 3), each pinned here where no
other file is the natural home.

The network's training input and the refinement must use ONE model of the HR-MSI: the LR-HSI
seen through prep.msi_model() (SRF with the gain and offset fitted on a real pair). A slip in
how methods.spectramorph.training_input_lr applies the fitted gain/offset of an SRF file or
camera (e.g. the offset subtracted) trained the network on an input the HR-MSI never looks
like, and no test looked at that branch.
"""
import numpy as np
import pytest

from spectramorph_engine.quality.consistency import _degrade
from spectramorph_engine.methods.spectramorph import training_input_lr
from spectramorph_engine.run.pipeline import PreparedInputs
from spectramorph_engine.sensors.srf_estimation import SrfEstimate


def _prep(**kw):
    rng = np.random.default_rng(0)
    C, c = 12, 3
    srf = rng.random((c, C))
    srf /= srf.sum(axis=1, keepdims=True)
    base = dict(mode="real", hr_msi=rng.random((16, 16, c)).astype(np.float32),
                lr_hsi=rng.random((4, 4, C)).astype(np.float32), srf=srf, ratio=4, psf=np.ones((1, 1)),
                training_input="srf")
    base.update(kw)
    return PreparedInputs(**base)


def _through_msi_model(prep):
    srf, offset = prep.msi_model()
    return prep.lr_hsi.astype(np.float64) @ srf.T + offset


@pytest.mark.parametrize("branch", ["plain", "gain_offset", "estimate"])
def test_training_input_is_the_lr_hsi_through_the_msi_model(branch):
    kw = {}
    if branch == "gain_offset":
        kw["srf_gain_offset"] = (np.array([1.3, 0.7, 2.0]), np.array([0.05, -0.2, 0.4]))
    elif branch == "estimate":
        rng = np.random.default_rng(1)
        kw["srf_estimate"] = SrfEstimate(srf=rng.random((3, 12)) * 0.3, offset=np.array([0.1, -0.05, 0.2]),
                                         psf_sigma=1.0, psnr_db=np.zeros(3), r2=np.zeros(3),
                                         smoothness=np.zeros(3))
    prep = _prep(**kw)
    out = training_input_lr(prep)
    assert out.shape == (4, 4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, _through_msi_model(prep), rtol=1e-5, atol=1e-6)
    if branch != "plain":       # the model's offset matters: it is not the plain SRF
        assert np.abs(out - prep.lr_hsi @ prep.srf.T).max() > 0.04


def test_msi_lr_training_input_is_the_hr_msi_degraded():
    psf = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    prep = _prep(training_input="msi_lr", psf=psf)
    np.testing.assert_allclose(training_input_lr(prep), _degrade(prep.hr_msi, 4, psf), atol=1e-7)
