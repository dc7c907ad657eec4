"""Config loading and validation: what a user typing a YAML file meets."""
from pathlib import Path

import pytest

from spectramorph_engine.config import (FusionConfig, apply_overrides, from_dict, load_config,
                                        save_config)
from spectramorph_engine.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_template_holds_every_key_at_its_default():
    assert load_config(ROOT / "resources" / "config_template.yaml") == FusionConfig()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip(tmp_path, suffix):
    cfg = FusionConfig(epochs=12, init_lr=2e-4, training_batch_size=None, wavelengths=[400.0, 500.0],
                       scheduler="flat", output_file_type="h5")
    save_config(cfg, tmp_path / f"c{suffix}")
    assert load_config(tmp_path / f"c{suffix}") == cfg


def test_overrides_parse_like_yaml():
    cfg = apply_overrides(FusionConfig(), ["epochs=10", "init_lr=1e-4", "training_batch_size=4096",
                                           "spec_prior=true", "inference_batch_size=null"])
    assert (cfg.epochs, cfg.init_lr, cfg.training_batch_size, cfg.spec_prior) == (10, 1e-4, 4096, True)
    assert cfg.inference_batch_size is None


@pytest.mark.parametrize("bad, words", [
    ({"epochz": 1}, ["epochz"]),
    ({"epochs": 0}, ["epochs", ">= 1"]),
    ({"init_lr": -1}, ["init_lr", "> 0"]),
    ({"training_batch_size": 0}, ["training_batch_size"]),
    ({"num_endmembers": 0}, ["num_endmembers"]),
    ({"scheduler": "cosine"}, ["scheduler", "one_cycle", "flat"]),
    ({"output_file_type": "csv"}, ["output_file_type", "numpy", "matlab", "h5"]),
    ({"psf_type": "box"}, ["psf_type", "gaussian", "delta"]),
    ({"epochs": "many"}, ["epochs", "integer"]),
    ({"downsample_ratio": 1}, ["downsample_ratio"]),
    ({"provide_srf": True}, ["srf_file"]),
])
def test_bad_values_name_the_key_and_what_is_allowed(bad, words):
    with pytest.raises(InputError) as info:
        from_dict(bad)
    for word in words:
        assert word in str(info.value)


def test_unparsable_and_empty_files(tmp_path):
    (tmp_path / "a.yaml").write_text("epochs: [1, 2\n")
    with pytest.raises(InputError, match="a.yaml"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "e.yaml").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_config(tmp_path / "e.yaml")
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
