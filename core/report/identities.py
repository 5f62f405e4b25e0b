"""The examiner's signing identities, kept for the GUI's Signing menu and report
dialog.

The CLI writes an identity wherever ``--out`` says; the GUI keeps the examiner's
in one folder of the user's data, so that the report dialog can offer them.  Each
identity is its PKCS#12 file with its public certificate beside it (same name,
``.pem``): the certificate names the identity without its password, and is what
a verifier is given (and what "Verify now" trusts after an export).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError

IDENTITY_PASSWORD_MIN_LENGTH = 8  # the rule of ``xfr identity new``


@dataclass(frozen=True)
class StoredIdentity:
    """One signing identity of the examiner's folder, as the GUI lists it."""

    p12: Path
    certificate: Path | None  # the public .pem beside it (None: not there)
    name: str  # the certificate's subject common name ("" when unknown)
    subject: str  # the subject's values: name, organisation, e-mail ("" unknown)
    fingerprint_sha256: str  # "" when unknown

    @property
    def title(self) -> str:
        """How a list shows it: the signer's name and the file."""
        return f"{self.name} ({self.p12.name})" if self.name else self.p12.name


def identities_folder() -> Path:
    """Where the GUI keeps the examiner's signing identities."""
    from core.io.userdirs import user_data_dir

    return user_data_dir() / "identities"


def _stored_identity(p12: Path) -> StoredIdentity:
    """The identity file ``p12`` named by the certificate beside it, if readable."""
    from core.report.signing import (
        certificate_fingerprint,
        common_name,
        load_certificate,
    )

    pem = p12.with_suffix(".pem")
    try:
        cert = load_certificate(pem)
    except BadInputError:  # no certificate beside it: list the file by its name
        return StoredIdentity(p12, None, "", "", "")
    return StoredIdentity(
        p12, pem, common_name(cert),
        ", ".join(str(attribute.value) for attribute in cert.subject),
        certificate_fingerprint(cert),
    )  # fmt: skip


def known_identities(folder: Path | None = None) -> list[StoredIdentity]:
    """The identities in ``folder`` (default: :func:`identities_folder`), by name."""
    folder = identities_folder() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    files = [*folder.glob("*.p12"), *folder.glob("*.pfx")]
    return sorted(
        (_stored_identity(p) for p in files), key=lambda i: (i.name.lower(), i.p12)
    )


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(
            f"cannot create the folder ({exc.strerror})", folder
        ) from None


def _free_identity_path(folder: Path, name: str) -> Path:
    """``folder/<name>.p12`` from the signer's name, numbered when taken."""
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.strip())
    stem = "-".join(part for part in stem.split("-") if part)[:60] or "identity"
    path, number = folder / f"{stem}.p12", 2
    while path.exists() or path.with_suffix(".pem").exists():
        path, number = folder / f"{stem}-{number}.p12", number + 1
    return path


def _write_certificate(p12: Path, password: str) -> StoredIdentity:
    """Write the public certificate beside ``p12`` and list the pair."""
    from core.report.signing import export_certificate

    export_certificate(p12, password, p12.with_suffix(".pem"))
    return _stored_identity(p12)


def create_stored_identity(
    name: str,
    password: str,
    *,
    organisation: str = "",
    email: str = "",
    folder: Path | None = None,
) -> StoredIdentity:
    """A new self-signed identity in the examiner's folder (``create_identity``,
    with the CLI's password rule), its certificate written beside it."""
    from core.report.signing import create_identity

    folder = identities_folder() if folder is None else Path(folder)
    if not name.strip():
        raise BadInputError("the identity needs a name")
    if len(password) < IDENTITY_PASSWORD_MIN_LENGTH:  # no file named: none written
        raise BadInputError(
            f"use a password of at least {IDENTITY_PASSWORD_MIN_LENGTH} characters"
        )
    _make_folder(folder)
    out = _free_identity_path(folder, name)
    create_identity(
        name, out, password, organisation=organisation.strip(), email=email.strip()
    )
    return _write_certificate(out, password)


def import_identity(
    source: Path, password: str, *, folder: Path | None = None
) -> StoredIdentity:
    """Copy a PKCS#12 identity (made elsewhere, e.g. by the lab's PKI) into the
    examiner's folder, after checking that ``password`` opens it and that it can
    sign.  A wrong password raises ``WrongPasswordError`` and copies nothing."""
    from core.report.signing import certificate_fingerprint, load_identity, read_pkcs12

    source = Path(source)
    data, _key, cert, _extra = read_pkcs12(source, password)
    load_identity(source, password)  # it holds a key pyHanko can sign with
    folder = identities_folder() if folder is None else Path(folder)
    fingerprint = certificate_fingerprint(cert)
    for known in known_identities(folder):
        if known.fingerprint_sha256 == fingerprint:
            raise BadInputError(
                f"this identity is already in your identities, as {known.title}",
                source,
            )
    _make_folder(folder)
    name = source.stem
    out = _free_identity_path(folder, name)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise BadInputError(f"cannot create the file ({exc.strerror})", out) from None
    return _write_certificate(out, password)


def unlock_identity(p12: Path, password: str) -> StoredIdentity:
    """Check that ``password`` opens ``p12`` for signing, before a report is built
    (a wrong one raises ``WrongPasswordError`` at once, not after the layout)."""
    from core.report.signing import load_identity

    load_identity(Path(p12), password)
    return _stored_identity(Path(p12))
