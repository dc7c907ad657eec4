"""Issue 5's "real camera" scenario through the CLI, as a user with their own pair would run it.

Truth: the Urban cube; HR-MSI from the measured IKONOS responses + camera gamma + 40 dB noise;
LR-HSI blurred, downsampled by 2, 35 dB noise (spectramorph_engine.sensors.scenarios). The program is
told only "4 MSI bands". Scores are taken on the written file as it is: the result comes back in
the LR-HSI's own units (issue 10), which are the truth's.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spectramorph_engine.sensors.degradation import bicubic_upsample
from spectramorph_engine.quality.metrics import psnr, sam

from test_cli import DATA, URBAN, run_cli

needs_data = pytest.mark.skipif(not (URBAN.exists() and (DATA / "Ikonos_spec_resp.mat").exists()),
                                reason="../shared/data (Urban cube, IKONOS responses) not present")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    from spectramorph_engine.sensors.scenarios import real_camera_scenario
    sc = real_camera_scenario(URBAN, seed=0)
    folder = tmp_path_factory.mktemp("camera")
    np.save(folder / "hr_msi.npy", sc["hr_msi"])
    np.save(folder / "lr_hsi.npy", sc["lr_hsi"])
    sc["folder"] = folder
    return sc


def _run(sc, name, **extra):
    folder = sc["folder"]
    cfg = {"synthetic": False, "hr_msi_file": str(folder / "hr_msi.npy"), "lr_hsi_file": str(folder / "lr_hsi.npy"),
           "num_bands_msi_non_synthetic": 4, "output_dir": str(folder / name), "log_dir": str(folder / f"{name}_logs"),
           "device": "cpu", **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_cli("run", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    result = np.load(folder / name / "hr_hsi.npy")
    consistency = json.loads((folder / name / "consistency.json").read_text())
    return result, consistency, proc


@pytest.fixture(scope="module")
def default_run(scenario):
    return _run(scenario, "default")


@needs_data
def test_default_real_world_settings_recover_the_scene(scenario, default_run):
    result, consistency, proc = default_run
    truth = scenario["truth"]
    bicubic = bicubic_upsample(scenario["lr_hsi"], 2)
    fused_psnr, bicubic_psnr = psnr(truth, result), psnr(truth, bicubic)
    assert fused_psnr >= 28.0, (fused_psnr, bicubic_psnr)
    assert fused_psnr >= bicubic_psnr + 3.0, (fused_psnr, bicubic_psnr)
    assert sam(truth, result) < 6.0
    # the choice is stated, and nothing is flagged as poor
    assert consistency["training_input"] in ("msi_lr", "srf")
    assert "estimated" in consistency["srf_note"]
    assert consistency["warnings"] == []
    assert consistency["srf_fit"]["psnr"] > 30


@needs_data
def test_preset_srf_reproduces_the_original_collapse_and_warns(scenario, default_run):
    """The original's behaviour (preset SRF, no refinement): the network sees other inputs at
    inference than in training. (The refinement rescues much of it -- measured 26.9 dB -- but
    the warning is what this test is about.)"""
    result, consistency, proc = _run(scenario, "preset", srf_source="preset", training_input="srf",
                                     epochs=500, refine=False, auto_select=False)
    truth = scenario["truth"]
    assert psnr(truth, result) < 20.0 and sam(truth, result) > 15.0
    assert psnr(truth, default_run[0]) > psnr(truth, result) + 10
    # the user is told, in the CLI output and in the consistency file
    assert "SRF explains the HR-MSI poorly" in proc.stderr + proc.stdout
    assert any("poorly" in w or "does not" in w for w in consistency["warnings"] + [proc.stderr])
    assert consistency["lr_consistency"]["PSNR"] < consistency["bicubic"]["lr"]["PSNR"] - 10


@needs_data
def test_reduced_resolution_protocol_tracks_the_true_quality(scenario, default_run):
    """Wald's protocol (no truth needed) vs the truth score. Tolerance 4 dB: the reduced run
    sees 4x fewer pixels of a smoother scene, where the refinement gains more (measured here:
    33.3 reduced vs 29.9 full; bicubic 24.5 vs 24.1), so it reads optimistic, but it ranks
    fusion above bicubic by a similar margin."""
    result, consistency, _ = default_run
    full = psnr(scenario["truth"], result)
    reduced = consistency["reduced_resolution"]
    assert abs(reduced["fusion"]["PSNR"] - full) < 4.0, (reduced["fusion"]["PSNR"], full)
    assert reduced["fusion"]["PSNR"] > reduced["bicubic"]["PSNR"] + 3
