"""The main window: the results in the middle, the other panels in docks around them.

The user may move, tabify, float or close the docks; the layout and the
window geometry are restored at the next start (QSettings), and View > Reset
layout brings back the original arrangement.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QProgressBar, QScrollArea

from ..settings import settings
from ..state import AppState
from . import dialogs
from .curves_panel import CurvesPanel
from .data_panel import DataPanel
from .export_panel import ExportPanel
from .psf_panel import PsfPanel
from .results_panel import ResultsPanel
from .runs_panel import RunsPanel
from .srf_panel import SrfPanel
from .training_panel import TrainingPanel

LAYOUT_VERSION = 3   # bump when the docks change so an old saved layout is not applied
DEFAULT_SIZE = (1400, 900)


class MainWindow(QMainWindow):
    def __init__(self, demo_size: Optional[int] = None, load_demo: bool = True, parent=None):
        super().__init__(parent)
        self.setWindowTitle("SpectraMorph Studio")
        self.setObjectName("SpectraMorphStudio")
        self.setDockOptions(QMainWindow.AnimatedDocks | QMainWindow.AllowTabbedDocks
                            | QMainWindow.AllowNestedDocks)
        self.state = AppState(self, demo_size=demo_size)
        if load_demo:
            from spectramorph_engine.run.demo import demo_config
            # The demo's own defaults (five materials in the scene -> five endmembers), as the CLI's --demo.
            self.state.config = demo_config()

        # --- panels ---
        self.results_panel = ResultsPanel(self.state)
        self.data_panel = DataPanel(self.state)
        self.psf_panel = PsfPanel(self.state)
        self.srf_panel = SrfPanel(self.state)
        self.training_panel = TrainingPanel(self.state)
        self.curves_panel = CurvesPanel(self.state)
        self.export_panel = ExportPanel(self.state)
        self.runs_panel = RunsPanel(self.state)
        self.setCentralWidget(self.results_panel)
        self._default_size()
        self._arranged = False

        self.docks = {}
        self.data_dock = self._dock("data", "Data", self.data_panel, Qt.LeftDockWidgetArea, scroll=True)
        self.psf_dock = self._dock("psf", "PSF", self.psf_panel, Qt.LeftDockWidgetArea)
        self.srf_dock = self._dock("srf", "SRF", self.srf_panel, Qt.LeftDockWidgetArea)
        self.training_dock = self._dock("training", "Training", self.training_panel, Qt.RightDockWidgetArea)
        self.curves_dock = self._dock("curves", "Live curves", self.curves_panel, Qt.RightDockWidgetArea)
        self.export_dock = self._dock("export", "Export", self.export_panel, Qt.RightDockWidgetArea, scroll=True)
        self.runs_dock = self._dock("runs", "Runs", self.runs_panel, Qt.RightDockWidgetArea)
        self._build_menus()
        self._build_status_bar()

        # a bug anywhere (a slot, a worker, a thread) is a dialog with details, never a crash
        from ..errors import ErrorReporter
        self.error_reporter = ErrorReporter(self)
        self.error_reporter.install()
        self.state.errorRaised.connect(self._show_error)
        self.state.bugRaised.connect(self.error_reporter.reported)
        self.state.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.state.busyChanged.connect(self._on_busy)

        self._geometry_restored = self._restore_geometry()
        if load_demo:
            self.state.load_demo()
        self.state.warm_up_engine()

    # ------------------------------------------------------------------ building
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._arranged:
            self._arranged = True
            self._arrange_docks()

    def _arrange_docks(self) -> None:
        """Tab the docks together, then apply the saved layout over it.

        Done once the window is shown: tabifying docks before the first show left a stale
        second "Live curves | Export" tab strip drawn over the results (Qt 6.12)."""
        self.tabifyDockWidget(self.data_dock, self.psf_dock)
        self.tabifyDockWidget(self.psf_dock, self.srf_dock)
        self.tabifyDockWidget(self.curves_dock, self.export_dock)
        self.tabifyDockWidget(self.export_dock, self.runs_dock)
        self.data_dock.raise_()
        self.curves_dock.raise_()
        # The untabbed docks, stacked, had stretched the window: back to its size.
        if not self._geometry_restored:
            self._default_size()
        else:
            self._restore_geometry()
        self.resizeDocks([self.data_dock, self.training_dock], [385, 335], Qt.Horizontal)
        self.resizeDocks([self.training_dock, self.curves_dock], [450, 400], Qt.Vertical)
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._restore_layout()

    def _default_size(self) -> None:
        """1400 x 900, or the screen's available area when that is smaller (a small laptop)."""
        w, h = DEFAULT_SIZE
        screen = self.screen() if self.screen() is not None else None
        if screen is not None:
            avail = screen.availableGeometry()
            w, h = min(w, avail.width()), min(h, avail.height())
        self.resize(w, h)

    def _dock(self, name, title, widget, area, scroll: bool = False) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        if scroll:
            # A form taller than the dock scrolls instead of forcing the window's minimum height
            # up (the whole window fits a laptop screen).
            area_ = QScrollArea()
            area_.setObjectName(f"scroll_{name}")
            area_.setWidgetResizable(True)
            area_.setFrameShape(QScrollArea.NoFrame)
            area_.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
            area_.setWidget(widget)
            dock.setWidget(area_)
        else:
            dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable
                         | QDockWidget.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.docks[name] = dock
        return dock

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Demo scene", lambda: self.state.load_demo())
        self._action(file_menu, "Open ground-truth cube…", lambda: self.data_panel.open_file("truth"))
        self._action(file_menu, "Open HR-MSI + LR-HSI pair…", lambda: self.data_panel.open_pair())
        self._action(file_menu, "Open HR-MSI…", lambda: self.data_panel.open_file("hr_msi"))
        self._action(file_menu, "Open LR-HSI…", lambda: self.data_panel.open_file("lr_hsi"))
        file_menu.addSeparator()
        self._action(file_menu, "Open configuration…", lambda: self.export_panel.open_config(), QKeySequence.Open)
        self._action(file_menu, "Save configuration…", lambda: self.export_panel.save_config(), QKeySequence.Save)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.Quit)

        run_menu = bar.addMenu("&Run")
        self.run_action = self._action(run_menu, "Run", self.training_panel.run, QKeySequence("Ctrl+R"))
        self.stop_action = self._action(run_menu, "Stop…", self.training_panel.stop, QKeySequence("Escape"))

        view_menu = bar.addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        self._action(view_menu, "Reset layout", self.reset_layout)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "About", lambda: dialogs.show_info(
            self, "SpectraMorph Studio: hyperspectral super-resolution (SpectraMorph, arXiv 2510.20814). "
                  "Run the demo, then open your own HR-MSI and LR-HSI in real-world mode."))

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def _build_status_bar(self) -> None:
        self.busy_label = QLabel()
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)      # indeterminate: loads and exports report no fraction
        self.busy_bar.setMaximumWidth(140)
        self.busy_bar.setMaximumHeight(14)
        self.statusBar().addPermanentWidget(self.busy_label)
        self.statusBar().addPermanentWidget(self.busy_bar)
        self._on_busy("")

    # ------------------------------------------------------------------ reactions
    def _show_error(self, text: str) -> None:
        # Looked up at call time so tests can patch dialogs.show_error.
        dialogs.show_error(self, text)

    def _on_busy(self, label: str) -> None:
        self.busy_label.setText(f"{label}…" if label else "")
        self.busy_label.setVisible(bool(label))
        self.busy_bar.setVisible(bool(label))

    # ------------------------------------------------------------------ settings
    def _restore_geometry(self) -> bool:
        geometry = settings().value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            return self.restoreGeometry(geometry)
        return False

    def _restore_layout(self) -> None:
        layout = settings().value("window/state")
        if isinstance(layout, QByteArray) and not layout.isEmpty():
            self.restoreState(layout, LAYOUT_VERSION)

    def save_settings(self) -> None:
        if not self._arranged:
            return
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(LAYOUT_VERSION))
        s.sync()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.state.shutdown()
        self.error_reporter.uninstall()
        super().closeEvent(event)
