"""The blind quality bench (`python -m bench quality --blind`, issue 19 item 3): its kernel-error
functions against values worked out by hand, its true kernels against the pair it makes, and
one tiny case run to its table and JSON."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import blind

ROOT = Path(__file__).resolve().parents[2]


def _delta(n=3, at=(0, 0)):
    k = np.zeros((n, n))
    k[n // 2 + at[0], n // 2 + at[1]] = 1.0
    return k


def test_identical_kernels_have_no_error_whatever_their_padding():
    k = blind.sampled_gaussian(1.0, 2.0, 30.0)
    assert blind.kernel_error(k, k) == 0.0
    assert blind.transfer_error(k, k, 4) == 0.0
    # the same delta on a 3 x 3 and a 7 x 7 grid: padded to a common size, the same kernel
    assert blind.kernel_error(_delta(3), _delta(7)) == 0.0
    assert blind.transfer_error(_delta(7), _delta(3), 8) == 0.0


def test_a_delta_moved_by_one_pixel():
    d, e = _delta(3), _delta(3, at=(0, 1))
    # ||e - d|| = sqrt(2), ||d|| = 1
    assert blind.kernel_error(e, d) == pytest.approx(math.sqrt(2.0))
    # through an r x r box of 1/r^2: two boxes overlapping in r^2 - r cells, so 2r cells of
    # +-1/r^2 differ: sqrt(2r)/r^2 over ||box|| = 1/r, i.e. sqrt(2/r)
    assert blind.transfer_error(e, d, 2) == pytest.approx(1.0)
    assert blind.transfer_error(e, d, 4) == pytest.approx(math.sqrt(0.5))
    assert blind.transfer_error(e, d, 8) == pytest.approx(0.5)


def test_a_box_against_a_delta():
    # 3 x 3 uniform vs a delta: centre 1/9 - 1, eight cells 1/9 -> sqrt(64/81 + 8/81) = sqrt(8/9)
    assert blind.kernel_error(np.full((3, 3), 1.0 / 9.0), _delta(1)) == pytest.approx(math.sqrt(8.0 / 9.0))


def test_true_kernels_are_normalised_and_placed_as_the_settings_say():
    for s in blind.SETTINGS.values():
        k = blind.true_kernel(s)
        assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert k.sum() == pytest.approx(1.0) and k.min() >= 0
        half = k.shape[0] // 2
        y, x = np.mgrid[-half:half + 1, -half:half + 1]
        centroid = (float((k * y).sum()), float((k * x).sum()))
        expected = blind.misregistration(s) if s.psf == "misreg" else ((0.4, -0.3) if s.psf == "offcentre" else (0, 0))
        assert centroid == pytest.approx(expected, abs=1e-3), s.name


def test_the_misregistered_pair_is_the_truth_blurred_by_its_true_kernel(monkeypatch):
    """The LR-HSI made from the shifted truth equals the unshifted truth blurred by the true
    kernel (the shifted Gaussian), so `true-psf` and the PSF errors compare against the right one."""
    from spectramorph_engine.sensors import spatial
    from scipy import ndimage
    monkeypatch.setattr(blind, "SNR_DB", None)          # no noise: the pair compared exactly
    rng = np.random.default_rng(0)
    truth = ndimage.gaussian_filter(rng.random((48, 48, 3)), (1, 1, 0)).astype(np.float32)
    for name in ("misreg-r4c4", "misreg-r8c3"):
        s = blind.SETTINGS[name]
        _, _, lr = blind.make_pair(truth, s, np.full((1, 3), 1.0 / 3.0), seed=0)
        inner = np.s_[2:-2, 2:-2]        # away from the mirrored border
        clean = spatial.area_downsample(spatial.blur(truth, blind.true_kernel(s), "symmetric"), s.ratio)
        assert np.abs(lr - clean)[inner].max() < 1e-4, name
        centred = spatial.area_downsample(spatial.blur(truth, blind.sampled_gaussian(1.6 * s.ratio / 4,
                                                                                     1.6 * s.ratio / 4), "symmetric"),
                                          s.ratio)
        assert np.abs(lr - centred)[inner].max() > 1e-3, name


def test_a_pair_of_noise_levels_puts_each_on_its_own_image():
    """make_pair((msi dB, hsi dB)): the HR-MSI and the LR-HSI get their own noise (what
    bench.refine_tune --snr 40,30 relies on); one number still sets both."""
    truth = np.full((32, 32, 6), 0.5, dtype=np.float32)
    s = blind.SETTINGS["aniso-r4c4"]
    srf = np.full((2, 6), 1.0 / 6.0)

    def noise_db(snr):
        _, msi, lr = blind.make_pair(truth, s, srf, seed=3, snr_db=snr)
        # the clean images are 0.5 everywhere: the variance is the noise's
        return [10 * np.log10(0.25 / np.var(x)) for x in (msi, lr)]

    msi_db, lr_db = noise_db((40.0, 25.0))
    assert msi_db == pytest.approx(40.0, abs=0.5) and lr_db == pytest.approx(25.0, abs=1.0)
    assert noise_db(30.0) == pytest.approx([30.0, 30.0], abs=1.0)


def test_blind_bench_runs_a_tiny_case_to_its_table_and_json(tmp_path, shared_data):
    report = tmp_path / "blind.json"
    env = dict(os.environ, SPECTRAMORPH_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "bench", "quality", "--blind", "--scenes", "usgs-a", "--size", "32",
                           "--settings", "misreg-r4c4", "--seeds", "1", "--epochs", "5", "--jobs", "1", "--quiet",
                           "--json", str(report)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "FAILED" not in out, out[-3000:]
    for title in ("[1] PSNR", "[2] SAM", "[3] Check", "[4] PSF estimation", "kernel err", "transfer err",
                  "seeds [1]", "1 torch thread"):
        assert title in out, title
    assert "[6] Method choice" in out
    assert sum(1 for line in out.splitlines() if line.startswith("usgs-a") and "misreg-r4c4" in line) == 6
    data = json.loads(report.read_text())
    assert data["kind"] == "quality-blind" and data["threads_per_job"] == 1 and data["grid"]["seeds"] == [1]
    (case,) = data["cases"]
    assert set(case["methods"]) == {"default", "glp", "hysure", "true-psf", "bicubic"}
    for m, row in case["methods"].items():
        assert math.isfinite(row["PSNR"]) and math.isfinite(row["SAM"]), m
    for m in ("default", "glp", "hysure"):
        # blind on an 8 x 8 LR pair: too few pixels clear of the border for a free-form kernel, so
        # the fitted Gaussian (centred) stays and the shift is missed
        assert case["methods"][m]["psf_error"] > 0.1 and 0 < case["methods"][m]["transfer_error"] < 2
        assert math.isfinite(case["methods"][m]["reduced_psnr"])      # what Wald's check says of it
    # given the true kernel, the run uses it
    assert case["methods"]["true-psf"]["psf_error"] < 1e-9
    assert case["methods"]["true-psf"]["transfer_error"] < 1e-9


def test_a_candidate_default_never_reaches_the_bar_but_the_bars_own_keys_do():
    from bench.common import method_overrides
    sets = {"refine_tv_weight": 5, "psf_estimation": "gaussian", "hysure_iterations": 1000, "glp_ratio_taps": 3}
    assert method_overrides("default", sets) == sets
    assert method_overrides("true-psf", sets) == sets
    assert method_overrides("hysure", sets) == {"hysure_iterations": 1000}
    assert method_overrides("glp", sets) == {"glp_ratio_taps": 3}
    assert method_overrides("original", sets) == {}


def test_the_mirrored_urban_is_the_real_cube_reflected_and_runs_only_where_urban_cannot(shared_data,
                                                                                        monkeypatch):
    from bench import scenes
    monkeypatch.setenv("SPECTRAMORPH_DATA", str(shared_data))
    urban, _ = scenes.scene("urban")
    big, wavelengths = scenes.scene(scenes.URBAN_MIRRORED)
    h, w = urban.shape[:2]
    assert wavelengths is None and big.shape == (4 * h, 2 * w, urban.shape[2])       # 136 x 156: >= 128 a side
    assert np.array_equal(big[:h, :w], urban)
    # each copy is its neighbour's mirror image: the seams repeat an edge row, never jump
    assert np.array_equal(big[h:2 * h, :w], urban[::-1])
    assert np.array_equal(big[:h, w:], urban[:, ::-1])
    assert np.array_equal(big[h], big[h - 1])
    # the blind bench runs it at ratio 8 only: at ratio 4 it would repeat Urban's own rows
    assert blind.fits("urban", 4) and not blind.fits(scenes.URBAN_MIRRORED, 4)
    assert not blind.fits("urban", 8) and blind.fits(scenes.URBAN_MIRRORED, 8)
