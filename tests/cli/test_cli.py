"""The `spectramorph` command as a user runs it: configs in, files and exit codes out."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
URBAN = DATA / "subimage_Urban_R162.mat"

needs_urban = pytest.mark.skipif(not URBAN.exists(), reason="../shared/data/subimage_Urban_R162.mat not present")


def run_cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "spectramorph_engine", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def small_config(tmp_path, **extra):
    cfg = {"synthetic": True, "mat_file": str(URBAN), "mat_key": "im", "epochs": 150,
           "hidden_size": 128, "num_endmembers": 5, "downsample_ratio": 2, "kernel_size": 2, "sigma": 1.0,
           "output_dir": str(tmp_path / "out"), "log_dir": str(tmp_path / "logs"), "device": "cpu"}
    cfg.update(extra)
    return cfg


@needs_urban
def test_yaml_config_runs_and_writes_outputs(tmp_path):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(small_config(tmp_path, output_file_type="h5", figure_format="png")))
    proc = run_cli("run", "--config", str(cfg_path), "--set", "epochs=120")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    assert {"hr_hsi.h5", "endmembers.png", "abundances.png", "metrics.json", "run.json"} <= {
        p.name for p in out.iterdir()}
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["epochs"] == 120          # --set reached the run
    assert set(run["timings_s"]) >= {"load", "nmf", "train", "inference", "save"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["spectramorph"]["PSNR"] > metrics["bicubic"]["PSNR"]
    assert "PSNR" in proc.stdout and "bicubic" in proc.stdout
    assert (tmp_path / "logs" / "config_used.yaml").exists()
    assert (tmp_path / "logs" / "spectramorph.log").read_text().strip()


@needs_urban
def test_json_config_runs(tmp_path):
    cfg_path = tmp_path / "run.json"
    cfg_path.write_text(json.dumps(small_config(tmp_path, output_file_type="numpy", figure_format="jpg")))
    proc = run_cli("run", "--config", str(cfg_path))
    assert proc.returncode == 0, proc.stderr
    result = np.load(tmp_path / "out" / "hr_hsi.npy")
    assert result.shape == (34, 78, 162) and result.dtype == np.float32
    assert (tmp_path / "out" / "endmembers.jpg").stat().st_size > 0


ORIGINAL_TEMPLATE = """\
# === Execution Mode ===
synthetic: true
provide_psf: false
provide_srf: false
mat_file: "{mat}"
mat_key: "im"
psf_type: "gaussian"
sigma: 3.4
kernel_size: 7
num_msi_bands: 4
fwhm_factor: 4.2
downsample_ratio: 4
snr_spatial: 35.0
snr_spectral: 40.0
seed: 42
psf_file: "path/to/your_psf.mat"
srf_file: "path/to/your_srf.mat"
hr_msi_file: "path/to/hr_msi.mat"
lr_hsi_file: "path/to/lr_hsi.mat"
num_bands_msi_non_synthetic: 3
verbose: 1
init_lr: 0.001
max_lr: 0.01
final_lr: 0.000001
epochs: 2500
hidden_size: 1024
training_batch_size: null
inference_batch_size: null
num_endmembers: 7
spec_prior: null
prior_downsample: 4
figure_format: "jpg"
output_file_type: "matlab"
output_dir: "{out}"
log_dir: "{logs}"
"""


@needs_urban
def test_config_in_the_original_template_format_runs_unchanged(tmp_path):
    """A main.py config of the original (placeholder paths for unused files included) runs as is."""
    import scipy.io
    cfg_path = tmp_path / "original.yaml"
    cfg_path.write_text(ORIGINAL_TEMPLATE.format(mat=URBAN, out=tmp_path / "out", logs=tmp_path / "logs"))
    proc = run_cli("run", "--config", str(cfg_path), "--set", "epochs=300")
    assert proc.returncode == 0, proc.stderr
    mat = scipy.io.loadmat(tmp_path / "out" / "hr_hsi.mat")
    # Urban is 34 x 78: the synthetic pair keeps the largest multiple of the ratio 4.
    assert mat["hr_hsi"].shape == (32, 76, 162)
    assert mat["endmembers"].shape == (7, 162)
    assert mat["abundances"].shape == (32, 76, 7)


def test_missing_input_file_is_one_line_error(tmp_path):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(small_config(tmp_path, mat_file=str(tmp_path / "nope.mat"))))
    proc = run_cli("run", "--config", str(cfg_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "nope.mat" in lines[-1]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "hr_hsi.npy").exists()


def test_unknown_key_and_bad_value_name_the_key(tmp_path):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump({**small_config(tmp_path), "epochz": 3}))
    proc = run_cli("run", "--config", str(cfg_path))
    assert proc.returncode == 2 and "epochz" in proc.stderr and "Traceback" not in proc.stderr
    cfg_path.write_text(yaml.safe_dump(small_config(tmp_path)))
    proc = run_cli("run", "--config", str(cfg_path), "--set", "psf_type=blobby")
    assert proc.returncode == 2
    assert "psf_type" in proc.stderr and "gaussian" in proc.stderr   # lists what is allowed
    proc = run_cli("run", "--config", str(cfg_path), "--set", "init_lr=0")
    assert proc.returncode == 2 and "init_lr" in proc.stderr


def test_mismatched_real_world_pair_names_both_shapes(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "msi.npy", rng.random((30, 30, 3)).astype(np.float32))
    np.save(tmp_path / "hsi.npy", rng.random((8, 8, 40)).astype(np.float32))
    cfg = small_config(tmp_path, synthetic=False, hr_msi_file=str(tmp_path / "msi.npy"),
                       lr_hsi_file=str(tmp_path / "hsi.npy"))
    cfg_path = tmp_path / "real.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = run_cli("run", "--config", str(cfg_path))
    assert proc.returncode == 2, proc.stderr
    msg = proc.stderr.strip().splitlines()[-1]
    assert "(30, 30, 3)" in msg and "(8, 8, 40)" in msg
    assert not (tmp_path / "out" / "hr_hsi.npy").exists()


def test_unwritable_output_folder_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(small_config(tmp_path, output_dir=str(blocker / "out"))))
    proc = run_cli("run", "--config", str(cfg_path))
    assert proc.returncode == 2 and "output folder" in proc.stderr


def test_demo_runs_headless(tmp_path):
    proc = run_cli("run", "--demo", "--set", "epochs=60", "--set", f"output_dir={tmp_path / 'demo'}",
                   "--set", f"log_dir={tmp_path / 'logs'}", "--set", "hidden_size=64")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "demo" / "hr_hsi.npy").exists()
    assert "PSNR" in proc.stdout
    # each message once: the engine logs what it emits, and the CLI printed both
    assert proc.stderr.count("auto-selection skipped") == 1, proc.stderr
