"""The web app in a real browser: Debian's Chromium, headless, driven by Playwright, against one
uvicorn server started here. The scenarios of issue #9: a consultant issues a quote and opens
its PDF; a manager approves a contract someone else drafted but not their own; the supervisor
approves a rectification closure; a user without the role sees no button and is refused when
posting the form anyway; a form without its CSRF token is refused.

Screenshots of the main pages go to $DEALERDOCS_SCREENSHOTS (a folder) when it is set. At the end,
the same pages on a phone (issue 22).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from engine.web.app import create_app
from helpers import ROOT, contract_data, day, example, make_dealer_dir, pdf_text, vin_numbered
from web_support import DEMO_PASSWORD, web_engine

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--lang=zh-CN"]

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Debian's Chromium is not installed (/usr/bin/chromium): run `make setup` as "
                "root, or apt-get install chromium chromium-driver", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory, converter):
    """One dealership and one server for the module (uvicorn in a thread)."""
    import uvicorn

    config_path = make_dealer_dir(tmp_path_factory.mktemp("web") / "dealer")
    eng = web_engine(config_path, converter)
    app = create_app(eng)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield eng, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    eng.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("CI: /usr/bin/chromium is missing (tools/setup-system.sh installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("DEALERDOCS_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


DESKTOP = {"locale": "zh-CN", "viewport": {"width": 1360, "height": 900}}


def sign_in(browser, base: str, login: str, device: dict = DESKTOP) -> Page:
    context = browser.new_context(base_url=base, **device)
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#login", login)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("我的工作台")
    return page


def fill_quote(page: Page, accessories: list[tuple[str, str, str]]) -> None:
    """The new-quote form filled from examples/quote.json, with these accessory rows."""
    q = example("quote")
    for name in ("customer_name", "customer_mobile", "brand", "series", "model", "colour",
                 "list_price", "discount", "registration_fee", "deposit"):
        page.fill(f"#new-{name}", q[name])
    page.select_option("#new-payment_method", "全款")
    page.fill("#new-valid_until", day(7))
    for i, (name, count, price) in enumerate(accessories, start=1):
        page.fill(f"input[name='accessories.{i}.name']", name)
        page.fill(f"input[name='accessories.{i}.quantity']", count)
        page.fill(f"input[name='accessories.{i}.unit_price']", price)


def submit_action(page: Page, trigger: str) -> None:
    form = page.locator(f"#form-{trigger}")
    if form.get_attribute("open") is None:
        form.locator("summary").first.click()
    form.locator("form > .buttons button[type=submit]").click()


def test_consultant_issues_a_quote_and_opens_its_pdf(site, browser, shots):
    eng, base = site
    login = browser.new_page(base_url=base, locale="zh-CN")
    login.goto("/login")
    login.screenshot(path=str(shots / "01-sign-in.png"))
    login.close()
    page = sign_in(browser, base, "zhang")
    page.click("text=新建商谈报价单")
    expect(page.locator("h1")).to_have_text("新建商谈报价单")
    page.screenshot(path=str(shots / "04-new-case.png"), full_page=True)
    fill_quote(page, [("真皮座椅套", "1", "2380.00")])
    page.click("text=保存为草稿")
    expect(page.locator(".notice")).to_have_text("已新建。")
    case_id = re.search(r"/cases/(Q-\d+)", page.url).group(1)
    # the issue form: everything needed is filled; the rest is folded away
    page.locator("#form-issue summary").first.click()
    page.screenshot(path=str(shots / "03-case-with-form.png"), full_page=True)
    submit_action(page, "issue")
    expect(page.locator(".notice")).to_have_text("已完成「出具报价单」。")
    expect(page.locator("h1 .state")).to_have_text("已出具")
    [doc] = eng.case(case_id, actor="wang")["documents"]
    link = page.locator(f"#documents a[href='/documents/{doc['number']}/file/pdf']")
    expect(link).to_be_visible()
    response = page.request.get(link.get_attribute("href"))
    assert response.ok and response.headers["content-type"] == "application/pdf"
    pdf = Path(doc["pdf"])
    assert response.body() == pdf.read_bytes()
    assert example("quote")["customer_name"] in pdf_text(pdf)
    page.click(f"#documents a[href='/documents/{doc['number']}']")
    expect(page.locator("h1")).to_contain_text(doc["number"])
    expect(page.locator(".viewer object")).to_have_attribute(
        "data", f"/documents/{doc['number']}/file/pdf")
    # where no PDF viewer is built in (headless here; phones), page 1 is shown as a picture
    picture = page.request.get(f"/documents/{doc['number']}/file/page1")
    assert picture.ok and picture.body().startswith(b"\x89PNG")
    page.screenshot(path=str(shots / "05-document.png"), full_page=True)
    # a field error is shown at the field
    page.goto(f"/cases/{case_id}")
    page.locator("#form-revise summary").first.click()
    page.locator("#form-revise details.more summary").click()
    page.fill("#revise-customer_mobile", "1380013800")
    submit_action(page, "revise")
    error = page.locator("#form-revise .field.has-error .error")
    expect(error.first).to_contain_text("客户手机号")
    page.locator("#form-revise").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "03b-case-field-error.png"), full_page=True)
    assert len(eng.case(case_id, actor="wang")["documents"]) == 1
    page.context.close()


def _pending_contract(eng, actor: str, name: str) -> str:
    # a car of its own: one VIN is in one live contract at a time (a pending one holds it)
    vin = vin_numbered(700000 + len(eng.cases("contract", actor="wang")))
    data = contract_data(discount="12000.00", customer_name=name, vin=vin)
    case_id = eng.create("contract", data, actor).id
    assert eng.fire(case_id, "submit", actor).state == "pending_approval"
    return case_id


def test_manager_approves_anothers_contract_but_not_their_own(site, browser, shots):
    eng, base = site
    theirs = _pending_contract(eng, "zhang", "陈晓东")
    own = _pending_contract(eng, "qian", "吴敏")
    page = sign_in(browser, base, "qian")
    waiting = page.locator("section.panel", has_text="等待我审批")
    expect(waiting.locator(f"a[href='/cases/{theirs}']")).to_be_visible()
    expect(waiting.locator(f"a[href='/cases/{own}']")).to_have_count(0)
    page.screenshot(path=str(shots / "02-start-page.png"), full_page=True)
    page.goto(f"/cases/{own}")
    expect(page.locator("#form-approve")).to_have_count(0)
    expect(page.locator("#actions")).to_contain_text("职责分离")
    page.goto(f"/cases/{theirs}")
    submit_action(page, "approve")
    expect(page.locator("h1 .state")).to_have_text("已审批")
    assert eng.case(theirs, actor="wang")["state"] == "approved" and eng.case(own, actor="wang")["state"] == "pending_approval"
    page.goto("/cases?workflow=contract")
    page.screenshot(path=str(shots / "06-case-list.png"), full_page=True)
    page.context.close()


def test_supervisor_approves_a_rectification_closure(site, browser, shots, tmp_path):
    eng, base = site
    today = eng.clock().date().isoformat()
    item = eng.create("rectification", example("rectification", inspection_date=today,
                                               deadline=day(20)), "sun").id
    eng.fire(item, "submit_plan", "chen", {"root_cause": "制度未落实", "corrective_action": "张贴路线图",
                                           "verification_method": "现场照片"})
    eng.fire(item, "approve_plan", "sun")
    shutil.copy(ROOT / "examples" / "evidence" / "试驾路线图-整改后.png", tmp_path / "路线图.png")
    eng.fire(item, "request_closure", "chen", {"completion_summary": "路线图已张贴",
                                               "completion_date": today,
                                               "evidence": ["路线图.png"]}, files_from=tmp_path)
    page = sign_in(browser, base, "sun")
    waiting = page.locator("section.panel", has_text="等待我审批")
    waiting.locator(f"a.button[href^='/cases/{item}?do=approve_closure']").click()
    expect(page.locator("#form-approve_closure")).to_have_attribute("open", "")
    page.fill("#approve_closure-review_opinion", "证据齐全，同意销项")
    submit_action(page, "approve_closure")
    expect(page.locator("h1 .state")).to_have_text("已销项")
    case = eng.case(item, actor="chen")
    assert case["state"] == "closed" and case["data"]["closure_reviewer"] == "sun"
    assert case["data"]["review_opinion"] == "证据齐全，同意销项"
    page.context.close()


def test_no_button_without_the_role_and_403_when_posting_anyway(site, browser):
    eng, base = site
    case_id = _pending_contract(eng, "zhang", "郑凯")
    page = sign_in(browser, base, "zhang")   # the consultant sees the contract, may not approve
    page.goto(f"/cases/{case_id}")
    expect(page.locator("#form-approve")).to_have_count(0)
    expect(page.locator("#actions")).to_contain_text("经理审批通过（无权限）")
    # the same POST the manager's form makes, with this session's valid CSRF token
    token = page.locator("input[name=_csrf]").first.input_value()
    with page.expect_navigation():
        page.evaluate("""([action, token]) => {
            const f = document.createElement('form');
            f.method = 'post'; f.action = action;
            const i = document.createElement('input');
            i.type = 'hidden'; i.name = '_csrf'; i.value = token;
            f.appendChild(i); document.body.appendChild(f); f.submit();
        }""", [f"/cases/{case_id}/fire/approve", token])
    expect(page.locator("h1")).to_have_text("无权访问")
    expect(page.locator(".message")).to_contain_text("无权")
    status = page.request.post(f"/cases/{case_id}/fire/approve", form={"_csrf": token}).status
    assert status == 403 and eng.case(case_id, actor="wang")["state"] == "pending_approval"
    page.context.close()


def test_a_form_without_its_csrf_token_is_refused(site, browser, shots):
    eng, base = site
    case_id = eng.create("quote", example("quote", valid_until=day(7), customer_mobile="13911110001"), "li").id
    [doc] = [d.to_dict() for d in eng.fire(case_id, "issue", "li").documents]
    page = sign_in(browser, base, "zhao")
    page.goto(f"/documents/{doc['number']}")
    page.locator("#form-dispatch summary").click()
    page.fill("#d-to", "周会计")
    page.fill("#d-dept", "财务部")
    page.evaluate("document.querySelector('#form-dispatch input[name=_csrf]').remove()")
    page.locator("#form-dispatch button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("表单已失效")
    assert eng.document(doc["number"], actor="zhao")["copies"] == []
    # with the token it goes through, and the register shows the copy
    page.goto(f"/documents/{doc['number']}")
    page.locator("#form-dispatch summary").click()
    page.fill("#d-to", "周会计")
    page.fill("#d-dept", "财务部")
    page.locator("#form-dispatch button[type=submit]").click()
    expect(page.locator(".notice")).to_have_text("已登记发放。")
    page.click("text=发放回收记录")
    expect(page.locator("table.register")).to_contain_text(f"{doc['number']}-01")
    page.screenshot(path=str(shots / "07-register.png"), full_page=True)
    page.context.close()


def test_a_step_whose_condition_cannot_hold_is_a_disabled_button(site, browser, shots):
    eng, base = site
    case_id = eng.create("quote", example("quote", valid_until=day(7), customer_mobile="13911110002"), "li").id
    eng.fire(case_id, "issue", "li")
    page = sign_in(browser, base, "li")
    page.goto(f"/cases/{case_id}")
    expire = page.locator("#form-expire")
    expect(expire.locator("button")).to_be_disabled()
    expect(expire).to_contain_text("尚未过期")
    expect(expire.locator("form")).to_have_count(0)
    expect(page.locator("#form-accept summary")).to_be_enabled()
    page.screenshot(path=str(shots / "08-case-disabled-button.png"), full_page=True)
    page.context.close()


def test_add_row_button_numbers_the_new_row_and_it_is_saved(site, browser, shots):
    eng, base = site
    page = sign_in(browser, base, "li")
    page.goto("/cases/new/quote")
    table = page.locator("#new-accessories")
    expect(table.locator("tbody tr")).to_have_count(2)  # the blank rows a page without JS has
    expect(page.locator(".field", has=table).locator(".no-js")).to_be_hidden()
    add = page.locator(".field", has=table).get_by_role("button", name="增加一行")
    add.click()
    add.click()
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table.locator("tbody tr").last.locator("td").first).to_have_text("4")
    expect(page.locator("input[name='accessories.4.name']")).to_be_focused()
    page.fill("#new-customer_name", "孙悦")
    page.fill("#new-customer_mobile", "13911112222")
    page.fill("input[name='accessories.1.name']", "脚垫")
    page.fill("input[name='accessories.1.quantity']", "1")
    page.fill("input[name='accessories.1.unit_price']", "300")
    page.fill("input[name='accessories.4.name']", "行车记录仪")
    page.fill("input[name='accessories.4.quantity']", "2")
    page.fill("input[name='accessories.4.unit_price']", "899.00")
    page.screenshot(path=str(shots / "09-new-case-added-rows.png"), full_page=True)
    page.locator("form.case-form button[type=submit]").click()
    expect(page.locator(".notice")).to_have_text("已新建。")
    case_id = re.search(r"/cases/(Q-\d+)", page.url).group(1)
    rows = eng.case(case_id, actor="wang")["data"]["accessories"]
    assert [(r["name"], r["quantity"]) for r in rows] == [("脚垫", 1), ("行车记录仪", 2)]
    page.context.close()

# --- on a phone (issue 22, first part) ---------------------------------------------------------
# Chromium's phone emulation at 390 × 844 with touch, signed in as a consultant: on the start
# page, a new-quote form with two accessory rows, the case page with its issue form open and the
# case list, nothing is wider than the screen, the navigation's links stay on one line each,
# every visible button is at least 40 px high, and the form asks for the right phone keyboards.

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True, "locale": "zh-CN"}


def on_phone(browser, base: str, login: str) -> Page:
    return sign_in(browser, base, login, PHONE)


def fits_a_phone(page: Page, what: str, *, nav: bool = True) -> None:
    """No horizontal scrolling; navigation links on one line; buttons big enough to tap."""
    # a phone widens its layout viewport to fit a page that is too wide (innerWidth grows),
    # so the page is measured against the screen's own width
    width = page.evaluate("document.documentElement.scrollWidth")
    screen = PHONE["viewport"]["width"]
    wide = page.evaluate("""(screen) => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > screen + 1)
        .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))
        .slice(0, 5)""", screen)
    assert page.evaluate("window.innerWidth") == screen, f"{what}: the phone zoomed out ({wide})"
    assert width <= screen, f"{what}: the page is {width} px wide on a {screen} px screen"
    lines = page.evaluate("""() => [...document.querySelectorAll('header.top nav a')]
        .map(a => [a.textContent.trim(), a.getClientRects().length,
                   a.getBoundingClientRect().height])""")
    assert bool(lines) == nav, what
    for text, rects, height in lines:
        assert rects == 1 and height < 48, f"{what}: the link 「{text}」 wraps ({height} px high)"
    small = page.evaluate("""() => [...document.querySelectorAll('button, .button')]
        .filter(b => b.offsetParent !== null)
        .map(b => [b.textContent.trim(), b.getBoundingClientRect().height])
        .filter(([, h]) => h < 40)""")
    assert small == [], f"{what}: buttons under 40 px high: {small}"
    weight = len(page.content().encode()) + sum(
        len(page.request.get(f"/static/{name}").body()) for name in ("app.css", "app.js"))
    assert weight < 300_000, f"{what}: {weight} bytes before any PDF (a slow connection)"


def test_a_consultant_works_on_a_phone(site, browser, shots):
    eng, base = site
    page = on_phone(browser, base, "zhang")
    fits_a_phone(page, "start page")
    page.screenshot(path=str(shots / "phone-01-start.png"), full_page=True)

    page.click("text=新建商谈报价单")
    expect(page.locator("h1")).to_have_text("新建商谈报价单")
    mobile = page.locator("#new-customer_mobile")
    assert mobile.get_attribute("type") == "tel" and mobile.get_attribute("inputmode") == "tel"
    assert page.locator("#new-list_price").get_attribute("inputmode") == "decimal"
    assert page.locator("#new-valid_until").get_attribute("type") == "date"
    quantity = page.locator("input[name='accessories.1.quantity']")
    assert quantity.get_attribute("inputmode") == "numeric"
    fill_quote(page, [("真皮座椅套", "1", "2380.00"), ("原厂雨眉", "4", "95.50")])
    # row by row: each row a card that names its inputs; a third row added, then deleted
    table = page.locator("#new-accessories")
    assert table.locator("thead").is_hidden()
    unit = table.locator("tr[data-row='2'] td[data-label='单价（元）']")
    assert unit.evaluate("td => getComputedStyle(td, '::before').content") == '"单价（元）"'
    first, second = (table.locator(f"tr[data-row='{i}']").bounding_box() for i in (1, 2))
    assert second["y"] >= first["y"] + first["height"], "rows are cards one under the other"
    page.locator(".field", has=table).get_by_role("button", name="增加一行").click()
    page.fill("input[name='accessories.3.name']", "不要的行")
    fits_a_phone(page, "new-quote form with two accessory rows")
    page.screenshot(path=str(shots / "phone-02-new-quote.png"), full_page=True)
    table.get_by_role("button", name="删除第 3 行").click()
    expect(table.locator("tbody tr[data-row]")).to_have_count(2)
    page.click("text=保存为草稿")
    expect(page.locator(".notice")).to_have_text("已新建。")
    case_id = re.search(r"/cases/(Q-\d+)", page.url).group(1)
    rows = eng.case(case_id, actor="wang")["data"]["accessories"]
    assert [r["name"] for r in rows] == ["真皮座椅套", "原厂雨眉"]
    page.locator("#form-issue summary").first.click()
    fits_a_phone(page, "case page with its issue form open")
    page.screenshot(path=str(shots / "phone-03-case.png"), full_page=True)
    submit_action(page, "issue")
    expect(page.locator(".notice")).to_have_text("已完成「出具报价单」。")
    [doc] = eng.case(case_id, actor="wang")["documents"]
    page.click(f"#documents a[href='/documents/{doc['number']}']")
    expect(page.locator("h1")).to_contain_text(doc["number"])
    fits_a_phone(page, "document page")
    # a phone shows no PDF inline: page 1 as a picture, and the full-screen viewer
    expect(page.locator(".viewer object")).to_be_hidden()
    picture = page.locator(".viewer a.phone-only img.page")
    expect(picture).to_be_visible()
    page.screenshot(path=str(shots / "phone-05-document.png"), full_page=True)
    page.click("text=全屏查看")
    expect(page).to_have_url(re.compile(rf"/documents/{doc['number']}/view$"))
    pages = len(PdfReader(doc["pdf"]).pages)
    expect(page.locator("main.pages figure")).to_have_count(pages)
    expect(page.locator(".viewer-bar")).to_contain_text(f"共 {pages} 页")
    first = page.locator("#page-1 img")
    expect(first).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
    assert first.bounding_box()["width"] >= PHONE["viewport"]["width"] - 2   # the full width
    fits_a_phone(page, "full-screen PDF viewer", nav=False)
    page.screenshot(path=str(shots / "phone-07-viewer.png"))
    download = page.request.get(page.get_by_role("link", name="下载 PDF").get_attribute("href"))
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.body() == Path(doc["pdf"]).read_bytes()
    page.go_back()

    page.goto("/cases")
    fits_a_phone(page, "case list")
    card = page.locator("table.list.cards tbody tr").filter(has_text=case_id)
    expect(card).to_be_visible()
    # a card, not a table row: the column names are written inside it
    assert page.locator("table.list.cards thead").is_hidden()
    label = card.locator("td[data-label='状态']").evaluate(
        "td => getComputedStyle(td, '::before').content")
    assert label == '"状态"'
    page.screenshot(path=str(shots / "phone-04-list.png"), full_page=True)
    manifest = page.request.get("/static/manifest.json").json()
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    sizes = {}
    for icon in manifest["icons"]:
        body = page.request.get(icon["src"]).body()
        if icon["type"] == "image/png":    # the PNG's own width and height, from its IHDR
            assert body[:8] == b"\x89PNG\r\n\x1a\n"
            sizes[icon["sizes"]] = f"{int.from_bytes(body[16:20], 'big')}x{int.from_bytes(body[20:24], 'big')}"
    assert sizes == {"192x192": "192x192", "512x512": "512x512"}
    apple = page.locator("link[rel=apple-touch-icon]").get_attribute("href")
    assert page.request.get(apple).body()[16:24] == (180).to_bytes(4, "big") * 2
    page.context.close()

    controller = on_phone(browser, base, "zhao")
    controller.goto("/register")
    fits_a_phone(controller, "the register (文件发放回收记录表)")
    controller.screenshot(path=str(shots / "phone-06-register.png"), full_page=True)
    controller.context.close()


def test_managers_and_the_supervisor_work_on_a_phone(site, browser, shots, tmp_path):
    """The other workflows' step forms and the reports page, at 390 × 844."""
    eng, base = site
    today = eng.clock().date().isoformat()
    contract = _pending_contract(eng, "zhang", "冯磊")
    manager = on_phone(browser, base, "qian")
    manager.locator("section.panel", has_text="等待我审批").locator(
        f"a.button[href^='/cases/{contract}?do=approve']").click()
    expect(manager.locator("#form-approve")).to_have_attribute("open", "")
    fits_a_phone(manager, "a contract's approval form")
    manager.screenshot(path=str(shots / "phone-08-approve.png"), full_page=True)
    submit_action(manager, "approve")
    expect(manager.locator("h1 .state")).to_have_text("已审批")
    manager.goto("/reports")
    fits_a_phone(manager, "the reports page")
    manager.screenshot(path=str(shots / "phone-09-reports.png"), full_page=True)
    manager.context.close()

    eng.fire(contract, "issue", "zhang")
    eng.fire(contract, "sign", "zhang", {"signed_date": today})
    booking = {k: v for k, v in example("delivery", delivery_date=day(3), pdi_date=today).items()
               if k != "vin"}                      # the contract's car, carried over
    delivery = eng.create("delivery", booking, "zhang", source=contract).id
    consultant = on_phone(browser, base, "zhang")
    consultant.goto(f"/cases/{delivery}")
    consultant.locator("#form-confirm summary").first.click()
    fits_a_phone(consultant, "a delivery's booking form")
    consultant.screenshot(path=str(shots / "phone-10-delivery.png"), full_page=True)
    consultant.context.close()

    item = eng.create("rectification", example("rectification", inspection_date=today,
                                               deadline=day(20)), "sun").id
    ops = on_phone(browser, base, "chen")
    ops.goto(f"/cases/{item}")
    ops.locator("#form-submit_plan summary").first.click()
    ops.fill("#submit_plan-root_cause", "制度未落实")
    ops.fill("#submit_plan-corrective_action", "张贴试驾路线图")
    ops.fill("#submit_plan-verification_method", "现场照片")
    fits_a_phone(ops, "a rectification's plan form")
    ops.screenshot(path=str(shots / "phone-11-rectification.png"), full_page=True)
    submit_action(ops, "submit_plan")
    expect(ops.locator(".notice")).to_contain_text("已完成")
    assert eng.case(item, actor="chen")["data"]["root_cause"] == "制度未落实"
    ops.context.close()


def test_the_desktop_keeps_its_table_and_a_phone_gets_cards(site, browser):
    eng, base = site
    # a case of zhang's, whatever ran before (an empty list has no table)
    eng.create("quote", example("quote", valid_until=day(7), customer_mobile="13911110003"),
               "zhang")
    page = sign_in(browser, base, "zhang")
    page.goto("/cases")
    assert page.locator("table.list.cards thead").is_visible()
    page.context.close()


# --- the showroom on a phone (issue 15 with issue 22): the front desk registers a walk-in, the
# consultant follows the customer up from the start page in one tap and prints the card

def test_the_showroom_floor_on_a_phone(site, browser, shots):
    eng, base = site
    desk = on_phone(browser, base, "xu")
    desk.click("text=新建展厅来电/店登记")
    expect(desk.locator("h1")).to_have_text("新建展厅来电/店登记")
    assert desk.locator("#new-customer_mobile").get_attribute("type") == "tel"
    assert desk.locator("#new-arrived_at").get_attribute("type") == "datetime-local"
    desk.select_option("#new-kind", "来店")
    # the time of the visit is now unless the desk changes it
    expect(desk.locator("#new-arrived_at")).to_have_value(
        eng.clock().replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M"))
    desk.fill("#new-customer_name", "孟庆丰")
    desk.fill("#new-customer_mobile", "13566667777")
    desk.fill("#new-intended_model", "瑞虎9")      # the register's 拟购车型
    desk.select_option("#new-consultant", "zhang")
    fits_a_phone(desk, "the front desk's new visit")
    desk.screenshot(path=str(shots / "phone-12-walk-in.png"), full_page=True)
    desk.locator("form.case-form button[type=submit]").click()
    expect(desk.locator(".notice")).to_have_text("已新建。")
    visit = re.search(r"/cases/(V-\d+)", desk.url).group(1)
    [customer] = eng.case(visit, actor="wang")["links"]["customer"]
    desk.goto(f"/cases/{customer}")                       # the desk keeps no customer's file
    expect(desk.locator("h1")).to_have_text("页面不存在")
    desk.context.close()

    eng.fire(customer, "follow_up", "zhang", {
        "fu_date": eng.clock().date().isoformat(), "fu_method": "电话", "fu_content": "初次回访",
        "new_level": "B", "next_follow_up": day(1)})
    page = on_phone(browser, base, "zhang")
    panel = page.locator("section.panel.due", has_text="客户档案")
    expect(panel).to_contain_text("下次跟进日期")
    panel.locator(f"a.button[href^='/cases/{customer}?do=follow_up']").click()
    expect(page.locator("#form-follow_up")).to_have_attribute("open", "")
    page.fill("#follow_up-fu_date", eng.clock().date().isoformat())
    page.select_option("#follow_up-fu_method", "到店")
    page.fill("#follow_up-fu_content", "到店试驾瑞虎9，谈金融方案")
    page.select_option("#follow_up-new_level", "H")
    page.fill("#follow_up-next_follow_up", day(2))
    fits_a_phone(page, "the customer's follow-up form")
    page.screenshot(path=str(shots / "phone-13-follow-up.png"), full_page=True)
    submit_action(page, "follow_up")
    expect(page.locator("h1 .state")).to_have_text("H 级")
    rows = eng.case(customer, actor="zhang")["data"]["follow_ups"]
    assert [(r["method"], r["level_after"]) for r in rows] == [("电话", "B 级"), ("到店", "H 级")]
    submit_action(page, "print_card")
    [doc] = eng.case(customer, actor="zhang")["documents"]
    assert "到店试驾瑞虎9" in pdf_text(Path(doc["pdf"])).replace(" ", "")
    fits_a_phone(page, "the customer's file")
    page.screenshot(path=str(shots / "phone-14-customer.png"), full_page=True)
    # a quote for this customer: the file fills the name (and, saving, the full mobile)
    page.click("text=为该客户新建商谈报价单")
    expect(page.locator(".notice")).to_contain_text(customer)
    expect(page.locator("#new-customer_name")).to_have_value("孟庆丰")
    expect(page.locator("#new-customer_mobile")).to_have_value("")
    q = example("quote")
    for name in ("brand", "series", "model", "colour", "list_price", "discount",
                 "registration_fee", "deposit"):
        page.fill(f"#new-{name}", q[name])
    page.select_option("#new-payment_method", "全款")
    page.fill("#new-valid_until", day(7))
    page.click("text=保存为草稿")
    expect(page.locator(".notice")).to_have_text("已新建。")
    quote = re.search(r"/cases/(Q-\d+)", page.url).group(1)
    made = eng.case(quote, actor="wang", reveal=True)
    assert made["links"]["customer"] == [customer]
    assert made["data"]["customer_mobile"] == "13566667777"
    page.context.close()

    # li registers the same mobile at the desk's form: refused on the form, with the owner
    other = on_phone(browser, base, "li")
    other.goto("/cases/new/reception")
    other.select_option("#new-kind", "来电")
    other.fill("#new-arrived_at", eng.clock().replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M"))
    other.fill("#new-customer_name", "孟庆丰")
    other.fill("#new-customer_mobile", "13566667777")
    other.locator("form.case-form button[type=submit]").click()
    expect(other.locator(".alert")).to_contain_text("已由 张伟（zhang） 接待")
    expect(other.locator("#new-customer_name")).to_have_value("孟庆丰")   # nothing lost
    other.context.close()


# --- finding a customer and reading their timeline (issue 15), on a desktop and a phone --------

def test_a_customer_is_found_by_mobile_and_their_timeline_reads_on_a_phone(site, browser, shots):
    eng, base = site
    today = eng.clock().date()
    made = eng.create("reception", {"kind": "来店", "arrived_at": f"{today}T09:10",
                                    "customer_name": "郑雨桐", "customer_mobile": "13588889999",
                                    "intended_model": "瑞虎8 PRO", "consultant": "zhang"}, "xu")
    customer = made.party
    eng.fire(customer, "follow_up", "zhang", {
        "fu_date": today.isoformat(), "fu_method": "电话", "fu_content": "介绍瑞虎8 PRO 的配置和金融方案",
        "fu_feedback": "关心油耗和保养费用", "fu_response": "约周六到店试驾", "new_level": "A",
        "next_follow_up": day(3)})
    q = eng.create("quote", {k: v for k, v in example("quote", valid_until=day(7)).items()
                             if k not in ("customer_name", "customer_mobile")}, "zhang",
                   customer=customer).id
    eng.fire(q, "issue", "zhang")

    for device, name in ((DESKTOP, "customer-search"), (PHONE, "phone-15-customer-search")):
        page = sign_in(browser, base, "zhang", device)
        page.goto("/cases")
        page.fill("input[name=customer]", "135 8888 9999")
        page.locator("form.filters button[type=submit]").click()
        found = page.locator("#found")
        expect(found).to_contain_text("郑雨桐")
        expect(found).to_contain_text("135****9999")
        assert "13588889999" not in page.content()
        if device is PHONE:
            fits_a_phone(page, "the search's results")
            found.screenshot(path=str(shots / "phone-15-found.png"))
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        found.locator(f"a[href='/cases/{customer}']").first.click()
        timeline = page.locator("#timeline li")
        expect(timeline.first).to_contain_text("出具报价单")
        expect(page.locator("#timeline")).to_contain_text("电话跟进：介绍瑞虎8 PRO 的配置和金融方案")
        expect(page.locator(f"#timeline a[href='/cases/{q}']").first).to_be_visible()
        if device is PHONE:
            fits_a_phone(page, "the customer's timeline")
            page.locator("#timeline").screenshot(path=str(shots / "phone-16-timeline.png"))
        page.screenshot(path=str(shots / f"{name}-file.png"), full_page=True)
        page.context.close()

    # a colleague's search finds nothing of zhang's customer
    other = sign_in(browser, base, "li")
    other.goto("/cases?customer=13588889999")
    expect(other.locator("main")).to_contain_text("没有找到客户档案")
    assert f"/cases/{customer}" not in other.content()
    other.context.close()


# --- the model catalogue (issue 19): a quote picks its model as the consultant types -------------

def _catalogue(eng) -> dict[str, str]:
    """Two models in the catalogue, once per module (the manager keeps it)."""
    found = {c["summary"]: c["id"] for c in eng.cases("vehicle_model", actor="wang")}
    for series, model, price, energy, nev in (
            ("风云A8", "2026款 PHEV 125km 领航版", "119900", "插电混动", True),
            ("瑞虎9", "2026款 1.6TGDI DCT 卓越版", "159900", "燃油", False)):
        summary = f"奇瑞 {series} {model}"
        if summary not in found:
            found[summary] = eng.create("vehicle_model", {
                "brand": "奇瑞", "series": series, "model": model, "list_price": price,
                "energy_type": energy, "nev_listed": nev, "valid_from": day(0)}, "wang").id
    return found


def _pick_model(page: Page, prefix: str, typed: str, summary: str) -> None:
    """Type part of a model's name, see the catalogue's match offered, pick it."""
    page.locator(f"#{prefix}-model").press_sequentially(typed, delay=30)
    option = page.locator(f"#{prefix}-model-list option[value='{summary}']")
    expect(option).to_have_count(1)
    page.locator(f"#{prefix}-model").fill(summary)   # what choosing the suggestion does


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_typing_part_of_a_model_name_fills_the_quote_from_the_catalogue(site, browser, shots,
                                                                       device):
    eng, base = site
    ids = _catalogue(eng)
    summary = "奇瑞 风云A8 2026款 PHEV 125km 领航版"
    page = sign_in(browser, base, "zhang", DESKTOP if device == "desktop" else PHONE)
    page.goto("/cases/new/quote")
    _pick_model(page, "new", "领航", summary)
    expect(page.locator("#new-model")).to_have_value("2026款 PHEV 125km 领航版")
    expect(page.locator("#new-brand")).to_have_value("奇瑞")
    expect(page.locator("#new-series")).to_have_value("风云A8")
    expect(page.locator("#new-list_price")).to_have_value("119900.00")
    expect(page.locator("#new-nev_listed")).to_have_value("是")
    expect(page.locator("#new-model-picked")).to_contain_text(ids[summary])
    page.locator("#new-model").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"40-quote-model-from-catalogue-{device}.png"))
    page.fill("#new-customer_name", "刘晓明")
    page.fill("#new-customer_mobile", "13800138000" if device == "desktop" else "13900139000")
    page.click("text=保存为草稿")
    expect(page.locator(".notice")).to_have_text("已新建。")
    case_id = re.search(r"/cases/(Q-\d+)", page.url).group(1)
    case = eng.case(case_id, actor="wang")
    assert case["data"]["list_price"] == "119900.00" and case["data"]["nev_listed"] is True
    assert case["refs"] == {"vehicle_model": [ids[summary]]}
    expect(page.locator("body")).to_contain_text(ids[summary])    # the case page names it
    page.context.close()
