"""SRF presets, custom SRF files and measured response tables (real IKONOS curves)."""
import numpy as np
import pytest
import scipy.io

from spectramorph_engine.sensors import srf
from spectramorph_engine.run.config import SRF_PRESET_BANDS
from spectramorph_engine.core.errors import InputError

TRUE_WL = np.linspace(400, 2500, 200)


def test_presets_are_the_spec_tables():
    assert sorted(srf.SRF_PRESETS) == sorted(SRF_PRESET_BANDS)
    for n, bands in srf.SRF_PRESETS.items():
        assert len(bands) == n
        assert all(lo < c < hi for c, lo, hi in bands)
    assert srf.SRF_PRESETS[1] == [(729, 409, 1048)]
    assert srf.SRF_PRESETS[4][3] == (803, 713, 893)
    assert srf.SRF_PRESETS[16][8] == (1210, 1184, 1235) and srf.SRF_PRESETS[16][-1] == (2329, 2285, 2373)


def test_fallback_axis_spans_the_preset_edges():
    wl = srf.preset_wavelengths(4, 50)
    assert wl.shape == (50,) and wl[0] == 421 and wl[-1] == 893
    assert np.allclose(np.diff(wl), np.diff(wl)[0])
    assert srf.preset_wavelengths(16, 10)[[0, -1]].tolist() == [397, 2373]


@pytest.mark.parametrize("n", SRF_PRESET_BANDS)
@pytest.mark.parametrize("axis", ["true", "fallback"])
def test_preset_rows_sum_to_one_and_peak_at_their_centre(n, axis):
    wl = TRUE_WL if axis == "true" else srf.preset_wavelengths(n, 200)
    m = srf.preset_srf(n, 200, wavelengths=TRUE_WL if axis == "true" else None)
    assert m.shape == (n, 200) and m.dtype == np.float64
    assert np.allclose(m.sum(axis=1), 1)
    assert np.all(m >= 0)
    for row, (centre, lo, hi) in zip(m, srf.SRF_PRESETS[n]):
        assert np.argmax(row) == np.argmin(np.abs(wl - centre))


def test_true_wavelengths_change_the_srf():
    fallback = srf.preset_srf(4, 200)
    placed = srf.preset_srf(4, 200, wavelengths=TRUE_WL)
    assert not np.allclose(fallback, placed)
    # on 400..2500 nm the blue band sits in the first ~7 % of the bands,
    # on the fallback axis (421..893 nm) it covers the first quarter
    assert np.argmax(placed[0]) < 10 < np.argmax(fallback[0])


def test_fwhm_factor_sets_the_band_width():
    wide = srf.preset_srf(3, 200, fwhm_factor=2.0, wavelengths=TRUE_WL)
    narrow = srf.preset_srf(3, 200, fwhm_factor=6.0, wavelengths=TRUE_WL)
    assert wide.max() < narrow.max()   # flatter rows: energy spread over more bands


def test_micrometre_wavelengths_are_read_as_nm():
    assert np.allclose(srf.preset_srf(4, 200, wavelengths=TRUE_WL / 1000),
                       srf.preset_srf(4, 200, wavelengths=TRUE_WL))


def test_preset_refusals_name_the_problem():
    with pytest.raises(InputError, match=r"no SRF preset for 5.*1, 3, 4, 8, 16.*SRF file"):
        srf.preset_srf(5, 100)
    vnir = np.linspace(400, 1000, 100)
    with pytest.raises(InputError, match=r"1210 nm band.*400\.\.1000 nm"):
        srf.preset_srf(16, 100, wavelengths=vnir)
    with pytest.raises(InputError, match="99 wavelengths given for 100 HSI bands"):
        srf.preset_srf(4, 100, wavelengths=vnir[:99])


@pytest.fixture(scope="module")
def ikonos(shared_data):
    path = shared_data / "Ikonos_spec_resp.mat"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_ikonos_table_resampled_onto_vnir(ikonos):
    wl = np.linspace(400, 1000, 121)
    m = srf.load_srf(ikonos, 121, wavelengths=wl)
    assert m.shape == (5, 121)            # pan, blue, green, red, NIR
    assert np.allclose(m.sum(axis=1), 1)
    peaks = wl[np.argmax(m, axis=1)]
    assert 480 <= peaks[1] <= 500         # blue
    assert 540 <= peaks[2] <= 570         # green
    assert 640 <= peaks[3] <= 700         # red
    assert 760 <= peaks[4] <= 830         # NIR
    # the pan band covers the whole VNIR: far wider than blue
    assert (m[0] > 0.5 * m[0].max()).sum() > 3 * (m[1] > 0.5 * m[1].max()).sum()


def test_ikonos_table_reader_and_resampler(ikonos):
    wl, resp = srf.load_srf_table(ikonos)
    assert wl[0] == 350 and wl[-1] == 1035 and resp.shape == (5, 138)
    target = np.array([300.0, 350.0, 497.5, 1100.0])
    out = srf.resample_response_table(wl, resp, target)
    assert out.shape == (5, 4)
    assert np.all(out[:, [0, 3]] == 0)   # outside the measured range: no response
    assert np.allclose(out[:, 1], resp[:, 0])
    assert np.allclose(out[:, 2], 0.5 * (resp[:, 29] + resp[:, 30]))
    # the (table, wavelengths) form gives the same
    table = np.column_stack([wl, resp.T])
    assert np.allclose(srf.resample_response_table(table, target), out)


def test_table_needs_wavelengths(ikonos):
    with pytest.raises(InputError, match=r"Ikonos_spec_resp\.mat.*table.*wavelengths"):
        srf.load_srf(ikonos, 162)


def test_table_in_micrometres_and_decreasing(tmp_path):
    wl_um = np.linspace(0.4, 1.0, 61)
    resp = np.exp(-0.5 * ((wl_um - 0.55) / 0.03) ** 2)
    table = np.column_stack([wl_um, resp])[::-1]
    path = tmp_path / "green_um.csv"
    np.savetxt(path, table, delimiter=",", header="wavelength_um,green", comments="")
    hsi = np.linspace(400, 1000, 61)
    m = srf.load_srf(path, 61, wavelengths=hsi)
    assert m.shape == (1, 61) and hsi[np.argmax(m[0])] == pytest.approx(550)


def test_table_band_outside_the_cube_is_named(tmp_path):
    wl = np.linspace(1500, 1700, 41)
    np.save(tmp_path / "swir.npy", np.column_stack([wl, np.ones(41)]))
    with pytest.raises(InputError, match=r"swir\.npy.*band 1.*400\.\.1000 nm"):
        srf.load_srf(tmp_path / "swir.npy", 50, wavelengths=np.linspace(400, 1000, 50))


@pytest.mark.parametrize("suffix", [".mat", ".npy", ".csv"])
def test_custom_srf_round_trips(tmp_path, suffix):
    rng = np.random.default_rng(1)
    m = rng.random((4, 30))
    m /= m.sum(axis=1, keepdims=True)
    wl = np.linspace(420, 900, 30)
    path = tmp_path / f"srf{suffix}"
    srf.save_srf(path, m, wavelengths=wl)
    got = srf.load_srf(path, 30, wavelengths=wl)
    assert np.allclose(got, m, atol=1e-12)
    # without wavelengths the file is the plain c x C matrix
    plain = tmp_path / f"plain{suffix}"
    srf.save_srf(plain, m)
    assert np.allclose(srf.load_srf(plain, 30), m, atol=1e-12)
    assert not list(tmp_path.glob(".*.tmp"))   # no temporary file left behind


def test_single_band_srf_in_mat_with_wavelengths(tmp_path):
    # 1 x C srf next to 1 x C wavelengths: the 'srf' variable is the one taken
    m = np.full((1, 20), 0.05)
    srf.save_srf(tmp_path / "pan.mat", m, wavelengths=np.linspace(400, 1000, 20))
    assert np.allclose(srf.load_srf(tmp_path / "pan.mat", 20), m)


def test_transposed_matrix_is_turned_and_rows_normalised(tmp_path):
    m = np.random.default_rng(2).random((3, 40)) * 5
    np.save(tmp_path / "cxC.npy", m.T)
    got = srf.load_srf(tmp_path / "cxC.npy", 40)
    assert got.shape == (3, 40)
    assert np.allclose(got, m / m.sum(axis=1, keepdims=True))


def test_bad_srf_files_are_refused(tmp_path):
    np.save(tmp_path / "shape.npy", np.ones((3, 7)))
    with pytest.raises(InputError, match=r"shape\.npy.*\(3, 7\).*c x 40"):
        srf.load_srf(tmp_path / "shape.npy", 40)
    z = np.ones((3, 40))
    z[1] = 0
    np.save(tmp_path / "zero.npy", z)
    with pytest.raises(InputError, match=r"zero\.npy.*row 2 of 3.*no response"):
        srf.load_srf(tmp_path / "zero.npy", 40)
    neg = np.ones((2, 40))
    neg[0, 3] = -0.5
    np.save(tmp_path / "neg.npy", neg)
    with pytest.raises(InputError, match=r"neg\.npy.*row 1.*negative"):
        srf.load_srf(tmp_path / "neg.npy", 40)
    with pytest.raises(InputError, match="does not exist"):
        srf.load_srf(tmp_path / "missing.mat", 40)
    with pytest.raises(InputError, match=r"srf\.xlsx.*unknown type"):
        srf.save_srf(tmp_path / "srf.xlsx", np.ones((2, 3)))


def test_normalize_srf_rows_keeps_shape_and_ratio():
    m = np.array([[1.0, 3.0, 0.0], [2.0, 2.0, 4.0]])
    out = srf.normalize_srf_rows(m, "test SRF")
    assert np.allclose(out, [[0.25, 0.75, 0], [0.25, 0.25, 0.5]])
    with pytest.raises(InputError, match="test SRF.*NaN"):
        srf.normalize_srf_rows(np.array([[1.0, np.nan]]), "test SRF")


def test_scipy_savemat_matrix_with_key(tmp_path):
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"R": np.ones((3, 10)), "other": np.ones((5, 5))})
    assert srf.load_srf(path, 10).shape == (3, 10)       # 'R' is a known SRF name
    assert srf.load_srf(path, 5, key="other").shape == (5, 5)


def test_bom_csv_srf_keeps_its_first_row(tmp_path):
    """Issue 17: a UTF-8 CSV with a byte-order mark (as Excel saves it) read the BOM into the
    first value, took the first data row for a header and dropped it; now one text reader
    (io.text.read_text_table) reads every row, through the real loaders."""
    m = np.arange(1.0, 13.0).reshape(3, 4)          # c x C, every row distinct
    path = tmp_path / "srf_bom.csv"
    path.write_text("\n".join(",".join(f"{v:g}" for v in row) for row in m) + "\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    got = srf.load_srf(path, 4)
    assert got.shape == (3, 4)
    assert np.allclose(got, m / m.sum(axis=1, keepdims=True))
    # a response table (wavelength column first), semicolons, a header and a BOM: every row
    wl = np.linspace(400, 700, 31)
    resp = np.exp(-0.5 * ((wl - 550) / 40) ** 2)
    table = tmp_path / "table_bom.csv"
    table.write_text("wavelength_nm;green\n" + "".join(f"{w:g};{r:.6f}\n" for w, r in zip(wl, resp)),
                     encoding="utf-8-sig")
    got_wl, got_resp = srf.load_srf_table(table)
    assert got_wl.shape == (31,) and got_wl[0] == 400 and np.allclose(got_resp[0], resp, atol=1e-6)


@pytest.mark.parametrize("text", [
    "400,0.1\n500,0.2\n600,0.3\n",                 # comma
    "400;0.1\n500;0.2\n600;0.3\n",                 # semicolon
    "400;0,1\n500;0,2\n600;0,3\n",                 # semicolon with decimal commas
    "400\t0.1\n500\t0.2\n600\t0.3\n",              # tab
    "# comment\nwl resp\n400  0.1\n500 0.2\n\n600 0.3\n",     # spaces, comment, header, blank line
    "400,0.1,\n500,0.2,\n600,0.3,\n",              # a trailing separator
])
def test_text_tables_every_separator(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8-sig")
    wl, resp = srf.load_srf_table(path)
    assert wl.tolist() == [400, 500, 600] and np.allclose(resp, [[0.1, 0.2, 0.3]])


def test_text_table_empty_cell_is_refused_not_shifted(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("400,,0.1\n500,,0.2\n600,,0.3\n")      # used to read as two columns
    with pytest.raises(InputError, match=r"SRF file .*gap\.csv.*empty value on data line 1"):
        srf.load_srf_table(path)
