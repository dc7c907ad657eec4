"""The hostile cases of `python -m bench fuzz`: valid seed files for every format, written
here, and their mutations (truncations, flipped bits, splices, absurd integers in the headers,
structurally absurd headers per format, special paths). bench/fuzz.py runs them against the
loaders; tests/engine/test_hostile_files.py runs a sample.
"""
from __future__ import annotations

import io as _stdio
import json
import random
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np


FORMATS = ("mat5", "mat73", "h5", "npy", "npz", "tif", "envi", "srf", "psf", "wavelengths", "config")
SPECIALS = ("empty", "folder", "unreadable", "fifo", "dangling_link", "link_loop")
ABSURD_INTS = (10**12, 2**31 - 1, 2**32 - 1, 2**63 - 1, -1, -3, 0, 1 << 40)

# ----------------------------------------------------------------------------- seeds


@dataclass
class Seed:
    """A valid file set: `files` (name -> bytes), the path given to the loader, the loaders."""
    fmt: str
    name: str
    files: Dict[str, bytes]
    target: str
    entries: tuple


def _bytes_of(write: Callable[[Path], None], suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"x{suffix}"
        write(p)
        return p.read_bytes()


def _cube(rng, shape=(13, 11, 7), dtype=np.float32):
    return rng.random(shape).astype(dtype)


def make_seeds() -> Dict[str, List[Seed]]:
    """Valid seed files for every format (a few kB each)."""
    import h5py
    import scipy.io
    import tifffile
    from spectramorph_engine import io as sio

    rng = np.random.default_rng(0)
    cube = _cube(rng)
    wl = np.linspace(420.0, 980.0, cube.shape[2])
    cube_entries = ("load_cube", "load_cube_lazy", "list_arrays")
    seeds: Dict[str, List[Seed]] = {f: [] for f in FORMATS}

    def add(fmt, name, files, target, entries=cube_entries):
        seeds[fmt].append(Seed(fmt, name, files, target, tuple(entries)))

    # MATLAB v5, plain and compressed, with a wavelength vector beside the cube
    for comp in (False, True):
        data = _bytes_of(lambda p: scipy.io.savemat(str(p), {"im": cube, "wavelengths": wl[None]},
                                                    do_compression=comp), ".mat")
        add("mat5", f"v5{'-zlib' if comp else ''}", {"cube.mat": data}, "cube.mat")
    # MATLAB v7.3 (HDF5 behind a 512-byte header), written the way save_cube writes big ones
    def v73(p):
        with h5py.File(str(p), "w", userblock_size=512) as f:
            sio.writers._mat73_put(f, "im", cube)
            sio.writers._mat73_put(f, "wavelengths", wl[None])
        sio.writers._stamp_mat73(p)
    add("mat73", "v7.3", {"cube.mat": _bytes_of(v73, ".mat")}, "cube.mat")

    def h5_write(chunked):
        def w(p):
            with h5py.File(str(p), "w") as f:
                kw = dict(chunks=(4, 11, 7), compression="gzip", shuffle=True) if chunked else {}
                ds = f.create_dataset("cube", data=cube, **kw)
                ds.attrs["wavelengths"] = wl
        return w
    add("h5", "contiguous", {"cube.h5": _bytes_of(h5_write(False), ".h5")}, "cube.h5")
    add("h5", "chunked-gzip", {"cube.h5": _bytes_of(h5_write(True), ".h5")}, "cube.h5")

    def npy(a):
        buf = _stdio.BytesIO()
        np.save(buf, a)
        return buf.getvalue()
    add("npy", "float32", {"cube.npy": npy(cube)}, "cube.npy")
    add("npy", "uint16", {"cube.npy": npy((cube * 1000).astype(np.uint16))}, "cube.npy")

    def npz(compressed):
        buf = _stdio.BytesIO()
        (np.savez_compressed if compressed else np.savez)(buf, cube=cube, wavelengths=wl)
        return buf.getvalue()
    add("npz", "stored", {"cube.npz": npz(False)}, "cube.npz")
    add("npz", "deflated", {"cube.npz": npz(True)}, "cube.npz")

    add("tif", "contig", {"cube.tif": _bytes_of(lambda p: sio.save_cube(p, cube, wavelengths=wl), ".tif")},
        "cube.tif")
    add("tif", "pages", {"cube.tif": _bytes_of(
        lambda p: tifffile.imwrite(str(p), np.moveaxis(cube, -1, 0)), ".tif")}, "cube.tif")
    add("tif", "zlib", {"cube.tif": _bytes_of(
        lambda p: tifffile.imwrite(str(p), cube, compression="zlib", planarconfig="contig",
                                   photometric="minisblack"), ".tif")}, "cube.tif")

    with tempfile.TemporaryDirectory() as d:
        sio.save_cube(Path(d) / "cube.hdr", cube, wavelengths=wl)
        envi = {n: (Path(d) / n).read_bytes() for n in ("cube.hdr", "cube.img")}
    add("envi", "bip-hdr", envi, "cube.hdr")
    add("envi", "bip-img", envi, "cube.img")

    # SRF files: a c x C matrix (text, .npy, .mat) and a measured response table
    srf = rng.random((4, 7)) + 0.1
    table_wl = np.linspace(400.0, 1000.0, 31)
    resp = np.exp(-0.5 * ((table_wl[:, None] - np.array([480, 550, 660, 800])) / 40.0) ** 2)
    srf_text = "\n".join(",".join(f"{v:.6g}" for v in row) for row in srf).encode()
    table_text = ("wavelength_nm,b1,b2,b3,b4\n" + "\n".join(
        ",".join(f"{v:.6g}" for v in [w, *r]) for w, r in zip(table_wl, resp))).encode()
    add("srf", "matrix-csv", {"srf.csv": srf_text}, "srf.csv", ("load_srf",))
    add("srf", "table-csv", {"srf.csv": table_text}, "srf.csv", ("load_srf", "load_srf_table"))
    add("srf", "matrix-npy", {"srf.npy": npy(srf)}, "srf.npy", ("load_srf",))
    add("srf", "matrix-mat", {"srf.mat": _bytes_of(lambda p: scipy.io.savemat(str(p), {"srf": srf}), ".mat")},
        "srf.mat", ("load_srf",))

    from spectramorph_engine.sensors.psf import make_psf
    k = make_psf("gaussian", 1.5, 3)
    add("psf", "txt", {"psf.txt": "\n".join(" ".join(f"{v:.6g}" for v in r) for r in k).encode()},
        "psf.txt", ("load_psf",))
    add("psf", "npy", {"psf.npy": npy(k)}, "psf.npy", ("load_psf",))
    add("psf", "mat", {"psf.mat": _bytes_of(lambda p: scipy.io.savemat(str(p), {"psf": k}), ".mat")},
        "psf.mat", ("load_psf",))
    add("psf", "h5", {"psf.h5": _bytes_of(lambda p: h5py.File(str(p), "w").create_dataset("psf", data=k)
                                          .file.close(), ".h5")}, "psf.h5", ("load_psf",))
    add("psf", "tif", {"psf.tif": _bytes_of(lambda p: tifffile.imwrite(str(p), k.astype(np.float32)), ".tif")},
        "psf.tif", ("load_psf",))
    add("psf", "npz", {"psf.npz": npz_one(k)}, "psf.npz", ("load_psf",))

    add("wavelengths", "txt", {"wl.txt": ("wavelength_nm\n" + "".join(f"{v:.6g}\n" for v in wl)).encode()},
        "wl.txt", ("load_wavelengths",))
    add("wavelengths", "csv-um", {"wl.csv": ",".join(f"{v / 1000:.6g}" for v in wl).encode()},
        "wl.csv", ("load_wavelengths",))
    add("wavelengths", "npy", {"wl.npy": npy(wl)}, "wl.npy", ("load_wavelengths",))

    import yaml
    cfg = {"synthetic": True, "mat_file": "scene.mat", "mat_key": "im", "epochs": 10, "hidden_size": 16,
           "training_batch_size": None, "num_endmembers": 3, "spec_prior": False, "output_dir": "out",
           "wavelengths": [450.0, 550.0, 650.0]}
    add("config", "yaml", {"run.yaml": yaml.safe_dump(cfg, sort_keys=False).encode()}, "run.yaml",
        ("load_config",))
    add("config", "json", {"run.json": json.dumps(cfg, indent=2).encode()}, "run.json", ("load_config",))
    return seeds


def npz_one(a) -> bytes:
    buf = _stdio.BytesIO()
    np.savez(buf, psf=a)
    return buf.getvalue()


# ----------------------------------------------------------------------------- mutations


@dataclass
class Case:
    fmt: str
    label: str
    files: Dict[str, bytes]
    target: str
    entry: str
    special: Optional[str] = None


def _flip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    if not b:
        return data
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        head = rng.random() < 0.7
        i = rng.randrange(min(len(b), 1024) if head else len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _put_int(data: bytes, rng: random.Random) -> bytes:
    """An absurd integer written over an aligned field in the first kilobyte."""
    b = bytearray(data)
    width = rng.choice((2, 4, 8))
    limit = min(len(b), 1024) - width
    if limit <= 0:
        return data
    i = rng.randrange(0, limit + 1, width)
    v = rng.choice(ABSURD_INTS) & ((1 << (8 * width)) - 1)
    order = rng.choice(("<", ">"))
    b[i:i + width] = v.to_bytes(width, "little" if order == "<" else "big")
    return bytes(b)


def _splice(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    op = rng.choice(("insert", "delete", "zero", "dup"))
    n = rng.choice((1, 3, 16, 256))
    if op == "insert":
        return data[:i] + bytes(rng.randrange(256) for _ in range(n)) + data[i:]
    if op == "delete":
        return data[:i] + data[i + n:]
    if op == "zero":
        return data[:i] + bytes(min(n, len(data) - i)) + data[i + n:]
    return data[:i] + data[i:i + n] * 2 + data[i + n:]


def _truncate(data: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return data[:rng.randrange(min(len(data), 600) + 1)]     # inside the header
    return data[:rng.randrange(len(data) + 1)]


GENERIC = {"truncate": _truncate, "bitflip": _flip, "absurd_int": _put_int, "splice": _splice}


def _structural(seed: Seed, rng: random.Random) -> Optional[Dict[str, bytes]]:
    """Format-aware absurd headers; None when the format has none."""
    fn = _STRUCTURAL.get(seed.fmt)
    if fn is None:
        return None
    files = dict(seed.files)
    name = seed.target
    if seed.fmt == "envi":
        name = next(n for n in files if n.endswith(".hdr"))
    out = fn(files[name], rng, seed)
    if out is None:
        return None
    files[name] = out
    return files


def _npy_header(data: bytes, rng, seed) -> bytes:
    body = data[data.index(b"\n") + 1:] if b"\n" in data[:512] else data[128:]
    shape = rng.choice([(10**12,), (-3, 11, 7), (13, 11, 10**12), (2**62, 2**62), (13, 11, -7),
                        (), (0, 11, 7), (13, 11, 7, 5, 5), (10**6, 10**6, 10**6)])
    descr = rng.choice(["<f4", "<f4", ">f8", "<U8", "|O", "<c8", "|V16", "<f2", "|b1", "<M8[s]",
                        "[('a', '<f4'), ('b', '<i2')]", "'notatype'"])
    descr_txt = descr if descr.startswith(("[", "'")) else repr(descr)
    fortran = rng.choice(["False", "True", "7", "'x'"])
    if rng.random() < 0.2:
        header = rng.choice(["{}", "{'descr': '<f4'}", "[1, 2, 3]", "{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (13, 11, 7), 'extra': __import__('os')}", "\x00" * 20, "{" * 300])
    else:
        header = f"{{'descr': {descr_txt}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    header_b = header.encode("latin1")
    pad = 16 - (10 + len(header_b) + 1) % 16
    header_b += b" " * (pad % 16) + b"\n"
    version = rng.choice([(1, 0), (1, 0), (2, 0), (3, 0), (9, 9)])
    head = b"\x93NUMPY" + bytes(version)
    if version[0] == 1:
        head += struct.pack("<H", len(header_b) & 0xFFFF)
    else:
        head += struct.pack("<I", len(header_b) if rng.random() < 0.8 else rng.choice((2**31, 2**32 - 1)))
    return head + header_b + body


def _mat5_dims(data: bytes, rng, seed) -> Optional[bytes]:
    """Absurd dims in the first variable (inside the zlib stream for compressed files)."""
    dims = rng.choice([(10**6, 10**6, 10**3), (-3, 11, 7), (2**31 - 1, 2**31 - 1, 7), (0, 0, 0),
                       (13, 11, 7000), (1, 2**31 - 1)])

    def patch(elem: bytes) -> bytes:
        # miMATRIX: tag(8) flags(16) dims tag(8) dims...
        ndims = struct.unpack_from("<I", elem, 28)[0] // 4
        new = struct.pack(f"<{len(dims)}i", *dims)
        if rng.random() < 0.5:   # also lie about the data element's byte count
            pass
        if len(dims) == ndims:
            return elem[:32] + new + elem[32 + 4 * ndims:]
        return elem[:28] + struct.pack("<I", 4 * len(dims)) + new + elem[32 + 4 * ndims:]

    mtype, nbytes = struct.unpack_from("<II", data, 128)
    if mtype == 15:   # miCOMPRESSED
        inner = zlib.decompress(data[136:136 + nbytes])
        inner = patch(inner)
        comp = zlib.compress(inner)
        return data[:128] + struct.pack("<II", 15, len(comp)) + comp + data[136 + nbytes:]
    if mtype == 14:
        elem = patch(data[128:])
        if rng.random() < 0.4:    # the element's byte count too: past the end of the file
            elem = elem[:4] + struct.pack("<I", rng.choice((2**31 - 1, 2**32 - 1, len(data) * 50))) + elem[8:]
        return data[:128] + elem
    return None


def _h5_dims(data: bytes, rng, seed) -> Optional[bytes]:
    """Absurd dims in the HDF5 dataspace: the 8-byte dims are searched for and replaced."""
    shape = (13, 11, 7)
    if seed.fmt == "mat73":
        shape = shape[::-1]
    pat = struct.pack("<3Q", *shape)
    hits = [i for i in range(len(data)) if data.startswith(pat, i)]
    if not hits:
        return None
    new = rng.choice([(10**12, 11, 7), (13, 11, 2**40), (2**63 - 1, 1, 1), (2**64 - 1, 11, 7), (0, 11, 7),
                      (13 * 1000, 11 * 1000, 7)])
    b = bytearray(data)
    for i in hits if rng.random() < 0.5 else hits[:1]:   # dims alone, or dims and max dims
        b[i:i + 24] = struct.pack("<3Q", *new)
    return bytes(b)


def _tif_tags(data: bytes, rng, seed) -> Optional[bytes]:
    """Absurd values in classic little-endian TIFF tags of the first IFD."""
    if data[:4] != b"II*\x00":
        return None
    b = bytearray(data)
    ifd = struct.unpack_from("<I", b, 4)[0]
    n = struct.unpack_from("<H", b, ifd)[0]
    tags = {}
    for k in range(n):
        off = ifd + 2 + 12 * k
        tags[struct.unpack_from("<H", b, off)[0]] = off
    wanted = [t for t in (256, 257, 258, 259, 273, 277, 278, 279, 284, 339) if t in tags]
    for t in rng.sample(wanted, k=min(len(wanted), rng.choice((1, 1, 2)))):
        off = tags[t]
        typ = struct.unpack_from("<H", b, off + 2)[0]
        v = rng.choice((10**9, 2**31 - 1, 2**32 - 1, 0, 65535, 99, 7))
        if typ == 3:
            struct.pack_into("<H", b, off + 8, v & 0xFFFF)
        else:
            struct.pack_into("<I", b, off + 8, v & 0xFFFFFFFF)
        if rng.random() < 0.3:   # lie about the tag's count as well
            struct.pack_into("<I", b, off + 4, rng.choice((2**31, 10**6, 0)))
    return bytes(b)


def _envi_header(data: bytes, rng, seed) -> bytes:
    text = data.decode("latin1")
    key = rng.choice(["samples", "lines", "bands", "header offset", "data type", "byte order", "interleave",
                      "wavelength", "file type"])
    value = rng.choice(["1000000000000", "-3", "0", "99", "7", "abc", "1e400", "{1, 2", "bsq", "bil",
                        "18446744073709551615", "", "{" + ",".join(["9e9"] * 3) + "}"])
    lines = text.splitlines()
    out, done = [], False
    skip = False
    for ln in lines:
        if skip:
            if "}" in ln:
                skip = False
            continue
        if ln.split("=")[0].strip().lower() == key:
            out.append(f"{key} = {value}")
            done = True
            if "{" in ln and "}" not in ln:
                skip = True
        else:
            out.append(ln)
    if not done:
        out.append(f"{key} = {value}")
    if rng.random() < 0.1:
        out[0] = rng.choice(["ENVX", "", "\x00\x00"])
    return ("\n".join(out) + "\n").encode("latin1")


def _npz_absurd(data: bytes, rng, seed) -> bytes:
    """A member holding an absurd .npy header, or a zip directory lying about sizes."""
    if rng.random() < 0.5:
        inner = _npy_header(_bytes_npy(), rng, seed)
        buf = _stdio.BytesIO()
        method = rng.choice((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED))
        with zipfile.ZipFile(buf, "w", compression=method) as z:
            z.writestr("cube.npy", inner)
        return buf.getvalue()
    b = bytearray(data)
    # central directory entries: signature PK\x01\x02; sizes at +20 (compressed) and +24 (uncompressed)
    i = b.find(b"PK\x01\x02")
    while i >= 0:
        field_off = rng.choice((20, 24, 42))
        struct.pack_into("<I", b, i + field_off, rng.choice((2**32 - 1, 2**31, 10**9, 0)))
        i = b.find(b"PK\x01\x02", i + 4)
    return bytes(b)


def _bytes_npy() -> bytes:
    buf = _stdio.BytesIO()
    np.save(buf, np.zeros((13, 11, 7), np.float32))
    return buf.getvalue()


def _text_table(data: bytes, rng, seed) -> bytes:
    choice = rng.randrange(9)
    if choice == 0:
        return b"1e400, 2, 3\n4, 5, 6\n"
    if choice == 1:
        return b"nan nan nan\nnan nan nan\nnan nan nan\n"
    if choice == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    if choice == 3:
        return ("," * 10000 + "\n").encode()
    if choice == 4:
        return b"0 0 0\n0 0 0\n0 0 0\n"
    if choice == 5:
        return ("1 " * 100000 + "\n").encode()
    if choice == 6:
        return b"\xef\xbb\xbf# comment\n-1 -2\n-3 -4\n"
    if choice == 7:
        return b"wavelength\n" + b"x\n" * 5
    return data.replace(b",", b";").replace(b"\n", b"\r")


def _config_absurd(data: bytes, rng, seed) -> bytes:
    yaml_like = seed.target.endswith((".yaml", ".yml"))
    choices = [
        b"epochs: 1e400\n", b"epochs: -5\n", b"epochs: .nan\n", b"hidden_size: 100000000000000000000\n",
        b"- 1\n- 2\n", b"just a string\n", b"{1: 2, true: 3, null: 4}\n", b"? [a, b]\n: 1\n",
        b"a: &x [*x]\n", b"epochs: [1, 2]\nseed: {a: 1}\n", b"wavelengths: [[1, 2], 3]\n",
        b"[" * 5000 + b"]" * 5000, b"{\"epochs\": " * 3000, b"\x00\x01\x02\xff\xfe",
        b"epochs: !!python/object/apply:os.system ['true']\n", b"mat_file: " + b"x" * 100000 + b"\n",
        b"a: &a [1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\n"
        b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d]\nwavelengths: *e\n",
        b"output_dir: 12\nseed: 3.5\nsynthetic: maybe\n", b"\xef\xbb\xbfepochs: 3\n",
        b"{\"epochs\": 1e999999}", b"{\"epochs\": NaN, \"seed\": Infinity}", b"[1, 2, {\"a\": []}]",
        b"{\"wavelengths\": \"" + b"\\u0000" * 100 + b"\"}",
    ]
    if yaml_like or rng.random() < 0.5:
        return rng.choice(choices)
    return rng.choice(choices[-4:])


_STRUCTURAL = {"npy": _npy_header, "mat5": _mat5_dims, "h5": _h5_dims, "mat73": _h5_dims, "tif": _tif_tags,
               "envi": _envi_header, "npz": _npz_absurd, "srf": _text_table, "psf": _text_table,
               "wavelengths": _text_table, "config": _config_absurd}


def cases(fmt: str, n: int, rng: random.Random, seeds: Dict[str, List[Seed]]):
    """n hostile cases of `fmt`: about 8% special paths, 25% structural, the rest generic."""
    for i in range(n):
        seed = rng.choice(seeds[fmt])
        entry = rng.choice(seed.entries)
        roll = rng.random()
        if roll < 0.08:
            special = SPECIALS[i % len(SPECIALS)] if n >= len(SPECIALS) else rng.choice(SPECIALS)
            yield Case(fmt, f"{seed.name}/{special}", dict(seed.files), seed.target, entry, special)
            continue
        if roll < 0.33:
            files = _structural(seed, rng)
            if files is not None:
                yield Case(fmt, f"{seed.name}/structural", files, seed.target, entry)
                continue
        op = rng.choice(list(GENERIC))
        files = dict(seed.files)
        name = rng.choice(sorted(files))
        files[name] = GENERIC[op](files[name], rng)
        yield Case(fmt, f"{seed.name}/{op}:{name}", files, seed.target, entry)


# ----------------------------------------------------------------------------- running a case
