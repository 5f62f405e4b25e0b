"""Where data-set work runs: in this process (``local``) or on a Ray cluster
(``ray``), shard by shard, with a checkpoint folder so that a restart resumes.

A command splits its work into shards (a batch of images, of pairs) and maps one
pure shard function over them (:func:`core.engine.base.run_sharded`); both runners
call the same function on the same shards and the caller merges the results in
shard order with the same code, so the tables are the same whichever runs them.
"""

from __future__ import annotations

from core.engine.base import (
    ENGINE_IDS,
    Engine,
    Runner,
    RunStats,
    Shard,
    run_sharded,
    shard_key,
)
from core.engine.registry import make_engine

__all__ = [
    "ENGINE_IDS",
    "Engine",
    "RunStats",
    "Runner",
    "Shard",
    "make_engine",
    "run_sharded",
    "shard_key",
]
