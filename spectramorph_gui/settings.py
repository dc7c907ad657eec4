"""Where the app keeps what it remembers between runs (window layout, last folder).

Tests (and anyone who wants a throw-away profile) point
SPECTRAMORPH_SETTINGS_DIR at a folder, so the user's real settings are never
touched by a test run.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANISATION = "SpectraMorph"
APPLICATION = "SpectraMorph Studio"
ENV_DIR = "SPECTRAMORPH_SETTINGS_DIR"


def settings() -> QSettings:
    folder = os.environ.get(ENV_DIR)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "studio.ini"), QSettings.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def last_folder() -> str:
    value = settings().value("last_folder", "")
    return value if isinstance(value, str) and value and Path(value).is_dir() else str(Path.cwd())


def remember_folder(path: str) -> None:
    if path:
        p = Path(path)
        settings().setValue("last_folder", str(p if p.is_dir() else p.parent))
