"""Spectral libraries: the real USGS 1995 library (../shared/data), ENVI .sli and CSV files
written here and read back, resampling onto the Urban cube's bands, matching by angle, and
the one-sentence errors for damaged files."""
import numpy as np
import pytest
import scipy.io

from spectramorph_engine.core.errors import InputError
from spectramorph_engine.quality.library import (SpectralLibrary, load_library, match_spectrum,
                                                 resample_library, spectral_angles)
from spectramorph_engine.sensors.scenarios import evenly_spaced_wavelengths

URBAN_BANDS = 162


@pytest.fixture(scope="module")
def usgs_path(shared_data):
    path = shared_data / "USGS_1995_Library.mat"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="module")
def usgs(usgs_path):
    return load_library(usgs_path)


@pytest.fixture(scope="module")
def urban_wl():
    # The Urban file stores no wavelengths; the project takes its 162 bands as evenly
    # spread over 400..2500 nm (scenarios.evenly_spaced_wavelengths), as the GUI does.
    return evenly_spaced_wavelengths(URBAN_BANDS)


@pytest.fixture(scope="module")
def usgs_on_urban(usgs, urban_wl):
    return resample_library(usgs, urban_wl)


def test_usgs_library_loads_in_nm_with_names(usgs, usgs_path):
    raw = scipy.io.loadmat(str(usgs_path))["datalib"]
    assert len(usgs) == 498 == usgs.spectra.shape[0]          # 501 columns less wl, fwhm, channel
    assert usgs.spectra.shape == (498, 224)
    assert usgs.wavelengths[0] == pytest.approx(383.15, abs=0.01)
    assert usgs.wavelengths[-1] == pytest.approx(2508.2, abs=0.01)
    assert np.all(np.diff(usgs.wavelengths) > 0)              # AVIRIS' out-of-order channels sorted
    assert usgs.names[0] == "Acmite NMNH133746"
    assert usgs.names[-1] == "Walnut_Leaf SUN (Green)"
    assert not any("micron" in n.lower() or "channel" in n.lower() for n in usgs.names)
    # Values are the file's, column for column, in wavelength order.
    order = np.argsort(raw[:, 0], kind="stable")
    np.testing.assert_array_equal(usgs.spectra[5], raw[order, 8])
    assert usgs.source.endswith("USGS_1995_Library.mat")


def test_no_data_marker_becomes_nan_and_gaps_stay_gaps(tmp_path):
    wl = np.array([0.4, 0.5, 0.6, 0.7, 0.8])
    spectra = np.array([[0.1, 0.2, -1.23e34, 0.4, 0.5], [0.3, 0.3, 0.3, 0.3, 0.3]])
    names = np.array([list("Wavelengths in microns".ljust(24)), list("a".ljust(24)), list("b".ljust(24))])
    scipy.io.savemat(tmp_path / "lib.mat", {"datalib": np.column_stack([wl, spectra.T]),
                                            "names": np.array([[ord(ch) for ch in row] for row in names],
                                                              dtype=np.uint8)})
    lib = load_library(tmp_path / "lib.mat")
    assert lib.names == ["a", "b"]
    np.testing.assert_allclose(lib.wavelengths, [400, 500, 600, 700, 800])
    assert np.isnan(lib.spectra[0, 2]) and np.isfinite(lib.spectra[1]).all()
    res = resample_library(lib, [450, 550, 600, 650, 700, 750, 350, 850])
    # 450 interpolates; 550 and 650 would cross the missing 600 nm sample: NaN; 700 sits on a
    # sample; 350 and 850 are outside the library.
    np.testing.assert_allclose(res.spectra[0, [0, 4, 5]], [0.15, 0.4, 0.45])
    assert np.isnan(res.spectra[0, [1, 2, 3, 6, 7]]).all()
    np.testing.assert_allclose(res.spectra[1, :6], 0.3)
    assert np.isnan(res.spectra[1, 6:]).all()
    # Matching skips the missing bands instead of failing.
    hits = match_spectrum(np.array([0.15, 1, 1, 1, 0.4, 0.45, 1, 1]) * 2, res, top=2)
    assert hits[0][:2] == ("a", 0) and hits[0][2] == pytest.approx(0.0, abs=1e-6)


def test_resampling_onto_urban_interpolates_between_neighbours(usgs, usgs_on_urban, usgs_path, urban_wl):
    raw = scipy.io.loadmat(str(usgs_path))["datalib"]
    wl_um = raw[:, 0]
    assert usgs_on_urban.spectra.shape == (498, URBAN_BANDS)
    assert usgs_on_urban.names == usgs.names
    np.testing.assert_array_equal(usgs_on_urban.wavelengths, urban_wl)
    # Band 0 (400 nm) lies between the library's channels 1 (392.84 nm) and 2 (402.54 nm).
    t = (0.400 - wl_um[1]) / (wl_um[2] - wl_um[1])
    for j in (0, 57, 300):
        expected = raw[1, 3 + j] + t * (raw[2, 3 + j] - raw[1, 3 + j])
        assert usgs_on_urban.spectra[j, 0] == pytest.approx(expected, rel=1e-12)
    # Band 100 (1704.97 nm) by hand from the two channels around it.
    band = 100
    w = urban_wl[band] / 1000.0
    i = np.flatnonzero(wl_um <= w).max()
    assert wl_um[i] < w < wl_um[i + 1]
    expected = raw[i, 3 + 57] + (w - wl_um[i]) / (wl_um[i + 1] - wl_um[i]) * (raw[i + 1, 3 + 57] - raw[i, 3 + 57])
    assert usgs_on_urban.spectra[57, band] == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(usgs_on_urban.spectra).all()            # 400..2500 is inside 383..2508


def _same_hits(a, b):
    assert [h[:2] for h in a] == [h[:2] for h in b]
    np.testing.assert_allclose([h[2] for h in a], [h[2] for h in b], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("j", [0, 50, 200, 400])
def test_scaled_noisy_library_spectrum_ranks_itself_first(usgs_on_urban, j):
    rng = np.random.default_rng(j)
    pixel = 0.7 * usgs_on_urban.spectra[j] + rng.normal(0.0, 0.002, URBAN_BANDS)
    hits = match_spectrum(pixel, usgs_on_urban, top=10)
    assert len(hits) == 10
    assert hits[0][1] == j and hits[0][0] == usgs_on_urban.names[j]
    assert hits[0][2] < 3.0          # degrees (acmite is dark: 0.002 noise tilts it most)
    angles = [h[2] for h in hits]
    assert angles == sorted(angles)
    # Scale invariance: the brightness of the pixel changes nothing.
    _same_hits(match_spectrum(5.0 * pixel, usgs_on_urban, top=10), hits)


def test_mixture_ranks_main_component_in_top_three(usgs_on_urban):
    s = usgs_on_urban.spectra
    pixel = 0.75 * s[50] + 0.25 * s[300]          # antigorite with some muscovite
    assert 50 in [h[1] for h in match_spectrum(pixel, usgs_on_urban, top=3)]


def test_roi_pixels_are_matched_by_their_mean_and_band_mask_limits_bands(usgs_on_urban):
    rng = np.random.default_rng(1)
    s = usgs_on_urban.spectra[123]
    roi = s[None, :] * rng.uniform(0.5, 1.0, (40, 1)) + rng.normal(0, 0.002, (40, URBAN_BANDS))
    roi[3, 10:20] = np.nan                       # missing samples in a pixel are ignored
    hits = match_spectrum(roi, usgs_on_urban, top=3)
    assert hits[0][1] == 123
    mean = np.nanmean(roi, axis=0)
    _same_hits(hits, match_spectrum(mean, usgs_on_urban, top=3))
    mask = np.zeros(URBAN_BANDS, dtype=bool)
    mask[:40] = True
    direct = spectral_angles(mean, usgs_on_urban.spectra[[123]], band_mask=mask)[0]
    x, y = mean[:40], s[:40]
    by_hand = np.degrees(np.arccos(x @ y / np.linalg.norm(x) / np.linalg.norm(y)))
    assert direct == pytest.approx(by_hand, rel=1e-10)
    with pytest.raises(InputError, match="resample the library"):
        match_spectrum(mean[:100], usgs_on_urban)


def _write_sli(folder, stem, spectra, wl_um, names, header_extra=""):
    spectra = np.asarray(spectra, dtype="<f4")
    (folder / f"{stem}.sli").write_bytes(spectra.tobytes())
    (folder / f"{stem}.hdr").write_text(
        "ENVI\n"
        f"samples = {spectra.shape[1]}\nlines = {spectra.shape[0]}\nbands = 1\nheader offset = 0\n"
        "file type = ENVI Spectral Library\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"
        "wavelength units = Micrometers\n"
        f"spectra names = {{{', '.join(names)}}}\n"
        f"wavelength = {{{', '.join(f'{w:.6f}' for w in wl_um)}}}\n" + header_extra)
    return folder / f"{stem}.sli", folder / f"{stem}.hdr"


def test_envi_sli_round_trip(tmp_path, usgs):
    pick = [3, 77, 250]
    spectra = usgs.spectra[pick].astype(np.float32)
    sli, hdr = _write_sli(tmp_path, "minerals", spectra, usgs.wavelengths / 1000.0,
                          [usgs.names[i].replace(",", " ") for i in pick])
    for path in (sli, hdr):
        lib = load_library(path)
        assert lib.names == [usgs.names[i] for i in pick]
        np.testing.assert_allclose(lib.wavelengths, usgs.wavelengths, atol=1e-3)   # 6 decimals of um
        np.testing.assert_array_equal(lib.spectra, spectra.astype(np.float64))


def test_envi_sli_written_by_spectral_package(tmp_path):
    from spectral.io import envi
    data = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, np.nan, 0.5]], dtype=np.float32)
    envi.SpectralLibrary(data, {"spectra names": ["grass", "roof"], "wavelength": [450, 550, 650, 750],
                                "wavelength units": "Nanometers"}).save(
        str(tmp_path / "lib"))
    lib = load_library(tmp_path / "lib.hdr")
    assert lib.names == ["grass", "roof"]
    np.testing.assert_allclose(lib.wavelengths, [450, 550, 650, 750])
    np.testing.assert_allclose(lib.spectra[0], data[0].astype(np.float64))
    assert np.isnan(lib.spectra[1, 2])


def test_envi_ignore_value_and_scale_factor(tmp_path):
    data = np.array([[1000.0, 2000.0, 3000.0], [5000.0, -9999.0, 5000.0]])
    _, hdr = _write_sli(tmp_path, "scaled", data, [0.5, 0.6, 0.7], ["a", "b"],
                        "data ignore value = -9999\nreflectance scale factor = 10000\n")
    lib = load_library(hdr)
    np.testing.assert_allclose(lib.wavelengths, [500, 600, 700])
    np.testing.assert_allclose(lib.spectra[0], [0.1, 0.2, 0.3])
    assert np.isnan(lib.spectra[1, 1]) and lib.spectra[1, 2] == pytest.approx(0.5)


def test_csv_round_trip_with_units_and_missing_cells(tmp_path, usgs):
    pick = [10, 20]
    wl = usgs.wavelengths
    rows = ["name_ignored_first,quartz,calcite"]       # first column used: increasing values
    a, b = usgs.spectra[pick[0]].tolist(), usgs.spectra[pick[1]].tolist()
    rows += [f"{w:.4f},{a[i]!r},{b[i]!r}" for i, w in enumerate(wl)]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    lib = load_library(tmp_path / "a.csv")
    assert lib.names == ["quartz", "calcite"]
    np.testing.assert_allclose(lib.wavelengths, wl, atol=1e-4)
    np.testing.assert_array_equal(lib.spectra, usgs.spectra[pick])

    # A named wavelength column (not first), micrometres by value, a missing cell, semicolons.
    text = "grass;Wavelength (um);soil\n0.2;0.5;0.1\n;0.6;0.2\n0.4;0.7;nan\n"
    (tmp_path / "b.csv").write_text(text)
    lib = load_library(tmp_path / "b.csv")
    assert lib.names == ["grass", "soil"]
    np.testing.assert_allclose(lib.wavelengths, [500, 600, 700])
    assert np.isnan(lib.spectra[0, 1]) and np.isnan(lib.spectra[1, 2])
    # Wavelengths given in decreasing order come back increasing.
    (tmp_path / "c.csv").write_text("wavelength_nm,x\n900,3\n800,2\n700,1\n")
    lib = load_library(tmp_path / "c.csv")
    np.testing.assert_allclose(lib.wavelengths, [700, 800, 900])
    np.testing.assert_allclose(lib.spectra[0], [1, 2, 3])
    # Two channels at one wavelength (overlapping spectrometers) become one sample, their mean.
    (tmp_path / "d.csv").write_text("wavelength,x,y\n0.5,1,4\n0.6,2,\n0.6,4,6\n0.7,5,7\n")
    lib = load_library(tmp_path / "d.csv")
    np.testing.assert_allclose(lib.wavelengths, [500, 600, 700])
    np.testing.assert_allclose(lib.spectra, [[1, 3, 5], [4, 6, 7]])


def _bad(path, *fragments):
    with pytest.raises(InputError) as err:
        load_library(path)
    msg = str(err.value)
    assert path.stem in msg and "\n" not in msg
    for f in fragments:
        assert f in msg
    return msg


def test_bad_files_raise_one_sentence_naming_the_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    _bad(tmp_path / "empty.csv", "empty")
    (tmp_path / "header_only.csv").write_text("wavelength,a\n")
    _bad(tmp_path / "header_only.csv", "no data")
    (tmp_path / "nowl.csv").write_text("quartz,calcite\n0.3,0.2\n0.1,0.4\n0.2,0.3\n")
    _bad(tmp_path / "nowl.csv", "no wavelength column")
    (tmp_path / "text.csv").write_text("wavelength,a\n400,0.1\n500,oops\n")
    _bad(tmp_path / "text.csv", "'oops'")
    (tmp_path / "noheader.csv").write_text("400,0.1\n500,0.2\n600,0.3\n")
    _bad(tmp_path / "noheader.csv", "header")

    wl = np.linspace(0.4, 2.5, 50)
    sli, hdr = _write_sli(tmp_path, "cut", np.random.default_rng(0).random((4, 50)), wl, list("abcd"))
    sli.write_bytes(sli.read_bytes()[:500])
    _bad(sli, "truncated")
    _bad(hdr, "truncated")
    sli, hdr = _write_sli(tmp_path, "img", np.ones((2, 50)), wl, list("ab"))
    hdr.write_text(hdr.read_text().replace("ENVI Spectral Library", "ENVI Standard"))
    msg = _bad(hdr, "ENVI Standard")
    assert "not 'ENVI Spectral Library'" in msg
    sli, hdr = _write_sli(tmp_path, "few", np.ones((2, 50)), wl[:40], list("ab"))
    _bad(hdr, "40 wavelengths")
    (tmp_path / "junk.hdr").write_text("this is not a header\n")
    (tmp_path / "junk.sli").write_bytes(b"\0" * 64)
    _bad(tmp_path / "junk.hdr")
    (tmp_path / "garbage.mat").write_bytes(b"not a matlab file at all" * 10)
    _bad(tmp_path / "garbage.mat", "MATLAB")
    _bad(tmp_path / "missing.csv", "does not exist")
    (tmp_path / "lib.xyz").write_text("x")
    _bad(tmp_path / "lib.xyz", "unknown format")


def test_dataclass_lookup_by_name(usgs):
    assert isinstance(usgs, SpectralLibrary)
    np.testing.assert_array_equal(usgs.spectrum(usgs.names[7]), usgs.spectra[7])
    with pytest.raises(InputError, match="no spectrum named"):
        usgs.spectrum("unobtainium")
