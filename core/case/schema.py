"""The case database schema and its migrations.

``PRAGMA user_version`` holds the schema version; ``MIGRATIONS[n]`` takes a case
from version n to n + 1.  A case written by a newer XFR version is refused rather
than guessed at.  ``application_id`` marks the file as an XFR case ("XFRC").
"""

from __future__ import annotations

APPLICATION_ID = 0x58465243  # "XFRC"

_V1 = """
CREATE TABLE case_info (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    case_uuid TEXT NOT NULL,
    case_number TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    agency TEXT NOT NULL DEFAULT '',
    examiner TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);

CREATE TABLE exhibits (
    id INTEGER PRIMARY KEY,
    mark TEXT NOT NULL UNIQUE,              -- Q1, Q2 (questioned) / K1, K2 (known)
    role TEXT NOT NULL CHECK (role IN ('probe', 'gallery')),
    sha256 TEXT NOT NULL UNIQUE,
    original_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,                 -- as analysed (EXIF orientation applied)
    height INTEGER NOT NULL,
    exif_orientation INTEGER NOT NULL DEFAULT 1,
    exif TEXT NOT NULL DEFAULT '{}',        -- JSON summary
    note TEXT NOT NULL DEFAULT '',
    intake_time TEXT NOT NULL,
    intake_user TEXT NOT NULL
);

CREATE TABLE faces (
    id INTEGER PRIMARY KEY,
    exhibit_id INTEGER NOT NULL REFERENCES exhibits(id),
    face_index INTEGER NOT NULL,            -- 0 = largest detected face
    bbox TEXT NOT NULL,                     -- JSON [left, top, right, bottom]
    landmarks5 TEXT NOT NULL,               -- JSON [[x, y] x 5]
    landmarks68 TEXT,
    score REAL,
    source TEXT NOT NULL,                   -- detector name or 'manual'
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    superseded INTEGER NOT NULL DEFAULT 0,  -- 1 once replaced by a correction
    UNIQUE (exhibit_id, face_index, created)
);

CREATE TABLE embeddings (
    face_id INTEGER NOT NULL REFERENCES faces(id),
    model_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,                   -- float32, little endian
    PRIMARY KEY (face_id, model_sha256)
);

CREATE TABLE comparisons (
    id INTEGER PRIMARY KEY,
    probe_face_id INTEGER NOT NULL REFERENCES faces(id),
    gallery_face_id INTEGER NOT NULL REFERENCES faces(id),
    model_id TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    similarity REAL NOT NULL,
    distance REAL NOT NULL,
    threshold TEXT NOT NULL,                -- JSON {metric, value, source}
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject')),
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (probe_face_id, gallery_face_id, model_sha256, threshold)
);

CREATE TABLE derived (
    sha256 TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    created TEXT NOT NULL
);

CREATE TABLE explanations (
    id INTEGER PRIMARY KEY,
    comparison_id INTEGER NOT NULL REFERENCES comparisons(id),
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    model_sha256 TEXT NOT NULL,
    software_version TEXT NOT NULL,
    cache_key TEXT NOT NULL UNIQUE,
    result TEXT NOT NULL,                   -- JSON (ExplanationResult.to_dict)
    maps_sha256 TEXT NOT NULL REFERENCES derived(sha256),
    created TEXT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE annotations (
    id INTEGER PRIMARY KEY,
    exhibit_id INTEGER REFERENCES exhibits(id),
    explanation_id INTEGER REFERENCES explanations(id),
    shape TEXT NOT NULL CHECK (
        shape IN ('point', 'rectangle', 'ellipse', 'polygon', 'freehand')),
    points TEXT NOT NULL,                   -- JSON [[x, y], ...] in image pixels
    label TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    component TEXT,                         -- FISWG facial component, optional
    author TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    CHECK ((exhibit_id IS NULL) != (explanation_id IS NULL))
);

CREATE TABLE conclusions (
    id INTEGER PRIMARY KEY,
    comparison_id INTEGER REFERENCES comparisons(id),
    text TEXT NOT NULL,                     -- written by the examiner, never the app
    author TEXT NOT NULL,
    created TEXT NOT NULL
);

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- The newest entry, written in the same transaction: removing the last rows of the
-- log then no longer leaves a consistent-looking chain.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE INDEX faces_exhibit ON faces(exhibit_id);
CREATE INDEX annotations_exhibit ON annotations(exhibit_id);
CREATE INDEX annotations_explanation ON annotations(explanation_id);
CREATE INDEX explanations_comparison ON explanations(comparison_id);
"""

# Version 2 changes no table: from it on, every audit entry records the digests of
# the rows it wrote (core/case/state.py).  Opening a version-1 case for writing
# records the state as found in a ``case.upgrade`` entry.
_V2 = ""

# Version 3 adds the examiner's own work (ACE-V: analysis, feature worksheet,
# evaluation, unmasking, verification), the case's examination settings and the
# numbered figures saved from the comparison views (core/case/examination.py).
_V3 = """
CREATE TABLE case_settings (
    key TEXT PRIMARY KEY,                   -- sequential_unmasking, scale, ...
    value TEXT NOT NULL                     -- JSON
);

CREATE TABLE acev (
    id INTEGER PRIMARY KEY,
    stage TEXT NOT NULL CHECK (stage IN (
        'analysis', 'worksheet', 'evaluation', 'unmasking', 'verification')),
    role TEXT NOT NULL CHECK (role IN ('examiner', 'verifier')),
    questioned TEXT NOT NULL DEFAULT '',    -- face label (Q1, Q1#2); '' for the
    known TEXT NOT NULL DEFAULT '',         -- analysis of a known face alone
    -- the face records the labels named when this was recorded: a record of a
    -- face since replaced (a new detection, a correction) no longer counts
    questioned_face_id INTEGER REFERENCES faces(id),
    known_face_id INTEGER REFERENCES faces(id),
    content TEXT NOT NULL,                  -- JSON, the stage's record
    blind INTEGER NOT NULL DEFAULT 0,       -- 1: recorded in a blind session
    author TEXT NOT NULL,
    created TEXT NOT NULL,
    CHECK (questioned != '' OR known != '')
);

CREATE TABLE figures (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,         -- Figure 1, 2, ... in the report annex
    view TEXT NOT NULL,                     -- side by side, superimposed, ...
    questioned TEXT NOT NULL,
    known TEXT NOT NULL,
    params TEXT NOT NULL,                   -- JSON: how to draw it again
    image_sha256 TEXT NOT NULL REFERENCES derived(sha256),
    caption TEXT NOT NULL DEFAULT '',
    author TEXT NOT NULL,
    created TEXT NOT NULL
);

CREATE INDEX acev_pair ON acev(questioned, known);
"""

# Version 4 adds CCTV video (issue 20): the video files, stored byte-identical as
# exhibits of their own (marks V1, V2, ...); the face tracks found in them; and the
# provenance of every frame taken from one - a frame becomes an image exhibit (a
# lossless PNG of the decoded pixels) whose ``frames`` row says where it came from
# (so does a frame taken from a multi-frame image exhibit, e.g. an animated GIF),
# so that it can be extracted again and compared hash for hash
# (core/case/videos.py).
_V4 = """
CREATE TABLE videos (
    id INTEGER PRIMARY KEY,
    mark TEXT NOT NULL UNIQUE,              -- V1, V2
    role TEXT NOT NULL CHECK (role IN ('probe', 'gallery')),
    sha256 TEXT NOT NULL UNIQUE,
    original_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    container TEXT NOT NULL,                -- FFmpeg demuxer name
    info TEXT NOT NULL,                     -- JSON: streams, duration, creation time
    note TEXT NOT NULL DEFAULT '',
    intake_time TEXT NOT NULL,
    intake_user TEXT NOT NULL
);

CREATE TABLE tracks (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES videos(id),
    run INTEGER NOT NULL,                   -- one tracking of the video: 1, 2, ...
    number INTEGER NOT NULL,                -- T1, T2, ... within the run
    params TEXT NOT NULL,                   -- JSON: how the run was made
    content TEXT NOT NULL,                  -- JSON: the track's faces, frame by frame
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (video_id, run, number)
);

CREATE TABLE frames (
    exhibit_id INTEGER PRIMARY KEY REFERENCES exhibits(id),
    -- taken from a video, or from another frame of a multi-frame image exhibit
    -- (an animated GIF, a multi-page TIFF, APNG, WebP): exactly one of the two
    video_id INTEGER REFERENCES videos(id),
    source_exhibit_id INTEGER REFERENCES exhibits(id),
    track_id INTEGER REFERENCES tracks(id),
    stream_index INTEGER NOT NULL,
    frame_number INTEGER NOT NULL,          -- from 0, in presentation order
    pts INTEGER,                            -- presentation timestamp, time_base ticks
    time_base TEXT NOT NULL,                -- "num/den" seconds per tick
    seconds REAL,
    wall_clock TEXT,                        -- creation_time + offset, if tagged
    frame_sha256 TEXT NOT NULL,             -- of the decoded RGB24 bytes
    decoder TEXT NOT NULL,
    -- degrees counter-clockwise the stored image was turned from the decoded
    -- pixels, as the file's display matrix asks (0: not turned)
    display_rotation INTEGER NOT NULL DEFAULT 0,
    selection TEXT NOT NULL DEFAULT '{}',   -- JSON: rank, score, who chose it
    CHECK ((video_id IS NULL) != (source_exhibit_id IS NULL))
);

CREATE INDEX tracks_video ON tracks(video_id, run);
CREATE INDEX frames_video ON frames(video_id);
"""

# Version 5 adds processed images (issue 21): an exhibit derived from another by a
# recorded chain of operations (core/processing/) is an image exhibit of its own
# (Q1.1, a lossless PNG); its ``derivations`` row holds the chain and every hash
# needed to re-create its pixels bit for bit (core/case/derivations.py).
_V5 = """
CREATE TABLE derivations (
    exhibit_id INTEGER PRIMARY KEY REFERENCES exhibits(id),
    source_exhibit_id INTEGER NOT NULL REFERENCES exhibits(id),
    source_sha256 TEXT NOT NULL,            -- of the source's evidence file
    source_pixels_sha256 TEXT NOT NULL,     -- of its pixels as analysed
    chain TEXT NOT NULL,                    -- JSON: steps (op, version, params)
    inputs TEXT NOT NULL DEFAULT '[]',      -- JSON: per step, frames it read
    output_sha256 TEXT NOT NULL,            -- of the output pixels
    software_version TEXT NOT NULL,
    libraries TEXT NOT NULL,                -- JSON: OpenCV, scikit-image, ...
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    CHECK (exhibit_id != source_exhibit_id)
);

CREATE INDEX derivations_source ON derivations(source_exhibit_id);
"""

# Version 6 adds 1:N searches of a case face against a reference gallery kept
# outside the case (issue 22, core/gallery/): each search with the probe's template
# hash, the gallery's uuid, digest and size, the model, the index and the ranked
# candidates with their exact scores; and, for a candidate pulled into the case as
# a known exhibit, which search and rank it came from - an investigative lead
# (core/case/gallery_searches.py).
_V6 = """
CREATE TABLE gallery_searches (
    id INTEGER PRIMARY KEY,
    probe_face_id INTEGER NOT NULL REFERENCES faces(id),
    probe_label TEXT NOT NULL,              -- Q1, Q1#2 when searched
    probe_exhibit_sha256 TEXT NOT NULL,     -- the probe exhibit's evidence file
    probe_template_sha256 TEXT NOT NULL,    -- of the float32 little-endian template
    gallery_uuid TEXT NOT NULL,
    gallery_digest TEXT NOT NULL,           -- SHA-256 of the gallery's manifest.sha256
    gallery_size INTEGER NOT NULL,          -- templates searched
    gallery_path TEXT NOT NULL,             -- where it was, when searched
    gallery_source TEXT NOT NULL,           -- its source, as its manifest says
    model_id TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    index_spec TEXT NOT NULL,               -- JSON: kind and parameters
    k INTEGER NOT NULL,                     -- candidates asked for
    candidates TEXT NOT NULL,               -- JSON: rank, identity, file, image
                                            -- SHA-256, face index, exact cosine, row,
                                            -- the gallery's template (float32 LE,
                                            -- base64) and its SHA-256
    threshold TEXT NOT NULL,                -- JSON: the model's one-to-one rule
                                            -- (metric, value, source)
    software_version TEXT NOT NULL,
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    CHECK (k >= 1 AND gallery_size >= 1)
);

CREATE TABLE gallery_leads (
    exhibit_id INTEGER PRIMARY KEY REFERENCES exhibits(id),
    search_id INTEGER NOT NULL REFERENCES gallery_searches(id),
    -- the candidate's rank in that search (pulled once: exhibits.sha256 is unique)
    rank INTEGER NOT NULL,
    image_path TEXT NOT NULL,               -- where the image was read from
    -- cosine of the model's template of the pulled image (the gallery's face
    -- rule) with the gallery's template stored in the search: 1 up to rounding
    template_cosine REAL NOT NULL,
    created TEXT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE INDEX gallery_searches_probe ON gallery_searches(probe_face_id);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6)
SCHEMA_VERSION = len(MIGRATIONS)
BINDING_VERSION = 2  # the first schema version whose entries bind rows
