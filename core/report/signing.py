"""Digital signatures on PDF reports: examiner identities, signing, verification.

An examiner signs a report so that anyone can later check two things offline:
that the bytes are those the examiner signed (*integrity*) and who signed them
(*identity*, which is only as good as the certificate the verifier chose to
trust).  Signatures are PAdES baseline (CMS detached, ``ETSI.CAdES.detached``)
made with pyHanko, so Adobe Reader and other PDF tools can check them too.

Every signature is appended to the PDF as an *incremental update*: the signed
bytes are left untouched and new objects are written after them.  A signature
covers the byte range of the file as it was when it was signed, so a second
signature (the peer reviewer's verification in ACE-V) adds a revision without
changing a single byte the first signature covers; what it adds is then judged
by pyHanko's difference analysis, which allows a new signature but flags any
other change of content.

Labs without a PKI create a self-signed identity (:func:`create_identity`): its
certificate proves nothing by itself, so a verifier must receive the public
certificate (:func:`export_certificate`) through a trusted channel and pass it
to :func:`verify_pdf` as ``trust``.  Passwords are never stored or logged.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path
from typing import TypeAlias

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import BadInputError

__all__ = [
    "IdentityInfo",
    "SignatureInfo",
    "SignatureStatus",
    "WrongPasswordError",
    "certificate_fingerprint",
    "common_name",
    "create_identity",
    "export_certificate",
    "is_self_signed",
    "load_certificate",
    "load_identity",
    "read_pkcs12",
    "sign_pdf",
    "verify_pdf",
]

# id-kp-documentSigning (RFC 9336): the purpose "signing documents".
_DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

CertLike: TypeAlias = x509.Certificate | asn1_x509.Certificate | Path | str


@dataclass(frozen=True)
class IdentityInfo:
    """The public facts of an examiner identity (never its key or password)."""

    name: str
    fingerprint_sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool


@dataclass(frozen=True)
class SignatureInfo:
    """What :func:`sign_pdf` did."""

    out: Path
    field_name: str
    signer_name: str
    fingerprint_sha256: str
    signed_at: dt.datetime
    timestamped: bool


@dataclass(frozen=True)
class SignatureStatus:
    """The verdict on one signature of a PDF, as :func:`verify_pdf` found it.

    ``intact``: the hash over the signed bytes matches the signed hash.
    ``valid``: intact and the cryptographic signature checks out.
    ``trusted``: valid and the signer's certificate chains to a given trust root.
    ``modified_after``: the file was changed after this signature by anything
    other than later signatures (or signature validation data).
    ``coverage``: how much of the file the signature covers, as pyHanko says
    (``entire_file``, ``entire_revision``, ...); ``modification``: the kind of
    later changes (``none``, ``lta_updates``, ``form_filling``, ``annotations``,
    ``other``), empty when unknown.  ``added_after``: what follows the last
    signature's signed bytes in plain words (an incremental update and what it
    changes, or data that is not PDF), empty when nothing does; any such bytes
    make every signature ``modified_after``.
    """

    field_name: str
    signer_name: str
    fingerprint_sha256: str
    signing_time: dt.datetime | None
    intact: bool
    valid: bool
    trusted: bool
    modified_after: bool
    coverage: str
    modification: str
    self_signed: bool
    timestamped: bool
    summary: str
    added_after: str = ""


# --------------------------------------------------------------------- identities


class WrongPasswordError(BadInputError):
    """The password does not open this identity file (the file itself is sound).

    Its own type so that the GUI can ask for the password again in place instead
    of treating it like any other bad file.
    """


def create_identity(
    name: str,
    out: Path,
    password: str,
    *,
    organisation: str = "",
    email: str = "",
    days: int = 3650,
) -> IdentityInfo:
    """Create a self-signed signing identity (key + certificate) in a PKCS#12 file.

    The certificate is an end-entity certificate (``ca=False``) whose key usage
    is limited to signatures (digitalSignature + nonRepudiation, which pyHanko
    requires of signers by default).  Used as its own trust root it validates in
    pyHanko without further extensions; the extended key usages are there for
    other PDF tools.  The file is encrypted with the best algorithm available
    and created exclusively, so an existing identity is never overwritten.
    """
    out = Path(out)
    name = name.strip()
    if not name:
        raise BadInputError("the identity needs a name", path=out)
    if not password:
        raise BadInputError("a password is required to protect the identity", out)
    if days < 1:
        raise BadInputError(f"validity must be at least one day, not {days}", out)
    if out.exists():
        raise BadInputError("file exists; an identity is never overwritten", out)

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if organisation:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    subject = x509.Name(attrs)
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [_DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]
            ),
            critical=False,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
    )
    if email:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False
        )
    cert = builder.sign(key, hashes.SHA256())
    data = pkcs12.serialize_key_and_certificates(
        name.encode("utf-8"),
        key,
        cert,
        None,
        serialization.BestAvailableEncryption(password.encode("utf-8")),
    )
    try:
        # O_EXCL: never replace an identity, even one created since the check.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BadInputError(
            "file exists; an identity is never overwritten", out
        ) from None
    except OSError as exc:
        raise BadInputError(f"cannot create the file ({exc.strerror})", out) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return _identity_info(cert)


def _read_file(path: Path, what: str) -> bytes:
    """The file's bytes, or a ``BadInputError`` naming it and why it can't be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read {what} ({exc.strerror})", path) from None


def read_pkcs12(p12: Path, password: str | None):
    """Decrypt a PKCS#12 file, telling a wrong password from a damaged file."""
    p12 = Path(p12)
    data = _read_file(p12, "the identity")
    pw = password.encode("utf-8") if password else None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, pw)
    except (ValueError, TypeError):
        # OpenSSL gives one error for both; a structural parse tells them apart.
        from asn1crypto import pkcs12 as asn1_pkcs12

        try:
            asn1_pkcs12.Pfx.load(data).native  # noqa: B018 - forces a full parse
        except Exception:
            raise BadInputError(
                "not a PKCS#12 identity file, or the file is damaged", p12
            ) from None
        raise WrongPasswordError(
            "wrong password for this identity (or the file is damaged)", p12
        ) from None
    if cert is None:
        raise BadInputError("the identity file holds no certificate", p12)
    return data, key, cert, extra


def load_identity(p12: Path, password: str):
    """Load a PKCS#12 identity as a pyHanko signer (``SimpleSigner``)."""
    from pyhanko.sign import signers

    data, key, _cert, _extra = read_pkcs12(p12, password)
    if key is None:
        raise BadInputError("the identity file holds no private key", p12)
    try:
        return signers.SimpleSigner.load_pkcs12_data(
            data, other_certs=(), passphrase=password.encode("utf-8")
        )
    except Exception as exc:  # unsupported key types and the like
        raise BadInputError(
            f"cannot use this identity for signing ({exc})", p12
        ) from None


def load_certificate(path: Path, password: str | None = None) -> x509.Certificate:
    """Load a certificate from a PEM/DER file or from a PKCS#12 identity."""
    path = Path(path)
    if path.suffix.lower() in (".p12", ".pfx"):
        return read_pkcs12(path, password)[2]
    data = _read_file(path, "the certificate")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise BadInputError("not a PEM or DER certificate", path) from None


def export_certificate(p12: Path, password: str, out_pem: Path) -> IdentityInfo:
    """Write the public certificate of an identity as PEM, for verifiers.

    Only the certificate leaves the identity, never the key.  Hand it over by a
    channel the verifier trusts and read the fingerprint to them to confirm it.
    """
    cert = read_pkcs12(p12, password)[2]
    out_pem = Path(out_pem)
    try:
        out_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise BadInputError(
            f"cannot write the certificate ({exc.strerror})", out_pem
        ) from None
    return _identity_info(cert)


def _identity_info(cert: x509.Certificate) -> IdentityInfo:
    return IdentityInfo(
        name=common_name(cert),
        fingerprint_sha256=certificate_fingerprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=is_self_signed(cert),
    )


def common_name(cert: x509.Certificate) -> str:
    """The certificate's subject common name (the whole subject when it has none)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, as colon-separated hex (as viewers show it)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself, its signature checked with its own key."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# ------------------------------------------------------------------------ signing


def sign_pdf(
    pdf_in: bytes | Path,
    out: Path,
    p12: Path,
    password: str,
    *,
    reason: str,
    location: str = "",
    field_name: str = "Examiner",
    timestamp_url: str | None = None,
) -> SignatureInfo:
    """Sign a PDF (PAdES baseline, SHA-256) into ``out`` as an incremental update.

    ``pdf_in`` is never modified: the signed copy goes to ``out`` (written via a
    temporary file, so a failed signing leaves no half-written report).  Signing
    an already signed PDF appends a new revision after the existing bytes, which
    keeps earlier signatures valid (see the module docstring).  Without
    ``timestamp_url`` the signing time is the signer's own clock claim only.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers, timestamps

    out = Path(out)
    if isinstance(pdf_in, bytes):
        data, source = pdf_in, Path("<PDF bytes>")
    else:
        source = Path(pdf_in)
        if out.resolve() == source.resolve():
            raise BadInputError("the signed copy must go to a new file", out)
        data = _read_file(source, "the PDF")
    signer = load_identity(p12, password)
    try:
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=False)
    except Exception:
        raise BadInputError("not a PDF, or the PDF is damaged", source) from None
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        reason=reason,
        location=location or None,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    stamper = timestamps.HTTPTimeStamper(timestamp_url) if timestamp_url else None
    pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=stamper)
    signed_at = dt.datetime.now(dt.UTC)
    try:
        signed = pdf_signer.sign_pdf(writer).getvalue()
    except Exception as exc:
        if timestamp_url and _is_network_error(exc):
            raise BadInputError(
                f"the timestamp server {timestamp_url} could not be used ({exc})"
            ) from None
        raise BadInputError(f"cannot sign this PDF ({exc})", source) from None
    _write_atomically(out, signed)
    cert = x509.load_der_x509_certificate(signer.signing_cert.dump())
    return SignatureInfo(
        out=out,
        field_name=field_name,
        signer_name=common_name(cert),
        fingerprint_sha256=certificate_fingerprint(cert),
        signed_at=signed_at,
        timestamped=stamper is not None,
    )


def _is_network_error(exc: Exception) -> bool:
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError

    return isinstance(exc, TimestampRequestError | OSError)


def _write_atomically(out: Path, data: bytes) -> None:
    from core.io.atomic import write_atomic

    try:
        write_atomic(out, data)
    except OSError as exc:
        raise BadInputError(
            f"cannot write the signed PDF ({exc.strerror})", out
        ) from None


# ------------------------------------------------------------------- verification


def verify_pdf(
    pdf: Path | bytes, *, trust: Iterable[CertLike] | None = None
) -> list[SignatureStatus]:
    """Check every signature of a PDF offline; ``[]`` when it has none.

    Only the certificates in ``trust`` are trust roots (never the operating
    system's list, and nothing is fetched from the network), so a self-signed
    examiner certificate is trusted exactly when the verifier passes it.
    Revocation cannot be checked offline and is not reported.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko_certvalidator import ValidationContext

    _quiet_pyhanko()
    source = Path("<bytes>") if isinstance(pdf, bytes) else Path(pdf)
    if isinstance(pdf, bytes):
        data = pdf
    else:
        data = _read_file(source, "the PDF")
    roots = [_as_asn1(c) for c in trust or ()]
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        sigs = reader.embedded_signatures
    except Exception:
        raise BadInputError("not a PDF, or the PDF is damaged", source) from None
    signed_fields = {s.field_name for s in sigs}
    result = []
    for sig in sigs:
        context = ValidationContext(trust_roots=roots, allow_fetching=False)
        result.append(_check(sig, context, signed_fields))
    added = _added_after_last_signature(reader, data, sigs) if sigs else ""
    if added:
        # Nothing may follow the last signature: pyHanko's difference analysis
        # accepts some updates (a new /Info, "LTA" updates) and never looks at
        # bytes that are not PDF, yet either changes what a reader gets.
        result = [
            _with_summary(replace(s, modified_after=True, added_after=added))
            for s in result
        ]
    return result


# A newline that some transfer tools add after %%EOF changes nothing a reader
# sees; it is the only thing tolerated after the last signed revision.
TOLERATED_TRAILERS = (b"\n", b"\r\n")


def _added_after_last_signature(reader, data: bytes, sigs) -> str:
    """What follows the bytes the last signature covers, in plain words ("" if none)."""
    signed_end = min(max(_signed_end(s) for s in sigs), len(data))
    extra = data[signed_end:]
    if not extra or extra in TOLERATED_TRAILERS:
        return ""
    try:
        later = [
            rev
            for rev in range(reader.xrefs.total_revisions)
            if reader.xrefs.get_startxref_for_revision(rev) >= signed_end
        ]
        changes = [_revision_changes(reader, rev) for rev in later]
    except Exception:  # a damaged update: its size is still a fact
        later, changes = [], []
    if not later:
        return f"{len(extra):,} bytes of data that is not PDF after %%EOF"
    updates = (
        "an incremental update"
        if len(later) == 1
        else f"{len(later)} incremental updates"
    )
    changed = sorted({c for revision in changes for c in revision})
    what = f"changing: {', '.join(changed)}" if changed else "that changes no object"
    return f"{len(extra):,} bytes after the last signed revision ({updates} {what})"


def _signed_end(sig) -> int:
    """Where the bytes a signature covers end (the end of its revision)."""
    _start1, _length1, start2, length2 = (int(v) for v in list(sig.byte_range))
    return start2 + length2


def _revision_changes(reader, rev: int) -> list[str]:
    """The objects a revision writes, each named by what it is for a reader."""
    from pyhanko.pdf_utils import generic

    view = reader.get_historical_resolver(rev)
    trailer = view.trailer_view
    info = trailer.raw_get("/Info") if "/Info" in trailer else None
    info_ref = info.reference if isinstance(info, generic.IndirectObject) else None
    names = []
    for ref in reader.xrefs.explicit_refs_in_revision(rev):
        new = reader.xrefs.get_introducing_revision(ref) == rev
        if ref == info_ref:
            names.append("/Info (title, author and other document properties)")
            continue
        obj = view(ref)
        kind = obj.get("/Type") if isinstance(obj, generic.DictionaryObject) else None
        if kind == "/XRef":
            continue
        if kind == "/Annot" or (
            isinstance(obj, generic.DictionaryObject) and "/Subtype" in obj
            and "/Rect" in obj
        ):  # fmt: skip
            names.append("a new annotation" if new else "an annotation")
        elif kind == "/Page":
            names.append("a new page" if new else "a page")
        elif kind == "/Pages":
            names.append("the page list")
        elif kind == "/Catalog":
            names.append("the document catalogue")
        elif kind == "/Metadata":
            names.append("the XMP metadata")
        elif kind == "/EmbeddedFile" or kind == "/Filespec":
            names.append("an attached file")
        else:
            names.append(f"{'new ' if new else ''}object {ref.idnum}")
    if info_ref is not None and rev > 0 and not any("/Info" in n for n in names):
        before = reader.get_historical_resolver(rev - 1).trailer_view
        old = before.raw_get("/Info") if "/Info" in before else None
        if getattr(old, "reference", None) != info_ref:  # /Info re-pointed
            names.append("/Info (title, author and other document properties)")
    return names


def _quiet_pyhanko() -> None:
    """pyHanko logs its difference analysis with tracebacks; the verdict says it."""
    import logging

    logger = logging.getLogger("pyhanko")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _check(sig, context, signed_fields: set[str]) -> SignatureStatus:
    from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel
    from pyhanko.sign.validation import validate_pdf_signature

    cert = x509.load_der_x509_certificate(sig.signer_cert.dump())
    base = {
        "field_name": sig.field_name,
        "signer_name": common_name(cert),
        "fingerprint_sha256": certificate_fingerprint(cert),
        "signing_time": sig.self_reported_timestamp,
        "self_signed": is_self_signed(cert),
    }
    try:
        st = validate_pdf_signature(
            sig, signer_validation_context=context, ts_validation_context=context
        )
    except Exception as exc:
        # A damaged signature container or byte range: not a verdict pyHanko
        # can give, but certainly not an intact signature.
        return SignatureStatus(
            **base,
            intact=False,
            valid=False,
            trusted=False,
            modified_after=True,
            coverage="unclear",
            modification="",
            timestamped=False,
            summary=f"Signature could not be checked ({exc}).",
        )
    coverage = st.coverage.name.lower() if st.coverage is not None else "unclear"
    level = st.modification_level
    if st.coverage is not None and st.coverage.name == "ENTIRE_FILE":
        modified = False
    elif level in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES):
        modified = False
    elif level is ModificationLevel.FORM_FILLING and isinstance(
        st.diff_result, DiffResult
    ):
        # Later signatures show up as "form filling"; filling anything else is
        # a change of content after this signature.
        others = st.diff_result.changed_form_fields - signed_fields
        modified = bool(others)
    else:
        modified = True
    if st.docmdp_ok is False:
        modified = True
    status = SignatureStatus(
        **base,
        intact=bool(st.intact),
        valid=bool(st.valid and st.intact),
        trusted=bool(st.trusted),
        modified_after=modified,
        coverage=coverage,
        modification=level.name.lower() if level is not None else "",
        timestamped=st.timestamp_validity is not None,
        summary="",
    )
    return _with_summary(status)


def _with_summary(s: SignatureStatus) -> SignatureStatus:
    who = f"“{s.field_name}” signed by {s.signer_name}"
    if not s.intact:
        text = f"{who}: INVALID — the signed content was altered."
    elif not s.valid:
        text = f"{who}: INVALID — the signature does not match the certificate."
    elif s.modified_after and s.added_after:
        text = f"{who}: the document was CHANGED after signing: {s.added_after}."
    elif s.modified_after:
        text = f"{who}: the document was CHANGED after signing ({s.modification})."
    elif not s.trusted:
        text = (
            f"{who}: intact, but the signer's certificate is not trusted "
            "(compare its fingerprint and add it to the trusted certificates)."
        )
    else:
        text = f"{who}: valid and trusted; no change after signing."
    if s.valid and not s.timestamped:
        text += " The signing time is the signer's own claim (no timestamp)."
    return replace(s, summary=text)


def _as_asn1(cert: CertLike) -> asn1_x509.Certificate:
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    if isinstance(cert, str | Path):
        cert = load_certificate(Path(cert))
    if isinstance(cert, x509.Certificate):
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    raise BadInputError(f"cannot use {type(cert).__name__} as a trusted certificate")
