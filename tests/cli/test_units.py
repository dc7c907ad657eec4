"""Real-world results come back in the LR-HSI's own units, nothing clipped (issue 10, item 1).

The pair is in reflectance units (0..0.6): a USGS-library scene scaled by 0.6, with one HR
pixel three times brighter than the scene's 99th percentile (a roof in the sun). It is
written to .npy files and fused through the CLI, as a user would.
"""
import json

import numpy as np
import pytest
import yaml

from spectramorph_engine.sensors.degradation import apply_srf, area_downsample, blur
from spectramorph_engine.sensors.psf import make_psf
from spectramorph_engine.sensors.srf import preset_srf

from test_cli import run_cli

RATIO = 4
BRIGHT = (13, 22)       # the bright HR pixel


@pytest.fixture(scope="module")
def reflectance_pair(library_truth, tmp_path_factory):
    truth, wl = library_truth(64, 60)
    truth = (0.6 * truth).astype(np.float32)
    p99 = float(np.percentile(truth, 99))
    truth[BRIGHT] = 3.0 * p99 * truth[BRIGHT] / truth[BRIGHT].mean()
    hr_msi = apply_srf(truth, preset_srf(4, truth.shape[2], wavelengths=wl)).astype(np.float32)
    lr_hsi = area_downsample(blur(truth, make_psf("gaussian", 1.0, 5)), RATIO).astype(np.float32)
    folder = tmp_path_factory.mktemp("units")
    np.save(folder / "hr_msi.npy", hr_msi)
    np.save(folder / "lr_hsi.npy", lr_hsi)
    np.save(folder / "wavelengths.npy", wl)
    return folder, truth, wl


def _run(folder, name, **extra):
    cfg = {"synthetic": False, "hr_msi_file": str(folder / "hr_msi.npy"), "lr_hsi_file": str(folder / "lr_hsi.npy"),
           "wavelengths": str(folder / "wavelengths.npy"), "epochs": 300, "hidden_size": 64,
           "auto_select": False, "device": "cpu", "output_dir": str(folder / name),
           "log_dir": str(folder / f"{name}_logs"), **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_cli("run", "--config", str(path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return np.load(folder / name / "hr_hsi.npy"), json.loads((folder / name / "run.json").read_text())


@pytest.fixture(scope="module")
def input_run(reflectance_pair):
    """The default run (`output_scale: input`): both tests read it, on whichever worker each runs."""
    return _run(reflectance_pair[0], "input")


def test_result_is_in_the_inputs_units_and_keeps_bright_pixels(reflectance_pair, input_run):
    folder, truth, wl = reflectance_pair
    result, run = input_run
    assert result.dtype == np.float32
    # the same units as the input: 0..0.6 reflectance, the scene's mean within 5%
    lo, hi = np.percentile(result, [1, 99])
    assert -0.02 <= lo and hi <= 0.65, (lo, hi)
    assert result.mean() == pytest.approx(truth.mean(), rel=0.05)
    # nothing clipped at the 99th percentile: in the bands the MSI sees (its preset reaches to
    # ~900 nm; beyond, nothing at high resolution says the pixel is bright) the bright pixel
    # stays far above the scene's 99th percentile and close to the truth
    seen = wl <= 900
    bright = float(result[BRIGHT][seen].mean())
    p99_result = float(np.percentile(result[:, :, seen], 99))
    assert bright > 1.5 * p99_result, (bright, p99_result)
    assert bright == pytest.approx(float(truth[BRIGHT][seen].mean()), rel=0.2)
    assert run["units"]["result"] == "input" and run["units"]["lr_hsi_span"] > 0


def test_normalized_output_scale_keeps_the_engine_scale(reflectance_pair, input_run):
    folder = reflectance_pair[0]
    result, run = _run(folder, "normalized", output_scale="normalized", epochs=50)
    lr = np.load(folder / "lr_hsi.npy")
    lo, hi = np.percentile(lr, [1, 99])
    expected = (input_run[0] - lo) / (hi - lo)   # the same map, by hand
    assert run["units"]["result"] == "normalized"
    assert np.percentile(result, 99) == pytest.approx(np.percentile(expected, 99), abs=0.15)
    assert np.percentile(result, 50) == pytest.approx(np.percentile(expected, 50), abs=0.05)
