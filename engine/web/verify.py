"""The public verification page, ``/v/<number>?v=<version>&h=<short hash>``: where the QR code
on every page of an issued document leads (:mod:`engine.qr`). No sign-in; mostly opened on a
phone.

What it shows comes from :meth:`engine.Engine.public_facts` and nothing else: title, number,
version, store, issue date and status, never a customer's data. A number, version and hash
that do not all agree with the register get one answer, 不匹配, whatever the reason, so the
page tells nothing the QR code did not already say.

A PDF can be dropped on it to compare byte for byte with the archived one. That upload needs no
CSRF token (there is no session to ride on, and the answer changes nothing), but it is bounded:
a body limit of its own (:data:`UPLOAD_LIMIT`, while it arrives), a rate limit per client
address (:mod:`.ratelimit`), and no storage: the file part is hashed as it streams in and
never written anywhere, not even a temporary file.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..qr import HASH_CHARS, Payload
from .limits import MB
from .ratelimit import PublicLimits, RateLimit
from .site import DOC_NUMBER, client_address, web

router = APIRouter(include_in_schema=False)
UPLOAD_LIMIT = 20 * MB   # a document's PDF is well below; a signed one with images too
FILE_FIELD = "pdf"
_HASH = re.compile(r"^[0-9a-f]{%d}$" % HASH_CHARS)


def _payload(number: str, v: str, h: str) -> Payload | None:
    """The payload of the request, if it is well formed (else the same 不匹配)."""
    if not DOC_NUMBER.match(number) or not v.isdigit() or len(v) > 6 or not _HASH.match(h):
        return None
    return Payload(number, int(v), h)


def _limits(request: Request) -> PublicLimits:
    return request.app.state.public_limits


def _page(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    w = web(request)
    base = {"user": None, "csrf": "", "nav": [], "stores": [], "store": "", "roles": "",
            "path": request.url.path, "dealer": w.engine.config.dealer,
            "facts": None, "action": "", "compared": None, "busy": None}
    return w.templates.TemplateResponse(request, "verify.html", {**base, **context},
                                        status_code=status)


def _here(request: Request) -> str:
    """This page's path and query: the upload form posts back to it."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _too_many(request: Request, limit: RateLimit) -> Response | None:
    wait = limit.take(client_address(request))
    if not wait:
        return None
    response = _page(request, {"busy": wait}, status=429)
    response.headers["Retry-After"] = str(wait)
    return response


async def _asked(request: Request, limit: RateLimit, number: str, v: str, h: str
                 ) -> tuple[Response | None, Any, Any]:
    """(a 429 answer if ``limit`` says so, the link's payload, its public facts or None)."""
    refused = _too_many(request, limit)
    if refused is not None:
        return refused, None, None
    w = web(request)
    payload = _payload(number, v, h)
    facts = await w.read(w.engine.public_facts, payload) if payload else None
    return None, payload, facts


@router.get("/v/{number}")
async def verify_page(request: Request, number: str, v: str = "", h: str = "") -> Response:
    refused, _, facts = await _asked(request, _limits(request).views, number, v, h)
    if refused is not None:
        return refused
    return _page(request, {"facts": facts, "action": _here(request)})


@router.post("/v/{number}")
async def compare_upload(request: Request, number: str, v: str = "", h: str = "") -> Response:
    refused, payload, facts = await _asked(request, _limits(request).uploads, number, v, h)
    if refused is not None:
        return refused
    w = web(request)
    if facts is None:
        return _page(request, {"facts": None})
    digest = await hash_upload(request, FILE_FIELD)
    compared = await w.read(w.engine.compare_file, payload, digest)
    return _page(request, {"facts": facts, "compared": compared,
                           "action": _here(request)})


async def hash_upload(request: Request, field: str) -> str:
    """The sha256 of the file sent in the multipart form field ``field``, computed while the
    body streams in (the body limit counts it); nothing of it is kept. 400 if the form has
    no such file."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise HTTPException(400, "请选择要比对的 PDF 文件后再提交")
    digest = hashlib.sha256()
    state: dict[str, Any] = {"headers": [], "field": b"", "value": b"", "ours": False,
                             "found": False}

    def header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def header_end() -> None:
        state["headers"].append((state["field"].lower(), state["value"]))
        state["field"], state["value"] = b"", b""

    def headers_finished() -> None:
        disposition = dict(state["headers"]).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        state["ours"] = (options.get(b"name") == field.encode()
                         and b"filename" in options and not state["found"])
        state["found"] = state["found"] or state["ours"]
        state["headers"] = []

    def part_data(data: bytes, start: int, end: int) -> None:
        if state["ours"]:
            digest.update(data[start:end])

    def part_end() -> None:
        state["ours"] = False

    parser = MultipartParser(boundary, {
        "on_header_field": header_field, "on_header_value": header_value,
        "on_header_end": header_end, "on_headers_finished": headers_finished,
        "on_part_data": part_data, "on_part_end": part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as err:
        raise HTTPException(400, "上传的表单无法读取；请重新选择文件后提交") from err
    if not state["found"]:
        raise HTTPException(400, "请选择要比对的 PDF 文件后再提交")
    return digest.hexdigest()
