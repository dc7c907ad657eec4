"""A .mat file cut short (a download or copy that stopped) or garbled says so: the sentence names
the file and says it is truncated or corrupted, for MATLAB v5 (plain and compressed) and v7.3."""
import h5py
import numpy as np
import pytest
import scipy.io

from spectramorph_engine import InputError, io
from spectramorph_engine.io import writers


def _v73(path, cube):
    """A MATLAB v7.3 file (HDF5 with the 512-byte MATLAB header), as MATLAB's save -v7.3 writes."""
    with h5py.File(str(path), "w", userblock_size=512) as f:
        writers._mat73_put(f, "cube", cube)
    writers._stamp_mat73(path)


@pytest.fixture
def cube():
    return np.random.default_rng(0).random((24, 20, 12)).astype(np.float32)


def _cut(path, keep_bytes, tmp_path):
    data = path.read_bytes()
    out = tmp_path / f"cut_{keep_bytes}_{path.name}"
    out.write_bytes(data[:keep_bytes])
    return out


@pytest.mark.parametrize("kind", ["v5", "v5 compressed", "v7.3"])
@pytest.mark.parametrize("fraction", [0.004, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_a_truncated_mat_file_says_truncated_or_corrupted(tmp_path, cube, kind, fraction):
    whole = tmp_path / "scene.mat"
    if kind == "v7.3":
        _v73(whole, cube)
    else:
        scipy.io.savemat(str(whole), {"cube": cube}, do_compression=kind == "v5 compressed")
    assert io.load_cube(whole).data.shape == cube.shape
    cut = _cut(whole, max(1, int(whole.stat().st_size * fraction)), tmp_path)
    for read in (io.load_cube, io.list_arrays):       # the picker lists first, then the load reads
        with pytest.raises(InputError) as e:
            read(cut)
        text = str(e.value)
        assert f"'{cut}'" in text and "truncated or corrupted" in text, text
        assert "\n" not in text and "sblock" not in text and "eof =" not in text, text


def test_garbled_compressed_data_says_corrupted(tmp_path):
    smooth = np.tile(np.linspace(0, 1, 12, dtype=np.float32), (24, 20, 1))    # compresses well
    path = tmp_path / "z.mat"
    scipy.io.savemat(str(path), {"cube": smooth}, do_compression=True)
    data = bytearray(path.read_bytes())
    middle = 128 + 8 + (len(data) - 136) // 2
    data[middle:middle + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"z\.mat.*truncated or corrupted.*does not decompress"):
        io.load_cube(path)


def test_a_truncated_hdf5_file_says_so_in_words(tmp_path, cube):
    path = tmp_path / "c.h5"
    io.save_cube(path, cube)
    cut = _cut(path, path.stat().st_size // 2, tmp_path)
    with pytest.raises(InputError) as e:
        io.load_cube(cut)
    text = str(e.value)
    assert f"'{cut}' cannot be read as HDF5: the file is truncated or corrupted" in text
    assert "sblock" not in text
