"""Evidence received: each exhibit with a thumbnail, its intake and its SHA-256;
then each video exhibit and the frames taken from it.

Per video: the stored file (mark, name, SHA-256, size), what the container says
(streams, duration, creation time as a claim), the decoder, and each tracking
run's parameters once.  Per frame exhibit: the facts that let anyone decode it
again and compare hashes, and the sentence saying how (core.wording).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, KeepTogether, PageBreak, Spacer

from core import wording
from core.case.videos import STILL_SOURCE
from core.report.content import ReportContent
from core.report.layout import TEXT_WIDTH, Styles, image, table
from core.report.video_content import FrameContent, TrackingRun, VideoContent
from core.video.decode import rotation_words

name = "exhibits"


def lay_out(content: ReportContent, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = [PageBreak(), styles.p("Evidence received", styles.h1)]
    if not content.exhibits:  # a video alone is still evidence received
        if not content.videos:
            return [*story, styles.p("No exhibits were added to this case.")]
        none = styles.p("No image exhibits were added to this case.")
        return [*story, none, *lay_out_videos(content, styles)]
    story.append(
        styles.p(
            "Each exhibit is stored unaltered in the case, under its SHA-256. Marks: "
            "Q = questioned (probe), K = known (gallery). The originals were not "
            "altered: each is kept byte for byte as received, read-only, and "
            "<i>xfr case verify</i> checks it against the SHA-256 taken at intake; "
            "every view and figure in this report is made from a copy."
        )
    )
    rows: list[list[Any]] = [
        [
            styles.p(h, styles.small)
            for h in ("Mark", "Image", "File, intake", "SHA-256")
        ]
    ]
    for item in content.exhibits:
        exhibit = item.exhibit
        processed = content.processed_exhibit(exhibit.mark)
        derived = (
            ""
            if processed is None
            else "<b>"
            + styles.u(wording.processed_from_text(exhibit.mark, processed.source))
            + "</b><br/>"
        )
        thumb: Flowable = (
            styles.p("unreadable", styles.small)  # a damaged copy: verify names it
            if item.thumbnail is None
            else image(item.thumbnail, 21 * mm)
        )
        rows.append(
            [
                styles.p(f"<b>{exhibit.mark}</b>", styles.small),
                thumb,
                styles.p(
                    derived + f"{styles.u(exhibit.original_name)}<br/>"
                    f"{exhibit.size:,} bytes, "
                    f"{exhibit.format}, {exhibit.width}×{exhibit.height}<br/>"
                    # a processed exhibit was made here, not received
                    f"{'received' if processed is None else 'made by processing'} "
                    f"{exhibit.intake_time} by {styles.u(exhibit.intake_user)}"
                    + (f"<br/>note: {styles.u(exhibit.note)}" if exhibit.note else ""),
                    styles.small,
                ),
                # one line, so that the hash can be read and searched as a whole
                styles.p(exhibit.sha256, styles.hash),
            ]
        )
    # the mark column holds a processed exhibit's mark (Q1.1.1) on one line
    story.append(table(rows, [15 * mm, 23 * mm, 47 * mm, TEXT_WIDTH - 85 * mm]))
    return [*story, *lay_out_videos(content, styles)]


# ---- video exhibits and their frames (issue 20 item 1) ------------------------------
NOT_CARRIED = "not carried by the container"


def _streams(info: Mapping[str, Any], styles: Styles) -> str:
    """One line per video stream; the values come from the file, so escaped."""
    lines = []
    for stream in info.get("streams", ()):
        frames = stream.get("decoded_frames", stream.get("frame_count"))
        lines.append(
            f"stream {stream.get('index')}: {stream.get('codec')}, "
            f"{stream.get('width')}×{stream.get('height')}, {frames} frames, "
            f"{stream.get('average_rate')} frames/s, time base "
            f"{stream.get('time_base')} s"
        )
    return "<br/>".join(styles.u(line) for line in lines) or "no video stream recorded"


def _video_row(item: VideoContent, styles: Styles) -> list[Any]:
    video = item.video
    info = video.info
    duration = info.get("duration_seconds")
    created = info.get("creation_time")
    return [
        styles.p(f"<b>{video.mark}</b>", styles.small),
        styles.p(
            f"{styles.u(video.original_name)}<br/>{video.size:,} bytes<br/>"
            f"received {video.intake_time} by {styles.u(video.intake_user)}"
            + (f"<br/>note: {styles.u(video.note)}" if video.note else ""),
            styles.small,
        ),
        styles.p(
            f"container {styles.u(info.get('container', video.container))}<br/>"
            + _streams(info, styles)
            + "<br/>duration "
            + ("not recorded" if duration is None else f"{float(duration):.3f} s")
            + "<br/>creation time "
            + (
                NOT_CARRIED
                if not created
                else f"{styles.u(created)} ({wording.CREATION_TIME_CLAIM})"
            )
            + f"<br/>decoded with {styles.u(info.get('decoder', 'not recorded'))}",
            styles.small,
        ),
        styles.p(video.sha256, styles.hash),
    ]


def _run_text(video: str, run: TrackingRun) -> str:
    params = run.params
    model = params.get("model_id")
    every = params.get("every")
    linking = params.get("linking", {})
    return (
        f"Tracking run {run.run} of {video} (tracks {', '.join(run.tracks) or 'none'})"
        f": every {every} frame{'' if every == 1 else 's'} sampled "
        f"({params.get('frames_sampled')} of {params.get('frames_decoded')} decoded), "
        f"detector {params.get('detector')}, "
        + (
            "no face model (tracks linked by box overlap only)"
            if model is None
            else f"face model {model} (weights SHA-256 {params.get('model_sha256')})"
        )
        + f", a face joins a track when its box overlaps the track's by IoU ≥ "
        f"{linking.get('min_iou')} or its embedding's cosine similarity is ≥ "
        f"{linking.get('min_similarity')}; a track may miss {linking.get('max_gap')} "
        f"sampled frames; tracks of fewer than {linking.get('min_length')} faces are "
        f"kept and marked short; tracker {params.get('algorithm_version')}, "
        f"decoder {params.get('decoder')}, XFR {params.get('software_version')}."
    )


# the signs of the ranking's terms (core.video.best_frames): gains, then penalties
_GAINS = ("size", "sharpness")


def _terms(selection: Mapping[str, Any]) -> str:
    """The ranking score as the weighted sum it is, so that it can be checked from
    the page, with the terms that could not be measured and the spacing rule."""
    ranking = selection.get("ranking", {})
    terms, weights = ranking.get("terms", {}), ranking.get("weights", {})
    if not terms:
        return ""
    parts = []
    for name, value in terms.items():
        sign = "+" if name in _GAINS else "−"
        parts.append(
            f"{sign} {float(weights.get(name, 1)):g} × {name} {float(value):.3f}"
        )
    text = "; score = " + " ".join(parts).removeprefix("+ ")
    if ranking.get("score") is not None:
        text += f" = {float(ranking['score']):.3f}"
    missing = ranking.get("missing") or []
    if missing:
        text += f"; not measured, so counted at their worst: {', '.join(missing)}"
    separation = selection.get("min_separation")
    if separation:
        text += (
            f"; frames are taken at least {separation} frames apart, so a frame "
            "ranked higher but nearer one taken was passed over"
        )
    return text


def _frame_rows(item: FrameContent, styles: Styles) -> list[list[Any]]:
    frame, exhibit = item.frame, item.exhibit
    seconds = "-" if frame.seconds is None else f"{frame.seconds:.3f} s"
    pts = "none" if frame.pts is None else str(frame.pts)
    wall = (
        NOT_CARRIED
        if frame.wall_clock is None
        else f"{frame.wall_clock} ({wording.WALL_CLOCK_CAVEAT})"
    )
    track = (
        "none (taken by frame number)"
        if frame.track is None
        else f"{frame.track} of tracking run {frame.track_run}"
    )
    selection = dict(frame.selection)
    if frame.source == STILL_SOURCE:
        still: list[tuple[str, str, bool]] = [
            ("Exhibit", f"{exhibit.mark}: {styles.u(exhibit.original_name)}", False),
            ("Taken from", styles.u(frame.describe()), False),
            ("Source SHA-256", frame.video_sha256, True),
            ("Frame SHA-256 (RGB24)", frame.frame_sha256, True),
            ("Stored PNG SHA-256", exhibit.sha256, True),
            ("Read with", styles.u(frame.decoder), False),
            ("Why chosen", wording.frame_selection_words(selection), False),
        ]
        return [
            [
                styles.p(label, styles.small),
                styles.p(value, styles.hash if mono else styles.small),
            ]
            for label, value, mono in still
        ]
    fields: list[tuple[str, str, bool]] = [
        ("Exhibit", f"{exhibit.mark}: {styles.u(exhibit.original_name)}", False),
        (
            "Taken from",
            f"frame {frame.frame_number} of {frame.video} (counted from 0 in "
            f"presentation order), stream {frame.stream_index}",
            False,
        ),
        ("Time", f"pts {pts}, time base {frame.time_base} s: {seconds}", False),
        ("Wall-clock time", styles.u(wall), False),
        ("Video SHA-256", frame.video_sha256, True),
        ("Decoded frame SHA-256 (RGB24)", frame.frame_sha256, True),
        ("Stored PNG SHA-256", exhibit.sha256, True),
        ("Decoder", styles.u(frame.decoder), False),
        (
            "Turned for display",
            rotation_words(frame.display_rotation)
            or "no (the file's display matrix asks for no turn)",
            False,
        ),
        ("Track", track, False),
        (
            "Why chosen",
            wording.frame_selection_words(selection) + _terms(selection),
            False,
        ),
    ]
    return [
        [
            styles.p(label, styles.small),
            styles.p(value, styles.hash if mono else styles.small),
        ]
        for label, value, mono in fields
    ]


def lay_out_videos(content: ReportContent, styles: Styles) -> list[Flowable]:
    """The video exhibits, their tracking runs and the frames taken from them
    (issue 20 item 1); nothing for a case without videos."""
    if not content.videos and not content.still_frames:
        return []
    story: list[Flowable] = [CondPageBreak(50 * mm)]
    if content.videos:
        story += [
            styles.p(wording.VIDEO_EXHIBITS_HEADING, styles.h2),
            styles.p(wording.VIDEO_EXHIBITS_INTRO),
        ]
        header = [
            styles.p(h, styles.small)
            for h in ("Mark", "File, intake", "Container, streams", "SHA-256")
        ]
        rows = [header, *[_video_row(v, styles) for v in content.videos]]
        # the hash column as wide as the exhibits table's: a hash stays on one line
        story.append(table(rows, [11 * mm, 30 * mm, 44 * mm, TEXT_WIDTH - 85 * mm]))
        for item in content.videos:
            for run in item.runs:
                story.append(styles.p(styles.u(_run_text(item.video.mark, run))))
    frames = [f for v in content.videos for f in v.frames] + list(content.still_frames)
    if not frames:
        return story
    heading: list[Flowable] = [styles.p(wording.FRAME_PROVENANCE_HEADING, styles.h2)]
    widths = [44 * mm, TEXT_WIDTH - 44 * mm]
    for frame in frames:
        recheck = (
            wording.still_frame_recheck_sentence(
                frame.frame.mark, frame.frame.video, frame.frame.frame_number
            )
            if frame.frame.source == STILL_SOURCE
            else wording.frame_recheck_sentence(
                frame.frame.mark, frame.frame.video, frame.frame.frame_number
            )
        )
        # a frame's record and how to check it are read together: one page
        story.append(
            KeepTogether(
                [
                    *heading,  # the heading stays with the first frame
                    table(_frame_rows(frame, styles), widths, header=False),
                    styles.p(recheck, styles.small),
                    Spacer(1, 3 * mm),
                ]
            )
        )
        heading = []
    return story
