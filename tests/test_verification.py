"""Paper you can check (issue 18): the QR code on every page of an issued document leads to the
public page /v/<number>, which says whether the paper is still valid, compares an uploaded PDF
with the archive and shows nobody's personal data; ``dealerdocs check`` says the same offline.

End to end on one dealership shared by the module (real LibreOffice, docxtpl and store): a
quote revised once (its first version superseded by the second), one recalled (已收回) and one
declared void (作废) through document control.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal

import pytest

from engine import Engine, load_config, stamps
from engine.qr import Payload, verification_url
from engine.services.verification import public_status
from engine.web.app import create_app
from engine.web.ratelimit import PublicLimits, RateLimit
from helpers import CST, ROOT, Clock, make_dealer_dir, make_group_dir, qr_codes, run_cli
from web_support import client

pytestmark = pytest.mark.slow  # the module issues five documents with LibreOffice


def quote() -> dict:
    return json.loads((ROOT / "examples" / "quote.json").read_text(encoding="utf-8"),
                      parse_float=Decimal)


@pytest.fixture(scope="module")
def shop(tmp_path_factory, converter):
    """The module's dealership and what it issued: ``first``/``second`` (a quote and its
    revision), ``recalled`` and ``voided`` (quotes withdrawn through document control)."""
    folder = tmp_path_factory.mktemp("verify")
    config = make_dealer_dir(folder / "dealer")
    eng = Engine(load_config(config), converter=converter,
                 clock=Clock(datetime(2026, 11, 26, 10, 30, tzinfo=CST)))
    case = eng.create("quote", quote(), "zhang").id
    first = eng.fire(case, "issue", "zhang").documents[0]
    second = eng.fire(case, "revise", "zhang", {"discount": "10000.00"}).documents[0]
    withdrawn = {}
    for reason in ("换版", "作废"):
        other = eng.create("quote", {**quote(), "customer_mobile": "13700137000"}, "zhang").id
        doc = eng.fire(other, "issue", "zhang").documents[0]
        eng.dispatch(doc.number, to="王芳", dept="销售部", actor="zhao")
        eng.recall(doc.number, reason=reason, actor="zhao")
        withdrawn[reason] = doc
    yield {"engine": eng, "config": config, "case": case, "first": first, "second": second,
           "recalled": withdrawn["换版"], "voided": withdrawn["作废"]}
    eng.close()


@pytest.fixture
def web(shop):
    """A client of the shop's app with the default limits (a fresh app: fresh buckets)."""
    return client(create_app(shop["engine"], secret=b"k" * 32))


def url_of(doc, base: str = "") -> str:
    full = verification_url("http://127.0.0.1:8000", doc.number, doc.version, doc.docx_sha256)
    return full.removeprefix("http://127.0.0.1:8000") if not base else full


def verdict(html: str) -> str:
    found = re.search(r'<p class="verdict[^"]*">([^<]+)</p>', html)
    assert found, html[:800]
    return found.group(1).strip()


# --- the QR code ---------------------------------------------------------------------------

def test_every_page_of_an_issued_quote_carries_its_verification_url(shop, tmp_path):
    first = shop["first"]
    expected = verification_url(shop["engine"].config.verification.base_url, first.number, 1,
                                first.docx_sha256)
    pages = qr_codes(first.pdf)
    assert len(pages) >= 2 and pages == [[expected]] * len(pages)
    assert f"?v=1&h={first.docx_sha256[:16]}" in expected
    # the revision names its own version and hash
    second = shop["second"]
    assert set(sum(qr_codes(second.pdf), [])) == {
        verification_url("http://127.0.0.1:8000", second.number, 2, second.docx_sha256)}


def test_the_code_survives_the_stamps_and_a_controlled_copy(shop, tmp_path):
    eng, first = shop["engine"], shop["first"]
    stamped = eng.document_file(first.number, "stamped", actor="zhao")
    assert stamped is not None            # the superseded version, stamped 已收回
    copy = tmp_path / "copy.pdf"
    copy.write_bytes(stamps.controlled_copy(first.pdf.read_bytes(), copy_label="BJ-01",
                                            converter=eng.converter))
    expected = url_of(first, base="full")
    for path in (stamped, copy):
        pages = qr_codes(path)
        assert pages == [[expected]] * len(pages), path


# --- the public page -------------------------------------------------------------------------

def test_a_revised_quote_says_which_version_replaced_it_and_the_new_one_is_valid(shop, web):
    old = web.get(url_of(shop["first"]))
    assert old.status_code == 200
    assert verdict(old.text) == "已被第 2 版替代"
    assert shop["first"].number in old.text and "商谈报价单" in old.text
    assert "2026年11月26日" in old.text and "北京星辰汽车销售服务有限公司" in old.text
    new = web.get(url_of(shop["second"]))
    assert verdict(new.text) == "有效"
    assert "第 2 版" in new.text


def test_recalled_and_voided_numbers_say_so(shop, web):
    assert verdict(web.get(url_of(shop["recalled"])).text) == "已收回"
    assert verdict(web.get(url_of(shop["voided"])).text) == "已作废"


@pytest.mark.parametrize("doc, newer, signed, expected", [
    ({"status": "issued"}, None, False, "有效"),
    ({"status": "issued"}, None, True, "已签署"),
    ({"status": "void"}, None, False, "已作废"),            # a cancelled case's documents
    ({"status": "issued", "stamp": "作废"}, None, False, "已作废"),
    ({"status": "issued", "stamp": "已收回"}, None, False, "已收回"),
    ({"status": "superseded", "stamp": "已收回"}, {"version": 3}, False, "已被第 3 版替代"),
])
def test_status_in_words(doc, newer, signed, expected):
    assert public_status(doc, newer, signed)["status_text"] == expected


def test_a_quote_whose_case_ended_is_no_longer_valid(shop, web):
    assert public_status({"status": "issued"}, None, False, "expired")["status_text"] == \
        "已失效（已过期）"
    eng = shop["engine"]
    case = eng.create("quote", {**quote(), "customer_mobile": "13600136000"}, "zhang").id
    doc = eng.fire(case, "issue", "zhang").documents[0]
    eng.fire(case, "cancel", "zhang")
    page = web.get(url_of(doc)).text
    assert verdict(page) == "已失效（已取消）"


def test_a_wrong_hash_and_an_unknown_number_get_the_same_answer_without_details(shop, web):
    first = shop["first"]
    good = url_of(first)
    wrong_hash = web.get(good[:-4] + "0000" if not good.endswith("0000") else good[:-4] + "1111")
    wrong_version = web.get(good.replace("?v=1&", "?v=2&"))
    unknown = web.get(good.replace(first.number, "BJ-2026-999999"))
    malformed = web.get(f"/v/{first.number}?v=1&h=xyz")
    for answer in (wrong_hash, wrong_version, unknown, malformed):
        assert answer.status_code == 200
        assert verdict(answer.text) == "不匹配"
        for detail in ("商谈报价单", "第 1 版", "2026年11月26日", "已被", "有效", 'type="file"'):
            assert detail not in answer.text
    assert wrong_hash.text == unknown.text == wrong_version.text == malformed.text


def test_the_page_shows_no_personal_data(shop, web):
    """Every value of the case's data (customer name, mobile, ID, amounts, accessories …)
    and its totals, on the page and on the answer to an upload (short whole numbers aside)."""
    eng = shop["engine"]
    case = eng.case(shop["case"], actor="zhang", reveal=True)
    values = set()

    def collect(value):
        if isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)
        elif value not in (None, True, False) and len(str(value)) >= 2:
            if str(value).isdigit() and len(str(value)) < 4:
                return   # a loan's 36 months, a quantity: no one's data, in any page's markup
            values.add(str(value))
            if isinstance(value, Decimal):
                values.add(f"{value:,.2f}")
    collect(case["data"])
    collect(case["totals"])
    assert {"刘晓明", "13800138000"} <= values       # the test means what it says
    second = shop["second"]
    pages = [web.get(url_of(second)).text,
             web.post(url_of(second), files={"pdf": ("x.pdf", second.pdf.read_bytes(),
                                                     "application/pdf")}).text]
    for html in pages:
        shown = [v for v in values if v in html]
        assert shown == [], shown


# --- comparing a file ----------------------------------------------------------------------

def test_an_uploaded_pdf_is_compared_byte_for_byte(shop, web):
    second = shop["second"]
    original = second.pdf.read_bytes()
    changed = bytearray(original)
    at = changed.index(b"/Producer") if b"/Producer" in changed else len(changed) // 2
    changed[at + 2] ^= 0x01
    same = web.post(url_of(second), files={"pdf": ("quote.pdf", original, "application/pdf")})
    assert same.status_code == 200 and "比对一致" in same.text
    different = web.post(url_of(second), files={"pdf": ("quote.pdf", bytes(changed),
                                                        "application/pdf")})
    assert different.status_code == 200 and "比对不一致" in different.text
    # the stamped copy of the superseded version is an archived file too
    stamped = shop["engine"].document_file(shop["first"].number, "stamped", actor="zhao")
    answer = web.post(url_of(shop["first"]), files={"pdf": ("s.pdf", stamped.read_bytes(),
                                                            "application/pdf")})
    assert "比对一致" in answer.text and "加盖印章" in answer.text


def test_an_upload_without_a_file_or_past_the_limit_is_refused(shop, web):
    target = url_of(shop["second"])
    assert web.post(target, data={"other": "x"}, files={"x": ("a.txt", b"a")}).status_code == 400
    huge = web.post(target, content=b"x" * 10, headers={
        "content-type": "multipart/form-data; boundary=b", "content-length": str(21 * 1024 ** 2)})
    assert huge.status_code == 413


def test_an_upload_with_a_wrong_hash_is_not_compared(shop, web):
    target = url_of(shop["second"])[:-4] + "0000"
    answer = web.post(target, files={"pdf": ("q.pdf", shop["second"].pdf.read_bytes(),
                                             "application/pdf")})
    assert verdict(answer.text) == "不匹配" and "比对" not in answer.text.split("不匹配", 1)[1]


def test_too_many_requests_from_one_address_get_429(shop):
    ticks = [0.0]
    limits = PublicLimits(views=RateLimit(per_minute=6, burst=2, clock=lambda: ticks[0]),
                          uploads=RateLimit(per_minute=6, burst=1, clock=lambda: ticks[0]))
    web = client(create_app(shop["engine"], secret=b"k" * 32, public_limits=limits))
    target = url_of(shop["second"])
    assert [web.get(target).status_code for _ in range(3)] == [200, 200, 429]
    refused = web.get(target)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
    assert "查询过于频繁" in refused.text and shop["second"].number not in refused.text
    ticks[0] += 10                        # one request a minute / 6 later
    assert web.get(target).status_code == 200
    upload = {"pdf": ("q.pdf", b"%PDF-1.7", "application/pdf")}
    assert [web.post(target, files=upload).status_code for _ in range(2)] == [200, 429]


# --- the same offline ------------------------------------------------------------------------

def test_check_tells_the_status_and_a_changed_byte(shop, tmp_path):
    config = shop["config"]
    ok = run_cli("check", str(shop["second"].pdf), "--config", str(config), cwd=tmp_path)
    assert "状态：有效" in ok.stdout and "核对通过" in ok.stdout
    old = run_cli("check", str(shop["first"].pdf), "--config", str(config), cwd=tmp_path,
                  check=False)
    assert old.returncode == 6 and "已被第 2 版替代" in old.stdout
    changed = bytearray(shop["second"].pdf.read_bytes())
    changed[len(changed) // 2] ^= 0x01
    edited = tmp_path / "edited.pdf"
    edited.write_bytes(bytes(changed))
    bad = run_cli("check", str(edited), "--config", str(config), "--json", cwd=tmp_path,
                  check=False)
    assert bad.returncode == 10
    result = json.loads(bad.stdout)
    assert result["facts"]["status_text"] == "有效" and result["file"]["matches"] is False
    assert "文件与存档不一致" in result["problem"]


def test_check_reads_the_code_off_the_page_when_the_metadata_is_gone(shop, tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(shop["second"].pdf))
    writer.metadata = {"/Title": "重新保存"}  # another program wrote its own Info
    stripped = tmp_path / "resaved.pdf"
    with stripped.open("wb") as out:
        writer.write(out)
    answer = run_cli("check", str(stripped), "--config", str(shop["config"]), "--json",
                     cwd=tmp_path, check=False)
    result = json.loads(answer.stdout)
    assert result["number"] == shop["second"].number and result["facts"]["status"] == "valid"
    assert answer.returncode == 10        # re-saved: not the archived bytes
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(_blank_pdf())
    refused = run_cli("check", str(plain), "--config", str(shop["config"]), cwd=tmp_path,
                      check=False)
    assert refused.returncode == 3 and "找不到本系统的验证二维码" in refused.stderr


def _blank_pdf() -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- a dealer group ----------------------------------------------------------------------------

def test_the_page_finds_a_number_of_any_store_of_a_group_and_names_that_store(
        tmp_path, converter):
    path = make_group_dir(tmp_path / "group")
    group = Engine(load_config(path), converter=converter,
                   clock=Clock(datetime(2026, 11, 26, 10, 30, tzinfo=CST)))
    try:
        shanghai = group.branch("SH01")
        case = shanghai.create("quote", {**quote(), "consultant": "he"}, "he").id
        doc = shanghai.fire(case, "issue", "he").documents[0]
        assert doc.number.startswith("SH01-")
        page = client(create_app(group, secret=b"k" * 32)).get(url_of(doc))
        assert verdict(page.text) == "有效"
        assert "上海星辰汽车销售服务有限公司" in page.text
        assert group.public_facts(Payload(doc.number, 1, doc.docx_sha256[:16])).store == \
            "上海星辰汽车销售服务有限公司"
    finally:
        group.close()


def test_the_facts_carry_nothing_but_public_fields(shop):
    second = shop["second"]
    facts = shop["engine"].public_facts(Payload(second.number, 2, second.docx_sha256[:16]))
    assert set(facts.to_dict()) == {"number", "title", "version", "store", "issued_on",
                                    "status", "status_text", "valid"}


def test_the_corner_of_the_code_holds_no_text(shop, tmp_path):
    """The QR lies in the bottom-left corner, clear of the text: pdftotext finds no text in
    the corner's 25 × 25 mm on any page of the issued quote."""
    import subprocess

    mm = 72 / 25.4
    for page in (1, 2):
        out = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-x", "0",
                              "-y", str(int(297 * mm * 150 / 72 - 25 * mm * 150 / 72)),
                              "-W", str(int(25 * mm * 150 / 72)), "-H",
                              str(int(25 * mm * 150 / 72)), "-r", "150",
                              str(shop["first"].pdf), "-"], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "", out.stdout

