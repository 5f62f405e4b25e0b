"""Generate, sign and verify reports; what the CLI and the GUI call.

The report carries a machine-readable manifest (``xfr-report.json``, a PDF file
attachment inside the signed bytes): report id, case identifier, every exhibit's
mark and SHA-256, each processed exhibit's chain and hashes, the comparisons and
explanations.  ``verify_report`` checks the signatures and, given the case, that
this manifest matches the case's evidence.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.case.store import Case
from core.errors import BadInputError
from core.progress import ProgressCallback
from core.report.build import (
    BuiltReport,
    ReportRequest,
    build_report,
    check_faithfulness_of,
)
from core.report.signing import (
    SignatureStatus,
    load_certificate,
    sign_pdf,
    verify_pdf,
)

if TYPE_CHECKING:
    from core.case.derivations import Derivation

MANIFEST_NAME = "xfr-report.json"
VERIFIED = "The countersignature is the verifier's"


@dataclass(frozen=True)
class Signer:
    """A PKCS#12 identity and its password (kept in memory only)."""

    p12: Path
    password: str = ""


@dataclass(frozen=True)
class ReportOutcome:
    path: Path
    report_id: str
    sha256: str
    pages: int
    signed_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path)}


def _manifest(case: Case, built: BuiltReport, anchor: dict[str, Any]) -> dict[str, Any]:
    info = case.info()
    return {
        "format": "xfr-report",
        "report_id": built.report_id,
        "case_uuid": info.case_uuid,
        "case_number": info.case_number,
        "exhibits": [{"mark": e.mark, "sha256": e.sha256} for e in case.exhibits()],
        # each with its pair, result and "superseded" (a face of it was replaced)
        "comparisons": list(built.comparison_entries),
        "explanations": list(built.explanations),
        # each processed (derived) exhibit's record: enough to re-create its pixels
        "processed_exhibits": [
            _processed_entry(d) for d in case.derivations.derivations()
        ],
        # each exhibit pulled in from a 1:N gallery search (an investigative lead):
        # the search, its gallery and the rank (the scores are in the case's bound
        # search record, and in the report only where the pair is unmasked)
        "investigative_leads": [
            {
                k: v
                for k, v in lead.to_dict().items()
                if k not in ("cosine_similarity", "image_path")
            }
            | {"model_sha256": lead.search.model_sha256}
            for lead in case.gallery_searches.leads(examination=None)  # no score
        ],
        # the code that made it: the version alone does not name a development build
        "software": {"version": built.software_version, "commit": built.source_commit},
        # the state the report describes: `report verify --case` finds this entry
        # in the case's chain (a rewritten or rolled-back log fails) and says what
        # changed since
        "audit_head": {"seq": anchor["seq"], "hash": anchor["hash"]},
        "state_digest": anchor["state_digest"],
        "anchored": anchor["time"],
    }


def _processed_entry(derivation: Derivation) -> dict[str, Any]:
    """A derived exhibit in the manifest: its source, chain and hashes."""
    return {
        "mark": derivation.mark,
        "source": derivation.source,
        "steps": [dict(step) for step in derivation.steps],
        "inputs": [dict(step_inputs) for step_inputs in derivation.inputs],
        "source_sha256": derivation.source_sha256,
        "source_pixels_sha256": derivation.source_pixels_sha256,
        "output_sha256": derivation.output_sha256,
        "software_version": derivation.software_version,
        "libraries": dict(derivation.libraries),
    }


def _attach(pdf: bytes, manifest: dict[str, Any]) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_attachment(MANIFEST_NAME, json.dumps(manifest, indent=2).encode())
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def read_manifest(pdf: bytes | Path) -> dict[str, Any] | None:
    from pypdf import PdfReader

    data = Path(pdf).read_bytes() if isinstance(pdf, Path) else pdf
    try:
        attachments = PdfReader(io.BytesIO(data)).attachments
    except Exception as error:  # pypdf raises many types on damaged files
        raise BadInputError(f"not a readable PDF ({error})") from None
    contents = attachments.get(MANIFEST_NAME)
    if not contents:
        return None
    return json.loads(contents[0])


def verification_statement(case: Case) -> str:
    """What the countersignature stands for: the verifier's, with the mode of
    each recorded verification, or plainly not a verification."""
    from core.report.examination_content import gather_examination

    exam = gather_examination(case, [])
    done = [p for p in exam.pairs if p.verification is not None]
    if not done:
        return (
            "The countersignature is not a verification: no verification by a "
            "second examiner is recorded in the case."
        )
    verified = "; ".join(
        f"{p.title}: {p.verification.mode} verification by {p.verification_by}"
        for p in done
        if p.verification is not None
    )
    return f"{VERIFIED} ({verified})."


def signature_note(
    signers: Sequence[Signer], timestamp_url: str | None, verification: str = ""
) -> str:
    """What the cover page says about the signatures that will follow
    (``verification``: ``verification_statement``, said of a countersignature)."""
    if not signers:
        return ""
    from core.report.signing import common_name, is_self_signed

    parts = []
    verified = verification.startswith(VERIFIED)
    roles = ("examiner", "verifier" if verified else "countersigner")
    for role, signer in zip(roles, signers, strict=False):
        cert = load_certificate(signer.p12, signer.password)
        kind = (
            "a self-signed certificate (no certification authority vouches for it; "
            "compare its fingerprint with the one the signer gives you)"
            if is_self_signed(cert)
            else "a certificate issued by a certification authority"
        )
        parts.append(f"the {role}, {common_name(cert)}, with {kind}")
    stamp = (
        "A trusted time stamp from the configured server is attached."
        if timestamp_url
        else "No trusted time stamp is attached (no time-stamp server was configured "
        "or the workstation is offline); the signing time is the signer's clock."
    )
    return (
        "This report is signed (PAdES) by "
        + "; and countersigned by ".join(parts)
        + ". "
        + (verification + " " if len(signers) > 1 and verification else "")
        + "Any change after signing is detected by signature validation. "
        + stamp
    )


def generate_report(
    case: Case,
    out: str | Path,
    request: ReportRequest | None = None,
    *,
    sign: Signer | None = None,
    countersign: Signer | None = None,
    timestamp_url: str | None = None,
    model: Any = None,
    progress: ProgressCallback | None = None,
) -> ReportOutcome:
    """Build the report, sign it (and countersign it), write ``out``, audit it.

    With ``model`` (the one the comparisons were made with), each selected map that
    has no stored per-pair faithfulness check is checked first and the check kept in
    the case (``check_faithfulness_of``), so that the report shows every map's
    verdict; the layout itself only reads the case.
    """
    out = Path(out)
    if out.exists():
        raise BadInputError("already exists; a report is never overwritten", out)
    if countersign is not None and sign is None:
        raise BadInputError("a countersignature needs the examiner's signature first")
    signers = [s for s in (sign, countersign) if s is not None]
    request = request or ReportRequest()
    verification = verification_statement(case)
    request.signature_note = signature_note(signers, timestamp_url, verification)
    request.timestamp_note = ""
    if model is not None:
        request.model = model
    check = case.verify()
    if not check.intact:
        raise BadInputError(
            f"the case does not verify ({check.problems[0]}); no report is made of "
            "a case in that state (run `xfr case verify`)",
            case.folder,
        )
    check_faithfulness_of(case, request, progress)  # writes: before the anchor
    anchor = case.anchor()
    built = build_report(case, request, progress)
    if case.head() != (anchor["seq"], anchor["hash"]):
        raise BadInputError(
            "the case changed while the report was being laid out (a job finished "
            "meanwhile?); make the report again",
            case.folder,
        )
    pdf = _attach(built.pdf, _manifest(case, built, anchor))
    names: list[str] = []
    partial = out.with_name(out.name + ".partial")
    try:
        partial.write_bytes(pdf)
        for signer, field, reason in (
            (sign, "Examiner", "Examiner's report"),
            (countersign, "Peer reviewer", _countersign_reason(verification)),
        ):
            if signer is None:
                continue
            signed = partial.with_name(partial.name + ".signed")
            info = sign_pdf(
                partial, signed, signer.p12, signer.password,
                reason=reason, field_name=field, timestamp_url=timestamp_url,
            )  # fmt: skip
            # each signature is written to a file by pyHanko: renames only here
            os.replace(signed, partial)
            names.append(info.signer_name)
        os.replace(partial, out)
    finally:
        for leftover in (partial, partial.with_name(partial.name + ".signed")):
            leftover.unlink(missing_ok=True)
    try:
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        case.log(
            "report.generate",
            {
                "report_id": built.report_id,
                "path": str(out.resolve()),
                "pdf_sha256": digest,
                "pages": built.pages,
                "comparisons": list(built.comparisons),
                "superseded_comparisons": list(built.superseded_comparisons),
                "explanations": list(built.explanations),
                "signed_by": names,
                "timestamped": bool(timestamp_url and signers),
            },
        )
    except BaseException:
        # A report the audit trail does not record must not be left behind (a
        # full disk or Ctrl-C between the rename and the entry).
        out.unlink(missing_ok=True)
        raise
    return ReportOutcome(out, built.report_id, digest, built.pages, tuple(names))


def _countersign_reason(verification: str) -> str:
    """The countersignature's stated reason: a verification only when one is
    recorded (the verifier's, blind or open)."""
    if verification.startswith(VERIFIED):
        mode = "open" if "open verification" in verification else "blind"
        return f"Verifier's signature ({mode} verification, ACE-V)"
    return "Countersignature (no verification recorded)"


@dataclass(frozen=True)
class ReportCheck:
    signatures: tuple[SignatureStatus, ...]
    evidence_problems: tuple[str, ...]  # empty: matches the case (or not checked)
    case_checked: bool
    report_id: str | None
    # audit entries made after the state the report describes (its own excepted)
    changes_since: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        signatures_ok = bool(self.signatures) and all(
            s.intact and s.valid and s.trusted and not s.modified_after
            for s in self.signatures
        )
        return signatures_ok and not self.evidence_problems

    def findings(self) -> list[str]:
        """What the check found, one line each, in the examiner's words (the
        GUI's verification dialogs)."""
        lines = [f"{s.field_name}: {s.summary}" for s in self.signatures] or [
            "Not signed: the report can have been changed without trace."
        ]
        if self.case_checked:
            lines.append(
                "Evidence hashes match the open case."
                if not self.evidence_problems
                else "Evidence MISMATCH: " + "; ".join(self.evidence_problems)
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "report_id": self.report_id,
            "signatures": [
                {**s.__dict__, "signing_time": str(s.signing_time)}
                for s in self.signatures
            ],
            "case_checked": self.case_checked,
            "evidence_problems": list(self.evidence_problems),
            "changes_since": list(self.changes_since),
        }


def verify_report(
    pdf: str | Path,
    *,
    trust: Sequence[Any] = (),
    case: Case | None = None,
) -> ReportCheck:
    """Signatures (trusting only ``trust``) and, with ``case``, the evidence hashes."""
    path = Path(pdf)
    if not path.is_file():
        raise BadInputError("report not found", path)
    data = path.read_bytes()
    try:
        statuses = tuple(verify_pdf(data, trust=list(trust)))
        manifest = read_manifest(data)
    except BadInputError as error:
        raise BadInputError(error.reason, path) from None
    problems: list[str] = []
    changes: list[str] = []
    if case is not None:
        if manifest is None:
            problems.append("the report carries no XFR manifest to compare with")
        else:
            problems += _compare_with_case(manifest, case)
            if not problems:
                changes = changes_since(manifest, case)
    return ReportCheck(
        statuses,
        tuple(problems),
        case is not None,
        None if manifest is None else manifest.get("report_id"),
        tuple(changes),
    )


def _compare_with_case(manifest: dict[str, Any], case: Case) -> list[str]:
    problems = []
    info = case.info()
    if manifest.get("case_uuid") != info.case_uuid:
        problems.append(
            f"the report is about case {manifest.get('case_number')} "
            f"({manifest.get('case_uuid')}), not this case ({info.case_uuid})"
        )
    stored = {e.mark: e.sha256 for e in case.exhibits()}
    for exhibit in manifest.get("exhibits", []):
        mark, digest = exhibit.get("mark"), exhibit.get("sha256")
        if mark not in stored:
            problems.append(f"exhibit {mark} of the report is not in the case")
        elif stored[mark] != digest:
            problems.append(
                f"exhibit {mark}: the report states SHA-256 {digest}, the case holds "
                f"{stored[mark]}"
            )
    head = manifest.get("audit_head")
    anchor = None
    if isinstance(head, dict):
        anchor = {
            "case_uuid": manifest.get("case_uuid"),
            "case_number": manifest.get("case_number"),
            "seq": head.get("seq"),
            "hash": head.get("hash"),
            "state_digest": manifest.get("state_digest"),
            "time": manifest.get("anchored", "when the report was made"),
        }
    else:
        problems.append(
            "the report carries no audit head (made by an XFR version before 0.2), "
            "so it cannot be tied to a state of the case"
        )
    report = case.verify(anchor=anchor)
    problems += [f"case: {p}" for p in report.problems]
    return problems


def changes_since(manifest: dict[str, Any], case: Case) -> list[str]:
    """What was done in the case after the state a report describes, in words.

    The report's own ``report.generate`` entry is not a change of the case.
    """
    head = manifest.get("audit_head")
    if not isinstance(head, dict) or not isinstance(head.get("seq"), int):
        return []
    later = [
        entry
        for entry in case.entries_after(head["seq"])
        if not (
            entry.action == "report.generate"
            and entry.details.get("report_id") == manifest.get("report_id")
        )
    ]
    return [
        f"entry {e.seq}, {e.time}, {e.user}: {e.action}"
        + (f" ({_short_details(e.details)})" if e.details else "")
        for e in later
    ]


def _short_details(details: Mapping[str, Any]) -> str:
    text = json.dumps(details, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 100 else text[:99] + "…"
