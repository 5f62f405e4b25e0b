"""Identity passwords without a terminal: --password-file, XFR_PASSWORD, prompts.

The CLI runs as a real program (stdin from /dev/null, or a pseudo-terminal for the
prompt tests), since "is there a terminal" is exactly what is under test.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.case.store import Case
from core.cli import main
from core.report.signing import create_identity, load_certificate, load_identity

ROOT = Path(__file__).resolve().parents[2]
EXAMINER = "Zoë Ångström"
REVIEWER = "Peer Reviewer"
PASSWORD_VARIABLES = ("XFR_PASSWORD", "XFR_COUNTERSIGN_PASSWORD")


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PASSWORD_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    return {**env, **extra}


def xfr(*argv: str | Path, **env: str) -> subprocess.CompletedProcess:
    """``xfr ARGV`` as a program without a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *map(str, argv)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_environment(**env),
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def one_line_error(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    return lines[0]


def password_file(folder: Path, text: str, name: str = "password.txt") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(autouse=True)
def _no_password_in_environment(monkeypatch):
    for name in PASSWORD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory, astronaut_path) -> Path:
    folder = tmp_path_factory.mktemp("pw-case") / "case.xfrcase"
    with Case.create(folder, "2024-PW-1", EXAMINER) as case:
        case.add_exhibits([astronaut_path], "probe")
    return folder


@pytest.fixture(scope="module")
def identities(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("pw-ids")
    made = {
        "examiner": (folder / "examiner.p12", "examiner-pw-1"),
        "reviewer": (folder / "reviewer.p12", "reviewer-pw-2"),
    }
    for name, (p12, password) in zip((EXAMINER, REVIEWER), made.values(), strict=True):
        create_identity(name, p12, password)
    return made


# ------------------------------------------------------------ identity new


@pytest.mark.slow
def test_identity_new_reads_the_password_file(tmp_path):
    secret = password_file(tmp_path, "from-a-file-1\n")
    p12 = tmp_path / "me.p12"
    completed = xfr("identity", "new", "--name", EXAMINER, "--out", p12,
                    "--password-file", secret, "--json")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["name"] == EXAMINER
    assert completed.stderr == ""  # a private file: no warning
    load_identity(p12, "from-a-file-1")  # the first line, newline stripped


@pytest.mark.slow
def test_identity_new_reads_the_environment_variable(tmp_path):
    p12 = tmp_path / "me.p12"
    completed = xfr("identity", "new", "--name", EXAMINER, "--out", p12,
                    XFR_PASSWORD="from-the-env-1")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    load_identity(p12, "from-the-env-1")


@pytest.mark.slow
def test_the_file_wins_over_the_environment(tmp_path):
    secret = password_file(tmp_path, "file-password\r\nsecond line ignored\n")
    p12 = tmp_path / "me.p12"
    completed = xfr("identity", "new", "--name", EXAMINER, "--out", p12,
                    "--password-file", secret, XFR_PASSWORD="env-password")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    load_identity(p12, "file-password")


@pytest.mark.slow
def test_no_terminal_and_no_password_is_one_line(tmp_path):
    p12 = tmp_path / "me.p12"
    line = one_line_error(xfr("identity", "new", "--name", EXAMINER, "--out", p12))
    assert str(p12) in line
    assert "--password-file" in line and "XFR_PASSWORD" in line
    assert not p12.exists()


def test_short_password_from_a_file_is_refused(tmp_path, capsys):
    secret = password_file(tmp_path, "short\n")
    p12 = tmp_path / "me.p12"
    argv = ["identity", "new", "--name", "A", "--out", str(p12)]
    assert main([*argv, "--password-file", str(secret)]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert not p12.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read the password file"),
        ("", "the password file is empty"),
        ("\nsecond-line-password\n", "the password file is empty"),
        (b"\xff\xfe not text", "not UTF-8"),
        ("directory", "cannot read the password file"),
    ],
)
def test_unusable_password_file_names_it(tmp_path, capsys, content, problem):
    secret = tmp_path / "password.txt"
    if content == "directory":
        secret.mkdir()
    elif isinstance(content, bytes):
        secret.write_bytes(content)
    elif content is not None:
        password_file(tmp_path, content)
    p12 = tmp_path / "me.p12"
    code = main(["identity", "new", "--name", "A", "--out", str(p12),
                 "--password-file", str(secret)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert str(secret) in err[0] and problem in err[0]
    assert not p12.exists()


def test_empty_environment_variable_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XFR_PASSWORD", "")
    p12 = tmp_path / "me.p12"
    assert main(["identity", "new", "--name", "A", "--out", str(p12)]) == 2
    assert "XFR_PASSWORD is set but empty" in capsys.readouterr().err
    assert not p12.exists()


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="POSIX file permissions")
def test_password_file_readable_by_others_warns_but_is_used(tmp_path, capsys):
    secret = password_file(tmp_path, "shared-password\n")
    secret.chmod(0o644)
    p12 = tmp_path / "me.p12"
    code = main(["identity", "new", "--name", "A", "--out", str(p12),
                 "--password-file", str(secret)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert len(err) == 1 and "warning" in err[0] and str(secret) in err[0]
    assert "other users can read" in err[0]
    load_identity(p12, "shared-password")


# ------------------------------------------------ identity export, report, verify


@pytest.mark.slow
def test_export_with_a_wrong_password_from_a_file(tmp_path, identities):
    p12, _password = identities["examiner"]
    wrong = password_file(tmp_path, "not-the-password\n")
    out = tmp_path / "me.pem"
    line = one_line_error(
        xfr("identity", "export", p12, "--out", out, "--password-file", wrong)
    )
    assert str(p12) in line and "wrong password" in line
    assert not out.exists()


@pytest.mark.slow
def test_export_with_the_environment_variable(tmp_path, identities):
    p12, password = identities["examiner"]
    out = tmp_path / "me.pem"
    completed = xfr("identity", "export", p12, "--out", out, XFR_PASSWORD=password)
    assert completed.returncode == 0, completed.stderr
    assert load_certificate(out) == load_certificate(p12, password)


@pytest.mark.slow
def test_sign_a_report_then_verify_it_trusting_the_p12(
    tmp_path, case_folder, identities
):
    p12, password = identities["examiner"]
    report = tmp_path / "report.pdf"
    completed = xfr(
        "report", case_folder, "--out", report, "--sign", p12, "--no-faithfulness",
        "--password-file", password_file(tmp_path, password + "\n"), "--json",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["signed_by"] == [EXAMINER]
    # without the identity's password the p12 cannot be trusted
    line = one_line_error(xfr("report", "verify", report, "--trust", p12))
    assert "XFR_PASSWORD" in line and str(p12) in line
    checked = xfr("report", "verify", report, "--case", case_folder,
                  "--trust", p12, "--json", XFR_PASSWORD=password)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = json.loads(checked.stdout)
    assert result["ok"] and result["signatures"][0]["signer_name"] == EXAMINER


@pytest.mark.slow
def test_sign_with_a_wrong_password_file_writes_nothing(
    tmp_path, case_folder, identities
):
    p12, _password = identities["examiner"]
    report = tmp_path / "report.pdf"
    line = one_line_error(xfr(
        "report", case_folder, "--out", report, "--sign", p12, "--no-faithfulness",
        "--password-file", password_file(tmp_path, "wrong-password\n"),
    ))  # fmt: skip
    assert str(p12) in line and "wrong password" in line
    assert not report.exists()


@pytest.mark.slow
def test_countersigner_has_its_own_password_sources(
    tmp_path, case_folder, identities, capsys, monkeypatch
):
    (p12, password), (peer_p12, peer_password) = identities.values()
    argv = ["report", str(case_folder), "--sign", str(p12), "--countersign",
            str(peer_p12), "--no-faithfulness", "--json"]  # fmt: skip
    monkeypatch.setenv("XFR_PASSWORD", password)
    # the examiner's password is not the reviewer's
    assert main([*argv, "--out", str(tmp_path / "a.pdf")]) == 2
    err = capsys.readouterr().err
    assert "--countersign-password-file" in err and "XFR_COUNTERSIGN_PASSWORD" in err
    assert str(peer_p12) in err
    monkeypatch.setenv("XFR_COUNTERSIGN_PASSWORD", "wrong-peer-password")
    assert main([*argv, "--out", str(tmp_path / "b.pdf")]) == 2
    assert "wrong password" in capsys.readouterr().err
    monkeypatch.delenv("XFR_COUNTERSIGN_PASSWORD")
    peer_file = password_file(tmp_path, peer_password + "\n", "peer.txt")
    out = tmp_path / "c.pdf"
    argv += ["--out", str(out), "--countersign-password-file", str(peer_file)]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["signed_by"] == [EXAMINER, REVIEWER]


# ------------------------------------------------------------- the terminal


class Terminal:
    """``xfr ARGV`` with a pseudo-terminal as its controlling terminal."""

    def __init__(self, *argv: str | Path) -> None:
        master, slave = os.openpty()
        # os.login_tty makes the slave the child's controlling terminal, so that
        # getpass talks to /dev/tty exactly as it does for an examiner.
        code = (
            "import os, sys; os.login_tty(0); from core.cli import main; "
            "sys.exit(main(sys.argv[1:]))"
        )
        self.child = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, argv)],
            stdin=slave, stdout=slave, stderr=slave,
            env=_environment(), cwd=ROOT,
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.seen = b""

    def wait_for(self, text: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on the terminal; it shows {self.seen!r}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed; it showed {self.seen!r}")
                self.seen += chunk

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self) -> tuple[int, str]:
        code = self.child.wait(timeout=60)
        while select.select([self.master], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk
        os.close(self.master)
        return code, self.seen.decode("utf-8", "replace")


@pytest.mark.slow
def test_password_typed_twice_at_the_prompt(tmp_path):
    p12 = tmp_path / "me.p12"
    terminal = Terminal("identity", "new", "--name", "A", "--out", p12)
    terminal.wait_for(b"Password for")
    terminal.type("typed-password\n")
    terminal.wait_for(b"Repeat the password")
    terminal.type("typed-password\n")
    code, shown = terminal.finish()
    assert code == 0, shown
    assert "typed-password" not in shown  # not echoed
    load_identity(p12, "typed-password")


@pytest.mark.slow
def test_ctrl_c_at_the_prompt_exits_130_without_traceback(tmp_path):
    p12 = tmp_path / "me.p12"
    terminal = Terminal("identity", "new", "--name", "A", "--out", p12)
    terminal.wait_for(b"Password for")
    terminal.child.send_signal(signal.SIGINT)
    code, shown = terminal.finish()
    assert code == 130, shown
    assert "xfr: interrupted" in shown and "Traceback" not in shown
    assert not p12.exists()


@pytest.mark.slow
def test_end_of_input_at_the_prompt_is_one_line(tmp_path):
    p12 = tmp_path / "me.p12"
    terminal = Terminal("identity", "new", "--name", "A", "--out", p12)
    terminal.wait_for(b"Password for")
    terminal.type("\x04")  # Ctrl-D on an empty line
    code, shown = terminal.finish()
    assert code == 2, shown
    assert "Traceback" not in shown
    assert "no password given" in shown
    assert not p12.exists()
