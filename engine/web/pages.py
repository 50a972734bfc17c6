"""The staff's pages: sign-in, start page, case lists, case pages with their transition forms,
new-case forms, documents with dispatch and recall, the register, the due list and reports.

Every route finds the signed-in user from the session cookie (a session in the store), checks
the CSRF token of every form, and asks the engine to do the work as that user; what the engine
refuses is shown as a page in Chinese with the right status code, or next to the field it names.

A form is read only after the session and its CSRF token are checked: a multipart form (the
ones that may carry files) brings its token in the action URL (``?_csrf=…``), so a forged one
is refused before a byte of its parts is parsed; forms that take no files accept none.
"""
from __future__ import annotations

import asyncio
import re
import secrets
import tempfile
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import access, privacy
from ..config import User
from ..services.control import RECALL_REASONS, CHANNELS, REGISTER_COLUMNS
from ..services.lookups import split_choices
from ..dates import parse_date
from ..fields import is_empty
from ..errors import InputError, NotFoundError, PermissionDenied, StateError
from ..workflow import Workflow
from . import auth, forms
from .site import (MEDIA, STORE_COOKIE, CsrfRefused, SignInRequired, Web, client_address, jsonable,
                   load_case, load_document, remove_tree, report_response, status_of, viewable,
                   web)

router = APIRouter(include_in_schema=False)
FORM_MAX_FILES = forms.UPLOAD_MAX_FILES * 4   # all attachment fields of one form together
FORM_MAX_FIELDS = 2000


# --- the signed-in user, CSRF and rendering ----------------------------------------------------

async def signed_in(request: Request) -> tuple[Web, User, str]:
    w = web(request)
    found = await w.current(request)
    if found is None:
        raise SignInRequired()
    return w, found[0], found[1]


def _multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/")


def refuse_without_token(request: Request, csrf: str) -> None:
    """A multipart form must name its CSRF token in the URL: checked before the body is read."""
    if _multipart(request) and not auth.csrf_ok(csrf, request.query_params.get("_csrf")):
        raise CsrfRefused()


async def read_form(request: Request, csrf: str, *, max_files: int) -> Any:
    """The submitted form, if its CSRF token is ``csrf``: for a multipart form the token in
    the URL is checked before any part is parsed; a url-encoded form (small, no files) may
    carry it as a field. ``max_files`` = 0 where no upload is expected."""
    refuse_without_token(request, csrf)
    try:
        form = await request.form(max_files=max_files, max_fields=FORM_MAX_FIELDS)
    except StarletteHTTPException as err:
        if err.status_code != 400:
            raise
        raise HTTPException(400, _form_problem(str(err.detail), max_files)) from err
    if not _multipart(request):
        sent = request.query_params.get("_csrf") or form.get("_csrf")
        if not auth.csrf_ok(csrf, sent if isinstance(sent, str) else None):
            raise CsrfRefused()
    return form


def _form_problem(detail: str, max_files: int) -> str:
    """starlette's English reasons for refusing a form, said in Chinese."""
    if detail.startswith("Too many files"):
        return ("此表单不接受上传文件" if max_files == 0
                else f"上传的文件过多（一次最多 {max_files} 个）")
    if detail.startswith("Too many fields"):
        return f"表单的字段过多（最多 {FORM_MAX_FIELDS} 个）"
    if "maximum size" in detail:
        return "表单中某一项文字过长（每项最多 1 MB）"
    return "表单的格式不对，无法读取；请刷新页面后重新提交"


async def checked_form(request: Request, *, max_files: int = 0) -> tuple[Web, User, Any]:
    """The submitted form of a signed-in user whose CSRF token matches the session's."""
    w, user, csrf = await signed_in(request)
    form = await read_form(request, csrf, max_files=max_files)
    return w, user, form


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    w = web(request)
    found = w.known(request)
    user = found[0] if found else None
    nav = []
    if user is not None:
        reach = w.engine.reach(user.login)
        nav = [("/", "我的工作台")]
        if reach.scope:
            nav.append(("/cases", "案件"))
        if any(reach.sees_workflow(wf.key) for wf in w.engine.workflows.values()
               if wf.deadline_field):
            nav.append(("/due", "到期提醒"))
        nav.append(("/documents", "文件"))
        if reach.register:
            nav.append(("/register", "发放回收记录"))
        if any((wf.reports or wf.tallies) and reach.sees_workflow(wf.key)
               for wf in w.engine.workflows.values()):
            nav.append(("/reports", "报表"))
    config = w.engine.config
    stores = [(code, config.store_label(code)) for code in w.stores_of(user.login)] if user else []
    base = {"user": user, "csrf": found[1] if found else "", "nav": nav,
            "path": request.url.path, "dealer": config.dealer,
            "stores": stores if len(stores) > 1 else [], "store": w.store,
            "store_label": config.store_label(w.store) if w.store else "",
            "store_name": lambda code: config.store_label(code or config.default_store),
            "roles": "、".join(config.role_label(r) for r in user.roles) if user else ""}
    return w.templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


@router.post("/store")
async def switch_store(request: Request) -> Response:
    """The store switcher: later pages work in the chosen store of the group (one the user
    has a role in; the group manager's "all stores" is read-only)."""
    w, user, form = await checked_form(request)
    code = form.get("store")
    if not isinstance(code, str) or code not in w.stores_of(user.login):
        raise PermissionDenied(f"您在门店“{code}”没有角色，不能切换到该门店", user=user.login)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(STORE_COOKIE, code, max_age=auth.SESSION_MAX_AGE, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


def _local_path(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host) is followed after signing in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


# --- sign-in -----------------------------------------------------------------------------------

LOGIN_CSRF_COOKIE = "dealerdocs_login"


def _login_page(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    """The sign-in form carries a token that must match a cookie set with it (double submit),
    so another site cannot sign a browser in under someone else's account."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", {"login_csrf": token, "error": None, "login": "",
                                              **context}, status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/login")
    return response


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    await web(request).current(request)
    return _login_page(request, {"next": _local_path(next)})


@router.post("/login")
async def login(request: Request) -> Response:
    w = web(request)
    form = await read_form(request, request.cookies.get(LOGIN_CSRF_COOKIE, ""), max_files=0)
    login_name = str(form.get("login") or "").strip()[:64]
    password = str(form.get("password") or "")[:256]
    target = _local_path(str(form.get("next") or "/"))
    address = client_address(request)
    verdict = await run_in_threadpool(w.throttle.attempt, address, login_name)
    if verdict.wait:
        response = _login_page(request, {
            "next": target, "login": login_name,
            "error": f"登录失败次数过多，请 {verdict.wait} 秒后再试。"}, status=429)
        response.headers["Retry-After"] = str(verdict.wait)
        return response
    if verdict.delay:
        await asyncio.sleep(verdict.delay)
    user = await w.read(w.accounts.authenticate, login_name, password)
    if user is None:
        return _login_page(request, {"next": target, "login": login_name,
                                     "error": "用户名或密码不正确。"}, status=401)
    await run_in_threadpool(w.throttle.succeeded, address, login_name)
    opened = await run_in_threadpool(w.engine.sessions.open, user.login, "web",
                                     label=request.headers.get("user-agent", "浏览器"),
                                     fingerprint=auth.binding(user, w.secret))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, opened.token, max_age=auth.SESSION_MAX_AGE,
                        httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session in the store: the cookie is worthless from now on, wherever it is."""
    w, _, _ = await checked_form(request)
    await run_in_threadpool(w.engine.sessions.end, request.cookies.get(auth.SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


# --- start page and lists ----------------------------------------------------------------------

@router.get("/")
async def home(request: Request) -> Response:
    w, user, _ = await signed_in(request)
    lists = await w.read(access.overview, w.engine, user)
    reach = w.engine.reach(user.login)
    due = []
    if any(wf.deadline_field and reach.sees_workflow(wf.key) for wf in w.engine.workflows.values()):
        due = await w.read(w.engine.due, 7, actor=user.login)
    creatable = [wf for wf in w.engine.workflows.values() if access.may_create(user, wf)]
    return render(request, "home.html", {**lists, "due": due, "creatable": creatable,
                                         "workflows": w.engine.workflows})


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return parse_date(value)
    except ValueError as err:
        raise InputError(f"{name} {err}", field=name) from None


def _customer_text(wf: Workflow, fields: dict[str, Any]) -> str:
    """The customer's names in a listing's fields (customer_name, buyer_…, company_name)."""
    return " ".join(str(fields.get(n) or "") for n, s in wf.fields.items()
                    if s.type == "string" and ("customer" in n or "buyer" in n or "name" in n))


@router.get("/cases")
async def case_list(request: Request, workflow: str = "", state: str = "", date_from: str = "",
                    date_to: str = "", customer: str = "", consultant: str = "") -> Response:
    w, user, _ = await signed_in(request)
    reach = w.engine.reach(user.login)
    visible = {k: wf for k, wf in w.engine.workflows.items() if reach.sees_workflow(k)}
    if workflow and workflow not in visible:
        viewable(w, user, workflow)  # names the problem: unknown workflow or not allowed
    start, end = _day(date_from, "date_from"), _day(date_to, "date_to")
    # listings straight from the store's day indexes: no case file is opened for a list
    rows = await w.read(w.engine.cases, workflow or None, state or None, start, end,
                        actor=user.login)
    customer, consultant = customer.strip(), consultant.strip()
    people: list[dict[str, Any]] = []
    if customer:
        # the customers' files a name, a full mobile or ID number or a plate finds (masked),
        # and the cases that matched, beside the cases whose names hold the words
        people = await w.read(w.engine.find, customer, actor=user.login)
        hits = {r["id"] for r in people} | {m["case"] for r in people for m in r["matches"]}
        rows = [r for r in rows if r["id"] in hits or customer in r["summary"]
                or customer in _customer_text(visible[r["workflow"]], r["fields"])]
        if workflow:
            people = [r for r in people if r["workflow"] == workflow]
    if consultant:
        rows = [r for r in rows if consultant == r["created_by"] or consultant in
                (r["fields"].get(n) for n in access.user_fields(visible[r["workflow"]]))]
    states = sorted({(s.name, s.label) for k, wf in visible.items() if not workflow or k == workflow
                     for s in wf.states.values()}, key=lambda s: s[1])
    staff = [u for u in w.engine.config.users.values()]
    return render(request, "cases.html", {
        "rows": rows, "people": people, "workflows": visible, "states": states, "staff": staff,
        "filters": {"workflow": workflow, "state": state, "date_from": date_from,
                    "date_to": date_to, "customer": customer, "consultant": consultant},
        "creatable": [wf for wf in visible.values() if access.may_create(user, wf)]})


# --- new case ----------------------------------------------------------------------------------

async def _sources(w: Web, user: User, wf: Workflow) -> list[dict[str, Any]]:
    out = []
    for key, cf in wf.create_from.items():
        for state in cf.states:
            for r in await w.read(w.engine.cases, key, state, actor=user.login):
                out.append({**r, "title": w.engine.workflows[key].title})
    return out


def _new_page(request: Request, w: Web, user: User, wf: Workflow, values: dict[str, Any],
              source: str, sources: list[dict[str, Any]], err: InputError | None = None,
              message: str | None = None, status: int = 200, customer: str = "") -> Response:
    names = forms.general_fields(wf)
    by_field, by_row, general = (forms.error_map(err, shown=[*names, "source"]) if err
                                 else ({}, {}, []))
    if message:
        general.append(message)
    fields = forms.widgets(wf, names, values, w.engine.config, errors=by_field,
                           row_errors=by_row, actor=user.login,
                           now=w.engine.clock().replace(tzinfo=None))
    return render(request, "new_case.html", {
        "wf": wf, "fields": fields, "errors": general, "source": source, "sources": sources,
        "customer": customer,
        "source_error": "；".join(by_field.get("source", [])),
        "source_required": any(cf.required for cf in wf.create_from.values())}, status=status)


@router.get("/lookup/{workflow}")
async def lookup(request: Request, workflow: str, q: str = "") -> Response:
    """A lookup field's search-as-you-type (app.js), as the signed-in user sees the cases."""
    w, user, _ = await signed_in(request)
    found = await w.read(w.engine.lookup, workflow, q, actor=user.login)
    return JSONResponse(jsonable(found), headers={"Cache-Control": "no-store"})


@router.get("/cases/new/{key}")
async def new_case_page(request: Request, key: str, source: str = "", customer: str = ""
                        ) -> Response:
    w, user, _ = await signed_in(request)
    wf = w.engine.workflow(key)
    if not access.may_create(user, wf):
        need = "、".join(w.engine.config.role_label(r) for r in wf.create_roles)
        raise PermissionDenied(f"{user.name}（{user.login}）无权新建{wf.title}；需要角色：{need}")
    values: dict[str, Any] = {}
    if source:
        origin_wf, origin = await load_case(w, user, source)
        cf = wf.create_from.get(origin_wf.key)
        if cf is not None:
            values = {target: origin["data"].get(src) for target, src in cf.fields.items()}
    if customer and wf.party is not None:
        # the customer's file fills what is left empty when saving; the form shows its
        # name and such, never a masked number (the engine takes the full one from the file)
        _, file = await load_case(w, user, customer)
        values = {**values, **{target: file["data"].get(src)
                               for target, src in wf.party.fill.items()
                               if wf.fields[target].personal not in privacy.MASKED_KINDS}}
    return _new_page(request, w, user, wf, values, source, await _sources(w, user, wf),
                     customer=customer if wf.party is not None else "")


@router.post("/cases/new/{key}")
async def new_case(request: Request, key: str) -> Response:
    w, user, csrf = await signed_in(request)
    refuse_without_token(request, csrf)
    wf = w.engine.workflow(key)
    form = await read_form(request, csrf,
                           max_files=FORM_MAX_FILES if forms.uploads_on_create(wf) else 0)
    data = forms.read_form(wf, form, drop_empty=True)
    source = str(form.get("_source") or "").strip() or None
    customer = str(form.get("_customer") or "").strip() or None
    with forms.upload_folder() as folder:
        try:
            data.update(forms.read_uploads(wf, form, {}, Path(folder)))
            result = await w.write(w.engine.create, key, data, user.login, source=source,
                                   files_from=Path(folder), customer=customer)
        except (InputError, StateError, PermissionDenied) as err:
            if isinstance(err, PermissionDenied) and err.details.get("rule") != "party_owner":
                raise
            return _new_page(request, w, user, wf, {**data}, source or "", await _sources(w, user, wf),
                             err if isinstance(err, InputError) else None,
                             None if isinstance(err, InputError) else err.message,
                             status=status_of(err), customer=customer or "")
    return RedirectResponse(f"/cases/{result.id}?done=create", status_code=303)


# --- the case page and its transitions ---------------------------------------------------------

async def _picked_choices(w: Web, user: User, wf: Workflow, case: dict[str, Any]
                          ) -> dict[str, list[str]]:
    """The values each ``choices_from`` field may take, as the case's pick lists them (the
    colours of the quote's catalogue model); none for a case without a pick. Each picked case
    is read once (a contract's colour and interior colour share the model)."""
    out = {}
    cases: dict[str, dict[str, Any] | None] = {}
    for name, spec in wf.fields.items():
        if spec.choices_from is None:
            continue
        picker, origin = spec.choices_from
        lookup = wf.fields[picker].lookup
        ids = case.get("refs", {}).get(lookup.workflow) if lookup is not None else None
        if not ids:
            continue
        if ids[-1] not in cases:
            try:
                cases[ids[-1]] = await w.read(w.engine.case, ids[-1], actor=user.login)
            except (NotFoundError, PermissionDenied):
                # a pick the user may not see offers nothing; the server still checks
                cases[ids[-1]] = None
        picked = cases[ids[-1]]
        if picked is not None:
            out[name] = split_choices(picked["data"].get(origin))
    return out


async def _case_page(request: Request, w: Web, user: User, wf: Workflow, case: dict[str, Any],
                     *, open_trigger: str | None = None, posted: dict[str, Any] | None = None,
                     err: Exception | None = None, status: int = 200,
                     notice: str | None = None) -> Response:
    steps = await w.read(w.engine.actions, case["id"], user.login)
    acts = [a for a in steps if a.refused is None]   # a form each, or a disabled button
    forms_out = []
    options = await _picked_choices(w, user, wf, case) if acts else {}   # for the forms only
    for a in acts:
        mine = a.trigger == open_trigger
        if a.blocked:  # a disabled button and its reason, not a form the engine must refuse
            forms_out.append({"action": a, "open": mine, "errors": [], "fields": [], "more": [],
                              "documents": [], "danger": False})
            continue
        values = {**case["data"], **(posted or {})} if mine else case["data"]
        asked, more = forms.transition_fields(wf, a.first, case["data"])
        by_field, by_row, general = ({}, {}, [])
        if mine and isinstance(err, InputError):
            by_field, by_row, general = forms.error_map(err, shown=[*asked, *more])
        elif mine and err is not None:
            general = [getattr(err, "message", str(err))]
        # fields with an error are always shown, even if they were folded away
        unfolded = [n for n in more if n in by_field or n in by_row]
        asked = asked + unfolded
        more = [n for n in more if n not in unfolded]
        forms_out.append({
            "action": a, "open": mine, "errors": general,
            "fields": forms.widgets(wf, asked, values, w.engine.config, transition=a.first,
                                    errors=by_field, row_errors=by_row, actor=user.login,
                                    options=options),
            "more": forms.widgets(wf, more, values, w.engine.config, transition=a.first,
                                  errors=by_field, row_errors=by_row, actor=user.login,
                                  options=options),
            "documents": [wf.documents[k].title for t in a.transitions for k in t.documents],
            "danger": a.first.void_documents or a.trigger.startswith(("cancel", "reject")),
        })
    hidden = [{"label": a.transitions[-1].label, "why": a.refused} for a in steps if a.refused]
    followers = [(other, cf) for other in w.engine.workflows.values()
                 for key, cf in other.create_from.items()
                 if key == wf.key and case["state"] in cf.states and access.may_create(user, other)]
    # a customer's file: the cases made for this customer (a visit, a test drive, a quote)
    members = [other for other in w.engine.workflows.values()
               if other.party is not None and other.party.workflow == wf.key
               and not other.create_from and access.may_create(user, other)]
    linked = {w.engine.workflows[k].title if k in w.engine.workflows else k: ids
              for k, ids in {**case["links"], **case.get("refs", {})}.items()}
    shown = [n for n in wf.fields if not (case["data"].get(n) in (None, "", []))]
    may_reveal = (not case.get("revealed") and w.engine.reach(user.login).reveal
                  and any(kind in ("id", "mobile") and case["data"].get(name)
                          for name, kind in wf.personal_fields.items()))
    # a customer's file (other cases join it through [party]): one timeline of it and them
    timeline = None
    if any(other.party is not None and other.party.workflow == wf.key
           for other in w.engine.workflows.values()):
        timeline = await w.read(w.engine.timeline, case["id"], actor=user.login)
    return render(request, "case.html", {
        "wf": wf, "case": case, "forms": forms_out, "hidden": hidden, "followers": followers,
        "members": members, "timeline": timeline,
        "linked": linked, "shown": shown, "notice": notice, "may_reveal": may_reveal},
        status=status)


@router.get("/cases/{case_id}")
async def case_page(request: Request, case_id: str, do: str = "", done: str = "") -> Response:
    w, user, _ = await signed_in(request)
    wf, case = await load_case(w, user, case_id)
    notice = None
    if done:
        notice = "已新建。" if done == "create" else f"已完成「{_label(wf, done)}」。"
    return await _case_page(request, w, user, wf, case, open_trigger=do or None, notice=notice)


@router.post("/cases/{case_id}/reveal")
async def reveal(request: Request, case_id: str) -> Response:
    """The case page once more with full ID and mobile numbers (the engine checks the role
    and writes the reveal into the audit trail); never cached, never a link to share."""
    w, user, _ = await checked_form(request)
    wf, case = await load_case(w, user, case_id, reveal=True)
    return await _case_page(request, w, user, wf, case)


def _label(wf: Workflow, trigger: str) -> str:
    return next((t.label for t in wf.transitions if t.trigger == trigger), trigger)


@router.post("/cases/{case_id}/fire/{trigger}")
async def fire(request: Request, case_id: str, trigger: str) -> Response:
    w, user, csrf = await signed_in(request)
    refuse_without_token(request, csrf)
    wf, case = await load_case(w, user, case_id)
    form = await read_form(request, csrf, max_files=FORM_MAX_FILES
                           if forms.uploads_on_step(wf, trigger) else 0)
    data = {k: v for k, v in forms.read_form(wf, form, drop_empty=False).items()
            if not (is_empty(v) and is_empty(case["data"].get(k)))}  # empty stays empty
    uploads: dict[str, Any] = {}
    with forms.upload_folder() as folder:
        try:
            uploads = forms.read_uploads(wf, form, case["data"], Path(folder))
            data.update(uploads)
            result = await w.write(w.engine.fire, case_id, trigger, user.login, data or None,
                                   files_from=Path(folder))
        except (InputError, StateError) as err:
            # files refused with the step are not kept: the form asks for them again
            shown = {k: v for k, v in data.items() if k not in uploads}
            return await _case_page(request, w, user, wf, case, open_trigger=trigger,
                                    posted=shown, err=err, status=status_of(err))
    target = f"/cases/{case_id}?done={trigger}"
    if result.documents:
        target += "#documents"
    return RedirectResponse(target, status_code=303)


@router.get("/cases/{case_id}/preview/{trigger}")
async def preview(request: Request, case_id: str, trigger: str) -> Response:
    """The documents ``trigger`` would issue, stamped 草稿 (nothing numbered or stored)."""
    w, user, _ = await signed_in(request)
    wf, case = await load_case(w, user, case_id)
    steps = await w.read(w.engine.actions, case_id, user.login)
    if not any(a.trigger == trigger and a.refused is None for a in steps):
        raise PermissionDenied(f"{user.name} 不能执行「{_label(wf, trigger)}」，因此也不能预览它的文档")
    folder = tempfile.mkdtemp(prefix="dealerdocs-preview-")
    result = await w.write(w.engine.preview, case_id, user.login, trigger=trigger,
                           out_dir=Path(folder))
    pdf = next(f for f in result["files"] if f.endswith(".pdf"))
    return FileResponse(pdf, media_type="application/pdf",
                        content_disposition_type="inline", filename=Path(pdf).name,
                        background=BackgroundTask(remove_tree, folder))


# --- documents ---------------------------------------------------------------------------------

@router.get("/documents")
async def document_list(request: Request, status: str = "", case: str = "") -> Response:
    w, user, _ = await signed_in(request)
    if status and status not in ("issued", "superseded", "void"):
        raise InputError(f"状态 \"{status}\" 无效（可选：issued、superseded、void）", field="status")
    rows = await w.read(w.engine.documents, case or None, status or None, actor=user.login)
    return render(request, "documents.html", {"rows": list(reversed(rows)),
                                              "filters": {"status": status, "case": case}})


def _document_page(request: Request, w: Web, user: User, life: dict[str, Any], *,
                   form: str | None = None, err: Exception | None = None,
                   posted: dict[str, Any] | None = None, notice: str | None = None,
                   status: int = 200) -> Response:
    by_field, _, general = forms.error_map(err) if isinstance(err, InputError) else ({}, {}, [])
    if err is not None and not isinstance(err, InputError):
        general = [getattr(err, "message", str(err))]
    wf = w.engine.workflows[life["workflow"]]
    reach = w.engine.reach(user.login)
    out = [c for c in life["copies"] if c["status"] == "out"]
    return render(request, "document.html", {
        "doc": life, "wf": wf, "may_dispatch": reach.dispatch and life["status"] == "issued",
        "may_recall": reach.recall and bool(out), "out_copies": out,
        "reasons": RECALL_REASONS, "channels": CHANNELS, "open_form": form,
        "errors": general, "field_errors": by_field, "posted": posted or {}, "notice": notice},
        status=status)


@router.get("/documents/{number}")
async def document_page(request: Request, number: str, done: str = "") -> Response:
    w, user, _ = await signed_in(request)
    life = await load_document(w, user, number)
    notice = {"dispatch": "已登记发放。", "recall": "已登记回收。"}.get(done)
    return _document_page(request, w, user, life, notice=notice)


async def _file(w: Web, user: User, life: dict[str, Any], which: str) -> Path:
    """A file of a document, by the path the register records (never one from the request)."""
    path = await w.read(w.engine.document_file, life["number"], which, actor=user.login) \
        if which in ("pdf", "docx", "stamped", "signed") else None
    if path is None:
        raise NotFoundError(f"文件 {life['number']} 没有这种副本")
    if not path.is_file():
        raise NotFoundError(f"文件 {life['number']} 的存档文件缺失（请文控运行 dealerdocs verify）")
    return path


@router.get("/documents/{number}/view")
async def document_viewer(request: Request, number: str) -> Response:
    """The PDF full-screen, page by page as pictures: phones and WeChat show no PDF inline."""
    w, user, _ = await signed_in(request)
    life = await load_document(w, user, number)
    pages = await w.read(w.engine.page_count, number, actor=user.login)
    return render(request, "viewer.html", {"doc": life, "pages": range(1, pages + 1)})


@router.get("/documents/{number}/file/{which}")
async def document_file(request: Request, number: str, which: str, download: int = 0
                        ) -> Response:
    w, user, _ = await signed_in(request)
    life = await load_document(w, user, number)
    picture = re.fullmatch(r"page([1-9][0-9]{0,3})", which)
    if picture:
        image = await w.read(w.engine.page_image, number, int(picture.group(1)), actor=user.login)
        return FileResponse(image, media_type="image/png")
    path = await _file(w, user, life, which)
    media = ("application/pdf" if path.suffix == ".pdf" else
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    inline = path.suffix == ".pdf" and not download
    mark = {"stamped": f"-{life.get('stamp', '')}", "signed": "-已签署"}.get(which, "")
    name = f"{number}{mark}{path.suffix}"
    return FileResponse(path, media_type=media, filename=name,
                        content_disposition_type="inline" if inline else "attachment")


@router.post("/documents/{number}/dispatch")
async def dispatch(request: Request, number: str) -> Response:
    w, user, form = await checked_form(request)
    life = await load_document(w, user, number)
    posted = {k: str(form.get(k) or "") for k in ("to", "dept", "copies", "channel")}
    try:
        copies = int(posted["copies"] or "1")
    except ValueError:
        copies = 0
    try:
        await w.write(w.engine.dispatch, number, to=posted["to"], dept=posted["dept"],
                      copies=copies, channel=posted["channel"] or "纸质", actor=user.login)
    except (InputError, StateError) as err:
        return _document_page(request, w, user, life, form="dispatch", err=err, posted=posted,
                              status=status_of(err))
    return RedirectResponse(f"/documents/{number}?done=dispatch#copies", status_code=303)


@router.post("/documents/{number}/recall")
async def recall(request: Request, number: str) -> Response:
    w, user, form = await checked_form(request)
    life = await load_document(w, user, number)
    posted = {k: str(form.get(k) or "") for k in ("reason", "copy", "from_", "keep")}
    copy = None
    if posted["copy"]:
        try:
            copy = int(posted["copy"])
        except ValueError:
            copy = -1
    try:
        await w.write(w.engine.recall, number, reason=posted["reason"], copy=copy,
                      from_=posted["from_"].strip() or None, keep=posted["keep"] == "1",
                      actor=user.login)
    except (InputError, StateError, NotFoundError) as err:
        return _document_page(request, w, user, life, form="recall", err=err, posted=posted,
                              status=status_of(err))
    return RedirectResponse(f"/documents/{number}?done=recall#copies", status_code=303)


# --- register, due list, reports ---------------------------------------------------------------

@router.get("/register")
async def register(request: Request, date_from: str = "", date_to: str = "") -> Response:
    w, user, _ = await signed_in(request)
    start, end = _day(date_from, "date_from"), _day(date_to, "date_to")
    rows = await w.read(w.engine.register_rows, start, end, actor=user.login)
    query = urlencode({k: v for k, v in (("date_from", date_from), ("date_to", date_to)) if v})
    return render(request, "register.html", {"columns": REGISTER_COLUMNS, "rows": rows,
                                             "filters": {"date_from": date_from, "date_to": date_to},
                                             "query": query})


@router.get("/register/export.{fmt}")
async def register_export(request: Request, fmt: str, date_from: str = "", date_to: str = ""
                          ) -> Response:
    w, user, _ = await signed_in(request)
    start, end = _day(date_from, "date_from"), _day(date_to, "date_to")
    folder = tempfile.mkdtemp(prefix="dealerdocs-export-")
    out = Path(folder) / f"文件发放回收记录表.{fmt}"
    try:
        await w.write(w.engine.register_export, fmt, out, start, end, actor=user.login)
    except Exception:
        remove_tree(folder)
        raise
    return FileResponse(out, media_type=MEDIA[fmt], filename=out.name,
                        background=BackgroundTask(remove_tree, folder))


@router.get("/due")
async def due(request: Request, within: int = 7) -> Response:
    w, user, _ = await signed_in(request)
    within = max(0, min(within, 3650))
    rows = await w.read(w.engine.due, within, actor=user.login)
    return render(request, "due.html", {"rows": rows, "within": within})


def _reports(w: Web, user: User) -> list[tuple[Workflow, Any]]:
    reach = w.engine.reach(user.login)
    return [(wf, spec) for wf in w.engine.workflows.values() for spec in wf.reports.values()
            if reach.sees_workflow(wf.key)]


def _tallies(w: Web, user: User) -> list[tuple[Workflow, Any]]:
    """The counting reports whose every workflow ``user`` sees (their own cases only)."""
    reach = w.engine.reach(user.login)
    return [(wf, t) for wf in w.engine.workflows.values() for t in wf.tallies.values()
            if all(reach.sees_workflow(k) for k in t.workflows)]


@router.get("/reports")
async def reports(request: Request) -> Response:
    w, user, _ = await signed_in(request)
    return render(request, "reports.html", {"reports": _reports(w, user),
                                            "tallies": _tallies(w, user)})


@router.get("/reports/{name}.{fmt}")
async def report_file(request: Request, name: str, fmt: str, date_from: str = "",
                      date_to: str = "") -> Response:
    w, user, _ = await signed_in(request)
    found = [(wf, spec) for wf, spec in [*_reports(w, user), *_tallies(w, user)]
             if spec.key == name]
    if not found:
        raise NotFoundError(f"没有名为 \"{name}\" 的报表，或无权查看")
    start, end = _day(date_from, "date_from"), _day(date_to, "date_to")
    if fmt not in MEDIA:
        raise InputError(f"不支持的格式 {fmt}（可用：xlsx、docx、pdf）", field="format")
    return await report_response(w, user, name, start, end, fmt)
