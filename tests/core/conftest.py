"""Fixtures shared by the core tests (session-wide ones: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from core.case.store import Case
    from core.explain.base import FacePair
    from core.models import FaceModel
    from core.verify import PreparedFace


@pytest.fixture(scope="session")
def photo_pair(
    dlib_model: FaceModel, astronaut_path: Path, grace_hopper_path: Path
) -> tuple[PreparedFace, PreparedFace, FacePair]:
    """(probe, gallery, pair): the astronaut against Grace Hopper, detected and
    aligned once for the run.

    With the 68 landmarks, as a case's faces have them (``components`` needs
    them).  Tests read it and never change it: a test that needs a changed face
    makes its own copy (``dataclasses.replace``).
    """
    from core.explain.base import FacePair
    from core.verify import prepare_face

    probe = prepare_face(astronaut_path, dlib_model, with_68=True)
    gallery = prepare_face(grace_hopper_path, dlib_model, with_68=True)
    return probe, gallery, FacePair.from_prepared(probe, gallery)


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, dlib_model: FaceModel
) -> Iterator[Case]:
    """The demo case (Q1 against K1, K2), open for writing.

    Module scope: the tests of one file share one case and may add to it (a
    comparison, an explanation), so each file gets its own, never another file's.
    """
    from core.case.demo import create_demo_case

    folder = tmp_path_factory.mktemp("demo") / "demo.xfrcase"
    with create_demo_case(folder, model=dlib_model) as case:
        yield case
