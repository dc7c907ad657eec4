"""auto_select: candidates scored on the reduced-resolution pair, the choice recorded and used;
auto_select off runs exactly the configured settings; methods run through the same pipeline."""
import json

import numpy as np
import pytest

from spectramorph_engine import FusionConfig, FusionInputs, run_fusion
from spectramorph_engine.run.selection import MIN_REDUCED_PIXELS, SWITCH_MARGIN_DB, candidate_changes


def _truth(H=128, W=128, C=24, seed=0):
    """Smooth spectra of 5 materials in blobs: big enough for the reduced pair at ratio 2."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(0, 1, C)
    E = np.stack([0.1 + 0.8 * np.exp(-0.5 * ((wl - m) / 0.2) ** 2) for m in rng.uniform(0, 1, 5)])
    A = rng.random((H // 16, W // 16, 5)) ** 2
    A = np.repeat(np.repeat(A, 16, 0), 16, 1) + 0.05 * rng.random((H, W, 5))
    A /= A.sum(axis=2, keepdims=True)
    return (A @ E).astype(np.float32)


def _config(tmp_path, **kw):
    base = dict(downsample_ratio=2, num_msi_bands=4, epochs=40, hidden_size=64, num_endmembers=5, sigma=1.0,
                kernel_size=2, device="cpu", output_dir=str(tmp_path / "out"), log_dir=str(tmp_path / "logs"),
                refine_iterations=30)
    base.update(kw)
    return FusionConfig(**base)


def test_candidates_cover_prior_k_endmembers():
    cfg = FusionConfig(num_endmembers=7)
    labels = [label for label, _ in candidate_changes(cfg, msi_bands=4, max_k=50, ratio=4)]
    assert labels == ["configured", "prior on", "K 5", "K 9", "endmembers minvol"]
    # a forced prior is not second-guessed; K stays within what the pair allows
    labels = [label for label, _ in candidate_changes(cfg.replace(spec_prior=True), 4, 8, 4)]
    assert labels == ["configured", "K 5", "endmembers minvol"]
    # auto at 1 band and ratio 4: the prior is on, its flip is the candidate
    first, second = candidate_changes(cfg, 1, 50, 4)[:2]
    assert first[1]["spec_prior"] is True and second[0] == "prior off"


def test_auto_select_records_candidates_and_choice_in_run_json(tmp_path):
    cfg = _config(tmp_path)
    result = run_fusion(cfg, inputs=FusionInputs(truth=_truth()))
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    sel = run["auto_select"]
    assert sel["skipped"] is None and 64 * 64 // 4 >= MIN_REDUCED_PIXELS
    labels = [c["label"] for c in sel["candidates"]]
    assert {"configured", "refinement off", "prior on", "K 3", "K 7", "endmembers minvol"} == set(labels)
    assert all(np.isfinite(c["PSNR"]) and c["PSNR"] > 10 for c in sel["candidates"])
    chosen = next(c for c in sel["candidates"] if c["label"] == sel["chosen"])
    best = max(c["PSNR"] for c in sel["candidates"])
    assert chosen["PSNR"] >= best - SWITCH_MARGIN_DB - 1e-9   # the best, unless within the switching margin
    # the run used the chosen settings, and says so
    used = run["config_used"]
    for key, value in chosen["changes"].items():
        assert used[key] == value
    assert used["auto_select"] is False and run["config"]["auto_select"] is True
    assert result.method_info["num_endmembers"] == chosen["changes"]["num_endmembers"]
    assert "seconds" in sel and sel["summary"].startswith("auto-selection")     # the time is recorded, not judged


def test_auto_select_off_runs_exactly_the_configured_settings(tmp_path):
    cfg = _config(tmp_path, auto_select=False, spec_prior=False, num_endmembers=4, refine=False)
    result = run_fusion(cfg, inputs=FusionInputs(truth=_truth()), write_outputs=False)
    assert result.selection is None and result.config_used == cfg
    info = dict(result.method_info, training=dict(result.method_info["training"]))
    assert info["training"].pop("loop_seconds") >= 0          # the time is recorded, not judged
    assert info == {"prior": False, "num_endmembers": 4, "endmember_method": "nmf", "refined": False,
                    "training": {"epochs": cfg.epochs, "epochs_run": cfg.epochs, "stopped_early": False}}
    assert result.endmembers.shape[0] == 4


def test_small_scenes_skip_the_selection_with_a_reason(tmp_path):
    cfg = _config(tmp_path)
    result = run_fusion(cfg, inputs=FusionInputs(truth=_truth(32, 32)), write_outputs=False)
    assert result.selection["candidates"] == [] and "too small" in result.selection["skipped"]
    assert result.config_used.auto_select is False


@pytest.mark.parametrize("method", ["glp", "hysure"])
def test_classical_methods_write_their_outputs_without_endmember_figures(tmp_path, method):
    cfg = _config(tmp_path, method=method, hysure_iterations=20)
    result = run_fusion(cfg, inputs=FusionInputs(truth=_truth(64, 64)))
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["hr_hsi.npy", "metrics.json", "run.json"]
    scores = json.loads((out / "metrics.json").read_text())
    assert scores["method"] == method and scores[method]["PSNR"] > scores["bicubic"]["PSNR"] + 3
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == method and run["auto_select"] is None
    assert result.endmembers is None and result.hr_hsi.shape == (64, 64, 24)
