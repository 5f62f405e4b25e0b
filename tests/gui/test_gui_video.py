"""The video view (issue 20 items 2, 4, 6): intake of a video, its frame slider,
face tracks as strips, best frames ticked and added as exhibits with provenance.

The fast tests track a small synthetic clip (``core.video.synthetic``) with a
stand-in face finder that returns the clip's known boxes (found by the decoded
frame's hash), so they need no dlib; one slow test tracks with dlib itself.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

pytest.importorskip("PySide6")

from core.case import workflow
from core.faces.detect import Face
from core.video.decode import extract_frame, iter_frames
from core.video.provenance import rgb_sha256
from core.video.synthetic import SyntheticClip, write_cctv_clip
from tests.gui.layout_checks import assert_settles_without_overlap
from tests.gui.tiny_case import (
    WAIT_MS,
    add_exhibits,
    make_window,
    new_case,
    tiny_model_class,
    tiny_registry,
)
from xfr_desktop.main_window import MainWindow
from xfr_desktop.panels import exhibits_panel as exhibits_module
from xfr_desktop.panels import video_panel as video_panel_module
from xfr_desktop.panels.video_panel import VideoPanel, position_text, sampled

pytestmark = pytest.mark.usefixtures("no_qt_leaks")

TinyVideoModel = tiny_model_class("tiny-video", "cosine", 0.5)
SHOTS = Path("/work/shots20/guiv")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    # 2 s at 10 fps: the astronaut's largest face is at frame 19, Grace Hopper's
    # crossing with motion blur; small enough to decode in a moment
    return write_cctv_clip(tmp_path_factory.mktemp("cctv") / "cctv.mp4", seconds=2.0)


class TruthDetector:
    """Finds the clip's known face boxes: the frame is told by its pixels' hash."""

    def __init__(self, clip: SyntheticClip) -> None:
        self.frames = {
            ref.frame_sha256: ref.frame_number for _, ref in iter_frames(clip.path)
        }
        self.clip = clip
        self.calls = 0

    def detect(self, rgb: np.ndarray, method: str = "hog", with_68: bool = False):
        self.calls += 1
        number = self.frames[hashlib.sha256(rgb.tobytes()).hexdigest()]
        faces = []
        for person in self.clip.people:
            if number in person.boxes:
                points = np.asarray(person.landmarks5[number], float).reshape(-1, 2)
                faces.append(
                    Face(
                        bbox=tuple(float(v) for v in person.boxes[number]),
                        landmarks5=points,
                        score=1.0,
                        source="hog",
                    )
                )
        return faces


def video_window(
    qtbot, tmp_path: Path, clip: SyntheticClip, said: list[str] | None = None
) -> MainWindow:
    window = make_window(
        qtbot, tiny_registry(TinyVideoModel), new_case(tmp_path / "case")
    )
    window.resize(1280, 720)
    if said is not None:
        window.controller.status.connect(said.append)
    add_exhibits(qtbot, window, [clip.path], "probe")
    return window


def open_video(qtbot, window: MainWindow) -> VideoPanel:
    item = window.exhibits.item_for("V1", exhibits_module.VIDEO)
    assert item is not None
    window.exhibits._on_clicked(item)
    panel = window.video_panel
    assert window.tabs.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.shown_ref is not None, timeout=WAIT_MS)
    return panel


def track(qtbot, window: MainWindow, clip: SyntheticClip) -> VideoPanel:
    panel = open_video(qtbot, window)
    window.controller.video_detector = TruthDetector(clip)  # type: ignore[assignment]
    with qtbot.waitSignal(window.controller.tracks_changed, timeout=WAIT_MS):
        panel.track_button.click()
    qtbot.waitUntil(
        lambda: all(s.buttons for s in panel.strips.values()), timeout=WAIT_MS
    )
    return panel


def save_shot(widget, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    widget.grab().save(str(SHOTS / name))


# ---- intake and the list -----------------------------------------------------------
def test_a_video_is_added_and_listed_with_its_first_frame(qtbot, tmp_path, clip):
    said: list[str] = []
    window = video_window(qtbot, tmp_path, clip, said)
    case = window.controller.case
    assert [v.mark for v in case.videos.videos()] == ["V1"]
    assert (
        "Added video V1 (cctv.mp4): select it in the exhibits list to find its "
        "face tracks"
    ) in said
    assert window.tabs.isTabVisible(window.tabs.indexOf(window.video_panel))
    item = window.exhibits.item_for("V1", exhibits_module.VIDEO)
    assert item is not None
    assert item.parent().text(0) == exhibits_module.VIDEOS_TITLE
    assert "cctv.mp4" in item.text(0) and "20 frames" in item.text(0)
    assert case.videos.videos()[0].sha256 in item.toolTip(0)
    qtbot.waitUntil(lambda: "V1" in window.exhibits._video_pixmaps, timeout=WAIT_MS)
    item = window.exhibits.item_for("V1", exhibits_module.VIDEO)
    assert item is not None and not item.icon(0).isNull()


def test_the_file_dialog_offers_videos(qtbot, tmp_path, clip, monkeypatch):
    window = video_window(qtbot, tmp_path, clip)
    seen = {}

    def fake_dialog(parent, title, folder, filters):
        seen["filters"] = filters
        return [], ""

    monkeypatch.setattr(
        exhibits_module.QFileDialog, "getOpenFileNames", staticmethod(fake_dialog)
    )
    window.exhibits.add_probe.click()
    assert "*.mp4" in seen["filters"] and "*.mov" in seen["filters"]
    assert "*.png" in seen["filters"]
    window.controller.close_case()
    assert not window.tabs.isTabVisible(window.tabs.indexOf(window.video_panel))


def test_a_case_without_video_has_no_video_tab(qtbot, tmp_path):
    window = make_window(
        qtbot, tiny_registry(TinyVideoModel), new_case(tmp_path / "case")
    )
    assert not window.tabs.isTabVisible(window.tabs.indexOf(window.video_panel))


# ---- the frame slider --------------------------------------------------------------
def test_the_slider_shows_the_exact_frame(qtbot, tmp_path, clip, monkeypatch):
    window = video_window(qtbot, tmp_path, clip)
    panel = open_video(qtbot, window)
    save_shot(window, "video_before_tracking.png")
    assert panel.slider.maximum() == 19
    decoded: list[int] = []

    def counted(path, number, stream):
        decoded.append(number)
        return video_panel_module.extract_frame(
            path, frame_number=number, stream=stream
        )

    monkeypatch.setattr(video_panel_module, "decode_frame", counted)
    for wanted in (3, 7, 12):  # moved quickly: frames passed over are not decoded
        panel.slider.setValue(wanted)
    qtbot.waitUntil(
        lambda: panel.shown_ref is not None and panel.shown_ref.frame_number == 12,
        timeout=WAIT_MS,
    )
    rgb, ref = extract_frame(clip.path, frame_number=12)
    assert rgb_sha256(panel.shown_rgb) == ref.frame_sha256
    assert np.array_equal(panel.shown_rgb, rgb)
    # 3 is decoded at once unless the first frame's decode was still ending
    assert 7 not in decoded and decoded[-1] == 12
    assert "frame 12" in panel.position.text() and "1.200 s" in panel.position.text()
    panel.next_button.click()
    qtbot.waitUntil(lambda: panel.shown_ref.frame_number == 13, timeout=WAIT_MS)
    panel.first_button.click()
    qtbot.waitUntil(lambda: panel.shown_ref.frame_number == 0, timeout=WAIT_MS)


def test_the_video_view_fits_1280_by_720(qtbot, tmp_path, clip):
    window = video_window(qtbot, tmp_path, clip)
    panel = track(qtbot, window, clip)
    panel.pick_track("T1")
    assert_settles_without_overlap(qtbot, panel, "Video")
    assert panel.add_button.isVisible() and panel.track_button.isVisible()
    assert panel.view.width() >= 320 and panel.view.height() >= 180
    save_shot(window, "video_view_1280x720.png")


# ---- tracks, best frames, adding ----------------------------------------------------
def test_tracks_show_as_strips_and_boxes(qtbot, tmp_path, clip):
    window = video_window(qtbot, tmp_path, clip)
    panel = track(qtbot, window, clip)
    case = window.controller.case
    stored = case.videos.tracks("V1")
    assert [s.label for s in stored] == list(panel.strips)
    assert len(stored) >= 2
    first = panel.tracks["T1"]
    strip = panel.strips["T1"]
    assert len(strip.buttons) == len(sampled(len(first.faces)))
    assert len(strip.buttons) <= 12
    assert f"{len(first.faces)} faces" in strip.words.text()
    assert any(word in strip.buttons[0].text() for word in ("good", "limited", "poor"))
    # a thumbnail moves the slider to its frame; the shown frame has its boxes
    strip.buttons[-1].click()
    wanted = first.faces[sampled(len(first.faces))[-1]].frame_number
    qtbot.waitUntil(
        lambda: panel.shown_ref is not None and panel.shown_ref.frame_number == wanted,
        timeout=WAIT_MS,
    )
    assert "T1" in [label for label, _box, _colour in panel.view.boxes]
    # the run is in the audit trail; tracking compared nothing (no scores shown
    # while the case has no known exhibit to compare with)
    assert "tracks.record" in [entry.action for entry in case.audit_log()]
    assert case.comparisons() == []
    save_shot(window, "track_strips.png")


def test_best_frames_are_ticked_and_added_as_probes(qtbot, tmp_path, clip):
    window = video_window(qtbot, tmp_path, clip)
    panel = track(qtbot, window, clip)
    panel.pick_track("T1")
    ranked = workflow.rank_track(window.controller.case, "V1", "T1")
    assert [r.frame_number for r in panel.ranked] == [r.frame_number for r in ranked]
    ticked = panel.ticked_frames()
    assert 1 <= len(ticked) <= 3
    assert all(
        abs(a - b) >= workflow.BEST_FRAMES_SEPARATION
        for i, a in enumerate(ticked)
        for b in ticked[i + 1 :]
    )
    assert panel.ticked_frames()[0] == ranked[0].frame_number
    assert "probes" in panel.add_button.text()
    assert "formula" in panel.best.toolTip() or "score" in panel.best.toolTip()
    # the examiner overrides: the best and the worst-ranked frame
    chosen = [ranked[0].frame_number, ranked[-1].frame_number]
    panel.set_ticked(chosen)
    assert panel.add_button.text().startswith("Add 2 frame(s)")
    with qtbot.waitSignal(window.controller.frames_added, timeout=WAIT_MS) as added:
        panel.add_button.click()
    marks = [exhibit.mark for exhibit in added.args[0]]
    case = window.controller.case
    assert len(marks) == 2 and all(m.startswith("Q") for m in marks)
    for mark, number in zip(marks, sorted(chosen, key=chosen.index), strict=True):
        frame = case.videos.frame(mark)
        assert frame is not None and frame.frame_number == number
        assert frame.selection["chosen_by"] == "examiner"
        item = window.exhibits.item_for(mark, exhibits_module.EXHIBIT)
        assert item is not None
        assert exhibits_module.frame_row_text(frame) in item.text(0)
        assert f"V1 frame {number}" in item.text(0)
        assert frame.describe() in item.toolTip(0)
        assert len(case.faces(mark)) == 1
    assert all(check.intact for check in workflow.check_frames(case, "V1"))
    # the table now names the frames taken, offers them no more, and ticks the
    # next best away from them
    qtbot.waitUntil(lambda: bool(panel.taken), timeout=WAIT_MS)
    for row, frame in enumerate(panel.ranked):
        item = panel.best.item(row, 0)
        if frame.frame_number in chosen:
            assert item.text().endswith(panel.taken[frame.frame_number])
            assert not item.flags() & Qt.ItemFlag.ItemIsUserCheckable
    again = panel.ticked_frames()
    assert again and not set(again) & set(chosen)
    assert all(
        abs(a - b) >= workflow.BEST_FRAMES_SEPARATION for a in again for b in chosen
    )
    save_shot(window, "frames_added.png")


def test_a_read_only_case_cannot_track_or_add(qtbot, tmp_path, clip):
    window = video_window(qtbot, tmp_path, clip)
    track(qtbot, window, clip)
    folder = window.controller.case.folder
    window.controller.close_case()
    window.controller.open_case(folder, read_only=True)
    qtbot.waitUntil(lambda: window.controller.case is not None, timeout=WAIT_MS)
    panel = open_video(qtbot, window)
    qtbot.waitUntil(lambda: bool(panel.strips), timeout=WAIT_MS)
    panel.pick_track("T1")
    assert not panel.track_button.isEnabled()
    assert not panel.add_button.isEnabled()
    assert "read-only" in panel.track_button.toolTip()
    assert "read-only" in panel.add_button.toolTip()
    assert panel.slider.isEnabled()  # looking is still allowed


def test_tracking_can_be_cancelled(qtbot, tmp_path, clip):
    window = video_window(qtbot, tmp_path, clip)
    panel = open_video(qtbot, window)
    detector = TruthDetector(clip)
    slow_detect = detector.detect

    def slow(rgb, method="hog", with_68=False):
        time.sleep(0.05)  # in the worker: long enough to cancel half-way
        return slow_detect(rgb, method, with_68)

    detector.detect = slow  # type: ignore[method-assign]
    window.controller.video_detector = detector  # type: ignore[assignment]
    panel.track_button.click()
    assert panel.cancel_button.isEnabled()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not window.controller.tracker.is_busy(), timeout=WAIT_MS)
    assert window.controller.case.videos.tracks("V1") == []
    assert panel.track_button.isEnabled()


@pytest.mark.slow
def test_tracking_with_dlib_finds_the_astronaut(qtbot, tmp_path, clip, dlib_model):
    window = video_window(qtbot, tmp_path, clip)
    panel = open_video(qtbot, window)
    window.controller.model = dlib_model  # its embeddings link the tracks, as in use
    with qtbot.waitSignal(window.controller.tracks_changed, timeout=120_000):
        panel.track_button.click()
    assert panel.tracks, "dlib found no face track in the synthetic clip"
    first = panel.tracks["T1"]
    assert len(first.faces) >= 3
    panel.pick_track("T1")
    assert panel.ticked_frames()


def test_a_damaged_video_is_refused_in_one_line(qtbot, tmp_path, clip):
    window = make_window(
        qtbot,
        tiny_registry(TinyVideoModel),
        new_case(tmp_path / "case"),
        show_dialogs=False,
    )
    damaged = tmp_path / "cut.mp4"
    damaged.write_bytes(Path(clip.path).read_bytes()[:3000])  # cut short
    add_exhibits(qtbot, window, [str(damaged)], "probe")
    report = window.errors.last_report
    assert report is not None and report.title == "Some files were not added"
    line = report.message.splitlines()[-1]
    assert line.startswith(str(damaged)) and "Traceback" not in report.message
    assert window.controller.case.videos.videos() == []
    assert not window.tabs.isTabVisible(window.tabs.indexOf(window.video_panel))


def test_the_position_gives_the_files_claimed_clock_when_it_has_one(clip):
    _rgb, ref = extract_frame(clip.path, frame_number=5)
    assert position_text(ref, 20) == "frame 5 of 0–19 · 0.500 s"
    tagged = replace(ref, wall_clock="2026-03-01T10:15:00.500000+00:00")
    assert position_text(tagged, 20) == (
        "frame 5 of 0–19 · 0.500 s · 2026-03-01T10:15:00.500000+00:00 "
        "(claimed by the file's tag, not verified)"
    )


def test_strips_sample_at_most_twelve_faces_first_and_last_included():
    assert sampled(5) == [0, 1, 2, 3, 4]
    picked = sampled(40)
    assert len(picked) == 12 and picked[0] == 0 and picked[-1] == 39
    assert picked == sorted(set(picked))


def test_a_frame_of_a_multi_page_image_is_taken_from_the_exhibits_menu(
    qtbot, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QInputDialog

    from tests.core.test_video_frames import write_pages

    pages = tmp_path / "pages.tiff"
    write_pages(pages)
    window = make_window(
        qtbot, tiny_registry(TinyVideoModel), new_case(tmp_path / "case")
    )
    window.resize(1280, 720)
    add_exhibits(qtbot, window, [pages], "probe")
    controller = window.controller
    item = window.exhibits.item_for("Q1", exhibits_module.EXHIBIT)
    assert item is not None
    menu = window.exhibits.menu_for(item)
    (take,) = [a for a in menu.actions() if a.text() == exhibits_module.TAKE_FRAME]
    assert "holds 3 frames" in take.toolTip()
    monkeypatch.setattr(QInputDialog, "getInt", lambda *a, **k: (2, True))
    with qtbot.waitSignal(controller.frames_added, timeout=WAIT_MS) as added:
        take.trigger()
    (exhibit,) = added.args[0]
    frame = controller.case.videos.frame(exhibit.mark)
    assert frame is not None and frame.video == "Q1" and frame.frame_number == 2
    qtbot.waitUntil(
        lambda: (
            window.exhibits.item_for(exhibit.mark, exhibits_module.EXHIBIT) is not None
        ),
        timeout=WAIT_MS,
    )
    row = window.exhibits.item_for(exhibit.mark, exhibits_module.EXHIBIT)
    assert "Q1 frame 2" in row.text(0) and frame.describe() in row.toolTip(0)
    # a frame taken offers no frames of its own
    menu = window.exhibits.menu_for(row)
    assert exhibits_module.TAKE_FRAME not in [a.text() for a in menu.actions()]


def test_a_clip_cut_after_a_key_frame_opens_on_its_first_decodable_frame(
    qtbot, tmp_path
):
    from tests.core.test_video_frames import write_cut_clip

    cut = write_cut_clip(tmp_path, frames=16)
    window = make_window(
        qtbot,
        tiny_registry(TinyVideoModel),
        new_case(tmp_path / "case"),
        show_dialogs=False,
    )
    window.resize(1280, 720)
    add_exhibits(qtbot, window, [str(cut)], "probe")
    stream = window.controller.case.videos.stream_info(
        window.controller.case.videos.video("V1")
    )
    held, decoded = stream["frame_count"], stream["decoded_frames"]
    assert decoded < held
    window.errors.last_report = None
    panel = open_video(qtbot, window)
    assert panel.shown_ref.frame_number == held - decoded
    assert f"({decoded} decodable)" in panel.header.text()
    panel.slider.setValue(0)  # before the first key frame: said, no dialog
    qtbot.waitUntil(
        lambda: "cannot be decoded" in panel.position.text(), timeout=WAIT_MS
    )
    assert window.errors.last_report is None
