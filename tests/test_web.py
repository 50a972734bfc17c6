"""The web app in-process (no browser): sign-in, CSRF, the rate limit, forms made from the
workflow definitions, role and separation-of-duties refusals, documents served through the
register, uploads, the JSON API and error pages. Real engine, real LibreOffice."""
from __future__ import annotations

import hashlib
import io
import re
import shutil
import stat
import subprocess
import json
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest

from engine import load_config
from engine.web import auth
from engine.web.app import create_app
from engine.web.throttle import Throttle, Verdict
from helpers import (ROOT, contract_data, dealerdocs_bin, docx_text, example, make_dealer_dir,
                     pdf_text)
from web_support import (DEMO_PASSWORD, as_form, client, csrf_of, errors_of, field_error,
                         post_form, sign_in, web_engine)


@pytest.fixture
def site(config_path, converter):
    eng = web_engine(config_path, converter)
    app = create_app(eng)
    yield eng, app
    eng.close()


def signed_in(app, login: str):
    c = client(app)
    r = sign_in(c, login)
    assert r.status_code == 200 and "我的工作台" in r.text, r.text[:300]
    return c


def new_quote(c, **changes) -> str:
    r = post_form(c, "/cases/new/quote", "/cases/new/quote", as_form(example("quote", **changes)))
    assert r.status_code == 200, errors_of(r.text)
    m = re.search(r"/cases/(Q-\d+)", str(r.url))
    assert m, r.url
    return m.group(1)


def fire(c, case_id: str, trigger: str, data: dict | None = None, **kw):
    return post_form(c, f"/cases/{case_id}", f"/cases/{case_id}/fire/{trigger}",
                     as_form(data or {}), **kw)


# --- sign-in -----------------------------------------------------------------------------------

def test_pages_need_sign_in_and_the_cookie_is_locked_down(site):
    _, app = site
    c = client(app)
    r = c.get("/cases?workflow=quote", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = sign_in(c, "zhang", next="/cases?workflow=quote")
    assert r.status_code == 200 and str(r.url).endswith("/cases?workflow=quote")
    cookie = next(h for k, h in r.history[0].headers.multi_items() if k == "set-cookie"
                  and h.startswith(auth.SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "张伟" in r.text and "销售顾问" in r.text
    # a tampered cookie is no session at all
    value = c.cookies[auth.SESSION_COOKIE]
    tampered = value[:-6] + ("A" if value[-6] != "A" else "B") + value[-5:]  # a signature char
    c.cookies.clear()   # replace, not add beside it (two cookies of one name: either is sent)
    c.cookies.set(auth.SESSION_COOKIE, tampered)
    assert c.get("/", follow_redirects=False).status_code == 303
    # sign-in only sends the browser to this site
    r = sign_in(client(app), "zhang", next="//evil.example/")
    assert str(r.url) == "http://testserver/"


def test_wrong_password_rate_limit_and_login_csrf(config_path, converter):
    """Repeated failures are slowed down with growing waits (429, in Chinese, with the
    seconds); the address is held back whichever login it tries. The throttle's clock stands
    still here, so the waits are exact."""
    now = [1000.0]
    eng = web_engine(config_path, converter)
    app = create_app(eng, throttle=Throttle(clock=lambda: now[0]))
    c = client(app)
    r = sign_in(c, "zhang", "wrong-password")
    assert r.status_code == 401 and "用户名或密码不正确" in r.text
    for _ in range(2):
        assert sign_in(c, "zhang", "wrong-password").status_code == 401
    r = sign_in(c, "zhang")  # the right password, but too many failures just now
    assert r.status_code == 429 and "登录失败次数过多，请 1 秒后再试" in r.text
    assert r.headers["retry-after"] == "1" and auth.SESSION_COOKIE not in c.cookies
    now[0] += 1
    assert sign_in(c, "zhang", "wrong-password").status_code == 401
    r = sign_in(c, "zhang")  # each further failure doubles the wait
    assert r.status_code == 429 and "请 2 秒后再试" in r.text
    # the address is held back too, whichever login it tries next (10 failures in all)
    for login in ("li", "wang", "qian", "zhao", "chen", "sun"):
        assert sign_in(client(app), login, "wrong-password").status_code == 401
    assert sign_in(client(app), "zhou").status_code == 429
    now[0] += 2
    assert sign_in(c, "zhang").status_code == 200  # waited: the right password lets them in
    # the sign-in form without its token is refused (login CSRF)
    c2 = client(app)
    c2.get("/login")
    r = c2.post("/login", data={"login": "wang", "password": DEMO_PASSWORD})
    assert r.status_code == 403 and "表单已失效" in r.text
    assert auth.SESSION_COOKIE not in c2.cookies
    eng.close()


def test_throttle_waits_grow_are_per_address_and_forgotten():
    now = [1000.0]
    throttle = Throttle(clock=lambda: now[0], forget_after=3600)
    for _ in range(3):  # three failures in a row are free; the third makes the next wait 1 s
        assert throttle.attempt("ip:a", "wang").wait == 0
    assert throttle.attempt("ip:a", "wang").wait == 1
    now[0] += 1
    assert throttle.attempt("ip:a", "wang").wait == 0  # the 4th failure: then 2 s
    assert throttle.attempt("ip:a", "wang").wait == 2
    now[0] += 2
    assert throttle.attempt("ip:a", "wang").wait == 0  # the 5th: then 4 s
    assert throttle.attempt("ip:a", "wang").wait == 4
    # another address signs in as wang at once (the login's own slowdown is none yet)
    assert throttle.attempt("ip:b", "wang") == Verdict(wait=0, delay=0.0)
    throttle.succeeded("ip:b", "wang")
    now[0] += 4
    assert throttle.attempt("ip:a", "wang").wait == 0
    now[0] += 3601  # an hour after the last failure it is forgotten
    assert throttle.attempt("ip:a", "wang").wait == 0


def test_secret_key_made_once_private_and_kept(tmp_path):
    key = auth.load_secret(tmp_path)
    path = tmp_path / "web" / "secret.key"
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.load_secret(tmp_path) == key
    gitignore = (ROOT / ".gitignore").read_text()
    assert "/store/" in gitignore  # the demo store (and so its key) is never committed


def test_set_password_command_rewrites_only_that_user(dealer):
    config = dealer / "config.toml"
    before = config.read_text(encoding="utf-8")
    proc = subprocess.run([dealerdocs_bin(), "user", "set-password", "li"], cwd=dealer,
                          input="new-secret-9\nnew-secret-9\n", capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    after = config.read_text(encoding="utf-8")
    users = load_config(config).users
    assert auth.verify_password(users["li"].password_hash, "new-secret-9")
    assert not auth.verify_password(users["li"].password_hash, DEMO_PASSWORD)
    assert auth.verify_password(users["zhang"].password_hash, DEMO_PASSWORD)
    assert len(after.splitlines()) == len(before.splitlines())  # replaced in place
    short = subprocess.run([dealerdocs_bin(), "user", "set-password", "li"], cwd=dealer,
                           input="short\nshort\n", capture_output=True, text=True, timeout=60)
    assert short.returncode != 0 and "至少 8 个字符" in short.stderr
    assert config.read_text(encoding="utf-8") == after


# --- forms, transitions, documents -------------------------------------------------------------

def test_quote_from_form_to_issued_pdf(site):
    eng, app = site
    c = signed_in(app, "zhang")
    home = c.get("/")
    assert "新建商谈报价单" in home.text and "新建购车合同" in home.text
    assert "新建整改项目" not in home.text  # not a sales consultant's to open
    form = c.get("/cases/new/quote").text
    for label in ("客户姓名", "客户手机号", "厂家指导价", "精品附件", "付款方式", "报价有效期至"):
        assert label in form
    assert '<option value="分期"' in form  # choices from quote.toml
    # tables: blank rows for a browser without JavaScript, a <template> row for app.js's button
    assert 'name="accessories.2.name"' in form and 'name="accessories.3.name"' not in form
    template = form[form.index('<template id="new-accessories-row">'):form.index("</template>")]
    assert 'name="accessories.__n__.name"' in template and "需要更多行时先保存" in form
    js = c.get("/static/app.js")
    assert js.status_code == 200 and "增加一行" in js.text and '<script src="/static/app.js"' in form
    case_id = new_quote(c)
    page = c.get(f"/cases/{case_id}").text
    assert "草稿" in page and "刘晓明" in page and "出具报价单" in page
    assert "¥152,669.57" in page  # the computed total
    r = fire(c, case_id, "issue")
    assert r.status_code == 200 and "已完成「出具报价单」" in r.text
    [doc] = eng.case(case_id, actor="wang")["documents"]
    assert doc["number"] in r.text and eng.case(case_id, actor="wang")["state"] == "issued"
    pdf = c.get(f"/documents/{doc['number']}/file/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and "inline" in pdf.headers["content-disposition"]
    assert hashlib.sha256(pdf.content).hexdigest() == doc["pdf_sha256"]
    docx = c.get(f"/documents/{doc['number']}/file/docx")
    assert docx.content.startswith(b"PK") and "attachment" in docx.headers["content-disposition"]
    life = c.get(f"/documents/{doc['number']}").text
    assert "商谈报价单" in life and "打开 PDF" in life and "发放副本" in life  # a consultant dispatches
    assert "回收副本" not in life  # nothing out yet, and recall is the controller's/manager's


def test_errors_are_shown_next_to_their_field(site):
    eng, app = site
    c = signed_in(app, "zhang")
    r = post_form(c, "/cases/new/quote", "/cases/new/quote",
                  as_form(example("quote", customer_mobile="1380013800", list_price="abc")))
    assert r.status_code == 422
    assert "客户手机号" in field_error(r.text, "customer_mobile")
    assert "1380013800" in field_error(r.text, "customer_mobile")
    assert field_error(r.text, "list_price")
    assert 'value="1380013800"' in r.text  # what was typed stays in the form
    assert eng.cases(actor="wang") == []
    # a table row's problem is shown under that row
    r = post_form(c, "/cases/new/quote", "/cases/new/quote",
                  as_form(example("quote", accessories=[{"name": "脚垫", "quantity": "x",
                                                        "unit_price": "10"}])))
    assert r.status_code == 422 and '<tr class="row-error">' in r.text and "数量" in r.text
    # issuing without the fields the step needs asks for exactly those
    bare = {"customer_name": "王五", "customer_mobile": "13900001111"}
    r = post_form(c, "/cases/new/quote", "/cases/new/quote", as_form(bare))
    case_id = re.search(r"/cases/(Q-\d+)", str(r.url)).group(1)
    page = c.get(f"/cases/{case_id}?do=issue").text
    form = page[page.index('id="form-issue"'):page.index("</details>", page.index('id="form-issue"'))]
    assert "厂家指导价" in form and "报价有效期至" in form
    r = fire(c, case_id, "issue", {"brand": "奇瑞"})
    assert r.status_code == 422 and "需要填写" in r.text
    assert "必填" in field_error(r.text, "list_price")
    assert eng.case(case_id, actor="wang")["state"] == "draft" and eng.documents(actor="zhao") == []


def test_approvals_follow_roles_and_separation_of_duties(site):
    eng, app = site
    zhang, wang, qian = (signed_in(app, u) for u in ("zhang", "wang", "qian"))
    big = as_form(contract_data(discount="12000.00"))
    r = post_form(zhang, "/cases/new/contract", "/cases/new/contract", big)
    c1 = re.search(r"/cases/(C-\d+)", str(r.url)).group(1)
    r = fire(zhang, c1, "submit")
    assert r.status_code == 200 and eng.case(c1, actor="wang")["state"] == "pending_approval"
    # the consultant has no approve button, and posting the form directly is refused
    page = zhang.get(f"/cases/{c1}").text
    assert f'/cases/{c1}/fire/approve' not in page and "经理审批通过（无权限）" in page
    r = fire(zhang, c1, "approve")
    assert r.status_code == 403 and "无权" in r.text and "Traceback" not in r.text
    # a manager who drafted one cannot approve it; another manager can (another car: a VIN
    # is in one live contract at a time)
    r = post_form(qian, "/cases/new/contract", "/cases/new/contract",
                  {**big, "vin": "LSJA24U64JG269226"})
    c2 = re.search(r"/cases/(C-\d+)", str(r.url)).group(1)
    fire(qian, c2, "submit")
    page = qian.get(f"/cases/{c2}").text
    assert f'/cases/{c2}/fire/approve' not in page and "职责分离" in page
    assert c2 not in qian.get("/").text.split("等待我审批")[1].split("我的进行中案件")[0]
    r = fire(qian, c2, "approve")
    assert r.status_code == 403 and "职责分离" in r.text
    assert eng.case(c2, actor="wang")["state"] == "pending_approval"
    waiting = wang.get("/").text.split("等待我审批")[1].split("我的进行中案件")[0]
    assert c1 in waiting and c2 in waiting
    for case_id in (c1, c2):
        r = fire(wang, case_id, "approve")
        assert r.status_code == 200 and eng.case(case_id, actor="wang")["state"] == "approved"
    assert [e["actor"] for e in eng.case(c2, actor="wang")["history"]] == ["qian", "qian", "wang"]


def _opened_cases(monkeypatch, eng) -> list[str]:
    """The ids ``Engine.case`` is asked for from now on (a case file opened)."""
    opened: list[str] = []
    real = eng.case

    def counting(case_id, **kwargs):
        opened.append(case_id)
        return real(case_id, **kwargs)

    monkeypatch.setattr(eng, "case", counting)
    return opened


def _section(html: str, title: str) -> str:
    start = html.index(title)
    return html[start:html.find("</section>", start)]


def test_start_page_and_case_list_work_from_listings(site, monkeypatch):
    eng, app = site
    zhang, li, wang = (signed_in(app, u) for u in ("zhang", "li", "wang"))
    q1 = new_quote(zhang)
    q2 = new_quote(li, customer_name="周小红", customer_mobile="13911112222", consultant="li")
    q3 = new_quote(zhang, customer_name="吴刚")
    fire(zhang, q3, "cancel")
    r = post_form(zhang, "/cases/new/contract", "/cases/new/contract", as_form(contract_data(discount="12000.00")))
    c1 = re.search(r"/cases/(C-\d+)", str(r.url)).group(1)
    fire(zhang, c1, "submit")
    assert eng.case(c1, actor="wang")["state"] == "pending_approval"
    opened = _opened_cases(monkeypatch, eng)
    mine = _section(zhang.get("/").text, "我的进行中案件")
    assert q1 in mine and c1 in mine and q2 not in mine
    assert q3 not in mine  # cancelled: final, skipped without opening it
    # the consultant's steps on drafts have no separation of duties: nothing opened
    assert opened == []
    home = wang.get("/").text
    assert c1 in _section(home, "等待我审批") and q1 not in _section(home, "等待我审批")
    # the manager's approve step needs the history; the quotes' steps do not
    assert opened == [c1]
    opened.clear()
    listed = lambda query: set(re.findall(r'<a href="/cases/([A-Z]+-\d+)">', wang.get(
        f"/cases?{query}").text))
    assert listed("workflow=quote") == {q1, q2, q3}
    k1, k2 = "K-1", "K-2"      # the customers' files the quotes made (刘晓明 and 周小红)
    assert listed("customer=周小红") == {q2, k2}
    assert listed("customer=刘晓明&workflow=contract") == {c1}
    assert listed("consultant=li") == {q2, k2}
    assert listed("consultant=zhang&state=draft") == {q1}
    today = eng.clock().date()
    assert listed(f"date_from={today}&date_to={today}") == {q1, q2, q3, c1, k1, k2}
    assert listed(f"date_from={today + timedelta(days=1)}") == set()
    assert listed(f"date_to={today - timedelta(days=1)}") == set()
    assert opened == []  # every filter answered from the listings
    r = wang.get("/cases?date_from=2026-13-01")
    assert r.status_code == 422 and "Traceback" not in r.text


def test_forms_without_csrf_token_are_refused(site):
    eng, app = site
    c = signed_in(app, "zhang")
    case_id = new_quote(c)
    r = fire(c, case_id, "cancel", csrf=False)
    assert r.status_code == 403 and "表单已失效" in r.text
    r = c.post(f"/cases/{case_id}/fire/cancel", data={"_csrf": "forged"})
    assert r.status_code == 403
    assert eng.case(case_id, actor="wang")["state"] == "draft"
    # another user's token does not fit this session either
    other = signed_in(app, "wang")   # a manager, who sees the case
    r = other.post(f"/cases/{case_id}/fire/cancel", data={"_csrf": csrf_of(c.get("/").text)})
    assert r.status_code == 403 and eng.case(case_id, actor="wang")["state"] == "draft"


def test_a_new_workflow_file_brings_its_pages(tmp_path, converter):
    config_path = make_dealer_dir(tmp_path / "dealer")
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", folder)
    (folder / "visit.toml").write_text('''
[workflow]
key = "visit"
title = "客户回访登记"
case_prefix = "HV"
initial = "open"
create_roles = ["sales"]
summary = ["customer_name"]

[fields.customer_name]
type = "string"
label = "回访客户"
required = true

[fields.channel]
type = "choice"
label = "回访方式"
choices = ["电话", "微信", "到店"]
required = true

[fields.satisfied]
type = "boolean"
label = "客户满意"

[fields.notes]
type = "text"
label = "回访记录"

[states.open]
label = "待回访"

[states.done]
label = "已回访"
final = true

[[transitions]]
trigger = "close"
label = "完成回访"
source = ["open"]
dest = "done"
roles = ["sales"]
edits = ["notes", "satisfied"]
requires = ["notes"]
''', encoding="utf-8")
    text = config_path.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^workflows = "[^"\n]*"', f"workflows = {json.dumps(str(folder))}", text)
    config_path.write_text(text, encoding="utf-8")
    eng = web_engine(config_path, converter)
    c = signed_in(create_app(eng), "zhang")
    form = c.get("/cases/new/visit").text
    assert "新建客户回访登记" in form and "回访客户" in form and '<option value="微信"' in form
    assert "回访记录" not in form  # asked for by the step that needs it
    r = post_form(c, "/cases/new/visit", "/cases/new/visit",
                  {"customer_name": "刘晓明", "channel": "传真"})
    assert r.status_code == 422 and "不是可选值" in field_error(r.text, "channel")
    r = post_form(c, "/cases/new/visit", "/cases/new/visit",
                  {"customer_name": "刘晓明", "channel": "微信"})
    page = r.text
    assert "HV-1" in str(r.url) and "待回访" in page and "完成回访" in page and "回访记录" in page
    r = fire(c, "HV-1", "close", {"notes": "对交车服务满意", "satisfied": True})
    assert r.status_code == 200 and "已回访" in r.text
    assert eng.case("HV-1", actor="zhang")["data"]["satisfied"] is True


def test_documents_only_by_register_number(site):
    eng, app = site
    c = signed_in(app, "zhang")
    for path in ("/documents/..%2F..%2Fconfig.toml", "/documents/BJ-2026-999999",
                 "/documents/BJ-2026-999999/file/pdf", "/documents/x/file/../../config.toml",
                 "/cases/..%2Fstore", "/nowhere"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert "Traceback" not in r.text and ("找不到" in r.text), path


def test_error_pages_in_chinese_without_traceback(site, monkeypatch):
    eng, app = site
    c = signed_in(app, "zhang")

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(eng, "cases", broken)
    r = c.get("/cases")
    assert r.status_code == 500 and "系统内部错误" in r.text
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    r = c.get("/cases/Q-1")
    assert r.status_code == 404 and "找不到案件" in r.text
    r = c.get("/cases/new/nosuch")
    assert r.status_code == 404 and "没有名为" in r.text


def test_document_control_forms_and_register(site):
    eng, app = site
    zhang, zhao = signed_in(app, "zhang"), signed_in(app, "zhao")
    case_id = new_quote(zhang)
    fire(zhang, case_id, "issue")
    number = eng.case(case_id, actor="wang")["documents"][0]["number"]
    page = f"/documents/{number}"
    r = post_form(zhao, page, f"{page}/dispatch", {"to": "", "dept": "财务部", "copies": "2"})
    assert r.status_code == 422 and "领用人" in field_error(r.text, "to")
    r = post_form(zhao, page, f"{page}/dispatch",
                  {"to": "周会计", "dept": "财务部", "copies": "2", "channel": "纸质"})
    assert r.status_code == 200 and "已登记发放" in r.text
    assert f"{number}-01" in r.text and f"{number}-02" in r.text
    r = post_form(zhao, page, f"{page}/recall", {"reason": "丢失", "copy": "2"})
    assert r.status_code == 200 and "已登记回收" in r.text
    copies = {c["label"]: c for c in eng.document(number, actor="zhao")["copies"]}
    assert copies[f"{number}-02"]["status"] == "void" and copies[f"{number}-03"]["status"] == "out"
    # the register shows every copy; the consultant may not open it
    reg = zhao.get("/register").text
    assert reg.count(f">{number}</a>") == 3 and "已声明作废" in reg
    assert zhang.get("/register").status_code == 403
    x = zhao.get("/register/export.xlsx")
    assert x.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(x.content)).active
    cells = [c.value for row in sheet.iter_rows() for c in row]
    assert "文件发放回收记录表" in cells and f"{number}-03" in cells
    assert zhang.post(f"{page}/recall", data={"_csrf": csrf_of(zhang.get(page).text),
                                             "reason": "换版"}).status_code == 403


def test_evidence_uploads_checked_and_stored_hashed_then_supervisor_closes(site):
    eng, app = site
    sun, chen = signed_in(app, "sun"), signed_in(app, "chen")
    finding = example("rectification", inspection_date=_today(eng), deadline="2099-12-10")
    r = post_form(sun, "/cases/new/rectification", "/cases/new/rectification", as_form(finding))
    assert r.status_code == 200, errors_of(r.text)
    item = re.search(r"/cases/(R-\d+)", str(r.url)).group(1)
    fire(chen, item, "submit_plan", {"root_cause": "制度未落实", "corrective_action": "张贴路线图",
                                     "verification_method": "现场照片"})
    r = fire(sun, item, "approve_plan", {"review_opinion": "同意"})
    assert eng.case(item, actor="chen")["state"] == "in_progress", errors_of(r.text)
    closure = as_form({"completion_summary": "路线图已张贴", "completion_date": _today(eng)})
    r = fire(chen, item, "request_closure", closure,
             files=[("evidence", ("run.exe", b"MZ\x90\x00", "application/octet-stream"))])
    assert r.status_code == 422 and "不接受文件" in field_error(r.text, "evidence")
    r = fire(chen, item, "request_closure", closure,
             files=[("evidence", ("照片.png", b"not a png", "image/png"))])
    assert r.status_code == 422 and "不是 PNG" in field_error(r.text, "evidence")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    r = fire(chen, item, "request_closure", closure,
             files=[("evidence", ("../../路线图.png", png, "image/png"))])
    assert r.status_code == 200, errors_of(r.text)
    [stored] = eng.case(item, actor="chen")["data"]["evidence"]
    assert stored["name"] == "路线图.png" and stored["sha256"] == hashlib.sha256(png).hexdigest()
    assert eng.attachments.path_of(stored["file"]).read_bytes() == png
    # the requester cannot approve their own closure; the supervisor sees it waiting and closes
    assert "督导同意销项" not in chen.get(f"/cases/{item}").text.split("其他人可执行")[0]
    assert item in sun.get("/").text.split("等待我审批")[1].split("我的进行中案件")[0]
    r = fire(sun, item, "approve_closure", {"review_opinion": "整改到位"})
    assert r.status_code == 200 and eng.case(item, actor="chen")["state"] == "closed"
    assert eng.case(item, actor="chen")["data"]["closure_reviewer"] == "sun"


def _today(eng) -> str:
    return eng.clock().date().isoformat()


# --- preview, due list, reports (on the tests' movable clock) ----------------------------------

@pytest.fixture
def clocked(engine):
    """The app on an engine whose clock the test moves (conftest ``clock``: 2026-11-26)."""
    return engine, create_app(engine)


def _row(html: str, case_id: str) -> str:
    """The table row linking to ``case_id``."""
    m = re.search(rf'<tr[^>]*>(?:(?!</tr>).)*href="/cases/{case_id}"(?:(?!</tr>).)*</tr>', html, re.S)
    assert m, f"no row for {case_id}"
    return m.group(0)


def _finding(eng, text: str, deadline: str) -> str:
    return eng.create("rectification", example("rectification", finding=text, deadline=deadline),
                      "sun").id


def test_draft_preview_is_stamped_and_changes_nothing(site):
    eng, app = site
    zhang = signed_in(app, "zhang")
    case_id = new_quote(zhang)
    assert f"/cases/{case_id}/preview/issue" in zhang.get(f"/cases/{case_id}").text
    r = zhang.get(f"/cases/{case_id}/preview/issue")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert "inline" in r.headers["content-disposition"]
    text = _text_of(r.content)
    assert "草稿" in text and "刘晓明" in text and "152,669.57" in text
    # nothing numbered, registered or moved
    assert eng.documents(actor="zhao") == [] and eng.case(case_id, actor="wang")["state"] == "draft"
    assert len(eng.case(case_id, actor="wang")["history"]) == 1
    # who may not see the case may not preview its documents either (not found, not 403:
    # nobody learns of a colleague's customers)
    r = signed_in(app, "zhao").get(f"/cases/{case_id}/preview/issue")
    assert r.status_code == 404 and "找不到案件" in r.text and "Traceback" not in r.text


def test_due_list_shows_overdue_and_due_soon_items(clocked, clock):
    eng, app = clocked
    late = _finding(eng, "试驾车未张贴路线图", "2026-12-10")
    soon = _finding(eng, "展厅灭火器过期", "2026-12-20")
    later = _finding(eng, "客休区饮水机未消毒", "2027-03-01")
    clock.advance(days=19)  # 2026-12-15
    chen = signed_in(app, "chen")
    page = chen.get("/due").text
    assert 'class="overdue"' in _row(page, late) and "逾期 5 天" in _row(page, late)
    assert "剩余 5 天" in _row(page, soon) and 'class="overdue"' not in _row(page, soon)
    assert "试驾车未张贴路线图" in page and "李娜" in _row(page, late)
    assert later not in page
    wide = chen.get("/due?within=100").text
    assert "剩余 76 天" in _row(wide, later)
    assert "逾期 5 天" in _row(chen.get("/").text, late)  # the start page's reminder too
    # a sales consultant has no rectification items: nothing of them listed (the menu entry
    # is for the follow-ups of their customers)
    zhang = signed_in(app, "zhang")
    assert late not in zhang.get("/due").text and "试驾车未张贴路线图" not in zhang.get("/due").text


def test_report_exports_open_with_their_rows(clocked):
    eng, app = clocked
    item = _finding(eng, "试驾车未张贴路线图", "2026-12-10")
    chen = signed_in(app, "chen")
    page = chen.get("/reports").text
    assert "整改问题闭环管理表" in page and "/reports/rectification.xlsx" in page
    assert "试乘试驾预约登记表" not in page  # not a workflow the operations manager is in
    r = chen.get("/reports/rectification.xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml")
    rows = _sheet_rows(r.content)
    header = next(i for i, row in enumerate(rows) if "问题描述" in row)
    [data] = [row for row in rows[header + 1:] if any(row)]
    assert item in data and "试驾车未张贴路线图" in data
    r = chen.get("/reports/rectification.xlsx?date_from=2026-11-21")
    rows = _sheet_rows(r.content)
    header = next(i for i, row in enumerate(rows) if "问题描述" in row)
    assert not [row for row in rows[header + 1:] if item in row]
    docx = chen.get("/reports/rectification.docx")
    assert docx.status_code == 200 and "试驾车未张贴路线图" in docx_text(docx.content)
    r = chen.get("/reports/rectification.csv")
    assert r.status_code == 422 and "不支持的格式" in r.text
    r = signed_in(app, "zhang").get("/reports/rectification.xlsx")
    assert r.status_code == 404 and "没有名为" in r.text


def test_counting_reports_on_the_reports_page(site):
    """The traffic table and the funnel for a manager; a consultant's funnel counts their own
    customers only; the front desk gets the register, not the counting reports."""
    eng, app = site
    at = eng.clock().replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M")
    for who, mobile in (("zhang", "13600009001"), ("li", "13600009002")):
        eng.create("reception", {"kind": "来店", "arrived_at": at, "customer_name": "客户" + who,
                                 "customer_mobile": mobile, "consultant": who}, "xu")
    wang = signed_in(app, "wang")
    page = wang.get("/reports").text
    assert "展厅客流量统计表" in page and "销售漏斗" in page and "/reports/traffic.xlsx" in page
    r = wang.get("/reports/traffic.xlsx")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = _sheet_rows(r.content)
    header = next(row for row in rows if row and row[0] == "日期")
    under = rows[rows.index(header) + 1]          # the lower of the two header rows
    total = next(row for row in rows if row and row[0] == "合计")
    day = header.index("全天合计")                  # the whole day's counts, 来店 first
    assert under[day] == "来店客户批数" and total[day] >= 2
    zhang = signed_in(app, "zhang")
    rows = _sheet_rows(zhang.get("/reports/funnel.xlsx").content)
    names = [row[0] for row in rows[3:] if row and row[0]]
    assert "张伟（zhang）" in names and "李娜（li）" not in names
    desk = signed_in(app, "xu")
    page = desk.get("/reports").text
    assert "展厅来电/店登记表" in page and "展厅客流量统计表" not in page
    assert desk.get("/reports/traffic.xlsx").status_code == 404
    r = desk.get("/reports/reception.xlsx")
    assert r.status_code == 200 and "%E5%B1%95%E5%8E%85%E6%9D%A5%E7%94%B5%E3%80%81" in \
        r.headers["content-disposition"]          # 展厅来电、店登记表: no "/" in a file name


def _sheet_rows(content: bytes) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


# --- conditions known to fail: a disabled button with its reason ------------------------------

def _blocked(html: str, trigger: str) -> str | None:
    """The reason shown beside the disabled button of ``trigger``, or None if it is a form."""
    m = re.search(rf'<div class="action blocked" id="form-{trigger}">\s*<button type="button" '
                  rf'disabled[^>]*>[^<]*</button>\s*<span class="why"[^>]*>([^<]*)</span>', html)
    return m.group(1) if m else None


def test_steps_whose_conditions_cannot_hold_are_disabled_with_the_reason(clocked, clock):
    eng, app = clocked
    zhang = signed_in(app, "zhang")
    case_id = eng.create("quote", example("quote", valid_until="2026-12-05"), "zhang").id
    eng.fire(case_id, "issue", "zhang")
    page = zhang.get(f"/cases/{case_id}").text
    assert _blocked(page, "expire") == "暂不能执行：报价有效期至 2026年12月5日，尚未过期"
    assert f"/cases/{case_id}/fire/expire" not in page
    assert _blocked(page, "accept") is None and f"/cases/{case_id}/fire/accept" in page
    # the engine stays the judge: posting the step anyway is still refused
    r = zhang.post(f"/cases/{case_id}/fire/expire", data={"_csrf": csrf_of(page)})
    assert r.status_code == 409 and "尚未过期" in r.text
    clock.advance(days=10)  # 2026-12-06: the quote has lapsed
    # sessions end 12 hours after sign-in on the engine's clock: this one is 10 days old
    assert zhang.get(f"/cases/{case_id}", follow_redirects=False).status_code == 303
    zhang = signed_in(app, "zhang")
    page = zhang.get(f"/cases/{case_id}").text
    assert "已于 2026年12月5日 过期" in _blocked(page, "accept")
    assert _blocked(page, "expire") is None
    r = fire(zhang, case_id, "expire")
    assert r.status_code == 200 and eng.case(case_id, actor="wang")["state"] == "expired"
    # the API says the same
    api = client(app)
    token = api.post("/api/token", json={"login": "zhang", "password": DEMO_PASSWORD}).json()
    other = eng.create("quote", example("quote", valid_until="2026-12-31"), "zhang").id
    eng.fire(other, "issue", "zhang")
    shown = api.get(f"/api/cases/{other}", headers={"Authorization": f"Bearer {token['token']}"})
    may = {t["trigger"]: t["blocked"] for t in shown.json()["may_fire"]}
    assert "尚未过期" in may["expire"] and may["accept"] is None


def test_extension_after_the_deadline_is_disabled_for_the_requester(clocked, clock):
    eng, app = clocked
    item = _finding(eng, "试驾车未张贴路线图", "2026-12-10")
    eng.fire(item, "submit_plan", "chen", {"root_cause": "制度未落实", "corrective_action": "张贴路线图",
                                           "verification_method": "现场照片"})
    eng.fire(item, "approve_plan", "sun", {"review_opinion": "同意"})
    chen = signed_in(app, "chen")
    page = chen.get(f"/cases/{item}").text
    assert _blocked(page, "request_extension") is None and _blocked(page, "request_cancel") is None
    clock.advance(days=19)  # 2026-12-15, five days late
    chen = signed_in(app, "chen")  # the session of 19 days ago has ended
    page = chen.get(f"/cases/{item}").text
    for trigger in ("request_extension", "request_cancel"):
        assert "整改期限 2026年12月10日 已过（逾期 5 天）" in _blocked(page, trigger)
        assert f"/cases/{item}/fire/{trigger}" not in page
    assert f"/cases/{item}/fire/request_closure" in page  # closing late is still possible


def test_a_condition_on_a_field_the_form_edits_leaves_the_form_open(clocked, clock):
    """Only what the form cannot change disables a button: a step that may edit the field
    its condition reads keeps its form (the engine judges the posted data)."""
    import dataclasses

    from engine import access

    eng, _ = clocked
    case_id = eng.create("quote", example("quote", valid_until="2026-12-05"), "zhang").id
    eng.fire(case_id, "issue", "zhang")
    case, wf = eng.case(case_id, actor="wang"), eng.workflows["quote"]
    [expire] = wf.candidates("expire", "issued")
    fixed = access.Action("expire", expire.label, (expire,))
    editing = access.Action("expire", expire.label,
                            (dataclasses.replace(expire, edits=("valid_until",)),))
    everything = access.Action("expire", expire.label,
                               (dataclasses.replace(expire, edits=("*",)),))
    facts = eng.rule_names(wf, case)
    [a, b, c] = access.with_conditions(wf, case["state"], facts, [fixed, editing, everything])
    assert "尚未过期" in a.blocked and b.blocked is None and c.blocked is None
    unrelated = access.Action("expire", expire.label,
                              (dataclasses.replace(expire, edits=("remarks",)),))
    assert "尚未过期" in access.with_conditions(wf, case["state"], facts, [unrelated])[0].blocked


# --- the JSON API ------------------------------------------------------------------------------

def test_api_token_operations_and_refusals(site):
    eng, app = site
    c = client(app)
    assert c.get("/api/cases").status_code == 401
    assert c.post("/api/token", json={"login": "zhang", "password": "nope"}).status_code == 401
    token = c.post("/api/token", json={"login": "zhang", "password": DEMO_PASSWORD}).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    assert c.get("/api/me", headers=h).json()["roles"] == ["sales"]
    created = c.post("/api/cases", headers=h, json={"workflow": "quote",
                                                    "data": example("quote")})
    assert created.status_code == 201 and created.json()["state"] == "draft"
    case_id = created.json()["id"]
    bad = c.post(f"/api/cases/{case_id}/fire/issue", headers=h,
                 json={"data": {"customer_mobile": "123"}})
    assert bad.status_code == 422 and bad.json()["error"] == "InputError"
    assert bad.json()["field"] == "customer_mobile"
    issued = c.post(f"/api/cases/{case_id}/fire/issue", headers=h).json()
    assert issued["state"] == "issued" and "pdf" not in issued["documents"][0]
    pdf = c.get(issued["documents"][0]["pdf_url"], headers=h)
    assert pdf.content.startswith(b"%PDF-") and "刘晓明" in _text_of(pdf.content)
    shown = c.get(f"/api/cases/{case_id}", headers=h).json()
    assert shown["total"] == "152669.57" and {"accept", "revise"} <= {
        t["trigger"] for t in shown["may_fire"]}
    # the same refusals as the CLI
    r = c.post("/api/cases", headers=h, json={"workflow": "rectification",
                                              "data": example("rectification")})
    assert r.status_code == 403 and r.json()["error"] == "PermissionDenied"
    r = c.post(f"/api/cases/{case_id}/fire/approve", headers=h)
    assert r.status_code == 409 and r.json()["error"] == "StateError"
    sun = c.post("/api/token", json={"login": "sun", "password": DEMO_PASSWORD}).json()["token"]
    r = c.post("/api/cases", headers={"Authorization": f"Bearer {sun}"}, json={
        "workflow": "rectification", "data": {**example("rectification"),
                                              "evidence": ["/etc/passwd"]}})
    assert r.status_code == 422 and "content_base64" in r.json()["message"]  # no server path read
    assert c.get("/api/register", headers=h).status_code == 403
    assert c.get("/api/cases", headers={"Authorization": "Bearer forged"}).status_code == 401
    spec = c.get("/api/openapi.json").json()
    assert {"/api/token", "/api/cases", "/api/cases/{case_id}/fire/{trigger}",
            "/api/documents/{number}/dispatch"} <= set(spec["paths"])
    assert not any(p.startswith("/cases") for p in spec["paths"])  # pages are not the API


def _text_of(pdf: bytes) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        return pdf_text(Path(f.name))


def test_api_dispatch_recall_register_and_reports(clocked):
    eng, app = clocked
    case_id = eng.create("quote", example("quote"), "zhang").id
    [doc] = eng.fire(case_id, "issue", "zhang").documents
    item = _finding(eng, "试驾车未张贴路线图", "2026-12-10")
    c = client(app)
    zhang, zhao, chen = ({"Authorization": "Bearer " + c.post("/api/token", json={
        "login": u, "password": DEMO_PASSWORD}).json()["token"]} for u in ("zhang", "zhao", "chen"))
    url = f"/api/documents/{doc.number}"
    r = c.post(f"{url}/dispatch", headers=zhang, json={"to": "周会计", "dept": "财务部", "copies": 2})
    assert r.status_code == 200
    assert [x["label"] for x in r.json()["copies"]] == [f"{doc.number}-01", f"{doc.number}-02"]
    r = c.post(f"{url}/dispatch", headers=zhang, json={"to": "周会计", "dept": "", "copies": 0})
    assert r.status_code == 422 and r.json()["error"] == "InputError"
    assert "领用部门" in r.json()["message"] and "份数应在 1–50 之间，收到 0" in r.json()["message"]
    r = c.post(f"{url}/dispatch", headers=chen, json={"to": "周会计", "dept": "财务部"})
    assert r.status_code == 404  # the operations manager does not see quotes
    # recall is the controller's (or a manager's), not the consultant's
    r = c.post(f"{url}/recall", headers=zhang, json={"reason": "丢失", "copy": 2})
    assert r.status_code == 403 and r.json()["error"] == "PermissionDenied"
    r = c.post(f"{url}/recall", headers=zhao, json={"reason": "丢失", "copy": 2})
    assert r.status_code == 200
    r = c.post(f"{url}/recall", headers=zhao, json={"reason": "借走了"})
    assert r.status_code == 422  # not one of the register's reasons
    # a lost copy is declared void and replaced (补发)
    assert [x["status"] for x in eng.document(doc.number, actor="zhao")["copies"]] == ["out", "void", "out"]
    register = c.get("/api/register", headers=zhao).json()
    columns, rows = register["columns"], register["rows"]
    assert len(columns) == len(rows[0]) and len(rows) == 3
    assert all(row[1] == doc.number for row in rows)
    assert [row[4] for row in rows] == [f"{doc.number}-0{i}" for i in (1, 2, 3)]
    assert "已声明作废" in rows[1][-1] and "已声明作废" not in rows[0][-1]
    assert f"替代 {doc.number}-02" in rows[2][-1]
    assert c.get("/api/register?date_from=2026-11-27", headers=zhao).json()["rows"] == []
    assert c.get("/api/register?date_from=2026-13-01", headers=zhao).status_code == 422
    # the period registers, as files
    r = c.get("/api/reports/rectification.xlsx", headers=chen)
    assert r.status_code == 200
    assert any(item in row and "试驾车未张贴路线图" in row for row in _sheet_rows(r.content))
    r = c.get("/api/reports/rectification.xlsx", headers=zhang)
    assert r.status_code == 404 and r.json()["error"] == "NotFoundError"
    assert c.get("/api/reports/rectification.csv", headers=chen).status_code == 422
    assert c.get("/api/reports/rectification.xlsx").status_code == 401


def test_a_pooled_customer_is_taken_from_its_page(site):
    """公共客户池 on the web: a customer with no consultant (the desk registered them, nobody on
    duty) shows every consultant its file with 认领客户; the first to take it has it, and the
    other then reads 404; the desk never sees the file."""
    eng, app = site
    made = eng.create("reception", {"kind": "来店", "arrived_at": "2026-11-20T10:00",
                                    "customer_name": "无人接待", "customer_mobile": "13712340000"},
                      "xu")
    customer = made.party
    assert eng.case(customer, actor="wang")["data"].get("consultant") is None
    zhang, li = signed_in(app, "zhang"), signed_in(app, "li")
    page = li.get(f"/cases/{customer}").text
    assert "认领客户" in page and f"/cases/{customer}/fire/take" in page
    assert "137****0000" in page and "13712340000" not in page
    assert customer in zhang.get("/cases?workflow=customer").text
    r = fire(li, customer, "take")
    assert r.status_code == 200 and eng.case(customer, actor="li")["data"]["consultant"] == "li"
    assert zhang.get(f"/cases/{customer}").status_code == 404
    assert customer not in zhang.get("/cases?workflow=customer").text
    assert signed_in(app, "xu").get(f"/cases/{customer}").status_code == 404
