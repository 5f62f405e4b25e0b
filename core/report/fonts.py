"""Fonts for PDF reports: every script an examiner may type, embedded in the PDF.

Reportlab's 14 standard fonts only cover Latin-1 and rely on the reader's fonts, so
a report built with them loses names such as "محمد" or "张伟" (or shows them as
boxes). This module registers embeddable TrueType fonts with reportlab and turns
arbitrary user text into Paragraph markup (:func:`markup`) or a canvas string
(:func:`plain`) that renders correctly with them.

Where the glyphs come from (only installed Python packages: nothing is read from
the system font directories and nothing is downloaded at run time):

* ``matplotlib`` ships DejaVu Sans (regular, bold, oblique, bold oblique) and DejaVu
  Sans Mono in ``matplotlib/mpl-data/fonts/ttf/``. DejaVu Sans regular and bold
  cover Latin with diacritics, Greek, Cyrillic, Hebrew and Arabic (including the
  Arabic presentation forms that shaping produces). The oblique faces have no
  Arabic glyphs, so :func:`markup` only uses regular and bold. Licence: the DejaVu
  fonts are free software (a Bitstream Vera derivative under the Bitstream Vera
  licence; DejaVu's changes are public domain), embedding allowed.
* ``rinoh-typeface-notosanscjk`` ships Noto Sans CJK JP regular and bold (one font
  for Chinese, Japanese and Korean; licence SIL Open Font License 1.1, embedding
  allowed). Those are OpenType/CFF fonts, which reportlab's ``TTFont`` cannot
  load, so for each set of CJK characters a report needs, :func:`cjk_subset_ttf`
  cuts a subset with ``fontTools.subset`` and converts its cubic CFF outlines to
  quadratic TrueType ``glyf`` outlines (``fontTools.pens.cu2quPen``), and that
  small TrueType font is registered and embedded. The package is only located on
  disk (``importlib.util.find_spec``), never imported: its ``__init__`` imports
  rinohtype.
* Without that package, CJK characters fall back to one of reportlab's built-in
  CID fonts (``STSong-Light``, ``HeiseiKakuGo-W5``, ``HYGothic-Medium``). Those are
  NOT embedded: the reader's PDF viewer has to supply the glyphs. They never
  vanish silently: :func:`fonts_embedded_for` says False and
  :func:`coverage_warning` returns a sentence that a report can print.
* ``arabic-reshaper`` (MIT) joins Arabic letters into their contextual forms
  (reportlab does no shaping) and ``python-bidi`` (LGPL-3.0) reorders right-to-left
  runs (Arabic, Hebrew) into display order, line by line, so they read correctly
  on the page, which reportlab draws left to right.

Limits: bidi reordering is done per source line (``\\n``), before reportlab wraps
the paragraph. :func:`markup` joins the words of right-to-left runs of up to
``RTL_KEEP_TOGETHER`` characters with no-break spaces so that reportlab never
wraps inside them (names stay whole); a longer right-to-left run that has to be
broken over two lines comes out with its lines in the wrong reading order. That
suits names and short notes, not long right-to-left prose.
Combining marks are drawn without OpenType positioning (reportlab does not apply
GPOS), so stacked diacritics can be approximate; Arabic harakat are kept (not
deleted, unlike arabic-reshaper's default) and python-bidi keeps each one after
its letter when reversing, so DejaVu draws it over that letter.
Characters that no font here covers (e.g. Devanagari, Thai, emoji) are drawn in
DejaVu Sans as its ".notdef" box and reported by :func:`coverage_warning`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = [
    "DEJAVU_FILES",
    "FontSet",
    "canvas_maker",
    "cjk_dir",
    "cjk_package_available",
    "cjk_subset_ttf",
    "coverage_warning",
    "dejavu_dir",
    "fonts_embedded_for",
    "markup",
    "plain",
    "register_fonts",
    "shape",
]

#: Names under which the base fonts are registered with reportlab.
FAMILY = "XFRSans"
REGULAR = "XFRSans"
BOLD = "XFRSans-Bold"
ITALIC = "XFRSans-Oblique"
BOLD_ITALIC = "XFRSans-BoldOblique"
MONO = "XFRSansMono"

DEJAVU_FILES = {
    REGULAR: "DejaVuSans.ttf",
    BOLD: "DejaVuSans-Bold.ttf",
    ITALIC: "DejaVuSans-Oblique.ttf",
    BOLD_ITALIC: "DejaVuSans-BoldOblique.ttf",
    MONO: "DejaVuSansMono.ttf",
}

_CJK_PACKAGE = "rinoh_typeface_notosanscjk"
_CJK_FILES = {False: "notosanscjkjp-regular.otf", True: "notosanscjkjp-bold.otf"}

#: Reportlab's built-in (non-embedded) CID fonts used when no CJK font is installed.
CID_CHINESE = "STSong-Light"
CID_JAPANESE = "HeiseiKakuGo-W5"
CID_KOREAN = "HYGothic-Medium"

_lock = threading.RLock()


# --------------------------------------------------------------------------- paths


@cache
def dejavu_dir() -> Path:
    """The DejaVu TTF folder matplotlib ships (the PDF report's Latin fonts)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "PDF report fonts need matplotlib (it ships the DejaVu fonts)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data/fonts/ttf"


@cache
def cjk_dir() -> Path | None:
    """Directory of the installed Noto Sans CJK package, or None (not imported)."""
    spec = importlib.util.find_spec(_CJK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not all((folder / name).is_file() for name in _CJK_FILES.values()):
        return None
    return folder


def cjk_package_available() -> bool:
    """True when CJK text can be set in an embedded font (Noto Sans CJK)."""
    return cjk_dir() is not None


# ------------------------------------------------------------------- registration


@dataclass
class FontSet:
    """Names of the registered fonts, plus per-document CJK subsets.

    ``regular``/``bold``/``italic``/``bold_italic`` form the reportlab family
    ``family`` (so ``<b>``/``<i>`` work in Paragraph markup); use ``regular`` as
    the ``fontName`` of Paragraph styles and for canvas text set with
    :meth:`plain`.
    """

    family: str = FAMILY
    regular: str = REGULAR
    bold: str = BOLD
    italic: str = ITALIC
    bold_italic: str = BOLD_ITALIC
    mono: str = MONO
    #: Characters whose CJK glyphs the document's subsets hold (see register_fonts).
    cjk_text: str = ""
    _cjk_fonts: dict[bool, str] = field(default_factory=dict, repr=False)

    def markup(self, text: str, *, bold: bool = False) -> str:
        """Paragraph markup for ``text``; see the module function :func:`markup`."""
        return _markup(self, text, bold=bold)

    def plain(self, text: str) -> str:
        """Shaped display string for canvas.drawString with ``self.regular``."""
        return plain(text)

    def cjk_font(self, chars: str, *, bold: bool = False) -> str:
        """Registered font name for CJK ``chars`` (the document subset if it has
        them all, else a subset made for these characters)."""
        if set(chars) <= set(self.cjk_text):
            name = self._cjk_fonts.get(bold)
            if name is None:
                name = _register_cjk_subset(self.cjk_text, bold=bold)
                self._cjk_fonts[bold] = name
            return name
        return _register_cjk_subset(chars, bold=bold)


_registered = False


def register_fonts(texts: Iterable[str] = ()) -> FontSet:
    """Register the report fonts with reportlab (idempotent) and return their names.

    ``texts``: every string the document will contain, optionally. Their CJK
    characters are gathered so that the whole document shares one embedded CJK
    subset per weight (made lazily, on first use by :meth:`FontSet.markup`);
    without them each :func:`markup` call gets a subset for its own characters,
    which is also correct, only with more (small) fonts in the PDF.
    """
    global _registered
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    with _lock:
        if not _registered:
            folder = dejavu_dir()
            for name, filename in DEJAVU_FILES.items():
                pdfmetrics.registerFont(TTFont(name, str(folder / filename)))
            pdfmetrics.registerFontFamily(
                FAMILY,
                normal=REGULAR,
                bold=BOLD,
                italic=ITALIC,
                boldItalic=BOLD_ITALIC,
            )
            for bold in (0, 1):
                for italic in (0, 1):
                    addMapping(MONO, bold, italic, MONO)
            _registered = True
    cjk = "".join(sorted({c for t in texts for c in t if _needs_cjk(c)}))
    return FontSet(cjk_text=cjk)


def canvas_maker(**kwargs):
    """A reportlab Canvas factory for ``doc.build(story, canvasmaker=...)``.

    Reportlab's canvas starts every page with its base font (Helvetica, one of the
    14 standard fonts, never embedded), which then appears in every page's font
    resources. This canvas starts with DejaVu Sans instead, so that the PDF holds
    embedded fonts only. (Equivalent: pass ``initialFontName=REGULAR`` to the
    DocTemplate.) ``kwargs`` go to every Canvas made.
    """
    from reportlab.pdfgen.canvas import Canvas

    register_fonts()

    def make(*args, **kw):
        kw = {**kw, **kwargs}
        if not kw.get("initialFontName"):
            kw["initialFontName"] = REGULAR
        return Canvas(*args, **kw)

    return make


@cache
def _base_cmap(bold: bool) -> frozenset[int]:
    from reportlab.pdfbase import pdfmetrics

    register_fonts()
    font = pdfmetrics.getFont(BOLD if bold else REGULAR)
    return frozenset(font.face.charToGlyph)


@cache
def _cjk_cmap() -> frozenset[int]:
    folder = cjk_dir()
    if folder is None:
        return frozenset()
    from fontTools.ttLib import TTFont as FTFont

    with FTFont(folder / _CJK_FILES[False], lazy=True) as font:
        return frozenset(font.getBestCmap())


def _in_base(ch: str, bold: bool) -> bool:
    return ord(ch) in _base_cmap(bold)


def _is_cjk_range(cp: int) -> bool:
    return (
        0x1100 <= cp <= 0x11FF  # Hangul Jamo
        or 0x2E80 <= cp <= 0x2FDF  # CJK radicals, Kangxi
        or 0x2FF0 <= cp <= 0x303F  # ideographic description, CJK punctuation
        or 0x3040 <= cp <= 0x31FF  # kana, bopomofo, Hangul compat jamo, etc.
        or 0x3200 <= cp <= 0x4DBF  # enclosed CJK, compatibility, Ext A
        or 0x4E00 <= cp <= 0x9FFF  # CJK unified ideographs
        or 0xA960 <= cp <= 0xA97F  # Hangul Jamo Ext A
        or 0xAC00 <= cp <= 0xD7FF  # Hangul syllables, Jamo Ext B
        or 0xF900 <= cp <= 0xFAFF  # CJK compatibility ideographs
        or 0xFE30 <= cp <= 0xFE4F  # CJK compatibility forms
        or 0xFF00 <= cp <= 0xFFEF  # half/fullwidth forms
        or 0x20000 <= cp <= 0x3FFFF  # ideographs, supplementary planes
    )


def _needs_cjk(ch: str) -> bool:
    """True for characters the base font lacks that go to the CJK font."""
    if _in_base(ch, False):
        return False
    cp = ord(ch)
    if cjk_package_available():
        return cp in _cjk_cmap()
    return _is_cjk_range(cp)


# ------------------------------------------------------------------------ shaping


@cache
def _reshaper():
    import arabic_reshaper

    config = dict(
        arabic_reshaper.config_for_true_type_font(
            str(dejavu_dir() / DEJAVU_FILES[REGULAR]),
            arabic_reshaper.ENABLE_ALL_LIGATURES,
        )
    )
    # Keep the harakat (vowel marks) of names: deleting them changes the text.
    # No shifting: python-bidi already leaves each mark after its letter.
    config.update(delete_harakat=False, shift_harakat_position=False)
    return arabic_reshaper.ArabicReshaper(configuration=config)


def _has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(c) in ("R", "AL") for c in text)


def _has_arabic(text: str) -> bool:
    return any(unicodedata.bidirectional(c) == "AL" for c in text)


def shape(text: str) -> str:
    """Display-order text: Arabic letters joined, right-to-left runs reversed.

    Done per line; lines without right-to-left characters come back unchanged.
    """
    lines = []
    for line in text.split("\n"):
        if _has_rtl(line):
            from bidi.algorithm import get_display

            if _has_arabic(line):
                line = _reshaper().reshape(line)
            line = get_display(line)
        lines.append(line)
    return "\n".join(lines)


def plain(text: str) -> str:
    """Shaped single-font string for ``canvas.drawString`` (headers, footers).

    Use it with :data:`REGULAR` (``FontSet.regular``). Line breaks become spaces;
    CJK and other characters that DejaVu Sans lacks are drawn as boxes: use a
    Paragraph with :func:`markup` for text that may contain them.
    """
    register_fonts()
    return shape(" ".join(text.splitlines()))


# ------------------------------------------------------------------------- markup


def _cid_font_for(run: str) -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    cps = [ord(c) for c in run]
    if any(
        0x1100 <= c <= 0x11FF or 0x3130 <= c <= 0x318F or 0xAC00 <= c <= 0xD7AF
        for c in cps
    ):
        name = CID_KOREAN
    elif any(0x3040 <= c <= 0x30FF or 0x31F0 <= c <= 0x31FF for c in cps):
        name = CID_JAPANESE
    else:
        name = CID_CHINESE
    with _lock:
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(name))
    return name


def _split_runs(line: str, bold: bool) -> list[tuple[bool, str]]:
    """Split a display-order line into (is_cjk, text) runs. Spaces that DejaVu
    has go to the base font (so they need not be in CJK subsets)."""
    runs: list[tuple[bool, str]] = []
    for ch in line:
        kind = False if _in_base(ch, bold) else _needs_cjk(ch)
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + ch)
        else:
            runs.append((kind, ch))
    return runs


#: Right-to-left runs up to this long are kept on one line of the paragraph.
RTL_KEEP_TOGETHER = 40


def _is_rtl_char(ch: str) -> bool:
    return unicodedata.bidirectional(ch) in ("R", "AL", "NSM") and not ch.isspace()


def _glue_rtl_runs(line: str) -> str:
    """Turn the spaces inside short right-to-left runs of a display-order line
    into no-break spaces, so that reportlab does not wrap inside them (its line
    breaking would put the words of a reversed run on the wrong lines)."""
    out = list(line)
    i = 0
    while i < len(line):
        if not _is_rtl_char(line[i]):
            i += 1
            continue
        j = end = i
        while j < len(line) and (_is_rtl_char(line[j]) or line[j] == " "):
            if line[j] != " ":
                end = j + 1
            j += 1
        if end - i <= RTL_KEEP_TOGETHER:
            for k in range(i, end):
                if out[k] == " ":
                    out[k] = "\u00a0"
        i = max(end, i + 1)
    return "".join(out)


def _markup(fonts: FontSet, text: str, *, bold: bool) -> str:
    base = fonts.bold if bold else fonts.regular
    out_lines = []
    for line in shape(text).split("\n"):
        line = _glue_rtl_runs(line)
        parts = []
        for is_cjk, run in _split_runs(line, bold):
            if not is_cjk:
                name = base
            elif cjk_package_available():
                name = fonts.cjk_font(run, bold=bold)
            else:
                name = _cid_font_for(run)
            parts.append(f'<font name="{name}">{escape(run)}</font>')
        out_lines.append("".join(parts))
    return "<br/>".join(out_lines)


def markup(text: str, *, bold: bool = False, fonts: FontSet | None = None) -> str:
    """Reportlab Paragraph markup for user text in any script.

    XML special characters are escaped (the result is safe to embed in other
    markup); right-to-left runs are shaped and reordered (:func:`shape`); every run
    is wrapped in ``<font name="...">`` of a registered font: DejaVu Sans (bold if
    ``bold``) where it has the glyphs, else an embedded Noto Sans CJK subset, or a
    non-embedded CID font when the CJK package is missing. Line breaks become
    ``<br/>``. ``fonts``: the document's :func:`register_fonts` result, so that all
    paragraphs share one CJK subset; without it a subset per call is used.
    """
    if fonts is None:
        fonts = register_fonts()
    return _markup(fonts, text, bold=bold)


# -------------------------------------------------------------------- diagnostics


def _uncovered(text: str) -> set[str]:
    """Printable characters no font here has a glyph for."""
    cjk = _cjk_cmap()
    return {
        c
        for c in shape(text)
        if not c.isspace()
        and unicodedata.category(c)[0] != "C"
        and not _in_base(c, False)
        and ord(c) not in cjk
        and not (not cjk and _is_cjk_range(ord(c)))
    }


def fonts_embedded_for(text: str) -> bool:
    """True when every character of ``text`` is drawn with an embedded font
    (False when CJK characters fall back to a reader-supplied CID font, or when
    some character has no glyph at all)."""
    if _uncovered(text):
        return False
    if cjk_package_available():
        return True
    return not any(_needs_cjk(c) for c in text)


def coverage_warning(texts: Iterable[str] | str) -> str | None:
    """A sentence for the report when some characters are not set in embedded
    fonts, or None when everything is."""
    if isinstance(texts, str):
        texts = [texts]
    joined = "\n".join(texts)
    missing = sorted(_uncovered(joined))
    cid = (
        [] if cjk_package_available() else sorted({c for c in joined if _needs_cjk(c)})
    )
    notes = []
    if cid:
        notes.append(
            "Chinese/Japanese/Korean characters in this report ("
            + "".join(cid[:20])
            + ("…" if len(cid) > 20 else "")
            + ") are not embedded: they are displayed with the PDF reader's own"
            " fonts (install the rinoh-typeface-notosanscjk package to embed them)."
        )
    if missing:
        notes.append(
            "Some characters have no glyph in the report fonts and are shown as"
            " boxes: "
            + " ".join(f"U+{ord(c):04X}" for c in missing[:20])
            + (" …" if len(missing) > 20 else "")
            + "."
        )
    return " ".join(notes) or None


# ------------------------------------------------------------- CJK subset (cu2qu)

_ALWAYS = " \u00a0"  # in every CJK subset
_CU2QU_MAX_ERR = 1.0  # font units (of 1000/em): invisible at any print size
_subset_cache: dict[tuple[bool, str], bytes] = {}
_registered_cjk: dict[tuple[bool, str], str] = {}


def _otf_to_ttf(font) -> None:
    """Convert a fontTools TTFont with CFF outlines to TrueType outlines in place."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in glyph_order:
        tt_pen = TTGlyphPen(glyph_set)
        # CFF contours run counter-clockwise, TrueType ones clockwise.
        glyph_set[name].draw(Cu2QuPen(tt_pen, _CU2QU_MAX_ERR, reverse_direction=True))
        glyphs[name] = tt_pen.glyph()

    font["loca"] = newTable("loca")
    glyf = font["glyf"] = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = glyphs
    del font["CFF "]
    for tag in ("VORG", "CFF2"):
        if tag in font:
            del font[tag]
    glyf.compile(font)  # computes the bounding boxes

    hmtx = font["hmtx"]
    for name, glyph in glyphs.items():
        advance, _ = hmtx.metrics[name]
        hmtx.metrics[name] = (advance, getattr(glyph, "xMin", 0))

    maxp = font["maxp"] = newTable("maxp")
    maxp.tableVersion = 0x00010000
    maxp.maxZones = 1
    maxp.maxTwilightPoints = 0
    maxp.maxStorage = 0
    maxp.maxFunctionDefs = 0
    maxp.maxInstructionDefs = 0
    maxp.maxStackElements = 0
    maxp.maxSizeOfInstructions = 0
    maxp.maxComponentElements = 0

    head = font["head"]
    head.glyphDataFormat = 0
    post = font["post"]
    post.formatType = 3.0  # no glyph names needed
    font.sfntVersion = "\x00\x01\x00\x00"


def cjk_subset_ttf(chars: str, *, bold: bool = False) -> bytes:
    """TrueType bytes of Noto Sans CJK JP holding only ``chars`` (cached).

    Raises RuntimeError when the CJK font package is not installed.
    """
    folder = cjk_dir()
    if folder is None:
        raise RuntimeError(f"{_CJK_PACKAGE} is not installed")
    # Reportlab's Paragraph turns any whitespace (U+3000 included) into U+0020
    # set in the font of the run it is in, so every subset gets the ASCII spaces.
    chars = "".join(sorted(set(chars) | set(_ALWAYS)))
    key = (bold, chars)
    with _lock:
        cached = _subset_cache.get(key)
        if cached is not None:
            return cached
        from fontTools import subset
        from fontTools.ttLib import TTFont as FTFont

        options = subset.Options()
        options.layout_features = []
        options.hinting = False
        options.desubroutinize = True
        options.notdef_outline = True
        options.drop_tables += ["VORG", "vhea", "vmtx", "BASE", "DSIG"]
        options.drop_tables += ["GSUB", "GPOS", "GDEF"]
        with FTFont(folder / _CJK_FILES[bold], lazy=True) as font:
            subsetter = subset.Subsetter(options)
            subsetter.populate(text=chars)
            subsetter.subset(font)
            _otf_to_ttf(font)
            # A name of its own per subset: reportlab keys embedded faces by the
            # font's internal name, so two subsets both called "NotoSansCJKjp-..."
            # would share one face and lose glyphs in the second document.
            digest = hashlib.sha1(key[1].encode("utf-8")).hexdigest()[:12]
            unique = f"XFRNotoCJK{'Bold' if bold else ''}-{digest}"
            for record in font["name"].names:
                if record.nameID in (1, 3, 4, 6):
                    record.string = unique
            buffer = io.BytesIO()
            font.save(buffer)
        data = buffer.getvalue()
        _subset_cache[key] = data
        return data


def _register_cjk_subset(chars: str, *, bold: bool) -> str:
    """Register (once) a CJK subset font holding ``chars``; return its name."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    chars = "".join(sorted(set(chars)))
    key = (bold, chars)
    with _lock:
        name = _registered_cjk.get(key)
        if name is not None:
            return name
        digest = hashlib.sha1(chars.encode("utf-8")).hexdigest()[:12]
        name = f"XFRNotoCJK-{'Bold' if bold else 'Regular'}-{digest}"
        data = cjk_subset_ttf(chars, bold=bold)
        pdfmetrics.registerFont(TTFont(name, io.BytesIO(data)))
        # A family of one, so that <b>/<i> around it in markup do not fail.
        for b in (0, 1):
            for i in (0, 1):
                addMapping(name, b, i, name)
        _registered_cjk[key] = name
        return name
