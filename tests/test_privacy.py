"""Who sees what and personal data (issue 13): a consultant sees only their own customers
(engine, CLI, API, pages), identity and mobile numbers are masked unless revealed (audited),
the audit trail keeps no personal value, reassign, purge and retention, an old store's
upgrade, text that cannot break the register, evidence that must have been uploaded.
Real store, real LibreOffice."""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from engine import NotFoundError, PermissionDenied
from engine.errors import InputError
from engine.web.app import create_app
from helpers import CST, ROOT, cli_json, contract_data, docx_text, example, pdf_text, refused, run_cli
from web_support import DEMO_PASSWORD, client, sign_in

MOBILE, ID = "13800138000", "11010519491231002X"          # examples/quote.json, contract.json
DRIVER_ID = "440305199912318881"                          # examples/test_drive.json


def _all_store_text(engine) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in engine.store.directory.rglob("*.json*") if p.is_file())


def _log_text(engine) -> str:
    return "\n".join(p.read_text(encoding="utf-8")
                     for p in (engine.store.directory / "log").rglob("*.jsonl"))


# --- a consultant sees only their own customers --------------------------------------------

def test_a_consultant_cannot_read_or_act_on_a_colleagues_customer(engine, quote_data, tmp_path):
    """The attack of the review: zhang read li's customer's ID and mobile, issued and
    downloaded li's quote and edited li's contract. Every way is "not found" now."""
    li_quote = engine.create("quote", {**quote_data, "consultant": "li"}, "li").id
    engine.fire(li_quote, "issue", "li")
    number = engine.case(li_quote, actor="li")["documents"][0]["number"]
    # zhang's own customer (li's customer is li's: test_customers.py)
    mine = engine.create("quote", {**quote_data, "customer_name": "周杰",
                                   "customer_mobile": "13900001111"}, "zhang").id

    for attempt in (lambda: engine.case(li_quote, actor="zhang"),
                    lambda: engine.case(li_quote, actor="zhang", reveal=True),
                    lambda: engine.document(number, actor="zhang"),
                    lambda: engine.documents(case_id=li_quote, actor="zhang"),
                    lambda: engine.fire(li_quote, "accept", "zhang"),
                    lambda: engine.preview(li_quote, "zhang", out_dir=tmp_path),
                    lambda: engine.dispatch(number, to="周会计", dept="财务部", actor="zhang"),
                    lambda: engine.page_image(number, actor="zhang"),
                    lambda: engine.create("contract", contract_data(), "zhang", source=li_quote)):
        with pytest.raises(NotFoundError) as raised:
            attempt()
        assert "找不到" in raised.value.message and "李娜" not in raised.value.message
    # the same words as for a case that does not exist: nothing tells it is someone's
    with pytest.raises(NotFoundError) as nothing:
        engine.case("Q-99", actor="zhang")
    assert nothing.value.message.replace("Q-99", li_quote) == \
        pytest.raises(NotFoundError, engine.case, li_quote, actor="zhang").value.message
    # each consultant sees their own quote and their own customer's file
    assert [c["id"] for c in engine.cases(actor="zhang")] == ["K-2", mine]
    assert engine.documents(actor="zhang") == []
    assert [c["id"] for c in engine.cases(actor="li")] == ["K-1", li_quote]
    # a manager sees both; the document controller sees the documents, no case
    assert {c["id"] for c in engine.cases(actor="wang")} == {li_quote, mine, "K-1", "K-2"}
    assert [d["number"] for d in engine.documents(actor="zhao")] == [number]
    assert engine.cases(actor="zhao") == []
    with pytest.raises(NotFoundError):
        engine.case(li_quote, actor="zhao")
    # the OEM's people see rectification only
    assert engine.cases(actor="sun") == [] and engine.documents(actor="sun") == []
    # the register is the keeper's and the managers', not a consultant's
    with pytest.raises(PermissionDenied) as register:
        engine.register_rows(actor="zhang")
    assert "无权查看文件发放回收记录表" in register.value.message
    assert engine.register_rows(actor="zhao") == engine.register_rows(actor="wang")


def test_the_contract_of_my_quote_and_its_delivery_are_mine(engine, quote_data, clock):
    """Cases made from a consultant's case stay theirs, whoever opened them."""
    q = engine.create("quote", quote_data, "zhang").id
    engine.fire(q, "issue", "zhang")
    engine.fire(q, "accept", "zhang")
    # the customer is zhang's: a contract for li is refused, naming the owner
    with pytest.raises(PermissionDenied) as refused_:
        engine.create("contract", contract_data(consultant="li"), "wang", source=q)
    assert "已由 张伟（zhang） 接待" in refused_.value.message
    c = engine.create("contract", contract_data(consultant="zhang"), "wang", source=q).id
    case = engine.case(c, actor="zhang")               # opened by the manager, for zhang
    assert set(case["owners"]) == {"wang", "zhang"}
    assert c in {x["id"] for x in engine.cases(actor="zhang")}
    assert engine.cases(actor="li") == []


def test_cli_and_api_and_pages_obey_the_same_rule(dealer, converter):
    li_quote = cli_json(dealer, "new", "quote", "--as", "li",
                        data={**example("quote"), "consultant": "li"})["id"]
    cli_json(dealer, "fire", li_quote, "issue", "--as", "li")
    line = refused(dealer, "show", li_quote, "--as", "zhang")
    assert "找不到案件" in line and MOBILE not in line
    assert cli_json(dealer, "list", "--as", "zhang") == []
    assert cli_json(dealer, "docs", "--as", "zhang") == []
    line = refused(dealer, "fire", li_quote, "accept", "--as", "zhang")
    assert "找不到案件" in line

    from engine import Engine, load_config
    eng = Engine(load_config(dealer / "config.toml"), converter=converter)
    app = create_app(eng)
    number = eng.case(li_quote, actor="li")["documents"][0]["number"]
    api = client(app)
    token = api.post("/api/token", json={"login": "zhang", "password": DEMO_PASSWORD}).json()
    h = {"Authorization": f"Bearer {token['token']}"}
    for url in (f"/api/cases/{li_quote}", f"/api/cases/{li_quote}?reveal=true",
                f"/api/documents/{number}", f"/api/documents/{number}/pdf"):
        r = api.get(url, headers=h)
        assert r.status_code == 404 and MOBILE not in r.text, (url, r.text[:200])
    assert api.get("/api/cases", headers=h).json() == []
    assert api.get("/api/documents", headers=h).json() == []
    r = api.post(f"/api/cases/{li_quote}/fire/accept", headers=h, json={})
    assert r.status_code == 404
    page = client(app)
    assert sign_in(page, "zhang").status_code == 200
    for url in (f"/cases/{li_quote}", f"/documents/{number}",
                f"/documents/{number}/file/pdf", f"/documents/{number}/file/page1",
                f"/documents/{number}/file/page2", f"/documents/{number}/view"):
        r = page.get(url)
        assert r.status_code == 404 and "刘晓明" not in r.text, url
    assert li_quote not in page.get("/cases").text
    assert number not in page.get("/documents").text
    eng.close()


# --- masking and reveal ----------------------------------------------------------------------

def test_numbers_are_masked_and_a_reveal_is_audited(engine, quote_data):
    c = engine.create("contract", contract_data(), "zhang").id
    shown = engine.case(c, actor="zhang")
    assert shown["data"]["buyer_id_number"] == "110105********002X"
    assert shown["data"]["customer_mobile"] == "138****8000"
    assert shown["data"]["customer_name"] == "刘晓明"           # names are not masked
    listing = next(x for x in engine.cases(actor="zhang") if x["id"] == c)
    assert ID not in json.dumps(listing, ensure_ascii=False)
    full = engine.case(c, actor="zhang", reveal=True)
    assert full["data"]["buyer_id_number"] == ID and full["data"]["customer_mobile"] == MOBILE
    [event] = [e for e in full["history"] if e["trigger"] == "reveal"]
    assert event["actor"] == "zhang" and "证件号码" in event["note"] and ID not in event["note"]
    # the document controller may not reveal, and sees no case anyway
    with pytest.raises(PermissionDenied) as refused_reveal:
        engine.case(c, actor="zhao", reveal=True)
    assert "无权查看完整的个人信息" in refused_reveal.value.message
    # a masked number sent back unchanged (a form, an API client) leaves it as it is
    engine.fire(c, "edit", "zhang", {"buyer_id_number": "110105********002X",
                                     "customer_mobile": "138****8000", "signing_place": "北京"})
    assert engine.case(c, actor="wang", reveal=True)["data"]["buyer_id_number"] == ID


def test_cli_show_masks_and_reveals(dealer):
    c = cli_json(dealer, "new", "contract", "--as", "zhang", data=contract_data())["id"]
    text = run_cli("show", c, "--as", "zhang", cwd=dealer).stdout
    assert "110105********002X" in text and "138****8000" in text and ID not in text
    full = cli_json(dealer, "show", c, "--reveal", "--as", "zhang")
    assert full["data"]["buyer_id_number"] == ID
    assert full["history"][-1]["trigger"] == "reveal"
    line = refused(dealer, "show", c, "--reveal", "--as", "zhao")
    assert "找不到案件" in line or "无权" in line


def test_the_reveal_button_on_the_case_page(config_path, converter):
    from engine import Engine, load_config
    from web_support import csrf_of

    eng = Engine(load_config(config_path), converter=converter)
    c = eng.create("contract", contract_data(), "zhang").id
    page = client(create_app(eng))
    sign_in(page, "zhang")
    r = page.get(f"/cases/{c}")
    assert "110105********002X" in r.text and ID not in r.text and "显示完整" in r.text
    r = page.post(f"/cases/{c}/reveal", data={"_csrf": csrf_of(r.text)})
    assert r.status_code == 200 and ID in r.text and "记入审计记录" in r.text
    assert r.headers["cache-control"] == "no-store"
    r = page.post(f"/cases/{c}/reveal", data={"_csrf": "forged"})
    assert r.status_code == 403 and ID not in r.text
    assert [e["trigger"] for e in eng.case(c, actor="wang")["history"]].count("reveal") == 1
    eng.close()


def test_reports_mask_unless_revealed(engine, clock):
    clock.now = datetime(2030, 6, 15, 9, 0, tzinfo=CST)
    drive = engine.create("test_drive", example("test_drive"), "zhang").id
    out = engine.report("test-drives", formats=("xlsx",), actor="zhang",
                        out_dir=engine.archive.root / "r1")
    import openpyxl
    cells = [str(c.value) for row in openpyxl.load_workbook(out["files"]["xlsx"]).active.rows
             for c in row if c.value]
    assert "139****9000" in cells and "13900139000" not in cells
    out = engine.report("test-drives", formats=("xlsx",), actor="zhang", reveal=True,
                        out_dir=engine.archive.root / "r2")
    cells = [str(c.value) for row in openpyxl.load_workbook(out["files"]["xlsx"]).active.rows
             for c in row if c.value]
    assert "13900139000" in cells
    assert engine.case(drive, actor="zhang")["history"][-1]["trigger"] == "reveal"
    # li's report has no row of zhang's customer
    out = engine.report("test-drives", formats=("xlsx",), actor="li",
                        out_dir=engine.archive.root / "r3")
    assert out["rows"] == 0


# --- the audit trail keeps no personal value --------------------------------------------------

def test_the_audit_trail_keeps_keyed_hashes_of_personal_values(engine):
    c = engine.create("contract", contract_data(), "zhang").id
    engine.fire(c, "edit", "zhang", {"customer_mobile": "13912345678"})
    store_logs = _log_text(engine)
    case_file = next(engine.store.directory.glob(f"cases/C/0/{c}.json")).read_text("utf-8")
    audit_copies = json.dumps(json.loads(case_file)["audit"], ensure_ascii=False)
    for value in (ID, MOBILE, "13912345678", "刘晓明"):
        assert value not in store_logs and value not in audit_copies, value
    history = engine.case(c, actor="zhang")["history"]
    [change] = history[-1]["changed"]
    assert change["field"] == "customer_mobile" and change["personal"] is True
    assert len(change["old_hmac"]) == 64 and change["old_hmac"] != change["new_hmac"]
    assert "old" not in change and "new" not in change
    created = {x["field"]: x for x in history[0]["changed"]}
    assert created["buyer_id_number"]["personal"] and created["vehicle_price"]["new"]
    assert engine.verify() == []
    key = engine.store.directory / "keys" / "personal.key"
    assert len(key.read_bytes()) == 32 and oct(key.stat().st_mode & 0o777) == "0o600"


# --- reassign ----------------------------------------------------------------------------------

def test_a_manager_reassigns_a_customer_and_the_old_consultant_loses_it(engine, quote_data):
    q = engine.create("quote", {**quote_data, "consultant": "li"}, "li").id
    engine.fire(q, "issue", "li")
    engine.fire(q, "accept", "li")
    c = engine.create("contract", contract_data(consultant="li"), "li", source=q).id
    with pytest.raises(PermissionDenied) as refused_:
        engine.reassign(q, "zhang", actor="li")
    assert "无权改派案件" in refused_.value.message and "销售经理" in refused_.value.message
    with pytest.raises(InputError):
        engine.reassign(q, "zhao", actor="wang")        # the document controller is no consultant
    result = engine.reassign(q, "zhang", actor="wang", reason="李娜离职交接")
    # the customer's file moves with its cases (转单)
    assert result == {"to": "zhang", "cases": [q, "K-1", c]}
    assert {x["id"] for x in engine.cases(actor="zhang")} == {q, "K-1", c}
    assert engine.cases(actor="li") == []
    with pytest.raises(NotFoundError):
        engine.case(c, actor="li")
    shown = engine.case(c, actor="zhang")
    assert shown["data"]["consultant"] == "zhang" and shown["owners"] == ["zhang"]
    event = shown["history"][-1]
    assert event["trigger"] == "reassign" and event["actor"] == "wang"
    assert "改派给 zhang" in event["note"] and "李娜离职交接" in event["note"]
    engine.fire(c, "edit", "zhang", {"signing_place": "北京"})   # and acts on it


# --- purge and retention -----------------------------------------------------------------------

def _finished_drive(engine, clock, **changes) -> str:
    clock.now = datetime(2030, 6, 15, 9, 0, tzinfo=CST)
    drive = engine.create("test_drive", example("test_drive", **changes), "zhang").id
    engine.fire(drive, "sign_agreement", "zhang")
    clock.now = datetime(2030, 6, 15, 10, 5, tzinfo=CST)
    engine.fire(drive, "depart", "zhang", {"departure_time": "2030-06-15T10:03",
                                            "departure_odometer": 1200})
    clock.now = datetime(2030, 6, 15, 10, 45, tzinfo=CST)
    engine.fire(drive, "return_car", "zhang", {"return_time": "2030-06-15T10:41",
                                               "return_odometer": 1209, "fuel_level": "3/4",
                                               "damage": False})
    engine.fire(drive, "evaluate", "zhang", {
        "impressions": "动力充沛", "rating_power": "很满意", "rating_handling": "很满意",
        "rating_braking": "很满意", "rating_comfort": "很满意", "rating_space": "很满意",
        "rating_service": "很满意", "rating_car_condition": "很满意",
        "rating_route_length": "很满意", "rating_route_items": "很满意",
        "rating_overall": "很满意", "helped_decision": True})
    return drive


def test_purge_erases_a_customer_keeps_what_the_law_keeps_and_is_audited(engine, clock):
    drive = _finished_drive(engine, clock)
    docs = engine.case(drive, actor="zhang")["documents"]
    files = [Path(d[k]) for d in docs for k in ("pdf", "docx")]
    assert len(files) == 4 and all(p.is_file() for p in files)
    # the pictures the phone viewer made of every page show the driver's ID number too
    number = docs[0]["number"]
    pictures = [engine.page_image(number, n, actor="zhang")
                for n in range(1, engine.page_count(number, actor="zhang") + 1)]
    assert len(pictures) >= 2 and all(p.is_file() for p in pictures)
    files += pictures
    engine.dispatch(docs[0]["number"], to="王芳", dept="客户", actor="zhao")
    open_drive = engine.create("test_drive", example(
        "test_drive", slot_start="2030-06-20T10:00", slot_end="2030-06-20T10:45"), "zhang").id
    contract = engine.create("contract", contract_data(customer_mobile="13900139000"), "zhang").id

    with pytest.raises(PermissionDenied):
        engine.purge(actor="zhang", customer="13900139000")
    result = engine.purge(actor="wang", customer="139-0013-9000")
    assert [p["case"] for p in result["purged"]] == [drive]
    assert {"客户姓名", "客户手机号", "驾驶人身份证号", "驾驶证号"} <= set(result["purged"][0]["fields"])
    assert [k["case"] for k in result["kept"]] == [contract]
    assert "会计档案管理办法" in result["kept"][0]["reason"]
    # the customer's file is still being followed up (level N): left, like the open drive
    assert [w["case"] for w in result["in_progress"]] == ["K-1", open_drive]

    assert not any(p.exists() for p in files)
    case = engine.case(drive, actor="wang", reveal=True)
    assert case["data"]["customer_mobile"] is None and case["data"]["driver_id_number"] is None
    assert case["data"]["customer_name"].startswith("已删除-")
    drive_file = next(engine.store.directory.glob(f"cases/T/0/{drive}.json"))
    for path in [drive_file, *engine.store.directory.glob("index/**/*.json"),
                 *engine.store.directory.glob("log/**/*.jsonl")]:
        text = path.read_text(encoding="utf-8")
        assert "13900139000" not in text and DRIVER_ID not in text, path
    assert all(d["files_purged"] for d in engine.documents(case_id=drive, actor="wang"))
    rows = engine.register_rows(actor="zhao")
    assert rows[0][9].startswith("已删除-") and "王芳" not in json.dumps(rows, ensure_ascii=False)
    event = case["history"][-1]           # nothing left to reveal: no reveal event
    assert event["trigger"] == "purge" and event["actor"] == "wang"
    assert "依据本人的删除请求" in event["note"] and DRIVER_ID not in json.dumps(event)
    assert engine.verify() == []
    # the contract is kept whole
    assert engine.case(contract, actor="wang", reveal=True)["data"]["customer_mobile"] == \
        "13900139000"


def test_purge_expired_follows_the_retention_setting(engine, clock):
    drive = _finished_drive(engine, clock)
    assert engine.purge(actor="wang", expired=True)["purged"] == []   # a year not over yet
    clock.advance(days=366)
    result = engine.purge(actor="wang", expired=True)
    assert [p["case"] for p in result["purged"]] == [drive]
    assert engine.purge(actor="wang", expired=True)["purged"] == []   # done once
    assert "超过保存期限" in engine.case(drive, actor="wang")["history"][-1]["note"]


def test_purge_from_the_command_line(dealer):
    drive = cli_json(dealer, "new", "test_drive", "--as", "zhang", data=example(
        "test_drive", slot_start="2030-06-15T10:00", slot_end="2030-06-15T10:45"))["id"]
    cli_json(dealer, "fire", drive, "cancel", "--as", "zhang", data={"cancel_reason": "客户改期"})
    line = refused(dealer, "purge", "--customer", "13900139000", "--as", "li")
    assert "无权删除个人信息" in line
    line = refused(dealer, "purge", "--customer", "12345", "--as", "wang")
    assert "既不是有效的手机号，也不是有效的身份证号" in line
    out = run_cli("purge", "--customer", DRIVER_ID, "--as", "wang", cwd=dealer).stdout
    assert "已删除 1 个案件中的个人信息" in out and drive in out


# --- an old store is upgraded --------------------------------------------------------------------

def test_the_demo_store_of_schema_2_upgrades_without_personal_values_in_its_audit(tmp_path,
                                                                                converter):
    """The single-file store of an earlier `make demo` (real cases, chains, copies): every case
    gets its owners, the audit chain loses its personal values and still verifies."""
    from engine import Engine, load_config
    from helpers import make_dealer_dir

    config_path = make_dealer_dir(tmp_path / "dealer")
    old = json.loads((ROOT / "tests" / "data" / "store-v2-demo.json").read_text(encoding="utf-8"))
    raw_audit = json.dumps(old["audit"], ensure_ascii=False)
    personal = sorted({v for c in old["cases"].values() for k, v in c["data"].items()
                       if k in ("customer_mobile", "buyer_id_number", "driver_id_number")
                       and v and v in raw_audit})
    assert personal            # the old trail did hold them
    store = tmp_path / "dealer" / "store"
    store.mkdir()
    (store / "dealerdocs.json").write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")
    eng = Engine(load_config(config_path), converter=converter)
    cases = eng.cases(actor="wang")   # a sales manager takes part in rectification too
    # the old cases, and the customers' files the engine made for them (one per mobile)
    made = [c for c in cases if c["workflow"] == "customer"]
    assert len(cases) - len(made) == len(old["cases"])
    mobiles = {c["data"]["customer_mobile"] for c in old["cases"].values()
               if c["workflow"] in ("quote", "contract", "delivery", "test_drive")
               and c["data"].get("customer_mobile")}
    assert len(made) == len(mobiles) > 0
    assert all(c["owners"] for c in cases)
    text = _log_text(eng) + "".join(p.read_text("utf-8") for p in store.rglob("cases/*/*/*.json"))
    logs_only = _log_text(eng)
    assert not [v for v in personal if v in logs_only]
    meta = json.loads((store / "meta.json").read_text(encoding="utf-8"))
    assert meta["_meta"]["1"]["schema_version"] == 5 and meta["upgrades"]["5"]["audit_head_before"]
    problems = [p for p in eng.verify() if p["problem"] != "missing"]   # no files in this copy
    assert problems == []
    assert not [p for p in store.rglob("*") if p.stat().st_mode & 0o077]
    assert text  # read whole
    eng.close()


# --- text that cannot break the register or mislead a reader ------------------------------------

def test_dispatch_text_is_cleaned_and_limited(engine, quote_data):
    engine.create("quote", quote_data, "zhang")
    number = engine.fire("Q-1", "issue", "zhang").documents[0].number
    with pytest.raises(InputError) as raised:
        engine.dispatch(number, to="周\x00会计", dept="财" * 200_000, actor="zhao")
    assert "领用部门" in raised.value.message and "过长" in raised.value.message
    result = engine.dispatch(number, to="周\x00会\u202e计", dept="财务部\x07", actor="zhao")
    assert result["copies"][0]["recipient"] == "周会计" and result["copies"][0]["dept"] == "财务部"
    with pytest.raises(InputError):
        engine.recall(number, reason="丢失", from_="某" * 100, actor="zhao")
    # a copy written before the cleaning (a store of an earlier version) exports all the same
    with engine.store.transaction() as tx:
        [copy] = tx.copies(number)
        tx.put_copy({**copy, "key": "old/1", "copy_no": 9, "label": f"{number}-09",
                     "recipient": "旧\x00记录", "dept": "财" * 200_000})
    out = engine.register_export("xlsx", engine.archive.root / "r.xlsx", actor="zhao")
    docx = engine.register_export("docx", engine.archive.root / "r.docx", actor="zhao")
    text = docx_text(Path(docx["file"]))
    assert out["rows"] == 2 and "周会计" in text and "旧记录" in text and "\x00" not in text
    assert len(max(text.splitlines(), key=len)) <= 500


def test_direction_overrides_never_reach_a_document(engine, quote_data):
    engine.create("quote", {**quote_data, "customer_name": "刘\u202e晓明\u2066"}, "zhang")
    doc = engine.fire("Q-1", "issue", "zhang").documents[0]
    assert engine.case("Q-1", actor="zhang")["data"]["customer_name"] == "刘晓明"
    for text in (docx_text(doc.docx), pdf_text(doc.pdf)):
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", text)
    assert "刘晓明" in pdf_text(doc.pdf).replace(" ", "")


# --- evidence must have been uploaded to this case ------------------------------------------------

def test_made_up_evidence_records_are_refused(engine):
    item = engine.create("rectification", example("rectification"), "sun").id
    fake = {"name": "hostname", "sha256": "0" * 64, "size": 10, "file": "/etc/hostname"}
    with pytest.raises(InputError) as raised:
        engine.fire(item, "edit", "sun", {"evidence": [fake]})
    assert "不是本案件已上传的文件" in raised.value.message
    # a record slipped into the store by hand makes verify look in the store, never elsewhere
    with engine.store.transaction() as tx:
        record = tx.case(item)
        tx.put_case({**record, "data": {**record["data"], "evidence": [fake]}})
    [problem] = [p for p in engine.verify() if p["number"] == item]
    assert problem["problem"] == "missing" and str(engine.store.directory) in problem["path"]
    assert "/etc/hostname" not in json.dumps(problem)


def test_the_agreement_promises_the_retention_that_purge_applies(config_path, converter, clock):
    import dataclasses

    from engine import Engine, load_config

    config = load_config(config_path)
    config = dataclasses.replace(config, privacy=dataclasses.replace(
        config.privacy, retention_days={**config.privacy.retention_days, "test_drive": 180}))
    eng = Engine(config, converter=converter, clock=clock)
    clock.now = datetime(2030, 6, 15, 9, 0, tzinfo=CST)
    drive = eng.create("test_drive", example("test_drive"), "zhang").id
    doc = eng.fire(drive, "sign_agreement", "zhang").documents[0]
    assert "保存至试乘试驾结束后180天" in pdf_text(doc.pdf).replace(" ", "").replace("\n", "")
    eng.close()
