"""The JSON API under ``/api/`` for a DMS or a WeChat mini-program: the CLI's operations with
the same rules, as the user a bearer token names (``POST /api/token`` with login and password).

Errors are the engine's: ``{"error": "InputError", "message": "…", "field": …}`` with 422 for
bad data, 403 for a missing role or separation of duties, 404, 409 for a wrong state. A token is
a session of kind ``api`` in the store (:mod:`engine.sessions`): it can be revoked
(``DELETE /api/token``, ``dealerdocs user tokens LOGIN --revoke ID``) and a new password ends it.
No answer names a path on the server: files are fetched by document number.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import io
import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from .. import access
from ..config import User
from ..services.control import REGISTER_COLUMNS
from ..errors import InputError, NotFoundError
from . import auth, forms
from .site import (MEDIA, SignInRequired, Web, client_address, jsonable, load_case,
                   load_document, remove_tree, report_response, viewable, web)

router = APIRouter(prefix="/api", tags=["dealerdocs"])


async def bearer(request: Request) -> tuple[Web, User]:
    w = web(request)
    user = await w.bearer(request)
    if user is None:
        raise SignInRequired()
    return w, user


def _decimals(value: Any) -> Any:
    """JSON numbers with a fraction become Decimal (money), as the CLI reads data files."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


class _Upload:
    """An attachment sent inline as ``{"name": …, "content_base64": …}``."""

    def __init__(self, name: str, data: bytes) -> None:
        self.filename = name
        self.file = io.BytesIO(data)


def _attachments(wf, data: dict[str, Any] | None, folder: Path) -> dict[str, Any] | None:
    """Attachment fields take files sent in the request (base64), checked like the pages'
    uploads and saved in ``folder``; a path on the server is never read for an API caller."""
    if not data:
        return data
    out = dict(data)
    problems = []
    for name, spec in wf.fields.items():
        if spec.type != "attachments" or not isinstance(data.get(name), list):
            continue
        items = []
        for item in data[name]:
            if isinstance(item, dict) and {"name", "content_base64"} <= set(item):
                try:
                    payload = base64.b64decode(str(item["content_base64"]), validate=True)
                    items.append(forms.save_upload(_Upload(str(item["name"]), payload), folder,
                                                    len(items)))
                except (ValueError, binascii.Error):
                    problems.append(InputError(f"{spec.label}：{item['name']} 不是有效的 base64",
                                               field=name, label=spec.label))
                except InputError as err:
                    problems.append(InputError(f"{spec.label}：{err.message}", field=name,
                                               label=spec.label))
            elif isinstance(item, dict) and "sha256" in item:
                items.append(item)  # an attachment already on the case, kept
            else:
                problems.append(InputError(
                    f"{spec.label}（{name}）的每一项应为 {{\"name\": 文件名, \"content_base64\": 内容}}"
                    f"，或案件上已有附件的记录", field=name, label=spec.label))
        out[name] = items
    if problems:
        raise InputError.combine(problems)
    return out


def ok(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable(payload), status_code=status)


# --- request bodies ----------------------------------------------------------------------------

class TokenRequest(BaseModel):
    login: str = Field(max_length=64, examples=["zhang"])
    password: str = Field(max_length=256)
    name: str | None = Field(default=None, max_length=120, examples=["DMS 对接"],
                             description="令牌的名称（dealerdocs user tokens 列出时显示）")


class NewCase(BaseModel):
    workflow: str = Field(examples=["quote"])
    data: dict[str, Any] = Field(default_factory=dict,
                                 description="字段值，键为工作流定义中的字段名（与 dealerdocs new --data 相同）")
    source: str | None = Field(default=None, description="来源案件（如从已接受的报价 Q-1 创建合同）")
    customer: str | None = Field(default=None, description="客户档案（如 K-12）；不写则按手机号查找或新建")


class Fire(BaseModel):
    data: dict[str, Any] | None = Field(default=None, description="此操作可修改或需要的字段值")


class Dispatch(BaseModel):
    to: str = Field(description="领用人")
    dept: str = Field(description="领用部门")
    copies: int = 1
    channel: Literal["纸质", "电子"] = "纸质"


class Recall(BaseModel):
    reason: Literal["换版", "作废", "损坏", "丢失"]
    copy_no: int | None = Field(default=None, alias="copy", description="只回收这个发放号（数字）")
    from_: str | None = Field(default=None, alias="from", description="交回人（默认为领用人）")
    keep: bool = False


# --- routes ------------------------------------------------------------------------------------

@router.post("/token", summary="用登录名和密码换取令牌（30 天有效；可撤销；改密码后失效）")
async def token(request: Request, body: TokenRequest) -> JSONResponse:
    w = web(request)
    login = body.login.strip()
    address = client_address(request)
    verdict = await run_in_threadpool(w.throttle.attempt, address, login)
    if verdict.wait:
        return JSONResponse({"error": "TooManyAttempts",
                             "message": f"登录失败次数过多，请 {verdict.wait} 秒后再试"},
                            status_code=429, headers={"Retry-After": str(verdict.wait)})
    if verdict.delay:
        await asyncio.sleep(verdict.delay)
    user = await w.read(w.accounts.authenticate, login, body.password)
    if user is None:
        return JSONResponse({"error": "Unauthorized", "message": "用户名或密码不正确"},
                            status_code=401)
    await run_in_threadpool(w.throttle.succeeded, address, login)
    opened = await run_in_threadpool(w.engine.sessions.open, user.login, "api",
                                     label=body.name or "API 令牌",
                                     fingerprint=auth.binding(user, w.secret))
    session = opened.session
    lifetime = datetime.fromisoformat(session.expires_at) - datetime.fromisoformat(session.created_at)
    return ok({"token": opened.token, "token_type": "bearer", "id": session.id,
               "expires_at": session.expires_at, "expires_in": int(lifetime.total_seconds()),
               "login": user.login})


@router.delete("/token", summary="撤销当前使用的令牌（之后它不再有效）")
async def revoke_token(request: Request) -> JSONResponse:
    w, user = await bearer(request)
    _, _, token = request.headers.get("authorization", "").partition(" ")
    await run_in_threadpool(w.engine.sessions.end, token.strip())
    return ok({"revoked": True, "login": user.login})


@router.get("/me", summary="令牌代表的用户")
async def me(request: Request) -> JSONResponse:
    w, user = await bearer(request)
    return ok({"login": user.login, "name": user.name, "roles": user.roles,
               "role_labels": [w.engine.config.role_label(r) for r in user.roles],
               **({"store": w.store, "stores": w.stores_of(user.login)} if w.store else {})})


@router.get("/workflows", summary="工作流：字段、状态、操作（与 dealerdocs workflows 相同）")
async def workflows(request: Request) -> JSONResponse:
    w, user = await bearer(request)
    out = []
    reach = w.engine.reach(user.login)
    for wf in w.engine.workflows.values():
        if not reach.sees_workflow(wf.key):
            continue
        out.append({
            "key": wf.key, "title": wf.title, "initial": wf.initial,
            "may_create": access.may_create(user, wf),
            "states": {s.name: {"label": s.label, "final": s.final} for s in wf.states.values()},
            "fields": {n: {"type": s.type, "label": s.label, "required": s.required,
                           "choices": list(s.choices),
                           "columns": {c: {"type": cs.type, "label": cs.label,
                                           "required": cs.required}
                                       for c, cs in s.columns.items()}}
                       for n, s in wf.fields.items()},
            "transitions": [{"trigger": t.trigger, "label": t.label, "source": list(t.sources),
                             "dest": t.dest, "roles": list(t.roles), "requires": list(t.requires),
                             "edits": list(t.edits), "documents": list(t.documents)}
                            for t in wf.transitions]})
    return ok(out)


@router.get("/cases", summary="案件列表（dealerdocs list）")
async def cases(request: Request, workflow: str | None = None, state: str | None = None
                ) -> JSONResponse:
    w, user = await bearer(request)
    if workflow:
        viewable(w, user, workflow)
    return ok(await w.read(w.engine.cases, workflow, state, actor=user.login))


@router.get("/find", summary="查找客户档案（dealerdocs find）：姓名（部分即可）、完整手机号、证件号或"
                             "车牌号；只在自己能查看的案件中查找，结果中的号码部分隐藏")
async def find(request: Request, q: str = "") -> JSONResponse:
    w, user = await bearer(request)
    return ok(await w.read(w.engine.find, q, actor=user.login))


@router.get("/lookup/{workflow}", summary="表单选取（如车型库）：编号或名称含 q 中每个词的在用案件，"
                                         "最多 20 个，只在自己能查看的案件中查找")
async def lookup(request: Request, workflow: str, q: str = "") -> JSONResponse:
    w, user = await bearer(request)
    return ok(await w.read(w.engine.lookup, workflow, q, actor=user.login))


@router.post("/cases", status_code=201, summary="新建案件（dealerdocs new）")
async def create(request: Request, body: NewCase) -> JSONResponse:
    w, user = await bearer(request)
    folder = tempfile.mkdtemp(prefix="dealerdocs-api-")  # no file paths from the caller
    try:
        data = _attachments(w.engine.workflow(body.workflow), _decimals(body.data), Path(folder))
        result = await w.write(w.engine.create, body.workflow, data, user.login,
                               source=body.source, files_from=Path(folder),
                               customer=body.customer)
    finally:
        remove_tree(folder)
    return ok(result.to_dict(), 201)


@router.get("/cases/{case_id}", summary="案件：数据、合计、文档、历史（dealerdocs show；reveal=true "
                                       "显示完整身份证号、手机号，需有权限并记入审计记录）")
async def show(request: Request, case_id: str, reveal: bool = False) -> JSONResponse:
    w, user = await bearer(request)
    _, case = await load_case(w, user, case_id, reveal)
    acts = await w.read(w.engine.actions, case_id, user.login)
    # blocked: why the step's conditions cannot hold now (firing it would be refused, 409)
    case["may_fire"] = [{"trigger": a.trigger, "label": a.label, "blocked": a.blocked}
                        for a in acts if a.refused is None]
    case["documents"] = [_public(d) for d in case["documents"]]  # URLs, not server paths
    return ok(case)


@router.get("/cases/{case_id}/timeline", summary="案件及其关联案件的经过，最新的在前（dealerdocs "
                                                "timeline；客户档案：来访、跟进、试驾、报价、合同、交车）")
async def timeline(request: Request, case_id: str) -> JSONResponse:
    w, user = await bearer(request)
    return ok(await w.read(w.engine.timeline, case_id, actor=user.login))


@router.post("/cases/{case_id}/fire/{trigger}", summary="执行操作（dealerdocs fire）")
async def fire(request: Request, case_id: str, trigger: str, body: Fire | None = None
               ) -> JSONResponse:
    w, user = await bearer(request)
    _, case = await load_case(w, user, case_id)
    data = _decimals(body.data) if body and body.data else None
    folder = tempfile.mkdtemp(prefix="dealerdocs-api-")
    try:
        data = _attachments(w.engine.workflows[case["workflow"]], data, Path(folder))
        result = await w.write(w.engine.fire, case_id, trigger, user.login, data,
                               files_from=Path(folder))
    finally:
        remove_tree(folder)
    payload = result.to_dict()
    for d in payload["documents"]:  # where to fetch them, not where they lie on the server
        d.pop("docx"), d.pop("pdf")
        d["pdf_url"] = f"/api/documents/{d['number']}/pdf"
        d["docx_url"] = f"/api/documents/{d['number']}/docx"
    return ok(payload)


@router.get("/documents", summary="已出具的文件（dealerdocs docs）")
async def documents(request: Request, case: str | None = None,
                    status: Literal["issued", "superseded", "void"] | None = None
                    ) -> JSONResponse:
    w, user = await bearer(request)
    rows = await w.read(w.engine.documents, case, status, actor=user.login)
    return ok([_public(d) for d in rows])


def _public(d: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in d.items() if k not in ("docx", "pdf", "stamped_pdf", "signed_pdf")}
    out["pdf_url"] = f"/api/documents/{d['number']}/pdf"
    out["docx_url"] = f"/api/documents/{d['number']}/docx"
    return out


@router.get("/documents/{number}", summary="文件的全过程：副本、回收、换版（dealerdocs docs NUMBER）")
async def document(request: Request, number: str) -> JSONResponse:
    w, user = await bearer(request)
    return ok(_public(await load_document(w, user, number)))


@router.get("/documents/{number}/{kind}", summary="下载文件（pdf 或 docx）")
async def document_file(request: Request, number: str, kind: Literal["pdf", "docx"]):
    w, user = await bearer(request)
    path = await w.read(w.engine.document_file, number, kind, actor=user.login)
    if path is None or not path.is_file():
        raise NotFoundError(f"文件 {number} 的存档文件缺失", number=number)
    return FileResponse(path, media_type=MEDIA[kind], filename=f"{number}.{kind}")


@router.post("/documents/{number}/dispatch", summary="发放副本（dealerdocs dispatch）")
async def dispatch(request: Request, number: str, body: Dispatch) -> JSONResponse:
    w, user = await bearer(request)
    await load_document(w, user, number)
    result = await w.write(w.engine.dispatch, number, to=body.to, dept=body.dept,
                           copies=body.copies, channel=body.channel, actor=user.login)
    return ok(result)


@router.post("/documents/{number}/recall", summary="回收副本（dealerdocs recall）")
async def recall(request: Request, number: str, body: Recall) -> JSONResponse:
    w, user = await bearer(request)
    await load_document(w, user, number)
    result = await w.write(w.engine.recall, number, reason=body.reason, copy=body.copy_no,
                           from_=body.from_, keep=body.keep, actor=user.login)
    return ok(result)


@router.get("/register", summary="文件发放回收记录表的行")
async def register(request: Request, date_from: date | None = None, date_to: date | None = None
                   ) -> JSONResponse:
    w, user = await bearer(request)
    rows = await w.read(w.engine.register_rows, date_from, date_to, actor=user.login)
    return ok({"columns": list(REGISTER_COLUMNS), "rows": rows})


@router.get("/due", summary="已逾期或即将到期的项目（dealerdocs due）")
async def due(request: Request, within: int = 7) -> JSONResponse:
    w, user = await bearer(request)
    if not 0 <= within <= 3650:
        raise InputError("within 应在 0–3650 之间", field="within")
    return ok(await w.read(w.engine.due, within, actor=user.login))


@router.get("/reports/{name}.{fmt}", summary="导出登记报表（dealerdocs report）")
async def report(request: Request, name: str, fmt: Literal["xlsx", "docx", "pdf"],
                 date_from: date | None = None, date_to: date | None = None):
    w, user = await bearer(request)
    reach = w.engine.reach(user.login)
    found = [wf for wf in w.engine.workflows.values()
             if name in wf.reports and reach.sees_workflow(wf.key)
             or name in wf.tallies and all(reach.sees_workflow(k)
                                           for k in wf.tallies[name].workflows)]
    if not found:
        raise NotFoundError(f"没有名为 \"{name}\" 的报表，或无权查看", report=name)
    return await report_response(w, user, name, date_from, date_to, fmt)
