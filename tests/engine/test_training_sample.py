"""max_training_pixels: training on a fixed, seeded sample spread over the image (issue 20 item 1)."""
import json
import logging

import numpy as np
import pytest

from spectramorph_engine import FusionConfig, FusionInputs, run_fusion
from spectramorph_engine.core.errors import InputError
from spectramorph_engine.methods.spectramorph.training import spread_sample
from spectramorph_engine.run.config import from_dict


@pytest.mark.parametrize("h, w, cap", [(100, 100, 400), (37, 91, 250), (64, 64, 4095)])
def test_the_sample_has_exactly_cap_distinct_pixels_and_depends_only_on_the_seed(h, w, cap):
    pos = np.arange(h * w)
    s = spread_sample(pos, h, w, cap, seed=3)
    assert s.size == cap and np.unique(s).size == cap and np.all(np.diff(s) > 0)
    assert np.array_equal(s, spread_sample(pos, h, w, cap, seed=3))
    assert not np.array_equal(s, spread_sample(pos, h, w, cap, seed=4))


def test_every_area_of_the_image_is_represented():
    h, w = 120, 80
    s = spread_sample(np.arange(h * w), h, w, 600, seed=0)          # one pixel per 16 on average
    rows, cols = s // w, s % w
    counts = np.zeros((h // 8, w // 8), int)                         # 8 x 8 blocks: about 4 samples each
    np.add.at(counts, (rows // 8, cols // 8), 1)
    assert counts.min() >= 2 and counts.max() <= 6
    # a plain random draw of as many pixels leaves such blocks empty or crowded; this one does not


def test_only_pixels_with_data_are_sampled_and_no_cap_means_all():
    h, w = 50, 60
    valid = np.ones((h, w), bool)
    valid[:, :20] = False                                            # a band of no data on the left
    pos = np.flatnonzero(valid)
    s = spread_sample(pos, h, w, 300, seed=1)
    assert s.size == 300 and s.max() < pos.size
    assert np.all(valid.reshape(-1)[pos[s]])
    cols = pos[s] % w
    assert cols.min() < 25 and cols.max() > 55                        # spread over what has data
    assert spread_sample(pos, h, w, None, 1) is None
    assert spread_sample(pos, h, w, pos.size, 1) is None               # a cap at the count: all pixels


@pytest.mark.parametrize("value", [0, -5])
def test_config_refuses_a_cap_below_one(value):
    with pytest.raises(InputError, match="max_training_pixels"):
        from_dict({"max_training_pixels": value})
    assert from_dict({"max_training_pixels": None}).max_training_pixels is None
    assert from_dict({"max_training_pixels": 4096}).max_training_pixels == 4096


def _run(tmp_path, name, **changes):
    from spectramorph_engine.run.demo import demo_scene
    truth, wl = demo_scene(size=48, num_bands=30)                    # ratio 4: 12 x 12 = 144 LR pixels
    cfg = FusionConfig(**{"epochs": 30, "hidden_size": 32, "num_endmembers": 4, "device": "cpu",
                          "auto_select": False, "refine_iterations": 5, "output_dir": str(tmp_path / name),
                          "log_dir": str(tmp_path / "logs"), **changes})
    return run_fusion(cfg, inputs=FusionInputs(truth=truth, wavelengths=wl), write_outputs=name != "")


@pytest.mark.parametrize("prior", [False, True])
def test_a_cap_at_or_above_the_pixel_count_changes_nothing(tmp_path, prior):
    base = _run(tmp_path, "", spec_prior=prior, max_training_pixels=None)
    for cap in (144, 10 ** 6):
        capped = _run(tmp_path, "", spec_prior=prior, max_training_pixels=cap)
        assert np.array_equal(capped.hr_hsi, base.hr_hsi)
        assert capped.loss_history == base.loss_history
        assert capped.method_info["training"]["pixels"] == 144


@pytest.mark.parametrize("prior", [False, True])
def test_a_cap_trains_on_that_many_pixels_reproducibly_and_says_so(tmp_path, caplog, prior):
    with caplog.at_level(logging.INFO, logger="spectramorph_engine"):
        a = _run(tmp_path, "a", spec_prior=prior, max_training_pixels=50)
    b = _run(tmp_path, "", spec_prior=prior, max_training_pixels=50)
    full = _run(tmp_path, "", spec_prior=prior, max_training_pixels=None)
    training = a.method_info["training"]
    assert (training["pixels"], training["pixels_available"], training["max_training_pixels"]) == (50, 144, 50)
    assert np.array_equal(a.hr_hsi, b.hr_hsi) and a.loss_history == b.loss_history
    assert a.loss_history != full.loss_history
    assert a.hr_hsi.shape == full.hr_hsi.shape and np.isfinite(a.hr_hsi).all()
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["method_info"]["training"]["pixels"] == 50
    assert "training on a sample of 50 of 144 LR pixels" in caplog.text
    assert "on 50 LR pixels" in caplog.text
