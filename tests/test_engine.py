"""The quote workflow end to end through the Engine API: real docxtpl, real LibreOffice; on
both store backends (the embedded folder and PostgreSQL)."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine import InputError, NotFoundError, PermissionDenied, StateError
from engine.pdf import read_metadata

from helpers import (docx_text, store_contents, make_dealer_dir, pdf_fonts, pdf_text,
                     use_database)


@pytest.fixture(params=["folder", "postgresql"])
def config_path(request, tmp_path) -> Path:
    """Every test here runs on both backends."""
    config = make_dealer_dir(tmp_path / "dealer")
    if request.param == "postgresql":
        use_database(config, request.getfixturevalue("postgres").new_database())
    return config


def sha256(path: Path) -> str:
    """The sha256 of the file as it is on disk now."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def store_bytes(engine) -> dict:
    return store_contents(engine.store)


def outbox_files(engine) -> list[str]:
    root = engine.archive.root
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_issue_renders_numbers_archives_and_records(engine, quote_data, clock):
    created = engine.create("quote", quote_data, "zhang")
    assert (created.id, created.state) == ("Q-1", "draft")

    result = engine.fire("Q-1", "issue", "zhang")

    assert result.state == "issued"
    [doc] = result.documents
    assert doc.number == "BJ-2026-000001"
    assert doc.pdf == engine.archive.root / "2026" / "quote" / "BJ-2026-000001.pdf"
    assert doc.docx.is_file() and doc.pdf.is_file()

    text = docx_text(doc.docx)
    assert "刘晓明" in text and "BJ-2026-000001" in text
    assert "¥152,669.57" in text
    assert "壹拾伍万贰仟陆佰陆拾玖元伍角柒分" in text
    assert "全景天窗遮阳帘" in text and "¥382.00" in text  # 4 × 95.50

    pdf = pdf_text(doc.pdf)
    for expected in ("刘晓明", "BJ-2026-000001", "¥152,669.57", "壹拾伍万贰仟陆佰陆拾玖元伍角柒分",
                     "2026 年 11 月 26 日", "第 1 页 共 2 页", "第 2 页 共 2 页"):
        assert expected.replace(" ", "") in pdf.replace(" ", ""), expected
    fonts = pdf_fonts(doc.pdf)
    assert fonts and all(f["emb"] == "yes" for f in fonts), fonts
    assert all("CJK" in f["name"] for f in fonts), fonts

    meta = read_metadata(doc.pdf.read_bytes())
    assert meta["DealerDocsNumber"] == "BJ-2026-000001"
    assert meta["DealerDocsCase"] == "Q-1"
    assert meta["DealerDocsTemplate"] == "quote.docx"
    assert meta["DealerDocsDocxSHA256"] == doc.docx_sha256 == sha256(doc.docx)
    assert meta["DealerDocsTemplateSHA256"] == sha256(engine.config.template_path("quote.docx"))
    assert meta["DealerDocsRegisterHash"] == "0" * 64  # the register log was empty before
    assert doc.pdf_sha256 == sha256(doc.pdf)

    case = engine.case("Q-1", actor="wang")
    assert case["state"] == "issued" and case["total"] == "152669.57"
    assert case["totals"]["vehicle_price"] == "131900.00"
    [entry] = case["documents"]
    assert entry["status"] == "issued" and entry["version"] == 1
    assert entry["issued_by"] == "zhang" and entry["issued_at"].startswith("2026-11-26T10:30")
    assert entry["pdf_sha256"] == sha256(doc.pdf) and entry["docx_sha256"] == sha256(doc.docx)
    assert entry["template_sha256"] == meta["DealerDocsTemplateSHA256"]
    assert [e["trigger"] for e in case["history"]] == ["create", "issue"]
    assert case["history"][1]["documents"] == ["BJ-2026-000001"]
    assert case["history"][1]["from"] == "draft" and case["history"][1]["to"] == "issued"


def test_revise_issues_new_version_and_supersedes_previous(engine, quote_data):
    engine.create("quote", quote_data, "zhang")
    first = engine.fire("Q-1", "issue", "zhang").documents[0]

    second = engine.fire("Q-1", "revise", "zhang", {"discount": "10000.00"}).documents[0]

    assert second.number == "BJ-2026-000002" and second.version == 2
    docs = {d["number"]: d for d in engine.documents(case_id="Q-1", actor="wang")}
    assert docs[first.number]["status"] == "superseded"
    assert docs[first.number]["superseded_by"] == second.number
    assert docs[second.number]["status"] == "issued"
    text = docx_text(second.docx)
    # the purchase tax follows the price: 129,900 ÷ 1.13 = 114,955.75; × 10 % → 11,495.58
    assert "第 2 版" in text and "¥10,000.00" in text and "¥11,495.58" in text
    assert "¥150,492.58" in text   # 129,900 + 3,442 + 5,155 + 500 + 11,495.58
    assert engine.case("Q-1", actor="wang")["history"][-1]["changed"] == [
        {"field": "discount", "old": "8000.00", "new": "10000.00"}]
    assert first.pdf.is_file()  # the superseded file stays archived


def test_accept_expire_and_cancel(engine, quote_data, clock):
    quote_data["valid_until"] = "2026-12-03"
    for _ in range(3):
        engine.create("quote", quote_data, "zhang")
    for case_id in ("Q-1", "Q-2"):
        engine.fire(case_id, "issue", "zhang")

    assert engine.fire("Q-1", "accept", "zhang").state == "accepted"
    with pytest.raises(StateError) as refused:
        engine.fire("Q-2", "expire", "zhang")
    assert "尚未过期" in refused.value.message

    clock.advance(days=8)
    with pytest.raises(StateError) as late:
        engine.fire("Q-2", "accept", "wang")
    assert "已于 2026年12月3日 过期" in late.value.message
    assert engine.fire("Q-2", "expire", "wang").state == "expired"
    assert engine.fire("Q-3", "cancel", "zhang").state == "cancelled"
    assert [c["state"] for c in engine.cases("quote", actor="wang")] == ["accepted", "expired", "cancelled"]


def test_draft_can_be_edited_and_keeps_unknown_nothing(engine, quote_data):
    engine.create("quote", {"customer_name": "王芳", "customer_mobile": "+86 139-0013-9000"},
                  "li")
    engine.fire("Q-1", "edit", "li", {"brand": "奇瑞", "list_price": "99900"})
    data = engine.case("Q-1", actor="li", reveal=True)["data"]
    assert data["customer_mobile"] == "13900139000"
    assert data["list_price"] == "99900.00"
    assert data["consultant"] == "li"  # defaults to the creating consultant


@pytest.mark.parametrize("actor, trigger, error, words", [
    ("zhao", "issue", NotFoundError, ["找不到案件", "Q-1"]),   # the register keeper sees no case
    ("nobody", "issue", PermissionDenied, ["未知用户", "nobody"]),
    ("zhang", "accept", StateError, ["草稿", "accept", "issue"]),
    ("zhang", "isue", StateError, ["是否想用 \"issue\""]),
])
def test_refusals_change_nothing(engine, quote_data, actor, trigger, error, words):
    engine.create("quote", quote_data, "zhang")
    before_store, before_files = store_bytes(engine), outbox_files(engine)

    with pytest.raises(error) as raised:
        engine.fire("Q-1", trigger, actor)

    for word in words:
        assert word in raised.value.message
    assert store_bytes(engine) == before_store
    assert outbox_files(engine) == before_files


@pytest.mark.parametrize("patch, field, words", [
    ({"brand": None}, "brand", ["品牌（brand）"]),
    ({"customer_mobile": "1380013800"}, "customer_mobile", ["客户手机号", "1380013800"]),
    ({"list_price": "12.345"}, "list_price", ["厂家指导价", "两位小数"]),
    ({"discount": "200000"}, "discount", ["优惠", "超过指导价"]),
    ({"deposit": "50000"}, "deposit", ["定金", "20%"]),
    ({"valid_until": "2026-11-01"}, "valid_until", ["有效期", "早于今天"]),
    ({"valid_until": "2026-02-30"}, "valid_until", ["不是有效日期"]),
    ({"payment_method": "赊账"}, "payment_method", ["赊账", "全款、分期"]),
    ({"lender": None}, "lender", ["贷款机构"]),
    ({"accessories": [{"name": "脚垫", "quantity": 0, "unit_price": "10"}]}, "accessories",
     ["精品附件第 1 行", "数量", "不能小于 1"]),
    ({"accessories": [{"name": "脚垫", "qty": 1, "unit_price": "10"}]}, "accessories",
     ["\"qty\" 不是已定义的列"]),
    ({"custmer_name": "x"}, "custmer_name", ["未知字段", "customer_name"]),
])
def test_invalid_or_missing_data_is_refused_with_field(engine, quote_data, patch, field, words):
    engine.create("quote", quote_data, "zhang")
    before_store, before_files = store_bytes(engine), outbox_files(engine)

    with pytest.raises(InputError) as raised:
        engine.fire("Q-1", "issue", "zhang", patch)

    assert field in [p.field for p in raised.value.problems]
    for word in words:
        assert word in raised.value.message, raised.value.message
    assert store_bytes(engine) == before_store
    assert outbox_files(engine) == before_files


def test_all_problems_reported_at_once(engine, quote_data):
    quote_data.update(customer_mobile="123", list_price="abc")
    with pytest.raises(InputError) as raised:
        engine.create("quote", quote_data, "zhang")
    assert {p.field for p in raised.value.problems} == {"customer_mobile", "list_price"}
    assert "2 处问题" in raised.value.message
    assert store_bytes(engine) == {}


def test_transition_that_takes_no_data_refuses_data(engine, quote_data):
    engine.create("quote", quote_data, "zhang")
    engine.fire("Q-1", "issue", "zhang")
    with pytest.raises(InputError) as raised:
        engine.fire("Q-1", "accept", "zhang", {"discount": "1"})
    assert "不能修改店面优惠" in raised.value.message


def test_unknown_case_and_workflow(engine):
    with pytest.raises(NotFoundError):
        engine.fire("Q-404", "issue", "zhang")
    with pytest.raises(NotFoundError) as raised:
        engine.create("qoute", {}, "zhang")
    assert "是否想用 \"quote\"" in raised.value.message


def test_hostile_data_prints_literally(engine, quote_data):
    long_remark = "长" * 1990 + "END"
    quote_data.update(
        customer_name='{{ 7*7 }} & <b>"Tom"</b> 🚗',
        gifts="{% for x in range(3) %}x{% endfor %}\x0b",
        remarks="第一行\n第二行 & <tag>\n" + long_remark,
        accessories=[{"name": "A&B <C> \"D\"", "quantity": 2, "unit_price": "1.10"}],
    )
    engine.create("quote", quote_data, "zhang")
    doc = engine.fire("Q-1", "issue", "zhang").documents[0]

    text = docx_text(doc.docx)
    assert '{{ 7*7 }} & <b>"Tom"</b> 🚗' in text
    assert "49" not in text.split("客户姓名")[1][:30]
    assert "{% for x in range(3) %}x{% endfor %}" in text
    assert "A&B <C> \"D\"" in text and "¥2.20" in text
    assert long_remark in text.replace("\n", "")
    pdf = pdf_text(doc.pdf)
    assert "{{ 7*7 }} & <b>\"Tom\"</b> 🚗" in pdf  # the emoji too: Symbola has it
    assert all(f["emb"] == "yes" for f in pdf_fonts(doc.pdf))
    assert "第二行 & <tag>" in pdf
    assert pdf.replace("\n", "").replace(" ", "").count("长") >= 1990


def test_verify_reports_changed_and_missing_files(engine, quote_data):
    engine.create("quote", quote_data, "zhang")
    doc = engine.fire("Q-1", "issue", "zhang").documents[0]
    assert engine.verify() == []

    doc.pdf.write_bytes(doc.pdf.read_bytes() + b"\n% tampered")
    doc.docx.unlink()
    problems = {(p["path"], p["problem"]) for p in engine.verify()}

    assert problems == {(str(doc.pdf), "changed"), (str(doc.docx), "missing")}


def test_state_survives_reload(engine, quote_data, config_path, converter, clock):
    """Save, reload, compare: a new Engine on the same folder sees what the first wrote."""
    from engine import Engine, load_config

    engine.create("quote", quote_data, "zhang")
    engine.fire("Q-1", "issue", "zhang")
    again = Engine(load_config(config_path), converter=converter, clock=clock)
    assert again.case("Q-1", actor="wang") == engine.case("Q-1", actor="wang")
    again.fire("Q-1", "revise", "wang", {"remarks": "经理修订"})
    assert engine.case("Q-1", actor="wang")["documents"][-1]["number"] == "BJ-2026-000002"
    if engine.store.kind == "postgresql":
        import psycopg

        with psycopg.connect(engine.store.url) as conn:
            rows = conn.execute("SELECT number, record FROM dd_documents ORDER BY seq").fetchall()
            case = conn.execute("SELECT record FROM dd_cases WHERE id = 'Q-1'").fetchone()[0]
        assert [r[0] for r in rows] == ["BJ-2026-000001", "BJ-2026-000002"]
        from engine.store import SCHEMA_VERSION

        assert case["schema_version"] == SCHEMA_VERSION and case["state"] == "issued"
        return
    root = engine.store.directory
    stored = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    from engine.store import SCHEMA_VERSION

    assert stored["_meta"]["1"]["schema_version"] == SCHEMA_VERSION
    case_file = json.loads((root / "cases" / "Q" / "0" / "Q-1.json").read_text(encoding="utf-8"))
    assert case_file["case"]["1"]["schema_version"] == SCHEMA_VERSION
    assert {d["number"] for d in case_file["documents"].values()} == {
        "BJ-2026-000001", "BJ-2026-000002"}


def test_numbers_restart_each_year(engine, quote_data, clock):
    for _ in range(2):
        engine.create("quote", quote_data, "zhang")
    assert engine.fire("Q-1", "issue", "zhang").documents[0].number == "BJ-2026-000001"
    clock.now = clock.now.replace(year=2027, month=1, day=2)
    doc = engine.fire("Q-2", "issue", "zhang").documents[0]
    assert doc.number == "BJ-2027-000001"
    assert doc.pdf.parent == engine.archive.root / "2027" / "quote"


def test_failed_conversion_leaves_nothing(engine, quote_data, monkeypatch):
    from engine.errors import ConversionError

    engine.create("quote", quote_data, "zhang")
    before_store = store_bytes(engine)

    def broken(documents, suffix=".docx"):
        raise ConversionError("LibreOffice 没有生成 PDF（测试）")

    monkeypatch.setattr(engine.converter, "convert_many", broken)
    with pytest.raises(ConversionError):
        engine.fire("Q-1", "issue", "zhang")
    assert store_bytes(engine) == before_store and outbox_files(engine) == []
    monkeypatch.undo()
    assert engine.fire("Q-1", "issue", "zhang").documents[0].number == "BJ-2026-000001"


def _refuse_commits(url: str) -> None:
    """A constraint trigger, checked at COMMIT, that refuses every new document."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                        $$ BEGIN RAISE EXCEPTION '测试：拒绝提交'; END $$""")
        conn.execute("""CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON dd_documents
                        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()""")


def test_failure_after_files_written_removes_them(engine, quote_data, monkeypatch):
    from engine.errors import StorageError

    engine.create("quote", quote_data, "zhang")
    before_store = store_bytes(engine)

    if engine.store.kind == "postgresql":
        # the server refuses the COMMIT itself (a deferred check that fails at commit time)
        _refuse_commits(engine.store.url)
        with pytest.raises(StorageError) as raised:
            engine.fire("Q-1", "issue", "zhang")
        assert "本次操作未写入" in raised.value.message and "测试：拒绝提交" in raised.value.message
    else:
        def disk_full(path, payload, **kwargs):
            raise OSError(28, "No space left on device (test)")

        with monkeypatch.context() as patched:  # the store's commit cannot write its journal
            patched.setattr("engine.store.journal.atomic_write_bytes", disk_full)
            with pytest.raises(StorageError) as raised:
                engine.fire("Q-1", "issue", "zhang")
        assert "无法写入数据库日志" in raised.value.message
    assert store_bytes(engine) == before_store and outbox_files(engine) == []
    assert engine.case("Q-1", actor="wang")["state"] == "draft"


def test_totals_are_exact_decimals(engine, quote_data):
    quote_data["accessories"] = [{"name": "x", "quantity": 3, "unit_price": "0.10"}] * 7
    engine.create("quote", quote_data, "zhang")
    totals = engine.case("Q-1", actor="wang")["totals"]
    assert totals["accessories_total"] == "2.10"
    assert Decimal(totals["grand_total"]) == (Decimal("131900.00") + Decimal("2.10")
                                              + Decimal("5155.00") + Decimal("12172.57"))


def test_context_for_a_preview_stores_nothing(engine, quote_data):
    context = engine.context_for("quote", quote_data, "quote", "zhang")
    assert context["totals"]["grand_total"] == Decimal("152669.57")
    assert context["doc"]["number"] == "（预览）"
    assert context["dealer"]["name"] == "北京星辰汽车销售服务有限公司"  # config.toml [dealer]
    assert context["consultant"] == {"login": "zhang", "name": "张伟"}
    assert store_bytes(engine) == {}


def test_preview_stamps_a_draft_and_changes_nothing(engine, quote_data, tmp_path):
    from pypdf import PdfReader

    engine.create("quote", quote_data, "zhang")
    before = store_bytes(engine)
    result = engine.preview("Q-1", "zhang", data={"discount": "1000.00"}, out_dir=tmp_path)

    docx, pdf = (Path(f) for f in result["files"])
    text = docx_text(docx)
    assert "草稿（未编号）" in text and "¥1,000.00" in text and "第 1 版" in text
    pages = PdfReader(str(pdf)).pages
    assert len(pages) == 2 and all("草稿" in p.extract_text() and "DRAFT" in p.extract_text()
                                   for p in pages)
    assert store_bytes(engine) == before and outbox_files(engine) == []
    assert engine.case("Q-1", actor="wang")["data"]["discount"] == "8000.00"
