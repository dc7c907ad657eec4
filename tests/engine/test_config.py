"""Config loading and validation: what a user typing a YAML file meets."""
from pathlib import Path

import pytest

from spectramorph_engine.run.config import FusionConfig, apply_overrides, from_dict, load_config, save_config
from spectramorph_engine.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_template_holds_every_key_at_its_default():
    assert load_config(ROOT / "resources" / "config_template.yaml") == FusionConfig()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip(tmp_path, suffix):
    cfg = FusionConfig(epochs=12, init_lr=2e-4, training_batch_size=None, wavelengths=[400.0, 500.0],
                       scheduler="flat", output_file_type="h5")
    save_config(cfg, tmp_path / f"c{suffix}")
    assert load_config(tmp_path / f"c{suffix}") == cfg


@pytest.mark.parametrize("override", ["sigma=nan", "snr_spatial=.nan", "refine_trust=.inf", "max_lr=inf",
                                      "nmf_tol=nan", "fwhm_factor=-.inf"])
def test_non_finite_numbers_are_refused_by_key(override):
    key = override.split("=")[0]
    with pytest.raises(InputError, match=f"'{key}' must be a finite number"):
        apply_overrides(FusionConfig(), [override])


def test_nan_nodata_is_kept_and_saves_as_strict_json(tmp_path):
    import json
    import math
    cfg = apply_overrides(FusionConfig(), ["nodata=nan"])
    assert math.isnan(cfg.nodata)
    save_config(cfg, tmp_path / "c.json")
    json.loads((tmp_path / "c.json").read_text(), parse_constant=lambda t: pytest.fail(f"bare {t} in JSON"))
    assert math.isnan(load_config(tmp_path / "c.json").nodata)


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


# ----------------------------------------------------------------------------- original configs
def _original_template(**changes) -> dict:
    """Every key of the original implementation's main.py template, none of ours."""
    from spectramorph_engine.run.config import ORIGINAL_KEYS
    d = {k: v for k, v in FusionConfig().to_dict().items() if k in ORIGINAL_KEYS}
    assert set(d) == set(ORIGINAL_KEYS)
    d.update(changes)
    return d


def test_an_original_config_with_tile_batches_is_refused_with_what_to_write(tmp_path):
    import yaml
    from spectramorph_engine.run.config import load_config
    p = tmp_path / "original.yaml"
    p.write_text(yaml.safe_dump(_original_template(training_batch_size=64, inference_batch_size=128)))
    with pytest.raises(InputError) as err:
        load_config(p)
    msg = str(err.value)
    assert "original.yaml" in msg and "original implementation" in msg and "\n" not in msg
    assert "64 x 64-pixel tiles" in msg and "training_batch_size: 4096" in msg
    assert "inference_batch_size: 16384" in msg and "null" in msg


def test_an_original_config_without_batch_sizes_runs_unchanged(tmp_path):
    import json
    from spectramorph_engine.run.config import load_config
    p = tmp_path / "original.json"
    p.write_text(json.dumps(_original_template(epochs=300)))
    assert load_config(p) == FusionConfig(epochs=300)


def test_our_configs_count_batch_sizes_in_pixels(tmp_path):
    import yaml
    from spectramorph_engine.run.config import load_config
    # one key of ours (scheduler) says the file is ours, whatever else it holds
    ours = _original_template(training_batch_size=64, scheduler="flat")
    (tmp_path / "ours.yaml").write_text(yaml.safe_dump(ours))
    assert load_config(tmp_path / "ours.yaml").training_batch_size == 64
    # a short hand-written file is not the original's template either
    (tmp_path / "short.yaml").write_text("epochs: 10\ntraining_batch_size: 64\n")
    assert load_config(tmp_path / "short.yaml").training_batch_size == 64


def test_spec_prior_null_means_auto_and_true_false_force_it(tmp_path):
    from spectramorph_engine.run.config import from_dict
    assert from_dict({"spec_prior": None}).spec_prior == "auto" == FusionConfig().spec_prior
    assert from_dict({"spec_prior": "auto"}).prior_choice == "auto"
    auto = FusionConfig()
    assert auto.use_prior_for(1, 4) and auto.use_prior_for(2, 4)
    assert not auto.use_prior_for(3, 4) and not auto.use_prior_for(1, 8)
    assert FusionConfig(spec_prior=True).use_prior_for(8, 16)
    assert not FusionConfig(spec_prior=False).use_prior_for(1, 4)
    with pytest.raises(InputError, match="spec_prior"):
        from_dict({"spec_prior": "sometimes"})


def test_refine_subspace_is_a_number_or_null_and_auto_names_null():
    assert apply_overrides(FusionConfig(), ["refine_subspace=auto"]).refine_subspace is None
    assert from_dict({"refine_subspace": "AUTO"}).refine_subspace is None
    assert from_dict({"refine_subspace": 12}).refine_subspace == 12
    assert from_dict({"refine_subspace": None}).refine_subspace is None is FusionConfig().refine_subspace
    for bad in ("sometimes", 0, True):
        with pytest.raises(InputError, match="refine_subspace"):
            from_dict({"refine_subspace": bad})


def test_method_and_quality_keys_round_trip_through_yaml(tmp_path):
    cfg = FusionConfig(method="hysure", hysure_tv_weight=2e-3, endmember_method="minvol", refine=False,
                       refine_tv_weight=0.0, refine_subspace=12, auto_select=False, spec_prior=False)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    with pytest.raises(InputError, match="method"):
        FusionConfig(method="magic")
