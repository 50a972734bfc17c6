"""Stamps over issued PDFs (作废 / 已收回 across the page, 受控文件 in the corner).

Real LibreOffice, four runs in all: the base PDF (two pages of Chinese text, one portrait A4 and
one landscape A4 section), one batch of void stamps for both page sizes, one batch of
controlled-copy boxes (two copy labels × two page sizes), and the void stamps again for the
rotated page's test. Everything else comes from the in-process stamp cache, which is what the
counting proxy checks. The cache is global, so every test starts with it empty and a test that
needs stamps cached makes them itself. The stamped pages are rendered with pdftoppm and looked
at by pixel: the mark is red, where it should be, and the black text under it stays black.
"""
from __future__ import annotations

import hashlib
import io
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import docx
import pytest
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.shared import Mm
from pypdf import PdfReader, PdfWriter

from engine import stamps
from engine.convert import SofficeConverter
from engine.errors import ConversionError
from engine.pdf import read_metadata
from engine.stamps import controlled_copies, controlled_copy, stamp_svg, void_stamp

from helpers import pdf_fonts

REASON = "换版收回 <A&B>"  # goes through the SVG and LibreOffice: must arrive as written
LABEL = "BJ-2026-000001-03"
LABEL_2 = "BJ-2026-000001-04"
BODY_PORTRAIT = "销售顾问已向车主逐项讲解并交付下列凭证、文件和物品；车主已当面检查车辆。"
BODY_LANDSCAPE = "横向页：随车凭证和文件，包括机动车整车出厂合格证、车辆一致性证书、购车发票。"


class CountingConverter:
    """Delegates to the real converter and records each call as (number of inputs, suffix)."""

    def __init__(self, real) -> None:
        self.real = real
        self.calls: list[tuple[int, str]] = []

    def convert_many(self, documents, suffix=".docx"):
        self.calls.append((len(documents), suffix))
        return self.real.convert_many(documents, suffix)

    def convert(self, data, suffix=".docx"):
        return self.convert_many([data], suffix)[0]


def make_base_docx() -> bytes:
    doc = docx.Document()
    first = doc.sections[0]
    first.page_width, first.page_height = Mm(210), Mm(297)
    first.top_margin, first.header_distance = Mm(25), Mm(13)
    first.header.paragraphs[0].text = "北京星辰汽车销售服务有限公司　编号：JC-2026-000001"
    doc.add_heading("交车确认单", 1)
    for _ in range(14):
        doc.add_paragraph(BODY_PORTRAIT)
    landscape = doc.add_section(WD_SECTION.NEW_PAGE)
    landscape.orientation = WD_ORIENT.LANDSCAPE
    landscape.page_width, landscape.page_height = Mm(297), Mm(210)
    for _ in range(6):
        doc.add_paragraph(BODY_LANDSCAPE)
    doc.core_properties.title = "交车确认单 JC-2026-000001"
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def empty_stamp_cache():
    """Each test starts with no stamp cached and leaves none behind. The module's fixtures below
    are set up before this one and record everything they check while the cache is theirs."""
    stamps.clear_stamp_cache()
    yield
    stamps.clear_stamp_cache()


@pytest.fixture(scope="module")
def base_pdf(converter) -> bytes:
    return converter.convert(make_base_docx())


@pytest.fixture(scope="module")
def voided(base_pdf, converter):
    """Two void stamps of the base PDF in a row, from an empty cache: the calls of each."""
    stamps.clear_stamp_cache()
    counting = CountingConverter(converter)
    sha_before = hashlib.sha256(base_pdf).hexdigest()
    first = void_stamp(base_pdf, word="作废", when="2026年11月26日", reason=REASON,
                       converter=counting)
    calls_first = list(counting.calls)
    again = void_stamp(base_pdf, word="作废", when="2026年11月26日", reason=REASON,
                       converter=counting)
    return SimpleNamespace(pdf=first, again=again, sha_before=sha_before, counting=counting,
                           calls_first=calls_first, calls_after_again=list(counting.calls))


@pytest.fixture(scope="module")
def copies(base_pdf, converter):
    """Two controlled copies made in one go, from an empty cache, then one of them again."""
    stamps.clear_stamp_cache()
    counting = CountingConverter(converter)
    made = controlled_copies(base_pdf, copy_labels=[LABEL, LABEL_2], converter=counting)
    calls = list(counting.calls)
    again = controlled_copy(base_pdf, copy_label=LABEL_2, converter=counting)
    return SimpleNamespace(pdfs=made, calls=calls, again=again,
                           calls_after_again=list(counting.calls))


@pytest.fixture(scope="module")
def copied(copies) -> bytes:
    return copies.pdfs[0]


# --- reading the output like a person ---------------------------------------------------------

def save(pdf: bytes, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(pdf)
    return path


def page_texts(path: Path) -> list[str]:
    """Text of each page in content order (``-raw``: the turned mark comes out in reading
    order), with all whitespace removed."""
    count = len(PdfReader(str(path)).pages)
    texts = []
    for number in range(1, count + 1):
        out = subprocess.run(["pdftotext", "-raw", "-f", str(number), "-l", str(number),
                              str(path), "-"], capture_output=True, text=True, check=True)
        texts.append("".join(out.stdout.split()))
    return texts


def render(path: Path, page: int, dpi: int = 36) -> tuple[int, int, bytes]:
    """One page as RGB pixels (pdftoppm's PPM on stdout): width, height, bytes."""
    data = subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page),
                           str(path)], capture_output=True, check=True).stdout
    magic, size, _maxval, pixels = data.split(b"\n", 3)
    assert magic == b"P6"
    width, height = map(int, size.split())
    return width, height, pixels


def red_pixels(pixels: bytes, width: int) -> list[tuple[int, int]]:
    found = []
    for i in range(0, len(pixels), 3):
        r, g, b = pixels[i], pixels[i + 1], pixels[i + 2]
        if r > 150 and r - g > 40 and r - b > 40:
            found.append(((i // 3) % width, (i // 3) // width))
    return found


def dark(pixels: bytes) -> set[int]:
    return {i // 3 for i in range(0, len(pixels), 3) if max(pixels[i:i + 3]) < 100}


def still_dark(pixels: bytes, where: set[int]) -> set[int]:
    """Pixels that are black seen through the red: a black pixel under the mark becomes at
    most about (106, 0, 0); on a page hidden by white it would be (255, 255, 255) or pink."""
    return {i for i in where if pixels[3 * i] < 160 and max(pixels[3 * i + 1:3 * i + 3]) < 100}


# --- void copies -----------------------------------------------------------------------------

@pytest.mark.slow
def test_void_copy_has_the_same_pages(base_pdf, voided):
    before, after = PdfReader(io.BytesIO(base_pdf)), PdfReader(io.BytesIO(voided.pdf))

    assert len(after.pages) == len(before.pages) == 2
    for old, new in zip(before.pages, after.pages):
        assert float(new.mediabox.width) == pytest.approx(float(old.mediabox.width), abs=0.01)
        assert float(new.mediabox.height) == pytest.approx(float(old.mediabox.height), abs=0.01)


@pytest.mark.slow
def test_every_page_says_void_with_the_date_and_reason(voided, tmp_path):
    texts = page_texts(save(voided.pdf, tmp_path, "void.pdf"))

    assert len(texts) == 2
    for text in texts:
        assert "作废" in text
        assert "2026年11月26日·换版收回<A&B>" in text  # & < > escaped in the SVG, intact here
    assert BODY_PORTRAIT in texts[0] and BODY_LANDSCAPE in texts[1]


@pytest.mark.slow
def test_every_font_is_embedded(voided, tmp_path):
    fonts = pdf_fonts(save(voided.pdf, tmp_path, "void.pdf"))

    assert fonts and all(f["emb"] == "yes" for f in fonts), fonts
    assert any("NotoSansCJK" in f["name"] and "Bold" in f["name"] for f in fonts), fonts


@pytest.mark.slow
def test_input_bytes_are_unchanged(base_pdf, voided, copied):
    assert hashlib.sha256(base_pdf).hexdigest() == voided.sha_before
    assert "DealerDocsStamp" not in read_metadata(base_pdf)
    assert voided.pdf != base_pdf and copied != base_pdf


@pytest.mark.slow
def test_metadata_is_kept_and_the_stamp_recorded(base_pdf, voided):
    original, stamped = read_metadata(base_pdf), read_metadata(voided.pdf)

    assert original.get("Title") == "交车确认单 JC-2026-000001"
    assert {k: v for k, v in stamped.items() if k != "DealerDocsStamp"} == original
    assert stamped["DealerDocsStamp"] == f"作废：{REASON}"


@pytest.mark.slow
def test_one_conversion_for_both_page_sizes_then_the_cache(voided):
    assert voided.calls_first == [(2, ".svg")]  # portrait and landscape stamp, one soffice run
    assert voided.calls_after_again == voided.calls_first  # same page sizes: no conversion
    assert len(PdfReader(io.BytesIO(voided.again)).pages) == 2


@pytest.mark.slow
def test_the_mark_is_red_centred_and_see_through(base_pdf, voided, tmp_path):
    """The page background LibreOffice Draw paints is gone: every dark pixel of the original
    stays dark under the semi-transparent red."""
    original = save(base_pdf, tmp_path, "base.pdf")
    stamped = save(voided.pdf, tmp_path, "void.pdf")
    for page in (1, 2):
        width, height, before = render(original, page, dpi=50)
        _, _, after = render(stamped, page, dpi=50)
        assert not red_pixels(before, width)
        red = red_pixels(after, width)
        assert len(red) > 0.03 * width * height
        xs, ys = [x for x, _ in red], [y for _, y in red]
        assert abs((min(xs) + max(xs)) / 2 - width / 2) < 0.12 * width
        assert abs((min(ys) + max(ys)) / 2 - height / 2) < 0.12 * height
        text = dark(before)
        assert len(text) > 200
        assert len(still_dark(after, text)) > 0.97 * len(text)


@pytest.mark.slow
def test_a_rotated_page_gets_an_upright_mark_from_the_cache(base_pdf, converter, tmp_path):
    """A portrait page shown turned (/Rotate 90) looks like the landscape page: same stamp,
    turned against the page rotation so that it reads upright."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(base_pdf)))
    writer.pages[0].rotate(90)
    rotated = io.BytesIO()
    writer.write(rotated)
    void_stamp(base_pdf, word="作废", when="2026年11月26日", reason=REASON,
               converter=converter)  # the upright pages' stamps, now in the cache
    counting = CountingConverter(converter)

    out = void_stamp(rotated.getvalue(), word="作废", when="2026年11月26日", reason=REASON,
                     converter=counting)

    assert counting.calls == []
    path = save(out, tmp_path, "rotated.pdf")
    assert all("作废" in text for text in page_texts(path))
    width, height, pixels = render(path, 1)
    assert width > height  # shown landscape
    red = red_pixels(pixels, width)
    xs, ys = [x for x, _ in red], [y for _, y in red]
    # the mark rises to the right as on the landscape page (not turned a quarter)
    left = [y for x, y in red if x < min(xs) + (max(xs) - min(xs)) / 4]
    right = [y for x, y in red if x > max(xs) - (max(xs) - min(xs)) / 4]
    assert sum(left) / len(left) > sum(right) / len(right)
    assert abs((min(ys) + max(ys)) / 2 - height / 2) < 0.12 * height


@pytest.mark.slow
def test_encrypted_pdf_is_refused(base_pdf):
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(base_pdf)))
    writer.encrypt("secret", algorithm="RC4-128")
    locked = io.BytesIO()
    writer.write(locked)

    with pytest.raises(ConversionError) as raised:
        void_stamp(locked.getvalue(), word="作废", when="2026年11月26日", reason="x",
                   converter=SofficeConverter(binary="no-such-soffice"))

    assert raised.value.message == "加密的 PDF 不能加盖印章"


# --- controlled copies -----------------------------------------------------------------------

@pytest.mark.slow
def test_controlled_copy_text_on_every_page(copied, base_pdf, tmp_path):
    texts = page_texts(save(copied, tmp_path, "copy.pdf"))

    assert len(texts) == 2
    for text in texts:
        assert "受控文件" in text and f"发放号{LABEL}" in text
    assert read_metadata(copied)["DealerDocsCopy"] == LABEL
    assert read_metadata(copied)["Title"] == read_metadata(base_pdf)["Title"]


@pytest.mark.slow
def test_copies_of_one_document_are_marked_in_one_run(copies, tmp_path):
    assert copies.calls == [(4, ".svg")]  # 2 labels × 2 page sizes
    assert [read_metadata(p)["DealerDocsCopy"] for p in copies.pdfs] == [LABEL, LABEL_2]
    second = page_texts(save(copies.pdfs[1], tmp_path, "copy2.pdf"))
    assert len(second) == 2 and all(f"发放号{LABEL_2}" in text for text in second)

    assert copies.calls_after_again == copies.calls  # the same copy again: from the cache
    assert page_texts(save(copies.again, tmp_path, "again.pdf")) == second
    assert read_metadata(copies.again) == read_metadata(copies.pdfs[1])


@pytest.mark.slow
def test_controlled_copy_box_sits_in_the_top_right_margin(copied, tmp_path):
    """At 72 dpi a pixel is a point: the box ends 2 cm from the right edge and above 1.3 cm
    from the top (where the house templates' header starts)."""
    path = save(copied, tmp_path, "copy.pdf")
    for page in (1, 2):
        width, height, pixels = render(path, page, dpi=72)
        red = red_pixels(pixels, width)
        assert len(red) > 100
        xs, ys = [x for x, _ in red], [y for _, y in red]
        assert max(ys) < 1.3 * 72 / 2.54 and min(ys) > 2
        assert width - 2 * 72 / 2.54 - 3 < max(xs) < width - 2 * 72 / 2.54 + 3
        assert min(xs) > width * 0.6


# --- the SVG ---------------------------------------------------------------------------------

def test_svg_escapes_xml_special_characters():
    svg = stamp_svg(595.3, 841.9, [("作废", 120), ("2026年11月26日 · A&B <C> \x01", 24)])

    root = ET.fromstring(svg.encode("utf-8"))  # well-formed
    texts = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["作废", "2026年11月26日 · A&B <C>"]
    assert "A&amp;B &lt;C&gt;" in svg and "<C>" not in svg
    assert 'font-family="Noto Sans CJK SC"' in svg and 'font-weight="bold"' in svg
    assert "rotate(-35)" in svg and 'opacity="0.55"' in svg and "#c00000" in svg
    assert 'width="210.0086mm"' in svg and 'viewBox="0 0 595.3 841.9"' in svg


@pytest.mark.parametrize("args, options, message", [
    ((595, 842, [("作废", 120)]), {"colour": 'red" onload="x'},
     """colour must be #rgb or #rrggbb, not 'red" onload="x'"""),
    ((595, 842, [("作废", 120)]), {"opacity": 0}, "opacity must be in (0, 1], not 0"),
    ((0, 842, [("作废", 120)]), {}, "page size must be positive, not 0 × 842"),
    ((595, 842, [("\x02 ", 120)]), {}, "stamp_svg: no text to draw"),
], ids=["colour-injection", "invisible", "no-page", "no-text"])
def test_svg_refuses_what_would_break_it(args, options, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        stamp_svg(*args, **options)


def mark_size(svg: str) -> tuple[float, list[float]]:
    """The stamp's scale and the font size of each line, as written in the SVG."""
    [scale] = re.findall(r"scale\(([0-9.]+)\)", svg)
    return float(scale), [float(size) for size in re.findall(r'font-size="([0-9.]+)"', svg)]


def test_a_small_page_gets_a_smaller_mark():
    lines = [("已收回", 120), ("2026年11月26日 · 换版收回", 24)]
    a4 = mark_size(stamp_svg(595.3, 841.9, lines))
    a6 = mark_size(stamp_svg(297.6, 419.5, lines))

    assert a4 == (1, [120, 24])  # fits as asked
    # half the page: the word shrinks to fit across it, then the whole mark to 0.67
    assert a6 == (0.67, [96.88, 21.85])
