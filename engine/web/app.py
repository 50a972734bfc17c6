"""The ASGI app: pages for the staff (``pages``), the JSON API (``api``), error pages.

One :class:`engine.Engine` serves every request. Reads run concurrently in the thread pool;
operations that write or convert (create, fire, dispatch, recall, exports) take one lock in
turn, because the LibreOffice converter works on one document at a time.

Who is signed in is asked of the store (``engine.sessions``) once per request, in the thread
pool; request bodies are bounded while they arrive (:mod:`.limits`); what a response shows of
an error never includes a path on the server (:func:`public_error`). What the pages and
the API share is in :mod:`.site`, so the imports of this package run one way.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..engine import Engine
from ..errors import DealerDocsError
from . import api, auth, limits, pages, verify
from .site import WEB, CsrfRefused, SignInRequired, Web, jsonable, status_of, web
from .ratelimit import PublicLimits
from .throttle import Throttle

log = logging.getLogger(__name__)
HTTP_TITLES = {400: "请求有误", 401: "请先登录", 403: "无权访问", 404: "页面不存在",
               405: "不支持的请求方式", 409: "当前状态不允许此操作", 413: "提交的内容太大",
               422: "填写有误", 429: "尝试次数过多", 500: "系统内部错误", 502: "文档转换失败",
               503: "系统繁忙"}

SMALL_BODY = 1024 * 1024                     # sign-in, JSON, forms without files
UPLOAD_BODY = 40 * 1024 * 1024               # forms and API calls that carry files
JSON_MAX_DEPTH = 32
UPLOAD_ROUTES = (
    limits.UploadRoute(re.compile(r"/cases/new/[^/]+"), ("multipart/form-data",)),
    limits.UploadRoute(re.compile(r"/cases/[^/]+/fire/[^/]+"), ("multipart/form-data",)),
    limits.UploadRoute(re.compile(r"/api/cases"), ("application/json", "")),
    limits.UploadRoute(re.compile(r"/api/cases/[^/]+/fire/[^/]+"), ("application/json", "")),
    # the public verification page: anyone may send a PDF to compare, up to its own limit
    limits.UploadRoute(re.compile(r"/v/[^/]+"), ("multipart/form-data",), public=verify.UPLOAD_LIMIT),
)


def create_app(engine: Engine, *, secret: bytes | None = None, throttle: Throttle | None = None,
               config_path: str | Path | None = None,
               public_limits: PublicLimits | None = None) -> FastAPI:
    """The app for ``engine``. The secret key defaults to the store's (made on first run); the
    sign-in throttle to one counting in the store (shared by every process serving it);
    config.toml (watched for new password hashes) to the one
    beside the engine's config; the public verification page's rate limits to
    :meth:`PublicLimits.default`."""
    app = FastAPI(title="dealerdocs API", version=__version__,
                  description="4S 店单据与流程引擎的 JSON 接口：与命令行相同的操作与规则。"
                              "先用 POST /api/token（登录名与密码）取得令牌，之后每个请求带 "
                              "`Authorization: Bearer <令牌>`；令牌可用 DELETE /api/token 或 "
                              "dealerdocs user tokens LOGIN --revoke ID 撤销。",
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    if config_path is None:
        beside = engine.config.base_dir / "config.toml"
        config_path = beside if beside.is_file() else None
    w = Web(engine, auth.load_secret(engine.config.store_dir) if secret is None else secret,
            accounts=auth.Accounts(engine.config, Path(config_path) if config_path else None),
            throttle=throttle if throttle is not None else Throttle(book=engine.failures))
    app.state.web = w
    app.state.public_limits = public_limits or PublicLimits.default()
    app.mount("/static", StaticFiles(directory=str(WEB / "static")), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(verify.router)
    # added last = outermost: the size is counted before the JSON depth is looked at
    app.add_middleware(limits.JsonDepthLimit, max_depth=JSON_MAX_DEPTH)
    app.add_middleware(limits.BodyLimit, small=SMALL_BODY, large=UPLOAD_BODY,
                       uploads=UPLOAD_ROUTES, may_upload=w.may_upload)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'self'; form-action 'self'; base-uri 'none'")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    async def page(request: Request, status: int, message: str, title: str | None = None
                   ) -> Response:
        w = web(request)
        found = await w.current(request)
        return w.templates.TemplateResponse(request, "error.html", {
            "title": title or HTTP_TITLES.get(status, "出错了"), "message": message,
            "status": status, "user": found[0] if found else None,
            "dealer": w.engine.config.dealer,
            "csrf": found[1] if found else ""}, status_code=status)

    @app.exception_handler(DealerDocsError)
    async def engine_error(request: Request, err: DealerDocsError) -> Response:
        status = status_of(err)
        if status >= 500:
            log.error("%s: %s", type(err).__name__, err.message)
        public = public_error(err)
        if is_api(request):
            return JSONResponse(jsonable(public), status_code=status)
        return await page(request, status, public["message"])

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, err: SignInRequired) -> Response:
        if is_api(request):
            return JSONResponse({"error": "Unauthorized", "message": "请提供有效的令牌"
                                 "（Authorization: Bearer …，由 POST /api/token 取得）"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            from urllib.parse import quote
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return await page(request, 401, "登录已过期或尚未登录，请重新登录后再提交。")

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, err: CsrfRefused) -> Response:
        return await page(request, 403, "表单已失效（缺少或不匹配的安全令牌）。请返回上一页，刷新后重新提交。",
                          title="表单已失效")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        # our own details are Chinese; a framework's English one is replaced by the status's
        message = err.detail if isinstance(err.detail, str) and _CHINESE.search(err.detail) \
            else {400: "请求的内容无法读取（格式不对）。", 404: "找不到这个页面。请从首页重新进入。",
                  405: "此地址不支持这种请求方式。", 413: "提交的内容太大，未被接收。"
                  }.get(err.status_code, "请求未能完成。")
        if is_api(request):
            return JSONResponse({"error": "HTTPError", "message": message},
                                status_code=err.status_code, headers=err.headers)
        return await page(request, err.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> Response:
        problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                    for e in err.errors()]
        if is_api(request):
            return JSONResponse({"error": "InputError", "message": "请求格式不对",
                                 "problems": problems}, status_code=422)
        return await page(request, 422, "请求格式不对：" + "；".join(
            f"{p['where']}：{p['message']}" for p in problems))

    @app.exception_handler(Exception)
    async def crashed(request: Request, err: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if is_api(request):
            return JSONResponse({"error": "InternalError", "message": "系统内部错误，已记录日志"},
                                status_code=500)
        return await page(request, 500, "系统内部错误，已记录日志。请稍后重试；如果一再出现，请联系管理员。")

    return app


_CHINESE = re.compile(r"[\u4e00-\u9fff]")
# An absolute path of two or more parts, up to a space, a quote or Chinese punctuation.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])/(?:[^\s/\"'<>：，。；、（）()]+/)+[^\s/\"'<>：，。；、（）()]*")


def scrub(text: str) -> str:
    """``text`` with every absolute path cut to its last part (the file's own name): what a
    web answer may show of the server's folders is nothing."""
    def last_part(m: re.Match[str]) -> str:
        parts = [p for p in m.group(0).split("/") if p]
        return parts[-1] if parts else "…"
    return _ABSOLUTE_PATH.sub(last_part, text)


def public_error(err: DealerDocsError) -> dict[str, Any]:
    """``err.to_dict()`` for a web answer: no ``path`` detail, no absolute path in any text
    (the command line keeps them; the administrator reads the server's log)."""
    out = {k: v for k, v in err.to_dict().items() if k != "path"}
    return {k: scrub(v) if isinstance(v, str) else
            [scrub(x) if isinstance(x, str) else x for x in v] if isinstance(v, list) else v
            for k, v in out.items()}


def demo_passwords_in_use(engine: Engine) -> list[str]:
    """Logins that still sign in with the demo password (for a warning at start-up)."""
    return [u.login for u in engine.config.users.values()
            if u.password_hash and auth.verify_password(u.password_hash, DEMO_PASSWORD)]


DEMO_PASSWORD = "demo-2026"
