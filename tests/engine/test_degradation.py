"""The synthetic sensor model: normalisation, blur, downsampling, SRF, noise, the pair."""
import numpy as np
import pytest
import scipy.io
import scipy.ndimage

from spectramorph_engine.sensors import degradation as dg
from spectramorph_engine.core.errors import InputError
from spectramorph_engine.sensors.psf import make_psf
from spectramorph_engine.sensors.srf import preset_srf


@pytest.fixture(scope="module")
def urban(shared_data):
    path = shared_data / "subimage_Urban_R162.mat"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return scipy.io.loadmat(path)["im"]


def _smooth_cube(h=48, w=40, c=12, seed=0):
    rng = np.random.default_rng(seed)
    x = scipy.ndimage.gaussian_filter(rng.random((h, w, c)), (3, 3, 0))
    return ((x - x.min()) / (x.max() - x.min())).astype(np.float32)


def test_normalize_percentile_clips_globally(urban):
    out = dg.normalize_percentile(urban)
    assert out.dtype == np.float32 and out.shape == urban.shape
    assert out.min() == 0 and out.max() == 1
    lo, hi = np.percentile(urban, [1, 99])
    # ~1 % of all values sit at each end; one global scale keeps band ratios
    assert 0.005 < np.mean(out == 0) < 0.02 and 0.005 < np.mean(out == 1) < 0.02
    inside = (urban > lo) & (urban < hi)
    assert np.allclose(out[inside], ((urban[inside] - lo) / (hi - lo)), atol=1e-6)


def test_constant_cube_is_refused():
    with pytest.raises(InputError, match=r"\(4, 4, 3\) is constant"):
        dg.normalize_percentile(np.full((4, 4, 3), 0.3))
    # integer cubes are accepted and converted
    assert dg.normalize_percentile(np.arange(48).reshape(4, 4, 3)).dtype == np.float32


def test_blur_of_constant_is_constant_inside_and_darker_at_the_border():
    cube = np.full((40, 36, 3), 0.7, dtype=np.float32)
    k = 3
    out = dg.blur(cube, make_psf("moffat", 2.0, k))
    assert out.dtype == np.float32 and out.shape == cube.shape
    assert np.allclose(out[k:-k, k:-k], 0.7, atol=1e-6)
    assert np.all(out[0] < 0.7 - 1e-3)          # zero padding darkens the border
    low = dg.degrade_spatial(cube, make_psf("gaussian", 1.0, k), 4)
    assert low.shape == (10, 9, 3)
    assert np.allclose(low[1:-1, 1:-1], 0.7, atol=1e-6)


def test_blur_matches_direct_convolution_and_2d_input():
    cube = _smooth_cube(30, 26, 20)
    k = make_psf("gabor", 1.5, 3)
    out = dg.blur(cube, k)
    ref = np.stack([scipy.ndimage.convolve(cube[:, :, b].astype(np.float64), k, mode="constant")
                    for b in range(cube.shape[2])], axis=-1)
    assert np.allclose(out, ref, atol=1e-5)
    assert np.allclose(dg.blur(cube[:, :, 5], k), ref[:, :, 5], atol=1e-5)
    # a delta changes nothing at all
    assert np.array_equal(dg.blur(cube, make_psf("delta", 1.0, 2)), cube)
    # mass is conserved away from the border
    spot = np.zeros((21, 21), np.float32)
    spot[10, 10] = 1
    assert dg.blur(spot, make_psf("gaussian", 1.5, 4)).sum() == pytest.approx(1, abs=1e-5)


def test_area_downsample_is_the_block_mean():
    cube = np.arange(6 * 8 * 2, dtype=np.float32).reshape(6, 8, 2)
    out = dg.area_downsample(cube, 2)
    assert out.shape == (3, 4, 2) and out.dtype == np.float32
    assert out[0, 0, 0] == np.mean(cube[:2, :2, 0])
    assert out[2, 3, 1] == np.mean(cube[4:, 6:, 1])
    with pytest.raises(InputError, match=r"\(6, 8, 2\).*downsampled by 4.*multiples"):
        dg.area_downsample(cube, 4)
    up = dg.nearest_upsample(out, 2)
    assert up.shape == cube.shape and np.array_equal(dg.area_downsample(up, 2), out)


def test_bicubic_recovers_a_downsampled_ramp():
    H, W, r = 64, 48, 4
    yy, xx = np.mgrid[0:H, 0:W]
    ramp = (0.1 + 0.8 * (0.6 * yy / H + 0.4 * xx / W)).astype(np.float32)
    cube = np.stack([ramp, 1 - ramp], axis=-1)
    up = dg.bicubic_upsample(dg.area_downsample(cube, r), r)
    assert up.shape == cube.shape and up.dtype == np.float32
    m = 2 * r   # replicated borders bend the ramp in the outer LR pixel only
    assert np.abs(up - cube)[m:-m, m:-m].max() < 1e-5
    assert np.abs(up - cube).mean() < 0.005
    # pixel-centre alignment: no half-pixel shift of a symmetric bump
    bump = np.zeros((32, 32), np.float32)
    bump[12:20, 12:20] = 1
    out = dg.bicubic_upsample(dg.area_downsample(bump, 4), 4)
    assert np.allclose(out, out[::-1, ::-1], atol=1e-6)


def test_bicubic_agrees_with_torch_for_its_kernel():
    torch = pytest.importorskip("torch")
    x = _smooth_cube(12, 10, 3) * 0.8 + 0.1
    ours = dg.bicubic_upsample(x, 3, a=-0.75)
    t = torch.nn.functional.interpolate(torch.from_numpy(x).permute(2, 0, 1)[None], scale_factor=3,
                                        mode="bicubic", align_corners=False)
    ref = np.clip(t[0].permute(1, 2, 0).numpy(), 0, 1)
    assert np.allclose(ours, ref, atol=1e-5)


def test_apply_srf_is_a_matrix_product():
    cube = _smooth_cube(8, 6, 30)
    s = preset_srf(3, 30)
    out = dg.apply_srf(cube, s)
    assert out.shape == (8, 6, 3) and out.dtype == np.float32
    assert np.allclose(out, cube.astype(np.float64) @ s.T, atol=1e-6)
    with pytest.raises(InputError, match=r"\(3, 30\).*\(8, 6, 20\).*c x 20"):
        dg.apply_srf(cube[:, :, :20], s)


@pytest.mark.parametrize("snr", [30.0, 40.0])
def test_noise_has_the_requested_snr_on_urban(urban, snr):
    cube = dg.normalize_percentile(urban)
    noisy = dg.add_awgn(cube, snr, np.random.default_rng(7))
    assert noisy.dtype == np.float32
    noise = (noisy - cube).astype(np.float64)
    measured = 10 * np.log10(np.mean(cube.astype(np.float64) ** 2, axis=(0, 1)) /
                             np.mean(noise ** 2, axis=(0, 1)))
    assert np.all(np.abs(measured - snr) < 0.5)
    assert abs(measured.mean() - snr) < 0.05
    # white: neighbouring pixels' noise is uncorrelated
    corr = np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]
    assert abs(corr) < 0.02
    assert np.array_equal(dg.add_awgn(cube, None, np.random.default_rng(0)), cube)


def test_synthetic_pair_is_reproducible_and_cropped():
    truth = _smooth_cube(50, 45, 30, seed=3)
    psf = make_psf("gaussian", 1.2, 3)
    s = preset_srf(4, 30)
    a = dg.make_synthetic_pair(truth, psf, s, 4, 35.0, 40.0, seed=11)
    b = dg.make_synthetic_pair(truth, psf, s, 4, 35.0, 40.0, seed=11)
    c = dg.make_synthetic_pair(truth, psf, s, 4, 35.0, 40.0, seed=12)
    t, hr, lr = a
    assert t.shape == (48, 44, 30) and hr.shape == (48, 44, 4) and lr.shape == (12, 11, 30)
    assert all(x.dtype == np.float32 for x in a)
    assert np.array_equal(t, truth[:48, :44])
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(hr, c[1]) and not np.array_equal(lr, c[2])
    # without noise the pair is exactly the sensor model
    t0, hr0, lr0 = dg.make_synthetic_pair(truth, psf, s, 4, None, None, seed=0)
    assert np.allclose(hr0, dg.apply_srf(t0, s), atol=1e-7)
    assert np.allclose(lr0, dg.area_downsample(dg.blur(t0, psf), 4), atol=1e-7)
    # the noise order is documented: HR-MSI noise first, then LR-HSI noise
    rng = np.random.default_rng(11)
    draws = [rng.standard_normal(hr0.shape, dtype=np.float32), rng.standard_normal(lr0.shape, dtype=np.float32)]
    for noise, draw in zip((hr - hr0, lr - lr0), draws):
        scale = np.sum(noise * draw, axis=(0, 1)) / np.sum(draw * draw, axis=(0, 1))   # std per band
        assert np.allclose(noise, draw * scale, atol=1e-6)


def test_synthetic_pair_refuses_mismatched_srf():
    truth = _smooth_cube(16, 16, 10)
    with pytest.raises(InputError, match=r"SRF of shape \(4, 30\).*\(16, 16, 10\)"):
        dg.make_synthetic_pair(truth, make_psf("delta", 1, 1), preset_srf(4, 30), 2, None, None, 0)


def test_detect_boundary_tells_a_simulated_pair_from_a_sensor_that_saw_past_the_frame():
    from spectramorph_engine.sensors import psf as psf_mod
    from spectramorph_engine.methods._ops import degrade, detect_boundary
    from spectramorph_engine.sensors.degradation import degrade_spatial
    rng = np.random.default_rng(0)
    base = rng.random((6, 6, 3)) @ rng.random((3, 20))
    truth = np.repeat(np.repeat(base, 8, 0), 8, 1).astype(np.float32) + 0.2      # bright up to the edges
    srf = np.full((2, 20), 0.0)
    srf[0, :10], srf[1, 10:] = 0.1, 0.1
    msi = truth @ srf.T
    k = psf_mod.make_psf("gaussian", 2.0, 4)
    zero_lr = degrade_spatial(truth, k, 4)                  # darkened border, as this engine simulates
    free_lr = degrade(truth, k, 4, "symmetric")             # a sensor that saw past the frame
    choice, errors = detect_boundary(msi, zero_lr, 4, k, srf)
    assert choice == "zero" and errors["zero"] < 0.01 * errors["free"]
    choice, errors = detect_boundary(msi, free_lr, 4, k, srf)
    assert choice == "free" and errors["free"] < 0.01 * errors["zero"]
    assert detect_boundary(msi, zero_lr, 4, np.ones((1, 1)), srf)[0] == "free"      # no blur: nothing to tell


def test_bicubic_keeps_a_real_world_range():
    """Issue 17: bicubic_upsample clipped to [0, 1] whatever the data; real-world cubes
    (counts, radiance, reflectance above 1) lost everything above 1. It no longer clips
    unless the caller names a range."""
    H, W, r = 48, 40, 4
    yy, xx = np.mgrid[0:H, 0:W]
    ramp = (500 + 2500 * (0.6 * yy / H + 0.4 * xx / W)).astype(np.float32)    # counts 500..3000
    cube = np.stack([ramp, 3500 - ramp], axis=-1)
    up = dg.bicubic_upsample(dg.area_downsample(cube, r), r)
    m = 2 * r
    assert up.max() > 2500 and np.allclose(up[m:-m, m:-m], cube[m:-m, m:-m], rtol=1e-5)
    # an edge's overshoot below 0 (a dark offset-corrected band) is kept too
    step = np.zeros((16, 16), np.float32)
    step[:, 8:] = 1.5
    out = dg.bicubic_upsample(step[::2, ::2], 2)
    assert out.max() > 1.5 and out.min() < 0
    assert np.array_equal(dg.bicubic_upsample(step[::2, ::2], 2, value_range=(0.0, 1.0)), np.clip(out, 0, 1))
    assert np.array_equal(dg.bicubic_upsample(step[::2, ::2], 2, value_range=(0.0, None)), np.clip(out, 0, None))


def test_real_world_baselines_are_not_clipped(tmp_path):
    """The pipeline's bicubic baseline on a real pair (engine scale: bright pixels above 1):
    the reduced-resolution figures and the consistency figures come from the unclipped
    upsampling."""
    from spectramorph_engine import FusionConfig, FusionInputs, run_fusion
    from spectramorph_engine.quality import consistency as cons, metrics
    from spectramorph_engine.run.demo import demo_scene
    from spectramorph_engine.run.fuse import reduced_pair
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.srf import preset_srf
    truth = demo_scene(size=64, num_bands=20, seed=5)[0]
    truth = truth * 3000.0                                   # digital numbers
    truth[16:20, 16:20] = 2.5 * truth.max()                  # a bright roof well above the 99th percentile
    _, hr, lr = dg.make_synthetic_pair(truth, make_psf("gaussian", 1.0, 2), preset_srf(3, 20), 2, None, None, 0)
    cfg = FusionConfig(synthetic=False, method="glp", device="cpu", output_dir=str(tmp_path / "out"),
                       log_dir=str(tmp_path / "logs"))
    result = run_fusion(cfg, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr), write_outputs=False)
    prep = result.prepared
    assert prep.lr_hsi.max() > 1.2                           # the engine's scale goes above 1 here
    sub, lr_ref = reduced_pair(prep)
    up = dg.bicubic_upsample(sub.lr_hsi, prep.ratio)
    assert up.max() > 1.2
    reported = result.consistency["reduced_resolution"]["bicubic"]
    assert reported == pytest.approx(metrics.compute_all(lr_ref, up, prep.ratio), rel=1e-6)
    clipped = metrics.compute_all(lr_ref, np.clip(up, 0, 1), prep.ratio)
    assert reported["PSNR"] > clipped["PSNR"] + 0.1        # clipping the roof cost the baseline
    # the consistency figures of the baseline (result degraded back, SRF applied) likewise
    srf_raw, offset = prep.msi_model()
    full = cons.bicubic_consistency(prep.lr_hsi, prep.hr_msi, srf_raw, prep.ratio, prep.psf, offset=offset)
    assert result.consistency["bicubic"]["lr"]["PSNR"] == pytest.approx(full["lr"]["PSNR"], rel=1e-4)
    clipped_up = np.clip(dg.bicubic_upsample(prep.lr_hsi, prep.ratio), 0, 1)
    assert full["lr"]["PSNR"] > cons.lr_consistency(clipped_up, prep.lr_hsi, prep.ratio, prep.psf)["PSNR"] + 0.1
