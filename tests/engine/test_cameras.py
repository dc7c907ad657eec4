"""Named cameras (msi_camera): published bands placed on the cube's true wavelengths."""
import subprocess
import sys

import numpy as np
import pytest

from spectramorph_engine import FusionConfig, InputError, load_config, save_config
from spectramorph_engine.run.results import FusionInputs
from spectramorph_engine.run.prepare import prepare_inputs
from spectramorph_engine.sensors.srf import CAMERAS, camera_srf

FINE_AXIS = np.arange(350.0, 2551.0, 1.0)      # 1 nm: a row's peak must sit on its published centre


@pytest.mark.parametrize("name", list(CAMERAS))
def test_rows_peak_at_the_published_centres_with_the_published_widths(name):
    cam = CAMERAS[name]
    srf = camera_srf(name, FINE_AXIS.size, FINE_AXIS)
    assert srf.shape == (len(cam.bands), FINE_AXIS.size)
    np.testing.assert_allclose(srf.sum(axis=1), 1.0)
    for (band, centre, fwhm), row in zip(cam.bands, srf):
        assert abs(FINE_AXIS[np.argmax(row)] - centre) <= 0.5, (name, band)
        above = FINE_AXIS[row >= row.max() / 2]
        assert above[-1] - above[0] == pytest.approx(fwhm, abs=1.5), (name, band)


def test_some_published_figures():
    """Hand-checked against the operators' tables: a typo in the table fails here."""
    s2 = {n: (c, w) for n, c, w in CAMERAS["sentinel2_10m_20m"].bands}
    assert s2["B4"] == (664.6, 31.0) and s2["B8"] == (832.8, 106.0) and s2["B11"] == (1613.7, 91.0)
    oli = {n: (c, w) for n, c, w in CAMERAS["landsat8_oli"].bands}
    assert oli["B5 NIR"] == (865.0, 40.0)            # 845-885 nm
    assert len(CAMERAS["worldview3"].bands) == 16 and len(CAMERAS["superdove"].bands) == 8


def test_a_band_the_cube_does_not_cover_is_named():
    vnir = np.linspace(400, 1000, 60)
    camera_srf("sentinel2_10m", 60, vnir)          # all four 10 m bands are in the VNIR
    with pytest.raises(InputError, match=r"band B11 \(1613.7 nm\).*sentinel2_10m_20m.*400\.\.1000 nm"):
        camera_srf("sentinel2_10m_20m", 60, vnir)


def test_a_camera_needs_wavelengths_and_a_known_name():
    with pytest.raises(InputError, match="needs the hyperspectral cube's wavelengths"):
        camera_srf("ikonos", 100, None)
    with pytest.raises(InputError, match="msi_camera.*allowed: sentinel2_10m"):
        FusionConfig(msi_camera="sentinel3")


def test_camera_round_trips_through_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    save_config(FusionConfig(msi_camera="superdove"), path)
    assert load_config(path).msi_camera == "superdove"
    assert load_config(path).replace(msi_camera=None).msi_camera is None


def test_synthetic_mode_makes_the_msi_with_the_camera(library_truth):
    truth, wl = library_truth(32, 120)
    prep = prepare_inputs(FusionConfig(msi_camera="worldview2", num_msi_bands=4),
                          FusionInputs(truth=truth, wavelengths=wl))
    assert prep.hr_msi.shape[2] == 8                 # the camera's band count, not num_msi_bands
    np.testing.assert_allclose(prep.srf, camera_srf("worldview2", wl.size, wl))
    assert "WorldView-2" in prep.srf_note


def test_real_pair_uses_the_camera_and_checks_its_band_count(library_truth):
    truth, wl = library_truth(32, 120)
    made = prepare_inputs(FusionConfig(msi_camera="sentinel2_10m", snr_spatial=None, snr_spectral=None),
                          FusionInputs(truth=truth, wavelengths=wl))
    real = FusionConfig(synthetic=False, msi_camera="sentinel2_10m")
    prep = prepare_inputs(real, FusionInputs(hr_msi=made.hr_msi, lr_hsi=made.lr_hsi, wavelengths=wl))
    assert "msi_camera: sentinel2_10m" in prep.srf_note and prep.srf_estimate is None
    np.testing.assert_allclose(prep.srf, camera_srf("sentinel2_10m", wl.size, wl))
    assert prep.srf_fit["psnr"] > 35            # the camera that made the MSI explains it
    # srf_source: estimate still fits its own SRF; a 3-band MSI is not a Sentinel-2 10 m image
    assert prepare_inputs(real.replace(srf_source="estimate"),
                          FusionInputs(hr_msi=made.hr_msi, lr_hsi=made.lr_hsi, wavelengths=wl)).srf_estimate
    with pytest.raises(InputError, match=r"has 3 bands but msi_camera 'sentinel2_10m' .* has 4: B2, B3, B4, B8"):
        prepare_inputs(real, FusionInputs(hr_msi=made.hr_msi[:, :, :3], lr_hsi=made.lr_hsi, wavelengths=wl))


def test_cli_lists_the_cameras():
    out = subprocess.run([sys.executable, "-m", "spectramorph_engine", "cameras"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    for name in CAMERAS:
        assert f"\n{name} " in "\n" + out.stdout
    assert "664.6/31" in out.stdout and "source: " in out.stdout
