"""NMF endmember extraction (`spectramorph_engine.methods.spectramorph.unmixing`).

Scenes are mixed from real USGS 1995 library spectra (../shared/data). The
library file holds no missing samples (-1.23e34) and no negative values in
its 498 spectra, so all 224 AVIRIS channels are kept; `_library` still drops
any channel with a missing or negative sample, should the file change.
"""
import threading
import warnings

import numpy as np
import pytest
import scipy.io as sio
from scipy.ndimage import gaussian_filter

from spectramorph_engine.core import events
from spectramorph_engine.methods.spectramorph import unmixing
from spectramorph_engine.core.errors import Cancelled, InputError

# Four minerals with distinct absorption features; pairwise angles 12.8..32.4 degrees.
RECOVERY_NAMES = ("Alunite GDS84", "Calcite WS272", "Jarosite GDS99", "Nontronite GDS41")
# Seven for the scikit-learn comparison.
MIX7_NAMES = RECOVERY_NAMES + ("Buddingtonite GDS85", "Hematite GDS27", "Kaolinite CM9")


def _angles_deg(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(a @ b.T, -1.0, 1.0)))


def _library(folder, names):
    """(wavelengths, spectra K x C) of the named library entries, bad channels dropped."""
    d = sio.loadmat(str(folder / "USGS_1995_Library.mat"))
    lib = d["datalib"]
    labels = [bytes(r).decode("latin1").strip() for r in d["names"]]
    idx = [next(i for i, n in enumerate(labels) if n.startswith(w)) for w in names]
    good = (lib[:, 3:] >= 0).all(axis=1)            # missing samples are -1.23e34
    return lib[good, 0], lib[good][:, idx].T


def _abundances(rows, cols, k, rng, sigma=5.0, sharpness=3.0):
    """Smooth positive abundance maps summing to 1, with near-pure regions (a sharp softmax)."""
    f = np.stack([gaussian_filter(rng.standard_normal((rows, cols)), sigma, mode="wrap") for _ in range(k)], -1)
    f = np.exp(sharpness * f / f.std())
    return f / f.sum(-1, keepdims=True)


def _add_noise(x, snr_db, rng):
    p = np.mean(x ** 2)
    return np.clip(x + rng.standard_normal(x.shape) * np.sqrt(p / 10 ** (snr_db / 10)), 0, None)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread for this module: on a small shared CI box, OpenMP barriers
    between two threads under oversubscription make these small factorisations
    10-20x slower (measured); nothing here depends on the thread count."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def recovery_scene(shared_data):
    _, spectra = _library(shared_data, RECOVERY_NAMES)
    rng = np.random.default_rng(3)
    a = _abundances(64, 64, 4, rng)
    cube = _add_noise(a @ spectra, 40.0, rng).astype(np.float32)
    return spectra, a, cube


@pytest.fixture(scope="module")
def recovered(recovery_scene):
    _, _, cube = recovery_scene
    return unmixing.extract_endmembers(cube, 4, method="minvol")


def _nnls_fit(E, targets):
    """Nonnegative coefficients (len(targets) x K) and relative residuals of targets ~ coef @ E."""
    from scipy.optimize import nnls
    coef = np.array([nnls(E.T.astype(np.float64), t)[0] for t in targets])
    rel = np.linalg.norm(targets - coef @ E, axis=1) / np.linalg.norm(targets, axis=1)
    return coef, rel


def test_library_scene_is_as_described(recovery_scene):
    spectra, a, _ = recovery_scene
    ang = _angles_deg(spectra, spectra)
    assert ang[~np.eye(4, dtype=bool)].min() > 10.0
    assert (a.max(axis=(0, 1)) > 0.99).all()          # every endmember has near-pure pixels


def test_endmembers_shape_scale_order(recovery_scene, recovered):
    spectra, _, cube = recovery_scene
    E = recovered
    assert E.shape == (4, spectra.shape[1]) and E.dtype == np.float32
    assert np.allclose(E.max(axis=1), 1.0) and E.min() >= 0
    # ordered by decreasing total abundance (NNLS abundances of a pixel subsample)
    x = np.clip(cube.reshape(-1, cube.shape[2]), 0, 1)[::8].astype(np.float64)
    coef, rel = _nnls_fit(E, x)
    totals = coef.sum(axis=0)
    assert (np.diff(totals) <= 1e-3 * totals.max()).all(), totals
    # and they explain the scene down to its noise (40 dB: 1% relative)
    assert np.median(rel) < 0.012 and rel.max() < 0.03


def test_true_endmembers_lie_in_the_recovered_cone(recovery_scene, recovered):
    """What NMF guarantees: every true spectrum is a nonnegative mix of the recovered ones."""
    spectra, _, _ = recovery_scene
    _, rel = _nnls_fit(recovered, spectra)
    assert rel.max() < 0.01, rel                   # measured 0.1-0.2%


def test_recovers_known_endmembers(recovery_scene, recovered):
    """Plain NMF alone lands 10-45 degrees off here (not identifiable: any wider
    nonnegative cone fits as well); the minimum-volume refinement picks the
    tightest cone, the true spectra (measured 0.06-0.28 degrees)."""
    from scipy.optimize import linear_sum_assignment
    spectra, _, _ = recovery_scene
    ang = _angles_deg(spectra, recovered.astype(np.float64))
    rows, cols = linear_sum_assignment(ang)
    assert ang[rows, cols].max() < 3.0, ang[rows, cols]


def test_deterministic(recovery_scene, recovered):
    _, _, cube = recovery_scene
    again = unmixing.extract_endmembers(cube, 4, method="minvol")
    assert np.array_equal(again, recovered)
    plain = unmixing.extract_endmembers(cube, 4)
    assert np.array_equal(plain, unmixing.extract_endmembers(cube, 4, method="nmf"))


def test_plain_nmf_endmembers_span_the_scene(recovery_scene):
    """The default (plain NMF): spectra scaled to peak 1 and a span that explains the scene
    to its noise, though not necessarily the pure materials (see test_recovers_known_endmembers)."""
    spectra, _, cube = recovery_scene
    E = unmixing.extract_endmembers(cube, 4)
    assert E.shape == (4, spectra.shape[1]) and np.allclose(E.max(axis=1), 1.0) and E.min() >= 0
    _, rel = _nnls_fit(E, spectra)
    assert rel.max() < 0.02, rel


@pytest.fixture(scope="module")
def matrices(shared_data):
    """Two few-thousand-pixel matrices: 7 library spectra mixed at 150 bands, and the real Urban cube."""
    wl, spectra = _library(shared_data, MIX7_NAMES)
    grid = np.linspace(wl[0], wl[-1], 150)
    spectra = np.stack([np.interp(grid, wl, s) for s in spectra])
    rng = np.random.default_rng(7)
    mix = _add_noise(_abundances(64, 64, 7, rng, sigma=4.0, sharpness=1.5).reshape(-1, 7) @ spectra, 35.0, rng)
    urban = sio.loadmat(str(shared_data / "subimage_Urban_R162.mat"))["im"]
    return {"usgs_mix": mix.astype(np.float32),
            "urban": urban.reshape(-1, urban.shape[2]).astype(np.float32)}


@pytest.mark.parametrize("which", ["usgs_mix", "urban"])
def test_error_matches_sklearn(matrices, which):
    skd = pytest.importorskip("sklearn.decomposition")
    x = matrices[which]
    W, H, info = unmixing.nmf(x, 7)
    assert W.shape == (x.shape[0], 7) and H.shape == (7, x.shape[1])
    assert W.dtype == H.dtype == np.float32 and W.min() >= 0 and H.min() >= 0
    direct = np.linalg.norm(x.astype(np.float64) - W.astype(np.float64) @ H)
    assert info["error"] == pytest.approx(direct, rel=1e-4)
    assert 1 <= info["iterations"] <= 400 and "seconds" in info      # the time is recorded, not judged

    model = skd.NMF(n_components=7, init="nndsvda", max_iter=400, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # a ConvergenceWarning is a result here
        model.fit(x.astype(np.float64))
    ratio = info["error"] / model.reconstruction_err_
    assert ratio <= 1.02, ratio                   # never more than 2% above
    assert ratio >= 0.9, ratio                    # (ours converges further; 0.95-0.99 measured)


def test_accepts_torch_and_device(matrices):
    import torch
    x = matrices["urban"][:500]
    W1, H1, _ = unmixing.nmf(x, 3, max_iter=30)
    W2, H2, _ = unmixing.nmf(torch.from_numpy(x), 3, max_iter=30, device=torch.device("cpu"))
    assert np.array_equal(W1, W2) and np.array_equal(H1, H2)


def test_cancel_and_progress(matrices):
    x = matrices["urban"]
    done = threading.Event()
    done.set()
    with pytest.raises(Cancelled):
        unmixing.nmf(x, 4, cancel=done)
    with pytest.raises(Cancelled):
        unmixing.extract_endmembers(x.reshape(34, 78, -1), 4, cancel=done)

    seen = []
    unmixing.nmf(x, 4, max_iter=35, tol=0.0, progress=seen.append)
    assert len(seen) >= 4 and all(isinstance(e, events.StageProgress) for e in seen)
    assert {e.stage for e in seen} == {"nmf"}
    fractions = [e.fraction for e in seen]
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions == sorted(fractions)
    assert fractions[-1] == 1.0

    # a token set while running stops the run at the next check (<= 10 iterations)
    token = threading.Event()
    count = []

    def on_progress(event):
        count.append(event)
        if event.fraction > 0:
            token.set()
    with pytest.raises(Cancelled):
        unmixing.nmf(x, 4, max_iter=400, tol=0.0, progress=on_progress, cancel=token)
    assert len(count) == 2


@pytest.mark.parametrize("k", [0, -1, 5, 2.5, True])
def test_bad_num_endmembers(k):
    cube = np.random.default_rng(0).random((2, 2, 8)).astype(np.float32)   # N = 4 pixels, so K <= 4
    with pytest.raises(InputError, match="num_endmembers"):
        unmixing.extract_endmembers(cube, k)


def test_bad_inputs():
    with pytest.raises(InputError, match="all zeros"):
        unmixing.extract_endmembers(-np.ones((4, 4, 6), np.float32), 2)   # zero once clipped
    with pytest.raises(InputError, match="rows x cols x bands"):
        unmixing.extract_endmembers(np.ones((4, 6), np.float32), 2)
    with pytest.raises(InputError, match="nonnegative"):
        unmixing.nmf(-np.ones((5, 4)), 2)
    with pytest.raises(InputError, match="NaN"):
        unmixing.nmf(np.full((5, 4), np.nan), 2)
    with pytest.raises(InputError, match="num_components"):
        unmixing.nmf(np.ones((5, 4)), 5)


@pytest.mark.cuda
def test_cuda_matches_cpu(matrices):
    import torch
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch")
    x = matrices["usgs_mix"]
    _, H_cpu, info_cpu = unmixing.nmf(x, 7)
    W, H, info = unmixing.nmf(x, 7, device="cuda")
    assert W.dtype == H.dtype == np.float32 and H.shape == H_cpu.shape
    assert info["error"] == pytest.approx(info_cpu["error"], rel=5e-3)
