"""scripts/demo's check that Qt can open a window: missing X11 libraries become one install line."""
import subprocess
import sys

import pytest

from spectramorph_gui import qt_deps

LDD = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibweird.so.9 => not found
"""


def test_missing_libraries_map_to_one_apt_line():
    missing = qt_deps.missing_libraries(LDD)
    assert missing == ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libweird.so.9"]
    line, unknown = qt_deps.install_line(missing, root=False)
    assert line == "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4"
    assert unknown == ["libweird.so.9"]
    # root needs no sudo (and a bare container has none)
    assert qt_deps.install_line(missing, root=True)[0] == "apt-get install -y libxcb-cursor0 libxcb-icccm4"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 plugin is Linux's")
def test_check_prints_the_install_line_and_fails(monkeypatch, tmp_path):
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    monkeypatch.setattr(qt_deps, "xcb_plugin", lambda: plugin)
    monkeypatch.setattr(qt_deps.shutil, "which", lambda name: "/usr/bin/ldd")
    monkeypatch.setattr(qt_deps.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=LDD, stderr=""))
    monkeypatch.setattr(qt_deps, "_is_root", lambda: False)
    ok, text = qt_deps.check()
    assert not ok
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4" in text and "apt-file search libweird" in text
    assert qt_deps.main() == 1
    # all found: nothing to say
    monkeypatch.setattr(qt_deps.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout="\tlibxcb.so.1 => /x\n", stderr=""))
    assert qt_deps.check() == (True, "") and qt_deps.main() == 0
    # another platform asked for (offscreen, wayland): the X11 plugin is not used
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert not qt_deps.needs_x11()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 plugin is Linux's")
def test_the_wheel_plugin_is_found():
    plugin = qt_deps.xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
