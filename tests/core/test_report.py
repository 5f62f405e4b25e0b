"""The examiner's report: content, signatures, countersignature, tampering, CLI."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.case import workflow
from core.case.demo import create_demo_case
from core.case.store import Case
from core.cli import main
from core.errors import BadInputError
from core.report.api import Signer, generate_report, read_manifest, verify_report
from core.report.signing import create_identity, export_certificate, load_certificate

EXAMINER = "Zoë Ångström"
REVIEWER = "محمد عبد الله"


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory, dlib_model) -> Path:
    folder = tmp_path_factory.mktemp("report") / "demo.xfrcase"
    with create_demo_case(folder, examiner=EXAMINER, model=dlib_model) as case:
        workflow.explain(case, "Q1", "K1", "gradcam", dlib_model)
        workflow.explain(case, "Q1", "K2", "xssab", dlib_model)
        case.add_annotation(
            exhibit="Q1", shape="ellipse", points=[[96, 40], [128, 62]],
            label="眉 (eyebrows) 张伟", note="تطابق الحاجب", component="eyebrows",
        )  # fmt: skip
        case.add_conclusion("Conclusion written by the examiner, Zoë Ångström.")
    return folder


@pytest.fixture(scope="module")
def identities(tmp_path_factory) -> dict[str, Signer]:
    folder = tmp_path_factory.mktemp("ids")
    create_identity(EXAMINER, folder / "examiner.p12", "examiner-pw")
    create_identity(REVIEWER, folder / "reviewer.p12", "reviewer-pw")
    return {
        "examiner": Signer(folder / "examiner.p12", "examiner-pw"),
        "reviewer": Signer(folder / "reviewer.p12", "reviewer-pw"),
    }


def trust(*signers: Signer) -> list:
    return [load_certificate(s.p12, s.password) for s in signers]


def text_of(path: Path) -> str:
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def signed_report(case_folder, identities, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report.pdf"
    with Case.open(case_folder, user=EXAMINER) as case:
        outcome = generate_report(
            case, out, sign=identities["examiner"], countersign=identities["reviewer"]
        )
    assert outcome.signed_by == (EXAMINER, REVIEWER)
    return out


@pytest.mark.slow
def test_report_states_case_exhibit_hashes_scores_and_conclusion(
    signed_report, case_folder
):
    text = text_of(signed_report)
    with Case.open(case_folder, read_only=True) as case:
        info = case.info()
        assert info.case_number in text
        for exhibit in case.exhibits():
            assert exhibit.sha256 in text, exhibit.mark
        for comparison in case.comparisons():
            if case.explanations(comparison.id):
                assert f"{comparison.similarity:.4f}" in text
                assert f"{comparison.distance:.4f}" in text
        head = [e for e in case.audit_log() if e.action == "report.generate"][-1]
    assert "accept" in text and "reject" in text
    assert "Strength of evidence: likelihood ratio" in text
    assert "Conclusion written by the examiner, Zoë Ångström." in text
    assert EXAMINER in text
    assert "Limitations" in text and "Appendix B: audit trail" in text
    assert "Grad-CAM" in text and "xSSAB" in text  # methods appendix
    pages = len(PdfReader(signed_report).pages)
    assert f"page {pages} of {pages}" in text
    manifest = read_manifest(signed_report)
    assert manifest["report_id"] in text  # report id on the pages
    # generating the report was audited with the final PDF's hash
    assert (
        head.details["pdf_sha256"]
        == hashlib.sha256(signed_report.read_bytes()).hexdigest()
    )
    assert head.details["signed_by"] == [EXAMINER, REVIEWER]


@pytest.fixture(scope="module")
def unchecked_folder(tmp_path_factory, dlib_model) -> Path:
    """A demo case with a gradient, a correspondence and a components explanation,
    no check yet (tests copy it, so that each sees it unchecked)."""
    folder = tmp_path_factory.mktemp("unchecked") / "demo.xfrcase"
    with create_demo_case(folder, examiner=EXAMINER, model=dlib_model) as case:
        workflow.explain(case, "Q1", "K1", "gradient", dlib_model)
        workflow.explain(case, "Q1", "K1", "correspondence", dlib_model)
        workflow.explain(
            case, "Q1", "K1", "components", dlib_model, params={"pairs": 0}
        )
    return folder


def pdf_text(path: Path) -> str:
    """The PDF's text as poppler's pdftotext gives it, whitespace collapsed."""
    done = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, check=True
    )
    return " ".join(done.stdout.decode().split())


CHEAP_CHECK = {"grid": 4, "step_cells": 8}  # 3 points a curve, 30 random orders


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler")
def test_report_gives_every_map_its_faithfulness_verdict(
    unchecked_folder, dlib_model, tmp_path
):
    from core.metrics.pair_faithfulness import FaithfulnessSettings, verdict_sentence
    from core.report.build import ReportRequest

    folder = tmp_path / "case.xfrcase"
    shutil.copytree(unchecked_folder, folder)
    request = ReportRequest(faithfulness_settings=FaithfulnessSettings(**CHEAP_CHECK))
    with Case.open(folder, user=EXAMINER) as case:
        outcome = generate_report(
            case, tmp_path / "verdicts.pdf", request, model=dlib_model
        )
        explanations = case.explanations()
        checks = {e.id: workflow.stored_faithfulness(case, e.id) for e in explanations}
    assert len(explanations) == 3 and all(checks.values())  # checked, kept in case
    text = pdf_text(outcome.path)
    for check in checks.values():
        for side in ("probe", "gallery"):
            for kind in ("similarity", "dissimilarity"):  # the kinds the report shows
                verdict = check.get(side, kind)
                if verdict is not None:
                    assert verdict_sentence(verdict) in text, (side, kind)
    assert "Faithfulness not checked" not in text
    assert "fraction of the face removed" in text  # the margin-curve charts
    assert "Region-to-region links" in text  # the correspondence figure and table
    assert "Facial components — change of the" in text  # the components table
    assert "Nose" in text and "hidden in both" in text
    assert "does not show that the highlighted regions look the same" in text
    assert "Deletion" not in text

    # a second report reuses the stored checks: nothing is measured again
    with Case.open(folder, user=EXAMINER) as case:
        before = [e.action for e in case.audit_log()].count("explanation.faithfulness")
        generate_report(case, tmp_path / "again.pdf", request, model=dlib_model)
        after = [e.action for e in case.audit_log()].count("explanation.faithfulness")
    assert before == after == 3


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler")
def test_a_read_only_case_says_not_checked_and_writes_nothing(
    unchecked_folder, dlib_model, tmp_path
):
    from core.report.build import ReportRequest, build_report, check_faithfulness_of

    folder = tmp_path / "case.xfrcase"
    shutil.copytree(unchecked_folder, folder)
    with Case.open(folder, read_only=True) as case:
        head = case.head()
        request = ReportRequest(model=dlib_model)
        assert check_faithfulness_of(case, request) == 0
        built = build_report(case, request)
        assert case.head() == head
    pdf = tmp_path / "read-only.pdf"
    pdf.write_bytes(built.pdf)
    text = pdf_text(pdf)
    assert (
        text.count(
            "Faithfulness not checked for this pair: the case was opened read-only"
        )
        == 5
    )  # the maps shown: gradient's similarity, both of correspondence and components
    with Case.open(folder, read_only=True) as case:
        assert case.head() == head
        assert all(
            workflow.stored_faithfulness(case, e.id) is None
            for e in case.explanations()
        )


@pytest.mark.slow
def test_signatures_verify_only_with_the_signers_certificates(
    signed_report, identities, case_folder
):
    with Case.open(case_folder, read_only=True) as case:
        check = verify_report(
            signed_report, trust=trust(*identities.values()), case=case
        )
    assert check.ok, check.to_dict()
    examiner, reviewer = check.signatures
    assert (examiner.signer_name, reviewer.signer_name) == (EXAMINER, REVIEWER)
    assert examiner.intact and examiner.valid and not examiner.modified_after
    assert reviewer.intact and reviewer.valid and examiner.self_signed
    untrusted = verify_report(signed_report)
    assert not untrusted.ok and not any(s.trusted for s in untrusted.signatures)
    only_examiner = verify_report(signed_report, trust=trust(identities["examiner"]))
    assert [s.trusted for s in only_examiner.signatures] == [True, False]


@pytest.mark.slow
def test_one_flipped_byte_is_detected(signed_report, identities, tmp_path):
    data = bytearray(signed_report.read_bytes())
    # a byte of the first page's content, well inside both signed ranges
    start = data.index(b"stream", 2000) + 40
    data[start] ^= 0x01
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(data))
    check = verify_report(tampered, trust=trust(*identities.values()))
    assert not check.ok
    assert not all(s.intact for s in check.signatures)


@pytest.mark.slow
def test_report_against_another_case_is_a_mismatch(signed_report, tmp_path):
    with Case.create(tmp_path / "other", "X-1", "Someone") as other:
        check = verify_report(signed_report, case=other)
    assert any("not this case" in p for p in check.evidence_problems)


@pytest.mark.slow
def test_case_without_comparisons_still_reports(tmp_path, astronaut_path):
    with Case.create(tmp_path / "c", "2026-9", EXAMINER, title="Évidence 证据") as case:
        case.add_exhibits([astronaut_path], "probe")
        outcome = generate_report(case, tmp_path / "empty.pdf")
    text = text_of(outcome.path)
    assert "No comparisons." in text and "not signed" in text
    assert outcome.signed_by == () and outcome.pages >= 3


@pytest.mark.slow
def test_never_overwrites_and_needs_the_right_password(
    case_folder, identities, tmp_path
):
    existing = tmp_path / "there.pdf"
    existing.write_bytes(b"keep")
    with Case.open(case_folder) as case:
        with pytest.raises(BadInputError, match="never overwritten"):
            generate_report(case, existing)
        with pytest.raises(BadInputError, match=r"examiner\.p12"):
            generate_report(
                case, tmp_path / "r.pdf",
                sign=Signer(identities["examiner"].p12, "wrong password"),
            )  # fmt: skip
    assert existing.read_bytes() == b"keep"
    assert not (tmp_path / "r.pdf").exists()
    assert not list(tmp_path.glob("*.partial*"))


@pytest.mark.slow
def test_cli_identity_report_and_verify(case_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XFR_PASSWORD", "cli-password-1")
    p12, cert = tmp_path / "me.p12", tmp_path / "me.pem"
    assert main(["identity", "new", "--name", EXAMINER, "--out", str(p12)]) == 0
    assert main(["identity", "export", str(p12), "--out", str(cert)]) == 0
    report = tmp_path / "cli.pdf"
    code = main(
        ["report", str(case_folder), "--out", str(report), "--sign", str(p12),
         "--comparison", "Q1:K1", "--json", "--no-faithfulness"]
    )  # fmt: skip
    assert code == 0
    # no check stored for Q1 x K1's Grad-CAM, and none made: said, not hidden
    assert "Faithfulness not checked for this pair" in _flat(text_of(report))
    capsys.readouterr()
    verify = ["report", "verify", str(report), "--case", str(case_folder)]
    assert main([*verify, "--trust", str(cert), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["signatures"][0]["signer_name"] == EXAMINER
    assert main(verify) == 1  # nobody trusted
    assert "not trusted" in capsys.readouterr().out.lower()
    assert main(["report", str(case_folder), "--out", str(tmp_path / "x.pdf"),
                 "--comparison", "Q1"]) == 2  # fmt: skip


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.slow
def test_a_comparison_on_a_corrected_face_is_never_reported_as_current(
    tmp_path, dlib_model
):
    from core.report.build import ReportRequest

    with create_demo_case(
        tmp_path / "c.xfrcase", examiner=EXAMINER, model=dlib_model
    ) as case:
        workflow.explain(case, "Q1", "K1", "gradcam", dlib_model)
        old = [c for c in case.comparisons() if case.explanations(c.id)][-1]
        old_q1 = case.face("Q1")
        case.correct_face("Q1", old_q1.landmarks5 + 2.0)
        correction = case.audit_log()[-1]
        assert correction.action == "faces.correct"
        new = workflow.compare(case, "Q1", "K1", dlib_model)
        assert new.id != old.id and f"{new.similarity:.4f}" != f"{old.similarity:.4f}"
        default = generate_report(case, tmp_path / "default.pdf")
        chosen = generate_report(
            case,
            tmp_path / "chosen.pdf",
            ReportRequest(comparison_ids=[old.id, new.id]),
        )
        by_label = generate_report(
            case, tmp_path / "label.pdf", ReportRequest(comparisons=[("Q1", "K1")])
        )
        with pytest.raises(BadInputError, match=r"Q1 × K2 .*corrected since.*again"):
            generate_report(
                case, tmp_path / "k2.pdf", ReportRequest(comparisons=[("Q1", "K2")])
            )
        entry = case.audit_log()[-1]  # the last report made
    # by default, and by label: only the comparison on the current face
    for outcome in (default, by_label):
        text = _flat(text_of(outcome.path))
        assert "SUPERSEDED" not in text
        assert f"{new.similarity:.4f}" in text
        assert f"{old.similarity:.4f}" not in text
        assert "landmarks placed by hand" in text
        [only] = read_manifest(outcome.path)["comparisons"]
        assert only["id"] == new.id and only["superseded"] is False
    # chosen explicitly: printed, under the banner, after the current one
    text = _flat(text_of(chosen.path))
    banner = (
        "SUPERSEDED — computed on a face that was later corrected (placed by hand) "
        "(see audit entry "
        f"#{correction.seq})"
    )
    assert banner in text
    assert text.index(f"{new.similarity:.4f}") < text.index(banner)
    assert text.index(banner) < text.index(f"{old.similarity:.4f}")
    assert "Superseded comparisons (not current results)" in text
    assert f"Q1 (found automatically (hog detector), recorded {old_q1.created}" in text
    assert "of a SUPERSEDED comparison" in text  # its explanation
    assert "(SUPERSEDED; Q1 = face record" in text  # reproducibility appendix
    assert "1 of the 2 comparisons in this report were computed on faces" in text
    entries = {e["id"]: e for e in read_manifest(chosen.path)["comparisons"]}
    assert entries[new.id]["superseded"] is False
    assert entries[old.id]["superseded"] is True
    [face] = entries[old.id]["superseded_faces"]
    assert face["label"] == "Q1" and face["face_id"] == old_q1.id
    assert face["replaced_by_audit_entry"] == correction.seq
    assert entry.details["superseded_comparisons"] == []  # k2 refused: no entry


def _append_garbage(data: bytes) -> bytes:
    return data + b"% not part of the signed report\n\x00\x01binary tail"


def _pypdf_info(data: bytes) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter(PdfReader(io.BytesIO(data)), incremental=True)
    writer.add_metadata({"/Title": "Forged title"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pypdf_annotation(data: bytes) -> bytes:
    from pypdf import PdfWriter
    from pypdf.annotations import FreeText

    writer = PdfWriter(PdfReader(io.BytesIO(data)), incremental=True)
    writer.add_annotation(0, FreeText(text="accept", rect=(50, 50, 200, 100)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pyhanko_metadata(data: bytes) -> bytes:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    title = generic.TextStringObject("Forged title")
    writer.set_info(generic.DictionaryObject({generic.NameObject("/Title"): title}))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _empty_revision(data: bytes) -> bytes:
    """A new revision that writes no object: only a trailer pointing back."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(data), strict=False)
    trailer = reader.trailer_view
    root, size = trailer.raw_get("/Root"), trailer["/Size"]
    prev = data.rindex(b"startxref")
    previous = int(data[prev:].split()[1])
    start = len(data) + 1
    section = (
        f"\nxref\n0 0\ntrailer\n<< /Size {size} /Root {root.idnum} {root.generation} R "
        f"/Prev {previous} >>\nstartxref\n{start}\n%%EOF\n"
    )
    return data + section.encode()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tamper", "added"),
    [
        (_append_garbage, "bytes of data that is not PDF after %%EOF"),
        (_pypdf_info, "an incremental update changing: /Info"),
        (_pypdf_annotation, "an incremental update changing: a new annotation"),
        (_pyhanko_metadata, "an incremental update changing: /Info"),
        (_empty_revision, "an incremental update that changes no object"),
        (lambda data: data + b"\n\n\n", "3 bytes of data that is not PDF"),
    ],
    ids=["garbage", "pypdf-info", "pypdf-annotation", "pyhanko-info", "empty", "3nl"],
)
def test_anything_after_the_last_signature_is_a_change(
    signed_report, identities, tmp_path, capsys, tamper, added
):
    original = signed_report.read_bytes()
    data = tamper(original)
    assert data.startswith(original) and len(data) > len(original)
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(data)
    check = verify_report(tampered, trust=trust(*identities.values()))
    assert check.ok is False
    extra = f"{len(data) - len(original):,} bytes"
    for status in check.signatures:  # both the examiner's and the reviewer's
        assert status.intact and status.valid and status.trusted
        assert status.modified_after and status.added_after.startswith(extra)
        assert added in status.added_after
        assert "CHANGED after signing: " + status.added_after in status.summary
    if shutil.which("pdfsig"):  # poppler agrees: the last signature stops short
        for path, verdict in ((signed_report, "Total"), (tampered, "Not total")):
            run = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True)
            lines = [line.strip("- ") for line in run.stdout.splitlines()]
            coverage = [line for line in lines if "total document" in line.lower()]
            assert coverage and coverage[-1].startswith(verdict), run.stdout
    pems = []
    for name, signer in identities.items():
        pem = tmp_path / f"{name}.pem"
        export_certificate(signer.p12, signer.password, pem)
        pems += ["--trust", str(pem)]
    capsys.readouterr()
    assert main(["report", "verify", str(tampered), *pems]) == 1
    out, err = capsys.readouterr()
    assert "NOT OK" in out and added in out and extra in out
    assert "Traceback" not in out + err
    assert main(["report", "verify", str(signed_report), *pems]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_one_trailing_newline_is_tolerated(
    signed_report, identities, tmp_path, newline
):
    padded = tmp_path / "padded.pdf"
    padded.write_bytes(signed_report.read_bytes() + newline)
    check = verify_report(padded, trust=trust(*identities.values()))
    assert check.ok and all(not s.added_after for s in check.signatures)


@pytest.mark.slow
def test_an_unsigned_report_fails_verification(case_folder, tmp_path, capsys):
    with Case.open(case_folder) as case:
        outcome = generate_report(case, tmp_path / "unsigned.pdf")
    assert not verify_report(outcome.path).ok
    capsys.readouterr()
    assert main(["report", "verify", str(outcome.path)]) == 1
    assert "not signed" in capsys.readouterr().out


@pytest.mark.slow
def test_layout_needs_neither_the_case_nor_the_model(
    unchecked_folder, dlib_model, monkeypatch
):
    """Every case read and model pass happens while gathering: the gathered content,
    stored and read back, lays out with the case closed and the model unreachable."""
    import pickle

    import core.case.workflow
    import core.report.content
    from core.report.build import ReportRequest, lay_out
    from core.report.content import gather_content, select_comparisons

    with Case.open(unchecked_folder, read_only=True) as case:
        request = ReportRequest(model=dlib_model)
        content = gather_content(case, request, select_comparisons(case, request))
    stored = pickle.loads(pickle.dumps(content))

    def no_model(*_args, **_kwargs):
        raise AssertionError("layout ran a model pass or read the case")

    for module in (core.case.workflow, core.report.content):
        for name in (
            "face_view",
            "load_result",
            "load_evidence",
            "stored_faithfulness",
        ):
            monkeypatch.setattr(module, name, no_model)
    monkeypatch.setattr(type(dlib_model), "embed", no_model, raising=False)
    pdf = lay_out(stored)
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert content.report_id in text
    assert "Region-to-region links" in text  # the figure from the gathered chips
    assert "made without the model, so only the table" not in text
    assert (
        "Faithfulness not checked for this pair: the case was opened read-only" in text
    )


def test_report_sections_are_all_registered_in_order():
    import pkgutil

    import core.report.sections as package
    from core.report.sections import SECTIONS

    names = [section.name for section in SECTIONS]
    assert names == [  # the guideline's order (docs/reporting.md)
        "cover",
        "request",
        "exhibits",
        "analysis",
        "processing",
        "method",
        "worksheet",
        "annotations",
        "evaluation",
        "conclusion",
        "model_relation",
        "gallery_searches",
        "comparisons",
        "verification",
        "limitations",
        "reproducibility",
        "methods",
        "audit",
        "figures",
    ]
    modules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    registered = {section.__name__.rsplit(".", 1)[-1] for section in SECTIONS}
    assert modules == registered  # a section module that is not printed is a bug


@pytest.mark.slow
def test_report_and_manifest_name_the_software_version_and_commit(signed_report):
    from core.version import __version__, source_commit

    text = " ".join(text_of(signed_report).split())
    assert (
        f"This report was made by software version {__version__} "
        f"(commit {source_commit()})." in text
    )
    assert read_manifest(signed_report)["software"] == {
        "version": __version__,
        "commit": source_commit(),
    }
    assert "References" in text and "Selvaraju et al. 2017:" in text  # Grad-CAM
