"""Nearest-template search over a reference gallery: faiss for the candidates,
exact cosine similarity for the scores and the order.

Two index kinds, chosen by the gallery's size (:func:`spec_for`):

* ``flat-ip`` (fewer than ``EXACT_BELOW`` templates): faiss ``IndexFlatIP``, an
  exhaustive scan - the candidates are the true nearest ones;
* ``hnsw-flat-ip``: faiss ``IndexHNSWFlat`` (inner product, M=32,
  efConstruction=200), an approximate graph search whose efSearch was chosen with
  ``benchmarks/gallery_search.py`` so that recall@50 against exhaustive search is
  at least 0.99 on 10^6 synthetic 128-d templates (docs/performance.md).

Either way the index only proposes candidates: the top ``rerank_factor * k`` are
re-scored from the stored templates (float64 dot product of unit vectors, which is
their cosine similarity) and ranked by that exact score, ties by template order.
So every score shown is exact; what the approximation can do is miss a template
that belonged in the top k (measured, as recall, in the benchmark).

Determinism: the index is built once and stored (``index.faiss``, hashed in the
gallery's manifest), so every search of a gallery walks the same graph.  A search
is the same whatever the thread count.  Building HNSW with more than one thread
inserts templates in an order the threads decide, so two builds of the same
templates may give different graphs (both valid); with ``threads=1`` a build is
reproducible (faiss seeds the level of each node with a fixed seed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInputError

EXACT_BELOW = 5000  # smaller galleries are scanned whole (IndexFlatIP)
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 300  # benchmarks/gallery_search.py: recall@50 >= 0.99 at 10^6
RERANK_FACTOR = 4  # candidates re-scored exactly: RERANK_FACTOR * k
KINDS = ("flat-ip", "hnsw-flat-ip")


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInputError(f"{value!r} is not a whole number")
    return int(value)


@dataclass(frozen=True)
class IndexSpec:
    """The index kind and its parameters, as the manifest records them."""

    kind: str
    m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None
    rerank_factor: int = RERANK_FACTOR

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"exact_search": self.kind == "flat-ip"}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> IndexSpec:
        kind = values.get("kind")
        if kind not in KINDS:
            raise BadInputError(f"unknown index kind {kind!r} (known: {KINDS})")
        spec = cls(
            kind=str(kind),
            m=values.get("m"),
            ef_construction=values.get("ef_construction"),
            ef_search=values.get("ef_search"),
            rerank_factor=_whole(values.get("rerank_factor", RERANK_FACTOR)),
        )
        if spec.rerank_factor < 1:
            raise BadInputError(f"rerank_factor {spec.rerank_factor} is below 1")
        if spec.kind == "hnsw-flat-ip":
            spec.hnsw()  # its parameters are there
        return spec

    def hnsw(self) -> tuple[int, int, int]:
        """(M, efConstruction, efSearch) of an HNSW index; one line if missing."""
        values = (self.m, self.ef_construction, self.ef_search)
        if self.kind != "hnsw-flat-ip" or not all(isinstance(v, int) for v in values):
            raise BadInputError(f"{self.kind} index without HNSW parameters {values}")
        m, ef_construction, ef_search = (int(v or 0) for v in values)
        return m, ef_construction, ef_search

    def text(self) -> str:
        if self.kind == "flat-ip":
            return "exact search (faiss IndexFlatIP: every template compared)"
        return (
            f"approximate search (faiss HNSW, M={self.m}, efConstruction="
            f"{self.ef_construction}, efSearch={self.ef_search}), the top "
            f"{self.rerank_factor} x k candidates re-scored exactly"
        )


def spec_for(count: int, *, ef_search: int = HNSW_EF_SEARCH) -> IndexSpec:
    """Exact search below ``EXACT_BELOW`` templates, HNSW from there on."""
    if count < EXACT_BELOW:
        return IndexSpec("flat-ip")
    return IndexSpec("hnsw-flat-ip", HNSW_M, HNSW_EF_CONSTRUCTION, ef_search)


def unit64(probe: np.ndarray) -> np.ndarray:
    """The probe scaled to unit length in float64: the exact score is the float64
    product of it with the float32-stored templates."""
    normalised(probe)  # refuses a probe with no direction
    vector = np.asarray(probe, dtype=np.float64).reshape(-1)
    unit: np.ndarray = vector / np.linalg.norm(vector)
    return unit


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32 C-ordered (cosine = dot product);
    a zero or non-finite row is refused (it has no direction)."""
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] == 0:
        raise BadInputError(f"templates must be an N x d array, got {array.shape}")
    norms = np.linalg.norm(array, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if bad.size:
        raise BadInputError(
            f"template {int(bad[0])} has no direction (zero or not finite)"
        )
    return np.ascontiguousarray(array / norms[:, None], dtype=np.float32)


def _faiss(threads: int) -> Any:
    import faiss

    if threads < 1:
        raise BadInputError(f"threads must be at least 1, got {threads}")
    faiss.omp_set_num_threads(int(threads))
    return faiss


def build_index(templates: np.ndarray, spec: IndexSpec, *, threads: int = 1) -> Any:
    """The faiss index of unit-length float32 ``templates`` (N x d)."""
    faiss = _faiss(threads)
    dim = int(templates.shape[1])
    if spec.kind == "flat-ip":
        index = faiss.IndexFlatIP(dim)
    else:
        m, ef_construction, _ = spec.hnsw()
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
    index.add(np.ascontiguousarray(templates, dtype=np.float32))
    return index


def faiss_bytes(index: Any) -> bytes:
    """The index serialised as faiss writes it to a file."""
    import faiss

    return bytes(faiss.serialize_index(index).tobytes())


def write_index(index: Any, path: Path) -> None:
    path.write_bytes(faiss_bytes(index))


def read_index(path: Path, spec: IndexSpec, templates: np.ndarray) -> Any:
    """The stored index, checked against what the manifest says it holds and
    against the stored templates (``templates``, N x d)."""
    import faiss

    count, dim = int(templates.shape[0]), int(templates.shape[1])
    try:
        index = faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise BadInputError(f"not a faiss index ({first})", path) from None
    expected = "IndexFlatIP" if spec.kind == "flat-ip" else "IndexHNSWFlat"
    if type(index).__name__ != expected or index.ntotal != count or index.d != dim:
        raise BadInputError(
            f"the index is a {type(index).__name__} of {index.ntotal} x {index.d}; "
            f"the manifest says {expected} of {count} x {dim}",
            path,
        )
    # the index must hold exactly the stored templates: candidates come from it
    # alone, so an index of other vectors (rehashed) would hide the true match
    if count and not np.array_equal(index.reconstruct_n(0, count), templates):
        raise BadInputError(
            "the index does not hold the gallery's templates (templates.npy): the "
            "gallery cannot be used",
            path,
        )
    return index


def index_bytes(index: Any) -> int:
    """The size of the index as serialised (what it takes in memory, give or take
    faiss's bookkeeping)."""
    import faiss

    return int(faiss.serialize_index(index).nbytes)


@dataclass(frozen=True)
class Hit:
    row: int  # the template's row in templates.npy
    score: float  # exact cosine similarity to the probe
    rank: int  # 1 = most similar


def search(
    index: Any,
    templates: np.ndarray,
    probe: np.ndarray,
    k: int,
    spec: IndexSpec,
    *,
    threads: int = 1,
) -> list[Hit]:
    """The ``k`` most similar templates to ``probe``, exactly scored and ranked.

    ``templates``: the gallery's unit vectors (the index's rows, in order).
    """
    if k < 1:
        raise BadInputError(f"--top must be at least 1, got {k}")
    count = int(templates.shape[0])
    query = normalised(probe)
    if query.shape[1] != templates.shape[1]:
        raise BadInputError(
            f"the probe's embedding has {query.shape[1]} dimensions, the gallery's "
            f"templates {templates.shape[1]}"
        )
    k = min(k, count)
    wanted = min(count, spec.rerank_factor * k)
    faiss = _faiss(threads)
    if spec.kind == "flat-ip":
        _, ids = index.search(query, wanted)
    else:
        parameters = faiss.SearchParametersHNSW()
        parameters.efSearch = max(spec.hnsw()[2], wanted)
        _, ids = index.search(query, wanted, params=parameters)
    rows = np.unique(ids[0][ids[0] >= 0])  # -1: fewer found than asked
    exact = templates[rows].astype(np.float64) @ unit64(probe)
    order = np.lexsort((rows, -exact))[:k]  # score descending, then row
    return [
        Hit(int(rows[i]), float(exact[i]), rank)
        for rank, i in enumerate(order, start=1)
    ]


def exact_search(templates: np.ndarray, probe: np.ndarray, k: int) -> list[Hit]:
    """The reference: every template scored (float64), the same order rule."""
    exact = templates.astype(np.float64) @ unit64(probe)
    rows = np.arange(templates.shape[0])
    order = np.lexsort((rows, -exact))[: min(k, rows.size)]
    return [Hit(int(i), float(exact[i]), rank) for rank, i in enumerate(order, start=1)]
