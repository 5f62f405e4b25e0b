"""``xfr-desktop`` - start the GUI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core import APP_NAME, __version__
from core.models.base import DEFAULT_MODEL_ID


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="xfr-desktop", description=APP_NAME)
    parser.add_argument("--model", default=DEFAULT_MODEL_ID, help="model id")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--version", action="version", version=f"{APP_NAME} {__version__}"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtCore import QThreadPool
    from PySide6.QtWidgets import QApplication

    from xfr_desktop.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("XFR")
    app.setApplicationVersion(__version__)
    window = MainWindow(model_id=args.model, device=args.device)
    # On quit, running workers are cancelled and awaited: nothing half-done remains.
    app.aboutToQuit.connect(lambda: QThreadPool.globalInstance().waitForDone(30_000))
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
