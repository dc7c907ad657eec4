"""The closed-form quadratic solve (warm start of the refinement's ADMM) and the ADMM's
stopping rule."""
import numpy as np
import pytest
import torch

from spectramorph_engine.methods import fourier_solve as fs
from spectramorph_engine.sensors import degradation, spatial


def _periodic_forward(x, psf, r):
    """Blur (circular, by rolls: independent of the module's FFTs) then sample every r-th pixel."""
    kernel, (oy, ox) = spatial.decimation_kernel(psf, r)
    out = np.zeros_like(x)
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            out += kernel[a, b] * np.roll(x, (a - oy, b - ox), axis=(-2, -1))
    return out


def test_roll_operator_is_the_pipelines_degradation_inside_the_frame():
    rng = np.random.default_rng(1)
    psf = rng.random((5, 3))
    psf /= psf.sum()
    img = rng.random((32, 32))
    ours = _periodic_forward(img, psf, 4)[::4, ::4]
    ref = degradation.degrade_spatial(img[:, :, None], psf, 4)[:, :, 0]
    assert np.allclose(ours[2:-2, 2:-2], ref[2:-2, 2:-2], atol=1e-6)


def test_periodic_solve_satisfies_the_normal_equations_with_an_asymmetric_psf():
    rng = np.random.default_rng(0)
    r, h, w, P = 4, 6, 5, 3
    H, W = r * h, r * w
    psf = rng.random((5, 3))
    psf /= psf.sum()
    M = rng.normal(size=(P, P))
    Q = M @ M.T + 0.05 * np.eye(P)
    y = rng.normal(size=(P, h, w))
    f = rng.normal(size=(P, H, W))
    b_hat = torch.as_tensor(fs.frame_transfer(psf, r, H, W))
    x = fs.solve_periodic(b_hat, r, torch.as_tensor(y), torch.as_tensor(f), Q).numpy()
    # B^T S^T (S B x - y) + Q x - f = 0, with B^T the flipped kernel's rolls
    resid_lr = np.zeros_like(x)
    resid_lr[:, ::r, ::r] = _periodic_forward(x, psf, r)[:, ::r, ::r] - y
    # the adjoint of the rolls: the same rolls reversed
    kernel, (oy, ox) = spatial.decimation_kernel(psf, r)
    adj = np.zeros_like(x)
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            adj += kernel[a, b] * np.roll(resid_lr, (-(a - oy), -(b - ox)), axis=(-2, -1))
    normal = adj + np.einsum("pq,qhw->phw", Q, x) - f
    assert np.linalg.norm(normal) < 1e-9 * np.linalg.norm(f)


def _small_pair(seed=0):
    from spectramorph_engine.sensors import psf as psf_mod
    rng = np.random.default_rng(seed)
    C, K = 30, 3
    wl = np.linspace(0, 1, C)
    E = np.stack([0.2 + 0.6 * np.exp(-0.5 * ((wl - m) / 0.15) ** 2) for m in rng.uniform(0, 1, K)])
    A = rng.random((6, 6, K)) ** 3
    A = np.repeat(np.repeat(A, 8, 0), 8, 1)
    A /= A.sum(axis=2, keepdims=True)
    truth = (A @ E).astype(np.float32)
    psf = psf_mod.make_psf("gaussian", 1.5, 5)
    srf = np.zeros((3, C))
    for i in range(3):
        srf[i, i * 10:(i + 1) * 10] = 0.1
    truth, msi, lr = degradation.make_synthetic_pair(truth, psf, srf, 4, 35.0, 40.0, seed=1)
    noisy_A = (A * (1 + rng.normal(0, 0.1, A.shape))).astype(np.float32)
    return truth, msi, lr, psf, srf, noisy_A, E


def test_zero_border_solve_satisfies_its_normal_equations():
    """The warm start on HySure's zero-margin grid: checked with the grid's own forward model
    (FourierGrid.degrade equals degrade_spatial, tested in test_hysure) and its adjoint by rolls."""
    from spectramorph_engine.methods.hysure import FourierGrid
    rng = np.random.default_rng(2)
    r, H, W, P = 4, 24, 20, 2
    psf = rng.random((5, 3))
    psf /= psf.sum()
    grid = FourierGrid(psf, r, H, W)
    M = rng.normal(size=(P, P))
    Q = M @ M.T + 0.05 * np.eye(P)
    y = torch.as_tensor(rng.normal(size=(P, H // r, W // r)), dtype=torch.float32)
    f = torch.as_tensor(rng.normal(size=(P, H, W)), dtype=torch.float32)
    b_frame = torch.as_tensor(fs.frame_transfer(psf, r, H, W), dtype=torch.complex64)
    x, its, rel = fs.solve_zero_border(grid, r, y, f, Q, b_frame, iterations=50, tol=1e-6)
    assert rel < 1e-5
    # residual with the forward operator applied image by image, adjoint by the dot-product test
    xn = x.numpy().astype(np.float64)
    fwd = np.stack([grid.degrade(xn[p]) for p in range(P)]) - y.numpy()
    # <A x, e_i> for the data part: grad = D^T (D x - y); check <grad, v> = <D x - y, D v> for random v
    v = rng.normal(size=(P, H, W))
    Dv = np.stack([grid.degrade(v[p]) for p in range(P)])
    f64 = f.numpy().astype(np.float64)
    lhs = np.sum(fwd * Dv) + np.sum(np.einsum("pq,qhw->phw", Q, xn) * v) - np.sum(f64 * v)
    assert abs(lhs) < 1e-3 * np.linalg.norm(f64) * np.linalg.norm(v)


@pytest.mark.parametrize("warm", [False, True])
def test_stopping_rule_matches_the_full_run(warm):
    from spectramorph_engine.methods.hysure import solve
    from spectramorph_engine.quality import metrics
    truth, msi, lr, psf, srf, A, E = _small_pair()
    V = np.linalg.svd(lr.reshape(-1, lr.shape[2]).astype(np.float64), full_matrices=False)[2][:4]
    common = dict(basis=V, prior_latents=A, prior_mixing=E, prior_weight=1e-3, tv_weight=2e-4)
    full, _, _, info_full = solve(msi, lr, 4, psf, srf, np.zeros(3), iterations=200, **common)
    fast, Eb, hist, info = solve(msi, lr, 4, psf, srf, np.zeros(3), iterations=200, tol=5e-5, warm_start=warm,
                                 record_objective=False, **common)
    assert info_full["iterations"] == 200 and info_full["stop"] == "iteration limit"
    assert info["iterations"] <= 200 and len(hist) == 2
    p_full = metrics.psnr(truth, np.clip(full @ Eb.T, 0, 1))
    p_fast = metrics.psnr(truth, np.clip(fast @ Eb.T, 0, 1))
    assert p_fast > p_full - 0.3, (p_fast, p_full, info["stop"])
    if warm:
        assert info["warm_start"] and info["iterations"] < 200, info["stop"]
