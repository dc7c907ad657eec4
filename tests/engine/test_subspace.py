"""The LR-HSI's signal subspace dimension (sensors/subspace.py): it must count the materials of
a linear mixture over its noise, and the refinement must use and record it when asked."""
import numpy as np
import pytest
import scipy.io as sio

from spectramorph_engine.sensors import subspace


def _distinct_spectra(shared_data, k):
    """k library spectra (rows), picked greedily so that each is far in angle from those before:
    near-duplicate minerals differ by less than the noise, and then rightly do not count."""
    d = sio.loadmat(str(shared_data / "USGS_1995_Library.mat"))
    lib = d["datalib"]
    good = (lib[:, 3:] >= 0).all(axis=1)            # missing samples are -1.23e34
    spectra = lib[good][:, 3:].T
    unit = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
    chosen = [0]
    for _ in range(k - 1):
        closest = np.max(unit @ unit[chosen].T, axis=1)
        chosen.append(int(np.argmin(closest)))
    return spectra[chosen]


def _mixture(spectra, side, snr_db, seed):
    """Dirichlet abundances over side x side pixels, with white noise at `snr_db` per band (the
    noise varies across bands with their power, as the benches' noise does)."""
    rng = np.random.default_rng(seed)
    a = rng.dirichlet(np.full(spectra.shape[0], 0.5), size=side * side)
    x = a @ spectra
    sd = np.sqrt(np.mean(x ** 2, axis=0) / 10 ** (snr_db / 10))
    return (x + rng.standard_normal(x.shape) * sd).reshape(side, side, -1), sd ** 2


@pytest.mark.parametrize("k", [5, 9])
@pytest.mark.parametrize("snr_db", [30.0, 40.0])
@pytest.mark.parametrize("side", [16, 48])      # 256 pixels (an LR-HSI at ratio 8) and 2304, for 224 bands
def test_the_estimate_counts_the_endmembers_of_a_noisy_mixture(shared_data, k, snr_db, side):
    spectra = _distinct_spectra(shared_data, k)
    cube, noise = _mixture(spectra, side, snr_db, seed=k)
    found = subspace.signal_subspace(cube)
    assert found.dim == k, found.signal_power[:k + 3]
    # the noise it read per band is the noise that was added (within the sample's spread)
    assert np.median(found.band_noise / noise) == pytest.approx(1.0, abs=0.15)


def test_noise_alone_has_no_signal_and_a_rank_one_cube_has_one():
    rng = np.random.default_rng(0)
    assert subspace.signal_subspace(rng.normal(size=(30, 30, 100))).dim == 0
    one = np.outer(rng.random(900) + 0.5, rng.random(100) + 0.5)
    assert subspace.signal_subspace(one + rng.normal(0, 0.01, one.shape)).dim == 1


def test_spike_power_inverts_the_sample_spread():
    g = 0.5
    s = np.array([0.5, 1.0, 4.0, 40.0])
    seen = (1 + s) * (1 + g / s)
    above = s > np.sqrt(g)          # below sqrt(g) a spike hides in the noise's spread
    got = subspace.spike_power(seen, g)
    np.testing.assert_allclose(got[above], s[above], rtol=1e-9)
    assert np.isnan(subspace.spike_power(np.array([1.0, (1 + np.sqrt(g)) ** 2]), g)).all()
