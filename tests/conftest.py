"""Fixtures shared by all test folders."""
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real test files (../shared/data beside the project); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data folder {SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def library_truth(shared_data):
    """make(size, bands, k=6, seed=0) -> (ground truth in [0, 1], wavelengths nm): a scene mixed
    from USGS-library spectra (bench.scenes.LibraryScene), percentile-normalised as SPEC 2 does."""
    from bench.scenes import LIBRARY_FILE, LibraryScene
    from spectramorph_engine.degradation import normalize_percentile
    path = shared_data / LIBRARY_FILE
    if not path.exists():
        pytest.skip(f"{path} (USGS library) not present")

    def make(size, bands, k=6, seed=0):
        scene = LibraryScene(size, size, bands, k=k, seed=seed, library_path=path)
        return normalize_percentile(scene.cube()), scene.wavelengths
    return make
