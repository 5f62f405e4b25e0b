"""The image quality of each face the report's comparisons use (issue 20 item 3):
the figures ``core.quality`` measures, gathered for the per-image analysis.

The embedding length is the model's own output for a face, so it is left out for
a face while any of its selected comparisons is masked (sequential unmasking):
the examiner must not meet the model's view of the face before the unmasking.
The other measures read only the image and the landmarks the examiner checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.case.records import CaseFace, Comparison
from core.case.store import Case
from core.case.workflow import face_quality
from core.errors import BadInputError
from core.models.base import FaceModel
from core.quality import FaceQuality, QualityValue
from core.quality.utility import EMBEDDING_NORM

# the measure a masked face does not show
MODEL_OUTPUT_MEASURES = frozenset({EMBEDDING_NORM.id})


@dataclass(frozen=True)
class FaceQualityContent:
    """One face's quality as the report prints it (``quality`` None: ``problem``
    says in one line why it could not be measured)."""

    face: CaseFace
    quality: FaceQuality | None
    problem: str = ""
    masked: bool = False  # a selected comparison with it is masked

    @property
    def values(self) -> tuple[QualityValue, ...]:
        """The figures printed: the model's outputs left out while masked."""
        if self.quality is None:
            return ()
        return tuple(
            v
            for v in self.quality.values
            if not (self.masked and v.measure in MODEL_OUTPUT_MEASURES)
        )


def gather_quality(
    case: Case,
    comparisons: Sequence[Comparison],
    model: FaceModel | None,
) -> tuple[FaceQualityContent, ...]:
    """Each current face of ``comparisons`` once, questioned faces first; a face
    replaced since its comparison is described by its current record's analysis
    only, so it gets no figures here (its figures would not be the compared face's).
    """
    exam = case.examination()
    masked = {
        face_id
        for comparison in comparisons
        if exam.masked_comparison(comparison)
        for face_id in (comparison.probe_face_id, comparison.gallery_face_id)
    }
    order = [c.probe_face_id for c in comparisons]
    order += [c.gallery_face_id for c in comparisons]
    current = {face.id for face in case.faces()}
    ordered = [case.face_by_id(i) for i in dict.fromkeys(order) if i in current]
    found = []
    for face in ordered:
        hidden = face.id in masked
        try:
            # a masked face is measured without the model: its output is not read
            quality = face_quality(case, face.label, None if hidden else model)
        except BadInputError as error:
            found.append(FaceQualityContent(face, None, str(error), hidden))
            continue
        found.append(FaceQualityContent(face, quality, "", hidden))
    return tuple(found)
