"""Conversion. One behavioural suite for the :class:`~engine.convert.Converter` contract (a PDF
per input, in order, the Chinese text in it with its fonts embedded, SVG drawings too, errors on
bad input) run against both converters with real LibreOffice: the cold ``SofficeConverter`` and
a warm ``WarmConverter`` pool of two LibreOffice workers. Then fake ``soffice`` scripts for what
only the cold converter does: its private profile, timeouts that kill the process group,
crashes and missing output. What only the warm pool does is in test_warm.py."""
from __future__ import annotations

import io
import os
import re
import signal
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader

from engine.convert import FONTS_CONF, Converter, SofficeConverter, WRITER_OPTIONS
from engine.errors import ConversionError
from engine.warm import WarmConverter

from helpers import pdf_fonts, pdf_text
from processes import ready, running, wait_for

# A hang (LibreOffice, a pool instance) fails its test instead of stalling the run; no test
# measures how fast anything is (that is `make bench`). The thread method, because a hang inside
# the warm pool's ThreadPoolExecutor cannot be unwound by the default signal method.
pytestmark = pytest.mark.timeout(300, method="thread")


def make_docx(*paragraphs: str) -> bytes:
    doc = docx.Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def text_of(pdf: bytes, tmp_path: Path, name: str = "out.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(pdf)
    return "".join(pdf_text(path).split())




# --- the Converter contract, both converters, real LibreOffice --------------------------------

@pytest.fixture
def warm_pool(warm_pool_dir):
    """The session's pool of two instances, so that a batch is split between them and put
    back together."""
    return WarmConverter(warm_pool_dir, instances=2, timeout=60)



class NoColdFallback(Converter):
    """Stands in for the warm pool's cold fallback: a document that reaches it fails the test,
    so that the warm side of the suite cannot pass by converting cold."""

    def convert_many(self, documents, suffix=".docx"):
        pytest.fail(f"the warm pool handed {len(documents)} document(s) to its cold fallback")


@pytest.fixture
def cold_fallback_expected():
    """Requested by a test whose document the warm pool may only turn down through its cold
    fallback (a document LibreOffice cannot load restarts the instance and is retried cold)."""


@pytest.fixture(params=["cold", "warm"])
def any_converter(request, cold_converter):
    if request.param == "cold":
        yield cold_converter
        return
    pool = ready(request.getfixturevalue("warm_pool"))
    cold = pool.fallback
    if "cold_fallback_expected" not in request.fixturenames:
        pool.fallback = NoColdFallback()
    try:
        yield pool
    finally:
        pool.fallback = cold


@pytest.fixture(params=["cold", "warm"])
def converter_without_office(request, tmp_path):
    """A converter with no LibreOffice to run: what it refuses, it refuses before starting one."""
    if request.param == "cold":
        return SofficeConverter(binary="no-such-soffice")
    return WarmConverter(tmp_path / "pool", binary="no-such-soffice")  # no instance started


@pytest.mark.slow
def test_chinese_document_converts_with_its_fonts_embedded(any_converter, tmp_path):
    pdf = any_converter.convert(make_docx("商谈报价单", "客户：刘晓明　合计 ¥152,669.57"))

    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf, tmp_path)
    assert "商谈报价单" in text and "客户：刘晓明" in text and "¥152,669.57" in text
    fonts = pdf_fonts(tmp_path / "out.pdf")
    assert {f["emb"] for f in fonts} == {"yes"}, fonts  # prints the same on any machine
    assert any(re.fullmatch(r"[A-Z]{6}\+Noto(Sans|Serif)CJK\S*", f["name"]) for f in fonts), fonts


@pytest.mark.slow
def test_convert_many_keeps_the_order(any_converter, tmp_path):
    names = ["甲文档 ALPHA", "乙文档 BRAVO", "丙文档 CHARLIE"]

    pdfs = any_converter.convert_many([make_docx(n) for n in names])

    assert len(pdfs) == 3 and all(p.startswith(b"%PDF-") for p in pdfs)
    texts = [text_of(p, tmp_path, f"{i}.pdf") for i, p in enumerate(pdfs)]
    for i, text in enumerate(texts):
        for j, name in enumerate(names):
            assert (name.replace(" ", "") in text) is (i == j), (i, j, text)


@pytest.mark.slow
def test_svg_becomes_a_one_page_pdf_of_its_size(any_converter, tmp_path):
    """What the stamps are made of: an SVG page drawn by LibreOffice Draw."""
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm">'
           '<text x="50" y="100" font-family="Noto Sans CJK SC">作废</text></svg>')

    pdf = any_converter.convert(svg.encode("utf-8"), suffix=".svg")

    assert pdf.startswith(b"%PDF-")
    [page] = PdfReader(io.BytesIO(pdf)).pages
    # A4 in points; Draw adds up to a point to the page it was given
    assert float(page.mediabox.width) == pytest.approx(595.3, abs=1)
    assert float(page.mediabox.height) == pytest.approx(841.9, abs=1)
    assert text_of(pdf, tmp_path) == "作废"


@pytest.mark.slow
def test_garbage_is_refused_by_libreoffice(any_converter, cold_fallback_expected):
    """LibreOffice cannot load it, exits 0 and writes nothing: the converter must say so."""
    with pytest.raises(ConversionError) as raised:
        any_converter.convert(b"PK\x03\x04 this is not a docx \x00\x01\x02" * 20)

    assert raised.value.message.startswith("LibreOffice 没有生成 PDF（doc0000.docx）")
    assert "source file could not be loaded" in raised.value.details["stderr"]


def test_input_that_is_not_a_docx_is_refused_before_libreoffice(converter_without_office):
    """LibreOffice would turn b"" into a blank page: refuse anything that is not a zip."""
    with pytest.raises(ConversionError) as raised:
        converter_without_office.convert_many([b"PK\x03\x04", b""])

    assert raised.value.message == "第 2 个输入不是 Word（.docx）文档"


def test_missing_binary(converter_without_office):
    with pytest.raises(ConversionError) as raised:
        converter_without_office.convert(b"PK-x")

    assert raised.value.message == ("找不到 LibreOffice（no-such-soffice）；请安装 libreoffice-writer "
                                    "（make setup），或在 config.toml 的 [libreoffice] binary 中指定路径")
    assert raised.value.details == {"binary": "no-such-soffice"}


def test_nothing_to_convert_runs_nothing(converter_without_office):
    assert converter_without_office.convert_many([]) == []


def test_unknown_suffix_is_refused(converter_without_office):
    with pytest.raises(ConversionError) as raised:
        converter_without_office.convert(b"x", suffix=".odt")

    assert raised.value.message == "不支持转换 .odt 文件（支持：.docx、.svg）"
    assert raised.value.details == {"suffix": ".odt"}


# --- fake soffice scripts --------------------------------------------------------------------

def fake_soffice(tmp_path: Path, body: str, name: str = "soffice") -> Path:
    """A shell script standing in for soffice. ``$OUTDIR`` and the ``.docx`` inputs are parsed
    from the arguments the converter passes."""
    script = tmp_path / name
    script.write_text(
        "#!/bin/sh\n"
        'OUTDIR=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = "--outdir" ] && OUTDIR="$a"; prev="$a"; done\n'
        + body, encoding="utf-8")
    script.chmod(0o755)
    return script


FAKE_PDFS = ('mkdir -p "$OUTDIR"\n'
             'for a in "$@"; do case "$a" in *.docx)\n'
             '  printf "%%PDF-1.4 fake %s" "$(cat "$a")" > "$OUTDIR/$(basename "$a" .docx).pdf";;\n'
             'esac; done\n')


def test_results_are_matched_to_inputs_by_name(tmp_path):
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, FAKE_PDFS)), timeout=10)

    pdfs = conv.convert_many([f"PK-doc-{i}".encode() for i in range(12)])

    assert pdfs == [f"%PDF-1.4 fake PK-doc-{i}".encode() for i in range(12)]


def test_private_profile_fonts_and_headless_plugin(tmp_path):
    script = fake_soffice(tmp_path, 'printf "%s\\n" "$@" > "$0.args"\n'
                                    'echo "$FONTCONFIG_FILE|$SAL_USE_VCLPLUGIN" > "$0.env"\n'
                          + FAKE_PDFS)
    with SofficeConverter(binary=str(script), timeout=10) as conv:
        conv.convert(b"PK-a")
        first = Path(f"{script}.args").read_text().splitlines()
        conv.convert(b"PK-b")
        second = Path(f"{script}.args").read_text().splitlines()

    profile = [a for a in first if a.startswith("-env:UserInstallation=file://")]
    assert len(profile) == 1 and profile[0] in second  # one profile per converter, reused
    # Writer's PDF export, its bookmarks as named destinations (the signature labels' marks)
    assert "--headless" in first and f"pdf:writer_pdf_Export:{{{WRITER_OPTIONS}}}" in first
    assert '"ExportBookmarksToPDFDestination":{"type":"boolean","value":"true"}' == WRITER_OPTIONS
    assert Path(f"{script}.env").read_text().strip() == f"{FONTS_CONF}|svp"
    profile_dir = Path(profile[0].split("file://", 1)[1])
    assert not profile_dir.exists()  # close() removed it


@pytest.mark.timeout(60)  # the fake sleeps for 300 s: waiting for it would be the bug
def test_hung_converter_is_killed_with_its_children(tmp_path):
    """At its timeout the converter kills soffice's whole process group, a child that holds the
    output pipes included, instead of waiting for it, and throws the profile away."""
    script = fake_soffice(tmp_path, 'printf "%s\\n" "$@" > "$0.args"\n'
                                    'echo $$ > "$0.pid"\n'
                                    'sleep 300 &\n'
                                    'echo $! > "$0.child"\n'
                                    'sleep 300\n')
    conv = SofficeConverter(binary=str(script), timeout=1)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    group = int(Path(f"{script}.pid").read_text())  # soffice leads its own process group
    child = int(Path(f"{script}.child").read_text())
    try:
        assert raised.value.message == "LibreOffice 转换超时（1 秒），已终止其进程组"
        assert raised.value.details == {"timeout": 1}
        wait_for(lambda: not members_of(group), f"soffice's process group {group} gone", 30)
        assert not running(child)
        profile = next(a for a in Path(f"{script}.args").read_text().splitlines()
                       if a.startswith("-env:UserInstallation="))
        assert not Path(profile.split("file://", 1)[1]).exists()  # a killed office's profile
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


def members_of(group: int) -> list[int]:
    """The running processes of a process group."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == group \
                    and running(int(entry.name)):
                found.append(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return found


def test_svg_inputs_go_to_draw_without_the_word_check(tmp_path):
    script = tmp_path / "soffice"
    script.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$0.args"\n'
        'OUTDIR=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = "--outdir" ] && OUTDIR="$a"; prev="$a"; done\n'
        'mkdir -p "$OUTDIR"\n'
        'for a in "$@"; do case "$a" in *.svg)\n'
        '  printf "%%PDF-1.4 %s" "$(basename "$a")" > "$OUTDIR/$(basename "$a" .svg).pdf";;\n'
        "esac; done\n", encoding="utf-8")
    script.chmod(0o755)

    with SofficeConverter(binary=str(script), timeout=10) as conv:
        pdfs = conv.convert_many([b"<svg/>", b"<svg/>"], suffix=".svg")

    assert pdfs == [b"%PDF-1.4 doc0000.svg", b"%PDF-1.4 doc0001.svg"]
    args = Path(f"{script}.args").read_text().splitlines()
    assert "pdf:draw_pdf_Export" in args and not any("writer_pdf_Export" in a for a in args)


def test_exit_zero_without_output(tmp_path):
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, "exit 0\n")), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    assert raised.value.message == "LibreOffice 没有生成 PDF（doc0000.docx）"


def test_output_that_is_not_a_pdf_is_refused(tmp_path):
    body = ('mkdir -p "$OUTDIR"\necho "<html>error</html>" > "$OUTDIR/doc0000.pdf"\n'
            'echo "warning: odd filter" >&2\n')
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, body)), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    assert raised.value.message == ("LibreOffice 没有生成 PDF（doc0000.docx）："
                                    "warning: odd filter")


def test_partial_output_is_never_returned(tmp_path):
    body = ('mkdir -p "$OUTDIR"\nprintf "%%PDF-1.4 one" > "$OUTDIR/doc0000.pdf"\n'
            'printf "%%PDF-1.4 three" > "$OUTDIR/doc0002.pdf"\n')
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, body)), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert_many([b"PK-1", b"PK-2", b"PK-3"])

    assert raised.value.message == "LibreOffice 没有生成 PDF（doc0001.docx）"


def test_non_zero_exit_carries_the_stderr_tail(tmp_path):
    body = 'echo "loading profile" >&2\necho "fatal: cannot open display" >&2\nexit 3\n'
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, body)), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    err = raised.value
    assert err.message == "LibreOffice 退出码 3：loading profile\nfatal: cannot open display"
    assert err.details == {"returncode": 3,
                           "stderr": "loading profile\nfatal: cannot open display\n"}


def test_long_stderr_is_cut_to_its_last_300_characters(tmp_path):
    body = 'printf "HEAD%0500dTAIL" 0 >&2\nexit 1\n'
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, body)), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    assert raised.value.message == "LibreOffice 退出码 1：" + ("0" * 296 + "TAIL")
    assert raised.value.details["stderr"].startswith("HEAD")
