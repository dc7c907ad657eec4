"""Hostile files: every loader, fed truncated, bit-flipped and structurally absurd files,
ends in a valid array or the one-line InputError, quickly, without allocating what a
damaged header claims. The cases come from bench/fuzz_cases.py (bench/fuzz.py runs thousands of them);
here a fixed sample per format and hypothesis-drawn mutations."""
import os
import random
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import fuzz  # noqa: E402
from spectramorph_engine.run import config
from spectramorph_engine import io
from spectramorph_engine.sensors import psf, srf  # noqa: E402
from spectramorph_engine.core.errors import InputError  # noqa: E402

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

SAMPLE = 50          # fixed cases per format (the bench runs 2000)


@pytest.fixture(scope="module")
def seeds():
    return fuzz.make_seeds()


def _explain(case, out):
    return f"{case.fmt} {case.label} [{case.entry}] -> {out.kind}: {out.message}\n{out.trace}"


@pytest.mark.parametrize("fmt", fuzz.FORMATS)
def test_a_sample_of_hostile_files_ends_in_input_error(fmt, seeds, tmp_path):
    outcomes = {}
    for case in fuzz.cases(fmt, SAMPLE, random.Random(f"tests-{fmt}"), seeds):
        out = fuzz.run_case(case, tmp_path)
        assert out.good, _explain(case, out)
        outcomes[out.kind] = outcomes.get(out.kind, 0) + 1
    # the sample must really exercise the error paths, not only load valid mutations
    assert outcomes.get("InputError", 0) >= SAMPLE // 4, outcomes


_PROPERTY = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("fmt", [f for f in fuzz.FORMATS if f != "config"])
@_PROPERTY
@given(data=st.data())
def test_any_truncation_or_bit_flip_ends_in_input_error(fmt, seeds, tmp_path_factory, data):
    seed = data.draw(st.sampled_from(seeds[fmt]), label="seed")
    name = data.draw(st.sampled_from(sorted(seed.files)), label="file")
    raw = bytearray(seed.files[name])
    op = data.draw(st.sampled_from(["truncate", "flip", "absurd"]), label="op")
    if op == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1), label="keep")]
    elif op == "flip":
        for pos in data.draw(st.lists(st.integers(0, min(len(raw), 2048) - 1), min_size=1, max_size=6),
                             label="bits"):
            raw[pos] ^= 1 << (pos % 8)
    else:
        width = data.draw(st.sampled_from([2, 4, 8]), label="width")
        pos = data.draw(st.integers(0, min(len(raw), 1024) - width), label="at")
        value = data.draw(st.sampled_from(fuzz.ABSURD_INTS), label="value") & ((1 << (8 * width)) - 1)
        raw[pos:pos + width] = value.to_bytes(width, "little")
    case = fuzz.Case(fmt, f"{seed.name}/{op}", {**seed.files, name: bytes(raw)}, seed.target,
                     data.draw(st.sampled_from(seed.entries), label="entry"))
    out = fuzz.run_case(case, tmp_path_factory.mktemp("case"))
    assert out.good, _explain(case, out)


@_PROPERTY
@given(text=st.text(max_size=300))
def test_any_config_text_ends_in_a_config_or_input_error(tmp_path_factory, text):
    for suffix in (".yaml", ".json"):
        p = tmp_path_factory.mktemp("cfg") / f"run{suffix}"
        p.write_text(text, encoding="utf-8")
        try:
            config.load_config(p)
        except InputError as exc:
            assert "\n" not in str(exc) and str(exc).strip()


# ----------------------------------------------------------------------------- what the user reads
LOADERS = {
    "cube": lambda p: io.load_cube(p),
    "lazy cube": lambda p: io.load_cube(p, lazy=True),
    "array list": io.list_arrays,
    "PSF": psf.load_psf,
    "SRF": lambda p: srf.load_srf(p, 7),
    "SRF table": srf.load_srf_table,
    "wavelengths": io.load_wavelengths,
    "config": config.load_config,
}
SUFFIX = {"cube": ".npy", "lazy cube": ".h5", "array list": ".mat", "PSF": ".txt", "SRF": ".csv",
          "SRF table": ".npy", "wavelengths": ".txt", "config": ".yaml"}


def _one_line_error(loader, path) -> str:
    with pytest.raises(InputError) as err:
        LOADERS[loader](path)
    msg = str(err.value)
    assert "\n" not in msg and path.name in msg
    return msg


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_empty_file_folder_fifo_and_dangling_link_are_refused_by_name(loader, tmp_path):
    target = tmp_path / f"input{SUFFIX[loader]}"
    target.write_bytes(b"")
    assert "empty" in _one_line_error(loader, target)
    target.unlink()
    target.mkdir()
    assert "folder" in _one_line_error(loader, target)
    target.rmdir()
    os.mkfifo(target)            # opening it would block forever
    assert "not a regular file" in _one_line_error(loader, target)
    target.unlink()
    os.symlink(tmp_path / "gone", target)
    assert "does not exist" in _one_line_error(loader, target)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to read as another user")
@pytest.mark.parametrize("loader", ["cube", "PSF", "config"])
def test_an_unreadable_file_is_refused_by_name(loader, tmp_path, seeds):
    # root reads any file, so when run as root the loader runs as 'nobody' in a child process
    fmt = {"cube": "npy", "PSF": "psf", "config": "config"}[loader]
    seed = seeds[fmt][0]
    case = fuzz.Case(fmt, "unreadable", dict(seed.files), seed.target, seed.entries[0], "unreadable")
    out = fuzz.run_case(case, tmp_path)
    assert out.kind == "InputError" and "ermission denied" in out.message, out


def _peak_while(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_npy_header_claiming_a_trillion_values_is_refused_before_allocating(tmp_path):
    p = tmp_path / "huge.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000, 1000), }"
    header += " " * (-(10 + len(header) + 1) % 16) + "\n"
    p.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(64))
    err = []
    peak = _peak_while(lambda: err.append(pytest.raises(InputError, io.load_cube, p)))
    msg = str(err[0].value)
    assert "huge.npy" in msg and "1000000x1000x1000" in msg and "64 bytes" in msg
    assert peak < 4 << 20


def test_negative_dimensions_and_non_numeric_types_are_named(tmp_path):
    def npy(name, descr, shape):
        h = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
        h += " " * (-(10 + len(h) + 1) % 16) + "\n"
        p = tmp_path / name
        p.write_bytes(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h.encode() + bytes(256))
        return p
    with pytest.raises(InputError, match="neg.npy.*negative size"):
        io.load_cube(npy("neg.npy", "<f4", (-3, 4, 5)))
    with pytest.raises(InputError, match="text.npy.*not numeric"):
        io.load_cube(npy("text.npy", "<U8", (2, 2)))


def test_hdf5_dataset_larger_than_its_stored_chunks_is_refused(tmp_path):
    import h5py
    p = tmp_path / "sparse.h5"
    with h5py.File(p, "w") as f:     # a valid file whose chunks were never written: all fill value
        f.create_dataset("cube", shape=(100000, 1000, 100), dtype="f4", chunks=(10, 100, 100),
                         compression="gzip")
    peak = _peak_while(lambda: pytest.raises(InputError, io.load_cube, p))
    assert peak < 4 << 20
    with pytest.raises(InputError, match=r"sparse\.h5.*100000x1000x100"):
        io.load_cube(p)


def test_mat_v5_dims_beyond_the_data_are_refused(tmp_path):
    import scipy.io
    import struct
    p = tmp_path / "dims.mat"
    scipy.io.savemat(p, {"im": np.ones((4, 5, 6), np.float32)})
    raw = bytearray(p.read_bytes())
    struct.pack_into("<3i", raw, 128 + 8 + 16 + 8, 40000, 50000, 6)   # the first variable's dims
    p.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"dims\.mat.*'im'.*40000x50000x6"):
        io.load_cube(p)
