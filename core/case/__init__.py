"""Case files: evidence store, audit trail, archive."""
