"""Screenshots of the video demo at 1280x720: the Video tab with its tracks and
best frames, a frame exhibit compared with a portrait (the LR and its cautions),
and the exhibits list with quality and provenance.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/video_screenshots.py docs/video

Uses a temporary settings/data folder (scripts/app_driver.py); needs dlib.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(out: Path) -> None:
    from app_driver import AppDriver

    driver = AppDriver(out, (1280, 720), "xfr-video-shots-")
    window, wait, shot = driver.window, driver.wait, driver.shot
    wait(lambda: window.model is not None)
    window.open_video_demo()
    wait(lambda: window.controller.case is not None, 240)
    wait(lambda: window.compare.loaded is not None, 120)
    driver.settle(3)
    shot("01-video-demo-compare")
    window.show_video("V1")
    panel = window.video_panel
    wait(lambda: bool(panel.strips), 120)
    driver.settle(5)  # the strips' thumbnails decode in a worker
    driver.settle(2)
    panel.pick_track("T1")
    driver.settle(2)
    shot("02-video-tracks-and-best-frames")
    window.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(Path(sys.argv[1]))
