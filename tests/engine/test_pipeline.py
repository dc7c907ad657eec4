"""run_fusion end to end, as a notebook user calls it."""
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from spectramorph_engine import Cancelled, FusionConfig, FusionInputs, InputError, run_fusion
from spectramorph_engine.core import events
from spectramorph_engine.sensors.degradation import bicubic_upsample
from spectramorph_engine.quality.metrics import psnr, sam

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
URBAN = DATA / "subimage_Urban_R162.mat"
needs_urban = pytest.mark.skipif(not URBAN.exists(), reason="../shared/data/subimage_Urban_R162.mat not present")


def folder_listing(folder: Path) -> list:
    """Every name in `folder`, hidden temporaries included (none must be left)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def synthetic_outputs(result_name: str, figure: str = "png") -> list:
    return sorted([result_name, f"endmembers.{figure}", f"abundances.{figure}", "metrics.json", "run.json"])


def urban_config(tmp_path, **kw):
    base = dict(mat_file=str(URBAN), mat_key="im", output_dir=str(tmp_path / "out"),
                log_dir=str(tmp_path / "logs"), device="cpu")
    base.update(kw)
    return FusionConfig(**base)


@needs_urban
def test_urban_ratio4_beats_bicubic_by_a_wide_margin(tmp_path):
    """Synthetic mode on the real Urban cube, ratio 4, 4 MSI bands, Gaussian PSF, default training."""
    seen = []
    cfg = urban_config(tmp_path, downsample_ratio=4, num_msi_bands=4, psf_type="gaussian")
    result = run_fusion(cfg, progress=seen.append)
    prep = result.prepared
    truth = prep.truth
    bicubic = bicubic_upsample(prep.lr_hsi, 4)
    ours_psnr, bic_psnr = psnr(truth, result.hr_hsi), psnr(truth, bicubic)
    ours_sam, bic_sam = sam(truth, result.hr_hsi), sam(truth, bicubic)
    assert ours_psnr >= bic_psnr + 8.0, (ours_psnr, bic_psnr)
    assert ours_sam <= 0.5 * bic_sam, (ours_sam, bic_sam)
    # The engine's own report agrees with the numbers computed here.
    assert result.metrics["PSNR"] == pytest.approx(ours_psnr, rel=1e-4)
    # Progress: every stage started and finished, one epoch event per epoch with a positive lr.
    started = [e.stage for e in seen if isinstance(e, events.StageStarted)]
    finished = [e.stage for e in seen if isinstance(e, events.StageFinished)]
    assert started == finished and {"load", "nmf", "train", "inference", "save"} <= set(started)
    epochs = [e for e in seen if isinstance(e, events.EpochEnd)]
    assert [e.epoch for e in epochs] == list(range(1, cfg.epochs + 1))
    assert all(e.lr > 0 for e in epochs) and epochs[-1].loss < epochs[0].loss
    assert len(result.loss_history) == cfg.epochs


@needs_urban
def test_same_seed_same_result(tmp_path):
    cfg = urban_config(tmp_path, downsample_ratio=2, epochs=40, hidden_size=64, num_endmembers=4)
    a = run_fusion(cfg, write_outputs=False)
    b = run_fusion(cfg, write_outputs=False)
    np.testing.assert_allclose(a.prepared.lr_hsi, b.prepared.lr_hsi)
    np.testing.assert_allclose(a.hr_hsi, b.hr_hsi, atol=1e-5)
    c = run_fusion(cfg.replace(seed=7), write_outputs=False)
    assert not np.allclose(a.prepared.hr_msi, c.prepared.hr_msi)


@needs_urban
def test_cancel_stops_training_and_writes_nothing(tmp_path):
    cancel = threading.Event()
    epochs_seen = []

    def progress(event):
        if isinstance(event, events.EpochEnd):
            epochs_seen.append(event.epoch)
            if event.epoch == 5:
                cancel.set()

    cfg = urban_config(tmp_path, downsample_ratio=2, epochs=5000)
    with pytest.raises(Cancelled):
        run_fusion(cfg, progress=progress, cancel=cancel)
    assert max(epochs_seen) <= 6
    assert folder_listing(tmp_path / "out") == []       # nothing at all: no result, no temporary


@needs_urban
@pytest.mark.parametrize("kind, name", [("numpy", "hr_hsi.npy"), ("matlab", "hr_hsi.mat"), ("h5", "hr_hsi.h5")])
def test_output_types_load_back(tmp_path, kind, name):
    cfg = urban_config(tmp_path, downsample_ratio=2, epochs=30, hidden_size=64, num_endmembers=5,
                       output_file_type=kind)
    result = run_fusion(cfg)
    path = tmp_path / "out" / name
    assert folder_listing(tmp_path / "out") == synthetic_outputs(name)
    assert folder_listing(tmp_path / "logs") == ["config_used.yaml", "spectramorph.log"]
    if kind == "numpy":
        data = np.load(path)
    elif kind == "matlab":
        mat = scipy.io.loadmat(path)
        data = mat["hr_hsi"]
        assert mat["endmembers"].shape == (5, 162) and mat["abundances"].shape == (34, 78, 5)
    else:
        with h5py.File(path, "r") as f:
            data = f["hr_hsi"][...]
            assert f["endmembers"].shape == (5, 162) and f["abundances"].shape == (34, 78, 5)
            assert f["hr_hsi"].chunks is not None and f["hr_hsi"].compression is not None
    assert data.shape == (34, 78, 162)
    np.testing.assert_allclose(data, result.hr_hsi, atol=1e-6)


def test_in_memory_real_world_pair_and_bad_ratio():
    rng = np.random.default_rng(1)
    with pytest.raises(InputError, match=r"\(30, 30, 3\).*\(8, 8, 40\)"):
        run_fusion(FusionConfig(synthetic=False, epochs=5),
                   inputs=FusionInputs(hr_msi=rng.random((30, 30, 3)), lr_hsi=rng.random((8, 8, 40))),
                   write_outputs=False)
    # a NaN in the LR-HSI marks that pixel as without data: its 4 x 4 HR pixels come back NaN
    bad = rng.random((8, 8, 40))
    bad[0, 0, 0] = np.nan
    result = run_fusion(FusionConfig(synthetic=False, epochs=5, num_endmembers=4, auto_select=False),
                        inputs=FusionInputs(hr_msi=rng.random((32, 32, 3)), lr_hsi=bad), write_outputs=False)
    assert np.isnan(result.hr_hsi[:4, :4]).all() and np.isfinite(result.hr_hsi[4:]).all()
    assert np.isnan(bad[0, 0, 0])                       # the caller's array is left as it was
    with pytest.raises(InputError, match="no valid pixel"):
        run_fusion(FusionConfig(synthetic=False, epochs=5),
                   inputs=FusionInputs(hr_msi=rng.random((32, 32, 3)), lr_hsi=np.full((8, 8, 40), np.nan)),
                   write_outputs=False)


def test_too_many_endmembers_is_refused():
    truth = np.random.default_rng(2).random((16, 16, 10)).astype(np.float32)
    with pytest.raises(InputError, match="num_endmembers"):
        run_fusion(FusionConfig(num_endmembers=12, epochs=2, downsample_ratio=2, kernel_size=1, sigma=0.5,
                                num_msi_bands=3),
                   inputs=FusionInputs(truth=truth), write_outputs=False)


def _real_pair(seed=3):
    """A small real-world pair with a known SRF, in memory."""
    from spectramorph_engine.run.demo import demo_scene
    truth, wl = demo_scene(size=64, num_bands=40, seed=seed)[:2]
    from spectramorph_engine.sensors.degradation import make_synthetic_pair
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.srf import preset_srf
    _, hr, lr = make_synthetic_pair(truth, make_psf("gaussian", 1.0, 2), preset_srf(3, 40), 4, 40, 35, seed)
    return hr, lr


@pytest.mark.parametrize("kind, name, method", [("numpy", "hr_hsi.npy", "spectramorph"),
                                                ("h5", "hr_hsi.h5", "spectramorph"),
                                                ("numpy", "hr_hsi.npy", "glp"), ("h5", "hr_hsi.h5", "glp"),
                                                ("h5", "hr_hsi.h5", "hysure")])
def test_large_real_world_results_stream_to_file(tmp_path, monkeypatch, kind, name, method):
    """A result above the streaming threshold goes to its file during inference (memory stays
    a few row blocks); it equals the in-memory result of the same run, for every method."""
    import spectramorph_engine.run.pipeline as pipeline
    hr, lr = _real_pair()
    cfg = FusionConfig(synthetic=False, epochs=40, hidden_size=64, num_endmembers=4, device="cpu", method=method,
                       output_file_type=kind, output_dir=str(tmp_path / "out"), log_dir=str(tmp_path / "logs"),
                       inference_batch_size=256)
    in_memory = run_fusion(cfg, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr), write_outputs=False)
    monkeypatch.setattr(pipeline, "STREAM_RESULT_BYTES", 0)
    streamed = run_fusion(cfg, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr))
    assert not isinstance(streamed.hr_hsi, np.ndarray) or isinstance(streamed.hr_hsi, np.memmap)
    from spectramorph_engine.io import load_cube
    on_disk = load_cube(tmp_path / "out" / name, key="hr_hsi").data
    np.testing.assert_allclose(on_disk, in_memory.hr_hsi, atol=1e-6)
    for key in ("PSNR", "SAM"):
        assert streamed.consistency["lr_consistency"][key] == pytest.approx(
            in_memory.consistency["lr_consistency"][key], rel=1e-6)


def test_cancelled_streaming_run_leaves_no_result_file(tmp_path, monkeypatch):
    import spectramorph_engine.run.pipeline as pipeline
    monkeypatch.setattr(pipeline, "STREAM_RESULT_BYTES", 0)
    hr, lr = _real_pair()
    cancel = threading.Event()

    def progress(event):
        if isinstance(event, events.StageProgress) and event.stage == "inference":
            cancel.set()

    cfg = FusionConfig(synthetic=False, epochs=5, hidden_size=16, num_endmembers=3, device="cpu",
                       output_file_type="h5", output_dir=str(tmp_path / "out"), log_dir=str(tmp_path / "logs"),
                       inference_batch_size=64)
    with pytest.raises(Cancelled):
        run_fusion(cfg, progress=progress, cancel=cancel, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr))
    assert folder_listing(tmp_path / "out") == []


# --------------------------------------------------------------------------- HR-only nodata
# Issue 17 item 3: nodata masks that ignored the HR-MSI's own nodata passed every test (the
# tests had nodata in the LR-HSI, or in both images at the same place). SPEC 9-10 and
# pipeline.NodataMasks: an LR pixel whose r x r HR block is not wholly valid is left out of
# learning and the scores; an HR pixel with no MSI data is NaN in the result.

def _hr_only_nodata_pair(seed=0, size=32, bands=24, ratio=4):
    """A smooth real-mode pair (HR-MSI 4 bands) with nodata in the HR-MSI only: a block of
    6 x 3 HR pixels at the top-left corner (it reaches into LR pixels (0, 0) and (1, 0)) as NaN,
    and one HR pixel at (21, 22) (LR pixel (5, 5)) holding -9999 in every band."""
    from scipy.ndimage import gaussian_filter
    from spectramorph_engine.sensors.degradation import apply_srf, area_downsample, blur
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.srf import preset_srf
    rng = np.random.default_rng(seed)
    spectra = rng.uniform(0.1, 1.0, (3, bands))
    maps = gaussian_filter(rng.dirichlet(np.ones(3), (size, size)), (2, 2, 0))
    truth = (maps @ spectra).astype(np.float32)
    msi = apply_srf(truth, preset_srf(4, bands)).astype(np.float32)
    lr = area_downsample(blur(truth, make_psf("gaussian", 1.0, 5)), ratio).astype(np.float32)
    hr_bad = np.zeros((size, size), dtype=bool)
    hr_bad[:6, :3] = True
    hr_bad[21, 22] = True
    msi[:6, :3] = np.nan
    msi[21, 22] = -9999.0
    lr_out = np.zeros((size // ratio, size // ratio), dtype=bool)
    lr_out[0, 0] = lr_out[1, 0] = lr_out[5, 5] = True
    return msi, lr, hr_bad, lr_out


def test_hr_only_nodata_masks():
    """pipeline._nodata_masks on its own: HR-only nodata leaves out every LR pixel it touches
    and makes exactly those HR pixels NaN."""
    from spectramorph_engine.run.prepare import _nodata_masks
    msi, lr, hr_bad, lr_out = _hr_only_nodata_pair()
    cfg = FusionConfig(synthetic=False, nodata=-9999.0)
    masks = _nodata_masks(cfg, msi, "HR", None, lr, "LR", None, 4, None)
    np.testing.assert_array_equal(masks.hr_bad, hr_bad)
    assert not masks.lr_bad.any()
    np.testing.assert_array_equal(masks.lr_out, lr_out)
    np.testing.assert_array_equal(masks.hr_out, hr_bad)
    assert masks.summary()["lr_pixels_left_out"] == 3 and masks.summary()["result_pixels_nan"] == 19


def test_hr_only_nodata_is_left_out_of_training_and_nan_in_the_result(monkeypatch):
    """End to end: the network trains on the LR pixels whose HR block is wholly valid, NMF sees
    those only, the consistency scores and misfit map leave the others out, and the result is
    NaN exactly where the HR-MSI has no data (finite everywhere else, including the valid HR
    pixels of a left-out LR pixel)."""
    from spectramorph_engine.methods.spectramorph import training, unmixing
    msi, lr, hr_bad, lr_out = _hr_only_nodata_pair()
    seen = {}
    train, extract = training.train_len, unmixing.extract_endmembers

    def train_spy(model, inputs, targets, *args, **kwargs):
        seen["train"] = (inputs.shape[0], bool(np.isfinite(inputs.numpy()).all()))
        return train(model, inputs, targets, *args, **kwargs)

    def nmf_spy(cube, *args, **kwargs):
        seen["nmf"] = cube.shape[0] * cube.shape[1]
        return extract(cube, *args, **kwargs)

    monkeypatch.setattr(training, "train_len", train_spy)
    monkeypatch.setattr(unmixing, "extract_endmembers", nmf_spy)
    cfg = FusionConfig(synthetic=False, nodata=-9999.0, epochs=20, hidden_size=32, num_endmembers=3,
                       auto_select=False, refine=False, device="cpu")
    result = run_fusion(cfg, inputs=FusionInputs(hr_msi=msi, lr_hsi=lr), write_outputs=False)
    kept = int((~lr_out).sum())
    # the main run's NMF and training (the last: the reduced-resolution check's come first)
    assert seen == {"train": (kept, True), "nmf": kept}
    np.testing.assert_array_equal(result.prepared.masks.lr_out, lr_out)
    hr = np.asarray(result.hr_hsi)
    np.testing.assert_array_equal(np.isnan(hr).all(axis=2), hr_bad)
    assert np.isfinite(hr[~hr_bad]).all()
    np.testing.assert_array_equal(np.isnan(result.misfit).any(axis=2), lr_out)
    assert np.isnan(msi[0, 0]).all() and (msi[21, 22] == -9999.0).all()    # the caller's arrays as they were


def test_reduced_check_scores_only_pixels_with_data():
    """The reduced-resolution check of a pair with nodata: the LR pixels the run left out were
    filled from their neighbours, and scoring them would judge the fusion on made-up values.
    The figures in consistency (the fusion's and the bicubic baseline's) are over the valid
    pixels of the reference only, and say how many."""
    from spectramorph_engine.quality import metrics
    from spectramorph_engine.run.fuse import reduced_pair
    from spectramorph_engine.sensors.degradation import bicubic_upsample
    msi, lr, hr_bad, lr_out = _hr_only_nodata_pair(size=64)
    cfg = FusionConfig(synthetic=False, nodata=-9999.0, epochs=20, hidden_size=32, num_endmembers=3,
                       auto_select=False, refine=False, device="cpu")
    result = run_fusion(cfg, inputs=FusionInputs(hr_msi=msi, lr_hsi=lr), write_outputs=False)
    prep = result.prepared
    rr = result.consistency["reduced_resolution"]
    valid = ~prep.masks.lr_out
    assert rr["pixels_scored"] == int(valid.sum()) == valid.size - 3
    sub, lr_ref = reduced_pair(prep)
    up = bicubic_upsample(sub.lr_hsi, prep.ratio)
    assert rr["bicubic"] == pytest.approx(metrics.compute_many(lr_ref, [up], prep.ratio, valid=valid)[0], rel=1e-6)
    assert rr["bicubic"]["PSNR"] != pytest.approx(metrics.compute_many(lr_ref, [up], prep.ratio)[0]["PSNR"], rel=1e-6)


def test_a_run_from_a_prepared_pair_reads_and_fits_nothing_again_and_writes_nothing_into_it(monkeypatch):
    """The app prepares a pair when it is opened; its run starts from that preparation
    (FusionInputs.prepared): the sensor fit is not redone, the result is the run's from the
    arrays, the prepared arrays come out as they went in (kept runs share them), and the
    preparation's warnings are said again in the run's events."""
    import spectramorph_engine.run.prepare as prepare_mod
    from spectramorph_engine import prepare_inputs
    hr, lr = _real_pair()
    cfg = FusionConfig(synthetic=False, epochs=20, hidden_size=32, num_endmembers=3, auto_select=False,
                       refine_iterations=20, device="cpu", seed=1)
    prep = prepare_inputs(cfg, FusionInputs(hr_msi=hr, lr_hsi=lr))
    prep.warnings.append("a warning of the preparation")
    before = {k: np.array(getattr(prep, k), copy=True) for k in ("hr_msi", "lr_hsi", "srf", "psf")}
    fresh = run_fusion(cfg, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr), write_outputs=False)

    def no_second_preparation(*_a, **_k):
        raise AssertionError("the pair was prepared again")
    monkeypatch.setattr(prepare_mod, "_prepare_real", no_second_preparation)
    said = []
    result = run_fusion(cfg, inputs=FusionInputs(prepared=prep), write_outputs=False,
                        progress=lambda e: said.append(e))
    assert result.prepared is prep
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(prep, key), value, err_msg=key)
    assert any(getattr(e, "text", None) == "a warning of the preparation" and e.level == "warning" for e in said)
    assert "a warning of the preparation" in result.warnings
    # the same run as from the arrays (the prepared pair is the one prepare_inputs makes of them)
    np.testing.assert_allclose(np.asarray(result.hr_hsi), np.asarray(fresh.hr_hsi), atol=1e-5)


def test_the_reduced_check_of_a_big_scene_fuses_a_centre_crop(monkeypatch):
    """Past fuse.MAX_REDUCED_SIDE reduced LR pixels a side the reduced-resolution check fuses and
    scores a centre crop (its cost stops growing with the scene), and run.json's report says so."""
    from spectramorph_engine.run import fuse
    monkeypatch.setattr(fuse, "MAX_REDUCED_SIDE", 2)          # the 4 x 4 reduced pair is cut to 2 x 2
    hr, lr = _real_pair()
    cfg = FusionConfig(synthetic=False, epochs=10, hidden_size=32, num_endmembers=3, auto_select=False,
                       refine_iterations=5, device="cpu")
    rr = run_fusion(cfg, inputs=FusionInputs(hr_msi=hr, lr_hsi=lr), write_outputs=False).consistency[
        "reduced_resolution"]
    assert rr["shape"][:2] == [8, 8] and rr["crop"] == "a centre crop of 8x8 of the 16x16 LR pixels"
    assert np.isfinite(rr["fusion"]["PSNR"]) and np.isfinite(rr["bicubic"]["PSNR"])
