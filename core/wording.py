"""The sentences an examiner reads that more than one place writes (torch-free).

Declared once, so that the report, the GUI and the metrics say the same thing in the
same words (Orange3's declared messages): verdict names, decision words, why a map
was not checked, the report's limitations and map readings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# ---- per-pair faithfulness verdicts (``core.metrics.pair_faithfulness``) ----------
PAIR_SPECIFIC = "pair-specific"
GENERIC = "no better than a generic face prior"
NOT_SHOWN = "not shown"
VERDICTS = (PAIR_SPECIFIC, GENERIC, NOT_SHOWN)
# What each verdict means, in the examiner's words (the in-app manual).
VERDICT_MEANINGS = {
    PAIR_SPECIFIC: (
        "Removing the face in the map's order changed the model's decision faster "
        "than random orders, than one fixed face-centre map that is the same for "
        "every pair, and than the same method's maps for other faces."
    ),
    GENERIC: (
        "A map that knows nothing about this pair did as well: the map says little "
        "about this pair in particular."
    ),
    NOT_SHOWN: "The check did not bear the map out; do not rely on it for this pair.",
}


def map_verdict_sentence(side: str, kind: str, verdict: str, reason: str) -> str:
    """One map's verdict and its grounds in one line (GUI and report)."""
    return f"{side} {kind} map: {verdict}. {reason}"


LAYER_MAPS_NOT_CHECKED = (
    "Layer-by-layer maps show which regions each layer's pooled features respond to "
    "(Alonso-Fernandez et al. 2023, §IV-D), not what decided this pair: they carry "
    "no faithfulness verdict and are not evidence about the pair."
)

# ---- "not checked": why a map carries no faithfulness verdict ----------------------
NOT_CHECKED = "Faithfulness not checked."  # the report, when no reason is known
NOT_CHECKED_YET = "Faithfulness not checked yet."  # the GUI, before a check
# a method whose ExplainerInfo.map_units is empty: said, never guessed
UNITS_NOT_STATED = "units not stated by the method"
NOT_CHECKED_READ_ONLY = (
    "the case was opened read-only, so no check was made for this report "
    "(a check is kept in the case)"
)
NOT_CHECKED_NO_MODEL = "the report was made without the model (no check could be made)"
NOT_CHECKED_SUPERSEDED = "the comparison was made on a face that was replaced since"


def face_source_words(source: str, *, short: bool = False) -> str:
    """How a face record came about: the report's words, or (``short``) the
    exhibits list's."""
    if source == "manual":
        return "placed by hand" if short else "landmarks placed by hand"
    if source == "box":
        return (
            "in a box drawn by hand"
            if short
            else "landmarks found automatically in a box drawn by hand"
        )
    return (
        f"detected ({source})" if short else f"found automatically ({source} detector)"
    )


def face_replaced_words(action: str, details: Mapping[str, Any]) -> str:
    """How an audit entry replaced a face record, for "a face that was later …"
    (the report's SUPERSEDED banner)."""
    if action == "faces.reject":
        reason = str(details.get("reason") or "not a face")
        return f"rejected as not a face ({reason})"
    if action == "faces.revert":
        why = str(details.get("why") or "undo")
        return f"returned to an earlier record ({why})"
    if action == "faces.detect":
        return "detected again"
    if action == "faces.correct":
        return "corrected (placed by hand)"
    return "replaced"


def earlier_face_note(faces: str, recorded: str) -> str:
    """Shown over a map computed on an earlier record of a face (issue 18):
    ``faces`` e.g. "K1", ``recorded`` when that record was made."""
    return (
        f"Earlier face: this map was computed on the record of {faces} made "
        f"{recorded}, which has been replaced since (corrected, reset or "
        "rejected). It is not about the face shown now; it is kept in the case "
        "as it was."
    )


NOT_CHECKED_OUTDATED = (
    "the explanation was made with another model or software version; "
    "compute it again to check it"
)
NOT_CHECKED_NOT_STORED = "no check is stored in the case"


def not_checked_for_pair(why: str) -> str:
    """The sentence under a map without a stored check, with its reason."""
    return f"Faithfulness not checked for this pair: {why}."


# ---- the model's decision in plain words --------------------------------------------
ACCEPT_WORDS = "same person (accept)"
REJECT_WORDS = "different people (reject)"


def decision_words(decision: str) -> str:
    """ "the same person (accept)" or "different people (reject)"."""
    return f"the {ACCEPT_WORDS}" if decision == "accept" else REJECT_WORDS


# ---- the report: what a map shows and what the scores and maps do not -------------
LIMITATIONS = (
    "The similarity score comes from an automatic face-recognition model. It "
    "measures how alike the model finds two face images; it is not a probability "
    "that the two images show the same person, and it is not an identification.",
    "The model can be wrong, more so for low resolution, blur, compression, "
    "unusual pose, occlusion, illumination, age difference or image manipulation. "
    "Its decision threshold was set by its authors on other data; it is not "
    "calibrated for this case.",
    "A heatmap shows where the model's score for this pair is sensitive, under one "
    "explanation method and the test stated with it. Different methods can "
    "highlight different regions, and a region without colour is not proven "
    "irrelevant.",
    "Each map carries the verdict of a faithfulness check for this pair: the face "
    "was removed region by region in the map's order while the model's decision was "
    "followed. 'Pair-specific' means that this order changed the decision faster "
    "than random orders, than one fixed face-centre map that is the same for every "
    "pair, and than the same method's maps for other faces. 'No better "
    "than a generic face prior' means that a map knowing nothing about this pair "
    "did as well; 'not shown' means that the check did not bear the map out.",
    "Even a pair-specific map does not show that the highlighted regions look the "
    "same in both faces, nor why the model weighs them, nor anything about identity; "
    "it does not show which features a human examiner should rely on.",
    "The maps and scores support, and do not replace, the examiner's own "
    "morphological comparison (ACE-V). The conclusion in this report is the "
    "examiner's; the software does not propose one.",
)

# A method whose maps are sizes (ExplainerInfo.magnitude_only), in the report.
MAGNITUDE_READING = (
    "Warm colours mark where the model's score reacts most to a change of the "
    "image; for this method that is a size, not support for or against 'same "
    "person'."
)
READINGS = {
    "similarity": (
        "Warm colours (yellow to red) mark the regions that most supported the "
        "model's 'same person' score; blue or uncoloured regions supported it little."
    ),
    "dissimilarity": (
        "Warm colours mark the regions that most pushed the model towards "
        "'different people'; blue or uncoloured regions did so little."
    ),
    "combined": (
        "Red marks regions that supported 'same person', blue regions that supported "
        "'different people'; white or uncoloured regions had little influence."
    ),
}

# ---- face image quality in the report's per-image analysis (issue 20 item 3) -------
QUALITY_HEADING = "Image quality measured for each face"
QUALITY_INTRO = (
    "For each face used, the software measured the image conditions in the spirit "
    "of ISO/IEC 29794-5 (face image quality). Each figure describes the image, not "
    "the person. The ratings good, limited and poor apply this software's stated "
    "conventions, which are not validated limits; they do not replace the "
    "examiner's own analysis of suitability above."
)
QUALITY_DEFINITIONS_HEADING = "Definitions of the quality measures"
QUALITY_NO_THRESHOLD = "no threshold"
QUALITY_NOT_AVAILABLE = "not available"
QUALITY_UTILITY_WITHHELD = (
    "The model's embedding length (its utility proxy) is left out for this face: "
    "it is an output of the model, and a comparison with this face is still masked "
    "(sequential unmasking)."
)
QUALITY_RATING_WORDS = {
    "good": "good",
    "limited": "limited",
    "poor": "poor",
}


def quality_sentence(label: str, rating: str, reasons: tuple[str, ...]) -> str:
    """The summary sentence of one face's image conditions, as the report and the
    GUI print it."""
    words = QUALITY_RATING_WORDS.get(rating, rating)
    if not reasons:
        return f"Face {label}: the image conditions are {words}."
    return f"Face {label}: the image conditions are {words} ({'; '.join(reasons)})."


def quality_not_measured(label: str, reason: str) -> str:
    return f"Face {label}: the image quality could not be measured: {reason}."


# ---- the likelihood ratio and the calibration's image conditions (issue 20) -------
CALIBRATION_CONDITIONS_NOT_RECORDED = (
    "The calibration file does not record the image conditions (face quality) of "
    "the faces it was fitted on, so whether these faces lie within what it covers "
    "cannot be checked."
)


def _quality_figure(value: float, unit: str) -> str:
    """A quality figure as the caution shows it: 18 px, 42°, 31 %, 0.0123."""
    if unit == "px":
        return f"{value:.0f} px"
    if unit == "deg":
        return f"{value:.0f}°"
    if unit == "fraction 0-1":
        return f"{100 * value:.0f} %"
    if unit in ("0-255", "1-100"):
        return f"{value:.0f}"
    return f"{value:.3g}"


def calibration_range_caution(
    role: str,
    name: str,
    unit: str,
    absolute: bool,
    value: float,
    side: str,
    beyond: bool,
    bound: float,
    better_side: bool = False,
) -> str:
    """One caution: a face's figure outside the calibration's reference faces.

    ``role`` "questioned" or "reference"; ``side`` "below" or "above" the 5th-95th
    percentile range; ``beyond``: also beyond the smallest / largest reference face
    (``bound`` is then that face's figure, else the percentile); ``better_side``:
    the figure is beyond the reference faces on the measure's better side.
    """
    what = name
    # angles are compared by size: 60° means turned 60° to either side
    figure = _quality_figure(value, unit) + (" either way" if absolute else "")
    bound_figure = _quality_figure(bound, unit)
    if beyond:
        extreme = "smallest" if side == "below" else "largest"
        if better_side:
            return (
                f"The {role} face's {what} ({figure}) is {side} every face the "
                f"calibration was fitted on ({extreme} {bound_figure}): the image "
                "conditions are better than any it covers, and its likelihood ratio "
                "has not been validated for them."
            )
        return (
            f"The {role} face's {what} ({figure}) is {side} every face the "
            f"calibration was fitted on ({extreme} {bound_figure}): the likelihood "
            "ratio is outside what this calibration covers."
        )
    share, percentile = ("lower", "5th") if side == "below" else ("higher", "95th")
    return (
        f"The {role} face's {what} ({figure}) is {share} than 95 % of the faces the "
        f"calibration was fitted on ({percentile} percentile {bound_figure}): the "
        "likelihood ratio rests on few faces like it."
    )


def quality_unmeasured_caution(role: str, label: str, reason: str) -> str:
    """A face whose image conditions could not be measured (``reason``)."""
    return (
        f"The image quality of the {role} face {label} could not be measured "
        f"({reason}): whether it lies within what the calibration covers cannot be "
        "checked."
    )


def lr_cautions_text(cautions: tuple[str, ...] | list[str]) -> str:
    """The cautions after a likelihood ratio, each marked as one."""
    return " ".join(f"Caution: {caution}" for caution in cautions)


# ---- video exhibits and the frames taken from them (issue 20 item 1) ---------------
VIDEO_EXHIBITS_HEADING = "Video exhibits"
VIDEO_EXHIBITS_INTRO = (
    "Each video is stored byte for byte as received, read-only, under its SHA-256, "
    "like any image. A frame taken from a video is an image exhibit of its own: a "
    "lossless PNG of the decoded pixels, with a record of where in the video it "
    "came from."
)
CREATION_TIME_CLAIM = "as the container claims it (not verified)"
WALL_CLOCK_CAVEAT = (
    "derived from the container's creation_time tag and the frame's timestamp, "
    "not verified; the tag may be when the clip was exported, not recorded"
)
FRAME_PROVENANCE_HEADING = "Frames taken from videos"


def frame_selection_words(selection: Mapping[str, Any]) -> str:
    """Why a frame was taken: its rank among the track's faces, the examiner's
    choice (with the rank the ranking gave it), or "not recorded"."""
    rank = selection.get("rank")
    ranked = ""
    if rank:
        score = selection.get("ranking", {}).get("score")
        shown = "" if score is None else f", score {float(score):.3f}"
        ranked = (
            f"ranked {rank} of {selection.get('of', '?')} faces of the track by the "
            f"best-frame ranking{shown}"
        )
    if selection.get("chosen_by") == "examiner":
        return "chosen by the examiner" + (f" ({ranked})" if ranked else "")
    if selection.get("chosen_by") == "ranked" and ranked:
        return ranked
    return "not recorded"


def frame_quality_note(mark: str, described: str) -> str:
    """Beside a frame exhibit's quality figures: where the frame came from."""
    return (
        f"{mark} is {described}; where it came from and how to check it are listed "
        f"under {FRAME_PROVENANCE_HEADING}."
    )


def frame_recheck_sentence(mark: str, video: str, frame_number: int) -> str:
    """How anyone can decode frame exhibit ``mark`` again and compare its hash."""
    return (
        f"To check {mark}, decode frame {frame_number} of {video} again and compare "
        "the SHA-256 of its RGB24 bytes with the decoded frame's SHA-256 above: "
        "<i>xfr case frames CASE --check</i> does this from the case, and FFmpeg "
        "does it without XFR (<i>ffmpeg -noautorotate -i VIDEO -vf "
        f"'select=eq(n\\,{frame_number})' -vframes 1 -pix_fmt rgb24 -f rawvideo - | "
        "sha256sum</i>; FFmpeg counts only the frames it can decode, so for a clip "
        "whose first frames cannot be decoded its number is lower). Another decoder "
        "build may round colours differently, so a different hash from another "
        "decoder is not by itself a sign of alteration; the decoder used is named."
    )


def wall_clock_text(wall_clock: str) -> str:
    """A frame's wall-clock time, with what it rests on: the container's
    creation_time tag is often the time the clip was exported, not recorded."""
    return f"{wall_clock} ({WALL_CLOCK_CAVEAT})"


def still_frame_recheck_sentence(mark: str, source: str, frame_number: int) -> str:
    """How to read frame exhibit ``mark`` of a multi-frame image again."""
    return (
        f"To check {mark}, read frame {frame_number} (counted from 0) of {source} "
        "again and compare the SHA-256 of its RGB24 bytes with the frame's SHA-256 "
        "above: <i>xfr case frames CASE --check</i> does this from the case. Another "
        "image library may convert colours differently (a palette, a colour "
        "profile), so a different hash from another reader is not by itself a sign "
        "of alteration; the reader used is named."
    )


# ---- processed (derived) exhibits (issue 21) --------------------------------------
def derived_exhibit_note(mark: str, original: str, operations: Sequence[str]) -> str:
    """What a processed exhibit is, wherever its faces, scores or maps appear."""
    steps = ", ".join(operations) if operations else "no step"
    return (
        f"{mark} is a processed copy of {original} ({steps}); faces, scores and maps "
        f"on {mark} are of the processed image, and {original} itself is unchanged"
    )


NON_GENERATIVE_STATEMENT = (
    "Only the non-generative operations listed were applied, each a fixed, "
    "documented signal-processing function of the pixels, in the order and with the "
    "parameters shown. The processed images can be re-created from the originals "
    "(and, for frame averaging, the video the frame was taken from) and this record: "
    "bit for bit with the software, library versions and processor features "
    "recorded, and within 2 grey levels in at most 1 % of the pixels elsewhere "
    "(xfr case verify re-runs every chain and says which). No generative or "
    "learning-based enhancement (super-resolution, learned denoising or face "
    "\u201cenhancement\u201d) was used."
)


def derivation_lineage_text(marks: Sequence[str]) -> str:
    """ "Q1 -> Q1.1 -> Q1.1.1": how a processed exhibit descends from its original."""
    return " \u2192 ".join(marks)


# ---- the report's processing log (issue 21) ----------------------------------------
PROCESSING_LOG_HEADING = "Processing log"
PROCESSING_LOG_INTRO = (
    "Each processed exhibit below is a new exhibit made from another by the listed "
    "operations, applied in the order shown with the parameters shown; the exhibit "
    "it was made from is kept unchanged. The record names the SHA-256 of the source "
    "file and of its pixels, of the processed pixels and of the stored PNG, and the "
    "software and libraries that made it; the chain was re-run for this report."
)
PROCESSING_OUT_OF_SCOPE = (
    "Out of scope: super-resolution, learned de-noising or de-blurring, face "
    "\u201cenhancement\u201d, in-painting and every other operation that learns from "
    "other images or synthesises detail are not offered by this software and were "
    "not used. None of the operations listed adds information that its recorded "
    "inputs do not hold: the source image and, for frame averaging only, the other "
    "frames of the same video named in its step."
)
PROCESSING_OPERATION_UNKNOWN = (
    "an operation this version of the software does not have: shown as recorded, "
    "and it cannot be re-run here"
)
PIXELS_HASH_NOTE = (
    "Pixel SHA-256s are of \u201cHxWx3:\u201d followed by the RGB bytes row by row "
    "(core.processing.pixels_sha256); file SHA-256s are of the stored file's bytes."
)


def no_enhancement_text() -> str:
    """The processing section's last line for a case without a processed exhibit."""
    return (
        "No enhancement (sharpening, contrast, de-noising, interpolation to a larger "
        "size) was applied to the evidence in this software."
    )


def processed_exhibits_text(processed: Sequence[tuple[str, str, str]]) -> str:
    """The processing section's last line when exhibits were processed, from
    (mark, source, operations) per processed exhibit."""
    listed = "; ".join(f"{m} from {s} ({ops})" for m, s, ops in processed)
    sources = ", ".join(dict.fromkeys(s for _m, s, _ops in processed))
    return (
        "Processing was applied only as listed in the processing log below, each "
        f"time to make a new, processed exhibit: {listed}. The exhibits processed "
        f"({sources}) are unchanged, and no other enhancement was applied to the "
        "evidence in this software."
    )


def processed_from_text(mark: str, source: str) -> str:
    """The exhibits list's mark for a processed exhibit."""
    return f"{mark} \u2014 processed from {source}, see Processing applied"


def processing_rerun_ok(mark: str, sha256: str) -> str:
    return (
        f"Re-run for this report: the recorded chain applied to the source again "
        f"re-created the pixels of {mark} bit for bit (SHA-256 {sha256}), and the "
        "stored image holds those pixels."
    )


def processing_rerun_failed(mark: str, problem: str) -> str:
    return f"Re-run for this report: {mark} was NOT re-created: {problem}."


def processing_rerun_warning(mark: str, warning: str) -> str:
    return f"Re-run for this report, note on {mark}: {warning}."


# The Processing tab (xfr_desktop/panels/processing_panel.py): the short form of
# NON_GENERATIVE_STATEMENT shown under the preview (its tooltip is the full one).
PROCESSING_PANEL_STATEMENT = (
    "Non-generative processing only: each step is a fixed, documented "
    "signal-processing function of the pixels (frame averaging: also of the "
    "video's neighbouring frames), recorded with its parameters and re-run by "
    "verify; nothing is learned or invented. The source exhibit is never changed."
)


def processing_wipe_size_note(
    width: int, height: int, out_width: int, out_height: int
) -> str:
    """Why the wipe view shows the processed image alone (a crop, resize, turn)."""
    return (
        f"The result is {out_width}×{out_height} and the source {width}×{height}: "
        "there is no common frame to wipe across, so only the result is shown "
        "here. Use Side by side to compare them."
    )


# `xfr gallery search` (core/cli/gallery.py): what a 1:N result is and is not.
GALLERY_SEARCH_LEAD = (
    "A 1:N gallery search result is an investigative lead, not an identification: "
    "the candidates are the reference templates most similar to the probe under "
    "this model, ranked by cosine similarity; the most similar may be a different "
    "person, and the true person may not be in the gallery at all. Each candidate "
    "needs a one-to-one examination by an examiner before any conclusion."
)


# ---- a case's searches against reference galleries (issue 22, item 4) -------------
def gallery_lead_note(
    mark: str,
    rank: int,
    search: str,
    probe: str,
    gallery_uuid: str,
    gallery_size: int,
    similarity: float | None,
    *,
    gallery_digest: str = "",
    probe_replaced: bool = False,
) -> str:
    """What a candidate pulled into the case from a 1:N gallery search is,
    wherever its faces or scores appear (CLI, report, window); ``similarity``
    None where the pair's model results are masked (sequential unmasking);
    ``gallery_digest``: the first 12 hex digits of the gallery's digest;
    ``probe_replaced``: the search was of a face record of ``probe`` since
    replaced (its score is that record's template's, not the current one's)."""
    digest = f"digest {gallery_digest}, " if gallery_digest else ""
    template = (
        f"the template of a face record of {probe} since replaced"
        if probe_replaced
        else f"{probe}'s template"
    )
    score = (
        ""
        if similarity is None
        else f"; the search's cosine between {template} and the gallery's "
        f"template of this candidate: {similarity:.4f}"
    )
    searched = (
        f"{probe} (for a face record of {probe} since replaced)"
        if probe_replaced
        else probe
    )
    return (
        f"{mark} is an investigative lead, not an identification: it came into the "
        f"case as candidate {rank} of the 1:N search {search} of {searched} against "
        f"reference gallery {gallery_uuid} ({digest}{gallery_size} templates"
        f"{score}); the examiner knew its rank in that search before the "
        "one-to-one examination, and the rank itself says the model found it "
        f"among the most similar to {probe}, so scores between {probe} and {mark} "
        "are not independent of that search, and it needs a one-to-one "
        "examination before any conclusion"
    )


GALLERY_SEARCHES_HEADING = "1:N searches against reference galleries"
GALLERY_SEARCHES_INTRO = (
    "A face of this case was searched against a reference gallery kept outside the "
    "case. Each search is recorded with the probe's template hash, the gallery's "
    "uuid and digest (SHA-256 of its manifest.sha256, which names its exact "
    "content), its size, the model and the index, with its full ranked list of "
    "candidates (those pulled into the case as exhibits named), so that a reader "
    "sees which higher-ranked candidates were not pulled. A search's scores are "
    "shown only for candidates in the case whose pair with the probe was "
    "unmasked (sequential unmasking). A candidate from such a search is an "
    "investigative lead, not an identification: the most similar template may be a "
    "different person, and the person sought may not be in the gallery at all."
)


# The compute executor (core/compute.py): what a model job shows while another
# model job holds the CPU cores.
def compute_waiting_message(running: str, place: int) -> str:
    """``place`` = model jobs ahead of this one (the running one included)."""
    ahead = "1 model job" if place == 1 else f"{place} model jobs"
    doing = f" ({running} is running)" if running else ""
    return f"Waiting for the processor: {ahead} ahead{doing}"


# ---- a case's gallery searches: the scale, masking and caps (issue 22, item 4) ----
def gallery_cosine_scale(
    model_id: str, threshold: Any, probe_norm: float | None = None
) -> str:
    """What a search cosine means for the model: its one-to-one decision rule
    as a cosine (``threshold``: a ``core.models.base.Threshold``; ``probe_norm``:
    the length of the probe's raw embedding, for a distance rule)."""
    if threshold.metric == "euclidean":
        d = float(threshold.value)
        unit = 1.0 - d**2 / 2.0
        rule = (
            f"the one-to-one decision rule of {model_id} is "
            f"{threshold.rule_text()}, a distance between its embeddings; for "
            f"unit-length vectors a distance d is a cosine of 1 - d\u00b2/2, so "
            f"the rule corresponds to a cosine similarity of {unit:.4f}"
        )
        if probe_norm is not None and abs(probe_norm - 1.0) > 1e-3:
            scaled = 1.0 - d**2 / (2.0 * probe_norm**2)
            rule += (
                f" if the embeddings were unit length; this model's are not (the "
                f"probe's has length {probe_norm:.2f}), and for two embeddings of "
                f"that length r the rule corresponds to a cosine of 1 - "
                f"d\u00b2/(2r\u00b2) = {scaled:.4f}. The search's cosines are of "
                "unit-length templates, so this is a guide, not the case's decision"
            )
        else:
            rule += " (a guide, not the case's decision)"
    else:
        rule = f"the one-to-one decision rule of {model_id} is {threshold.rule_text()}"
    return (
        f"What a search cosine means: {rule}. In a large gallery, different people "
        "commonly score above that threshold, so a high rank or a cosine above it "
        "says only that the template is among the most similar, not that it is the "
        "same person."
    )


GALLERY_SCORES_MASKED = (
    "Scores not shown: sequential unmasking is on. A candidate's score becomes "
    "visible once it is pulled into the case and the examiner has recorded the "
    "analysis and evaluation of the pair and unmasked it; the ranks, identities "
    "and files are shown, and every score is kept in the case's search record."
)


def gallery_top_capped(asked: int, listed: int, size: int, most: int) -> str:
    """The line saying ``--top`` was capped."""
    why = (
        f"the gallery has {size} templates"
        if listed == size and size < most
        else f"a search lists at most {most}"
    )
    shown = str(asked) if len(str(asked)) <= 12 else f"{str(asked)[:12]}..."
    return f"--top {shown} capped at {listed} ({why})"


# a search's ranked list with some scores shown, others masked (report, CLI)
GALLERY_SCORES_PARTLY_MASKED = (
    "Scores hidden for the ranks marked 'masked': sequential unmasking is on, and "
    "a candidate's score is shown only once it is pulled into the case and the "
    "pair has been analysed, evaluated and unmasked; every score is kept in the "
    "case's search record."
)


def gallery_probe_replaced(probe: str) -> str:
    """A search made with a face record of ``probe`` that has since been
    replaced (a corrected face): its candidates and scores are that record's."""
    return (
        f"searched for a face record of {probe} since replaced: its ranks and "
        f"scores are of that earlier record's template, not of {probe}'s current "
        "face record (search again to rank the current one)"
    )


def engine_facts(
    engine: str, checkpoint: str | None, computed: int, reused: int
) -> str:
    """Where a data-set run's shards ran and how many came from a checkpoint (for
    every output of the run: a table from reused shards must say so)."""
    where = (
        "no checkpoint folder"
        if checkpoint is None
        else f"checkpoint folder {checkpoint}"
    )
    return (
        f"engine {engine}, {where}: {computed + reused} shard(s), {computed} "
        f"computed in this run, {reused} reused from the checkpoint"
    )
