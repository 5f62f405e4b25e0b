"""A case face searched against a reference gallery, and a candidate pulled into
the case as an investigative lead (issue 22, item 4, the case side): the search
and the pull are recorded and bound to the audit chain, verify names an edited or
deleted record, another model's gallery, a changed image and a read-only case are
refused with nothing changed, and every place the lead's scores appear says it is
a lead.  The real dlib model on a gallery of four shipped-image variants."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from core import wording
from core.case import workflow
from core.case.acev import Analysis
from core.case.schema import SCHEMA_VERSION
from core.case.store import Case, CaseError
from core.cli import EXIT_BAD_INPUT, EXIT_OK, main
from core.errors import BadInputError
from core.gallery.build import build_gallery
from core.gallery.store import open_gallery
from tests.gallery_people import write_people


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def identities(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> Path:
    return write_people(
        tmp_path_factory.mktemp("identities"), astronaut_rgb, grace_hopper_path
    )


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, identities, dlib_model) -> Path:
    out = tmp_path_factory.mktemp("galleries") / "people.xfrgallery"
    build_gallery(identities, dlib_model, out)
    return out


@pytest.fixture
def probe_image(tmp_path, astronaut_rgb) -> Path:
    """Another photo of 'collins': darker, with noise."""
    rng = np.random.default_rng(1)
    darker = astronaut_rgb.astype(float) * 0.8 + rng.normal(0, 6, astronaut_rgb.shape)
    path = tmp_path / "probe.png"
    Image.fromarray(np.clip(darker, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def case(tmp_path, probe_image) -> Case:
    opened = Case.create(
        tmp_path / "case", "2026-22", "A. Examiner", sequential_unmasking=False
    )
    opened.add_exhibits([probe_image], "probe")
    workflow.detect_faces(opened, "Q1")
    yield opened
    opened.close()


@pytest.fixture
def searched(case, gallery, dlib_model):
    return workflow.search_gallery(
        case, "Q1", gallery, 3, dlib_model, examination=case.examination()
    )


def tamper(folder: Path, sql: str, *params) -> None:
    db = sqlite3.connect(folder / "case.sqlite")
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def problems_of(folder: Path) -> list[str]:
    with Case.open(folder, read_only=True) as case:
        return list(case.verify().problems)


# ---- searching ------------------------------------------------------------------
def test_a_search_records_the_gallery_model_and_exact_ranked_scores(
    case, gallery, searched, dlib_model
):
    opened = open_gallery(gallery)
    assert searched.name == "S1" and searched.probe_label == "Q1"
    assert searched.gallery_uuid == opened.uuid
    assert (
        searched.gallery_digest == opened.digest == sha256(gallery / "manifest.sha256")
    )
    assert searched.gallery_size == 4 and searched.k == 3
    assert searched.model_sha256 == dlib_model.weights_sha256
    assert searched.index_spec["kind"] == "flat-ip" and searched.exact
    assert searched.probe_exhibit_sha256 == case.exhibit("Q1").sha256
    # the template searched is the case's cached embedding of Q1, hashed
    face = case.face("Q1")
    (vector,) = case.cached_embeddings([face.id], dlib_model.weights_sha256).values()
    vector = np.asarray(vector, "<f4")
    assert (
        searched.probe_template_sha256 == hashlib.sha256(vector.tobytes()).hexdigest()
    )
    # ranked by the exact cosine of the stored templates, collins first
    ranks = [c.rank for c in searched.candidates]
    assert ranks == [1, 2, 3]
    unit = vector.astype(np.float64) / np.linalg.norm(vector.astype(np.float64))
    for c in searched.candidates:
        assert c.similarity == pytest.approx(
            float(opened.templates[c.row].astype(np.float64) @ unit), abs=1e-12
        )
        entry = opened.entries[c.row]
        assert (c.identity, c.file, c.image_sha256) == (
            entry.identity,
            entry.file,
            entry.image_sha256,
        )
    assert [c.identity for c in searched.candidates[:2]] == ["collins", "collins"]
    sims = [c.similarity for c in searched.candidates]
    assert sims == sorted(sims, reverse=True)
    entry = case.audit_log()[-1]
    assert entry.action == "gallery.search"
    assert entry.details["gallery_digest"] == opened.digest
    assert entry.details["top"] == {
        k: getattr(searched.candidates[0], k) for k in ("rank", "identity", "file")
    }
    assert case.verify().intact


def test_another_models_gallery_is_refused_and_nothing_is_recorded(case, gallery):
    head = case.head()
    other = SimpleNamespace(model_id="other", weights_sha256="b" * 64)
    with pytest.raises(BadInputError, match="cannot be compared"):
        workflow.search_gallery(
            case, "Q1", gallery, 3, other, examination=case.examination()
        )
    assert (
        case.head() == head
        and case.gallery_searches.searches(examination=case.examination()) == []
    )


def test_a_changed_gallery_is_refused(case, gallery, dlib_model, tmp_path):
    copy = tmp_path / "copy.xfrgallery"
    shutil.copytree(gallery, copy)
    data = json.loads((copy / "manifest.json").read_text())
    data["templates"][0]["identity"] = "someone else"
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BadInputError, match="changed since the gallery was made"):
        workflow.search_gallery(
            case, "Q1", copy, 3, dlib_model, examination=case.examination()
        )
    assert case.gallery_searches.searches(examination=case.examination()) == []


# ---- pulling a candidate in -----------------------------------------------------
def test_pulling_rank_1_imports_a_known_exhibit_with_its_provenance(
    case, searched, identities
):
    top = searched.candidate(1)
    exhibit = workflow.pull_candidate(case, searched.name, 1)
    assert exhibit.mark == "K1" and exhibit.role == "gallery"
    assert exhibit.sha256 == top.image_sha256
    assert exhibit.original_name == Path(top.file).name
    assert "investigative lead" in exhibit.note and "S1" in exhibit.note
    assert case.faces("K1"), "its face is found as at intake"
    lead = case.gallery_searches.lead("K1", examination=case.examination())
    assert lead is not None and lead.candidate == top
    assert lead.search.gallery_uuid == searched.gallery_uuid
    assert Path(lead.image_path) == identities / top.file
    entry = case.audit_log()[-2]  # the pull; then faces.detect
    assert entry.action == "exhibits.pull_candidate"
    assert entry.details["search"] == "S1" and entry.details["rank"] == 1
    assert entry.details["gallery_digest"] == searched.gallery_digest
    assert "cosine_similarity" not in entry.details  # in the bound row (masking)
    note = workflow.lead_note(case, "K1", examination=case.examination())
    assert note == wording.gallery_lead_note(
        "K1",
        1,
        "S1",
        "Q1",
        searched.gallery_uuid,
        4,
        top.similarity,
        gallery_digest=searched.short_digest,
    )
    assert workflow.lead_notes(
        case, ["Q1", "K1", "K1#1"], examination=case.examination()
    ) == {"K1": note}
    assert f"digest {searched.gallery_digest[:12]}, 4 templates" in note
    assert "between Q1's template and the gallery's template" in note
    assert workflow.lead_note(case, "Q1", examination=case.examination()) is None
    assert case.verify().intact
    # the same candidate twice is refused
    with pytest.raises(BadInputError, match="already in the case as K1"):
        workflow.pull_candidate(case, "S1", 1)


def test_a_changed_or_missing_image_is_one_line_and_nothing_changes(
    case, searched, tmp_path, grace_hopper_path
):
    head = case.head()
    evidence = sorted(p.name for p in (case.folder / "evidence").iterdir())
    wrong = tmp_path / "wrong.jpg"
    shutil.copy(grace_hopper_path, wrong)
    with pytest.raises(BadInputError) as error:
        workflow.pull_candidate(case, "S1", 1, image=wrong)
    assert "nothing was added" in str(error.value) and "\n" not in str(error.value)
    assert "wrong.jpg" in str(error.value)
    with pytest.raises(BadInputError, match="no such image file"):
        workflow.pull_candidate(case, "S1", 1, image=tmp_path / "gone.png")
    with pytest.raises(BadInputError, match="no candidate of rank 9"):
        workflow.pull_candidate(case, "S1", 9)
    with pytest.raises(BadInputError, match="no search S7"):
        workflow.pull_candidate(case, "S7", 1)
    with pytest.raises(BadInputError, match="marked K1"):
        workflow.pull_candidate(case, "S1", 1, mark="Q5")
    assert case.head() == head
    assert [e.mark for e in case.exhibits()] == ["Q1"]
    assert sorted(p.name for p in (case.folder / "evidence").iterdir()) == evidence


def test_a_read_only_case_is_refused(case, searched, gallery, dlib_model):
    folder = case.folder
    case.close()
    with Case.open(folder, read_only=True) as readonly:
        assert [
            s.name
            for s in readonly.gallery_searches.searches(
                examination=readonly.examination()
            )
        ] == ["S1"]
        with pytest.raises(CaseError, match="read-only"):
            workflow.search_gallery(
                readonly,
                "Q1",
                gallery,
                3,
                dlib_model,
                examination=readonly.examination(),
            )
        with pytest.raises(CaseError, match="read-only"):
            workflow.pull_candidate(readonly, "S1", 1)


# ---- verify ---------------------------------------------------------------------
def test_verify_names_an_edited_search_row(case, searched):
    folder = case.folder
    case.close()
    tamper(
        folder,
        "UPDATE gallery_searches SET candidates = replace(candidates, "
        "'\"rank\": 1', '\"rank\": 0') WHERE id = 1",
    )
    problems = problems_of(folder)
    assert any(
        "gallery_searches row 1" in p and "S1 of Q1" in p and "changed" in p
        for p in problems
    ), problems


def test_verify_names_a_deleted_search_and_lead(case, searched):
    workflow.pull_candidate(case, "S1", 1)
    folder = case.folder
    case.close()
    tamper(folder, "DELETE FROM gallery_leads")  # SQLite's foreign keys are off
    tamper(folder, "DELETE FROM gallery_searches")
    problems = problems_of(folder)
    assert any("gallery_leads row" in p and "is gone" in p for p in problems), problems
    assert any("gallery_searches row 1" in p and "is gone" in p for p in problems)


def test_an_edited_score_is_not_shown_as_recorded(case, searched):
    workflow.pull_candidate(case, "S1", 1)
    folder = case.folder
    case.close()
    tamper(folder, "UPDATE gallery_leads SET rank = 2")
    assert any("gallery_leads row" in p for p in problems_of(folder))
    with Case.open(folder) as opened, pytest.raises(CaseError, match="altered"):
        opened.gallery_searches.lead("K1", examination=opened.examination())


# ---- an older case --------------------------------------------------------------
def test_a_schema_5_case_reads_as_having_no_searches_and_migrates(
    tmp_path, probe_image, gallery, dlib_model
):
    assert SCHEMA_VERSION == 6
    with Case.create(tmp_path / "old", "2026-5", "A. Examiner") as made:
        made.add_exhibits([probe_image], "probe")
        folder = made.folder
    db = sqlite3.connect(folder / "case.sqlite")
    try:
        db.execute("DROP TABLE gallery_leads")
        db.execute("DROP TABLE gallery_searches")
        db.execute("PRAGMA user_version = 5")
        db.commit()
    finally:
        db.close()
    with Case.open(folder, read_only=True) as old:
        assert old.gallery_searches.searches(examination=old.examination()) == []
        assert old.gallery_searches.leads(examination=old.examination()) == []
        assert old.gallery_searches.lead("Q1", examination=old.examination()) is None
        assert workflow.lead_note(old, "Q1", examination=old.examination()) is None
        assert old.verify().intact
    with Case.open(folder) as migrated:
        entry = migrated.audit_log()[-1]
        assert entry.action == "case.migrate"
        assert (entry.details["from_schema"], entry.details["to_schema"]) == (5, 6)
        assert "reference galleries" in entry.details["note"]
        assert "processed" not in entry.details["note"]  # it had that table
        workflow.detect_faces(migrated, "Q1")
        workflow.search_gallery(
            migrated, "Q1", gallery, 2, dlib_model, examination=migrated.examination()
        )
        assert migrated.verify().intact


# ---- the report -----------------------------------------------------------------
def pdf_text(path: Path) -> str:
    done = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, check=True
    )
    return " ".join(done.stdout.decode().split())


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")
def test_the_report_discloses_the_lead_and_lists_the_search(
    case, searched, dlib_model, tmp_path
):
    from core.report.api import generate_report, read_manifest
    from core.report.content import ReportRequest

    workflow.pull_candidate(case, "S1", 1)
    workflow.rank_gallery(case, "Q1", dlib_model)
    out = tmp_path / "report.pdf"
    generate_report(case, out, ReportRequest(model=dlib_model))
    (lead,) = read_manifest(out)["investigative_leads"]
    assert (lead["mark"], lead["search"], lead["rank"]) == ("K1", "S1", 1)
    assert lead["gallery_digest"] == searched.gallery_digest
    text = pdf_text(out)
    assert "K1 is an investigative lead, not an identification" in text
    assert wording.GALLERY_SEARCHES_HEADING in text
    assert searched.gallery_uuid in text and searched.gallery_digest in text
    top = searched.candidate(1)
    assert f"{top.similarity:.4f}" in text
    assert "1:N search S1" in text


# ---- the command line -----------------------------------------------------------
def test_cli_search_and_pull(case, gallery, capsys):
    folder = case.folder
    case.close()
    argv = ["case", "gallery-search", str(folder), "--probe", "Q1", "--face", "0"]
    assert main([*argv, "--gallery", str(gallery), "--top", "2", "--json"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["search"] == "S1" and len(payload["candidates"]) == 2
    assert payload["note"] == wording.GALLERY_SEARCH_LEAD
    assert main(["case", "pull-candidate", str(folder), "--search", "S1", "--rank",
                 "1", "--as", "K7"]) == EXIT_OK  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("K7: candidate 1 of S1") and "investigative lead" in out
    assert main(["case", "info", str(folder)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "(lead: S1 rank 1)" in out and "search S1: Q1 against gallery" in out
    assert main(["case", "compare", str(folder), "--probe", "Q1"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "note: K7 is an investigative lead" in out
    assert main(["case", "verify", str(folder)]) == EXIT_OK


def test_cli_failures_are_one_line(case, gallery, capsys, tmp_path):
    folder = case.folder
    case.close()
    code = main(["case", "pull-candidate", str(folder), "--search", "S1", "--rank",
                 "1"])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert "no search S1" in err and len(err.splitlines()) == 1
    code = main(["case", "gallery-search", str(folder), "--probe", "Q1",
                 "--gallery", str(tmp_path / "none")])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert "no such gallery" in err and len(err.splitlines()) == 1


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")
def test_a_masked_pair_shows_the_lead_without_the_search_score(
    tmp_path, probe_image, gallery, dlib_model
):
    """Sequential unmasking on: the pair Q1 / K1 is masked, so neither its score
    nor the search's score of K1 is printed; that K1 is a lead still is."""
    from core.report.api import generate_report
    from core.report.content import ReportRequest

    with Case.create(tmp_path / "masked", "2026-22", "A. Examiner") as masked:
        masked.add_exhibits([probe_image], "probe")
        workflow.detect_faces(masked, "Q1")
        searched = workflow.search_gallery(
            masked, "Q1", gallery, 3, dlib_model, examination=masked.examination()
        )
        workflow.pull_candidate(masked, "S1", 1)
        workflow.rank_gallery(masked, "Q1", dlib_model)
        assert masked.examination().masked("Q1", "K1")
        out = tmp_path / "masked.pdf"
        generate_report(masked, out, ReportRequest(model=dlib_model))
    text = pdf_text(out)
    unscored = wording.gallery_lead_note(
        "K1",
        1,
        "S1",
        "Q1",
        searched.gallery_uuid,
        4,
        None,
        gallery_digest=searched.short_digest,
    )
    assert unscored in text
    assert f"{searched.candidate(1).similarity:.4f}" not in text
    assert wording.GALLERY_SEARCHES_HEADING in text


def test_a_candidate_is_looked_for_where_the_gallery_source_had_it(tmp_path):
    folder, csv = tmp_path / "people", tmp_path / "lists" / "people.csv"
    folder.mkdir()
    csv.parent.mkdir()
    csv.write_text("identity,path\n")
    candidate = SimpleNamespace(file="collins/a.png")
    by_folder = SimpleNamespace(gallery_source=str(folder), gallery_path="")
    by_csv = SimpleNamespace(gallery_source=str(csv), gallery_path="")
    assert workflow.candidate_image_path(by_folder, candidate) == (
        folder / "collins" / "a.png"
    )
    assert workflow.candidate_image_path(by_csv, candidate) == (
        csv.parent / "collins" / "a.png"
    )
    absolute = SimpleNamespace(file=str(tmp_path / "x.png"))
    assert workflow.candidate_image_path(by_csv, absolute) == tmp_path / "x.png"
    # a source given as a relative path, searched from elsewhere: found beside
    # the gallery
    (folder / "collins").mkdir()
    (folder / "collins" / "a.png").write_bytes(b"x")
    relative = SimpleNamespace(
        gallery_source="people", gallery_path=str(tmp_path / "g.xfrgallery")
    )
    assert workflow.candidate_image_path(relative, candidate) == (
        folder / "collins" / "a.png"
    )


def test_searches_and_leads_survive_export_and_import(case, searched, tmp_path):
    from core.case.archive import export_case, import_case

    workflow.pull_candidate(case, "S1", 1)
    folder = case.folder
    case.close()
    with Case.open(folder, read_only=True) as before:
        searches = [
            s.to_dict()
            for s in before.gallery_searches.searches(examination=before.examination())
        ]
        leads = [
            lead.to_dict()
            for lead in before.gallery_searches.leads(examination=before.examination())
        ]
    export_case(folder, tmp_path / "case.zip")
    result = import_case(tmp_path / "case.zip", tmp_path / "imported")
    assert result.warnings == ()
    with Case.open(tmp_path / "imported", read_only=True) as after:
        assert after.verify().intact
        assert [
            s.to_dict()
            for s in after.gallery_searches.searches(examination=after.examination())
        ] == searches
        assert [
            lead.to_dict()
            for lead in after.gallery_searches.leads(examination=after.examination())
        ] == leads
        assert (
            workflow.lead_note(after, "K1", examination=after.examination()) is not None
        )


# ---- sequential unmasking, the template check, caps (the review of issue 22) ------
SUITABLE = Analysis("suitable", visible=("eyes", "nose"), not_visible=("ears",))


@pytest.fixture
def masked_case(tmp_path, probe_image) -> Case:
    """Sequential unmasking on (the default for a new case)."""
    opened = Case.create(tmp_path / "masked", "2026-22", "A. Examiner")
    opened.add_exhibits([probe_image], "probe")
    workflow.detect_faces(opened, "Q1")
    yield opened
    opened.close()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_while_masked_no_output_shows_a_search_score_until_the_pair_is_unmasked(
    masked_case, gallery, capsys
):
    folder = masked_case.folder
    masked_case.close()
    argv = ["case", "gallery-search", str(folder), "--probe", "Q1", "--gallery",
            str(gallery), "--top", "3"]  # fmt: skip
    assert main(argv) == EXIT_OK
    text = capsys.readouterr().out
    assert main([*argv, "--json"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    with Case.open(folder, read_only=True) as case:
        stored = [
            json.loads(r["candidates"])
            for r in case._db.execute("SELECT candidates FROM gallery_searches")
        ]
    scores = [f"{c['cosine_similarity']:.4f}" for c in stored[0]]
    # the search: ranks, identities and files; no score (kept in the record)
    assert "collins / collins/a.png" in text or "collins / collins/b.jpg" in text
    assert not any(score in text for score in scores), text
    assert wording.GALLERY_SCORES_MASKED in flat(text)
    assert [c["cosine_similarity"] for c in payload["candidates"]] == [None] * 3
    assert payload["scores_hidden"] == [1, 2, 3]
    assert payload["scores_note"] == wording.GALLERY_SCORES_MASKED
    assert "template" not in payload["candidates"][0]  # the vector: by its hash
    # pulling rank 3, never compared: its score is not shown either
    pull = ["case", "pull-candidate", str(folder), "--search", "S1", "--rank", "3"]
    assert main(pull) == EXIT_OK
    text = capsys.readouterr().out
    assert not any(score in text for score in scores), text
    assert "the examiner knew its rank in that search" in flat(text)
    assert main(["case", "info", str(folder), "--json"]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    (lead,) = [e["investigative_lead"] for e in info["exhibits"] if e["mark"] == "K1"]
    assert lead["cosine_similarity"] is None and lead["rank"] == 3
    assert not any(score in json.dumps(info) for score in scores)
    with Case.open(folder) as case:
        note = workflow.lead_note(case, "K1", examination=case.examination())
        assert note is not None and not any(score in note for score in scores)
        assert workflow.lead_notes(case, ["K1"], examination=case.examination()) == {
            "K1": note
        }
        assert (
            case.gallery_searches.lead("K1", examination=case.examination()).score
            is None
        )
        # the pair's unmasking shows its search score, and only its
        exam = case.examination()
        exam.record_analysis("Q1", SUITABLE)
        exam.record_evaluation("Q1", "K1", "moderate_same")
        exam.unmask("Q1", "K1")
        search = case.gallery_searches.search("S1", examination=case.examination())
        assert search.score(3) == stored[0][2]["cosine_similarity"]
        assert search.score(1) is None and search.score(2) is None
        assert scores[2] in workflow.lead_note(
            case, "K1", examination=case.examination()
        )
        assert (
            case.gallery_searches.lead("K1", examination=case.examination()).to_dict()[
                "cosine_similarity"
            ]
            == (stored[0][2]["cosine_similarity"])
        )
        # a later search of the same probe is masked as a whole again
        assert (
            case.gallery_searches.search(
                "S2", examination=case.examination()
            ).shown_ranks
            == frozenset()
        )


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")
def test_a_masked_report_prints_no_score_of_a_pulled_pair_never_compared(
    masked_case, gallery, dlib_model, tmp_path
):
    from core.report.api import generate_report
    from core.report.content import ReportRequest

    searched = workflow.search_gallery(
        masked_case, "Q1", gallery, 3, dlib_model, examination=masked_case.examination()
    )
    workflow.pull_candidate(masked_case, "S1", 3, model=dlib_model)
    assert not masked_case.comparisons()
    out = tmp_path / "masked.pdf"
    generate_report(masked_case, out, ReportRequest(model=dlib_model))
    text = pdf_text(out)
    assert not [c.rank for c in searched.candidates if f"{c.similarity:.4f}" in text]
    assert all(c.file in text for c in searched.candidates)  # the full ranked list
    assert flat(wording.GALLERY_SCORES_MASKED) in text
    assert "the examiner knew its rank in that search" in text


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")
def test_the_report_lists_every_candidate_the_scale_and_a_processed_probe(
    case, gallery, dlib_model, tmp_path
):
    from core.processing import make_step
    from core.report.api import generate_report
    from core.report.content import ReportRequest

    workflow.derive_exhibit(
        case, "Q1", [make_step("levels", {"black": 12, "white": 240, "gamma": 1.3})]
    )
    searched = workflow.search_gallery(
        case, "Q1.1", gallery, 4, dlib_model, examination=case.examination()
    )
    workflow.pull_candidate(case, searched.name, 4, model=dlib_model)
    out = tmp_path / "report.pdf"
    generate_report(case, out, ReportRequest(model=dlib_model))
    text = pdf_text(out)
    for c in searched.candidates:  # unmasked: every rank with its score
        assert f"{c.similarity:.4f}" in text and c.file in text
    # the scale: dlib's distance 0.6 as a cosine of unit vectors, 1 - 0.36 / 2,
    # and of two embeddings of the probe's raw length r (dlib's are ~1.4 long)
    assert "cosine similarity of 0.8200" in text
    r = searched.threshold["probe_embedding_norm"]
    assert r == pytest.approx(np.linalg.norm(case.cached_embeddings(
        [case.face("Q1.1").id], dlib_model.weights_sha256).popitem()[1]))  # fmt: skip
    assert abs(r - 1) > 0.1 and f"= {1 - 0.36 / (2 * r * r):.4f}" in text
    assert "different people commonly score above that threshold" in text
    assert flat(workflow.derived_note(case, "Q1.1")) in text
    assert f"digest {searched.gallery_digest[:12]}" in text


def test_a_rewritten_manifest_cannot_attach_another_face_to_a_template(
    case, gallery, dlib_model, tmp_path, grace_hopper_path
):
    """The manifest says collins/b.jpg is another image (checksums made
    consistent): the SHA-256 check passes, the template check refuses."""
    other = tmp_path / "other.png"
    hopper = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    Image.fromarray(hopper[:, ::-1]).save(other)
    forged = tmp_path / "forged.xfrgallery"
    shutil.copytree(gallery, forged)
    manifest = json.loads((forged / "manifest.json").read_text())
    for entry in manifest["templates"]:
        if entry["file"] == "collins/b.jpg":
            entry["image_sha256"] = sha256(other)
    (forged / "manifest.json").write_text(json.dumps(manifest))
    lines = (forged / "manifest.sha256").read_text().splitlines()
    (forged / "manifest.sha256").write_text(
        "".join(
            f"{sha256(forged / 'manifest.json')}  manifest.json\n"
            if line.endswith("  manifest.json")
            else line + "\n"
            for line in lines
        )
    )
    found = workflow.search_gallery(
        case, "Q1", forged, 4, dlib_model, examination=case.examination()
    )
    (rank,) = [c.rank for c in found.candidates if c.file == "collins/b.jpg"]
    head = case.head()
    with pytest.raises(BadInputError) as error:
        workflow.pull_candidate(case, found.name, rank, image=other, model=dlib_model)
    message = str(error.value)
    assert "not the face that was searched; nothing was added" in message
    assert "other.png" in message and "\n" not in message
    assert case.head() == head and [e.mark for e in case.exhibits()] == ["Q1"]
    # the genuine image of another rank reproduces its template (measured: 1 to
    # float32 rounding), and the lead's row keeps the figure
    workflow.pull_candidate(case, found.name, 1, model=dlib_model)
    lead = case.gallery_searches.lead("K1", examination=case.examination())
    assert lead.template_cosine == pytest.approx(1.0, abs=1e-6)
    assert lead.template_cosine >= workflow.TEMPLATE_REPRODUCTION
    assert lead.to_dict()["template_reproduction_cosine"] == lead.template_cosine
    assert case.verify().intact
    # another model's weights cannot check it
    other_model = SimpleNamespace(model_id="other", weights_sha256="b" * 64)
    with pytest.raises(BadInputError, match="is not the model of search"):
        workflow.pull_candidate(case, found.name, 2, model=other_model)


def test_a_stored_template_is_checked_against_its_hash(searched):
    candidate = searched.candidate(1)
    assert candidate.vector().dtype == np.dtype("<f4")
    broken = dataclasses.replace(candidate, template_sha256="0" * 64)
    with pytest.raises(BadInputError, match="does not match its SHA-256"):
        broken.vector()


def test_top_is_capped_at_the_gallery_size_and_at_the_most_a_search_lists(
    case, gallery, dlib_model, capsys, monkeypatch
):
    from core.processing import make_step

    workflow.derive_exhibit(case, "Q1", [make_step("levels", {"gamma": 1.2})])
    derived = workflow.derived_note(case, "Q1.1")
    folder = case.folder
    case.close()
    argv = ["case", "gallery-search", str(folder), "--probe", "Q1.1", "--gallery",
            str(gallery), "--top", "99999999999999999999"]  # fmt: skip
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert "--top 999999999999... capped at 4 (the gallery has 4 templates)" in out
    # a processed probe says so; unmasked, the scores and what they mean
    assert f"probe: {flat(derived)}" in flat(out)
    assert "What a search cosine means" in out and "masked" not in out
    monkeypatch.setattr(workflow, "MAX_TOP", 2)
    with Case.open(folder) as reopened:
        (first,) = reopened.gallery_searches.searches(
            examination=reopened.examination()
        )
        assert first.k == 4 and len(first.candidates) == 4
        assert all(first.score(c.rank) == c.similarity for c in first.candidates)
        assert f"{first.candidates[0].similarity:.4f}" in out
        capped = workflow.search_gallery(
            reopened, "Q1", gallery, 3, dlib_model, examination=reopened.examination()
        )
        assert capped.k == 2 and len(capped.candidates) == 2
        assert workflow.gallery_top_note(3, capped) == (
            "--top 3 capped at 2 (a search lists at most 2)"
        )
        assert workflow.gallery_top_note(2, capped) is None


# ---- the second review of issue 22 (R2-1 .. R2-4) -----------------------------------
@pytest.fixture
def two_face_probe(tmp_path, astronaut_rgb, grace_hopper_path) -> Path:
    """The astronaut and Grace Hopper side by side: a probe with faces Q1, Q1#1."""
    hopper = Image.open(grace_hopper_path).convert("RGB").resize((512, 512))
    path = tmp_path / "two.png"
    Image.fromarray(np.concatenate([astronaut_rgb, np.asarray(hopper)], 1)).save(path)
    return path


def test_a_blind_verifier_never_sees_a_score_only_the_examiner_unmasked(
    tmp_path, two_face_probe, gallery, dlib_model, capsys
):
    """R2-1: alice unmasks Q1 / K1; bob, blind, works on Q1#1 / K1 only: his
    explanation's lead note, and every reading of S1 with his examination, has
    no S1 score (it used to come from the examiner's unmaskings)."""
    with Case.create(tmp_path / "blind", "2026-22", "alice") as case:
        case.add_exhibits([two_face_probe], "probe")
        workflow.detect_faces(case, "Q1")
        assert {"Q1", "Q1#1"} <= {f.label for f in case.faces("Q1")}
        searched = workflow.search_gallery(
            case, "Q1", gallery, 3, dlib_model, examination=case.examination()
        )
        workflow.pull_candidate(case, "S1", 1, model=dlib_model)
        alice = case.examination()
        alice.record_analysis("Q1", SUITABLE)
        alice.record_evaluation("Q1", "K1", "moderate_same")
        alice.unmask("Q1", "K1")
        score = f"{searched.candidate(1).similarity:.4f}"
        assert score in workflow.lead_note(case, "K1", examination=alice)
        case.user = "bob"
        bob = case.examination(blind=True)
        bob.start_blind_session()
        bob.record_analysis("Q1#1", SUITABLE)
        bob.record_evaluation("Q1#1", "K1", "moderate_different")
        bob.unmask("Q1#1", "K1")
        assert case.gallery_searches.search("S1", examination=bob).shown_ranks == (
            frozenset()
        )
        assert case.gallery_searches.lead("K1", examination=bob).score is None
        assert score not in workflow.lead_note(case, "K1", examination=bob)
        folder = case.folder
    argv = ["case", "explain", str(folder), "--probe", "Q1#1", "--gallery", "K1",
            "--method", "gradient"]  # fmt: skip
    assert main([*argv, "--blind", "--user", "bob"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "note: K1 is an investigative lead" in out
    assert score not in out.split("note:", 1)[1], out
    assert main([*argv, "--blind", "--user", "bob", "--json"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["investigative_leads"]["K1"] == wording.gallery_lead_note(
        "K1", 1, "S1", "Q1", searched.gallery_uuid, 4, None,
        gallery_digest=searched.short_digest,
    )  # fmt: skip
    # the examiner's own session still shows what she unmasked
    assert main(["case", "gallery-search", str(folder), "--probe", "Q1",
                 "--gallery", str(gallery), "--top", "3", "--blind", "--user",
                 "bob", "--json"]) == EXIT_OK  # fmt: skip
    assert json.loads(capsys.readouterr().out)["scores_hidden"] == [1, 2, 3]


def test_a_search_of_a_face_record_since_replaced_says_so_and_stays_masked(
    masked_case, gallery, dlib_model, capsys
):
    """R2-2: S1 was of Q1's first face record; Q1 is then corrected and the
    pair unmasked with the new record: S1's scores are of a record never
    unmasked (hidden), and every note says the search was of a record of Q1
    since replaced."""
    case = masked_case
    first = case.face("Q1")
    searched = workflow.search_gallery(
        case, "Q1", gallery, 3, dlib_model, examination=case.examination()
    )
    assert searched.probe_face_id == first.id and searched.probe_current
    workflow.pull_candidate(case, "S1", 1, model=dlib_model)
    left, top, right, bottom = first.bbox
    workflow.place_face_in_box(case, "Q1", (left - 6, top - 6, right + 6, bottom + 6))
    assert case.face("Q1").id != first.id
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "moderate_same")
    exam.unmask("Q1", "K1")
    assert not exam.masked("Q1", "K1")  # the current records are unmasked
    again = case.gallery_searches.search("S1", examination=exam)
    assert not again.probe_current and again.shown_ranks == frozenset()
    assert again.to_dict()["probe_face_current"] is False
    note = workflow.lead_note(case, "K1", examination=exam)
    assert "1:N search S1 of Q1 (for a face record of Q1 since replaced)" in note
    assert f"{searched.candidate(1).similarity:.4f}" not in note
    # without masking the score is shown, as that earlier record's
    scored = wording.gallery_lead_note(
        "K1", 1, "S1", "Q1", "u", 4, 0.5, probe_replaced=True
    )
    assert "between the template of a face record of Q1 since replaced and" in (scored)
    made = workflow.search_gallery(
        case, "Q1", gallery, 3, dlib_model, examination=case.examination()
    )
    assert made.probe_current and made.probe_face_id == case.face("Q1").id
    folder = case.folder
    case.close()
    assert main(["case", "info", str(folder)]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    (old,) = [line for line in lines if line.startswith("search S1:")]
    assert old.endswith(f"({wording.gallery_probe_replaced('Q1')})")
    (new,) = [line for line in lines if line.startswith("search S2:")]
    assert "since replaced" not in new


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")
def test_the_report_says_a_search_was_of_a_face_record_since_replaced(
    case, searched, dlib_model, tmp_path
):
    """R2-2 (report): unmasked, the old record's score is printed, attributed
    to a face record of Q1 since replaced, not to Q1's (current) template."""
    from core.report.api import generate_report
    from core.report.content import ReportRequest

    workflow.pull_candidate(case, "S1", 1, model=dlib_model)
    left, top, right, bottom = case.face("Q1").bbox
    workflow.place_face_in_box(case, "Q1", (left - 6, top - 6, right + 6, bottom + 6))
    workflow.rank_gallery(case, "Q1", dlib_model)
    out = tmp_path / "replaced.pdf"
    generate_report(case, out, ReportRequest(model=dlib_model))
    text = pdf_text(out)
    assert flat(wording.gallery_probe_replaced("Q1")) in text
    assert "1:N search S1 of Q1 (for a face record of Q1 since replaced)" in text
    assert "between the template of a face record of Q1 since replaced" in text
    assert "between Q1's template" not in text


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")
def test_a_partly_masked_list_says_which_scores_are_hidden(
    masked_case, gallery, dlib_model, tmp_path
):
    """R2-5: rank 2 unmasked beside masked ranks: "Scores hidden for the ranks
    marked 'masked'", not "Scores not shown"."""
    from core.report.api import generate_report
    from core.report.content import ReportRequest

    case = masked_case
    searched = workflow.search_gallery(
        case, "Q1", gallery, 3, dlib_model, examination=case.examination()
    )
    workflow.pull_candidate(case, "S1", 2, model=dlib_model)
    exam = case.examination()
    exam.record_analysis("Q1", SUITABLE)
    exam.record_evaluation("Q1", "K1", "moderate_same")
    exam.unmask("Q1", "K1")
    out = tmp_path / "partly.pdf"
    generate_report(case, out, ReportRequest(model=dlib_model))
    text = pdf_text(out)
    assert f"{searched.candidate(2).similarity:.4f}" in text
    assert f"{searched.candidate(1).similarity:.4f}" not in text
    assert flat(wording.GALLERY_SCORES_PARTLY_MASKED) in text
    assert flat(wording.GALLERY_SCORES_MASKED) not in text


def test_a_closed_case_says_so_not_read_only(case, searched, gallery, dlib_model):
    """R2-3 (core): a task still holding a case that was closed is told it was
    closed (it used to read "the case is open read-only")."""
    case.close()
    assert case.closed
    for attempt in (
        lambda: workflow.search_gallery(
            case, "Q1", gallery, 3, dlib_model, examination=None
        ),
        lambda: workflow.pull_candidate(case, "S1", 1, model=dlib_model),
    ):
        with pytest.raises(CaseError) as error:
            attempt()
        assert "the case was closed" in str(error.value)
        assert "read-only" not in str(error.value)


@pytest.mark.parametrize(
    "given",
    ["S²", "S99999999999999999999999", "١", "S١", "S" + "9" * 5000, "S0", "S-1"],
)
def test_a_search_id_is_ascii_digits_within_bounds(case, searched, given):
    """R2-4: not an internal ValueError / OverflowError, not "١" taken as S1."""
    with pytest.raises(BadInputError, match="is not a search id") as error:
        case.gallery_searches.search(given, examination=case.examination())
    assert "\n" not in str(error.value)
    assert case.gallery_searches.search(" s1 ", examination=None).name == "S1"


def test_the_cli_listing_marks_candidates_already_in_the_case(case, gallery, capsys):
    """R2-6: the text listing has an "in case" column, as the window's."""
    folder = case.folder
    case.close()
    argv = ["case", "gallery-search", str(folder), "--probe", "Q1", "--gallery",
            str(gallery), "--top", "3"]  # fmt: skip
    assert main(argv) == EXIT_OK
    capsys.readouterr()
    pull = ["case", "pull-candidate", str(folder), "--search", "S1", "--rank", "2"]
    assert main(pull) == EXIT_OK
    capsys.readouterr()
    assert main(argv) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert "in case" in next(line for line in lines if line.lstrip().startswith("rank"))
    (row,) = [line for line in lines if line.lstrip().startswith("2 ")]
    assert " K1 " in row
    assert all(
        " K1 " not in line for line in lines if line.lstrip()[:2] in ("1 ", "3 ")
    )
    assert main([*argv, "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["in_case"] == {"2": "K1"}
