"""Video and multi-frame stills as evidence (issue 20 item 1): probing, sequential
decoding, frame-accurate extraction checked against a full decode, one-line
refusals, and the frames of GIF / TIFF / APNG / WebP files.

The clips are synthesised here with PyAV: the astronaut's face moves across a
grey background and grows until ``LARGEST`` then shrinks, two seconds at 10 fps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from core.errors import BadInputError, Cancelled
from core.imageio import frame_count, load_image, multi_frame_warning
from core.video.decode import extract_frame, iter_frames, probe_video
from core.video.provenance import FrameRef
from core.video.stills import still_frame, still_frames

FRAMES, RATE, SIZE, GOP = 20, 10, 128, 7
LARGEST = 12  # the frame where the face is largest
CREATED = "2026-03-01T12:00:00.000000Z"
BACKGROUND = 90


def scene(astronaut: np.ndarray, number: int) -> np.ndarray:
    """Frame ``number``: the astronaut's face on grey, largest at ``LARGEST``."""
    face = Image.fromarray(astronaut[20:240, 140:340])  # her head and shoulders
    side = 96 - 5 * abs(number - LARGEST)
    chip = np.asarray(face.resize((side, side), Image.Resampling.BILINEAR))
    frame = np.full((SIZE, SIZE, 3), BACKGROUND, np.uint8)
    left = min(number * 2, SIZE - side)
    top = (SIZE - side) // 2
    frame[top : top + side, left : left + side] = chip
    return frame


def write_clip(
    path: Path,
    astronaut: np.ndarray,
    codec: str,
    container_format: str | None = None,
    pix_fmt: str = "yuv420p",
) -> Path:
    with av.open(str(path), "w", format=container_format) as container:
        container.metadata["creation_time"] = CREATED
        stream = container.add_stream(codec, rate=RATE)
        stream.width = stream.height = SIZE
        stream.pix_fmt = pix_fmt
        stream.gop_size = GOP
        for number in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(scene(astronaut, number), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clips(
    tmp_path_factory: pytest.TempPathFactory, astronaut_rgb: np.ndarray
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "h264.mp4": write_clip(folder / "clip.mp4", astronaut_rgb, "h264"),
        "mjpeg.avi": write_clip(
            folder / "clip.avi", astronaut_rgb, "mjpeg", pix_fmt="yuvj420p"
        ),
        "mpeg4.mkv": write_clip(folder / "clip.mkv", astronaut_rgb, "mpeg4"),
    }


@pytest.fixture(scope="module")
def decoded(clips: dict[str, Path]) -> dict[str, list[tuple[np.ndarray, FrameRef]]]:
    """The full sequential decode of each clip: what extraction must reproduce."""
    return {name: list(iter_frames(path)) for name, path in clips.items()}


def key_frames(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [
            number
            for number, frame in enumerate(container.decode(video=0))
            if frame.key_frame
        ]


def one_line_about(path: Path, call: Callable[[], object]) -> str:
    with pytest.raises(BadInputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"{path}: "), message
    return message


# ---- probing -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "container_format", "codec"),
    [
        ("h264.mp4", "mov,mp4,m4a,3gp,3g2,mj2", "h264"),
        ("mjpeg.avi", "avi", "mjpeg"),
        ("mpeg4.mkv", "matroska,webm", "mpeg4"),
    ],
)
def test_probe_describes_the_container_and_counts_decoded_frames(
    clips: dict[str, Path], name: str, container_format: str, codec: str
) -> None:
    path = clips[name]
    info = probe_video(path)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.container_format == container_format
    assert info.duration_seconds == pytest.approx(FRAMES / RATE, abs=0.15)
    (stream,) = info.streams
    assert (stream.index, stream.codec, stream.width, stream.height) == (
        0,
        codec,
        SIZE,
        SIZE,
    )
    assert stream.frame_count == FRAMES  # counted, even where the header has none
    assert stream.decoded_frames == FRAMES
    assert stream.average_rate == RATE
    assert info.stream(0) is stream
    assert info.decoder.startswith(f"PyAV {av.__version__}, libavcodec ")


def test_probe_without_verifying_reports_what_the_header_says(
    clips: dict[str, Path],
) -> None:
    mp4 = probe_video(clips["h264.mp4"], verify=False).streams[0]
    assert (mp4.frame_count, mp4.decoded_frames) == (FRAMES, None)
    mkv = probe_video(clips["mpeg4.mkv"], verify=False).streams[0]
    assert (mkv.frame_count, mkv.decoded_frames) == (None, None)  # no count in MKV


def test_probe_reports_progress_and_can_be_cancelled(clips: dict[str, Path]) -> None:
    heard: list[tuple[int, int]] = []
    probe_video(clips["mjpeg.avi"], progress=lambda d, t, _m: heard.append((d, t)))
    assert heard == [(n, FRAMES) for n in range(1, FRAMES + 1)]
    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Cancelled, match=r"clip\.avi cancelled"):
        probe_video(clips["mjpeg.avi"], cancel=cancel)


def test_probe_reads_the_containers_creation_time(clips: dict[str, Path]) -> None:
    assert probe_video(clips["h264.mp4"]).creation_time == CREATED


# ---- sequential decoding -----------------------------------------------------------
def test_sequential_frames_carry_their_provenance(
    clips: dict[str, Path], decoded: dict[str, list[tuple[np.ndarray, FrameRef]]]
) -> None:
    frames = decoded["h264.mp4"]
    sha256 = hashlib.sha256(clips["h264.mp4"].read_bytes()).hexdigest()
    assert [ref.frame_number for _rgb, ref in frames] == list(range(FRAMES))
    start = dt.datetime.fromisoformat(CREATED.replace("Z", "+00:00"))
    for number, (rgb, ref) in enumerate(frames):
        assert rgb.shape == ref.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
        assert ref.frame_sha256 == hashlib.sha256(rgb.tobytes()).hexdigest()
        assert ref.video_sha256 == sha256 and ref.stream_index == 0
        assert ref.seconds == pytest.approx(number / RATE)
        assert ref.pts is not None and ref.seconds == float(ref.pts * ref.time_base)
        assert ref.wall_clock is not None
        claimed = dt.datetime.fromisoformat(ref.wall_clock) - start
        assert claimed.total_seconds() == pytest.approx(number / RATE)
    assert len({ref.frame_sha256 for _rgb, ref in frames}) == FRAMES
    record = frames[3][1].to_dict()
    assert record["time_base"] == str(frames[3][1].time_base)
    assert record["frame_number"] == 3 and record["shape"] == [SIZE, SIZE, 3]


def test_the_face_is_largest_on_the_known_frame(
    decoded: dict[str, list[tuple[np.ndarray, FrameRef]]],
) -> None:
    """The clip is what later tests (tracks, best frames) rely on."""
    for frames in decoded.values():
        covered = [
            int((np.abs(rgb.astype(int) - BACKGROUND).max(axis=2) > 12).sum())
            for rgb, _ref in frames
        ]
        assert int(np.argmax(covered)) == LARGEST


def test_sampling_every_nth_frame_keeps_the_true_frame_numbers(
    clips: dict[str, Path], decoded: dict[str, list[tuple[np.ndarray, FrameRef]]]
) -> None:
    sampled = [ref for _rgb, ref in iter_frames(clips["mjpeg.avi"], every=3)]
    assert [ref.frame_number for ref in sampled] == list(range(0, FRAMES, 3))
    full = decoded["mjpeg.avi"]
    assert sampled == [full[ref.frame_number][1] for ref in sampled]


# ---- frame-accurate extraction -----------------------------------------------------
@pytest.mark.parametrize("name", ["h264.mp4", "mjpeg.avi", "mpeg4.mkv"])
def test_extracting_a_frame_by_number_equals_the_full_decode(
    clips: dict[str, Path],
    decoded: dict[str, list[tuple[np.ndarray, FrameRef]]],
    name: str,
) -> None:
    path = clips[name]
    keys = key_frames(path)
    if name != "mjpeg.avi":  # MJPEG: every frame is a key frame
        assert GOP in keys and 1 not in keys, keys  # the GOP we asked for
    later_key = max(k for k in keys if 0 < k < FRAMES - 1)
    numbers = {0, 1, later_key - 1, later_key, later_key + 1, LARGEST, FRAMES - 1}
    for number in sorted(numbers):
        rgb, ref = extract_frame(path, number)
        expected_rgb, expected_ref = decoded[name][number]
        assert ref == expected_ref, number
        assert np.array_equal(rgb, expected_rgb), number


def test_extracting_by_pts_gives_the_frame_shown_at_that_time(
    clips: dict[str, Path], decoded: dict[str, list[tuple[np.ndarray, FrameRef]]]
) -> None:
    path = clips["h264.mp4"]
    frames = decoded["h264.mp4"]
    for number in (0, GOP + 1, FRAMES - 1):
        wanted = frames[number][1]
        assert wanted.pts is not None
        assert extract_frame(path, pts=wanted.pts)[1] == wanted
        # between two frames, the earlier one is on screen
        assert extract_frame(path, pts=wanted.pts + 1)[1] == wanted


def test_extraction_and_probing_leave_the_video_unchanged(
    clips: dict[str, Path],
) -> None:
    path = clips["mpeg4.mkv"]
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    probe_video(path)
    extract_frame(path, 5)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_wrong_requests_are_one_line(clips: dict[str, Path]) -> None:
    path = clips["h264.mp4"]
    message = one_line_about(path, lambda: extract_frame(path, FRAMES))
    assert f"no frame {FRAMES}: the video has {FRAMES} frames" in message
    assert "first frame is at pts" in one_line_about(
        path, lambda: extract_frame(path, pts=-5)
    )
    assert "no video stream 3 (video streams: 0)" in one_line_about(
        path, lambda: next(iter_frames(path, stream=3))
    )
    with pytest.raises(BadInputError, match="either a frame number or a pts"):
        extract_frame(path)
    with pytest.raises(BadInputError, match="every must be 1 or more"):
        next(iter_frames(path, every=0))


# ---- refusals ----------------------------------------------------------------------
def test_a_truncated_mp4_is_refused_in_one_line(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    data = clips["h264.mp4"].read_bytes()  # the index (moov) is at the end: cut off
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    message = one_line_about(cut, lambda: probe_video(cut))
    assert "damaged or truncated video" in message


def test_a_metadata_tag_that_is_not_utf8_does_not_stop_decoding(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    """A byte flipped in an MP4's tags (there at the end of this file) once made
    PyAV raise UnicodeDecodeError out of av.open: a traceback, not one line."""
    data = bytearray(clips["h264.mp4"].read_bytes())
    data[-10] ^= 0xFF
    odd = tmp_path / "odd tag.mp4"
    odd.write_bytes(bytes(data))
    frames = [ref.frame_number for _rgb, ref in iter_frames(odd)]
    assert frames == [ref.frame_number for _rgb, ref in iter_frames(clips["h264.mp4"])]
    assert probe_video(odd).streams


def test_a_truncated_avi_names_the_first_missing_frame(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    data = clips["mjpeg.avi"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])
    message = one_line_about(cut, lambda: probe_video(cut))
    assert "damaged or truncated video data at frame " in message
    assert f"the container lists {FRAMES} frames" in message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.txt", b"hello, this is not a video\n" * 20, "not a video file"),
        ("notes.mp4", b"hello, this is not a video\n" * 20, "not a video file"),
        ("empty.mp4", b"", "file is empty (0 bytes)"),
    ],
)
def test_a_file_that_is_not_a_video_is_refused(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert expected in one_line_about(path, lambda: probe_video(path))


def test_a_still_image_renamed_mp4_is_not_a_video(
    astronaut_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "astronaut.mp4"
    path.write_bytes(astronaut_path.read_bytes())
    message = one_line_about(path, lambda: probe_video(path))
    assert "not a video file" in message and "add a still image as an image" in message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    assert "file not found" in one_line_about(missing, lambda: probe_video(missing))
    assert "not a file" in one_line_about(tmp_path, lambda: probe_video(tmp_path))


def test_an_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        samples.sample_rate = 8000
        for packet in [*stream.encode(samples), *stream.encode()]:
            container.mux(packet)
    assert "no video stream" in one_line_about(path, lambda: probe_video(path))


def test_a_codec_the_decoder_does_not_know_is_refused(
    tmp_path: Path, astronaut_rgb: np.ndarray
) -> None:
    clip = write_clip(tmp_path / "clip.avi", astronaut_rgb, "mpeg4")
    data = clip.read_bytes()
    assert data.count(b"FMP4") == 2  # the AVI stream header's and format's FourCC
    unknown = tmp_path / "unknown.avi"
    unknown.write_bytes(data.replace(b"FMP4", b"ZZZZ"))
    message = one_line_about(unknown, lambda: probe_video(unknown))
    assert "codec is not supported" in message


def test_frames_above_the_pixel_limit_are_refused(clips: dict[str, Path]) -> None:
    path = clips["mpeg4.mkv"]
    message = one_line_about(path, lambda: probe_video(path, max_pixels=10_000))
    assert f"frames are {SIZE}×{SIZE}" in message and "above the limit" in message


# ---- multi-frame stills ------------------------------------------------------------
def write_still_frames(path: Path, astronaut: np.ndarray, count: int) -> list[bytes]:
    pages = [Image.fromarray(scene(astronaut, 4 * n)) for n in range(count)]
    options: dict[str, object] = {"save_all": True, "append_images": pages[1:]}
    if path.suffix in (".gif", ".png", ".webp"):
        options |= {"duration": 100, "loop": 0}
    if path.suffix == ".webp":
        options["lossless"] = True
    pages[0].save(path, **options)
    return [np.asarray(page).tobytes() for page in pages]


@pytest.mark.parametrize("name", ["anim.gif", "pages.tiff", "anim.png", "anim.webp"])
def test_multi_frame_stills_list_every_frame_with_its_hash(
    tmp_path: Path, astronaut_rgb: np.ndarray, name: str
) -> None:
    path = tmp_path / name
    write_still_frames(path, astronaut_rgb, 4)
    assert frame_count(path) == 4
    loaded = load_image(path)
    assert loaded.frame_count == 4
    frames = still_frames(path)
    assert [frame.index for frame in frames] == [0, 1, 2, 3]
    assert len({frame.frame_sha256 for frame in frames}) == 4
    # frame 0 is exactly what the analysis of the file uses
    assert frames[0].frame_sha256 == hashlib.sha256(loaded.rgb.tobytes()).hexdigest()
    rgb, third = still_frame(path, 2)
    assert third == frames[2]
    assert hashlib.sha256(rgb.tobytes()).hexdigest() == third.frame_sha256
    assert rgb.shape == third.shape == (SIZE, SIZE, 3)


def test_lossless_frames_keep_their_pixels(
    tmp_path: Path, astronaut_rgb: np.ndarray
) -> None:
    path = tmp_path / "pages.tiff"
    written = write_still_frames(path, astronaut_rgb, 3)
    assert [frame.frame_sha256 for frame in still_frames(path)] == [
        hashlib.sha256(pixels).hexdigest() for pixels in written
    ]


def test_the_multi_frame_warning_names_the_file_and_the_count(
    tmp_path: Path, astronaut_rgb: np.ndarray, astronaut_path: Path
) -> None:
    path = tmp_path / "anim.gif"
    write_still_frames(path, astronaut_rgb, 3)
    warning = multi_frame_warning(path, load_image(path).frame_count)
    assert warning is not None and warning.startswith(f"{path}: ")
    assert "holds 3 frames" in warning and "only the first frame" in warning
    assert load_image(astronaut_path).frame_count == frame_count(astronaut_path) == 1
    assert multi_frame_warning(astronaut_path, 1) is None


def test_a_still_frame_that_is_not_there_is_one_line(
    tmp_path: Path, astronaut_rgb: np.ndarray
) -> None:
    path = tmp_path / "anim.gif"
    write_still_frames(path, astronaut_rgb, 2)
    message = one_line_about(path, lambda: still_frame(path, 5))
    assert "no frame 5: the file has 2 frames, numbered 0 to 1" in message
    text = tmp_path / "notes.gif"
    text.write_bytes(b"not an image")
    assert "not an image file" in one_line_about(text, lambda: frame_count(text))


def test_a_clip_cut_before_a_key_frame_keeps_one_numbering(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    """CCTV exports often start mid-GOP: H.264 drops the frames whose references
    are missing; sequential decoding and seeking must still agree on numbers."""
    cut = tmp_path / "cut.mkv"
    with av.open(str(clips["h264.mp4"])) as source, av.open(str(cut), "w") as out:
        video = source.streams.video[0]
        copy = out.add_stream_from_template(video)
        packets = [p for p in source.demux(video) if p.size]
        for packet in packets[3:]:  # drop the first key frame and what follows it
            packet.stream = copy
            out.mux(packet)
    info = probe_video(cut)
    (stream,) = info.streams
    assert stream.frame_count == FRAMES - 3
    assert stream.decoded_frames is not None
    assert stream.decoded_frames < stream.frame_count
    frames = list(iter_frames(cut))
    assert len(frames) == stream.decoded_frames
    numbers = [ref.frame_number for _rgb, ref in frames]
    assert numbers == list(range(numbers[0], stream.frame_count)) and numbers[0] > 0
    for rgb, ref in (frames[0], frames[1], frames[-1]):
        again_rgb, again = extract_frame(cut, ref.frame_number)
        assert again == ref and np.array_equal(again_rgb, rgb)
    message = one_line_about(cut, lambda: extract_frame(cut, 0))
    assert "frame 0 " in message and "cut before a key frame" in message


def test_extraction_seeks_rather_than_decoding_from_the_start(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exact frame comes from the seek to its key frame; decoding from the
    start is only the fallback for an index that lands the seek past the frame."""
    import core.video.decode as decode

    real = decode._decode_until
    calls: list[tuple[bool, bool]] = []

    def spy(*args: object, **kwargs: object) -> object:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append((bool(args[-1]), found is not None))
        return found

    real_decoded = decode._decoded
    frames_decoded: list[int] = []

    def counting(*args: object, **kwargs: object) -> object:
        for item in real_decoded(*args, **kwargs):  # type: ignore[arg-type]
            frames_decoded.append(1)
            yield item

    monkeypatch.setattr(decode, "_decode_until", spy)
    monkeypatch.setattr(decode, "_decoded", counting)
    for name in ("h264.mp4", "mpeg4.mkv", "mjpeg.avi"):
        calls.clear()
        frames_decoded.clear()
        extract_frame(clips[name], FRAMES - 2)
        assert calls == [(True, True)], name
        # from the key frame at or before frame 18, not from frame 0
        assert len(frames_decoded) <= FRAMES - 2 - 2 * GOP + 1, name


def test_a_multi_page_tiff_cut_short_still_loads_its_first_page(
    tmp_path: Path, astronaut_rgb: np.ndarray
) -> None:
    """Counting frames must not turn a damaged later page into a crash: the first
    page is what is analysed; the pages before the damage are what is counted."""
    whole = tmp_path / "pages.tiff"
    write_still_frames(whole, astronaut_rgb, 4)
    data = whole.read_bytes()
    for share in (0.6, 0.9):
        cut = tmp_path / f"cut{int(share * 10)}.tiff"
        cut.write_bytes(data[: int(len(data) * share)])
        loaded = load_image(cut)
        assert 1 <= loaded.frame_count <= 4
        assert loaded.frame_count == frame_count(cut)
        assert "damaged or truncated image data at frame" in one_line_about(
            cut, lambda cut=cut: still_frames(cut)
        )
