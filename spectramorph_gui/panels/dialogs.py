"""Every modal dialog the app opens goes through here.

Tests replace these functions (monkeypatch) to capture error texts and to
answer file / variable pickers without a human.
"""
from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtWidgets import QFileDialog, QMessageBox

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


def pick_variable(parent, path: str, choices: Sequence[str], role: str = "the cube",
                  suggested: Optional[str] = None) -> Optional[str]:
    """Which array of a file holding several (.mat / .h5) is `role` (e.g. "LR-HSI (low-resolution
    hyperspectral image)"); `suggested` is selected at the start, and with none the user must
    pick one before OK is enabled. None when cancelled."""
    from pathlib import Path

    from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QVBoxLayout
    short = role.split(" (")[0]
    dialog = QDialog(parent)
    dialog.setObjectName("variablePicker")
    dialog.setWindowTitle(f"Choose the {short}")
    label = QLabel(f"<b>{Path(path).name}</b> holds several arrays. Which one is the <b>{role}</b>?"
                   + ("" if suggested else "<br>None fits better than the others: choose one."))
    label.setWordWrap(True)
    label.setToolTip(str(path))
    listing = QListWidget()
    listing.setObjectName("variableList")
    listing.addItems(list(choices))
    buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
    ok = buttons.button(QDialogButtonBox.Ok)
    if suggested in choices:
        listing.setCurrentRow(list(choices).index(suggested))
    else:
        listing.setCurrentRow(-1)
        listing.clearSelection()
    ok.setEnabled(bool(listing.selectedItems()))
    listing.itemSelectionChanged.connect(lambda: ok.setEnabled(bool(listing.selectedItems())))
    listing.itemDoubleClicked.connect(lambda _item: dialog.accept())
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(label)
    layout.addWidget(listing)
    layout.addWidget(buttons)
    dialog.resize(460, 260)
    if dialog.exec() != QDialog.Accepted or not listing.selectedItems():
        return None
    return listing.selectedItems()[0].text()
