"""Fixtures shared by all test folders."""
import faulthandler
import os
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# A hung test must end the run with every thread's stack, not hold CI for its whole limit.
# pytest-timeout (pyproject, 300 s) names the test but needs the interpreter lock to fire;
# a deadlock in native code that holds that lock (CI hung once so, 80 minutes, with no
# pytest-timeout output) is ended by faulthandler's own C watchdog thread a minute later.
HANG_LIMIT_S = float(os.environ.get("SPECTRAMORPH_TEST_HANG_S", "360"))
_terminal_fd = None


def pytest_configure(config):
    global _terminal_fd
    _terminal_fd = os.dup(sys.__stderr__.fileno())     # pytest captures fd 2 during each test


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(HANG_LIMIT_S, exit=True, file=_terminal_fd)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


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
    from spectramorph_engine.sensors.degradation import normalize_percentile
    path = shared_data / LIBRARY_FILE
    if not path.exists():
        pytest.skip(f"{path} (USGS library) not present")

    def make(size, bands, k=6, seed=0):
        scene = LibraryScene(size, size, bands, k=k, seed=seed, library_path=path)
        return normalize_percentile(scene.cube()), scene.wavelengths
    return make


@pytest.fixture
def check_epochs(monkeypatch) -> list:
    """The epochs of every reduced-resolution check fusion the pipeline makes (pipeline.fuse_reduced
    spied on), in order."""
    from spectramorph_engine.run import pipeline
    seen = []
    real = pipeline.fuse_reduced

    def spy(config, prep, cancel=None, epochs_run=None, **kwargs):
        out = real(config, prep, cancel, epochs_run, **kwargs)
        seen.append(out.config.epochs)
        return out
    monkeypatch.setattr(pipeline, "fuse_reduced", spy)
    return seen
