"""Text tables (PSF kernels, SRF response tables, wavelength lists): the one reader for them all
(`read_text_table`: encodings, separators, a header row, comments).
"""
from __future__ import annotations

from pathlib import Path
import re

import numpy as np

from ..core.errors import InputError
from .common import PathLike, _short


# Text tables (PSF kernels, SRF response tables, wavelength lists): the one reader for them all
# (io.load_matrix / load_wavelengths and the PSF / SRF file loaders in psf.py).
TEXT_COMMENT_PREFIXES = ("#", "%", ";")


def _decode_text(p: Path, label: str) -> str:
    """A text file's characters: UTF-8 with or without a byte-order mark, UTF-16 with one (Excel's
    "Unicode text"), else Latin-1 (a header such as 'Wellenlänge' saved by an older tool; the
    numbers are ASCII in every one of them). Binary bytes (NUL) are refused."""
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{label} cannot be read: {exc.strerror or exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"{label} cannot be read as UTF-16 text: {_short(exc)}") from None
    if b"\x00" in raw:
        raise InputError(f"{label} cannot be read as text: it holds binary bytes (NUL)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_text_table(path: PathLike, what: str = "") -> np.ndarray:
    """The numbers of a .txt/.csv/.tsv/.dat table as a 2-D float64 array (rows x columns).

    Separators: comma, semicolon (a decimal comma is then allowed: '0,5' is 0.5), tab or
    spaces, taken from the first data row. Blank lines and lines starting with '#', '%' or
    ';' are skipped; one header line (column names) before the numbers is allowed; a trailing
    separator at the end of a row is allowed. A byte-order mark is not part of the first value.
    `what` ("PSF", "SRF") names the file in the messages (InputError, one line).
    """
    p = Path(path)
    label = f"{what} file '{p}'" if what else f"'{p}'"
    lines = [ln.strip() for ln in _decode_text(p, label).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(TEXT_COMMENT_PREFIXES)]

    def loose(line):         # only to tell a header from numbers, whatever the separator
        try:
            [float(t) for t in re.split(r"[,;\s]+", line) if t]
            return True
        except ValueError:
            return False

    if lines and not loose(lines[0]):
        lines = lines[1:]            # a header row such as "wavelength_nm,band1"
    if not lines:
        raise InputError(f"{label} holds no numbers")
    first = lines[0]
    sep = ";" if ";" in first else ("," if "," in first else None)

    def values(line):
        cells = [c.strip() for c in line.split(sep)] if sep else line.split()
        if cells and cells[-1] == "":
            cells.pop()                  # "1,2," as spreadsheets export it
        if sep == ";":
            cells = [c.replace(",", ".") for c in cells]
        return [float(c) for c in cells]     # an empty cell inside a row is a missing value: refused

    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(values(line))
        except ValueError:
            raise InputError(f"{label} has a non-numeric or empty value on data line {i + 1}: "
                             f"{line[:60]!r}") from None
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(f"{label} has rows of different lengths ({', '.join(map(str, sorted(widths)))} values)")
    if 0 in widths:
        raise InputError(f"{label} holds no numbers")
    return np.asarray(rows, dtype=np.float64)
