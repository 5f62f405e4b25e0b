"""PDF report fonts: every script renders, fonts are embedded, text is extractable."""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("reportlab")
pypdf = pytest.importorskip("pypdf")
pytest.importorskip("arabic_reshaper")
pytest.importorskip("bidi")

from core.report import fonts  # noqa: E402

NAMES = {
    "latin": "Zoë Ångström",
    "greek": "Ελληνικά",
    "cyrillic": "Русский",
    "arabic": "محمد عبد الله",
    "hebrew": "שלום",
    "chinese": "张伟",
    "japanese": "山田太郎",
    "korean": "김민준",
}
CJK = ("chinese", "japanese", "korean")
FONT_SIZE = 20
LEADING = 32

needs_cjk_package = pytest.mark.skipif(
    not fonts.cjk_package_available(),
    reason="rinoh-typeface-notosanscjk is not installed: CJK is not embedded",
)


def _build_pdf(path: Path, texts: list[str]) -> fonts.FontSet:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    font_set = fonts.register_fonts(texts)
    style = ParagraphStyle(
        "name", fontName=font_set.regular, fontSize=FONT_SIZE, leading=LEADING
    )
    story = [Paragraph(font_set.markup(t), style) for t in texts]
    doc = SimpleDocTemplate(str(path), pagesize=A4)
    doc.build(story, canvasmaker=fonts.canvas_maker())
    return font_set


@pytest.fixture(scope="module")
def names_pdf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "names.pdf"
    _build_pdf(path, list(NAMES.values()))
    return path


def _page_fonts(pdf: Path) -> dict[str, object]:
    reader = pypdf.PdfReader(str(pdf))
    found = {}
    for page in reader.pages:
        resources = page["/Resources"].get_object()
        for ref in resources.get("/Font", {}).values():
            font = ref.get_object()
            found[str(font["/BaseFont"])] = font
    return found


def _is_embedded(font) -> bool:
    if font["/Subtype"] == "/Type0":
        font = font["/DescendantFonts"][0].get_object()
    descriptor = font.get("/FontDescriptor")
    if descriptor is None:
        return False
    descriptor = descriptor.get_object()
    return any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


# ------------------------------------------------------------------- unit checks


def test_markup_escapes_xml_and_names_registered_fonts():
    out = fonts.markup('Name <b>"A & B"</b>')
    assert "&lt;b&gt;" in out and "&amp;" in out and "<b>" not in out
    assert out.startswith(f'<font name="{fonts.REGULAR}">')
    assert fonts.markup("x", bold=True).startswith(f'<font name="{fonts.BOLD}">')
    assert fonts.markup("a\nb").count("<br/>") == 1


def test_arabic_is_joined_and_reversed_hebrew_reversed():
    # محمد -> final dal, medial meem, medial hah, initial meem (display order)
    assert fonts.shape("محمد") == "\ufeaa\ufee4\ufea4\ufee3"
    assert fonts.shape("שלום") == "םולש"
    # Left-to-right text around it keeps its order; only the RTL run turns.
    assert fonts.shape("ID 7: שלום!") == "ID 7: םולש!"
    assert fonts.shape("Zoë Ångström") == "Zoë Ångström"
    # The Allah ligature (U+FDF2) is not in DejaVu Sans: letters are kept.
    assert "\ufdf2" not in fonts.shape(NAMES["arabic"])
    assert fonts.plain("a\nשלום") == "a םולש"
    # Words of a short right-to-left run are glued so reportlab cannot wrap
    # inside it (that would put them on the wrong lines).
    out = fonts.markup("met שלום כהן today")
    assert "met ןהכ\u00a0םולש today" in out


def test_every_name_has_glyphs():
    assert fonts.coverage_warning(list(NAMES.values())) is None or (
        not fonts.cjk_package_available()
    )
    for key, text in NAMES.items():
        if key in CJK and not fonts.cjk_package_available():
            continue
        assert fonts.fonts_embedded_for(text), key
    warning = fonts.coverage_warning("Devanagari: नमस्ते")
    assert warning is not None and "U+0928" in warning
    assert not fonts.fonts_embedded_for("नमस्ते")


@pytest.mark.slow
@needs_cjk_package
def test_document_shares_one_cjk_subset_per_weight():
    texts = list(NAMES.values())
    font_set = fonts.register_fonts(texts)
    names = {font_set.markup(NAMES[k]).split('"')[1] for k in CJK}
    assert len(names) == 1
    (name,) = names
    assert name.startswith("XFRNotoCJK-Regular-")
    bold = font_set.markup(NAMES["chinese"], bold=True).split('"')[1]
    assert bold.startswith("XFRNotoCJK-Bold-")


@pytest.mark.slow
@needs_cjk_package
def test_cjk_subset_is_small_truetype():
    from fontTools.ttLib import TTFont

    data = fonts.cjk_subset_ttf("张伟山田太郎김민준")
    assert data[:4] == b"\x00\x01\x00\x00"  # TrueType outlines, not CFF
    assert len(data) < 50_000
    font = TTFont(io.BytesIO(data))
    assert "glyf" in font and "CFF " not in font
    cmap = font.getBestCmap()
    assert all(ord(c) in cmap for c in "张伟山田太郎김민준 ")
    # every ideograph has outlines
    assert all(font["glyf"][cmap[ord(c)]].numberOfContours > 0 for c in "张伟김")


# -------------------------------------------------------------------- the PDF


def test_pdf_fonts_are_all_embedded(names_pdf):
    found = _page_fonts(names_pdf)
    assert found
    not_embedded = sorted(n for n, f in found.items() if not _is_embedded(f))
    assert not_embedded == []
    assert any("DejaVuSans" in n for n in found)
    if fonts.cjk_package_available():
        assert any("XFRNotoCJK" in n for n in found)  # our renamed subsets


def test_pdf_text_is_extractable(names_pdf):
    text = "".join(p.extract_text() for p in pypdf.PdfReader(str(names_pdf)).pages)
    for key in ("latin", "greek", "cyrillic"):
        assert NAMES[key] in text, key
    # Hebrew: pypdf gives display or logical order depending on its version.
    assert "שלום" in text or "םולש" in text
    # Arabic is drawn as presentation forms; NFKC folds them back to letters.
    folded = unicodedata.normalize("NFKC", text)
    assert "محمد" in folded or "دمحم" in folded
    if fonts.cjk_package_available():
        for key in CJK:
            assert NAMES[key] in text, key


def _ink_rows(png: Path) -> list[tuple[int, int]]:
    from PIL import Image

    gray = np.asarray(Image.open(png).convert("L"))
    dark = (gray < 128).sum(axis=1) > 0
    bands, start = [], None
    for y, ink in enumerate(dark):
        if ink and start is None:
            start = y
        elif not ink and start is not None:
            bands.append((start, y))
            start = None
    if start is not None:
        bands.append((start, len(dark)))
    merged: list[tuple[int, int]] = []
    for top, bottom in bands:  # dots below Arabic letters are a band of their own
        if merged and top - merged[-1][1] <= 4:
            merged[-1] = (merged[-1][0], bottom)
        else:
            merged.append((top, bottom))
    return merged


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler missing")
def test_pdf_renders_every_line(names_pdf, tmp_path):
    dpi = 72  # 1 px per point
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(dpi),
            "-png",
            "-singlefile",
            str(names_pdf),
            str(tmp_path / "page"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    bands = _ink_rows(tmp_path / "page.png")
    # One band of ink per name, each about a glyph high, LEADING apart.
    assert len(bands) == len(NAMES), bands
    for top, bottom in bands:
        assert FONT_SIZE * 0.4 < bottom - top < LEADING, bands
    tops = [b[0] for b in bands]
    assert all(abs((b - a) - LEADING) <= 6 for a, b in itertools.pairwise(tops)), tops


def test_without_cjk_package_falls_back_to_cid_fonts_with_warning(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(fonts, "cjk_dir", lambda: None)
    fonts._cjk_cmap.cache_clear()
    try:
        assert not fonts.cjk_package_available()
        assert 'name="STSong-Light"' in fonts.markup(NAMES["chinese"])
        assert 'name="HYGothic-Medium"' in fonts.markup(NAMES["korean"])
        assert 'name="HeiseiKakuGo-W5"' in fonts.markup("やまだ")
        assert not fonts.fonts_embedded_for(NAMES["chinese"])
        assert fonts.fonts_embedded_for(NAMES["arabic"])
        warning = fonts.coverage_warning(list(NAMES.values()))
        assert warning is not None and "not embedded" in warning
        assert "张" in warning
        with pytest.raises(RuntimeError):
            fonts.cjk_subset_ttf("张")

        pdf = tmp_path / "fallback.pdf"
        _build_pdf(pdf, [NAMES["latin"], NAMES["chinese"], NAMES["korean"]])
        found = _page_fonts(pdf)
        # The CJK characters are still there, in reader-supplied CID fonts.
        assert any("STSong-Light" in n for n in found)
        assert any("HYGothic-Medium" in n for n in found)
        assert all(_is_embedded(f) for n, f in found.items() if "DejaVu" in n)
    finally:
        fonts._cjk_cmap.cache_clear()


@pytest.mark.skipif(not fonts.cjk_package_available(), reason="no CJK font package")
def test_a_second_document_keeps_its_own_cjk_glyphs():
    """Subsets share reportlab's face registry: each needs a name of its own."""
    import io

    from pypdf import PdfReader
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    def document(texts: list[str]) -> str:
        font_set = fonts.register_fonts(texts)
        style = getSampleStyleSheet()["BodyText"]
        style.fontName = font_set.regular
        buffer = io.BytesIO()
        SimpleDocTemplate(buffer, initialFontName=font_set.regular).build(
            [Paragraph(font_set.markup(t), style) for t in texts]
        )
        return PdfReader(io.BytesIO(buffer.getvalue())).pages[0].extract_text()

    assert "张伟" in document(["眉 张伟"])
    second = document(["张伟", "山田太郎", "김민준"])
    assert "山田太郎" in second and "김민준" in second
