"""1:N ranking speed: one probe against 10 000 cached gallery embeddings.

    python benchmarks/rank_speed.py [--gallery 10000] [--repeats 5]

Builds a real case file in a temporary folder with synthetic exhibits, faces and
128-d embeddings (written with SQL: intake of 10 000 real photos is not what is
measured here), then times, side by side in one run:

* reading the 10 000 cached embeddings from the case database,
* ranking them with ``core.case.workflow.rank_scores`` (vectorised),
* the same ranking written as a plain Python loop (the reference).

Target: read + rank < 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from core.case.store import Case, now
from core.case.workflow import rank_scores


def build_case(folder: Path, count: int, dimensions: int) -> tuple[np.ndarray, str]:
    model_sha256 = "f" * 64
    Case.create(folder, "BENCH", "benchmark").close()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(count, dimensions)).astype(np.float32)
    db = sqlite3.connect(folder / "case.sqlite")
    stamp = now()
    with db:
        db.executemany(
            "INSERT INTO exhibits (id, mark, role, sha256, original_name, size, "
            "format, width, height, intake_time, intake_user) "
            "VALUES (?, ?, 'gallery', ?, ?, 1, 'PNG', 1, 1, ?, 'bench')",
            [
                (i + 1, f"K{i + 1}", f"{i:064x}", f"k{i}.png", stamp)
                for i in range(count)
            ],
        )
        db.executemany(
            "INSERT INTO faces (id, exhibit_id, face_index, bbox, landmarks5, source, "
            "created, created_by) VALUES (?, ?, 0, '[0,0,1,1]', '[]', 'hog', ?, 'b')",
            [(i + 1, i + 1, stamp) for i in range(count)],
        )
        db.executemany(
            "INSERT INTO embeddings (face_id, model_sha256, vector) VALUES (?, ?, ?)",
            [(i + 1, model_sha256, vectors[i].tobytes()) for i in range(count)],
        )
    db.close()
    return vectors, model_sha256


def loop_rank(probe: np.ndarray, gallery: list[np.ndarray]) -> list[int]:
    scores = []
    for vector in gallery:
        similarity = float(
            sum(a * b for a, b in zip(probe, vector, strict=True))
            / (np.linalg.norm(probe) * np.linalg.norm(vector))
        )
        scores.append(similarity)
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def best_of(repeats: int, function) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - began)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=10_000)
    parser.add_argument("--dimensions", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "bench.xfrcase"
        vectors, model_sha256 = build_case(folder, args.gallery, args.dimensions)
        probe = np.random.default_rng(1).normal(size=args.dimensions)
        ids = list(range(1, args.gallery + 1))
        with Case.open(folder, read_only=True) as case:
            read_s, cached = best_of(
                args.repeats, lambda: case.cached_embeddings(ids, model_sha256)
            )
        gallery = np.stack([cached[i] for i in ids])
        assert np.array_equal(gallery, vectors)
        rank_s, (order, _, _) = best_of(
            args.repeats, lambda: rank_scores(probe, gallery)
        )
        loop_s, loop_order = best_of(1, lambda: loop_rank(probe, list(gallery)))
        assert list(order[:100]) == loop_order[:100]
    total = read_s + rank_s
    print(
        json.dumps(
            {
                "gallery": args.gallery,
                "read_cached_embeddings_s": round(read_s, 4),
                "rank_vectorised_s": round(rank_s, 5),
                "read_plus_rank_s": round(total, 4),
                "target_s": 0.1,
                "rank_python_loop_s": round(loop_s, 3),
                "vectorised_vs_loop": round(loop_s / rank_s, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
