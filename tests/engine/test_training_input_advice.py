"""A poorly fitting SRF: the warning's advice agrees with the training-input choice (both come
from blur_verdict) and never suggests a setting already in use."""
import dataclasses

import numpy as np
import pytest

from spectramorph_engine import FusionConfig, FusionInputs, prepare_inputs
from spectramorph_engine.sensors import srf_estimation as se
from spectramorph_engine.sensors import srf_fit as sf


def _pair(blur_sigma, noise=0.0):
    from spectramorph_engine.sensors.degradation import make_synthetic_pair
    from spectramorph_engine.run.demo import demo_scene
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.srf import preset_srf
    truth, _ = demo_scene(size=64, num_bands=40, seed=3)
    _, hr, lr = make_synthetic_pair(truth, make_psf("gaussian", blur_sigma, 8), preset_srf(3, 40), 4, 60, 60, 3)
    if noise:
        hr = (hr + noise * np.random.default_rng(0).random(hr.shape)).astype(np.float32)
    return hr, lr


@pytest.fixture
def poor_fit(monkeypatch):
    """The SRF estimated on the pair reports a 20 dB fit (below POOR_SRF_FIT_DB); its blur
    and R^2 (what the training-input rule reads) are the real ones."""
    real = se.estimate_srf

    def estimate(*args, **kw):
        est = real(*args, **kw)
        return dataclasses.replace(est, psnr_db=np.full_like(est.psnr_db, 20.0))
    monkeypatch.setattr(se, "estimate_srf", estimate)


def _srf_warning(prep):
    found = [w for w in prep.warnings if "explains the HR-MSI poorly" in w]
    assert len(found) == 1, prep.warnings
    return found[0]


def test_auto_chose_srf_for_an_uncertain_blur_and_the_advice_agrees(poor_fit):
    # a wide blur and a noisy HR-MSI: the best width is the widest tried, the fit is weak
    hr, lr = _pair(blur_sigma=3.0, noise=1.0)
    prep = prepare_inputs(FusionConfig(synthetic=False), FusionInputs(hr_msi=hr, lr_hsi=lr))
    assert prep.srf_estimate is not None and prep.training_input == "srf"
    text = _srf_warning(prep)
    trusted, why = sf.blur_verdict(prep.srf_estimate)
    assert not trusted
    # the estimate is already in use: not suggested again
    assert "srf_source: estimate" not in text
    # msi_lr is not offered as the fix the choice rejected; the warning says why it was not chosen
    assert "msi_lr) was not chosen: " + why in text
    assert "Try training_input: msi_lr" not in text and "; or training_input: msi_lr" not in text
    # what it does suggest is not in use
    assert "psf_file" in text and "srf_file" in text


def test_a_forced_srf_input_with_a_trusted_blur_points_to_msi_lr(poor_fit):
    hr, lr = _pair(blur_sigma=1.0)
    prep = prepare_inputs(FusionConfig(synthetic=False), FusionInputs(hr_msi=hr, lr_hsi=lr))
    assert prep.training_input == "msi_lr"               # auto: the blur is trusted, no SRF warning
    assert not [w for w in prep.warnings if "explains the HR-MSI poorly" in w]
    forced = prepare_inputs(FusionConfig(synthetic=False, training_input="srf"), FusionInputs(hr_msi=hr, lr_hsi=lr))
    text = _srf_warning(forced)
    assert "training_input: msi_lr (" in text and "srf_source: estimate" not in text
    assert "was not chosen" not in text and "no safer" not in text


@pytest.mark.parametrize("source, in_use, not_in_use", [
    ("estimate", ["srf_source: estimate"], ["srf_file", "msi_camera"]),
    ("preset", [], ["srf_source: estimate", "srf_file", "msi_camera"]),
    ("camera", ["msi_camera"], ["srf_source: estimate", "srf_file"]),
    ("file", ["srf_file", "msi_camera"], ["srf_source: estimate"]),
])
def test_the_advice_names_only_settings_not_in_use(source, in_use, not_in_use):
    for blur in (None, (True, "the blur is clearly identified"), (False, "the blur is uncertain")):
        text = sf.poor_srf_warning(18.0, source, "auto", blur)
        for setting in in_use:
            assert setting not in text, (setting, text)
        for setting in not_in_use:
            assert setting in text, (setting, text)
        if blur is not None and blur[0]:
            assert "training_input: msi_lr (the blur is clearly identified" in text
        if blur is not None and not blur[0]:
            assert "the blur is uncertain" in text and "then training_input: msi_lr" in text
    # a PSF file gives the blur: msi_lr is safe whatever the fitted blur looked like
    text = sf.poor_srf_warning(18.0, source, "srf", (False, "the blur is uncertain"), psf_given=True)
    assert "training_input: msi_lr (the PSF file" in text and "psf_file, provide_psf" not in text
