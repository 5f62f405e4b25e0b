"""``xfr gallery build|search``: reference galleries outside any case (issue 22).

``gallery build`` embeds a folder of identities (``DIR/<identity>/<images>``) or
an ``identity,path`` CSV into a ``.xfrgallery`` folder (``core.gallery``);
``gallery search`` checks a gallery's files, embeds a probe image's largest face
with the gallery's model and lists the most similar templates - investigative
leads, never identifications (``core.wording.GALLERY_SEARCH_LEAD``).  Building the
parser imports nothing heavy: the handlers import the science they run.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

from core.cli.common import (
    EXIT_OK,
    add_card_option,
    add_device_option,
    add_trust_model_code,
    load_model,
)
from core.cli.evaluate import add_engine_options, engine_from_args, report_engine
from core.errors import BadInputError
from core.models.ids import DEFAULT_MODEL_ID

WIDTH = 79
SHOWN_FAILURES = 5


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False) if args.json else text)


def _wrapped(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def _check_threads(threads: int) -> None:
    if threads < 1:
        raise BadInputError(f"--threads must be at least 1, got {threads}")


def _check_writable(out: Path) -> None:
    """--out must be new, in a folder this process can write: found out before
    any image is embedded (one line naming --out)."""
    import tempfile

    if out.exists():
        raise BadInputError("already exists; a gallery is never overwritten", out)
    parent = out.absolute().parent
    if not parent.is_dir():
        raise BadInputError("--out: its folder does not exist", parent)
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise BadInputError(
            f"--out: cannot write in this folder ({error.strerror})", parent
        ) from None


def cmd_build(args: argparse.Namespace) -> int:
    from core.gallery.build import build_gallery, source_images

    _check_threads(args.threads)
    _check_writable(Path(args.out))  # before the embedding, not after it
    source_images(args.source)  # a bad source is refused before the model loads
    engine = engine_from_args(args, "embedding images")
    try:
        model = load_model(args.model, args.device, args.card, args.trust_model_code)
        result = build_gallery(
            args.source, model, args.out, threads=args.threads, engine=engine
        )
    finally:
        engine.close()
    report_engine(engine)
    from core.gallery.store import open_gallery

    gallery = open_gallery(result.path)  # read back: what was written is usable
    payload = {
        "gallery": gallery.summary(),
        "source": str(args.source),
        "templates": result.count,
        "identities": result.identities,
        "failures": result.failures,
        "seconds": result.seconds,
    }
    lines = [
        f"{result.path}: {result.count} templates of {result.identities} "
        f"identities from {args.source}",
        f"  model {model.model_id} (weights SHA-256 {model.weights_sha256})",
        *_wrapped(gallery.spec.text(), "  "),
        f"  gallery uuid {gallery.uuid}",
        f"  digest (SHA-256 of manifest.sha256) {gallery.digest}",
        f"  {len(result.failures)} image(s) gave no template"
        + (" (listed in manifest.json):" if result.failures else ""),
        *(f"    {f['file']}: {f['reason']}" for f in result.failures[:SHOWN_FAILURES]),
    ]
    if len(result.failures) > SHOWN_FAILURES:
        lines.append(f"    ... and {len(result.failures) - SHOWN_FAILURES} more")
    lines.append(f"  time {result.seconds:.1f} s")
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from core import wording
    from core.gallery.build import search_probe
    from core.gallery.store import open_gallery
    from core.resources import sha256_file

    if args.top < 1:
        raise BadInputError(f"--top must be at least 1, got {args.top}")
    _check_threads(args.threads)
    gallery = open_gallery(args.gallery)  # checked before the model loads
    model = load_model(
        args.model or gallery.model_id, args.device, args.card, args.trust_model_code
    )
    _, candidates = search_probe(
        gallery, args.probe, model, args.top, threads=args.threads
    )
    payload = {
        "gallery": gallery.summary(),
        "probe": {"file": str(args.probe), "sha256": sha256_file(args.probe)},
        "model": {"id": model.model_id, "weights_sha256": model.weights_sha256},
        "top": args.top,
        "candidates": [c.to_dict() for c in candidates],
        "note": wording.GALLERY_SEARCH_LEAD,
    }
    lines = [
        f"gallery {gallery.path}: {gallery.count} templates, uuid {gallery.uuid}",
        f"  digest (SHA-256 of manifest.sha256) {gallery.digest}",
        f"  model {gallery.model_id} (weights SHA-256 {gallery.weights_sha256})",
        *_wrapped(gallery.spec.text(), "  "),
        f"probe {args.probe} (SHA-256 {payload['probe']['sha256']})",
        f"{'rank':>4}  {'cosine':>7}  identity / file (image SHA-256)",
    ]
    for c in candidates:
        lines.append(
            f"{c.rank:>4}  {c.similarity:>7.4f}  {c.identity} / {c.file} "
            f"({c.image_sha256[:12]}...)"
        )
    lines += ["", *_wrapped(wording.GALLERY_SEARCH_LEAD)]
    _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def _model_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--model",
        default=default,
        help="model id or model file"
        + (f" (default: {default})" if default else " (default: the gallery's)"),
    )
    add_device_option(parser)
    add_card_option(parser)
    add_trust_model_code(parser)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="faiss threads (default 1; a build with 1 thread is reproducible)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``gallery`` and its ``build`` and ``search``."""
    gallery = commands.add_parser(
        "gallery",
        help="reference galleries outside a case: build one, search it (1:N)",
        description="Reference galleries of face templates kept outside any case "
        "(.xfrgallery folders): build one from images, search it with a probe.",
    )
    sub = gallery.add_subparsers(
        dest="gallery_command", required=True, metavar="COMMAND"
    )
    build = sub.add_parser(
        "build",
        help="embed a folder of identities or an identity,path CSV into a gallery",
        description="Detect, align and embed the largest face of every image of "
        "SOURCE - a folder DIR/<identity>/<images> or a CSV of identity,path lines "
        "(paths relative to the CSV) - and write a .xfrgallery folder: manifest "
        "(image hashes, model hash, index), templates, faiss index and checksums.  "
        "Images without a usable face are listed in the manifest, not fatal.",
    )
    build.add_argument("source", help="folder of identities, or CSV identity,path")
    build.add_argument("--out", required=True, help="the gallery to write (new)")
    _model_options(build, DEFAULT_MODEL_ID)
    add_engine_options(build, "default: none")
    build.set_defaults(run=cmd_build)

    search = sub.add_parser(
        "search",
        help="the templates most similar to a probe image (investigative leads)",
        description="Check the gallery's files against its checksums, embed the "
        "largest face of PROBE with the gallery's model (another model's weights "
        "are refused) and list the --top most similar templates, ranked by exact "
        "cosine similarity.  A result is an investigative lead, not an "
        "identification.",
    )
    search.add_argument("gallery", help="a .xfrgallery folder")
    search.add_argument("probe", help="the probe image file")
    search.add_argument("--top", type=int, default=50, help="candidates (default 50)")
    _model_options(search, None)
    search.set_defaults(run=cmd_search)
