"""Marks laid over issued PDFs for document control (ISO 9001 §7.5.3): a large diagonal
``作废`` / ``已收回`` on every page of a recalled or void copy, so that nobody works from it, and
a small ``受控文件 · 发放号 …`` box in the top-right corner of every page of an issued copy.

pypdf cannot lay out text (pitfalls B4), and reportlab cannot embed the OpenType/CFF Noto CJK
fonts, so each mark is drawn as an SVG of the page's size and turned into a one-page PDF by
LibreOffice Draw (``converter.convert_many(..., suffix=".svg")``), which embeds the font
subset; that page is then merged over every page of the document with pypdf. The caller's bytes
are never modified: every function returns a new PDF.

Cost: one LibreOffice run per call at most (all missing page sizes are converted as one batch)
and none at all when the stamp was made before in this process: stamp PDFs are cached by their
SVG text, so stamping ten documents of the same page size converts once.

LibreOffice Draw paints every page with an opaque white background before its content. A stamp
merged *over* a page would hide the document, so that one full-page white fill is turned into
a no-op (``n``) before the stamp is used (:func:`_clear_page_fill`).

Stamping rewrites the page content: it invalidates digital signatures and the PDF/A claim of
the input (pitfalls B4). Stamp copies, not the archived original.
"""
from __future__ import annotations

import io
import math
import re
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, Iterable
from xml.sax.saxutils import escape

from pypdf import PageObject, PdfReader, PdfWriter, Transformation
from pypdf.errors import PyPdfError
from pypdf.generic import ContentStream, NameObject

from .errors import ConversionError
from .text import clean_line

if TYPE_CHECKING:  # pragma: no cover
    from .convert import Converter

__all__ = ["stamp_svg", "copy_box_svg", "void_stamp", "controlled_copy", "controlled_copies",
           "clear_stamp_cache", "FONT_FAMILY"]

FONT_FAMILY = "Noto Sans CJK SC"
PT_PER_MM = 72 / 25.4

VOID_WORD_SIZE = 120.0  # pt, the 作废 / 已收回 of a void copy
VOID_LINE_SIZE = 24.0  # pt, the "2026年11月26日 · 换版收回" line below it
MIN_LINE_SIZE = 10.0  # pt; a long reason shrinks down to this, then the whole stamp shrinks

# The controlled-copy box: right edge on the text column's right edge (house templates have
# 2 cm side margins), inside the top margin above the header (header starts 1.3 cm from the top).
COPY_RIGHT = 20 * PT_PER_MM
COPY_TOP = 2.5 * PT_PER_MM
COPY_TITLE_SIZE = 9.5
COPY_LABEL_SIZE = 7.0

_CACHE_SIZE = 64
_cache: "OrderedDict[str, bytes]" = OrderedDict()
_cache_lock = threading.Lock()

_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


# --- SVG -------------------------------------------------------------------------------------

def stamp_svg(width_pt: float, height_pt: float, lines: list[tuple[str, float]], *,
              rotate: float = -35, colour: str = "#c00000", opacity: float = 0.55) -> str:
    """An SVG page of ``width_pt`` × ``height_pt`` with ``lines`` (text, font size in pt) stacked
    and centred on the page, turned by ``rotate`` degrees (negative: rising to the right), in
    bold Noto Sans CJK SC. The first line is the main word, framed like a rubber stamp (a
    thick rounded border with a thin inner one). Lines too long for the page get a smaller
    font, and the whole mark shrinks to fit small pages."""
    _check_page(width_pt, height_pt)
    _check_paint(colour, opacity)
    items = [(_clean(text), float(size)) for text, size in lines]
    items = [(text, size) for text, size in items if text]
    if not items:
        raise ValueError("stamp_svg: no text to draw")
    angle = math.radians(rotate)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    # the longest line through the centre at this angle, less a margin
    room = 0.8 * min(width_pt / cos if cos > 1e-6 else math.inf,
                     height_pt / sin if sin > 1e-6 else math.inf)
    sized = []
    for text, size in items:
        width = text_width(text, size)
        if width > room:
            size = max(MIN_LINE_SIZE, size * room / width)
        sized.append((text, size))

    main_text, main_size = sized[0]
    border = 0.06 * main_size
    pad_x, pad_y = 0.22 * main_size, 0.14 * main_size
    frame_w = text_width(main_text, main_size) + 2 * pad_x
    frame_h = main_size + 2 * pad_y
    gap = 0.12 * main_size
    rest_h = sum(size * 1.25 for _, size in sized[1:])
    block_w = max([frame_w + border] + [text_width(t, sz) for t, sz in sized[1:]])
    # The framed word sits on the page's centre and the other lines hang below it, so the
    # mark is as tall as twice its lower half for the fit.
    half_up = (frame_h + border) / 2
    half_down = half_up + (gap + rest_h if len(sized) > 1 else 0)
    block_h = 2 * max(half_up, half_down)
    # shrink the whole mark if its turned bounding box does not fit 90 % of the page
    turned_w = block_w * cos + block_h * sin
    turned_h = block_w * sin + block_h * cos
    scale = min(1.0, 0.9 * width_pt / turned_w, 0.9 * height_pt / turned_h)

    # coordinates relative to the frame's centre, y downwards (SVG)
    frame_top = -frame_h / 2
    parts = [
        f'<rect x="{_n(-frame_w / 2)}" y="{_n(frame_top)}" width="{_n(frame_w)}" '
        f'height="{_n(frame_h)}" rx="{_n(0.16 * main_size)}" fill="none" stroke="{colour}" '
        f'stroke-width="{_n(border)}"/>',
        f'<rect x="{_n(-frame_w / 2 + 2.2 * border)}" y="{_n(frame_top + 2.2 * border)}" '
        f'width="{_n(frame_w - 4.4 * border)}" height="{_n(frame_h - 4.4 * border)}" '
        f'rx="{_n(0.09 * main_size)}" fill="none" stroke="{colour}" '
        f'stroke-width="{_n(border / 3)}"/>',
        _text(main_text, main_size, frame_top + frame_h / 2 + _centre_drop(main_size)),
    ]
    y = frame_top + frame_h + border / 2 + gap
    for text, size in sized[1:]:
        line_h = size * 1.25
        parts.append(_text(text, size, y + line_h / 2 + _centre_drop(size)))
        y += line_h
    body = "\n    ".join(parts)
    return (_svg_open(width_pt, height_pt)
            + f'  <g transform="translate({_n(width_pt / 2)} {_n(height_pt / 2)}) '
              f'rotate({_n(rotate)}) scale({_n(scale)})" opacity="{_n(opacity)}" '
              f'fill="{colour}" font-family="{FONT_FAMILY}" font-weight="bold" '
              f'text-anchor="middle">\n    {body}\n  </g>\n</svg>\n')


def copy_box_svg(width_pt: float, height_pt: float, copy_label: str, *,
                 colour: str = "#c00000", opacity: float = 0.9) -> str:
    """An SVG page with a small red-bordered box in the top-right corner reading 受控文件 and,
    below it, ``发放号 {copy_label}``: its right edge 2 cm from the page's right edge, in the
    top margin above the header line of the house templates."""
    _check_page(width_pt, height_pt)
    _check_paint(colour, opacity)
    label = _clean(copy_label)
    if not label:
        raise ValueError("copy_box_svg: empty copy label")
    title, second = "受控文件", f"发放号 {label}"
    border, pad_x, pad_y, between = 1.0, 5.0, 2.5, 1.5
    box_w = max(text_width(title, COPY_TITLE_SIZE), text_width(second, COPY_LABEL_SIZE)) + 2 * pad_x
    box_h = COPY_TITLE_SIZE + between + COPY_LABEL_SIZE + 2 * pad_y
    right = min(width_pt - COPY_RIGHT, 0.95 * width_pt)
    x0 = max(border, right - box_w)
    y0 = min(COPY_TOP, 0.05 * height_pt)
    cx = x0 + box_w / 2
    title_y = y0 + pad_y + COPY_TITLE_SIZE / 2 + _centre_drop(COPY_TITLE_SIZE)
    label_y = (y0 + pad_y + COPY_TITLE_SIZE + between + COPY_LABEL_SIZE / 2
               + _centre_drop(COPY_LABEL_SIZE))
    return (_svg_open(width_pt, height_pt)
            + f'  <g opacity="{_n(opacity)}" fill="{colour}" font-family="{FONT_FAMILY}" '
              f'font-weight="bold" text-anchor="middle">\n'
              f'    <rect x="{_n(x0)}" y="{_n(y0)}" width="{_n(box_w)}" height="{_n(box_h)}" '
              f'rx="2" fill="none" stroke="{colour}" stroke-width="{_n(border)}"/>\n'
              f'    {_text(title, COPY_TITLE_SIZE, title_y, x=cx)}\n'
              f'    {_text(second, COPY_LABEL_SIZE, label_y, x=cx, bold=False)}\n'
              f'  </g>\n</svg>\n')


def text_width(text: str, size: float) -> float:
    """Estimated advance of ``text`` in bold Noto Sans CJK at ``size`` pt (ideographs and
    full-width forms 1 em, Latin and digits about 0.6 em); good enough to size a frame."""
    em = 0.0
    for ch in text:
        code = ord(ch)
        if ch == " ":
            em += 0.25
        elif code >= 0x2E80 or ch in "·—…":
            em += 1.0
        elif ch in "il.,:;'|!":
            em += 0.3
        elif ch.isupper() or ch in "mwMW@%&":
            em += 0.72
        else:
            em += 0.6
    return em * size


def _svg_open(width_pt: float, height_pt: float) -> str:
    # Page size in mm: LibreOffice Draw keeps a mm size exactly, a pt or px size gets ~0.75 pt
    # added. The viewBox stays in pt, so everything inside is drawn in points.
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_pt / PT_PER_MM:.4f}mm" '
            f'height="{height_pt / PT_PER_MM:.4f}mm" viewBox="0 0 {_n(width_pt)} {_n(height_pt)}">\n')


def _text(text: str, size: float, baseline: float, *, x: float = 0.0, bold: bool = True) -> str:
    weight = "" if bold else ' font-weight="normal"'
    return (f'<text x="{_n(x)}" y="{_n(baseline)}" font-size="{_n(size)}"{weight}>'
            f'{escape(text)}</text>')


def _centre_drop(size: float) -> float:
    """From the vertical centre of a CJK glyph box down to its baseline (Noto CJK: the
    ideographic box runs from 0.88 em above the baseline to 0.12 em below it)."""
    return 0.38 * size


def _clean(text: str) -> str:
    """One line of text that is valid XML: no control or direction-override characters."""
    return clean_line(str(text))


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


def _check_page(width_pt: float, height_pt: float) -> None:
    if not (width_pt > 0 and height_pt > 0 and math.isfinite(width_pt * height_pt)):
        raise ValueError(f"page size must be positive, not {width_pt} × {height_pt}")


def _check_paint(colour: str, opacity: float) -> None:
    if not _COLOUR.fullmatch(colour):
        raise ValueError(f"colour must be #rgb or #rrggbb, not {colour!r}")
    if not 0 < opacity <= 1:
        raise ValueError(f"opacity must be in (0, 1], not {opacity!r}")


# --- stamping --------------------------------------------------------------------------------

def void_stamp(pdf: bytes, *, word: str, when: str, reason: str, converter: "Converter") -> bytes:
    """A copy of ``pdf`` with a large diagonal ``word`` (作废 or 已收回) across every page and
    the line ``{when} · {reason}`` below it, in semi-transparent red so the text beneath stays
    readable. The Info dictionary is kept, with ``/DealerDocsStamp`` = ``{word}：{reason}``."""
    word = _clean(word)
    if not word:
        raise ValueError("void_stamp: empty word")
    second = " · ".join(part for part in (_clean(when), _clean(reason)) if part)
    lines = [(word, VOID_WORD_SIZE)] + ([(second, VOID_LINE_SIZE)] if second else [])
    label = f"{word}：{_clean(reason)}" if _clean(reason) else word
    return _overlay(pdf, lambda w, h: stamp_svg(w, h, lines), converter,
                    {"/DealerDocsStamp": label})


def controlled_copy(pdf: bytes, *, copy_label: str, converter: "Converter") -> bytes:
    """A copy of ``pdf`` with a small 受控文件 / 发放号 ``copy_label`` box in the top-right
    corner of every page. The Info dictionary is kept, with ``/DealerDocsCopy`` = the label."""
    if not _clean(copy_label):
        raise ValueError("controlled_copy: empty copy label")
    return _overlay(pdf, lambda w, h: copy_box_svg(w, h, copy_label), converter,
                    {"/DealerDocsCopy": _clean(copy_label)})


def controlled_copies(pdf: bytes, *, copy_labels: list[str], converter: "Converter") -> list[bytes]:
    """:func:`controlled_copy` for several copies of one document, in order; the boxes for all
    labels and page sizes are made in one LibreOffice run instead of one run per label."""
    try:
        sizes = dict.fromkeys(_shown_size(page) for page in PdfReader(io.BytesIO(pdf)).pages)
    except (PyPdfError, ValueError, KeyError) as err:
        raise ConversionError(f"无法在 PDF 上加盖印章：{err}") from err
    _stamp_pdfs([copy_box_svg(w, h, label) for label in copy_labels for w, h in sizes], converter)
    return [controlled_copy(pdf, copy_label=label, converter=converter) for label in copy_labels]


def clear_stamp_cache() -> None:
    """Forget the stamp PDFs made so far (tests; a long-running process never needs it)."""
    with _cache_lock:
        _cache.clear()


def _overlay(pdf: bytes, make_svg: Callable[[float, float], str], converter: "Converter",
             metadata: dict[str, str]) -> bytes:
    try:
        reader = PdfReader(io.BytesIO(pdf))
        if reader.is_encrypted:
            raise ConversionError("加密的 PDF 不能加盖印章")
        writer = PdfWriter(clone_from=reader)
        sizes = [_shown_size(page) for page in writer.pages]
        svgs = {size: make_svg(*size) for size in dict.fromkeys(sizes)}
        stamp_pdfs = _stamp_pdfs(svgs.values(), converter)
        # one stamp page object per page size, shared by all pages of that size
        stamps = {size: PdfReader(io.BytesIO(stamp_pdfs[svg])).pages[0]
                  for size, svg in svgs.items()}
        for page, size in zip(writer.pages, sizes):
            stamp = stamps[size]
            placement = _placement(stamp, page)
            if placement is None:
                page.merge_page(stamp, over=True)
            else:
                page.merge_transformed_page(stamp, placement, over=True)
        writer.add_metadata(metadata)
        _drop_signatures(writer)
        # Merge the copies of the stamp's fonts and forms the pages now share (B4: file size).
        # No arguments: the defaults remove duplicates and orphans; the keyword names changed
        # in pypdf 7 (remove_identicals/remove_orphans raise there).
        writer.compress_identical_objects()
        out = io.BytesIO()
        writer.write(out)
    except (PyPdfError, ValueError, KeyError) as err:
        raise ConversionError(f"无法在 PDF 上加盖印章：{err}") from err
    return out.getvalue()


def _drop_signatures(writer: PdfWriter) -> None:
    """A stamped copy is a new file: the signatures of the signed original (kept beside it)
    no longer cover its bytes, and a viewer would call them broken. Their values and the
    certification that pointed at them go; the fields, and the seal's picture in them, stay
    as what the paper showed."""
    writer.root_object.pop(NameObject("/Perms"), None)
    for page in writer.pages:
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            if annot.get("/FT") == "/Sig":
                annot.pop(NameObject("/V"), None)
                annot.pop(NameObject("/Lock"), None)


def _shown_size(page: PageObject) -> tuple[float, float]:
    """The visible page (crop box) as the reader sees it, after /Rotate; rounded to 0.1 pt so
    pages of one paper size share one stamp."""
    box = page.cropbox
    width, height = float(box.width), float(box.height)
    if page.rotation % 180:
        width, height = height, width
    return round(abs(width), 1), round(abs(height), 1)


def _placement(stamp: PageObject, page: PageObject) -> Transformation | None:
    """The transformation that lays the upright stamp page onto ``page``'s crop box, rotated
    against the page's /Rotate; None when the stamp fits as it is (plain ``merge_page``)."""
    sbox, box = stamp.mediabox, page.cropbox
    rotation = page.rotation % 360
    width, height = float(box.width), float(box.height)
    shown_w, shown_h = (height, width) if rotation % 180 else (width, height)
    sx, sy = shown_w / float(sbox.width), shown_h / float(sbox.height)
    left, bottom = float(box.left), float(box.bottom)
    if (rotation == 0 and abs(sx - 1) < 1e-4 and abs(sy - 1) < 1e-4 and abs(left) < 0.01
            and abs(bottom) < 0.01 and abs(float(sbox.left)) < 0.01
            and abs(float(sbox.bottom)) < 0.01):
        return None
    t = Transformation().translate(-float(sbox.left), -float(sbox.bottom)).scale(sx, sy)
    corner = {0: (0.0, 0.0), 90: (width, 0.0), 180: (width, height), 270: (0.0, height)}
    if rotation not in corner:  # pragma: no cover - /Rotate is a multiple of 90 by the spec
        raise ValueError(f"页面旋转角度 {rotation} 无效")
    dx, dy = corner[rotation]
    return t.rotate(rotation).translate(left + dx, bottom + dy)


def _stamp_pdfs(svgs: Iterable[str], converter: "Converter") -> dict[str, bytes]:
    """The stamp PDF of each SVG: from the cache, or all missing ones in one LibreOffice run."""
    wanted = list(dict.fromkeys(svgs))
    found: dict[str, bytes] = {}
    with _cache_lock:
        for svg in wanted:
            if svg in _cache:
                _cache.move_to_end(svg)
                found[svg] = _cache[svg]
    missing = [svg for svg in wanted if svg not in found]
    if missing:
        made = converter.convert_many([svg.encode("utf-8") for svg in missing], suffix=".svg")
        for svg, raw in zip(missing, made):
            found[svg] = _clear_page_fill(raw)
        with _cache_lock:
            for svg in missing:
                _cache[svg] = found[svg]
                _cache.move_to_end(svg)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return found


_PATH_OPS = {b"m", b"l", b"c", b"v", b"y", b"h", b"re"}
_PAINT_OPS = {b"S", b"s", b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*", b"n"}
_FILL_OPS = {b"f", b"F", b"f*"}
_WHITE = {b"rg": [1, 1, 1], b"g": [1], b"k": [0, 0, 0, 0], b"sc": [1, 1, 1], b"scn": [1, 1, 1]}


def _clear_page_fill(pdf: bytes) -> bytes:
    """The one-page stamp PDF without the opaque white rectangle LibreOffice Draw paints over
    the whole page before the drawing: each white fill of a path covering the page becomes
    ``n`` (end the path, paint nothing). Everything else is left as LibreOffice wrote it."""
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    page = writer.pages[0]
    box = page.mediabox
    content = ContentStream(page.get_contents(), writer)
    white, saved = False, []  # the fill colour is white; its value at each enclosing q
    points: list[float] = []
    changed = False
    for index, (operands, operator) in enumerate(content.operations):
        if operator == b"q":
            saved.append(white)
        elif operator == b"Q":
            white = saved.pop() if saved else False
        elif operator in _WHITE:
            white = [float(v) for v in operands] == _WHITE[operator]
        elif operator in _PATH_OPS:
            points.extend(float(v) for v in operands)
            if operator == b"re" and len(operands) == 4:  # x y w h: add the far corner
                x, y, w, h = (float(v) for v in operands)
                points.extend((x + w, y + h))
        elif operator in _PAINT_OPS:
            if operator in _FILL_OPS and white and _covers(points, box):
                content.operations[index] = ([], b"n")
                changed = True
            points = []
    if not changed:
        return pdf
    page.replace_contents(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _covers(points: list[float], box) -> bool:
    if len(points) < 4:
        return False
    xs, ys = points[0::2], points[1::2]
    return (max(xs) - min(xs) >= 0.98 * float(box.width)
            and max(ys) - min(ys) >= 0.98 * float(box.height))
