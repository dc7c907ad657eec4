"""Every modal dialog the app opens goes through here.

Tests replace these functions (monkeypatch) to capture error texts and to
answer file / variable pickers without a human.
"""
from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from ..settings import last_folder, remember_folder


def show_error(parent, text: str, details: str = "") -> None:
    """One sentence saying what is wrong; the window keeps working after it. `details` (a
    traceback, for a bug) goes under the dialog's "Show Details..." button."""
    box = QMessageBox(QMessageBox.Warning, "SpectraMorph Studio", text, QMessageBox.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.exec()


def show_info(parent, text: str) -> None:
    QMessageBox.information(parent, "SpectraMorph Studio", text)


def ask_open_file(parent, title: str, filters: str) -> Optional[str]:
    path, _ = QFileDialog.getOpenFileName(parent, title, last_folder(), filters)
    if path:
        remember_folder(path)
    return path or None


def ask_save_file(parent, title: str, filters: str, suggested: str = "") -> Optional[str]:
    from pathlib import Path
    start = str(Path(last_folder()) / suggested) if suggested else last_folder()
    path, _ = QFileDialog.getSaveFileName(parent, title, start, filters)
    if path:
        remember_folder(path)
    return path or None


def ask_folder(parent, title: str) -> Optional[str]:
    path = QFileDialog.getExistingDirectory(parent, title, last_folder())
    if path:
        remember_folder(path)
    return path or None


def pick_variable(parent, path: str, choices: Sequence[str]) -> Optional[str]:
    """Which array of a file holding several (.mat / .h5); None when cancelled."""
    item, ok = QInputDialog.getItem(parent, "Choose an array",
                                    f"'{path}' holds several arrays. Which one is the cube?",
                                    list(choices), 0, False)
    return item if ok else None
