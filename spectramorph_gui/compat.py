"""Work-around for a reference-counting bug of PySide6 6.12.0 on Python < 3.12.

With that binding, every call of a C++ method returning void drops one
reference to None, and every `Signal.emit()` one reference to True, without
having taken it (measured: 50 `setChecked` calls -> None's count 50 lower;
6.11.3 does not do it). On Python 3.12+ these singletons are immortal and
nothing happens; on 3.10/3.11 the count reaches zero after some tens of
thousands of calls and the interpreter aborts ("none_dealloc: deallocating
None"), i.e. the app dies a few minutes into normal use.

The real fix is to avoid that release (pyproject pins it out); for an
environment that already has it, `guard()` gives None, True and False a
reserve of references once at start-up, which the leaked decrements can
never exhaust. The singletons are never freed anyway, so the extra count is
harmless. Nothing is done on other versions.
"""
from __future__ import annotations

import ctypes
import sys

AFFECTED_PYSIDE = ("6.12.0",)
RESERVE = 1 << 40      # far more calls than any session makes

_done = False


def affected() -> bool:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    try:
        import PySide6
    except ImportError:
        return False
    return PySide6.__version__ in AFFECTED_PYSIDE


def guard() -> bool:
    """Top up the singletons' reference counts once; True when it was needed."""
    global _done
    if _done or not affected():
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every CPython object, at id(obj).
        ctypes.c_ssize_t.from_address(id(obj)).value += RESERVE
    _done = True
    return True
