"""Can Qt open a window here? The system libraries its X11 platform plugin needs.

The PySide6 wheel brings Qt itself but not the X11/XCB libraries of the system; on a fresh
Debian or Ubuntu machine some are missing (libxcb-cursor0, libxcb-icccm4, ...) and the app
dies with "Could not load the Qt platform plugin 'xcb'" and a list of plugin names that does
not say what to install. `scripts/demo` runs this first:

    python -m spectramorph_gui.qt_deps        # exit 0: fine; 1: prints the one install line

It asks the dynamic loader (`ldd` on the wheel's libqxcb.so) which libraries it cannot find
and maps them to Debian / Ubuntu package names. Nothing here imports a Qt module that needs
them.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

# shared library (soname) -> Debian / Ubuntu package
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-glx.so.0": "libxcb-glx0", "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6", "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1", "libXi.so.6": "libxi6", "libICE.so.6": "libice6", "libSM.so.6": "libsm6",
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libOpenGL.so.0": "libopengl0", "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3", "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
}
def xcb_plugin() -> Optional[Path]:
    """The X11 platform plugin of the installed PySide6 wheel, or None."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent
    for rel in ("Qt/plugins/platforms/libqxcb.so", "plugins/platforms/libqxcb.so"):
        if (root / rel).is_file():
            return root / rel
    return None


def missing_libraries(ldd_output: str) -> list:
    """The sonames `ldd` reports as 'not found', each once, in order."""
    seen: list = []
    for m in re.finditer(r"^\s*(\S+)\s*=>\s*not found", ldd_output, flags=re.M):
        if m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def install_line(sonames, root=None) -> tuple:
    """(the apt-get line for the libraries' packages, sonames no package is known for); with
    sudo in front unless the user is root (`root`: None asks the system)."""
    packages, unknown = [], []
    for name in sonames:
        pkg = DEBIAN_PACKAGES.get(name)
        if pkg is None:
            unknown.append(name)
        elif pkg not in packages:
            packages.append(pkg)
    sudo = "" if (_is_root() if root is None else root) else "sudo "
    return (f"{sudo}apt-get install -y " + " ".join(packages) if packages else ""), unknown


def needs_x11() -> bool:
    """Whether Qt will use its X11 plugin: on Linux, unless another platform is asked for."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    return platform == "" or platform.startswith("xcb")


def check() -> tuple:
    """(ok, message). Not ok: the message says what is missing and the one line that installs it."""
    if not needs_x11():
        return True, ""
    plugin = xcb_plugin()
    if plugin is None:
        return True, ""         # not a wheel layout we know: let Qt speak for itself
    ldd = shutil.which("ldd")
    if ldd is None:
        return True, ""
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return True, ""
    missing = missing_libraries(out)
    if not missing:
        return True, ""
    line, unknown = install_line(missing)
    text = (f"SpectraMorph Studio cannot open a window yet: Qt's X11 platform plugin needs system "
            f"libraries this machine lacks ({', '.join(missing)}).\n")
    if line:
        text += f"Install them with:\n\n    {line}\n"
    if unknown:
        text += (f"\nNo package is known here for {', '.join(unknown)}; find it with "
                 f"'apt-file search {unknown[0]}'.\n")
    text += ("\n(Without a screen: .venv/bin/spectramorph run --demo runs the same demo headless.)")
    return False, text


def main() -> int:
    ok, message = check()
    if not ok:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
