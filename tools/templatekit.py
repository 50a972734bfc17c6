"""Helpers on python-docx that give every dealerdocs Word template the same look.

One house style for all forms (quotation, purchase contract, test-drive agreement, handover,
rectification): A4, about 2 cm margins with a wider binding edge, 宋体 10.5 pt (五号) body text,
黑体 for the title, headings and table headers, bordered tables with shaded header cells, a
header with the dealer's name and the document number, a footer with 第 X 页 共 Y 页 as real
PAGE/NUMPAGES fields, and signature blocks with a 日期 line.

Fonts: every style, the document defaults and the theme name only the Windows Chinese fonts
(宋体/黑体), for all four scripts (ascii, hAnsi, eastAsia, cs). Word and WPS on the staff's PCs
have them; on the conversion host fontconfig (``engine/fonts.conf``) maps them to Noto CJK,
so the PDF embeds Noto CJK only. A Latin font named anywhere (Calibri, Times New Roman, ...)
would be substituted (DejaVu, Liberation) and would change line breaks, so none is named.
:func:`font_problems` checks a finished .docx for that.

The helpers only build the *first version* of a template; afterwards the .docx is the source of
truth and staff edit it in Word (see ``templates/README.md``).
"""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Iterable, Sequence, Union

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

#: The committed templates, the source of truth; builds never write here (build_main).
COMMITTED = Path(__file__).resolve().parent.parent / "templates" / "docx"

__all__ = [
    "BODY_FONT", "HEADING_FONT", "Cm", "Pt", "ALLOWED_FONTS", "Margins", "C",
    "new_document", "add_title", "add_heading", "add_paragraph", "add_meta_line",
    "add_tag_paragraph", "add_table", "add_row", "add_tag_row", "keep_together",
    "keep_with_next", "borderless", "add_signature_block", "set_header", "set_footer",
    "add_field", "text_width_cm", "save", "font_problems",
    "KV", "DASH", "or_dash", "numbered_document", "add_line_row",
]

BODY_FONT = "宋体"      # SimSun; mapped to Noto Serif CJK SC at conversion
HEADING_FONT = "黑体"   # SimHei; mapped to Noto Sans CJK SC at conversion

#: Font names a template may use; engine/fonts.conf maps each to Noto CJK.
ALLOWED_FONTS = frozenset({
    "宋体", "SimSun", "新宋体", "NSimSun", "仿宋", "FangSong", "仿宋_GB2312", "楷体", "KaiTi",
    "黑体", "SimHei", "微软雅黑", "Microsoft YaHei", "等线", "DengXian",
})

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_TWIPS_PER_CM = 567  # 1440 / 2.54, rounded like Word does

# Sizes in half-points (w:sz): 五号 10.5 pt, 小五 9 pt, 小四 12 pt, 小二 18 pt.
SZ_BODY, SZ_SMALL, SZ_HEADING, SZ_TITLE = 21, 18, 24, 36
LINE_BODY = 320     # exact line pitch of body text, twips (16 pt)
LINE_TABLE = 300    # exact line pitch inside tables, twips (15 pt)
SHADE_HEADER = "E7E6E6"  # light grey for header/label cells; prints well in greyscale


@dataclass(frozen=True)
class Margins:
    """Page margins in cm. The left edge is the binding side of a portrait A4 page."""

    top: float = 2.5
    bottom: float = 2.0
    left: float = 2.5
    right: float = 2.0
    header: float = 1.3
    footer: float = 1.2


@dataclass(frozen=True)
class C:
    """One table cell for :func:`add_row`.

    kind: ``label`` (shaded, 黑体, centred), ``header`` (same look, for column headers),
    ``text`` (left), ``center``, ``amount`` (right-aligned money); span: grid columns covered;
    shade: grey background on any kind (to stress a total).
    """

    text: str = ""
    kind: str = "text"
    span: int = 1
    bold: bool = False
    shade: bool = False


_KIND_STYLE = {
    "label": "表格标签", "header": "表头", "text": "表格文字", "center": "表格居中",
    "amount": "表格金额",
}


# --------------------------------------------------------------------------- document


def new_document(*, title: str = "", margins: Margins = Margins()) -> DocxDocument:
    """A blank A4 document with the house styles, Chinese-only fonts and no leftover parts."""
    doc = Document()
    _drop_unused_parts(doc)
    _install_styles(doc, round((21.0 - margins.left - margins.right) * _TWIPS_PER_CM))
    _clean_theme_and_font_table(doc)
    _clean_settings(doc)
    body = doc.element.body
    for p in list(body.iterchildren(qn("w:p"))):
        body.remove(p)

    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(margins.top), Cm(margins.bottom)
    section.left_margin, section.right_margin = Cm(margins.left), Cm(margins.right)
    section.header_distance, section.footer_distance = Cm(margins.header), Cm(margins.footer)
    section.gutter = Cm(0)

    cp = doc.core_properties
    cp.title, cp.subject, cp.author, cp.comments = title, "", "dealerdocs", ""
    cp.last_modified_by, cp.keywords, cp.category = "dealerdocs", "", ""
    cp.language = "zh-CN"
    cp.created = cp.modified = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    cp.revision = 1
    return doc


def text_width_cm(doc: DocxDocument) -> float:
    """Width between the margins, for column widths that must fill the line."""
    s = doc.sections[0]
    return round((s.page_width - s.left_margin - s.right_margin) / 360000, 2)


def _drop_unused_parts(doc: DocxDocument) -> None:
    """python-docx's default template carries parts that name Latin fonts (numbering with
    Symbol bullets, stylesWithEffects, a thumbnail, customXml); a template needs none of them."""
    unwanted = {
        RT.NUMBERING, RT.CUSTOM_XML,
        "http://schemas.microsoft.com/office/2007/relationships/stylesWithEffects",
    }
    for rId, rel in list(doc.part.rels.items()):
        if rel.reltype in unwanted:
            doc.part.rels.pop(rId)
    pkg_rels = doc.part.package.rels
    for rId, rel in list(pkg_rels.items()):
        if rel.reltype == RT.THUMBNAIL:
            pkg_rels.pop(rId)


def _rfonts(name: str) -> str:
    return f'<w:rFonts w:ascii="{name}" w:hAnsi="{name}" w:eastAsia="{name}" w:cs="{name}"/>'


def _pstyle(style_id: str, name: str, *, based_on: str | None = "Normal", ppr: str = "",
            rpr: str = "", next_: str | None = None) -> str:
    custom = "" if _is_builtin(style_id) else ' w:customStyle="1"'
    parts = [f'<w:style w:type="paragraph"{custom} w:styleId="{style_id}">'
             f'<w:name w:val="{name}"/>']
    if based_on:
        parts.append(f'<w:basedOn w:val="{based_on}"/>')
    if next_:
        parts.append(f'<w:next w:val="{next_}"/>')
    parts.append("<w:qFormat/>")
    if ppr:
        parts.append(f"<w:pPr>{ppr}</w:pPr>")
    if rpr:
        parts.append(f"<w:rPr>{rpr}</w:rPr>")
    parts.append("</w:style>")
    return "".join(parts)


def _is_builtin(style_id: str) -> bool:
    return style_id in {"Normal", "Title", "Heading1", "Header", "Footer"}


def _styles_xml(text_width_twips: int) -> str:
    """The whole styles part. Named styles are what staff pick in Word's style gallery, so a
    later edit keeps the house look; every rPr that sets a font sets all four scripts."""
    body_line = f'<w:spacing w:before="0" w:after="0" w:line="{LINE_BODY}" w:lineRule="exact"/>'
    table_line = f'<w:spacing w:before="0" w:after="0" w:line="{LINE_TABLE}" w:lineRule="exact"/>'
    half, full = text_width_twips // 2, text_width_twips
    styles = [
        # 正文: 宋体 五号, justified, exact line pitch so Word and LibreOffice break pages alike
        '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/>'
        f'<w:qFormat/><w:pPr><w:widowControl/><w:snapToGrid w:val="0"/>{body_line}'
        '<w:jc w:val="both"/></w:pPr>'
        f'<w:rPr>{_rfonts(BODY_FONT)}<w:kern w:val="2"/><w:sz w:val="{SZ_BODY}"/>'
        f'<w:szCs w:val="{SZ_BODY}"/></w:rPr></w:style>',
        '<w:style w:type="character" w:default="1" w:styleId="DefaultParagraphFont">'
        '<w:name w:val="Default Paragraph Font"/><w:uiPriority w:val="1"/><w:semiHidden/>'
        '<w:unhideWhenUsed/></w:style>',
        '<w:style w:type="table" w:default="1" w:styleId="TableNormal">'
        '<w:name w:val="Normal Table"/><w:uiPriority w:val="99"/><w:semiHidden/>'
        '<w:unhideWhenUsed/><w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblCellMar>'
        '<w:top w:w="0" w:type="dxa"/><w:left w:w="108" w:type="dxa"/>'
        '<w:bottom w:w="0" w:type="dxa"/><w:right w:w="108" w:type="dxa"/></w:tblCellMar>'
        '</w:tblPr></w:style>',
        '<w:style w:type="numbering" w:default="1" w:styleId="NoList"><w:name w:val="No List"/>'
        '<w:uiPriority w:val="99"/><w:semiHidden/><w:unhideWhenUsed/></w:style>',
        # 表格框线: bordered grid; tables also carry the borders directly (see add_table)
        '<w:style w:type="table" w:customStyle="1" w:styleId="TableFrame">'
        '<w:name w:val="表格框线"/><w:basedOn w:val="TableNormal"/><w:uiPriority w:val="59"/>'
        '<w:pPr>' + table_line + '</w:pPr><w:tblPr><w:tblBorders>'
        + "".join(f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="000000"/>'
                  for side in ("top", "left", "bottom", "right", "insideH", "insideV"))
        + '</w:tblBorders></w:tblPr></w:style>',
        # 标题: 黑体 18 pt bold, centred
        _pstyle("Title", "Title", next_="Normal",
                ppr='<w:keepNext/><w:spacing w:before="0" w:after="120" w:line="240" '
                    'w:lineRule="auto"/><w:jc w:val="center"/>',
                rpr=f'{_rfonts(HEADING_FONT)}<w:b/><w:bCs/><w:spacing w:val="20"/>'
                    f'<w:sz w:val="{SZ_TITLE}"/><w:szCs w:val="{SZ_TITLE}"/>'),
        # 标题 1: section headings 一、二、… in 黑体 小四
        _pstyle("Heading1", "heading 1", next_="Normal",
                ppr='<w:keepNext/><w:keepLines/><w:spacing w:before="160" w:after="60" '
                    'w:line="320" w:lineRule="exact"/><w:jc w:val="left"/>'
                    '<w:outlineLvl w:val="0"/>',
                rpr=f'{_rfonts(HEADING_FONT)}<w:sz w:val="{SZ_HEADING}"/>'
                    f'<w:szCs w:val="{SZ_HEADING}"/>'),
        _pstyle("Header", "header",
                ppr='<w:pBdr><w:bottom w:val="single" w:sz="6" w:space="1" w:color="000000"/>'
                    f'</w:pBdr><w:tabs><w:tab w:val="center" w:pos="{half}"/>'
                    f'<w:tab w:val="right" w:pos="{full}"/></w:tabs>'
                    '<w:spacing w:before="0" w:after="0" w:line="240" w:lineRule="auto"/>'
                    '<w:jc w:val="left"/>',
                rpr=f'<w:sz w:val="{SZ_SMALL}"/><w:szCs w:val="{SZ_SMALL}"/>'),
        _pstyle("Footer", "footer",
                ppr=f'<w:tabs><w:tab w:val="center" w:pos="{half}"/>'
                    f'<w:tab w:val="right" w:pos="{full}"/></w:tabs>'
                    '<w:spacing w:before="0" w:after="0" w:line="240" w:lineRule="auto"/>'
                    '<w:jc w:val="center"/>',
                rpr=f'<w:sz w:val="{SZ_SMALL}"/><w:szCs w:val="{SZ_SMALL}"/>'),
        # 文头信息: the line under the title (编号 … 日期 … 版本), left / centre / right tabs
        _pstyle("DocMeta", "文头信息",
                ppr=f'<w:keepNext/><w:tabs><w:tab w:val="center" w:pos="{half}"/>'
                    f'<w:tab w:val="right" w:pos="{full}"/></w:tabs>'
                    '<w:spacing w:before="0" w:after="60" w:line="320" w:lineRule="exact"/>'
                    '<w:jc w:val="left"/>'),
        _pstyle("TableText", "表格文字", ppr=table_line + '<w:jc w:val="left"/>'),
        _pstyle("TableCenter", "表格居中", based_on="TableText", ppr='<w:jc w:val="center"/>'),
        _pstyle("TableAmount", "表格金额", based_on="TableText", ppr='<w:jc w:val="right"/>'),
        _pstyle("TableHeader", "表头", based_on="TableText",
                ppr='<w:keepNext/><w:jc w:val="center"/>', rpr=_rfonts(HEADING_FONT)),
        _pstyle("TableLabel", "表格标签", based_on="TableText",
                ppr='<w:jc w:val="center"/>', rpr=_rfonts(HEADING_FONT)),
        # 说明: small print (小五); write "1.<tab>text", the hanging indent is the tab stop
        _pstyle("Note", "说明",
                ppr='<w:keepNext/><w:keepLines/><w:spacing w:before="0" w:after="0" '
                    'w:line="280" w:lineRule="exact"/><w:ind w:left="300" w:hanging="300"/>',
                rpr=f'<w:sz w:val="{SZ_SMALL}"/><w:szCs w:val="{SZ_SMALL}"/>'),
        # 条款 / 条款子项 / 条款续行 / 正文首行缩进: contract clauses. An item is written
        # "1.<tab>text" (hanging indent of two characters), a sub-item "（1）<tab>text" under
        # the item's text; 条款续行 continues an item's text without a number.
        _pstyle("ClauseItem", "条款", ppr='<w:ind w:left="420" w:hanging="420"/>'),
        _pstyle("ClauseSub", "条款子项", ppr='<w:ind w:left="1050" w:hanging="630"/>'),
        _pstyle("ClauseCont", "条款续行", ppr='<w:ind w:left="420"/>'),
        _pstyle("BodyIndent", "正文首行缩进", ppr='<w:ind w:firstLine="420"/>'),
        # 签字: signature lines, with room above for a handwritten signature
        _pstyle("Signature", "签字",
                ppr='<w:keepNext/><w:keepLines/><w:spacing w:before="360" w:after="0" '
                    'w:line="320" w:lineRule="exact"/><w:jc w:val="left"/>'),
        # 模板标记: paragraphs/rows that hold only a {%p %}/{%tr %} tag; removed at render time
        _pstyle("TemplateTag", "模板标记", based_on="TableText",
                ppr='<w:jc w:val="left"/>',
                rpr=f'<w:color w:val="7F7F7F"/><w:sz w:val="{SZ_SMALL}"/>'
                    f'<w:szCs w:val="{SZ_SMALL}"/>'),
    ]
    return (
        f'<w:styles xmlns:w="{W_NS}"><w:docDefaults><w:rPrDefault><w:rPr>'
        f'{_rfonts(BODY_FONT)}<w:sz w:val="{SZ_BODY}"/><w:szCs w:val="{SZ_BODY}"/>'
        '<w:lang w:val="en-US" w:eastAsia="zh-CN" w:bidi="ar-SA"/></w:rPr></w:rPrDefault>'
        '<w:pPrDefault><w:pPr><w:spacing w:after="0" w:line="240" w:lineRule="auto"/>'
        '</w:pPr></w:pPrDefault></w:docDefaults>'
        + "".join(styles) + "</w:styles>"
    )


def _install_styles(doc: DocxDocument, text_width_twips: int) -> None:
    styles_part = doc.part._styles_part  # noqa: SLF001 - python-docx has no public setter
    styles_part._element = parse_xml(_styles_xml(text_width_twips))  # noqa: SLF001


def _clean_theme_and_font_table(doc: DocxDocument) -> None:
    """Theme fonts are what Word falls back to for text without explicit fonts; make both
    theme font sets Chinese and drop the per-script Latin/other fallbacks. The font table
    lists only the fonts the document uses."""
    for rel in doc.part.rels.values():
        part = rel.target_part if not rel.is_external else None
        if part is None:
            continue
        if rel.reltype == RT.THEME:
            xml = part.blob.decode("utf-8")
            xml = re.sub(r"<a:majorFont>.*?</a:majorFont>", _theme_fonts("majorFont", HEADING_FONT),
                         xml, flags=re.S)
            xml = re.sub(r"<a:minorFont>.*?</a:minorFont>", _theme_fonts("minorFont", BODY_FONT),
                         xml, flags=re.S)
            part._blob = xml.encode("utf-8")  # noqa: SLF001
        elif rel.reltype == RT.FONT_TABLE:
            part._blob = _FONT_TABLE.encode("utf-8")  # noqa: SLF001


def _theme_fonts(tag: str, name: str) -> str:
    return (f'<a:{tag}><a:latin typeface="{name}"/><a:ea typeface="{name}"/>'
            f'<a:cs typeface="{name}"/></a:{tag}>')


_FONT_TABLE = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
    f'<w:fonts xmlns:w="{W_NS}">'
    '<w:font w:name="宋体"><w:altName w:val="SimSun"/><w:panose1 w:val="02010600030101010101"/>'
    '<w:charset w:val="86"/><w:family w:val="auto"/><w:pitch w:val="variable"/>'
    '<w:sig w:usb0="00000003" w:usb1="288F0000" w:usb2="00000016" w:usb3="00000000" '
    'w:csb0="00040001" w:csb1="00000000"/></w:font>'
    '<w:font w:name="黑体"><w:altName w:val="SimHei"/><w:panose1 w:val="02010609060101010101"/>'
    '<w:charset w:val="86"/><w:family w:val="modern"/><w:pitch w:val="fixed"/>'
    '<w:sig w:usb0="800002BF" w:usb1="38CF7CFA" w:usb2="00000016" w:usb3="00000000" '
    'w:csb0="00040001" w:csb1="00000000"/></w:font>'
    "</w:fonts>"
)


def _clean_settings(doc: DocxDocument) -> None:
    """Drop the math font (Cambria Math), declare Chinese as the East Asian theme language,
    use Word 2013+ table layout (compatibility mode 15), and forget old revision ids."""
    settings = doc.settings.element
    for el in settings.xpath("./m:mathPr | ./w:rsids | ./w:attachedTemplate | ./w:savePreviewPicture"):
        settings.remove(el)
    for el in settings.xpath("./w:themeFontLang"):
        el.set(qn("w:val"), "en-US")
        el.set(qn("w:eastAsia"), "zh-CN")
    for el in settings.xpath(".//w:compatSetting[@w:name='compatibilityMode']"):
        el.set(qn("w:val"), "15")
    for el in settings.xpath("./w:defaultTabStop"):
        el.set(qn("w:val"), "420")  # two 五号 characters, the Chinese default


# --------------------------------------------------------------------------- paragraphs


def add_paragraph(container, text: str = "", style: str = "Normal", *, bold: bool = False,
                  align: str | None = None) -> Paragraph:
    """Append a paragraph with one run (one run per tag keeps ``{{ … }}`` intact)."""
    p = container.add_paragraph(style=_style(container, style))
    if text:
        run = p.add_run(text)
        run.bold = bold or None
    if align:
        _set_jc(p._p, align)  # noqa: SLF001
    return p


def add_title(doc: DocxDocument, text: str) -> Paragraph:
    return add_paragraph(doc, text, "Title")


def add_heading(doc: DocxDocument, text: str) -> Paragraph:
    return add_paragraph(doc, text, "heading 1")


def add_meta_line(doc: DocxDocument, left: str, center: str = "", right: str = "") -> Paragraph:
    """The line under the title: left, centred and right-aligned items on one line."""
    return add_paragraph(doc, f"{left}\t{center}\t{right}", "文头信息")


def add_tag_paragraph(container, tag: str) -> Paragraph:
    """A paragraph holding only a ``{%p … %}`` tag; docxtpl removes the whole paragraph."""
    if not re.fullmatch(r"\{%p .+ %\}", tag):
        raise ValueError(f"not a paragraph tag: {tag!r}")
    return add_paragraph(container, tag, "模板标记")


def _style(container, name: str):
    doc = container if isinstance(container, DocxDocument) else container.part.document
    return doc.styles[name]


def _set_jc(p_el, align: str) -> None:
    ppr = p_el.get_or_add_pPr()
    for jc in ppr.findall(qn("w:jc")):
        ppr.remove(jc)
    jc = OxmlElement("w:jc")
    jc.set(qn("w:val"), align)
    ppr.append(jc)


# --------------------------------------------------------------------------- tables


def add_table(doc: DocxDocument, widths_cm: Sequence[float]) -> Table:
    """An empty bordered table with fixed column widths (they should add up to the text width);
    fill it with :func:`add_row` and :func:`add_tag_row`."""
    table = doc.add_table(rows=0, cols=len(widths_cm))
    tbl = table._tbl  # noqa: SLF001
    twips = [round(w * _TWIPS_PER_CM) for w in widths_cm]
    tbl.remove(tbl.tblPr)
    borders = "".join(f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="000000"/>'
                      for side in ("top", "left", "bottom", "right", "insideH", "insideV"))
    tbl_pr = parse_xml(
        f'<w:tblPr xmlns:w="{W_NS}"><w:tblStyle w:val="TableFrame"/>'
        f'<w:tblW w:w="{sum(twips)}" w:type="dxa"/><w:jc w:val="center"/>'
        f'<w:tblInd w:w="0" w:type="dxa"/><w:tblBorders>{borders}</w:tblBorders>'
        '<w:tblLayout w:type="fixed"/><w:tblCellMar><w:top w:w="28" w:type="dxa"/>'
        '<w:left w:w="85" w:type="dxa"/><w:bottom w:w="28" w:type="dxa"/>'
        '<w:right w:w="85" w:type="dxa"/></w:tblCellMar>'
        '<w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="1" '
        'w:lastColumn="0" w:noHBand="0" w:noVBand="1"/></w:tblPr>')
    tbl.insert(0, tbl_pr)
    for grid_col, w in zip(tbl.tblGrid.findall(qn("w:gridCol")), twips):
        grid_col.set(qn("w:w"), str(w))
    return table


def _grid_twips(table: Table) -> list[int]:
    return [int(g.get(qn("w:w"))) for g in table._tbl.tblGrid.findall(qn("w:gridCol"))]  # noqa: SLF001


def add_row(table: Table, cells: Iterable[Union[C, str]], *, header: bool = False,
            height_cm: float | None = 0.7, exact: bool = False,
            valign: str = "center") -> list[_Cell]:
    """Append one row. ``header=True`` marks it as a repeating header row. Spans must add up to
    the number of grid columns. Rows never split across pages. ``valign="top"`` puts the text
    at the top of a tall row (e.g. a seal area under its label)."""
    specs = [c if isinstance(c, C) else C(c) for c in cells]
    grid = _grid_twips(table)
    if sum(c.span for c in specs) != len(grid):
        raise ValueError(f"row spans {sum(c.span for c in specs)} columns, table has {len(grid)}")
    tr = OxmlElement("w:tr")
    tr_pr = OxmlElement("w:trPr")
    tr_pr.append(_el("w:cantSplit"))
    if height_cm:
        tr_pr.append(_el("w:trHeight", val=str(round(height_cm * _TWIPS_PER_CM)),
                         hRule="exact" if exact else "atLeast"))
    if header:
        tr_pr.append(_el("w:tblHeader"))
    tr.append(tr_pr)
    table._tbl.append(tr)  # noqa: SLF001
    out, col = [], 0
    for spec in specs:
        width = sum(grid[col:col + spec.span])
        col += spec.span
        tc = OxmlElement("w:tc")
        tc_pr = OxmlElement("w:tcPr")
        tc_pr.append(_el("w:tcW", w=str(width), type="dxa"))
        if spec.span > 1:
            tc_pr.append(_el("w:gridSpan", val=str(spec.span)))
        if spec.shade or spec.kind in ("label", "header"):
            tc_pr.append(_el("w:shd", val="clear", color="auto", fill=SHADE_HEADER))
        tc_pr.append(_el("w:vAlign", val=valign))
        tc.append(tc_pr)
        tc.append(OxmlElement("w:p"))
        tr.append(tc)
        cell = _Cell(tc, table)
        p = cell.paragraphs[0]
        p.style = table.part.document.styles[_KIND_STYLE[spec.kind]]
        if spec.text:
            run = p.add_run(spec.text)
            run.bold = spec.bold or None
        out.append(cell)
    return out


def keep_together(table: Table) -> None:
    """Keep a (short) table on one page: "keep with next" on every paragraph but the last
    row's, which is how Word (and LibreOffice's Word import) keep a table together."""
    rows = table._tbl.tr_lst  # noqa: SLF001
    for tr in rows[:-1]:
        for p in tr.iter(qn("w:p")):
            ppr = p.get_or_add_pPr()
            if ppr.find(qn("w:keepNext")) is None:
                ppr.insert(1 if ppr.find(qn("w:pStyle")) is not None else 0, _el("w:keepNext"))


def keep_with_next(*items: Union[Paragraph, Table]) -> None:
    """"Keep with next" on paragraphs, or on every paragraph of tables (all rows, so the
    table also stays with what follows it): a final clause and the signature block after it
    then always share a page."""
    for item in items:
        paragraphs = ([item._p] if isinstance(item, Paragraph)  # noqa: SLF001
                      else list(item._tbl.iter(qn("w:p"))))  # noqa: SLF001
        for p in paragraphs:
            ppr = p.get_or_add_pPr()
            if ppr.find(qn("w:keepNext")) is None:
                ppr.insert(1 if ppr.find(qn("w:pStyle")) is not None else 0, _el("w:keepNext"))


def borderless(table: Table) -> Table:
    """Remove a table's borders (signature areas, layout grids)."""
    tbl_pr = table._tbl.tblPr  # noqa: SLF001
    tbl_pr.remove(tbl_pr.find(qn("w:tblBorders")))
    tbl_pr.insert(4, parse_xml(
        f'<w:tblBorders xmlns:w="{W_NS}">'
        + "".join(f'<w:{s} w:val="nil"/>' for s in ("top", "left", "bottom", "right",
                                                     "insideH", "insideV"))
        + "</w:tblBorders>"))
    return table


def add_tag_row(table: Table, tag: str) -> None:
    """A row holding only a ``{%tr … %}`` tag (one cell across the table); docxtpl replaces
    the whole row by the Jinja statement."""
    if not re.fullmatch(r"\{%tr .+ %\}", tag):
        raise ValueError(f"not a table-row tag: {tag!r}")
    cells = add_row(table, [C(tag, "text", span=len(_grid_twips(table)))], height_cm=None)
    cells[0].paragraphs[0].style = table.part.document.styles["模板标记"]


def _el(tag: str, **attrs: str):
    el = OxmlElement(tag)
    for k, v in attrs.items():
        el.set(qn(f"w:{k}"), v)
    return el


# --------------------------------------------------------------------------- header / footer


def set_header(doc: DocxDocument, left: str, right: str = "") -> None:
    """Header: ``left`` at the margin, ``right`` flush right, rule underneath."""
    header = doc.sections[0].header
    header.is_linked_to_previous = False
    p = header.paragraphs[0]
    p.style = doc.styles["header"]
    p.add_run(f"{left}\t\t{right}" if right else left)


def set_footer(doc: DocxDocument, prefix: str = "") -> None:
    """Footer: ``prefix`` then 第 X 页 共 Y 页, X and Y being PAGE and NUMPAGES fields that Word
    and LibreOffice compute when the document is printed or converted."""
    footer = doc.sections[0].footer
    footer.is_linked_to_previous = False
    p = footer.paragraphs[0]
    p.style = doc.styles["footer"]
    if prefix:
        p.add_run(prefix)
    p.add_run("第 ")
    add_field(p, "PAGE", "1")
    p.add_run(" 页 共 ")
    add_field(p, "NUMPAGES", "1")
    p.add_run(" 页")


def add_field(paragraph: Paragraph, instruction: str, placeholder: str = "") -> None:
    """A complex field (fldChar begin / instrText / separate / result / end)."""
    def run_with(child) -> None:
        r = OxmlElement("w:r")
        r.append(child)
        paragraph._p.append(r)  # noqa: SLF001

    run_with(_el("w:fldChar", fldCharType="begin"))
    instr = OxmlElement("w:instrText")
    instr.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    instr.text = f" {instruction} \\* MERGEFORMAT "
    run_with(instr)
    run_with(_el("w:fldChar", fldCharType="separate"))
    t = OxmlElement("w:t")
    t.text = placeholder
    run_with(t)
    run_with(_el("w:fldChar", fldCharType="end"))


# --------------------------------------------------------------------------- forms


KV = [2.6, 5.65, 2.6, 5.65]  # label | value | label | value (text width 16.5 cm)
DASH = '"—"'                 # what an absent optional value prints as (a Jinja string)


def or_dash(expr: str) -> str:
    """A tag printing ``expr``, or — when it is empty."""
    return f"{{{{ {expr} if {expr} else {DASH} }}}}"


def numbered_document(number_label: str = "编号") -> DocxDocument:
    """A new document for an issued form: titled and identified by its number, with the
    dealer's name and ``number_label：number`` in the header and the number before the page
    count in the footer. The caller adds the form's title and meta line."""
    doc = new_document(title="{{ doc.title }} {{ doc.number }}")
    doc.core_properties.identifier = "{{ doc.number }}"
    set_header(doc, "{{ dealer.name }}", f"{number_label}：{{{{ doc.number }}}}")
    set_footer(doc, f"{number_label}：{{{{ doc.number }}}}    ")
    return doc


def add_line_row(table: Table, cells: Iterable[Union[C, str]], **kw) -> list[_Cell]:
    """:func:`add_row` a little denser than its 0.7 cm default: one text line plus the cell
    padding (0.62 cm), for label/value tables."""
    kw.setdefault("height_cm", 0.62)
    return add_row(table, cells, **kw)


# --------------------------------------------------------------------------- signatures


def add_signature_block(doc: DocxDocument, labels: Sequence[str], *, blank: int = 16) -> Table:
    """Side-by-side signature areas without borders: ``label：______`` and, under it,
    ``日期：____年____月____日`` for each label."""
    width = text_width_cm(doc) / len(labels)
    table = borderless(add_table(doc, [width] * len(labels)))
    for line in ("{label}：" + "_" * blank, "日期：____年____月____日"):
        cells = add_row(table, [C(line.format(label=label)) for label in labels], height_cm=None)
        for cell in cells:
            cell.paragraphs[0].style = doc.styles["签字"]
    return table


# --------------------------------------------------------------------------- save / check


def save(doc: DocxDocument, path: Union[str, PathLike]) -> None:
    """Save, then refuse the result if it names a font outside :data:`ALLOWED_FONTS`."""
    buf = io.BytesIO()
    doc.save(buf)
    problems = font_problems(buf.getvalue())
    if problems:
        raise ValueError("template names fonts that would be substituted: " + "; ".join(problems))
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


_FONT_ATTR = re.compile(
    r'<(w:rFonts|w:font|a:latin|a:ea|a:cs|a:font|m:mathFont)\b([^>]*)>')
_NAME_ATTR = re.compile(r'\b(w:ascii|w:hAnsi|w:eastAsia|w:cs|w:name|typeface|m:val)="([^"]*)"')


def font_problems(docx: Union[bytes, str, PathLike]) -> list[str]:
    """Every font name in a .docx (styles, runs, headers, footers, theme, font table) that is
    not in :data:`ALLOWED_FONTS`; empty when the file is clean. Theme-font references
    (``w:asciiTheme`` …) are fine as long as the theme itself names allowed fonts, which this
    checks too. Useful after staff edited a template in Word or WPS."""
    data = docx if isinstance(docx, bytes) else Path(docx).read_bytes()
    problems: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if not name.endswith(".xml"):
                continue
            xml = zf.read(name).decode("utf-8", "replace")
            for m in _FONT_ATTR.finditer(xml):
                for attr, value in _NAME_ATTR.findall(m.group(2)):
                    if value and value not in ALLOWED_FONTS:
                        problems.append(f"{name}: {m.group(1)} {attr}={value!r}")
    return sorted(set(problems))


def build_main(templates: dict, doc: str | None, argv: list[str] | None) -> int:
    """Command line of the ``build_*templates.py`` scripts: write each template into the folder
    given with ``--out`` (required). The committed ``templates/docx/*.docx`` are the source of
    truth, edited in Word since their first version, so a build never writes there: compare
    its output with them, and copy a file over by hand only on purpose."""
    import argparse

    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (never templates/docx: the committed files are the "
                             "source of truth)")
    args = parser.parse_args(argv)
    if args.out.resolve() == COMMITTED.resolve():
        parser.error(f"--out {args.out} is the committed templates folder; the .docx files there "
                     "are the source of truth and are edited in Word. Build into another folder "
                     "and copy a file over by hand only on purpose")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in templates.items():
        target = args.out / name
        build(target)
        print(f"wrote {target}")
    return 0
