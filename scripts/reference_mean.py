"""Compute the reference mean descriptor FGGB/xSSAB centre on (centre=reference).

    .venv/bin/python scripts/reference_mean.py \
        --data ../shared/data/lfw/train-identities \
        --out resources/reference-means/dlib-resnet-v1.json

``--data`` is a folder of identities (one sub-folder per person).  One image per
identity (the first by name that has a usable face) so that people with many
photos do not weigh more; identities must be disjoint from any data the maps are
evaluated on.  Only the mean vector and its provenance are written, no images.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of identities")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--model", default=None, help="model id (default: dlib)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--reference", default=None, help="name of the data set for the provenance"
    )
    args = parser.parse_args()

    from core.errors import BadInputError, plain_message
    from core.explain.reference_mean import (
        compute_reference_mean,
        save_reference_mean,
    )
    from core.models import DEFAULT_MODEL_ID, registry
    from core.verify import prepare_face

    try:
        model = registry().load(args.model or DEFAULT_MODEL_ID, args.device)
        data = Path(args.data)
        if not data.is_dir():
            raise BadInputError("not a folder of identities", data)
        identities = sorted(p for p in data.iterdir() if p.is_dir())
        if not identities:
            raise BadInputError("no identity folders inside", data)
        chips, skipped = [], 0
        for number, person in enumerate(identities, 1):
            images = sorted(
                p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            )
            for image in images:
                try:
                    chips.append(prepare_face(image, model).aligned.chip)
                    break
                except BadInputError:
                    skipped += 1
            if number % 50 == 0:
                print(f"{number}/{len(identities)} identities", file=sys.stderr)
        command = "python scripts/reference_mean.py " + shlex.join(sys.argv[1:])
        reference = compute_reference_mean(
            model,
            chips,
            {
                "data": args.reference or str(data),
                "data_folder": str(data),
                "identities": len(identities),
                "images_used": len(chips),
                "images_without_face_skipped": skipped,
                "selection": "first image by file name with a usable face, one "
                "per identity",
                "command": command,
            },
        )
        path = save_reference_mean(reference, args.out)
    except BadInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {plain_message(error)}", file=sys.stderr)
        return 2
    print(f"{path}: mean of {reference.images} descriptors ({reference.space})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
