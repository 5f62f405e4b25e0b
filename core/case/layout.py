"""Names inside a case folder, shared by the store and the archive."""

import re

DATABASE = "case.sqlite"  # the SQLite database
EVIDENCE = "evidence"  # originals, byte for byte, named by their SHA-256
DERIVED = "derived"  # regenerable data, named by its SHA-256
LOCK = "case.lock"  # held by the process that has the case open for writing
PARTIAL_SUFFIX = ".partial"  # files being written; never part of a case
SESSION = "case.session"  # last committed audit head, and whether the case is open
SHA256_HEX = re.compile(r"[0-9a-f]{64}")  # how evidence files are named
