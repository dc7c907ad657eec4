"""Readers and writers: real files from shared/data and files written here, read back
through the real loaders (scipy.io, h5py, tifffile, spectral)."""
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from spectramorph_engine import io
from spectramorph_engine.core.errors import InputError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
URBAN = DATA / "subimage_Urban_R162.mat"
USGS = DATA / "USGS_1995_Library.mat"
IKONOS = DATA / "Ikonos_spec_resp.mat"
needs_data = pytest.mark.skipif(not URBAN.is_file(), reason=f"shared test data not found in {DATA}")


@pytest.fixture
def cube():
    rng = np.random.default_rng(0)
    return rng.random((9, 11, 7), dtype=np.float32)


@pytest.fixture
def wl():
    return np.linspace(420.0, 980.0, 7)


def leftovers(folder: Path):
    """Temporary files atomic writing may have left behind."""
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


# ----------------------------------------------------------------------------- real data
@needs_data
def test_urban_mat_v5_with_and_without_key():
    with_key = io.load_cube(URBAN, key="im")
    without = io.load_cube(URBAN)
    for c in (with_key, without):
        assert c.data.shape == (34, 78, 162)
        assert c.data.dtype == np.float32
        assert c.key == "im" and c.wavelengths is None
    np.testing.assert_array_equal(with_key.data, without.data)
    raw = scipy.io.loadmat(URBAN)["im"]
    np.testing.assert_allclose(without.data, raw, rtol=1e-6)


@needs_data
def test_list_arrays_of_a_two_variable_mat():
    arrays = io.list_arrays(USGS)
    # dtype is MATLAB's class: 'names' is a double array stored compactly as uint8 bytes
    assert sorted((n, s) for n, s, _ in arrays) == [("datalib", (224, 501)), ("names", (501, 29))]
    with pytest.raises(InputError) as err:
        io.load_matrix(USGS)
    msg = str(err.value)
    assert "several" in msg and "datalib: 224x501" in msg and "names: 501x29" in msg and "\n" not in msg
    assert io.load_matrix(USGS, key="datalib").shape == (224, 501)


@needs_data
def test_load_matrix_real_srf_single_variable():
    m = io.load_matrix(IKONOS)
    assert m.shape == (138, 6) and m.dtype == np.float64
    assert m[0, 0] == pytest.approx(350.0)


# ----------------------------------------------------------------------------- MATLAB v7.3
def _write_matlab_73(path: Path, variables: dict, userblock: bool):
    """What MATLAB's save -v7.3 writes: HDF5, arrays column-major (so h5py sees them transposed)."""
    with h5py.File(path, "w", userblock_size=512 if userblock else 0) as f:
        for name, arr in variables.items():
            ds = f.create_dataset(name, data=np.asarray(arr).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
        f.create_dataset("label", data=np.frombuffer(b"abc", np.uint8).astype(np.uint16)[:, None]
                         ).attrs["MATLAB_class"] = np.bytes_("char")
    if userblock:
        with open(path, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(124) + b"\x00\x02IM")


@pytest.mark.parametrize("userblock", [True, False])
def test_mat_v73_keeps_matlab_orientation(tmp_path, userblock):
    cube = np.arange(4 * 5 * 6, dtype=np.float64).reshape(4, 5, 6)
    wl = np.linspace(0.4, 0.9, 6)       # micrometres: converted to nm
    path = tmp_path / "scene73.mat"
    _write_matlab_73(path, {"scene": cube, "wavelengths": wl[None, :]}, userblock)
    assert io.list_arrays(path) == [("scene", (4, 5, 6), "float64")]   # char 'label' is no candidate
    c = io.load_cube(path)
    assert c.key == "scene" and c.data.dtype == np.float32
    np.testing.assert_array_equal(c.data, cube)
    np.testing.assert_allclose(c.wavelengths, wl * 1000)
    with io.load_cube(path, lazy=True) as lz:
        assert not isinstance(lz.data, np.ndarray) and lz.data.shape == (4, 5, 6)
        np.testing.assert_array_equal(lz.data[1:3, :, 2], cube[1:3, :, 2])
        np.testing.assert_array_equal(np.asarray(lz.data), cube)


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", ["hr_hsi.npy", "hr_hsi.mat", "hr_hsi.h5", "hr_hsi.hdr", "hr_hsi.img",
                                  "hr_hsi.tif"])
def test_round_trip_with_wavelengths(tmp_path, cube, wl, name):
    extra = {"endmembers": np.ones((3, 7), np.float32)} if name.endswith((".mat", ".h5")) else None
    written = io.save_cube(tmp_path / name, cube, wavelengths=wl, extra=extra)
    key = "hr_hsi" if extra else None
    c = io.load_cube(written, key=key)
    np.testing.assert_array_equal(c.data, cube)
    np.testing.assert_allclose(c.wavelengths, wl, rtol=1e-6)
    assert leftovers(tmp_path) == []


def test_round_trip_npz_and_tif(tmp_path, cube, wl):
    np.savez(tmp_path / "c.npz", cube=cube, wavelengths=wl / 1000)
    c = io.load_cube(tmp_path / "c.npz")
    np.testing.assert_array_equal(c.data, cube)
    np.testing.assert_allclose(c.wavelengths, wl)
    io.save_cube(tmp_path / "c.tif", cube)
    np.testing.assert_array_equal(io.load_cube(tmp_path / "c.tif").data, cube)
    assert io.list_arrays(tmp_path / "c.tif") == [("c", (9, 11, 7), "float32")]


def test_where_the_wavelengths_are_stored(tmp_path, cube, wl):
    io.save_cube(tmp_path / "a.h5", cube, wavelengths=wl)
    with h5py.File(tmp_path / "a.h5") as f:
        np.testing.assert_allclose(f["a"].attrs["wavelengths"], wl)
        np.testing.assert_allclose(f["wavelengths"][()], wl)
        assert f["a"].chunks is not None and f["a"].compression == "gzip"
    io.save_cube(tmp_path / "b.mat", cube, wavelengths=wl)
    m = scipy.io.loadmat(tmp_path / "b.mat")
    np.testing.assert_allclose(m["wavelengths"].ravel(), wl)
    np.testing.assert_array_equal(m["b"], cube)
    io.save_cube(tmp_path / "c.npy", cube, wavelengths=wl)
    np.testing.assert_allclose(io.load_wavelengths(tmp_path / "c_wavelengths.txt"), wl, rtol=1e-6)
    io.save_cube(tmp_path / "c.npy", cube)      # saved again without: the stale sidecar goes
    assert not (tmp_path / "c_wavelengths.txt").exists()


def test_envi_written_here_reads_in_spectral(tmp_path, cube, wl):
    import spectral.io.envi as envi
    io.save_cube(tmp_path / "e.hdr", cube, wavelengths=wl)
    img = envi.open(str(tmp_path / "e.hdr"))
    np.testing.assert_array_equal(np.asarray(img.load()), cube)
    np.testing.assert_allclose([float(b) for b in img.bands.centers], wl, rtol=1e-6)
    assert img.bands.band_unit == "Nanometers"


def test_envi_micrometres_header_and_band_first_tif(tmp_path, cube, wl):
    import spectral.io.envi as envi
    import tifffile
    envi.save_image(str(tmp_path / "u.hdr"), cube, ext=".dat", interleave="bsq",
                    metadata={"wavelength": list(wl / 1000), "wavelength units": "Micrometers"})
    c = io.load_cube(tmp_path / "u.dat")
    np.testing.assert_array_equal(c.data, cube)
    np.testing.assert_allclose(c.wavelengths, wl)
    # A band-first stack (7 pages of 9 x 11) comes back 9 x 11 x 7.
    tifffile.imwrite(tmp_path / "stack.tif", np.moveaxis(cube, -1, 0))
    np.testing.assert_array_equal(io.load_cube(tmp_path / "stack.tif").data, cube)


def test_load_wavelengths_text_forms(tmp_path):
    (tmp_path / "w.csv").write_text("wavelength (um)\n0.45\n0.55\n0.65\n")
    np.testing.assert_allclose(io.load_wavelengths(tmp_path / "w.csv"), [450, 550, 650])
    (tmp_path / "w.txt").write_text("450 550 650\n")
    np.testing.assert_allclose(io.load_wavelengths(tmp_path / "w.txt"), [450, 550, 650])
    (tmp_path / "two.txt").write_text("1, 450\n2, 550\n")
    with pytest.raises(InputError, match="2x2"):
        io.load_wavelengths(tmp_path / "two.txt")


def test_load_matrix_text_with_header_and_commas(tmp_path):
    (tmp_path / "psf.csv").write_text("a,b,c\n0,1,0\n1,4,1\n0,1,0\n")
    np.testing.assert_array_equal(io.load_matrix(tmp_path / "psf.csv"), [[0, 1, 0], [1, 4, 1], [0, 1, 0]])


# ----------------------------------------------------------------------------- bad input
def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


def test_missing_empty_and_unknown(tmp_path):
    with pytest.raises(InputError) as e:
        io.load_cube(tmp_path / "nope.mat")
    assert "nope.mat' does not exist" in one_line(e)
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(InputError) as e:
        io.load_cube(tmp_path / "empty.h5")
    assert "is empty" in one_line(e)
    (tmp_path / "cube.xyz").write_bytes(b"1")
    with pytest.raises(InputError) as e:
        io.load_cube(tmp_path / "cube.xyz")
    assert "'.xyz'" in one_line(e) and ".mat" in str(e.value) and ".hdr" in str(e.value)


def test_truncated_and_corrupt_files(tmp_path, cube):
    io.save_cube(tmp_path / "t.h5", cube)
    data = (tmp_path / "t.h5").read_bytes()
    (tmp_path / "t.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as e:
        io.load_cube(tmp_path / "t.h5")
    assert "t.h5' cannot be read as HDF5" in one_line(e)
    np.save(tmp_path / "n.npy", cube)
    data = (tmp_path / "n.npy").read_bytes()
    (tmp_path / "n.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot be read as NumPy .npy"):
        io.load_cube(tmp_path / "n.npy")
    (tmp_path / "m.mat").write_text("not a mat file at all, just some text" * 10)
    with pytest.raises(InputError, match="cannot be read as MATLAB .mat"):
        io.load_cube(tmp_path / "m.mat")
    io.save_cube(tmp_path / "e.hdr", cube)
    data = (tmp_path / "e.img").read_bytes()
    (tmp_path / "e.img").write_bytes(data[:100])
    with pytest.raises(InputError, match="truncated"):
        io.load_cube(tmp_path / "e.hdr")


def test_several_arrays_and_wrong_key(tmp_path, cube):
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"im": cube, "gt": cube[..., 0]})
    assert sorted(io.list_arrays(path)) == [("gt", (9, 11), "float32"), ("im", (9, 11, 7), "float32")]
    with pytest.raises(InputError) as e:
        io.load_cube(path)
    msg = one_line(e)
    assert "two.mat" in msg and "im: 9x11x7" in msg and "gt: 9x11" in msg and "mat_key" in msg
    with pytest.raises(InputError) as e:
        io.load_cube(path, key="cube")
    msg = one_line(e)
    assert "'cube'" in msg and "im" in msg and "gt" in msg
    assert io.load_cube(path, key="gt").data.shape == (9, 11)
    # the same for HDF5, with groups
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["a/cube"] = cube
        f["b"] = cube
    with pytest.raises(InputError, match="a/cube: 9x11x7"):
        io.load_cube(tmp_path / "g.h5")
    assert io.load_cube(tmp_path / "g.h5", key="a/cube").data.shape == (9, 11, 7)


def test_nan_4d_and_integer_cubes(tmp_path, cube):
    bad = cube.copy()
    bad[0, 0, :3] = np.nan
    bad[1, 1, 1] = np.inf
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InputError) as e:
        io.load_cube(tmp_path / "nan.npy")
    assert "nan.npy' holds 4 NaN or Inf values" in one_line(e)
    np.save(tmp_path / "four.npy", np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(InputError, match="2x3x4x5"):
        io.load_cube(tmp_path / "four.npy")
    ints = (cube * 1000).astype(np.uint16)
    scipy.io.savemat(tmp_path / "int.mat", {"counts": ints})
    c = io.load_cube(tmp_path / "int.mat")
    assert c.data.dtype == np.float32
    np.testing.assert_array_equal(c.data, ints.astype(np.float32))


def test_unwritable_output_folder(tmp_path, cube):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="output folder .*file/sub' cannot be created"):
        io.save_cube(blocker / "sub" / "out.npy", cube)
    if os.geteuid() != 0:   # root writes anywhere; the permission case only means something for users
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(InputError, match="ro' cannot be written"):
                io.atomic_write_text(ro / "x.txt", "hi")
        finally:
            ro.chmod(0o700)


# ----------------------------------------------------------------------------- atomic writing
def test_atomic_path_leaves_nothing_on_error_and_keeps_old_file(tmp_path):
    target = tmp_path / "result.npy"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".npy"
            tmp.write_bytes(b"partial")
            raise RuntimeError("cancelled")
    assert list(tmp_path.iterdir()) == []
    io.atomic_write_text(target, "old")
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_failed_save_keeps_the_old_result(tmp_path, cube):
    io.save_cube(tmp_path / "r.h5", cube)
    with pytest.raises(InputError):
        io.save_cube(tmp_path / "r.h5", cube, wavelengths=[1.0, 2.0])   # wrong count
    with pytest.raises(TypeError):
        io.save_cube(tmp_path / "r.h5", cube, extra={"bad": object()})
    np.testing.assert_array_equal(io.load_cube(tmp_path / "r.h5").data, cube)
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("name", ["out.h5", "out.npy", "out.hdr", "out.mat", "out.tif"])
def test_result_writer_row_blocks(tmp_path, cube, wl, name):
    with io.ResultWriter(tmp_path / name, cube.shape, wavelengths=wl) as w:
        for r0 in range(0, cube.shape[0], 4):
            w.write_rows(r0, cube[r0:r0 + 4])
        assert not (tmp_path / name).exists()        # nothing visible before the commit
    c = io.load_cube(tmp_path / name, key="out" if name.endswith((".h5", ".mat")) else None)
    np.testing.assert_array_equal(c.data, cube)
    np.testing.assert_allclose(c.wavelengths, wl, rtol=1e-6)
    assert leftovers(tmp_path) == []


def test_result_writer_mat73_streaming(tmp_path, cube, wl, monkeypatch):
    # Force the > 2 GB path on a small cube: v7.3 written block by block, read back upright.
    monkeypatch.setattr(io.writers, "MAT_V5_LIMIT_BYTES", 100)
    monkeypatch.setattr(io.streaming, "MAT_V5_LIMIT_BYTES", 100)
    with io.ResultWriter(tmp_path / "big.mat", cube.shape, wavelengths=wl,
                         extra={"endmembers": np.eye(3, 7, dtype=np.float32)}) as w:
        w.write_rows(0, cube[:5])
        w.write_rows(5, cube[5:])
    assert (tmp_path / "big.mat").read_bytes()[:10] == b"MATLAB 7.3"
    c = io.load_cube(tmp_path / "big.mat", key="big")
    np.testing.assert_array_equal(c.data, cube)
    np.testing.assert_allclose(c.wavelengths, wl)
    np.testing.assert_array_equal(io.load_matrix(tmp_path / "big.mat", key="endmembers"), np.eye(3, 7))
    io.save_cube(tmp_path / "big2.mat", cube, wavelengths=wl)   # save_cube takes the same path
    np.testing.assert_array_equal(io.load_cube(tmp_path / "big2.mat", key="big2").data, cube)


@pytest.mark.parametrize("name", ["out.h5", "out.npy", "out.hdr"])
def test_result_writer_cancel_leaves_nothing(tmp_path, cube, name):
    io.save_cube(tmp_path / name, cube)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(KeyboardInterrupt):
        with io.ResultWriter(tmp_path / name, cube.shape) as w:
            w.write_rows(0, np.zeros_like(cube[:4]))
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    np.testing.assert_array_equal(io.load_cube(tmp_path / name).data, cube)


def _stored_chunks(path, name):
    with h5py.File(path) as f:
        ds = f[name]
        rows = ds.chunks[0]
        return [ds.id.read_direct_chunk((r, 0, 0))[1] for r in range(0, ds.shape[0], rows)]


@pytest.mark.parametrize("deflate", ["zlib", "fastest"])
@pytest.mark.parametrize("order", ["in order", "out of order"])
def test_result_writer_h5_chunks_are_hdf5s_own(tmp_path, wl, monkeypatch, order, deflate):
    """The .h5 result's chunks are compressed on worker threads (io/h5_chunks.py) and stored
    directly, with blocks that straddle chunks, a read of the rows so far between them (a
    partial chunk stored, then the whole chunk), a partial last chunk -- and rows out of order
    (h5py writes). With zlib the file holds byte for byte the chunks HDF5's shuffle + gzip
    write themselves; with the fastest deflate installed (ISA-L's) every chunk inflates to
    the same shuffled bytes, so any HDF5 reader reads the same cube."""
    import zlib
    from spectramorph_engine.io import h5_chunks
    if deflate == "zlib":
        monkeypatch.setattr(h5_chunks, "fastest_compress", lambda: zlib.compress)
    monkeypatch.setattr(io.streaming, "_h5_chunks", lambda shape, itemsize: (3,) + tuple(shape[1:]))
    rng = np.random.default_rng(1)
    cube = np.cumsum(rng.random((17, 6, 7), dtype=np.float32), axis=2)     # smooth: deflate has work to do
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("out", data=cube, chunks=(3, 6, 7), compression="gzip", compression_opts=1, shuffle=True)
    blocks = [(0, 2), (2, 7), (7, 8), (8, 17)] if order == "in order" else [(0, 2), (8, 17), (2, 8)]
    with io.ResultWriter(tmp_path / "out.h5", cube.shape, wavelengths=wl) as w:
        assert w._deflate is not None
        for i, (r0, r1) in enumerate(blocks):
            w.write_rows(r0, cube[r0:r1])
            if i == 1:           # what was written so far reads back (the metrics stage does this)
                done = np.flatnonzero(w._done)
                np.testing.assert_array_equal(w.read_bands(0, 7)[done], cube[done])
    c = io.load_cube(tmp_path / "out.h5", key="out")
    np.testing.assert_array_equal(c.data, cube)
    stored, own = _stored_chunks(tmp_path / "out.h5", "out"), _stored_chunks(plain, "out")
    if deflate == "zlib" or order == "out of order":
        assert stored == own
    else:
        assert [zlib.decompress(a) for a in stored] == [zlib.decompress(b) for b in own]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("deflate", ["zlib", "fastest"])
def test_save_cube_h5_chunks_are_hdf5s_own(tmp_path, wl, monkeypatch, deflate):
    """save_cube's .h5 (a whole result in memory, the export) deflates its chunks on worker
    threads like the streamed result: with zlib the file holds byte for byte the chunks HDF5's
    shuffle + gzip write (a partial last chunk included); with the fastest deflate (ISA-L's)
    they inflate to the same bytes, and the cube and its wavelengths read back unchanged."""
    import zlib
    from spectramorph_engine.io import h5_chunks, writers
    if deflate == "zlib":
        monkeypatch.setattr(h5_chunks, "fastest_compress", lambda: zlib.compress)
    monkeypatch.setattr(writers, "_h5_chunks", lambda shape, itemsize: (3,) + tuple(shape[1:]))
    rng = np.random.default_rng(2)
    cube = np.cumsum(rng.random((17, 6, 7), dtype=np.float32), axis=2)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("out", data=cube, chunks=(3, 6, 7), compression="gzip", compression_opts=1, shuffle=True)
    io.save_cube(tmp_path / "out.h5", cube, wavelengths=wl)
    c = io.load_cube(tmp_path / "out.h5", key="out")
    np.testing.assert_array_equal(c.data, cube)
    np.testing.assert_allclose(c.wavelengths, wl)
    with h5py.File(tmp_path / "out.h5") as f:
        ds = f["out"]
        assert (ds.compression, ds.compression_opts, ds.shuffle, ds.chunks) == ("gzip", 1, True, (3, 6, 7))
    stored, own = _stored_chunks(tmp_path / "out.h5", "out"), _stored_chunks(plain, "out")
    if deflate == "zlib":
        assert stored == own
    else:
        assert [zlib.decompress(a) for a in stored] == [zlib.decompress(b) for b in own]
    assert leftovers(tmp_path) == []


def test_result_writer_refuses_missing_rows(tmp_path, cube):
    w = io.ResultWriter(tmp_path / "r.npy", cube.shape)
    w.write_rows(0, cube[:3])
    with pytest.raises(ValueError, match="rows never written"):
        w.close()
    assert list(tmp_path.iterdir()) == []


def test_result_writer_array_backing(tmp_path, cube):
    with io.ResultWriter(tmp_path / "m.npy", cube.shape) as w:
        w.array[:] = cube
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), cube)


# ----------------------------------------------------------------------------- lazy
def test_lazy_loads_do_not_read_into_memory(tmp_path, cube, wl):
    io.save_cube(tmp_path / "l.npy", cube)
    c = io.load_cube(tmp_path / "l.npy", lazy=True)
    assert isinstance(c.data, np.memmap)
    np.testing.assert_array_equal(c.data, cube)
    io.save_cube(tmp_path / "l.h5", cube, wavelengths=wl)
    with io.load_cube(tmp_path / "l.h5", lazy=True) as c:
        assert isinstance(c.data, h5py.Dataset)
        np.testing.assert_array_equal(c.data[2:4], cube[2:4])
        np.testing.assert_allclose(c.wavelengths, wl)
    assert not c.data.id.valid        # closed with the cube
    io.save_cube(tmp_path / "l.hdr", cube)
    assert isinstance(io.load_cube(tmp_path / "l.hdr", lazy=True).data, np.memmap)


@pytest.mark.parametrize("name", ["c.h5", "c.npy", "c.mat"])
def test_cancel_while_loading_is_a_cancel_not_a_bad_file(tmp_path, cube, name):
    """A cancel request during an eager load ends in Cancelled (the run stops), never in the
    'cannot be read' InputError a damaged file gets."""
    import threading
    from spectramorph_engine import Cancelled
    big = np.repeat(cube, 8, axis=0)
    io.save_cube(tmp_path / name, big)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        io.load_cube(tmp_path / name, cancel=cancel)


def test_hdf5_nodata_attribute_is_read_or_reported(tmp_path, cube):
    """Issue 17: an HDF5 nodata attribute that is not one number was skipped in silence (the
    nodata pixels then count as data); now it is named. A number, as text or per band, reads."""
    for name, value, expected in (("num.h5", -9999.0, -9999.0), ("text.h5", "-9999", -9999.0),
                                  ("per_band.h5", np.full(7, -1.0), -1.0), ("nan.h5", np.nan, None)):
        with h5py.File(tmp_path / name, "w") as f:
            f["cube"] = cube
            f["cube"].attrs["_FillValue"] = value
        got = io.load_cube(tmp_path / name).geo.nodata
        assert (np.isnan(got) if expected is None else got == expected), name
    for name, value in (("garbage.h5", "n/a"), ("mixed.h5", np.array([1.0, 2.0]))):
        with h5py.File(tmp_path / name, "w") as f:
            f["cube"] = cube
            f["cube"].attrs["nodata"] = value
        for lazy in (False, True):
            with pytest.raises(InputError,
                               match=rf"{name}.*nodata attribute 'nodata' of dataset 'cube'.*not one number"):
                io.load_cube(tmp_path / name, lazy=lazy)
