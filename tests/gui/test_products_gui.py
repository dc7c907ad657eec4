"""The app opens satellite products by their metadata files (issue 22 item 4) and a Sentinel-2
HR-MSI brings its camera to the run, as from the CLI."""
import numpy as np

from tests.engine.product_files import ENMAP_NAME, write_enmap, write_sentinel2


def test_a_product_pair_opens_by_its_metadata_files_and_brings_its_camera(qtbot, window, tmp_path):
    wl = np.linspace(420.0, 2400.0, 30)
    rng = np.random.default_rng(0)
    safe = write_sentinel2(tmp_path, rng.integers(1500, 6000, (48, 48, 4)).astype(np.uint16), extension=".tif")
    enmap = write_enmap(tmp_path, rng.integers(500, 5000, (16, 16, 30)).astype(np.int16), wl, np.full(30, 8.0))
    window.data_panel.real_radio.setChecked(True)
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.data_panel.open_pair(str(safe / "MTD_MSIL2A.xml"), str(enmap / f"{ENMAP_NAME}-METADATA.XML"))
    assert blocker.args == [True]
    qtbot.waitUntil(lambda: window.state.workers.pending == 0, timeout=60000)
    assert window.state.hr_msi.camera == "sentinel2_10m"
    np.testing.assert_allclose(window.state.lr_hsi.wavelengths, wl, atol=1e-3)
    assert "msi_camera: sentinel2_10m" in window.state.prepared.srf_note
    assert "chosen from the product" in window.state.prepared.srf_note
