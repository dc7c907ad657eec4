"""The refinement tile by tile (issue 20 item 3): overlapping ratio-aligned tiles with a halo,
the scene's global quantities computed once, equal to the whole-scene solve; and the memory
guard that switches to it when the whole solve would not fit."""
import numpy as np
import pytest

from spectramorph_engine.core import events, memory
from spectramorph_engine.methods.spectramorph import refine_result
from spectramorph_engine.methods.spectramorph.refinement import lr_residual_sum, refine, scene_terms
from spectramorph_engine.methods.spectramorph.tiled_refinement import default_halo, refine_tiled, tiles
from spectramorph_engine.run.results import PreparedInputs
from spectramorph_engine.sensors import degradation
from blocky_scene import blocky_scene

SIZE, RATIO, P = 160, 4, 10
HALO = 48       # see test_tiled_refinement_equals_the_whole_scene_refinement




@pytest.fixture(scope="module")
def pair():
    """160 x 160 x 40 at ratio 4, 3 MSI bands, an asymmetric 7 x 5 PSF (no symmetry a wrong
    orientation or offset could hide behind), and a flawed network result (smooth abundance
    errors) for the refinement to repair."""
    truth, A, E = blocky_scene(SIZE, SIZE)
    rng = np.random.default_rng(3)
    psf = rng.random((7, 5)) * np.outer(np.hanning(9)[1:-1], np.hanning(7)[1:-1])
    psf /= psf.sum()
    srf = np.zeros((3, 40))
    for i, (a, b) in enumerate(((0, 14), (13, 27), (26, 40))):
        srf[i, a:b] = 1.0 / (b - a)
    truth, msi, lr = degradation.make_synthetic_pair(truth, psf, srf, RATIO, 40.0, 45.0, seed=1)
    error = np.repeat(np.repeat(rng.normal(0, 0.15, (SIZE // 16, SIZE // 16, 4)), 16, 0), 16, 1)
    alle = (A + error).astype(np.float32)
    terms = scene_terms(alle, E, lr, psf, RATIO, srf, subspace_dim=P)
    return dict(truth=truth, E=E, psf=psf, srf=srf, msi=msi, lr=lr, alle=alle, terms=terms)


def _cube(ref):
    return ref.delta @ ref.basis


def test_tiles_are_ratio_aligned_cover_the_scene_once_and_halos_are_clipped():
    seen = np.zeros((100, 72), dtype=int)
    for (t0, t1, s0, s1), (a0, a1, b0, b1) in tiles(100, 72, 4, 30, 10):
        assert all(v % 4 == 0 for v in (t0, s0, a0, b0)) and a0 <= t0 and b0 <= s0 and a1 >= t1 and b1 >= s1
        assert a1 <= 100 and b1 <= 72 and (t0 - a0 in (0, 12)) and (a1 - t1 in (0, 12) or a1 == 100)
        seen[t0:t1, s0:s1] += 1
    assert (seen == 1).all()


def test_the_default_halo_follows_the_measured_decay():
    """64 HR pixels at ratio 4 (the bench's decay: float rounding at 200 ADMM iterations), 8 LR
    pixels at ratio 12, four kernel sides for a wide blur; a multiple of the ratio."""
    small = np.ones((7, 5)) / 35
    assert default_halo(small, 4) == 64 and default_halo(small, 8) == 64 and default_halo(small, 3) == 66
    assert default_halo(small, 12) == 96
    assert default_halo(np.ones((21, 21)) / 441, 4) == 96       # 4 x (21 + 4 - 1)


def test_the_scene_terms_sum_block_by_block_as_over_the_whole_image(pair):
    """lr_residual_sum goes a few LR rows at a time with the blur's reach around each block: the
    same sum as one pass over the image."""
    V = pair["terms"].basis
    whole = lr_residual_sum(pair["alle"], pair["E"], pair["lr"], pair["psf"], RATIO, V, rows=1000)
    blocks = lr_residual_sum(pair["alle"], pair["E"], pair["lr"], pair["psf"], RATIO, V, rows=3)
    assert blocks == pytest.approx(whole, rel=1e-5)


@pytest.mark.parametrize("tv", [0.0, 10.0])
def test_tiled_refinement_equals_the_whole_scene_refinement(pair, tv):
    """Tiles of 64 x 64 HR pixels with a halo of 48 (windows of 112-144 of the scene's 160; the
    bench's float floor at 100 ADMM iterations -- the default, 64, covers the 200-iteration
    ceiling and would make every window here the whole scene) give the whole-scene solve:
    conjugate gradients to a tight tolerance, the TV's ADMM for a fixed number of iterations
    (its stopping rule is global). Measured 2-7e-6 of the cube's range (float32); with no
    halo the tiles' edges are off by ~20% of the range."""
    p = pair
    kw = dict(iterations=300, cg_tol=3e-7) if tv == 0 else dict(tv_iterations=100, tv_tol=None)
    whole = refine(p["alle"], p["E"], p["lr"], p["msi"], p["psf"], RATIO, p["srf"], subspace_dim=P, tv_weight=tv,
                   **kw)
    scale = float(p["truth"].max() - p["truth"].min())
    halo = HALO
    tiled = refine_tiled(p["alle"], p["E"], p["lr"], p["msi"], p["psf"], RATIO, p["srf"], terms=p["terms"], tile=64,
                         halo=halo, tv_weight=tv, **kw)
    assert tiled.info["tiled"]["tiles"] == 9 and tiled.info["tiled"]["halo"] == halo
    assert whole.info["prior_weight"] == pytest.approx(p["terms"].prior_weight, rel=1e-5)
    diff = np.abs(_cube(tiled) - _cube(whole)).max() / scale
    assert diff < 1e-5, diff
    broken = refine_tiled(p["alle"], p["E"], p["lr"], p["msi"], p["psf"], RATIO, p["srf"], terms=p["terms"],
                          tile=64, halo=0, tv_weight=tv, **kw)
    assert np.abs(_cube(broken) - _cube(whole)).max() / scale > 0.05      # the halo is what makes them equal


def test_with_a_free_margin_the_tiles_differ_only_near_the_scene_edge(pair):
    """A real pair's TV solve leaves HySure's margin free, and that margin wraps around its
    periodic FFT grid, whose size differs between a window and the scene: the whole-scene
    solution itself depends on it within a few pixels of the scene's edge. There the tiled
    result differs (measured 2.6e-3 of the range, below the pair's noise); 32 pixels in, it
    is the whole solve to float rounding."""
    p = pair
    kw = dict(tv_iterations=100, tv_tol=None, tv_weight=10.0, boundary="symmetric")
    whole = refine(p["alle"], p["E"], p["lr"], p["msi"], p["psf"], RATIO, p["srf"], subspace_dim=P, **kw)
    tiled = refine_tiled(p["alle"], p["E"], p["lr"], p["msi"], p["psf"], RATIO, p["srf"], terms=p["terms"], tile=64,
                         halo=HALO, **kw)
    scale = float(p["truth"].max() - p["truth"].min())
    diff = np.abs(_cube(tiled) - _cube(whole)).max(axis=2) / scale
    assert diff[32:-32, 32:-32].max() < 1e-5
    assert diff.max() < 5e-3


def test_with_the_stopping_rule_each_tile_stops_on_its_own_residuals(pair):
    """The default TV solve stops by its relative residuals; a tile stops by its own, so the two
    are close, not float-equal (measured here: under 1e-3 of the range, far below the noise)."""
    p = pair
    whole = refine(p["alle"], p["E"], p["lr"], p["msi"], p["psf"], RATIO, p["srf"], subspace_dim=P, tv_weight=10.0,
                   tv_iterations=200)
    tiled = refine_tiled(p["alle"], p["E"], p["lr"], p["msi"], p["psf"], RATIO, p["srf"], terms=p["terms"], tile=64,
                         halo=HALO, tv_weight=10.0, tv_iterations=200)
    scale = float(p["truth"].max() - p["truth"].min())
    assert np.abs(_cube(tiled) - _cube(whole)).max() / scale < 1e-3
    lo, hi = tiled.info["tiled"]["iterations_min_max"]
    assert lo <= whole.info["iterations"] + 20 and hi >= whole.info["iterations"] - 20


class _Config:
    refine_trust, refine_msi_weight, refine_iterations, refine_subspace, num_endmembers = 8.0, 1.0, 100, P, 4

    def __init__(self, tv):
        self.refine_tv_weight = tv


def test_a_low_memory_budget_tiles_the_refinement_and_says_so(pair, monkeypatch):
    """The memory guard's estimate of the whole solve above the budget: refine_result tiles it,
    with a message giving both figures, and the result is the whole solve's."""
    p = pair
    prep = PreparedInputs(mode="synthetic", hr_msi=p["msi"], lr_hsi=p["lr"], srf=p["srf"], ratio=RATIO, psf=p["psf"])
    config = _Config(0.0)
    whole = refine_result(config, prep, p["alle"], p["E"], device="cpu")
    assert "tiled" not in whole.info
    need = memory.estimate_refinement(p["msi"].shape, P, 4, False)
    budget = int(0.85 * need)       # tiles of 40 (16 of them): windows of 136 fit, the whole 160 does not
    monkeypatch.setattr(memory, "available_bytes", lambda: budget)
    seen = []
    tiled = refine_result(config, prep, p["alle"], p["E"], device="cpu", progress=seen.append, halo=HALO)
    said = [e.text for e in seen if isinstance(e, events.Message)]
    assert len(said) == 1 and "tile by tile" in said[0] and "available" in said[0], said
    assert tiled.info["tiled"]["tiles"] == 16
    tile = tiled.info["tiled"]["tile"] + 2 * tiled.info["tiled"]["halo"]
    assert memory.estimate_refinement((tile, tile, 3), P, 4, False) <= memory.HEADROOM * budget
    scale = float(p["truth"].max() - p["truth"].min())
    assert np.abs(_cube(tiled) - _cube(whole)).max() / scale < 2e-5
    # a scene no wider than a tile and its halos: tiling would save nothing, the whole solve runs
    seen.clear()
    again = refine_result(config, prep, p["alle"], p["E"], device="cpu", progress=seen.append, halo=80)
    said = [e.text for e in seen if isinstance(e, events.Message)]
    assert "tiled" not in again.info and len(said) == 1 and "whole scene although" in said[0], said


def test_over_the_working_budget_the_refinement_tiles_although_the_memory_is_there(pair, monkeypatch):
    """A whole-scene solve over memory.REFINE_BUDGET_BYTES runs tile by tile even with memory to
    spare (a default 2048^2 run stays under 1.5 GB), says why, and gives the whole solve's result;
    under the budget it runs whole, without a word."""
    p = pair
    prep = PreparedInputs(mode="synthetic", hr_msi=p["msi"], lr_hsi=p["lr"], srf=p["srf"], ratio=RATIO, psf=p["psf"])
    config = _Config(0.0)
    seen = []
    whole = refine_result(config, prep, p["alle"], p["E"], device="cpu", progress=seen.append)
    assert "tiled" not in whole.info and not [e for e in seen if isinstance(e, events.Message)]
    need = memory.estimate_refinement(p["msi"].shape, P, 4, False)
    assert memory.fits(need)                                    # plenty available on the test machine
    monkeypatch.setattr(memory, "REFINE_BUDGET_BYTES", int(0.8 * need))
    tiled = refine_result(config, prep, p["alle"], p["E"], device="cpu", progress=seen.append, halo=HALO)
    said = [e.text for e in seen if isinstance(e, events.Message)]
    assert len(said) == 1 and "tile by tile" in said[0] and "working budget" in said[0], said
    assert tiled.info["tiled"]["tiles"] == 16
    scale = float(p["truth"].max() - p["truth"].min())
    assert np.abs(_cube(tiled) - _cube(whole)).max() / scale < 2e-5


def test_tiles_for_a_budget_are_the_fewest_equal_parts_that_fit():
    """The default run at 2048^2 (ratio 4, 4 MSI bands, P 7, TV, a 1 x 1 blur): the whole solve
    is over the working budget, halves fit it -- 4 tiles of 1024 -- and the smallest tile is
    the floor when nothing fits."""
    from spectramorph_engine.methods.spectramorph.tiled_refinement import grid_margin, tile_for_budget
    psf = np.ones((1, 1))
    margin, halo = grid_margin(psf, 4), default_halo(psf, 4)
    shape, budget = (2048, 2048, 4), memory.REFINE_BUDGET_BYTES
    assert memory.estimate_refinement(shape, 7, 7, True, margin) > budget
    tile = tile_for_budget(shape, 4, 7, 7, True, margin, halo, budget)
    assert tile == 1024 and len(list(tiles(2048, 2048, 4, tile, halo))) == 4
    assert memory.estimate_refinement((tile + 2 * halo, tile + 2 * halo, 4), 7, 7, True, margin) <= budget
    assert tile_for_budget((1500, 2048, 4), 4, 7, 7, True, margin, halo, budget) == 1024
    assert tile_for_budget(shape, 4, 7, 7, True, margin, halo, 1000) == 16       # nothing fits: halo / 4
    assert tile_for_budget((96, 96, 4), 4, 7, 7, True, margin, halo, 1000) is None     # no window is smaller


def test_an_estimated_subspace_is_made_once_per_scene_and_recorded(pair, monkeypatch):
    """refine_subspace null: P is the LR-HSI's signal dimension (4 materials: 4), at least K,
    estimated once for the scene whether the solve is whole or tiled, and both record it."""
    from spectramorph_engine.sensors import subspace
    p = pair
    prep = PreparedInputs(mode="synthetic", hr_msi=p["msi"], lr_hsi=p["lr"], srf=p["srf"], ratio=RATIO, psf=p["psf"])
    config = _Config(0.0)
    config.refine_subspace = None
    calls = []
    real = subspace.signal_subspace
    monkeypatch.setattr(subspace, "signal_subspace", lambda *a, **k: calls.append(1) or real(*a, **k))
    whole = refine_result(config, prep, p["alle"], p["E"], device="cpu")
    tiled = refine_result(config, prep, p["alle"], p["E"], device="cpu", tile=64, halo=HALO)
    assert len(calls) == 2 and "tiled" in tiled.info
    for ref in (whole, tiled):
        record = ref.info["subspace_estimate"]
        assert record["signal_dim"] == 4 and record["clamp"][0] == 4 and record["pixels"] == (SIZE // RATIO) ** 2
        assert ref.info["subspace_dim"] == ref.basis.shape[0] == 4
    config.refine_subspace = 10          # given: nothing estimated
    plain = refine_result(config, prep, p["alle"], p["E"], device="cpu")
    assert "subspace_estimate" not in plain.info and plain.info["subspace_dim"] == 10 and len(calls) == 2
