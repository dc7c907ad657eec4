"""One atomic writer for every file: complete or untouched, the user's permissions, and no
temporary file left behind (or, after a kill, removed by the next run)."""
import errno
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spectramorph_engine.io import atomic
from spectramorph_engine.quality import figures
from spectramorph_engine import io
from spectramorph_engine.sensors import psf, srf
from spectramorph_engine.run.config import FusionConfig, load_config, save_config
from spectramorph_engine.core.errors import InputError


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o640
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _temporaries(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if atomic.TEMP_MARK in p.name)


def _writers(folder: Path):
    """(name, write-to-path) for every writer of the engine."""
    cube = np.random.default_rng(0).random((5, 6, 4)).astype(np.float32)
    fig = figures.endmember_figure(np.random.default_rng(1).random((3, 4)))
    kernel = psf.make_psf("gaussian", 1.0, 2)
    yield "cube .npy", folder / "c.npy", lambda p: io.save_cube(p, cube)
    yield "cube .mat", folder / "c.mat", lambda p: io.save_cube(p, cube)
    yield "cube .h5", folder / "c.h5", lambda p: io.save_cube(p, cube)
    yield "cube .tif", folder / "c.tif", lambda p: io.save_cube(p, cube)
    yield "cube ENVI", folder / "c.hdr", lambda p: io.save_cube(p, cube)
    yield "figure", folder / "f.png", lambda p: figures.save_figure(fig, p)
    yield "SRF", folder / "s.csv", lambda p: srf.save_srf(p, np.full((2, 4), 0.25))
    yield "PSF", folder / "k.npy", lambda p: psf.save_psf(p, kernel)
    yield "config", folder / "run.yaml", lambda p: save_config(FusionConfig(epochs=3), p)
    yield "text", folder / "t.json", lambda p: io.atomic_write_text(p, "{}")


def test_every_writer_gives_the_users_permissions_and_leaves_no_temporary(tmp_path, umask_027):
    for name, path, write in _writers(tmp_path):
        write(path)
        assert _mode(path) == umask_027, f"{name}: mode {oct(_mode(path))}"
    assert _mode(tmp_path / "c.img") == umask_027        # the ENVI data file beside its header
    assert _temporaries(tmp_path) == []


def test_saved_psf_and_srf_load_back(tmp_path):
    k = psf.make_psf("moffat", 1.3, 3)
    for suffix in (".npy", ".mat", ".txt", ".csv"):
        psf.save_psf(tmp_path / f"k{suffix}", k)
        np.testing.assert_allclose(psf.load_psf(tmp_path / f"k{suffix}"), k, rtol=1e-12)
    with pytest.raises(InputError, match=r"k\.xyz.*unknown type"):
        psf.save_psf(tmp_path / "k.xyz", k)


def test_a_write_that_fails_halfway_leaves_the_old_file_byte_identical(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    io.atomic_write_text(target, '{"old": true}')
    before = target.read_bytes()

    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom):
        with atomic.atomic_open(target, "w") as fh:
            fh.write('{"new": ')             # half of the new content...
            fh.flush()
            raise Boom()                     # ...then the writer dies
    assert target.read_bytes() == before
    assert _temporaries(tmp_path) == []


def test_every_writer_interrupted_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """Each writer's commit (the rename) fails: the old file must still be there, whole."""
    for name, path, write in _writers(tmp_path):
        write(path)
    olds = {p: p.read_bytes() for p in tmp_path.iterdir()}

    def refuse(src, dst):
        raise KeyboardInterrupt("stopped before the rename")
    monkeypatch.setattr(atomic.os, "replace", refuse)
    for name, path, write in _writers(tmp_path):
        with pytest.raises(KeyboardInterrupt):
            write(path)
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == olds
    assert _temporaries(tmp_path) == []


def test_a_full_disk_is_an_input_error_naming_the_file(tmp_path):
    with pytest.raises(InputError, match=r"cannot write '.*out\.bin'.*space"):
        with atomic.atomic_open(tmp_path / "out.bin") as fh:
            raise OSError(28, "No space left on device")
    assert _temporaries(tmp_path) == []


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC, errno.EDQUOT])
def test_a_failed_fsync_keeps_the_old_file(tmp_path, monkeypatch, code):
    """The data of the new file may not be on disk: it must not replace the old one."""
    target = tmp_path / "run.json"
    io.atomic_write_text(target, '{"old": true}')

    def fail(fd):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(atomic.os, "fsync", fail)
    with pytest.raises(InputError, match=rf"cannot write '.*run\.json': {os.strerror(code)}"):
        io.atomic_write_text(target, '{"new": true}')
    assert target.read_text() == '{"old": true}' and _temporaries(tmp_path) == []


def test_a_file_system_that_cannot_fsync_still_gets_its_files(tmp_path, monkeypatch):
    def unsupported(fd):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    monkeypatch.setattr(atomic.os, "fsync", unsupported)
    io.atomic_write_text(tmp_path / "run.json", "{}")
    assert (tmp_path / "run.json").read_text() == "{}" and _temporaries(tmp_path) == []


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".hr_hsi{atomic.TEMP_MARK}{dead}-abc.npy").write_bytes(b"partial")
    (tmp_path / f".outputs{atomic.TEMP_MARK}{dead}-xyz").mkdir()
    (tmp_path / f".outputs{atomic.TEMP_MARK}{dead}-xyz" / "hr_hsi.npy").write_bytes(b"partial")
    mine = tmp_path / f".metrics{atomic.TEMP_MARK}{os.getpid()}-q.json"
    mine.write_bytes(b"{")
    (tmp_path / "hr_hsi.npy").write_bytes(b"result")
    removed = atomic.remove_temporaries(tmp_path)
    assert sorted(removed) == sorted([f".hr_hsi{atomic.TEMP_MARK}{dead}-abc.npy",
                                      f".outputs{atomic.TEMP_MARK}{dead}-xyz"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "hr_hsi.npy"])


def test_the_log_grows_by_whole_runs_only(tmp_path, umask_027):
    log = logging.getLogger("spectramorph_engine.test_atomic")
    log.setLevel(logging.INFO)
    path = tmp_path / "spectramorph.log"
    for run in (1, 2):
        handler = atomic.AtomicLogHandler(path)
        log.addHandler(handler)
        log.info("run %d starts", run)
        # while the run goes on, the log file holds only finished runs
        assert f"run {run}" not in (path.read_text() if path.exists() else "")
        log.info("run %d ends", run)
        log.removeHandler(handler)
        handler.close()
    assert path.read_text().splitlines() == ["run 1 starts", "run 1 ends", "run 2 starts", "run 2 ends"]
    assert _mode(path) == umask_027 and _temporaries(tmp_path) == []


def test_config_written_atomically_loads_back(tmp_path):
    c = FusionConfig(epochs=7, hidden_size=32)
    save_config(c, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == c


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_temporaries_of_a_writer_that_exited_but_is_not_yet_reaped_are_removed(tmp_path):
    """A killed worker stays a zombie until its parent reaps it, and signal 0 still reaches a
    zombie: the next run must still clear what it left."""
    import time
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 60
        while Path(f"/proc/{child.pid}/stat").read_bytes().rsplit(b")", 1)[1][1:2] != b"Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.05)
        name = f".spectramorph{atomic.TEMP_MARK}{child.pid}-abc.log"
        (tmp_path / name).write_bytes(b"partial")
        assert atomic.remove_temporaries(tmp_path) == [name]
    finally:
        child.wait()
