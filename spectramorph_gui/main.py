"""Entry point: `python app.py` or the `spectramorph-studio` console script."""
from __future__ import annotations

import logging
import sys


def main(argv=None) -> int:
    from PySide6.QtWidgets import QApplication

    from .panels.main_window import MainWindow
    from .settings import APPLICATION, ORGANISATION

    argv = list(sys.argv if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(argv)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    window = MainWindow()
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
