"""HySure (methods/hysure.py): forward model, recovery, objective, cancel, streamed output."""
import threading
from dataclasses import replace

import numpy as np
import pytest

from spectramorph_engine.core import events as ev
from spectramorph_engine.quality import metrics
from spectramorph_engine.run.config import FusionConfig
from spectramorph_engine.sensors.degradation import bicubic_upsample, degrade_spatial, make_synthetic_pair
from spectramorph_engine.core.errors import Cancelled
from spectramorph_engine.methods import MethodOutput, get_method
from spectramorph_engine.run.results import PreparedInputs
from spectramorph_engine.sensors.psf import make_psf
from spectramorph_engine.sensors.srf import preset_srf

hysure = get_method("hysure")
DEFAULTS = FusionConfig(method="hysure")        # the settings a user gets
RATIO = 4


def _pair(truth, wl, num_msi=4, psf=None):
    psf = make_psf("gaussian", 3.4, 7) if psf is None else psf
    srf = preset_srf(num_msi, truth.shape[2], wavelengths=wl)
    truth, msi, lr = make_synthetic_pair(truth, psf, srf, RATIO, None, None, seed=0)
    return PreparedInputs(mode="synthetic", hr_msi=msi, lr_hsi=lr, srf=srf, ratio=RATIO, psf=psf, truth=truth)


@pytest.fixture(scope="module")
def pair4(library_truth):
    """128 x 128 x 100 library scene, default PSF (Gaussian sigma 3.4, 15 x 15), 4-band IKONOS SRF."""
    return _pair(*library_truth(128, 100))


@pytest.fixture(scope="module")
def fused(pair4):
    return hysure.fuse(DEFAULTS, pair4, device="cpu")


@pytest.fixture(scope="module")
def small(library_truth):
    truth, wl = library_truth(32, 40)
    return _pair(truth, wl, psf=make_psf("gaussian", 1.5, 3))


def test_interface():
    assert hysure.NAME == "hysure" and hysure.TITLE
    assert set(hysure.USES) >= {"psf", "srf", "ignores"}


@pytest.mark.parametrize("shape, r, sigma, k", [((64, 48), 4, 3.4, 7), ((60, 45), 3, 1.0, 2), ((20, 24), 2, 0.5, 1)])
def test_forward_operator_is_degrade_spatial(shape, r, sigma, k):
    """Blur (zero padding) + r x r block mean == one FFT convolution with PSF * box, sampled at
    r*i on the padded grid: the same numbers, border pixels included."""
    psf = make_psf("gaussian", sigma, k)
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    grid = hysure.FourierGrid(psf, r, *shape)
    np.testing.assert_allclose(grid.degrade(image), degrade_spatial(image, psf, r), atol=2e-6)
    # an off-by-one in the sampling phase would show: shift the image by one pixel
    shifted = np.roll(image, 1, axis=0)
    assert np.abs(grid.degrade(shifted) - degrade_spatial(image, psf, r)).max() > 1e-2


def test_recovers_noise_free_library_scene(pair4, fused):
    assert isinstance(fused, MethodOutput)
    est = fused.hr_hsi
    assert est.shape == pair4.truth.shape and est.dtype == np.float32
    assert est.min() >= 0.0 and est.max() <= 1.0
    psnr = metrics.psnr(pair4.truth, est)
    bicubic = bicubic_upsample(pair4.lr_hsi, RATIO)
    assert psnr >= 35.0, psnr
    assert psnr > metrics.psnr(pair4.truth, bicubic) + 10.0
    assert metrics.sam(pair4.truth, est) < 0.5 * metrics.sam(pair4.truth, bicubic)


def test_objective_decreases(fused):
    obj = np.asarray(fused.loss_history)
    assert fused.info["objective"] == fused.loss_history
    assert len(obj) == fused.info["iterations"] + 1            # the start, then every iteration
    assert np.all(np.isfinite(obj))
    assert obj[-1] < 0.05 * obj[0]
    assert obj[-1] <= obj.min() * 1.001
    # ADMM's objective may wobble while the dual variables build up; once settled (after the
    # first quarter of the iterations) it must not rise by more than 0.1 % a step
    tail = obj[len(obj) // 4:]
    assert np.all(np.diff(tail) <= 1e-3 * tail[1:]), np.max(np.diff(tail) / tail[1:])


def test_stops_once_converged_where_running_on_changes_nothing_a_user_would_see(pair4, fused, monkeypatch):
    info = fused.info
    assert info["stop"].startswith("converged"), info["stop"]
    assert info["iterations"] < DEFAULTS.hysure_iterations
    # the same problem run for twice as many iterations with no stopping rule
    monkeypatch.setattr(hysure, "TOL", None)
    longer = hysure.fuse(DEFAULTS.replace(hysure_iterations=2 * info["iterations"]), pair4, device="cpu")
    assert longer.info["iterations"] == 2 * info["iterations"]
    assert abs(metrics.psnr(pair4.truth, longer.hr_hsi) - metrics.psnr(pair4.truth, fused.hr_hsi)) < 0.1


def test_the_run_says_whether_it_converged(pair4, fused):
    from spectramorph_engine.run.method_report import facts_text, method_figures
    n = fused.info["iterations"]
    assert facts_text(method_figures(fused.info, fused.loss_history)).startswith(f"converged after {n} iterations")
    short = hysure.fuse(DEFAULTS.replace(hysure_iterations=20), pair4, device="cpu")
    assert facts_text(method_figures(short.info, short.loss_history)).startswith(
        "20 iterations (the limit: not converged)")


def test_progress_follows_the_convergence_not_the_ceiling(pair4):
    """A run that stops at ~220 of 1000 iterations: the bar rises with the residuals toward the
    tolerance, instead of creeping to 22 % and jumping to the end."""
    fractions = []
    out = hysure.fuse(DEFAULTS, pair4, device="cpu",
                      progress=lambda e: fractions.append(e.fraction) if isinstance(e, ev.StageProgress) else None)
    assert out.info["iterations"] < 0.5 * DEFAULTS.hysure_iterations
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    before_end = [f for f in fractions if f < 1.0]
    assert max(before_end) > 0.6, before_end


def test_a_left_out_lr_pixel_does_not_reach_the_result(small):
    """lr_weight 0 leaves an LR pixel out of the data term (bench.refine_tune --holdout predicts
    it): whatever the LR-HSI holds there, the result is the same."""
    lr = small.lr_hsi
    h, w, C = lr.shape
    left_out = np.zeros((h, w), dtype=bool)
    left_out[1::3, 2::3] = True
    spoiled = lr.copy()
    spoiled[left_out] += 0.5
    srf = small.srf
    basis = np.linalg.svd(lr.reshape(-1, C).astype(np.float64), full_matrices=False)[2][:6]
    run = dict(boundary="zero", iterations=40, basis=basis, record_objective=False)
    weight = (~left_out).astype(np.float32)
    X_a = hysure.solve(small.hr_msi, lr, RATIO, small.psf, srf, np.zeros(srf.shape[0]), lr_weight=weight, **run)[0]
    X_b = hysure.solve(small.hr_msi, spoiled, RATIO, small.psf, srf, np.zeros(srf.shape[0]), lr_weight=weight,
                       **run)[0]
    np.testing.assert_allclose(X_a, X_b, atol=1e-5)
    # weighted in, the spoiled pixels do change it; all weights 1 is the unweighted problem
    X_c = hysure.solve(small.hr_msi, spoiled, RATIO, small.psf, srf, np.zeros(srf.shape[0]), **run)[0]
    assert np.abs(X_c - X_a).max() > 1e-2
    X_d = hysure.solve(small.hr_msi, spoiled, RATIO, small.psf, srf, np.zeros(srf.shape[0]),
                       lr_weight=np.ones((h, w), np.float32), **run)[0]
    np.testing.assert_allclose(X_d, X_c, atol=1e-6)


def test_single_band_pan(library_truth):
    truth, wl = library_truth(64, 60)
    prep = _pair(truth, wl, num_msi=1, psf=make_psf("gaussian", 2.0, 4))
    est = hysure.fuse(DEFAULTS.replace(hysure_iterations=60), prep, device="cpu").hr_hsi
    assert metrics.psnr(prep.truth, est) > metrics.psnr(prep.truth, bicubic_upsample(prep.lr_hsi, RATIO)) + 3.0


def test_msi_offset_is_subtracted(small):
    """A real pair whose MSI carries a fitted gain and offset: the SRF model absorbs them."""
    cfg = DEFAULTS.replace(hysure_iterations=30)
    base = hysure.fuse(cfg, replace(small, mode="real"), device="cpu").hr_hsi
    gain = np.array([1.0, 1.0, 1.0, 1.0])
    offset = np.array([0.05, -0.02, 0.1, 0.0])
    shifted = replace(small, mode="real", hr_msi=(small.hr_msi + offset.astype(np.float32)),
                      srf_gain_offset=(gain, offset))
    np.testing.assert_allclose(hysure.fuse(cfg, shifted, device="cpu").hr_hsi, base, atol=2e-4)


def test_cancel(small):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        hysure.fuse(DEFAULTS, small, device="cpu", cancel=stop)

    stop = threading.Event()
    fractions = []

    def cancel_midway(event):           # the user presses Cancel during the iterations
        if isinstance(event, ev.StageProgress):
            fractions.append(event.fraction)
            if event.fraction > 0.1:
                stop.set()

    with pytest.raises(Cancelled):
        hysure.fuse(DEFAULTS.replace(hysure_iterations=2000), small, device="cpu",
                    progress=cancel_midway, cancel=stop)
    assert fractions[-1] < 0.5


class _RowWriter:
    def __init__(self, shape):
        self.array = np.full(shape, np.nan, dtype=np.float32)

    def write_rows(self, row, block):
        self.array[row:row + block.shape[0]] = block


def test_out_hsi_equals_in_memory_result(small):
    cfg = DEFAULTS.replace(hysure_iterations=20)
    seen = []
    ref = hysure.fuse(cfg, small, device="cpu", progress=seen.append).hr_hsi
    assert [e.fraction for e in seen if isinstance(e, ev.StageProgress)][-1] == 1.0
    target = np.zeros(ref.shape, dtype=np.float32)
    assert hysure.fuse(cfg, small, device="cpu", out_hsi=target).hr_hsi is target
    np.testing.assert_array_equal(target, ref)
    writer = _RowWriter(ref.shape)
    assert hysure.fuse(cfg, small, device="cpu", out_hsi=writer).hr_hsi is writer
    np.testing.assert_array_equal(writer.array, ref)


@pytest.mark.parametrize("boundary", ["zero", "symmetric"])
def test_the_iteration_does_not_depend_on_its_blocks_of_rows(small, monkeypatch, boundary):
    """hysure_admm sweeps the grid a block of rows at a time (the differences across a block's
    edge, the wrap of the last row onto the first, the margin split across blocks): blocks of 2
    rows and one block for the whole grid give the same iterates and stopping decision."""
    from spectramorph_engine.methods import hysure_admm
    srf, offset = small.msi_model()
    latents = np.asarray(small.truth, dtype=np.float32)[..., ::4] * 1.1        # a flawed prior
    mixing = np.eye(small.truth.shape[2], dtype=np.float32)[::4]
    runs = []
    for block in (2 * 4 * 4 * 64, 1 << 30):          # ~2 rows of a 4-band, 64-wide grid; everything
        monkeypatch.setattr(hysure_admm, "BLOCK_BYTES", block)
        coeff, _, history, info = hysure.solve(small.hr_msi, small.lr_hsi, RATIO, small.psf, srf, offset,
                                               boundary=boundary, subspace=4, tv_weight=1e-2, iterations=60,
                                               prior_latents=latents, prior_mixing=mixing, prior_weight=0.1,
                                               tol=0.08, check_every=5)
        runs.append((coeff, history, info))
    (a, ha, ia), (b, hb, ib) = runs
    assert ia["iterations"] == ib["iterations"] < 60          # the stopping rule was met, at the same check
    np.testing.assert_allclose(a, b, atol=1e-5 * float(np.ptp(a)))
    np.testing.assert_allclose(ha, hb, rtol=1e-5)


def test_the_objective_does_not_depend_on_its_blocks_of_rows_or_on_being_recorded(small, monkeypatch):
    """The objective's HR sums go by blocks of rows, and unrecorded (the refinement) they make
    the MSI's and the prior's rows again from the inputs: the first and last values are those
    of one block over the whole frame with the images held."""
    srf, offset = small.msi_model()
    latents = np.asarray(small.truth, dtype=np.float32)[..., ::4] * 1.1
    mixing = np.eye(small.truth.shape[2], dtype=np.float32)[::4]
    ends = []
    for rows, record in ((1 << 30, True), (3, True), (3, False), (1 << 30, False)):
        monkeypatch.setattr(hysure, "OBJECTIVE_ROWS", rows)
        _, _, history, _ = hysure.solve(small.hr_msi, small.lr_hsi, RATIO, small.psf, srf, offset, subspace=4,
                                        tv_weight=1e-2, iterations=12, prior_latents=latents, prior_mixing=mixing,
                                        prior_weight=0.1, record_objective=record)
        ends.append((history[0], history[-1], len(history)))
    first, last, length = ends[0]
    assert length == 13 and ends[1][2] == 13 and ends[2][2] == ends[3][2] == 2
    for a, b, _ in ends[1:]:
        assert a == pytest.approx(first, rel=1e-6) and b == pytest.approx(last, rel=1e-6)
