"""Signing a case archive's manifest with an examiner identity, and checking it.

The signature is a detached CMS (PKCS#7) SignedData in DER over the exact bytes of
``manifest.json``, with the signer's certificate embedded.  Since the manifest
pins the SHA-256 of every member and the audit head and state digest of the
database, the signature covers the whole archive.  Checking it needs no network:
the signature is verified with the embedded certificate, and whether that
certificate is *trusted* is decided only by the certificates the recipient gives
(an identity's certificate proves nothing by itself; see core/report/signing.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from core.errors import BadInputError

_DIGESTS = {"sha256", "sha384", "sha512"}


@dataclass(frozen=True)
class ManifestSigner:
    """A loaded identity, ready to sign (made by `load_signer`)."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    path: Path

    @property
    def name(self) -> str:
        from core.report.signing import common_name

        return common_name(self.certificate)

    @property
    def fingerprint_sha256(self) -> str:
        from core.report.signing import certificate_fingerprint

        return certificate_fingerprint(self.certificate)


@dataclass(frozen=True)
class SignatureVerdict:
    """What the signature of an archive's manifest says (it verified)."""

    signer_name: str
    fingerprint_sha256: str
    signing_time: str  # ISO 8601 as the signer's clock had it, or ""
    trusted: bool | None  # None: no certificate to trust was given

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "valid": True}

    def text(self) -> str:
        trust = {
            None: "signer not checked against a trusted certificate (give --trust)",
            True: "signer trusted",
            False: "signer NOT trusted",
        }[self.trusted]
        return (
            f"signed by {self.signer_name} (certificate SHA-256 "
            f"{self.fingerprint_sha256}): signature valid, {trust}"
        )


def load_signer(p12: str | Path, password: str) -> ManifestSigner:
    """The identity in ``p12``; one clear error for a wrong password or key type."""
    from core.report.signing import read_pkcs12

    p12 = Path(p12)
    _data, key, certificate, _extra = read_pkcs12(p12, password)
    if key is None:
        raise BadInputError("the identity file holds no private key", p12)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise BadInputError(
            f"cannot sign with this identity's key type ({type(key).__name__}); "
            "use an RSA or EC identity",
            p12,
        )
    return ManifestSigner(certificate, key, p12)


def sign_manifest(manifest: bytes, signer: ManifestSigner) -> bytes:
    """A detached CMS signature (DER) over ``manifest``, with SHA-256."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(signer.certificate, signer.key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )


class SignatureError(ValueError):
    """The signature is not a usable CMS signature, or does not verify."""


def check_signature(
    manifest: bytes, signature: bytes, trust: Sequence[x509.Certificate] = ()
) -> SignatureVerdict:
    """Verify ``signature`` over ``manifest`` with the certificate it embeds.

    Raises `SignatureError` (its text says why, in plain words) when the signature
    cannot be read or does not verify; trust is reported, never raised.
    """
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import validate_sig_integrity

    from core.report.signing import certificate_fingerprint, common_name

    try:
        content = cms.ContentInfo.load(signature, strict=True)
        if content["content_type"].native != "signed_data":
            raise SignatureError("it is not a CMS signature (no SignedData)")
        signed = content["content"]
        signed.native  # noqa: B018 - forces a full parse: damage is found here
        if signed["encap_content_info"]["content"].native is not None:
            raise SignatureError(
                "it carries its own content instead of signing the manifest"
            )
        infos = list(signed["signer_infos"])
        if len(infos) != 1:
            raise SignatureError(f"it has {len(infos)} signers instead of one")
        info = infos[0]
        certificate = _signer_certificate(signed, info)
        algorithm = info["digest_algorithm"]["algorithm"].native
        if algorithm not in _DIGESTS:
            raise SignatureError(f"it uses the digest {algorithm}, which is not used")
        digest = hashlib.new(algorithm, manifest).digest()
        intact, valid = validate_sig_integrity(info, certificate, "data", digest)
        signing_time = _signing_time(info)
    except SignatureError:
        raise
    except Exception as error:  # asn1crypto and pyHanko raise many kinds on junk
        first_line = (str(error).splitlines() or [""])[0]
        raise SignatureError(
            f"it is not a readable CMS signature ({type(error).__name__}: {first_line})"
        ) from None
    if not intact:
        raise SignatureError(
            "it does not match manifest.json: the manifest was changed after it "
            "was signed"
        )
    if not valid:
        raise SignatureError(
            "the signature itself is invalid: it was not made with the key of the "
            "certificate it names"
        )
    signer = x509.load_der_x509_certificate(certificate.dump())
    return SignatureVerdict(
        signer_name=common_name(signer),
        fingerprint_sha256=certificate_fingerprint(signer),
        signing_time=signing_time,
        trusted=_is_trusted(signer, trust) if trust else None,
    )


def _signer_certificate(signed: Any, info: Any) -> Any:
    sid = info["sid"]
    if sid.name != "issuer_and_serial_number":
        raise SignatureError("it names its signer by key identifier only")
    wanted = sid.chosen
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        certificate = choice.chosen
        if (
            certificate.issuer == wanted["issuer"]
            and certificate.serial_number == wanted["serial_number"].native
        ):
            return certificate
    raise SignatureError("the signer's certificate is not inside it")


def _signing_time(info: Any) -> str:
    for attribute in info["signed_attrs"] or []:
        if attribute["type"].native == "signing_time":
            return attribute["values"][0].native.isoformat()
    return ""


def _is_trusted(signer: x509.Certificate, trust: Sequence[x509.Certificate]) -> bool:
    """The signer is one of ``trust``, or was issued directly by one of them."""
    for anchor in trust:
        if signer == anchor:
            return True
        try:
            if not anchor.extensions.get_extension_for_class(
                x509.BasicConstraints
            ).value.ca:
                continue  # only a CA vouches for the certificates it issues
        except x509.ExtensionNotFound:
            continue
        try:
            signer.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False
