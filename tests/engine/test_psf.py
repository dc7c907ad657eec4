"""PSF shapes, custom kernel files and the numbers shown about a kernel."""
import h5py
import numpy as np
import pytest
import scipy.io
import tifffile

from spectramorph_engine.sensors import psf
from spectramorph_engine.core.errors import InputError

RADIAL = [t for t in psf.PSF_TYPES if t != "gabor"]


@pytest.mark.parametrize("psf_type", psf.PSF_TYPES)
@pytest.mark.parametrize("sigma, k", [(3.4, 7), (1.5, 4)])
def test_every_shape_is_a_normalised_odd_kernel(psf_type, sigma, k):
    kernel = psf.make_psf(psf_type, sigma, k)
    assert kernel.shape == (2 * k + 1, 2 * k + 1)
    assert kernel.dtype == np.float64
    assert abs(kernel.sum() - 1) < 1e-12
    assert np.all(np.isfinite(kernel))
    # every shape is mirror-symmetric in x and y: blurring must not shift the image
    assert np.allclose(kernel, kernel[::-1, :]) and np.allclose(kernel, kernel[:, ::-1])
    if psf_type in RADIAL:
        assert np.allclose(kernel, kernel.T)


def test_gabor_carrier_runs_along_x_only():
    k = psf.make_psf("gabor", 2.0, 7)
    assert not np.allclose(k, k.T)
    c = 7
    # first dark fringe at x = 2 sigma on the centre row, none along y
    assert k[c, c + 4] < 0 and k[c + 4, c] > 0


def test_shapes_match_their_formulas():
    k = 7
    y, x = np.mgrid[-k:k + 1, -k:k + 1]
    r = np.hypot(x, y)
    g = psf.make_psf("gaussian", 2.5, k)
    ref = np.exp(-r ** 2 / (2 * 2.5 ** 2))
    assert np.allclose(g, ref / ref.sum())
    m = psf.make_psf("moffat", 2.0, k)
    ref = (1 + (r / 2.0) ** 2) ** -3.5
    assert np.allclose(m, ref / ref.sum())
    d = psf.make_psf("delta", 3.0, k)
    assert d[k, k] == 1 and d.sum() == 1
    # airy: the first dark ring sits where J1 has its first zero, z = 3.8317
    a = psf.make_psf("airy", 3.0, k)
    r_zero = 3.8317 * 3.0 / 2.33811
    ring = np.abs(r - r_zero) < 0.15
    assert a[ring].max() < 1e-3 * a.max()
    # parabolic with sigma < 1 keeps only the centre: a delta
    assert psf.make_psf("parabolic", 0.9, 3)[3, 3] == 1
    # hermite is a ring: zero at the centre, peak at r = sigma
    h = psf.make_psf("hermite", 3.0, k)
    assert h[k, k] == 0 and h.min() >= 0
    assert h[k, k + 3] == pytest.approx(h.max())


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.4])
def test_gaussian_spread_and_fwhm_match_sigma(sigma):
    k = psf.make_psf("gaussian", sigma, int(np.ceil(5 * sigma)))
    x = np.arange(k.shape[1]) - k.shape[1] // 2
    spread = np.sqrt(np.sum(k.sum(axis=0) * x ** 2))
    assert spread == pytest.approx(sigma, rel=0.02)
    assert psf.psf_fwhm(k) == pytest.approx(2.3548 * sigma, rel=0.03)


def test_fwhm_of_delta_is_one_pixel_and_grows_with_sigma():
    assert psf.psf_fwhm(psf.make_psf("delta", 1.0, 3)) == pytest.approx(1.0)
    for t in ("kolmogorov", "moffat", "lorentzian2", "airy"):
        assert psf.psf_fwhm(psf.make_psf(t, 1.5, 7)) < psf.psf_fwhm(psf.make_psf(t, 3.0, 7))
    # a flat kernel never falls to half inside its support
    assert psf.psf_fwhm(np.ones((5, 5)) / 25) == np.inf


def test_radial_profile_is_exact_for_a_radial_kernel():
    k = psf.make_psf("gaussian", 2.0, 6)
    r, v = psf.radial_profile(k)
    assert r[0] == 0 and np.all(np.diff(r) > 0)
    ref = np.exp(-r ** 2 / 8.0)
    assert np.allclose(v / v[0], ref)


def test_bad_parameters_are_refused():
    with pytest.raises(InputError, match="psf_type.*gaussian"):
        psf.make_psf("boxcar", 2.0, 7)
    with pytest.raises(InputError, match="sigma"):
        psf.make_psf("gaussian", 0.0, 7)
    with pytest.raises(InputError, match="kernel_size"):
        psf.make_psf("gaussian", 1.0, 2.5)
    # a 1x1 hermite kernel is its zero centre: sum 0 cannot be normalised
    with pytest.raises(InputError, match="hermite.*sigma 2"):
        psf.make_psf("hermite", 2.0, 0)


def test_kernel_files_load_normalised(tmp_path):
    k = np.outer([1, 2, 1], [1, 2, 1]).astype(float)
    expected = k / k.sum()
    np.save(tmp_path / "k.npy", k)
    scipy.io.savemat(tmp_path / "k.mat", {"kernel": k})
    np.savetxt(tmp_path / "k.csv", k, delimiter=",")
    np.savetxt(tmp_path / "k.txt", k)
    tifffile.imwrite(tmp_path / "k.tif", k.astype(np.float32))
    with h5py.File(tmp_path / "k.h5", "w") as f:
        f["psf"] = k
    for name in ("k.npy", "k.mat", "k.csv", "k.txt", "k.tif", "k.h5"):
        got = psf.load_psf(tmp_path / name)
        assert got.dtype == np.float64
        assert np.allclose(got, expected), name


def test_mat_v73_kernel_loads(tmp_path):
    # MATLAB -v7.3 files are HDF5 behind a 512-byte header, stored column-major
    k = np.arange(25, dtype=float).reshape(5, 5) + 1
    path = tmp_path / "k73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["K"] = k.T
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, created by test".ljust(116, b" ") + bytes(8) + b"\x00\x02IM")
    got = psf.load_psf(path)
    assert np.allclose(got, k / k.sum())


def test_mat_with_several_kernels_needs_a_key(tmp_path):
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"a": np.ones((3, 3)), "b": np.ones((5, 5))})
    with pytest.raises(InputError, match=r"two\.mat.*several.*a \(3, 3\)"):
        psf.load_psf(path)
    assert psf.load_psf(path, key="b").shape == (5, 5)
    with pytest.raises(InputError, match="no variable 'c'.*a, b"):
        psf.load_psf(path, key="c")


@pytest.mark.parametrize("name, arr, words", [
    ("rect.npy", np.ones((3, 5)), r"rect\.npy.*square.*\(3, 5\)"),
    ("even.npy", np.ones((4, 4)), r"even\.npy.*odd.*\(4, 4\)"),
    ("zero.npy", np.array([[1, -1, 0], [0, 0, 0], [0, 0, 0]], float), r"zero\.npy.*positive"),
    ("nan.npy", np.full((3, 3), np.nan), r"nan\.npy.*NaN"),
    ("cube.npy", np.ones((3, 3, 2)), r"cube\.npy.*2-D.*\(3, 3, 2\)"),
])
def test_bad_kernel_files_are_refused_by_name(tmp_path, name, arr, words):
    np.save(tmp_path / name, arr)
    with pytest.raises(InputError, match=words):
        psf.load_psf(tmp_path / name)


def test_missing_unknown_and_garbled_files(tmp_path):
    with pytest.raises(InputError, match="nope.npy.*does not exist"):
        psf.load_psf(tmp_path / "nope.npy")
    (tmp_path / "k.xyz").write_text("1")
    with pytest.raises(InputError, match=r"k\.xyz.*unknown type"):
        psf.load_psf(tmp_path / "k.xyz")
    (tmp_path / "bad.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(InputError, match=r"bad\.mat"):
        psf.load_psf(tmp_path / "bad.mat")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(InputError, match=r"ragged\.csv.*different lengths"):
        psf.load_psf(tmp_path / "ragged.csv")


def test_bom_csv_kernel_keeps_its_first_row(tmp_path):
    """Issue 17: a UTF-8 CSV kernel with a byte-order mark lost its first row (the BOM made it
    look like a header) and then failed as a 2 x 3 kernel; psf and io read text the same way."""
    from spectramorph_engine import io
    k = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    for name, sep in (("k_bom.csv", ","), ("k_bom.txt", "\t")):
        path = tmp_path / name
        path.write_text("\n".join(sep.join(f"{v:g}" for v in row) for row in k) + "\n", encoding="utf-8-sig")
        assert np.allclose(psf.load_psf(path), k / k.sum()), name
        assert np.array_equal(io.load_matrix(path), k), name
