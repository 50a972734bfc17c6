"""What the pages and the JSON API share: the :class:`Web` state (the engine, who may sign in,
the throttle, the write lock), the errors that end a request before the engine is asked, and
the loaders both kinds of route read cases, documents and reports with.

Both ``pages`` and ``api`` import this module and nothing of each other; ``app`` imports all
three to build the ASGI app, so imports in the package run one way.
"""
from __future__ import annotations

import dataclasses
import hmac
import re
import shutil
import tempfile
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fastapi import Request
from fastapi.responses import FileResponse
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ..config import User
from ..defaults import package_path
from ..errors import (ConfigError, ConversionError, DealerDocsError, InputError, IntegrityError,
                      NotFoundError, PermissionDenied, StateError, StorageError, TemplateError)
from ..workflow import Workflow
from . import auth, view
from .throttle import Throttle

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

WEB = package_path("web")  # the pages and assets, package data

STATUS = {InputError: 422, PermissionDenied: 403, NotFoundError: 404, StateError: 409,
          StorageError: 503, ConversionError: 502, TemplateError: 500, ConfigError: 500,
          IntegrityError: 500}

CASE_ID = re.compile(r"^[A-Z][A-Z0-9_]{0,9}-[0-9]{1,9}$")
# BJ-2026-000001, or a group store's BJ01-BJ-2026-000001 (config.NUMBER_PREFIX each part)
DOC_NUMBER = re.compile(r"^[A-Z][A-Z0-9]{0,9}(-[A-Z][A-Z0-9]{0,9})?(-[0-9]{4})?-[0-9]{1,12}$")
MEDIA = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "pdf": "application/pdf"}

SESSION_KEY = "dealerdocs.session"
BEARER_KEY = "dealerdocs.bearer"
STORE_KEY = "dealerdocs.store"
# which store of a dealer group a page works in (the store switcher sets it) and an API call
STORE_COOKIE = "dealerdocs_store"
STORE_HEADER = "x-dealerdocs-store"


class SignInRequired(Exception):
    """The request has no valid session: pages redirect to the sign-in page, the API says 401."""


class CsrfRefused(Exception):
    """A form arrived without the session's CSRF token."""


def status_of(err: DealerDocsError) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


class Web:
    """What the routes share: the engine, who may sign in, the throttle and the write lock.

    With config.toml's ``[stores]`` (a dealer group), ``engine`` is the group's read-only
    view and each request works in one store, the engine of which :func:`web` hands the
    route: the one the user chose with the store switcher (a cookie) or an API call names
    (the ``X-Dealerdocs-Store`` header), if they have a role there, else their first."""

    def __init__(self, engine: "Engine", secret: bytes, *, accounts: auth.Accounts,
                 throttle: Throttle) -> None:
        if len(secret) < auth.SECRET_BYTES:
            raise ConfigError(f"网页版的密钥至少需要 {auth.SECRET_BYTES} 字节，收到 {len(secret)} 字节")
        self.engine = engine
        self.secret = secret
        self.accounts = accounts
        self.throttle = throttle
        self.write_lock = threading.Lock()
        self._branches = threading.Lock()
        self.templates = Jinja2Templates(directory=str(WEB / "templates"))
        view.install(self.templates.env, engine)

    def engine_for(self, code: str) -> "Engine":
        """The engine of store ``code`` ("" = the one store of a one-store config)."""
        if not code or code == self.engine.config.current_store:
            return self.engine
        with self._branches:
            return self.engine.branch(code)

    def stores_of(self, login: str) -> list[str]:
        return self.engine.config.stores_of(login)

    def store_for(self, login: str, requested: str | None) -> str:
        """The store a request of ``login`` works in: ``requested`` if they have a role there,
        else the whole group for a group manager, else their first store ("" for one store)."""
        mine = self.stores_of(login)
        if not mine:
            return ""
        if requested in mine:
            return requested
        from ..config import GROUP
        return GROUP if GROUP in mine else mine[0]

    def _in_store(self, request: Request, user: User, requested: str | None) -> User:
        """``user`` as the store the request works in knows them (their roles there)."""
        code = self.store_for(user.login, requested)
        request.scope[STORE_KEY] = code
        if not code:
            return user
        return dataclasses.replace(user, roles=self.engine_for(code).config.users[user.login].roles)

    async def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(fn, *args, **kwargs)

    async def write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def locked() -> Any:
            with self.write_lock:
                return fn(*args, **kwargs)
        return await run_in_threadpool(locked)

    def _signed_in(self, token: str | None, kind: str) -> User | None:
        """The user a session cookie (``web``) or token (``api``) stands for, checked in the
        store and against the password hash config.toml holds now (and the key)."""
        found = self.engine.sessions.check(token, kind)
        if found is None:
            return None
        user = self.accounts.user(found.login)
        if user is None or not hmac.compare_digest(found.fingerprint.encode(),
                                                   auth.binding(user, self.secret).encode()):
            return None
        return user

    async def current(self, request: Request) -> tuple[User, str] | None:
        """The signed-in user and the session's CSRF token, or None (once per request)."""
        if SESSION_KEY in request.scope:
            return request.scope[SESSION_KEY]
        request.scope[SESSION_KEY] = None  # if the store cannot be read, the error page has no user
        token = request.cookies.get(auth.SESSION_COOKIE)
        user = await run_in_threadpool(self._signed_in, token, "web") if token else None
        if user is not None:
            user = self._in_store(request, user, request.cookies.get(STORE_COOKIE))
        found = (user, auth.csrf_token(self.secret, token)) if user and token else None
        request.scope[SESSION_KEY] = found
        return found

    def known(self, request: Request) -> tuple[User, str] | None:
        """What :meth:`current` found for this request (None if it was not asked)."""
        return request.scope.get(SESSION_KEY)

    async def bearer(self, request: Request) -> User | None:
        """The user of the request's ``Authorization: Bearer`` token, or None."""
        if BEARER_KEY in request.scope:
            return request.scope[BEARER_KEY]
        request.scope[BEARER_KEY] = None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = None
        if scheme.lower() == "bearer" and token.strip():
            user = await run_in_threadpool(self._signed_in, token.strip(), "api")
        named = request.headers.get(STORE_HEADER)
        if user is not None and named and named not in self.stores_of(user.login):
            raise PermissionDenied(f"用户 {user.login} 在门店“{named}”没有角色"
                                   f"（可用：{'、'.join(self.stores_of(user.login)) or '无'}）",
                                   user=user.login, store=named)
        if user is not None:
            user = self._in_store(request, user, named)
        request.scope[BEARER_KEY] = user
        return user

    async def may_upload(self, request: Request) -> bool:
        """Only a signed-in sender gets the upload limit (:mod:`.limits`)."""
        if request.url.path.startswith("/api/"):
            return await self.bearer(request) is not None
        return await self.current(request) is not None


def web(request: Request) -> Web:
    """The app's :class:`Web` as this request sees it: the engine of the store it works in
    (known once the user is: :meth:`Web.current`, :meth:`Web.bearer`)."""
    return Here(request.app.state.web, request)


class Here:
    """A :class:`Web` for one request: everything shared, but ``engine`` is the engine of the
    store the request works in (the group's view until the user is known)."""

    def __init__(self, shared: Web, request: Request) -> None:
        self._shared = shared
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared, name)

    @property
    def engine(self) -> "Engine":
        return self._shared.engine_for(self._request.scope.get(STORE_KEY, ""))

    @property
    def store(self) -> str:
        """The code of the store the request works in ("" for one store)."""
        return self._request.scope.get(STORE_KEY, "")


def client_address(request: Request) -> str:
    """The client's address: the peer's, or with ``serve --forwarded-allow-ips`` the one a
    trusted proxy names (uvicorn puts it here; a header from anyone else is ignored)."""
    return request.client.host if request.client else "?"


def jsonable(value: Any) -> Any:
    """``value`` with Decimals and paths as strings (what a JSON answer can carry)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (Decimal, Path)):
        return str(value)
    return value


def remove_tree(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


# --- loaders: what the engine shows the signed-in user -----------------------------------------

def viewable(w: Web, user: User, key: str) -> Workflow:
    """The workflow ``key``, if ``user`` sees its cases."""
    wf = w.engine.workflow(key)
    if not w.engine.reach(user.login).sees_workflow(key):
        raise PermissionDenied(f"{user.name}（{user.login}）无权查看{wf.title}", user=user.login)
    return wf


async def load_case(w: Web, user: User, case_id: str, reveal: bool = False
                    ) -> tuple[Workflow, dict[str, Any]]:
    """The case as the engine shows it to ``user`` (someone else's reads as not found); a
    reveal is written into the audit trail, so it takes the write lock."""
    if not CASE_ID.match(case_id):
        raise NotFoundError(f"找不到案件 \"{case_id}\"", case=case_id)
    if reveal:
        case = await w.write(w.engine.case, case_id, actor=user.login, reveal=True)
    else:
        case = await w.read(w.engine.case, case_id, actor=user.login)
    return w.engine.workflow(case["workflow"]), case


async def load_document(w: Web, user: User, number: str) -> dict[str, Any]:
    """The register entry of ``number``, if the engine lets ``user`` see it."""
    if not DOC_NUMBER.match(number):
        raise NotFoundError(f"找不到文件编号 \"{number}\"", number=number)
    return await w.read(w.engine.document, number, actor=user.login)


async def report_response(w: Web, user: User, name: str, start: date | None, end: date | None,
                          fmt: str) -> FileResponse:
    """A report exported into a temporary folder, sent, and the folder removed afterwards
    (pages and the API)."""
    folder = tempfile.mkdtemp(prefix="dealerdocs-report-")
    try:
        result = await w.write(w.engine.report, name, start, end, (fmt,), Path(folder),
                               actor=user.login)
    except Exception:
        remove_tree(folder)
        raise
    return FileResponse(result["files"][fmt], media_type=MEDIA[fmt],
                        filename=f"{result['title'].replace('/', '、')}.{fmt}",
                        background=BackgroundTask(remove_tree, folder))
