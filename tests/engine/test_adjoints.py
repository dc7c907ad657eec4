"""Every spatial forward operator of the engine against one written out here (blur with the PSF
-- a true convolution, 'same' size -- then r x r block mean), and every adjoint by the
dot-product test <D x, y> == <x, D^T y>, with PSFs that are NOT symmetric and NOT centred:
the test scenes all use centred Gaussians, for which a kernel flipped by mistake (a
correlation for a convolution, or the forward blur used as its own adjoint) changes nothing.

Where the engine's operators live (issue 17; one operator since issue 18):
- sensors.spatial.SpatialModel(psf, r, boundary): THE operator, forward and adjoint, border
  rules "zero", "edge" (consistency's "free") and "symmetric"; its Fourier form
  (decimation_kernel, padded_kernel, transfer_function) and the torch kernels' orientation.
  Every path below delegates to it, and each is checked equal to its forward.
- degradation.degrade_spatial (blur + area_downsample), consistency._degrade,
  methods._ops.degrade (boundary "zero" and "symmetric"), srf_estimation.msi_to_lr_grid:
  forward only, no adjoint in those modules -- their forward is checked against the dense
  matrix below.
- methods._ops.decimation_kernel: the same operator as one convolution sampled every r-th pixel.
- refinement._SpatialModel: forward and adjoint (zero padding only: the conjugate-gradient
  refinement takes no boundary rule; with TV it hands `boundary` to HySure's solver).
- methods.hysure.FourierGrid: forward (`degrade`, `blur_hat`); its adjoint is inline in
  hysure.solve's X-step (conj(b_hat)), checked by what the solver reaches on a pair made with
  an asymmetric PSF.
"""
import numpy as np
import pytest
import torch

from spectramorph_engine.quality import consistency
from spectramorph_engine.sensors import degradation, spatial, srf_estimation
from spectramorph_engine.methods import _ops, hysure
from spectramorph_engine.methods.spectramorph.refinement import _SpatialModel


def random_psf(size=7, seed=0):
    """A random nonnegative kernel summing to 1: no symmetry of any kind, its mass off centre."""
    k = np.random.default_rng(seed).random((size, size)) ** 3
    k[: size // 2] *= 3.0                       # heavier on the top rows: the centroid is off centre
    return k / k.sum()


def rotated_psf(size=7, sx=1.6, sy=0.6, angle=0.5, shift=(0.4, -0.3)):
    """An anisotropic Gaussian rotated by `angle` and shifted by a fraction of a pixel."""
    c = size // 2
    y, x = np.mgrid[-c:c + 1, -c:c + 1].astype(np.float64)
    x, y = x - shift[1], y - shift[0]
    u = np.cos(angle) * x + np.sin(angle) * y
    v = -np.sin(angle) * x + np.cos(angle) * y
    k = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return k / k.sum()


PSFS = {"random7": random_psf(7, seed=0), "rotated5": rotated_psf(5), "random3": random_psf(3, seed=4)}


def _index(i, n, boundary):
    """Source index of i on an axis of n samples (None: outside, zero padding)."""
    if 0 <= i < n:
        return i
    if boundary == "zero":
        return None
    if boundary == "edge":
        return 0 if i < 0 else n - 1                # np.pad "edge": the edge sample replicated
    return -i - 1 if i < 0 else 2 * n - i - 1       # np.pad "symmetric": the edge sample repeated


def dense_operator(psf, r, H, W, boundary="zero"):
    """(H/r * W/r) x (H * W) matrix of: blur[i, j] = sum_ab k[a, b] x[i + ca - a, j + cb - b]
    (a convolution, the kernel centred), then the mean over each r x r block."""
    k = np.asarray(psf, dtype=np.float64)
    ca, cb = k.shape[0] // 2, k.shape[1] // 2
    B = np.zeros((H * W, H * W))
    for i in range(H):
        for j in range(W):
            for a in range(k.shape[0]):
                for b in range(k.shape[1]):
                    si, sj = _index(i + ca - a, H, boundary), _index(j + cb - b, W, boundary)
                    if si is not None and sj is not None:
                        B[i * W + j, si * W + sj] += k[a, b]
    h, w = H // r, W // r
    M = np.zeros((h * w, H * W))
    for i in range(H):
        for j in range(W):
            M[(i // r) * w + j // r, i * W + j] = 1.0 / (r * r)
    return M @ B


def _apply(D, image, r):
    H, W = image.shape
    return (D @ image.reshape(-1)).reshape(H // r, W // r)


def test_the_reference_operator_is_a_convolution():
    """The reference itself: a single bright pixel spreads as the kernel (not its mirror image)."""
    k = PSFS["random7"]
    spot = np.zeros((9, 9))
    spot[4, 4] = 1.0
    D = dense_operator(k, 1, 9, 9)
    np.testing.assert_allclose(_apply(D, spot, 1)[1:8, 1:8], k, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PSFS))
@pytest.mark.parametrize("r", [2, 3])
def test_forward_operators_equal_the_written_out_one(name, r):
    """degrade_spatial, consistency._degrade, _ops.degrade (zero and symmetric),
    decimation_kernel and FourierGrid.degrade: the same numbers as the dense matrix, border
    pixels included."""
    psf = PSFS[name]
    H, W = 4 * r, 5 * r
    x = np.random.default_rng(1).random((H, W))
    ref = _apply(dense_operator(psf, r, H, W), x, r)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(degradation.degrade_spatial(x32, psf, r), ref, atol=2e-6)
    np.testing.assert_allclose(consistency._degrade(x32[:, :, None], r, psf)[:, :, 0], ref, atol=2e-6)
    np.testing.assert_allclose(_ops.degrade(x32, psf, r, "zero"), ref, atol=2e-6)
    ref_sym = _apply(dense_operator(psf, r, H, W, "symmetric"), x, r)
    np.testing.assert_allclose(_ops.degrade(x32, psf, r, "symmetric"), ref_sym, atol=2e-6)
    assert np.abs(ref_sym - ref).max() > 1e-3            # the two rules differ at the border
    # decimation_kernel: entry [a, b] acts at offset (a - origin) as a convolution, sampled at r*i
    kernel, origin = _ops.decimation_kernel(psf, r)
    full = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            for a in range(kernel.shape[0]):
                for b in range(kernel.shape[1]):
                    si, sj = i - (a - origin[0]), j - (b - origin[1])
                    if 0 <= si < H and 0 <= sj < W:
                        full[i, j] += kernel[a, b] * x[si, sj]
    np.testing.assert_allclose(full[::r, ::r], ref, atol=1e-12)
    grid = hysure.FourierGrid(psf, r, H, W)
    np.testing.assert_allclose(grid.degrade(x32), ref, atol=2e-6)
    # the check has teeth: the mirrored kernel gives other numbers
    assert np.abs(degradation.degrade_spatial(x32, psf[::-1, ::-1], r) - ref).max() > 1e-3


def test_srf_estimation_brings_the_msi_to_the_lr_grid_with_the_same_operator():
    """srf_estimation has a forward only (msi_to_lr_grid); its kernels are centred isotropic
    Gaussians (gaussian_kernel), so orientation cannot matter there -- it must still be the
    sensor model of degrade_spatial."""
    x = np.random.default_rng(2).random((12, 16, 2)).astype(np.float32)
    for sigma in (0.0, 0.8, 1.7):
        k = srf_estimation.gaussian_kernel(sigma)
        assert np.array_equal(k, k[::-1, ::-1]) and np.array_equal(k, k.T)
        ref = np.stack([_apply(dense_operator(k, 4, 12, 16), x[:, :, b].astype(np.float64), 4) for b in range(2)], 2)
        np.testing.assert_allclose(srf_estimation.msi_to_lr_grid(x, 4, sigma), ref, atol=2e-6)


@pytest.mark.parametrize("name", sorted(PSFS) + ["none"])
@pytest.mark.parametrize("r", [2, 4])
def test_refinement_spatial_model_is_the_operator_and_its_adjoint(name, r):
    """_SpatialModel in float64: forward == the dense matrix; <D x, y> == <x, D^T y> for random
    x, y (3 channels at once); and adjoint == the dense matrix's transpose."""
    psf = None if name == "none" else PSFS[name]
    H, W = 3 * r, 4 * r
    model = _SpatialModel(psf, r, "cpu", dtype=torch.float64)
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.standard_normal((3, H, W)))
    y = torch.as_tensor(rng.standard_normal((3, H // r, W // r)))
    Dx, Dty = model.forward(x), model.adjoint(y)
    assert Dx.shape == y.shape and Dty.shape == x.shape
    lhs, rhs = float((Dx * y).sum()), float((x * Dty).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), abs(rhs), 1.0), (lhs, rhs)
    D = dense_operator(np.ones((1, 1)) if psf is None else psf, r, H, W)
    for ch in range(3):
        np.testing.assert_allclose(Dx[ch].numpy(), _apply(D, x[ch].numpy(), r), atol=1e-12)
        np.testing.assert_allclose(Dty[ch].numpy().reshape(-1), D.T @ y[ch].numpy().reshape(-1), atol=1e-12)


def test_refinement_spatial_model_float32_dot_product():
    """The dtype the refinement runs in: the same identity to float32 rounding."""
    psf = PSFS["random7"]
    model = _SpatialModel(psf, 4, "cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.randn((2, 32, 28), generator=g)
    y = torch.randn((2, 8, 7), generator=g)
    lhs = float((model.forward(x).double() * y.double()).sum())
    rhs = float((x.double() * model.adjoint(y).double()).sum())
    assert abs(lhs - rhs) <= 1e-4 * max(abs(lhs), abs(rhs)), (lhs, rhs)


def test_hysure_fourier_grid_blur_and_its_adjoint_on_the_periodic_grid():
    """FourierGrid's blur on the periodic grid (b_hat) and the adjoint solve uses
    (multiplying by conj(b_hat)) satisfy the dot-product identity; b_hat's kernel is PSF * box
    with the decimation kernel's origin at [0, 0]."""
    psf = PSFS["random7"]
    r, H, W = 3, 12, 15
    grid = hysure.FourierGrid(psf, r, H, W)
    rng = np.random.default_rng(5)
    x = torch.as_tensor(rng.standard_normal((grid.Hp, grid.Wp)), dtype=torch.float32)
    y = torch.as_tensor(rng.standard_normal((grid.Hp, grid.Wp)), dtype=torch.float32)
    Bx = grid.blur_hat(torch.fft.rfft2(x))
    Bty = torch.fft.irfft2(torch.fft.rfft2(y) * torch.conj(grid.b_hat), s=(grid.Hp, grid.Wp))
    lhs, rhs = float((Bx.double() * y.double()).sum()), float((x.double() * Bty.double()).sum())
    assert abs(lhs - rhs) <= 1e-4 * max(abs(lhs), abs(rhs)), (lhs, rhs)
    # and the plain product (the forward blur as its own adjoint) fails it
    wrong = torch.fft.irfft2(torch.fft.rfft2(y) * grid.b_hat, s=(grid.Hp, grid.Wp))
    assert abs(float((x.double() * wrong.double()).sum()) - lhs) > 1e-2 * abs(lhs)


def _asymmetric_pair(r=4, H=32, C=16, seed=0):
    """A smooth noise-free scene degraded with the rotated, shifted PSF, and a 3-band MSI."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    E = rng.uniform(0.1, 1.0, (4, C))
    A = gaussian_filter(rng.dirichlet(np.ones(4), (H, H)), (1.5, 1.5, 0))
    truth = (A @ E).astype(np.float32)
    srf = np.zeros((3, C))
    for i, (a, b) in enumerate(((0, 6), (5, 11), (10, C))):
        srf[i, a:b] = 1.0 / (b - a)
    psf = rotated_psf(7, sx=2.0, sy=0.7, angle=0.6, shift=(0.8, -0.6))
    truth, msi, lr = degradation.make_synthetic_pair(truth, psf, srf, r, None, None, seed=1)
    return truth, msi, lr, psf, srf


def test_hysure_solver_fits_a_pair_made_with_an_asymmetric_psf():
    """hysure.solve's X-step applies the adjoint blur inline (conj of b_hat): on a noise-free
    pair made with an off-centre, rotated PSF, the solution reproduces the LR-HSI closely and
    the objective falls far. The forward blur used as adjoint leaves the LR-HSI unexplained."""
    truth, msi, lr, psf, srf = _asymmetric_pair()
    coeff, E, history, _ = hysure.solve(msi, lr, 4, psf, srf, np.zeros(3), boundary="zero", subspace=4,
                                        tv_weight=1e-5, iterations=60, device="cpu")
    fused = coeff @ E.T.astype(np.float32)
    lr_fit = degradation.degrade_spatial(fused.astype(np.float32), psf, 4)
    from spectramorph_engine.quality import metrics
    assert metrics.psnr(lr, lr_fit) > 50.0, metrics.psnr(lr, lr_fit)
    assert history[-1] < 0.01 * history[0], (history[0], history[-1])


@pytest.mark.parametrize("boundary", spatial.BOUNDARIES)
@pytest.mark.parametrize("name", sorted(PSFS) + ["none"])
@pytest.mark.parametrize("r", [2, 3])
def test_spatial_model_is_the_operator_and_its_adjoint(boundary, name, r):
    """spatial.SpatialModel in float64, every border rule: forward == the dense matrix;
    <D x, y> == <x, D^T y> (3 bands at once); adjoint == the dense matrix's transpose."""
    psf = None if name == "none" else PSFS[name]
    H, W = 4 * r, 5 * r
    model = spatial.SpatialModel(psf, r, boundary)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((H, W, 3))
    y = rng.standard_normal((H // r, W // r, 3))
    Dx, Dty = model.forward(x), model.adjoint(y)
    assert Dx.shape == y.shape and Dty.shape == x.shape and Dx.dtype == Dty.dtype == np.float64
    lhs, rhs = float((Dx * y).sum()), float((x * Dty).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), abs(rhs), 1.0), (lhs, rhs)
    D = dense_operator(np.ones((1, 1)) if psf is None else psf, r, H, W, boundary)
    for b in range(3):
        np.testing.assert_allclose(Dx[:, :, b], _apply(D, x[:, :, b], r), atol=1e-12)
        np.testing.assert_allclose(Dty[:, :, b].reshape(-1), D.T @ y[:, :, b].reshape(-1), atol=1e-12)
    if psf is not None:
        # teeth: the kernel's mirror image is another operator; the forward blur is not its own adjoint
        assert np.abs(spatial.SpatialModel(psf[::-1, ::-1], r, boundary).forward(x) - Dx).max() > 1e-3
        wrong = spatial.area_upsample_adjoint(y, r)
        wrong = spatial.blur(wrong, psf, boundary)
        assert abs(float((x * wrong).sum()) - lhs) > 1e-6 * abs(lhs)


@pytest.mark.parametrize("boundary", spatial.BOUNDARIES)
def test_spatial_model_float32_dot_product(boundary):
    """float32 in, float32 out, the identity to float32 rounding; "free" names the "edge" rule."""
    psf = PSFS["random7"]
    model = spatial.SpatialModel(psf, 4, boundary)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((32, 28, 2)).astype(np.float32)
    y = rng.standard_normal((8, 7, 2)).astype(np.float32)
    Dx, Dty = model.forward(x), model.adjoint(y)
    assert Dx.dtype == Dty.dtype == np.float32
    lhs = float((Dx.astype(np.float64) * y).sum())
    rhs = float((x.astype(np.float64) * Dty).sum())
    assert abs(lhs - rhs) <= 1e-5 * max(abs(lhs), abs(rhs)), (lhs, rhs)
    assert spatial.canonical_boundary("free") == "edge"


@pytest.mark.parametrize("name", sorted(PSFS))
@pytest.mark.parametrize("r", [2, 4])
def test_every_path_delegates_to_the_spatial_model(name, r):
    """Each place that degrades a cube gives spatial.SpatialModel's numbers (float32, to
    rounding): degrade_spatial / blur / area_downsample, consistency._degrade ("zero", "free" =
    "edge"), _ops.degrade ("zero", "symmetric") and decimation_kernel, msi_to_lr_grid,
    FourierGrid (its b_hat is spatial's transfer function; its degrade the forward), and the
    refinement's torch operator (forward and adjoint)."""
    psf = PSFS[name]
    H, W = 6 * r, 5 * r
    rng = np.random.default_rng(9)
    x = rng.random((H, W, 3)).astype(np.float32)
    y = rng.random((H // r, W // r, 3)).astype(np.float32)

    def model(b, k=psf):
        return spatial.SpatialModel(k, r, b)

    def same(a, b):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(b).max())))

    zero, edge, sym = model("zero").forward(x), model("edge").forward(x), model("symmetric").forward(x)
    assert np.abs(edge - zero).max() > 1e-3
    if psf.shape[0] > 3:         # a one-pixel margin: mirroring and replicating copy the same pixel
        assert np.abs(sym - edge).max() > 1e-4
    same(degradation.degrade_spatial(x, psf, r), zero)
    same(degradation.area_downsample(degradation.blur(x, psf), r), zero)
    same(consistency._degrade(x, r, psf), zero)
    same(consistency._degrade(x, r, psf, "free"), edge)
    same(_ops.degrade(x, psf, r, "zero"), zero)
    same(_ops.degrade(x, psf, r, "symmetric"), sym)
    same(_ops.degrade(x[:, :, 0], psf, r, "symmetric"), sym[:, :, 0])
    kernel, origin = _ops.decimation_kernel(psf, r)
    k2, o2 = model("zero").decimation_kernel()
    assert origin == o2 and np.array_equal(kernel, k2)
    sigma = 1.1
    g = srf_estimation.gaussian_kernel(sigma)
    same(srf_estimation.msi_to_lr_grid(x, r, sigma), model("zero", g).forward(x))
    same(srf_estimation.msi_to_lr_grid(x, r, 0.0), spatial.SpatialModel(None, r).forward(x))
    grid = hysure.FourierGrid(psf, r, H, W)
    np.testing.assert_allclose(grid.b_hat.numpy(), model("zero").transfer_function((grid.Hp, grid.Wp)),
                               atol=1e-6)
    same(grid.degrade(x[:, :, 1]), zero[:, :, 1])
    tm = _SpatialModel(psf, r, "cpu")
    tx = torch.as_tensor(np.moveaxis(x, 2, 0).copy())
    same(np.moveaxis(tm.forward(tx).numpy(), 0, 2), zero)
    ty = torch.as_tensor(np.moveaxis(y, 2, 0).copy())
    same(np.moveaxis(tm.adjoint(ty).numpy(), 0, 2), model("zero").adjoint(y))
