"""``xfr-desktop`` - start the GUI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core import APP_NAME, __version__
from core.models.ids import DEFAULT_MODEL_ID

ORGANISATION = "XFR"  # with APP_NAME, names the settings/data folders Qt uses
QUIT_WAIT_S = 30.0  # longest wait for background work at exit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xfr-desktop",
        description=f"{APP_NAME}: offline workstation for forensic face examiners.",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL_ID,
        metavar="ID",
        help=f"face model id (default: {DEFAULT_MODEL_ID}; `xfr models` lists them)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where the model runs (auto: CUDA when available, else CPU)",
    )
    opening = parser.add_mutually_exclusive_group()
    opening.add_argument(
        "--demo",
        action="store_true",
        help="open the demo case (made from photos bundled with the installed "
        "packages on first use, then reused)",
    )
    opening.add_argument("--case", metavar="FOLDER", help="open this case folder")
    opening.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation headless (model, demo case, explanations, "
        "signed report, Qt libraries), print a summary and exit (0: all passed)",
    )
    parser.add_argument(
        "--version", action="version", version=f"{APP_NAME} {__version__}"
    )
    return parser


def qt_libraries_check() -> str:
    """Load Qt's widget libraries and render a widget on the offscreen platform.

    Checks that the bundle's Qt libraries and platform plugins load without a
    display; reuses a running QApplication (then on whatever platform it has).
    """
    import PySide6
    from PySide6.QtCore import qVersion
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(
        [sys.argv[0] if sys.argv else "xfr-desktop", "-platform", "offscreen"]
    )
    assert isinstance(app, QApplication)
    label = QLabel(f"{APP_NAME} self-test")
    try:
        label.resize(240, 40)
        image = label.grab().toImage()
        if image.isNull() or image.width() < 1:
            raise RuntimeError("Qt could not render a widget")
    finally:
        label.deleteLater()
    import pyqtgraph

    import xfr_desktop.main_window  # every GUI module imports (all bundled)

    return (
        f"PySide6 {PySide6.__version__}, Qt {qVersion()}, pyqtgraph "
        f"{pyqtgraph.__version__}; platform plugin '{app.platformName()}' rendered "
        f"a widget; GUI modules import ({xfr_desktop.main_window.__name__})"
    )


def self_test(device: str = "auto") -> int:
    """``--self-test``: the core checks first (no Qt imported yet), then Qt's."""
    from core.selftest import run_self_test

    report = run_self_test(
        device=device, extra_steps=[("Qt GUI libraries", qt_libraries_check)]
    )
    print(report.format_summary(), flush=True)
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        return self_test(args.device)
    # Qt is imported only now, so --help and --version work without a display.
    from PySide6.QtWidgets import QApplication

    from xfr_desktop.errors import install_excepthook
    from xfr_desktop.main_window import MainWindow
    from xfr_desktop.workers import wait_all

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationVersion(__version__)

    window = MainWindow(model_id=args.model, device=args.device)
    restore_excepthook = install_excepthook(window.errors)

    def on_about_to_quit() -> None:
        wait_all(QUIT_WAIT_S)  # no worker may outlive the GUI

    app.aboutToQuit.connect(on_about_to_quit)
    window.show()
    if args.case:
        window.open_case(args.case)
    elif args.demo:
        window.open_demo()
    try:
        return app.exec()
    finally:
        app.aboutToQuit.disconnect(on_about_to_quit)
        restore_excepthook()
        window.deleteLater()  # the window goes before the app, not at interpreter exit


if __name__ == "__main__":
    sys.exit(main())
