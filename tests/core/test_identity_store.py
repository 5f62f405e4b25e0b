"""The examiner's identity folder the GUI offers (core.case.workflow): made and
imported identities with their public certificate beside them, listed by name; a
wrong password is its own error and copies nothing."""

from __future__ import annotations

import pytest

from core.errors import BadInputError
from core.io.userdirs import user_data_dir
from core.report import identities
from core.report.signing import (
    WrongPasswordError,
    create_identity,
    load_certificate,
    read_pkcs12,
)

PASSWORD = "password-1"


def test_the_folder_is_in_the_users_data():
    assert identities.identities_folder() == user_data_dir() / "identities"
    assert identities.known_identities() == []  # nothing made yet, no folder


def test_a_stored_identity_has_its_certificate_and_is_listed_by_name(tmp_path):
    made = identities.create_stored_identity(
        "Dr. Zoë Example", PASSWORD, organisation="Lab", email="z@example.org",
        folder=tmp_path,
    )  # fmt: skip
    assert made.p12 == tmp_path / "Dr-Zoë-Example.p12"
    assert made.certificate == tmp_path / "Dr-Zoë-Example.pem"
    assert made.subject == "Dr. Zoë Example, Lab, z@example.org"
    assert made.title == "Dr. Zoë Example (Dr-Zoë-Example.p12)"
    # the .pem is the public half of the .p12
    assert load_certificate(made.certificate) == read_pkcs12(made.p12, PASSWORD)[2]
    second = identities.create_stored_identity(
        "Dr. Zoë Example", PASSWORD, folder=tmp_path
    )
    assert second.p12.name == "Dr-Zoë-Example-2.p12"  # never overwritten
    early = identities.create_stored_identity("Ann Early", PASSWORD, folder=tmp_path)
    listed = [i.p12 for i in identities.known_identities(tmp_path)]
    assert listed == [early.p12, *sorted([made.p12, second.p12])]  # by name, file


def test_the_clis_password_rule_holds(tmp_path):
    with pytest.raises(BadInputError, match="at least 8 characters") as raised:
        identities.create_stored_identity("A", "short", folder=tmp_path)
    assert str(raised.value) == "use a password of at least 8 characters"
    with pytest.raises(BadInputError, match="needs a name"):
        identities.create_stored_identity("  ", PASSWORD, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_identity_without_its_certificate_is_listed_by_file_name(tmp_path):
    create_identity("Elsewhere", tmp_path / "copied.p12", PASSWORD)
    (listed,) = identities.known_identities(tmp_path)
    assert (listed.name, listed.certificate, listed.title) == ("", None, "copied.p12")


def test_import_checks_the_password_first_and_copies_the_file(tmp_path):
    source = tmp_path / "lab.p12"
    create_identity("Dr. Lab", source, PASSWORD)
    folder = tmp_path / "mine"
    with pytest.raises(WrongPasswordError, match="wrong password"):
        identities.import_identity(source, "nope", folder=folder)
    assert not folder.exists()
    imported = identities.import_identity(source, PASSWORD, folder=folder)
    assert imported.p12 == folder / "lab.p12" and imported.name == "Dr. Lab"
    assert imported.p12.read_bytes() == source.read_bytes()
    assert imported.p12.stat().st_mode & 0o077 == 0
    with pytest.raises(BadInputError, match=r"already in your identities, as Dr\. Lab"):
        identities.import_identity(source, PASSWORD, folder=folder)
    assert [i.p12 for i in identities.known_identities(folder)] == [imported.p12]
    other = tmp_path / "other" / "lab.p12"  # another identity, the same file name
    other.parent.mkdir()
    create_identity("Dr. Other", other, PASSWORD)
    again = identities.import_identity(other, PASSWORD, folder=folder)
    assert again.p12 == folder / "lab-2.p12"


def test_unlock_tells_a_wrong_password_from_a_damaged_file(tmp_path):
    create_identity("Dr. Lab", tmp_path / "lab.p12", PASSWORD)
    assert identities.unlock_identity(tmp_path / "lab.p12", PASSWORD).p12.is_file()
    with pytest.raises(WrongPasswordError):
        identities.unlock_identity(tmp_path / "lab.p12", "nope")
    (tmp_path / "bad.p12").write_bytes(b"not an identity")
    with pytest.raises(BadInputError) as raised:
        identities.unlock_identity(tmp_path / "bad.p12", PASSWORD)
    assert not isinstance(raised.value, WrongPasswordError)
    assert "not a PKCS#12 identity file" in str(raised.value)
