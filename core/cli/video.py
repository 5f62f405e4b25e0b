"""``xfr case videos|tracks|frames``: video exhibits from the command line (issue 20
item 6).

A video is added with ``xfr case add`` like any image (the case stores it as V1,
V2, ...).  ``tracks`` finds the faces on every n-th frame and links them into
tracks (one recorded run each time; ``--show`` lists the stored ones), ``frames``
adds a track's best frames (or frames the examiner names) as image exhibits and
checks that every frame exhibit still decodes from its video to the same pixels.
Everything goes through ``core.case.workflow`` and ``case.videos``, as the GUI
does; each failure is one line naming the case folder, the video or the frame.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import wording
from core.cli.common import (
    EXIT_OK,
    EXIT_TAMPERED,
    add_trust_model_code,
    load_model_from_args,
    open_case,
    progress_printer,
)
from core.errors import BadInputError
from core.models.ids import DEFAULT_MODEL_ID

if TYPE_CHECKING:
    from core.case.records import Video
    from core.case.store import Case
    from core.case.videos import FrameCheck, StoredTrack, VideoFrame
    from core.video.best_frames import RankedFrame

NO_VIDEOS = (
    "no videos in the case (add one with `xfr case add CASE clip.mp4 --role probe`)"
)


# ---- shared ------------------------------------------------------------------------
def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


@contextlib.contextmanager
def in_case(args: argparse.Namespace) -> Iterator[None]:
    """The videos' refusals name no file; on the command line each names the case
    folder, like every other error."""
    try:
        yield
    except BadInputError as error:
        if error.path is not None:
            raise
        raise BadInputError(error.reason, args.case) from None


def whole_number(text: str | None, option: str, least: int) -> int | None:
    """An option's whole number (None when not given), or one line saying what is
    wanted: argparse's own refusal prints its usage, several lines."""
    if text is None:
        return None
    try:
        number = int(text)
    except ValueError:
        raise BadInputError(f"{option} needs a whole number, not {text!r}") from None
    if number < least:
        raise BadInputError(f"{option} must be {least} or more, not {number}")
    return number


def _seconds(value: float | None) -> str:
    return "time unknown" if value is None else f"{value:.3f} s"


def _span(first: float | None, last: float | None) -> str:
    if first is None or last is None:
        return "time unknown"
    return f"{first:.3f}-{last:.3f} s"


def quality_words(quality: Mapping[str, Any] | None, note: str = "") -> str:
    """A tracked face's quality summary in plain words (``limited: yaw 42° …``)."""
    if not quality:
        return f"quality not measured ({note})" if note else "quality not measured"
    reasons = list(quality.get("reasons") or ())
    rating = str(quality.get("rating", "?"))
    return rating if not reasons else f"{rating}: " + "; ".join(reasons)


def _why(ranked: Mapping[str, Any]) -> str:
    """The score as its sum of weighted terms (``core.video.best_frames``): size
    and sharpness add, pose, exposure and truncation subtract."""
    terms = ranked.get("terms") or {}
    weights = ranked.get("weights") or {}
    parts = []
    for name, value in terms.items():
        weight = float(weights.get(name, 1.0))
        sign = "+" if name in _ADDING_TERMS else "-"
        scaled = (
            f"{name} {value:.2f}" if weight == 1 else f"{weight:g} × {name} {value:.2f}"
        )
        parts.append(f"{sign} {scaled}")
    text = " ".join(parts).removeprefix("+ ")
    missing = list(ranked.get("missing") or ())
    if missing:
        text += f"; not available: {', '.join(missing)}"
    return text


_ADDING_TERMS = ("size", "sharpness")


# ---- videos ------------------------------------------------------------------------
def video_lines(case: Case, video: Video) -> list[str]:
    """What ``xfr case videos`` says of one video: the file, its streams, the
    frames taken from it and its tracking runs."""
    info = video.info
    duration = info.get("duration_seconds")
    created = info.get("creation_time")
    created = f"created {created}" if created else "no creation time in the file"
    lines = [
        f"{video.mark:<4} {video.role:<8} {video.original_name}  sha256 {video.sha256}",
        f"     {video.container}, "
        f"{'duration unknown' if duration is None else f'{duration:.3f} s'}, "
        f"{created}",
    ]
    for stream in info.get("streams", ()):
        frames = stream.get("decoded_frames", stream.get("frame_count"))
        rate = stream.get("average_rate")
        lines.append(
            f"     stream {stream.get('index')}: {stream.get('codec')} "
            f"{stream.get('width')}x{stream.get('height')}, {frames} frames"
            + (f" at {rate} fps" if rate else "")
        )
    taken = case.videos.frames(video.mark)
    lines.append(
        "     frames taken: "
        + (
            ", ".join(f"{f.mark} (frame {f.frame_number})" for f in taken)
            if taken
            else "none"
        )
    )
    runs = case.videos.runs(video.mark)
    if not runs:
        lines.append(f"     not tracked yet (xfr case tracks CASE {video.mark})")
    for run in runs:
        tracks = case.videos.tracks(video.mark, run=run)
        params = tracks[0].params if tracks else {}
        lines.append(
            f"     tracking run {run}: {len(tracks)} track(s), every "
            f"{params.get('every', '?')} frame(s), detector "
            f"{params.get('detector', '?')}, model {params.get('model_id') or 'none'}"
        )
    return lines


def video_dict(case: Case, video: Video) -> dict[str, Any]:
    return video.to_dict() | {
        "frames": [f.to_dict() for f in case.videos.frames(video.mark)],
        "runs": [
            {
                "run": run,
                "tracks": [t.label for t in case.videos.tracks(video.mark, run=run)],
            }
            for run in case.videos.runs(video.mark)
        ],
    }


def cmd_videos(args: argparse.Namespace) -> int:
    with open_case(args, read_only=True) as case, in_case(args):
        videos = case.videos.videos()
        payload = {"videos": [video_dict(case, v) for v in videos]}
        text = "\n".join(line for v in videos for line in video_lines(case, v))
    _emit(args, payload, text or NO_VIDEOS)
    return EXIT_OK


# ---- tracks ------------------------------------------------------------------------
def track_summary(stored: StoredTrack) -> dict[str, Any]:
    """One stored track as the CLI shows it: span, faces, short, best frame."""
    from core.case import workflow
    from core.video.best_frames import rank_frames

    track = workflow.stored_track(stored)
    ranked = rank_frames(track)
    best: RankedFrame | None = ranked[0] if ranked else None
    return {
        "video": stored.video,
        "run": stored.run,
        "track": stored.label,
        "first_frame": track.first_frame,
        "last_frame": track.last_frame,
        "first_seconds": track.first_seconds,
        "last_seconds": track.last_seconds,
        "faces": len(track.faces),
        "short": track.short,
        "best": None
        if best is None
        else best.to_dict()
        | {"quality": quality_words(best.face.quality, best.face.quality_note)},
    }


def track_line(summary: Mapping[str, Any]) -> str:
    best = summary["best"]
    line = (
        f"{summary['track']:<4} frames {summary['first_frame']}-"
        f"{summary['last_frame']} "
        f"({_span(summary['first_seconds'], summary['last_seconds'])}), "
        f"{summary['faces']} face(s)" + (" (short track)" if summary["short"] else "")
    )
    if best is not None:
        line += (
            f"; best frame {best['frame_number']} (score {best['score']:.3f}): "
            f"{best['quality']}"
        )
    return line


def cmd_tracks(args: argparse.Namespace) -> int:
    from core.case import workflow

    every = whole_number(args.every, "--every", 1) or 1
    stream = whole_number(args.stream, "--stream", 0)
    run = whole_number(args.track_run, "--run", 1)
    if run is not None and not args.show:
        raise BadInputError("--run goes with --show (tracking adds a new run)")
    if args.show:
        with open_case(args, read_only=True) as case, in_case(args):
            video = case.videos.video(args.video)
            stored = case.videos.tracks(video.mark, run=run)
            if not stored:
                raise BadInputError(
                    f"video {video.mark} has not been tracked yet (run "
                    f"`xfr case tracks CASE {video.mark}`)"
                )
            summaries = [track_summary(t) for t in stored]
            params = dict(stored[0].params)
    else:
        model = None if args.no_model else load_model_from_args(args)
        with open_case(args) as case, in_case(args):
            video = case.videos.video(args.video)
            try:
                stored = workflow.track_video(
                    case,
                    video.mark,
                    every=every,
                    method=args.detector,
                    model=model,
                    stream=stream,
                    progress=progress_printer("tracking", args.json),
                )
            except BadInputError as error:
                # the decoder names the evidence file by its hash; say which video
                if error.path is None or Path(error.path) != case.videos.video_path(
                    video
                ):
                    raise
                raise BadInputError(
                    f"video {video.mark} ({video.original_name}) cannot be read from "
                    f"the case: {error.reason} (run `xfr case verify`)",
                    args.case,
                ) from None
            summaries = [track_summary(t) for t in stored]
            params = dict(stored[0].params) if stored else {}
    run = stored[0].run if stored else None
    payload = {"video": video.mark, "run": run, "params": params, "tracks": summaries}
    if not stored:
        text = (
            f"{video.mark}: no faces found on the sampled frames (every "
            f"{every} frame(s)); try --every 1 or --detector cnn"
        )
    else:
        head = (
            f"{video.mark} tracking run {run}: {len(stored)} track(s), every "
            f"{params.get('every', '?')} frame(s), detector "
            f"{params.get('detector', '?')}, model {params.get('model_id') or 'none'}"
        )
        text = "\n".join([head] + [track_line(s) for s in summaries])
    _emit(args, payload, text)
    return EXIT_OK


# ---- frames ------------------------------------------------------------------------
def frame_line(frame: VideoFrame) -> str:
    """A frame exhibit's provenance in one line."""
    selection = frame.selection
    line = f"{frame.mark:<4} {frame.describe()}"
    if frame.track is not None:
        line += f", track {frame.track} run {frame.track_run}"
    if selection.get("chosen_by") == "ranked":
        line += f", ranked {selection.get('rank')} of {selection.get('of')}"
    elif selection.get("chosen_by") == "examiner":
        line += ", chosen by the examiner" + (
            f" (ranked {selection.get('rank')} of {selection.get('of')})"
            if selection.get("rank")
            else ""
        )
    if frame.wall_clock:
        line += f", wall clock {wording.wall_clock_text(frame.wall_clock)}"
    return line + f"; frame sha256 {frame.frame_sha256}"


def added_frame_lines(frame: VideoFrame) -> list[str]:
    ranking = frame.selection.get("ranking") or {}
    lines = [frame_line(frame)]
    if ranking:
        lines.append(
            f"     score {float(ranking.get('score', 0.0)):.3f} ({_why(ranking)})"
        )
    return lines


def check_line(check: FrameCheck) -> list[str]:
    if check.intact:
        return [f"{check.mark:<4} intact (decoded again: same pixels)"]
    return [f"problem: {check.mark}: {problem}" for problem in check.problems]


def cmd_frames(args: argparse.Namespace) -> int:
    still = args.track is None and bool(args.frame) and args.best is None
    modes = [bool(args.check), bool(args.list), args.track is not None or still]
    if sum(modes) != 1:
        raise BadInputError(
            "give one of --track T (with --best K or --frame N), --frame N alone "
            "(a frame of an animation or multi-page image exhibit), --check or --list"
        )
    if still and not (args.check or args.list):
        return _take_still_frames(args)
    if args.check or args.list:
        if args.best is not None or args.frame:
            raise BadInputError("--best and --frame go with --track")
        return _check_or_list(args)
    if args.video is None:
        raise BadInputError("--track needs the video's mark, e.g. V1")
    best = whole_number(args.best, "--best", 1)
    numbers = [whole_number(n, "--frame", 0) or 0 for n in args.frame or ()]
    if (best is None) == (not numbers):
        raise BadInputError("--track needs either --best K or --frame N")
    from core.case import workflow

    with open_case(args) as case, in_case(args):
        video = case.videos.video(args.video)
        added = workflow.add_track_frames(
            case, video.mark, args.track, best=best, frames=numbers
        )
        frames = [case.videos.frame(e.mark) for e in added]
    found = [f for f in frames if f is not None]
    payload = {"added": [f.to_dict() for f in found]}
    _emit(
        args, payload, "\n".join(line for f in found for line in added_frame_lines(f))
    )
    return EXIT_OK


def _take_still_frames(args: argparse.Namespace) -> int:
    """``xfr case frames CASE Q1 --frame N``: frame N of a multi-frame image."""
    if args.video is None:
        raise BadInputError(
            "--frame without --track needs the mark of an animation or multi-page "
            "image exhibit, e.g. Q1"
        )
    numbers = [whole_number(n, "--frame", 0) or 0 for n in args.frame]
    from core.case import workflow

    found = []
    with open_case(args) as case, in_case(args):
        source = case.exhibit(args.video)
        for number in dict.fromkeys(numbers):
            exhibit, _faces = workflow.add_still_frame(case, source.mark, number)
            frame = case.videos.frame(exhibit.mark)
            if frame is not None:
                found.append((frame, len(_faces)))
    payload = {"added": [f.to_dict() | {"faces": n} for f, n in found]}
    _emit(
        args,
        payload,
        "\n".join(
            f"{f.mark:<4} {f.describe()}, {n} face(s) found; frame sha256 "
            f"{f.frame_sha256[:8]}…{f.frame_sha256[-4:]}"
            for f, n in found
        ),
    )
    return EXIT_OK


def _check_or_list(args: argparse.Namespace) -> int:
    from core.case import workflow

    with open_case(args, read_only=True) as case, in_case(args):
        mark = (
            case.videos.video(args.video).mark
            if args.video and args.video.strip().upper().startswith("V")
            else None
        )
        if args.video and mark is None:  # an image exhibit: its frames taken
            source = case.exhibit(args.video).mark
            listed = [f for f in case.videos.frames() if f.video == source]
            if args.list:
                _emit(
                    args,
                    {"frames": [f.to_dict() for f in listed]},
                    "\n".join(frame_line(f) for f in listed)
                    or f"no frames taken from {source}",
                )
                return EXIT_OK
            image_checks = [case.videos.check_frame(f.mark) for f in listed]
            return _report_checks(args, image_checks, source)
        if args.list:
            frames = case.videos.frames(mark)
            payload: dict[str, Any] = {"frames": [f.to_dict() for f in frames]}
            lines = [frame_line(f) for f in frames]
            _emit(args, payload, "\n".join(lines) or _no_frames(mark))
            return EXIT_OK
        checks = workflow.check_frames(case, mark)
    return _report_checks(args, checks, mark)


def _report_checks(
    args: argparse.Namespace, checks: list[Any], mark: str | None
) -> int:
    intact = all(c.intact for c in checks)
    payload = {"intact": intact, "frames": [c.to_dict() for c in checks]}
    lines = [line for c in checks for line in check_line(c)]
    _emit(args, payload, "\n".join(lines) or _no_frames(mark))
    return EXIT_OK if intact else EXIT_TAMPERED


def _no_frames(mark: str | None) -> str:
    where = f"video {mark}" if mark else "any video"
    return (
        f"no frames taken from {where} (add them with `xfr case frames CASE V1 "
        "--track T1 --best 2`)"
    )


# ---- parser --------------------------------------------------------------------------
def add_video_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_case: argparse.ArgumentParser,
) -> None:
    """Register ``xfr case videos``, ``tracks`` and ``frames``."""
    videos = sub.add_parser(
        "videos",
        parents=[with_case],
        help="the case's videos: streams, frames taken, tracking runs",
    )
    videos.set_defaults(run=cmd_videos)

    tracks = sub.add_parser(
        "tracks",
        parents=[with_case],
        help="find the face tracks of a video (or --show the stored ones)",
        description="Detect faces on every n-th frame of the video, link them into "
        "tracks and record the run (re-tracking adds a run, never replaces one).  "
        "--show lists a stored run without tracking again (reads a read-only case).",
    )
    tracks.add_argument("video", help="the video's mark, e.g. V1")
    tracks.add_argument(
        "--every", default="2", metavar="N", help="every N-th frame (2)"
    )
    tracks.add_argument("--detector", default="hog", choices=("hog", "cnn"))
    tracks.add_argument(
        "--model",
        default=DEFAULT_MODEL_ID,
        help="link faces with this model's embeddings too",
    )
    tracks.add_argument(
        "--no-model", action="store_true", help="link faces by their boxes only"
    )
    tracks.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_trust_model_code(tracks)
    tracks.add_argument("--stream", metavar="S", help="video stream index")
    tracks.add_argument(
        "--show", action="store_true", help="list the stored tracks, do not track"
    )
    tracks.add_argument(
        "--run",
        dest="track_run",
        metavar="R",
        help="with --show: this run (default latest)",
    )
    tracks.set_defaults(run=cmd_tracks)

    frames = sub.add_parser(
        "frames",
        parents=[with_case],
        help="add a track's frames as exhibits, list or check frame exhibits",
        description="--track T --best K adds the K best-ranked frames of track T "
        "(--frame N, repeatable, names frames instead) as exhibits of the video's "
        "role; MARK --frame N without --track takes frame N of an animation or "
        "multi-page image exhibit; --list shows every frame exhibit's provenance; "
        "--check decodes each again from its source and compares the hashes (exit 1 "
        "when any differ).",
    )
    frames.add_argument("video", nargs="?", help="the video's mark, e.g. V1")
    frames.add_argument("--track", metavar="T", help="the track, e.g. T1")
    frames.add_argument(
        "--best", metavar="K", help="the K best-ranked frames of the track"
    )
    frames.add_argument(
        "--frame",
        action="append",
        metavar="N",
        help="this frame of the track (repeatable; the examiner's choice)",
    )
    frames.add_argument(
        "--check", action="store_true", help="decode every frame exhibit again"
    )
    frames.add_argument("--list", action="store_true", help="frame exhibits")
    frames.set_defaults(run=cmd_frames)


def video_summary_lines(videos: Sequence[Video]) -> list[str]:
    """``xfr case info``'s lines for the case's videos (none for a case without)."""
    return [
        f"  {v.mark:<4} {v.role:<8} {v.original_name}  sha256 {v.sha256}  (video)"
        for v in videos
    ]


def added_video_line(video: Video) -> str:
    """``xfr case add``'s line for a video: "added V1 clip.mp4 (video, 40 frames,
    4.0 s)"."""
    streams = list(video.info.get("streams", ()))
    frames = (
        streams[0].get("decoded_frames", streams[0].get("frame_count"))
        if streams
        else None
    )
    duration = video.info.get("duration_seconds")
    parts = ["video"]
    if frames is not None:
        parts.append(f"{frames} frames")
    if duration is not None:
        parts.append(f"{duration:.1f} s")
    return f"added {video.mark} {video.original_name} ({', '.join(parts)})"
