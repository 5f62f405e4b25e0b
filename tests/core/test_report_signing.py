"""Signing and verifying PDF reports: real keys, real PDFs, no network."""

from __future__ import annotations

import datetime as dt
from io import BytesIO
from pathlib import Path

import pytest
from reportlab.pdfgen import canvas

from core.errors import BadInputError
from core.report import signing
from core.report.signing import (
    create_identity,
    export_certificate,
    load_certificate,
    load_identity,
    sign_pdf,
    verify_pdf,
)

EXAMINER = "Zoë Ångström"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("signing")


@pytest.fixture(scope="module")
def report_pdf(work) -> Path:
    """Two pages of uncompressed text, so a test can alter a visible word."""
    path = work / "report.pdf"
    c = canvas.Canvas(str(path), pageCompression=0)
    for page in (1, 2):
        c.drawString(72, 720, f"Examination report, page {page}")
        c.drawString(72, 700, "Conclusion: support for same source.")
        c.showPage()
    c.save()
    return path


@pytest.fixture(scope="module")
def examiner(work) -> Path:
    p12 = work / "examiner.p12"
    create_identity(EXAMINER, p12, "s3cret", organisation="Lab", email="z@lab.org")
    return p12


@pytest.fixture(scope="module")
def reviewer(work) -> Path:
    p12 = work / "reviewer.p12"
    create_identity("Peer Reviewer", p12, "other-pw")
    return p12


@pytest.fixture(scope="module")
def signed_pdf(work, report_pdf, examiner) -> Path:
    out = work / "signed.pdf"
    sign_pdf(report_pdf, out, examiner, "s3cret", reason="ACE-V evaluation")
    return out


def _examiner_cert(examiner):
    return load_certificate(examiner, "s3cret")


# ------------------------------------------------------------------ identities


@pytest.mark.slow
def test_create_identity_describes_a_self_signed_cert(work):
    p12 = work / "fresh.p12"
    info = create_identity("A. Examiner", p12, "pw", days=30)
    assert info.name == "A. Examiner"
    assert info.self_signed
    assert len(info.fingerprint_sha256.split(":")) == 32
    assert info.not_after - info.not_before >= dt.timedelta(days=30)
    cert = load_certificate(p12, "pw")
    assert signing.certificate_fingerprint(cert) == info.fingerprint_sha256


def test_create_identity_refuses_to_overwrite(examiner):
    before = examiner.read_bytes()
    with pytest.raises(BadInputError, match="never overwritten") as err:
        create_identity("Someone Else", examiner, "pw")
    assert err.value.path == examiner
    assert examiner.read_bytes() == before


def test_wrong_password_names_the_file(examiner):
    with pytest.raises(BadInputError, match="wrong password") as err:
        load_identity(examiner, "not-the-password")
    assert err.value.path == examiner
    assert "Traceback" not in str(err.value)


def test_damaged_identity_is_a_clear_error(work, examiner):
    bad = work / "damaged.p12"
    bad.write_bytes(examiner.read_bytes()[:400])
    with pytest.raises(BadInputError, match="damaged") as err:
        load_identity(bad, "s3cret")
    assert err.value.path == bad


def test_export_certificate_gives_the_public_cert_only(work, examiner):
    pem = work / "examiner.pem"
    info = export_certificate(examiner, "s3cret", pem)
    text = pem.read_text()
    assert "BEGIN CERTIFICATE" in text and "PRIVATE KEY" not in text
    assert info.name == EXAMINER
    assert (
        signing.certificate_fingerprint(load_certificate(pem))
        == info.fingerprint_sha256
    )


# --------------------------------------------------------------------- signing


@pytest.mark.slow
def test_signed_report_verifies_as_trusted(signed_pdf, examiner):
    [st] = verify_pdf(signed_pdf, trust=[_examiner_cert(examiner)])
    assert st.field_name == "Examiner"
    assert st.signer_name == EXAMINER
    assert st.intact and st.valid and st.trusted
    assert not st.modified_after
    assert st.coverage == "entire_file"
    assert st.self_signed
    assert not st.timestamped
    assert st.signing_time is not None
    assert "valid and trusted" in st.summary
    assert "no timestamp" in st.summary


def test_trust_may_be_given_as_a_pem_path(work, signed_pdf, examiner):
    pem = work / "trusted.pem"
    export_certificate(examiner, "s3cret", pem)
    [st] = verify_pdf(signed_pdf.read_bytes(), trust=[pem])
    assert st.trusted


def test_without_trust_it_is_intact_but_not_trusted(signed_pdf):
    [st] = verify_pdf(signed_pdf)
    assert st.intact and st.valid
    assert not st.trusted
    assert "not trusted" in st.summary


def test_another_examiners_cert_does_not_make_it_trusted(signed_pdf, reviewer):
    [st] = verify_pdf(signed_pdf, trust=[load_certificate(reviewer, "other-pw")])
    assert st.valid and not st.trusted


def test_unsigned_pdf_has_no_signatures(report_pdf):
    assert verify_pdf(report_pdf) == []


def test_altered_content_is_not_intact(signed_pdf, examiner):
    data = bytearray(signed_pdf.read_bytes())
    at = data.index(b"support for same source")
    start, _end = _signed_hole(bytes(data))
    assert at < start  # inside the signed range, not in /Contents
    data[at : at + 7] = b"no supp"  # same length: only the hash can tell
    [st] = verify_pdf(bytes(data), trust=[_examiner_cert(examiner)])
    assert not st.intact and not st.valid and not st.trusted
    assert "altered" in st.summary


def _signed_hole(data: bytes) -> tuple[int, int]:
    """The byte offsets of the signature /Contents (the unsigned gap)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    [sig] = PdfFileReader(BytesIO(data), strict=False).embedded_signatures
    a, b, c, _d = sig.byte_range
    assert a == 0
    return b, c


def test_later_non_signature_update_counts_as_modified(signed_pdf, examiner):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(BytesIO(signed_pdf.read_bytes()))
    page = w.root["/Pages"]["/Kids"][0].get_object()
    forged = generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 720 Td (X) Tj ET")
    page["/Contents"] = w.add_object(forged)
    w.update_container(page)
    out = BytesIO()
    w.write(out)
    [st] = verify_pdf(out.getvalue(), trust=[_examiner_cert(examiner)])
    # The signed bytes are untouched, so the signature itself still checks out...
    assert st.intact and st.valid
    # ...but what a reader sees is no longer what was signed.
    assert st.modified_after
    assert st.coverage == "entire_revision"
    assert st.modification == "other"
    assert "CHANGED after signing" in st.summary


@pytest.mark.slow
def test_countersignature_keeps_the_first_valid(work, signed_pdf, examiner, reviewer):
    out = work / "countersigned.pdf"
    info = sign_pdf(
        signed_pdf,
        out,
        reviewer,
        "other-pw",
        reason="ACE-V verification",
        field_name="Peer reviewer",
    )
    assert info.signer_name == "Peer Reviewer" and not info.timestamped
    trust = [_examiner_cert(examiner), load_certificate(reviewer, "other-pw")]
    first, second = verify_pdf(out, trust=trust)
    assert (first.field_name, second.field_name) == ("Examiner", "Peer reviewer")
    assert first.signer_name == EXAMINER and second.signer_name == "Peer Reviewer"
    for st in (first, second):
        assert st.intact and st.valid and st.trusted and not st.modified_after
    # The first signature covers only its own revision; pyHanko's difference
    # analysis classes the later revision as "form filling" (a new signature).
    assert first.coverage == "entire_revision"
    assert first.modification == "form_filling"
    assert second.coverage == "entire_file"
    # The examiner's original file is byte-for-byte the start of the new one.
    assert out.read_bytes().startswith(signed_pdf.read_bytes())


@pytest.mark.slow
def test_signing_bytes_input(work, report_pdf, examiner):
    out = work / "from-bytes.pdf"
    sign_pdf(report_pdf.read_bytes(), out, examiner, "s3cret", reason="r")
    [st] = verify_pdf(out, trust=[_examiner_cert(examiner)])
    assert st.trusted


def test_signing_in_place_is_refused(report_pdf, examiner):
    before = report_pdf.read_bytes()
    same = report_pdf.parent / "." / report_pdf.name
    with pytest.raises(BadInputError, match="new file"):
        sign_pdf(report_pdf, same, examiner, "s3cret", reason="r")
    assert report_pdf.read_bytes() == before


def test_non_pdf_is_a_clear_error(work, examiner):
    junk = work / "notes.pdf"
    junk.write_text("this is not a PDF")
    with pytest.raises(BadInputError, match="not a PDF") as err:
        verify_pdf(junk)
    assert err.value.path == junk
    with pytest.raises(BadInputError, match="not a PDF") as err:
        sign_pdf(junk, work / "out.pdf", examiner, "s3cret", reason="r")
    assert err.value.path == junk
    assert not (work / "out.pdf").exists()


def test_wrong_password_when_signing(work, report_pdf, examiner):
    out = work / "never.pdf"
    with pytest.raises(BadInputError, match="wrong password"):
        sign_pdf(report_pdf, out, examiner, "nope", reason="r")
    assert not out.exists()


@pytest.mark.slow
def test_unreachable_timestamp_server_is_a_clear_error(work, report_pdf, examiner):
    out = work / "ts.pdf"
    url = "http://127.0.0.1:9/tsa"  # the discard port: nothing answers
    with pytest.raises(BadInputError, match="timestamp server"):
        sign_pdf(report_pdf, out, examiner, "s3cret", reason="r", timestamp_url=url)
    assert not out.exists()


@pytest.mark.slow
def test_timestamp_is_reported(work, report_pdf, examiner, monkeypatch):
    """A local TSA stands in for the HTTP one: the token is embedded and seen."""
    from pyhanko.sign import timestamps

    tsa_cert, tsa_key = _tsa()
    urls = []

    def dummy(url):
        urls.append(url)
        return timestamps.DummyTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key)

    monkeypatch.setattr(timestamps, "HTTPTimeStamper", dummy)
    out = work / "stamped.pdf"
    url = "http://tsa.invalid/"
    info = sign_pdf(report_pdf, out, examiner, "s3cret", reason="r", timestamp_url=url)
    assert info.timestamped and urls == [url]
    [st] = verify_pdf(out, trust=[_examiner_cert(examiner)])
    assert st.timestamped and st.intact and st.valid
    assert "no timestamp" not in st.summary


def _tsa():
    """A throw-away self-signed TSA certificate (RSA: the dummy TSA needs it)."""
    from asn1crypto import keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    der_key = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (
        asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        keys.PrivateKeyInfo.load(der_key),
    )
