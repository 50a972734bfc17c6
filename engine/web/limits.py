"""Limits on what a request body may be, enforced while it arrives (ASGI middleware).

- :class:`BodyLimit` counts the bytes of every body as the app reads them, whatever
  ``Content-Length`` says (a chunked upload has none), and stops at the limit with 413: a small
  one for sign-in, JSON and ordinary forms, the upload limit only for the routes that take
  files and only for a signed-in user; a public route that takes a file (the verification
  page's comparison) has its own, smaller limit for anyone. A body the app never reads is never read.
- :class:`JsonDepthLimit` looks at a JSON body's nesting before anything parses it: more than
  ``max_depth`` levels is a 400, not a parser's recursion error.

Both refuse by raising an ``HTTPException`` from ``receive``, so the app's own handler answers
(a Chinese error page, or the API's JSON error) wherever the body was being read.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MB = 1024 * 1024


class BodyTooLarge(HTTPException):
    """The body went over the limit of its route (413)."""

    def __init__(self, limit: int, uploads: bool) -> None:
        what = "提交的内容（含上传的文件）" if uploads else "提交的内容"
        super().__init__(status_code=413, detail=f"{what}超过 {_size(limit)} 的上限，未被接收"
                         + ("；请分几次上传，或先压缩图片" if uploads else ""))


class JsonTooDeep(HTTPException):
    """The JSON body nests deeper than any request of the API needs (400)."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(status_code=400, detail=f"JSON 嵌套超过 {max_depth} 层，未被处理；"
                                                 f"请检查请求内容")


def _size(n: int) -> str:
    return f"{n // MB} MB" if n >= MB and n % MB == 0 else f"{n // 1024} KB"


@dataclass(frozen=True)
class UploadRoute:
    """POST requests to ``pattern`` with a body of one of ``types`` may carry files: up to
    the upload limit for a signed-in sender, or, on a public route (``public`` = its own
    limit in bytes), up to ``public`` bytes for anyone."""

    pattern: re.Pattern[str]
    types: tuple[str, ...]
    public: int | None = None

    def matches(self, scope: Scope, content_type: str) -> bool:
        return (scope["method"] == "POST" and self.pattern.fullmatch(scope["path"]) is not None
                and content_type.split(";")[0].strip().lower() in self.types)


class BodyLimit:
    """``small`` bytes for every body; ``large`` on :class:`UploadRoute` s when
    ``may_upload(request)`` says the sender is signed in (asked only for a body that could be
    larger than ``small``)."""

    def __init__(self, app: ASGIApp, *, small: int, large: int, uploads: Iterable[UploadRoute],
                 may_upload: Callable[[Request], Awaitable[bool]]) -> None:
        self.app = app
        self.small, self.large = small, large
        self.uploads = tuple(uploads)
        self.may_upload = may_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        limit, uploads = self.small, False
        route = next((r for r in self.uploads
                      if r.matches(scope, headers.get("content-type", ""))), None)
        if (declared is None or declared > self.small) and route is not None:
            if route.public is not None:
                limit, uploads = route.public, True
            elif await self.may_upload(Request(scope)):
                limit, uploads = self.large, True
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit, uploads)  # before a byte of it is read
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, uploads)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge as err:  # read outside the app's handlers (should not happen)
            if started:
                raise
            await _plain(send, err.status_code, err.detail)


class JsonDepthLimit:
    """Bodies of ``paths`` sent as JSON (or without a type) are read whole (the size limit
    applies), checked for nesting, then handed on as one message."""

    def __init__(self, app: ASGIApp, *, max_depth: int = 32,
                 paths: re.Pattern[str] = re.compile(r"/api/.*")) -> None:
        self.app = app
        self.max_depth = max_depth
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") \
                or not self.paths.fullmatch(scope["path"]) \
                or not _is_json(Headers(scope=scope).get("content-type")):
            await self.app(scope, receive, send)
            return
        done = False

        async def checked() -> Message:
            nonlocal done
            if done:
                return await receive()
            chunks = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message  # the client went away
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            done = True
            body = b"".join(chunks)
            deep = (await run_in_threadpool(too_deep, body, self.max_depth)
                    if len(body) > 256 * 1024 else too_deep(body, self.max_depth))
            if deep:
                raise JsonTooDeep(self.max_depth)
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, checked, send)


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")], _STEP[ord("]")] = 1, -1


def too_deep(body: bytes, max_depth: int) -> bool:
    """Does ``body`` open more than ``max_depth`` arrays/objects inside each other? Strings
    are taken out first (a bracket in a text is no nesting); all in C-speed passes."""
    brackets = _STRING.sub(b"", body).translate(_BRACKETS, _NOT_BRACKETS)
    if brackets.count(b"[") <= max_depth:
        return False
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


async def _plain(send: Send, status: int, text: str) -> None:
    body = ('{"error": "HTTPError", "message": "' + text.replace('"', "'") + '"}').encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
