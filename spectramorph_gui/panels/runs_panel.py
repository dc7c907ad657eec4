"""Runs: every run since the app started, with its key settings and scores.

Pick one to show it (every panel that shows a result follows), another to compare it with
(the Results panel then shows both in linked views, swiped, or their difference); remove
the ones no longer wanted (their folders go). Reads the state's run list; holds nothing.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

COLUMNS = ("run", "settings", "scores")


class RunsPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setSelectionMode(QTableWidget.SingleSelection)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().hide()
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.Stretch)
        head.setSectionResizeMode(2, QHeaderView.Stretch)      # settings and scores share the width
        # settings are what tells runs apart: wrapped onto more lines in a narrow dock, never "..."
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.ElideNone)
        head.sectionResized.connect(lambda *_: self.table.resizeRowsToContents())
        self.show_button = QPushButton("Show")
        self.show_button.setToolTip("Show the selected run in the Results panel (double-click does the same)")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Compare the shown run with the selected one: side by side (linked zoom, "
                                       "pan and cursor), as a swipe, or their difference (Results panel)")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Forget the selected run and delete its files (not the shown run; "
                                      "export it first to keep it)")
        self.note = QLabel("Every run is kept until the app closes (its result on disk, memory-mapped). "
                           "<b>bold</b>: shown; <i>italic</i>: compared with.")
        self.note.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.show_button, self.compare_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.note)

        self.show_button.clicked.connect(lambda: self._act("show"))
        self.compare_button.clicked.connect(lambda: self._act("compare"))
        self.remove_button.clicked.connect(lambda: self._act("remove"))
        self.table.cellDoubleClicked.connect(lambda row, _c: self._act("show", row))
        self.table.itemSelectionChanged.connect(self._update_buttons)
        for sig in (state.runsChanged, state.resultChanged, state.comparisonChanged):
            sig.connect(lambda *_: self.refresh())
        self.refresh()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.table.resizeRowsToContents()      # wrapped settings need the new width's line count

    def refresh(self) -> None:
        s = self.state
        selected = self.selected_number()
        t = self.table
        t.setRowCount(len(s.runs))
        for row, rec in enumerate(s.runs):
            # when it finished goes under its name: the width is for what tells runs apart
            texts = (f"{rec.name}\n{rec.finished_at}, {rec.seconds:.0f} s", rec.settings_text(), rec.score_text())
            for col, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                item.setData(Qt.UserRole, rec.number)
                font = item.font()
                font.setBold(rec is s.shown_run)
                font.setItalic(s.comparison == ("run", rec.number))
                item.setFont(font)
                t.setItem(row, col, item)
        t.resizeRowsToContents()
        if selected is not None:
            self.select(selected)
        self._update_buttons()

    def selected_number(self):
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(Qt.UserRole)

    def select(self, number: int) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.UserRole) == number:
                self.table.selectRow(row)
                return

    def _update_buttons(self) -> None:
        number = self.selected_number()
        shown = self.state.shown_run
        other = number is not None and (shown is None or number != shown.number)
        self.show_button.setEnabled(other)
        self.compare_button.setEnabled(other and shown is not None)
        self.remove_button.setEnabled(other)

    def _act(self, what: str, row: int | None = None) -> None:
        number = self.selected_number() if row is None else self.table.item(row, 0).data(Qt.UserRole)
        if number is None:
            return
        if what == "show":
            self.state.show_run(number)
        elif what == "compare":
            self.state.set_comparison(("run", number))
        else:
            self.state.remove_run(number)
