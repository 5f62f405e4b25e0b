"""Help → Manual: a short manual in the app (no network), opened with F1.

The written part (the workflow) is ``resources/manual/manual.md``; the rest is
generated every time it opens, so it cannot drift from the program: what each map
kind means (``core.wording.READINGS``), the explanation methods and their
descriptions (``core.explain.infos()``), what the faithfulness verdicts mean
(``core.wording.VERDICT_MEANINGS``) and the keyboard shortcuts of the window (its
own QActions and QShortcuts).
"""

from __future__ import annotations

import re
from importlib.resources import files

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import QDialog, QTextBrowser, QVBoxLayout, QWidget

from core.explain import infos
from core.wording import READINGS, VERDICT_MEANINGS

MANUAL_RESOURCE = ("resources", "manual/manual.md")
KEY_FORMAT = QKeySequence.SequenceFormat.NativeText


def manual_text() -> str:
    """The written part of the manual (Markdown)."""
    package, name = MANUAL_RESOURCE
    return files(package).joinpath(name).read_text(encoding="utf-8")


def key_text(sequence: QKeySequence) -> str:
    """A key sequence as the manual and the menus show it."""
    return sequence.toString(KEY_FORMAT)


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").strip()


def window_shortcuts(window: QWidget) -> list[tuple[str, str]]:
    """(what it does, keys) for every action and shortcut of ``window`` that has
    keys, in menu order, each once."""
    found: list[tuple[str, str]] = []
    for action in window.findChildren(QAction):
        what = _plain(action.text()) or action.toolTip() or action.objectName()
        for sequence in action.shortcuts():
            found.append((what, key_text(sequence)))
    for shortcut in window.findChildren(QShortcut):
        what = shortcut.whatsThis() or shortcut.objectName() or "(shortcut)"
        for sequence in shortcut.keys():
            found.append((what, key_text(sequence)))
    unique: list[tuple[str, str]] = []
    for entry in found:
        if entry[1] and entry not in unique:
            unique.append(entry)
    return unique


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def generated_sections(shortcuts: list[tuple[str, str]]) -> str:
    """The parts of the manual taken from the program itself (Markdown)."""
    lines = ["", "The three kinds of map:", ""]
    for kind, reading in READINGS.items():
        lines.append(f"- **{kind.capitalize()}**: {reading}")
    lines += ["", "## Explanation methods", ""]
    for info in infos():
        dissimilarity = (
            "similarity and dissimilarity maps"
            if info.has_dissimilarity
            else "similarity maps only"
        )
        control = " A control, not evidence." if info.control else ""
        lines.append(
            f"- **{info.display_name}** ({info.kind}; {dissimilarity}).{control} "
            f"{info.description}"
        )
    lines += ["", "## Faithfulness verdicts", ""]
    for verdict, meaning in VERDICT_MEANINGS.items():
        lines.append(f"- **{verdict.capitalize()}**: {meaning}")
    lines += ["", "## Keyboard shortcuts", "", "| Keys | Action |", "| --- | --- |"]
    for what, keys in shortcuts:
        lines.append(f"| {_cell(keys)} | {_cell(what)} |")
    return "\n".join(lines) + "\n"


def manual_markdown(window: QWidget) -> str:
    """The whole manual for ``window``: the written part and the generated parts."""
    return manual_text() + generated_sections(window_shortcuts(window))


def heading_anchor(heading: str) -> str:
    """GitHub-style anchor of a heading: lower case, spaces to hyphens."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def headings(markdown: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", markdown, re.M)]


def internal_links(markdown: str) -> list[str]:
    """The targets of the manual's ``[text](#anchor)`` links."""
    return re.findall(r"\]\(#([^)\s]+)\)", markdown)


class ManualWindow(QDialog):
    """The manual in a QTextBrowser; its ``#anchor`` links jump to headings."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("XFR Desktop manual")
        self.markdown = manual_markdown(window)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)  # no network, and anchors handled here
        self.browser.anchorClicked.connect(self._follow)
        self.browser.setMarkdown(self.markdown)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        self.resize(760, 620)

    def go_to(self, anchor: str) -> bool:
        """Scroll to the heading whose anchor is ``anchor``; False if none."""
        document = self.browser.document()
        block = document.begin()
        while block.isValid():
            if block.blockFormat().headingLevel() and (
                heading_anchor(block.text()) == anchor
            ):
                self.browser.setTextCursor(QTextCursor(block))
                top = document.documentLayout().blockBoundingRect(block).top()
                self.browser.verticalScrollBar().setValue(int(top))  # heading on top
                return True
            block = block.next()
        return False

    def _follow(self, url: QUrl) -> None:
        if url.hasFragment() and not url.scheme():
            self.go_to(url.fragment())
